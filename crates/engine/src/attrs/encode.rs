//! fattr4 encoding (GETATTR, READDIR, and our side of VERIFY).

use crate::consts::{NFS4_FHSIZE, NfsStatus, status};
use crate::types::encode_bitmap;
use ringnfs_fs::types::Timespec;
use ringnfs_proto::nfs4::ops::Fattr4;
use ringnfs_proto::xdr::{XdrEncoder, pad4};

use super::{
    AttrSource, FH4_PERSISTENT, MAXFILESIZE, MAXLINK, MAXNAME, MAXREAD, MAXWRITE, SUPPORTED_BITMAP,
    WORDS, WRITE_ONLY_BITMAP, answerable, attr, has, suppattr_exclcreat,
};

/// GETATTR/READDIR: encode a fattr4 (the bitmap of what we answer = requested ∩
/// supported, then the attr_vals opaque) into `out`. Set-only attributes and, without
/// `src.stats`, the statfs ones are left out of the bitmap.
pub fn encode_fattr(out: &mut Vec<u8>, requested: &[u32], src: &AttrSource<'_>) {
    let answered = answerable(requested, src);
    let len_at = Fattr4::encode_head(out, &answered);
    encode_values(out, &answered, src);
    Fattr4::finish_head(out, len_at);
}

/// The most bytes [`encode_fattr`] writes for `requested` (bitmap, length and values):
/// every attribute it may answer at its largest, fs_locations as `fs_root_path` and
/// `locations` make it. The reply-size bound of GETATTR (knfsd's
/// nfsd4_getattr_rsize).
pub fn max_fattr_len(requested: &[u32], fs_root_path: &[&[u8]], locations: &[String]) -> usize {
    let bitmap = 4 + 4 * WORDS;
    let mut len = bitmap + 4;
    for (wi, r) in requested.iter().take(WORDS).enumerate() {
        let mut w = r & SUPPORTED_BITMAP[wi] & !WRITE_ONLY_BITMAP[wi];
        while w != 0 {
            let a = wi as u32 * 32 + w.trailing_zeros();
            w &= w - 1;
            len += match a {
                attr::SUPPORTED_ATTRS | attr::SUPPATTR_EXCLCREAT => bitmap,
                attr::FSID => 16,
                attr::FILEHANDLE => 4 + NFS4_FHSIZE,
                attr::FS_LOCATIONS => {
                    let path = 4 + fs_root_path
                        .iter()
                        .map(|c| 4 + pad4(c.len()))
                        .sum::<usize>();
                    let servers: usize = locations.iter().map(|s| 4 + 4 + pad4(s.len())).sum();
                    path + 4 + servers + locations.len() * path
                }
                // A numeric id: at most ten digits.
                attr::OWNER | attr::OWNER_GROUP => 4 + 12,
                attr::TIME_ACCESS | attr::TIME_DELTA | attr::TIME_METADATA | attr::TIME_MODIFY => {
                    12
                }
                attr::CHANGE
                | attr::SIZE
                | attr::FILEID
                | attr::FILES_AVAIL
                | attr::FILES_FREE
                | attr::FILES_TOTAL
                | attr::MAXFILESIZE
                | attr::MAXREAD
                | attr::MAXWRITE
                | attr::RAWDEV
                | attr::SPACE_AVAIL
                | attr::SPACE_FREE
                | attr::SPACE_TOTAL
                | attr::SPACE_USED
                | attr::MOUNTED_ON_FILEID => 8,
                _ => 4,
            };
        }
    }
    len
}

/// READDIR entry whose attributes could not be fetched: if the client asked for
/// rdattr_error, encode a fattr4 holding just it (= `err`) and return true; otherwise
/// return false (the caller then fails the READDIR with `err`).
pub fn encode_rdattr_error(out: &mut Vec<u8>, requested: &[u32], err: NfsStatus) -> bool {
    if !has(requested, attr::RDATTR_ERROR) {
        return false;
    }
    let mut w = [0u32; WORDS];
    w[0] = 1 << attr::RDATTR_ERROR;
    let len_at = Fattr4::encode_head(out, &w);
    out.put_u32(err.code());
    Fattr4::finish_head(out, len_at);
    true
}

/// The attr_vals of the attributes in `answered` (all of them answerable), in
/// increasing attribute order.
pub(super) fn encode_values(out: &mut Vec<u8>, answered: &[u32; WORDS], src: &AttrSource<'_>) {
    for (wi, &word) in answered.iter().enumerate() {
        let mut w = word;
        while w != 0 {
            let bit = w.trailing_zeros();
            w &= w - 1;
            encode_one(out, wi as u32 * 32 + bit, src);
        }
    }
}

fn put_time(out: &mut Vec<u8>, t: Timespec) {
    out.put_i64(t.secs);
    out.put_u32(t.nsecs);
}

