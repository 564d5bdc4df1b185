//! What a row of the op table is ([`OpDesc`], the [`Op`] trait that `optable.rs`'s
//! `row!` implements, the flags) and [`exec`], the generic step that runs one row: decode
//! the op's arguments, apply what its flags say around its handler. The loop
//! (`compound.rs`) reaches rows through the table; handlers never see this file.

use std::hash::{Hash, Hasher};

use ringnfs_proto::nfs4::ops::Xdr;
use ringnfs_proto::stateid::Stateid;
use ringnfs_proto::xdr::XdrDecoder;
use ringnfs_state::SeqGrant;
use ringnfs_state::channel::reply_too_big;

use crate::consts::{NfsStatus, status};
use crate::ctx::{CompoundCtx, OpResult};

/// What a row runs: decode the op's arguments from the request, apply the rules of the
/// row's flags around its handler, append its result after the status word.
pub type Exec = fn(&mut CompoundCtx<'_>, &mut XdrDecoder<'_>, &mut Vec<u8>) -> OpResult;

/// May start a COMPOUND without SEQUENCE (RFC 8881 §2.6.3.1.1.1 exempt ops, and
/// SEQUENCE itself).
pub const SESSIONLESS: u32 = 1 << 0;
/// Without SEQUENCE it must be the only op (NFS4ERR_NOT_ONLY_OP otherwise).
pub const SOLO_WITHOUT_SEQUENCE: u32 = 1 << 1;
/// Always the only op, even after SEQUENCE (BIND_CONN_TO_SESSION).
pub const ALWAYS_SOLO: u32 = 1 << 2;
/// Needs a current filehandle (NFS4ERR_NOFILEHANDLE otherwise).
pub const NEEDS_FH: u32 = 1 << 3;
/// Not implemented yet: answers NFS4ERR_NOTSUPP (listed in docs/protocol.md).
pub const NOT_BUILT: u32 = 1 << 4;
/// NFSv4.0-only op: NFS4ERR_NOTSUPP in 4.1 (RFC 8881 §18).
pub const V40_ONLY: u32 = 1 << 5;
/// NFSv4.2 op (RFC 7862): illegal in minor version 1.
pub const V42: u32 = 1 << 6;
/// Changes server state (knfsd's OP_MODIFIES_SOMETHING): runs only when its reply-size
/// bound still fits the session's reply limits, since it cannot be undone afterwards.
/// Other ops run first and are answered NFS4ERR_REP_TOO_BIG if their result does not
/// fit.
pub const MODIFIES: u32 = 1 << 7;
/// Only as the first op (NFS4ERR_SEQUENCE_POS elsewhere): SEQUENCE (RFC 8881 §18.46.3).
pub const ONLY_FIRST: u32 = 1 << 8;
/// Answers retries from the slot's reply cache (SEQUENCE): the loop hashes the rest of
/// the request for the handler (`CompoundCtx::request_hash`), and when the handler found
/// a retry (`CompoundCtx::replay`) it replaces the whole reply with the cached one.
/// Its successful result is what a reply cached as "SEQUENCE only" keeps.
pub const REPLAYS: u32 = 1 << 9;
/// Sets the current stateid to the one its handler returns (RFC 8881 §16.2.3.1.2).
pub const SETS_STATEID: u32 = 1 << 10;
/// Takes a stateid that may be the current stateid (the special stateid of RFC 8881
/// §8.2.3): the loop replaces it by the current one in the arguments, if one is set.
pub const USES_STATEID: u32 = 1 << 11;
/// Changes the current filehandle and sets no stateid: the current stateid is cleared
/// once it succeeded (RFC 8881 §16.2.3.1.2).
pub const CLEARS_STATEID: u32 = 1 << 12;
/// A failed result may carry a body after its status (LOCK4denied after
/// NFS4ERR_DENIED, SETATTR's attrsset whatever the status): the loop keeps what the
/// handler encoded ([`Op::error_body`] when it encoded none). Every other failed result
/// is its status alone.
pub const ERROR_BODY: u32 = 1 << 13;

/// Creates locking state (OPEN, LOCK): in a cluster, the client's recovery record must
/// be durable before the op runs (`record_wait`).
pub const RECORDS_CLIENT: u32 = 1 << 14;

