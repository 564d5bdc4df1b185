//! RPC message headers: decoding calls and replies, encoding replies and calls.

use super::auth::{AUTH_NONE, AuthError, Credential, MAX_AUTH_BYTES, decode_credential};
use crate::xdr::{XdrDecoder, XdrEncoder, XdrError};

pub const RPC_VERSION: u32 = 2;
const CALL: u32 = 0;
const REPLY: u32 = 1;
const MSG_ACCEPTED: u32 = 0;
const MSG_DENIED: u32 = 1;
const RPC_MISMATCH: u32 = 0;
const AUTH_ERROR: u32 = 1;

/// accept_stat of an accepted reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptStat {
    Success,
    ProgUnavail,
    /// Supported versions, low and high.
    ProgMismatch(u32, u32),
    ProcUnavail,
    GarbageArgs,
    SystemErr,
}

impl AcceptStat {
    fn code(self) -> u32 {
        match self {
            AcceptStat::Success => 0,
            AcceptStat::ProgUnavail => 1,
            AcceptStat::ProgMismatch(..) => 2,
            AcceptStat::ProcUnavail => 3,
            AcceptStat::GarbageArgs => 4,
            AcceptStat::SystemErr => 5,
        }
    }
}

/// A decoded call header; `args` borrows the rest of the record.
#[derive(Debug)]
pub struct CallHeader<'a> {
    pub xid: u32,
    pub rpcvers: u32,
    pub prog: u32,
    pub vers: u32,
    pub proc_: u32,
    /// The credential's flavor as sent (AUTH_TLS, say, which is no identity).
    pub cred_flavor: u32,
    /// The credential's body as sent (an RPCSEC_GSS credential is decoded by whoever
    /// holds the contexts).
    pub cred_body: &'a [u8],
    pub cred: Result<Credential, AuthError>,
    /// The call's verifier (flavor, body).
    pub verf_flavor: u32,
    pub verf: &'a [u8],
    /// The header from the xid through the credential: what an RPCSEC_GSS verifier
    /// checksums (RFC 2203 §5.3.1).
    pub header: &'a [u8],
    pub args: &'a [u8],
}

/// A decoded reply header (for calls we sent: callbacks on the server, everything on the client).
#[derive(Debug)]
pub struct ReplyHeader<'a> {
    pub xid: u32,
    /// The verifier of an accepted reply (flavor, body); AUTH_NONE and empty otherwise.
    pub verf_flavor: u32,
    pub verf: &'a [u8],
    /// `Ok(results)` for an accepted SUCCESS reply; otherwise the failure.
    pub body: Result<&'a [u8], ReplyFailure>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyFailure {
    Accepted(AcceptStat),
    RpcMismatch(u32, u32),
    AuthError(u32),
}

