//! Draining a connection: the server stops reading it, sends the replies it owes,
//! unbinds it (reason `drain`) and closes it. A client retrying on its other connections
//! loses no request, and the reply cache keeps every request exactly-once.

pub mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use common::{TestServer, WAIT, sid, wait_until};
use ringnfs::client::BindConnArgs;
use ringnfs::client::{ClientOptions, CompoundReply, Op, RpcConn, Session};
use ringnfs::nfs4::consts::{cdfc, cdfs, seq4_status, status};
use ringnfs::rpc::Credential;
use ringnfs::service::ConnId;
use ringnfs::state::{Direction, StateManager};

const TOTAL_CALLS: usize = 3000;
const THREADS: usize = 3;

fn check_ok(r: &CompoundReply, what: &str) {
    assert_eq!(r.status, status::NFS4_OK, "{what}: {r:?}");
    assert_eq!(r.sequence_status(), Some(status::NFS4_OK), "{what}");
    assert!(!r.getfh().expect("GETFH").is_empty(), "{what}");
}

/// The server's id of the session's connection whose client end is `local`.
fn server_conn_id(state: &StateManager, s: &Session, local: SocketAddr) -> ConnId {
    let info = state.session_info(&sid(s)).expect("session");
    info.connections
        .iter()
        .find(|c| c.peer == local.to_string())
        .unwrap_or_else(|| panic!("{local} is not bound: {:?}", info.connections))
        .conn
}

