//! NFSv4.1 file attributes (fattr4, RFC 8881 §5): the attribute numbers we know, the
//! set we support, the GETATTR/READDIR encoder, the SETATTR/CREATE/OPEN decoder and
//! VERIFY/NVERIFY comparison.
//!
//! Owners are numeric strings ("1000"); no id mapping.

mod decode;
mod encode;
#[cfg(test)]
mod tests;

use ringnfs_fs::types::{Attrs, FsStats};

pub use decode::{decode_settable, verify};
pub use encode::{encode_fattr, encode_rdattr_error, max_fattr_len};

/// Attribute numbers (RFC 8881 §5.6–5.8, RFC 7862).
pub use ringnfs_proto::nfs4::attr;

/// fh_expire_type4: handles never expire.
pub const FH4_PERSISTENT: u32 = 0;
/// time_how4.
pub const SET_TO_SERVER_TIME4: u32 = 0;
pub const SET_TO_CLIENT_TIME4: u32 = 1;

/// Values of the fixed per-server limits we advertise.
pub const MAXFILESIZE: u64 = i64::MAX as u64;
pub const MAXLINK: u32 = 32000;
pub const MAXNAME: u32 = 255;
pub const MAXREAD: u64 = 1 << 20;
pub const MAXWRITE: u64 = 1 << 20;

/// Bitmap words we know about (attributes 0..96).
pub const WORDS: usize = 3;

/// Every attribute we answer or accept, in increasing order.
const SUPPORTED: &[u32] = &[
    attr::SUPPORTED_ATTRS,
    attr::TYPE,
    attr::FH_EXPIRE_TYPE,
    attr::CHANGE,
    attr::SIZE,
    attr::LINK_SUPPORT,
    attr::SYMLINK_SUPPORT,
    attr::NAMED_ATTR,
    attr::FSID,
    attr::UNIQUE_HANDLES,
    attr::LEASE_TIME,
    attr::RDATTR_ERROR,
    attr::ACLSUPPORT,
    attr::CANSETTIME,
    attr::CASE_INSENSITIVE,
    attr::CASE_PRESERVING,
    attr::CHOWN_RESTRICTED,
    attr::FILEHANDLE,
    attr::FILEID,
    attr::FILES_AVAIL,
    attr::FILES_FREE,
    attr::FILES_TOTAL,
    attr::FS_LOCATIONS,
    attr::HOMOGENEOUS,
    attr::MAXFILESIZE,
    attr::MAXLINK,
    attr::MAXNAME,
    attr::MAXREAD,
    attr::MAXWRITE,
    attr::MODE,
    attr::NO_TRUNC,
    attr::NUMLINKS,
    attr::OWNER,
    attr::OWNER_GROUP,
    attr::RAWDEV,
    attr::SPACE_AVAIL,
    attr::SPACE_FREE,
    attr::SPACE_TOTAL,
    attr::SPACE_USED,
    attr::TIME_ACCESS,
    attr::TIME_ACCESS_SET,
    attr::TIME_DELTA,
    attr::TIME_METADATA,
    attr::TIME_MODIFY,
    attr::TIME_MODIFY_SET,
    attr::MOUNTED_ON_FILEID,
    attr::SUPPATTR_EXCLCREAT,
    attr::CLONE_BLKSIZE,
    attr::XATTR_SUPPORT,
];

/// Attributes minor version 2 defines (RFC 7862 §12.2, RFC 8276 §8.2): not shown to a
/// 4.1 COMPOUND.
const V42_ONLY: &[u32] = &[attr::CLONE_BLKSIZE, attr::XATTR_SUPPORT];

/// Attributes SETATTR (and CREATE/OPEN createattrs) accept.
const SETTABLE: &[u32] = &[
    attr::SIZE,
    attr::MODE,
    attr::OWNER,
    attr::OWNER_GROUP,
    attr::TIME_ACCESS_SET,
    attr::TIME_MODIFY_SET,
];

/// Set-only attributes: never returned by GETATTR, refused by VERIFY.
const WRITE_ONLY: &[u32] = &[attr::TIME_ACCESS_SET, attr::TIME_MODIFY_SET];

/// Attributes that need the file system's statistics ([`FsStats`]).
const STATFS: &[u32] = &[
    attr::FILES_AVAIL,
    attr::FILES_FREE,
    attr::FILES_TOTAL,
    attr::SPACE_AVAIL,
    attr::SPACE_FREE,
    attr::SPACE_TOTAL,
];