/// An op's result before its body: opnum and status.
pub const RESULT_HEADER: u32 = 8;
/// What the row of one op knows at compile time; implemented by `optable.rs`'s `row!` for each row.
pub trait Op {
    /// The op's arguments, as proto decodes them.
    type Args<'a>: Xdr<'a>;
    /// What a successful handler returns: the stateid it made current for
    /// [`SETS_STATEID`] ops, `()` for the others.
    type Ok: OpOk;
    const FLAGS: u32;
    fn handle(
        ctx: &mut CompoundCtx<'_>,
        args: Self::Args<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Self::Ok, NfsStatus>;
    /// Upper bound on the encoded result, opnum and status included (knfsd's
    /// `op_rsize_bop`). A [`MODIFIES`] op runs only if the reply still has room for it.
    fn rsize(args: &Self::Args<'_>, ctx: &CompoundCtx<'_>) -> u32;
    /// The stateid argument the loop replaces when it is the current stateid
    /// ([`USES_STATEID`]).
    fn stateid<'s>(_args: &'s mut Self::Args<'_>) -> Option<&'s mut Stateid> {
        None
    }
    /// For an [`ERROR_BODY`] op: the body of a failed result whose handler encoded none
    /// (SETATTR: an empty attrsset).
    fn error_body(_out: &mut Vec<u8>) {}
}

/// A handler's success value: the new current stateid, if it sets one.
pub trait OpOk {
    const IS_STATEID: bool;
    fn stateid(&self) -> Option<Stateid>;
}

impl OpOk for () {
    const IS_STATEID: bool = false;
    fn stateid(&self) -> Option<Stateid> {
        None
    }
}

impl OpOk for Stateid {
    const IS_STATEID: bool = true;
    fn stateid(&self) -> Option<Stateid> {
        Some(*self)
    }
}

#[derive(Clone, Copy)]
pub struct OpDesc {
    pub name: &'static str,
    pub exec: Exec,
    pub flags: u32,
}

impl OpDesc {
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// The row of `O`. A row that says it sets the current stateid has a handler that
    /// returns one (checked when the table is built, at compile time).
    pub(crate) const fn of<O: Op>(name: &'static str) -> Option<OpDesc> {
        assert!(
            (O::FLAGS & SETS_STATEID != 0) == <O::Ok as OpOk>::IS_STATEID,
            "SETS_STATEID rows return the stateid they set"
        );
        Some(OpDesc {
            name,
            exec: exec::<O>,
            flags: O::FLAGS,
        })
    }
}

/// Bytes of the remaining ops hashed to tell a retry from a false retry.
const HASH_PREFIX: usize = 4096;

/// FxHash: a client can only make its own retry look like a false one (or the other way
/// round), so no keyed hash is needed here, and SipHash cost every SEQUENCE.
fn request_hash(numops: usize, rest: &[u8]) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    numops.hash(&mut h);
    rest.len().hash(&mut h);
    rest[..rest.len().min(HASH_PREFIX)].hash(&mut h);
    h.finish()
}

/// A reply of `len` bytes over the session's limits.
pub(crate) fn over_limit(g: &SeqGrant, len: usize) -> Option<NfsStatus> {
    reply_too_big(len, g.max_response, g.max_response_cached, g.cachethis)
}

/// One op of the row of `O`, after the loop checked where it stands and its filehandle:
/// decode its arguments (NFS4ERR_BADXDR if they do not decode), then apply what the
/// row's flags say around its handler. Monomorphised per row: the flags are constants.
pub fn exec<O: Op>(
    ctx: &mut CompoundCtx<'_>,
    d: &mut XdrDecoder<'_>,
    out: &mut Vec<u8>,
) -> OpResult {
    let body_at = out.len();
    let Ok(mut args) = O::Args::decode(d) else {
        O::error_body(out);
        return Err(status::NFS4ERR_BADXDR);
    };
    if O::FLAGS & REPLAYS != 0 {
        ctx.request_hash = request_hash(ctx.numops, d.rest());
    }
    if O::FLAGS & USES_STATEID != 0
        && let Some(sid) = O::stateid(&mut args)
        && *sid == Stateid::CURRENT
        && let Some(current) = ctx.current_stateid
    {
        *sid = current;
    }
    // An op that changes state must not run unless its whole result fits (knfsd's rule
    // for OP_MODIFIES_SOMETHING); any other op is measured after it ran.
    let bound = if O::FLAGS & MODIFIES != 0 || cfg!(debug_assertions) {
        O::rsize(&args, ctx) as usize
    } else {
        0
    };
    if O::FLAGS & MODIFIES != 0
        && let Some(e) = ctx.session.and_then(|g| {
            over_limit(
                &g,
                ctx.reply_used + bound.saturating_sub(RESULT_HEADER as usize),
            )
        })
    {
        return Err(e);
    }
    let r = O::handle(ctx, args, out);
    debug_assert!(
        ctx.pending_io.is_some() || RESULT_HEADER as usize + out.len() - body_at <= bound,
        "a result of {} bytes over its bound of {bound}",
        RESULT_HEADER as usize + out.len() - body_at
    );
    match r {
        Ok(ok) => {
            if O::FLAGS & CLEARS_STATEID != 0 {
                ctx.current_stateid = None;
            }
            if O::FLAGS & SETS_STATEID != 0 {
                ctx.current_stateid = ok.stateid();
            }
            Ok(())
        }
        Err(e) => {
            if O::FLAGS & ERROR_BODY != 0 && out.len() == body_at {
                O::error_body(out);
            }
            Err(e)
        }
    }
}
