//! Connection binding rules (RFC 8881 §2.10.3.1, §18.34; docs/protocol.md "Binding rules") over
//! real sockets, asserting exact statuses and the server's binding state through its
//! query API.

pub mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{TestServer, WAIT, sid, wait_until};
use ringnfs::client::BindConnArgs;
use ringnfs::client::{ClientOptions, Op, RpcConn, SequenceArgs, Session};
use ringnfs::nfs4::consts::{NfsStatus, cdfc, cdfs, op, seq4_status, status};
use ringnfs::rpc::Credential;
use ringnfs::service::ConnId;
use ringnfs::state::settings::OverLimit;
use ringnfs::state::{Direction, SessionId, StateManager};

/// The server's id for the connection whose client end is `local`.
fn server_conn(state: &StateManager, local: SocketAddr) -> ConnId {
    let mut found = None;
    wait_until(WAIT, || {
        found = state
            .connections()
            .into_iter()
            .find(|c| c.peer == local.to_string())
            .map(|c| c.id);
        found.is_some()
    });
    found.expect("server knows the connection")
}

fn seq_on(conn: &RpcConn, s: &Session, slot: u32, seqid: u32) -> NfsStatus {
    let r = conn
        .compound(
            1,
            b"",
            &[Op::Sequence(SequenceArgs {
                sessionid: s.sessionid(),
                sequenceid: seqid,
                slotid: slot,
                highest_slotid: slot,
                cachethis: false,
            })],
        )
        .expect("reply");
    r.status
}

fn bind(conn: &RpcConn, sid: &SessionId, dir: u32) -> Result<u32, NfsStatus> {
    let r = conn
        .compound(
            1,
            b"",
            &[Op::BindConnToSession(BindConnArgs {
                sessionid: *sid,
                dir,
                use_rdma: false,
            })],
        )
        .expect("reply");
    if r.status == status::NFS4_OK {
        Ok(r.bind_conn().expect("resok").dir)
    } else {
        Err(r.status)
    }
}

#[test]
fn direction_negotiation_table() {
    let srv = TestServer::start();
    let (_, s) = srv.session();
    let id = sid(&s);
    let c = srv.connect();
    let cid = server_conn(srv.state(), c.local_addr());
    for (asked, granted, dir) in [
        (cdfc::FORE, cdfs::FORE, Direction::Fore),
        (cdfc::BACK, cdfs::BACK, Direction::Back),
        (cdfc::FORE_OR_BOTH, cdfs::BOTH, Direction::Both),
        (cdfc::BACK_OR_BOTH, cdfs::BOTH, Direction::Both),
    ] {
        assert_eq!(bind(&c, &id, asked), Ok(granted), "asked {asked:#x}");
        assert_eq!(srv.state().direction(cid, &id), Some(dir));
    }
    for bad in [0, 4, 5, 8, 0xffff_ffff] {
        assert_eq!(
            bind(&c, &id, bad),
            Err(status::NFS4ERR_INVAL),
            "dir {bad:#x}"
        );
    }
    // Direction unchanged by the refused requests.
    assert_eq!(srv.state().direction(cid, &id), Some(Direction::Both));
}

#[test]
fn bind_conn_must_be_alone_and_session_must_exist() {
    let srv = TestServer::start();
    let (_, s) = srv.session();
    let c = srv.connect();
    let r = c
        .compound(
            1,
            b"",
            &[
                Op::BindConnToSession(BindConnArgs {
                    sessionid: s.sessionid(),
                    dir: cdfc::FORE,
                    use_rdma: false,
                }),
                Op::PutRootFh,
            ],
        )
        .unwrap();
    assert_eq!(r.status, status::NFS4ERR_NOT_ONLY_OP);
    assert_eq!(r.results.len(), 1);
    assert_eq!(
        bind(&c, &SessionId([7; 16]), cdfc::FORE),
        Err(status::NFS4ERR_BADSESSION)
    );
    // After SEQUENCE it is still not allowed.
    let r = s
        .call(
            0,
            &[Op::BindConnToSession(BindConnArgs {
                sessionid: s.sessionid(),
                dir: cdfc::FORE,
                use_rdma: false,
            })],
            false,
        )
        .unwrap();
    assert_eq!(r.status, status::NFS4ERR_NOT_ONLY_OP);
    assert_eq!(srv.state().metrics_snapshot().refusals_bad_session, 1);
}

