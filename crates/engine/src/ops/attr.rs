//! Attribute ops: GETATTR, SETATTR, VERIFY, NVERIFY, ACCESS.

use crate::attrs::{self, AttrSource};
use crate::consts::{NfsStatus, status};
use crate::ctx::{CompoundCtx, CurFh, OpResult, resolved};
use crate::export::Export;
use ringnfs_fs::{Attrs, Caller, FileType, FsStats, ObjHandle};
use ringnfs_proto::nfs4::ops::{
    AccessArgs, AccessResOk, Fattr4, GetAttrArgs, SetAttrArgs, SetAttrRes, VerifyArgs, Xdr,
};
use ringnfs_state::files::IoKind;
use ringnfs_state::stateid::Stateid;

use super::access;

/// Encode fattr4 of `obj` (with attributes `a`), of the current export, for the
/// `requested` bitmap.
pub fn encode_attrs(
    ctx: &CompoundCtx<'_>,
    out: &mut Vec<u8>,
    requested: &[u32],
    obj: &ObjHandle,
    a: &Attrs,
) -> OpResult {
    encode_attrs_in(ctx, ctx.export, out, requested, obj, a)
}

/// [`encode_attrs`] for an object of export `e` (READDIR of the pseudo file system
/// shows exports' roots).
pub fn encode_attrs_in(
    ctx: &CompoundCtx<'_>,
    e: &Export,
    out: &mut Vec<u8>,
    requested: &[u32],
    obj: &ObjHandle,
    a: &Attrs,
) -> OpResult {
    let stats: Option<FsStats> = if attrs::needs_statfs(requested) {
        Some(e.backend.statfs()?)
    } else {
        None
    };
    // The handle only when asked for: making one costs a MAC.
    let fh =
        attrs::has(requested, ringnfs_proto::nfs4::attr::FILEHANDLE).then(|| e.handles.encode(obj));
    let fh_bytes = fh.as_ref().map_or(&[][..], |f| f.as_bytes());
    let mut src = source(ctx, e, fh_bytes, a, stats.as_ref());
    if attrs::has(requested, ringnfs_proto::nfs4::attr::MOUNTED_ON_FILEID) {
        src.mounted_on_fileid = mounted_on_fileid(ctx, e, obj, a)?;
    }
    attrs::encode_fattr(out, requested, &src);
    Ok(())
}

/// The fileid of the directory `obj` is mounted on: at an export's root, its pseudo
/// directory's; elsewhere its own (RFC 8881 §5.8.2.19).
fn mounted_on_fileid(
    ctx: &CompoundCtx<'_>,
    e: &Export,
    obj: &ObjHandle,
    a: &Attrs,
) -> Result<u64, NfsStatus> {
    match ctx.exports.mount_point(e, obj) {
        Some(node) => Ok(ctx.exports.root().backend.getattr(node)?.fileid),
        None => Ok(a.fileid),
    }
}

pub fn source<'a>(
    ctx: &'a CompoundCtx<'_>,
    e: &'a Export,
    fh: &'a [u8],
    a: &'a Attrs,
    stats: Option<&'a FsStats>,
) -> AttrSource<'a> {
    AttrSource {
        attrs: a,
        fh,
        fsid: e.fsid(),
        stats,
        lease_secs: ctx.state.settings.lease_secs(),
        mounted_on_fileid: a.fileid,
        rdattr_error: None,
        fs_root_path: &[],
        server_locations: &e.locations,
        clone_blksize: e.backend.clone_blksize(),
        minor: ctx.minor,
    }
}

/// GETATTR4resok is a fattr4, written in place by [`attrs::encode_fattr`].
pub fn getattr(ctx: &mut CompoundCtx<'_>, a: GetAttrArgs, out: &mut Vec<u8>) -> OpResult {
    attrs::check_readable(&a.attr_request)?;
    let cur = ctx.cur()?;
    let mut attrs = ctx.export.backend.getattr(&cur.obj)?;
    // Another client's write delegation may hide a size and change the server has not
    // seen: its holder says (CB_GETATTR).
    ctx.holder_attrs(&cur.obj, &a.attr_request, &mut attrs)?;
    encode_attrs(ctx, out, &a.attr_request, &cur.obj, &attrs)
}

