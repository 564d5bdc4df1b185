//! Kerberos (RPCSEC_GSS, RFC 2203) end to end with a real MIT KDC started for this test
//! binary (`ringnfs_testkit::kdc`, a throwaway realm RINGNFS.TEST with keytabs made per
//! run): the in-repo client mounts with krb5, krb5i and krb5p and moves 1 MiB each way;
//! a principal maps to its local user; a krb5-only export refuses AUTH_SYS with
//! NFS4ERR_WRONGSEC and SECINFO names Kerberos; a service principal the server has no
//! key for, and an expired ticket, are refused; and, with hand-made RPCSEC_GSS calls, a
//! replayed sequence number is dropped, a tampered krb5i checksum gets GARBAGE_ARGS, a
//! bad verifier and an unknown context get AUTH_ERROR / RPCSEC_GSS_CREDPROBLEM.
//!
//! One binary of its own: `Kdc::shared()` sets the KDC's variables in this process's
//! environment before any thread reaches MIT's library (the server here runs in-process).

pub mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::TestServer;
use ringnfs::client::ops::stable;
use ringnfs::client::{Client, ClientError, ClientGss, ClientOptions, Files, GssService, Op};
use ringnfs::control::exports::ExportSpec;
use ringnfs::nfs4::consts::{op, status};
use ringnfs::rpc::auth::RPCSEC_GSS;
use ringnfs::rpc::gss::{GssCred, GssInitRes, GssProc, IntegData, RPCSEC_GSS_CREDPROBLEM};
use ringnfs::rpc::message::encode_call_raw;
use ringnfs::rpc::record::mark;
use ringnfs::rpc::{AuthSys, Credential, RpcMessage, decode_message};
use ringnfs::xdr::XdrEncoder;
use ringnfs_gss::{Gss, InitStep, Initiator, SecContext};
use ringnfs_proto::nfs4::attr::OWNER;
use ringnfs_testkit::kdc::{Ccache, Kdc, KdcError, REALM};

/// The KDC, or None after a visible skip (the KDC tools are not installed).
fn kdc(test: &str) -> Option<&'static Kdc> {
    match Kdc::shared() {
        Ok(k) => Some(k),
        Err(e @ KdcError::Missing { .. }) => {
            ringnfs_testkit::skip(test, &e.to_string());
            None
        }
        Err(e) => panic!("starting the test KDC: {e}"),
    }
}

/// A principal named by a number maps to that uid (there is no local "alice" here).
fn numeric_user(kdc: &Kdc) -> Ccache {
    kdc.add_principal("4242").expect("principal 4242");
    kdc.kinit("4242", None).expect("kinit 4242")
}

/// One memory export at "/" admitting `sec`, with Kerberos on the KDC's service keytab.
fn server(kdc: &Kdc, sec: &[&str]) -> TestServer {
    TestServer::with(|c| {
        c.krb5_keytab = Some(kdc.service_keytab());
        c.krb5_realms = vec![REALM.to_string()];
        c.exports = vec![ExportSpec {
            pseudo: "/".into(),
            backend: Some("memory".into()),
            sec: Some(sec.iter().map(|s| s.to_string()).collect()),
            ..ExportSpec::default()
        }];
        c.exports_given = true;
    })
}

fn gss_client(
    srv: &TestServer,
    service: GssService,
    cc: &Ccache,
    target: &str,
) -> Result<Files, ClientError> {
    let (_, s) = Client::connect(
        &srv.addrs,
        ClientOptions {
            gss: Some(ClientGss::new(service, target).with_ccache(cc.name())),
            timeout: Duration::from_secs(10),
            ..ClientOptions::default()
        },
    )?;
    Ok(Files::new(s))
}

