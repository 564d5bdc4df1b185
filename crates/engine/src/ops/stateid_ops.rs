//! Operations on stateids alone: TEST_STATEID, FREE_STATEID, DELEGRETURN.

use crate::consts::status;
use crate::ctx::{CompoundCtx, OpResult, resolved};
use ringnfs_proto::nfs4::ops::{
    DelegReturnArgs, FreeStateidArgs, TestStateidArgs, TestStateidResOk, Xdr,
};

pub fn delegreturn(ctx: &mut CompoundCtx<'_>, _: DelegReturnArgs, _: &mut Vec<u8>) -> OpResult {
    ctx.cur()?;
    // No delegation was ever granted, so none can be returned.
    Err(status::NFS4ERR_BAD_STATEID)
}

pub fn test_stateid(ctx: &mut CompoundCtx<'_>, a: TestStateidArgs, out: &mut Vec<u8>) -> OpResult {
    let client = ctx.client()?;
    let status_codes = a
        .stateids
        .iter()
        .map(|sid| ctx.state.files.test(sid, client))
        .collect();
    TestStateidResOk { status_codes }.encode(out);
    Ok(())
}

pub fn free_stateid(ctx: &mut CompoundCtx<'_>, a: FreeStateidArgs, _: &mut Vec<u8>) -> OpResult {
    let sid = resolved(a.stateid)?;
    ctx.state.files.free(&sid, ctx.client()?)
}
