//! A cluster node's view over REST (`GET /api/v1/cluster`, `ringnfs ctl cluster`): its
//! membership, the grace period, the live nodes and its recovery records.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Ctx;
use super::error::{ApiError, ApiResult, ErrorBody};

/// A live node.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NodeView {
    pub id: u32,
    /// Its listen addresses.
    pub addrs: Vec<String>,
}

/// This node's view of its cluster.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClusterView {
    /// The cluster's name (its keys in etcd are under /ringnfs/NAME/).
    pub cluster: String,
    pub node_id: u32,
    /// Renewing its membership: it may grant new state.
    pub granting: bool,
    /// Its membership expired while etcd was out of reach: no new state until restarted.
    pub fenced: bool,
    pub grace_epoch: u64,
    /// The cluster-wide grace period is in force: new state waits (NFS4ERR_GRACE).
    pub in_grace: bool,
    /// Nodes whose clients reclaim in the grace in force.
    pub reclaiming_nodes: Vec<u32>,
    /// When the grace in force ends at the latest (Unix ms; 0 when none is).
    pub grace_deadline_ms: u64,
    /// Clients that may still reclaim.
    pub pending_reclaims: usize,
    pub nodes: Vec<NodeView>,
    /// Client recovery records this node holds.
    pub records: usize,
}

/// This node's membership, the grace period and the live nodes.
#[utoipa::path(get, path = "/api/v1/cluster", tag = "cluster",
    responses(
        (status = 200, description = "The cluster as this node sees it", body = ClusterView),
        (status = 404, description = "This server is not a node of a cluster", body = ErrorBody)))]
pub async fn get_cluster(State(ctx): State<Arc<Ctx>>) -> ApiResult<Json<ClusterView>> {
    let c = ctx.state.grace.cluster().ok_or_else(|| {
        ApiError::not_found(
            "this server is not a node of a cluster (ringnfs serve --cluster etcd=URL --node-id N)",
        )
    })?;
    let s = c.status();
    Ok(Json(ClusterView {
        cluster: s.cluster,
        node_id: s.node_id,
        granting: s.granting,
        fenced: s.fenced,
        grace_epoch: s.grace_epoch,
        in_grace: s.in_grace,
        reclaiming_nodes: s.reclaiming_nodes,
        grace_deadline_ms: s.grace_deadline_ms,
        pending_reclaims: s.pending_reclaims,
        nodes: s
            .nodes
            .into_iter()
            .map(|(id, addrs)| NodeView { id, addrs })
            .collect(),
        records: s.records,
    }))
}
