//! Namespace ops: CREATE, REMOVE, RENAME, LINK, READLINK, READDIR, SECINFO,
//! SECINFO_NO_NAME.

use crate::attrs;
use crate::consts::NfsStatus;
use crate::consts::status;
use crate::ctx::{CompoundCtx, OpResult};
use crate::export::Export;
use ringnfs_fs::{CreateKind, FileType, check_name};
use ringnfs_proto::nfs4::ops::{
    CinfoResOk, CreateArgs, CreateResOk, CreateType, LinkArgs, ReaddirArgs, ReaddirEntry,
    ReaddirResOk, ReadlinkResOk, RemoveArgs, RenameArgs, RenameResOk, Secinfo, SecinfoArgs,
    SecinfoNoNameArgs, SecinfoResOk, Xdr,
};
use ringnfs_proto::rpc::gss::{GssService, KRB5_OID};

use super::attr::{encode_attrs, encode_attrs_in};
use super::{change_info, component, require_dir, require_search};

/// The longest symbolic link target this server stores (PATH_MAX): linktext4 has no
/// XDR bound, a longer one in CREATE is refused as bad XDR.
pub const MAX_LINK_TEXT: usize = 4096;

pub fn create(ctx: &mut CompoundCtx<'_>, a: CreateArgs<'_>, out: &mut Vec<u8>) -> OpResult {
    let kind = match a.objtype {
        CreateType::Link(target) => {
            if target.len() > MAX_LINK_TEXT {
                return Err(status::NFS4ERR_BADXDR);
            }
            if target.is_empty() {
                return Err(status::NFS4ERR_INVAL);
            }
            CreateKind::Symlink(target.to_vec())
        }
        CreateType::Block(s) => CreateKind::Block(s.specdata1, s.specdata2),
        CreateType::Char(s) => CreateKind::Char(s.specdata1, s.specdata2),
        CreateType::Socket => CreateKind::Socket,
        CreateType::Fifo => CreateKind::Fifo,
        CreateType::Dir => CreateKind::Directory,
        // NF4REG is OPEN's; NF4ATTRDIR, NF4NAMEDATTR and undefined types have no
        // CREATE either.
        CreateType::Other(_) => return Err(status::NFS4ERR_BADTYPE),
    };
    let name = component(a.objname)?;
    let (set, bits) = attrs::decode_settable(&a.createattrs)?;
    let dir = ctx.cur()?;
    let fs = &ctx.export.backend;
    let before = fs.getattr(&dir.obj)?;
    require_dir(&before)?;
    check_name(name)?;
    ctx.writable()?;
    let obj = fs.create(&dir.obj, name, &kind, &set, &ctx.caller)?;
    let after = fs.getattr(&dir.obj)?;
    CreateResOk {
        cinfo: change_info(&before, &after),
        attrset: bits,
    }
    .encode(out);
    ctx.set_current(obj);
    Ok(())
}

pub fn remove(ctx: &mut CompoundCtx<'_>, a: RemoveArgs<'_>, out: &mut Vec<u8>) -> OpResult {
    let name = component(a.name)?;
    let dir = ctx.cur()?;
    let fs = &ctx.export.backend;
    let before = fs.getattr(&dir.obj)?;
    require_dir(&before)?;
    check_name(name)?;
    ctx.writable()?;
    yield_named(ctx, &dir.obj, name)?;
    fs.remove(&dir.obj, name, &ctx.caller)?;
    let after = fs.getattr(&dir.obj)?;
    CinfoResOk {
        cinfo: change_info(&before, &after),
    }
    .encode(out);
    Ok(())
}

/// Other clients' delegations of the file `name` in `dir` (if it exists) are recalled
/// before the name changes (RFC 8881 §10.4.1): NFS4ERR_DELAY meanwhile. Looked up only
/// while some delegation exists at all.
fn yield_named(ctx: &CompoundCtx<'_>, dir: &ringnfs_fs::ObjHandle, name: &[u8]) -> OpResult {
    if ctx.state.files.delegation_count() == 0 {
        return Ok(());
    }
    match ctx.export.backend.lookup(dir, name) {
        Ok(obj) => ctx.yield_delegations(&obj, true),
        // Not there (or not ours to see): the op itself answers.
        Err(_) => Ok(()),
    }
}

