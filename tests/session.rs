//! Client ids and sessions over real sockets: EXCHANGE_ID cases, CREATE_SESSION
//! replay and negotiation, SP4_MACH_CRED with AUTH_SYS, leases, server identity.

mod common;

use common::{TestServer, sid};
use ringnfs::client::{
    ChannelAttrs, CompoundReply, CreateSessionArgs, ExchangeIdArgs, Op, RpcConn, StateProtect,
    StateProtectRes, default_back_attrs, default_fore_attrs,
};
use ringnfs::nfs4::consts::{cdfc, exchgid_flag, op, sp4, status};
use ringnfs::rpc::{AuthSys, Credential};

fn exchange(c: &RpcConn, owner: &[u8], verifier: u8, flags: u32) -> CompoundReply {
    c.compound(
        1,
        b"",
        &[Op::ExchangeId(ExchangeIdArgs {
            verifier: [verifier; 8],
            owner_id: owner.to_vec(),
            flags,
            state_protect: StateProtect::None,
            impl_id: None,
        })],
    )
    .unwrap()
}

fn create(c: &RpcConn, clientid: u64, sequence: u32) -> CompoundReply {
    create_with(c, clientid, sequence, default_fore_attrs(16))
}

fn create_with(c: &RpcConn, clientid: u64, sequence: u32, fore: ChannelAttrs) -> CompoundReply {
    c.compound(
        1,
        b"",
        &[Op::CreateSession(CreateSessionArgs {
            clientid,
            sequence,
            flags: 0,
            fore,
            back: default_back_attrs(),
            cb_program: 0x4000_0000,
            sec_parms: vec![],
        })],
    )
    .unwrap()
}

fn sys(uid: u32) -> Credential {
    Credential::Sys(AuthSys {
        stamp: 1,
        machine_name: b"test".to_vec(),
        uid,
        gid: uid,
        gids: vec![],
    })
}

#[test]
fn exchange_id_cases_over_the_wire() {
    let srv = TestServer::start();
    let c = srv.connect();
    // New client: unconfirmed.
    let e1 = exchange(&c, b"owner-a", 1, 0).exchange_id().unwrap();
    assert_eq!(e1.flags & exchgid_flag::CONFIRMED_R, 0);
    assert_ne!(e1.flags & exchgid_flag::USE_NON_PNFS, 0);
    let cs = create(&c, e1.clientid, e1.sequenceid)
        .create_session()
        .unwrap();
    // Same client again: confirmed, same id, next CREATE_SESSION sequence.
    let e2 = exchange(&c, b"owner-a", 1, 0).exchange_id().unwrap();
    assert_eq!(e2.clientid, e1.clientid);
    assert_ne!(e2.flags & exchgid_flag::CONFIRMED_R, 0);
    assert_eq!(e2.sequenceid, e1.sequenceid + 1);
    // Update with the same verifier works; with another verifier: NOT_SAME; unknown: NOENT.
    let upd = exchgid_flag::UPD_CONFIRMED_REC_A;
    assert_eq!(
        exchange(&c, b"owner-a", 1, upd)
            .exchange_id()
            .unwrap()
            .clientid,
        e1.clientid
    );
    assert_eq!(
        exchange(&c, b"owner-a", 2, upd).status,
        status::NFS4ERR_NOT_SAME
    );
    assert_eq!(
        exchange(&c, b"owner-b", 1, upd).status,
        status::NFS4ERR_NOENT
    );
    // A client may not claim CONFIRMED_R or unknown flags.
    assert_eq!(
        exchange(&c, b"owner-c", 1, exchgid_flag::CONFIRMED_R).status,
        status::NFS4ERR_INVAL
    );
    // Reboot: new verifier gives a new client id; confirming it destroys the old state.
    let e3 = exchange(&c, b"owner-a", 9, 0).exchange_id().unwrap();
    assert_ne!(e3.clientid, e1.clientid);
    assert_eq!(
        srv.state().session_count(),
        1,
        "old session kept until confirmed"
    );
    create(&c, e3.clientid, e3.sequenceid)
        .create_session()
        .unwrap();
    assert_eq!(
        srv.state()
            .session_info(&ringnfs::state::SessionId(cs.sessionid))
            .map(|_| ()),
        None
    );
    assert_eq!(srv.state().client_count(), 1);
}

#[test]
fn another_principal_cannot_take_a_live_client() {
    let srv = TestServer::start();
    let root = RpcConn::connect(srv.addr(), sys(0)).unwrap();
    let e = exchange(&root, b"shared-owner", 1, 0)
        .exchange_id()
        .unwrap();
    create(&root, e.clientid, e.sequenceid)
        .create_session()
        .unwrap();
    let user = RpcConn::connect(srv.addr(), sys(1000)).unwrap();
    assert_eq!(
        exchange(&user, b"shared-owner", 1, 0).status,
        status::NFS4ERR_CLID_INUSE
    );
    assert_eq!(
        exchange(&user, b"shared-owner", 1, exchgid_flag::UPD_CONFIRMED_REC_A).status,
        status::NFS4ERR_PERM
    );
}

