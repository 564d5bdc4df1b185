//! OPEN, OPEN_DOWNGRADE, CLOSE and the stateid ops (TEST_STATEID, FREE_STATEID,
//! DELEGRETURN). No delegations are granted (see `open_deleg`).

use crate::attrs;
use crate::compound::{CompoundCtx, OpResult};
use crate::consts::{NFS4_OPAQUE_LIMIT, status};
use crate::types::encode_bitmap;
use ringnfs_fs::{Attrs, FileType, FsError, ObjHandle, SetAttrs, SetTime, Timespec, check_name};
use ringnfs_proto::xdr::{XdrDecoder, XdrEncoder};
use ringnfs_state::files::{Owner, SHARE_ACCESS_READ, SHARE_ACCESS_WRITE};
use ringnfs_state::stateid::Stateid;

use super::attr::granted;
use super::open_deleg::{access_only, encode_no_delegation, split_share_access};
use super::{access, decode_component, encode_change_info, require_dir, require_search, xdr};

const OPEN4_NOCREATE: u32 = 0;
const OPEN4_CREATE: u32 = 1;
const UNCHECKED4: u32 = 0;
const GUARDED4: u32 = 1;
const EXCLUSIVE4: u32 = 2;
const EXCLUSIVE4_1: u32 = 3;
const CLAIM_NULL: u32 = 0;
const CLAIM_PREVIOUS: u32 = 1;
const CLAIM_DELEGATE_CUR: u32 = 2;
const CLAIM_DELEGATE_PREV: u32 = 3;
const CLAIM_FH: u32 = 4;
const CLAIM_DELEG_PREV_FH: u32 = 5;
const CLAIM_DELEG_CUR_FH: u32 = 6;
const OPEN4_RESULT_LOCKTYPE_POSIX: u32 = 4;

enum How {
    NoCreate,
    Unchecked(SetAttrs, Vec<u32>),
    Guarded(SetAttrs, Vec<u32>),
    Exclusive([u8; 8], SetAttrs, Vec<u32>),
}

fn decode_how(d: &mut XdrDecoder<'_>) -> Result<How, u32> {
    match xdr(d.u32())? {
        OPEN4_NOCREATE => Ok(How::NoCreate),
        OPEN4_CREATE => match xdr(d.u32())? {
            UNCHECKED4 => {
                let (s, b) = attrs::decode_settable(d)?;
                Ok(How::Unchecked(s, b))
            }
            GUARDED4 => {
                let (s, b) = attrs::decode_settable(d)?;
                Ok(How::Guarded(s, b))
            }
            EXCLUSIVE4 => Ok(How::Exclusive(
                xdr(d.array::<8>())?,
                SetAttrs::default(),
                Vec::new(),
            )),
            EXCLUSIVE4_1 => {
                let verf = xdr(d.array::<8>())?;
                let (s, b) = attrs::decode_settable(d)?;
                // The times hold the verifier: only suppattr_exclcreat may be set.
                let allowed = attrs::suppattr_exclcreat();
                if b.iter()
                    .enumerate()
                    .any(|(i, w)| w & !allowed.get(i).copied().unwrap_or(0) != 0)
                {
                    return Err(status::NFS4ERR_INVAL);
                }
                Ok(How::Exclusive(verf, s, b))
            }
            _ => Err(status::NFS4ERR_INVAL),
        },
        _ => Err(status::NFS4ERR_INVAL),
    }
}

/// Where EXCLUSIVE creates keep their verifier (as knfsd: in the file's times), so a
/// retransmitted create is recognised.
fn verifier_times(v: [u8; 8]) -> (Timespec, Timespec) {
    let hi = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
    let lo = u32::from_be_bytes([v[4], v[5], v[6], v[7]]);
    (
        Timespec {
            secs: hi as i64,
            nsecs: 0,
        },
        Timespec {
            secs: lo as i64,
            nsecs: 0,
        },
    )
}

fn check_open_type(a: &Attrs) -> OpResult {
    match a.ftype {
        FileType::Regular => Ok(()),
        FileType::Directory => Err(status::NFS4ERR_ISDIR),
        FileType::Symlink => Err(status::NFS4ERR_SYMLINK),
        _ => Err(status::NFS4ERR_INVAL),
    }
}

