//! The client side of the back channel: RPC calls the server sends on our connections
//! (CB_NULL, CB_COMPOUND with CB_SEQUENCE, RFC 8881 §20).

use std::collections::HashMap;

use parking_lot::Mutex;

use super::ops::SessionId;
use super::ops::wire::{
    CbGetattrArgs, CbGetattrAttrs, CbOffloadArgs, CbRecallArgs, CbSequenceResOk, Xdr,
};
use ringnfs_proto::nfs4::consts::{
    NFS4_CALLBACK_VERSION, NFS4_OPAQUE_LIMIT, PROC_COMPOUND, PROC_NULL, cb_op, status,
};
use ringnfs_proto::rpc::message::RPC_VERSION;
use ringnfs_proto::rpc::{
    AcceptStat, CallHeader, encode_accepted, encode_rejected_auth, encode_rpc_mismatch,
};
use ringnfs_proto::xdr::{XdrDecoder, XdrEncoder, XdrError};

/// The program number the client announces in CREATE_SESSION by default.
pub const DEFAULT_CB_PROGRAM: u32 = 0x4000_0000;

/// Callback operation numbers RFC 8881 and RFC 7862 define (CB_GETATTR = 3 ...
/// CB_OFFLOAD = 15); `consts::cb_op` only names the ones the server sends.
const CB_OP_FIRST: u32 = 3;
const CB_OP_LAST: u32 = 15;

/// What a handler answers to one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackReply {
    /// Accepted, SUCCESS, followed by these result bytes.
    Success(Vec<u8>),
    /// Accepted with a failure accept_stat.
    Failed(AcceptStat),
    /// Send nothing (e.g. to simulate a dead client).
    Drop,
}

/// Answers RPC calls that arrive from the server on a client connection. Called on the
/// connection's reader thread: keep it short.
pub trait CallbackHandler: Send + Sync {
    fn handle(&self, call: &CallHeader<'_>) -> CallbackReply;
}

/// Encode the RPC reply record (no record mark) for `call`, or None to send nothing.
pub fn answer_call(handler: &dyn CallbackHandler, call: &CallHeader<'_>) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    if call.rpcvers != RPC_VERSION {
        encode_rpc_mismatch(&mut out, call.xid);
        return Some(out);
    }
    if let Err(e) = &call.cred {
        encode_rejected_auth(&mut out, call.xid, e.auth_stat());
        return Some(out);
    }
    match handler.handle(call) {
        CallbackReply::Success(results) => {
            encode_accepted(&mut out, call.xid, AcceptStat::Success);
            out.put_raw(&results);
        }
        CallbackReply::Failed(stat) => encode_accepted(&mut out, call.xid, stat),
        CallbackReply::Drop => return None,
    }
    Some(out)
}

/// CB_SEQUENCE4args as received (the server encodes it from the same type).
pub use ringnfs_proto::nfs4::ops::CbSequenceArgs;

/// What the default handler has seen, for tests to assert on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackStats {
    pub null_calls: u64,
    pub compound_calls: u64,
    /// Operations received, by callback opnum (including unknown ones).
    pub ops: HashMap<u32, u64>,
    pub last_sessionid: Option<SessionId>,
    pub last_sequence: Option<CbSequenceArgs>,
    pub last_callback_ident: Option<u32>,
    /// Calls refused at the RPC level (wrong program/version/procedure, garbage).
    pub rejected: u64,
    /// CB_OFFLOADs received, in order.
    pub offloads: Vec<CbOffload>,
    /// CB_RECALLs received, in order: (delegation stateid, filehandle).
    pub recalls: Vec<(ringnfs_proto::stateid::Stateid, Vec<u8>)>,
    /// CB_GETATTRs received, in order: the filehandles.
    pub getattrs: Vec<Vec<u8>>,
    /// The credential of the last CB_COMPOUND.
    pub last_cred: Option<ringnfs_proto::rpc::Credential>,
}

/// One CB_OFFLOAD: an asynchronous COPY to `fh` ended with this outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CbOffload {
    pub fh: Vec<u8>,
    pub stateid: ringnfs_proto::stateid::Stateid,
    pub result: Result<
        ringnfs_proto::nfs4::ops::WriteResponse,
        (ringnfs_proto::nfs4::consts::NfsStatus, u64),
    >,
}

/// Answers CB_NULL, and CB_COMPOUND that holds CB_SEQUENCE with a CB_SEQUENCE4resok
/// echoing the request; other operations fail (NOTSUPP for defined ones,
/// CB_ILLEGAL/NFS4ERR_OP_ILLEGAL for unknown numbers).
#[derive(Debug)]
pub struct DefaultCallbackHandler {
    cb_program: u32,
    stats: Mutex<CallbackStats>,
    /// What CB_GETATTR answers for a file (change attribute, size), as a client with
    /// cached writes under a write delegation would; files not listed get
    /// NFS4ERR_BADHANDLE.
    cached_attrs: Mutex<HashMap<Vec<u8>, (u64, u64)>>,
}