/// RENAME: from the saved filehandle's directory to the current one's.
pub fn rename(ctx: &mut CompoundCtx<'_>, a: RenameArgs<'_>, out: &mut Vec<u8>) -> OpResult {
    let old = component(a.oldname)?;
    let new = component(a.newname)?;
    let src = ctx.saved()?;
    let dst = ctx.cur()?;
    // RFC 8881 §18.26.3: both directories in one file system (export).
    ctx.same_export(&src, &dst)?;
    let fs = &ctx.export.backend;
    let src_before = fs.getattr(&src.obj)?;
    let dst_before = fs.getattr(&dst.obj)?;
    require_dir(&src_before)?;
    require_dir(&dst_before)?;
    check_name(old)?;
    check_name(new)?;
    ctx.writable()?;
    // The file renamed, and a file it replaces.
    yield_named(ctx, &src.obj, old)?;
    yield_named(ctx, &dst.obj, new)?;
    fs.rename(&src.obj, old, &dst.obj, new, &ctx.caller)?;
    RenameResOk {
        source_cinfo: change_info(&src_before, &fs.getattr(&src.obj)?),
        target_cinfo: change_info(&dst_before, &fs.getattr(&dst.obj)?),
    }
    .encode(out);
    Ok(())
}

/// LINK: the saved filehandle gets a new name in the current directory.
pub fn link(ctx: &mut CompoundCtx<'_>, a: LinkArgs<'_>, out: &mut Vec<u8>) -> OpResult {
    let name = component(a.name)?;
    let target = ctx.saved()?;
    let dir = ctx.cur()?;
    // RFC 8881 §18.9.3: the file and the directory in one file system (export).
    ctx.same_export(&target, &dir)?;
    let fs = &ctx.export.backend;
    let before = fs.getattr(&dir.obj)?;
    require_dir(&before)?;
    if fs.getattr(&target.obj)?.ftype == FileType::Directory {
        return Err(status::NFS4ERR_ISDIR);
    }
    check_name(name)?;
    ctx.writable()?;
    ctx.yield_delegations(&target.obj, true)?;
    fs.link(&target.obj, &dir.obj, name, &ctx.caller)?;
    CinfoResOk {
        cinfo: change_info(&before, &fs.getattr(&dir.obj)?),
    }
    .encode(out);
    Ok(())
}

pub fn readlink(ctx: &mut CompoundCtx<'_>, _: (), out: &mut Vec<u8>) -> OpResult {
    let cur = ctx.cur()?;
    let a = ctx.export.backend.getattr(&cur.obj)?;
    if a.ftype != FileType::Symlink {
        return Err(status::NFS4ERR_INVAL);
    }
    let link = ctx.export.backend.readlink(&cur.obj)?;
    ReadlinkResOk { link: &link }.encode(out);
    Ok(())
}

/// Our cookies are stable for as long as an entry exists, so one verifier serves all.
const COOKIE_VERIFIER: [u8; 8] = *b"ringnfs1";

