//! The grace period after a restart: a client that held state before may reclaim its
//! opens (CLAIM_PREVIOUS) while others' OPENs wait with NFS4ERR_GRACE; RECLAIM_COMPLETE
//! ends a client's reclaims; without a grace period reclaims get NFS4ERR_NO_GRACE.

mod common;

use common::TestServer;
use ringnfs::client::files::Files;
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

#[test]
fn reclaim_during_grace_after_restart() {
    let base = tmp("restart");
    let (export, state) = (base.join("export"), base.join("state"));
    let start = |grace: u32| {
        let (e, s) = (export.clone(), state.clone());
        TestServer::with(move |c| {
            c.backend = BackendKind::Local;
            c.export_path = e;
            c.state_dir = Some(s);
            c.grace_secs = grace;
        })
    };
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
