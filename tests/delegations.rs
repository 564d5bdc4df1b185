//! Read delegations with two in-repo clients over real sockets, on both backends (the
//! export's `delegations` switch on; it is off by default until delegations are whole):
//! OPEN for reading grants one to a client with a back channel; another client's
//! conflicting op (an OPEN for writing, WRITE, SETATTR, REMOVE, RENAME, LINK) recalls
//! it with CB_RECALL and waits with NFS4ERR_DELAY until the holder returns it
//! (DELEGRETURN); a holder that never returns it loses it after a lease.

pub mod common;
pub mod files_common;

use std::sync::Arc;
use std::time::Duration;

use common::wait_until;
use files_common::{Env, for_each_backend_with, status_of};
use ringnfs::client::callback::DefaultCallbackHandler;
use ringnfs::client::ops::share;
use ringnfs::client::{ClientError, ClientOptions, Delegation, Fattr, Files, Op, OpenRes, Stateid};
use ringnfs::nfs4::consts::status;
use ringnfs::server::{BackendKind, ServerConfig};

fn on(cfg: &mut ServerConfig) {
    cfg.export.delegations = true;
}

/// A client (its own session, a back channel) and what arrives on its back channel.
fn client(env: &Env) -> (Files, Arc<DefaultCallbackHandler>) {
    let (ids, session) = env.server.session();
    (
        Files::new(session),
        ids.callbacks.expect("the default handler"),
    )
}

/// OPEN `name` in the root for reading: the open and what it says of delegations.
fn open_read(f: &Files, name: &[u8]) -> (Vec<u8>, OpenRes) {
    let root = f.root_fh().unwrap();
    let args = f.open_args(
        share::ACCESS_READ,
        0,
        ringnfs::client::OpenHow::NoCreate,
        ringnfs::client::OpenClaim::Null(name.to_vec()),
    );
    let r = f
        .call(&[Op::PutFh(root), Op::Open(args), Op::GetFh])
        .unwrap();
    (r.getfh().unwrap(), r.open().unwrap())
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
        a.write_file(&root, b"f", b"hello").unwrap();
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
        type Act = Box<dyn Fn(&Files, &[u8], &[u8]) -> Result<(), ClientError>>;
        let acts: Vec<(&str, Act)> = vec![
            (
                "WRITE",
                Box::new(|b: &Files, _root: &[u8], fh: &[u8]| {
                    b.write_at(fh, Stateid::ANONYMOUS, 0, b"x", 2).map(drop)
                }),
            ),
            (
                "SETATTR",
                Box::new(|b: &Files, _root: &[u8], fh: &[u8]| {
                    b.setattr(fh, Fattr::new().mode(0o600), Stateid::ANONYMOUS)
                        .map(drop)
                }),
            ),
            (
                "LINK",
                Box::new(|b: &Files, root: &[u8], fh: &[u8]| b.link(fh, root, b"another-name")),
            ),
            (
                "RENAME",
                Box::new(|b: &Files, root: &[u8], _fh: &[u8]| b.rename(root, b"g", root, b"g2")),
            ),
            (
                "REMOVE",
                Box::new(|b: &Files, root: &[u8], _fh: &[u8]| b.remove(root, b"g2")),
            ),
        ];
        a.write_file(&root, b"g", b"data").unwrap();
        for (name, act) in &acts {
            let file = if *name == "REMOVE" {
                &b"g2"[..]
            } else {
                &b"g"[..]
            };
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

#[test]
fn a_holder_that_never_returns_it_loses_it_after_a_lease() {
    let env = Env::start(BackendKind::Memory, on);
    env.server.state().settings.set_lease_secs(2).unwrap();
    let (a, cb) = client(&env);
    let (b, _) = client(&env);
    let root = a.root_fh().unwrap();
    a.write_file(&root, b"f", b"x").unwrap();
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
    assert_eq!(
        status_of(delegreturn(&a, &fh, deleg)),
        status::NFS4ERR_BAD_STATEID
    );
}
