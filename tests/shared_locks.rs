//! Two servers exporting one directory with the local backend (an active-active cluster
//! on one shared file system, in one process): byte-range locks granted by one are
//! taken on the file system as OFD locks, so the other refuses conflicting ones, and a
//! local process sees them. OFD locks of different open file descriptions conflict even
//! within one process, which is what makes this test meaningful.

pub mod common;
pub mod files_common;

use std::os::fd::AsRawFd;
use std::path::Path;

use common::TestServer;
use files_common::{TempDir, failure_of, status_of};
use ringnfs::client::ops::{locktype, share};
use ringnfs::client::{ClientOptions, Files, Locker, Op, OpenClaim, OpenFile, OpenHow};
use ringnfs::nfs4::consts::{op, status};
use ringnfs::server::BackendKind;
use ringnfs::state::files::FOREIGN_OWNER;

/// A local-backend server on `export`, its state in `state`.
fn node(export: &Path, state: &Path) -> TestServer {
    let (export, state) = (export.to_path_buf(), state.to_path_buf());
    TestServer::with(move |cfg| {
        cfg.backend = BackendKind::Local;
        cfg.export_path = export;
        cfg.state_dir = Some(state);
    })
}

/// What F_OFD_GETLK through a description of this process's own says about a write lock
/// of `[start, start + len)` (len 0: to the end): (type, start, len) of a conflict.
fn local_getlk(path: &Path, start: i64, len: i64) -> Option<(i16, i64, i64)> {
    let f = std::fs::File::open(path).unwrap();
    // SAFETY: `flock` is plain old data; all-zero is a valid value (l_pid 0 for OFD).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    fl.l_start = start;
    fl.l_len = len;
    // SAFETY: a valid descriptor and a writable struct flock for the call.
    let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    assert_eq!(r, 0, "F_OFD_GETLK: {}", std::io::Error::last_os_error());
    (fl.l_type != libc::F_UNLCK as i16).then_some((fl.l_type, fl.l_start, fl.l_len))
}

fn open_both(f: &Files, name: &[u8]) -> OpenFile {
    let root = f.root_fh().unwrap();
    f.open(&root, name, share::ACCESS_BOTH, 0).unwrap()
}

