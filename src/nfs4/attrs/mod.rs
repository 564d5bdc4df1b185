//! NFSv4.1 file attributes (fattr4, RFC 8881 §5): the attribute numbers we know, the
//! set we support, the GETATTR/READDIR encoder, the SETATTR/CREATE/OPEN decoder and
//! VERIFY/NVERIFY comparison.
//!
//! Owners are numeric strings ("1000"); no id mapping.

mod decode;
mod encode;
#[cfg(test)]
mod tests;

use crate::fs::types::{Attrs, FsStats};

pub use decode::{decode_settable, verify};
pub use encode::{encode_fattr, encode_rdattr_error};

/// Attribute numbers (RFC 8881 §5.6–5.8, RFC 7862).
pub mod attr {
    pub const SUPPORTED_ATTRS: u32 = 0;
    pub const TYPE: u32 = 1;
    pub const FH_EXPIRE_TYPE: u32 = 2;
    pub const CHANGE: u32 = 3;
    pub const SIZE: u32 = 4;
    pub const LINK_SUPPORT: u32 = 5;
    pub const SYMLINK_SUPPORT: u32 = 6;
    pub const NAMED_ATTR: u32 = 7;
    pub const FSID: u32 = 8;
    pub const UNIQUE_HANDLES: u32 = 9;
    pub const LEASE_TIME: u32 = 10;
    pub const RDATTR_ERROR: u32 = 11;
    pub const ACL: u32 = 12;
    pub const ACLSUPPORT: u32 = 13;
    pub const ARCHIVE: u32 = 14;
    pub const CANSETTIME: u32 = 15;
    pub const CASE_INSENSITIVE: u32 = 16;
    pub const CASE_PRESERVING: u32 = 17;
    pub const CHOWN_RESTRICTED: u32 = 18;
    pub const FILEHANDLE: u32 = 19;
    pub const FILEID: u32 = 20;
    pub const FILES_AVAIL: u32 = 21;
    pub const FILES_FREE: u32 = 22;
    pub const FILES_TOTAL: u32 = 23;
    pub const FS_LOCATIONS: u32 = 24;
    pub const HIDDEN: u32 = 25;
    pub const HOMOGENEOUS: u32 = 26;
    pub const MAXFILESIZE: u32 = 27;
    pub const MAXLINK: u32 = 28;
    pub const MAXNAME: u32 = 29;
    pub const MAXREAD: u32 = 30;
    pub const MAXWRITE: u32 = 31;
    pub const MIMETYPE: u32 = 32;
    pub const MODE: u32 = 33;
    pub const NO_TRUNC: u32 = 34;
    pub const NUMLINKS: u32 = 35;
    pub const OWNER: u32 = 36;
    pub const OWNER_GROUP: u32 = 37;
    pub const QUOTA_AVAIL_HARD: u32 = 38;
    pub const QUOTA_AVAIL_SOFT: u32 = 39;
    pub const QUOTA_USED: u32 = 40;
    pub const RAWDEV: u32 = 41;
    pub const SPACE_AVAIL: u32 = 42;
    pub const SPACE_FREE: u32 = 43;
    pub const SPACE_TOTAL: u32 = 44;
    pub const SPACE_USED: u32 = 45;
    pub const SYSTEM: u32 = 46;
    pub const TIME_ACCESS: u32 = 47;
    pub const TIME_ACCESS_SET: u32 = 48;
    pub const TIME_BACKUP: u32 = 49;
    pub const TIME_CREATE: u32 = 50;
    pub const TIME_DELTA: u32 = 51;
    pub const TIME_METADATA: u32 = 52;
    pub const TIME_MODIFY: u32 = 53;
    pub const TIME_MODIFY_SET: u32 = 54;
    pub const MOUNTED_ON_FILEID: u32 = 55;
    pub const DIR_NOTIF_DELAY: u32 = 56;
    pub const DIRENT_NOTIF_DELAY: u32 = 57;
    pub const DACL: u32 = 58;
    pub const SACL: u32 = 59;
    pub const CHANGE_POLICY: u32 = 60;
    pub const FS_STATUS: u32 = 61;
    pub const FS_LAYOUT_TYPES: u32 = 62;
    pub const LAYOUT_HINT: u32 = 63;
    pub const LAYOUT_TYPES: u32 = 64;
    pub const LAYOUT_BLKSIZE: u32 = 65;
    pub const LAYOUT_ALIGNMENT: u32 = 66;
    pub const FS_LOCATIONS_INFO: u32 = 67;
    pub const MDSTHRESHOLD: u32 = 68;
    pub const RETENTION_GET: u32 = 69;
    pub const RETENTION_SET: u32 = 70;
    pub const RETENTEVT_GET: u32 = 71;
    pub const RETENTEVT_SET: u32 = 72;
    pub const RETENTION_HOLD: u32 = 73;
    pub const MODE_SET_MASKED: u32 = 74;
    pub const SUPPATTR_EXCLCREAT: u32 = 75;
    pub const FS_CHARSET_CAP: u32 = 76;
    /// RFC 7862.
    pub const CLONE_BLKSIZE: u32 = 77;
    pub const SPACE_FREED: u32 = 78;
    pub const CHANGE_ATTR_TYPE: u32 = 79;
    pub const SEC_LABEL: u32 = 80;
}

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
];

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
const SETTABLE_BITMAP: [u32; WORDS] = bitmap_of(SETTABLE);
const WRITE_ONLY_BITMAP: [u32; WORDS] = bitmap_of(WRITE_ONLY);
const STATFS_BITMAP: [u32; WORDS] = bitmap_of(STATFS);

/// The supported_attrs bitmap.
pub fn supported_attrs() -> [u32; WORDS] {
    SUPPORTED_BITMAP
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
pub fn check_readable(requested: &[u32]) -> Result<(), u32> {
    if requested
        .iter()
        .zip(WRITE_ONLY_BITMAP)
        .any(|(r, s)| r & s != 0)
    {
        return Err(crate::nfs4::consts::status::NFS4ERR_INVAL);
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
    pub rdattr_error: Option<u32>,
    /// Path components of the export for fs_locations (empty = "/").
    pub fs_root_path: &'a [&'a [u8]],
    /// Server addresses for fs_locations (e.g. "127.0.0.1"), may be empty.
    pub server_locations: &'a [String],
}

/// The attributes `src` can answer out of `requested`: requested ∩ supported, minus
/// set-only ones, minus the statfs ones when no stats were fetched.
fn answerable(requested: &[u32], src: &AttrSource<'_>) -> [u32; WORDS] {
    let mut w = [0u32; WORDS];
    for (i, x) in w.iter_mut().enumerate() {
        *x = requested.get(i).copied().unwrap_or(0) & SUPPORTED_BITMAP[i] & !WRITE_ONLY_BITMAP[i];
        if src.stats.is_none() {
            *x &= !STATFS_BITMAP[i];
        }
    }
    w
}
