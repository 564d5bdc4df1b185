//! The COMPOUND loop: header, minor version, the ordering rules, the
//! current-filehandle requirement, the current stateid, the reply-size budget, the
//! reply cache, metrics. What applies to an op is what its row in `optable.rs` says;
//! [`crate::row::exec`] is the part of the loop that runs for one row with the op's own
//! types. Module order (no file imports one that imports it): `ctx` ← `ops/*` and
//! `row` ← `optable` ← `compound` ← `program`.

use std::sync::Arc;

use ringnfs_proto::rpc::Credential;
use ringnfs_service::{Bytes, Caching, ConnMeta, FileIoDone, FileOp, RECORD_MARK_LEN};

use ringnfs_proto::rpc::message::ACCEPTED_REPLY_HEADER_LEN;
use ringnfs_proto::xdr::{XdrDecoder, XdrEncoder, XdrError};
use ringnfs_state::slots::CachedReply;
use ringnfs_state::{SeqGrant, StateManager};

use super::consts::{NFS4_OPAQUE_LIMIT, NfsStatus, op, status};
use super::ctx::{CompoundCtx, CurFh, IoFinish, IoOutcome, PendingIo, Source};
use super::export::{DEFAULT_ANON_ID, Export, ExportSet, Exports};
use super::optable;
use super::row::{
    ALWAYS_SOLO, ERROR_BODY, MODIFIES, NEEDS_FH, ONLY_FIRST, OpDesc, RECORDS_CLIENT, REPLAYS,
    SESSIONLESS, SOLO_WITHOUT_SEQUENCE, over_limit,
};
use crate::record_wait::{self, Gate};
use crate::wait_before::Before;
use ringnfs_fs::Caller;
use ringnfs_state::stateid::Stateid;

/// Hard cap on ops in one COMPOUND before any session says otherwise.
pub const MAX_COMPOUND_OPS: usize = 128;

/// The RPC reply header in front of COMPOUND4res: the session's reply limits count it
/// (RFC 8881 §18.36.3).
const RPC_REPLY_HEADER: usize = ACCEPTED_REPLY_HEADER_LEN;

/// The NFSv4 engine shared by all cores.
pub struct Nfs4Engine {
    pub state: Arc<StateManager>,
    /// The exports, swapped whole by a live change.
    pub exports: Arc<Exports>,
    /// Asynchronous COPYs in flight and ended.
    pub offloads: crate::offload::Offloads,
    /// Delegation recalls.
    pub recalls: crate::recall::Recalls,
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
    /// None before the first op: a fresh context.
    pub(crate) ctx: Option<CtxState>,
    /// The RPC call's length, for the client's traffic counters.
    pub(crate) call_len: usize,
    /// When the COMPOUND began, if it is timed ([`ringnfs_state::latency`]), and the
    /// operation its time is counted under.
    pub(crate) timed: Option<std::time::Instant>,
    pub(crate) main_op: Option<u32>,
    /// The wait for the client's recovery record ended without it (`record_wait`).
    pub(crate) record_failed: bool,
    /// How the wait the next op asked for ended (`wait_before`), for its second run.
    pub(crate) waited: Option<ringnfs_service::Waited>,
}

/// The parts of [`CompoundCtx`] that outlive one call. The exports are held, so an
/// export removed while the COMPOUND waits for its file I/O stays usable to its end.
pub struct CtxState {
    export: Arc<Export>,
    saved_export: Arc<Export>,
    carried: Carried,
}

/// The owned parts of a [`CompoundCtx`], fresh or from a [`CtxState`].
#[derive(Clone)]
struct Carried {
    caller: Caller,
    read_only: bool,
    wrong_sec: bool,
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
    /// The undecoded ops after the waiting one (sharing the record when it has a
    /// buffer of its own).
    pub(crate) rest: Bytes,
    pub(crate) cred: Credential,
    /// The connection the COMPOUND came on (it may close while the I/O runs).
    pub conn: ConnMeta,
    pub partial: Vec<u8>,
    pub header: usize,
}

/// A READ at least this large has the reply so far moved into its buffer, so that the
/// data is read into place (no copy of it afterwards).
pub const READ_IN_PLACE_FROM: u32 = 32 * 1024;

impl Suspended {
    /// For a large READ: move the reply so far (`partial`) into the READ's buffer after
    /// `RECORD_MARK_LEN` reserved bytes, with room for the data, so the ring reads the
    /// data to its final place and the transport can take the whole buffer as the
    /// reply (`Continuation::resume`).
    pub fn reply_into_read(&mut self) {
        let Some(FileOp::Read {
            len, into, caching, ..
        }) = self.io.op.as_mut()
        else {
            return;
        };
        // A direct read goes to aligned memory of its own and is copied from there.
        if *caching == Caching::Direct {
            return;
        }
        let IoFinish::Read { in_place, .. } = &mut self.io.finish else {
            return;
        };
        if *len < READ_IN_PLACE_FROM || !into.is_empty() {
            return;
        }
        // The data, its padding and room for the results of a few more ops.
        let mut buf =
            Vec::with_capacity(RECORD_MARK_LEN + self.partial.len() + *len as usize + 512);
        buf.resize(RECORD_MARK_LEN, 0);
        buf.extend_from_slice(&self.partial);
        *into = buf;
        *in_place = true;
        self.partial.clear();
    }

