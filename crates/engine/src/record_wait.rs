//! A cluster node's rule for clients' recovery records: a client's record is durable in
//! the cluster's store before its first OPEN or LOCK is acknowledged (the ops whose row
//! has [`RECORDS_CLIENT`](crate::row::RECORDS_CLIENT)), so that after this node fails,
//! the node taking over knows the client may reclaim (RFC 8881 §8.4.2.1: a server must
//! know which clients held state before it lost it). The COMPOUND waits before the op
//! on a [`Signal`] the cluster writes once the record is stored, through the ring like
//! file I/O (`FileOp::Wait`), so no worker blocks; each client waits once.

use ringnfs_service::{FileIoDone, Signal};
use ringnfs_state::{SeqGrant, StateManager};

use crate::consts::{NfsStatus, status};
use crate::ctx::{IoFinish, PendingIo};

/// What the loop does before an op that needs its client's record.
pub(crate) enum Gate {
    /// The record could not be written (the store is unreachable): the op answers this
    /// status and the client retries.
    Refuse(NfsStatus),
    /// Wait for the record: suspend before the op, with this wait.
    Wait(PendingIo),
}

/// None: go on with the op (a single server, or the record is durable). `failed`: the
/// wait for this COMPOUND's record ended without it.
pub(crate) fn gate(state: &StateManager, grant: Option<&SeqGrant>, failed: bool) -> Option<Gate> {
    if failed {
        return Some(Gate::Refuse(status::NFS4ERR_DELAY));
    }
    let owner = state.record_needed(grant?)?;
    match Signal::new() {
        Ok((signal, wait)) => {
            state.record_client(&owner, signal);
            Some(Gate::Wait(PendingIo::new(
                wait.fd,
                wait.op,
                IoFinish::Record,
            )))
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot wait for a client's recovery record");
            Some(Gate::Refuse(status::NFS4ERR_DELAY))
        }
    }
}

/// The wait ended: whether the record is durable. If so, the client's later COMPOUNDs
/// (and this one's grant) need not wait again.
pub(crate) fn resumed(
    state: &StateManager,
    grant: Option<&mut SeqGrant>,
    done: &FileIoDone,
) -> bool {
    let ok = Signal::succeeded(done);
    if ok && let Some(g) = grant {
        g.recorded = true;
        state.client_recorded(g.clientid);
    }
    ok
}
