//! Channel negotiation in CREATE_SESSION (RFC 8881 §18.36.3): what the server grants
//! for each channel attribute, and the smallest channels it accepts.
//!
//! A fore channel must carry a COMPOUND holding only SEQUENCE and its reply; a back
//! channel must carry the callbacks this server sends (CB_SEQUENCE + CB_RECALL) and
//! their replies. Anything smaller gets NFS4ERR_TOOSMALL. Above that the server grants
//! the smaller of the client's number and its own limit, and never more than the client
//! asked for: a client that can cache only 10 bytes of reply gets 10, and then a
//! SEQUENCE with `sa_cachethis` answers NFS4ERR_REP_TOO_BIG_TO_CACHE.
//!
//! Sizes count the whole RPC message without record marking, as §18.36.3 defines them.

use ringnfs_proto::nfs4::consts::{NFS4_FHSIZE, NfsStatus, status};
use ringnfs_proto::rpc::Credential;
use ringnfs_proto::rpc::message::ACCEPTED_REPLY_HEADER_LEN;
use ringnfs_proto::xdr::pad4;

use super::SessionLimits;
use super::session::ChannelAttrs;

/// RPC call header up to the credential (xid, msg_type, rpcvers, prog, vers, proc).
const CALL_HEADER_FIXED: u32 = 6 * 4;
/// An AUTH_NONE credential or verifier (flavor, empty body).
const AUTH_NONE_LEN: u32 = 8;

/// COMPOUND4args with an empty tag and one SEQUENCE: tag, minorversion, numops, opnum,
/// sessionid, sequenceid, slotid, highest_slotid, cachethis.
const SEQUENCE_ONLY_ARGS: u32 = 4 + 4 + 4 + 4 + 16 + 4 * 4;
/// COMPOUND4res with an empty tag and a SEQUENCE4resok: status, tag, count, opnum,
/// status, sessionid, sequenceid, slotid, highest_slotid, target_highest_slotid,
/// status_flags.
const SEQUENCE_ONLY_RES: u32 = 4 + 4 + 4 + 4 + 4 + 16 + 5 * 4;

/// The smallest fore-channel request: a SEQUENCE-only COMPOUND with AUTH_NONE.
pub const MIN_FORE_REQUEST: u32 = CALL_HEADER_FIXED + 2 * AUTH_NONE_LEN + SEQUENCE_ONLY_ARGS;
/// The smallest fore-channel reply: the answer to that COMPOUND.
pub const MIN_FORE_RESPONSE: u32 = ACCEPTED_REPLY_HEADER_LEN as u32 + SEQUENCE_ONLY_RES;

/// CB_COMPOUND4args with an empty tag, CB_SEQUENCE (no referring calls) and CB_RECALL
/// of a file handle as large as NFSv4 allows: tag, minorversion, callback_ident, numops;
/// opnum, sessionid, sequenceid, slotid, highest_slotid, cachethis, referring lists;
/// opnum, stateid, truncate, fh.
const CB_RECALL_ARGS: u32 = 4 * 4 + (4 + 16 + 4 * 4 + 4) + (4 + 16 + 4 + 4 + NFS4_FHSIZE as u32);
/// CB_COMPOUND4res for it: status, tag, count; CB_SEQUENCE4resok (opnum, status,
/// sessionid, four words); CB_RECALL (opnum, status).
const CB_RECALL_RES: u32 = 3 * 4 + (4 + 4 + 16 + 4 * 4) + (4 + 4);
/// CB_SEQUENCE and CB_RECALL.
const CB_MIN_OPS: u32 = 2;

/// Encoded size of an opaque_auth carrying `cred`.
fn auth_len(cred: &Credential) -> u32 {
    match cred {
        // Callbacks go out with AUTH_NONE or AUTH_SYS only (see `Credential::encode`).
        Credential::None | Credential::Gss(_) => AUTH_NONE_LEN,
        Credential::Sys(s) => {
            let body = 4 + 4 + pad4(s.machine_name.len()) + 4 + 4 + 4 + 4 * s.gids.len();
            AUTH_NONE_LEN + body as u32
        }
    }
}

/// The smallest back-channel request: a CB_RECALL as this server sends it with the
/// callback credential the client chose.
pub fn min_back_request(cb_cred: &Credential) -> u32 {
    CALL_HEADER_FIXED + auth_len(cb_cred) + AUTH_NONE_LEN + CB_RECALL_ARGS
}