const fn bitmap_of(list: &[u32]) -> [u32; WORDS] {
    let mut w = [0u32; WORDS];
    let mut i = 0;
    while i < list.len() {
        let a = list[i];
        w[a as usize / 32] |= 1 << (a % 32);
        i += 1;
    }
    w
}

const SUPPORTED_BITMAP: [u32; WORDS] = bitmap_of(SUPPORTED);
const V42_ONLY_BITMAP: [u32; WORDS] = bitmap_of(V42_ONLY);
const SETTABLE_BITMAP: [u32; WORDS] = bitmap_of(SETTABLE);
const WRITE_ONLY_BITMAP: [u32; WORDS] = bitmap_of(WRITE_ONLY);
const STATFS_BITMAP: [u32; WORDS] = bitmap_of(STATFS);

/// The supported_attrs bitmap (of minor version 2).
pub fn supported_attrs() -> [u32; WORDS] {
    SUPPORTED_BITMAP
}

/// The supported_attrs bitmap a COMPOUND of minor version `minor` sees.
pub fn supported_in(minor: u32) -> [u32; WORDS] {
    let mut w = SUPPORTED_BITMAP;
    if minor < 2 {
        for (x, v42) in w.iter_mut().zip(V42_ONLY_BITMAP) {
            *x &= !v42;
        }
    }
    w
}

/// suppattr_exclcreat: attributes a client may set with EXCLUSIVE4_1 create, i.e. the
/// settable ones minus the times (as knfsd: the verifier may live in the times).
pub fn suppattr_exclcreat() -> [u32; WORDS] {
    let mut w = SETTABLE_BITMAP;
    for (i, x) in w.iter_mut().enumerate() {
        *x &= !WRITE_ONLY_BITMAP[i];
    }
    w
}

/// Whether `a` is set in `words`.
pub fn has(words: &[u32], a: u32) -> bool {
    words
        .get(a as usize / 32)
        .is_some_and(|w| w & (1 << (a % 32)) != 0)
}

/// Whether answering `requested` needs [`FsStats`] (space_avail/free/total, files_*).
pub fn needs_statfs(requested: &[u32]) -> bool {
    requested.iter().zip(STATFS_BITMAP).any(|(r, s)| r & s != 0)
}

/// GETATTR/READDIR check of the requested mask: asking for a set-only attribute
/// (time_access_set, time_modify_set) is NFS4ERR_INVAL, as knfsd does. Unsupported
/// attributes are not an error (they are left out of the reply).
pub fn check_readable(requested: &[u32]) -> Result<(), crate::consts::NfsStatus> {
    if requested
        .iter()
        .zip(WRITE_ONLY_BITMAP)
        .any(|(r, s)| r & s != 0)
    {
        return Err(crate::consts::status::NFS4ERR_INVAL);
    }
    Ok(())
}

/// Everything an encoder needs about one object and its file system.
pub struct AttrSource<'a> {
    pub attrs: &'a Attrs,
    /// The NFS file handle bytes (for FATTR4_FILEHANDLE).
    pub fh: &'a [u8],
    pub fsid: (u64, u64),
    /// None if not fetched: space_avail/free/total and files_* are then left out.
    /// Callers fetch it when [`needs_statfs`] says so.
    pub stats: Option<&'a FsStats>,
    pub lease_secs: u32,
    /// = fileid except at the export root.
    pub mounted_on_fileid: u64,
    /// For READDIR per-entry errors (rdattr_error's value; None = NFS4_OK).
    pub rdattr_error: Option<crate::consts::NfsStatus>,
    /// Path components of the export for fs_locations (empty = "/").
    pub fs_root_path: &'a [&'a [u8]],
    /// Server addresses for fs_locations (e.g. "127.0.0.1"), may be empty.
    pub server_locations: &'a [String],
    /// The alignment CLONE needs on this file system.
    pub clone_blksize: u32,
    /// The COMPOUND's minor version (4.2 attributes are not shown to 4.1).
    pub minor: u32,
}

/// The attributes `src` can answer out of `requested`: requested ∩ supported, minus
/// set-only ones, minus the statfs ones when no stats were fetched.
fn answerable(requested: &[u32], src: &AttrSource<'_>) -> [u32; WORDS] {
    let supported = supported_in(src.minor);
    let mut w = [0u32; WORDS];
    for (i, x) in w.iter_mut().enumerate() {
        *x = requested.get(i).copied().unwrap_or(0) & supported[i] & !WRITE_ONLY_BITMAP[i];
        if src.stats.is_none() {
            *x &= !STATFS_BITMAP[i];
        }
    }
    w
}
