//! Session and client-id ops: SEQUENCE, EXCHANGE_ID, CREATE_SESSION,
//! BIND_CONN_TO_SESSION, DESTROY_SESSION, DESTROY_CLIENTID, RECLAIM_COMPLETE.

use crate::consts::status;
use crate::ctx::{CompoundCtx, OpResult};
use ringnfs_proto::nfs4::ops::{
    BackchannelCtlArgs, BindConnArgs, BindConnResOk, CreateSessionArgs, CreateSessionResOk,
    DestroyClientidArgs, DestroySessionArgs, ExchangeIdArgs, ExchangeIdResOk, ImplId,
    ReclaimCompleteArgs, SequenceArgs, SequenceResOk, ServerOwner, Xdr,
};
use ringnfs_state::{CompoundSize, SeqOutcome};

/// Our nfs_impl_id4.
pub const IMPL_DOMAIN: &[u8] = b"ringnfs.org";
pub const IMPL_NAME: &[u8] = concat!("ringnfs ", env!("CARGO_PKG_VERSION")).as_bytes();

/// SEQUENCE (first in the COMPOUND, its row says): the slot, the implicit bind and the
/// lease in the state manager. A retry leaves its cached reply in `ctx.replay` for the
/// loop to answer with.
pub fn sequence(ctx: &mut CompoundCtx<'_>, a: SequenceArgs, out: &mut Vec<u8>) -> OpResult {
    let size = CompoundSize {
        numops: ctx.numops,
        request_len: ctx.request_len,
        min_reply_len: ctx.reply_used + SequenceResOk::LEN,
    };
    match ctx.state.sequence(ctx.conn, &a, ctx.request_hash, size)? {
        SeqOutcome::Execute(g) => {
            SequenceResOk {
                sessionid: g.sessionid,
                sequenceid: g.sequenceid,
                slotid: g.slotid,
                highest_slotid: g.highest_slotid,
                target_highest_slotid: g.target_highest_slotid,
                status_flags: g.status_flags,
            }
            .encode(out);
            ctx.session = Some(g);
            ctx.conn.shared.mark_had_session();
        }
        SeqOutcome::Replay(_, cached) => ctx.replay = Some(cached),
    }
    Ok(())
}

/// EXCHANGE_ID: what the arguments may ask for and the client record's cases are the
/// state manager's (`ringnfs_state::client`).
pub fn exchange_id(
    ctx: &mut CompoundCtx<'_>,
    a: ExchangeIdArgs<'_>,
    out: &mut Vec<u8>,
) -> OpResult {
    let reply = ctx.state.exchange_id(ctx.conn.core, ctx.cred, &a)?;
    // server_owner4 and server_scope: identical on every address, stable across
    // restarts, so clients trunk sessions across our addresses.
    ExchangeIdResOk {
        clientid: reply.clientid,
        sequenceid: reply.sequenceid,
        flags: reply.flags,
        state_protect: reply.protect.to_wire(),
        server_owner: ServerOwner {
            minor_id: 0,
            major_id: &ctx.state.config.server_owner,
        },
        server_scope: &ctx.state.config.server_scope,
        impl_id: Some(ImplId {
            domain: IMPL_DOMAIN,
            name: IMPL_NAME,
            date: (0, 0),
        }),
    }
    .encode(out);
    Ok(())
}

pub fn create_session(
    ctx: &mut CompoundCtx<'_>,
    a: CreateSessionArgs<'_>,
    out: &mut Vec<u8>,
) -> OpResult {
    let reply = ctx.state.create_session(ctx.conn, ctx.cred, &a)?;
    ctx.state.set_session_minor(&reply.sessionid, ctx.minor);
    ctx.conn.shared.mark_had_session();
    CreateSessionResOk {
        sessionid: reply.sessionid,
        sequence: reply.sequence,
        flags: reply.flags,
        fore: reply.fore,
        back: reply.back,
    }
    .encode(out);
    Ok(())
}

pub fn bind_conn_to_session(
    ctx: &mut CompoundCtx<'_>,
    a: BindConnArgs,
    out: &mut Vec<u8>,
) -> OpResult {
    let sid = a.sessionid;
    let result = ctx
        .state
        .bind_conn_to_session(ctx.conn, ctx.cred, &sid, a.dir);
    // One line per BIND_CONN_TO_SESSION (rare: recovery only), so the kernel harness and
    // operators can see which direction each transport asked for and what it got.
    tracing::debug!(
        conn = ctx.conn.id,
        peer = %ctx.conn.peer,
        session = %sid.to_hex(),
        requested = cdfc_name(a.dir),
        granted = match &result {
            Ok(d) => d.label(),
            Err(_) => "-",
        },
        status = result.as_ref().err().map_or(0, |s| s.code()),
        "BIND_CONN_TO_SESSION"
    );
    let granted = result?;
    BindConnResOk {
        sessionid: sid,
        dir: granted.to_cdfs(),
        // TCP only: never RDMA mode.
        use_rdma: false,
    }
    .encode(out);
    Ok(())
}

fn cdfc_name(v: u32) -> &'static str {
    use crate::consts::cdfc;
    match v {
        cdfc::FORE => "FORE",
        cdfc::BACK => "BACK",
        cdfc::FORE_OR_BOTH => "FORE_OR_BOTH",
        cdfc::BACK_OR_BOTH => "BACK_OR_BOTH",
        _ => "INVALID",
    }
}

pub fn destroy_session(
    ctx: &mut CompoundCtx<'_>,
    a: DestroySessionArgs,
    _out: &mut Vec<u8>,
) -> OpResult {
    ctx.state.destroy_session(ctx.conn, ctx.cred, &a.sessionid)
}

pub fn destroy_clientid(
    ctx: &mut CompoundCtx<'_>,
    a: DestroyClientidArgs,
    _out: &mut Vec<u8>,
) -> OpResult {
    ctx.state
        .destroy_clientid(ctx.conn.core, ctx.cred, a.clientid)
}

pub fn backchannel_ctl(
    ctx: &mut CompoundCtx<'_>,
    a: BackchannelCtlArgs<'_>,
    _out: &mut Vec<u8>,
) -> OpResult {
    let Some(grant) = ctx.session.as_ref() else {
        return Err(status::NFS4ERR_OP_NOT_IN_SESSION);
    };
    ctx.state
        .backchannel_ctl(&grant.sessionid, a.cb_program, &a.sec_parms)
}

pub fn reclaim_complete(
    ctx: &mut CompoundCtx<'_>,
    a: ReclaimCompleteArgs,
    _out: &mut Vec<u8>,
) -> OpResult {
    let Some(grant) = ctx.session.as_mut() else {
        return Err(status::NFS4ERR_OP_NOT_IN_SESSION);
    };
    if a.one_fs && ctx.current_fh.is_none() {
        return Err(status::NFS4ERR_NOFILEHANDLE);
    }
    ctx.state.reclaim_complete(grant.clientid, a.one_fs)?;
    // An OPEN later in this COMPOUND may take new state.
    grant.reclaim_complete |= !a.one_fs;
    Ok(())
}
