//! Back-channel calls from the server, on a connection bound for the back channel and
//! matched with the client's reply on the same TCP stream by xid: the CB_COMPOUND
//! encoding (CB_SEQUENCE on a back-channel slot, then one op: CB_RECALL, CB_GETATTR or
//! CB_OFFLOAD) and the checks of its reply, which the callback dispatcher
//! (`cb_dispatch.rs`) sends without blocking; and CB_NULL and a lone CB_SEQUENCE on
//! slot 0, which block their caller (tests and tools; never a worker).

use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use ringnfs_proto::nfs4::ops::{
    CbGetattrArgs, CbGetattrAttrs, CbOffloadArgs, CbRecallArgs, CbSequenceArgs, CbSequenceResOk,
    Xdr,
};
use ringnfs_proto::rpc::{self, message::ReplyFailure};
use ringnfs_proto::xdr::{XdrDecoder, XdrEncoder};
use ringnfs_state::SessionId;
use ringnfs_state::StateManager;
use ringnfs_state::callbacks::{BackChannel, CallbackError, CallbackResult};

use super::consts::{NFS4_CALLBACK_VERSION, NfsStatus, cb_op, status};

pub const CB_NULL: u32 = 0;
pub const CB_COMPOUND: u32 = 1;

/// Send one call on `bc`'s connection; its xid and where its reply will arrive.
pub fn send_record(
    state: &StateManager,
    bc: &BackChannel,
    proc_: u32,
    args: &[u8],
) -> Result<(u32, Receiver<CallbackResult>), CallbackError> {
    let meta = bc.meta.as_ref().ok_or(CallbackError::NoBackChannel)?;
    let (xid, rx) = state.callbacks.register(bc.conn);
    let mut record = Vec::with_capacity(64 + args.len());
    rpc::encode_call(
        &mut record,
        xid,
        bc.program,
        NFS4_CALLBACK_VERSION,
        proc_,
        &bc.cred,
    );
    record.extend_from_slice(args);
    if !meta.control.send_record(bc.conn, record) {
        state.callbacks.cancel(xid);
        return Err(CallbackError::Disconnected);
    }
    Ok((xid, rx))
}

/// Send one call and wait for its reply (on the caller's thread).
fn send(
    state: &StateManager,
    bc: &BackChannel,
    proc_: u32,
    args: &[u8],
    timeout: Duration,
) -> CallbackResult {
    let (xid, rx) = send_record(state, bc, proc_, args)?;
    state.callbacks.wait(xid, &rx, timeout)
}

/// Send CB_NULL on the session's back channel; returns the round-trip time.
pub fn cb_null(
    state: &StateManager,
    sid: &SessionId,
    timeout: Duration,
) -> Result<Duration, CallbackError> {
    let bc = state
        .back_channel(sid, None)
        .ok_or(CallbackError::NoBackChannel)?;
    let t = Instant::now();
    send(state, &bc, CB_NULL, &[], timeout)?;
    Ok(t.elapsed())
}

/// Send CB_COMPOUND { CB_SEQUENCE } on back-channel slot 0 and wait for the answer (for
/// tests: the dispatcher owns the slots while the server runs delegations or copies).
pub fn cb_sequence(
    state: &StateManager,
    sid: &SessionId,
    timeout: Duration,
) -> Result<CbSequenceResOk, CallbackError> {
    let bc = state
        .back_channel(sid, Some(0))
        .ok_or(CallbackError::NoBackChannel)?;
    let body = send(
        state,
        &bc,
        CB_COMPOUND,
        &compound_args(&bc, sid, 1, &[]),
        timeout,
    )?;
    check_compound_reply(&body)
}

/// CB_RECALL (RFC 8881 §20.2), encoded: give a delegation back.
pub fn recall_op(args: &CbRecallArgs<'_>) -> Vec<u8> {
    let mut op = Vec::with_capacity(64);
    op.put_u32(cb_op::CB_RECALL);
    args.encode(&mut op);
    op
}

/// CB_GETATTR (RFC 8881 §20.1) of the size and change attribute of the file `fh`,
/// encoded.
pub fn getattr_op(fh: &[u8]) -> Vec<u8> {
    let mut op = Vec::with_capacity(64);
    op.put_u32(cb_op::CB_GETATTR);
    CbGetattrArgs {
        fh,
        attr_request: CbGetattrAttrs::REQUEST.to_vec(),
    }
    .encode(&mut op);
    op
}