#[test]
fn two_and_sixteen_connections_on_different_slots() {
    for n in [2usize, 16] {
        let srv = TestServer::start();
        let (_, s) = srv.session_with(ClientOptions {
            connections: n,
            // Slot 0 starts at seqid 1 below: nothing may use it first.
            reclaim_complete: false,
            ..Default::default()
        });
        let threads: Vec<_> = (0..n)
            .map(|i| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let r = s
                        .call_on_slot(i, i as u32, 1, &[Op::PutRootFh, Op::GetFh], true)
                        .unwrap();
                    assert_eq!(r.status, status::NFS4_OK);
                    assert_eq!(r.sequence().unwrap().slotid, i as u32);
                    r
                })
            })
            .collect();
        let replies: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let info = srv.state().session_info(&sid(&s)).unwrap();
        assert_eq!(info.summary.total, n);
        assert_eq!(
            info.summary.both, 1,
            "the creating connection has both channels"
        );
        assert_eq!(
            info.summary.fore,
            n - 1,
            "the others were bound fore by SEQUENCE"
        );
        // Replay of the same slot/seqid on another connection: the identical reply.
        let again = s
            .call_on_slot((1) % n, 0, 1, &[Op::PutRootFh, Op::GetFh], true)
            .unwrap();
        assert_eq!(again, replies[0]);
        // A different request on the used slot/seqid is a false retry.
        let r = s.call_on_slot(0, 0, 1, &[Op::PutRootFh], true).unwrap();
        assert_eq!(r.status, status::NFS4ERR_SEQ_FALSE_RETRY);
        let r = s.call_on_slot(0, 0, 5, &[Op::PutRootFh], true).unwrap();
        assert_eq!(r.status, status::NFS4ERR_SEQ_MISORDERED);
        let r = s.call_on_slot(0, 999, 1, &[], true).unwrap();
        assert_eq!(r.status, status::NFS4ERR_BADSLOT);
    }
}

#[test]
fn uncached_replay_answers_retry_uncached_rep() {
    let srv = TestServer::start();
    let (_, s) = srv.session();
    let r = s
        .call_on_slot(0, 3, 1, &[Op::PutRootFh, Op::GetFh], false)
        .unwrap();
    assert_eq!(r.status, status::NFS4_OK);
    let r = s
        .call_on_slot(0, 3, 1, &[Op::PutRootFh, Op::GetFh], false)
        .unwrap();
    assert_eq!(r.status, status::NFS4ERR_RETRY_UNCACHED_REP);
    assert_eq!(r.results[0].status, status::NFS4_OK);
    assert_eq!(r.results[1].opnum, op::PUTROOTFH);
}

#[test]
fn close_unbinds_with_reason_disconnect() {
    let srv = TestServer::start();
    let s = srv.trunked_session(3);
    let id = sid(&s);
    assert_eq!(srv.state().session_info(&id).unwrap().summary.total, 3);
    s.connection(2).unwrap().shutdown();
    assert!(wait_until(WAIT, || srv
        .state()
        .session_info(&id)
        .unwrap()
        .summary
        .total
        == 2));
    let m = srv.state().metrics_snapshot();
    assert_eq!(m.unbinds_disconnect, 1);
    assert_eq!(m.binds_total(), 3);
}

#[test]
fn destroy_session_unbinds_all() {
    let srv = TestServer::start();
    let s = srv.trunked_session(3);
    s.destroy().unwrap();
    let m = srv.state().metrics_snapshot();
    assert_eq!(m.unbinds_session_destroy, 3);
    assert_eq!(srv.state().session_count(), 0);
    assert_eq!(srv.state().bound_connection_count(), 0);
    let r = s.call(1, &[], false).unwrap();
    assert_eq!(r.status, status::NFS4ERR_BADSESSION);
    s.destroy_clientid().unwrap();
    assert_eq!(srv.state().client_count(), 0);
}

