//! The NFS program on an RPC connection: implements the transport's [`Service`] by
//! decoding RPC calls, answering RPC-level errors, dispatching NULL and COMPOUND, and
//! handing replies to our callbacks back to whoever waits for them. A COMPOUND that
//! waits for file I/O is returned to the transport as an [`Outcome::Suspend`] whose
//! continuation owns it: no table of waiting COMPOUNDs is kept here.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ringnfs_proto::rpc::auth::{AUTH_NONE, AUTH_TLS, AuthError, STARTTLS_VERIFIER};
use ringnfs_proto::rpc::message::{RPC_VERSION, ReplyFailure, encode_accepted_verf};
use ringnfs_proto::rpc::{
    AcceptStat, MsgError, RpcMessage, decode_message, encode_accepted, encode_rejected_auth,
    encode_rpc_mismatch,
};
use ringnfs_service::{Bytes, ConnMeta, Continuation, FileIoDone, Outcome, Service};
use ringnfs_state::StateManager;

use super::compound::{Flow, Nfs4Engine, Suspended};
use super::consts::{NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND, PROC_NULL};
use super::ctx::Source;
use super::export::{Export, ExportSet, Exports};

pub struct NfsService {
    engine: Arc<Nfs4Engine>,
}

impl NfsService {
    /// Serve one export, at the pseudo root "/".
    pub fn new(state: Arc<StateManager>, export: Arc<Export>) -> Arc<Self> {
        Self::with_exports(state, Arc::new(Exports::new(ExportSet::single(export))))
    }

    /// Serve `exports` (which a live change may replace).
    pub fn with_exports(state: Arc<StateManager>, exports: Arc<Exports>) -> Arc<Self> {
        Arc::new(Self {
            engine: Arc::new(Nfs4Engine::new(state, exports)),
        })
    }

    pub fn state(&self) -> &Arc<StateManager> {
        &self.engine.state
    }

    /// The export PUTROOTFH gives now (the one export, when there is one).
    pub fn export(&self) -> Arc<Export> {
        self.engine.exports.load().root().clone()
    }

    pub fn exports(&self) -> &Arc<Exports> {
        &self.engine.exports
    }
}

/// A COMPOUND waiting for its file operation, as handed to the transport: it resumes on
/// the connection's core when the operation completed (even if the connection closed
/// meanwhile: the slot still caches the reply, for the client's retry on another
/// connection).
struct ResumeCompound {
    engine: Arc<Nfs4Engine>,
    s: Box<Suspended>,
}

/// Return a suspended COMPOUND's file operation with its continuation. The reply so far
/// must already be in `s.partial` (a large READ takes it along, to read in place).
fn suspend(engine: &Arc<Nfs4Engine>, mut s: Box<Suspended>) -> Outcome {
    s.reply_into_read();
    let Some(io) = s.io.take() else {
        // Cannot happen: every suspension carries its operation. Nothing is sent; the
        // client retries (and the slot answers NFS4ERR_DELAY until its lease ends).
        tracing::error!(
            conn = s.conn.id,
            "suspended COMPOUND without a file operation"
        );
        return Outcome::Done;
    };
    Outcome::suspend(
        io,
        Box::new(ResumeCompound {
            engine: engine.clone(),
            s,
        }),
    )
}

impl Continuation for ResumeCompound {
    fn wants_fresh_reply(&self) -> bool {
        self.s.reply_in_io()
    }

    fn resume(self: Box<Self>, done: FileIoDone, out: &mut Vec<u8>) -> Outcome {
        let ResumeCompound { engine, s } = *self;
        let rpc_start = out.len();
        match engine.resume(s, done, out) {
            Flow::Done => Outcome::Done,
            Flow::Suspend(mut again) => {
                again.partial = out.split_off(rpc_start);
                suspend(&engine, again)
            }
        }
    }
}

impl Service for NfsService {
    fn on_accept(&self, conn: &ConnMeta) {
        tracing::debug!(conn = conn.id, peer = %conn.peer, core = conn.core, "connection accepted");
        self.engine.state.conn_opened(conn);
    }

    fn on_close(&self, conn: &ConnMeta) {
        tracing::debug!(conn = conn.id, peer = %conn.peer, "connection closed");
        self.engine.state.conn_closed(conn);
    }

    fn on_record(&self, conn: &ConnMeta, record: &[u8], out: &mut Vec<u8>) -> Outcome {
        self.call(conn, record, Source::Borrowed, out)
    }

    fn on_owned_record(&self, conn: &ConnMeta, record: Bytes, out: &mut Vec<u8>) -> Outcome {
        self.call(conn, &record, Source::Shared(&record), out)
    }
}