impl Default for DefaultCallbackHandler {
    fn default() -> Self {
        Self::new(DEFAULT_CB_PROGRAM)
    }
}

impl DefaultCallbackHandler {
    pub fn new(cb_program: u32) -> Self {
        Self {
            cb_program,
            stats: Mutex::new(CallbackStats::default()),
            cached_attrs: Mutex::new(HashMap::new()),
        }
    }

    /// Answer CB_GETATTR for `fh` with this change attribute and size.
    pub fn set_cached_attrs(&self, fh: &[u8], change: u64, size: u64) {
        self.cached_attrs.lock().insert(fh.to_vec(), (change, size));
    }

    pub fn stats(&self) -> CallbackStats {
        self.stats.lock().clone()
    }

    /// How many operations `opnum` arrived so far.
    pub fn op_count(&self, opnum: u32) -> u64 {
        self.stats.lock().ops.get(&opnum).copied().unwrap_or(0)
    }

    fn compound(&self, args: &[u8]) -> Result<Vec<u8>, XdrError> {
        let mut d = XdrDecoder::new(args);
        let tag = d.opaque(NFS4_OPAQUE_LIMIT)?;
        let minorversion = d.u32()?;
        let callback_ident = d.u32()?;
        let n = d.array_len(1024, 4)?;
        let mut stats = self.stats.lock();
        stats.compound_calls += 1;
        stats.last_callback_ident = Some(callback_ident);

        let mut res = Vec::with_capacity(64);
        let mut status = status::NFS4_OK;
        let mut count = 0u32;
        if !(1..=2).contains(&minorversion) {
            status = status::NFS4ERR_MINOR_VERS_MISMATCH;
        } else {
            for i in 0..n {
                let opnum = d.u32()?;
                *stats.ops.entry(opnum).or_default() += 1;
                count += 1;
                if opnum == cb_op::CB_SEQUENCE {
                    if i != 0 {
                        status = status::NFS4ERR_SEQUENCE_POS;
                    } else {
                        match CbSequenceArgs::decode(&mut d) {
                            Ok(a) => {
                                res.put_u32(opnum);
                                res.put_u32(status::NFS4_OK.code());
                                CbSequenceResOk {
                                    sessionid: a.sessionid,
                                    sequenceid: a.sequenceid,
                                    slotid: a.slotid,
                                    highest_slotid: a.highest_slotid,
                                    // We are happy with the slots the server uses.
                                    target_highest_slotid: a.highest_slotid,
                                }
                                .encode(&mut res);
                                stats.last_sessionid = Some(a.sessionid);
                                stats.last_sequence = Some(a);
                                continue;
                            }
                            Err(_) => status = status::NFS4ERR_BADXDR,
                        }
                    }
                    res.put_u32(opnum);
                } else if opnum == cb_op::CB_RECALL && i > 0 {
                    // Give a delegation back: noted; the caller returns it (DELEGRETURN).
                    match CbRecallArgs::decode(&mut d) {
                        Ok(a) => {
                            stats.recalls.push((a.stateid, a.fh.to_vec()));
                            res.put_u32(opnum);
                            res.put_u32(status::NFS4_OK.code());
                            continue;
                        }
                        Err(_) => status = status::NFS4ERR_BADXDR,
                    }
                    res.put_u32(opnum);
                } else if opnum == cb_op::CB_GETATTR && i > 0 {
                    // What we know of a file we hold a write delegation of.
                    match CbGetattrArgs::decode(&mut d) {
                        Ok(a) => {
                            stats.getattrs.push(a.fh.to_vec());
                            res.put_u32(opnum);
                            match self.cached_attrs.lock().get(a.fh) {
                                Some(&(change, size)) => {
                                    res.put_u32(status::NFS4_OK.code());
                                    CbGetattrAttrs {
                                        change: Some(change),
                                        size: Some(size),
                                    }
                                    .encode(&mut res);
                                    continue;
                                }
                                None => status = status::NFS4ERR_BADHANDLE,
                            }
                        }
                        Err(_) => {
                            status = status::NFS4ERR_BADXDR;
                            res.put_u32(opnum);
                        }
                    }
                } else if opnum == cb_op::CB_OFFLOAD && minorversion >= 2 && i > 0 {
                    // An asynchronous COPY ended: note its outcome and say thanks.
                    match CbOffloadArgs::decode(&mut d) {
                        Ok(a) => {
                            stats.offloads.push(CbOffload {
                                fh: a.fh.to_vec(),
                                stateid: a.stateid,
                                result: a.result,
                            });
                            res.put_u32(opnum);
                            res.put_u32(status::NFS4_OK.code());
                            continue;
                        }
                        Err(_) => status = status::NFS4ERR_BADXDR,
                    }
                    res.put_u32(opnum);
                } else if (CB_OP_FIRST..=CB_OP_LAST).contains(&opnum) {
                    status = if i == 0 {
                        status::NFS4ERR_OP_NOT_IN_SESSION
                    } else {
                        status::NFS4ERR_NOTSUPP
                    };
                    res.put_u32(opnum);
                } else {
                    status = status::NFS4ERR_OP_ILLEGAL;
                    res.put_u32(cb_op::CB_ILLEGAL);
                }
                res.put_u32(status.code());
                break;
            }
        }
        drop(stats);
        let mut out = Vec::with_capacity(res.len() + tag.len() + 16);
        out.put_u32(status.code());
        out.put_opaque(tag);
        out.put_u32(count);
        out.put_raw(&res);
        Ok(out)
    }
}

