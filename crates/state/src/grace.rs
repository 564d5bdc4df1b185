//! The optional grace period after a restart (RFC 8881 §8.4.2): clients that held state
//! before may reclaim it with OPEN CLAIM_PREVIOUS and LOCK reclaim; everyone else's
//! OPEN/LOCK wait with NFS4ERR_GRACE. Which clients may reclaim is kept on stable
//! storage: the owners of confirmed clients, one hex line each, in `state_dir/clients`.
//!
//! In a cluster ([`ClusterRecovery`], attached at start) the cluster decides instead:
//! grace is cluster-wide, the clients allowed to reclaim are those recorded by a node
//! that failed or restarted, and a client's record is written before its first OPEN or
//! LOCK is acknowledged (the COMPOUND waits for it, see [`ClusterRecovery::record`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ringnfs_service::Signal;

use super::locks::{CheckInvariants, RankedMutex, rank};

/// What a cluster of nodes decides about recovery, for this node (implemented over
/// etcd by the server; every call but [`Self::record`] answers from the node's own view,
/// without waiting on the network).
pub trait ClusterRecovery: Send + Sync {
    /// Whether the cluster-wide grace period is in force.
    fn in_grace(&self) -> bool;
    /// Whether a client with this owner held state on a node whose clients reclaim in
    /// the current grace period (and has not finished reclaiming).
    fn may_reclaim(&self, owner: &[u8]) -> bool;
    /// Whether this node may grant new state: false while it cannot reach the cluster's
    /// store (its membership may have expired, and another node may be letting its
    /// clients reclaim elsewhere).
    fn granting(&self) -> bool;
    /// Make the owner's recovery record durable for this node; `done` says when (or that
    /// it failed). Called before a client's first OPEN or LOCK is acknowledged.
    fn record(&self, owner: &[u8], done: Signal);
    /// The client sent its global RECLAIM_COMPLETE. Must not block: called with the
    /// client table locked.
    fn reclaim_complete(&self, owner: &[u8]);
    /// The client is gone (destroyed, expired): its record goes. Must not block: called
    /// with the client table locked.
    fn client_gone(&self, owner: &[u8]);
    /// The node's view, for the control plane.
    fn status(&self) -> ClusterStatus;
}

/// What a reclaim takes back (the label of `ringnfs_reclaims_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reclaim {
    Open,
    Delegation,
    Lock,
}

impl Reclaim {
    pub const ALL: [Reclaim; 3] = [Reclaim::Open, Reclaim::Delegation, Reclaim::Lock];

    pub fn label(self) -> &'static str {
        match self {
            Reclaim::Open => "open",
            Reclaim::Delegation => "delegation",
            Reclaim::Lock => "lock",
        }
    }
}

/// A cluster node's view for the control plane (`ringnfs_cluster_*`, `GET
/// /api/v1/cluster`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ClusterStatus {
    pub cluster: String,
    pub node_id: u32,
    /// Renewing its membership: may grant new state.
    pub granting: bool,
    /// Its membership expired while etcd was out of reach: it grants nothing new until
    /// restarted.
    pub fenced: bool,
    pub grace_epoch: u64,
    pub in_grace: bool,
    /// Nodes whose clients reclaim in the grace in force.
    pub reclaiming_nodes: Vec<u32>,
    /// Unix time (ms) at which the grace in force ends at the latest (0: none).
    pub grace_deadline_ms: u64,
    /// Clients that may still reclaim.
    pub pending_reclaims: usize,
    /// Live nodes: id and listen addresses.
    pub nodes: Vec<(u32, Vec<String>)>,
    /// Client records this node holds.
    pub records: usize,
    pub records_written: u64,
    pub record_failures: u64,
    pub graces_started: u64,
    pub graces_ended: u64,
    pub keepalive_failures: u64,
    /// Claims of share reservations and delegations this node put (`files/claims.rs`),
    /// by how they ended: granted, refused (another node's clients conflict), retried (a
    /// delegation being recalled, or no answer in time).
    pub claims_granted: u64,
    pub claims_refused: u64,
    pub claims_retried: u64,
    /// Recalls of delegations this node asked of other nodes.
    pub claim_recalls_asked: u64,
}

pub struct Grace {
    /// Reclaims admitted, by [`Reclaim`].
    reclaims: [std::sync::atomic::AtomicU64; 3],
    /// Set at start in a cluster: it decides instead of the fields below.
    cluster: OnceLock<Arc<dyn ClusterRecovery>>,
    /// Grace ends at this monotonic time (ms since start); 0 = no grace period.
    until_ms: u64,
    file: Option<PathBuf>,
    /// Owners confirmed before this start: the only ones allowed to reclaim.
    previous: HashSet<Vec<u8>>,
    /// Owners confirmed now, persisted on every change.
    current: RankedMutex<HashSet<Vec<u8>>, { rank::GRACE_OWNERS }>,
}

