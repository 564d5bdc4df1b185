//! Admission limits shared by all workers: total open connections and open connections
//! per peer IP address. A connection over a limit is closed right after accept, before
//! the service sees it, and counted by cause.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

/// Why an accepted connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `max_connections` open already.
    Total,
    /// `max_connections_per_peer` open from this address already.
    PerPeer,
}

#[derive(Debug, Default)]
pub(crate) struct ConnLimiter {
    /// 0 = unlimited.
    max_total: usize,
    /// 0 = unlimited (then no per-peer map is kept).
    max_per_peer: usize,
    total: AtomicUsize,
    per_peer: Mutex<HashMap<IpAddr, usize>>,
}

impl ConnLimiter {
    pub fn new(max_total: usize, max_per_peer: usize) -> Self {
        Self {
            max_total,
            max_per_peer,
            ..Self::default()
        }
    }

    /// Take a place for a connection from `peer`, or say which limit is full. A place
    /// taken must be given back with [`release`](Self::release).
    pub fn admit(&self, peer: IpAddr) -> Result<(), Refusal> {
        let before = self.total.fetch_add(1, Ordering::AcqRel);
        if self.max_total != 0 && before >= self.max_total {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Total);
        }
        if self.max_per_peer != 0 {
            let mut map = self.per_peer.lock();
            let n = map.entry(peer).or_insert(0);
            if *n >= self.max_per_peer {
                drop(map);
                self.total.fetch_sub(1, Ordering::AcqRel);
                return Err(Refusal::PerPeer);
            }
            *n += 1;
        }
        Ok(())
    }

    pub fn release(&self, peer: IpAddr) {
        self.total.fetch_sub(1, Ordering::AcqRel);
        if self.max_per_peer != 0 {
            let mut map = self.per_peer.lock();
            if let Some(n) = map.get_mut(&peer) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&peer);
                }
            }
        }
    }

    /// Open connections holding a place.
    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_and_per_peer_limits() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let l = ConnLimiter::new(3, 2);
        assert!(l.admit(a).is_ok());
        assert!(l.admit(a).is_ok());
        assert_eq!(l.admit(a), Err(Refusal::PerPeer));
        assert!(l.admit(b).is_ok());
        assert_eq!(l.admit(b), Err(Refusal::Total));
        assert_eq!(l.open(), 3);
        l.release(a);
        assert!(l.admit(b).is_ok());
        l.release(a);
        l.release(b);
        l.release(b);
        assert_eq!(l.open(), 0);
        assert!(l.per_peer.lock().is_empty(), "no entry kept for gone peers");
    }

    #[test]
    fn zero_means_unlimited() {
        let l = ConnLimiter::new(0, 0);
        let a: IpAddr = "::1".parse().unwrap();
        for _ in 0..10_000 {
            l.admit(a).unwrap();
        }
        assert_eq!(l.open(), 10_000);
        assert!(l.per_peer.lock().is_empty());
    }
}
