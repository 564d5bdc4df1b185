//! Session and client-id ops: EXCHANGE_ID, CREATE_SESSION, BIND_CONN_TO_SESSION,
//! DESTROY_SESSION, DESTROY_CLIENTID, RECLAIM_COMPLETE.

use crate::compound::{CompoundCtx, OpResult};
use crate::consts::{NFS4_OPAQUE_LIMIT, exchgid_flag, sp4, status};
use crate::types::{
    bitmap_to_ops, decode_bitmap, decode_cb_sec_parms, decode_channel_attrs, decode_sessionid,
    encode_bitmap, encode_channel_attrs, ops_to_bitmap,
};
use ringnfs_proto::xdr::{XdrDecoder, XdrEncoder, XdrError};
use ringnfs_state::client::MACH_CRED_ENFORCEABLE;
use ringnfs_state::{CreateSessionArgs, ExchangeIdArgs, StateProtect};

const BADXDR: u32 = status::NFS4ERR_BADXDR;

fn xdr<T>(r: Result<T, XdrError>) -> Result<T, u32> {
    r.map_err(|_| BADXDR)
}

/// nfs_impl_id4: domain, name, date.
fn decode_impl_id(d: &mut XdrDecoder<'_>) -> Result<String, XdrError> {
    let mut name = String::new();
    if d.array_len(1, 4)? == 1 {
        let domain = d.opaque(NFS4_OPAQUE_LIMIT)?;
        let n = d.opaque(NFS4_OPAQUE_LIMIT)?;
        let _secs = d.i64()?;
        let _nsecs = d.u32()?;
        name = format!(
            "{} ({})",
            String::from_utf8_lossy(n),
            String::from_utf8_lossy(domain)
        );
    }
    Ok(name)
}

pub fn exchange_id(
    ctx: &mut CompoundCtx<'_>,
    d: &mut XdrDecoder<'_>,
    out: &mut Vec<u8>,
) -> OpResult {
    let verifier = xdr(d.array::<8>())?;
    let owner = xdr(d.opaque(NFS4_OPAQUE_LIMIT))?.to_vec();
    let flags = xdr(d.u32())?;
    let how = xdr(d.u32())?;
    let protect = match how {
        sp4::NONE => StateProtect::default(),
        sp4::MACH_CRED => {
            let enforce = bitmap_to_ops(&xdr(decode_bitmap(d))?);
            let allow = bitmap_to_ops(&xdr(decode_bitmap(d))?);
            StateProtect {
                how,
                // We enforce what was asked among the ops that matter for state
                // protection; BIND_CONN_TO_SESSION always (RFC 8881 §18.34.3).
                enforce: MACH_CRED_ENFORCEABLE
                    .iter()
                    .copied()
                    .filter(|o| {
                        enforce.contains(o) || *o == crate::consts::op::BIND_CONN_TO_SESSION
                    })
                    .collect(),
                allow: allow.into_iter().filter(|o| *o < 80).collect(),
            }
        }
        // SSV needs GSS; we do not offer it.
        sp4::SSV => return Err(status::NFS4ERR_ENCR_ALG_UNSUPP),
        _ => return Err(BADXDR),
    };
    let impl_name = xdr(decode_impl_id(d))?;
    if owner.is_empty() {
        return Err(status::NFS4ERR_INVAL);
    }
    if flags & !exchgid_flag::CLIENT_MASK != 0 {
        return Err(status::NFS4ERR_INVAL);
    }
    if how == sp4::MACH_CRED && ctx.cred.uid().is_none() {
        // Machine credentials need a principal: AUTH_NONE has none.
        return Err(status::NFS4ERR_INVAL);
    }
    let args = ExchangeIdArgs {
        verifier,
        owner,
        flags,
        protect,
        impl_name,
    };
    let reply = ctx.state.exchange_id(ctx.conn.core, ctx.cred, &args)?;
    out.put_u64(reply.clientid);
    out.put_u32(reply.sequenceid);
    out.put_u32(reply.flags);
    out.put_u32(reply.protect.how);
    if reply.protect.how == sp4::MACH_CRED {
        encode_bitmap(out, &ops_to_bitmap(&reply.protect.enforce));
        encode_bitmap(out, &ops_to_bitmap(&reply.protect.allow));
    }
    // server_owner4 and server_scope: identical on every address, stable across
    // restarts, so clients trunk sessions across our addresses.
    out.put_u64(0);
    out.put_opaque(&ctx.state.config.server_owner);
    out.put_opaque(&ctx.state.config.server_scope);
    out.put_u32(1);
    out.put_opaque(b"ringnfs.org");
    out.put_opaque(concat!("ringnfs ", env!("CARGO_PKG_VERSION")).as_bytes());
    out.put_u64(0);
    out.put_u32(0);
    Ok(())
}

