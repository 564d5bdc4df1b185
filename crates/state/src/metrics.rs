//! Cheap per-core counters: each worker core increments its own cache line with relaxed
//! atomics (no lock, no sharing on the hot path); a scrape adds the cores up. Threads that
//! are not workers (reaper, control plane) use one extra slot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use ringnfs_proto::nfs4::consts::NfsStatus;

use serde::Serialize;

use super::binding::{Direction, UnbindReason};

/// Why a bind was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindRefusal {
    /// Over the per-session connection limit (NFS4ERR_DELAY).
    Limit,
    /// Would leave the session without a fore channel (NFS4ERR_INVAL).
    ForeRequired,
    /// Unknown or stale session (NFS4ERR_BADSESSION).
    BadSession,
}

impl BindRefusal {
    pub const ALL: [BindRefusal; 3] = [Self::Limit, Self::ForeRequired, Self::BadSession];
    pub fn label(self) -> &'static str {
        match self {
            Self::Limit => "limit",
            Self::ForeRequired => "fore_required",
            Self::BadSession => "bad_session",
        }
    }
}

/// Operation numbers fit below this bound (ILLEGAL is counted in the last slot).
pub const OP_SLOTS: usize = 80;

#[repr(align(128))]
struct CoreCounters {
    binds: [AtomicU64; 3],
    unbinds: [AtomicU64; 6],
    refusals: [AtomicU64; 3],
    ops: [AtomicU64; OP_SLOTS],
    op_errors: [AtomicU64; OP_SLOTS],
    /// Failures by (op slot, status). Touched only when an op fails, by this core (and a
    /// scrape), so the lock is uncontended on the success path and nearly so otherwise.
    op_status_errors: Mutex<HashMap<(u16, NfsStatus), u64>>,
    compounds: AtomicU64,
    rpc_calls: AtomicU64,
    rpc_garbage: AtomicU64,
    accepted: AtomicU64,
    closed: AtomicU64,
    /// CREATE_SESSION refused: the client holds `max_sessions_per_client` sessions.
    sessions_refused: AtomicU64,
}

impl Default for CoreCounters {
    fn default() -> Self {
        Self {
            binds: Default::default(),
            unbinds: Default::default(),
            refusals: Default::default(),
            ops: std::array::from_fn(|_| AtomicU64::new(0)),
            op_errors: std::array::from_fn(|_| AtomicU64::new(0)),
            op_status_errors: Mutex::new(HashMap::new()),
            compounds: AtomicU64::new(0),
            rpc_calls: AtomicU64::new(0),
            rpc_garbage: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            sessions_refused: AtomicU64::new(0),
        }
    }
}

pub struct Metrics {
    cores: Vec<CoreCounters>,
    /// COMPOUND latency by main operation (sampled).
    latency: crate::latency::Latency,
}

/// Summed counters at one moment.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub binds_fore: u64,
    pub binds_back: u64,
    pub binds_both: u64,
    pub unbinds_explicit: u64,
    pub unbinds_disconnect: u64,
    pub unbinds_session_destroy: u64,
    pub unbinds_reaper: u64,
    pub unbinds_drain: u64,
    pub unbinds_rebind: u64,
    pub refusals_limit: u64,
    pub refusals_fore_required: u64,
    pub refusals_bad_session: u64,
    pub compounds: u64,
    pub rpc_calls: u64,
    pub rpc_garbage: u64,
    pub connections_accepted: u64,
    pub connections_closed: u64,
    /// CREATE_SESSIONs refused for the per-client session limit.
    pub sessions_refused_per_client: u64,
    /// (op name, count) for ops seen at least once.
    pub ops: Vec<(String, u64)>,
    pub op_errors: Vec<(String, u64)>,
    /// (op name, nfsstat4, count) of failed ops.
    pub op_status_errors: Vec<(String, NfsStatus, u64)>,
    /// COMPOUND latency histograms by main operation (sampled).
    pub latency: Vec<crate::latency::OpLatency>,
}

impl MetricsSnapshot {
    pub fn binds_total(&self) -> u64 {
        self.binds_fore + self.binds_back + self.binds_both
    }
    pub fn unbinds_total(&self) -> u64 {
        self.unbinds_explicit
            + self.unbinds_disconnect
            + self.unbinds_session_destroy
            + self.unbinds_reaper
            + self.unbinds_drain
            + self.unbinds_rebind
    }
    /// How many times the op named `name` (e.g. "PUTROOTFH") ran.
    pub fn op_count(&self, name: &str) -> u64 {
        self.ops
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, c)| *c)
    }

    pub fn unbinds(&self, reason: UnbindReason) -> u64 {
        match reason {
            UnbindReason::Explicit => self.unbinds_explicit,
            UnbindReason::Disconnect => self.unbinds_disconnect,
            UnbindReason::SessionDestroy => self.unbinds_session_destroy,
            UnbindReason::Reaper => self.unbinds_reaper,
            UnbindReason::Drain => self.unbinds_drain,
            UnbindReason::Rebind => self.unbinds_rebind,
        }
    }
}

impl Metrics {
    /// `worker_cores` worker slots plus one shared slot for other threads.
    pub fn new(worker_cores: usize) -> Self {
        Self {
            cores: (0..worker_cores + 1)
                .map(|_| CoreCounters::default())
                .collect(),
            latency: crate::latency::Latency::new(worker_cores + 1, OP_SLOTS),
        }
    }