    /// The reply so far travels in the READ's `into` buffer, after `RECORD_MARK_LEN`
    /// reserved zero bytes, and the data is read in place after it
    /// ([`Suspended::reply_into_read`]).
    pub(crate) fn reply_in_io(&self) -> bool {
        matches!(self.io.finish, IoFinish::Read { in_place: true, .. })
    }
}

impl CompoundCtx<'_> {
    fn save(&self) -> CtxState {
        CtxState {
            export: self.export.clone(),
            saved_export: self.saved_export.clone(),
            carried: Carried {
                caller: self.caller.clone(),
                read_only: self.read_only,
                wrong_sec: self.wrong_sec,
                session: self.session,
                current_fh: self.current_fh,
                saved_fh: self.saved_fh,
                current_stateid: self.current_stateid,
                saved_stateid: self.saved_stateid,
            },
        }
    }
}

impl Nfs4Engine {
    pub fn new(state: Arc<StateManager>, exports: Arc<Exports>) -> Self {
        // One dispatcher sends every callback, on the slots each client granted.
        let callbacks = crate::cb_dispatch::Callbacks::new(state.clone());
        let offloads = crate::offload::Offloads::new(state.clone(), callbacks.clone());
        let recalls = crate::recall::Recalls::new(callbacks);
        Self {
            state,
            exports,
            offloads,
            recalls,
        }
    }

    /// Recall this node's clients' delegations of `file` because another cluster node's
    /// OPEN conflicts with them (`FileStateTable::open_in_cluster`): CB_RECALL on the
    /// handle they were given under, through the callback dispatcher (never waits).
    pub fn recall_for_cluster(&self, file: &ringnfs_fs::ObjHandle) {
        let fh = self.state.files.cluster_recall_asked(file);
        let r = self
            .state
            .files
            .recalls_for(file, None, true, std::time::Instant::now());
        if r.send.is_empty() {
            return;
        }
        match fh {
            Some(fh) => self.recalls.send(r.send, &fh),
            None => tracing::warn!(
                ?file,
                "a delegation to recall for another node has no handle; it is revoked after a lease"
            ),
        }
    }

