//! One node's membership in a cluster: it joins (the shared identity, its registration
//! on a lease, the view of the cluster and a watch that keeps it current), and its
//! agent thread renews the lease, writes client records, starts grace when a node with
//! clients fails or restarts, and ends it when nobody is left to reclaim.
//!
//! It also moves the share-reservation and delegation claims (`claims.rs`): it puts this
//! node's claims and settles them from the others' acks, acks the others' claims after
//! asking the server ([`ClaimHost`]), asks for and answers recalls, and shrinks this
//! node's claims as its clients' state goes. Claims, acks and recall requests live on
//! the writer's lease, so a node's go with it when its membership expires.
//!
//! Nothing here blocks an NFS worker: the questions the server asks on its hot path
//! ([`Node::in_grace`], [`Node::granting`], [`Node::may_reclaim`]) read atomics or the
//! view; writes go to the agent as jobs, and a record's writer is told when it is
//! durable through a callback.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use serde::{Deserialize, Serialize};

use crate::claims::{self, AckValue, Answer, ClaimState, ClaimValue, Local, Outcome, Share};
use crate::etcd::{CmpOp, Compare, Etcd, EtcdError, Txn, TxnOp, Watch, WatchEvent};
use crate::keys::{Key, Keys, hex, unhex};
use crate::view::{Change, GraceRecord, NodeInfo, RecordValue, View};

/// How a node joins its cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// etcd's client URLs (`http://host:port`).
    pub endpoints: Vec<String>,
    /// Keys live under `/ringnfs/<name>/`: several clusters may share one etcd.
    pub name: String,
    pub node_id: u32,
    /// The node's lease: how long after it stops renewing (it died, or lost etcd) the
    /// others see it gone.
    pub node_ttl: Duration,
    /// The longest a grace period lasts (it ends sooner once every client that may
    /// reclaim has said it is done).
    pub grace: Duration,
    /// How long joining keeps trying while etcd does not answer, or while this node's
    /// previous registration has not expired yet.
    pub join_timeout: Duration,
    /// The node's listen addresses (shown to the others).
    pub addrs: Vec<String>,
}

/// What every node of a cluster presents alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The server scope (RFC 8881 §2.10.4): the same on every node, so a client may
    /// reclaim on one node the state it held on another.
    pub scope: String,
    /// The file-handle key: a handle made by one node is valid on all.
    pub handle_key: [u8; 16],
}

#[derive(Serialize, Deserialize)]
struct IdentityValue {
    scope: String,
    handle_key: String,
}

/// Why a node could not join.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    #[error(
        "node id {id} is registered by a live node ({holder}): give each node its own --node-id"
    )]
    IdInUse { id: u32, holder: String },
    #[error("the cluster's identity in etcd ({key}) cannot be read: {why}")]
    BadIdentity { key: String, why: String },
    #[error("cannot start the cluster agent thread: {0}")]
    Thread(std::io::Error),
}

/// Counters of the node's cluster work.
#[derive(Debug, Default)]
pub struct Stats {
    pub records_written: AtomicU64,
    pub record_failures: AtomicU64,
    pub graces_started: AtomicU64,
    pub graces_ended: AtomicU64,
    pub keepalive_failures: AtomicU64,
}

/// What the agent is asked to do.
enum Job {
    Record(Vec<u8>, Box<dyn FnOnce(bool) + Send>),
    ReclaimComplete(Vec<u8>),
    Gone(Vec<u8>),
    Claim(Vec<u8>, Share, Box<dyn FnOnce(Outcome) + Send>),
    Recall(Vec<u8>, Vec<u32>),
    Attach,
}

/// The server's side of claims: its own clients' state on a file. Implemented over the
/// server's open and delegation state; called on the agent thread only.
pub trait ClaimHost: Send + Sync {
    /// Node `node`'s claim on `file` is now `claim` (None: gone). Record it where this
    /// node's OPENs check other nodes' claims and, under the same lock, report this
    /// node's own state on the file: so an OPEN either counted in the answer or sees
    /// the claim, never neither.
    fn remote_claim(&self, file: &[u8], node: u32, claim: Option<Share>) -> Local;
    /// This node's claim in flight on `file` ended (`won`: it was granted): its claim
    /// now stands at `holds` (None: it has none).
    fn settled(&self, file: &[u8], won: bool, holds: Option<Share>);
    /// What this node's clients still hold on `file` that needs a claim (deny bits,
    /// delegation); what its OPENs count as granted shrinks to it first.
    fn needed(&self, file: &[u8]) -> Share;
    /// Recall this node's clients' delegations of `file` (another node's OPEN waits).
    fn recall(&self, file: &[u8]);
}

/// Counters of claims.
#[derive(Debug, Default)]
pub struct ClaimStats {
    pub granted: AtomicU64,
    pub refused: AtomicU64,
    pub retried: AtomicU64,
    pub recalls_asked: AtomicU64,
}

/// How long a claim waits for the other nodes' acks before its OPEN is told to retry
/// (NFS4ERR_DELAY): a node that does not answer may be dying with its lease not yet
/// expired.
pub const CLAIM_TIMEOUT: Duration = Duration::from_secs(3);
/// How often this node shrinks its claims to what its clients still hold.
const RECONCILE_EVERY: Duration = Duration::from_millis(200);

struct Shared {
    etcd: Etcd,
    keys: Keys,
    cfg: ClusterConfig,
    identity: Identity,
    view: Mutex<View>,
    in_grace: AtomicBool,
    granting: AtomicBool,
    /// The lease expired while this node could not renew it: another node may have let
    /// its clients reclaim elsewhere, so it grants nothing new until restarted.
    fenced: AtomicBool,
    lease: AtomicI64,
    jobs: Sender<Job>,
    stop: AtomicBool,
    pub stats: Stats,
    /// Who to tell when another node changes a shared document, by name.
    watchers: Mutex<Vec<(String, ConfigWatcher)>>,
    pub claim_stats: ClaimStats,
    /// The server's side of claims, attached once it is built; taken when the node
    /// leaves (it refers back to the server).
    host: Mutex<Option<Arc<dyn ClaimHost>>>,
}

