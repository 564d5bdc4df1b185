//! The server as a node of a cluster on etcd (`--cluster etcd=URL[,URL...]
//! --node-id N`): it joins before it serves anything (the cluster's server scope and
//! file-handle key replace the state directory's, so every node makes and accepts the
//! same handles and a client may reclaim on one node what it held on another), and the
//! protocol core asks the node about recovery through [`Recovery`]. Share reservations
//! and delegations are coordinated through the node's claims ([`Shares`] for the
//! protocol core's OPENs and delegations, [`Host`] for the node's agent asking about
//! this node's clients' state).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ringnfs_cluster::claims::{Deleg, Local, Outcome, Share};
use ringnfs_cluster::{ClaimHost, ClusterConfig, Node};
use ringnfs_fs::ObjHandle;
use ringnfs_service::Signal;
use ringnfs_state::StateManager;
use ringnfs_state::files::{ClusterShares, DelegKind, ShareBits};
use ringnfs_state::grace::{ClusterRecovery, ClusterStatus};
use ringnfs_state::settings::PersistedSettings;

/// The default lease of a node's registration: how long after a node stops (or loses
/// etcd) the others see it gone and begin grace for its clients.
pub const DEFAULT_NODE_TTL_SECS: u32 = 10;
/// The default cluster name: keys live under `/ringnfs/<name>/` in etcd.
pub const DEFAULT_CLUSTER_NAME: &str = "ringnfs";

/// `--cluster etcd=URL[,URL...]`: the etcd members to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterArg {
    pub endpoints: Vec<String>,
}

impl std::str::FromStr for ClusterArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let Some(urls) = s.trim().strip_prefix("etcd=") else {
            return Err(format!(
                "{s:?} names no cluster store: give etcd=URL[,URL...], e.g. etcd=http://127.0.0.1:2379"
            ));
        };
        let endpoints: Vec<String> = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(String::from)
            .collect();
        if endpoints.is_empty() {
            return Err("etcd= needs at least one URL, e.g. etcd=http://127.0.0.1:2379".into());
        }
        // The client checks each URL's form (http://host:port).
        ringnfs_cluster::etcd::Etcd::new(&endpoints, Duration::from_secs(1))
            .map_err(|e| e.to_string())?;
        Ok(ClusterArg { endpoints })
    }
}

impl std::fmt::Display for ClusterArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "etcd={}", self.endpoints.join(","))
    }
}

/// How the server joins its cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Empty when only --node-id was given (refused at start).
    pub endpoints: Vec<String>,
    pub name: String,
    /// None when only --cluster was given (refused at start).
    pub node_id: Option<u32>,
    pub node_ttl_secs: u32,
}

/// Join the cluster as `opts` says, listening on `listen`; grace lasts at most `grace`.
pub fn join(
    opts: &ClusterOptions,
    listen: &[SocketAddr],
    grace: Duration,
) -> anyhow::Result<Arc<Node>> {
    if opts.endpoints.is_empty() {
        anyhow::bail!("--node-id needs --cluster etcd=URL[,URL...] (the cluster to join)");
    }
    let Some(node_id) = opts.node_id else {
        anyhow::bail!("--cluster needs --node-id N (this node's number, unique in the cluster)");
    };
    let cfg = ClusterConfig {
        endpoints: opts.endpoints.clone(),
        name: opts.name.clone(),
        node_id,
        node_ttl: Duration::from_secs(opts.node_ttl_secs.into()),
        grace,
        // Long enough for etcd starting alongside, and for this node's previous
        // registration to expire after a quick restart.
        join_timeout: Duration::from_secs(u64::from(opts.node_ttl_secs) + 30),
        addrs: listen.iter().map(|a| a.to_string()).collect(),
    };
    let node = Node::join(cfg).map_err(|e| {
        anyhow::anyhow!(
            "cannot join cluster {:?} as node {node_id} through etcd at {}: {e}",
            opts.name,
            opts.endpoints.join(", ")
        )
    })?;
    Ok(Arc::new(node))
}