    /// The context of a COMPOUND: a fresh one before its first op (no filehandle, the
    /// pseudo root's export, no caller yet: the first filehandle sets it), or the one
    /// `held` when it suspended.
    #[allow(clippy::too_many_arguments)]
    fn ctx<'a>(
        &'a self,
        conn: &'a ConnMeta,
        cred: &'a Credential,
        source: Source<'a>,
        minor: u32,
        set: &'a ExportSet,
        held: Option<&'a CtxState>,
    ) -> CompoundCtx<'a> {
        let (export, saved_export, s) = match held {
            Some(h) => (&h.export, &h.saved_export, h.carried.clone()),
            None => (
                set.root(),
                set.root(),
                Carried {
                    caller: Caller {
                        uid: DEFAULT_ANON_ID,
                        gid: DEFAULT_ANON_ID,
                        gids: Vec::new(),
                    },
                    read_only: true,
                    wrong_sec: false,
                    session: None,
                    current_fh: None,
                    saved_fh: None,
                    current_stateid: None,
                    saved_stateid: None,
                },
            ),
        };
        CompoundCtx {
            source,
            state: &self.state,
            conn,
            cred,
            minor,
            exports: set,
            export,
            saved_export,
            offloads: &self.offloads,
            recalls: &self.recalls,
            caller: s.caller,
            read_only: s.read_only,
            wrong_sec: s.wrong_sec,
            export_ops: 0,
            session: s.session,
            current_fh: s.current_fh,
            saved_fh: s.saved_fh,
            current_stateid: s.current_stateid,
            saved_stateid: s.saved_stateid,
            pending_io: None,
            wait_before: None,
            waited: None,
            reply_room: usize::MAX,
            reply_used: 0,
            numops: 0,
            request_len: 0,
            request_hash: 0,
            replay: None,
        }
    }

    /// Execute the COMPOUND in `args` (of an RPC call `request_len` bytes long, decoded
    /// from `source`) and append COMPOUND4res to `out`.
    pub fn compound(
        &self,
        conn: &ConnMeta,
        cred: &Credential,
        (args, source): (&[u8], Source<'_>),
        request_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<Flow, GarbageArgs> {
        let state = &*self.state;
        let timed = state
            .metrics
            .compound(conn.core)
            .then(std::time::Instant::now);
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
            ctx: None,
            call_len: request_len,
            timed,
            main_op: None,
            record_failed: false,
            waited: None,
        };
        let set = self.exports.load();
        Ok(self.run(
            conn,
            cred,
            (&mut d, source),
            (ls, &set),
            start,
            (request_len, tag),
            out,
        ))
    }

    /// Continue a suspended COMPOUND once its file I/O is `done`; appends the reply (or
    /// suspends again) on the connection the COMPOUND came on.
    pub fn resume(&self, mut s: Box<Suspended>, mut done: FileIoDone, out: &mut Vec<u8>) -> Flow {
        let rpc_start = if s.reply_in_io() {
            // The reply so far and the data read after it are in the READ's buffer.
            let mut buf = std::mem::take(&mut done.buf);
            if out.len() == RECORD_MARK_LEN
                && out.iter().all(|b| *b == 0)
                && buf.len() >= RECORD_MARK_LEN
            {
                // A fresh reply buffer: take ours whole (its first bytes are reserved
                // for the transport's record mark in the same way).
                std::mem::swap(out, &mut buf);
                RECORD_MARK_LEN
            } else {
                let at = out.len();
                out.extend_from_slice(buf.get(RECORD_MARK_LEN..).unwrap_or_default());
                at
            }
        } else {
            let at = out.len();
            out.extend_from_slice(&s.partial);
            at
        };
        let start = rpc_start + s.header;
        if let IoFinish::Before(kind) = s.io.finish {
            // The waiting op has not run: it runs now, told how the wait ended.
            match kind {
                Before::Record => {
                    let grant = s
                        .state
                        .ctx
                        .as_mut()
                        .and_then(|c| c.carried.session.as_mut());
                    s.state.record_failed = !record_wait::resumed(&self.state, grant, &done);
                }
                Before::Claim => s.state.waited = Some(crate::wait_before::outcome(&done)),
            }
        } else {
            s = match self.finish_io(s, done, start, out) {
                Ok(s) => s,
                Err(again) => return Flow::Suspend(again),
            };
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
        let source = Source::Shared(&rest);
        let set = self.exports.load();
        let flow = self.run(
            &conn,
            &cred,
            (&mut d, source),
            (state, &set),
            start,
            (0, b""),
            out,
        );
        if let Flow::Suspend(mut again) = flow {
            // `run` built this suspension with the header of its own frame; keep ours.
            again.header = header;
            return Flow::Suspend(again);
        }
        flow
    }

    /// The suspended op's file operation completed: finish its result (at `start` +
    /// its offset in `out`; an error ends the loop there, as its state then says), or
    /// `Err` with the suspension when the op waits for another file operation.
    fn finish_io(
        &self,
        mut s: Box<Suspended>,
        done: FileIoDone,
        start: usize,
        out: &mut Vec<u8>,
    ) -> Result<Box<Suspended>, Box<Suspended>> {
        let io = std::mem::replace(&mut s.io.finish, IoFinish::Done);
        let opnum = s.io.opnum;
        let st_at = start + s.io.st_at;
        // The op's export: the one current when it suspended (held, even if removed since).
        let export = s.state.ctx.as_ref().map(|c| c.export.clone());
        let export = export.unwrap_or_else(|| self.exports.load().root().clone());
        let outcome = super::ops::io::finish(&self.state, &export, io, done, st_at, out);
        match outcome {
            IoOutcome::Again { fd, op, finish } => {
                // Still waiting: the caller moves the reply so far back into `partial`.
                if let Some(fd) = fd {
                    s.io.fd = fd;
                }
                s.io.finish = finish;
                s.io.op = Some(op);
                Err(s)
            }
            IoOutcome::Status(st) => {
                self.state.metrics.op(s.conn.core, opnum, st);
                export.stats.op();
                if st != status::NFS4_OK {
                    out.truncate(st_at + 4);
                    out.patch_u32(st_at, st.code());
                    s.state.final_status = st;
                    s.state.next = s.state.numops;
                }
                Ok(s)
            }
        }
    }

    /// Run ops from `ls.next` on; `start` is where COMPOUND4res begins in `out`.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        conn: &ConnMeta,
        cred: &Credential,
        (d, source): (&mut XdrDecoder<'_>, Source<'_>),
        (mut ls, set): (LoopState, &ExportSet),
        start: usize,
        (request_len, tag): (usize, &[u8]),
        out: &mut Vec<u8>,
    ) -> Flow {
        let state = &*self.state;
        let minor = ls.minor;
        let numops = ls.numops;
        let held = ls.ctx.take();
        let mut ctx = self.ctx(conn, cred, source, minor, set, held.as_ref());
        ctx.numops = numops;
        ctx.request_len = request_len;
        while ls.next < numops {
            // Where this op begins, to suspend before it (`record_wait`).
            let before = d.rest();
            let i = ls.next;
            ls.next += 1;
            let Ok(opnum) = d.u32() else {
                ls.final_status = status::NFS4ERR_BADXDR;
                break;
            };
            ls.results += 1;
            if ls.main_op.is_none_or(ringnfs_state::latency::is_setup_op) {
                ls.main_op = Some(opnum);
            }
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
                    } else if ctx.wrong_sec && desc.has(NEEDS_FH) && !sec_exempt(opnum) {
                        status::NFS4ERR_WRONGSEC
                    } else if let Some(gate) = desc
                        .has(RECORDS_CLIENT)
                        .then(|| record_wait::gate(state, ctx.session.as_ref(), ls.record_failed))
                        .flatten()
                    {
                        match gate {
                            Gate::Refuse(st) => st,
                            Gate::Wait(io) => {
                                return suspend_before(
                                    ls,
                                    &mut ctx,
                                    io,
                                    (before, op_start),
                                    (cred, conn),
                                    out,
                                );
                            }
                        }
                    } else {
                        ctx.reply_used = reply_len(start, out);
                        ctx.reply_room = ctx.session.map_or(usize::MAX, |g| {
                            reply_limit(&g).saturating_sub(ctx.reply_used)
                        });
                        ctx.waited = ls.waited.take();
                        let st = match (desc.exec)(&mut ctx, d, out) {
                            Ok(()) => status::NFS4_OK,
                            Err(e) => e,
                        };
                        ctx.waited = None;
                        if let Some(io) = ctx.wait_before.take() {
                            // The handler asked to wait before it can run.
                            ctx.pending_io = None;
                            return suspend_before(
                                ls,
                                &mut ctx,
                                io,
                                (before, op_start),
                                (cred, conn),
                                out,
                            );
                        }
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
                ctx.flush_export_ops();
                ls.ctx = Some(ctx.save());
                return Flow::Suspend(Box::new(Suspended {
                    state: ls,
                    io,
                    rest: ctx.source.keep(d.rest()),
                    cred: cred.clone(),
                    conn: conn.clone(),
                    partial: Vec::new(),
                    header: 0,
                }));
            }
            state.metrics.op(conn.core, opnum, st);
            if ctx.current_fh.is_some() {
                ctx.export_ops += 1;
            }
            if st != status::NFS4_OK {
                if !keep_body {
                    out.truncate(st_at + 4);
                }
                out.patch_u32(st_at, st.code());
                ls.final_status = st;
                break;
            }
        }
        ctx.flush_export_ops();
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
            let traffic = ringnfs_state::lease::Traffic {
                ops: u64::from(ls.results),
                bytes_in: ls.call_len as u64,
                bytes_out: reply_len(start, out) as u64,
            };
            state.sequence_done(&grant, reply, traffic);
        }
        if let (Some(t0), Some(opnum)) = (ls.timed, ls.main_op) {
            state
                .metrics
                .compound_latency(conn.core, opnum, t0.elapsed());
        }
        Flow::Done
    }
}

