//! Extended attributes (RFC 8276): GETXATTR, SETXATTR, LISTXATTRS, REMOVEXATTR, on the
//! `user.` namespace of the backend (names on the wire carry no prefix).

use crate::consts::{NfsStatus, status};
use crate::ctx::{CompoundCtx, OpResult};
use ringnfs_fs::{XATTR_NAME_MAX, XATTR_SIZE_MAX, XattrSet};
use ringnfs_proto::nfs4::ops::{
    GetXattrResOk, ListXattrsArgs, ListXattrsResOk, SetXattrArgs, XattrNameArgs, Xdr,
    setxattr_option4,
};
use ringnfs_proto::xdr::pad4;

use super::change_info;

/// A name as the backend takes it: not empty, no NUL, at most [`XATTR_NAME_MAX`] bytes
/// (the `user.` prefix and the name fill Linux's 255).
fn xattr_name(name: &[u8]) -> Result<&[u8], NfsStatus> {
    if name.len() > XATTR_NAME_MAX {
        return Err(status::NFS4ERR_NAMETOOLONG);
    }
    if name.is_empty() || name.contains(&0) {
        return Err(status::NFS4ERR_INVAL);
    }
    Ok(name)
}

pub fn getxattr(ctx: &mut CompoundCtx<'_>, a: XattrNameArgs<'_>, out: &mut Vec<u8>) -> OpResult {
    let cur = ctx.cur()?;
    let name = xattr_name(a.name)?;
    let value = ctx.export.backend.getxattr(&cur.obj, name, &ctx.caller)?;
    // A value the session's replies cannot carry is too big for this client.
    if 4 + pad4(value.len()) > ctx.reply_room.saturating_sub(64) {
        return Err(status::NFS4ERR_XATTR2BIG);
    }
    GetXattrResOk { value: &value }.encode(out);
    Ok(())
}

pub fn setxattr(ctx: &mut CompoundCtx<'_>, a: SetXattrArgs<'_>, out: &mut Vec<u8>) -> OpResult {
    let cur = ctx.cur()?;
    ctx.writable()?;
    let how = match a.option {
        setxattr_option4::EITHER => XattrSet::Either,
        setxattr_option4::CREATE => XattrSet::Create,
        setxattr_option4::REPLACE => XattrSet::Replace,
        _ => return Err(status::NFS4ERR_INVAL),
    };
    let name = xattr_name(a.name)?;
    if a.value.len() > XATTR_SIZE_MAX {
        return Err(status::NFS4ERR_XATTR2BIG);
    }
    let backend = &ctx.export.backend;
    let before = backend.getattr(&cur.obj)?;
    backend.setxattr(&cur.obj, name, a.value, how, &ctx.caller)?;
    let after = backend.getattr(&cur.obj)?;
    change_info(&before, &after).encode(out);
    Ok(())
}

pub fn removexattr(ctx: &mut CompoundCtx<'_>, a: XattrNameArgs<'_>, out: &mut Vec<u8>) -> OpResult {
    let cur = ctx.cur()?;
    ctx.writable()?;
    let name = xattr_name(a.name)?;
    let backend = &ctx.export.backend;
    let before = backend.getattr(&cur.obj)?;
    backend.removexattr(&cur.obj, name, &ctx.caller)?;
    let after = backend.getattr(&cur.obj)?;
    change_info(&before, &after).encode(out);
    Ok(())
}

/// LISTXATTRS: the names from the cookie on (a cookie is the number of names already
/// returned, in byte order), as many as `maxcount` (and the reply) hold;
/// NFS4ERR_TOOSMALL if not even the next one does (RFC 8276 §8.4.3.3).
pub fn listxattrs(ctx: &mut CompoundCtx<'_>, a: ListXattrsArgs, out: &mut Vec<u8>) -> OpResult {
    let cur = ctx.cur()?;
    let names = ctx.export.backend.listxattrs(&cur.obj, &ctx.caller)?;
    let from = usize::try_from(a.cookie)
        .ok()
        .filter(|c| *c <= names.len())
        .ok_or(status::NFS4ERR_BAD_COOKIE)?;
    let limit = (a.maxcount as usize).min(ctx.reply_room.saturating_sub(64));
    let mut room = limit
        .checked_sub(ListXattrsResOk::FRAME_LEN)
        .ok_or(status::NFS4ERR_TOOSMALL)?;
    let mut page: Vec<&[u8]> = Vec::new();
    for n in &names[from..] {
        let len = ListXattrsResOk::name_len(n);
        if len > room {
            break;
        }
        room -= len;
        page.push(n);
    }
    if page.is_empty() && from < names.len() {
        return Err(status::NFS4ERR_TOOSMALL);
    }
    let next = from + page.len();
    ListXattrsResOk {
        cookie: next as u64,
        eof: next == names.len(),
        names: page,
    }
    .encode(out);
    Ok(())
}
