//! NFSv4 byte-range locks mirrored on the file system as Linux open-file-description
//! (OFD) locks, so that other servers exporting the same shared file system, and local
//! processes, see them (as knfsd's locks are seen).
//!
//! An OFD lock belongs to an open file description, and the locks of one description
//! merge and split like the POSIX locks of one process: exactly the semantics of one
//! NFSv4 lock-owner on one file. So each lock state holds one [`LockFile`] (a description
//! of its own, never the open-file cache's), and closing it releases all its locks.
//!
//! Ranges are NFS ranges (`end` exclusive, `u64::MAX` meaning "to the end of the file").
//! Linux offsets stop at `i64::MAX` (OFFSET_MAX, the last lockable byte): the part of a
//! range past it is clipped, so an NFS range reaching past it maps to `l_len` 0 ("to
//! the end"), and a range that starts past it is not mirrored at all. The file system
//! thus mirrors exactly each owner's locks within `[0, 2^63)`; beyond it no Linux file
//! has bytes, so neither a local process nor another node's data is at stake there.

use std::os::fd::{AsFd, OwnedFd};

use ringnfs_proto::nfs4::consts::{NfsStatus, status};

use super::sys::{self, FlockRange};

/// The last byte offset Linux can lock (OFFSET_MAX).
const OFF_MAX: u64 = i64::MAX as u64;

/// What to do to a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    Read,
    Write,
    Unlock,
}

/// A lock held through another description (another node, a local process, or — seen
/// from a description of its own — another lock-owner of this server) that conflicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsLockConflict {
    pub start: u64,
    /// Exclusive; `u64::MAX`: to the end of the file.
    pub end: u64,
    pub write: bool,
}

/// Why a file-system lock step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockError {
    /// Someone else holds a conflicting lock.
    Denied(FsLockConflict),
    /// A write lock through a description opened read-only (the file could not be
    /// opened for writing).
    NotWritable,
    /// Any other errno of fcntl(2).
    Os(i32),
}

impl LockError {
    /// The nfsstat4 of a failure, and the one place its errno is judged (and logged).
    /// `Denied` is NFS4ERR_DENIED; the caller adds the LOCK4denied body.
    pub fn status(&self) -> NfsStatus {
        match *self {
            LockError::Denied(_) => status::NFS4ERR_DENIED,
            LockError::NotWritable => status::NFS4ERR_OPENMODE,
            // The kernel's lock table is full (or a network file system's lock manager
            // is busy): the client may try again later.
            LockError::Os(libc::ENOLCK) => {
                tracing::warn!("file-system lock refused with ENOLCK; answering NFS4ERR_DELAY");
                status::NFS4ERR_DELAY
            }
            LockError::Os(libc::EIO) => {
                tracing::error!("file-system lock failed with EIO");
                status::NFS4ERR_IO
            }
            LockError::Os(e) => {
                tracing::error!(errno = e, "file-system lock failed");
                status::NFS4ERR_SERVERFAULT
            }
        }
    }
}

/// Map an fcntl errno: a conflict is EAGAIN or EACCES (POSIX allows either).
fn classify(errno: i32) -> Result<(), LockError> {
    match errno {
        libc::EAGAIN | libc::EACCES => Err(LockError::Denied(FsLockConflict {
            start: 0,
            end: u64::MAX,
            write: true,
        })),
        e => Err(LockError::Os(e)),
    }
}

/// The `struct flock` of `kind` on NFS range `[start, end)`, clipped at OFFSET_MAX;
/// `None` if the range lies wholly past it.
fn flock_range(kind: LockKind, start: u64, end: u64) -> Option<FlockRange> {
    if start > OFF_MAX || start >= end {
        return None;
    }
    let l_type = match kind {
        LockKind::Read => libc::F_RDLCK,
        LockKind::Write => libc::F_WRLCK,
        LockKind::Unlock => libc::F_UNLCK,
    } as i16;
    let len = if end > OFF_MAX { 0 } else { end - start };
    Some((l_type, start as i64, len as i64))
}

