//! COMPOUND latency by operation, as histograms: how long the server took from a
//! COMPOUND's decoding to its reply (file I/O it waited for included), labelled with its
//! main operation (the first that is not SEQUENCE or a filehandle op: READ for
//! SEQUENCE+PUTFH+READ, GETATTR for SEQUENCE+PUTFH+GETATTR). One COMPOUND in
//! [`SAMPLE_EVERY`] per core is timed, so that the two clock reads stay off most small
//! COMPOUNDs (whose whole server time is a few microseconds) while the histograms keep
//! their shape. Each core adds to its own counters (relaxed atomics); a scrape adds them
//! up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ringnfs_proto::nfs4::consts::op;

/// Upper bounds of the buckets, microseconds; one more bucket counts the rest (+Inf).
pub const BUCKETS_US: [u64; 14] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 1_000_000,
];
const SLOTS: usize = BUCKETS_US.len() + 1;

/// One COMPOUND in this many is timed.
pub const SAMPLE_EVERY: u64 = 16;

#[repr(align(128))]
struct CoreHistograms {
    /// [op slot][bucket] counts.
    buckets: Vec<AtomicU64>,
    sum_us: Vec<AtomicU64>,
}

impl CoreHistograms {
    fn new(op_slots: usize) -> Self {
        Self {
            buckets: (0..op_slots * SLOTS).map(|_| AtomicU64::new(0)).collect(),
            sum_us: (0..op_slots).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

pub struct Latency {
    cores: Vec<CoreHistograms>,
    /// Operation numbers below this have a histogram each; the others share the last.
    op_slots: usize,
}

/// One operation's histogram, summed over the cores.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OpLatency {
    pub op: String,
    /// Count per bucket of [`BUCKETS_US`], then the rest.
    pub buckets: Vec<u64>,
    pub sum_us: u64,
    pub count: u64,
}

/// Whether `opnum` only sets up the COMPOUND (a COMPOUND is not labelled with it if
/// another op follows).
pub fn is_setup_op(opnum: u32) -> bool {
    matches!(
        opnum,
        op::SEQUENCE
            | op::PUTFH
            | op::PUTROOTFH
            | op::PUTPUBFH
            | op::SAVEFH
            | op::RESTOREFH
            | op::GETFH
    )
}

impl Latency {
    pub fn new(cores: usize, op_slots: usize) -> Self {
        let op_slots = op_slots.max(1);
        Self {
            cores: (0..cores).map(|_| CoreHistograms::new(op_slots)).collect(),
            op_slots,
        }
    }

    /// A COMPOUND whose main op is `opnum` took `took`.
    pub fn record(&self, core: usize, opnum: u32, took: Duration) {
        let c = &self.cores[core.min(self.cores.len() - 1)];
        let slot = (opnum as usize).min(self.op_slots - 1);
        let us = took.as_micros().min(u128::from(u64::MAX)) as u64;
        let b = BUCKETS_US
            .iter()
            .position(|le| us <= *le)
            .unwrap_or(SLOTS - 1);
        c.buckets[slot * SLOTS + b].fetch_add(1, Ordering::Relaxed);
        c.sum_us[slot].fetch_add(us, Ordering::Relaxed);
    }

    /// The histograms of the operations timed at least once, by opnum.
    pub fn snapshot(&self) -> Vec<OpLatency> {
        (0..self.op_slots)
            .filter_map(|slot| {
                let buckets: Vec<u64> = (0..SLOTS)
                    .map(|b| {
                        self.cores
                            .iter()
                            .map(|c| c.buckets[slot * SLOTS + b].load(Ordering::Relaxed))
                            .sum()
                    })
                    .collect();
                let count: u64 = buckets.iter().sum();
                let opnum = if slot == self.op_slots - 1 {
                    op::ILLEGAL
                } else {
                    slot as u32
                };
                (count > 0).then(|| OpLatency {
                    op: ringnfs_proto::nfs4::consts::op_name(opnum).to_string(),
                    buckets,
                    sum_us: self
                        .cores
                        .iter()
                        .map(|c| c.sum_us[slot].load(Ordering::Relaxed))
                        .sum(),
                    count,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_sums() {
        let l = Latency::new(2, 80);
        l.record(0, op::READ, Duration::from_micros(30));
        l.record(1, op::READ, Duration::from_micros(30));
        l.record(1, op::READ, Duration::from_secs(5));
        l.record(0, op::GETATTR, Duration::from_micros(1));
        let s = l.snapshot();
        let read = s.iter().find(|o| o.op == "READ").unwrap();
        assert_eq!(read.count, 3);
        assert_eq!(read.buckets[3], 2, "30 µs: the 50 µs bucket");
        assert_eq!(read.buckets[SLOTS - 1], 1, "5 s: +Inf");
        assert_eq!(read.sum_us, 5_000_060);
        assert_eq!(s.iter().find(|o| o.op == "GETATTR").unwrap().buckets[0], 1);
        assert!(is_setup_op(op::PUTFH) && !is_setup_op(op::READ));
    }
}
