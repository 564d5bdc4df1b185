//! Byte-range locks: LOCK, LOCKT, LOCKU (POSIX semantics, advisory).

use crate::compound::{CompoundCtx, OpResult};
use crate::consts::{NFS4_OPAQUE_LIMIT, status};
use ringnfs_proto::xdr::{XdrDecoder, XdrEncoder};
use ringnfs_state::files::{Conflict, LockRequest, Locker, Owner, Range};
use ringnfs_state::stateid::Stateid;

use super::xdr;

const READ_LT: u32 = 1;
const WRITE_LT: u32 = 2;
const READW_LT: u32 = 3;
const WRITEW_LT: u32 = 4;

fn is_write(locktype: u32) -> Result<bool, u32> {
    match locktype {
        READ_LT | READW_LT => Ok(false),
        WRITE_LT | WRITEW_LT => Ok(true),
        _ => Err(status::NFS4ERR_INVAL),
    }
}

/// LOCK4denied after an NFS4ERR_DENIED status.
fn denied(ctx: &mut CompoundCtx<'_>, out: &mut Vec<u8>, c: &Conflict) -> u32 {
    out.put_u64(c.range.start);
    out.put_u64(c.range.length());
    out.put_u32(if c.write { WRITE_LT } else { READ_LT });
    out.put_u64(c.owner.client);
    out.put_opaque(&c.owner.owner);
    ctx.keep_error_body = true;
    status::NFS4ERR_DENIED
}

pub fn lock(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, out: &mut Vec<u8>) -> OpResult {
    let write = is_write(xdr(d.u32())?)?;
    let reclaim = xdr(d.bool())?;
    let offset = xdr(d.u64())?;
    let length = xdr(d.u64())?;
    let new_owner = xdr(d.bool())?;
    let mut owner_bytes = Vec::new();
    let locker_sid = if new_owner {
        let _open_seqid = xdr(d.u32())?;
        let open = xdr(Stateid::decode(d))?;
        let _lock_seqid = xdr(d.u32())?;
        let _clientid = xdr(d.u64())?;
        owner_bytes = xdr(d.opaque(NFS4_OPAQUE_LIMIT))?.to_vec();
        open
    } else {
        let sid = xdr(Stateid::decode(d))?;
        let _lock_seqid = xdr(d.u32())?;
        sid
    };
    let cur = ctx.cur()?;
    if reclaim {
        ctx.state.check_reclaim(ctx.client()?)?;
    } else {
        ctx.may_take_new_locks()?;
    }
    let range = Range::from_nfs(offset, length)?;
    let sid = ctx.resolve_stateid(locker_sid)?;
    let locker = if new_owner {
        Locker::New {
            open: sid,
            owner: &owner_bytes,
        }
    } else {
        Locker::Existing(sid)
    };
    let req = LockRequest {
        client: ctx.client()?,
        file: &cur.obj,
        locker,
        range,
        write,
    };
    match ctx.state.files.lock(req)? {
        Ok(sid) => {
            sid.encode(out);
            ctx.current_stateid = Some(sid);
            Ok(())
        }
        Err(conflict) => Err(denied(ctx, out, &conflict)),
    }
}

pub fn lockt(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, out: &mut Vec<u8>) -> OpResult {
    let write = is_write(xdr(d.u32())?)?;
    let offset = xdr(d.u64())?;
    let length = xdr(d.u64())?;
    let _clientid = xdr(d.u64())?;
    let owner = xdr(d.opaque(NFS4_OPAQUE_LIMIT))?.to_vec();
    let cur = ctx.cur()?;
    if ctx.state.in_grace() {
        return Err(status::NFS4ERR_GRACE);
    }
    let range = Range::from_nfs(offset, length)?;
    let owner = Owner {
        client: ctx.client()?,
        owner,
    };
    match ctx.state.files.test_lock(&cur.obj, &owner, range, write) {
        None => Ok(()),
        Some(c) => Err(denied(ctx, out, &c)),
    }
}

pub fn locku(ctx: &mut CompoundCtx<'_>, d: &mut XdrDecoder<'_>, out: &mut Vec<u8>) -> OpResult {
    let _type = is_write(xdr(d.u32())?)?;
    let _seqid = xdr(d.u32())?;
    let sid = xdr(Stateid::decode(d))?;
    let offset = xdr(d.u64())?;
    let length = xdr(d.u64())?;
    let cur = ctx.cur()?;
    let range = Range::from_nfs(offset, length)?;
    let sid = ctx.resolve_stateid(sid)?;
    let new = ctx
        .state
        .files
        .unlock(&sid, ctx.client()?, &cur.obj, range)?;
    new.encode(out);
    ctx.current_stateid = Some(new);
    Ok(())
}
