//! The COMPOUND loop: header, minor version, the ordering rules, the
//! current-filehandle requirement, the current stateid, the reply-size budget, the
//! reply cache, metrics. What applies to an op is what its row in `optable.rs` says;
//! [`exec`] is the part of the loop that runs for one row with the op's own types.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use ringnfs_proto::rpc::Credential;
use ringnfs_service::{ConnMeta, FileIoDone};

pub use super::ops::io::{IoFinish, IoOutcome, PendingIo};
use ringnfs_proto::nfs4::ops::Xdr;
use ringnfs_proto::rpc::message::ACCEPTED_REPLY_HEADER_LEN;
use ringnfs_proto::xdr::{XdrDecoder, XdrEncoder, XdrError};
use ringnfs_state::channel::reply_too_big;
use ringnfs_state::slots::CachedReply;
use ringnfs_state::{SeqGrant, StateManager};

use super::consts::{NFS4_OPAQUE_LIMIT, NfsStatus, op, status};
use super::export::Export;
use super::fh::FileHandle;
use super::optable::{
    self, ALWAYS_SOLO, CLEARS_STATEID, ERROR_BODY, MODIFIES, NEEDS_FH, ONLY_FIRST, Op, OpOk,
    REPLAYS, RESULT_HEADER, SESSIONLESS, SETS_STATEID, SOLO_WITHOUT_SEQUENCE, USES_STATEID,
};
use ringnfs_fs::{Caller, ObjHandle};
use ringnfs_state::stateid::Stateid;

/// An op's outcome: Ok after appending its resok, or an error status.
pub type OpResult = Result<(), NfsStatus>;

/// Hard cap on ops in one COMPOUND before any session says otherwise.
pub const MAX_COMPOUND_OPS: usize = 128;

/// Bytes of the remaining ops hashed to tell a retry from a false retry.
const HASH_PREFIX: usize = 4096;

/// The RPC reply header in front of COMPOUND4res: the session's reply limits count it
/// (RFC 8881 §18.36.3).
const RPC_REPLY_HEADER: usize = ACCEPTED_REPLY_HEADER_LEN;

/// The NFSv4 engine shared by all cores.
pub struct Nfs4Engine {
    pub state: Arc<StateManager>,
    pub export: Arc<Export>,
}

/// A filehandle in the COMPOUND: the backend object and the wire handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurFh {
    pub obj: ObjHandle,
    pub fh: FileHandle,
}

/// Per-COMPOUND context handed to op handlers.
pub struct CompoundCtx<'a> {
    pub state: &'a StateManager,
    pub conn: &'a ConnMeta,
    pub cred: &'a Credential,
    pub minor: u32,
    pub export: &'a Export,
    /// The caller after export squashing.
    pub caller: Caller,
    /// Set when the COMPOUND started with a successful SEQUENCE.
    pub session: Option<SeqGrant>,
    pub current_fh: Option<CurFh>,
    pub saved_fh: Option<CurFh>,
    /// The current stateid (RFC 8881 §16.2.3.1.2): set, replaced in arguments and
    /// cleared by the loop as the rows say, saved and restored with the filehandle.
    current_stateid: Option<Stateid>,
    saved_stateid: Option<Stateid>,
    /// Set by a handler whose result waits for file I/O on the connection's ring.
    pub pending_io: Option<PendingIo>,
    /// Reply bytes the session still allows (set before each op; READ and READDIR fit
    /// their results into it).
    pub reply_room: usize,
    /// Reply bytes so far, RPC header and this op's opnum and status included (set
    /// before each op).
    pub reply_used: usize,
    /// Ops in the COMPOUND, and the length of the whole RPC call (0 once resumed):
    /// what SEQUENCE checks against the session's limits.
    pub numops: usize,
    pub request_len: usize,
    /// For a [`REPLAYS`] op: the hash of the rest of the request, which tells a retry
    /// from a false retry.
    pub request_hash: u64,
    /// Set by a [`REPLAYS`] handler that found a retry: the loop answers with it.
    pub replay: Option<CachedReply>,
}