fn conflict_of((l_type, l_start, l_len): FlockRange) -> FsLockConflict {
    let start = l_start.max(0) as u64;
    FsLockConflict {
        start,
        end: if l_len <= 0 {
            u64::MAX
        } else {
            start.saturating_add(l_len as u64)
        },
        write: l_type == libc::F_WRLCK as i16,
    }
}

/// One open file description holding one lock-owner's locks on one file. Dropping it
/// closes the description, which releases every lock it holds.
#[derive(Debug)]
pub struct LockFile {
    fd: OwnedFd,
    writable: bool,
}

impl LockFile {
    /// `fd` must be a description of its own: sharing it (dup, another holder) would
    /// merge its locks with someone else's. `writable`: opened for writing.
    pub fn new(fd: OwnedFd, writable: bool) -> Self {
        LockFile { fd, writable }
    }

    pub fn writable(&self) -> bool {
        self.writable
    }

    /// Set (read or write) or clear `[start, end)` without waiting. A conflict comes
    /// back as [`LockError::Denied`] with the range F_OFD_GETLK reports.
    pub fn set(&self, kind: LockKind, start: u64, end: u64) -> Result<(), LockError> {
        if kind == LockKind::Write && !self.writable {
            return Err(LockError::NotWritable);
        }
        let Some(range) = flock_range(kind, start, end) else {
            return Ok(());
        };
        // A conflicting lock may go between the refusal and the question who holds it;
        // then try again (a few times: a lock that comes and goes that fast is reported
        // as covering the whole range).
        for _ in 0..3 {
            let Err(e) = sys::ofd_setlk(self.fd.as_fd(), range) else {
                return Ok(());
            };
            let err = classify(e).expect_err("an errno is an error");
            let LockError::Denied(_) = err else {
                return Err(err);
            };
            if let Some(c) = self.test(start, end, kind == LockKind::Write)? {
                return Err(LockError::Denied(c));
            }
        }
        Err(LockError::Denied(FsLockConflict {
            start,
            end,
            write: true,
        }))
    }

