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