/// Told the new contents of a shared document another node changed.
pub type ConfigWatcher = Box<dyn Fn(&[u8]) + Send + Sync>;

/// A member of a cluster. Dropping it (or [`Node::leave`]) stops its agent and ends its
/// registration at once (the others start grace for its clients, who may reclaim on
/// whichever node takes over its address).
pub struct Node {
    shared: Arc<Shared>,
    /// Taken when the node leaves (or is abandoned).
    agent: Mutex<Option<JoinHandle<()>>>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Retry `f` while etcd is unreachable, until `deadline`.
fn patiently<T>(
    deadline: Instant,
    mut f: impl FnMut() -> Result<T, EtcdError>,
) -> Result<T, EtcdError> {
    loop {
        match f() {
            Err(EtcdError::Unreachable { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(250));
            }
            other => return other,
        }
    }
}

impl Node {
    /// Join the cluster: read (or create) its identity, register on a lease, load the
    /// view, start grace if this node's clients from before need it, start the agent.
    pub fn join(cfg: ClusterConfig) -> Result<Node, JoinError> {
        let etcd = Etcd::new(&cfg.endpoints, Duration::from_secs(2))?;
        let keys = Keys::new(&cfg.name);
        let deadline = Instant::now() + cfg.join_timeout;
        let identity = patiently(deadline, || identity(&etcd, &keys))??;
        let lease = register(&etcd, &keys, &cfg, deadline)?;
        let (kvs, revision) = patiently(deadline, || etcd.get_prefix(&keys.root()))?;
        let mut view = View::default();
        for kv in &kvs {
            view.apply(
                &keys,
                Change::Put {
                    key: &kv.key,
                    value: &kv.value,
                    mod_revision: kv.mod_revision,
                },
            );
        }
        let watch = etcd.watch_prefix(&keys.root(), revision + 1)?;
        let (jobs, job_rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            etcd,
            keys,
            identity,
            in_grace: AtomicBool::new(view.grace.active),
            view: Mutex::new(view),
            granting: AtomicBool::new(true),
            fenced: AtomicBool::new(false),
            lease: AtomicI64::new(lease),
            jobs,
            stop: AtomicBool::new(false),
            stats: Stats::default(),
            watchers: Mutex::new(Vec::new()),
            claim_stats: ClaimStats::default(),
            host: Mutex::new(None),
            cfg,
        });
        // Clients this node had before it stopped reclaim now, on this node or another.
        let me = shared.cfg.node_id;
        if shared.view().needs_grace_for(me) {
            shared.begin_grace(&[me])?;
        }
        let agent = {
            let s = shared.clone();
            std::thread::Builder::new()
                .name("cluster-agent".into())
                .spawn(move || Agent::new(s, watch, job_rx).run())
                .map_err(JoinError::Thread)?
        };
        tracing::info!(
            cluster = %shared.cfg.name,
            node = me,
            scope = %shared.identity.scope,
            in_grace = shared.in_grace.load(Ordering::Relaxed),
            nodes = ?shared.view().nodes.keys().collect::<Vec<_>>(),
            "joined the cluster"
        );
        Ok(Node {
            shared,
            agent: Mutex::new(Some(agent)),
        })
    }

    pub fn identity(&self) -> &Identity {
        &self.shared.identity
    }

    pub fn node_id(&self) -> u32 {
        self.shared.cfg.node_id
    }

    /// This node's server_owner major id: its own, since nodes share no client IDs
    /// (the same major id would tell a client that a client ID of one node is valid on
    /// another, RFC 8881 §2.10.5), within the cluster's scope.
    pub fn server_owner(&self) -> Vec<u8> {
        format!("{}/node-{}", self.shared.identity.scope, self.node_id()).into_bytes()
    }

    /// Whether the cluster-wide grace period is in force.
    pub fn in_grace(&self) -> bool {
        self.shared.in_grace.load(Ordering::Acquire)
    }

    /// Whether this node may grant new state (it renews its membership).
    pub fn granting(&self) -> bool {
        self.shared.granting.load(Ordering::Acquire)
    }

    /// May a client with this owner reclaim now (its node's clients reclaim, and it has
    /// not finished)?
    pub fn may_reclaim(&self, owner: &[u8]) -> bool {
        self.shared.view().may_reclaim(owner)
    }

    /// Make the client's record durable on this node; `done(true)` once it is.
    pub fn record(&self, owner: &[u8], done: Box<dyn FnOnce(bool) + Send>) {
        if let Err(e) = self.shared.jobs.send(Job::Record(owner.to_vec(), done))
            && let Job::Record(_, done) = e.into_inner()
        {
            done(false);
        }
    }

    /// The client sent RECLAIM_COMPLETE (does not wait).
    pub fn reclaim_complete(&self, owner: &[u8]) {
        let _ = self.shared.jobs.send(Job::ReclaimComplete(owner.to_vec()));
    }

