//! The NFS program on an RPC connection: implements the transport's [`Service`] by
//! decoding RPC calls, answering RPC-level errors, dispatching NULL and COMPOUND, and
//! handing replies to our callbacks back to whoever waits for them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::rpc::message::{RPC_VERSION, ReplyFailure};
use crate::rpc::{
    AcceptStat, MsgError, RpcMessage, decode_message, encode_accepted, encode_rejected_auth,
    encode_rpc_mismatch,
};
use crate::service::{ConnMeta, Service};
use crate::state::StateManager;

use super::compound::Nfs4Engine;
use super::consts::{NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND, PROC_NULL};
use super::export::Export;

pub struct NfsService {
    engine: Nfs4Engine,
}

impl NfsService {
    pub fn new(state: Arc<StateManager>, export: Arc<Export>) -> Arc<Self> {
        Arc::new(Self {
            engine: Nfs4Engine::new(state, export),
        })
    }

    pub fn state(&self) -> &Arc<StateManager> {
        &self.engine.state
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

    fn on_record(&self, conn: &ConnMeta, record: &[u8], out: &mut Vec<u8>) {
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
                return;
            }
            Err(MsgError::BadReply(xid)) => {
                state.metrics.rpc_garbage(conn.core);
                tracing::debug!(conn = conn.id, xid, "malformed RPC reply dropped");
                return;
            }
            Err(MsgError::Garbage(xid)) => {
                state.metrics.rpc_garbage(conn.core);
                encode_accepted(out, xid, AcceptStat::GarbageArgs);
                return;
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
                return;
            }
            RpcMessage::Call(c) => c,
        };
        state.metrics.rpc_call(conn.core);
        conn.shared.requests.fetch_add(1, Ordering::Relaxed);
        if call.rpcvers != RPC_VERSION {
            encode_rpc_mismatch(out, call.xid);
            return;
        }
        let cred = match call.cred {
            Ok(c) => c,
            Err(e) => {
                encode_rejected_auth(out, call.xid, e.auth_stat());
                return;
            }
        };
        if call.prog != NFS4_PROGRAM {
            encode_accepted(out, call.xid, AcceptStat::ProgUnavail);
            return;
        }
        if call.vers != NFS4_VERSION {
            encode_accepted(
                out,
                call.xid,
                AcceptStat::ProgMismatch(NFS4_VERSION, NFS4_VERSION),
            );
            return;
        }
        match call.proc_ {
            PROC_NULL => encode_accepted(out, call.xid, AcceptStat::Success),
            PROC_COMPOUND => {
                let start = out.len();
                encode_accepted(out, call.xid, AcceptStat::Success);
                if self.engine.compound(conn, &cred, call.args, out).is_err() {
                    out.truncate(start);
                    state.metrics.rpc_garbage(conn.core);
                    encode_accepted(out, call.xid, AcceptStat::GarbageArgs);
                }
            }
            _ => encode_accepted(out, call.xid, AcceptStat::ProcUnavail),
        }
    }
}
