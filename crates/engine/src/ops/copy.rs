//! Server-side copy and clone (RFC 7862 §15.2, §15.13): CLONE so far. The source is
//! the saved filehandle, the destination the current one.

use crate::consts::{NfsStatus, status};
use crate::ctx::{CompoundCtx, OpResult, resolved};
use ringnfs_fs::{Attrs, FileType};
use ringnfs_proto::nfs4::ops::CloneArgs;
use ringnfs_state::files::IoKind;
use ringnfs_state::stateid::Stateid;

use super::attr::check_stateid_io;

fn regular(a: &Attrs) -> Result<(), NfsStatus> {
    match a.ftype {
        FileType::Regular => Ok(()),
        FileType::Directory => Err(status::NFS4ERR_ISDIR),
        _ => Err(status::NFS4ERR_WRONG_TYPE),
    }
}

/// The source's stateid: the special current stateid there stands for the saved one
/// (the stateid SAVEFH kept with the source's filehandle).
fn source_stateid(ctx: &CompoundCtx<'_>, sid: Stateid) -> Result<Stateid, NfsStatus> {
    match (sid == Stateid::CURRENT, ctx.saved_stateid) {
        (true, Some(saved)) => Ok(saved),
        _ => resolved(sid),
    }
}

pub fn clone(ctx: &mut CompoundCtx<'_>, a: CloneArgs, _: &mut Vec<u8>) -> OpResult {
    let dst = ctx.cur()?;
    let src = ctx.saved()?;
    ctx.writable()?;
    let src_sid = source_stateid(ctx, a.src_stateid)?;
    let dst_sid = resolved(a.dst_stateid)?;
    let backend = &ctx.export.backend;
    let (sa, da) = (backend.getattr(&src.obj)?, backend.getattr(&dst.obj)?);
    regular(&sa)?;
    regular(&da)?;
    check_stateid_io(ctx, &src_sid, &src, &sa, IoKind::Read)?;
    check_stateid_io(ctx, &dst_sid, &dst, &da, IoKind::Write)?;
    backend.clone_range(&src.obj, a.src_offset, &dst.obj, a.dst_offset, a.count)?;
    Ok(())
}