#[test]
fn short_lease_expires_silent_client() {
    let srv = TestServer::with(|c| c.lease_secs = 1);
    let (_, s) = srv.session_with(ClientOptions {
        connections: 2,
        ..Default::default()
    });
    s.call(1, &[], false).unwrap();
    assert!(wait_until(WAIT, || srv.state().client_count() == 0));
    let m = srv.state().metrics_snapshot();
    assert_eq!(m.unbinds_reaper, 2);
    assert_eq!(srv.state().session_count(), 0);
    assert_eq!(
        s.call(0, &[], false).unwrap().status,
        status::NFS4ERR_BADSESSION
    );
}

#[test]
fn create_session_auto_binds() {
    let srv = TestServer::start();
    let (_, with_back) = srv.session();
    let info = srv.state().session_info(&sid(&with_back)).unwrap();
    assert_eq!((info.summary.both, info.summary.total), (1, 1));
    let (_, fore_only) = srv.session_with(ClientOptions {
        back_channel: false,
        ..Default::default()
    });
    let info = srv.state().session_info(&sid(&fore_only)).unwrap();
    assert_eq!((info.summary.fore, info.summary.total), (1, 1));
    // No back channel: SEQUENCE says so.
    let r = fore_only.call(0, &[], false).unwrap();
    assert_ne!(
        r.sequence().unwrap().status_flags & seq4_status::CB_PATH_DOWN_SESSION,
        0
    );
    let r = with_back.call(0, &[], false).unwrap();
    assert_eq!(
        r.sequence().unwrap().status_flags & seq4_status::CB_PATH_DOWN_SESSION,
        0
    );
}

#[test]
fn implicit_bind_is_fore_only() {
    let srv = TestServer::start();
    let (_, s) = srv.session();
    let id = sid(&s);
    let c = srv.connect();
    let local = c.local_addr();
    let i = s.add_connection(c);
    assert_eq!(s.call(i, &[], false).unwrap().status, status::NFS4_OK);
    let cid = server_conn(srv.state(), local);
    assert_eq!(srv.state().direction(cid, &id), Some(Direction::Fore));
    assert_eq!(srv.state().metrics_snapshot().binds_fore, 1);
}

#[test]
fn one_connection_in_two_sessions_and_exclusive_binding() {
    let srv = TestServer::start();
    let (_, a) = srv.session();
    let (_, b) = srv.session();
    let c = srv.connect();
    let cid = server_conn(srv.state(), c.local_addr());
    assert_eq!(bind(&c, &sid(&a), cdfc::FORE), Ok(cdfs::FORE));
    assert_eq!(bind(&c, &sid(&b), cdfc::FORE), Ok(cdfs::FORE));
    assert_eq!(srv.state().direction(cid, &sid(&a)), Some(Direction::Fore));
    assert_eq!(srv.state().direction(cid, &sid(&b)), Some(Direction::Fore));
    // A SEQUENCE for either session works on the shared connection.
    assert_eq!(seq_on(&c, &a, 5, 1), status::NFS4_OK);
    assert_eq!(seq_on(&c, &b, 5, 1), status::NFS4_OK);

    srv.state().settings.set_exclusive_binding(true);
    let c2 = srv.connect();
    let cid2 = server_conn(srv.state(), c2.local_addr());
    assert_eq!(bind(&c2, &sid(&a), cdfc::FORE), Ok(cdfs::FORE));
    assert_eq!(bind(&c2, &sid(&b), cdfc::FORE), Ok(cdfs::FORE));
    assert_eq!(
        srv.state().direction(cid2, &sid(&a)),
        None,
        "silently unbound from a"
    );
    assert_eq!(srv.state().direction(cid2, &sid(&b)), Some(Direction::Fore));
    assert_eq!(srv.state().metrics_snapshot().unbinds_rebind, 1);
}