/// A numeric owner string ("1000").
fn put_id(out: &mut Vec<u8>, id: u32) {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    let mut v = id;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.put_opaque(&buf[i..]);
}

/// pathname4: component4<>.
fn put_pathname(out: &mut Vec<u8>, comps: &[&[u8]]) {
    out.put_u32(comps.len() as u32);
    for c in comps {
        out.put_opaque(c);
    }
}

fn encode_one(out: &mut Vec<u8>, a: u32, src: &AttrSource<'_>) {
    let at = src.attrs;
    let stats = src.stats.copied().unwrap_or_default();
    match a {
        attr::SUPPORTED_ATTRS => encode_bitmap(out, &super::supported_in(src.minor)),
        attr::TYPE => out.put_u32(at.ftype.nfs4()),
        attr::FH_EXPIRE_TYPE => out.put_u32(FH4_PERSISTENT),
        attr::CHANGE => out.put_u64(at.change),
        attr::SIZE => out.put_u64(at.size),
        attr::LINK_SUPPORT | attr::SYMLINK_SUPPORT | attr::UNIQUE_HANDLES => out.put_bool(true),
        attr::NAMED_ATTR => out.put_bool(false),
        attr::FSID => {
            out.put_u64(src.fsid.0);
            out.put_u64(src.fsid.1);
        }
        attr::LEASE_TIME => out.put_u32(src.lease_secs),
        attr::RDATTR_ERROR => out.put_u32(src.rdattr_error.unwrap_or(status::NFS4_OK).code()),
        // No ACL support at all (ACL4_SUPPORT_* bits clear).
        attr::ACLSUPPORT => out.put_u32(0),
        attr::CANSETTIME
        | attr::CASE_PRESERVING
        | attr::CHOWN_RESTRICTED
        | attr::HOMOGENEOUS
        | attr::NO_TRUNC => out.put_bool(true),
        attr::CASE_INSENSITIVE => out.put_bool(false),
        attr::FILEHANDLE => out.put_opaque(src.fh),
        attr::FILEID => out.put_u64(at.fileid),
        attr::FILES_AVAIL => out.put_u64(stats.avail_files),
        attr::FILES_FREE => out.put_u64(stats.free_files),
        attr::FILES_TOTAL => out.put_u64(stats.total_files),
        attr::FS_LOCATIONS => {
            // fs_locations4 { pathname4 fs_root; fs_location4 locations<>; }
            // fs_location4 { utf8str_cis server<>; pathname4 rootpath; }
            put_pathname(out, src.fs_root_path);
            out.put_u32(src.server_locations.len() as u32);
            for server in src.server_locations {
                out.put_u32(1);
                out.put_opaque(server.as_bytes());
                put_pathname(out, src.fs_root_path);
            }
        }
        attr::MAXFILESIZE => out.put_u64(MAXFILESIZE),
        attr::MAXLINK => out.put_u32(MAXLINK),
        attr::MAXNAME => out.put_u32(MAXNAME),
        attr::MAXREAD => out.put_u64(MAXREAD),
        attr::MAXWRITE => out.put_u64(MAXWRITE),
        attr::MODE => out.put_u32(at.mode & 0o7777),
        attr::NUMLINKS => out.put_u32(at.nlink),
        attr::OWNER => put_id(out, at.uid),
        attr::OWNER_GROUP => put_id(out, at.gid),
        attr::RAWDEV => {
            out.put_u32(at.rdev.0);
            out.put_u32(at.rdev.1);
        }
        attr::SPACE_AVAIL => out.put_u64(stats.avail_bytes),
        attr::SPACE_FREE => out.put_u64(stats.free_bytes),
        attr::SPACE_TOTAL => out.put_u64(stats.total_bytes),
        attr::SPACE_USED => out.put_u64(at.space_used),
        attr::TIME_ACCESS => put_time(out, at.atime),
        attr::TIME_DELTA => put_time(out, Timespec { secs: 0, nsecs: 1 }),
        attr::TIME_METADATA => put_time(out, at.ctime),
        attr::TIME_MODIFY => put_time(out, at.mtime),
        attr::MOUNTED_ON_FILEID => out.put_u64(src.mounted_on_fileid),
        attr::SUPPATTR_EXCLCREAT => encode_bitmap(out, &suppattr_exclcreat()),
        // Both backends keep `user.` extended attributes (a file system under the local
        // one that does not answers their ops NFS4ERR_NOTSUPP).
        attr::XATTR_SUPPORT => out.put_bool(true),
        attr::CLONE_BLKSIZE => out.put_u32(src.clone_blksize),
        // `answerable` only lets supported, readable attributes through.
        _ => debug_assert!(false, "attribute {a} not encodable"),
    }
}
