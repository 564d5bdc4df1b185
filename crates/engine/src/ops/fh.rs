//! Filehandle ops: PUTROOTFH, PUTPUBFH, PUTFH, GETFH, SAVEFH, RESTOREFH, LOOKUP, LOOKUPP.
//! Putting a new filehandle clears the current stateid: their rows say so, the loop
//! does it.

use crate::consts::{NFS4_FHSIZE, status};
use crate::ctx::{CompoundCtx, OpResult};
use ringnfs_fs::check_name;
use ringnfs_proto::nfs4::ops::{GetFhResOk, LookupArgs, PutFhArgs, Xdr};

use super::{component, require_dir, require_search};

/// PUTROOTFH: the root of the pseudo file system (or of the one export at "/"). A client
/// its export does not admit gets NFS4ERR_ACCESS.
pub fn putrootfh(ctx: &mut CompoundCtx<'_>, _: (), _: &mut Vec<u8>) -> OpResult {
    ctx.enter_root(ctx.exports.root())
}

/// PUTFH: a handle of an export this server serves now (else NFS4ERR_STALE) that
/// admits this client (else NFS4ERR_ACCESS).
pub fn putfh(ctx: &mut CompoundCtx<'_>, a: PutFhArgs<'_>, _: &mut Vec<u8>) -> OpResult {
    // A handle longer than NFS4_FHSIZE is a bad handle, not bad XDR.
    if a.fh.len() > NFS4_FHSIZE {
        return Err(status::NFS4ERR_BADHANDLE);
    }
    let (e, obj, fh) = ctx.exports.decode(a.fh)?;
    ctx.enter(e, obj, fh)
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

/// LOOKUP; in the pseudo file system, the name an export is mounted on leads to that
/// export's root (a client it does not admit gets NFS4ERR_ACCESS).
pub fn lookup(ctx: &mut CompoundCtx<'_>, a: LookupArgs<'_>, _: &mut Vec<u8>) -> OpResult {
    let name = component(a.name)?;
    let dir = ctx.cur()?;
    // RFC 8881 §18.13.4: NOTDIR for a non-directory, SYMLINK for a symbolic link.
    let attrs = ctx.export.backend.getattr(&dir.obj)?;
    require_dir(&attrs)?;
    check_name(name)?;
    require_search(&attrs, &ctx.caller)?;
    let obj = ctx.export.backend.lookup(&dir.obj, name)?;
    match ctx.exports.junction(ctx.export, &obj) {
        Some(e) => ctx.enter_root(e)?,
        None => ctx.set_current(obj),
    }
    sec_of_result(ctx)
}

/// LOOKUPP; from an export's root, the pseudo directory it is mounted on.
pub fn lookupp(ctx: &mut CompoundCtx<'_>, _: (), _: &mut Vec<u8>) -> OpResult {
    let dir = ctx.cur()?;
    let attrs = ctx.export.backend.getattr(&dir.obj)?;
    require_dir(&attrs)?;
    require_search(&attrs, &ctx.caller)?;
    if let Some(node) = ctx.exports.mount_point(ctx.export, &dir.obj) {
        let pseudo = ctx.exports.root();
        let parent = pseudo.backend.lookup_parent(node)?;
        let fh = pseudo.handles.encode(&parent);
        ctx.enter(pseudo, parent, fh)?;
    } else {
        let parent = ctx.export.backend.lookup_parent(&dir.obj)?;
        ctx.set_current(parent);
    }
    sec_of_result(ctx)
}

/// RFC 8881 §2.6.3.1.1.5: LOOKUP and LOOKUPP answer NFS4ERR_WRONGSEC when the
/// filehandle they reach is in an export that does not admit the call's flavor.
fn sec_of_result(ctx: &CompoundCtx<'_>) -> OpResult {
    if ctx.wrong_sec {
        Err(status::NFS4ERR_WRONGSEC)
    } else {
        Ok(())
    }
}