#[test]
fn per_session_connection_limit() {
    let srv = TestServer::start();
    let s = srv.trunked_session(16);
    let id = sid(&s);
    assert_eq!(srv.state().session_info(&id).unwrap().summary.total, 16);
    // The 17th: its SEQUENCE is served (over_limit = serve, the default) but the
    // connection is not bound; an explicit bind gets NFS4ERR_DELAY.
    let c17 = srv.connect();
    let cid17 = server_conn(srv.state(), c17.local_addr());
    assert_eq!(seq_on(&c17, &s, 20, 1), status::NFS4_OK);
    assert_eq!(srv.state().direction(cid17, &id), None);
    assert_eq!(srv.state().session_info(&id).unwrap().summary.total, 16);
    assert_eq!(bind(&c17, &id, cdfc::FORE), Err(status::NFS4ERR_DELAY));
    assert_eq!(srv.state().metrics_snapshot().refusals_limit, 2);
    // The served request went through the slot like any other: a retry replays.
    assert_eq!(seq_on(&c17, &s, 20, 1), status::NFS4_OK);
    assert_eq!(seq_on(&c17, &s, 20, 2), status::NFS4_OK);

    // Strict mode: the SEQUENCE itself gets NFS4ERR_DELAY and does not consume its slot.
    srv.state().settings.set_over_limit(OverLimit::Delay);
    assert_eq!(seq_on(&c17, &s, 21, 1), status::NFS4ERR_DELAY);
    assert_eq!(srv.state().metrics_snapshot().refusals_limit, 5);
    srv.state()
        .settings
        .set_max_connections_per_session(17)
        .unwrap();
    assert_eq!(seq_on(&c17, &s, 21, 1), status::NFS4_OK);
    assert_eq!(srv.state().direction(cid17, &id), Some(Direction::Fore));
    let c18 = srv.connect();
    assert_eq!(bind(&c18, &id, cdfc::FORE), Err(status::NFS4ERR_DELAY));
    srv.state()
        .settings
        .set_max_connections_per_session(0)
        .unwrap();
    assert_eq!(bind(&c18, &id, cdfc::FORE), Ok(cdfs::FORE));
    assert_eq!(srv.state().session_info(&id).unwrap().summary.total, 18);
    // Requests on already bound connections kept working throughout.
    assert_eq!(s.call(3, &[], false).unwrap().status, status::NFS4_OK);
}

#[test]
fn over_limit_connection_binds_once_the_session_has_room() {
    let srv = TestServer::with(|c| c.max_connections_per_session = 1);
    let (_, s) = srv.session();
    let id = sid(&s);
    let extra = srv.connect();
    let cid = server_conn(srv.state(), extra.local_addr());
    assert_eq!(seq_on(&extra, &s, 4, 1), status::NFS4_OK);
    assert_eq!(srv.state().direction(cid, &id), None);
    assert_eq!(srv.state().session_info(&id).unwrap().summary.total, 1);
    // Room appears (limit raised): the next SEQUENCE on the extra connection binds it.
    srv.state()
        .settings
        .set_max_connections_per_session(2)
        .unwrap();
    assert_eq!(seq_on(&extra, &s, 4, 2), status::NFS4_OK);
    assert_eq!(srv.state().direction(cid, &id), Some(Direction::Fore));
    assert_eq!(srv.state().session_info(&id).unwrap().summary.total, 2);
    assert_eq!(srv.state().metrics_snapshot().refusals_limit, 1);
}

#[test]
fn last_fore_connection_cannot_become_back() {
    let srv = TestServer::start();
    let (_, s) = srv.session();
    assert_eq!(
        s.bind_conn(0, cdfc::BACK).unwrap_err().nfs_status(),
        Some(status::NFS4ERR_INVAL)
    );
    assert_eq!(srv.state().metrics_snapshot().refusals_fore_required, 1);
    // With another fore connection it is allowed.
    let c = srv.connect();
    let i = s.add_connection(c);
    s.call(i, &[], false).unwrap();
    assert_eq!(s.bind_conn(0, cdfc::BACK).unwrap().dir, cdfs::BACK);
}

