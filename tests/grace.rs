//! The grace period after a restart: a client that held state before may reclaim its
//! opens (CLAIM_PREVIOUS) while others' OPENs wait with NFS4ERR_GRACE; RECLAIM_COMPLETE
//! ends a client's reclaims; without a grace period reclaims get NFS4ERR_NO_GRACE; and
//! a new client's OPEN or LOCK that reclaims nothing waits for its RECLAIM_COMPLETE.

pub mod common;

use common::TestServer;
use ringnfs::client::files::Files;
use ringnfs::client::ops::locktype;
use ringnfs::client::ops::{OpenClaim, OpenHow, share};
use ringnfs::client::{ClientOptions, Op};
use ringnfs::nfs4::consts::status;
use ringnfs::server::BackendKind;

fn tmp(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ringnfs-grace-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A local-backend server keeping its export and state under `base`, so a restart finds
/// the client list it needs for the grace period.
fn local_server(base: &std::path::Path, grace_secs: u32) -> TestServer {
    let (export, state) = (base.join("export"), base.join("state"));
    TestServer::with(move |c| {
        c.backend = BackendKind::Local;
        c.export_path = export.clone();
        c.state_dir = Some(state.clone());
        c.grace_secs = grace_secs;
    })
}

#[test]
fn reclaim_during_grace_after_restart() {
    let base = tmp("restart");
    let start = |grace: u32| local_server(&base, grace);
    let owner = b"grace-test-client".to_vec();
    let opts = || ClientOptions {
        owner: Some(owner.clone()),
        verifier: Some([1; 8]),
        ..Default::default()
    };

    // Before the restart: the client confirms (its owner goes to stable storage) and
    // creates a file.
    let mut srv = start(0);
    let (_, s) = srv.session_with(opts());
    let files = Files::new(s);
    let root = files.root_fh().unwrap();
    let (fh, f) = files.create(&root, b"kept", 0o666).unwrap();
    files.close(f).unwrap();
    srv.stop();

    // After the restart, in grace: reclaim works for the old client (same owner,
    // new verifier: it rebooted too); a newcomer's OPEN waits.
    let srv = start(60);
    let (_, s) = srv.session_with(ClientOptions {
        verifier: Some([2; 8]),
        reclaim_complete: false,
        ..opts()
    });
    let files = Files::new(s);
    let args = files.open_args(
        share::ACCESS_READ,
        share::DENY_NONE,
        OpenHow::NoCreate,
        OpenClaim::Previous(0),
    );
    let (reclaimed, _) = files
        .open_with(&fh, args.clone())
        .expect("CLAIM_PREVIOUS in grace");
    let (_, other) = srv.session();
    let newcomer = Files::new(other);
    let root = newcomer.root_fh().unwrap();
    let err = newcomer
        .open(&root, b"kept", share::ACCESS_READ, share::DENY_NONE)
        .unwrap_err();
    assert_eq!(err.nfs_status(), Some(status::NFS4ERR_GRACE));
    // The newcomer cannot reclaim: it held nothing before.
    let nargs = newcomer.open_args(
        share::ACCESS_READ,
        share::DENY_NONE,
        OpenHow::NoCreate,
        OpenClaim::Previous(0),
    );
    assert_eq!(
        newcomer.open_with(&fh, nargs).unwrap_err().nfs_status(),
        Some(status::NFS4ERR_NO_GRACE)
    );
    // After RECLAIM_COMPLETE the old client's reclaims are over too.
    files.close(reclaimed).unwrap();
    let r = files
        .session()
        .call(0, &[Op::ReclaimComplete { one_fs: false }], false)
        .unwrap();
    assert_eq!(r.status, status::NFS4_OK);
    assert_eq!(
        files.open_with(&fh, args).unwrap_err().nfs_status(),
        Some(status::NFS4ERR_NO_GRACE)
    );
    drop(srv);
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn without_grace_reclaims_are_refused() {
    let srv = TestServer::start();
    let (_, s) = srv.session();
    let files = Files::new(s);
    let root = files.root_fh().unwrap();
    let (fh, f) = files.create(&root, b"f", 0o644).unwrap();
    files.close(f).unwrap();
    let args = files.open_args(
        share::ACCESS_READ,
        share::DENY_NONE,
        OpenHow::NoCreate,
        OpenClaim::Previous(0),
    );
    assert_eq!(
        files.open_with(&fh, args).unwrap_err().nfs_status(),
        Some(status::NFS4ERR_NO_GRACE)
    );
    // Ordinary opens are not held back.
    let f = files
        .open(&root, b"f", share::ACCESS_READ, share::DENY_NONE)
        .unwrap();
    files.close(f).unwrap();
}

/// RFC 8881 §18.51.3: after a new client ID, an OPEN that reclaims nothing waits with
/// NFS4ERR_GRACE until the client's RECLAIM_COMPLETE, with or without a grace period.
#[test]
fn opens_wait_for_reclaim_complete_without_a_grace_period() {
    let srv = TestServer::start();
    let (_, s) = srv.session_with(ClientOptions {
        reclaim_complete: false,
        ..Default::default()
    });
    let files = Files::new(s);
    let root = files.root_fh().unwrap();
    let err = files.create(&root, b"early", 0o644).unwrap_err();
    assert_eq!(err.nfs_status(), Some(status::NFS4ERR_GRACE));
    // One that reclaims only one file system does not end the wait.
    let r = files
        .call(&[Op::PutRootFh, Op::ReclaimComplete { one_fs: true }])
        .unwrap();
    assert_eq!(r.status, status::NFS4_OK);
    let err = files.create(&root, b"early", 0o644).unwrap_err();
    assert_eq!(err.nfs_status(), Some(status::NFS4ERR_GRACE));
    // The global one does, for OPENs later in the same COMPOUND too.
    let args = files.open_args(
        share::ACCESS_BOTH,
        share::DENY_NONE,
        OpenHow::Unchecked(Default::default()),
        OpenClaim::Null(b"after".to_vec()),
    );
    let r = files
        .call(&[
            Op::ReclaimComplete { one_fs: false },
            Op::PutRootFh,
            Op::Open(args),
        ])
        .unwrap();
    assert_eq!(r.status, status::NFS4_OK);
    let (_, f) = files.create(&root, b"later", 0o644).unwrap();
    files.close(f).unwrap();
}

/// A client that reclaimed an open but never sent RECLAIM_COMPLETE may not take new
/// locks, even after the grace period ended.
#[test]
fn locks_wait_for_reclaim_complete_after_grace_ends() {
    let base = tmp("lock");
    let start = |grace: u32| local_server(&base, grace);
    let opts = |verifier: u8, reclaim_complete: bool| ClientOptions {
        owner: Some(b"lock-reclaimer".to_vec()),
        verifier: Some([verifier; 8]),
        reclaim_complete,
        ..Default::default()
    };
    let mut srv = start(0);
    let (_, s) = srv.session_with(opts(1, true));
    let files = Files::new(s);
    let root = files.root_fh().unwrap();
    let (fh, f) = files.create(&root, b"locked", 0o666).unwrap();
    files.close(f).unwrap();
    srv.stop();

    let srv = start(1);
    let (_, s) = srv.session_with(opts(2, false));
    let files = Files::new(s);
    let args = files.open_args(
        share::ACCESS_BOTH,
        share::DENY_NONE,
        OpenHow::NoCreate,
        OpenClaim::Previous(0),
    );
    let (open, _) = files.open_with(&fh, args).expect("CLAIM_PREVIOUS in grace");
    assert!(common::wait_until(
        std::time::Duration::from_secs(10),
        || !srv.state().in_grace()
    ));
    let err = files
        .lock_new(&open, b"lock-owner", locktype::WRITE, 0, 10)
        .unwrap_err();
    assert_eq!(err.nfs_status(), Some(status::NFS4ERR_GRACE));
    let r = files
        .call(&[Op::ReclaimComplete { one_fs: false }])
        .unwrap();
    assert_eq!(r.status, status::NFS4_OK);
    files
        .lock_new(&open, b"lock-owner", locktype::WRITE, 0, 10)
        .expect("lock after RECLAIM_COMPLETE")
        .expect("granted");
    drop(srv);
    let _ = std::fs::remove_dir_all(&base);
}