/// Counts the client's "retrying on another connection" events (the only DEBUG event
/// of `ringnfs::client::session`) on the threads that install it.
#[derive(Clone, Default)]
struct RetryCounter(Arc<AtomicU64>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for RetryCounter {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let m = event.metadata();
        if m.target() == "ringnfs::client::session" && *m.level() == tracing::Level::DEBUG {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl RetryCounter {
    /// Install on the current thread for the guard's lifetime.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        use tracing_subscriber::layer::SubscriberExt;
        tracing::subscriber::set_default(tracing_subscriber::registry().with(self.clone()))
    }
    fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

trait BindOn {
    /// BIND_CONN_TO_SESSION(FORE) of `c` (not one of the session's own connections).
    fn bind_conn_on(&self, c: &RpcConn) -> u32;
}

impl BindOn for Session {
    fn bind_conn_on(&self, c: &RpcConn) -> u32 {
        let r = c
            .compound(
                1,
                b"",
                &[Op::BindConnToSession(BindConnArgs {
                    sessionid: self.sessionid(),
                    dir: cdfc::FORE,
                    use_rdma: false,
                })],
            )
            .expect("bind call");
        r.bind_conn().expect("BIND_CONN_TO_SESSION ok").dir
    }
}

/// Busy-wait (yielding) until `cond` holds, at most `WAIT`.
fn spin_until(mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::yield_now();
    }
    cond()
}

/// A session with `n` connections, each bound (one SEQUENCE on each).
fn session_with_conns(srv: &TestServer, n: usize) -> Arc<Session> {
    let (_ids, s) = srv.session_with(ClientOptions {
        connections: n,
        // The tests count every SEQUENCE after the warm-up; they open no files.
        reclaim_complete: false,
        ..ClientOptions::default()
    });
    for i in 0..n {
        check_ok(
            &s.call(i, &[Op::PutRootFh, Op::GetFh], true).unwrap(),
            "warm-up",
        );
    }
    let info = srv.state().session_info(&sid(&s)).unwrap();
    assert_eq!(info.summary.total, n);
    s
}

#[test]
fn draining_a_connection_under_load_loses_no_request() {
    let srv = TestServer::start();
    let state = srv.state().clone();
    let s = session_with_conns(&srv, 3);
    let warmup = 3u64;
    let conns = s.connections();
    let ids: Vec<ConnId> = conns
        .iter()
        .map(|c| server_conn_id(&state, &s, c.local_addr()))
        .collect();
    let m0 = state.metrics_snapshot();

    let issued = Arc::new(AtomicUsize::new(0));
    let completed = Arc::new(AtomicU64::new(0));
    let retries = RetryCounter::default();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let s = s.clone();
            let issued = issued.clone();
            let completed = completed.clone();
            let retries = retries.clone();
            std::thread::Builder::new()
                .name(format!("drain-load-{t}"))
                .spawn(move || {
                    let _g = retries.install();
                    let mut failures = Vec::new();
                    while issued.fetch_add(1, Ordering::Relaxed) < TOTAL_CALLS {
                        match s.call_retrying(&[Op::PutRootFh, Op::GetFh], true) {
                            Ok(r)
                                if r.status == status::NFS4_OK
                                    && r.sequence_status() == Some(status::NFS4_OK)
                                    && r.getfh().is_ok_and(|fh| !fh.is_empty()) =>
                            {
                                completed.fetch_add(1, Ordering::Relaxed);
                            }
                            other => failures.push(format!("{other:?}")),
                        }
                    }
                    failures
                })
                .unwrap()
        })
        .collect();

    // Drain the middle connection once the load is well under way (a busy wait: the
    // calls are fast, a sleeping poll could miss the load altogether).
    assert!(
        spin_until(|| completed.load(Ordering::Relaxed) >= 300),
        "load started"
    );
    let victim = 1;
    assert!(state.drain_connection(ids[victim]));
    let at_drain = completed.load(Ordering::Relaxed);
    // Marked right away: still listed as draining, or already gone.
    let listed = state
        .connections()
        .into_iter()
        .find(|c| c.id == ids[victim]);
    assert!(
        listed.as_ref().is_none_or(|c| c.draining),
        "draining or gone: {listed:?}"
    );

    let mut failures = Vec::new();
    for t in threads {
        failures.extend(t.join().expect("load thread"));
    }
    assert!(failures.is_empty(), "lost or failed requests: {failures:?}");
    assert_eq!(completed.load(Ordering::Relaxed), TOTAL_CALLS as u64);

    // The drained connection leaves the session and the server, and its client end
    // sees the close; the others stay bound.
    assert!(wait_until(WAIT, || {
        state
            .session_info(&sid(&s))
            .is_some_and(|i| i.connections.iter().all(|c| c.conn != ids[victim]))
    }));
    assert!(wait_until(WAIT, || {
        state.connections().iter().all(|c| c.id != ids[victim])
    }));
    assert!(wait_until(WAIT, || conns[victim].is_closed()));
    let info = state.session_info(&sid(&s)).unwrap();
    let mut left: Vec<ConnId> = info.connections.iter().map(|c| c.conn).collect();
    left.sort();
    let mut want = vec![ids[0], ids[2]];
    want.sort();
    assert_eq!(left, want);
    assert!(info.connections.iter().all(|c| !c.draining));
    assert!(!conns[0].is_closed() && !conns[2].is_closed());

    let m = state.metrics_snapshot();
    assert_eq!(m.unbinds_drain, 1);
    assert_eq!(m.unbinds_total(), 1);
    assert_eq!(
        m.binds_total() - m.unbinds_total(),
        state.bound_connection_count() as u64
    );
    // Exactly-once: every call ran its ops once on the server (retries of requests the
    // server had executed were answered from the reply cache), and the client's slots
    // advanced once per call.
    assert_eq!(
        m.op_count("PUTROOTFH") - m0.op_count("PUTROOTFH"),
        TOTAL_CALLS as u64
    );
    let advanced: u64 = (0..s.slot_count() as u32)
        .map(|slot| s.next_seqid(slot).unwrap() as u64 - 1)
        .sum();
    assert_eq!(advanced, TOTAL_CALLS as u64 + warmup);
    println!(
        "drained after {at_drain} of {TOTAL_CALLS} calls; client retries: {}; SEQUENCE ops \
         processed: {} (any excess over the calls were answered from the reply cache)",
        retries.count(),
        m.op_count("SEQUENCE") - m0.op_count("SEQUENCE")
    );

    // The session goes on over the remaining connections.
    for i in [0, 2] {
        check_ok(
            &s.call(i, &[Op::PutRootFh, Op::GetFh], false).unwrap(),
            "after drain",
        );
    }
    // Draining a connection that is gone is refused.
    assert!(!state.drain_connection(ids[victim]));
}