/// CB_OFFLOAD (RFC 7862 §16.1, minor version 2), encoded: an asynchronous COPY ended.
pub fn offload_op(args: &CbOffloadArgs<'_>) -> Vec<u8> {
    let mut op = Vec::with_capacity(128);
    op.put_u32(cb_op::CB_OFFLOAD);
    args.encode(&mut op);
    op
}

/// CB_COMPOUND4args of CB_SEQUENCE (on `bc`'s slot and sequence id) and `op` (none
/// when empty), in the session's minor version, at least `min_minor`.
pub fn compound_args(bc: &BackChannel, sid: &SessionId, min_minor: u32, op: &[u8]) -> Vec<u8> {
    let mut args = Vec::with_capacity(64 + op.len());
    args.put_opaque(b""); // tag
    args.put_u32(bc.minor.max(min_minor));
    args.put_u32(0); // callback_ident (unused from 4.1 on)
    args.put_u32(1 + u32::from(!op.is_empty()));
    args.put_u32(cb_op::CB_SEQUENCE);
    CbSequenceArgs {
        sessionid: *sid,
        sequenceid: bc.seqid,
        slotid: bc.slot,
        highest_slotid: bc.slots.saturating_sub(1),
        cachethis: false,
        referring_calls: Vec::new(),
    }
    .encode(&mut args);
    args.put_raw(op);
    args
}

/// The CB_SEQUENCE result of a CB_COMPOUND4res whose ops all succeeded.
pub fn check_compound_reply(body: &[u8]) -> Result<CbSequenceResOk, CallbackError> {
    let seq = decode_cb_sequence_reply(body)?;
    // CB_SEQUENCE succeeded; the COMPOUND's own status says whether the rest did.
    let st = NfsStatus::from_code(XdrDecoder::new(body).u32().unwrap_or(0));
    if st != status::NFS4_OK {
        return Err(CallbackError::Status(st));
    }
    Ok(seq)
}

/// The attributes in the reply to CB_COMPOUND { CB_SEQUENCE, CB_GETATTR }.
pub fn getattr_result(body: &[u8]) -> Result<CbGetattrAttrs, CallbackError> {
    let bad = |_| CallbackError::Rejected("undecodable CB_GETATTR result".into());
    let mut d = XdrDecoder::new(body);
    // CB_COMPOUND4res: status, tag, count; the CB_SEQUENCE result; then CB_GETATTR's.
    d.u32().map_err(bad)?;
    d.opaque(1024).map_err(bad)?;
    d.u32().map_err(bad)?;
    d.u32().map_err(bad)?;
    d.u32().map_err(bad)?;
    CbSequenceResOk::decode(&mut d).map_err(bad)?;
    if d.u32().map_err(bad)? != cb_op::CB_GETATTR {
        return Err(CallbackError::Rejected("CB_GETATTR result missing".into()));
    }
    let st = NfsStatus::from_code(d.u32().map_err(bad)?);
    if st != status::NFS4_OK {
        return Err(CallbackError::Status(st));
    }
    CbGetattrAttrs::decode(&mut d).map_err(bad)
}

fn decode_cb_sequence_reply(body: &[u8]) -> Result<CbSequenceResOk, CallbackError> {
    let bad = |_| CallbackError::Rejected("undecodable CB_COMPOUND reply".into());
    let mut d = XdrDecoder::new(body);
    let st = NfsStatus::from_code(d.u32().map_err(bad)?);
    let _tag = d.opaque(1024).map_err(bad)?;
    let n = d.u32().map_err(bad)?;
    if n == 0 {
        return Err(CallbackError::Status(st));
    }
    let opnum = d.u32().map_err(bad)?;
    let op_status = NfsStatus::from_code(d.u32().map_err(bad)?);
    if opnum != cb_op::CB_SEQUENCE {
        return Err(CallbackError::Rejected(format!(
            "unexpected op {opnum} in reply"
        )));
    }
    if op_status != status::NFS4_OK {
        return Err(CallbackError::Status(op_status));
    }
    CbSequenceResOk::decode(&mut d).map_err(bad)
}

/// Turn an RPC reply failure into a callback error.
pub fn reply_failure(f: ReplyFailure) -> CallbackError {
    CallbackError::Rejected(format!("{f:?}"))
}
