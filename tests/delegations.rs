//! Delegations with in-repo clients over real sockets, on both backends (the
//! `delegations` setting on; it is off by default): OPEN for reading grants a read
//! delegation, OPEN for writing by the only opener a write delegation, to a client with
//! a back channel; another client's conflicting op (an OPEN, WRITE, SETATTR, REMOVE,
//! RENAME, LINK; for a write delegation also READ, GETATTR, LOCK) recalls it with
//! CB_RECALL and waits with NFS4ERR_DELAY until the holder returns it (DELEGRETURN); a
//! holder that never returns it loses it after a lease, hears so in SEQUENCE, and frees
//! it with FREE_STATEID; one that never answers callbacks hears its callback path is
//! down and gets no new delegations; bounds cap what a client collects.

pub mod common;
pub mod files_common;

use std::sync::Arc;
use std::time::Duration;

use common::wait_until;
use files_common::{Env, for_each_backend_with, status_of};
use ringnfs::client::callback::DefaultCallbackHandler;
use ringnfs::client::ops::share;
use ringnfs::client::{ClientError, ClientOptions, Delegation, Fattr, Files, Op, OpenRes, Stateid};
use ringnfs::nfs4::consts::{seq4_status, status};
use ringnfs::server::{BackendKind, ServerConfig};

fn on(cfg: &mut ServerConfig) {
    cfg.delegations = true;
}

/// A client without a back channel (so it never holds delegations): sets files up.
fn plain(env: &Env) -> Files {
    let (_, session) = env.server.session_with(ClientOptions {
        back_channel: false,
        ..Default::default()
    });
    Files::new(session)
}

/// A client (its own session, a back channel) and what arrives on its back channel.
fn client(env: &Env) -> (Files, Arc<DefaultCallbackHandler>) {
    let (ids, session) = env.server.session();
    (
        Files::new(session),
        ids.callbacks.expect("the default handler"),
    )
}

/// OPEN `name` in the root with `share_access` (WANT bits included): the open and what
/// it says of delegations.
fn open_as(f: &Files, share_access: u32, name: &[u8]) -> (ringnfs::client::OpenFile, OpenRes) {
    let root = f.root_fh().unwrap();
    let args = f.open_args(
        share_access,
        0,
        ringnfs::client::OpenHow::NoCreate,
        ringnfs::client::OpenClaim::Null(name.to_vec()),
    );
    f.open_with(&root, args).unwrap()
}

/// OPEN `name` in the root for reading: its filehandle and what it says of delegations.
fn open_read(f: &Files, name: &[u8]) -> (Vec<u8>, OpenRes) {
    let (of, r) = open_as(f, share::ACCESS_READ, name);
    (of.fh, r)
}

fn read_delegation(r: &OpenRes) -> Stateid {
    match r.delegation {
        Delegation::Read { stateid, .. } => stateid,
        ref other => panic!("no read delegation: {other:?}"),
    }
}

fn delegreturn(f: &Files, fh: &[u8], sid: Stateid) -> Result<(), ClientError> {
    f.call(&[Op::PutFh(fh.to_vec()), Op::DelegReturn(sid)])
        .map(drop)
}

/// Wait until `cb` saw a recall of `sid`.
fn recalled(cb: &DefaultCallbackHandler, sid: Stateid) -> bool {
    wait_until(Duration::from_secs(10), || {
        cb.stats().recalls.iter().any(|(s, _)| *s == sid)
    })
}

