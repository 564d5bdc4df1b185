//! Back-channel calls from the server: CB_NULL and CB_COMPOUND with CB_SEQUENCE (and
//! CB_RECALL, CB_GETATTR or CB_OFFLOAD), sent on a connection bound for the back channel and matched
//! with the client's reply on the same TCP stream. Callers block (with a timeout) on
//! their own thread, never a worker's, and take the session's turn first
//! ([`CallbackTurns`]): back-channel slot 0 carries one call at a time.

use ringnfs_state::locks::{CheckInvariants, RankedMutex, rank};

/// How long a helper waits for the client to answer a CB_RECALL or CB_OFFLOAD.
pub const CALLBACK_TIMEOUT: Duration = Duration::from_secs(15);

/// The turn at one session's back-channel slot 0 (see the module documentation).
#[derive(Default)]
pub struct Turn;

impl CheckInvariants for Turn {}

pub type CallbackTurn = RankedMutex<Turn, { rank::CALLBACK_TURN }>;

/// The sessions' turns, kept while someone holds or waits for one.
#[derive(Default)]
pub struct TurnMap(rustc_hash::FxHashMap<SessionId, Arc<CallbackTurn>>);

impl CheckInvariants for TurnMap {}

/// Turns at back-channel slot 0, one per session: a call waits only for the call before
/// it on the same session, so a client that does not answer holds up no other client.
pub struct CallbackTurns(RankedMutex<TurnMap, { rank::CALLBACK_TURNS }>);

impl Default for CallbackTurns {
    fn default() -> Self {
        CallbackTurns(RankedMutex::new(TurnMap::default()))
    }
}

impl CallbackTurns {
    /// The turn of session `sid` (lock it before calling on that session).
    pub fn of(&self, sid: &SessionId) -> Arc<CallbackTurn> {
        let mut m = self.0.lock();
        // Sessions come and go: forget the turns nobody holds or waits for.
        if m.0.len() > 64 {
            m.0.retain(|_, t| Arc::strong_count(t) > 1);
        }
        m.0.entry(*sid)
            .or_insert_with(|| Arc::new(CallbackTurn::new(Turn)))
            .clone()
    }
}

use std::sync::Arc;
use std::time::{Duration, Instant};

use ringnfs_proto::nfs4::ops::{
    CbGetattrArgs, CbGetattrAttrs, CbOffloadArgs, CbRecallArgs, CbSequenceArgs, CbSequenceResOk,
    Xdr,
};
use ringnfs_proto::rpc::{self, message::ReplyFailure};
use ringnfs_proto::xdr::{XdrDecoder, XdrEncoder};
use ringnfs_state::SessionId;
use ringnfs_state::StateManager;
use ringnfs_state::callbacks::{BackChannel, CallbackError};

use super::consts::{NFS4_CALLBACK_VERSION, NfsStatus, cb_op, status};

const CB_NULL: u32 = 0;
const CB_COMPOUND: u32 = 1;