impl NfsService {
    /// One RPC record, decoded from `source`.
    fn call(
        &self,
        conn: &ConnMeta,
        record: &[u8],
        source: Source<'_>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let state = &self.engine.state;
        let msg = match decode_message(record) {
            Ok(m) => m,
            Err(MsgError::NoXid) => {
                state.metrics.rpc_garbage(conn.core);
                tracing::debug!(
                    conn = conn.id,
                    len = record.len(),
                    "record too short for an RPC header"
                );
                return Outcome::Done;
            }
            Err(MsgError::BadReply(xid)) => {
                state.metrics.rpc_garbage(conn.core);
                tracing::debug!(conn = conn.id, xid, "malformed RPC reply dropped");
                return Outcome::Done;
            }
            Err(MsgError::Garbage(xid)) => {
                state.metrics.rpc_garbage(conn.core);
                encode_accepted(out, xid, AcceptStat::GarbageArgs);
                return Outcome::Done;
            }
        };
        let call = match msg {
            RpcMessage::Reply(r) => {
                // A reply to a callback we sent on this connection.
                let result = r
                    .body
                    .map(|b| b.to_vec())
                    .map_err(|f: ReplyFailure| super::callback::reply_failure(f));
                if !state.callbacks.complete(conn.id, r.xid, result) {
                    tracing::debug!(conn = conn.id, xid = r.xid, "reply to no pending callback");
                }
                return Outcome::Done;
            }
            RpcMessage::Call(c) => c,
        };
        state.metrics.rpc_call(conn.core);
        conn.shared.requests.fetch_add(1, Ordering::Relaxed);
        if call.rpcvers != RPC_VERSION {
            encode_rpc_mismatch(out, call.xid);
            return Outcome::Done;
        }
        let cred = match call.cred {
            Ok(c) => c,
            Err(e) => {
                encode_rejected_auth(out, call.xid, e.auth_stat());
                return Outcome::Done;
            }
        };
        if call.prog != NFS4_PROGRAM {
            encode_accepted(out, call.xid, AcceptStat::ProgUnavail);
            return Outcome::Done;
        }
        if call.vers != NFS4_VERSION {
            encode_accepted(
                out,
                call.xid,
                AcceptStat::ProgMismatch(NFS4_VERSION, NFS4_VERSION),
            );
            return Outcome::Done;
        }
        if call.cred_flavor == AUTH_TLS {
            tls_probe(conn, call.xid, call.proc_, out);
            return Outcome::Done;
        }
        match call.proc_ {
            PROC_NULL => encode_accepted(out, call.xid, AcceptStat::Success),
            PROC_COMPOUND => {
                let start = out.len();
                encode_accepted(out, call.xid, AcceptStat::Success);
                let header = out.len() - start;
                match self
                    .engine
                    .compound(conn, &cred, (call.args, source), record.len(), out)
                {
                    Ok(Flow::Done) => {}
                    Ok(Flow::Suspend(mut s)) => {
                        // The reply so far waits with the COMPOUND; nothing goes out now.
                        s.partial = out.split_off(start);
                        s.header = header;
                        return suspend(&self.engine, s);
                    }
                    Err(_) => {
                        out.truncate(start);
                        state.metrics.rpc_garbage(conn.core);
                        encode_accepted(out, call.xid, AcceptStat::GarbageArgs);
                    }
                }
            }
            _ => encode_accepted(out, call.xid, AcceptStat::ProcUnavail),
        }
        Outcome::Done
    }
}

/// A call with the AUTH_TLS credential (RFC 9289 §4.1): only NULL may carry it (else
/// AUTH_BADCRED, as knfsd answers). When the transport can start TLS on the connection
/// the reply's verifier says "STARTTLS" and the client's TLS handshake follows on the
/// same connection; otherwise the reply has an empty AUTH_NONE verifier, which tells
/// the client at once that there is no TLS here.
fn tls_probe(conn: &ConnMeta, xid: u32, proc_: u32, out: &mut Vec<u8>) {
    if proc_ != PROC_NULL {
        encode_rejected_auth(out, xid, AuthError::BadCred.auth_stat());
        return;
    }
    if conn.shared.request_tls() {
        tracing::debug!(conn = conn.id, peer = %conn.peer, "AUTH_TLS probe: starting TLS");
        encode_accepted_verf(out, xid, AUTH_NONE, STARTTLS_VERIFIER, AcceptStat::Success);
    } else {
        tracing::debug!(conn = conn.id, peer = %conn.peer, "AUTH_TLS probe: no TLS on this connection");
        encode_accepted(out, xid, AcceptStat::Success);
    }
}