/// The smallest back-channel reply: the answer to that CB_RECALL.
pub const MIN_BACK_RESPONSE: u32 = ACCEPTED_REPLY_HEADER_LEN as u32 + CB_RECALL_RES;

/// RFC 8881 §2.10.6.4: the error for a reply of `len` bytes on a fore channel that
/// allows `max` bytes, and `max_cached` when the client asked for the reply to be
/// cached; None when it fits.
pub fn reply_too_big(len: usize, max: u32, max_cached: u32, cachethis: bool) -> Option<NfsStatus> {
    if len > max as usize {
        Some(status::NFS4ERR_REP_TOO_BIG)
    } else if cachethis && len > max_cached as usize {
        Some(status::NFS4ERR_REP_TOO_BIG_TO_CACHE)
    } else {
        None
    }
}

/// Negotiate the fore channel: never more than the client asked for nor more than we
/// offer; smaller than a SEQUENCE-only COMPOUND is NFS4ERR_TOOSMALL.
pub fn negotiate_fore(req: &ChannelAttrs, lim: &SessionLimits) -> Result<ChannelAttrs, NfsStatus> {
    if req.maxrequestsize < MIN_FORE_REQUEST || req.maxresponsesize < MIN_FORE_RESPONSE {
        return Err(status::NFS4ERR_TOOSMALL);
    }
    if req.maxrequests == 0 || req.maxoperations == 0 {
        return Err(status::NFS4ERR_INVAL);
    }
    let maxresponsesize = req.maxresponsesize.min(lim.max_response);
    Ok(ChannelAttrs {
        headerpadsize: 0,
        maxrequestsize: req.maxrequestsize.min(lim.max_request),
        maxresponsesize,
        maxresponsesize_cached: req
            .maxresponsesize_cached
            .min(lim.max_response_cached)
            .min(maxresponsesize),
        maxoperations: req.maxoperations.min(lim.max_ops),
        maxrequests: req.maxrequests.min(lim.max_fore_slots),
        rdma_ird: None,
    })
}