/// A set of owners has nothing to check.
impl CheckInvariants for HashSet<Vec<u8>> {}

use ringnfs_proto::ids::hex as to_hex;

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok())
        .collect()
}

impl Grace {
    /// `grace_secs` 0 = no grace period. Without a state directory nothing persists and
    /// nobody can reclaim.
    pub fn new(state_dir: Option<&Path>, grace_secs: u32) -> Self {
        let file = state_dir.map(|d| d.join("clients"));
        let previous: HashSet<Vec<u8>> = file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .map(|text| text.lines().filter_map(|l| from_hex(l.trim())).collect())
            .unwrap_or_default();
        Self {
            reclaims: Default::default(),
            cluster: OnceLock::new(),
            until_ms: grace_secs as u64 * 1000,
            file,
            current: RankedMutex::new(previous.clone()),
            previous,
        }
    }

    /// Hand recovery to the cluster (once, at start, before clients come).
    pub fn attach_cluster(&self, cluster: Arc<dyn ClusterRecovery>) {
        if self.cluster.set(cluster).is_err() {
            tracing::warn!("a cluster was attached twice; the first one stays");
        }
    }

    /// The cluster recovery decides for this server, if any.
    pub fn cluster(&self) -> Option<&Arc<dyn ClusterRecovery>> {
        self.cluster.get()
    }

    pub fn in_grace(&self, now_ms: u64) -> bool {
        match self.cluster.get() {
            Some(c) => c.in_grace(),
            None => now_ms < self.until_ms,
        }
    }

    /// May a client with this owner reclaim (it held state before the restart)?
    pub fn may_reclaim(&self, owner: &[u8], now_ms: u64) -> bool {
        match self.cluster.get() {
            Some(c) => c.in_grace() && c.may_reclaim(owner),
            None => self.in_grace(now_ms) && self.previous.contains(owner),
        }
    }

    /// A reclaim was admitted.
    pub fn count_reclaim(&self, what: Reclaim) {
        self.reclaims[what as usize].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Reclaims admitted since start, by kind.
    pub fn reclaims(&self) -> [(Reclaim, u64); 3] {
        Reclaim::ALL.map(|r| {
            (
                r,
                self.reclaims[r as usize].load(std::sync::atomic::Ordering::Relaxed),
            )
        })
    }

    /// Whether new state may be granted (a cluster node that lost its store may not).
    pub fn granting(&self) -> bool {
        self.cluster.get().is_none_or(|c| c.granting())
    }

    /// A single server records its clients when they are confirmed; a cluster node
    /// records them before their first OPEN or LOCK instead ([`ClusterRecovery::record`]).
    pub fn client_confirmed(&self, owner: &[u8]) {
        if self.cluster.get().is_some() {
            return;
        }
        let mut cur = self.current.lock();
        if cur.insert(owner.to_vec()) {
            self.persist(&cur);
        }
    }

    pub fn client_gone(&self, owner: &[u8]) {
        if let Some(c) = self.cluster.get() {
            c.client_gone(owner);
            return;
        }
        let mut cur = self.current.lock();
        if cur.remove(owner) {
            self.persist(&cur);
        }
    }

    /// Rewrite the owner list (write then rename, so a crash leaves the old or new list).
    fn persist(&self, owners: &HashSet<Vec<u8>>) {
        let Some(file) = &self.file else {
            return;
        };
        let mut text: Vec<String> = owners.iter().map(|o| to_hex(o)).collect();
        text.sort();
        let tmp = file.with_extension("tmp");
        let result =
            std::fs::write(&tmp, text.join("\n") + "\n").and_then(|()| std::fs::rename(&tmp, file));
        if let Err(e) = result {
            tracing::warn!(error = %e, path = %file.display(), "cannot persist the client list");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_survive_a_restart_and_only_they_reclaim() {
        let dir = std::env::temp_dir().join(format!("ringnfs-grace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let g = Grace::new(Some(&dir), 0);
        g.client_confirmed(b"alice");
        g.client_confirmed(b"bob");
        g.client_gone(b"bob");
        assert!(!g.may_reclaim(b"alice", 0), "no grace period configured");
        let g2 = Grace::new(Some(&dir), 10);
        assert!(g2.in_grace(5_000));
        assert!(g2.may_reclaim(b"alice", 5_000));
        assert!(!g2.may_reclaim(b"bob", 5_000));
        assert!(!g2.may_reclaim(b"alice", 10_000), "grace over");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
