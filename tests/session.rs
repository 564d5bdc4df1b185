//! Client ids and sessions over real sockets: EXCHANGE_ID cases, CREATE_SESSION
//! replay and negotiation, SP4_MACH_CRED with AUTH_SYS, leases, server identity.

pub mod common;

use common::{TestServer, sid};
use ringnfs::client::{BindConnArgs, SessionId};
use ringnfs::client::{
    ChannelAttrs, CompoundReply, CreateSessionArgs, ExchangeIdArgs, Op, RpcConn, SequenceArgs,
    StateProtect, StateProtectRes, default_back_attrs, default_fore_attrs,
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
        &[create_op(clientid, sequence, 0, fore, default_back_attrs())],
    )
    .unwrap()
}

fn create_op(
    clientid: u64,
    sequence: u32,
    flags: u32,
    fore: ChannelAttrs,
    back: ChannelAttrs,
) -> Op {
    Op::CreateSession(CreateSessionArgs {
        clientid,
        sequence,
        flags,
        fore,
        back,
        cb_program: 0x4000_0000,
        sec_parms: vec![],
    })
}

/// EXCHANGE_ID + CREATE_SESSION for `owner` on `c` with the given fore channel.
fn new_session(
    c: &RpcConn,
    owner: &[u8],
    fore: ChannelAttrs,
) -> ringnfs::client::CreateSessionResOk {
    let e = exchange(c, owner, 1, 0).exchange_id().unwrap();
    create_with(c, e.clientid, e.sequenceid, fore)
        .create_session()
        .unwrap_or_else(|err| panic!("CREATE_SESSION for {owner:?}: {err}"))
}

/// SEQUENCE on slot 0.
fn seq(sessionid: SessionId, sequenceid: u32, cachethis: bool) -> Op {
    Op::Sequence(SequenceArgs {
        sessionid,
        sequenceid,
        slotid: 0,
        highest_slotid: 0,
        cachethis,
    })
}

/// A fore channel of `size` bytes each way, caching `cached` bytes of reply.
fn small_fore(size: u32, cached: u32) -> ChannelAttrs {
    ChannelAttrs {
        maxrequestsize: size,
        maxresponsesize: size,
        maxresponsesize_cached: cached,
        ..default_fore_attrs(8)
    }
}

/// The attributes RFC 8881 §5.6 makes mandatory (what a conformance suite asks for).
fn mandatory_attrs() -> Vec<u32> {
    use ringnfs::nfs4::attrs::attr::*;
    let mut words = vec![0u32; 1];
    for a in [
        SUPPORTED_ATTRS,
        TYPE,
        FH_EXPIRE_TYPE,
        CHANGE,
        SIZE,
        LINK_SUPPORT,
        SYMLINK_SUPPORT,
        NAMED_ATTR,
        FSID,
        UNIQUE_HANDLES,
        LEASE_TIME,
        RDATTR_ERROR,
        FILEHANDLE,
    ] {
        words[0] |= 1 << a;
    }
    words
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
    assert_eq!(srv.state().session_info(&cs.sessionid).map(|_| ()), None);
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
            &[Op::BindConnToSession(BindConnArgs {
                sessionid: sid,
                dir: cdfc::FORE,
                use_rdma: false,
            })],
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
    let (_, s) = srv.session_with(ringnfs::client::ClientOptions {
        reclaim_complete: false,
        ..Default::default()
    });
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
    let mut stale = sid(&s);
    stale.0[0] ^= 0xff;
    let c = srv.connect();
    let r = c
        .compound(
            1,
            b"",
            &[Op::BindConnToSession(BindConnArgs {
                sessionid: stale,
                dir: cdfc::FORE,
                use_rdma: false,
            })],
        )
        .unwrap();
    assert_eq!(r.status, status::NFS4ERR_BADSESSION);
}