fn payload(seed: u8) -> Vec<u8> {
    (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

#[test]
fn krb5_krb5i_krb5p_move_data_as_the_mapped_user() {
    let Some(kdc) = kdc("krb5_krb5i_krb5p_move_data_as_the_mapped_user") else {
        return;
    };
    let cc = numeric_user(kdc);
    let srv = server(kdc, &["krb5", "krb5i", "krb5p"]);
    for (i, service) in [GssService::None, GssService::Integrity, GssService::Privacy]
        .into_iter()
        .enumerate()
    {
        let f = gss_client(&srv, service, &cc, "nfs@localhost")
            .unwrap_or_else(|e| panic!("{service:?}: {e}"));
        let root = f.root_fh().unwrap();
        let name = format!("file-{i}");
        let (fh, file) = f.create(&root, name.as_bytes(), 0o644).unwrap();
        let data = payload(i as u8);
        let (n, _) = f.write(&file, 0, &data, stable::FILE_SYNC).unwrap();
        assert_eq!(n as usize, data.len(), "{service:?}");
        let (back, _) = f.read(&file, 0, data.len() as u32).unwrap();
        assert!(back == data, "{service:?}: the data read back differs");
        // The file belongs to the principal's uid (4242@RINGNFS.TEST → 4242).
        let attrs = f
            .call(&[
                Op::PutFh(fh.clone()),
                Op::GetAttr(vec![0, 1 << (OWNER - 32)]),
            ])
            .unwrap()
            .attrs()
            .unwrap();
        assert_eq!(attrs.owner.as_deref(), Some("4242"), "{service:?}");
        f.close(file).unwrap();
    }
    let g = &srv.state().gss;
    assert!(ringnfs::state::gss_stats::GssStats::get(&g.contexts_made) >= 3);
}

#[test]
fn a_krb5_only_export_refuses_auth_sys_and_says_what_it_wants() {
    let Some(kdc) = kdc("a_krb5_only_export_refuses_auth_sys_and_says_what_it_wants") else {
        return;
    };
    let srv = server(kdc, &["krb5i"]);
    let (_, s) = Client::connect(
        &srv.addrs,
        ClientOptions {
            cred: Credential::Sys(AuthSys::default()),
            timeout: Duration::from_secs(10),
            ..ClientOptions::default()
        },
    )
    .expect("an AUTH_SYS session (no filehandle yet)");
    let f = Files::new(s);
    let e = f.root_fh().unwrap_err();
    assert_eq!(e.nfs_status(), Some(status::NFS4ERR_WRONGSEC), "{e}");
    // SECINFO_NO_NAME lists RPCSEC_GSS (krb5i), and nothing else.
    let r = f
        .call(&[Op::PutRootFh, Op::SecinfoNoName(0)])
        .expect("SECINFO_NO_NAME");
    assert_eq!(r.secinfo(op::SECINFO_NO_NAME).unwrap(), vec![RPCSEC_GSS]);
    // The same client with krb5i gets in.
    let cc = numeric_user(kdc);
    let k = gss_client(&srv, GssService::Integrity, &cc, "nfs@localhost").unwrap();
    k.root_fh().expect("krb5i is admitted");
    // krb5 without integrity is not one of the export's flavors.
    let plain = gss_client(&srv, GssService::None, &cc, "nfs@localhost").unwrap();
    let e = plain.root_fh().unwrap_err();
    assert_eq!(e.nfs_status(), Some(status::NFS4ERR_WRONGSEC), "{e}");
}

#[test]
fn unknown_service_principal_and_expired_ticket_are_refused() {
    let Some(kdc) = kdc("unknown_service_principal_and_expired_ticket_are_refused") else {
        return;
    };
    let srv = server(kdc, &["krb5"]);
    let cc = numeric_user(kdc);
    // The KDC knows nfs/otherhost, but the server's keytab has no key for it.
    match gss_client(&srv, GssService::None, &cc, "nfs@otherhost") {
        Err(ClientError::Gss(why)) => assert!(!why.is_empty()),
        Err(e) => panic!("expected a GSS refusal, got {e}"),
        Ok(_) => panic!("a ticket for another service was taken"),
    }
    // A ticket that ran out (3 s, plus the KDC's clock skew allowance) is refused.
    let short = kdc.kinit("4242", Some("3s")).expect("kinit -l 3s");
    std::thread::sleep(
        Duration::from_secs(3) + ringnfs_testkit::kdc::CLOCK_SKEW + Duration::from_secs(1),
    );
    match gss_client(&srv, GssService::None, &short, "nfs@localhost") {
        Err(ClientError::Gss(why)) | Err(ClientError::GssContext(why)) => {
            assert!(why.to_lowercase().contains("expired"), "{why}")
        }
        Err(e) => panic!("expected an expired-ticket refusal, got {e}"),
        Ok(_) => panic!("an expired ticket was taken"),
    }
    let g = &srv.state().gss;
    assert!(ringnfs::state::gss_stats::GssStats::get(&g.contexts_refused) >= 1);
}

// ---- hand-made RPCSEC_GSS calls -----------------------------------------------------

/// A raw connection with an established krb5 context.
struct Raw {
    s: TcpStream,
    ctx: SecContext,
    handle: Vec<u8>,
    xid: u32,
}

impl Raw {
    fn connect(srv: &TestServer, cc: &Ccache) -> Raw {
        let gss = Gss::load().unwrap();
        let mut init = Initiator::with_ccache(&gss, "nfs@localhost", &cc.name()).unwrap();
        let mut s = TcpStream::connect(srv.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut raw_in: Option<Vec<u8>> = None;
        let mut handle = Vec::new();
        loop {
            let (token, done) = match init.step(raw_in.as_deref()).unwrap() {
                InitStep::Continue { token } => (token, None),
                InitStep::Complete { context, token } => (token.unwrap_or_default(), Some(context)),
            };
            if let Some(ctx) = done
                && token.is_empty()
            {
                return Raw {
                    s,
                    ctx,
                    handle,
                    xid: 100,
                };
            }
            let cred = GssCred {
                proc_: if handle.is_empty() {
                    GssProc::Init
                } else {
                    GssProc::ContinueInit
                },
                seq_num: 0,
                service: GssService::None,
                handle: handle.clone(),
            };
            let mut body = Vec::new();
            cred.encode(&mut body);
            let mut rec = Vec::new();
            encode_call_raw(&mut rec, 1, (100003, 4, 0), (RPCSEC_GSS, &body), |_| {
                (0, Vec::new())
            });
            rec.put_opaque(&token);
            send(&mut s, &rec);
            let reply = recv(&mut s).expect("INIT reply");
            let RpcMessage::Reply(r) = decode_message(&reply).unwrap() else {
                panic!()
            };
            let res = GssInitRes::decode(r.body.expect("accepted")).unwrap();
            assert!(res.major <= 1, "INIT refused: major {:#x}", res.major);
            handle = res.handle;
            raw_in = Some(res.token);
        }
    }

    /// A DATA NULL call with sequence number `seq` and service `service`; `tamper`
    /// flips a byte of the krb5i checksum, `bad_verf` of the header's verifier.
    fn null(
        &mut self,
        seq: u32,
        service: GssService,
        tamper: bool,
        bad_verf: bool,
        handle: Option<&[u8]>,
    ) -> Vec<u8> {
        self.xid += 1;
        let cred = GssCred {
            proc_: GssProc::Data,
            seq_num: seq,
            service,
            handle: handle.unwrap_or(&self.handle).to_vec(),
        };
        let mut body = Vec::new();
        cred.encode(&mut body);
        let ctx = &self.ctx;
        let mut rec = Vec::new();
        encode_call_raw(
            &mut rec,
            self.xid,
            (100003, 4, 0),
            (RPCSEC_GSS, &body),
            |h| {
                let mut mic = ctx.get_mic(h).unwrap();
                if bad_verf {
                    let last = mic.len() - 1;
                    mic[last] ^= 1;
                }
                (RPCSEC_GSS, mic)
            },
        );
        if service == GssService::Integrity {
            let data = seq.to_be_bytes();
            let mut mic = ctx.get_mic(&data).unwrap();
            if tamper {
                let last = mic.len() - 1;
                mic[last] ^= 1;
            }
            IntegData::encode(&data, &mic, &mut rec);
        }
        rec
    }

    fn call(&mut self, rec: &[u8]) -> Option<Vec<u8>> {
        send(&mut self.s, rec);
        recv(&mut self.s)
    }
}

fn send(s: &mut TcpStream, rec: &[u8]) {
    s.write_all(&mark(rec.len())).unwrap();
    s.write_all(rec).unwrap();
}

fn recv(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).ok()?;
    let mut v = vec![0; (u32::from_be_bytes(h) & 0x7fff_ffff) as usize];
    s.read_exact(&mut v).ok()?;
    Some(v)
}

fn words(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[test]
fn replays_tampering_and_bad_credentials_are_refused() {
    let Some(kdc) = kdc("replays_tampering_and_bad_credentials_are_refused") else {
        return;
    };
    let srv = server(kdc, &["krb5", "krb5i"]);
    let cc = numeric_user(kdc);
    let mut raw = Raw::connect(&srv, &cc);

    // A good call: accepted, with the checksum of its sequence number as the verifier.
    let rec = raw.null(1, GssService::None, false, false, None);
    let reply = raw.call(&rec).expect("a reply");
    let RpcMessage::Reply(r) = decode_message(&reply).unwrap() else {
        panic!()
    };
    assert!(r.body.is_ok());
    assert_eq!(r.verf_flavor, RPCSEC_GSS);
    raw.ctx
        .verify_mic(&1u32.to_be_bytes(), r.verf)
        .expect("reply verifier");

    // The same call again (a replayed sequence number): dropped, no reply. A later
    // call's reply comes first.
    let again = raw.null(1, GssService::None, false, false, None);
    send(&mut raw.s, &again);
    let next = raw.null(2, GssService::None, false, false, None);
    let reply = raw.call(&next).expect("reply to the next call");
    assert_eq!(
        words(&reply)[0],
        raw.xid,
        "the replay got no reply; the next call did"
    );

    // krb5i with a checksum that does not verify: GARBAGE_ARGS (4).
    let bad = raw.null(3, GssService::Integrity, true, false, None);
    let reply = raw.call(&bad).expect("a reply");
    let w = words(&reply);
    assert_eq!((w[1], w[2]), (1, 0), "an accepted reply");
    assert_eq!(*w.last().unwrap(), 4, "GARBAGE_ARGS");
    // ... and with a good one: accepted.
    let good = raw.null(4, GssService::Integrity, false, false, None);
    let reply = raw.call(&good).expect("a reply");
    let RpcMessage::Reply(r) = decode_message(&reply).unwrap() else {
        panic!()
    };
    assert!(r.body.is_ok(), "krb5i NULL accepted");

    // A verifier that does not verify, and a context the server never made:
    // MSG_DENIED, AUTH_ERROR, RPCSEC_GSS_CREDPROBLEM.
    for rec in [
        raw.null(5, GssService::None, false, true, None),
        raw.null(6, GssService::None, false, false, Some(b"no-such-context")),
    ] {
        let reply = raw.call(&rec).expect("a reply");
        assert_eq!(words(&reply)[1..5], [1, 1, 1, RPCSEC_GSS_CREDPROBLEM]);
    }
    let g = &srv.state().gss;
    use ringnfs::state::gss_stats::GssStats;
    assert_eq!(GssStats::get(&g.replays_dropped), 1);
    assert_eq!(GssStats::get(&g.bad_body), 1);
    assert_eq!(GssStats::get(&g.bad_credential), 2);
}

#[test]
fn sp4_mach_cred_holds_a_client_to_its_kerberos_principal() {
    use ringnfs::client::{
        BindConnArgs, CreateSessionArgs, ExchangeIdArgs, RpcConn, StateProtect, StateProtectRes,
        default_back_attrs, default_fore_attrs,
    };
    use ringnfs::nfs4::consts::cdfc;
    let Some(kdc) = kdc("sp4_mach_cred_holds_a_client_to_its_kerberos_principal") else {
        return;
    };
    let srv = server(kdc, &["krb5"]);
    let machine = numeric_user(kdc);
    kdc.add_principal("4343").expect("principal 4343");
    let other = kdc.kinit("4343", None).expect("kinit 4343");
    let gss_conn = |cc: &Ccache| {
        let mut c = RpcConn::connect(srv.addr(), Credential::None).unwrap();
        c.start_gss(&ClientGss::new(GssService::None, "nfs@localhost").with_ccache(cc.name()))
            .expect("a GSS context");
        c
    };
    let first = gss_conn(&machine);
    let r = first
        .compound(
            1,
            b"",
            &[Op::ExchangeId(ExchangeIdArgs {
                verifier: [7; 8],
                owner_id: b"krb5-machcred".to_vec(),
                flags: 0,
                state_protect: StateProtect::MachCred {
                    must_enforce: ringnfs::nfs4::types::ops_to_bitmap(&[
                        op::DESTROY_SESSION,
                        op::DESTROY_CLIENTID,
                    ]),
                    must_allow: vec![],
                },
                impl_id: None,
            })],
        )
        .unwrap();
    let e = r.exchange_id().unwrap();
    assert!(matches!(e.state_protect, StateProtectRes::MachCred { .. }));
    let cs = first
        .compound(
            1,
            b"",
            &[Op::CreateSession(CreateSessionArgs {
                clientid: e.clientid,
                sequence: e.sequenceid,
                flags: 0,
                fore: default_fore_attrs(8),
                back: default_back_attrs(),
                cb_program: 0x4000_0000,
                sec_parms: vec![ringnfs::client::CallbackSec::None],
            })],
        )
        .unwrap()
        .create_session()
        .unwrap();
    let bind = |c: &RpcConn| {
        c.compound(
            1,
            b"",
            &[Op::BindConnToSession(BindConnArgs {
                sessionid: cs.sessionid,
                dir: cdfc::FORE,
                use_rdma: false,
            })],
        )
        .unwrap()
        .status
    };
    // Another principal, and AUTH_SYS as root: not the client's principal.
    assert_eq!(bind(&gss_conn(&other)), status::NFS4ERR_WRONG_CRED);
    let root = RpcConn::connect(srv.addr(), Credential::Sys(AuthSys::default())).unwrap();
    assert_eq!(bind(&root), status::NFS4ERR_WRONG_CRED);
    // The same principal on a new connection (a new context): bound.
    assert_eq!(bind(&gss_conn(&machine)), status::NFS4_OK);
}

/// Hand-run: krb5i and krb5p against krb5 (and AUTH_SYS), same server, same run,
/// alternating 2-second rounds, medians; 4 threads on one session of 4 connections per
/// flavor. Numbers, not assertions (the server shares this process and the machine's two
/// cores with the client, whose checksums and encryption count too).
/// `cargo test --release --test krb5 measure -- --ignored --nocapture`
#[test]
#[ignore = "hand-run measurement"]
fn measure_krb5_services() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let Some(kdc) = kdc("measure_krb5_services") else {
        return;
    };
    let cc = numeric_user(kdc);
    let srv = server(kdc, &["sys", "krb5", "krb5i", "krb5p"]);
    const MIB: usize = 1 << 20;
    const FILE: u64 = 32 << 20;
    let flavors: Vec<(&str, Option<GssService>)> = vec![
        ("sys", None),
        ("krb5", Some(GssService::None)),
        ("krb5i", Some(GssService::Integrity)),
        ("krb5p", Some(GssService::Privacy)),
    ];
    let mut setups = Vec::new();
    for (name, service) in &flavors {
        let (_, s) = Client::connect(
            &srv.addrs,
            ClientOptions {
                cred: Credential::Sys(AuthSys {
                    uid: 4242,
                    gid: 4242,
                    ..AuthSys::default()
                }),
                gss: service.map(|sv| ClientGss::new(sv, "nfs@localhost").with_ccache(cc.name())),
                connections: 4,
                slots: 64,
                timeout: Duration::from_secs(60),
                ..ClientOptions::default()
            },
        )
        .unwrap();
        let f = Arc::new(Files::new(s));
        let root = f.root_fh().unwrap();
        let files: Vec<_> = (0..4)
            .map(|i| {
                let (_, file) = f
                    .create(&root, format!("{name}-{i}").as_bytes(), 0o644)
                    .unwrap();
                for m in 0..(FILE >> 20) {
                    f.write(&file, m << 20, &vec![1u8; MIB], stable::UNSTABLE)
                        .unwrap();
                }
                file
            })
            .collect();
        setups.push((*name, f, Arc::new(files)));
    }
    let run = |f: &Arc<Files>, files: &Arc<Vec<ringnfs::client::OpenFile>>, load: u8| -> f64 {
        let stop = Arc::new(AtomicBool::new(false));
        let bytes = Arc::new(AtomicU64::new(0));
        let t0 = std::time::Instant::now();
        let hs: Vec<_> = (0..files.len())
            .map(|t| {
                let (f, files, stop, bytes) =
                    (f.clone(), files.clone(), stop.clone(), bytes.clone());
                std::thread::spawn(move || {
                    let (file, data) = (&files[t], vec![t as u8; MIB]);
                    let (mut off, mut x) = (0u64, 0x9e37_79b9u64 + t as u64);
                    while !stop.load(Ordering::Relaxed) {
                        let n = match load {
                            0 => f.write(file, off, &data, stable::UNSTABLE).unwrap().0 as u64,
                            1 => f.read(file, off, MIB as u32).unwrap().0.len() as u64,
                            _ => {
                                x ^= x << 13;
                                x ^= x >> 7;
                                x ^= x << 17;
                                f.read(file, (x % (FILE / 4096)) * 4096, 4096)
                                    .unwrap()
                                    .0
                                    .len() as u64
                            }
                        };
                        bytes.fetch_add(n, Ordering::Relaxed);
                        off = (off + MIB as u64) % FILE;
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::Relaxed);
        for h in hs {
            h.join().unwrap();
        }
        bytes.load(Ordering::Relaxed) as f64 / MIB as f64 / t0.elapsed().as_secs_f64()
    };
    println!("| load | sys MiB/s | krb5 | krb5i | krb5p | krb5i / krb5 | krb5p / krb5 |");
    println!("|---|---|---|---|---|---|---|");
    for (load, name) in [
        (0u8, "1 MiB sequential WRITE"),
        (1, "1 MiB sequential READ"),
        (2, "4 KiB random READ"),
    ] {
        let mut rates = vec![Vec::new(); setups.len()];
        for _ in 0..3 {
            for (i, (_, f, files)) in setups.iter().enumerate() {
                rates[i].push(run(f, files, load));
            }
        }
        let m: Vec<f64> = rates
            .into_iter()
            .map(|mut v| {
                v.sort_by(|a, b| a.total_cmp(b));
                v[v.len() / 2]
            })
            .collect();
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
            m[0],
            m[1],
            m[2],
            m[3],
            m[2] / m[1],
            m[3] / m[1]
        );
    }
}

/// On the local backend a WRITE waits for the ring (the COMPOUND suspends and resumes
/// on completion) and a READ that misses the page cache too: krb5i's and krb5p's
/// protection of the reply must survive the suspension (the continuation carries it).
#[test]
fn krb5i_and_krb5p_replies_survive_a_suspended_compound() {
    let Some(kdc) = kdc("krb5i_and_krb5p_replies_survive_a_suspended_compound") else {
        return;
    };
    let dir = common::TempDir::new("krb5-local");
    let srv = TestServer::with(|c| {
        c.krb5_keytab = Some(kdc.service_keytab());
        c.krb5_realms = vec![REALM.to_string()];
        c.backend = ringnfs::server::BackendKind::Local;
        c.exports = vec![ExportSpec {
            pseudo: "/".into(),
            backend: Some("local".into()),
            path: Some(dir.0.join("export").display().to_string()),
            sec: Some(vec!["krb5i".into(), "krb5p".into()]),
            ..ExportSpec::default()
        }];
        c.exports_given = true;
    });
    let cc = numeric_user(kdc);
    for (i, service) in [GssService::Integrity, GssService::Privacy]
        .into_iter()
        .enumerate()
    {
        let f = gss_client(&srv, service, &cc, "nfs@localhost").unwrap();
        let root = f.root_fh().unwrap();
        let (_, file) = f
            .create(&root, format!("local-{i}").as_bytes(), 0o644)
            .unwrap();
        let data = payload(40 + i as u8);
        // FILE_SYNC: the ring's write and then its fsync, two suspensions.
        let (n, _) = f.write(&file, 0, &data, stable::FILE_SYNC).unwrap();
        assert_eq!(n as usize, data.len(), "{service:?}");
        let (back, _) = f.read(&file, 0, data.len() as u32).unwrap();
        assert!(back == data, "{service:?}: the data read back differs");
        f.close(file).unwrap();
    }
    assert!(
        srv.transport_stats().file_ops >= 4,
        "the ring ran the writes and syncs"
    );
}