#[test]
fn create_session_replay_and_sequence_rules() {
    let srv = TestServer::start();
    let c = srv.connect();
    let e = exchange(&c, b"replay", 1, 0).exchange_id().unwrap();
    let first = create(&c, e.clientid, e.sequenceid);
    let again = create(&c, e.clientid, e.sequenceid);
    assert_eq!(first.status, status::NFS4_OK);
    assert_eq!(again, first, "a replay returns the cached reply");
    assert_eq!(srv.state().session_count(), 1);
    assert_eq!(
        create(&c, e.clientid, e.sequenceid + 5).status,
        status::NFS4ERR_SEQ_MISORDERED
    );
    assert_eq!(
        create(&c, 0xdead_beef, 1).status,
        status::NFS4ERR_STALE_CLIENTID
    );
    // Unusable attributes fail without consuming the sequence.
    let tiny = ChannelAttrs {
        maxrequestsize: 64,
        ..default_fore_attrs(4)
    };
    assert_eq!(
        create_with(&c, e.clientid, e.sequenceid + 1, tiny).status,
        status::NFS4ERR_TOOSMALL
    );
    let cs = create(&c, e.clientid, e.sequenceid + 1)
        .create_session()
        .unwrap();
    assert_eq!(srv.state().session_count(), 2);
    // Negotiation: never more than offered.
    let greedy = ChannelAttrs {
        maxrequests: 100_000,
        maxoperations: 10_000,
        ..default_fore_attrs(4)
    };
    let g = create_with(&c, e.clientid, e.sequenceid + 2, greedy)
        .create_session()
        .unwrap();
    assert_eq!(g.fore.maxrequests, 64);
    assert_eq!(g.fore.maxoperations, 64);
    assert_eq!(cs.fore.maxrequests, 16);
}

#[test]
fn mach_cred_over_auth_sys() {
    let srv = TestServer::start();
    let root = RpcConn::connect(srv.addr(), sys(0)).unwrap();
    let r = root
        .compound(
            1,
            b"",
            &[Op::ExchangeId(ExchangeIdArgs {
                verifier: [1; 8],
                owner_id: b"machcred".to_vec(),
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
    let StateProtectRes::MachCred { must_enforce, .. } = &e.state_protect else {
        panic!("expected SP4_MACH_CRED, got {:?}", e.state_protect);
    };
    let enforced = ringnfs::nfs4::types::bitmap_to_ops(must_enforce);
    assert!(
        enforced.contains(&op::BIND_CONN_TO_SESSION) && enforced.contains(&op::DESTROY_SESSION)
    );
    let cs = create(&root, e.clientid, e.sequenceid)
        .create_session()
        .unwrap();
    let sid = cs.sessionid;
    let user = RpcConn::connect(srv.addr(), sys(1000)).unwrap();
    let bind = |c: &RpcConn| {
        c.compound(
            1,
            b"",
            &[Op::BindConnToSession {
                sessionid: sid,
                dir: cdfc::FORE,
                use_rdma: false,
            }],
        )
        .unwrap()
        .status
    };
    assert_eq!(bind(&user), status::NFS4ERR_WRONG_CRED);
    let root2 = RpcConn::connect(srv.addr(), sys(0)).unwrap();
    assert_eq!(bind(&root2), status::NFS4_OK);
    // AUTH_NONE has no principal to protect with.
    let anon = srv.connect();
    let r = anon
        .compound(
            1,
            b"",
            &[Op::ExchangeId(ExchangeIdArgs {
                verifier: [1; 8],
                owner_id: b"anon-machcred".to_vec(),
                flags: 0,
                state_protect: StateProtect::MachCred {
                    must_enforce: vec![],
                    must_allow: vec![],
                },
                impl_id: None,
            })],
        )
        .unwrap();
    assert_eq!(r.status, status::NFS4ERR_INVAL);
    assert_eq!(sp4::MACH_CRED, e.state_protect.how());
}

#[test]
fn reclaim_complete_once() {
    let srv = TestServer::start();
    let (_, s) = srv.session();
    let r = s
        .call(0, &[Op::ReclaimComplete { one_fs: false }], false)
        .unwrap();
    assert_eq!(r.status, status::NFS4_OK);
    let r = s
        .call(0, &[Op::ReclaimComplete { one_fs: false }], false)
        .unwrap();
    assert_eq!(r.status, status::NFS4ERR_COMPLETE_ALREADY);
    // Not allowed outside a session.
    let c = srv.connect();
    let r = c
        .compound(1, b"", &[Op::ReclaimComplete { one_fs: false }])
        .unwrap();
    assert_eq!(r.status, status::NFS4ERR_OP_NOT_IN_SESSION);
}

#[test]
fn sequence_renews_the_lease() {
    let srv = TestServer::with(|c| c.lease_secs = 3);
    let (_, s) = srv.session();
    // 4.5 s of activity, a SEQUENCE every 200 ms: longer than the lease, never expired.
    for _ in 0..22 {
        assert_eq!(s.call(0, &[], false).unwrap().status, status::NFS4_OK);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(srv.state().client_count(), 1);
    assert_eq!(srv.state().metrics_snapshot().unbinds_reaper, 0);
}

#[test]
fn server_owner_is_stable_across_restarts() {
    let dir = std::env::temp_dir().join(format!("ringnfs-owner-{}", std::process::id()));
    let owner_of = |srv: &TestServer| {
        exchange(&srv.connect(), b"probe", 1, 0)
            .exchange_id()
            .unwrap()
            .server_owner
    };
    let mut a = TestServer::with(|c| c.state_dir = Some(dir.clone()));
    let first = owner_of(&a);
    a.stop();
    let b = TestServer::with(|c| c.state_dir = Some(dir.clone()));
    assert_eq!(owner_of(&b), first);
    // Another server (another state dir) has another identity.
    let other = TestServer::start();
    assert_ne!(owner_of(&other), first);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn session_ids_from_another_boot_are_bad() {
    let srv = TestServer::start();
    let (_, s) = srv.session();
    let mut stale = sid(&s).0;
    stale[0] ^= 0xff;
    let c = srv.connect();
    let r = c
        .compound(
            1,
            b"",
            &[Op::BindConnToSession {
                sessionid: stale,
                dir: cdfc::FORE,
                use_rdma: false,
            }],
        )
        .unwrap();
    assert_eq!(r.status, status::NFS4ERR_BADSESSION);
}