impl CompoundCtx<'_> {
    pub fn cur(&self) -> Result<CurFh, NfsStatus> {
        self.current_fh.ok_or(status::NFS4ERR_NOFILEHANDLE)
    }

    pub fn saved(&self) -> Result<CurFh, NfsStatus> {
        self.saved_fh.ok_or(status::NFS4ERR_NOFILEHANDLE)
    }

    pub fn set_current(&mut self, obj: ObjHandle) {
        let fh = self.export.handles.encode(&obj);
        self.current_fh = Some(CurFh { obj, fh });
    }

    /// Fails with ROFS on a read-only export.
    pub fn writable(&self) -> Result<(), NfsStatus> {
        if self.export.opts.read_only {
            Err(status::NFS4ERR_ROFS)
        } else {
            Ok(())
        }
    }

    /// The client of this COMPOUND's session (file ops always run in a session).
    pub fn client(&self) -> Result<u64, NfsStatus> {
        self.session
            .map(|g| g.clientid)
            .ok_or(status::NFS4ERR_OP_NOT_IN_SESSION)
    }

    /// RFC 8881 §18.51.3: new locking state (an OPEN or LOCK that reclaims nothing)
    /// waits with NFS4ERR_GRACE during the grace period, and until the client has sent
    /// its global RECLAIM_COMPLETE whether or not a grace period runs.
    pub fn may_take_new_locks(&self) -> Result<(), NfsStatus> {
        let grant = self.session.ok_or(status::NFS4ERR_OP_NOT_IN_SESSION)?;
        if !grant.reclaim_complete || self.state.in_grace() {
            return Err(status::NFS4ERR_GRACE);
        }
        Ok(())
    }

    /// SAVEFH: the current filehandle becomes the saved one, with its stateid.
    pub fn save_fh(&mut self) {
        self.saved_fh = self.current_fh;
        self.saved_stateid = self.current_stateid;
    }

    /// RESTOREFH: the saved filehandle becomes current again, with the stateid that was
    /// current when it was saved (NFS4ERR_RESTOREFH if none was saved).
    pub fn restore_fh(&mut self) -> OpResult {
        let fh = self.saved_fh.ok_or(status::NFS4ERR_RESTOREFH)?;
        self.current_fh = Some(fh);
        self.current_stateid = self.saved_stateid;
        Ok(())
    }
}

/// A stateid argument of a [`USES_STATEID`] op, which the loop has already replaced if
/// it was the current stateid and one was set. Still the current stateid means no op
/// set one: NFS4ERR_BAD_STATEID (RFC 8881 §8.2.3, §16.2.3.1.2). Handlers call this
/// where they judge the stateid, so the order of their errors stays theirs.
pub fn resolved(sid: Stateid) -> Result<Stateid, NfsStatus> {
    if sid == Stateid::CURRENT {
        Err(status::NFS4ERR_BAD_STATEID)
    } else {
        Ok(sid)
    }
}

/// The COMPOUND header could not be decoded: answer RPC GARBAGE_ARGS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GarbageArgs;

impl From<XdrError> for GarbageArgs {
    fn from(_: XdrError) -> Self {
        GarbageArgs
    }
}

/// What the COMPOUND loop keeps between ops, owned, so that a COMPOUND waiting for file
/// I/O can resume in a later call. Offsets are relative to the start of COMPOUND4res.
pub struct LoopState {
    pub(crate) minor: u32,
    pub(crate) numops: usize,
    /// Index of the next op to run.
    pub(crate) next: usize,
    pub(crate) results: u32,
    pub(crate) final_status: NfsStatus,
    pub(crate) status_at: usize,
    pub(crate) count_at: usize,
    pub(crate) seq_resok: Option<(usize, usize)>,
    pub(crate) ctx: CtxState,
}

/// The parts of [`CompoundCtx`] that outlive one call.
pub struct CtxState {
    caller: Caller,
    session: Option<SeqGrant>,
    current_fh: Option<CurFh>,
    saved_fh: Option<CurFh>,
    current_stateid: Option<Stateid>,
    saved_stateid: Option<Stateid>,
}

/// How a run of ops ended.
pub enum Flow {
    /// The reply is complete in `out`.
    Done,
    /// An op waits for file I/O: see [`Suspended`].
    Suspend(Box<Suspended>),
}

/// A COMPOUND waiting for a file operation. The caller moves the reply so far into
/// `partial` (from the start of the RPC reply, `header` bytes before COMPOUND4res) and
/// returns `io` to the transport with a continuation that owns this; it calls
/// [`Nfs4Engine::resume`] when the operation completed.
pub struct Suspended {
    pub(crate) state: LoopState,
    pub io: PendingIo,
    /// The undecoded ops after the waiting one.
    pub(crate) rest: Vec<u8>,
    pub(crate) cred: Credential,
    /// The connection the COMPOUND came on (it may close while the I/O runs).
    pub conn: ConnMeta,
    pub partial: Vec<u8>,
    pub header: usize,
}

