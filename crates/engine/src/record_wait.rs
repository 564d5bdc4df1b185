//! A cluster node's rule for clients' recovery records: a client's record is durable in
//! the cluster's store before its first OPEN or LOCK is acknowledged (the ops whose row
//! has [`RECORDS_CLIENT`](crate::row::RECORDS_CLIENT)), so that after this node fails,
//! the node taking over knows the client may reclaim (RFC 8881 §8.4.2.1: a server must
//! know which clients held state before it lost it). The COMPOUND waits before the op
//! (`wait_before.rs`) until the cluster wrote the record; each client waits once.

use ringnfs_service::{FileIoDone, Waited};
use ringnfs_state::{SeqGrant, StateManager};

use crate::consts::{NfsStatus, status};
use crate::ctx::PendingIo;
use crate::wait_before::{self, Before};

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
    match wait_before::wait(Before::Record) {
        Ok((signal, io)) => {
            state.record_client(&owner, signal);
            Some(Gate::Wait(io))
        }
        Err(st) => Some(Gate::Refuse(st)),
    }
}

/// The wait ended: whether the record is durable. If so, the client's later COMPOUNDs
/// (and this one's grant) need not wait again.
pub(crate) fn resumed(
    state: &StateManager,
    grant: Option<&mut SeqGrant>,
    done: &FileIoDone,
) -> bool {
    let ok = wait_before::outcome(done) == Waited::Succeeded;
    if ok && let Some(g) = grant {
        g.recorded = true;
        state.client_recorded(g.clientid);
    }
    ok
}