#[derive(Debug)]
pub enum RpcMessage<'a> {
    Call(CallHeader<'a>),
    Reply(ReplyHeader<'a>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MsgError {
    /// Not even an xid: nothing can be answered.
    #[error("RPC message too short")]
    NoXid,
    /// The call header after the xid is malformed; answer GARBAGE_ARGS with this xid.
    #[error("malformed RPC header (xid {0:#x})")]
    Garbage(u32),
    /// A malformed reply: never answered (a reply to a reply would make no sense).
    #[error("malformed RPC reply (xid {0:#x})")]
    BadReply(u32),
}

/// Decode one RPC record.
pub fn decode_message(record: &[u8]) -> Result<RpcMessage<'_>, MsgError> {
    let mut d = XdrDecoder::new(record);
    let xid = d.u32().map_err(|_| MsgError::NoXid)?;
    let garbage = |_: XdrError| MsgError::Garbage(xid);
    match d.u32().map_err(garbage)? {
        CALL => {
            let rpcvers = d.u32().map_err(garbage)?;
            let prog = d.u32().map_err(garbage)?;
            let vers = d.u32().map_err(garbage)?;
            let proc_ = d.u32().map_err(garbage)?;
            let flavor = d.u32().map_err(garbage)?;
            let body = d.opaque(MAX_AUTH_BYTES).map_err(garbage)?;
            let header = &record[..record.len() - d.rest().len()];
            let verf_flavor = d.u32().map_err(garbage)?;
            let verf = d.opaque(MAX_AUTH_BYTES).map_err(garbage)?;
            Ok(RpcMessage::Call(CallHeader {
                xid,
                rpcvers,
                prog,
                vers,
                proc_,
                cred_flavor: flavor,
                cred_body: body,
                cred: decode_credential(flavor, body),
                verf_flavor,
                verf,
                header,
                args: d.rest(),
            }))
        }
        REPLY => {
            let garbage = |_: XdrError| MsgError::BadReply(xid);
            let (mut verf_flavor, mut verf) = (AUTH_NONE, &[][..]);
            let body = match d.u32().map_err(garbage)? {
                MSG_ACCEPTED => {
                    verf_flavor = d.u32().map_err(garbage)?;
                    verf = d.opaque(MAX_AUTH_BYTES).map_err(garbage)?;
                    match d.u32().map_err(garbage)? {
                        0 => Ok(d.rest()),
                        1 => Err(ReplyFailure::Accepted(AcceptStat::ProgUnavail)),
                        2 => {
                            let lo = d.u32().map_err(garbage)?;
                            let hi = d.u32().map_err(garbage)?;
                            Err(ReplyFailure::Accepted(AcceptStat::ProgMismatch(lo, hi)))
                        }
                        3 => Err(ReplyFailure::Accepted(AcceptStat::ProcUnavail)),
                        4 => Err(ReplyFailure::Accepted(AcceptStat::GarbageArgs)),
                        _ => Err(ReplyFailure::Accepted(AcceptStat::SystemErr)),
                    }
                }
                MSG_DENIED => match d.u32().map_err(garbage)? {
                    RPC_MISMATCH => {
                        let lo = d.u32().map_err(garbage)?;
                        let hi = d.u32().map_err(garbage)?;
                        Err(ReplyFailure::RpcMismatch(lo, hi))
                    }
                    AUTH_ERROR => Err(ReplyFailure::AuthError(d.u32().map_err(garbage)?)),
                    _ => return Err(MsgError::BadReply(xid)),
                },
                _ => return Err(MsgError::BadReply(xid)),
            };
            Ok(RpcMessage::Reply(ReplyHeader {
                xid,
                verf_flavor,
                verf,
                body,
            }))
        }
        _ => Err(MsgError::Garbage(xid)),
    }
}

/// Encode an accepted reply header; for `Success` the caller appends the results.
/// Bytes [`encode_accepted`] writes for every status but PROG_MISMATCH: xid, msg_type,
/// reply_stat, an AUTH_NONE verifier (flavor, length) and accept_stat.
pub const ACCEPTED_REPLY_HEADER_LEN: usize = 6 * 4;

pub fn encode_accepted(out: &mut Vec<u8>, xid: u32, stat: AcceptStat) {
    encode_accepted_verf(out, xid, AUTH_NONE, &[], stat);
}

/// [`encode_accepted`] with the verifier `flavor` and `body` (the "STARTTLS" answer to
/// an AUTH_TLS probe, an RPCSEC_GSS checksum).
pub fn encode_accepted_verf(
    out: &mut Vec<u8>,
    xid: u32,
    flavor: u32,
    body: &[u8],
    stat: AcceptStat,
) {
    out.put_u32(xid);
    out.put_u32(REPLY);
    out.put_u32(MSG_ACCEPTED);
    out.put_u32(flavor);
    out.put_opaque(body);
    out.put_u32(stat.code());
    if let AcceptStat::ProgMismatch(lo, hi) = stat {
        out.put_u32(lo);
        out.put_u32(hi);
    }
}

/// MSG_DENIED / RPC_MISMATCH: we speak RPC version 2 only.
pub fn encode_rpc_mismatch(out: &mut Vec<u8>, xid: u32) {
    out.put_u32(xid);
    out.put_u32(REPLY);
    out.put_u32(MSG_DENIED);
    out.put_u32(RPC_MISMATCH);
    out.put_u32(RPC_VERSION);
    out.put_u32(RPC_VERSION);
}

/// MSG_DENIED / AUTH_ERROR with the given auth_stat.
pub fn encode_rejected_auth(out: &mut Vec<u8>, xid: u32, auth_stat: u32) {
    out.put_u32(xid);
    out.put_u32(REPLY);
    out.put_u32(MSG_DENIED);
    out.put_u32(AUTH_ERROR);
    out.put_u32(auth_stat);
}

