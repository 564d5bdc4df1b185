//! The NFS program on an RPC connection: implements the transport's [`Service`] by
//! decoding RPC calls, answering RPC-level errors, dispatching NULL and COMPOUND, and
//! handing replies to our callbacks back to whoever waits for them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use ringnfs_proto::rpc::message::{RPC_VERSION, ReplyFailure};
use ringnfs_proto::rpc::{
    AcceptStat, MsgError, RpcMessage, decode_message, encode_accepted, encode_rejected_auth,
    encode_rpc_mismatch,
};
use ringnfs_service::{ConnMeta, FileIoDone, FileIoRequest, Service};
use ringnfs_state::StateManager;

use super::compound::{Flow, Nfs4Engine, Suspended};
use super::consts::{NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND, PROC_NULL};
use super::export::Export;

pub struct NfsService {
    engine: Nfs4Engine,
    /// COMPOUNDs waiting for file I/O, by the token given to the transport.
    waiting: Mutex<HashMap<u64, Box<Suspended>>>,
    next_token: AtomicU64,
}

impl NfsService {
    pub fn new(state: Arc<StateManager>, export: Arc<Export>) -> Arc<Self> {
        Arc::new(Self {
            engine: Nfs4Engine::new(state, export),
            waiting: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
        })
    }

    pub fn state(&self) -> &Arc<StateManager> {
        &self.engine.state
    }

    /// COMPOUNDs waiting for file I/O right now.
    pub fn waiting(&self) -> usize {
        self.waiting.lock().len()
    }

    /// Hand a suspended COMPOUND's file operation to the connection's ring; if no ring
    /// can take it, run it here and go on until the COMPOUND is done or waits again.
    fn wait_for_io(&self, conn: &ConnMeta, mut s: Box<Suspended>, out: &mut Vec<u8>) {
        loop {
            let Some(op) = s.io.op.take() else {
                tracing::error!(
                    conn = conn.id,
                    "suspended COMPOUND without a file operation"
                );
                return;
            };
            let token = self.next_token.fetch_add(1, Ordering::Relaxed);
            let req = FileIoRequest {
                conn: conn.id,
                token,
                fd: s.io.fd.clone(),
                op,
            };
            // Register before submitting: the completion can only come later, but keep
            // the order obviously right.
            let mut waiting = self.waiting.lock();
            waiting.insert(token, s);
            match conn.control.submit_file_io(req) {
                Ok(()) => return,
                Err(req) => {
                    let back = waiting.remove(&token).expect("just inserted");
                    drop(waiting);
                    let done = ringnfs_fs::sync_io::run(req);
                    let rpc_start = out.len();
                    match self.engine.resume(conn, back, done, out) {
                        Flow::Done => return,
                        Flow::Suspend(mut again) => {
                            again.partial = out.split_off(rpc_start);
                            s = again;
                        }
                    }
                }
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

    fn on_file_io(&self, conn: &ConnMeta, done: FileIoDone, out: &mut Vec<u8>) {
        let Some(s) = self.waiting.lock().remove(&done.token) else {
            tracing::warn!(
                conn = conn.id,
                token = done.token,
                "file I/O for no waiting COMPOUND"
            );
            return;
        };
        let rpc_start = out.len();
        if let Flow::Suspend(mut again) = self.engine.resume(conn, s, done, out) {
            again.partial = out.split_off(rpc_start);
            self.wait_for_io(conn, again, out);
        }
    }

    fn on_file_io_orphaned(&self, done: FileIoDone) {
        // The connection is gone, but the COMPOUND must still finish: its slot waits for
        // the reply to cache, and a client retrying on a new connection gets that reply
        // (not NFS4ERR_DELAY forever). The reply itself goes nowhere.
        let Some(s) = self.waiting.lock().remove(&done.token) else {
            return;
        };
        let conn = s.conn.clone();
        let mut scratch = Vec::new();
        if let Flow::Suspend(mut again) = self.engine.resume(&conn, s, done, &mut scratch) {
            again.partial = std::mem::take(&mut scratch);
            self.wait_for_io(&conn, again, &mut scratch);
        }
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
                let header = out.len() - start;
                match self
                    .engine
                    .compound(conn, &cred, call.args, record.len(), out)
                {
                    Ok(Flow::Done) => {}
                    Ok(Flow::Suspend(mut s)) => {
                        // The reply so far waits with the COMPOUND; nothing goes out now.
                        s.partial = out.split_off(start);
                        s.header = header;
                        self.wait_for_io(conn, s, out);
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
    }
}