#[test]
fn draining_an_idle_connection_unbinds_and_closes_it() {
    let srv = TestServer::start();
    let state = srv.state().clone();
    let s = session_with_conns(&srv, 2);
    let conns = s.connections();
    let id = server_conn_id(&state, &s, conns[1].local_addr());
    assert!(state.drain_connection(id));
    let listed = state.connections().into_iter().find(|c| c.id == id);
    assert!(listed.as_ref().is_none_or(|c| c.draining), "{listed:?}");
    assert!(wait_until(WAIT, || conns[1].is_closed()));
    assert!(wait_until(WAIT, || state.connection_count() == 1));
    assert!(wait_until(WAIT, || state.metrics_snapshot().unbinds_drain == 1));
    let info = state.session_info(&sid(&s)).unwrap();
    assert_eq!(info.summary.total, 1);
    assert_eq!(info.connections[0].direction, Direction::Both);
    assert!(matches!(
        s.call(1, &[Op::PutRootFh], false),
        Err(ringnfs::client::ClientError::Disconnected)
    ));
    check_ok(
        &s.call(0, &[Op::PutRootFh, Op::GetFh], false).unwrap(),
        "other connection",
    );
    let m = state.metrics_snapshot();
    assert_eq!((m.unbinds_drain, m.unbinds_disconnect), (1, 0));
}

#[test]
fn draining_the_back_channel_connection_reports_the_callback_path_down() {
    let srv = TestServer::start();
    let state = srv.state().clone();
    let s = session_with_conns(&srv, 2);
    // Connection 0 created the session with the back channel.
    let r = s.call(1, &[Op::PutRootFh, Op::GetFh], false).unwrap();
    assert_eq!(
        r.sequence().unwrap().status_flags & seq4_status::CB_PATH_DOWN_SESSION,
        0
    );
    let conns = s.connections();
    let id = server_conn_id(&state, &s, conns[0].local_addr());
    assert!(state.drain_connection(id));
    assert!(wait_until(WAIT, || conns[0].is_closed()));
    assert!(wait_until(WAIT, || {
        state
            .session_info(&sid(&s))
            .is_some_and(|i| i.summary.total == 1)
    }));
    let r = s.call(1, &[Op::PutRootFh, Op::GetFh], false).unwrap();
    check_ok(&r, "fore connection");
    assert_ne!(
        r.sequence().unwrap().status_flags & seq4_status::CB_PATH_DOWN_SESSION,
        0
    );
    // The client rebinds the back channel on its remaining connection.
    let b = s.bind_conn(1, cdfc::FORE_OR_BOTH).unwrap();
    assert_eq!(b.dir, cdfs::BOTH);
    let r = s.call(1, &[Op::PutRootFh, Op::GetFh], false).unwrap();
    assert_eq!(
        r.sequence().unwrap().status_flags & seq4_status::CB_PATH_DOWN_SESSION,
        0
    );
    assert_eq!(state.metrics_snapshot().unbinds_drain, 1);
}

#[test]
fn a_draining_connection_takes_no_new_binds() {
    // A connection bound to session A is drained; a bind of the same connection to
    // session B, if it still gets through before the close, is refused with
    // NFS4ERR_DELAY. Both outcomes are race-free to check: the binding never appears.
    let srv = TestServer::start();
    let state = srv.state().clone();
    let a = session_with_conns(&srv, 1);
    let b = session_with_conns(&srv, 1);
    let c = Arc::new(RpcConn::connect(srv.addr(), Credential::None).unwrap());
    c.set_timeout(Duration::from_secs(10));
    let bind = |sid_bytes, dir| {
        c.compound(
            1,
            b"",
            &[Op::BindConnToSession(BindConnArgs {
                sessionid: sid_bytes,
                dir,
                use_rdma: false,
            })],
        )
    };
    let r = bind(a.sessionid(), cdfc::FORE).unwrap();
    assert_eq!(r.bind_conn().unwrap().dir, cdfs::FORE);
    let id = server_conn_id(&state, &a, c.local_addr());
    assert!(state.drain_connection(id));
    match bind(b.sessionid(), cdfc::FORE) {
        Ok(r) => assert_eq!(
            r.bind_conn().unwrap_err().nfs_status(),
            Some(status::NFS4ERR_DELAY)
        ),
        // The server stopped reading first and closed the connection.
        Err(e) => assert!(e.outcome_unknown(), "{e:?}"),
    }
    assert!(wait_until(WAIT, || c.is_closed()));
    assert!(wait_until(WAIT, || state.connection_count() == 2));
    assert_eq!(state.session_info(&sid(&a)).unwrap().summary.total, 1);
    assert_eq!(state.session_info(&sid(&b)).unwrap().summary.total, 1);
    let m = state.metrics_snapshot();
    assert_eq!(m.unbinds_drain, 1);
    assert_eq!(
        m.binds_total() - m.unbinds_total(),
        state.bound_connection_count() as u64
    );
}