impl CompoundCtx<'_> {
    fn save(&self) -> CtxState {
        CtxState {
            caller: self.caller.clone(),
            session: self.session,
            current_fh: self.current_fh,
            saved_fh: self.saved_fh,
            current_stateid: self.current_stateid,
            saved_stateid: self.saved_stateid,
        }
    }
}

impl Nfs4Engine {
    pub fn new(state: Arc<StateManager>, export: Arc<Export>) -> Self {
        Self { state, export }
    }

    /// The context of a COMPOUND before its first op.
    fn fresh_ctx(&self, cred: &Credential) -> CtxState {
        CtxState {
            caller: self.export.caller(cred),
            session: None,
            current_fh: None,
            saved_fh: None,
            current_stateid: None,
            saved_stateid: None,
        }
    }

    fn ctx<'a>(
        &'a self,
        conn: &'a ConnMeta,
        cred: &'a Credential,
        minor: u32,
        saved: Option<CtxState>,
    ) -> CompoundCtx<'a> {
        let s = saved.unwrap_or_else(|| self.fresh_ctx(cred));
        CompoundCtx {
            state: &self.state,
            conn,
            cred,
            minor,
            export: &self.export,
            caller: s.caller,
            session: s.session,
            current_fh: s.current_fh,
            saved_fh: s.saved_fh,
            current_stateid: s.current_stateid,
            saved_stateid: s.saved_stateid,
            pending_io: None,
            reply_room: usize::MAX,
            reply_used: 0,
            numops: 0,
            request_len: 0,
            request_hash: 0,
            replay: None,
        }
    }

    /// Execute the COMPOUND in `args` (of an RPC call `request_len` bytes long) and
    /// append COMPOUND4res to `out`.
    pub fn compound(
        &self,
        conn: &ConnMeta,
        cred: &Credential,
        args: &[u8],
        request_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<Flow, GarbageArgs> {
        let state = &*self.state;
        state.metrics.compound(conn.core);
        let mut d = XdrDecoder::new(args);
        let tag = d.opaque(NFS4_OPAQUE_LIMIT)?;
        let minor = d.u32()?;
        let numops = d.u32()? as usize;

        let start = out.len();
        out.put_u32(status::NFS4_OK.code());
        out.put_opaque(tag);
        let count_at = out.len() - start;
        out.put_u32(0);

        if !(1..=2).contains(&minor) {
            out.patch_u32(start, status::NFS4ERR_MINOR_VERS_MISMATCH.code());
            return Ok(Flow::Done);
        }
        if numops > MAX_COMPOUND_OPS {
            out.patch_u32(start, status::NFS4ERR_TOO_MANY_OPS.code());
            return Ok(Flow::Done);
        }
        let ls = LoopState {
            minor,
            numops,
            next: 0,
            results: 0,
            final_status: status::NFS4_OK,
            status_at: 0,
            count_at,
            seq_resok: None,
            ctx: self.fresh_ctx(cred),
        };
        Ok(self.run(conn, cred, &mut d, ls, start, (request_len, tag), out))
    }

    /// Continue a suspended COMPOUND once its file I/O is `done`; appends the reply (or
    /// suspends again) on the connection the COMPOUND came on.
    pub fn resume(&self, mut s: Box<Suspended>, done: FileIoDone, out: &mut Vec<u8>) -> Flow {
        let rpc_start = out.len();
        out.extend_from_slice(&s.partial);
        let start = rpc_start + s.header;
        let io = std::mem::replace(&mut s.io.finish, IoFinish::Done);
        let opnum = s.io.opnum;
        let st_at = start + s.io.st_at;
        let outcome = super::ops::io::finish(&self.state, io, done, st_at, out);
        let core = s.conn.core;
        match outcome {
            IoOutcome::Again(op, finish) => {
                // Still waiting: the caller moves the reply so far back into `partial`.
                s.io.finish = finish;
                s.io.op = Some(op);
                return Flow::Suspend(s);
            }
            IoOutcome::Status(st) => {
                self.state.metrics.op(core, opnum, st);
                if st != status::NFS4_OK {
                    out.truncate(st_at + 4);
                    out.patch_u32(st_at, st.code());
                    s.state.final_status = st;
                    s.state.next = s.state.numops;
                }
            }
        }
        let Suspended {
            state,
            rest,
            cred,
            conn,
            header,
            ..
        } = *s;
        let mut d = XdrDecoder::new(&rest);
        let flow = self.run(&conn, &cred, &mut d, state, start, (0, b""), out);
        if let Flow::Suspend(mut again) = flow {
            // `run` built this suspension with the header of its own frame; keep ours.
            again.header = header;
            return Flow::Suspend(again);
        }
        flow
    }

    /// Run ops from `ls.next` on; `start` is where COMPOUND4res begins in `out`.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        conn: &ConnMeta,
        cred: &Credential,
        d: &mut XdrDecoder<'_>,
        mut ls: LoopState,
        start: usize,
        (request_len, tag): (usize, &[u8]),
        out: &mut Vec<u8>,
    ) -> Flow {
        let state = &*self.state;
        let minor = ls.minor;
        let numops = ls.numops;
        let mut ctx = self.ctx(conn, cred, minor, Some(ls.ctx));
        ctx.numops = numops;
        ctx.request_len = request_len;
        while ls.next < numops {
            let i = ls.next;
            ls.next += 1;
            let Ok(opnum) = d.u32() else {
                ls.final_status = status::NFS4ERR_BADXDR;
                break;
            };
            ls.results += 1;
            let op_start = out.len();
            out.put_u32(opnum);
            let st_at = out.mark();
            out.put_u32(status::NFS4_OK.code());

            // Whether a failed result keeps the body its handler encoded.
            let mut keep_body = false;
            let st = match optable::lookup(minor, opnum) {
                None => {
                    // The result carries OP_ILLEGAL as its op number.
                    out.patch_u32(op_start, op::ILLEGAL);
                    status::NFS4ERR_OP_ILLEGAL
                }
                Some(desc) => {
                    if let Some(e) = order_error(desc, i, numops, ctx.session.is_some()) {
                        e
                    } else if desc.has(NEEDS_FH) && ctx.current_fh.is_none() {
                        status::NFS4ERR_NOFILEHANDLE
                    } else {
                        ctx.reply_used = reply_len(start, out);
                        ctx.reply_room = ctx.session.map_or(usize::MAX, |g| {
                            reply_limit(&g).saturating_sub(ctx.reply_used)
                        });
                        let st = match (desc.exec)(&mut ctx, d, out) {
                            Ok(()) => status::NFS4_OK,
                            Err(e) => e,
                        };
                        if desc.has(REPLAYS) {
                            if let Some(cached) = ctx.replay.take() {
                                // A retry: the cached reply replaces everything from
                                // `start`.
                                let next_opnum = XdrDecoder::new(d.rest()).u32().ok();
                                replay(out, start, tag, next_opnum, cached);
                                return Flow::Done;
                            }
                            if st == status::NFS4_OK {
                                ls.seq_resok = Some((st_at + 4 - start, out.len() - start));
                            }
                        }
                        keep_body = desc.has(ERROR_BODY);
                        // An op that changes nothing ran first and is measured now: its
                        // result goes if it does not fit.
                        match ctx
                            .session
                            .and_then(|g| over_limit(&g, reply_len(start, out)))
                        {
                            Some(e) if !desc.has(MODIFIES) => {
                                keep_body = false;
                                ctx.pending_io = None;
                                e
                            }
                            _ => st,
                        }
                    }
                }
            };
            if st == status::NFS4_OK
                && let Some(mut io) = ctx.pending_io.take()
            {
                // The op waits for file I/O: keep everything needed to go on.
                io.opnum = opnum;
                io.st_at = st_at - start;
                ls.ctx = ctx.save();
                return Flow::Suspend(Box::new(Suspended {
                    state: ls,
                    io,
                    rest: d.rest().to_vec(),
                    cred: cred.clone(),
                    conn: conn.clone(),
                    partial: Vec::new(),
                    header: 0,
                }));
            }
            state.metrics.op(conn.core, opnum, st);
            if st != status::NFS4_OK {
                if !keep_body {
                    out.truncate(st_at + 4);
                }
                out.patch_u32(st_at, st.code());
                ls.final_status = st;
                break;
            }
        }
        out.patch_u32(start + ls.count_at, ls.results);
        out.patch_u32(start + ls.status_at, ls.final_status.code());

        if let Some(grant) = ctx.session {
            let reply = if grant.cachethis {
                CachedReply::Full(out[start..].to_vec())
            } else {
                let (a, b) = ls.seq_resok.unwrap_or((0, 0));
                CachedReply::SequenceOnly {
                    seq_resok: out[start + a..start + b].to_vec(),
                    ops: ls.results,
                }
            };
            state.sequence_done(&grant, reply);
        }
        Flow::Done
    }
}

