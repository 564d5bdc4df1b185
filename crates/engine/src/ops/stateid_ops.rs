//! Operations on stateids alone: TEST_STATEID, FREE_STATEID, DELEGRETURN.

use crate::consts::status;
use crate::ctx::{CompoundCtx, OpResult, resolved};
use ringnfs_proto::nfs4::ops::{
    DelegReturnArgs, FreeStateidArgs, TestStateidArgs, TestStateidResOk, Xdr,
};

pub fn delegreturn(ctx: &mut CompoundCtx<'_>, a: DelegReturnArgs, _: &mut Vec<u8>) -> OpResult {
    let cur = ctx.cur()?;
    let sid = resolved(a.stateid)?;
    if sid.is_special() {
        return Err(status::NFS4ERR_BAD_STATEID);
    }
    ctx.state.files.delegreturn(&sid, ctx.client()?, &cur.obj)
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