    /// The client is gone: its record goes (does not wait).
    pub fn client_gone(&self, owner: &[u8]) {
        let _ = self.shared.jobs.send(Job::Gone(owner.to_vec()));
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// The shared document `name` as the cluster holds it; if it holds none yet, `ours`
    /// becomes it (compare-and-swap: the first node's start value wins).
    pub fn seed_config(&self, name: &str, ours: &[u8]) -> Result<Vec<u8>, EtcdError> {
        let key = self.shared.keys.config(name);
        let r = self.shared.etcd.txn(
            &Txn::new()
                .when([Compare::CreateRevision(key.clone(), CmpOp::Equal, 0)])
                .and_then([TxnOp::Put {
                    key: key.clone(),
                    value: ours.to_vec(),
                    lease: None,
                }])
                .or_else([TxnOp::Get(key.clone())]),
        )?;
        let stored = if r.succeeded {
            ours.to_vec()
        } else {
            r.gets
                .first()
                .and_then(|g| g.first())
                .map_or_else(|| ours.to_vec(), |kv| kv.value.clone())
        };
        self.shared
            .view()
            .config
            .insert(name.into(), stored.clone());
        Ok(stored)
    }

    /// The shared document `name`, if the cluster holds one.
    pub fn config(&self, name: &str) -> Option<Vec<u8>> {
        self.shared.view().config.get(name).cloned()
    }

    /// Change the shared document `name` for every node (this one applied it already:
    /// its watchers are not called for it).
    pub fn publish_config(&self, name: &str, value: &[u8]) -> Result<(), EtcdError> {
        // Noted first, so that the watch bringing our own change back is no news.
        let before = self
            .shared
            .view()
            .config
            .insert(name.into(), value.to_vec());
        if let Err(e) = self
            .shared
            .etcd
            .put(&self.shared.keys.config(name), value, None)
        {
            let mut v = self.shared.view();
            match before {
                Some(b) => v.config.insert(name.into(), b),
                None => v.config.remove(name),
            };
            return Err(e);
        }
        Ok(())
    }

    /// Call `watcher` (on the agent thread) with the new contents whenever another node
    /// changes the shared document `name`.
    pub fn watch_config(&self, name: &str, watcher: ConfigWatcher) {
        self.shared
            .watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((name.into(), watcher));
    }

    pub fn claim_stats(&self) -> &ClaimStats {
        &self.shared.claim_stats
    }

    /// Attach the server's side of claims: from now on this node acks the others'
    /// claims (until then they wait for it, and time out).
    pub fn attach_claims(&self, host: Arc<dyn ClaimHost>) {
        *self.shared.host.lock().unwrap_or_else(|p| p.into_inner()) = Some(host);
        let _ = self.shared.jobs.send(Job::Attach);
    }

    /// Claim `share` on `file` for this node (added to what it holds there); `done`
    /// hears how it ended. The server calls [`ClaimHost::settled`] first.
    pub fn claim(&self, file: &[u8], share: Share, done: Box<dyn FnOnce(Outcome) + Send>) {
        if let Err(e) = self
            .shared
            .jobs
            .send(Job::Claim(file.to_vec(), share, done))
            && let Job::Claim(_, _, done) = e.into_inner()
        {
            done(Outcome::Retry);
        }
    }

    /// Ask `holders` to recall their delegations of `file` (does not wait).
    pub fn ask_recall(&self, file: &[u8], holders: &[u32]) {
        let _ = self
            .shared
            .jobs
            .send(Job::Recall(file.to_vec(), holders.to_vec()));
    }

    /// The claims on `file` this node has seen, by node.
    pub fn claims_on(&self, file: &[u8]) -> Vec<(u32, ClaimValue)> {
        self.shared
            .view()
            .claims
            .iter()
            .filter(|((f, _), _)| f == file)
            .map(|((_, n), (c, _))| (*n, *c))
            .collect()
    }

    /// The cluster as this node sees it now.
    pub fn status(&self) -> Status {
        let v = self.shared.view();
        Status {
            cluster: self.shared.cfg.name.clone(),
            node_id: self.node_id(),
            granting: self.granting(),
            fenced: self.shared.fenced.load(Ordering::Relaxed),
            grace: v.grace.clone(),
            pending_reclaims: v.pending_count(),
            nodes: v.nodes.clone().into_iter().collect(),
            records: v
                .records
                .keys()
                .filter(|(n, _)| *n == self.node_id())
                .count(),
        }
    }

    /// Leave the cluster now (once; later calls do nothing): stop the agent and end the
    /// registration (the lease is revoked, so the others see this node gone at once
    /// rather than after its TTL, and its clients may reclaim where its address goes).
    pub fn leave(&self) {
        if self.stop_agent() {
            let lease = self.shared.lease.load(Ordering::Relaxed);
            if let Err(e) = self.shared.etcd.lease_revoke(lease) {
                tracing::warn!(error = %e, "could not end this node's cluster registration; it expires with its lease");
            }
        }
    }

    /// Stop as a crash would: the agent stops renewing, the registration stays until
    /// its lease expires (for tests of failure handling).
    #[doc(hidden)]
    pub fn abandon(&self) {
        self.stop_agent();
    }

    /// Stop the agent; false if it was stopped already.
    fn stop_agent(&self) -> bool {
        self.shared.stop.store(true, Ordering::Relaxed);
        let agent = self.agent.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.shared
            .host
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match agent {
            Some(a) => {
                let _ = a.join();
                true
            }
            None => false,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.leave();
    }
}

/// A snapshot for the control plane.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub cluster: String,
    pub node_id: u32,
    pub granting: bool,
    pub fenced: bool,
    pub grace: GraceRecord,
    pub pending_reclaims: usize,
    pub nodes: Vec<(u32, NodeInfo)>,
    /// Client records held by this node.
    pub records: usize,
}

/// Read the cluster's identity, or create it if this is the first node.
fn identity(etcd: &Etcd, keys: &Keys) -> Result<Result<Identity, JoinError>, EtcdError> {
    let key = keys.identity();
    let fresh = IdentityValue {
        scope: format!("ringnfs-cluster-{:032x}", rand::random::<u128>()),
        handle_key: hex(&rand::random::<u128>().to_le_bytes()),
    };
    let value = serde_json::to_vec(&fresh).expect("serializable");
    let r = etcd.txn(
        &Txn::new()
            .when([Compare::CreateRevision(key.clone(), CmpOp::Equal, 0)])
            .and_then([TxnOp::Put {
                key: key.clone(),
                value,
                lease: None,
            }])
            .or_else([TxnOp::Get(key.clone())]),
    )?;
    let stored = if r.succeeded {
        fresh
    } else {
        let kv = r.gets.first().and_then(|g| g.first());
        match kv.map(|kv| serde_json::from_slice::<IdentityValue>(&kv.value)) {
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                return Ok(Err(JoinError::BadIdentity {
                    key: String::from_utf8_lossy(&key).into(),
                    why: e.to_string(),
                }));
            }
            None => {
                return Ok(Err(JoinError::BadIdentity {
                    key: String::from_utf8_lossy(&key).into(),
                    why: "it vanished while being read".into(),
                }));
            }
        }
    };
    let handle_key = unhex(&stored.handle_key).and_then(|b| <[u8; 16]>::try_from(b).ok());
    Ok(match handle_key {
        Some(handle_key) => Ok(Identity {
            scope: stored.scope,
            handle_key,
        }),
        None => Err(JoinError::BadIdentity {
            key: String::from_utf8_lossy(&key).into(),
            why: "the handle key is not 32 hex digits".into(),
        }),
    })
}