impl CallbackHandler for DefaultCallbackHandler {
    fn handle(&self, call: &CallHeader<'_>) -> CallbackReply {
        if call.prog != self.cb_program {
            self.stats.lock().rejected += 1;
            return CallbackReply::Failed(AcceptStat::ProgUnavail);
        }
        if call.vers != NFS4_CALLBACK_VERSION {
            self.stats.lock().rejected += 1;
            return CallbackReply::Failed(AcceptStat::ProgMismatch(
                NFS4_CALLBACK_VERSION,
                NFS4_CALLBACK_VERSION,
            ));
        }
        match call.proc_ {
            PROC_NULL => {
                self.stats.lock().null_calls += 1;
                CallbackReply::Success(Vec::new())
            }
            PROC_COMPOUND => {
                self.stats.lock().last_cred = call.cred.clone().ok();
                match self.compound(call.args) {
                    Ok(res) => CallbackReply::Success(res),
                    Err(_) => {
                        self.stats.lock().rejected += 1;
                        CallbackReply::Failed(AcceptStat::GarbageArgs)
                    }
                }
            }
            _ => {
                self.stats.lock().rejected += 1;
                CallbackReply::Failed(AcceptStat::ProcUnavail)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringnfs_proto::nfs4::consts::CB_PROC_COMPOUND;
    use ringnfs_proto::rpc::{Credential, RpcMessage, decode_message, encode_call};

    fn call_record(prog: u32, proc_: u32, args: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_call(&mut v, 0x1234, prog, 1, proc_, &Credential::None);
        v.extend_from_slice(args);
        v
    }

    fn answer(h: &DefaultCallbackHandler, rec: &[u8]) -> Vec<u8> {
        match decode_message(rec).unwrap() {
            RpcMessage::Call(c) => answer_call(h, &c).unwrap(),
            _ => panic!("not a call"),
        }
    }

    /// Reply header for an accepted SUCCESS reply: xid, REPLY, MSG_ACCEPTED, verf, SUCCESS.
    fn success_header(xid: u32) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [xid, 1, 0, 0, 0, 0] {
            v.put_u32(w);
        }
        v
    }

    fn cb_compound(ops: impl FnOnce(&mut Vec<u8>), n: u32, minor: u32) -> Vec<u8> {
        let mut a = Vec::new();
        a.put_opaque(b"cb");
        a.put_u32(minor);
        a.put_u32(77);
        a.put_u32(n);
        ops(&mut a);
        a
    }

    fn cb_sequence_args(a: &mut Vec<u8>, sid: &SessionId) {
        a.put_u32(cb_op::CB_SEQUENCE);
        a.put_fixed(&sid.0);
        a.put_u32(4); // sequenceid
        a.put_u32(0); // slotid
        a.put_u32(0); // highest
        a.put_bool(false);
        a.put_u32(1); // one referring call list
        a.put_fixed(&sid.0);
        a.put_u32(1);
        a.put_u32(9);
        a.put_u32(2);
    }

    #[test]
    fn cb_null_answered() {
        let h = DefaultCallbackHandler::default();
        let rep = answer(&h, &call_record(DEFAULT_CB_PROGRAM, PROC_NULL, &[]));
        assert_eq!(rep, success_header(0x1234));
        assert_eq!(h.stats().null_calls, 1);
    }

    #[test]
    fn cb_sequence_echoed() {
        let h = DefaultCallbackHandler::default();
        let sid = SessionId([0xC5u8; 16]);
        let args = cb_compound(|a| cb_sequence_args(a, &sid), 1, 1);
        let rep = answer(
            &h,
            &call_record(DEFAULT_CB_PROGRAM, CB_PROC_COMPOUND, &args),
        );
        let mut want = success_header(0x1234);
        want.put_u32(0); // status
        want.put_opaque(b"cb");
        want.put_u32(1);
        want.put_u32(cb_op::CB_SEQUENCE);
        want.put_u32(0);
        want.put_fixed(&sid.0);
        for w in [4, 0, 0, 0] {
            want.put_u32(w);
        }
        assert_eq!(rep, want);
        let st = h.stats();
        assert_eq!(st.compound_calls, 1);
        assert_eq!(st.last_sessionid, Some(sid));
        assert_eq!(st.last_callback_ident, Some(77));
        assert_eq!(
            st.last_sequence.unwrap().referring_calls,
            vec![(sid, vec![(9, 2)])]
        );
        assert_eq!(h.op_count(cb_op::CB_SEQUENCE), 1);
    }

    #[test]
    fn unknown_op_is_illegal_and_stops() {
        let h = DefaultCallbackHandler::default();
        let sid = SessionId([1u8; 16]);
        let args = cb_compound(
            |a| {
                cb_sequence_args(a, &sid);
                a.put_u32(5000);
                a.put_u32(cb_op::CB_SEQUENCE); // never reached
            },
            3,
            1,
        );
        let rep = answer(
            &h,
            &call_record(DEFAULT_CB_PROGRAM, CB_PROC_COMPOUND, &args),
        );
        let mut d = XdrDecoder::new(&rep);
        d.skip(24).unwrap();
        assert_eq!(d.u32().unwrap(), status::NFS4ERR_OP_ILLEGAL.code());
        assert_eq!(d.opaque(16).unwrap(), b"cb");
        assert_eq!(d.u32().unwrap(), 2);
        assert_eq!(d.u32().unwrap(), cb_op::CB_SEQUENCE);
        assert_eq!(d.u32().unwrap(), 0);
        d.skip(32).unwrap();
        assert_eq!(d.u32().unwrap(), cb_op::CB_ILLEGAL);
        assert_eq!(d.u32().unwrap(), status::NFS4ERR_OP_ILLEGAL.code());
        assert_eq!(d.remaining(), 0);
        assert_eq!(h.op_count(5000), 1);
    }

    #[test]
    fn missing_sequence_and_minor_version() {
        let h = DefaultCallbackHandler::default();
        // CB_RECALL (4) first: not in a session.
        let args = cb_compound(|a| a.put_u32(4), 1, 1);
        let rep = answer(
            &h,
            &call_record(DEFAULT_CB_PROGRAM, CB_PROC_COMPOUND, &args),
        );
        let mut d = XdrDecoder::new(&rep[24..]);
        assert_eq!(d.u32().unwrap(), status::NFS4ERR_OP_NOT_IN_SESSION.code());
        d.opaque(16).unwrap();
        assert_eq!(d.u32().unwrap(), 1);
        assert_eq!(d.u32().unwrap(), 4);
        assert_eq!(d.u32().unwrap(), status::NFS4ERR_OP_NOT_IN_SESSION.code());

        let args = cb_compound(|_| {}, 0, 0);
        let rep = answer(
            &h,
            &call_record(DEFAULT_CB_PROGRAM, CB_PROC_COMPOUND, &args),
        );
        let mut d = XdrDecoder::new(&rep[24..]);
        assert_eq!(d.u32().unwrap(), status::NFS4ERR_MINOR_VERS_MISMATCH.code());
        d.opaque(16).unwrap();
        assert_eq!(d.u32().unwrap(), 0);
    }

    #[test]
    fn rpc_level_refusals() {
        let h = DefaultCallbackHandler::default();
        // Wrong program: PROG_UNAVAIL (accept_stat 1).
        let rep = answer(&h, &call_record(0x4000_0001, PROC_NULL, &[]));
        assert_eq!(&rep[20..24], &1u32.to_be_bytes());
        // Unknown procedure: PROC_UNAVAIL (3).
        let rep = answer(&h, &call_record(DEFAULT_CB_PROGRAM, 7, &[]));
        assert_eq!(&rep[20..24], &3u32.to_be_bytes());
        // Truncated CB_COMPOUND: GARBAGE_ARGS (4).
        let rep = answer(
            &h,
            &call_record(DEFAULT_CB_PROGRAM, CB_PROC_COMPOUND, &[0, 0]),
        );
        assert_eq!(&rep[20..24], &4u32.to_be_bytes());
        assert_eq!(h.stats().rejected, 3);
    }
}