/// SETATTR4res carries attrsset whatever the status: the attributes set on success,
/// and (from [`setattr_failed`], its row's error body) none on failure.
pub fn setattr(ctx: &mut CompoundCtx<'_>, a: SetAttrArgs<'_>, out: &mut Vec<u8>) -> OpResult {
    let (set, bits) = attrs::decode_settable(&a.attrs)?;
    let cur = ctx.cur()?;
    ctx.writable()?;
    if set.size.is_some() {
        let sid = resolved(a.stateid)?;
        let a = ctx.export.backend.getattr(&cur.obj)?;
        match a.ftype {
            FileType::Regular => {}
            FileType::Directory => return Err(status::NFS4ERR_ISDIR),
            _ => return Err(status::NFS4ERR_INVAL),
        }
        check_stateid_io(ctx, &sid, &cur, &a, IoKind::Write)?;
    }
    // Holders of delegations cache the attributes too.
    ctx.yield_delegations(&cur.obj, true)?;
    ctx.export.backend.setattr(&cur.obj, &set, &ctx.caller)?;
    SetAttrRes {
        status: status::NFS4_OK,
        attrsset: bits,
    }
    .encode_body(out);
    Ok(())
}

/// The body of a failed SETATTR: nothing set.
pub fn setattr_failed(out: &mut Vec<u8>) {
    SetAttrRes::default().encode_body(out);
}

/// Validate a stateid for I/O on the current file; special stateids get a permission
/// check from the mode bits since no OPEN checked access. A read first recalls other
/// clients' write delegations of the file (their holders may have cached writes).
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
    if kind == IoKind::Read {
        ctx.yield_delegations(&cur.obj, false)?;
    }
    if sid.is_special() {
        let need = if kind == IoKind::Write {
            access::MODIFY
        } else {
            access::READ
        };
        if granted(a, &ctx.caller, ctx.read_only) & need == 0 && a.uid != ctx.caller.uid {
            return Err(status::NFS4ERR_ACCESS);
        }
    }
    Ok(())
}

fn verify_common(ctx: &mut CompoundCtx<'_>, f: &Fattr4<'_>) -> Result<bool, NfsStatus> {
    let cur = ctx.cur()?;
    let a = ctx.export.backend.getattr(&cur.obj)?;
    let stats = ctx.export.backend.statfs()?;
    let mut src = source(ctx, ctx.export, cur.fh.as_bytes(), &a, Some(&stats));
    src.mounted_on_fileid = mounted_on_fileid(ctx, ctx.export, &cur.obj, &a)?;
    attrs::verify(f, &src)
}

pub fn verify(ctx: &mut CompoundCtx<'_>, a: VerifyArgs<'_>, _: &mut Vec<u8>) -> OpResult {
    if verify_common(ctx, &a.attrs)? {
        Ok(())
    } else {
        Err(status::NFS4ERR_NOT_SAME)
    }
}

pub fn nverify(ctx: &mut CompoundCtx<'_>, a: VerifyArgs<'_>, _: &mut Vec<u8>) -> OpResult {
    if verify_common(ctx, &a.attrs)? {
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
    // Extended attributes (RFC 8276 §8.1.3): read and list as reading, write as writing.
    if r {
        g |= access::XAREAD | access::XALIST;
    }
    if w {
        g |= access::XAWRITE;
    }
    if read_only {
        g &= !(access::MODIFY | access::EXTEND | access::DELETE | access::XAWRITE);
    }
    g
}

pub fn access(ctx: &mut CompoundCtx<'_>, args: AccessArgs, out: &mut Vec<u8>) -> OpResult {
    let cur = ctx.cur()?;
    let a = ctx.export.backend.getattr(&cur.obj)?;
    // We can answer every bit; DELETE is meaningful for directories only (as knfsd).
    // The extended attribute bits exist from minor version 2 on.
    let known = if ctx.minor >= 2 {
        access::ALL
    } else {
        access::ALL & !(access::XAREAD | access::XAWRITE | access::XALIST)
    };
    let supported = args.access & known;
    AccessResOk {
        supported,
        access: granted(&a, &ctx.caller, ctx.read_only) & supported,
    }
    .encode(out);
    Ok(())
}