/// Register this node on a new lease (returned); a key left by its previous run is
/// waited out (it expires with that run's lease), a key of a live node with the same id
/// is an error once `deadline` passed.
fn register(
    etcd: &Etcd,
    keys: &Keys,
    cfg: &ClusterConfig,
    deadline: Instant,
) -> Result<i64, JoinError> {
    let key = keys.node(cfg.node_id);
    let info = NodeInfo {
        addrs: cfg.addrs.clone(),
        host: hostname(),
        pid: std::process::id(),
        started_ms: now_ms(),
    };
    let value = serde_json::to_vec(&info).expect("serializable");
    let ttl = cfg.node_ttl.as_secs().max(1) as i64;
    let mut waited = false;
    loop {
        // A fresh lease per try: one granted before a wait would lapse during it, as
        // nobody renews it until the agent runs.
        let lease = patiently(deadline, || etcd.lease_grant(ttl))?.id;
        let r = patiently(deadline, || {
            etcd.txn(
                &Txn::new()
                    .when([Compare::CreateRevision(key.clone(), CmpOp::Equal, 0)])
                    .and_then([TxnOp::Put {
                        key: key.clone(),
                        value: value.clone(),
                        lease: Some(lease),
                    }])
                    .or_else([TxnOp::Get(key.clone())]),
            )
        })?;
        if r.succeeded {
            return Ok(lease);
        }
        let _ = etcd.lease_revoke(lease);
        let holder = r
            .gets
            .first()
            .and_then(|g| g.first())
            .and_then(|kv| serde_json::from_slice::<NodeInfo>(&kv.value).ok())
            .map_or_else(
                || "unknown".to_string(),
                |n| format!("host {} pid {}", n.host, n.pid),
            );
        if Instant::now() >= deadline {
            return Err(JoinError::IdInUse {
                id: cfg.node_id,
                holder,
            });
        }
        if !waited {
            tracing::info!(node = cfg.node_id, %holder, "waiting for this node id's previous registration to expire");
            waited = true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

impl Shared {
    fn view(&self) -> MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn me(&self) -> u32 {
        self.cfg.node_id
    }

    /// Another node changed a shared document: tell its watchers.
    fn config_changed(&self, name: &str, value: &[u8]) {
        tracing::info!(document = name, "a shared document changed on another node");
        let watchers = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
        for (_, w) in watchers.iter().filter(|(n, _)| n == name) {
            w(value);
        }
    }

    fn put(&self, node: u32, owner: &[u8], value: RecordValue) -> TxnOp {
        TxnOp::Put {
            key: self.keys.record(node, owner),
            value: serde_json::to_vec(&value).expect("serializable"),
            lease: None,
        }
    }

    /// Start a grace epoch in which `nodes`' clients reclaim (compare-and-swap on the
    /// grace key: when another node started one meanwhile, look again).
    fn begin_grace(&self, nodes: &[u32]) -> Result<(), EtcdError> {
        loop {
            let (next, seen) = {
                let v = self.view();
                if !nodes.iter().any(|n| v.needs_grace_for(*n)) {
                    return Ok(());
                }
                let g = v.next_grace(nodes, now_ms(), self.cfg.grace.as_millis() as u64);
                (g, v.grace_revision)
            };
            let key = self.keys.grace();
            let r = self.etcd.txn(
                &Txn::new()
                    .when([Compare::ModRevision(key.clone(), CmpOp::Equal, seen)])
                    .and_then([TxnOp::Put {
                        key: key.clone(),
                        value: serde_json::to_vec(&next).expect("serializable"),
                        lease: None,
                    }])
                    .or_else([TxnOp::Get(key.clone())]),
            )?;
            let mut v = self.view();
            if r.succeeded {
                tracing::warn!(epoch = next.epoch, reclaiming = ?next.reclaiming, deadline_ms = next.deadline_ms, "cluster-wide grace begins: these nodes' clients may reclaim");
                self.stats.graces_started.fetch_add(1, Ordering::Relaxed);
                v.grace = next;
                v.grace_revision = r.revision;
            } else if let Some(kv) = r.gets.first().and_then(|g| g.first()) {
                // Someone else changed it: take theirs and decide again.
                v.apply(
                    &self.keys,
                    Change::Put {
                        key: &kv.key,
                        value: &kv.value,
                        mod_revision: kv.mod_revision,
                    },
                );
            }
            self.in_grace.store(v.grace.active, Ordering::Release);
            if r.succeeded {
                return Ok(());
            }
        }
    }

    /// End the grace in force: remove the records of clients that did not come back,
    /// mark unfinished reclaims done, then end the epoch (compare-and-swap).
    fn end_grace(&self) -> Result<(), EtcdError> {
        let (end, mut ended, seen) = {
            let v = self.view();
            (v.end_of_grace(), v.grace.clone(), v.grace_revision)
        };
        let (gone, finish) = (end.gone, end.finish);
        // In batches: etcd limits the operations in one transaction (128 by default).
        let mut ops: Vec<TxnOp> = gone
            .iter()
            .map(|(n, o)| TxnOp::Delete(self.keys.record(*n, o)))
            .collect();
        ops.extend(finish.iter().map(|(n, o)| {
            self.put(
                *n,
                o,
                RecordValue {
                    epoch: ended.epoch,
                    done: true,
                },
            )
        }));
        for batch in ops.chunks(100) {
            self.etcd.txn(&Txn::new().and_then(batch.iter().cloned()))?;
        }
        ended.active = false;
        let key = self.keys.grace();
        let r = self.etcd.txn(
            &Txn::new()
                .when([Compare::ModRevision(key.clone(), CmpOp::Equal, seen)])
                .and_then([TxnOp::Put {
                    key,
                    value: serde_json::to_vec(&ended).expect("serializable"),
                    lease: None,
                }]),
        )?;
        if r.succeeded {
            tracing::warn!(
                epoch = ended.epoch,
                not_back = gone.len(),
                "cluster-wide grace ends"
            );
            self.stats.graces_ended.fetch_add(1, Ordering::Relaxed);
            let mut v = self.view();
            v.grace = ended;
            v.grace_revision = r.revision;
            self.in_grace.store(false, Ordering::Release);
        }
        Ok(())
    }

    /// Write the record a client needs before its first OPEN or LOCK here: moved from
    /// the failed node it reclaims from, kept pending until RECLAIM_COMPLETE; a new
    /// client's is done from the start.
    fn write_record(&self, owner: &[u8]) -> Result<(), EtcdError> {
        let me = self.me();
        let ops = {
            let v = self.view();
            let epoch = v.grace.epoch;
            match v.pending_record(owner) {
                Some((node, r)) if node == me && r.value.epoch == epoch => return Ok(()),
                Some((node, _)) => {
                    let mut ops = vec![self.put(me, owner, RecordValue { epoch, done: false })];
                    if node != me {
                        ops.push(TxnOp::Delete(self.keys.record(node, owner)));
                    }
                    ops
                }
                None if v.records.contains_key(&(me, owner.to_vec())) => return Ok(()),
                None => vec![self.put(me, owner, RecordValue { epoch, done: true })],
            }
        };
        self.etcd.txn(&Txn::new().and_then(ops))?;
        Ok(())
    }

    fn write_reclaim_complete(&self, owner: &[u8]) -> Result<(), EtcdError> {
        let me = self.me();
        let ops = {
            let v = self.view();
            let Some((node, _)) = v.pending_record(owner) else {
                return Ok(());
            };
            let epoch = v.grace.epoch;
            let mut ops = vec![self.put(me, owner, RecordValue { epoch, done: true })];
            if node != me {
                ops.push(TxnOp::Delete(self.keys.record(node, owner)));
            }
            ops
        };
        self.etcd.txn(&Txn::new().and_then(ops))?;
        Ok(())
    }

    fn remove_record(&self, owner: &[u8]) -> Result<(), EtcdError> {
        if !self
            .view()
            .records
            .contains_key(&(self.me(), owner.to_vec()))
        {
            return Ok(());
        }
        self.etcd.delete(&self.keys.record(self.me(), owner))?;
        Ok(())
    }
}

/// The agent thread's loop.
struct Agent {
    s: Arc<Shared>,
    watch: Watch,
    jobs: Receiver<Job>,
    last_renewed: Instant,
    next_renewal: Instant,
    /// This node's claims waiting for acks, by file.
    inflight: std::collections::BTreeMap<Vec<u8>, Inflight>,
    /// The revision of each (file, claimer)'s claim this node last answered.
    acked: std::collections::HashMap<(Vec<u8>, u32), i64>,
    last_reconcile: Instant,
}

/// One of this node's claims as its agent last saw it: the file and the value.
type MyClaim = (Vec<u8>, ClaimValue);

/// One of this node's claims waiting for the others' acks.
struct Inflight {
    /// The revision of the pending claim's put (acks name it).
    rev: i64,
    /// The claim held before (restored if this one fails).
    prev: Option<Share>,
    /// The claim asked for (what was held and what is added).
    share: Share,
    done: Box<dyn FnOnce(Outcome) + Send>,
    deadline: Instant,
}

const TICK: Duration = Duration::from_millis(100);
/// How long after a grace's deadline a node other than the lowest-numbered one ends it
/// (the lowest one normally does; this covers it being stuck).
const END_FALLBACK_MS: u64 = 2_000;

impl Agent {
    fn new(s: Arc<Shared>, watch: Watch, jobs: Receiver<Job>) -> Agent {
        let now = Instant::now();
        Agent {
            s,
            watch,
            jobs,
            last_renewed: now,
            next_renewal: now,
            inflight: Default::default(),
            acked: Default::default(),
            last_reconcile: now,
        }
    }

    fn run(mut self) {
        while !self.s.stop.load(Ordering::Relaxed) {
            crossbeam_channel::select! {
                recv(self.jobs) -> job => if let Ok(job) = job { self.job(job) },
                recv(self.watch.events()) -> ev => if let Ok(ev) = ev { self.event(ev) },
                default(TICK) => {}
            }
            self.renew();
            self.maintain_grace();
            self.settle_claims();
            self.reconcile_claims();
        }
        // Whoever waits on a claim hears it will not end.
        for (file, inf) in std::mem::take(&mut self.inflight) {
            if let Some(h) = self.host() {
                h.settled(&file, false, inf.prev);
            }
            (inf.done)(Outcome::Retry);
        }
    }

    fn job(&mut self, job: Job) {
        let s = &self.s;
        match job {
            Job::Record(owner, done) => {
                if !s.granting.load(Ordering::Acquire) {
                    // Cut off from etcd: the record could not be written anyway.
                    s.stats.record_failures.fetch_add(1, Ordering::Relaxed);
                    done(false);
                    return;
                }
                match s.write_record(&owner) {
                    Ok(()) => {
                        s.stats.records_written.fetch_add(1, Ordering::Relaxed);
                        done(true);
                    }
                    Err(e) => {
                        s.stats.record_failures.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(owner = %hex(&owner), error = %e, "cannot write a client's recovery record: its OPEN/LOCK waits (NFS4ERR_DELAY)");
                        done(false);
                    }
                }
            }
            Job::ReclaimComplete(owner) => {
                if let Err(e) = s.write_reclaim_complete(&owner) {
                    tracing::warn!(owner = %hex(&owner), error = %e, "cannot record a client's RECLAIM_COMPLETE; grace lasts until its deadline");
                }
            }
            Job::Gone(owner) => {
                if let Err(e) = s.remove_record(&owner) {
                    tracing::warn!(owner = %hex(&owner), error = %e, "cannot remove a client's recovery record");
                }
            }
            Job::Claim(file, share, done) => self.start_claim(file, share, done),
            Job::Recall(file, holders) => self.ask_recall(&file, &holders),
            Job::Attach => {
                let others: Vec<(Vec<u8>, u32)> = {
                    let v = self.s.view();
                    v.claims.keys().cloned().collect()
                };
                for (file, node) in others {
                    self.claim_changed(&file, node);
                }
            }
        }
    }

    fn event(&mut self, ev: WatchEvent) {
        let changed = match &ev {
            WatchEvent::Put(kv) | WatchEvent::Delete(kv) => self.s.keys.parse(&kv.key),
            WatchEvent::Resync => None,
        };
        let before: Option<Vec<(Vec<u8>, u32)>> = matches!(ev, WatchEvent::Resync)
            .then(|| self.s.view().claims.keys().cloned().collect());
        self.apply_event(ev);
        match changed {
            Some(Key::Claim { file, node }) => self.claim_changed(&file, node),
            Some(Key::Recall { file, holder }) if holder == self.s.me() => {
                if self.s.view().recalls.contains(&(file.clone(), holder))
                    && let Some(h) = self.host()
                {
                    h.recall(&file);
                }
            }
            Some(Key::Node(n)) if !self.s.view().nodes.contains_key(&n) => {
                // Its claims go with its lease (etcd deletes them); drop them here too
                // in case the deletes come later than the node's.
                let files: Vec<Vec<u8>> = {
                    let v = self.s.view();
                    v.claims
                        .keys()
                        .filter(|(_, c)| *c == n)
                        .map(|(f, _)| f.clone())
                        .collect()
                };
                if let Some(h) = self.host() {
                    for f in files {
                        h.remote_claim(&f, n, None);
                    }
                }
            }
            _ => {}
        }
        if let Some(before) = before {
            // After missed changes: tell the server about every claim, old and new.
            let mut all: std::collections::BTreeSet<(Vec<u8>, u32)> = before.into_iter().collect();
            all.extend(self.s.view().claims.keys().cloned());
            for (file, node) in all {
                self.claim_changed(&file, node);
            }
        }
    }

    fn apply_event(&mut self, ev: WatchEvent) {
        let s = &self.s;
        let mut v = s.view();
        match ev {
            WatchEvent::Put(kv) => {
                let changed = match s.keys.parse(&kv.key) {
                    Some(Key::Config(name))
                        if v.config.get(&name).is_none_or(|old| *old != kv.value) =>
                    {
                        Some(name)
                    }
                    _ => None,
                };
                v.apply(
                    &s.keys,
                    Change::Put {
                        key: &kv.key,
                        value: &kv.value,
                        mod_revision: kv.mod_revision,
                    },
                );
                if let Some(name) = changed {
                    // Watchers run without the view held (they may ask the node things).
                    drop(v);
                    s.config_changed(&name, &kv.value);
                    v = s.view();
                }
            }
            WatchEvent::Delete(kv) => v.apply(&s.keys, Change::Delete { key: &kv.key }),
            WatchEvent::Resync => {
                drop(v);
                match s.etcd.get_prefix(&s.keys.root()) {
                    Ok((kvs, _)) => {
                        let mut fresh = View::default();
                        for kv in &kvs {
                            fresh.apply(
                                &s.keys,
                                Change::Put {
                                    key: &kv.key,
                                    value: &kv.value,
                                    mod_revision: kv.mod_revision,
                                },
                            );
                        }
                        *s.view() = fresh;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot re-read the cluster after missed changes")
                    }
                }
                v = s.view();
            }
        }
        s.in_grace.store(v.grace.active, Ordering::Release);
    }

    fn host(&self) -> Option<Arc<dyn ClaimHost>> {
        self.s
            .host
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Node `node`'s claim on `file` changed (or this node's own, which needs nothing):
    /// tell the server, and answer a pending claim once per revision.
    fn claim_changed(&mut self, file: &[u8], node: u32) {
        let s = self.s.clone();
        let me = s.me();
        if node == me {
            return;
        }
        let Some(host) = self.host() else { return };
        let claim = {
            let v = s.view();
            v.claims
                .get(&(file.to_vec(), node))
                .filter(|_| v.nodes.contains_key(&node))
                .copied()
        };
        let Some((c, rev)) = claim else {
            host.remote_claim(file, node, None);
            self.acked.remove(&(file.to_vec(), node));
            return;
        };
        let local = host.remote_claim(file, node, Some(c.share));
        if c.state != ClaimState::Pending || self.acked.get(&(file.to_vec(), node)) == Some(&rev) {
            return;
        }
        let answer = claims::ack(me, &local, node, &c.share);
        let value = serde_json::to_vec(&AckValue {
            answer,
            claim_rev: rev,
        })
        .expect("serializable");
        let lease = s.lease.load(Ordering::Relaxed);
        match s.etcd.put(&s.keys.ack(file, node, me), &value, Some(lease)) {
            Ok(_) => {
                self.acked.insert((file.to_vec(), node), rev);
            }
            Err(e) => {
                tracing::warn!(file = %hex(file), claimer = node, error = %e, "cannot answer another node's claim; it times out");
            }
        }
        tracing::debug!(file = %hex(file), claimer = node, ?answer, "answered a claim");
        if answer == Answer::Recall {
            host.recall(file);
        }
    }

    /// Put this node's claim on `file` (what it holds there and `share`) as pending; the
    /// others' acks settle it ([`Self::settle_claims`]).
    fn start_claim(&mut self, file: Vec<u8>, share: Share, done: Box<dyn FnOnce(Outcome) + Send>) {
        let s = self.s.clone();
        let me = s.me();
        let prev = s
            .view()
            .claims
            .get(&(file.clone(), me))
            .filter(|(c, _)| c.state == ClaimState::Granted)
            .map(|(c, _)| c.share);
        let fail = |host: Option<Arc<dyn ClaimHost>>, done: Box<dyn FnOnce(Outcome) + Send>| {
            if let Some(h) = host {
                h.settled(&file, false, prev);
            }
            s.claim_stats.retried.fetch_add(1, Ordering::Relaxed);
            done(Outcome::Retry);
        };
        if self.inflight.contains_key(&file) || !s.granting.load(Ordering::Acquire) {
            // One claim per file at a time (the server asks for no second one).
            fail(self.host(), done);
            return;
        }
        let claimed = prev.unwrap_or_default().union(&share);
        let value = serde_json::to_vec(&ClaimValue {
            share: claimed,
            state: ClaimState::Pending,
        })
        .expect("serializable");
        let lease = s.lease.load(Ordering::Relaxed);
        // Answers to an earlier claim of this node on the file go first.
        let mut ack_prefix = s.keys.ack(&file, me, 0);
        ack_prefix.pop();
        let r = s.etcd.txn(&Txn::new().and_then([
            TxnOp::DeletePrefix(ack_prefix),
            TxnOp::Put {
                key: s.keys.claim(&file, me),
                value,
                lease: Some(lease),
            },
        ]));
        match r {
            Ok(r) => {
                tracing::debug!(file = %hex(&file), share = ?claimed, rev = r.revision, "claim put");
                self.inflight.insert(
                    file,
                    Inflight {
                        rev: r.revision,
                        prev,
                        share: claimed,
                        done,
                        deadline: Instant::now() + CLAIM_TIMEOUT,
                    },
                );
                self.settle_claims();
            }
            Err(e) => {
                tracing::warn!(file = %hex(&file), error = %e, "cannot put a claim: its OPEN retries (NFS4ERR_DELAY)");
                fail(self.host(), done);
            }
        }
    }

    /// Settle the claims in flight whose acks are all in (or one refused, or that
    /// waited too long).
    fn settle_claims(&mut self) {
        if self.inflight.is_empty() {
            return;
        }
        let s = self.s.clone();
        let me = s.me();
        let now = Instant::now();
        let done: Vec<(Vec<u8>, Outcome)> = {
            let v = s.view();
            let others: Vec<u32> = v.nodes.keys().copied().filter(|n| *n != me).collect();
            self.inflight
                .iter()
                .filter_map(|(file, inf)| {
                    let answers = v
                        .acks
                        .range((file.clone(), me, 0)..=(file.clone(), me, u32::MAX))
                        .filter(|((_, _, acker), a)| {
                            a.claim_rev == inf.rev && v.nodes.contains_key(acker)
                        })
                        .map(|((_, _, acker), a)| (*acker, a.answer));
                    claims::outcome(answers, &others)
                        .or_else(|| (now >= inf.deadline).then_some(Outcome::Retry))
                        .map(|o| (file.clone(), o))
                })
                .collect()
        };
        for (file, outcome) in done {
            let inf = self.inflight.remove(&file).expect("in flight");
            self.settle(file, inf, outcome);
        }
    }

    fn settle(&mut self, file: Vec<u8>, inf: Inflight, mut outcome: Outcome) {
        let s = self.s.clone();
        let me = s.me();
        let lease = s.lease.load(Ordering::Relaxed);
        let mut ack_prefix = s.keys.ack(&file, me, 0);
        ack_prefix.pop();
        let put = |share: Share| TxnOp::Put {
            key: s.keys.claim(&file, me),
            value: serde_json::to_vec(&ClaimValue {
                share,
                state: ClaimState::Granted,
            })
            .expect("serializable"),
            lease: Some(lease),
        };
        if outcome == Outcome::Granted {
            let r = s.etcd.txn(
                &Txn::new().and_then([TxnOp::DeletePrefix(ack_prefix.clone()), put(inf.share)]),
            );
            if let Err(e) = r {
                tracing::warn!(file = %hex(&file), error = %e, "cannot mark a claim granted: its OPEN retries");
                outcome = Outcome::Retry;
            }
        }
        let granted = if outcome == Outcome::Granted {
            s.claim_stats.granted.fetch_add(1, Ordering::Relaxed);
            Some(inf.share)
        } else {
            let counter = if outcome == Outcome::Refused {
                &s.claim_stats.refused
            } else {
                &s.claim_stats.retried
            };
            counter.fetch_add(1, Ordering::Relaxed);
            // Back to what was held before.
            let restore = match inf.prev {
                Some(p) => put(p),
                None => TxnOp::Delete(s.keys.claim(&file, me)),
            };
            if let Err(e) = s
                .etcd
                .txn(&Txn::new().and_then([TxnOp::DeletePrefix(ack_prefix), restore]))
            {
                // The pending claim stays until it is reconciled (or the lease goes);
                // the others meanwhile count it, which only refuses more.
                tracing::warn!(file = %hex(&file), error = %e, "cannot withdraw a failed claim");
            }
            inf.prev
        };
        tracing::debug!(file = %hex(&file), ?outcome, "claim settled");
        if let Some(h) = self.host() {
            h.settled(&file, outcome == Outcome::Granted, granted);
            // Another node asked for a recall while this claim was in flight: its OPEN
            // waits for this node to give the claim up (it has no delegation under it
            // yet, so it goes at the next shrink).
            if granted.is_some_and(|g| g.deleg != claims::Deleg::None)
                && s.view().recalls.contains(&(file.clone(), me))
            {
                h.recall(&file);
            }
        }
        (inf.done)(outcome);
    }

    /// Ask `holders` to recall their delegations of `file` (once: the key stays until
    /// the holder's delegation claim goes).
    fn ask_recall(&mut self, file: &[u8], holders: &[u32]) {
        let s = self.s.clone();
        let lease = s.lease.load(Ordering::Relaxed);
        for h in holders {
            let asked = {
                let v = s.view();
                v.recalls.contains(&(file.to_vec(), *h)) || !v.nodes.contains_key(h)
            };
            if asked {
                continue;
            }
            s.claim_stats.recalls_asked.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = s.etcd.put(&s.keys.recall(file, *h), b"{}", Some(lease)) {
                tracing::warn!(file = %hex(file), holder = h, error = %e, "cannot ask another node to recall its delegations");
            }
        }
    }

    /// Shrink this node's settled claims to what its clients still hold (opens closed,
    /// delegations returned or revoked, clients gone), and remove recall requests it
    /// has answered.
    fn reconcile_claims(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.last_reconcile) < RECONCILE_EVERY {
            return;
        }
        self.last_reconcile = now;
        let Some(host) = self.host() else { return };
        let s = self.s.clone();
        let me = s.me();
        let (mine, recalls): (Vec<MyClaim>, Vec<Vec<u8>>) = {
            let v = s.view();
            (
                v.claims
                    .iter()
                    .filter(|((f, n), _)| *n == me && !self.inflight.contains_key(f))
                    .map(|((f, _), (c, _))| (f.clone(), *c))
                    .collect(),
                v.recalls
                    .iter()
                    .filter(|(_, h)| *h == me)
                    .map(|(f, _)| f.clone())
                    .collect(),
            )
        };
        let lease = s.lease.load(Ordering::Relaxed);
        let mut deleg_of = std::collections::HashMap::new();
        for (file, c) in mine {
            let needed = host.needed(&file);
            deleg_of.insert(file.clone(), needed.deleg);
            let r = if needed.is_empty() {
                s.etcd.delete(&s.keys.claim(&file, me)).map(|_| ())
            } else if needed.deny != c.share.deny
                || needed.deleg != c.share.deleg
                || c.state != ClaimState::Granted
            {
                let value = serde_json::to_vec(&ClaimValue {
                    share: needed,
                    state: ClaimState::Granted,
                })
                .expect("serializable");
                s.etcd
                    .put(&s.keys.claim(&file, me), &value, Some(lease))
                    .map(|_| ())
            } else {
                Ok(())
            };
            if let Err(e) = r {
                tracing::warn!(file = %hex(&file), error = %e, "cannot shrink this node's claim");
            }
        }
        for file in recalls {
            if deleg_of.get(&file).copied().unwrap_or_default() == claims::Deleg::None
                && !self.inflight.contains_key(&file)
                && let Err(e) = s.etcd.delete(&s.keys.recall(&file, me))
            {
                tracing::warn!(file = %hex(&file), error = %e, "cannot remove an answered recall request");
            }
        }
    }

    /// Renew the lease a third of its TTL apart. Past its TTL without a renewal, the
    /// others may see this node dead: stop granting new state until a renewal succeeds;
    /// once etcd says the lease expired, stay stopped (fenced).
    fn renew(&mut self) {
        let s = &self.s;
        let now = Instant::now();
        if now < self.next_renewal || s.fenced.load(Ordering::Relaxed) {
            return;
        }
        let ttl = s.cfg.node_ttl;
        self.next_renewal = now + ttl / 3;
        match s.etcd.lease_keepalive(s.lease.load(Ordering::Relaxed)) {
            Ok(_) => {
                self.last_renewed = now;
                if !s.granting.swap(true, Ordering::AcqRel) {
                    tracing::warn!("etcd is reachable again: granting new state");
                }
            }
            Err(EtcdError::LeaseExpired(_)) => {
                s.fenced.store(true, Ordering::Relaxed);
                s.granting.store(false, Ordering::Release);
                tracing::error!(
                    "this node's cluster membership expired while etcd was out of reach: its clients may have reclaimed their state on another node, so it grants no new state; restart it to rejoin"
                );
            }
            Err(e) => {
                s.stats.keepalive_failures.fetch_add(1, Ordering::Relaxed);
                // Stop a little before the TTL: the others' clocks start when etcd last
                // heard from us, which is no later than our last success.
                if now.duration_since(self.last_renewed) + ttl / 3 >= ttl
                    && s.granting.swap(false, Ordering::AcqRel)
                {
                    tracing::error!(error = %e, "cannot reach etcd to renew this node's membership: no new state is granted until it is back");
                }
                // Try again soon rather than a third of the TTL later.
                self.next_renewal = now + TICK * 5;
            }
        }
    }

    /// Start grace for failed nodes with clients; end it when nobody is left to
    /// reclaim (the live node with the lowest id does, or any once past the deadline).
    fn maintain_grace(&mut self) {
        let s = &self.s;
        if !s.granting.load(Ordering::Acquire) {
            return;
        }
        let me = s.me();
        let (dead, end) = {
            let v = s.view();
            let mut dead: Vec<u32> = v
                .records
                .keys()
                .map(|(n, _)| *n)
                .filter(|n| *n != me && !v.nodes.contains_key(n) && v.needs_grace_for(*n))
                .collect();
            dead.dedup();
            let now = now_ms();
            let lowest = v.nodes.keys().next().is_none_or(|n| *n >= me);
            let end =
                v.grace_may_end(now) && (lowest || now >= v.grace.deadline_ms + END_FALLBACK_MS);
            (dead, end)
        };
        if !dead.is_empty()
            && let Err(e) = s.begin_grace(&dead)
        {
            tracing::warn!(error = %e, nodes = ?dead, "cannot start grace for failed nodes");
        }
        if end && let Err(e) = s.end_grace() {
            tracing::warn!(error = %e, "cannot end the grace period");
        }
    }
}