    /// The slot for threads that are not workers.
    pub fn shared_slot(&self) -> usize {
        self.cores.len() - 1
    }

    #[inline]
    fn core(&self, core: usize) -> &CoreCounters {
        &self.cores[core.min(self.cores.len() - 1)]
    }

    #[inline]
    pub fn bind(&self, core: usize, dir: Direction) {
        self.core(core).binds[dir as usize].fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub fn unbind(&self, core: usize, reason: UnbindReason) {
        self.core(core).unbinds[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub fn refusal(&self, core: usize, why: BindRefusal) {
        self.core(core).refusals[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Count an op and, when `status` is not NFS4_OK, its failure by status.
    #[inline]
    pub fn op(&self, core: usize, opnum: u32, status: NfsStatus) {
        let i = (opnum as usize).min(OP_SLOTS - 1);
        let c = self.core(core);
        c.ops[i].fetch_add(1, Ordering::Relaxed);
        if !status.is_ok() {
            c.op_errors[i].fetch_add(1, Ordering::Relaxed);
            *c.op_status_errors
                .lock()
                .entry((i as u16, status))
                .or_insert(0) += 1;
        }
    }

    /// Count a COMPOUND; whether to time it (one in [`crate::latency::SAMPLE_EVERY`]
    /// per core).
    #[inline]
    pub fn compound(&self, core: usize) -> bool {
        let n = self.core(core).compounds.fetch_add(1, Ordering::Relaxed);
        n.is_multiple_of(crate::latency::SAMPLE_EVERY)
    }

    /// A timed COMPOUND whose main operation is `opnum` took `took`.
    pub fn compound_latency(&self, core: usize, opnum: u32, took: std::time::Duration) {
        self.latency.record(core, opnum, took);
    }

    #[inline]
    pub fn rpc_call(&self, core: usize) {
        self.core(core).rpc_calls.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub fn rpc_garbage(&self, core: usize) {
        self.core(core).rpc_garbage.fetch_add(1, Ordering::Relaxed);
    }

    pub fn accepted(&self, core: usize) {
        self.core(core).accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn closed(&self, core: usize) {
        self.core(core).closed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn session_refused(&self, core: usize) {
        self.core(core)
            .sessions_refused
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let sum = |f: &dyn Fn(&CoreCounters) -> &AtomicU64| -> u64 {
            self.cores
                .iter()
                .map(|c| f(c).load(Ordering::Relaxed))
                .sum()
        };
        let per_op = |errors: bool| -> Vec<(String, u64)> {
            (0..OP_SLOTS)
                .filter_map(|i| {
                    let n: u64 = self
                        .cores
                        .iter()
                        .map(|c| {
                            if errors { &c.op_errors[i] } else { &c.ops[i] }.load(Ordering::Relaxed)
                        })
                        .sum();
                    let op = if i == OP_SLOTS - 1 { 10044 } else { i as u32 };
                    (n > 0).then(|| (ringnfs_proto::nfs4::consts::op_name(op).to_string(), n))
                })
                .collect()
        };
        MetricsSnapshot {
            binds_fore: sum(&|c| &c.binds[Direction::Fore as usize]),
            binds_back: sum(&|c| &c.binds[Direction::Back as usize]),
            binds_both: sum(&|c| &c.binds[Direction::Both as usize]),
            unbinds_explicit: sum(&|c| &c.unbinds[UnbindReason::Explicit as usize]),
            unbinds_disconnect: sum(&|c| &c.unbinds[UnbindReason::Disconnect as usize]),
            unbinds_session_destroy: sum(&|c| &c.unbinds[UnbindReason::SessionDestroy as usize]),
            unbinds_reaper: sum(&|c| &c.unbinds[UnbindReason::Reaper as usize]),
            unbinds_drain: sum(&|c| &c.unbinds[UnbindReason::Drain as usize]),
            unbinds_rebind: sum(&|c| &c.unbinds[UnbindReason::Rebind as usize]),
            refusals_limit: sum(&|c| &c.refusals[BindRefusal::Limit as usize]),
            refusals_fore_required: sum(&|c| &c.refusals[BindRefusal::ForeRequired as usize]),
            refusals_bad_session: sum(&|c| &c.refusals[BindRefusal::BadSession as usize]),
            compounds: sum(&|c| &c.compounds),
            rpc_calls: sum(&|c| &c.rpc_calls),
            rpc_garbage: sum(&|c| &c.rpc_garbage),
            connections_accepted: sum(&|c| &c.accepted),
            connections_closed: sum(&|c| &c.closed),
            sessions_refused_per_client: sum(&|c| &c.sessions_refused),
            latency: self.latency.snapshot(),
            ops: per_op(false),
            op_errors: per_op(true),
            op_status_errors: {
                let mut all: HashMap<(u16, NfsStatus), u64> = HashMap::new();
                for c in &self.cores {
                    for (k, v) in c.op_status_errors.lock().iter() {
                        *all.entry(*k).or_insert(0) += v;
                    }
                }
                let mut v: Vec<(String, NfsStatus, u64)> = all
                    .into_iter()
                    .map(|((i, st), n)| {
                        let op = if i as usize == OP_SLOTS - 1 {
                            10044
                        } else {
                            i as u32
                        };
                        (ringnfs_proto::nfs4::consts::op_name(op).to_string(), st, n)
                    })
                    .collect();
                v.sort();
                v
            },
        }
    }
}