#[test]
fn a_writer_recalls_a_read_delegation_and_waits_for_its_return() {
    for_each_backend_with(on, |env| {
        let (a, cb) = client(env);
        let (b, _) = client(env);
        let root = a.root_fh().unwrap();
        plain(env).write_file(&root, b"f", b"hello").unwrap();
        let (fh, opened) = open_read(&a, b"f");
        let deleg = read_delegation(&opened);
        // Readers do not conflict with a read delegation.
        let (_, other) = open_read(&b, b"f");
        assert!(
            matches!(other.delegation, Delegation::Read { .. }),
            "read delegations share"
        );
        // A writer does: DELAY, and the holder is asked for it back, once.
        let write_open = || b.open(&root, b"f", share::ACCESS_BOTH, 0);
        assert_eq!(status_of(write_open()), status::NFS4ERR_DELAY);
        assert!(recalled(&cb, deleg), "CB_RECALL reached the holder");
        assert_eq!(
            status_of(write_open()),
            status::NFS4ERR_DELAY,
            "until it is returned"
        );
        assert_eq!(
            cb.stats()
                .recalls
                .iter()
                .filter(|(s, _)| *s == deleg)
                .count(),
            1,
            "recalled once"
        );
        assert_eq!(cb.stats().recalls[0].1, fh, "with the file's handle");
        delegreturn(&a, &fh, deleg).unwrap();
        // B's own read delegation gives way too (it is B's: not recalled for B).
        let of = write_open().expect("the writer goes on once the delegation is back");
        b.write(&of, 0, b"HELLO", 2).unwrap();
        assert_eq!(
            status_of(delegreturn(&a, &fh, deleg)),
            status::NFS4ERR_BAD_STATEID
        );
    });
}

#[test]
fn every_conflicting_op_recalls() {
    for_each_backend_with(on, |env| {
        let (a, cb) = client(env);
        let (b, _) = client(env);
        let root = b.root_fh().unwrap();
        // Each act on a file of its own (a file whose delegation was recalled is not
        // delegated again for a while).
        type Act = Box<dyn Fn(&Files, &[u8], &[u8]) -> Result<(), ClientError>>;
        let acts: Vec<(&str, &[u8], Act)> = vec![
            (
                "WRITE",
                b"w",
                Box::new(|b: &Files, _root: &[u8], fh: &[u8]| {
                    b.write_at(fh, Stateid::ANONYMOUS, 0, b"x", 2).map(drop)
                }),
            ),
            (
                "SETATTR",
                b"s",
                Box::new(|b: &Files, _root: &[u8], fh: &[u8]| {
                    b.setattr(fh, Fattr::new().mode(0o600), Stateid::ANONYMOUS)
                        .map(drop)
                }),
            ),
            (
                "LINK",
                b"l",
                Box::new(|b: &Files, root: &[u8], fh: &[u8]| b.link(fh, root, b"another-name")),
            ),
            (
                "RENAME",
                b"r",
                Box::new(|b: &Files, root: &[u8], _fh: &[u8]| b.rename(root, b"r", root, b"r2")),
            ),
            (
                "REMOVE",
                b"d",
                Box::new(|b: &Files, root: &[u8], _fh: &[u8]| b.remove(root, b"d")),
            ),
            (
                "OPEN for writing",
                b"o",
                Box::new(|b: &Files, root: &[u8], _fh: &[u8]| {
                    b.open(root, b"o", share::ACCESS_WRITE, 0).map(drop)
                }),
            ),
        ];
        let setup = plain(env);
        for (name, file, act) in &acts {
            setup.write_file(&root, file, b"data").unwrap();
            let (fh, opened) = open_read(&a, file);
            let deleg = read_delegation(&opened);
            assert_eq!(
                status_of(act(&b, &root, &fh)),
                status::NFS4ERR_DELAY,
                "{name}"
            );
            assert!(recalled(&cb, deleg), "{name} recalls");
            delegreturn(&a, &fh, deleg).unwrap();
            act(&b, &root, &fh).unwrap_or_else(|e| panic!("{name} after the return: {e}"));
        }
        let st = env.server.state().files.delegation_stats();
        assert_eq!(
            (st.granted_read, st.recalled, st.returned, st.current),
            (6, 6, 6, 0)
        );
    });
}

#[test]
fn no_delegation_when_off_or_without_a_back_channel() {
    // Off by default.
    let env = Env::start(BackendKind::Memory, |_| {});
    let (a, _) = client(&env);
    a.write_file(&a.root_fh().unwrap(), b"f", b"x").unwrap();
    let (_, r) = open_read(&a, b"f");
    assert_eq!(r.delegation, Delegation::None);
    // On, but the client's session has no back channel to recall it on.
    let env = Env::start(BackendKind::Memory, on);
    let (_, session) = env.server.session_with(ClientOptions {
        back_channel: false,
        ..Default::default()
    });
    let f = Files::new(session);
    f.write_file(&f.root_fh().unwrap(), b"f", b"x").unwrap();
    let (_, r) = open_read(&f, b"f");
    assert_eq!(r.delegation, Delegation::None);
    // Opening for writing gets none either.
    let of = f
        .open(&f.root_fh().unwrap(), b"f", share::ACCESS_BOTH, 0)
        .unwrap();
    f.close(of).unwrap();
}

