//! Trunked hammering: many connections of one session on both worker cores, with
//! connections binding and leaving all the time, and many sessions in parallel. No
//! deadlock (every thread is joined, every loop is bounded), every call succeeds, and
//! the server's counts add up afterwards.

pub mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{TestServer, WAIT, sid, wait_until};
use ringnfs::client::BindConnArgs;
use ringnfs::client::{ClientOptions, Op, RpcConn, SequenceArgs, Session};
use ringnfs::nfs4::consts::{cdfc, cdfs, op, status};
use ringnfs::rpc::Credential;
use ringnfs::state::settings::OverLimit;

/// Calls per trunked connection.
const CALLS_PER_CONN: usize = 2000;
const TRUNKED: usize = 16;
const CHURN_THREADS: usize = 3;
/// Connections each churn thread opens, binds, uses and closes.
const CHURN_PER_THREAD: usize = 100;

fn check_ok(r: &ringnfs::client::CompoundReply, what: &str) {
    assert_eq!(r.status, status::NFS4_OK, "{what}: {r:?}");
    assert_eq!(r.sequence_status(), Some(status::NFS4_OK), "{what}");
    assert!(!r.getfh().expect("GETFH result").is_empty(), "{what}");
}

/// One churn connection: connect, BIND_CONN_TO_SESSION, SEQUENCE on the thread's own
/// slot, close. Returns the next sequence id for the slot.
fn churn_once(
    srv_addr: std::net::SocketAddr,
    s: &Session,
    slot: u32,
    seqid: u32,
    fore_or_both: bool,
) -> u32 {
    let c = RpcConn::connect(srv_addr, Credential::None).expect("churn connect");
    c.set_timeout(Duration::from_secs(20));
    let (dir, want) = if fore_or_both {
        (cdfc::FORE_OR_BOTH, cdfs::BOTH)
    } else {
        (cdfc::FORE, cdfs::FORE)
    };
    let r = c
        .compound(
            1,
            b"churn-bind",
            &[Op::BindConnToSession(BindConnArgs {
                sessionid: s.sessionid(),
                dir,
                use_rdma: false,
            })],
        )
        .expect("bind call");
    let b = r.bind_conn().expect("BIND_CONN_TO_SESSION ok");
    assert_eq!(
        (b.sessionid, b.dir, b.use_rdma),
        (s.sessionid(), want, false)
    );
    let highest = s.slot_count() as u32 - 1;
    let r = c
        .compound(
            1,
            b"churn-seq",
            &[
                Op::Sequence(SequenceArgs {
                    sessionid: s.sessionid(),
                    sequenceid: seqid,
                    slotid: slot,
                    highest_slotid: highest,
                    cachethis: false,
                }),
                Op::PutRootFh,
                Op::GetFh,
            ],
        )
        .expect("churn SEQUENCE call");
    check_ok(&r, "churn SEQUENCE");
    c.shutdown();
    seqid + 1
}

