//! The control plane over real HTTP with real NFS traffic: session detail and summary,
//! live settings (limit, validation, auth, persistence across a restart), metrics that
//! move exactly with binds and unbinds, drain and destroy through the API, OpenAPI, and
//! `ringnfs ctl` smoke tests.

pub mod openapi_check;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ringnfs::client::ops::{share, stable};
use ringnfs::client::{Client, ClientOptions, CompoundReply, Files, Op, OpenFile, Session};
use ringnfs::control::client::{HttpClient, Response};
use ringnfs::nfs4::consts::{cdfc, status};
use ringnfs::server::{BackendKind, Server, ServerConfig};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// A server with a control plane on an ephemeral loopback port and its own state dir.
struct Ctl {
    server: Option<Server>,
    dir: PathBuf,
    nfs: SocketAddr,
    control: SocketAddr,
    token: String,
    /// The etcd of a server started as a cluster node ([`Ctl::start_node`]); dropped
    /// after the server.
    etcd: Option<ringnfs_testkit::etcd::EtcdCluster>,
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ringnfs-control-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

impl Ctl {
    fn start(name: &str) -> Self {
        Self::start_in(temp_dir(name))
    }

    /// As [`Ctl::start`], the server a node of a cluster on a one-member etcd, so that
    /// the cluster endpoint has something to show; None (skipped) without etcd.
    fn start_node(name: &str) -> Option<Self> {
        let etcd = ringnfs_testkit::etcd::EtcdCluster::start_or_skip(name, 1)?;
        let cluster = ringnfs::cluster::ClusterOptions {
            endpoints: etcd.endpoints(),
            name: name.into(),
            node_id: Some(7),
            node_ttl_secs: 5,
        };
        let mut ctl = Self::start_with(temp_dir(name), Some(cluster));
        ctl.etcd = Some(etcd);
        Some(ctl)
    }

    fn start_in(dir: PathBuf) -> Self {
        Self::start_with(dir, None)
    }

    fn start_with(dir: PathBuf, cluster: Option<ringnfs::cluster::ClusterOptions>) -> Self {
        // With TLS, so that the TLS endpoints have something to show and reload.
        std::fs::create_dir_all(&dir).unwrap();
        let ca = ringnfs_testkit::pki::TestCa::new(&dir, "control");
        let cert = ca.issue(
            "server",
            &["127.0.0.1"],
            ringnfs_testkit::pki::Role::Server,
            false,
        );
        let server = Server::start(ServerConfig {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            threads: 2,
            pin_cores: false,
            backend: BackendKind::Memory,
            state_dir: Some(dir.join("state")),
            control: Some("127.0.0.1:0".parse().unwrap()),
            tls_cert: Some(cert.cert),
            tls_key: Some(cert.key),
            cluster,
            ..ServerConfig::default()
        })
        .expect("server starts");
        let control = server.control_addr().expect("control plane runs");
        let token_path = server
            .control_token_path()
            .expect("token file")
            .to_path_buf();
        assert_eq!(token_path, dir.join("state").join("control-token"));
        let token = std::fs::read_to_string(&token_path)
            .unwrap()
            .trim()
            .to_string();
        Self {
            nfs: server.local_addrs()[0],
            server: Some(server),
            dir,
            control,
            token,
            etcd: None,
        }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    fn anon(&self) -> HttpClient {
        HttpClient::new(self.control, None)
    }

    fn authed(&self) -> HttpClient {
        HttpClient::new(self.control, Some(self.token.clone()))
    }

    fn get(&self, path: &str) -> Response {
        self.anon().get(path).expect("GET")
    }

    fn get_json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json().unwrap()
    }

    fn patch(&self, c: &HttpClient, body: Value) -> Response {
        c.request(
            "PATCH",
            "/api/v1/settings",
            Some(body.to_string().as_bytes()),
        )
        .expect("PATCH")
    }

    fn session(&self, connections: usize) -> Arc<Session> {
        let (_, s) = Client::connect(
            &[self.nfs],
            ClientOptions {
                connections,
                timeout: Duration::from_secs(10),
                ..Default::default()
            },
        )
        .expect("client session");
        s
    }

    /// A session with `n` connections each bound by one SEQUENCE (first BOTH, others FORE).
    fn trunked(&self, n: usize) -> Arc<Session> {
        let s = self.session(n);
        for i in 0..n {
            assert_eq!(s.call(i, &[], false).unwrap().status, status::NFS4_OK);
        }
        s
    }

    fn metric(&self, line_prefix: &str) -> u64 {
        let text = self.get("/metrics").text();
        metric_in(&text, line_prefix)
    }

    /// A counter that is only listed once it moved (e.g. per-op counts).
    fn metric_or_zero(&self, line_prefix: &str) -> u64 {
        let text = self.get("/metrics").text();
        if text.lines().any(|l| l.starts_with(line_prefix)) {
            metric_in(&text, line_prefix)
        } else {
            0
        }
    }

