//! A small blocking client of etcd's v3 API, spoken through etcd's JSON gateway: HTTP/1.1
//! POSTs of JSON to `/v3/kv/range`, `/v3/kv/put`, `/v3/lease/grant` and so on, keys and
//! values in base64, which etcd (3.4 and later: the `/v3/` paths) serves on its client URL.
//!
//! Why not the `etcd-client` crate (gRPC through tonic): its build script compiles etcd's
//! `.proto` files and needs `protoc` installed, which would break the project's
//! one-command build on a fresh Debian machine (`cargo run --release -- serve`). The
//! gateway needs nothing but an HTTP client.
//!
//! [`Etcd`] holds a list of endpoints (`http://host:port`; TLS to etcd is not supported
//! yet). A call goes to the endpoint that last worked; on a connection error or a timeout
//! it moves on to the next, and so when a member answers that it has no leader (it is
//! cut off from the others). Any other gRPC error from a live member is the answer
//! ([`EtcdError::Status`]). Only when every endpoint failed is the result
//! [`EtcdError::Unreachable`]. A write whose reply timed out may still have been applied;
//! it is sent again to the next member like any other call, so writes that must not
//! happen twice belong in a [`Txn`] whose compares make the second try fail.
//!
//! [`Etcd::watch_prefix`] streams changes from a thread of its own, which reconnects to
//! another member when the stream breaks (see [`Watch`]).

mod http;
mod json;
mod kv;
mod lease;
mod stream;
mod txn;
mod watch;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

pub use lease::Lease;
pub use txn::{CmpOp, Compare, Txn, TxnOp, TxnResult};
pub use watch::{Watch, WatchEvent};

/// A client of one etcd cluster. Cloning is cheap (the clones share the connections and
/// the memory of which endpoint works); it may be used from several threads at once.
#[derive(Clone)]
pub struct Etcd {
    inner: Arc<Inner>,
}

struct Inner {
    endpoints: Vec<http::Endpoint>,
    /// The index of the endpoint that answered last: tried first.
    preferred: AtomicUsize,
    agent: ureq::Agent,
    timeout: Duration,
}

/// A key and its value as etcd keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// The revision of the put that created the key (since its last delete).
    pub create_revision: i64,
    /// The revision of its last change.
    pub mod_revision: i64,
    /// How many times it was put since it was created (1 after the first put).
    pub version: i64,
    /// The lease it is attached to, 0 for none.
    pub lease: i64,
}

/// What one member says of itself ([`Etcd::status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    /// The endpoint that answered.
    pub endpoint: String,
    /// etcd's version, e.g. "3.4.23".
    pub version: String,
    pub member_id: u64,
    /// The member id of the leader, 0 when there is none.
    pub leader: u64,
    /// The cluster's current revision as this member knows it.
    pub revision: i64,
    pub raft_term: u64,
    pub db_size: i64,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("no etcd member answered (tried {endpoints}); last error: {last}")]
    Unreachable { endpoints: String, last: String },
    /// A gRPC error the gateway returned for a live member.
    #[error("etcd refused the request: {message} (gRPC code {code})")]
    Status { code: i32, message: String },
    #[error("etcd sent a reply this client does not understand: {0}")]
    BadReply(String),
    #[error("etcd lease {0:x} has expired (or was revoked)")]
    LeaseExpired(i64),
    /// The history asked for is gone, compacted up to this revision. A watch handles it
    /// itself ([`WatchEvent::Resync`]); the variant is for reads of past revisions.
    #[error("etcd has compacted its history up to revision {0}: what came before is gone")]
    Compacted(i64),
    #[error("bad etcd endpoint: {0}")]
    InvalidEndpoint(String),
}

/// gRPC's UNAVAILABLE: the member is up but cannot serve (no leader, or it timed out
/// waiting for one): another member may.
const UNAVAILABLE: i32 = 14;

impl EtcdError {
    /// Whether another member might answer where this one failed.
    fn try_another_member(&self) -> bool {
        match self {
            EtcdError::Status { code, message } => {
                *code == UNAVAILABLE || message.contains("no leader")
            }
            _ => false,
        }
    }
}

impl Etcd {
    /// A client of the cluster at `endpoints` (`http://host:port`, several members of
    /// one cluster); each call may take up to `request_timeout` per member tried. Checks
    /// the endpoints' form only: nothing is contacted until the first call.
    pub fn new(endpoints: &[String], request_timeout: Duration) -> Result<Etcd, EtcdError> {
        if endpoints.is_empty() {
            return Err(EtcdError::InvalidEndpoint("no endpoint given".into()));
        }
        let endpoints = endpoints
            .iter()
            .map(|e| http::Endpoint::parse(e))
            .collect::<Result<Vec<_>, _>>()?;
        let agent = ureq::Agent::config_builder()
            // The gateway's errors come with 4xx/5xx statuses and a JSON body saying
            // which gRPC error it was: read the body whatever the status.
            .http_status_as_error(false)
            .timeout_global(Some(request_timeout))
            .build()
            .new_agent();
        Ok(Etcd {
            inner: Arc::new(Inner {
                endpoints,
                preferred: AtomicUsize::new(0),
                agent,
                timeout: request_timeout,
            }),
        })
    }

    /// The endpoints, as given to [`Etcd::new`] (normalized).
    pub fn endpoints(&self) -> Vec<String> {
        self.inner.endpoints.iter().map(|e| e.url()).collect()
    }

    /// The status of the first member that answers: a health check.
    pub fn status(&self) -> Result<MemberStatus, EtcdError> {
        let (endpoint, r): (String, json::StatusResponse) = self
            .call_on("/v3/maintenance/status", &serde_json::json!({}))
            .map(|(i, r)| (self.inner.endpoints[i].url(), r))?;
        Ok(MemberStatus {
            endpoint,
            version: r.version,
            member_id: r.header.member_id,
            leader: r.leader,
            revision: r.header.revision,
            raft_term: r.header.raft_term,
            db_size: r.db_size,
        })
    }
}

// Shared between threads: checked here rather than promised in a comment.
const _: () = {
    const fn shareable<T: Send + Sync + Clone>() {}
    const fn sendable<T: Send>() {}
    shareable::<Etcd>();
    sendable::<Watch>();
};
