//! Current/saved filehandle ops and GETATTR. Until the file backends land, the only
//! object is the pseudo-root directory.

use crate::nfs4::compound::{CompoundCtx, OpResult};
use crate::nfs4::consts::{NFS4_FHSIZE, status};
use crate::nfs4::fh::FileHandle;
use crate::nfs4::types::{decode_bitmap, encode_bitmap};
use crate::xdr::{XdrDecoder, XdrEncoder};

pub fn putrootfh(ctx: &mut CompoundCtx<'_>, _: &mut XdrDecoder<'_>, _: &mut Vec<u8>) -> OpResult {
    ctx.current_fh = Some(FileHandle::pseudo_root());
    Ok(())
}

pub fn putfh(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, _: &mut Vec<u8>) -> OpResult {
    // A handle longer than NFS4_FHSIZE is a bad handle, not bad XDR.
    let len = d.u32().map_err(|_| status::NFS4ERR_BADXDR)? as usize;
    if len > NFS4_FHSIZE {
        return Err(status::NFS4ERR_BADHANDLE);
    }
    let bytes = d.opaque_fixed(len).map_err(|_| status::NFS4ERR_BADXDR)?;
    ctx.current_fh = Some(FileHandle::validate(bytes)?);
    Ok(())
}

pub fn getfh(ctx: &mut CompoundCtx<'_>, _: &mut XdrDecoder<'_>, out: &mut Vec<u8>) -> OpResult {
    let fh = ctx.current_fh.ok_or(status::NFS4ERR_NOFILEHANDLE)?;
    out.put_opaque(fh.as_bytes());
    Ok(())
}

pub fn savefh(ctx: &mut CompoundCtx<'_>, _: &mut XdrDecoder<'_>, _: &mut Vec<u8>) -> OpResult {
    ctx.saved_fh = ctx.current_fh;
    Ok(())
}

pub fn restorefh(ctx: &mut CompoundCtx<'_>, _: &mut XdrDecoder<'_>, _: &mut Vec<u8>) -> OpResult {
    let fh = ctx.saved_fh.ok_or(status::NFS4ERR_RESTOREFH)?;
    ctx.current_fh = Some(fh);
    Ok(())
}

/// Attribute numbers (RFC 8881 §5) served for the pseudo-root.
mod attr {
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
    pub const FILEHANDLE: u32 = 19;
    pub const FILEID: u32 = 20;
    pub const MODE: u32 = 33;
    pub const NUMLINKS: u32 = 35;
    pub const OWNER: u32 = 36;
    pub const OWNER_GROUP: u32 = 37;
    pub const TIME_ACCESS: u32 = 47;
    pub const TIME_METADATA: u32 = 52;
    pub const TIME_MODIFY: u32 = 53;
    pub const MOUNTED_ON_FILEID: u32 = 55;
    pub const SUPPATTR_EXCLCREAT: u32 = 75;

    pub const SUPPORTED: [u32; 23] = [
        SUPPORTED_ATTRS,
        TYPE,
        FH_EXPIRE_TYPE,
        CHANGE,
        SIZE,
        LINK_SUPPORT,
        SYMLINK_SUPPORT,
        NAMED_ATTR,
        FSID,
        UNIQUE_HANDLES,
        LEASE_TIME,
        RDATTR_ERROR,
        FILEHANDLE,
        FILEID,
        MODE,
        NUMLINKS,
        OWNER,
        OWNER_GROUP,
        TIME_ACCESS,
        TIME_METADATA,
        TIME_MODIFY,
        MOUNTED_ON_FILEID,
        SUPPATTR_EXCLCREAT,
    ];
}

fn supported_bitmap() -> [u32; 3] {
    let mut w = [0u32; 3];
    for a in attr::SUPPORTED {
        w[a as usize / 32] |= 1 << (a % 32);
    }
    w
}

const NF4DIR: u32 = 2;
const FH4_PERSISTENT: u32 = 0;

/// GETATTR of the pseudo-root: the attributes asked for that we support, in order.
pub fn getattr(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, out: &mut Vec<u8>) -> OpResult {
    let requested = decode_bitmap(d).map_err(|_| status::NFS4ERR_BADXDR)?;
    let fh = ctx.current_fh.ok_or(status::NFS4ERR_NOFILEHANDLE)?;
    let supported = supported_bitmap();
    let mut answered = [0u32; 3];
    for (i, w) in answered.iter_mut().enumerate() {
        *w = requested.get(i).copied().unwrap_or(0) & supported[i];
    }
    encode_bitmap(out, &answered);
    let len_at = out.mark();
    out.put_u32(0);
    let vals_start = out.len();
    let lease = ctx.state.settings.lease_secs();
    let boot = ctx.state.boot as i64;
    for a in 0..96u32 {
        if answered[a as usize / 32] & (1 << (a % 32)) == 0 {
            continue;
        }
        match a {
            attr::SUPPORTED_ATTRS | attr::SUPPATTR_EXCLCREAT => {
                if a == attr::SUPPORTED_ATTRS {
                    encode_bitmap(out, &supported);
                } else {
                    encode_bitmap(out, &[0, 0, 0]);
                }
            }
            attr::TYPE => out.put_u32(NF4DIR),
            attr::FH_EXPIRE_TYPE => out.put_u32(FH4_PERSISTENT),
            attr::CHANGE => out.put_u64(1),
            attr::SIZE => out.put_u64(4096),
            attr::LINK_SUPPORT | attr::SYMLINK_SUPPORT | attr::UNIQUE_HANDLES => out.put_bool(true),
            attr::NAMED_ATTR => out.put_bool(false),
            attr::FSID => {
                out.put_u64(0);
                out.put_u64(0);
            }
            attr::LEASE_TIME => out.put_u32(lease),
            attr::RDATTR_ERROR => out.put_u32(status::NFS4_OK),
            attr::FILEHANDLE => out.put_opaque(fh.as_bytes()),
            attr::FILEID | attr::MOUNTED_ON_FILEID => out.put_u64(1),
            attr::MODE => out.put_u32(0o755),
            attr::NUMLINKS => out.put_u32(2),
            attr::OWNER | attr::OWNER_GROUP => out.put_opaque(b"0"),
            attr::TIME_ACCESS | attr::TIME_METADATA | attr::TIME_MODIFY => {
                out.put_i64(boot);
                out.put_u32(0);
            }
            _ => {}
        }
    }
    let len = out.len() - vals_start;
    out.patch_u32(len_at, len as u32);
    Ok(())
}
