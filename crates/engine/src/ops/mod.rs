//! Op handlers, one group per file.

pub mod attr;
pub mod dir;
pub mod fh;
pub mod io;
pub mod lock;
pub mod open;
pub mod open_deleg;
pub mod session;

use crate::consts::{NFS4_OPAQUE_LIMIT, status};
use ringnfs_fs::{Attrs, Caller, FileType};
use ringnfs_proto::xdr::{XdrDecoder, XdrEncoder, XdrError};

/// Undecodable arguments are NFS4ERR_BADXDR.
pub fn xdr<T>(r: Result<T, XdrError>) -> Result<T, u32> {
    r.map_err(|_| status::NFS4ERR_BADXDR)
}

/// component4: a name of at most NFS4_OPAQUE_LIMIT bytes (longer → NAMETOOLONG).
pub fn decode_component<'a>(d: &mut XdrDecoder<'a>) -> Result<&'a [u8], u32> {
    let len = xdr(d.u32())? as usize;
    if len > NFS4_OPAQUE_LIMIT {
        return Err(status::NFS4ERR_NAMETOOLONG);
    }
    xdr(d.opaque_fixed(len))
}

/// change_info4 for a directory changed by an op (not atomic: two separate reads).
pub fn encode_change_info(out: &mut Vec<u8>, before: &Attrs, after: &Attrs) {
    out.put_bool(false);
    out.put_u64(before.change);
    out.put_u64(after.change);
}

/// Ops that need a directory as the current filehandle.
pub fn require_dir(a: &Attrs) -> Result<(), u32> {
    match a.ftype {
        FileType::Directory => Ok(()),
        FileType::Symlink => Err(status::NFS4ERR_SYMLINK),
        _ => Err(status::NFS4ERR_NOTDIR),
    }
}

/// Search (execute) permission on directory `a`, which resolving a name in it needs
/// (RFC 8881 §18.15: LOOKUP; knfsd checks MAY_EXEC the same way). Backends resolve
/// names as the server, so the NFS layer checks this for the caller.
pub fn require_search(a: &Attrs, caller: &Caller) -> Result<(), u32> {
    if caller.perm_bits(a) & 1 == 0 {
        return Err(status::NFS4ERR_ACCESS);
    }
    Ok(())
}

pub use crate::consts::access;
