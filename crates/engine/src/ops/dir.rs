//! Namespace ops: CREATE, REMOVE, RENAME, LINK, READLINK, READDIR, SECINFO,
//! SECINFO_NO_NAME.

use crate::attrs;
use crate::compound::{CompoundCtx, OpResult};
use crate::consts::status;
use crate::types::{decode_bitmap, encode_bitmap};
use ringnfs_fs::{CreateKind, check_name};
use ringnfs_proto::rpc::auth::{AUTH_NONE, AUTH_SYS};
use ringnfs_proto::xdr::{XdrDecoder, XdrEncoder};

use super::attr::encode_attrs;
use super::{decode_component, encode_change_info, require_dir, require_search, xdr};

const NF4BLK: u32 = 3;
const NF4CHR: u32 = 4;
const NF4LNK: u32 = 5;
const NF4SOCK: u32 = 6;
const NF4FIFO: u32 = 7;
const NF4DIR: u32 = 2;
const NF4REG: u32 = 1;

pub fn create(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, out: &mut Vec<u8>) -> OpResult {
    let kind = match xdr(d.u32())? {
        NF4LNK => {
            let target = xdr(d.opaque(4096))?;
            if target.is_empty() {
                return Err(status::NFS4ERR_INVAL);
            }
            CreateKind::Symlink(target.to_vec())
        }
        NF4BLK => CreateKind::Block(xdr(d.u32())?, xdr(d.u32())?),
        NF4CHR => CreateKind::Char(xdr(d.u32())?, xdr(d.u32())?),
        NF4SOCK => CreateKind::Socket,
        NF4FIFO => CreateKind::Fifo,
        NF4DIR => CreateKind::Directory,
        NF4REG => return Err(status::NFS4ERR_BADTYPE),
        _ => return Err(status::NFS4ERR_BADTYPE),
    };
    let name = decode_component(d)?;
    let (set, bits) = attrs::decode_settable(d)?;
    let dir = ctx.cur()?;
    let fs = &ctx.export.backend;
    let before = fs.getattr(&dir.obj)?;
    require_dir(&before)?;
    check_name(name)?;
    ctx.writable()?;
    let obj = fs.create(&dir.obj, name, &kind, &set, &ctx.caller)?;
    let after = fs.getattr(&dir.obj)?;
    encode_change_info(out, &before, &after);
    encode_bitmap(out, &bits);
    ctx.set_current(obj);
    Ok(())
}

pub fn remove(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, out: &mut Vec<u8>) -> OpResult {
    let name = decode_component(d)?;
    let dir = ctx.cur()?;
    let fs = &ctx.export.backend;
    let before = fs.getattr(&dir.obj)?;
    require_dir(&before)?;
    check_name(name)?;
    ctx.writable()?;
    fs.remove(&dir.obj, name, &ctx.caller)?;
    let after = fs.getattr(&dir.obj)?;
    encode_change_info(out, &before, &after);
    Ok(())
}

/// RENAME: from the saved filehandle's directory to the current one's.
pub fn rename(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, out: &mut Vec<u8>) -> OpResult {
    let old = decode_component(d)?;
    let new = decode_component(d)?;
    let src = ctx.saved()?;
    let dst = ctx.cur()?;
    let fs = &ctx.export.backend;
    let src_before = fs.getattr(&src.obj)?;
    let dst_before = fs.getattr(&dst.obj)?;
    require_dir(&src_before)?;
    require_dir(&dst_before)?;
    check_name(old)?;
    check_name(new)?;
    ctx.writable()?;
    fs.rename(&src.obj, old, &dst.obj, new, &ctx.caller)?;
    encode_change_info(out, &src_before, &fs.getattr(&src.obj)?);
    encode_change_info(out, &dst_before, &fs.getattr(&dst.obj)?);
    Ok(())
}

