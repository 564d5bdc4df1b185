//! Byte-range locks mirrored on the file system (the local backend's OFD locks, see
//! `ringnfs_fs::LockFile`): each lock state keeps one open file description, opened by
//! its owner's first LOCK, through which its ranges are set and cleared exactly as in
//! the in-memory table. The table stays the first check (conflicts between this node's
//! clients, with their owners); the file system catches the rest (other nodes on a
//! shared file system, local processes).

use ringnfs_fs::{FsLockConflict, FsResult, LockError, LockFile, LockKind};
use ringnfs_proto::nfs4::consts::NfsStatus;

use super::{Conflict, Owner, Range};

/// Opens a lock-owner's description of the current file (`None`: the backend has no
/// file system beneath it, and locks live in memory only).
pub type OpenLockFile<'a> = dyn Fn() -> Option<FsResult<LockFile>> + 'a;

/// The owner LOCK4denied names for a lock found only on the file system: not one of
/// this server's clients (client id 0), but another node or a local process.
pub const FOREIGN_OWNER: &[u8] = b"lock held on the file system by another node or process";

fn foreign(c: FsLockConflict) -> Conflict {
    Conflict {
        range: Range {
            start: c.start,
            end: c.end,
        },
        write: c.write,
        owner: Owner {
            client: 0,
            owner: FOREIGN_OWNER.to_vec(),
        },
    }
}

/// An error of the file-system step as LOCK answers it: a conflict (DENIED with the
/// range found there) or a status.
fn answer(e: LockError) -> Result<Conflict, NfsStatus> {
    match e {
        LockError::Denied(c) => Ok(foreign(c)),
        e => Err(e.status()),
    }
}

/// Take `kind` on `range` through the lock state's description, opening it first if it
/// has none. `Err(Ok(conflict))`: refused by another node's or process's lock.
pub(super) fn set(
    slot: &mut Option<LockFile>,
    open_file: &OpenLockFile<'_>,
    kind: LockKind,
    range: Range,
) -> Result<(), Result<Conflict, NfsStatus>> {
    if slot.is_none() {
        match open_file() {
            None => return Ok(()),
            Some(Ok(f)) => *slot = Some(f),
            Some(Err(e)) => return Err(Err(e.status())),
        }
    }
    let f = slot.as_ref().expect("opened above");
    f.set(kind, range.start, range.end).map_err(answer)
}

/// Clear `range` of the description's locks.
pub(super) fn unlock(f: &LockFile, range: Range) -> Result<(), NfsStatus> {
    f.set(LockKind::Unlock, range.start, range.end)
        .map_err(|e| e.status())
}