/// Find or create the file CLAIM_NULL names. Returns (file, created, attrs set).
fn open_by_name(
    ctx: &CompoundCtx<'_>,
    dir: &ObjHandle,
    name: &[u8],
    how: How,
) -> Result<(ObjHandle, bool, Vec<u32>), u32> {
    let fs = &ctx.export.backend;
    match how {
        How::NoCreate => {
            require_search(&fs.getattr(dir)?, &ctx.caller)?;
            Ok((fs.lookup(dir, name)?, false, Vec::new()))
        }
        How::Unchecked(set, bits) => {
            ctx.writable()?;
            let (obj, created) = fs.create_file(dir, name, &set, false, &ctx.caller)?;
            if !created && set.size == Some(0) {
                // UNCHECKED over an existing file with size 0 truncates (O_TRUNC).
                fs.setattr(
                    &obj,
                    &SetAttrs {
                        size: Some(0),
                        ..SetAttrs::default()
                    },
                    &ctx.caller,
                )?;
            }
            Ok((obj, created, if created { bits } else { Vec::new() }))
        }
        How::Guarded(set, bits) => {
            ctx.writable()?;
            let (obj, _) = fs.create_file(dir, name, &set, true, &ctx.caller)?;
            Ok((obj, true, bits))
        }
        How::Exclusive(verf, set, mut bits) => {
            ctx.writable()?;
            // Like knfsd: report time_access and time_modify in attrset, since they hold
            // the verifier; Linux then sets the real times with a SETATTR.
            if bits.len() < 2 {
                bits.resize(2, 0);
            }
            bits[1] |=
                (1 << (attrs::attr::TIME_ACCESS - 32)) | (1 << (attrs::attr::TIME_MODIFY - 32));
            let (atime, mtime) = verifier_times(verf);
            match fs.create_file(dir, name, &set, true, &ctx.caller) {
                Ok((obj, _)) => {
                    let times = SetAttrs {
                        atime: Some(SetTime::Client(atime)),
                        mtime: Some(SetTime::Client(mtime)),
                        ..SetAttrs::default()
                    };
                    fs.setattr(&obj, &times, &ctx.caller)?;
                    Ok((obj, true, bits))
                }
                Err(FsError::Exist) => {
                    // A retry of our own create carries the same verifier.
                    let obj = fs.lookup(dir, name)?;
                    let a = fs.getattr(&obj)?;
                    if a.ftype == FileType::Regular && a.atime == atime && a.mtime == mtime {
                        Ok((obj, true, bits))
                    } else {
                        Err(status::NFS4ERR_EXIST)
                    }
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

pub fn open(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, out: &mut Vec<u8>) -> OpResult {
    let _seqid = xdr(d.u32())?;
    let (share_access, wish) = split_share_access(xdr(d.u32())?)?;
    let share_deny = xdr(d.u32())?;
    let _owner_client = xdr(d.u64())?;
    let owner = xdr(d.opaque(NFS4_OPAQUE_LIMIT))?.to_vec();
    let how = decode_how(d)?;
    let claim = xdr(d.u32())?;
    let client = ctx.client()?;
    let cur = ctx.cur()?;
    let fs = ctx.export.backend.clone();
    if claim != CLAIM_PREVIOUS {
        ctx.may_take_new_locks()?;
    }
    let (obj, created, attrset, cinfo) = match claim {
        CLAIM_NULL => {
            let name = decode_component(d)?;
            let before = fs.getattr(&cur.obj)?;
            require_dir(&before)?;
            check_name(name)?;
            let (obj, created, bits) = open_by_name(ctx, &cur.obj, name, how)?;
            let after = fs.getattr(&cur.obj)?;
            (obj, created, bits, Some((before, after)))
        }
        CLAIM_FH => {
            if !matches!(how, How::NoCreate) {
                return Err(status::NFS4ERR_INVAL);
            }
            (cur.obj, false, Vec::new(), None)
        }
        CLAIM_PREVIOUS => {
            let _delegate_type = xdr(d.u32())?;
            // Reclaim of an open held before the restart: the current filehandle is the file.
            ctx.state.check_reclaim(client)?;
            if !matches!(how, How::NoCreate) {
                return Err(status::NFS4ERR_INVAL);
            }
            (cur.obj, false, Vec::new(), None)
        }
        // We never granted a delegation, so no delegation stateid is valid.
        CLAIM_DELEGATE_CUR | CLAIM_DELEG_CUR_FH => return Err(status::NFS4ERR_BAD_STATEID),
        CLAIM_DELEGATE_PREV | CLAIM_DELEG_PREV_FH => return Err(status::NFS4ERR_NOTSUPP),
        _ => return Err(status::NFS4ERR_INVAL),
    };
    let a = fs.getattr(&obj)?;
    check_open_type(&a)?;
    if share_access & SHARE_ACCESS_WRITE != 0 {
        ctx.writable()?;
    }
    if !created {
        let g = granted(&a, &ctx.caller, ctx.export.opts.read_only);
        let need_read = share_access & SHARE_ACCESS_READ != 0 && g & access::READ == 0;
        let need_write = share_access & SHARE_ACCESS_WRITE != 0 && g & access::MODIFY == 0;
        if need_read || need_write {
            return Err(status::NFS4ERR_ACCESS);
        }
    }
    let sid = ctx
        .state
        .files
        .open(Owner { client, owner }, obj, share_access, share_deny)?;
    let others_access = if wish.is_stated() {
        ctx.state.files.others_access(&obj, client)
    } else {
        0
    };
    sid.encode(out);
    match cinfo {
        Some((before, after)) => encode_change_info(out, &before, &after),
        None => encode_change_info(out, &a, &a),
    }
    out.put_u32(OPEN4_RESULT_LOCKTYPE_POSIX);
    encode_bitmap(out, &attrset);
    encode_no_delegation(out, wish, others_access);
    ctx.set_current(obj);
    ctx.current_stateid = Some(sid);
    Ok(())
}

pub fn open_downgrade(
    ctx: &mut CompoundCtx<'_>,
    d: &mut XdrDecoder<'_>,
    out: &mut Vec<u8>,
) -> OpResult {
    let sid = xdr(Stateid::decode(d))?;
    let _seqid = xdr(d.u32())?;
    let share_access = access_only(xdr(d.u32())?);
    let share_deny = xdr(d.u32())?;
    let cur = ctx.cur()?;
    let sid = ctx.resolve_stateid(sid)?;
    let new =
        ctx.state
            .files
            .open_downgrade(&sid, ctx.client()?, &cur.obj, share_access, share_deny)?;
    new.encode(out);
    ctx.current_stateid = Some(new);
    Ok(())
}

pub fn close(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, out: &mut Vec<u8>) -> OpResult {
    let _seqid = xdr(d.u32())?;
    let sid = xdr(Stateid::decode(d))?;
    let cur = ctx.cur()?;
    let sid = ctx.resolve_stateid(sid)?;
    ctx.state.files.close(&sid, ctx.client()?, &cur.obj)?;
    // RFC 8881 §18.2.4: a closed stateid is answered with the invalid special stateid.
    Stateid::INVALID.encode(out);
    ctx.current_stateid = Some(Stateid::INVALID);
    Ok(())
}

pub fn delegreturn(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, _: &mut Vec<u8>) -> OpResult {
    let _sid = xdr(Stateid::decode(d))?;
    ctx.cur()?;
    // No delegation was ever granted, so none can be returned.
    Err(status::NFS4ERR_BAD_STATEID)
}

pub fn test_stateid(
    ctx: &mut CompoundCtx<'_>,
    d: &mut XdrDecoder<'_>,
    out: &mut Vec<u8>,
) -> OpResult {
    let n = xdr(d.array_len(1024, 16))?;
    let client = ctx.client()?;
    let mut results = Vec::with_capacity(n);
    for _ in 0..n {
        let sid = xdr(Stateid::decode(d))?;
        results.push(ctx.state.files.test(&sid, client));
    }
    out.put_u32(results.len() as u32);
    for r in results {
        out.put_u32(r);
    }
    Ok(())
}

pub fn free_stateid(
    ctx: &mut CompoundCtx<'_>,
    d: &mut XdrDecoder<'_>,
    _: &mut Vec<u8>,
) -> OpResult {
    let sid = xdr(Stateid::decode(d))?;
    let sid = ctx.resolve_stateid(sid)?;
    ctx.state.files.free(&sid, ctx.client()?)
}
