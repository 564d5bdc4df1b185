//! Attribute ops: GETATTR, SETATTR, VERIFY, NVERIFY, ACCESS.

use crate::attrs::{self, AttrSource};
use crate::compound::{CompoundCtx, CurFh, OpResult};
use crate::consts::status;
use crate::types::{decode_bitmap, encode_bitmap};
use ringnfs_fs::{Attrs, Caller, FileType, FsStats, ObjHandle};
use ringnfs_proto::xdr::{XdrDecoder, XdrEncoder};
use ringnfs_state::files::IoKind;
use ringnfs_state::stateid::Stateid;

use super::{access, xdr};

/// Encode fattr4 of `obj` (with attributes `a`) for the `requested` bitmap.
pub fn encode_attrs(
    ctx: &CompoundCtx<'_>,
    out: &mut Vec<u8>,
    requested: &[u32],
    obj: &ObjHandle,
    a: &Attrs,
) -> OpResult {
    let stats: Option<FsStats> = if attrs::needs_statfs(requested) {
        Some(ctx.export.backend.statfs()?)
    } else {
        None
    };
    let fh = ctx.export.handles.encode(obj);
    let src = source(ctx, fh.as_bytes(), a, stats.as_ref());
    attrs::encode_fattr(out, requested, &src);
    Ok(())
}

pub fn source<'a>(
    ctx: &'a CompoundCtx<'_>,
    fh: &'a [u8],
    a: &'a Attrs,
    stats: Option<&'a FsStats>,
) -> AttrSource<'a> {
    AttrSource {
        attrs: a,
        fh,
        fsid: ctx.export.backend.fsid(),
        stats,
        lease_secs: ctx.state.settings.lease_secs(),
        mounted_on_fileid: a.fileid,
        rdattr_error: None,
        fs_root_path: &[],
        server_locations: &ctx.export.locations,
    }
}

pub fn getattr(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, out: &mut Vec<u8>) -> OpResult {
    let requested = xdr(decode_bitmap(d))?;
    attrs::check_readable(&requested)?;
    let cur = ctx.cur()?;
    let a = ctx.export.backend.getattr(&cur.obj)?;
    encode_attrs(ctx, out, &requested, &cur.obj, &a)
}

pub fn setattr(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, out: &mut Vec<u8>) -> OpResult {
    // SETATTR4res carries attrsset even on failure: encode an empty one first.
    ctx.keep_error_body = true;
    let empty_at = out.len();
    encode_bitmap(out, &[]);
    let sid = xdr(Stateid::decode(d))?;
    let (set, bits) = attrs::decode_settable(d)?;
    let cur = ctx.cur()?;
    ctx.writable()?;
    if set.size.is_some() {
        let sid = ctx.resolve_stateid(sid)?;
        let a = ctx.export.backend.getattr(&cur.obj)?;
        match a.ftype {
            FileType::Regular => {}
            FileType::Directory => return Err(status::NFS4ERR_ISDIR),
            _ => return Err(status::NFS4ERR_INVAL),
        }
        check_stateid_io(ctx, &sid, &cur, &a, IoKind::Write)?;
    }
    ctx.export.backend.setattr(&cur.obj, &set, &ctx.caller)?;
    out.truncate(empty_at);
    encode_bitmap(out, &bits);
    ctx.keep_error_body = false;
    Ok(())
}

/// Validate a stateid for I/O on the current file; special stateids get a permission
/// check from the mode bits since no OPEN checked access.
pub fn check_stateid_io(
    ctx: &CompoundCtx<'_>,
    sid: &Stateid,
    cur: &CurFh,
    a: &Attrs,
    kind: IoKind,
) -> OpResult {
    ctx.state
        .files
        .check_io(sid, ctx.session.map(|g| g.clientid), &cur.obj, kind)?;
    if sid.is_special() {
        let need = if kind == IoKind::Write {
            access::MODIFY
        } else {
            access::READ
        };
        if granted(a, &ctx.caller, ctx.export.opts.read_only) & need == 0 && a.uid != ctx.caller.uid
        {
            return Err(status::NFS4ERR_ACCESS);
        }
    }
    Ok(())
}

fn verify_common(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>) -> Result<bool, u32> {
    let cur = ctx.cur()?;
    let a = ctx.export.backend.getattr(&cur.obj)?;
    let stats = ctx.export.backend.statfs()?;
    let src = source(ctx, cur.fh.as_bytes(), &a, Some(&stats));
    attrs::verify(d, &src)
}

pub fn verify(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, _: &mut Vec<u8>) -> OpResult {
    if verify_common(ctx, d)? {
        Ok(())
    } else {
        Err(status::NFS4ERR_NOT_SAME)
    }
}

pub fn nverify(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, _: &mut Vec<u8>) -> OpResult {
    if verify_common(ctx, d)? {
        Err(status::NFS4ERR_SAME)
    } else {
        Ok(())
    }
}

/// The ACCESS bits `caller` has on an object, from its mode bits (root reads and writes
/// anything, and executes what has any execute bit).
pub fn granted(a: &Attrs, caller: &Caller, read_only: bool) -> u32 {
    let is_dir = a.ftype == FileType::Directory;
    let p = caller.perm_bits(a);
    let (r, w, x) = (p & 4 != 0, p & 2 != 0, p & 1 != 0);
    let mut g = 0;
    if r {
        g |= access::READ;
    }
    if is_dir {
        if x {
            g |= access::LOOKUP;
        }
        if w && x {
            g |= access::MODIFY | access::EXTEND | access::DELETE;
        }
    } else {
        if w {
            g |= access::MODIFY | access::EXTEND;
        }
        if x {
            g |= access::EXECUTE;
        }
    }
    if read_only {
        g &= !(access::MODIFY | access::EXTEND | access::DELETE);
    }
    g
}

pub fn access(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, out: &mut Vec<u8>) -> OpResult {
    let asked = xdr(d.u32())?;
    let cur = ctx.cur()?;
    let a = ctx.export.backend.getattr(&cur.obj)?;
    // We can answer every bit; DELETE is meaningful for directories only (as knfsd).
    let supported = asked & access::ALL;
    out.put_u32(supported);
    out.put_u32(granted(&a, &ctx.caller, ctx.export.opts.read_only) & supported);
    Ok(())
}