fn send(
    state: &StateManager,
    bc: &BackChannel,
    proc_: u32,
    args: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, CallbackError> {
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
    state.callbacks.wait(xid, &rx, timeout)
}

/// Send CB_NULL on the session's back channel; returns the round-trip time.
pub fn cb_null(
    state: &StateManager,
    sid: &SessionId,
    timeout: Duration,
) -> Result<Duration, CallbackError> {
    let bc = state
        .back_channel(sid, false)
        .ok_or(CallbackError::NoBackChannel)?;
    let t = Instant::now();
    send(state, &bc, CB_NULL, &[], timeout)?;
    Ok(t.elapsed())
}

/// Send CB_COMPOUND { CB_SEQUENCE } on back-channel slot 0.
pub fn cb_sequence(
    state: &StateManager,
    sid: &SessionId,
    timeout: Duration,
) -> Result<CbSequenceResOk, CallbackError> {
    cb_compound(state, sid, 1, None, timeout)
}

/// Send CB_COMPOUND { CB_SEQUENCE, CB_OFFLOAD } (a 4.2 callback: minor version 2) on
/// back-channel slot 0: an asynchronous COPY ended.
pub fn cb_offload(
    state: &StateManager,
    sid: &SessionId,
    args: &CbOffloadArgs<'_>,
    timeout: Duration,
) -> Result<(), CallbackError> {
    let mut op = Vec::with_capacity(128);
    op.put_u32(cb_op::CB_OFFLOAD);
    args.encode(&mut op);
    cb_compound(state, sid, 2, Some(&op), timeout).map(drop)
}

/// Send CB_COMPOUND { CB_SEQUENCE, CB_RECALL } on back-channel slot 0: give a
/// delegation back.
pub fn cb_recall(
    state: &StateManager,
    sid: &SessionId,
    args: &CbRecallArgs<'_>,
    timeout: Duration,
) -> Result<(), CallbackError> {
    let mut op = Vec::with_capacity(64);
    op.put_u32(cb_op::CB_RECALL);
    args.encode(&mut op);
    cb_compound(state, sid, 1, Some(&op), timeout).map(drop)
}

/// Send CB_COMPOUND { CB_SEQUENCE, CB_GETATTR(size, change) } on back-channel slot 0:
/// what the holder of a write delegation knows of the file.
pub fn cb_getattr(
    state: &StateManager,
    sid: &SessionId,
    fh: &[u8],
    timeout: Duration,
) -> Result<CbGetattrAttrs, CallbackError> {
    let mut op = Vec::with_capacity(64);
    op.put_u32(cb_op::CB_GETATTR);
    CbGetattrArgs {
        fh,
        attr_request: CbGetattrAttrs::REQUEST.to_vec(),
    }
    .encode(&mut op);
    let bad = |_| CallbackError::Rejected("undecodable CB_GETATTR result".into());
    let body = cb_compound_body(state, sid, 1, Some(&op), timeout)?;
    let mut d = XdrDecoder::new(&body);
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

/// CB_COMPOUND of CB_SEQUENCE and, if given, one more op (its number and arguments,
/// encoded), in the session's minor version (at least `min_minor`, which the op needs);
/// the CB_SEQUENCE result, once every op succeeded.
fn cb_compound(
    state: &StateManager,
    sid: &SessionId,
    min_minor: u32,
    op: Option<&[u8]>,
    timeout: Duration,
) -> Result<CbSequenceResOk, CallbackError> {
    decode_cb_sequence_reply(&cb_compound_body(state, sid, min_minor, op, timeout)?)
}

/// [`cb_compound`]'s reply body (CB_COMPOUND4res), once CB_SEQUENCE and every op
/// succeeded.
fn cb_compound_body(
    state: &StateManager,
    sid: &SessionId,
    min_minor: u32,
    op: Option<&[u8]>,
    timeout: Duration,
) -> Result<Vec<u8>, CallbackError> {
    let bc = state
        .back_channel(sid, true)
        .ok_or(CallbackError::NoBackChannel)?;
    let mut args = Vec::with_capacity(64);
    args.put_opaque(b""); // tag
    args.put_u32(bc.minor.max(min_minor));
    args.put_u32(0); // callback_ident (unused from 4.1 on)
    args.put_u32(1 + u32::from(op.is_some()));
    args.put_u32(cb_op::CB_SEQUENCE);
    CbSequenceArgs {
        sessionid: *sid,
        sequenceid: bc.seqid,
        slotid: 0,
        highest_slotid: 0,
        cachethis: false,
        referring_calls: Vec::new(),
    }
    .encode(&mut args);
    if let Some(op) = op {
        args.put_raw(op);
    }
    let body = send(state, &bc, CB_COMPOUND, &args, timeout)?;
    decode_cb_sequence_reply(&body)?;
    // CB_SEQUENCE succeeded; the COMPOUND's own status says whether the rest did.
    let st = NfsStatus::from_code(XdrDecoder::new(&body).u32().unwrap_or(0));
    if st != status::NFS4_OK {
        return Err(CallbackError::Status(st));
    }
    Ok(body)
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
