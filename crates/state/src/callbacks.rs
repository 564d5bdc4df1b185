//! Calls the server sends to clients on the back channel, matched with their replies by
//! xid. A caller waits on its own thread (never a worker core) with a timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};
use parking_lot::Mutex;

use ringnfs_proto::rpc::Credential;
use ringnfs_service::{ConnId, ConnMeta};

/// Where and how to send a callback for one session.
#[derive(Debug, Clone)]
pub struct BackChannel {
    pub conn: ConnId,
    pub program: u32,
    pub cred: Credential,
    /// The back-channel slot taken for this call (when one was) and its sequence id.
    pub slot: u32,
    pub seqid: u32,
    /// Slots the server may use on this session's back channel.
    pub slots: u32,
    /// Minor version of the session's CB_COMPOUNDs.
    pub minor: u32,
    pub meta: Option<ConnMeta>,
}

/// Why a callback got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    #[error("session has no back-channel connection")]
    NoBackChannel,
    #[error("connection closed before the reply")]
    Disconnected,
    #[error("no reply within the timeout")]
    Timeout,
    #[error("client rejected the call: {0}")]
    Rejected(String),
    #[error("callback failed with status {0}")]
    Status(ringnfs_proto::nfs4::consts::NfsStatus),
}

/// Reply bytes (the results after the RPC header) or the failure.
pub type CallbackResult = Result<Vec<u8>, CallbackError>;

struct Pending {
    conn: ConnId,
    tx: Sender<CallbackResult>,
}

#[derive(Default)]
pub struct CallbackTable {
    next_xid: AtomicU32,
    pending: Mutex<HashMap<u32, Pending>>,
}

impl CallbackTable {
    /// Register a call about to be sent on `conn`; returns its xid and the receiver.
    pub fn register(&self, conn: ConnId) -> (u32, Receiver<CallbackResult>) {
        // Start server xids far from where clients start theirs.
        let xid = self.next_xid.fetch_add(1, Ordering::Relaxed) ^ 0x5a00_0000;
        let (tx, rx) = bounded(1);
        self.pending.lock().insert(xid, Pending { conn, tx });
        (xid, rx)
    }

    /// A reply arrived on `conn`; true if it answered one of our calls.
    pub fn complete(&self, conn: ConnId, xid: u32, result: CallbackResult) -> bool {
        let mut pending = self.pending.lock();
        match pending.get(&xid) {
            Some(p) if p.conn == conn => {
                let p = pending.remove(&xid).expect("present");
                let _ = p.tx.try_send(result);
                true
            }
            _ => false,
        }
    }

    /// Forget a call (timed out).
    pub fn cancel(&self, xid: u32) {
        self.pending.lock().remove(&xid);
    }

    /// Fail every call waiting on a closed connection.
    pub fn conn_closed(&self, conn: ConnId) {
        let mut pending = self.pending.lock();
        if pending.is_empty() {
            return;
        }
        pending.retain(|_, p| {
            if p.conn == conn {
                let _ = p.tx.try_send(Err(CallbackError::Disconnected));
                false
            } else {
                true
            }
        });
    }

    /// Wait for the reply to `xid`.
    pub fn wait(
        &self,
        xid: u32,
        rx: &Receiver<CallbackResult>,
        timeout: Duration,
    ) -> CallbackResult {
        match rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(_) => {
                self.cancel(xid);
                Err(CallbackError::Timeout)
            }
        }
    }
}