/// A conflicting lock of another description (LOCKT).
pub(super) fn test(f: &LockFile, range: Range, write: bool) -> Result<Option<Conflict>, NfsStatus> {
    match f.test(range.start, range.end, write) {
        Ok(c) => Ok(c.map(foreign)),
        Err(e) => answer(e).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::OwnedFd;
    use std::path::{Path, PathBuf};

    use ringnfs_fs::ObjHandle;
    use ringnfs_proto::nfs4::consts::status;

    use super::super::{
        FileStateTable, LockRequest, Locker, Owner, Range, SHARE_ACCESS_BOTH, SHARE_ACCESS_READ,
    };
    use super::*;

    /// A file under the temp dir, removed on drop.
    struct TmpFile(PathBuf);
    impl TmpFile {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "ringnfs-state-ofd-{tag}-{}-{}",
                std::process::id(),
                rand::random::<u32>()
            ));
            std::fs::write(&p, b"data").unwrap();
            TmpFile(p)
        }
    }
    impl Drop for TmpFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// What a local backend's `lock_file` gives: a new description of the file.
    fn opener(p: &Path, write: bool) -> impl Fn() -> Option<FsResult<LockFile>> + '_ {
        move || {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(write)
                .open(p)
                .unwrap();
            Some(Ok(LockFile::new(OwnedFd::from(f), write)))
        }
    }

    fn fh() -> ObjHandle {
        ObjHandle::new(&[7; 8]).unwrap()
    }

    fn owner(c: u64, o: &str) -> Owner {
        Owner {
            client: c,
            owner: o.as_bytes().to_vec(),
        }
    }

    /// Two tables (two nodes) on one file: each sees the other's locks only through the
    /// file system, reported as a foreign owner; a refused LOCK leaves no lock state.
    #[test]
    fn two_tables_share_locks_through_the_file_system() {
        let tmp = TmpFile::new("nodes");
        let open = opener(&tmp.0, true);
        let (a, b) = (FileStateTable::new(1, 2), FileStateTable::new(2, 2));
        let f = fh();
        let oa = a.open(owner(1, "oa"), f, SHARE_ACCESS_BOTH, 0).unwrap();
        let ob = b.open(owner(1, "ob"), f, SHARE_ACCESS_BOTH, 0).unwrap();
        let req = |open, o: &'static [u8], start, len, write| LockRequest {
            client: 1,
            file: &f,
            locker: Locker::New { open, owner: o },
            range: Range::from_nfs(start, len).unwrap(),
            write,
        };
        let la = a
            .lock_mirrored(req(oa, b"la", 0, 100, true), &open)
            .unwrap()
            .unwrap();
        let c = b
            .lock_mirrored(req(ob, b"lb", 50, 10, false), &open)
            .unwrap()
            .unwrap_err();
        assert_eq!(c.range, Range { start: 0, end: 100 });
        assert_eq!(
            c.owner,
            owner(0, std::str::from_utf8(FOREIGN_OWNER).unwrap())
        );
        assert_eq!(
            b.counts(),
            (1, 0),
            "the refused LOCK's new lock state is gone"
        );
        b.check_invariants().unwrap();
        // LOCKT on B: memory knows nothing, the file system does.
        let r = Range::from_nfs(99, 1).unwrap();
        assert_eq!(b.test_lock(&f, &owner(1, "lb"), r, true), None);
        assert_eq!(
            b.test_lock_mirrored(&f, &owner(1, "lb"), r, true, &open)
                .unwrap()
                .map(|c| c.range),
            Some(Range { start: 0, end: 100 })
        );
        // LOCKU of a part on A frees it for B; the rest still refuses.
        a.unlock(&la, 1, &f, Range::from_nfs(50, 50).unwrap())
            .unwrap();
        b.lock_mirrored(req(ob, b"lb", 50, 10, true), &open)
            .unwrap()
            .unwrap();
        let c = b
            .lock_mirrored(req(ob, b"lb", 0, 60, true), &open)
            .unwrap()
            .unwrap_err();
        assert_eq!(c.range, Range { start: 0, end: 50 });
        // A's client goes: its description closes, its locks leave the file system.
        a.remove_client(1);
        b.lock_mirrored(req(ob, b"lb", 0, 60, true), &open)
            .unwrap()
            .unwrap();
        b.check_invariants().unwrap();
        // B's state revoked by the administrator (its export removed): the same.
        let oa = a.open(owner(1, "oa2"), f, SHARE_ACCESS_BOTH, 0).unwrap();
        assert!(
            a.lock_mirrored(req(oa, b"la2", 10, 1, false), &open)
                .unwrap()
                .is_err()
        );
        assert_eq!(b.revoke_files(|_| true), 2);
        a.lock_mirrored(req(oa, b"la2", 0, u64::MAX, true), &open)
            .unwrap()
            .unwrap();
        a.check_invariants().unwrap();
    }

    /// A write lock through a description the file system would only open read-only:
    /// OPENMODE, and memory grants nothing.
    #[test]
    fn write_lock_on_a_read_only_description() {
        let tmp = TmpFile::new("ro");
        let open = opener(&tmp.0, false);
        let t = FileStateTable::new(1, 1);
        let f = fh();
        let o = t.open(owner(1, "o"), f, SHARE_ACCESS_BOTH, 0).unwrap();
        let r = t.lock_mirrored(
            LockRequest {
                client: 1,
                file: &f,
                locker: Locker::New {
                    open: o,
                    owner: b"l",
                },
                range: Range::from_nfs(0, 1).unwrap(),
                write: true,
            },
            &open,
        );
        assert_eq!(r, Err(status::NFS4ERR_OPENMODE));
        assert_eq!(t.counts(), (1, 0));
        t.check_invariants().unwrap();
        let _ = SHARE_ACCESS_READ;
    }

    /// LOCK+LOCKU pairs per second through the table, without and with the file-system
    /// mirror, in alternating rounds of one run (the numbers in
    /// tuning/results/issue19-ofd-locks.md):
    /// `cargo test --release -p ringnfs-state ofd_lock_rate -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn ofd_lock_rate() {
        let tmp = TmpFile::new("rate");
        let on_fs = opener(&tmp.0, true);
        let in_memory = || None;
        let f = fh();
        let rate = |open: &OpenLockFile<'_>| {
            let t = FileStateTable::new(1, 1);
            let o = t.open(owner(1, "o"), f, SHARE_ACCESS_BOTH, 0).unwrap();
            let mut sid = t
                .lock_mirrored(
                    LockRequest {
                        client: 1,
                        file: &f,
                        locker: Locker::New {
                            open: o,
                            owner: b"l",
                        },
                        range: Range::from_nfs(0, 1).unwrap(),
                        write: true,
                    },
                    open,
                )
                .unwrap()
                .unwrap();
            let n = 200_000u64;
            let start = std::time::Instant::now();
            for i in 0..n {
                let range = Range::from_nfs(i % 4096 * 10, 10).unwrap();
                sid = t
                    .lock_mirrored(
                        LockRequest {
                            client: 1,
                            file: &f,
                            locker: Locker::Existing(sid),
                            range,
                            write: true,
                        },
                        open,
                    )
                    .unwrap()
                    .unwrap();
                sid = t.unlock(&sid, 1, &f, range).unwrap();
            }
            n as f64 / start.elapsed().as_secs_f64()
        };
        for round in 0..5 {
            let (a, b) = if round % 2 == 0 {
                let a = rate(&in_memory);
                (a, rate(&on_fs))
            } else {
                let b = rate(&on_fs);
                (rate(&in_memory), b)
            };
            eprintln!(
                "round {round}: in memory {a:.0} LOCK+LOCKU/s, with OFD mirror {b:.0}/s ({:.2}x)",
                b / a
            );
        }
    }
}
