//! Filehandle ops: PUTROOTFH, PUTPUBFH, PUTFH, GETFH, SAVEFH, RESTOREFH, LOOKUP, LOOKUPP.
//! Putting a new filehandle clears the current stateid: their rows say so, the loop
//! does it.

use crate::consts::{NFS4_FHSIZE, status};
use crate::ctx::{CompoundCtx, CurFh, OpResult};
use ringnfs_fs::check_name;
use ringnfs_proto::nfs4::ops::{GetFhResOk, LookupArgs, PutFhArgs, Xdr};

use super::{component, require_dir, require_search};

/// Clients outside the export's allowed networks get no filehandle.
fn check_peer(ctx: &CompoundCtx<'_>) -> OpResult {
    if ctx.export.allows(ctx.conn.peer.ip()) {
        Ok(())
    } else {
        Err(status::NFS4ERR_ACCESS)
    }
}

pub fn putrootfh(ctx: &mut CompoundCtx<'_>, _: (), _: &mut Vec<u8>) -> OpResult {
    check_peer(ctx)?;
    ctx.current_fh = Some(CurFh {
        obj: ctx.export.root,
        fh: ctx.export.root_fh,
    });
    Ok(())
}

pub fn putfh(ctx: &mut CompoundCtx<'_>, a: PutFhArgs<'_>, _: &mut Vec<u8>) -> OpResult {
    // A handle longer than NFS4_FHSIZE is a bad handle, not bad XDR.
    if a.fh.len() > NFS4_FHSIZE {
        return Err(status::NFS4ERR_BADHANDLE);
    }
    check_peer(ctx)?;
    let (obj, fh) = ctx.export.handles.decode(a.fh)?;
    ctx.current_fh = Some(CurFh { obj, fh });
    Ok(())
}

pub fn getfh(ctx: &mut CompoundCtx<'_>, _: (), out: &mut Vec<u8>) -> OpResult {
    let cur = ctx.cur()?;
    GetFhResOk {
        fh: cur.fh.as_bytes(),
    }
    .encode(out);
    Ok(())
}

pub fn savefh(ctx: &mut CompoundCtx<'_>, _: (), _: &mut Vec<u8>) -> OpResult {
    ctx.save_fh();
    Ok(())
}

pub fn restorefh(ctx: &mut CompoundCtx<'_>, _: (), _: &mut Vec<u8>) -> OpResult {
    ctx.restore_fh()
}

pub fn lookup(ctx: &mut CompoundCtx<'_>, a: LookupArgs<'_>, _: &mut Vec<u8>) -> OpResult {
    let name = component(a.name)?;
    let dir = ctx.cur()?;
    // RFC 8881 §18.13.4: NOTDIR for a non-directory, SYMLINK for a symbolic link.
    let attrs = ctx.export.backend.getattr(&dir.obj)?;
    require_dir(&attrs)?;
    check_name(name)?;
    require_search(&attrs, &ctx.caller)?;
    let obj = ctx.export.backend.lookup(&dir.obj, name)?;
    ctx.set_current(obj);
    Ok(())
}

pub fn lookupp(ctx: &mut CompoundCtx<'_>, _: (), _: &mut Vec<u8>) -> OpResult {
    let dir = ctx.cur()?;
    let attrs = ctx.export.backend.getattr(&dir.obj)?;
    require_dir(&attrs)?;
    require_search(&attrs, &ctx.caller)?;
    let parent = ctx.export.backend.lookup_parent(&dir.obj)?;
    ctx.set_current(parent);
    Ok(())
}