/// RFC 8881 §2.6.3.1.1.1 and §18.34–§18.50: where an op may stand in a COMPOUND.
fn order_error(
    desc: &optable::OpDesc,
    index: usize,
    numops: usize,
    in_session: bool,
) -> Option<NfsStatus> {
    if index > 0 && desc.has(ONLY_FIRST) {
        return Some(status::NFS4ERR_SEQUENCE_POS);
    }
    if index == 0 {
        if !desc.has(SESSIONLESS) {
            return Some(status::NFS4ERR_OP_NOT_IN_SESSION);
        }
        if desc.has(SOLO_WITHOUT_SEQUENCE) && numops > 1 {
            return Some(status::NFS4ERR_NOT_ONLY_OP);
        }
        return None;
    }
    if desc.has(ALWAYS_SOLO) {
        return Some(status::NFS4ERR_NOT_ONLY_OP);
    }
    if !in_session {
        // Only reachable after a sessionless first op that failed to stop the loop.
        return Some(status::NFS4ERR_OP_NOT_IN_SESSION);
    }
    None
}

/// Reply bytes so far, RPC header included, for a COMPOUND4res starting at `start`.
fn reply_len(start: usize, out: &[u8]) -> usize {
    RPC_REPLY_HEADER + out.len() - start
}