/// The SEQUENCE status flags of a call by `f`.
fn seq_flags(f: &Files) -> u32 {
    f.call(&[Op::PutRootFh])
        .unwrap()
        .sequence()
        .unwrap()
        .status_flags
}

#[test]
fn a_holder_that_never_returns_it_loses_it_after_a_lease() {
    let env = Env::start(BackendKind::Memory, on);
    env.server.state().settings.set_lease_secs(2).unwrap();
    let (a, cb) = client(&env);
    let (b, _) = client(&env);
    let root = a.root_fh().unwrap();
    plain(&env).write_file(&root, b"f", b"x").unwrap();
    let (fh, opened) = open_read(&a, b"f");
    let deleg = read_delegation(&opened);
    assert_eq!(
        status_of(b.write_at(&fh, Stateid::ANONYMOUS, 0, b"y", 2)),
        status::NFS4ERR_DELAY
    );
    assert!(recalled(&cb, deleg));
    // A keeps its lease (SEQUENCE) but never returns the delegation: revoked.
    let revoked = wait_until(Duration::from_secs(20), || {
        let _ = a.call(&[Op::PutRootFh]);
        b.write_at(&fh, Stateid::ANONYMOUS, 0, b"y", 2).is_ok()
    });
    assert!(
        revoked,
        "the write went through once the delegation was revoked"
    );
    // A hears of it in every SEQUENCE until it frees the stateid (RFC 8881 §18.46.3),
    // which answers DELEG_REVOKED meanwhile.
    assert_eq!(
        seq_flags(&a) & seq4_status::RECALLABLE_STATE_REVOKED,
        seq4_status::RECALLABLE_STATE_REVOKED
    );
    assert_eq!(seq_flags(&b) & seq4_status::RECALLABLE_STATE_REVOKED, 0);
    assert_eq!(
        status_of(delegreturn(&a, &fh, deleg)),
        status::NFS4ERR_DELEG_REVOKED
    );
    assert_eq!(
        status_of(a.read_at(&fh, deleg, 0, 1)),
        status::NFS4ERR_DELEG_REVOKED
    );
    let tested = a.call(&[Op::TestStateid(vec![deleg])]).unwrap();
    assert_eq!(
        tested.test_stateid().unwrap(),
        vec![status::NFS4ERR_DELEG_REVOKED]
    );
    a.call(&[Op::FreeStateid(deleg)]).unwrap();
    assert_eq!(seq_flags(&a) & seq4_status::RECALLABLE_STATE_REVOKED, 0);
    assert_eq!(
        status_of(delegreturn(&a, &fh, deleg)),
        status::NFS4ERR_BAD_STATEID
    );
    let st = env.server.state().files.delegation_stats();
    assert_eq!((st.revoked, st.revoked_unfreed, st.current), (1, 0, 0));
}

