//! Hostile clients over real sockets against `ringnfs serve` run as a child process (so
//! its RSS is its own): while each attack runs, a well-behaved client (its own session,
//! from 127.0.0.1) keeps sending SEQUENCE + PUTROOTFH + GETATTR and must get every
//! answer; attackers come from other loopback addresses (127.0.0.2 and up), so the
//! per-address connection limit applies to them and not to the good client.
//!
//! Asserted: no attack makes the server panic or stop answering, every request of the
//! good client succeeds (within a generous timeout), attackers get the documented error
//! or close, the limits' counters move, and the server's peak RSS stays under
//! [`RSS_BOUND_KIB`]. Measured and printed, never asserted: the good client's p99 latency
//! during each attack against the same client with no attack, and RSS after each attack.
//! `cargo test --release --test hostile -- --nocapture` shows the table.
//!
//! Limits given to the server here (smaller than the defaults so the test is quick):
//! 2,048 connections in total, 1,000 per peer address, idle timeout 2 s, 16 sessions per
//! client, delegations on with 500 per client and 1,000 in all. The 10,000-connection flood comes from 40 addresses (250 each): the total
//! limit refuses (closes at accept) everything past 2,048, the good client's established
//! session is unaffected, and the idle timeout then closes the admitted idle
//! connections, so new clients get in again.

pub mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::TempDir;
use parking_lot::Mutex;
use ringnfs::client::{
    Client, ClientOptions, CreateSessionArgs, CreateType, DefaultCallbackHandler, ExchangeIdArgs,
    Fattr, Op, OpenArgs, OpenClaim, OpenHow, RpcConn, Session, StateProtect, Stateid,
    default_back_attrs, default_fore_attrs, unique_owner,
};
use ringnfs::nfs4::consts::{NFS4_PROGRAM, NFS4_VERSION, NfsStatus, PROC_NULL, op, status};
use ringnfs::rpc::message::ReplyFailure;
use ringnfs::rpc::{Credential, RpcMessage, decode_message};
use ringnfs::xdr::XdrEncoder;

/// Bound on the server's peak RSS over the whole suite (KiB). The server's own
/// fixed cost is ~40 MiB (two workers with 16 MiB of receive buffers each); 10,000
/// connections, 1,000 sessions and an 8 MiB reply queue come on top.
const RSS_BOUND_KIB: u64 = 512 * 1024;
const WAIT: Duration = Duration::from_secs(20);
const MAX_CONNECTIONS: usize = 2048;
const MAX_PER_PEER: usize = 1000;
const IDLE_SECS: u64 = 2;
const MAX_RECORD: usize = (1 << 20) + (64 << 10);
const LAST: u32 = 0x8000_0000;
const DELEG_PER_CLIENT: u64 = 500;

// ---- the server as a child process --------------------------------------------------

struct ServerProc {
    child: Child,
    addr: SocketAddr,
    control: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    _dir: TempDir,
}

fn field_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(key)? + key.len();
    let rest = &line[at..];
    let end = rest.find([']', ' ', ',']).unwrap_or(rest.len());
    Some(&rest[..end])
}