#[test]
fn two_nodes_on_one_file_system_share_their_locks() {
    if !ringnfs::fs::local::running_as_root() {
        ringnfs_testkit::skip(
            "two_nodes_on_one_file_system_share_their_locks",
            "the local backend opens files by handle, which needs root",
        );
        return;
    }
    let dir = TempDir::new("shared-locks");
    let export = dir.path().join("export");
    let a_node = node(&export, &dir.path().join("state-a"));
    let b_node = node(&export, &dir.path().join("state-b"));
    let a = Files::new(a_node.session().1);
    let b = Files::new(b_node.session().1);

    let root = a.root_fh().unwrap();
    let fh = a.write_file(&root, b"shared", &[0u8; 4096]).unwrap();
    let oa = open_both(&a, b"shared");
    let ob = open_both(&b, b"shared");
    let fh_b = ob.fh.clone();
    let path = export.join("shared");

    // A's client write-locks [0, 100).
    let la = a
        .lock_new(&oa, b"owner-A", locktype::WRITE, 0, 100)
        .unwrap()
        .unwrap();
    // B's client asking [50, 60): DENIED with A's range, owned by "another node".
    let d = b
        .lock_new(&ob, b"owner-B", locktype::WRITE, 50, 10)
        .unwrap()
        .unwrap_err();
    assert_eq!((d.offset, d.length, d.locktype), (0, 100, locktype::WRITE));
    assert_eq!((d.clientid, d.owner.as_slice()), (0, FOREIGN_OWNER));
    // LOCKT on B reports it too; outside the range is free.
    let t = b
        .lockt(&fh_b, b"owner-B", locktype::READ, 99, 1)
        .unwrap()
        .unwrap();
    assert_eq!((t.offset, t.length, t.clientid), (0, 100, 0));
    assert!(
        b.lockt(&fh_b, b"owner-B", locktype::WRITE, 100, 10)
            .unwrap()
            .is_none()
    );
    // A local process sees the NFS client's lock.
    assert_eq!(
        local_getlk(&path, 10, 1),
        Some((libc::F_WRLCK as i16, 0, 100))
    );
    assert_eq!(local_getlk(&path, 100, 0), None);

    // Read locks on both nodes coexist; a write lock over them does not.
    let ra = a
        .lock_existing(&fh, la, locktype::READ, 1000, 100)
        .unwrap()
        .unwrap();
    let lb = b
        .lock_new(&ob, b"owner-B", locktype::READ, 1050, 100)
        .unwrap()
        .unwrap();
    let d = a
        .lock_existing(&fh, ra, locktype::WRITE, 1140, 1)
        .unwrap()
        .unwrap_err();
    assert_eq!(
        (d.offset, d.length, d.locktype),
        (1050, 100, locktype::READ)
    );
    assert_eq!(d.clientid, 0);

    // After LOCKU on A, B gets its lock (the failed LOCK above made A's seqid no older).
    let ra = a.locku(&fh, ra, locktype::WRITE, 0, 100).unwrap();
    assert_eq!(local_getlk(&path, 0, 100), None);
    let lb = b
        .lock_existing(&fh_b, lb, locktype::WRITE, 50, 10)
        .unwrap()
        .unwrap();
    assert_eq!(
        local_getlk(&path, 0, 100),
        Some((libc::F_WRLCK as i16, 50, 10))
    );
    // ... and now A is refused by B's lock.
    let d = a
        .lock_existing(&fh, ra, locktype::READ, 0, u64::MAX)
        .unwrap()
        .unwrap_err();
    assert_eq!((d.offset, d.length, d.clientid), (50, 10, 0));

    // A lock to EOF on A: B sees it as to EOF (all-ones length).
    let ra = a
        .lock_existing(&fh, ra, locktype::WRITE, 5000, u64::MAX)
        .unwrap()
        .unwrap();
    let t = b
        .lockt(&fh_b, b"owner-B", locktype::READ, 1 << 40, 1)
        .unwrap()
        .unwrap();
    assert_eq!((t.offset, t.length), (5000, u64::MAX));

    // LOCKU of everything, then FREE_STATEID and CLOSE: nothing of A is left there.
    let ra = a.locku(&fh, ra, locktype::WRITE, 0, u64::MAX).unwrap();
    // Only A's read lock [1000, 1050) went with it (B holds [1050, 1150) and [50, 60)).
    assert_eq!(local_getlk(&path, 1000, 50), None);
    a.free_stateid(ra).unwrap();
    a.close(oa).unwrap();

    // B's client's lock state goes with its client: its locks leave the file system.
    let oa = open_both(&a, b"shared");
    let d = a
        .lock_new(&oa, b"owner-A2", locktype::WRITE, 0, 100)
        .unwrap()
        .unwrap_err();
    assert_eq!((d.offset, d.length, d.clientid), (50, 10, 0));
    assert_eq!(
        failure_of(b.close(ob)),
        (op::CLOSE, status::NFS4ERR_LOCKS_HELD)
    );
    let _ = lb;
    b.session().destroy().unwrap();
    b.session().destroy_clientid().unwrap();
    assert_eq!(local_getlk(&path, 0, 0), None);
    let la = a
        .lock_new(&oa, b"owner-A2", locktype::WRITE, 0, u64::MAX)
        .unwrap()
        .unwrap();

    // A whole client destroyed on A while holding a lock: the same.
    a.session().destroy().unwrap();
    a.session().destroy_clientid().unwrap();
    assert_eq!(local_getlk(&path, 0, 0), None);
    let _ = la;

    // A new client of B now locks what A held.
    let b2 = Files::new(b_node.session().1);
    let ob2 = open_both(&b2, b"shared");
    b2.lock_new(&ob2, b"owner-B2", locktype::WRITE, 0, u64::MAX)
        .unwrap()
        .unwrap();
    assert!(local_getlk(&path, 0, 0).is_some());
    // LOCKT with length 0 is still INVAL before any file-system question.
    assert_eq!(
        status_of(b2.lockt(&fh_b, b"x", locktype::WRITE, 0, 0)),
        status::NFS4ERR_INVAL
    );
}