/// The name of the live settings among a cluster's shared documents.
const SHARED_SETTINGS: &str = "settings";

/// Shares the settings an operator changes on this node with every node.
pub fn settings_sharer(node: Arc<Node>) -> ringnfs_control::SettingsSharer {
    ringnfs_control::SettingsSharer(Arc::new(move |saved: &PersistedSettings| {
        let text = toml::to_string(saved).map_err(|e| e.to_string())?;
        node.publish_config(SHARED_SETTINGS, text.as_bytes())
            .map_err(|e| e.to_string())
    }))
}

/// Serve the settings the cluster holds (changed by an operator on any node): now, and
/// whenever another node changes them. They are saved in `state_dir` as this node's own
/// changes would be.
pub fn serve_shared_settings(node: &Node, state: &Arc<StateManager>, state_dir: Option<PathBuf>) {
    let apply = {
        let state = Arc::downgrade(state);
        move |text: &[u8]| {
            let Some(state) = state.upgrade() else { return };
            let parsed = std::str::from_utf8(text)
                .map_err(|e| e.to_string())
                .and_then(|t| toml::from_str::<PersistedSettings>(t).map_err(|e| e.to_string()));
            let saved = match parsed {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "the cluster's settings in etcd cannot be read; keeping this node's");
                    return;
                }
            };
            if let Err(e) = saved.apply(&state.settings) {
                tracing::error!(error = %e, "cannot apply the cluster's settings; keeping this node's");
                return;
            }
            if let Some(level) = &saved.log_level
                && let Err(e) = crate::control::apply_log_level(level)
            {
                tracing::warn!(error = %e, "ignoring the cluster's log level");
            }
            if let Some(dir) = &state_dir
                && let Err(e) = saved.save(dir)
            {
                tracing::warn!(error = %e, "cannot save the cluster's settings in the state directory");
            }
            tracing::info!(settings = %saved.describe(), "applied the cluster's settings");
        }
    };
    if let Some(text) = node.config(SHARED_SETTINGS) {
        apply(&text);
    }
    node.watch_config(SHARED_SETTINGS, Box::new(apply));
}

/// The node, as the protocol core's recovery decisions.
pub struct Recovery(pub Arc<Node>);

impl ClusterRecovery for Recovery {
    fn in_grace(&self) -> bool {
        self.0.in_grace()
    }

    fn may_reclaim(&self, owner: &[u8]) -> bool {
        self.0.may_reclaim(owner)
    }

    fn granting(&self) -> bool {
        self.0.granting()
    }

    fn record(&self, owner: &[u8], done: Signal) {
        self.0.record(
            owner,
            Box::new(move |ok| if ok { done.succeed() } else { done.fail() }),
        );
    }

    fn reclaim_complete(&self, owner: &[u8]) {
        self.0.reclaim_complete(owner);
    }

    fn client_gone(&self, owner: &[u8]) {
        self.0.client_gone(owner);
    }

    fn status(&self) -> ClusterStatus {
        let st = self.0.status();
        let n = self.0.stats();
        let c = self.0.claim_stats();
        let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        ClusterStatus {
            cluster: st.cluster,
            node_id: st.node_id,
            granting: st.granting,
            fenced: st.fenced,
            grace_epoch: st.grace.epoch,
            in_grace: st.grace.active,
            reclaiming_nodes: if st.grace.active {
                st.grace.reclaiming.iter().copied().collect()
            } else {
                Vec::new()
            },
            grace_deadline_ms: if st.grace.active {
                st.grace.deadline_ms
            } else {
                0
            },
            pending_reclaims: st.pending_reclaims,
            nodes: st
                .nodes
                .into_iter()
                .map(|(id, info)| (id, info.addrs))
                .collect(),
            records: st.records,
            records_written: get(&n.records_written),
            record_failures: get(&n.record_failures),
            graces_started: get(&n.graces_started),
            graces_ended: get(&n.graces_ended),
            keepalive_failures: get(&n.keepalive_failures),
            claims_granted: get(&c.granted),
            claims_refused: get(&c.refused),
            claims_retried: get(&c.retried),
            claim_recalls_asked: get(&c.recalls_asked),
        }
    }
}