/// The back channel carries our callbacks to the client: the client's numbers are its
/// limits; a channel that cannot carry a CB_RECALL is NFS4ERR_TOOSMALL.
pub fn negotiate_back(
    req: &ChannelAttrs,
    cb_cred: &Credential,
    lim: &SessionLimits,
) -> Result<ChannelAttrs, NfsStatus> {
    if req.maxrequestsize < min_back_request(cb_cred)
        || req.maxresponsesize < MIN_BACK_RESPONSE
        || req.maxoperations < CB_MIN_OPS
    {
        return Err(status::NFS4ERR_TOOSMALL);
    }
    if req.maxrequests == 0 {
        return Err(status::NFS4ERR_INVAL);
    }
    Ok(ChannelAttrs {
        headerpadsize: 0,
        maxrequestsize: req.maxrequestsize.min(lim.max_request),
        maxresponsesize: req.maxresponsesize.min(lim.max_response),
        maxresponsesize_cached: req.maxresponsesize_cached,
        maxoperations: req.maxoperations,
        maxrequests: req.maxrequests.min(lim.max_back_slots),
        rdma_ird: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringnfs_proto::rpc::AuthSys;
    use ringnfs_proto::xdr::XdrEncoder;

    fn attrs(req: u32, resp: u32, cached: u32, ops: u32, reqs: u32) -> ChannelAttrs {
        ChannelAttrs {
            maxrequestsize: req,
            maxresponsesize: resp,
            maxresponsesize_cached: cached,
            maxoperations: ops,
            maxrequests: reqs,
            ..Default::default()
        }
    }

    #[test]
    fn fore_clamps_to_our_limits_and_never_raises() {
        let lim = SessionLimits::default();
        let f = negotiate_fore(&attrs(u32::MAX, 4096, 1 << 30, 1000, 1000), &lim).unwrap();
        assert_eq!(f.maxrequestsize, lim.max_request);
        assert_eq!(f.maxresponsesize, 4096);
        // Never more cached than the whole reply may be.
        assert_eq!(f.maxresponsesize_cached, 4096);
        assert_eq!(f.maxoperations, lim.max_ops);
        assert_eq!(f.maxrequests, lim.max_fore_slots);
        // A client that caches little gets exactly that.
        let tiny = negotiate_fore(&attrs(8192, 8192, 10, 8, 8), &lim).unwrap();
        assert_eq!(tiny.maxresponsesize_cached, 10);
    }

    #[test]
    fn fore_accepts_a_sequence_only_channel_and_nothing_smaller() {
        let lim = SessionLimits::default();
        let f = negotiate_fore(&attrs(400, 400, 400, 8, 8), &lim).unwrap();
        assert_eq!((f.maxrequestsize, f.maxresponsesize), (400, 400));
        let min = attrs(MIN_FORE_REQUEST, MIN_FORE_RESPONSE, 0, 1, 1);
        assert!(negotiate_fore(&min, &lim).is_ok());
        let short_req = attrs(MIN_FORE_REQUEST - 1, 8192, 0, 8, 8);
        assert_eq!(
            negotiate_fore(&short_req, &lim),
            Err(status::NFS4ERR_TOOSMALL)
        );
        let short_resp = attrs(8192, MIN_FORE_RESPONSE - 1, 0, 8, 8);
        assert_eq!(
            negotiate_fore(&short_resp, &lim),
            Err(status::NFS4ERR_TOOSMALL)
        );
        let no_slots = attrs(8192, 8192, 0, 8, 0);
        assert_eq!(negotiate_fore(&no_slots, &lim), Err(status::NFS4ERR_INVAL));
    }

    #[test]
    fn minimum_sizes_match_the_encoded_messages() {
        // An accepted reply's header is what encode_accepted writes.
        let mut hdr = Vec::new();
        ringnfs_proto::rpc::encode_accepted(&mut hdr, 7, ringnfs_proto::rpc::AcceptStat::Success);
        assert_eq!(hdr.len(), ACCEPTED_REPLY_HEADER_LEN);
        // A call header with the credential is what encode_call writes.
        let cred = Credential::Sys(AuthSys {
            stamp: 1,
            machine_name: b"client-7".to_vec(),
            uid: 0,
            gid: 0,
            gids: vec![1, 2, 3],
        });
        let mut call = Vec::new();
        ringnfs_proto::rpc::encode_call(&mut call, 1, 0x4000_0000, 1, 1, &cred);
        let mut cred_only = Vec::new();
        cred.encode(&mut cred_only);
        assert_eq!(auth_len(&cred), cred_only.len() as u32);
        assert_eq!(
            call.len() as u32,
            CALL_HEADER_FIXED + auth_len(&cred) + AUTH_NONE_LEN
        );
        let mut none = Vec::new();
        none.put_u32(0);
        none.put_u32(0);
        assert_eq!(auth_len(&Credential::None), none.len() as u32);
    }

    #[test]
    fn back_channel_must_carry_a_recall() {
        let lim = SessionLimits::default();
        let cred = Credential::None;
        let ok = attrs(8192, 8192, 8192, 2, 8);
        assert!(negotiate_back(&ok, &cred, &lim).is_ok());
        // The conformance suite's CSESS29: a 10-byte request limit.
        let tiny = attrs(10, 8192, 8192, 128, 1);
        assert_eq!(
            negotiate_back(&tiny, &cred, &lim),
            Err(status::NFS4ERR_TOOSMALL)
        );
        let one_op = attrs(8192, 8192, 8192, 1, 8);
        assert_eq!(
            negotiate_back(&one_op, &cred, &lim),
            Err(status::NFS4ERR_TOOSMALL)
        );
        let short_reply = attrs(8192, MIN_BACK_RESPONSE - 1, 0, 2, 8);
        assert_eq!(
            negotiate_back(&short_reply, &cred, &lim),
            Err(status::NFS4ERR_TOOSMALL)
        );
        // A longer callback credential needs a larger request limit.
        let sys = Credential::Sys(AuthSys {
            machine_name: vec![b'm'; 200],
            gids: vec![1; 16],
            ..AuthSys::default()
        });
        let just = attrs(min_back_request(&cred), 8192, 0, 2, 1);
        assert!(negotiate_back(&just, &cred, &lim).is_ok());
        assert_eq!(
            negotiate_back(&just, &sys, &lim),
            Err(status::NFS4ERR_TOOSMALL)
        );
    }
}