/// The most reply bytes the COMPOUND may take: ca_maxresponsesize, or
/// ca_maxresponsesize_cached when the client asked for the reply to be cached.
fn reply_limit(g: &SeqGrant) -> usize {
    if g.cachethis {
        g.max_response.min(g.max_response_cached) as usize
    } else {
        g.max_response as usize
    }
}

/// A reply of `len` bytes over the session's limits.
fn over_limit(g: &SeqGrant, len: usize) -> Option<NfsStatus> {
    reply_too_big(len, g.max_response, g.max_response_cached, g.cachethis)
}

fn request_hash(numops: usize, rest: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    numops.hash(&mut h);
    rest.len().hash(&mut h);
    rest[..rest.len().min(HASH_PREFIX)].hash(&mut h);
    h.finish()
}

/// One op of the row of `O`, after the loop checked where it stands and its filehandle:
/// decode its arguments (NFS4ERR_BADXDR if they do not decode), then apply what the
/// row's flags say around its handler. Monomorphised per row: the flags are constants.
pub(crate) fn exec<O: Op>(
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

/// Answer a retry from the slot's cache, replacing what was written from `start`.
fn replay(
    out: &mut Vec<u8>,
    start: usize,
    tag: &[u8],
    next_opnum: Option<u32>,
    cached: CachedReply,
) {
    out.truncate(start);
    if let CachedReply::Full(body) = cached {
        out.extend_from_slice(&body);
        return;
    }
    let status_at = out.mark();
    out.put_u32(status::NFS4_OK.code());
    out.put_opaque(tag);
    let count_at = out.mark();
    out.put_u32(1);
    out.put_u32(op::SEQUENCE);
    let (seq_resok, ops) = match cached {
        CachedReply::SequenceOnly { seq_resok, ops } => (seq_resok, ops),
        _ => (Vec::new(), 0),
    };
    if seq_resok.is_empty() {
        // Nothing usable was kept (cannot happen after a completed request).
        out.put_u32(status::NFS4ERR_RETRY_UNCACHED_REP.code());
        out.patch_u32(status_at, status::NFS4ERR_RETRY_UNCACHED_REP.code());
        return;
    }
    out.put_u32(status::NFS4_OK.code());
    out.extend_from_slice(&seq_resok);
    if ops > 1 {
        // Like knfsd: the op after SEQUENCE reports that its result was not cached.
        out.put_u32(next_opnum.unwrap_or(op::ILLEGAL));
        out.put_u32(status::NFS4ERR_RETRY_UNCACHED_REP.code());
        out.patch_u32(count_at, 2);
        out.patch_u32(status_at, status::NFS4ERR_RETRY_UNCACHED_REP.code());
    }
}