/// Ops that use the current filehandle and still run when its export does not admit
/// the call's security flavor (RFC 8881 §2.6.3.1.1): they set or save it, or ask which
/// flavors it takes. LOOKUP and LOOKUPP judge the filehandle they reach themselves.
fn sec_exempt(opnum: u32) -> bool {
    matches!(
        opnum,
        op::SAVEFH | op::RESTOREFH | op::SECINFO | op::SECINFO_NO_NAME | op::LOOKUP | op::LOOKUPP
    )
}

/// RFC 8881 §2.6.3.1.1.1 and §18.34–§18.50: where an op may stand in a COMPOUND.
fn order_error(desc: &OpDesc, index: usize, numops: usize, in_session: bool) -> Option<NfsStatus> {
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

/// Suspend before the op that begins at `before` in the request and at `op_start` in
/// the reply (`wait_before`): what it wrote goes, and it runs again from its opnum when
/// `io` completes.
fn suspend_before(
    mut ls: LoopState,
    ctx: &mut CompoundCtx<'_>,
    io: PendingIo,
    (before, op_start): (&[u8], usize),
    (cred, conn): (&Credential, &ConnMeta),
    out: &mut Vec<u8>,
) -> Flow {
    out.truncate(op_start);
    ls.next -= 1;
    ls.results -= 1;
    ctx.flush_export_ops();
    ls.ctx = Some(ctx.save());
    Flow::Suspend(Box::new(Suspended {
        state: ls,
        io,
        rest: ctx.source.keep(before),
        cred: cred.clone(),
        conn: conn.clone(),
        partial: Vec::new(),
        header: 0,
    }))
}