/// LINK: the saved filehandle gets a new name in the current directory.
pub fn link(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, out: &mut Vec<u8>) -> OpResult {
    let name = decode_component(d)?;
    let target = ctx.saved()?;
    let dir = ctx.cur()?;
    let fs = &ctx.export.backend;
    let before = fs.getattr(&dir.obj)?;
    require_dir(&before)?;
    if fs.getattr(&target.obj)?.ftype == ringnfs_fs::FileType::Directory {
        return Err(status::NFS4ERR_ISDIR);
    }
    check_name(name)?;
    ctx.writable()?;
    fs.link(&target.obj, &dir.obj, name, &ctx.caller)?;
    encode_change_info(out, &before, &fs.getattr(&dir.obj)?);
    Ok(())
}

pub fn readlink(ctx: &mut CompoundCtx<'_>, _: &mut XdrDecoder<'_>, out: &mut Vec<u8>) -> OpResult {
    let cur = ctx.cur()?;
    let a = ctx.export.backend.getattr(&cur.obj)?;
    if a.ftype != ringnfs_fs::FileType::Symlink {
        return Err(status::NFS4ERR_INVAL);
    }
    out.put_opaque(&ctx.export.backend.readlink(&cur.obj)?);
    Ok(())
}

/// Our cookies are stable for as long as an entry exists, so one verifier serves all.
const COOKIE_VERIFIER: [u8; 8] = *b"ringnfs1";

pub fn readdir(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, out: &mut Vec<u8>) -> OpResult {
    let cookie = xdr(d.u64())?;
    let verifier = xdr(d.array::<8>())?;
    let dircount = xdr(d.u32())? as usize;
    // The client's maxcount, but never past what the session's reply size allows.
    let maxcount = (xdr(d.u32())? as usize).min(ctx.reply_room);
    let requested = xdr(decode_bitmap(d))?;
    attrs::check_readable(&requested)?;
    let dir = ctx.cur()?;
    let fs = &ctx.export.backend;
    require_dir(&fs.getattr(&dir.obj)?)?;
    if cookie == 1 || cookie == 2 {
        return Err(status::NFS4ERR_BAD_COOKIE);
    }
    if cookie != 0 && verifier != COOKIE_VERIFIER && verifier != [0; 8] {
        return Err(status::NFS4ERR_NOT_SAME);
    }
    let start = out.len();
    out.put_fixed(&COOKIE_VERIFIER);
    // Room for the trailing "no more entries" and eof words.
    let limit = maxcount.saturating_sub(8);
    let mut names_bytes = 0usize;
    let mut emitted = 0usize;
    let mut next = cookie;
    let mut eof = false;
    'pages: loop {
        let (entries, end) = fs.readdir(&dir.obj, next, 128)?;
        for e in &entries {
            let entry_start = out.len();
            out.put_bool(true);
            out.put_u64(e.cookie);
            out.put_opaque(&e.name);
            encode_attrs(ctx, out, &requested, &e.handle, &e.attrs)?;
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
    out.put_bool(false);
    out.put_bool(eof);
    Ok(())
}

/// secinfo4 list: AUTH_SYS, then AUTH_NONE.
fn encode_secinfo(out: &mut Vec<u8>) {
    out.put_u32(2);
    out.put_u32(AUTH_SYS);
    out.put_u32(AUTH_NONE);
}

pub fn secinfo(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, out: &mut Vec<u8>) -> OpResult {
    let name = decode_component(d)?;
    let dir = ctx.cur()?;
    let attrs = ctx.export.backend.getattr(&dir.obj)?;
    require_dir(&attrs)?;
    check_name(name)?;
    require_search(&attrs, &ctx.caller)?;
    ctx.export.backend.lookup(&dir.obj, name)?;
    encode_secinfo(out);
    // RFC 8881 §2.6.3.1.1.8: SECINFO consumes the current filehandle.
    ctx.current_fh = None;
    Ok(())
}

pub fn secinfo_no_name(
    ctx: &mut CompoundCtx<'_>,
    d: &mut XdrDecoder<'_>,
    out: &mut Vec<u8>,
) -> OpResult {
    let style = xdr(d.u32())?;
    let cur = ctx.cur()?;
    match style {
        0 => {}
        1 => {
            ctx.export.backend.lookup_parent(&cur.obj)?;
        }
        _ => return Err(status::NFS4ERR_INVAL),
    }
    encode_secinfo(out);
    ctx.current_fh = None;
    Ok(())
}