#[test]
fn sixteen_trunked_connections_with_bind_churn() {
    let srv = TestServer::start();
    let state = srv.state().clone();
    // Churn connections come on top of the 16 trunked ones.
    state.settings.set_max_connections_per_session(0).unwrap();
    let (_ids, s) = srv.session_with(ClientOptions {
        connections: TRUNKED,
        slots: 64,
        ..ClientOptions::default()
    });
    assert_eq!(s.connection_count(), TRUNKED);
    assert_eq!(s.slot_count(), 64);
    let session_id = sid(&s);
    let m0 = state.metrics_snapshot();
    let calls_done = Arc::new(AtomicU64::new(0));

    let mut workers = Vec::new();
    for i in 0..TRUNKED {
        let s = s.clone();
        let done = calls_done.clone();
        workers.push(
            std::thread::Builder::new()
                .name(format!("trunk-{i}"))
                .spawn(move || {
                    for k in 0..CALLS_PER_CONN {
                        let r = s
                            .call(i, &[Op::PutRootFh, Op::GetFh], false)
                            .unwrap_or_else(|e| panic!("conn {i} call {k}: {e}"));
                        check_ok(&r, &format!("conn {i} call {k}"));
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .unwrap(),
        );
    }
    // Churn threads use the top slots, which the 16 workers (taking the lowest free
    // slot, at most 16 at a time) never reach.
    let mut churners = Vec::new();
    for t in 0..CHURN_THREADS {
        let s = s.clone();
        let addr = srv.addr();
        let slot = (s.slot_count() - 1 - t) as u32;
        churners.push(
            std::thread::Builder::new()
                .name(format!("churn-{t}"))
                .spawn(move || {
                    let mut seqid = 1;
                    for k in 0..CHURN_PER_THREAD {
                        seqid = churn_once(addr, &s, slot, seqid, (k + t) % 2 == 0);
                    }
                    seqid - 1
                })
                .unwrap(),
        );
    }
    for w in workers {
        w.join().expect("trunk worker finished without panicking");
    }
    let mut churn_calls = 0;
    for c in churners {
        churn_calls += c.join().expect("churn thread finished") as u64;
    }
    let churned = (CHURN_THREADS * CHURN_PER_THREAD) as u64;
    assert_eq!(churn_calls, churned);
    assert_eq!(
        calls_done.load(Ordering::Relaxed),
        (TRUNKED * CALLS_PER_CONN) as u64
    );

    // Every churn connection leaves; the 16 trunked ones stay.
    assert!(
        wait_until(WAIT, || state.connection_count() == TRUNKED),
        "connections: {}",
        state.connection_count()
    );
    assert!(wait_until(WAIT, || {
        state
            .session_info(&session_id)
            .is_some_and(|i| i.summary.total == TRUNKED)
    }));
    let info = state.session_info(&session_id).unwrap();
    let bound: HashSet<String> = info.connections.iter().map(|c| c.peer.clone()).collect();
    let ours: HashSet<String> = s
        .connections()
        .iter()
        .map(|c| c.local_addr().to_string())
        .collect();
    assert_eq!(bound, ours, "exactly the trunked connections are bound");
    // The creating connection has both channels, the others were bound fore-only by
    // their first SEQUENCE.
    assert_eq!((info.summary.both, info.summary.fore), (1, TRUNKED - 1));
    assert_eq!(info.summary.back, 0);
    assert!(info.connections.iter().all(|c| !c.draining));
    let mut per_core: BTreeMap<usize, usize> = BTreeMap::new();
    for c in &info.connections {
        *per_core.entry(c.core).or_default() += 1;
    }
    println!("trunked connections per worker core: {per_core:?}");
    if per_core.len() < 2 {
        println!("note: the kernel put every connection on one listener this time");
    }

    let m = state.metrics_snapshot();
    assert_eq!(state.bound_connection_count(), TRUNKED);
    assert_eq!(
        m.binds_total() - m.unbinds_total(),
        state.bound_connection_count() as u64,
        "binds - unbinds = bound: {m:?}"
    );
    // Each churn connection was bound once (FORE or BOTH) and unbound once, on close.
    assert_eq!(m.unbinds_disconnect - m0.unbinds_disconnect, churned);
    assert_eq!(
        m.binds_total() - m0.binds_total(),
        churned + (TRUNKED as u64 - 1)
    );
    assert_eq!(m.unbinds_total(), m.unbinds_disconnect);
    assert_eq!(m.refusals_limit, 0);
    // Every request ran exactly once: no replays, nothing executed twice.
    let executed = (TRUNKED * CALLS_PER_CONN) as u64 + churned;
    assert_eq!(m.op_count("PUTROOTFH") - m0.op_count("PUTROOTFH"), executed);
    assert_eq!(m.op_count("SEQUENCE") - m0.op_count("SEQUENCE"), executed);
    assert!(m.op_errors.is_empty(), "no op failed: {:?}", m.op_errors);

    // The session still works on every connection.
    for i in 0..TRUNKED {
        check_ok(
            &s.call(i, &[Op::PutRootFh, Op::GetFh], false).unwrap(),
            "after",
        );
    }
    s.destroy().unwrap();
    s.destroy_clientid().unwrap();
    assert_eq!(state.session_count(), 0);
    assert_eq!(state.bound_connection_count(), 0);
    assert_eq!(
        state.metrics_snapshot().unbinds_session_destroy,
        TRUNKED as u64
    );
}

#[test]
fn churn_over_the_connection_limit_is_refused_with_delay_and_counted() {
    // With the default limit (16) and all 16 trunked connections bound, extra binds fail
    // with NFS4ERR_DELAY while the trunked connections keep working. Strict mode
    // (`--over-limit delay`): by default an over-limit SEQUENCE is served unbound instead
    // (tests/binding.rs covers that).
    let srv = TestServer::start();
    let state = srv.state().clone();
    state.settings.set_over_limit(OverLimit::Delay);
    assert_eq!(state.settings.max_connections_per_session(), 16);
    let (_ids, s) = srv.session_with(ClientOptions {
        connections: TRUNKED,
        ..ClientOptions::default()
    });
    for i in 0..TRUNKED {
        check_ok(
            &s.call(i, &[Op::PutRootFh, Op::GetFh], false).unwrap(),
            "bind",
        );
    }
    let session_id = sid(&s);
    assert_eq!(state.session_info(&session_id).unwrap().summary.total, 16);
    let refused_before = state.metrics_snapshot().refusals_limit;
    let worker = {
        let s = s.clone();
        std::thread::spawn(move || {
            for k in 0..500 {
                check_ok(
                    &s.call(k % TRUNKED, &[Op::PutRootFh, Op::GetFh], false)
                        .unwrap(),
                    "trunk",
                );
            }
        })
    };
    let rounds = 50;
    for k in 0..rounds {
        let c = RpcConn::connect(srv.addr(), Credential::None).unwrap();
        c.set_timeout(Duration::from_secs(20));
        let dir = if k % 2 == 0 {
            cdfc::FORE
        } else {
            cdfc::FORE_OR_BOTH
        };
        let r = c
            .compound(
                1,
                b"",
                &[Op::BindConnToSession(BindConnArgs {
                    sessionid: s.sessionid(),
                    dir,
                    use_rdma: false,
                })],
            )
            .unwrap();
        assert_eq!(
            r.bind_conn().unwrap_err().nfs_status(),
            Some(status::NFS4ERR_DELAY)
        );
        // An implicit bind (plain SEQUENCE) is refused the same way.
        let r = c
            .compound(
                1,
                b"",
                &[
                    Op::Sequence(SequenceArgs {
                        sessionid: s.sessionid(),
                        sequenceid: 1,
                        slotid: 63,
                        highest_slotid: 63,
                        cachethis: false,
                    }),
                    Op::PutRootFh,
                ],
            )
            .unwrap();
        assert_eq!(r.sequence_status(), Some(status::NFS4ERR_DELAY));
        assert_eq!(
            r.result(op::SEQUENCE).unwrap().status,
            status::NFS4ERR_DELAY
        );
        c.shutdown();
    }
    worker.join().expect("trunk worker");
    assert_eq!(
        state.metrics_snapshot().refusals_limit - refused_before,
        2 * rounds
    );
    assert!(wait_until(WAIT, || state.connection_count() == TRUNKED));
    let info = state.session_info(&session_id).unwrap();
    assert_eq!(info.summary.total, TRUNKED);
    let m = state.metrics_snapshot();
    assert_eq!(m.unbinds_total(), 0);
    assert_eq!(m.binds_total(), TRUNKED as u64);
    // Slot 63 was never used by a refused SEQUENCE: seqid 1 is still new.
    let r = s
        .call_on_slot(0, 63, 1, &[Op::PutRootFh, Op::GetFh], false)
        .unwrap();
    check_ok(&r, "slot 63 untouched");
}

#[test]
fn sixteen_sessions_of_two_connections_then_destroy() {
    const SESSIONS: usize = 16;
    const CALLS: usize = 300;
    let srv = TestServer::start();
    let state = srv.state().clone();
    let addrs = srv.addrs.clone();
    // Sessions done calling; nobody destroys before all are (bounded wait, no barrier
    // that a panicking thread could leave hanging).
    let ready = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for t in 0..SESSIONS {
        let addrs = addrs.clone();
        let state = state.clone();
        let ready = ready.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("session-{t}"))
                .spawn(move || {
                    let (_ids, s) = ringnfs::client::Client::connect(
                        &addrs,
                        ClientOptions {
                            connections: 2,
                            slots: 8,
                            timeout: Duration::from_secs(20),
                            ..ClientOptions::default()
                        },
                    )
                    .expect("session");
                    for k in 0..CALLS {
                        let r = s
                            .call(k % 2, &[Op::PutRootFh, Op::GetFh], false)
                            .unwrap_or_else(|e| panic!("session {t} call {k}: {e}"));
                        check_ok(&r, &format!("session {t} call {k}"));
                    }
                    let info = state.session_info(&sid(&s)).expect("session exists");
                    assert_eq!(info.summary.total, 2);
                    assert_eq!((info.summary.both, info.summary.fore), (1, 1));
                    // Everyone is done calling before anyone destroys.
                    ready.fetch_add(1, Ordering::SeqCst);
                    assert!(
                        wait_until(WAIT, || ready.load(Ordering::SeqCst) == SESSIONS as u64),
                        "all sessions finished their calls"
                    );
                    s.destroy().expect("DESTROY_SESSION");
                    // The session is gone for everyone; the connection stays open.
                    let r = s.call(1, &[Op::PutRootFh], false).unwrap();
                    assert_eq!(r.sequence_status(), Some(status::NFS4ERR_BADSESSION));
                    s.destroy_clientid().expect("DESTROY_CLIENTID");
                    s
                })
                .unwrap(),
        );
    }
    let sessions: Vec<Arc<Session>> = threads
        .into_iter()
        .map(|t| t.join().expect("session thread"))
        .collect();
    assert_eq!(state.session_count(), 0);
    assert_eq!(state.client_count(), 0);
    assert_eq!(state.bound_connection_count(), 0);
    let m = state.metrics_snapshot();
    assert_eq!(m.binds_total(), 2 * SESSIONS as u64);
    assert_eq!(m.unbinds_session_destroy, 2 * SESSIONS as u64);
    assert_eq!(m.unbinds_total(), m.unbinds_session_destroy);
    assert_eq!(
        m.op_count("PUTROOTFH"),
        (SESSIONS * CALLS) as u64,
        "every call executed once (the BADSESSION probes ran no op)"
    );
    // All connections are still open and unbound; closing them unbinds nothing more.
    assert_eq!(state.connection_count(), 2 * SESSIONS);
    assert!(state.connections().iter().all(|c| c.sessions.is_empty()));
    drop(sessions);
    assert!(wait_until(WAIT, || state.connection_count() == 0));
    let m2 = state.metrics_snapshot();
    assert_eq!(m2.unbinds_total(), m.unbinds_total());
}