fn to_share(b: ShareBits) -> Share {
    Share {
        access: b.access,
        deny: b.deny,
        deleg: match b.deleg {
            DelegKind::None => Deleg::None,
            DelegKind::Read => Deleg::Read,
            DelegKind::Write => Deleg::Write,
        },
    }
}

fn to_bits(s: Share) -> ShareBits {
    ShareBits {
        access: s.access,
        deny: s.deny,
        deleg: match s.deleg {
            Deleg::None => DelegKind::None,
            Deleg::Read => DelegKind::Read,
            Deleg::Write => DelegKind::Write,
        },
    }
}

/// The node, as what the protocol core's OPENs and delegations ask of the cluster.
pub struct Shares(pub Arc<Node>);

impl ClusterShares for Shares {
    fn claim(&self, file: &ObjHandle, share: ShareBits, done: Option<Signal>) {
        self.0.claim(
            file.as_bytes(),
            to_share(share),
            Box::new(move |outcome| {
                if let Some(done) = done {
                    match outcome {
                        Outcome::Granted => done.succeed(),
                        Outcome::Refused => done.refuse(),
                        Outcome::Retry => done.fail(),
                    }
                }
            }),
        );
    }

    fn ask_recall(&self, file: &ObjHandle, holders: &[u32]) {
        self.0.ask_recall(file.as_bytes(), holders);
    }
}

/// This node's clients' state, as the node's agent asks about it (acks, settling,
/// shrinking its claims, recalls). Holds the server weakly: the node outlives neither.
pub struct Host {
    pub state: std::sync::Weak<StateManager>,
    pub service: std::sync::Weak<crate::nfs4::program::NfsService>,
}

impl Host {
    fn file(file: &[u8]) -> Option<ObjHandle> {
        ObjHandle::new(file)
    }
}

impl ClaimHost for Host {
    fn remote_claim(&self, file: &[u8], node: u32, claim: Option<Share>) -> Local {
        let (Some(state), Some(f)) = (self.state.upgrade(), Self::file(file)) else {
            return Local::default();
        };
        let (held, pending) = state
            .files
            .cluster_remote_claim(&f, node, claim.map(to_bits));
        Local {
            held: to_share(held),
            pending: pending.map(to_share),
        }
    }

    fn settled(&self, file: &[u8], won: bool, holds: Option<Share>) {
        if let (Some(state), Some(f)) = (self.state.upgrade(), Self::file(file)) {
            state.files.cluster_settled(&f, won, holds.map(to_bits));
        }
    }

    fn needed(&self, file: &[u8]) -> Share {
        match (self.state.upgrade(), Self::file(file)) {
            (Some(state), Some(f)) => to_share(state.files.cluster_needed(&f)),
            // No server (stopping) or no such handle: nothing held.
            _ => Share::default(),
        }
    }

    fn recall(&self, file: &[u8]) {
        if let (Some(service), Some(f)) = (self.service.upgrade(), Self::file(file)) {
            service.recall_for_cluster(&f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_argument_names_etcd_and_its_urls() {
        let a: ClusterArg = "etcd=http://10.0.0.1:2379, http://10.0.0.2:2379"
            .parse()
            .unwrap();
        assert_eq!(
            a.endpoints,
            ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]
        );
        assert_eq!(
            a.to_string(),
            "etcd=http://10.0.0.1:2379,http://10.0.0.2:2379"
        );
        let e = "http://10.0.0.1:2379".parse::<ClusterArg>().unwrap_err();
        assert!(e.contains("etcd=URL"), "{e}");
        assert!(
            "etcd="
                .parse::<ClusterArg>()
                .unwrap_err()
                .contains("at least one URL")
        );
        assert!("etcd=ftp://x".parse::<ClusterArg>().is_err());
    }
}