/// Encode a call header with a credential and verifier given as bytes (flavor, body):
/// an RPCSEC_GSS call, whose verifier checksums the header up to the credential. The
/// caller appends the arguments.
pub fn encode_call_raw(
    out: &mut Vec<u8>,
    xid: u32,
    (prog, vers, proc_): (u32, u32, u32),
    (cred_flavor, cred): (u32, &[u8]),
    verf: impl FnOnce(&[u8]) -> (u32, Vec<u8>),
) {
    let start = out.len();
    put_call_head(out, xid, (prog, vers, proc_));
    out.put_u32(cred_flavor);
    out.put_opaque(cred);
    let (flavor, body) = verf(&out[start..]);
    out.put_u32(flavor);
    out.put_opaque(&body);
}

/// A call's words up to its credential: xid, CALL, the RPC version, the procedure.
fn put_call_head(out: &mut Vec<u8>, xid: u32, (prog, vers, proc_): (u32, u32, u32)) {
    for w in [xid, CALL, RPC_VERSION, prog, vers, proc_] {
        out.put_u32(w);
    }
}

/// Encode a call header; the caller appends the arguments.
pub fn encode_call(
    out: &mut Vec<u8>,
    xid: u32,
    prog: u32,
    vers: u32,
    proc_: u32,
    cred: &Credential,
) {
    put_call_head(out, xid, (prog, vers, proc_));
    cred.encode(out);
    out.put_u32(0); // verifier AUTH_NONE
    out.put_u32(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_round_trip() {
        let mut v = Vec::new();
        encode_call(&mut v, 9, 100003, 4, 1, &Credential::None);
        v.extend_from_slice(&[1, 2, 3, 4]);
        match decode_message(&v).unwrap() {
            RpcMessage::Call(c) => {
                assert_eq!((c.xid, c.prog, c.vers, c.proc_), (9, 100003, 4, 1));
                assert_eq!(c.cred, Ok(Credential::None));
                assert_eq!(c.args, &[1, 2, 3, 4]);
            }
            other => panic!("expected a call, got {other:?}"),
        }
    }

    #[test]
    fn raw_call_keeps_header_credential_and_verifier() {
        let mut v = Vec::new();
        let mut seen = Vec::new();
        encode_call_raw(&mut v, 5, (100003, 4, 1), (6, b"cred-body"), |h| {
            seen = h.to_vec();
            (6, b"mic".to_vec())
        });
        v.extend_from_slice(&[9, 9, 9, 9]);
        match decode_message(&v).unwrap() {
            RpcMessage::Call(c) => {
                assert_eq!(c.header, &seen[..], "the verifier checksums this");
                assert_eq!((c.cred_flavor, c.cred_body), (6, &b"cred-body"[..]));
                assert_eq!((c.verf_flavor, c.verf), (6, &b"mic"[..]));
                assert_eq!(c.args, &[9, 9, 9, 9]);
            }
            other => panic!("expected a call, got {other:?}"),
        }
        let mut r = Vec::new();
        encode_accepted_verf(&mut r, 5, 6, b"reply-mic", AcceptStat::Success);
        match decode_message(&r).unwrap() {
            RpcMessage::Reply(h) => {
                assert_eq!((h.verf_flavor, h.verf), (6, &b"reply-mic"[..]));
                assert_eq!(h.body, Ok(&[][..]));
            }
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn reply_round_trip_and_garbage() {
        let mut v = Vec::new();
        encode_accepted(&mut v, 7, AcceptStat::ProgMismatch(4, 4));
        match decode_message(&v).unwrap() {
            RpcMessage::Reply(r) => assert_eq!(
                r.body,
                Err(ReplyFailure::Accepted(AcceptStat::ProgMismatch(4, 4)))
            ),
            other => panic!("expected a reply, got {other:?}"),
        }
        assert_eq!(decode_message(&[0, 0]).unwrap_err(), MsgError::NoXid);
        assert_eq!(
            decode_message(&[0, 0, 0, 5, 0, 0, 0, 9]).unwrap_err(),
            MsgError::Garbage(5)
        );
    }
}
