//! Byte-range locks: LOCK, LOCKT, LOCKU (POSIX semantics, advisory). LOCK and LOCKT
//! answer NFS4ERR_DENIED with LOCK4denied after the status (their rows keep it). On a
//! backend with a file system beneath (local), each lock-owner's locks are mirrored
//! there as OFD locks (`ringnfs_state::files::on_fs`), so other servers exporting the
//! same shared file system and local processes see them; reclaims take them too.

use crate::consts::{NfsStatus, status};
use crate::ctx::{CompoundCtx, OpResult, resolved};
use ringnfs_proto::nfs4::ops::{
    self as wire, LockArgs, LockDenied, LockResOk, LocktArgs, LockuArgs, LockuResOk, StateOwner,
    Xdr, nfs_lock_type4,
};
use ringnfs_state::files::{Conflict, LockRequest, Locker, Owner, Range};
use ringnfs_state::stateid::Stateid;

fn is_write(locktype: u32) -> Result<bool, NfsStatus> {
    match locktype {
        nfs_lock_type4::READ_LT | nfs_lock_type4::READW_LT => Ok(false),
        nfs_lock_type4::WRITE_LT | nfs_lock_type4::WRITEW_LT => Ok(true),
        _ => Err(status::NFS4ERR_INVAL),
    }
}

/// LOCK4denied after an NFS4ERR_DENIED status.
fn denied(out: &mut Vec<u8>, c: &Conflict) -> NfsStatus {
    LockDenied {
        offset: c.range.start,
        length: c.range.length(),
        locktype: if c.write {
            nfs_lock_type4::WRITE_LT
        } else {
            nfs_lock_type4::READ_LT
        },
        owner: StateOwner {
            clientid: c.owner.client,
            owner: &c.owner.owner,
        },
    }
    .encode(out);
    status::NFS4ERR_DENIED
}

/// The stateid in LOCK's locker4 (the open stateid of a new lock owner, or the lock
/// stateid of an existing one): the one the loop replaces by the current stateid.
pub fn locker_stateid<'s>(a: &'s mut LockArgs<'_>) -> &'s mut Stateid {
    match &mut a.locker {
        wire::Locker::New { open_stateid, .. } => open_stateid,
        wire::Locker::Existing { stateid, .. } => stateid,
    }
}

pub fn lock(
    ctx: &mut CompoundCtx<'_>,
    a: LockArgs<'_>,
    out: &mut Vec<u8>,
) -> Result<Stateid, NfsStatus> {
    let write = is_write(a.locktype)?;
    let cur = ctx.cur()?;
    if a.reclaim {
        ctx.state
            .check_reclaim(ctx.client()?, ringnfs_state::grace::Reclaim::Lock)?;
    } else {
        ctx.may_take_new_locks()?;
    }
    let range = Range::from_nfs(a.offset, a.length)?;
    // A delegation's holder locks locally (Linux does): a write lock conflicts with any
    // other client's delegation, a read lock with write delegations.
    ctx.yield_delegations(&cur.obj, write)?;
    let locker = match a.locker {
        wire::Locker::New {
            open_stateid,
            owner,
            ..
        } => Locker::New {
            open: resolved(open_stateid)?,
            owner: owner.owner,
        },
        wire::Locker::Existing { stateid, .. } => Locker::Existing(resolved(stateid)?),
    };
    let req = LockRequest {
        client: ctx.client()?,
        file: &cur.obj,
        locker,
        range,
        write,
    };
    let backend = &ctx.export.backend;
    let open_file = || backend.lock_file(&cur.obj, true);
    match ctx.state.files.lock_mirrored(req, &open_file)? {
        Ok(sid) => {
            LockResOk { stateid: sid }.encode(out);
            Ok(sid)
        }
        Err(conflict) => Err(denied(out, &conflict)),
    }
}

pub fn lockt(ctx: &mut CompoundCtx<'_>, a: LocktArgs<'_>, out: &mut Vec<u8>) -> OpResult {
    let write = is_write(a.locktype)?;
    let cur = ctx.cur()?;
    if ctx.state.in_grace() {
        return Err(status::NFS4ERR_GRACE);
    }
    let range = Range::from_nfs(a.offset, a.length)?;
    ctx.yield_delegations(&cur.obj, write)?;
    let owner = Owner {
        client: ctx.client()?,
        owner: a.owner.owner.to_vec(),
    };
    let backend = &ctx.export.backend;
    let open_file = || backend.lock_file(&cur.obj, false);
    match ctx
        .state
        .files
        .test_lock_mirrored(&cur.obj, &owner, range, write, &open_file)?
    {
        None => Ok(()),
        Some(c) => Err(denied(out, &c)),
    }
}

pub fn locku(
    ctx: &mut CompoundCtx<'_>,
    a: LockuArgs,
    out: &mut Vec<u8>,
) -> Result<Stateid, NfsStatus> {
    let _type = is_write(a.locktype)?;
    let cur = ctx.cur()?;
    let range = Range::from_nfs(a.offset, a.length)?;
    let sid = resolved(a.stateid)?;
    let new = ctx
        .state
        .files
        .unlock(&sid, ctx.client()?, &cur.obj, range)?;
    LockuResOk { stateid: new }.encode(out);
    Ok(new)
}
