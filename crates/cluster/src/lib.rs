//! The cluster on etcd: membership on leases, the identity every node shares (server
//! scope, file-handle key), clients' recovery records, and a grace period the whole
//! cluster enters and leaves together, so that a node's clients can reclaim their state
//! on another node after it failed (after nfs-ganesha's `rados_cluster` recovery
//! backend). On nothing of ours: the server adapts it to its state (`src/cluster.rs`).
//!
//! - [`etcd`]: the client of etcd's v3 API the rest is built on.
//! - [`keys`]: where the cluster keeps what in etcd.
//! - [`view`]: a node's copy of it, and the recovery rules as pure functions.
//! - [`claims`]: share reservations and delegations claimed across nodes: values and rules.
//! - [`node`]: joining, the agent thread (lease, records, grace), what the server asks.

pub mod claims;
pub mod etcd;
pub mod keys;
pub mod node;
pub mod view;

pub use node::{ClaimHost, ClaimStats, ClusterConfig, Identity, JoinError, Node, Stats, Status};