/// A lock reclaimed after a restart (LOCK with reclaim=true in the grace period) is
/// taken on the file system too: the other node and a local process see it again.
#[test]
fn reclaimed_locks_are_taken_on_the_file_system() {
    if !ringnfs::fs::local::running_as_root() {
        ringnfs_testkit::skip(
            "reclaimed_locks_are_taken_on_the_file_system",
            "the local backend opens files by handle, which needs root",
        );
        return;
    }
    let dir = TempDir::new("shared-reclaim");
    let export = dir.path().join("export");
    let state_a = dir.path().join("state-a");
    let start_a = |grace_secs: u32| {
        let (export, state) = (export.clone(), state_a.clone());
        TestServer::with(move |cfg| {
            cfg.backend = BackendKind::Local;
            cfg.export_path = export;
            cfg.state_dir = Some(state);
            cfg.grace_secs = grace_secs;
        })
    };
    let opts = |verifier: u8, reclaim_complete: bool| ClientOptions {
        owner: Some(b"shared-reclaimer".to_vec()),
        verifier: Some([verifier; 8]),
        reclaim_complete,
        ..Default::default()
    };
    let path = export.join("kept");

    // Before the restart: the client is known (stable storage) and holds a lock.
    let mut a_node = start_a(0);
    let a = Files::new(a_node.session_with(opts(1, true)).1);
    let root = a.root_fh().unwrap();
    let (fh, f) = a.create(&root, b"kept", 0o666).unwrap();
    a.lock_new(&f, b"owner", locktype::WRITE, 0, 100)
        .unwrap()
        .unwrap();
    assert!(local_getlk(&path, 0, 0).is_some());
    // The restart (a crash, as far as the file system goes) releases it there.
    a_node.stop();
    assert_eq!(local_getlk(&path, 0, 0), None);

    let a_node = start_a(60);
    let b_node = node(&export, &dir.path().join("state-b"));
    let a = Files::new(a_node.session_with(opts(2, false)).1);
    let args = a.open_args(
        share::ACCESS_BOTH,
        share::DENY_NONE,
        OpenHow::NoCreate,
        OpenClaim::Previous(0),
    );
    let (open, _) = a.open_with(&fh, args).expect("CLAIM_PREVIOUS in grace");
    let r = a
        .call_raw(&[
            Op::PutFh(fh.clone()),
            Op::Lock {
                locktype: locktype::WRITE,
                reclaim: true,
                offset: 0,
                length: 100,
                locker: Locker::New {
                    open_seqid: 0,
                    open_stateid: open.stateid,
                    lock_seqid: 0,
                    clientid: a.clientid(),
                    owner: b"owner".to_vec(),
                },
            },
        ])
        .unwrap();
    assert_eq!(r.failure(), None, "reclaimed LOCK");
    assert_eq!(
        local_getlk(&path, 10, 1),
        Some((libc::F_WRLCK as i16, 0, 100))
    );
    let b = Files::new(b_node.session().1);
    let ob = open_both(&b, b"kept");
    let d = b
        .lock_new(&ob, b"owner-B", locktype::READ, 50, 1)
        .unwrap()
        .unwrap_err();
    assert_eq!((d.offset, d.length, d.clientid), (0, 100, 0));
}

/// LOCK+LOCKU pairs per second over the wire (one client, one request at a time), on a
/// memory-backend server (locks in memory only) and a local-backend one (mirrored as OFD
/// locks), alternating rounds of one run; the numbers in
/// tuning/results/issue19-ofd-locks.md:
/// `cargo test --release --test shared_locks lock_rate -- --ignored --nocapture`
#[test]
#[ignore = "a measurement, not a check"]
fn lock_rate_memory_vs_mirrored() {
    let dir = TempDir::new("lock-rate");
    let export = dir.path().join("export");
    let mirrored = node(&export, &dir.path().join("state"));
    let memory = TestServer::start();
    let sides = [("memory", &memory), ("local+OFD", &mirrored)].map(|(name, server)| {
        let f = Files::new(server.session().1);
        let root = f.root_fh().unwrap();
        f.write_file(&root, b"rate", b"x").unwrap();
        let o = open_both(&f, b"rate");
        let l = f
            .lock_new(&o, b"rate-owner", locktype::WRITE, 0, 1)
            .unwrap()
            .unwrap();
        (name, f, o.fh, std::cell::Cell::new(l))
    });
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 0..10 {
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let (name, f, fh, l) = &sides[i];
            let start = std::time::Instant::now();
            let mut n = 0u64;
            while start.elapsed() < std::time::Duration::from_secs(1) {
                let off = n % 4096 * 10;
                let s = f
                    .lock_existing(fh, l.get(), locktype::WRITE, off, 10)
                    .unwrap()
                    .unwrap();
                l.set(f.locku(fh, s, locktype::WRITE, off, 10).unwrap());
                n += 1;
            }
            let rate = n as f64 / start.elapsed().as_secs_f64();
            eprintln!("round {round} {name}: {rate:.0} LOCK+LOCKU/s");
            rates[i].push(rate);
        }
    }
    for (i, r) in rates.iter_mut().enumerate() {
        r.sort_by(f64::total_cmp);
        eprintln!(
            "{}: median {:.0}, min {:.0}, max {:.0} LOCK+LOCKU/s",
            sides[i].0,
            r[r.len() / 2],
            r[0],
            r[r.len() - 1]
        );
    }
}