#[test]
fn a_400_byte_fore_channel_gets_a_session_and_replies_over_it_are_refused() {
    let srv = TestServer::start();
    let c = srv.connect();
    // RFC 8881 §18.36.3: 400 bytes carry a SEQUENCE-only COMPOUND and its reply.
    let cs = new_session(&c, b"small-fore", small_fore(400, 400));
    assert_eq!(
        (
            cs.fore.maxrequestsize,
            cs.fore.maxresponsesize,
            cs.fore.maxresponsesize_cached
        ),
        (400, 400, 400)
    );
    let sid = cs.sessionid;
    let r = c
        .compound(
            1,
            b"",
            &[seq(sid, 1, false), Op::ReclaimComplete { one_fs: false }],
        )
        .unwrap();
    assert_eq!(r.status, status::NFS4_OK);
    // A reply that fits is served, GETATTR included.
    let type_only = vec![1 << ringnfs::nfs4::attrs::attr::TYPE];
    let r = c
        .compound(
            1,
            b"",
            &[seq(sid, 2, false), Op::PutRootFh, Op::GetAttr(type_only)],
        )
        .unwrap();
    assert_eq!(r.status, status::NFS4_OK, "a small GETATTR fits 400 bytes");
    // Four GETATTRs of the mandatory attributes do not.
    let getattr = Op::GetAttr(mandatory_attrs());
    let r = c
        .compound(
            1,
            b"",
            &[
                seq(sid, 3, false),
                Op::PutRootFh,
                getattr.clone(),
                getattr.clone(),
                getattr.clone(),
                getattr,
            ],
        )
        .unwrap();
    assert_eq!(r.status, status::NFS4ERR_REP_TOO_BIG);
    // The session goes on.
    let r = c.compound(1, b"", &[seq(sid, 4, false)]).unwrap();
    assert_eq!(r.status, status::NFS4_OK);
}

#[test]
fn the_cached_reply_size_granted_is_what_the_client_asked_for() {
    let srv = TestServer::start();
    let c = srv.connect();
    // A tiny reply cache is the client's choice.
    let cs = new_session(&c, b"tiny-cache", small_fore(8192, 10));
    assert_eq!(cs.fore.maxresponsesize_cached, 10, "never raised");
    let sid = cs.sessionid;
    let r = c.compound(1, b"", &[seq(sid, 1, true)]).unwrap();
    assert_eq!(r.status, status::NFS4ERR_REP_TOO_BIG_TO_CACHE);
    // The refused SEQUENCE did not use the slot: the same seqid without caching works.
    let r = c.compound(1, b"", &[seq(sid, 1, false)]).unwrap();
    assert_eq!(r.status, status::NFS4_OK);

    // With room for SEQUENCE but not for a big GETATTR, the op that does not fit is
    // refused, and the reply cached.
    let cs = new_session(&c, b"small-cache", small_fore(8192, 200));
    let ops = [
        seq(cs.sessionid, 1, true),
        Op::PutRootFh,
        Op::GetAttr(mandatory_attrs()),
    ];
    let r = c.compound(1, b"", &ops).unwrap();
    assert_eq!(r.status, status::NFS4ERR_REP_TOO_BIG_TO_CACHE);
    assert_eq!(r.results.len(), 3);
    assert_eq!(
        c.compound(1, b"", &ops).unwrap(),
        r,
        "the retry is answered from the cache"
    );
}