impl ServerProc {
    fn spawn(name: &str, extra: &[&str]) -> ServerProc {
        let dir = TempDir::new(&format!("hostile-{name}"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringnfs"));
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--control",
            "127.0.0.1:0",
        ])
        .args(["--threads", "2", "--no-pin", "--backend", "memory"])
        .arg("--state-dir")
        .arg(dir.0.join("state"))
        .arg("--export")
        .arg(dir.0.join("export"))
        .args(extra)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn ringnfs serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let l = log.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut control = None;
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("control plane listening") {
                    control = field_after(&line, "addr=").map(str::to_string);
                }
                if line.contains("ringnfs serving")
                    && let Some(tx) = tx.take()
                {
                    let addr = field_after(&line, "addrs=[").map(str::to_string);
                    let _ = tx.send((addr, control.clone()));
                }
                l.lock().push(line);
            }
        });
        let (addr, control) = rx.recv_timeout(WAIT).expect("server reports its addresses");
        ServerProc {
            child,
            addr: addr.expect("listen address").parse().unwrap(),
            control: control.expect("control address").parse().unwrap(),
            log,
            _dir: dir,
        }
    }

    /// (VmRSS, VmHWM) in KiB.
    fn rss(&self) -> (u64, u64) {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("server still running");
        let get = |k: &str| {
            s.lines()
                .find(|l| l.starts_with(k))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (get("VmRSS:"), get("VmHWM:"))
    }

    fn metrics(&self) -> String {
        let mut s = TcpStream::connect(self.control).expect("control plane");
        s.set_read_timeout(Some(WAIT)).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    }

    /// A metric's value (`name` with labels as rendered, e.g.
    /// `ringnfs_idle_closes_total`).
    fn metric(&self, name: &str) -> u64 {
        let m = self.metrics();
        m.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    }

    fn assert_alive(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "server exited; log:\n{}",
            self.log.lock().join("\n")
        );
    }

    /// SIGTERM and wait: the server must exit 0.
    fn stop(mut self) -> Vec<String> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let end = Instant::now() + WAIT;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                assert!(st.success(), "server exit status {st}");
                break;
            }
            assert!(Instant::now() < end, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        self.log.lock().clone()
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---- clients --------------------------------------------------------------------------

/// A TCP connection to `addr` from the local address `ip`.
fn from_ip(ip: &str, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    let local = SocketAddr::new(ip.parse::<IpAddr>().unwrap(), 0);
    sock.bind(&local.into())?;
    sock.connect(&addr.into())?;
    let s: TcpStream = sock.into();
    s.set_nodelay(true)?;
    Ok(s)
}

fn rpc_from(ip: &str, addr: SocketAddr) -> RpcConn {
    let c = RpcConn::from_stream(
        from_ip(ip, addr).expect("connect"),
        Credential::None,
        Arc::new(DefaultCallbackHandler::default()),
    )
    .expect("rpc conn");
    c.set_timeout(WAIT);
    c
}

/// EXCHANGE_ID on `c`: (clientid, first csa_sequence).
fn exchange_id(c: &RpcConn) -> (u64, u32) {
    let r = c
        .compound(
            1,
            b"",
            &[Op::ExchangeId(ExchangeIdArgs {
                verifier: rand::random(),
                owner_id: unique_owner(),
                flags: 0,
                state_protect: StateProtect::None,
                impl_id: None,
            })],
        )
        .expect("EXCHANGE_ID");
    let e = r.exchange_id().expect("EXCHANGE_ID ok");
    (e.clientid, e.sequenceid)
}

fn create_session_args(clientid: u64, sequence: u32) -> CreateSessionArgs {
    CreateSessionArgs {
        clientid,
        sequence,
        flags: 0,
        fore: default_fore_attrs(8),
        back: default_back_attrs(),
        cb_program: ringnfs::client::DEFAULT_CB_PROGRAM,
        sec_parms: vec![],
    }
}

fn create_session_op(clientid: u64, sequence: u32) -> Op {
    Op::CreateSession(create_session_args(clientid, sequence))
}

/// A session of a fresh client on a connection from `ip`.
fn session_from(ip: &str, addr: SocketAddr) -> Arc<Session> {
    let c = rpc_from(ip, addr);
    let (clientid, seq) = exchange_id(&c);
    let args = create_session_args(clientid, seq);
    let r = c
        .compound(1, b"", &[Op::CreateSession(args.clone())])
        .expect("CREATE_SESSION");
    let created = r.create_session().expect("CREATE_SESSION ok");
    let s = Arc::new(Session::new(args, created, c));
    // What a client sends before its first OPEN (RFC 8881 §18.51.3).
    let r = s
        .call(0, &[Op::ReclaimComplete { one_fs: false }], false)
        .expect("RECLAIM_COMPLETE");
    assert_eq!(r.status, status::NFS4_OK);
    s
}

/// True once the server closed `s` (EOF or reset), waiting up to `WAIT`.
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let end = Instant::now() + WAIT;
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

fn record(payload: &[u8]) -> Vec<u8> {
    let mut v = ((payload.len() as u32) | LAST).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

fn null_call(xid: u32, flavor: u32, cred_body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.put_u32(xid);
    v.put_u32(0);
    v.put_u32(2);
    v.put_u32(NFS4_PROGRAM);
    v.put_u32(NFS4_VERSION);
    v.put_u32(PROC_NULL);
    v.put_u32(flavor);
    v.put_opaque(cred_body);
    v.put_u32(0);
    v.put_u32(0);
    v
}

// ---- the well-behaved client --------------------------------------------------------

struct Good {
    session: Arc<Session>,
}

impl Good {
    fn new(addr: SocketAddr) -> Good {
        let (_, session) = Client::connect(
            &[addr],
            ClientOptions {
                timeout: WAIT,
                back_channel: false,
                ..ClientOptions::default()
            },
        )
        .expect("good client session");
        Good { session }
    }

    fn once(&self) -> Duration {
        let t = Instant::now();
        let r = self
            .session
            .call(
                0,
                &[Op::PutRootFh, Op::GetAttr(vec![(1 << 1) | (1 << 4)])],
                false,
            )
            .expect("well-behaved request answered");
        assert_eq!(r.status, status::NFS4_OK, "well-behaved request succeeds");
        t.elapsed()
    }

    /// Run `attack` while this client keeps sending requests; every one must succeed.
    fn during(&self, attack: impl FnOnce()) -> Lat {
        /// Stops the probe even when the attack panics (else the scope never ends).
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let _guard = StopOnDrop(&stop);
            let probe = s.spawn(|| {
                let mut v = Vec::new();
                while !stop.load(Ordering::Relaxed) || v.len() < 50 {
                    v.push(self.once());
                    std::thread::sleep(Duration::from_micros(500));
                }
                v
            });
            attack();
            stop.store(true, Ordering::Relaxed);
            Lat::of(probe.join().expect("probe thread"))
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Lat {
    n: usize,
    p50_us: u64,
    p99_us: u64,
}

impl Lat {
    fn of(mut v: Vec<Duration>) -> Lat {
        v.sort();
        let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_micros() as u64;
        Lat {
            n: v.len(),
            p50_us: at(0.50),
            p99_us: at(0.99),
        }
    }
}

struct Report {
    base: Lat,
    rows: Vec<(String, Lat, u64, String)>,
}

// ---- attacks --------------------------------------------------------------------------

/// Record marks claiming 2 GiB - 1 (the most a mark can say) and 4 GiB through two
/// fragments: each connection is closed before anything is buffered.
fn huge_records(srv: &ServerProc) -> String {
    let before = srv.metric("ringnfs_record_errors_total{cause=\"too_large\"}");
    let mut conns = Vec::new();
    for i in 0..16 {
        let mut s = from_ip("127.0.0.2", srv.addr).unwrap();
        if i % 2 == 0 {
            s.write_all(&u32::MAX.to_be_bytes()).unwrap();
        } else {
            // Two non-last fragments of 2 GiB - 1 each, then a last one: "4 GiB".
            let _ = s.write_all(&0x7fff_ffffu32.to_be_bytes());
            let _ = s.write_all(&[0u8; 65536]);
        }
        conns.push(s);
    }
    for s in &mut conns {
        assert!(closed_by_server(s), "huge record closes the connection");
    }
    let n = srv.metric("ringnfs_record_errors_total{cause=\"too_large\"}") - before;
    assert_eq!(n, 16);
    format!("16 conns closed, too_large +{n}")
}

/// Endless empty fragments (and one-byte fragments) never ending a record.
fn endless_fragments(srv: &ServerProc) -> String {
    let before = srv.metric("ringnfs_record_errors_total{cause=\"too_many_fragments\"}");
    let mut handles = Vec::new();
    for i in 0..8 {
        let addr = srv.addr;
        handles.push(std::thread::spawn(move || {
            let mut s = from_ip("127.0.0.2", addr).unwrap();
            let frag: Vec<u8> = if i % 2 == 0 {
                0u32.to_be_bytes().to_vec()
            } else {
                let mut f = 1u32.to_be_bytes().to_vec();
                f.push(b'x');
                f
            };
            let chunk: Vec<u8> = frag.repeat(256);
            // Keep sending until the server closes (bounded).
            for _ in 0..100_000 {
                if s.write_all(&chunk).is_err() {
                    return true;
                }
            }
            closed_by_server(&mut s)
        }));
    }
    for h in handles {
        assert!(h.join().unwrap(), "endless fragments close the connection");
    }
    let n = srv.metric("ringnfs_record_errors_total{cause=\"too_many_fragments\"}") - before;
    assert_eq!(n, 8);
    format!("8 conns closed, too_many_fragments +{n}")
}

/// 20 slowloris clients: a record header, then one byte a second. The idle timeout (no
/// complete record, no session) closes them.
fn slowloris(srv: &ServerProc) -> String {
    let before = srv.metric("ringnfs_idle_closes_total");
    let mut conns: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = from_ip("127.0.0.2", srv.addr).unwrap();
            s.write_all(&(1000u32 | LAST).to_be_bytes()).unwrap();
            s
        })
        .collect();
    let start = Instant::now();
    let mut closed = 0;
    while start.elapsed() < Duration::from_secs(IDLE_SECS + 3) {
        std::thread::sleep(Duration::from_secs(1));
        closed = conns
            .iter_mut()
            .map(|s| s.write_all(b"x").is_err())
            .filter(|e| *e)
            .count();
    }
    for s in &mut conns {
        assert!(closed_by_server(s), "slowloris connection closed");
    }
    let n = srv.metric("ringnfs_idle_closes_total") - before;
    assert!(n >= 20, "idle closes {n}");
    format!("20 conns closed by idle timeout (idle_closes +{n}, {closed} seen by writes)")
}

/// 300 connections from 127.0.0.3 that ask for TLS and then misbehave where the
/// handshake belongs (100 send bytes that are not TLS, 100 send the first bytes of a
/// ClientHello and stop, 100 send nothing), then 200 real TLS handshakes one after the
/// other from 127.0.0.4. The bad ones are closed (an alert, or the idle or handshake
/// timeout) and counted; the real ones all succeed.
fn tls_handshake_flood(srv: &ServerProc, ca: &std::path::Path) -> String {
    let failed = "ringnfs_tls_handshakes_total{result=\"failed\"}";
    let ok = "ringnfs_tls_handshakes_total{result=\"ok\"}";
    let (failed0, ok0) = (srv.metric(failed), srv.metric(ok));
    let mut conns: Vec<TcpStream> = (0..300u32)
        .map(|i| {
            let mut s = from_ip("127.0.0.3", srv.addr).unwrap();
            s.write_all(&record(&null_call(i, 7, &[]))).unwrap();
            s
        })
        .collect();
    for (i, s) in conns.iter_mut().enumerate() {
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut h = [0u8; 4];
        s.read_exact(&mut h).expect("probe reply");
        let mut reply = vec![0; (u32::from_be_bytes(h) & !LAST) as usize];
        s.read_exact(&mut reply).unwrap();
        assert!(
            reply.windows(8).any(|w| w == b"STARTTLS"),
            "STARTTLS offered"
        );
        match i % 3 {
            0 => s.write_all(&[0x42; 64]).unwrap(),
            1 => s
                .write_all(&[0x16, 0x03, 0x01, 0x01, 0xf4, 0x01, 0x00])
                .unwrap(),
            _ => {}
        }
    }
    let tls = ringnfs::client::ClientTls::new(ca, "127.0.0.1", None).unwrap();
    for _ in 0..200 {
        let s = from_ip("127.0.0.4", srv.addr).unwrap();
        let c = RpcConn::from_stream_tls(
            s,
            Credential::None,
            Arc::new(DefaultCallbackHandler::default()),
            Some(&tls),
        )
        .expect("a real TLS client gets in");
        c.null().expect("NULL inside TLS");
    }
    for s in &mut conns {
        assert!(closed_by_server(s), "misbehaving TLS connection closed");
    }
    let (bad, good) = (srv.metric(failed) - failed0, srv.metric(ok) - ok0);
    assert!(bad >= 100, "garbage handshakes counted as failed: {bad}");
    assert_eq!(good, 200);
    format!(
        "300 bad closed (failed +{bad}; the stalled ones by the idle timeout), 200 handshakes ok"
    )
}

/// A client that pipelines 500,000 NULL calls and never reads a reply.
fn never_reads(srv: &ServerProc) -> String {
    let before = srv.metric("ringnfs_backpressure_pauses_total");
    let mut s = from_ip("127.0.0.2", srv.addr).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut batch = Vec::new();
    for xid in 0..10_000u32 {
        batch.extend_from_slice(&record(&null_call(xid, 0, b"")));
    }
    let start = Instant::now();
    let mut sent = 0usize;
    for _ in 0..50 {
        if s.write_all(&batch).is_err() || start.elapsed() > Duration::from_secs(4) {
            break; // the server stopped reading: its reply queue is full
        }
        sent += 10_000;
    }
    std::thread::sleep(Duration::from_millis(500));
    let n = srv.metric("ringnfs_backpressure_pauses_total") - before;
    assert!(n >= 1, "the server paused reading");
    drop(s);
    format!("~{sent} calls written, backpressure pauses +{n}")
}

/// 10,000 idle connections from 40 addresses (250 each): over the total limit they
/// are closed at accept; the admitted ones are closed by the idle timeout.
fn idle_flood(srv: &ServerProc, peak_rss: &mut u64) -> String {
    let before = srv.metric("ringnfs_connections_refused_total{cause=\"total\"}");
    let before_idle = srv.metric("ringnfs_idle_closes_total");
    let mut conns = Vec::with_capacity(10_000);
    let mut connect_errors = 0;
    for i in 0..10_000 {
        let ip = format!("127.0.1.{}", 10 + i % 40);
        match from_ip(&ip, srv.addr) {
            Ok(s) => conns.push(s),
            Err(_) => connect_errors += 1,
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    *peak_rss = (*peak_rss).max(srv.rss().0);
    let refused = srv.metric("ringnfs_connections_refused_total{cause=\"total\"}") - before;
    let open = srv.metric("ringnfs_connections");
    assert!(
        open <= MAX_CONNECTIONS as u64,
        "open connections {open} within the limit"
    );
    // Connecting 10,000 takes longer than the idle timeout: places freed by idle
    // closes during the flood are taken by later connections.
    let idle_so_far = srv.metric("ringnfs_idle_closes_total") - before_idle;
    assert!(
        refused + connect_errors + idle_so_far >= (10_000 - MAX_CONNECTIONS) as u64,
        "refused {refused} + connect errors {connect_errors} + idle closes {idle_so_far}"
    );
    // The idle timeout closes the admitted ones.
    let end = Instant::now() + WAIT;
    while srv.metric("ringnfs_connections") > 5 {
        assert!(Instant::now() < end, "idle connections closed");
        std::thread::sleep(Duration::from_millis(200));
    }
    let idle = srv.metric("ringnfs_idle_closes_total") - before_idle;
    drop(conns);
    format!("refused {refused} (total limit), idle-closed {idle}, connect errors {connect_errors}")
}

/// 1,200 connections from one address: the per-peer limit closes those past 1,000.
fn per_peer_flood(srv: &ServerProc) -> String {
    let before = srv.metric("ringnfs_connections_refused_total{cause=\"per_peer\"}");
    let conns: Vec<TcpStream> = (0..1200)
        .filter_map(|_| from_ip("127.0.0.3", srv.addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let refused = srv.metric("ringnfs_connections_refused_total{cause=\"per_peer\"}") - before;
    assert!(
        refused >= 200 - (1200 - conns.len() as u64),
        "refused {refused}"
    );
    drop(conns);
    format!("refused {refused} (per-peer limit)")
}

/// 1,000 connections that each create a client and a session, then vanish.
fn sessions_vanish(srv: &ServerProc) -> String {
    let before = srv.metric("ringnfs_sessions");
    for i in 0..1000 {
        let ip = format!("127.0.2.{}", 1 + i % 8);
        let s = session_from(&ip, srv.addr);
        s.close_connections();
    }
    let after = srv.metric("ringnfs_sessions");
    assert!(
        after >= before + 1000,
        "sessions stay until their lease ends"
    );
    format!("sessions {before} -> {after} (they live until lease expiry)")
}

/// A client that creates and opens 3,000 files to collect (write) delegations: it gets
/// no more than its bound, and another client still gets one.
fn delegation_hoarder(srv: &ServerProc) -> String {
    let connect = || {
        let (_, s) = Client::connect(&[srv.addr], ClientOptions::default()).expect("client");
        ringnfs::client::Files::new(s)
    };
    let hoarder = connect();
    let root = hoarder.root_fh().expect("root");
    let before = srv.metric("ringnfs_delegations");
    for i in 0..3000 {
        hoarder
            .create(&root, format!("hoard-{i}").as_bytes(), 0o644)
            .expect("create");
    }
    let held = srv.metric("ringnfs_delegations") - before;
    assert_eq!(held, DELEG_PER_CLIENT, "no more than the per-client bound");
    let other = connect();
    other.create(&root, b"hoard-other", 0o644).expect("create");
    assert_eq!(
        srv.metric("ringnfs_delegations"),
        before + held + 1,
        "another client still gets one"
    );
    format!("{held} delegations for 3,000 opens (bound {DELEG_PER_CLIENT}); another client got one")
}

/// Answers nothing on the back channel.
struct Silent;

impl ringnfs::client::CallbackHandler for Silent {
    fn handle(&self, _: &ringnfs::rpc::CallHeader<'_>) -> ringnfs::client::CallbackReply {
        ringnfs::client::CallbackReply::Drop
    }
}

/// A holder that never answers CB_RECALL: the writer waits for it (NFS4ERR_DELAY, until
/// the lease revokes it), while another holder's recall goes through at once.
fn silent_holder(srv: &ServerProc) -> String {
    use ringnfs::client::{Delegation, Files, ops::share};
    let with =
        |opts: ClientOptions| Files::new(Client::connect(&[srv.addr], opts).expect("client").1);
    let setup = with(ClientOptions {
        back_channel: false,
        ..Default::default()
    });
    let silent = with(ClientOptions {
        callback_handler: Some(Arc::new(Silent)),
        ..Default::default()
    });
    let cb = Arc::new(DefaultCallbackHandler::default());
    let holder = with(ClientOptions {
        callback_handler: Some(cb.clone()),
        ..Default::default()
    });
    let writer = with(ClientOptions {
        back_channel: false,
        ..Default::default()
    });
    let root = setup.root_fh().expect("root");
    let read_deleg = |f: &Files, name: &[u8]| {
        let args = f.open_args(
            share::ACCESS_READ,
            0,
            OpenHow::NoCreate,
            OpenClaim::Null(name.to_vec()),
        );
        let (of, res) = f.open_with(&root, args).expect("open");
        match res.delegation {
            Delegation::Read { stateid, .. } => (of.fh, stateid),
            other => panic!("no read delegation: {other:?}"),
        }
    };
    setup.write_file(&root, b"quiet", b"q").expect("setup");
    setup.write_file(&root, b"loud", b"l").expect("setup");
    let (quiet, _) = read_deleg(&silent, b"quiet");
    let (loud, deleg) = read_deleg(&holder, b"loud");
    let delayed = |fh: &[u8]| {
        writer
            .write_at(fh, Stateid::ANONYMOUS, 0, b"w", 2)
            .unwrap_err()
            .nfs_status()
            == Some(status::NFS4ERR_DELAY)
    };
    assert!(delayed(&quiet) && delayed(&loud));
    let t = Instant::now();
    while !cb.stats().recalls.iter().any(|(s, _)| *s == deleg) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the other holder's recall is held up"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let recall_ms = t.elapsed().as_millis();
    holder
        .call(&[Op::PutFh(loud.clone()), Op::DelegReturn(deleg)])
        .expect("DELEGRETURN");
    writer
        .write_at(&loud, Stateid::ANONYMOUS, 0, b"w", 2)
        .expect("write after the return");
    assert!(
        delayed(&quiet),
        "the silent holder's file waits for its lease"
    );
    format!("the other holder's recall came in {recall_ms} ms while the silent one's hung")
}

/// One client cycling CREATE_SESSION / DESTROY_SESSION; then the per-client limit.
fn session_cycling(srv: &ServerProc, cycles: u32) -> String {
    let c = rpc_from("127.0.0.4", srv.addr);
    let (clientid, mut seq) = exchange_id(&c);
    for _ in 0..cycles {
        let r = c
            .compound(1, b"", &[create_session_op(clientid, seq)])
            .expect("CREATE_SESSION answered");
        let sid = r.create_session().expect("CREATE_SESSION ok").sessionid;
        seq = seq.wrapping_add(1);
        let r = c
            .compound(1, b"", &[Op::DestroySession(sid)])
            .expect("DESTROY_SESSION answered");
        assert_eq!(r.status, status::NFS4_OK);
    }
    // 16 sessions are fine, the 17th is NFS4ERR_NOSPC (and its replay too).
    let before = srv.metric("ringnfs_sessions_refused_total{cause=\"per_client\"}");
    for _ in 0..16 {
        let r = c
            .compound(1, b"", &[create_session_op(clientid, seq)])
            .unwrap();
        assert_eq!(r.status, status::NFS4_OK);
        seq = seq.wrapping_add(1);
    }
    for _ in 0..2 {
        let r = c
            .compound(1, b"", &[create_session_op(clientid, seq)])
            .unwrap();
        assert_eq!(r.status, status::NFS4ERR_NOSPC, "over sessions per client");
    }
    let refused = srv.metric("ringnfs_sessions_refused_total{cause=\"per_client\"}") - before;
    assert_eq!(refused, 1, "the replay is answered from the cache");
    format!("{cycles} cycles, then 17th session NOSPC")
}

/// BIND_CONN_TO_SESSION storm on one session from 200 connections.
fn bind_storm(srv: &ServerProc) -> String {
    let s = session_from("127.0.0.5", srv.addr);
    for _ in 0..200 {
        s.add_connection(rpc_from("127.0.0.5", srv.addr));
    }
    let ok = std::sync::atomic::AtomicUsize::new(0);
    let delay = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|sc| {
        for t in 0..4 {
            let (s, ok, delay) = (&s, &ok, &delay);
            sc.spawn(move || {
                for round in 0..10 {
                    for i in (1 + t..=200).step_by(4) {
                        let dir = if round % 2 == 0 { 1 } else { 3 }; // FORE, FORE_OR_BOTH
                        match s.bind_conn(i, dir) {
                            Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(e) if e.nfs_status() == Some(status::NFS4ERR_DELAY) => {
                                delay.fetch_add(1, Ordering::Relaxed)
                            }
                            Err(e) => panic!("bind answered {e:?}"),
                        };
                    }
                }
            });
        }
    });
    let (ok, delay) = (ok.into_inner(), delay.into_inner());
    assert!(delay > 0, "the per-session limit refuses most binds");
    s.close_connections();
    format!("{ok} binds ok, {delay} NFS4ERR_DELAY")
}

/// COMPOUNDs at and over the op-count and size limits.
fn compound_limits(srv: &ServerProc) -> String {
    let s = session_from("127.0.0.6", srv.addr);
    let maxops = s.fore_attrs().maxoperations as usize;
    let maxreq = s.fore_attrs().maxrequestsize as usize;
    let ops = |n: usize| vec![Op::PutRootFh; n - 1]; // plus SEQUENCE
    let r = s.call(0, &ops(maxops), false).unwrap();
    assert_eq!(r.status, status::NFS4_OK, "{maxops} ops");
    let r = s.call(0, &ops(maxops + 1), false).unwrap();
    assert_eq!(r.status, status::NFS4ERR_TOO_MANY_OPS);
    // A WRITE whose COMPOUND is just under / over the negotiated request size.
    let write = |n: usize| {
        vec![
            Op::PutRootFh,
            Op::Write {
                stateid: Stateid {
                    seqid: 0,
                    other: [0; 12],
                },
                offset: 0,
                stable: 2,
                data: vec![0x5a; n],
            },
        ]
    };
    let r = s.call(0, &write(maxreq - 400), false).unwrap();
    assert_ne!(r.sequence_status(), Some(status::NFS4ERR_REQ_TOO_BIG));
    let r = s.call(0, &write(maxreq + 64), false).unwrap();
    assert_eq!(r.status, status::NFS4ERR_REQ_TOO_BIG, "over maxrequestsize");
    // A record over the transport's maximum closes the connection.
    let mut raw = from_ip("127.0.0.6", srv.addr).unwrap();
    raw.write_all(&((MAX_RECORD as u32 + 1) | LAST).to_be_bytes())
        .unwrap();
    assert!(closed_by_server(&mut raw));
    s.close_connections();
    format!("{maxops} ops ok, +1 TOO_MANY_OPS; {maxreq} B ok, over REQ_TOO_BIG")
}

/// AUTH_SYS with more than 16 gids, a 1,000-gid list, a gid count with no gids behind
/// it, and a machine name over 255 bytes: AUTH_BADCRED, connection stays.
fn bad_auth_sys(srv: &ServerProc) -> String {
    let c = rpc_from("127.0.0.7", srv.addr);
    let body = |name: &[u8], gids: &[u32], claim: Option<u32>| {
        let mut b = Vec::new();
        b.put_u32(1);
        b.put_opaque(name);
        b.put_u32(0);
        b.put_u32(0);
        b.put_u32(claim.unwrap_or(gids.len() as u32));
        for g in gids {
            b.put_u32(*g);
        }
        b
    };
    let cases: Vec<Vec<u8>> = vec![
        body(b"m", &(0..17).collect::<Vec<_>>(), None),
        body(b"m", &(0..1000).collect::<Vec<_>>(), None),
        body(b"m", &[], Some(u32::MAX)),
        body(&[b'n'; 256], &[], None),
        body(&[b'n'; 5000], &[], None),
    ];
    for (i, cred) in cases.iter().enumerate() {
        let xid = 0x5000 + i as u32;
        c.send_raw(&record(&null_call(xid, 1, cred))).unwrap();
        let r = c.recv_unmatched(WAIT).expect("reply to bad AUTH_SYS");
        match decode_message(&r).unwrap() {
            RpcMessage::Reply(rep) => {
                assert_eq!(rep.xid, xid);
                let got = rep.body.err();
                // A credential body over 400 bytes breaks the call header's XDR
                // (opaque_auth is body<400>, RFC 5531): GARBAGE_ARGS.
                let over_400 = cred.len() > 400;
                assert!(
                    got == Some(ReplyFailure::AuthError(1))
                        || (over_400
                            && got
                                == Some(ReplyFailure::Accepted(
                                    ringnfs::rpc::AcceptStat::GarbageArgs
                                ))),
                    "case {i}: {got:?}"
                );
            }
            RpcMessage::Call(_) => panic!("a call back?"),
        }
    }
    c.null().expect("connection still serves");
    format!("{} malformed AUTH_SYS creds → AUTH_BADCRED", cases.len())
}

/// Names with NUL, '/', invalid UTF-8, empty, ".", "..", too long, through LOOKUP,
/// CREATE, OPEN, RENAME, LINK and REMOVE.
fn bad_names(srv: &ServerProc) -> String {
    let s = session_from("127.0.0.8", srv.addr);
    let ok = |r: &ringnfs::client::CompoundReply| r.status == status::NFS4_OK;
    // A file and a directory to work with.
    let r = s
        .call(
            0,
            &[
                Op::PutRootFh,
                Op::Create {
                    kind: CreateType::Dir,
                    name: b"hostile-dir".to_vec(),
                    attrs: Fattr::new().mode(0o777),
                },
            ],
            false,
        )
        .unwrap();
    assert!(ok(&r) || r.status == status::NFS4ERR_EXIST);
    let bad: Vec<(Vec<u8>, &[NfsStatus])> = vec![
        (b"a\0b".to_vec(), &[status::NFS4ERR_BADNAME]),
        (b"a/b".to_vec(), &[status::NFS4ERR_BADNAME]),
        (b"/".to_vec(), &[status::NFS4ERR_BADNAME]),
        (b"..".to_vec(), &[status::NFS4ERR_BADNAME]),
        (b".".to_vec(), &[status::NFS4ERR_BADNAME]),
        (Vec::new(), &[status::NFS4ERR_INVAL]),
        (vec![b'a'; 256], &[status::NFS4ERR_NAMETOOLONG]),
        (vec![b'a'; 70_000], &[status::NFS4ERR_NAMETOOLONG]),
    ];
    let mut checked = 0;
    for (name, want) in &bad {
        let attempts: Vec<Vec<Op>> = vec![
            vec![Op::PutRootFh, Op::Lookup(name.clone())],
            vec![
                Op::PutRootFh,
                Op::Create {
                    kind: CreateType::Dir,
                    name: name.clone(),
                    attrs: Fattr::new(),
                },
            ],
            vec![
                Op::PutRootFh,
                Op::Open(OpenArgs {
                    seqid: 0,
                    share_access: 3,
                    share_deny: 0,
                    clientid: s.clientid(),
                    owner: b"hostile".to_vec(),
                    how: OpenHow::Unchecked(Fattr::new()),
                    claim: OpenClaim::Null(name.clone()),
                }),
            ],
            vec![
                Op::PutRootFh,
                Op::SaveFh,
                Op::Rename {
                    old: b"hostile-dir".to_vec(),
                    new: name.clone(),
                },
            ],
            vec![
                Op::PutRootFh,
                Op::SaveFh,
                Op::Rename {
                    old: name.clone(),
                    new: b"x".to_vec(),
                },
            ],
            vec![
                Op::PutRootFh,
                Op::Lookup(b"hostile-dir".to_vec()),
                Op::SaveFh,
                Op::PutRootFh,
                Op::Link(name.clone()),
            ],
            vec![Op::PutRootFh, Op::Remove(name.clone())],
        ];
        for ops in attempts {
            let r = s.call(0, &ops, false).expect("answered");
            let last = r.results.last().unwrap();
            assert!(
                want.contains(&last.status)
                    // LINK of a directory may be refused before the name is looked at.
                    || (last.opnum == op::LINK && last.status == status::NFS4ERR_ISDIR),
                "{:?} on {:?}: got {} want {want:?}",
                last.opnum,
                String::from_utf8_lossy(&name[..name.len().min(20)]),
                last.status
            );
            checked += 1;
        }
    }
    // Invalid UTF-8 is a legal name (Linux names are bytes): it works and goes away.
    let latin1 = b"caf\xe9".to_vec();
    let r = s
        .call(
            0,
            &[
                Op::PutRootFh,
                Op::Create {
                    kind: CreateType::Dir,
                    name: latin1.clone(),
                    attrs: Fattr::new(),
                },
            ],
            false,
        )
        .unwrap();
    assert!(ok(&r), "non-UTF-8 name created: {}", r.status);
    let r = s
        .call(0, &[Op::PutRootFh, Op::Remove(latin1)], false)
        .unwrap();
    assert!(ok(&r));
    s.close_connections();
    format!("{checked} bad-name ops refused with BADNAME/INVAL/NAMETOOLONG")
}

#[test]
fn hostile_clients_leave_a_well_behaved_client_served() {
    // Our side of the 10,000-connection flood needs that many descriptors.
    let _ = rlimit::increase_nofile_limit(40_000);
    let max_conns = MAX_CONNECTIONS.to_string();
    let per_peer = MAX_PER_PEER.to_string();
    let idle = IDLE_SECS.to_string();
    // TLS on, for the handshake flood.
    let pki_dir = TempDir::new("hostile-pki");
    let ca = ringnfs_testkit::pki::TestCa::new(&pki_dir.0, "hostile");
    let cert = ca.issue(
        "server",
        &["127.0.0.1"],
        ringnfs_testkit::pki::Role::Server,
        false,
    );
    let (cert_path, key_path) = (
        cert.cert.display().to_string(),
        cert.key.display().to_string(),
    );
    let mut srv = ServerProc::spawn(
        "suite",
        &[
            "--tls-cert",
            &cert_path,
            "--tls-key",
            &key_path,
            "--max-connections",
            &max_conns,
            "--max-connections-per-peer",
            &per_peer,
            "--idle-timeout",
            &idle,
            "--max-sessions-per-client",
            "16",
            "--delegations",
            "--max-delegations-per-client",
            &DELEG_PER_CLIENT.to_string(),
            "--max-delegations",
            "1000",
        ],
    );
    let cycles: u32 = std::env::var("HOSTILE_SESSION_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let good = Good::new(srv.addr);
    // Warm up, then the baseline.
    for _ in 0..200 {
        good.once();
    }
    let base = good.during(|| std::thread::sleep(Duration::from_secs(1)));
    let mut report = Report {
        base,
        rows: Vec::new(),
    };
    let mut peak_flood_rss = 0;
    type Attack<'a> = Box<dyn FnOnce(&ServerProc) -> String + 'a>;
    let peak = &mut peak_flood_rss;
    let attacks: Vec<(&str, Attack)> = vec![
        ("records claiming 2-4 GiB", Box::new(huge_records)),
        ("endless fragments", Box::new(endless_fragments)),
        ("slowloris x20 (1 byte/s)", Box::new(slowloris)),
        ("never reads replies", Box::new(never_reads)),
        (
            "10,000 idle connections",
            Box::new(move |s: &ServerProc| idle_flood(s, peak)),
        ),
        ("1,200 conns from one address", Box::new(per_peer_flood)),
        ("1,000 sessions that vanish", Box::new(sessions_vanish)),
        (
            "CREATE/DESTROY_SESSION cycling",
            Box::new(move |s: &ServerProc| session_cycling(s, cycles)),
        ),
        ("BIND_CONN_TO_SESSION storm", Box::new(bind_storm)),
        ("COMPOUND op-count/size limits", Box::new(compound_limits)),
        ("oversized AUTH_SYS", Box::new(bad_auth_sys)),
        ("bad names (NUL, /, ...)", Box::new(bad_names)),
        (
            "delegation hoarder (3,000 files)",
            Box::new(delegation_hoarder),
        ),
        ("holder never answers CB_RECALL", Box::new(silent_holder)),
        (
            "TLS handshake flood (300 bad, 200 real)",
            Box::new(|s: &ServerProc| tls_handshake_flood(s, &ca.cert)),
        ),
    ];
    for (name, attack) in attacks {
        let mut outcome = String::new();
        let lat = good.during(|| outcome = attack(&srv));
        srv.assert_alive();
        let rss = srv.rss().0;
        report.rows.push((name.to_string(), lat, rss, outcome));
    }
    // A new client still gets in after everything.
    let late = Good::new(srv.addr);
    late.once();
    let (rss, hwm) = srv.rss();
    let panics = srv.metric("ringnfs_service_panics_total");
    println!(
        "\nhostile suite: baseline p50 {} us p99 {} us ({} requests)",
        report.base.p50_us, report.base.p99_us, report.base.n
    );
    println!(
        "{:<32} {:>7} {:>9} {:>9} {:>10} {:>9}  outcome",
        "attack", "reqs", "p50 us", "p99 us", "p99/base", "RSS MiB"
    );
    for (name, lat, rss, outcome) in &report.rows {
        println!(
            "{name:<32} {:>7} {:>9} {:>9} {:>10.2} {:>9.1}  {outcome}",
            lat.n,
            lat.p50_us,
            lat.p99_us,
            lat.p99_us as f64 / report.base.p99_us.max(1) as f64,
            *rss as f64 / 1024.0
        );
    }
    println!(
        "peak RSS {:.1} MiB (bound {} MiB), RSS during the 10,000-connection flood {:.1} MiB, now {:.1} MiB",
        hwm as f64 / 1024.0,
        RSS_BOUND_KIB / 1024,
        peak_flood_rss as f64 / 1024.0,
        rss as f64 / 1024.0
    );
    assert_eq!(panics, 0, "no request panicked");
    assert!(
        hwm < RSS_BOUND_KIB,
        "peak RSS {hwm} KiB over {RSS_BOUND_KIB}"
    );
    let log = srv.stop();
    assert!(
        !log.iter().any(|l| l.contains("panicked")),
        "no panic in the log"
    );
}