    /// The session's connection ids as the API shows them, in the client's order.
    fn conn_ids(&self, s: &Session) -> Vec<u64> {
        let v = self.get_json(&format!("/api/v1/sessions/{}", hex(s)));
        s.connections()
            .iter()
            .map(|c| {
                let local = c.local_addr().to_string();
                v["connections"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|b| b["peer"] == local)
                    .unwrap_or_else(|| panic!("{local} not bound: {v}"))["id"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    }

    fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown();
            s.join().expect("server joins");
        }
    }
}

impl Drop for Ctl {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn metric_in(text: &str, line_prefix: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no metric {line_prefix} in\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

fn hex(s: &Session) -> String {
    s.sessionid().to_hex()
}

fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

fn summary(v: &Value) -> (u64, u64, u64, u64) {
    let s = &v["summary"];
    (
        s["fore"].as_u64().unwrap(),
        s["back"].as_u64().unwrap(),
        s["both"].as_u64().unwrap(),
        s["total"].as_u64().unwrap(),
    )
}

#[test]
fn session_detail_follows_binds_rebinds_and_disconnects() {
    let ctl = Ctl::start("detail");
    let s = ctl.trunked(3);
    let path = format!("/api/v1/sessions/{}", hex(&s));
    let v = ctl.get_json(&path);
    assert_eq!(v["id"], hex(&s));
    assert_eq!(v["clientid"].as_u64(), Some(s.clientid()));
    assert_eq!(summary(&v), (2, 0, 1, 3));
    let conns = v["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 3);
    for c in conns {
        assert!(c["id"].is_u64());
        assert!(c["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
        assert!(c["core"].as_u64().unwrap() < 2);
        assert!(c["bound_at_ms"].as_u64().unwrap() > 0);
        assert_eq!(c["draining"], false);
        assert!(c["requests"].as_u64().unwrap() >= 1);
    }
    // Rebind connection 2 as back channel: fore 1, back 1, both 1.
    assert_eq!(
        s.bind_conn(2, cdfc::BACK).unwrap().dir,
        ringnfs::nfs4::consts::cdfs::BACK
    );
    assert_eq!(summary(&ctl.get_json(&path)), (1, 1, 1, 3));
    // Disconnect connection 1 (fore): it leaves the session.
    s.connection(1).unwrap().shutdown();
    assert!(wait_until(|| summary(&ctl.get_json(&path)) == (0, 1, 1, 2)));

    // Lists and filters.
    let all = ctl.get_json("/api/v1/sessions");
    assert_eq!(all.as_array().unwrap().len(), 1);
    let other = ctl.session(1);
    assert_eq!(
        ctl.get_json("/api/v1/sessions").as_array().unwrap().len(),
        2
    );
    let mine = ctl.get_json(&format!("/api/v1/sessions?client={}", s.clientid()));
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["id"], hex(&s));
    let mine_hex = ctl.get_json(&format!("/api/v1/sessions?client=0x{:x}", other.clientid()));
    assert_eq!(mine_hex[0]["id"], hex(&other));
    let clients = ctl.get_json("/api/v1/clients");
    assert_eq!(clients.as_array().unwrap().len(), 2);
    let c = ctl.get_json(&format!("/api/v1/clients/{}", s.clientid()));
    assert_eq!(c["id"].as_u64(), Some(s.clientid()));
    assert_eq!(c["confirmed"], true);
    assert_eq!(c["session_details"][0]["id"], hex(&s));
    let conns = ctl.get_json("/api/v1/connections");
    assert_eq!(conns.as_array().unwrap().len(), 3, "{conns}");

    // Errors are JSON with the right status.
    let r = ctl.get("/api/v1/sessions/zz");
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("invalid session id"));
    let r = ctl.get(&format!("/api/v1/sessions/{}", "0".repeat(32)));
    assert_eq!(r.status, 404);
    assert!(r.json().unwrap()["error"].is_string());
    assert_eq!(ctl.get("/api/v1/clients/12345").status, 404);
    assert_eq!(ctl.get("/api/v1/sessions?client=nope").status, 400);
    assert_eq!(ctl.get("/api/v1/nothing").status, 404);
}

#[test]
fn settings_limit_validation_auth_and_restart() {
    let mut ctl = Ctl::start("settings");
    let s = ctl.session(3);
    assert_eq!(s.call(0, &[], false).unwrap().status, status::NFS4_OK);
    assert_eq!(s.call(1, &[], false).unwrap().status, status::NFS4_OK);

    // Lower the limit to 2: the next bind over it is refused with NFS4ERR_DELAY.
    let r = ctl.patch(&ctl.authed(), json!({"max_connections_per_session": 2}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().unwrap()["max_connections_per_session"], 2);
    assert_eq!(
        ctl.server().state().settings.max_connections_per_session(),
        2
    );
    let refused_before = ctl.metric("ringnfs_bind_refusals_total{cause=\"limit\"}");
    let e = s.bind_conn(2, cdfc::FORE).unwrap_err();
    assert_eq!(e.nfs_status(), Some(status::NFS4ERR_DELAY));
    assert_eq!(
        ctl.metric("ringnfs_bind_refusals_total{cause=\"limit\"}"),
        refused_before + 1
    );

    // Out of range: 400, nothing changed.
    let r = ctl.patch(&ctl.authed(), json!({"max_connections_per_session": 5000}));
    assert_eq!(r.status, 400);
    assert!(
        r.error_message().contains("between 0 and 1024"),
        "{}",
        r.text()
    );
    // A valid field beside an invalid one is not applied either.
    let r = ctl.patch(
        &ctl.authed(),
        json!({"max_connections_per_session": 3, "lease_time": 0}),
    );
    assert_eq!(r.status, 400);
    let r = ctl.patch(&ctl.authed(), json!({"no_such_setting": 1}));
    assert_eq!(r.status, 400);
    let r = ctl.patch(&ctl.authed(), json!({"log_level": "=bad=["}));
    assert_eq!(r.status, 400);
    // No token, or a wrong one: 401, nothing changed.
    let r = ctl.patch(&ctl.anon(), json!({"max_connections_per_session": 7}));
    assert_eq!(r.status, 401);
    assert!(r.json().unwrap()["error"].is_string());
    let wrong = HttpClient::new(ctl.control, Some("0".repeat(64)));
    assert_eq!(
        ctl.patch(&wrong, json!({"max_connections_per_session": 7}))
            .status,
        401
    );
    let v = ctl.get_json("/api/v1/settings");
    assert_eq!(v["max_connections_per_session"], 2);
    assert_eq!(v["lease_time"], 90);
    assert_eq!(
        ctl.server().state().settings.max_connections_per_session(),
        2
    );

    // The other settings.
    let r = ctl.patch(
        &ctl.authed(),
        json!({"exclusive_binding": true, "lease_time": 60, "log_level": "debug"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = ctl.get_json("/api/v1/settings");
    assert_eq!(
        v,
        json!({"max_connections_per_session": 2, "exclusive_binding": true,
               "lease_time": 60, "log_level": "debug", "delegations": false})
    );
    assert!(ctl.server().state().settings.exclusive_binding());
    assert_eq!(ctl.server().state().settings.lease_secs(), 60);

    // Restart on the same state dir (start values are the defaults): the persisted
    // settings win.
    drop(s);
    ctl.stop();
    let dir = ctl.dir.clone();
    assert!(dir.join("state/settings.toml").exists());
    let ctl2 = Ctl::start_in(dir.clone());
    assert_eq!(ctl2.token, ctl.token, "the token file is reused");
    let v = ctl2.get_json("/api/v1/settings");
    assert_eq!(v["max_connections_per_session"], 2);
    assert_eq!(v["exclusive_binding"], true);
    assert_eq!(v["lease_time"], 60);
    assert_eq!(
        ctl2.server().state().settings.max_connections_per_session(),
        2
    );
    let s = ctl2.session(3);
    assert_eq!(s.call(0, &[], false).unwrap().status, status::NFS4_OK);
    assert_eq!(s.call(1, &[], false).unwrap().status, status::NFS4_OK);
    assert_eq!(
        s.bind_conn(2, cdfc::FORE).unwrap_err().nfs_status(),
        Some(status::NFS4ERR_DELAY)
    );
}

/// Delegations through the control plane: the live switch (PATCH, persisted), the
/// metrics, and a client's delegations in its detail.
#[test]
fn delegations_switch_live_and_show_per_client() {
    let ctl = Ctl::start("deleg");
    let s = ctl.session(1);
    let files = Files::new(s.clone());
    let root = files.root_fh().unwrap();
    let (fh, f) = files.create(&root, b"d", 0o644).unwrap();
    files.close(f).unwrap();
    assert_eq!(ctl.get_json("/api/v1/settings")["delegations"], false);
    let open = || {
        let args = files.open_args(
            share::ACCESS_READ,
            0,
            ringnfs::client::OpenHow::NoCreate,
            ringnfs::client::OpenClaim::Fh,
        );
        files.open_with(&fh, args).unwrap().1.delegation
    };
    assert_eq!(open(), ringnfs::client::Delegation::None, "off by default");
    let r = ctl.patch(&ctl.authed(), json!({"delegations": true}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(ctl.server().state().settings.delegations());
    let ringnfs::client::Delegation::Read { stateid, .. } = open() else {
        panic!("a read delegation once the setting is on");
    };
    let c = ctl.get_json(&format!("/api/v1/clients/{}", s.clientid()));
    assert_eq!(c["delegations"], 1);
    let d = &c["delegation_details"][0];
    assert_eq!(d["kind"], "read");
    assert_eq!(d["revoked"], false);
    assert_eq!(d["recalled_ms_ago"], Value::Null);
    assert_eq!(
        d["stateid"],
        format!(
            "{}:{}",
            stateid.seqid,
            stateid
                .other
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    );
    let m = ctl.get("/metrics").text();
    assert_eq!(
        metric_in(&m, "ringnfs_delegations_granted_total{type=\"read\"}"),
        1
    );
    assert_eq!(metric_in(&m, "ringnfs_delegations"), 1);
    files
        .call(&[Op::PutFh(fh.clone()), Op::DelegReturn(stateid)])
        .unwrap();
    let m = ctl.get("/metrics").text();
    assert_eq!(metric_in(&m, "ringnfs_delegations_returned_total"), 1);
    assert_eq!(metric_in(&m, "ringnfs_delegations"), 0);
    // Off again: no new ones.
    let r = ctl.patch(&ctl.authed(), json!({"delegations": false}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(open(), ringnfs::client::Delegation::None);
    let saved = std::fs::read_to_string(ctl.dir.join("state/settings.toml")).unwrap();
    assert!(saved.contains("delegations = false"), "{saved}");
}

/// The label values of `family` in the order a scrape lists them.
fn label_order(text: &str, family: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix(family)?.strip_prefix('{'))
        .map(|l| l[..l.find('}').unwrap()].to_string())
        .collect()
}

#[test]
fn metrics_list_label_values_in_a_stable_order() {
    let ctl = Ctl::start("metrics-order");
    // Some op errors, so the op/status family has several members too.
    let s = ctl.trunked(2);
    let files = Files::new(s.clone());
    let root = files.root_fh().unwrap();
    assert!(files.lookup(&root, b"missing").is_err());
    assert!(files.getattr(&[1, 2, 3]).is_err());
    let families = [
        (
            "ringnfs_connection_binds_total",
            vec![
                "direction=\"fore\"",
                "direction=\"back\"",
                "direction=\"both\"",
            ],
        ),
        (
            "ringnfs_connection_unbinds_total",
            vec![
                "reason=\"explicit\"",
                "reason=\"disconnect\"",
                "reason=\"session_destroy\"",
                "reason=\"reaper\"",
                "reason=\"drain\"",
                "reason=\"rebind\"",
            ],
        ),
        (
            "ringnfs_bind_refusals_total",
            vec![
                "cause=\"limit\"",
                "cause=\"fore_required\"",
                "cause=\"bad_session\"",
            ],
        ),
        (
            "ringnfs_record_errors_total",
            vec!["cause=\"too_large\"", "cause=\"too_many_fragments\""],
        ),
        (
            "ringnfs_connections_refused_total",
            vec!["cause=\"total\"", "cause=\"per_peer\""],
        ),
    ];
    let first = ctl.get("/metrics").text();
    // The documented order, not whatever a hash map gives.
    for (family, want) in &families {
        assert_eq!(label_order(&first, family), *want, "{family} in\n{first}");
    }
    // Per-operation families: by operation number, the same on every scrape.
    let ops = label_order(&first, "ringnfs_compound_ops_total");
    assert!(ops.len() >= 4, "{ops:?}");
    let errs = label_order(&first, "ringnfs_op_errors_total");
    assert!(errs.len() >= 2, "{errs:?}");
    for _ in 0..20 {
        let again = ctl.get("/metrics").text();
        for (family, want) in &families {
            assert_eq!(label_order(&again, family), *want, "{family}");
        }
        assert_eq!(label_order(&again, "ringnfs_compound_ops_total"), ops);
        assert_eq!(label_order(&again, "ringnfs_op_errors_total"), errs);
    }
}

#[test]
fn token_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let ctl = Ctl::start("token");
    let p = ctl.server().control_token_path().unwrap();
    let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(ctl.token.len(), 64);
    // Reads on loopback need no token.
    assert_eq!(ctl.get("/api/v1/settings").status, 200);
    assert_eq!(ctl.get("/metrics").status, 200);
}

#[test]
fn metrics_move_exactly_with_binds_and_unbinds() {
    let ctl = Ctl::start("metrics");
    let m = |k: &str| ctl.metric(k);
    let fore = "ringnfs_connection_binds_total{direction=\"fore\"}";
    let both = "ringnfs_connection_binds_total{direction=\"both\"}";
    let back = "ringnfs_connection_binds_total{direction=\"back\"}";
    let disc = "ringnfs_connection_unbinds_total{reason=\"disconnect\"}";
    let destroy = "ringnfs_connection_unbinds_total{reason=\"session_destroy\"}";
    let r = ctl.get("/metrics");
    assert!(r.header("content-type").unwrap().contains("text"));
    let text = r.text();
    for name in [
        "ringnfs_connection_binds_total",
        "ringnfs_connection_unbinds_total{reason=\"explicit\"}",
        "ringnfs_connection_unbinds_total{reason=\"reaper\"}",
        "ringnfs_connection_unbinds_total{reason=\"drain\"}",
        "ringnfs_connection_unbinds_total{reason=\"rebind\"}",
        "ringnfs_bound_connections ",
        "ringnfs_connections ",
        "ringnfs_sessions ",
        "ringnfs_clients ",
        "ringnfs_connections_accepted_total ",
        "ringnfs_connections_closed_total ",
        "ringnfs_received_bytes_total ",
        "ringnfs_sent_bytes_total ",
        "ringnfs_bind_refusals_total{cause=\"fore_required\"}",
        "ringnfs_bind_refusals_total{cause=\"bad_session\"}",
    ] {
        assert!(text.contains(name), "{name} missing in\n{text}");
    }
    assert_eq!(metric_in(&text, fore), 0);
    assert_eq!(metric_in(&text, "ringnfs_sessions"), 0);

    let s = ctl.trunked(3);
    assert_eq!(m(both), 1);
    assert_eq!(m(fore), 2);
    assert_eq!(m(back), 0);
    assert_eq!(m("ringnfs_bound_connections"), 3);
    assert_eq!(m("ringnfs_connections"), 3);
    assert_eq!(m("ringnfs_sessions"), 1);
    assert_eq!(m("ringnfs_clients"), 1);
    assert!(m("ringnfs_compound_ops_total{op=\"SEQUENCE\"}") >= 3);
    assert!(m("ringnfs_received_bytes_total") > 0);
    assert!(m("ringnfs_sent_bytes_total") > 0);
    assert_eq!(m("ringnfs_connections_accepted_total"), 3);

    s.connection(2).unwrap().shutdown();
    assert!(wait_until(|| m(disc) == 1));
    assert_eq!(m("ringnfs_bound_connections"), 2);
    assert!(wait_until(|| m("ringnfs_connections_closed_total") == 1));

    // A bad session: counted as a refusal and an op error of SEQUENCE.
    let errs_before = text
        .lines()
        .any(|l| l.starts_with("ringnfs_op_errors_total{op=\"SEQUENCE\""));
    assert!(!errs_before);
    let r = ctl
        .authed()
        .request("DELETE", &format!("/api/v1/sessions/{}", hex(&s)), None)
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(m(destroy), 2);
    assert_eq!(m("ringnfs_bound_connections"), 0);
    assert_eq!(m("ringnfs_sessions"), 0);
    assert_eq!(
        s.call(0, &[], false).unwrap().status,
        status::NFS4ERR_BADSESSION
    );
    // 10052 = NFS4ERR_BADSESSION.
    assert_eq!(
        m("ringnfs_op_errors_total{op=\"SEQUENCE\",status=\"10052\"}"),
        1
    );
    // Agrees with the query API.
    let snap = ctl.server().state().metrics_snapshot();
    assert_eq!(snap.binds_total(), 3);
    assert_eq!(snap.unbinds_total(), 3);
    // No per-session label; a client label only on the busiest clients' counters (a
    // bounded number of series).
    let text = ctl.get("/metrics").text();
    assert!(!text.contains(&hex(&s)));
    assert!(
        text.lines()
            .filter(|l| l.contains("client="))
            .all(|l| l.starts_with("ringnfs_client_")),
        "{text}"
    );
    assert!(!text.contains("session="));
}

#[test]
fn drain_and_destroy_through_the_api() {
    let ctl = Ctl::start("drain");
    let s = ctl.trunked(2);
    let path = format!("/api/v1/sessions/{}", hex(&s));
    let v = ctl.get_json(&path);
    let victim = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["direction"] == "fore")
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let drain = format!("/api/v1/connections/{victim}/drain");
    // Without the token: refused, nothing happens.
    let r = ctl.anon().request("POST", &drain, None).unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(summary(&ctl.get_json(&path)).3, 2);
    let r = ctl.authed().request("POST", &drain, None).unwrap();
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(wait_until(|| summary(&ctl.get_json(&path)) == (0, 0, 1, 1)));
    assert!(wait_until(|| ctl
        .metric("ringnfs_connection_unbinds_total{reason=\"drain\"}")
        == 1));
    let r = ctl
        .authed()
        .request("POST", "/api/v1/connections/999999/drain", None)
        .unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(
        ctl.authed()
            .request("POST", "/api/v1/connections/x/drain", None)
            .unwrap()
            .status,
        400
    );

    // Destroy: without a token refused; with it the client sees BADSESSION.
    let del = |c: &HttpClient| c.request("DELETE", &path, None).unwrap();
    assert_eq!(del(&ctl.anon()).status, 401);
    assert_eq!(s.call(0, &[], false).unwrap().status, status::NFS4_OK);
    let r = del(&ctl.authed());
    assert_eq!(r.status, 200);
    assert_eq!(r.json().unwrap()["result"], "destroyed");
    assert_eq!(
        s.call(0, &[], false).unwrap().status,
        status::NFS4ERR_BADSESSION
    );
    assert_eq!(del(&ctl.authed()).status, 404);
    assert_eq!(ctl.get(&path).status, 404);
}

/// Sum over the client's slots of the sequence ids used so far: one per call that the
/// server processed (retries of the same request share their slot's sequence id).
fn slot_advances(s: &Session) -> u64 {
    (0..s.slot_count() as u32)
        .map(|slot| s.next_seqid(slot).unwrap() as u64 - 1)
        .sum()
}

/// Requests served on connection `id` of `s`, as the session detail shows.
fn conn_requests(ctl: &Ctl, s: &Session, id: u64) -> u64 {
    let v = ctl.get_json(&format!("/api/v1/sessions/{}", hex(s)));
    v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no connection {id} in {v}"))["requests"]
        .as_u64()
        .unwrap()
}

const BLOCK: usize = 256;

/// The bytes written at block `i`: distinct for every block.
fn block(i: usize) -> Vec<u8> {
    let tag = (i as u32).to_be_bytes();
    (0..BLOCK).map(|k| tag[k % 4] ^ (k as u8)).collect()
}

/// WRITE block `i` of `f` (FILE_SYNC) through `call_retrying`, with the reply cached so
/// a retry of an executed request is answered from the cache, not executed again.
fn write_block(s: &Session, f: &OpenFile, i: usize) -> Result<CompoundReply, String> {
    let r = s
        .call_retrying(
            &[
                Op::PutFh(f.fh.clone()),
                Op::Write {
                    stateid: f.stateid,
                    offset: (i * BLOCK) as u64,
                    stable: stable::FILE_SYNC,
                    data: block(i),
                },
            ],
            true,
        )
        .map_err(|e| format!("block {i}: {e:?}"))?;
    match r.write() {
        Ok(w) if w.count as usize == BLOCK => Ok(r),
        other => Err(format!("block {i}: {other:?} in {r:?}")),
    }
}

#[test]
fn draining_a_connection_through_the_api_under_load_loses_no_request() {
    const BLOCKS: usize = 3000;
    const THREADS: usize = 3;
    let ctl = Ctl::start("drain-load");
    let s = ctl.trunked(3);
    let files = Files::new(s.clone());
    let root = files.root_fh().unwrap();
    let (_, f) = files.create(&root, b"blocks", 0o644).unwrap();
    let ids = ctl.conn_ids(&s);
    let drain_metric = "ringnfs_connection_unbinds_total{reason=\"drain\"}";
    let write_ops = "ringnfs_compound_ops_total{op=\"WRITE\"}";
    let drains_before = ctl.metric(drain_metric);
    let writes_before = ctl.metric_or_zero(write_ops);
    let advances_before = slot_advances(&s);
    let requests_before = conn_requests(&ctl, &s, ids[1]);
    let sequence_ops = "ringnfs_compound_ops_total{op=\"SEQUENCE\"}";
    let sequences_before = ctl.metric(sequence_ops);

    // Three threads write the blocks, each block once, pipelined over the connections.
    let next = Arc::new(AtomicU64::new(0));
    let completed = Arc::new(AtomicU64::new(0));
    let load: Vec<_> = (0..THREADS)
        .map(|_| {
            let (s, f, next, completed) = (s.clone(), f.clone(), next.clone(), completed.clone());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= BLOCKS {
                        return failures;
                    }
                    match write_block(&s, &f, i) {
                        Ok(_) => {
                            completed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => failures.push(e),
                    }
                }
            })
        })
        .collect();

    // Drain the middle connection through the API once the load is under way (a busy
    // wait: the calls are fast, a sleeping poll could miss the load altogether).
    let end = Instant::now() + WAIT;
    while completed.load(Ordering::Relaxed) < 300 && Instant::now() < end {
        std::thread::yield_now();
    }
    let victim = ids[1];
    assert!(
        conn_requests(&ctl, &s, victim) > requests_before,
        "the connection to drain carries load"
    );
    let r = ctl
        .authed()
        .request("POST", &format!("/api/v1/connections/{victim}/drain"), None)
        .unwrap();
    assert_eq!(r.status, 202, "{}", r.text());
    let at_drain = completed.load(Ordering::Relaxed);

    let failures: Vec<String> = load
        .into_iter()
        .flat_map(|t| t.join().expect("load thread"))
        .collect();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert_eq!(completed.load(Ordering::Relaxed), BLOCKS as u64);
    let sequences = ctl.metric(sequence_ops) - sequences_before;

    // The drained connection leaves the session and the server; the others stay.
    let path = format!("/api/v1/sessions/{}", hex(&s));
    assert!(wait_until(|| summary(&ctl.get_json(&path)).3 == 2));
    let v = ctl.get_json(&path);
    let mut left: Vec<u64> = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    left.sort();
    let mut want = vec![ids[0], ids[2]];
    want.sort();
    assert_eq!(left, want, "{v}");
    assert!(wait_until(|| ctl
        .get_json("/api/v1/connections")
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["id"] != victim)));
    assert!(wait_until(|| s.connection(1).unwrap().is_closed()));
    assert_eq!(ctl.metric(drain_metric), drains_before + 1);

    // Exactly once: every WRITE ran once on the server (retries of executed requests
    // were answered from the reply cache) and every call advanced its slot once.
    assert_eq!(ctl.metric(write_ops) - writes_before, BLOCKS as u64);
    assert_eq!(slot_advances(&s) - advances_before, BLOCKS as u64);
    // And the data is all there, each block where it belongs.
    let data = files.read_all(&f).unwrap();
    assert_eq!(data.len(), BLOCKS * BLOCK);
    for (i, b) in data.chunks(BLOCK).enumerate() {
        assert_eq!(b, block(i).as_slice(), "block {i}");
    }
    println!(
        "drained after {at_drain} of {BLOCKS} writes; SEQUENCE ops processed during the \
         load: {} (any excess over the writes were retries answered from the reply cache)",
        sequences
    );
    files.close(f).unwrap();
}

#[test]
fn force_destroyed_session_is_seen_as_badsession_and_recovered_with_a_new_session() {
    let ctl = Ctl::start("recover");
    let s = ctl.trunked(2);
    let files = Files::new(s.clone());
    let root = files.root_fh().unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let fh = files.write_file(&root, b"kept", &data).unwrap();
    let open = files
        .open_fh(&fh, share::ACCESS_READ, share::DENY_NONE)
        .unwrap();
    let destroy = "ringnfs_connection_unbinds_total{reason=\"session_destroy\"}";
    let destroyed_before = ctl.metric(destroy);
    let old = hex(&s);

    let r = ctl
        .authed()
        .request("DELETE", &format!("/api/v1/sessions/{old}"), None)
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    // Both of its connections were unbound.
    assert_eq!(ctl.metric(destroy), destroyed_before + 2);
    for i in 0..2 {
        let r = s.call(i, &[Op::PutRootFh], false).unwrap();
        assert_eq!(r.status, status::NFS4ERR_BADSESSION, "connection {i}");
    }
    let e = files.getattr(&fh).unwrap_err();
    assert_eq!(e.nfs_status(), Some(status::NFS4ERR_BADSESSION));

    // Recovery: CREATE_SESSION for the same client, on the same connections.
    let n = s.recover().expect("a new session");
    assert_eq!(n.clientid(), s.clientid());
    assert_ne!(n.sessionid(), s.sessionid());
    assert_eq!(n.connection_count(), 2);
    let new_files = Files::new(n.clone());
    // The file handle and the open stateid from before still work, on both connections.
    for i in 0..2 {
        let pinned = new_files.pinned(i);
        assert_eq!(pinned.getattr(&fh).unwrap().size, Some(data.len() as u64));
        assert_eq!(pinned.read_all(&open).unwrap(), data, "connection {i}");
    }
    assert_eq!(new_files.read_file(&root, b"kept").unwrap(), data);
    new_files.close(open).unwrap();

    // The API shows the new session and not the old one.
    let sessions = ctl.get_json("/api/v1/sessions");
    let listed: Vec<&str> = sessions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![hex(&n).as_str()]);
    assert_eq!(ctl.get(&format!("/api/v1/sessions/{old}")).status, 404);
    let v = ctl.get_json(&format!("/api/v1/sessions/{}", hex(&n)));
    // CREATE_SESSION bound connection 0 with the back channel, a SEQUENCE bound 1.
    assert_eq!(summary(&v), (1, 0, 1, 2), "{v}");
    let c = ctl.get_json(&format!("/api/v1/clients/{}", s.clientid()));
    assert_eq!(c["sessions"], json!([hex(&n)]));
    assert_eq!(ctl.metric("ringnfs_sessions"), 1);
    assert_eq!(ctl.metric("ringnfs_clients"), 1);
    assert_eq!(ctl.metric("ringnfs_bound_connections"), 2);
    assert_eq!(ctl.metric(destroy), destroyed_before + 2);
}

#[test]
fn openapi_document_describes_the_api() {
    let ctl = Ctl::start("openapi");
    let v = ctl.get_json("/api/v1/openapi.json");
    assert!(v["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/api/v1/clients",
        "/api/v1/clients/{id}",
        "/api/v1/sessions",
        "/api/v1/sessions/{id}",
        "/api/v1/connections",
        "/api/v1/connections/{id}/drain",
        "/api/v1/settings",
        "/api/v1/settings/persisted",
        "/api/v1/settings/persisted/{key}",
    ] {
        assert!(v["paths"][p].is_object(), "{p} missing");
    }
    assert!(v["paths"]["/api/v1/sessions/{id}"]["delete"].is_object());
    assert!(v["paths"]["/api/v1/settings"]["patch"].is_object());
    assert!(v["components"]["schemas"]["SessionDto"].is_object());
    assert!(v["components"]["securitySchemes"]["bearer"].is_object());
}

// ---- the OpenAPI document against the server ------------------------------------------

/// What kind of object a parameter names, and values of it for the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdKind {
    Client,
    Session,
    Conn,
    /// A live setting's name (`/settings/persisted/{key}`).
    Setting,
    /// An export's id (`/exports/{id}`).
    Export,
}

/// Real objects to put into the requests.
struct RealIds {
    client: u64,
    session: String,
    conn: u64,
    export: u32,
}

impl IdKind {
    /// From a path parameter's place (the segment before `{name}`) or a query
    /// parameter's name. A parameter the walk does not know fails the test: extend it.
    fn of(path: &str, name: &str, location: &str) -> IdKind {
        let placeholder = format!("{{{name}}}");
        let key = match location {
            "path" => path
                .split('/')
                .take_while(|seg| *seg != placeholder)
                .last()
                .unwrap_or(""),
            "query" => name,
            other => panic!("{path}: parameters in {other} are not handled by the walk"),
        };
        match key {
            "clients" | "client" => IdKind::Client,
            "sessions" | "session" => IdKind::Session,
            "connections" | "connection" => IdKind::Conn,
            "persisted" => IdKind::Setting,
            "exports" => IdKind::Export,
            _ => panic!("{path}: no real value known for {location} parameter {name:?}"),
        }
    }

    fn real(self, ids: &RealIds) -> String {
        match self {
            IdKind::Client => ids.client.to_string(),
            IdKind::Session => ids.session.clone(),
            IdKind::Conn => ids.conn.to_string(),
            IdKind::Setting => "lease_time".into(),
            IdKind::Export => ids.export.to_string(),
        }
    }

    fn malformed(self) -> &'static str {
        match self {
            IdKind::Client => "not-a-client",
            IdKind::Session => "zz",
            IdKind::Conn => "x",
            IdKind::Setting => "lease-time",
            IdKind::Export => "x",
        }
    }

    /// Well formed, but naming nothing.
    fn unknown(self) -> String {
        match self {
            IdKind::Client => "12345".into(),
            IdKind::Session => "0".repeat(32),
            IdKind::Conn => u64::MAX.to_string(),
            IdKind::Setting => "no_such_setting".into(),
            IdKind::Export => "12345".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Success,
    ClientError,
    Unauthorized,
}

/// One request of the walk.
#[derive(Debug)]
struct Probe {
    what: String,
    path: String,
    query: Vec<(String, String)>,
    token: Option<String>,
    body: Option<Vec<u8>>,
    expect: Expect,
}

impl Probe {
    fn url(&self) -> String {
        let q: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        match q.is_empty() {
            true => self.path.clone(),
            false => format!("{}?{}", self.path, q.join("&")),
        }
    }
}

/// An operation of the document: its path template, method and JSON object.
struct Operation<'a> {
    path: String,
    method: String,
    op: &'a Value,
}

impl Operation<'_> {
    fn params(&self, location: &str) -> Vec<(String, bool)> {
        self.op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == location)
                    .map(|p| {
                        let name = p["name"].as_str().expect("parameter name").to_string();
                        (name, p["required"] == true)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The path with each path parameter replaced by `value(kind)`.
    fn fill(&self, value: impl Fn(IdKind) -> String) -> String {
        let mut p = self.path.clone();
        for (name, _) in self.params("path") {
            let kind = IdKind::of(&self.path, &name, "path");
            p = p.replace(&format!("{{{name}}}"), &value(kind));
        }
        assert!(!p.contains('{'), "{}: undeclared path parameter", self.path);
        p
    }

    /// Security: None (no requirement), Some(false) optional, Some(true) required.
    fn token_required(&self, doc: &Value) -> Option<bool> {
        let sec = self.op.get("security").or_else(|| doc.get("security"))?;
        let reqs = sec.as_array().expect("security is an array");
        if reqs.is_empty() {
            return None;
        }
        Some(
            !reqs
                .iter()
                .any(|r| r.as_object().is_some_and(|o| o.is_empty())),
        )
    }

    fn request_schema(&self) -> Option<&Value> {
        self.op
            .get("requestBody")
            .map(|b| &b["content"]["application/json"]["schema"])
    }

    /// The rank of its method: reads first, changes next, destructive ones last.
    fn rank(&self) -> u8 {
        match self.method.as_str() {
            "get" | "head" | "options" => 0,
            "patch" | "put" => 1,
            "post" => 2,
            "delete" => 3,
            other => panic!("method {other} is not handled by the walk"),
        }
    }
}

/// A valid body for a change: the current values (GET on the same path), reduced to the
/// properties the request schema declares.
fn current_values_body(ctl: &Ctl, doc: &Value, o: &Operation, schema: &Value) -> Vec<u8> {
    let current = ctl.get_json(&o.path);
    let declared = openapi_check::property_names(doc, schema);
    let body: serde_json::Map<String, Value> = current
        .as_object()
        .unwrap_or_else(|| panic!("{} {}: no valid body known", o.method, o.path))
        .iter()
        .filter(|(k, _)| declared.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert!(!body.is_empty(), "{} {}: nothing to send", o.method, o.path);
    let body = Value::Object(body);
    let errs = openapi_check::check(doc, schema, &body);
    assert!(
        errs.is_empty(),
        "{} {}: the request schema refuses the current values: {errs:?}",
        o.method,
        o.path
    );
    body.to_string().into_bytes()
}

/// The requests for one operation: the failing ones first, the valid ones last.
fn probes(ctl: &Ctl, doc: &Value, o: &Operation, ids: &RealIds) -> Vec<Probe> {
    let token_required = o.token_required(doc);
    let valid_token = token_required.is_some_and(|r| r).then(|| ctl.token.clone());
    let body = match (o.path.as_str(), o.method.as_str()) {
        // A new export (the pseudo root holds the walk's own export and this one).
        ("/api/v1/exports", "post") => {
            Some(br#"{"pseudo": "/walk-b", "backend": "memory"}"#.to_vec())
        }
        // An export's description as it is (the view nests it under `export`).
        ("/api/v1/exports/{id}", "put") => Some(
            ctl.get_json(&format!("/api/v1/exports/{}", ids.export))["export"]
                .to_string()
                .into_bytes(),
        ),
        _ => o
            .request_schema()
            .map(|schema| current_values_body(ctl, doc, o, schema)),
    };
    let real_path = o.fill(|k| k.real(ids));
    let probe = |what: String, path: String, expect: Expect| Probe {
        what,
        path,
        query: Vec::new(),
        token: valid_token.clone(),
        body: body.clone(),
        expect,
    };
    let mut v = Vec::new();
    if token_required == Some(true) {
        let mut p = probe(
            "without a token".into(),
            real_path.clone(),
            Expect::Unauthorized,
        );
        p.token = None;
        v.push(p);
        let mut p = probe(
            "with a wrong token".into(),
            real_path.clone(),
            Expect::Unauthorized,
        );
        p.token = Some("0".repeat(64));
        v.push(p);
    }
    if token_required == Some(false) {
        // Optional on loopback: the token is accepted too.
        let mut p = probe("with the token".into(), real_path.clone(), Expect::Success);
        p.token = Some(ctl.token.clone());
        v.push(p);
    }
    for (name, _) in o.params("path") {
        let kind = IdKind::of(&o.path, &name, "path");
        let with = |value: &str| {
            o.fill(|k| match k == kind {
                true => value.to_string(),
                false => k.real(ids),
            })
        };
        for (what, value) in [
            ("malformed", kind.malformed().to_string()),
            ("not UTF-8", "%FF%FE".to_string()),
            ("unknown", kind.unknown()),
        ] {
            v.push(probe(
                format!("{what} {name}"),
                with(&value),
                Expect::ClientError,
            ));
        }
    }
    for (name, _) in o.params("query") {
        let kind = IdKind::of(&o.path, &name, "query");
        let mut p = probe(
            format!("malformed {name}"),
            real_path.clone(),
            Expect::ClientError,
        );
        p.query = vec![(name.clone(), kind.malformed().into())];
        v.push(p);
        let mut p = probe(
            format!("repeated {name}"),
            real_path.clone(),
            Expect::ClientError,
        );
        p.query = vec![
            (name.clone(), kind.real(ids)),
            (name.clone(), kind.real(ids)),
        ];
        v.push(p);
        let mut p = probe(
            format!("unknown {name}"),
            real_path.clone(),
            Expect::Success,
        );
        p.query = vec![(name.clone(), kind.unknown())];
        v.push(p);
        let mut p = probe(format!("real {name}"), real_path.clone(), Expect::Success);
        p.query = vec![(name.clone(), kind.real(ids))];
        v.push(p);
    }
    if body.is_some() {
        for (what, bad) in [("malformed body", "{"), ("body of the wrong type", "[]")] {
            let mut p = probe(what.into(), real_path.clone(), Expect::ClientError);
            p.body = Some(bad.as_bytes().to_vec());
            v.push(p);
        }
        if o.request_schema()
            .is_some_and(|s| openapi_check::forbids_unknown_properties(doc, s))
        {
            let mut p = probe(
                "unknown body field".into(),
                real_path.clone(),
                Expect::ClientError,
            );
            p.body = Some(br#"{"no_such_field": 1}"#.to_vec());
            v.push(p);
        }
    }
    v.push(probe("valid".into(), real_path, Expect::Success));
    v
}

/// Send `p` and check the answer against the operation's documented responses; returns
/// the status.
fn send_and_check(ctl: &Ctl, doc: &Value, o: &Operation, p: &Probe) -> u16 {
    let label = format!("{} {} ({})", o.method.to_uppercase(), p.url(), p.what);
    let r = HttpClient::new(ctl.control, p.token.clone())
        .request(&o.method.to_uppercase(), &p.url(), p.body.as_deref())
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let responses = o.op["responses"].as_object().expect("responses");
    let documented = responses
        .get(&r.status.to_string())
        .or_else(|| responses.get("default"))
        .unwrap_or_else(|| {
            panic!(
                "{label}: status {} is not documented (documented: {:?}): {}",
                r.status,
                responses.keys().collect::<Vec<_>>(),
                r.text()
            )
        });
    let ok = match p.expect {
        Expect::Success => (200..300).contains(&r.status),
        Expect::ClientError => (400..500).contains(&r.status),
        Expect::Unauthorized => r.status == 401,
    };
    assert!(
        ok,
        "{label}: expected {:?}, got {}: {}",
        p.expect,
        r.status,
        r.text()
    );
    let Some(content) = documented.get("content").and_then(Value::as_object) else {
        assert!(
            r.body.is_empty(),
            "{label}: a body where none is documented"
        );
        return r.status;
    };
    let media_type = |ct: &str| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    let got = media_type(r.header("content-type").unwrap_or(""));
    let (_, media) = content
        .iter()
        .find(|(k, _)| media_type(k) == got)
        .unwrap_or_else(|| {
            panic!(
                "{label}: content type {got:?} is not documented ({:?})",
                content.keys().collect::<Vec<_>>()
            )
        });
    let value = if got == "application/json" {
        r.json()
            .unwrap_or_else(|e| panic!("{label}: not JSON ({e}): {}", r.text()))
    } else {
        Value::String(r.text())
    };
    let errs = openapi_check::check(doc, &media["schema"], &value);
    assert!(
        errs.is_empty(),
        "{label}: the body does not match the document: {errs:#?}\n{value}"
    );
    r.status
}

/// Checks of the document's structure that parsing does not make.
fn check_structure(doc: &Value) {
    for r in openapi_check::all_refs(doc) {
        openapi_check::resolve(doc, &r);
    }
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    let mut op_ids = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        assert!(path.starts_with('/'), "{path}");
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            op_ids.push(id.to_string());
            let responses = op["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{method} {path}: no responses");
            for (status, r) in responses {
                assert!(
                    status == "default" || status.parse::<u16>().is_ok(),
                    "{status}"
                );
                assert!(
                    r["description"].is_string(),
                    "{method} {path} {status}: no description"
                );
            }
            let o = Operation {
                path: path.clone(),
                method: method.clone(),
                op,
            };
            // Every {param} of the path is a required path parameter, and back.
            let declared = o.params("path");
            let in_path = path.matches('{').count();
            assert_eq!(declared.len(), in_path, "{method} {path}: path parameters");
            for (name, required) in declared {
                assert!(
                    path.contains(&format!("{{{name}}}")),
                    "{method} {path}: {name}"
                );
                assert!(
                    required,
                    "{method} {path}: path parameter {name} not required"
                );
            }
            for req in op
                .get("security")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for scheme in req.as_object().unwrap().keys() {
                    assert!(
                        schemes.contains_key(scheme),
                        "{method} {path}: scheme {scheme}"
                    );
                }
            }
        }
    }
    let n = op_ids.len();
    op_ids.sort();
    op_ids.dedup();
    assert_eq!(op_ids.len(), n, "operationIds are unique");
}

#[test]
fn openapi_document_validates_and_matches_the_server() {
    // A cluster node: every endpoint, the cluster's too, has something to answer.
    let Some(ctl) = Ctl::start_node("openapi-walk") else {
        return;
    };
    let text = ctl.get("/api/v1/openapi.json").text();
    // Structure: parses as an OpenAPI 3.1 document, plus what parsing does not check.
    let spec = oas3::from_json(&text).expect("an OpenAPI 3.1 document");
    spec.validate_version()
        .expect("a supported OpenAPI version");
    let doc: Value = serde_json::from_str(&text).unwrap();
    check_structure(&doc);

    // Real objects: a session to destroy and one whose connection is drained.
    let doomed = ctl.trunked(2);
    let kept = ctl.trunked(2);
    // The server's one export moves from "/" to a pseudo path of its own, so that the
    // walk's POST can add another beside it.
    let first = ctl.get_json("/api/v1/exports")[0].clone();
    let mut moved = first["export"].clone();
    moved["pseudo"] = "/walk-a".into();
    let r = ctl
        .authed()
        .request(
            "PUT",
            &format!("/api/v1/exports/{}", first["id"]),
            Some(moved.to_string().as_bytes()),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let ids = RealIds {
        client: doomed.clientid(),
        session: hex(&doomed),
        conn: ctl.conn_ids(&kept)[1],
        export: r.json().unwrap()["id"].as_u64().unwrap() as u32,
    };
    let settings_before = ctl.get_json("/api/v1/settings");

    let mut ops: Vec<Operation> = spec
        .operations()
        .map(|(path, method, _)| {
            let method = method.as_str().to_ascii_lowercase();
            let op = &doc["paths"][&path][&method];
            assert!(op.is_object(), "{method} {path}");
            Operation { path, method, op }
        })
        .collect();
    assert!(!ops.is_empty());
    ops.sort_by(|a, b| (a.rank(), &a.path).cmp(&(b.rank(), &b.path)));
    // Every request is checked; the mismatches are reported all together at the end.
    let (mut walked, mut mismatches) = (Vec::new(), Vec::new());
    for o in &ops {
        for p in probes(&ctl, &doc, o, &ids) {
            let label = format!("{} {} ({})", o.method, p.url(), p.what);
            let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                send_and_check(&ctl, &doc, o, &p)
            }));
            match checked {
                Ok(status) => walked.push(format!("{label}: {status}")),
                Err(_) => mismatches.push(label),
            }
        }
    }
    println!(
        "{} operations, {} requests:\n{}",
        ops.len(),
        walked.len(),
        walked.join("\n")
    );
    assert!(
        mismatches.is_empty(),
        "mismatches (see the panics above): {mismatches:#?}"
    );

    // The valid changes did what they say; the PATCH with the current values changed nothing.
    assert_eq!(ctl.get_json("/api/v1/settings"), settings_before);
    assert_eq!(
        ctl.get(&format!("/api/v1/sessions/{}", ids.session)).status,
        404
    );
    assert!(wait_until(|| kept.connection(1).unwrap().is_closed()));
    assert_eq!(
        doomed.call(0, &[], false).unwrap().status,
        status::NFS4ERR_BADSESSION
    );
}

#[test]
fn openapi_checker_finds_mismatches() {
    let doc = json!({"components": {"schemas": {
        "Inner": {"type": "object", "required": ["n"], "properties": {
            "n": {"type": "integer", "format": "uint32", "minimum": 0},
            "s": {"type": ["string", "null"]}}},
        "Outer": {"allOf": [{"$ref": "#/components/schemas/Inner"},
            {"type": "object", "required": ["list"], "properties": {
                "list": {"type": "array", "items": {"$ref": "#/components/schemas/Inner"}}}}]},
        "Closed": {"type": "object", "properties": {"a": {"type": "boolean"}},
            "additionalProperties": false}
    }}});
    let outer = json!({"$ref": "#/components/schemas/Outer"});
    let check = |schema: &Value, v: Value| openapi_check::check(&doc, schema, &v);
    assert!(
        check(
            &outer,
            json!({"n": 1, "s": null, "list": [{"n": 2, "s": "x"}]})
        )
        .is_empty()
    );
    assert_eq!(check(&outer, json!({"n": 1})).len(), 1, "list missing");
    assert_eq!(
        check(&outer, json!({"n": -1, "list": []})).len(),
        2,
        "minimum and format"
    );
    assert_eq!(check(&outer, json!({"n": 1, "list": [{"s": 3}]})).len(), 2);
    assert_eq!(
        check(&outer, json!({"n": 1u64 << 33, "list": []})).len(),
        1,
        "uint32"
    );
    assert_eq!(
        check(&outer, json!({"n": 1, "list": [], "extra": 1})).len(),
        1,
        "undocumented"
    );
    assert_eq!(
        check(&outer, json!({"n": 1, "list": [{"n": 1, "x": 0}]})).len(),
        1
    );
    assert!(!check(&outer, json!([1])).is_empty());
    let closed = json!({"$ref": "#/components/schemas/Closed"});
    assert!(check(&closed, json!({"a": true})).is_empty());
    assert_eq!(check(&closed, json!({"a": true, "b": 1})).len(), 1);
    assert!(openapi_check::forbids_unknown_properties(&doc, &closed));
    assert!(!openapi_check::forbids_unknown_properties(&doc, &outer));
    let unknown = std::panic::catch_unwind(|| check(&json!({"patternProperties": {}}), json!({})));
    assert!(unknown.is_err(), "an unknown keyword is not skipped");
}

#[test]
fn control_plane_off_by_default_in_server_config() {
    let server = Server::start(ServerConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        threads: 1,
        pin_cores: false,
        backend: BackendKind::Memory,
        ..ServerConfig::default()
    })
    .unwrap();
    assert!(server.control_addr().is_none());
    server.shutdown();
    server.join().unwrap();
}

// ---- ringnfs ctl ---------------------------------------------------------------------------

fn ctl_cmd(ctl_addr: SocketAddr, state: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ringnfs"))
        .arg("ctl")
        .arg("--addr")
        .arg(ctl_addr.to_string())
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()
        .expect("runs ringnfs ctl")
}

/// A client's operations and bytes: exact in REST (each SEQUENCE-only COMPOUND is one
/// operation), and in /metrics for the busiest clients; `ctl exports` lists the export
/// with its counters.
#[test]
fn per_client_and_per_export_counters() {
    let ctl = Ctl::start("traffic");
    // SEQUENCE + RECLAIM_COMPLETE at setup, then two SEQUENCE-only COMPOUNDs.
    let s = ctl.trunked(2);
    for _ in 0..5 {
        s.call(0, &[], false).unwrap();
    }
    let id = ringnfs::state::ids::client_id_str(s.clientid());
    let clients = ctl.get_json("/api/v1/clients");
    let c = clients
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id_str"] == id.as_str())
        .unwrap();
    assert_eq!(c["ops"], 9, "{c}");
    let (bytes_in, bytes_out) = (
        c["bytes_in"].as_u64().unwrap(),
        c["bytes_out"].as_u64().unwrap(),
    );
    assert!(bytes_in > 8 * 40 && bytes_out > 8 * 40, "{c}");
    let text = ctl.get("/metrics").text();
    assert_eq!(
        metric_in(
            &text,
            &format!("ringnfs_client_ops_total{{client=\"{id}\"}}")
        ),
        9
    );
    assert_eq!(
        metric_in(
            &text,
            &format!("ringnfs_client_received_bytes_total{{client=\"{id}\"}}")
        ),
        bytes_in
    );
    assert!(
        text.contains("ringnfs_export_ops_total{export=\"/\"}"),
        "{text}"
    );
    // The first COMPOUND of a core is always timed: the server's first, EXCHANGE_ID.
    assert!(
        metric_in(
            &text,
            "ringnfs_compound_duration_seconds_bucket{le=\"+Inf\",op=\"EXCHANGE_ID\"}"
        ) >= 1
    );
    let out = ctl_cmd(ctl.control, &ctl.dir.join("state"), &["exports"]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("PSEUDO") && table.contains("WRITTEN"),
        "{table}"
    );
    let out = ctl_cmd(ctl.control, &ctl.dir.join("state"), &["clients"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("BYTES_IN"));
}

#[test]
fn cli_smoke() {
    let ctl = Ctl::start("cli");
    let state = ctl.dir.join("state");
    let s = ctl.trunked(2);

    let out = ctl_cmd(ctl.control, &state, &["sessions", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["id"], hex(&s));
    assert_eq!(v[0]["summary"]["total"], 2);

    let out = ctl_cmd(ctl.control, &state, &["session", &hex(&s)]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("total 2"), "{table}");
    assert!(table.contains("DIRECTION"), "{table}");

    let out = ctl_cmd(ctl.control, &state, &["clients"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{:#018x}", s.clientid())));

    let out = ctl_cmd(
        ctl.control,
        &state,
        &["settings", "set", "--max-connections-per-session", "5000"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("between 0 and 1024"), "{err}");
    assert_eq!(
        ctl.server().state().settings.max_connections_per_session(),
        16
    );

    let out = ctl_cmd(
        ctl.control,
        &state,
        &[
            "--json",
            "settings",
            "set",
            "--max-connections-per-session",
            "4",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        ctl.server().state().settings.max_connections_per_session(),
        4
    );

    // A wrong token file: refused, non-zero.
    let bad = ctl.dir.join("bad-token");
    std::fs::write(&bad, "nope\n").unwrap();
    let out = ctl_cmd(
        ctl.control,
        &state,
        &[
            "--token-file",
            bad.to_str().unwrap(),
            "destroy-session",
            &hex(&s),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));

    let out = ctl_cmd(ctl.control, &state, &["destroy-session", &hex(&s)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        s.call(0, &[], false).unwrap().status,
        status::NFS4ERR_BADSESSION
    );

    // Server down: a clear message and exit code 3.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = free.local_addr().unwrap();
    drop(free);
    let out = ctl_cmd(down, &state, &["sessions"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the control plane"));
}

/// A child process killed when dropped (also when a test fails).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `ringnfs serve` with `args`; returns the child and the stderr lines up to the
/// "serving" line.
fn spawn_serve(args: &[&str]) -> (Killed, Vec<String>) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ringnfs"))
        .arg("serve")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let child = Killed(child);
    let mut lines = Vec::new();
    for l in BufReader::new(stderr).lines().map_while(Result::ok) {
        let done = l.contains("ringnfs serving") || l.starts_with("ringnfs: ");
        lines.push(l);
        if done {
            break;
        }
    }
    (child, lines)
}

#[test]
fn serve_control_options() {
    let dir = temp_dir("serve");
    let state = dir.join("state");
    let base = [
        "--listen",
        "127.0.0.1:0",
        "--backend",
        "memory",
        "--threads",
        "1",
        "--no-pin",
        "--state-dir",
        state.to_str().unwrap(),
    ];
    // The command-line value is the start value; the token file is created.
    let mut args = base.to_vec();
    args.extend([
        "--control",
        "127.0.0.1:0",
        "--max-connections-per-session",
        "5",
    ]);
    let (child, lines) = spawn_serve(&args);
    let addr =
        logged_control_addr(&lines).unwrap_or_else(|| panic!("no control address in {lines:?}"));
    let token = std::fs::read_to_string(state.join("control-token")).unwrap();
    assert!(
        lines.iter().all(|l| !l.contains(token.trim())),
        "the token is never logged"
    );
    let out = ctl_cmd(addr, &state, &["--json", "settings"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["max_connections_per_session"], 5);
    drop(child);

    // An explicit control address that is taken: the server refuses to start.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let mut args = base.to_vec();
    args.extend(["--control", &taken_addr]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringnfs"))
        .arg("serve")
        .args(&args)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("control"), "{err}");

    // Off: no control plane.
    let mut args = base.to_vec();
    args.extend(["--control", "off"]);
    let (child, lines) = spawn_serve(&args);
    assert!(
        lines.iter().any(|l| l.contains("ringnfs serving")),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| !l.contains("control plane listening")));
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `ringnfs ctl --json ARGS` against `addr`: its JSON answer (it must succeed).
fn ctl_json(addr: SocketAddr, state: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend(args);
    let out = ctl_cmd(addr, state, &all);
    assert!(
        out.status.success(),
        "ctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The WARN line about `key` overriding a persisted value.
fn override_warning<'a>(lines: &'a [String], key: &str) -> Option<&'a String> {
    lines
        .iter()
        .find(|l| l.contains("WARN") && l.contains(&format!("key={key} ")))
}

#[test]
fn explicit_start_values_win_over_persisted_settings_and_reset_drops_them() {
    let dir = temp_dir("precedence");
    let state = dir.join("state");
    let base = [
        "--listen",
        "127.0.0.1:0",
        "--backend",
        "memory",
        "--threads",
        "1",
        "--no-pin",
        "--control",
        "127.0.0.1:0",
        "--state-dir",
        state.to_str().unwrap(),
    ];
    let settings_file = state.join("settings.toml");

    // Persist a lease time and a connection limit.
    let (child, lines) = spawn_serve(&base);
    let addr = logged_control_addr(&lines).unwrap_or_else(|| panic!("{lines:?}"));
    let v = ctl_json(
        addr,
        &state,
        &[
            "settings",
            "set",
            "--lease-time",
            "60",
            "--max-connections-per-session",
            "3",
        ],
    );
    assert_eq!(
        (
            v["lease_time"].as_u64(),
            v["max_connections_per_session"].as_u64()
        ),
        (Some(60), Some(3))
    );
    drop(child);
    assert!(settings_file.exists());

    // A restart with --lease-time 30: the command line wins and says so; the persisted
    // limit (not given at start) is used.
    let mut args = base.to_vec();
    args.extend(["--lease-time", "30"]);
    let (child, lines) = spawn_serve(&args);
    let addr = logged_control_addr(&lines).unwrap_or_else(|| panic!("{lines:?}"));
    let v = ctl_json(addr, &state, &["settings"]);
    assert_eq!(v["lease_time"], 30, "{v}");
    assert_eq!(v["max_connections_per_session"], 3, "{v}");
    let warn = override_warning(&lines, "lease_time")
        .unwrap_or_else(|| panic!("no warning about lease_time in {lines:?}"));
    for want in [
        "value=30",
        "from=\"the command line\"",
        "persisted=60",
        "settings.toml",
    ] {
        assert!(warn.contains(want), "{want} missing in {warn}");
    }
    assert!(override_warning(&lines, "max_connections_per_session").is_none());
    drop(child);

    // The same from a config file: its value wins, and the warning names the file.
    let config = dir.join("ringnfs.toml");
    std::fs::write(&config, "lease_time = 45\n").unwrap();
    let mut args = base.to_vec();
    args.extend(["--config", config.to_str().unwrap()]);
    let (child, lines) = spawn_serve(&args);
    let addr = logged_control_addr(&lines).unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(ctl_json(addr, &state, &["settings"])["lease_time"], 45);
    let warn = override_warning(&lines, "lease_time").unwrap_or_else(|| panic!("{lines:?}"));
    assert!(
        warn.contains(&format!("from=\"the config file {}\"", config.display())),
        "{warn}"
    );

    // Reset one key (flag spelling accepted): it leaves the file, the live value goes
    // back to the start value; the other key stays.
    let v = ctl_json(addr, &state, &["settings", "reset", "lease-time"]);
    assert_eq!(v["lease_time"], 45, "{v}");
    assert_eq!(v["max_connections_per_session"], 3, "{v}");
    let text = std::fs::read_to_string(&settings_file).unwrap();
    assert!(!text.contains("lease_time"), "{text}");
    assert!(text.contains("max_connections_per_session = 3"), "{text}");
    // An unknown key: refused, nothing changed.
    let out = ctl_cmd(addr, &state, &["settings", "reset", "lease"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown setting"));
    // Reset all: the limit goes back to the start value (the default) and the file goes.
    let v = ctl_json(addr, &state, &["settings", "reset"]);
    assert_eq!(v["max_connections_per_session"], 16, "{v}");
    assert!(!settings_file.exists());
    drop(child);

    // A plain restart: the defaults, no warning.
    let (child, lines) = spawn_serve(&base);
    let addr = logged_control_addr(&lines).unwrap_or_else(|| panic!("{lines:?}"));
    let v = ctl_json(addr, &state, &["settings"]);
    assert_eq!(
        (
            v["lease_time"].as_u64(),
            v["max_connections_per_session"].as_u64()
        ),
        (Some(90), Some(16))
    );
    assert!(lines.iter().all(|l| !l.contains("WARN")), "{lines:?}");
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_help_states_the_settings_rule() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringnfs"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("settings.toml"), "{help}");
    assert!(help.contains("ctl settings reset"), "{help}");
    assert!(help.contains("wins"), "{help}");
}

/// A loopback address with a port that was free a moment ago.
fn free_loopback_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// The control address `ringnfs serve` logged, if any.
fn logged_control_addr(lines: &[String]) -> Option<SocketAddr> {
    lines
        .iter()
        .find_map(|l| l.split("control plane listening addr=").nth(1))
        .map(|a| a.trim().parse().unwrap())
}

#[test]
fn serve_control_from_the_config_file() {
    let dir = temp_dir("serve-config");
    let state = dir.join("state");
    let token_file = dir.join("my-token");
    let want = free_loopback_addr();
    let config = dir.join("ringnfs.toml");
    std::fs::write(
        &config,
        format!(
            "listen = [\"127.0.0.1:0\"]\nbackend = \"memory\"\nthreads = 1\npin = false\n\
             state_dir = {state:?}\ncontrol = \"{want}\"\ncontrol_token_file = {token_file:?}\n"
        ),
    )
    .unwrap();
    let config_arg = ["--config", config.to_str().unwrap()];

    // The config's address is listened on, with the config's token file.
    let (child, lines) = spawn_serve(&config_arg);
    assert_eq!(logged_control_addr(&lines), Some(want), "{lines:?}");
    let token = std::fs::read_to_string(&token_file).expect("token file from the config");
    let settings = HttpClient::new(want, None).get("/api/v1/settings").unwrap();
    assert_eq!(settings.status, 200);
    let patch = HttpClient::new(want, Some(token.trim().to_string()))
        .request(
            "PATCH",
            "/api/v1/settings",
            Some(
                json!({"max_connections_per_session": 7})
                    .to_string()
                    .as_bytes(),
            ),
        )
        .unwrap();
    assert_eq!(patch.status, 200, "{}", patch.text());
    assert!(!state.join("control-token").exists());
    drop(child);

    // The command line wins over the config file.
    let mut args = config_arg.to_vec();
    args.extend(["--control", "off"]);
    let (child, lines) = spawn_serve(&args);
    assert!(
        lines.iter().any(|l| l.contains("ringnfs serving")),
        "{lines:?}"
    );
    assert_eq!(logged_control_addr(&lines), None, "{lines:?}");
    drop(child);

    // A control address from the config file is explicit: taken, the server refuses.
    let taken = std::net::TcpListener::bind(want).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringnfs"))
        .arg("serve")
        .args(config_arg)
        .output()
        .unwrap();
    drop(taken);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("control"), "{err}");

    // A bad value is an error naming the key.
    std::fs::write(&config, "control = \"on\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringnfs"))
        .arg("serve")
        .args(config_arg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("control"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stop_is_not_held_up_by_a_stalled_http_client() {
    use std::io::Write;
    let mut ctl = Ctl::start("stall");
    let mut stalled = std::net::TcpStream::connect(ctl.control).unwrap();
    stalled
        .write_all(b"GET /api/v1/settings HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut idle = std::net::TcpStream::connect(ctl.control).unwrap();
    idle.write_all(b"GET /api/v1/settings HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    ctl.stop();
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// `ringnfs ctl ARGS` (no options added).
fn ctl_raw(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ringnfs"))
        .arg("ctl")
        .args(args)
        .output()
        .expect("runs ringnfs ctl")
}

fn stdout_ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn ctl_options_go_anywhere_and_ids_and_times_print_one_way() {
    let ctl = Ctl::start("ctl-forms");
    let state = ctl.dir.join("state");
    let state = state.to_str().unwrap();
    let addr = ctl.control.to_string();
    let s = ctl.trunked(2);

    // The options after the subcommand, after its own options, or before it.
    let json: Value = serde_json::from_str(&stdout_ok(&ctl_raw(&[
        "sessions",
        "--addr",
        &addr,
        "--state-dir",
        state,
        "--json",
    ])))
    .unwrap();
    assert_eq!(json[0]["id"], hex(&s));
    let token_file = format!("{state}/control-token");
    let after = ctl_raw(&[
        "settings",
        "set",
        "--lease-time",
        "90",
        "--addr",
        &addr,
        "--token-file",
        &token_file,
        "--json",
    ]);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout_ok(&after)).unwrap()["lease_time"],
        90
    );
    stdout_ok(&ctl_raw(&[
        "--addr",
        &addr,
        "--json",
        "clients",
        "--state-dir",
        state,
    ]));

    // Client ids: 0x and 16 hex digits in tables and *_str; decimal and hex both taken.
    let printed = format!("{:#018x}", s.clientid());
    let clients = ctl_json(ctl.control, Path::new(state), &["clients"]);
    assert_eq!(clients[0]["id_str"], printed, "{clients}");
    assert_eq!(clients[0]["id"].as_u64(), Some(s.clientid()));
    let table = stdout_ok(&ctl_cmd(ctl.control, Path::new(state), &["clients"]));
    assert!(table.contains(&printed), "{table}");
    assert!(!table.contains(&s.clientid().to_string()), "{table}");
    for form in [printed.clone(), s.clientid().to_string()] {
        let v = ctl_json(ctl.control, Path::new(state), &["client", &form]);
        assert_eq!(v["id_str"], printed);
        let v = ctl_json(
            ctl.control,
            Path::new(state),
            &["sessions", "--client", &form],
        );
        assert_eq!(v[0]["clientid_str"], printed, "{v}");
    }
    // Connection ids: decimal everywhere, with the string form in JSON.
    let v = ctl_json(ctl.control, Path::new(state), &["session", &hex(&s)]);
    for c in v["connections"].as_array().unwrap() {
        assert_eq!(c["id_str"], c["id"].as_u64().unwrap().to_string(), "{c}");
    }
    let conns = ctl_json(ctl.control, Path::new(state), &["connections"]);
    for c in conns.as_array().unwrap() {
        assert_eq!(c["id_str"], c["id"].as_u64().unwrap().to_string(), "{c}");
        assert!(is_rfc3339(c["accepted_at"].as_str().unwrap()), "{c}");
    }

    // Times: RFC 3339 in tables; JSON keeps the milliseconds beside it.
    // (The conversion itself: `rfc3339_dates` in crates/control/src/api.rs.)
    assert!(v["created_at_ms"].is_u64(), "{v}");
    assert!(is_rfc3339(v["created_at"].as_str().unwrap_or("")), "{v}");
    let c0 = &v["connections"][0];
    assert!(c0["bound_at_ms"].is_u64(), "{c0}");
    assert!(is_rfc3339(c0["bound_at"].as_str().unwrap_or("")), "{c0}");
    let table = stdout_ok(&ctl_cmd(
        ctl.control,
        Path::new(state),
        &["session", &hex(&s)],
    ));
    let created = table
        .lines()
        .find_map(|l| l.strip_prefix("created_at"))
        .unwrap_or_else(|| panic!("{table}"))
        .trim();
    assert_eq!(created, v["created_at"], "{table}");
    assert!(table.contains(&printed), "{table}");
    let bound: Vec<&str> = table
        .lines()
        .skip_while(|l| !l.starts_with("CONN"))
        .skip(1)
        .map(|l| l.split_whitespace().nth(4).unwrap())
        .collect();
    assert_eq!(bound.len(), 2, "{table}");
    assert!(bound.iter().all(|t| is_rfc3339(t)), "{table}");
    let ms = v["created_at_ms"].as_u64().unwrap().to_string();
    assert!(!table.contains(&ms), "epoch milliseconds in {table}");
    let table = stdout_ok(&ctl_cmd(ctl.control, Path::new(state), &["connections"]));
    assert!(table.contains("ACCEPTED_AT"), "{table}");

    // metrics --json: the samples as JSON.
    let m: Value = serde_json::from_str(&stdout_ok(&ctl_raw(&[
        "metrics", "--json", "--addr", &addr,
    ])))
    .expect("metrics --json prints JSON");
    let fam = |name: &str| {
        m.as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {m}"))
            .clone()
    };
    assert_eq!(fam("ringnfs_sessions")["samples"][0]["value"], 1);
    assert_eq!(fam("ringnfs_sessions")["type"], "gauge");
    let binds = fam("ringnfs_connection_binds");
    assert_eq!(binds["samples"][2]["labels"]["direction"], "both");
    assert_eq!(binds["samples"][2]["value"], 1);

    // A 401 names the token file used, or the one that was missing.
    let bad = ctl.dir.join("bad-token");
    std::fs::write(&bad, "nope\n").unwrap();
    let out = ctl_raw(&[
        "destroy-session",
        &hex(&s),
        "--addr",
        &addr,
        "--token-file",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("401") && err.contains(bad.to_str().unwrap()),
        "{err}"
    );
    let empty = ctl.dir.join("empty-state");
    std::fs::create_dir_all(&empty).unwrap();
    let out = ctl_raw(&[
        "destroy-session",
        &hex(&s),
        "--addr",
        &addr,
        "--state-dir",
        empty.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let missing = empty.join("control-token");
    assert!(err.contains(missing.to_str().unwrap()), "{err}");
    // The session is still there.
    assert_eq!(s.call(0, &[], false).unwrap().status, status::NFS4_OK);
}

#[test]
fn client_and_session_ids_print_the_same_in_logs_and_ctl() {
    use std::io::{BufRead, BufReader};
    let dir = temp_dir("id-logs");
    let state = dir.join("state");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ringnfs"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--control",
            "127.0.0.1:0",
        ])
        .args([
            "--backend",
            "memory",
            "--threads",
            "1",
            "--no-pin",
            "--state-dir",
        ])
        .arg(&state)
        .env("RUST_LOG", "info,ringnfs_state=debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _child = Killed(child);
    let log = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
    let l = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            l.lock().push(line);
        }
    });
    assert!(wait_until(|| log
        .lock()
        .iter()
        .any(|l| l.contains("ringnfs serving"))));
    let (nfs, control) = {
        let lines = log.lock();
        let serving = lines
            .iter()
            .find(|l| l.contains("ringnfs serving"))
            .unwrap();
        let at = serving.find("addrs=[").unwrap() + 7;
        let nfs: SocketAddr = serving[at..at + serving[at..].find(']').unwrap()]
            .parse()
            .unwrap();
        (nfs, logged_control_addr(&lines).unwrap())
    };
    let (_, s) = Client::connect(&[nfs], ClientOptions::default()).unwrap();
    let table = stdout_ok(&ctl_cmd(control, &state, &["sessions"]));
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    let (session, client) = (row[0], row[1]);
    assert_eq!(session, hex(&s));
    let created = wait_until(|| {
        log.lock().iter().any(|l| {
            l.contains("session created")
                && l.contains(&format!("clientid={client} "))
                && l.contains(&format!("session={session} "))
        })
    });
    assert!(
        created,
        "no log line with {client} and {session}: {:#?}",
        log.lock()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `ringnfs ctl cluster` shows the node's view; a server that is no node says so.
#[test]
fn ctl_cluster_shows_the_node_or_says_there_is_none() {
    let Some(ctl) = Ctl::start_node("ctl-cluster") else {
        return;
    };
    let state = ctl.dir.join("state");
    let shown = stdout_ok(&ctl_cmd(ctl.control, &state, &["cluster"]));
    for want in [
        "ctl-cluster",
        "node",
        "7",
        "in grace",
        "false",
        "granting",
        "true",
    ] {
        assert!(shown.contains(want), "{want:?} in\n{shown}");
    }
    let v = ctl.get_json("/api/v1/cluster");
    assert_eq!(v["node_id"], 7);
    assert_eq!(v["nodes"][0]["id"], 7);
    let metrics = ctl.get("/metrics").text();
    assert_eq!(metric_in(&metrics, "ringnfs_cluster_in_grace"), 0);
    assert_eq!(metric_in(&metrics, "ringnfs_cluster_nodes"), 1);
    drop(ctl);
    let single = Ctl::start("ctl-no-cluster");
    let r = single.get("/api/v1/cluster");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("not a node of a cluster"), "{}", r.text());
}

/// `ringnfs ctl tls` shows the TLS files; `ctl tls reload` reads them again (a broken
/// key is refused in words, exit status non-zero, the files in use stay).
#[test]
fn ctl_tls_shows_and_reloads_the_files() {
    let ctl = Ctl::start("ctl-tls");
    let state = ctl.dir.join("state");
    let shown = stdout_ok(&ctl_cmd(ctl.control, &state, &["tls"]));
    assert!(
        shown.contains("server.pem") && shown.contains("server-key.pem"),
        "{shown}"
    );
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("client_ca") && l.ends_with('-')),
        "{shown}"
    );
    let reloaded = stdout_ok(&ctl_cmd(ctl.control, &state, &["tls", "reload"]));
    assert!(reloaded.contains("reloaded"), "{reloaded}");
    std::fs::write(ctl.dir.join("server-key.pem"), "not a key").unwrap();
    let out = ctl_cmd(ctl.control, &state, &["tls", "reload"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TLS key") && err.contains("stay"), "{err}");
    assert!(!err.contains("Error {"), "no debug output: {err}");
}
