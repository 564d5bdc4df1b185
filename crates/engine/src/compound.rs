//! The COMPOUND loop: header, minor version, SEQUENCE and the ordering rules, the
//! current-filehandle requirement, the reply-size budget, the reply cache, metrics.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use ringnfs_proto::rpc::Credential;
use ringnfs_service::{ConnMeta, FileIoDone};

pub use super::ops::io::{IoFinish, IoOutcome, PendingIo};
use ringnfs_proto::rpc::message::ACCEPTED_REPLY_HEADER_LEN;
use ringnfs_proto::xdr::{XdrDecoder, XdrEncoder, XdrError};
use ringnfs_state::channel::reply_too_big;
use ringnfs_state::slots::CachedReply;
use ringnfs_state::{CompoundSize, SeqGrant, SeqOutcome, SequenceArgs, StateManager};

use super::consts::{NFS4_OPAQUE_LIMIT, op, status};
use super::export::Export;
use super::fh::FileHandle;
use super::optable::{self, ALWAYS_SOLO, MODIFIES, NEEDS_FH, SESSIONLESS, SOLO_WITHOUT_SEQUENCE};
use super::types::decode_sessionid;
use ringnfs_fs::{Caller, ObjHandle};
use ringnfs_state::stateid::Stateid;

/// An op's outcome: Ok after appending its resok, or an error status.
pub type OpResult = Result<(), u32>;

/// Hard cap on ops in one COMPOUND before any session says otherwise.
pub const MAX_COMPOUND_OPS: usize = 128;

/// Bytes of the remaining ops hashed to tell a retry from a false retry.
const HASH_PREFIX: usize = 4096;

/// The RPC reply header in front of COMPOUND4res: the session's reply limits count it
/// (RFC 8881 §18.36.3).
const RPC_REPLY_HEADER: usize = ACCEPTED_REPLY_HEADER_LEN;

/// An op's result before its body: opnum and status.
const RESULT_HEADER: usize = 8;

/// SEQUENCE4resok: sessionid, sequenceid, slotid, highest_slotid,
/// target_highest_slotid, status_flags.
const SEQUENCE_RESOK_LEN: usize = 16 + 5 * 4;

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
    pub current_stateid: Option<Stateid>,
    pub saved_stateid: Option<Stateid>,
    /// Set by a handler that failed but encoded a result body after the status
    /// (LOCK's LOCK4denied, SETATTR's attrsset).
    pub keep_error_body: bool,
    /// Set by a handler whose result waits for file I/O on the connection's ring.
    pub pending_io: Option<PendingIo>,
    /// Reply bytes the session still allows (set before each op; READ and READDIR fit
    /// their results into it).
    pub reply_room: usize,
}