pub fn create_session(
    ctx: &mut CompoundCtx<'_>,
    d: &mut XdrDecoder<'_>,
    out: &mut Vec<u8>,
) -> OpResult {
    let args = CreateSessionArgs {
        clientid: xdr(d.u64())?,
        sequence: xdr(d.u32())?,
        flags: xdr(d.u32())?,
        fore: xdr(decode_channel_attrs(d))?,
        back: xdr(decode_channel_attrs(d))?,
        cb_program: xdr(d.u32())?,
        cb_cred: xdr(decode_cb_sec_parms(d))?,
    };
    let reply = ctx.state.create_session(ctx.conn, ctx.cred, &args)?;
    ctx.conn.shared.mark_had_session();
    out.put_fixed(&reply.sessionid.0);
    out.put_u32(reply.sequence);
    out.put_u32(reply.flags);
    encode_channel_attrs(out, &reply.fore);
    encode_channel_attrs(out, &reply.back);
    Ok(())
}

pub fn bind_conn_to_session(
    ctx: &mut CompoundCtx<'_>,
    d: &mut XdrDecoder<'_>,
    out: &mut Vec<u8>,
) -> OpResult {
    let sid = xdr(decode_sessionid(d))?;
    let dir = xdr(d.u32())?;
    let _rdma = xdr(d.bool())?;
    let result = ctx
        .state
        .bind_conn_to_session(ctx.conn, ctx.cred, &sid, dir);
    // One line per BIND_CONN_TO_SESSION (rare: recovery only), so the kernel harness and
    // operators can see which direction each transport asked for and what it got.
    tracing::debug!(
        conn = ctx.conn.id,
        peer = %ctx.conn.peer,
        session = %sid.to_hex(),
        requested = cdfc_name(dir),
        granted = match &result {
            Ok(d) => d.label(),
            Err(_) => "-",
        },
        status = result.as_ref().err().copied().unwrap_or(0),
        "BIND_CONN_TO_SESSION"
    );
    let granted = result?;
    out.put_fixed(&sid.0);
    out.put_u32(granted.to_cdfs());
    // TCP only: never RDMA mode.
    out.put_bool(false);
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
    d: &mut XdrDecoder<'_>,
    _out: &mut Vec<u8>,
) -> OpResult {
    let sid = xdr(decode_sessionid(d))?;
    ctx.state.destroy_session(ctx.conn, ctx.cred, &sid)
}

pub fn destroy_clientid(
    ctx: &mut CompoundCtx<'_>,
    d: &mut XdrDecoder<'_>,
    _out: &mut Vec<u8>,
) -> OpResult {
    let clientid = xdr(d.u64())?;
    ctx.state
        .destroy_clientid(ctx.conn.core, ctx.cred, clientid)
}

pub fn reclaim_complete(
    ctx: &mut CompoundCtx<'_>,
    d: &mut XdrDecoder<'_>,
    _out: &mut Vec<u8>,
) -> OpResult {
    let one_fs = xdr(d.bool())?;
    let Some(grant) = ctx.session.as_mut() else {
        return Err(status::NFS4ERR_OP_NOT_IN_SESSION);
    };
    if one_fs && ctx.current_fh.is_none() {
        return Err(status::NFS4ERR_NOFILEHANDLE);
    }
    ctx.state.reclaim_complete(grant.clientid, one_fs)?;
    // An OPEN later in this COMPOUND may take new state.
    grant.reclaim_complete |= !one_fs;
    Ok(())
}