    /// F_OFD_GETLK: a lock of another description that conflicts with a `write` (or
    /// read) lock of `[start, end)`; this description's own locks never do.
    pub fn test(
        &self,
        start: u64,
        end: u64,
        write: bool,
    ) -> Result<Option<FsLockConflict>, LockError> {
        let kind = if write {
            LockKind::Write
        } else {
            LockKind::Read
        };
        let Some(range) = flock_range(kind, start, end) else {
            return Ok(None);
        };
        match sys::ofd_getlk(self.fd.as_fd(), range) {
            Ok(found) => Ok(found.map(conflict_of)),
            Err(e) => classify(e).map(|()| None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::OwnedFd;

    fn file(tag: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!(
            "ringnfs-ofd-{tag}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::write(&p, b"0123456789").unwrap();
        p
    }

    fn open(p: &std::path::Path, write: bool) -> LockFile {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(write)
            .open(p)
            .unwrap();
        LockFile::new(OwnedFd::from(f), write)
    }

    const EOF: u64 = u64::MAX;

    #[test]
    fn two_descriptions_conflict_and_getlk_reports_the_range() {
        let p = file("conflict");
        let (a, b) = (open(&p, true), open(&p, true));
        a.set(LockKind::Write, 0, 100).unwrap();
        let want = FsLockConflict {
            start: 0,
            end: 100,
            write: true,
        };
        assert_eq!(b.set(LockKind::Read, 50, 60), Err(LockError::Denied(want)));
        assert_eq!(b.test(50, 60, false), Ok(Some(want)));
        // Its own locks never conflict with a description.
        assert_eq!(a.test(0, EOF, true), Ok(None));
        // Outside the range: free.
        b.set(LockKind::Write, 100, 200).unwrap();
        // Read locks of two descriptions coexist; a write lock over one does not.
        a.set(LockKind::Read, 300, 400).unwrap();
        b.set(LockKind::Read, 350, 360).unwrap();
        assert_eq!(
            b.test(300, 310, true),
            Ok(Some(FsLockConflict {
                start: 300,
                end: 400,
                write: false
            }))
        );
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn one_description_merges_and_splits() {
        let p = file("split");
        let (a, b) = (open(&p, true), open(&p, true));
        a.set(LockKind::Write, 0, 50).unwrap();
        a.set(LockKind::Write, 50, 100).unwrap();
        // Merged into one lock: GETLK reports [0, 100).
        let whole = FsLockConflict {
            start: 0,
            end: 100,
            write: true,
        };
        assert_eq!(b.test(0, 1, false), Ok(Some(whole)));
        // Unlock the middle: [0, 40) and [60, 100) remain.
        a.set(LockKind::Unlock, 40, 60).unwrap();
        b.set(LockKind::Write, 40, 60).unwrap();
        assert_eq!(
            b.test(60, EOF, true).unwrap().map(|c| (c.start, c.end)),
            Some((60, 100))
        );
        assert_eq!(
            b.test(0, 45, true).unwrap().map(|c| (c.start, c.end)),
            Some((0, 40))
        );
        // Downgrade a part to a read lock: a reader of another description may share it.
        a.set(LockKind::Read, 0, 10).unwrap();
        assert_eq!(b.test(0, 10, false), Ok(None));
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn closing_releases_every_lock() {
        let p = file("close");
        let (a, b) = (open(&p, true), open(&p, true));
        a.set(LockKind::Write, 0, EOF).unwrap();
        a.set(LockKind::Read, 5, 7).unwrap();
        assert!(b.test(1000, 1001, false).unwrap().is_some());
        drop(a);
        assert_eq!(b.test(0, EOF, true), Ok(None));
        b.set(LockKind::Write, 0, EOF).unwrap();
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn ranges_at_the_top_of_the_offsets() {
        let p = file("top");
        let (a, b) = (open(&p, true), open(&p, true));
        // To EOF: l_len 0, reported back as to EOF.
        a.set(LockKind::Write, 1000, EOF).unwrap();
        assert_eq!(
            b.test(OFF_MAX, OFF_MAX + 1, true),
            Ok(Some(FsLockConflict {
                start: 1000,
                end: EOF,
                write: true
            }))
        );
        // A range reaching past OFFSET_MAX is clipped to it (a conflict with EOF locks).
        assert!(matches!(
            b.set(LockKind::Read, 10, OFF_MAX + 50),
            Err(LockError::Denied(_))
        ));
        // Wholly past OFFSET_MAX: not mirrored (no Linux file has bytes there).
        b.set(LockKind::Write, OFF_MAX + 1, OFF_MAX + 10).unwrap();
        assert_eq!(b.test(OFF_MAX + 1, EOF, true), Ok(None));
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn write_lock_needs_a_writable_description() {
        let p = file("ro");
        let r = open(&p, false);
        assert_eq!(r.set(LockKind::Write, 0, 1), Err(LockError::NotWritable));
        r.set(LockKind::Read, 0, 1).unwrap();
        // GETLK of a write lock works on a read-only description.
        assert_eq!(r.test(0, 1, true), Ok(None));
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn errno_mapping() {
        assert!(matches!(classify(libc::EAGAIN), Err(LockError::Denied(_))));
        assert!(matches!(classify(libc::EACCES), Err(LockError::Denied(_))));
        assert_eq!(LockError::Os(libc::ENOLCK).status(), status::NFS4ERR_DELAY);
        assert_eq!(
            LockError::Os(libc::EBADF).status(),
            status::NFS4ERR_SERVERFAULT
        );
        assert_eq!(LockError::Os(libc::EIO).status(), status::NFS4ERR_IO);
        assert_eq!(LockError::NotWritable.status(), status::NFS4ERR_OPENMODE);
    }
}
