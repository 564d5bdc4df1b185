//! The one rule for an op that must wait before it runs, for work another thread does
//! (a cluster node's agent talking to etcd): the COMPOUND suspends *before* the op, on
//! a [`Signal`]'s eventfd read through the ring like file I/O (`FileOp::Wait`), so no
//! worker blocks; when the signal is written the loop resumes and runs the op (again,
//! from its opnum), telling it how the wait ended. Two waits use it:
//! - [`Before::Record`]: a client's recovery record, before its first OPEN or LOCK
//!   (decided by the loop from the op's row, `record_wait.rs`);
//! - [`Before::Claim`]: a cluster claim of share reservations, asked by OPEN itself
//!   (`ops/open.rs`) through [`CompoundCtx::wait_before`](crate::ctx::CompoundCtx).
//!
//! The op sees the outcome in `CompoundCtx::waited` on its second run only.

use ringnfs_service::{FileIoDone, Signal, Waited};

use crate::consts::{NfsStatus, status};
pub(crate) use crate::ctx::Before;
use crate::ctx::{IoFinish, PendingIo};

/// A new wait: the signal for the thread doing the work, and the suspension's I/O. No
/// eventfd (out of descriptors): NFS4ERR_DELAY, the client retries.
pub(crate) fn wait(kind: Before) -> Result<(Signal, PendingIo), NfsStatus> {
    match Signal::new() {
        Ok((signal, w)) => Ok((signal, PendingIo::new(w.fd, w.op, IoFinish::Before(kind)))),
        Err(e) => {
            tracing::warn!(error = %e, ?kind, "cannot wait before an op");
            Err(status::NFS4ERR_DELAY)
        }
    }
}

/// How the wait ended.
pub(crate) fn outcome(done: &FileIoDone) -> Waited {
    Signal::outcome(done)
}