/// OPEN for writing by the only opener gets a write delegation: its holder reads and
/// writes under it, and another client's READ, GETATTR, LOCK or OPEN recalls it.
#[test]
fn a_write_delegation_is_recalled_by_readers_too() {
    for_each_backend_with(on, |env| {
        let (a, cb) = client(env);
        let (b, _) = client(env);
        let root = a.root_fh().unwrap();
        let setup = plain(env);
        type Act = Box<dyn Fn(&Files, &[u8], &[u8]) -> Result<(), ClientError>>;
        let acts: Vec<(&str, &[u8], Act)> = vec![
            (
                "READ",
                b"rd",
                Box::new(|b: &Files, _root: &[u8], fh: &[u8]| {
                    b.read_at(fh, Stateid::ANONYMOUS, 0, 4).map(drop)
                }),
            ),
            (
                // The holder cannot say the file's attributes (its handler knows no file,
                // so CB_GETATTR fails): recalled instead.
                "GETATTR",
                b"ga",
                Box::new(|b: &Files, _root: &[u8], fh: &[u8]| b.getattr(fh).map(drop)),
            ),
            (
                "OPEN for reading",
                b"or",
                Box::new(|b: &Files, root: &[u8], _fh: &[u8]| {
                    b.open(root, b"or", share::ACCESS_READ, 0).map(drop)
                }),
            ),
            (
                "LOCKT",
                b"lk",
                Box::new(|b: &Files, _root: &[u8], fh: &[u8]| {
                    // READ_LT: a lock test conflicts with the holder's local locks.
                    b.lockt(fh, b"tester", 1, 0, 1).map(drop)
                }),
            ),
        ];
        for (name, file, act) in &acts {
            setup.write_file(&root, file, b"data").unwrap();
            let (of, opened) = open_as(&a, share::ACCESS_BOTH, file);
            let Delegation::Write { stateid: deleg, .. } = opened.delegation else {
                panic!("{name}: no write delegation: {:?}", opened.delegation);
            };
            // The holder's I/O under the delegation stateid.
            a.write_at(&of.fh, deleg, 0, b"DATA", 2).unwrap();
            assert_eq!(a.read_at(&of.fh, deleg, 0, 4).unwrap().0, b"DATA");
            assert_eq!(
                status_of(act(&b, &root, &of.fh)),
                status::NFS4ERR_DELAY,
                "{name}"
            );
            assert!(recalled(&cb, deleg), "{name} recalls");
            a.close(of.clone()).unwrap();
            delegreturn(&a, &of.fh, deleg).unwrap();
            act(&b, &root, &of.fh).unwrap_or_else(|e| panic!("{name} after the return: {e}"));
        }
        let st = env.server.state().files.delegation_stats();
        assert_eq!((st.granted_write, st.recalled), (4, 4));
        // A read open by another client keeps a write delegation from being granted.
        setup.write_file(&root, b"shared", b"x").unwrap();
        let _reader = setup.open(&root, b"shared", share::ACCESS_READ, 0).unwrap();
        let (_, opened) = open_as(&a, share::ACCESS_BOTH | 0x0200, b"shared");
        assert!(
            matches!(opened.delegation, Delegation::NoneExt { why: 1, .. }),
            "WND4_CONTENTION: {:?}",
            opened.delegation
        );
    });
}

/// The `delegations` setting is live: off, OPEN grants none; the ones held stay.
#[test]
fn the_setting_switches_grants_live() {
    let env = Env::start(BackendKind::Memory, |_| {});
    let (a, _) = client(&env);
    let root = a.root_fh().unwrap();
    let setup = plain(&env);
    setup.write_file(&root, b"f", b"x").unwrap();
    setup.write_file(&root, b"g", b"x").unwrap();
    assert_eq!(open_read(&a, b"f").1.delegation, Delegation::None);
    env.server.state().settings.set_delegations(true);
    let deleg = read_delegation(&open_read(&a, b"g").1);
    env.server.state().settings.set_delegations(false);
    assert_eq!(open_read(&a, b"f").1.delegation, Delegation::None);
    let (fh, _) = open_read(&a, b"g");
    delegreturn(&a, &fh, deleg).unwrap();
}