#[test]
fn exempt_ops_on_unbound_connection() {
    let srv = TestServer::start();
    let (ids, s) = srv.session();
    let c = srv.connect();
    c.null().unwrap();
    // Ops needing a session are refused without SEQUENCE.
    let r = c.compound(1, b"", &[Op::PutRootFh]).unwrap();
    assert_eq!(r.status, status::NFS4ERR_OP_NOT_IN_SESSION);
    // DESTROY_CLIENTID runs (and finds the client busy), DESTROY_SESSION needs a bound connection.
    let r = c
        .compound(1, b"", &[Op::DestroyClientid(ids.clientid)])
        .unwrap();
    assert_eq!(r.status, status::NFS4ERR_CLIENTID_BUSY);
    let r = c
        .compound(1, b"", &[Op::DestroySession(s.sessionid())])
        .unwrap();
    assert_eq!(r.status, status::NFS4ERR_CONN_NOT_BOUND_TO_SESSION);
    assert_eq!(srv.state().session_count(), 1);
    // The unbound connection can bind and then destroy.
    assert_eq!(bind(&c, &sid(&s), cdfc::FORE), Ok(cdfs::FORE));
    let r = c
        .compound(1, b"", &[Op::DestroySession(s.sessionid())])
        .unwrap();
    assert_eq!(r.status, status::NFS4_OK);
}

#[test]
fn cb_null_and_cb_sequence_round_trip() {
    let srv = TestServer::start();
    let (ids, s) = srv.session();
    let id = sid(&s);
    let t = Duration::from_secs(10);
    ringnfs::nfs4::callback::cb_null(srv.state(), &id, t).expect("CB_NULL answered");
    let r =
        ringnfs::nfs4::callback::cb_sequence(srv.state(), &id, t).expect("CB_SEQUENCE answered");
    assert_eq!(r.sessionid, id);
    assert_eq!(r.sequenceid, 1);
    let stats = ids.callbacks.unwrap().stats();
    assert_eq!(stats.null_calls, 1);
    assert_eq!(stats.compound_calls, 1);
    // A fore-only session has nowhere to call.
    let (_, fore) = srv.session_with(ClientOptions {
        back_channel: false,
        ..Default::default()
    });
    assert!(ringnfs::nfs4::callback::cb_null(srv.state(), &sid(&fore), t).is_err());
}

#[test]
fn cb_path_down_when_back_connection_closes_and_rebind_restores() {
    let srv = TestServer::start();
    let (_, s) = srv.session_with(ClientOptions {
        connections: 2,
        ..Default::default()
    });
    let id = sid(&s);
    let r = s.call(1, &[], false).unwrap();
    assert_eq!(
        r.sequence().unwrap().status_flags & seq4_status::CB_PATH_DOWN_SESSION,
        0
    );
    s.connection(0).unwrap().shutdown();
    assert!(wait_until(WAIT, || srv
        .state()
        .session_info(&id)
        .unwrap()
        .summary
        .total
        == 1));
    let r = s.call(1, &[], false).unwrap();
    assert_ne!(
        r.sequence().unwrap().status_flags & seq4_status::CB_PATH_DOWN_SESSION,
        0
    );
    // The client rebinds its remaining transport for both channels, as Linux does.
    assert_eq!(s.bind_conn(1, cdfc::FORE_OR_BOTH).unwrap().dir, cdfs::BOTH);
    let r = s.call(1, &[], false).unwrap();
    assert_eq!(
        r.sequence().unwrap().status_flags & seq4_status::CB_PATH_DOWN_SESSION,
        0
    );
    ringnfs::nfs4::callback::cb_null(srv.state(), &id, Duration::from_secs(10))
        .expect("callback on the rebound connection");
}

