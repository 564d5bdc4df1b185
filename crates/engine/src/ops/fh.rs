//! Filehandle ops: PUTROOTFH, PUTPUBFH, PUTFH, GETFH, SAVEFH, RESTOREFH, LOOKUP, LOOKUPP.

use crate::compound::{CompoundCtx, CurFh, OpResult};
use crate::consts::{NFS4_FHSIZE, status};
use ringnfs_fs::check_name;
use ringnfs_proto::xdr::{XdrDecoder, XdrEncoder};

use super::{decode_component, require_dir, require_search, xdr};

/// Clients outside the export's allowed networks get no filehandle.
fn check_peer(ctx: &CompoundCtx<'_>) -> OpResult {
    if ctx.export.allows(ctx.conn.peer.ip()) {
        Ok(())
    } else {
        Err(status::NFS4ERR_ACCESS)
    }
}

pub fn putrootfh(ctx: &mut CompoundCtx<'_>, _: &mut XdrDecoder<'_>, _: &mut Vec<u8>) -> OpResult {
    check_peer(ctx)?;
    ctx.current_fh = Some(CurFh {
        obj: ctx.export.root,
        fh: ctx.export.root_fh,
    });
    ctx.current_stateid = None;
    Ok(())
}

pub fn putfh(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, _: &mut Vec<u8>) -> OpResult {
    // A handle longer than NFS4_FHSIZE is a bad handle, not bad XDR.
    let len = xdr(d.u32())? as usize;
    if len > NFS4_FHSIZE {
        return Err(status::NFS4ERR_BADHANDLE);
    }
    let bytes = xdr(d.opaque_fixed(len))?;
    check_peer(ctx)?;
    let (obj, fh) = ctx.export.handles.decode(bytes)?;
    ctx.current_fh = Some(CurFh { obj, fh });
    ctx.current_stateid = None;
    Ok(())
}

pub fn getfh(ctx: &mut CompoundCtx<'_>, _: &mut XdrDecoder<'_>, out: &mut Vec<u8>) -> OpResult {
    out.put_opaque(ctx.cur()?.fh.as_bytes());
    Ok(())
}

pub fn savefh(ctx: &mut CompoundCtx<'_>, _: &mut XdrDecoder<'_>, _: &mut Vec<u8>) -> OpResult {
    ctx.saved_fh = ctx.current_fh;
    ctx.saved_stateid = ctx.current_stateid;
    Ok(())
}

pub fn restorefh(ctx: &mut CompoundCtx<'_>, _: &mut XdrDecoder<'_>, _: &mut Vec<u8>) -> OpResult {
    let fh = ctx.saved_fh.ok_or(status::NFS4ERR_RESTOREFH)?;
    ctx.current_fh = Some(fh);
    ctx.current_stateid = ctx.saved_stateid;
    Ok(())
}

pub fn lookup(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, _: &mut Vec<u8>) -> OpResult {
    let name = decode_component(d)?;
    let dir = ctx.cur()?;
    // RFC 8881 §18.15.4: NOTDIR for a non-directory, SYMLINK for a symbolic link.
    let attrs = ctx.export.backend.getattr(&dir.obj)?;
    require_dir(&attrs)?;
    check_name(name)?;
    require_search(&attrs, &ctx.caller)?;
    let obj = ctx.export.backend.lookup(&dir.obj, name)?;
    ctx.set_current(obj);
    Ok(())
}

pub fn lookupp(ctx: &mut CompoundCtx<'_>, _: &mut XdrDecoder<'_>, _: &mut Vec<u8>) -> OpResult {
    let dir = ctx.cur()?;
    let attrs = ctx.export.backend.getattr(&dir.obj)?;
    require_dir(&attrs)?;
    require_search(&attrs, &ctx.caller)?;
    let parent = ctx.export.backend.lookup_parent(&dir.obj)?;
    ctx.set_current(parent);
    Ok(())
}
