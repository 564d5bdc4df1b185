//! Client leases. A lease is shared by a client record and its sessions, so SEQUENCE
//! renews it with one atomic store and no client-table lock; it also carries the other
//! per-client facts every COMPOUND touches: whether the client finished reclaiming, and
//! its traffic counters.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// Monotonic milliseconds since the server started.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    /// A clock that has been running for `ago` already (tests expire leases with it).
    #[cfg(test)]
    pub(crate) fn started_ago(ago: std::time::Duration) -> Self {
        Self {
            start: Instant::now().checked_sub(ago).expect("uptime"),
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// Wall-clock milliseconds since the Unix epoch (for display only).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[derive(Debug)]
pub struct Lease {
    last_renew_ms: AtomicU64,
    /// The client sent RECLAIM_COMPLETE with rca_one_fs FALSE: it may now obtain new
    /// locking state (RFC 8881 §18.51.3).
    reclaim_complete: AtomicBool,
    /// In a cluster: the client's recovery record is durable (written before its first
    /// OPEN or LOCK was acknowledged).
    recorded: AtomicBool,
    /// Operations in the client's COMPOUNDs in sessions it no longer has, and their
    /// RPC bytes (a live session counts its own, under its shard's lock).
    ops: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

/// A client's (or a session's) traffic in sessions since its client ID was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Traffic {
    pub ops: u64,
    /// RPC call bytes of its COMPOUNDs.
    pub bytes_in: u64,
    /// RPC reply bytes.
    pub bytes_out: u64,
}

impl Traffic {
    #[inline]
    pub fn add(&mut self, t: Traffic) {
        self.ops += t.ops;
        self.bytes_in += t.bytes_in;
        self.bytes_out += t.bytes_out;
    }
}

impl Lease {
    pub fn new(now_ms: u64) -> Self {
        Self {
            last_renew_ms: AtomicU64::new(now_ms),
            reclaim_complete: AtomicBool::new(false),
            recorded: AtomicBool::new(false),
            ops: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
        }
    }

    /// Keep the traffic of a session that is going.
    pub fn count(&self, t: Traffic) {
        self.ops.fetch_add(t.ops, Ordering::Relaxed);
        self.bytes_in.fetch_add(t.bytes_in, Ordering::Relaxed);
        self.bytes_out.fetch_add(t.bytes_out, Ordering::Relaxed);
    }

    pub fn traffic(&self) -> Traffic {
        Traffic {
            ops: self.ops.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
        }
    }

    pub fn reclaim_complete(&self) -> bool {
        self.reclaim_complete.load(Ordering::Acquire)
    }

    /// Record the client's global RECLAIM_COMPLETE; false if it had already sent one.
    pub fn complete_reclaim(&self) -> bool {
        !self.reclaim_complete.swap(true, Ordering::AcqRel)
    }

    /// In a cluster: whether the client's recovery record is durable.
    pub fn recorded(&self) -> bool {
        self.recorded.load(Ordering::Acquire)
    }

    pub fn set_recorded(&self) {
        self.recorded.store(true, Ordering::Release);
    }

    #[inline]
    pub fn renew(&self, now_ms: u64) {
        self.last_renew_ms.store(now_ms, Ordering::Relaxed);
    }

    pub fn last_renew_ms(&self) -> u64 {
        self.last_renew_ms.load(Ordering::Relaxed)
    }

    pub fn expired(&self, now_ms: u64, lease_ms: u64) -> bool {
        now_ms.saturating_sub(self.last_renew_ms()) > lease_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_expiry() {
        let l = Lease::new(1000);
        assert!(!l.expired(1500, 1000));
        assert!(l.expired(2001, 1000));
        l.renew(2000);
        assert!(!l.expired(2001, 1000));
    }
}
