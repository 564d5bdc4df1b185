//! Server-side copy and clone (RFC 7862 §15.2, §15.8, §15.9, §15.13): COPY, OFFLOAD_
//! STATUS, OFFLOAD_CANCEL, CLONE. The source is the saved filehandle, the destination
//! the current one.
//!
//! A COPY of at most [`SYNC_MAX`] bytes, or one the client wants synchronous, or one
//! whose session has no back channel for CB_OFFLOAD, runs on the worker at once (at
//! most [`SYNC_MAX`] bytes of it: a shorter `wr_count` tells the client to send the rest
//! again). A larger one goes to the engine's copy helpers (`offload.rs`) and the reply
//! carries its copy stateid. Copies between servers (a `ca_source_server` list, and
//! COPY_NOTIFY) are not built: NFS4ERR_NOTSUPP.

use crate::consts::{NfsStatus, status};
use crate::ctx::{CompoundCtx, CurFh, OpResult, resolved};
use crate::offload::{CopyJob, STEP};
use ringnfs_fs::Attrs;
use ringnfs_proto::nfs4::ops::{
    CloneArgs, CopyArgs, CopyRequirements, CopyResOk, OffloadArgs, WriteResponse, Xdr, stable_how4,
};
use ringnfs_state::files::IoKind;
use ringnfs_state::stateid::Stateid;

use super::attr::check_stateid_io;

/// The two files of a COPY or CLONE: the source (saved filehandle, read) and the
/// destination (current filehandle, written), with their attributes, checked: regular
/// files, a writable export, stateids that allow reading and writing.
struct Ends {
    src: CurFh,
    dst: CurFh,
    src_attrs: Attrs,
}

fn ends(ctx: &CompoundCtx<'_>, src_sid: Stateid, dst_sid: Stateid) -> Result<Ends, NfsStatus> {
    let dst = ctx.cur()?;
    let src = ctx.saved()?;
    // RFC 7862 §15.2.3, §15.13.3: both files in one file system (export).
    ctx.same_export(&src, &dst)?;
    ctx.writable()?;
    let src_sid = source_stateid(ctx, src_sid)?;
    let dst_sid = resolved(dst_sid)?;
    let backend = &ctx.export.backend;
    let (sa, da) = (backend.getattr(&src.obj)?, backend.getattr(&dst.obj)?);
    super::require_regular(sa.ftype, status::NFS4ERR_WRONG_TYPE)?;
    super::require_regular(da.ftype, status::NFS4ERR_WRONG_TYPE)?;
    check_stateid_io(ctx, &src_sid, &src, &sa, IoKind::Read)?;
    check_stateid_io(ctx, &dst_sid, &dst, &da, IoKind::Write)?;
    ctx.yield_delegations(&dst.obj, true)?;
    Ok(Ends {
        src,
        dst,
        src_attrs: sa,
    })
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
    let Ends { src, dst, .. } = ends(ctx, a.src_stateid, a.dst_stateid)?;
    ctx.export
        .backend
        .clone_range(&src.obj, a.src_offset, &dst.obj, a.dst_offset, a.count)?;
    Ok(())
}

/// Bytes a COPY copies on the worker before it answers.
pub const SYNC_MAX: u64 = 4 << 20;

pub fn copy(ctx: &mut CompoundCtx<'_>, a: CopyArgs<'_>, out: &mut Vec<u8>) -> OpResult {
    if !a.source_servers.is_empty() {
        return Err(status::NFS4ERR_NOTSUPP);
    }
    let Ends {
        src,
        dst,
        src_attrs: sa,
    } = ends(ctx, a.src_stateid, a.dst_stateid)?;
    let backend = &ctx.export.backend;
    // RFC 7862 §15.2.3: the source range lies within the source (a count of 0: to its
    // end); a range overlapping itself within one file is refused.
    let end = if a.count == 0 {
        sa.size
    } else {
        a.src_offset
            .checked_add(a.count)
            .ok_or(status::NFS4ERR_INVAL)?
    };
    if a.src_offset > sa.size || end > sa.size {
        return Err(status::NFS4ERR_INVAL);
    }
    let len = end - a.src_offset;
    if super::past_max_offset(a.dst_offset, len) {
        return Err(status::NFS4ERR_FBIG);
    }
    if src.obj == dst.obj && a.src_offset < a.dst_offset + len && a.dst_offset < end {
        return Err(status::NFS4ERR_INVAL);
    }
    let session = ctx.session.ok_or(status::NFS4ERR_OP_NOT_IN_SESSION)?;
    let verifier = ctx.state.write_verifier;
    let can_call_back = ctx.state.back_channel(&session.sessionid, None).is_some();
    if !a.synchronous && len > SYNC_MAX && can_call_back {
        let sid = ctx.offloads.start(CopyJob {
            export: ctx.export.clone(),
            clientid: session.clientid,
            session: session.sessionid,
            src: src.obj,
            dst: dst.obj,
            dst_fh: dst.fh.as_bytes().to_vec(),
            src_offset: a.src_offset,
            dst_offset: a.dst_offset,
            len,
            verifier,
        })?;
        CopyResOk {
            response: WriteResponse {
                callback_id: Some(sid),
                count: 0,
                committed: stable_how4::UNSTABLE,
                verifier,
            },
            requirements: CopyRequirements {
                consecutive: true,
                synchronous: false,
            },
        }
        .encode(out);
        return Ok(());
    }
    let want = len.min(SYNC_MAX);
    let mut copied = 0u64;
    while copied < want {
        let step = backend.copy_step(
            &src.obj,
            a.src_offset + copied,
            &dst.obj,
            a.dst_offset + copied,
            STEP.min(want - copied),
        );
        match step {
            Ok(0) => break,
            Ok(n) => copied += n,
            // What was copied before the error is reported; nothing copied: the error.
            Err(e) if copied == 0 => return Err(e.into()),
            Err(_) => break,
        }
    }
    CopyResOk {
        response: WriteResponse {
            callback_id: None,
            count: copied,
            committed: stable_how4::UNSTABLE,
            verifier,
        },
        requirements: CopyRequirements {
            consecutive: true,
            synchronous: true,
        },
    }
    .encode(out);
    Ok(())
}

pub fn offload_status(ctx: &mut CompoundCtx<'_>, a: OffloadArgs, out: &mut Vec<u8>) -> OpResult {
    ctx.offloads.status(ctx.client()?, &a.stateid)?.encode(out);
    Ok(())
}

pub fn offload_cancel(ctx: &mut CompoundCtx<'_>, a: OffloadArgs, _: &mut Vec<u8>) -> OpResult {
    ctx.offloads.cancel(ctx.client()?, &a.stateid)
}
