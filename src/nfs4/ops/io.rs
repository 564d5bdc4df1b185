//! Data ops: READ, WRITE, COMMIT. READ appends file data straight into the reply.

use crate::fs::{FileType, Stability};
use crate::nfs4::compound::{CompoundCtx, OpResult};
use crate::nfs4::consts::status;
use crate::state::files::IoKind;
use crate::state::stateid::Stateid;
use crate::xdr::{XdrDecoder, XdrEncoder, pad4};

use super::attr::check_stateid_io;
use super::xdr;

/// maxread / maxwrite (the fattr4 values say the same).
pub const MAX_IO: u32 = 1024 * 1024;

fn require_regular(t: FileType) -> OpResult {
    match t {
        FileType::Regular => Ok(()),
        FileType::Directory => Err(status::NFS4ERR_ISDIR),
        FileType::Symlink => Err(status::NFS4ERR_SYMLINK),
        _ => Err(status::NFS4ERR_INVAL),
    }
}

pub fn read(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, out: &mut Vec<u8>) -> OpResult {
    let sid = xdr(Stateid::decode(d))?;
    let offset = xdr(d.u64())?;
    let count = xdr(d.u32())?.min(MAX_IO);
    let cur = ctx.cur()?;
    let sid = ctx.resolve_stateid(sid)?;
    let a = ctx.export.backend.getattr(&cur.obj)?;
    require_regular(a.ftype)?;
    check_stateid_io(ctx, &sid, &cur, &a, IoKind::Read)?;
    let eof_at = out.mark();
    out.put_bool(false);
    let len_at = out.mark();
    out.put_u32(0);
    let start = out.len();
    let eof = ctx.export.backend.read(&cur.obj, offset, count, out)?;
    let n = out.len() - start;
    out.patch_u32(eof_at, eof as u32);
    out.patch_u32(len_at, n as u32);
    out.resize(start + pad4(n), 0);
    Ok(())
}

pub fn write(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, out: &mut Vec<u8>) -> OpResult {
    let sid = xdr(Stateid::decode(d))?;
    let offset = xdr(d.u64())?;
    let stable = match xdr(d.u32())? {
        0 => Stability::Unstable,
        1 => Stability::DataSync,
        2 => Stability::FileSync,
        _ => return Err(status::NFS4ERR_INVAL),
    };
    let data = xdr(d.opaque(MAX_IO as usize))?;
    let cur = ctx.cur()?;
    ctx.writable()?;
    let sid = ctx.resolve_stateid(sid)?;
    let a = ctx.export.backend.getattr(&cur.obj)?;
    require_regular(a.ftype)?;
    check_stateid_io(ctx, &sid, &cur, &a, IoKind::Write)?;
    let (n, done) = ctx.export.backend.write(&cur.obj, offset, data, stable)?;
    out.put_u32(n);
    out.put_u32(done as u32);
    out.put_fixed(&ctx.state.write_verifier);
    Ok(())
}

pub fn commit(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, out: &mut Vec<u8>) -> OpResult {
    let offset = xdr(d.u64())?;
    let count = xdr(d.u32())?;
    if offset.checked_add(count as u64).is_none() {
        return Err(status::NFS4ERR_INVAL);
    }
    let cur = ctx.cur()?;
    let a = ctx.export.backend.getattr(&cur.obj)?;
    require_regular(a.ftype)?;
    ctx.export.backend.commit(&cur.obj)?;
    out.put_fixed(&ctx.state.write_verifier);
    Ok(())
}
