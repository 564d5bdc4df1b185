//! Op handlers, one group per file, like their arguments' and results' types in
//! `ringnfs_proto::nfs4::ops`. A handler takes its op's decoded arguments and appends
//! its result with the proto result type's encoder; its row in `optable.rs` says which
//! rules the COMPOUND loop applies around it.

pub mod attr;
pub mod copy;
pub mod dir;
pub mod fh;
pub mod io;
pub mod lock;
pub mod open;
pub mod open_deleg;
pub mod session;
pub mod space;
pub mod stateid_ops;
pub mod xattr;

use crate::consts::{NFS4_OPAQUE_LIMIT, NfsStatus, status};

/// maxread / maxwrite (the fattr4 values say the same): READ, READ_PLUS and WRITE.
pub const MAX_IO: u32 = 1024 * 1024;
use ringnfs_fs::{Attrs, Caller, FileType};
use ringnfs_proto::nfs4::ops::ChangeInfo;

/// component4: a name of at most NFS4_OPAQUE_LIMIT bytes (longer → NAMETOOLONG, before
/// anything else is looked at; `ringnfs_fs::check_name` judges the rest).
pub fn component(name: &[u8]) -> Result<&[u8], NfsStatus> {
    if name.len() > NFS4_OPAQUE_LIMIT {
        return Err(status::NFS4ERR_NAMETOOLONG);
    }
    Ok(name)
}

/// change_info4 for a directory changed by an op (not atomic: two separate reads).
pub fn change_info(before: &Attrs, after: &Attrs) -> ChangeInfo {
    ChangeInfo {
        atomic: false,
        before: before.change,
        after: after.change,
    }
}

/// Whether `[offset, offset + len)` ends past the largest offset a file may have (the
/// kernel's offsets are signed): NFS4ERR_FBIG for the ops that would write there.
pub fn past_max_offset(offset: u64, len: u64) -> bool {
    offset
        .checked_add(len)
        .is_none_or(|end| end > i64::MAX as u64)
}

/// Data ops need a regular file: a directory is NFS4ERR_ISDIR, a symlink
/// NFS4ERR_SYMLINK, anything else `other` (READ and WRITE answer NFS4ERR_INVAL as RFC
/// 8881 has it, the NFSv4.2 ops NFS4ERR_WRONG_TYPE).
pub fn require_regular(t: FileType, other: NfsStatus) -> Result<(), NfsStatus> {
    match t {
        FileType::Regular => Ok(()),
        FileType::Directory => Err(status::NFS4ERR_ISDIR),
        FileType::Symlink => Err(status::NFS4ERR_SYMLINK),
        _ => Err(other),
    }
}

/// Ops that need a directory as the current filehandle.
pub fn require_dir(a: &Attrs) -> Result<(), NfsStatus> {
    match a.ftype {
        FileType::Directory => Ok(()),
        FileType::Symlink => Err(status::NFS4ERR_SYMLINK),
        _ => Err(status::NFS4ERR_NOTDIR),
    }
}

/// Search (execute) permission on directory `a`, which resolving a name in it needs
/// (RFC 8881 §18.13: LOOKUP; knfsd checks MAY_EXEC the same way). Backends resolve
/// names as the server, so the NFS layer checks this for the caller.
pub fn require_search(a: &Attrs, caller: &Caller) -> Result<(), NfsStatus> {
    if caller.perm_bits(a) & 1 == 0 {
        return Err(status::NFS4ERR_ACCESS);
    }
    Ok(())
}

pub use crate::consts::access;