#[test]
fn a_back_channel_that_cannot_carry_a_recall_is_too_small_every_time() {
    let srv = TestServer::start();
    let c = srv.connect();
    let e = exchange(&c, b"small-back", 1, 0).exchange_id().unwrap();
    let cs = create(&c, e.clientid, e.sequenceid)
        .create_session()
        .unwrap();
    let next = e.sequenceid + 1;
    let fore = default_fore_attrs(8);
    let tiny_request = ChannelAttrs {
        maxrequestsize: 10,
        maxrequests: 1,
        ..default_back_attrs()
    };
    let one_op = ChannelAttrs {
        maxoperations: 1,
        ..default_back_attrs()
    };
    let sessions = srv.state().session_count();
    let clients = srv.state().client_count();
    for i in 0..10_000u32 {
        let back = if i % 2 == 0 { tiny_request } else { one_op };
        let r = c
            .compound(
                1,
                b"",
                &[
                    seq(cs.sessionid, i + 1, false),
                    create_op(e.clientid, next, 0, fore, back),
                ],
            )
            .unwrap();
        assert_eq!(r.status, status::NFS4ERR_TOOSMALL, "attempt {i}");
    }
    // Nothing was kept for the refusals: no session, no client, and the CREATE_SESSION
    // sequence is still the next one.
    assert_eq!(srv.state().session_count(), sessions);
    assert_eq!(srv.state().client_count(), clients);
    let r = c
        .compound(
            1,
            b"",
            &[create_op(e.clientid, next, 0, fore, default_back_attrs())],
        )
        .unwrap();
    assert_eq!(r.status, status::NFS4_OK);
}

#[test]
fn unknown_create_session_flags_are_invalid() {
    let srv = TestServer::start();
    let c = srv.connect();
    let e = exchange(&c, b"bad-flags", 1, 0).exchange_id().unwrap();
    for flags in [0xf, 0x100, 0x8000_0000] {
        let r = c
            .compound(
                1,
                b"",
                &[create_op(
                    e.clientid,
                    e.sequenceid,
                    flags,
                    default_fore_attrs(4),
                    default_back_attrs(),
                )],
            )
            .unwrap();
        assert_eq!(r.status, status::NFS4ERR_INVAL, "flags {flags:#x}");
    }
    assert_eq!(srv.state().session_count(), 0);
    // The defined flags are fine (PERSIST is not granted: we keep no reply cache on disk).
    let r = c
        .compound(
            1,
            b"",
            &[create_op(
                e.clientid,
                e.sequenceid,
                0x7,
                default_fore_attrs(4),
                default_back_attrs(),
            )],
        )
        .unwrap();
    let cs = r.create_session().unwrap();
    assert_eq!(cs.flags & 0x1, 0);
}

/// A client whose lease expired while it kept its TCP connection comes back on that
/// connection: it gets NFS4ERR_BADSESSION there and recovers on it. Only connections
/// that never had a session are closed by the short idle timeout.
#[test]
fn a_client_back_after_its_lease_expired_finds_its_connection_open() {
    let srv = TestServer::with(|c| {
        c.lease_secs = 1;
        c.limits.idle_timeout_secs = 1;
        c.limits.session_idle_timeout_secs = 120;
    });
    let c = srv.connect();
    let never = srv.connect(); // connects and says nothing
    let cs = new_session(&c, b"comes-back", default_fore_attrs(16));
    let r = c.compound(1, b"", &[seq(cs.sessionid, 1, false)]).unwrap();
    assert_eq!(r.status, status::NFS4_OK);
    // Silence: the lease runs out, the reaper removes the client and unbinds `c`.
    let wait = std::time::Duration::from_secs(20);
    assert!(common::wait_until(wait, || srv.state().client_count() == 0));
    // The silent connection goes after the short timeout; `c` stays well past it.
    assert!(common::wait_until(wait, || srv
        .transport_stats()
        .idle_closes
        == 1));
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(srv.transport_stats().idle_closes, 1);
    let r = c
        .compound(1, b"", &[seq(cs.sessionid, 2, false)])
        .expect("the connection that had a session is still open");
    assert_eq!(r.status, status::NFS4ERR_BADSESSION);
    // Recovery on the same connection: a new client ID and session.
    let cs2 = new_session(&c, b"comes-back", default_fore_attrs(16));
    let r = c.compound(1, b"", &[seq(cs2.sessionid, 1, false)]).unwrap();
    assert_eq!(r.status, status::NFS4_OK);
    drop(never);
}