#[test]
fn draining_a_connection_bound_to_two_sessions_unbinds_both() {
    let srv = TestServer::start();
    let state = srv.state().clone();
    let a = session_with_conns(&srv, 1);
    let b = session_with_conns(&srv, 1);
    let c = RpcConn::connect(srv.addr(), Credential::None).unwrap();
    c.set_timeout(Duration::from_secs(10));
    for s in [&a, &b] {
        let r = c
            .compound(
                1,
                b"",
                &[Op::BindConnToSession(BindConnArgs {
                    sessionid: s.sessionid(),
                    dir: cdfc::FORE,
                    use_rdma: false,
                })],
            )
            .unwrap();
        assert_eq!(r.bind_conn().unwrap().dir, cdfs::FORE);
    }
    let id = server_conn_id(&state, &a, c.local_addr());
    assert_eq!(server_conn_id(&state, &b, c.local_addr()), id);
    assert!(state.drain_connection(id));
    assert!(wait_until(WAIT, || c.is_closed()));
    assert!(wait_until(WAIT, || state.metrics_snapshot().unbinds_drain == 2));
    for s in [&a, &b] {
        let info = state.session_info(&sid(s)).unwrap();
        assert_eq!(info.summary.total, 1);
        assert!(info.connections.iter().all(|x| x.conn != id));
        check_ok(
            &s.call(0, &[Op::PutRootFh, Op::GetFh], false).unwrap(),
            "session still fine",
        );
    }
}

#[test]
fn drain_of_an_unknown_connection_is_refused() {
    let srv = TestServer::start();
    let state = srv.state().clone();
    assert!(!state.drain_connection(0));
    assert!(!state.drain_connection(0xdead_beef));
    assert!(!state.drain_connection(u64::MAX));
    // A connection id from core 1's range that was never handed out.
    assert!(!state.drain_connection(ringnfs::service::make_conn_id(1, 1 << 40)));
    // Nothing was affected.
    let s = session_with_conns(&srv, 1);
    check_ok(
        &s.call(0, &[Op::PutRootFh, Op::GetFh], false).unwrap(),
        "serving",
    );
    assert_eq!(state.metrics_snapshot().unbinds_drain, 0);
}

#[test]
fn session_info_never_shows_a_drained_binding_as_not_draining() {
    // From the moment drain_connection(id) returns true until the binding is gone,
    // session_info should list the binding with draining = true. StateManager::conn_closed
    // removes the connection from the registry first and unbinds it from the session's
    // shard afterwards; in between, session_info (state/query.rs) finds no registry
    // entry and reports draining = false, peer = "", local = "".
    let srv = TestServer::start();
    let state = srv.state().clone();
    let s = session_with_conns(&srv, 1);
    let mut bad = Vec::new();
    for round in 0..200 {
        let c = RpcConn::connect(srv.addr(), Credential::None).unwrap();
        c.set_timeout(Duration::from_secs(10));
        let r = s.bind_conn_on(&c);
        assert_eq!(r, cdfs::FORE);
        let id = server_conn_id(&state, &s, c.local_addr());
        assert!(state.drain_connection(id));
        // Watch the binding until it disappears (bounded).
        let end = std::time::Instant::now() + WAIT;
        loop {
            let info = state.session_info(&sid(&s)).unwrap();
            match info.connections.iter().find(|b| b.conn == id) {
                None => break,
                Some(b) if !b.draining => {
                    bad.push(format!("round {round}: {b:?}"));
                    break;
                }
                Some(_) => {}
            }
            assert!(std::time::Instant::now() < end, "binding never went away");
        }
        assert!(wait_until(WAIT, || c.is_closed()));
        if bad.len() >= 3 {
            break;
        }
    }
    assert!(bad.is_empty(), "bindings shown as not draining: {bad:?}");
}