/// READDIR4resok is written one entry at a time, each entry's fattr4 in place.
pub fn readdir(ctx: &mut CompoundCtx<'_>, a: ReaddirArgs, out: &mut Vec<u8>) -> OpResult {
    let (cookie, dircount) = (a.cookie, a.dircount as usize);
    // The client's maxcount, but never past what the session's reply size allows.
    let maxcount = (a.maxcount as usize).min(ctx.reply_room);
    let requested = &a.attr_request;
    attrs::check_readable(requested)?;
    let dir = ctx.cur()?;
    let fs = &ctx.export.backend;
    require_dir(&fs.getattr(&dir.obj)?)?;
    if cookie == 1 || cookie == 2 {
        return Err(status::NFS4ERR_BAD_COOKIE);
    }
    if cookie != 0 && a.cookieverf != COOKIE_VERIFIER && a.cookieverf != [0; 8] {
        return Err(status::NFS4ERR_NOT_SAME);
    }
    let start = out.len();
    ReaddirResOk::encode_head(out, &COOKIE_VERIFIER);
    // Room for the trailing "no more entries" and eof words.
    let limit = maxcount.saturating_sub(8);
    let mut names_bytes = 0usize;
    let mut emitted = 0usize;
    let mut next = cookie;
    let mut eof = false;
    'pages: loop {
        let (entries, end) = fs.readdir(&dir.obj, next, 128)?;
        for e in &entries {
            // In the pseudo file system, an export's mount point shows the export's
            // root, and an export that does not admit this client is not shown.
            let mounted = match ctx.exports.junction(ctx.export, &e.handle) {
                Some(x) => {
                    match x.access_for(ctx.conn.peer.ip()) {
                        Ok(_) => {}
                        // A wildcard rule waits for the client's name: the whole
                        // READDIR does.
                        Err(status::NFS4ERR_DELAY) => return Err(status::NFS4ERR_DELAY),
                        Err(_) => {
                            next = e.cookie;
                            continue;
                        }
                    }
                    Some(x)
                }
                None => None,
            };
            let entry_start = out.len();
            ReaddirEntry::encode_head(out, e.cookie, &e.name);
            match mounted {
                Some(x) => {
                    let root_attrs = x.backend.getattr(&x.root)?;
                    encode_attrs_in(ctx, x, out, requested, &x.root, &root_attrs)?
                }
                None => encode_attrs(ctx, out, requested, &e.handle, &e.attrs)?,
            }
            names_bytes += 8 + 4 + e.name.len();
            let over_dircount = dircount > 0 && names_bytes > dircount && emitted > 0;
            if out.len() - start > limit || over_dircount {
                out.truncate(entry_start);
                break 'pages;
            }
            emitted += 1;
            next = e.cookie;
        }
        if end || entries.is_empty() {
            eof = true;
            break;
        }
    }
    if emitted == 0 && !eof {
        out.truncate(start);
        return Err(status::NFS4ERR_TOOSMALL);
    }
    ReaddirResOk::encode_end(out, eof);
    Ok(())
}

/// The flavors SECINFO and SECINFO_NO_NAME offer for export `e`: those it admits this
/// client with, in its order (NFS4ERR_ACCESS if it does not admit the client).
fn flavors(ctx: &CompoundCtx<'_>, e: &Export) -> Result<Vec<Secinfo<'static>>, NfsStatus> {
    let access = e.access_for(ctx.conn.peer.ip())?;
    Ok(access
        .flavors
        .iter()
        .map(|&f| match GssService::of_krb5_flavor(f) {
            // Kerberos: RPCSEC_GSS with the krb5 mechanism, the default QOP, a service.
            Some(service) => Secinfo::Gss {
                oid: KRB5_OID,
                qop: 0,
                service: service.code(),
            },
            None => Secinfo::Flavor(f),
        })
        .collect())
}

pub fn secinfo(ctx: &mut CompoundCtx<'_>, a: SecinfoArgs<'_>, out: &mut Vec<u8>) -> OpResult {
    let name = component(a.name)?;
    let dir = ctx.cur()?;
    let attrs = ctx.export.backend.getattr(&dir.obj)?;
    require_dir(&attrs)?;
    check_name(name)?;
    require_search(&attrs, &ctx.caller)?;
    let obj = ctx.export.backend.lookup(&dir.obj, name)?;
    // The name an export is mounted on: that export's flavors.
    let target = ctx.exports.junction(ctx.export, &obj).unwrap_or(ctx.export);
    SecinfoResOk::encode_list(out, &flavors(ctx, target)?);
    // RFC 8881 §2.6.3.1.1.8: SECINFO consumes the current filehandle.
    ctx.current_fh = None;
    Ok(())
}

pub fn secinfo_no_name(
    ctx: &mut CompoundCtx<'_>,
    a: SecinfoNoNameArgs,
    out: &mut Vec<u8>,
) -> OpResult {
    let cur = ctx.cur()?;
    let target = match a.style {
        0 => ctx.export,
        // The parent of an export's root is in the pseudo file system.
        1 if ctx.exports.mount_point(ctx.export, &cur.obj).is_some() => ctx.exports.root(),
        1 => {
            ctx.export.backend.lookup_parent(&cur.obj)?;
            ctx.export
        }
        _ => return Err(status::NFS4ERR_INVAL),
    };
    SecinfoResOk::encode_list(out, &flavors(ctx, target)?);
    ctx.current_fh = None;
    Ok(())
}