/// A client that never answers a callback: the recall times out, the delegation is
/// revoked after a lease while other clients go on, and the client hears that its
/// callback path is down and gets no new delegation until it binds a back channel again.
#[test]
fn a_client_that_never_answers_callbacks_loses_its_path_not_the_others() {
    let env = Env::start(BackendKind::Memory, on);
    env.server.state().settings.set_lease_secs(3).unwrap();
    let (_, session) = env.server.session_with(ClientOptions {
        callback_handler: Some(Arc::new(common::SilentCallbacks)),
        ..Default::default()
    });
    let silent = Files::new(session);
    let (b, _) = client(&env);
    let root = b.root_fh().unwrap();
    let setup = plain(&env);
    for name in [&b"f"[..], b"g", b"h"] {
        setup.write_file(&root, name, b"x").unwrap();
    }
    let (fh, opened) = open_read(&silent, b"f");
    read_delegation(&opened);
    assert_eq!(
        status_of(b.write_at(&fh, Stateid::ANONYMOUS, 0, b"y", 2)),
        status::NFS4ERR_DELAY
    );
    // Others keep working meanwhile: B reads and gets delegations of other files.
    read_delegation(&open_read(&b, b"g").1);
    let went = wait_until(Duration::from_secs(20), || {
        let _ = silent.call(&[Op::PutRootFh]);
        b.write_at(&fh, Stateid::ANONYMOUS, 0, b"y", 2).is_ok()
    });
    assert!(
        went,
        "the write went through once the delegation was revoked"
    );
    // The CB_RECALL times out (15 s): callback path down.
    let down = wait_until(Duration::from_secs(30), || {
        seq_flags(&silent) & seq4_status::CB_PATH_DOWN != 0
    });
    assert!(down, "SEQ4_STATUS_CB_PATH_DOWN");
    assert_eq!(open_read(&silent, b"h").1.delegation, Delegation::None);
}

/// A client that opens many files collects no more delegations than its bound; others
/// still get theirs.
#[test]
fn a_client_collects_no_more_than_its_bound() {
    let env = Env::start(BackendKind::Memory, |c| {
        c.delegations = true;
        c.limits.max_delegations_per_client = 20;
        c.limits.max_delegations = 30;
    });
    let (greedy, _) = client(&env);
    let (other, _) = client(&env);
    let root = greedy.root_fh().unwrap();
    let setup = plain(&env);
    let mut granted = 0;
    for i in 0..100 {
        let name = format!("f{i}");
        setup.write_file(&root, name.as_bytes(), b"x").unwrap();
        if matches!(
            open_read(&greedy, name.as_bytes()).1.delegation,
            Delegation::Read { .. }
        ) {
            granted += 1;
        }
    }
    assert_eq!(granted, 20);
    let mut theirs = 0;
    for i in 0..20 {
        let name = format!("f{i}");
        if matches!(
            open_read(&other, name.as_bytes()).1.delegation,
            Delegation::Read { .. }
        ) {
            theirs += 1;
        }
    }
    assert_eq!(theirs, 10, "the other client, up to the total bound");
    assert_eq!(env.server.state().files.delegation_count(), 30);
}