#[test]
fn trunking_across_two_addresses() {
    let srv = TestServer::with(|c| {
        c.listen = vec![
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.2:0".parse().unwrap(),
        ];
    });
    assert_eq!(srv.addrs.len(), 2);
    let owner = |addr| {
        let c = RpcConn::connect(addr, Credential::None).unwrap();
        let r = c
            .compound(
                1,
                b"",
                &[Op::ExchangeId(ringnfs::client::ExchangeIdArgs {
                    verifier: [1; 8],
                    owner_id: b"trunk-probe".to_vec(),
                    flags: 0,
                    state_protect: Default::default(),
                    impl_id: None,
                })],
            )
            .unwrap();
        let e = r.exchange_id().unwrap();
        (e.clientid, e.server_owner, e.server_scope)
    };
    let a = owner(srv.addrs[0]);
    let b = owner(srv.addrs[1]);
    assert_eq!(a.1, b.1, "same server_owner on both addresses");
    assert_eq!(a.2, b.2, "same server_scope on both addresses");
    // (Each unconfirmed EXCHANGE_ID of the same owner gets a new client id, RFC 8881
    // §18.35.5 case 4, so the ids differ.)
    assert_ne!(a.0, b.0);
    // One session, connections through both addresses.
    let (_, s) = srv.session_with(ClientOptions {
        connections: 2,
        ..Default::default()
    });
    s.call(1, &[], false).unwrap();
    let info = srv.state().session_info(&sid(&s)).unwrap();
    let mut locals: Vec<_> = info.connections.iter().map(|c| c.local.clone()).collect();
    locals.sort();
    locals.dedup();
    assert_eq!(locals.len(), 2, "bound through both addresses: {locals:?}");
    assert_eq!(
        srv.state().client_count(),
        2,
        "probe client + session client"
    );
}

#[test]
fn refused_sequence_still_renews_the_lease() {
    // Linux keeps resending a request that got NFS4ERR_DELAY on the same connection; if
    // all its traffic lands there, its lease must not run out because of our refusal.
    let srv = TestServer::with(|c| {
        c.lease_secs = 2;
        c.max_connections_per_session = 1;
        c.over_limit = OverLimit::Delay;
    });
    let (_, s) = srv.session();
    let extra = srv.connect();
    for i in 0..20 {
        assert_eq!(seq_on(&extra, &s, 3, 1), status::NFS4ERR_DELAY, "try {i}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        srv.state().client_count(),
        1,
        "4 s of refused SEQUENCEs kept the lease"
    );
    assert_eq!(s.call(0, &[], false).unwrap().status, status::NFS4_OK);
}

/// BACKCHANNEL_CTL (RFC 8881 §18.33) changes the back channel's security: a session
/// whose CREATE_SESSION offered only RPCSEC_GSS for callbacks has its path down; a
/// BACKCHANNEL_CTL with only RPCSEC_GSS is refused (NFS4ERR_ENCR_ALG_UNSUPP, as knfsd,
/// which cannot call back with GSS either) and changes nothing; one with AUTH_SYS
/// brings the path up, and a CB_NULL reaches the client.
#[test]
fn backchannel_ctl_changes_the_callback_security() {
    use ringnfs::client::CallbackSec;
    let srv = TestServer::start();
    let gss_only = vec![CallbackSec::Gss {
        service: 1,
        server_handle: b"s".to_vec(),
        client_handle: b"c".to_vec(),
    }];
    let (_, s) = srv.session_with(ClientOptions {
        cb_sec: Some(gss_only.clone()),
        ..Default::default()
    });
    let down = |s: &Session| {
        let r = s.call(0, &[], false).unwrap();
        r.sequence().unwrap().status_flags & seq4_status::CB_PATH_DOWN_SESSION != 0
    };
    assert!(down(&s), "no callback security the server can use");
    let ctl = |program: u32, sec: Vec<CallbackSec>| {
        let r = s
            .call(
                0,
                &[Op::BackchannelCtl {
                    cb_program: program,
                    sec_parms: sec,
                }],
                false,
            )
            .unwrap();
        r.status
    };
    let ours = ringnfs::client::DEFAULT_CB_PROGRAM;
    assert_eq!(ctl(ours, gss_only), status::NFS4ERR_ENCR_ALG_UNSUPP);
    assert!(down(&s));
    let sys = || vec![CallbackSec::Sys(ringnfs::rpc::AuthSys::default())];
    assert_eq!(ctl(ours, sys()), status::NFS4_OK);
    assert!(!down(&s), "the back channel is usable now");
    let t = Duration::from_secs(5);
    ringnfs::nfs4::callback::cb_null(srv.state(), &sid(&s), t).expect("CB_NULL answered");
    // The program changes too: the client answers only its own.
    assert_eq!(ctl(ours + 1, sys()), status::NFS4_OK);
    let e = ringnfs::nfs4::callback::cb_null(srv.state(), &sid(&s), t).unwrap_err();
    assert!(format!("{e:?}").contains("ProgUnavail"), "{e:?}");
}