#[test]
fn rolling_drains_under_load_lose_no_request() {
    // Like an operator rotating connections: while 6 threads call, a new connection is
    // added and an old one drained, five times over. Every call succeeds exactly once.
    const ROUNDS: usize = 5;
    const LOAD_THREADS: usize = 6;
    const CALLS: usize = 6000;
    let srv = TestServer::start();
    let state = srv.state().clone();
    let s = session_with_conns(&srv, 3);
    let m0 = state.metrics_snapshot();
    let issued = Arc::new(AtomicUsize::new(0));
    let completed = Arc::new(AtomicU64::new(0));
    let retries = RetryCounter::default();
    let threads: Vec<_> = (0..LOAD_THREADS)
        .map(|_| {
            let s = s.clone();
            let issued = issued.clone();
            let completed = completed.clone();
            let retries = retries.clone();
            std::thread::spawn(move || {
                let _g = retries.install();
                let mut failures = Vec::new();
                while issued.fetch_add(1, Ordering::Relaxed) < CALLS {
                    match s.call_retrying(&[Op::PutRootFh, Op::GetFh], true) {
                        Ok(r) if r.status == status::NFS4_OK => {
                            completed.fetch_add(1, Ordering::Relaxed);
                        }
                        other => failures.push(format!("{other:?}")),
                    }
                }
                failures
            })
        })
        .collect();
    let mut drained = Vec::new();
    for round in 0..ROUNDS {
        // A new connection joins (bound by its first SEQUENCE)...
        let c = RpcConn::connect(srv.addr(), Credential::None).unwrap();
        c.set_timeout(Duration::from_secs(20));
        let idx = s.add_connection(c);
        check_ok(
            &s.call(idx, &[Op::PutRootFh, Op::GetFh], true).unwrap(),
            "new connection",
        );
        // ...and, once some more calls went through, the oldest live one is drained.
        let target = completed.load(Ordering::Relaxed) + (CALLS / (ROUNDS + 2)) as u64;
        assert!(spin_until(|| {
            completed.load(Ordering::Relaxed) >= target.min(CALLS as u64 - 50)
        }));
        let victim = s
            .connections()
            .into_iter()
            .find(|c| !c.is_closed())
            .expect("a live connection");
        let id = server_conn_id(&state, &s, victim.local_addr());
        assert!(state.drain_connection(id), "round {round}");
        drained.push((victim, id));
    }
    let mut failures = Vec::new();
    for t in threads {
        failures.extend(t.join().expect("load thread"));
    }
    assert!(failures.is_empty(), "failed calls: {failures:?}");
    assert_eq!(completed.load(Ordering::Relaxed), CALLS as u64);
    for (c, id) in &drained {
        assert!(wait_until(WAIT, || c.is_closed()));
        assert!(wait_until(WAIT, || {
            state.connections().iter().all(|x| x.id != *id)
        }));
    }
    assert!(wait_until(WAIT, || {
        state.metrics_snapshot().unbinds_drain == ROUNDS as u64
    }));
    let info = state.session_info(&sid(&s)).unwrap();
    // Three at the start, one added and one drained per round.
    assert_eq!(info.summary.total, 3);
    let m = state.metrics_snapshot();
    assert_eq!(m.unbinds_total(), ROUNDS as u64);
    assert_eq!(
        m.binds_total() - m.unbinds_total(),
        state.bound_connection_count() as u64
    );
    // Exactly once: the ops ran once per call (plus one per new connection's first call).
    assert_eq!(
        m.op_count("PUTROOTFH") - m0.op_count("PUTROOTFH"),
        (CALLS + ROUNDS) as u64
    );
    println!(
        "client retries: {}; SEQUENCE ops processed: {} for {} calls (any excess were \
         answered from the reply cache)",
        retries.count(),
        m.op_count("SEQUENCE") - m0.op_count("SEQUENCE"),
        CALLS + ROUNDS
    );
}