/// After a restart with a grace period, a client reclaims its open with CLAIM_PREVIOUS
/// naming the delegation it held, and gets that delegation back (RFC 8881 §10.2.1).
#[test]
fn delegations_are_reclaimed_after_a_restart() {
    let base = std::env::temp_dir().join(format!("ringnfs-deleg-reclaim-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (export, state) = (base.join("export"), base.join("state"));
    let start = |grace: u32| {
        let (export, state) = (export.clone(), state.clone());
        common::TestServer::with(move |c| {
            c.backend = BackendKind::Local;
            c.export_path = export.clone();
            c.state_dir = Some(state.clone());
            c.grace_secs = grace;
            c.delegations = true;
        })
    };
    let opts = |verifier: u8, reclaim_complete: bool| ClientOptions {
        owner: Some(b"deleg-reclaim-client".to_vec()),
        verifier: Some([verifier; 8]),
        reclaim_complete,
        ..Default::default()
    };
    let mut srv = start(0);
    let (_, s) = srv.session_with(opts(1, true));
    let a = Files::new(s);
    let root = a.root_fh().unwrap();
    let (r_fh, _) = a.create(&root, b"r", 0o666).unwrap();
    let (w_fh, _) = a.create(&root, b"w", 0o666).unwrap();
    srv.stop();

    let srv = start(60);
    let (_, s) = srv.session_with(opts(2, false));
    let a = Files::new(s);
    let reclaim = |fh: &[u8], access: u32, deleg_type: u32| {
        let args = a.open_args(
            access,
            0,
            ringnfs::client::OpenHow::NoCreate,
            ringnfs::client::OpenClaim::Previous(deleg_type),
        );
        a.open_with(fh, args).unwrap().1.delegation
    };
    assert!(matches!(
        reclaim(&r_fh, share::ACCESS_READ, 1),
        Delegation::Read { .. }
    ));
    assert!(matches!(
        reclaim(&w_fh, share::ACCESS_BOTH, 2),
        Delegation::Write { .. }
    ));
    assert_eq!(
        reclaim(&r_fh, share::ACCESS_READ, 0),
        Delegation::None,
        "reclaiming an open that held no delegation brings none"
    );
    drop(srv);
    let _ = std::fs::remove_dir_all(&base);
}

/// Another client's GETATTR of a file under a write delegation asks the holder
/// (CB_GETATTR) and waits: the holder's size and change win when it changed the file,
/// the server's when it did not; the delegation stays. A GETATTR of attributes the
/// holder cannot change behind the server's back does not ask.
#[test]
fn a_getattr_asks_the_write_delegation_holder() {
    for_each_backend_with(on, |env| {
        let (a, cb) = client(env);
        let (b, _) = client(env);
        let root = a.root_fh().unwrap();
        plain(env).write_file(&root, b"cg", b"0123456789").unwrap();
        let (_, opened) = open_as(&a, share::ACCESS_BOTH, b"cg");
        let Delegation::Write { stateid: deleg, .. } = opened.delegation else {
            panic!("no write delegation: {:?}", opened.delegation);
        };
        let fh = a.lookup(&root, b"cg").unwrap();
        let mine = a.getattr(&fh).unwrap(); // the holder's own: no callback
        let (change, size) = (mine.change.unwrap(), mine.size.unwrap());
        assert_eq!(size, 10);
        let b_getattr = || {
            let mut delays = 0;
            loop {
                match b.getattr(&fh) {
                    Err(e) if e.nfs_status() == Some(status::NFS4ERR_DELAY) && delays < 500 => {
                        delays += 1;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    r => return (r.unwrap(), delays),
                }
            }
        };
        // Unchanged by the holder: the server's attributes, after one DELAY at least.
        cb.set_cached_attrs(&fh, change, size);
        let (got, delays) = b_getattr();
        assert!(delays >= 1, "B waited for the holder's answer");
        assert_eq!((got.change, got.size), (Some(change), Some(10)));
        // Cached writes the server has not seen: the holder's size, a higher change.
        cb.set_cached_attrs(&fh, change + 1, 12_345);
        let (got, _) = b_getattr();
        assert_eq!(got.size, Some(12_345));
        assert!(got.change.unwrap() > change, "{got:?}");
        assert_eq!(cb.stats().getattrs.len(), 2);
        // Only the mode: nothing to ask.
        let r = b
            .call(&[Op::PutFh(fh.clone()), Op::GetAttr(vec![0, 1 << (33 - 32)])])
            .unwrap();
        assert!(r.attrs().unwrap().mode.is_some());
        assert_eq!(cb.stats().getattrs.len(), 2);
        // No recall: the holder keeps its delegation.
        assert!(cb.stats().recalls.is_empty());
        delegreturn(&a, &fh, deleg).unwrap();
    });
}

/// Drops the first CB_COMPOUND (as a client that lost it would), answers the rest.
struct LosesTheFirst {
    inner: DefaultCallbackHandler,
    seen: std::sync::atomic::AtomicU32,
}

impl ringnfs::client::CallbackHandler for LosesTheFirst {
    fn handle(&self, call: &ringnfs::rpc::CallHeader<'_>) -> ringnfs::client::CallbackReply {
        if call.proc_ == 1 && self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            return ringnfs::client::CallbackReply::Drop;
        }
        self.inner.handle(call)
    }
}

/// The back channel carries as many callbacks at once as the client granted slots: with
/// two, a recall the client never answers does not hold up the next one (with one, the
/// next would wait out the first's 15 s).
#[test]
fn callbacks_use_every_back_channel_slot() {
    let env = Env::start(BackendKind::Memory, on);
    let handler = Arc::new(LosesTheFirst {
        inner: DefaultCallbackHandler::default(),
        seen: Default::default(),
    });
    let (_, session) = env.server.session_with(ClientOptions {
        callback_handler: Some(handler.clone()),
        back_attrs: Some(ringnfs::client::ChannelAttrs {
            maxrequests: 2,
            ..ringnfs::client::default_back_attrs()
        }),
        ..Default::default()
    });
    let a = Files::new(session);
    let (b, _) = client(&env);
    let root = b.root_fh().unwrap();
    let setup = plain(&env);
    setup.write_file(&root, b"one", b"1").unwrap();
    setup.write_file(&root, b"two", b"2").unwrap();
    let (one, o1) = open_read(&a, b"one");
    let (two, o2) = open_read(&a, b"two");
    let (d1, d2) = (read_delegation(&o1), read_delegation(&o2));
    for fh in [&one, &two] {
        assert_eq!(
            status_of(b.write_at(fh, Stateid::ANONYMOUS, 0, b"x", 2)),
            status::NFS4ERR_DELAY
        );
    }
    // The first recall is lost; the second goes on the other slot and arrives at once.
    assert!(
        wait_until(Duration::from_secs(5), || handler
            .inner
            .stats()
            .recalls
            .iter()
            .any(|(s, _)| *s == d2)),
        "the second recall came while the first was unanswered"
    );
    assert!(!handler.inner.stats().recalls.iter().any(|(s, _)| *s == d1));
    let seq = handler.inner.stats().last_sequence.unwrap();
    assert_eq!((seq.slotid, seq.highest_slotid), (1, 1), "on slot 1 of 2");
    delegreturn(&a, &two, d2).unwrap();
    b.write_at(&two, Stateid::ANONYMOUS, 0, b"x", 2).unwrap();
}

/// A client that never answers a recall holds up no other client's recall.
#[test]
fn a_silent_holder_does_not_delay_other_holders_recalls() {
    let env = Env::start(BackendKind::Memory, on);
    let (_, session) = env.server.session_with(ClientOptions {
        callback_handler: Some(Arc::new(common::SilentCallbacks)),
        ..Default::default()
    });
    let silent = Files::new(session);
    let (a, cb) = client(&env);
    let (b, _) = client(&env);
    let root = b.root_fh().unwrap();
    let setup = plain(&env);
    setup.write_file(&root, b"s", b"1").unwrap();
    setup.write_file(&root, b"a", b"2").unwrap();
    let (s_fh, _) = open_read(&silent, b"s");
    let (a_fh, opened) = open_read(&a, b"a");
    let deleg = read_delegation(&opened);
    assert_eq!(
        status_of(b.write_at(&s_fh, Stateid::ANONYMOUS, 0, b"x", 2)),
        status::NFS4ERR_DELAY
    );
    assert_eq!(
        status_of(b.write_at(&a_fh, Stateid::ANONYMOUS, 0, b"x", 2)),
        status::NFS4ERR_DELAY
    );
    assert!(
        wait_until(Duration::from_secs(5), || cb
            .stats()
            .recalls
            .iter()
            .any(|(s, _)| *s == deleg)),
        "A's recall came while the silent client's was unanswered"
    );
    delegreturn(&a, &a_fh, deleg).unwrap();
    b.write_at(&a_fh, Stateid::ANONYMOUS, 0, b"x", 2).unwrap();
}

/// WANT_DELEGATION (RFC 8881 §18.49): a delegation without an OPEN, by the same rules;
/// the reason when none is granted; the claims it does not take.
#[test]
fn want_delegation_grants_or_says_why_not() {
    use ringnfs::client::ops::wire::{DelegClaim, WantDelegationArgs};
    let env = Env::start(BackendKind::Memory, on);
    let (a, _) = client(&env);
    let root = a.root_fh().unwrap();
    let setup = plain(&env);
    for name in [&b"r"[..], b"w", b"busy"] {
        setup.write_file(&root, name, b"x").unwrap();
    }
    let want = |fh: &[u8], want: u32, claim: DelegClaim| {
        a.call(&[
            Op::PutFh(fh.to_vec()),
            Op::WantDelegation(WantDelegationArgs { want, claim }),
        ])
        .and_then(|r| r.want_delegation())
    };
    let fh = |n: &[u8]| a.lookup(&root, n).unwrap();
    assert!(matches!(
        want(&fh(b"r"), 0x0100, DelegClaim::Fh).unwrap(),
        Delegation::Read { .. }
    ));
    assert!(matches!(
        want(&fh(b"w"), 0x0200, DelegClaim::Fh).unwrap(),
        Delegation::Write { .. }
    ));
    // Another client has it open for reading: no write delegation, for contention.
    let _reader = setup.open(&root, b"busy", share::ACCESS_READ, 0).unwrap();
    assert_eq!(
        want(&fh(b"busy"), 0x0200, DelegClaim::Fh).unwrap(),
        Delegation::NoneExt {
            why: 1,
            flag: Some(false)
        }
    );
    assert_eq!(
        want(&fh(b"busy"), 0x0400, DelegClaim::Fh).unwrap(),
        Delegation::NoneExt { why: 0, flag: None },
        "WND4_NOT_WANTED"
    );
    let err = |r: Result<Delegation, ClientError>| r.unwrap_err().nfs_status();
    assert_eq!(
        err(want(&fh(b"r"), 0x0101, DelegClaim::Fh)),
        Some(status::NFS4ERR_INVAL),
        "access bits"
    );
    assert_eq!(
        err(want(&root, 0x0100, DelegClaim::Fh)),
        Some(status::NFS4ERR_ISDIR)
    );
    assert_eq!(
        err(want(&fh(b"r"), 0x0100, DelegClaim::DelegPrevFh)),
        Some(status::NFS4ERR_NOTSUPP)
    );
    assert_eq!(
        err(want(&fh(b"r"), 0x0100, DelegClaim::Previous(1))),
        Some(status::NFS4ERR_NO_GRACE)
    );
    assert_eq!(
        err(want(&fh(b"r"), 0x0100, DelegClaim::Other(9))),
        Some(status::NFS4ERR_INVAL)
    );
}

/// Callback security (RFC 8881 §18.36.4): a session whose csa_sec_parms name only a
/// flavor the server cannot call back with (RPCSEC_GSS here) has no callback path: its
/// SEQUENCEs say SEQ4_STATUS_CB_PATH_DOWN_SESSION and it gets no delegation; one that
/// offers AUTH_SYS beside it is called back with AUTH_SYS.
#[test]
fn callbacks_use_the_security_the_session_offered() {
    use ringnfs::client::CallbackSec;
    let env = Env::start(BackendKind::Memory, on);
    let root = plain(&env).root_fh().unwrap();
    plain(&env).write_file(&root, b"f", b"x").unwrap();
    let gss = CallbackSec::Gss {
        service: 1,
        server_handle: vec![1; 8],
        client_handle: vec![2; 8],
    };
    let (_, session) = env.server.session_with(ClientOptions {
        cb_sec: Some(vec![gss.clone()]),
        ..Default::default()
    });
    let f = Files::new(session);
    assert_ne!(seq_flags(&f) & seq4_status::CB_PATH_DOWN_SESSION, 0);
    assert_eq!(open_read(&f, b"f").1.delegation, Delegation::None);
    // GSS first, AUTH_SYS too: callbacks come as AUTH_SYS.
    let sys = files_common::sys(4242, 4242);
    let ringnfs::rpc::Credential::Sys(parms) = sys.clone() else {
        unreachable!()
    };
    let (ids, session) = env.server.session_with(ClientOptions {
        cred: sys,
        cb_sec: Some(vec![gss, CallbackSec::Sys(parms)]),
        ..Default::default()
    });
    let cb = ids.callbacks.unwrap();
    let f = Files::new(session);
    assert_eq!(seq_flags(&f) & seq4_status::CB_PATH_DOWN_SESSION, 0);
    let (fh, opened) = open_read(&f, b"f");
    let deleg = read_delegation(&opened);
    let (b, _) = client(&env);
    assert_eq!(
        status_of(b.write_at(&fh, Stateid::ANONYMOUS, 0, b"y", 2)),
        status::NFS4ERR_DELAY
    );
    assert!(recalled(&cb, deleg));
    assert!(
        matches!(cb.stats().last_cred, Some(ringnfs::rpc::Credential::Sys(ref s)) if s.uid == 4242),
        "{:?}",
        cb.stats().last_cred
    );
    delegreturn(&f, &fh, deleg).unwrap();
}