impl CompoundCtx<'_> {
    pub fn cur(&self) -> Result<CurFh, u32> {
        self.current_fh.ok_or(status::NFS4ERR_NOFILEHANDLE)
    }

    pub fn saved(&self) -> Result<CurFh, u32> {
        self.saved_fh.ok_or(status::NFS4ERR_NOFILEHANDLE)
    }

    pub fn set_current(&mut self, obj: ObjHandle) {
        let fh = self.export.handles.encode(&obj);
        self.current_fh = Some(CurFh { obj, fh });
    }

    /// Fails with ROFS on a read-only export.
    pub fn writable(&self) -> Result<(), u32> {
        if self.export.opts.read_only {
            Err(status::NFS4ERR_ROFS)
        } else {
            Ok(())
        }
    }

    /// The client of this COMPOUND's session (file ops always run in a session).
    pub fn client(&self) -> Result<u64, u32> {
        self.session
            .map(|g| g.clientid)
            .ok_or(status::NFS4ERR_OP_NOT_IN_SESSION)
    }

    /// RFC 8881 §18.51.3: new locking state (an OPEN or LOCK that reclaims nothing)
    /// waits with NFS4ERR_GRACE during the grace period, and until the client has sent
    /// its global RECLAIM_COMPLETE whether or not a grace period runs.
    pub fn may_take_new_locks(&self) -> Result<(), u32> {
        let grant = self.session.ok_or(status::NFS4ERR_OP_NOT_IN_SESSION)?;
        if !grant.reclaim_complete || self.state.in_grace() {
            return Err(status::NFS4ERR_GRACE);
        }
        Ok(())
    }

    /// Replace the special "current stateid" by the one an earlier op set.
    pub fn resolve_stateid(&self, sid: Stateid) -> Result<Stateid, u32> {
        if sid == Stateid::CURRENT {
            self.current_stateid.ok_or(status::NFS4ERR_BAD_STATEID)
        } else {
            Ok(sid)
        }
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
    pub(crate) final_status: u32,
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
            keep_error_body: false,
            pending_io: None,
            reply_room: usize::MAX,
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
        out.put_u32(status::NFS4_OK);
        out.put_opaque(tag);
        let count_at = out.len() - start;
        out.put_u32(0);

        if !(1..=2).contains(&minor) {
            out.patch_u32(start, status::NFS4ERR_MINOR_VERS_MISMATCH);
            return Ok(Flow::Done);
        }
        if numops > MAX_COMPOUND_OPS {
            out.patch_u32(start, status::NFS4ERR_TOO_MANY_OPS);
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
                    out.patch_u32(st_at, st);
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
            out.put_u32(status::NFS4_OK);

            let st = match optable::lookup(minor, opnum) {
                None => {
                    // The result carries OP_ILLEGAL as its op number.
                    out.patch_u32(op_start, op::ILLEGAL);
                    status::NFS4ERR_OP_ILLEGAL
                }
                Some(desc) => {
                    if opnum == op::SEQUENCE {
                        if i != 0 {
                            status::NFS4ERR_SEQUENCE_POS
                        } else {
                            match self.sequence(&mut ctx, d, numops, request_len, (start, tag), out)
                            {
                                SeqStep::Go((a, b)) => {
                                    conn.shared.mark_had_session();
                                    ls.seq_resok = Some((a - start, b - start));
                                    status::NFS4_OK
                                }
                                SeqStep::Failed(e) => e,
                                // The cached reply replaced everything from `start`.
                                SeqStep::Replayed => return Flow::Done,
                            }
                        }
                    } else if let Some(e) = order_error(desc, i, numops, ctx.session.is_some()) {
                        e
                    } else if desc.has(NEEDS_FH) && ctx.current_fh.is_none() {
                        status::NFS4ERR_NOFILEHANDLE
                    } else if let Some(e) = ctx
                        .session
                        .and_then(|g| over_limit(&g, reply_len(start, out) + before_run(desc)))
                    {
                        e
                    } else {
                        ctx.reply_room = ctx.session.map_or(usize::MAX, |g| {
                            reply_limit(&g).saturating_sub(reply_len(start, out))
                        });
                        let st = match (desc.handler)(&mut ctx, d, out) {
                            Ok(()) => status::NFS4_OK,
                            Err(e) => e,
                        };
                        debug_assert!(
                            !desc.has(MODIFIES) || out.len() - op_start <= desc.max_reply as usize,
                            "{} encoded more than its max_reply",
                            desc.name
                        );
                        // An op that changes nothing ran first and is measured now: its
                        // result goes if it does not fit.
                        match ctx
                            .session
                            .and_then(|g| over_limit(&g, reply_len(start, out)))
                        {
                            Some(e) if !desc.has(MODIFIES) => {
                                ctx.keep_error_body = false;
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
                if !ctx.keep_error_body {
                    out.truncate(st_at + 4);
                }
                out.patch_u32(st_at, st);
                ls.final_status = st;
                break;
            }
        }
        out.patch_u32(start + ls.count_at, ls.results);
        out.patch_u32(start + ls.status_at, ls.final_status);

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

    /// SEQUENCE as the first op. On success, appends the resok and returns its byte
    /// range in `out`; on a replay, replaces the whole COMPOUND reply with the cache.
    fn sequence(
        &self,
        ctx: &mut CompoundCtx<'_>,
        d: &mut XdrDecoder<'_>,
        numops: usize,
        request_len: usize,
        (start, tag): (usize, &[u8]),
        out: &mut Vec<u8>,
    ) -> SeqStep {
        let decoded = (|| -> Result<SequenceArgs, XdrError> {
            Ok(SequenceArgs {
                sessionid: decode_sessionid(d)?,
                sequenceid: d.u32()?,
                slotid: d.u32()?,
                highest_slotid: d.u32()?,
                cachethis: d.bool()?,
            })
        })();
        let Ok(args) = decoded else {
            return SeqStep::Failed(status::NFS4ERR_BADXDR);
        };
        let hash = request_hash(numops, d.rest());
        let size = CompoundSize {
            numops,
            request_len,
            min_reply_len: reply_len(start, out) + SEQUENCE_RESOK_LEN,
        };
        match self.state.sequence(ctx.conn, &args, hash, size) {
            Err(e) => SeqStep::Failed(e),
            Ok(SeqOutcome::Execute(grant)) => {
                let a = out.len();
                encode_sequence_resok(out, &grant);
                ctx.session = Some(grant);
                SeqStep::Go((a, out.len()))
            }
            Ok(SeqOutcome::Replay(_grant, cached)) => {
                let next_opnum = XdrDecoder::new(d.rest()).u32().ok();
                replay(out, start, tag, next_opnum, cached);
                SeqStep::Replayed
            }
        }
    }
}

enum SeqStep {
    Go((usize, usize)),
    Failed(u32),
    Replayed,
}

/// RFC 8881 §2.6.3.1.1.1 and §18.34–§18.50: where an op may stand in a COMPOUND.
fn order_error(
    desc: &optable::OpDesc,
    index: usize,
    numops: usize,
    in_session: bool,
) -> Option<u32> {
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
fn over_limit(g: &SeqGrant, len: usize) -> Option<u32> {
    reply_too_big(len, g.max_response, g.max_response_cached, g.cachethis)
}

/// Bytes an op's result may add beyond its opnum and status, counted before it runs:
/// an op that changes state must not run unless its whole result fits (knfsd's rule
/// for OP_MODIFIES_SOMETHING); any other op is measured after it ran.
fn before_run(desc: &optable::OpDesc) -> usize {
    if desc.has(MODIFIES) {
        (desc.max_reply as usize).saturating_sub(RESULT_HEADER)
    } else {
        0
    }
}

fn request_hash(numops: usize, rest: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    numops.hash(&mut h);
    rest.len().hash(&mut h);
    rest[..rest.len().min(HASH_PREFIX)].hash(&mut h);
    h.finish()
}

pub fn encode_sequence_resok(out: &mut Vec<u8>, g: &SeqGrant) {
    out.put_fixed(&g.sessionid.0);
    out.put_u32(g.sequenceid);
    out.put_u32(g.slotid);
    out.put_u32(g.highest_slotid);
    out.put_u32(g.target_highest_slotid);
    out.put_u32(g.status_flags);
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
    out.put_u32(status::NFS4_OK);
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
        out.put_u32(status::NFS4ERR_RETRY_UNCACHED_REP);
        out.patch_u32(status_at, status::NFS4ERR_RETRY_UNCACHED_REP);
        return;
    }
    out.put_u32(status::NFS4_OK);
    out.extend_from_slice(&seq_resok);
    if ops > 1 {
        // Like knfsd: the op after SEQUENCE reports that its result was not cached.
        out.put_u32(next_opnum.unwrap_or(op::ILLEGAL));
        out.put_u32(status::NFS4ERR_RETRY_UNCACHED_REP);
        out.patch_u32(count_at, 2);
        out.patch_u32(status_at, status::NFS4ERR_RETRY_UNCACHED_REP);
    }
}
