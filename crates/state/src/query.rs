//! The read side for tests, the control plane and the kernel harness: consistent
//! snapshots of clients, sessions and connections, taken with short lock holds.

use std::sync::atomic::Ordering;

use serde::Serialize;

use super::binding::Direction;
use super::ids::SessionId;
use super::metrics::MetricsSnapshot;
use super::session::ChannelAttrs;
use super::{ClientId, StateManager};
use ringnfs_service::ConnId;

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct BindingSummary {
    pub fore: usize,
    pub back: usize,
    pub both: usize,
    pub total: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct BoundConnInfo {
    pub conn: ConnId,
    pub peer: String,
    pub local: String,
    pub core: usize,
    pub direction: Direction,
    pub bound_at_ms: u64,
    pub draining: bool,
    pub requests: u64,
    /// Transport security: "none", "tls" or "mtls".
    pub xprtsec: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub id: String,
    pub clientid: ClientId,
    pub created_at_ms: u64,
    pub fore: ChannelAttrs,
    pub back: ChannelAttrs,
    pub back_channel_requested: bool,
    pub cached_reply_bytes: usize,
    pub connections: Vec<BoundConnInfo>,
    pub summary: BindingSummary,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClientInfo {
    pub id: ClientId,
    /// The client owner string, lossily as UTF-8.
    pub owner: String,
    pub confirmed: bool,
    pub principal: super::Principal,
    pub state_protection: &'static str,
    pub impl_name: String,
    pub sessions: Vec<String>,
    pub lease_remaining_ms: u64,
    pub created_at_ms: u64,
    /// Its COMPOUNDs' operations and bytes.
    pub traffic: super::lease::Traffic,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnInfo {
    pub id: ConnId,
    pub peer: String,
    pub local: String,
    pub core: usize,
    pub accepted_at_ms: u64,
    pub draining: bool,
    pub requests: u64,
    pub sessions: Vec<String>,
    /// Transport security: "none", "tls" or "mtls".
    pub xprtsec: &'static str,
}

impl StateManager {
    pub fn session_info(&self, sid: &SessionId) -> Option<SessionInfo> {
        let (mut info, bindings) = {
            let guard = self.shard_of(sid)?.lock();
            let s = guard.session(sid)?;
            let info = SessionInfo {
                id: sid.to_hex(),
                clientid: s.client,
                created_at_ms: s.created_at_ms,
                fore: s.fore,
                back: s.back,
                back_channel_requested: s.flags
                    & ringnfs_proto::nfs4::consts::create_session_flag::CONN_BACK_CHAN
                    != 0,
                cached_reply_bytes: s.slots.cached_bytes(),
                connections: Vec::new(),
                summary: BindingSummary::default(),
            };
            (info, guard.bindings_of(sid))
        };
        for b in bindings {
            // A binding whose connection left the registry since the shard snapshot has
            // been unbound meanwhile (close unbinds first, then forgets): leave it out.
            let Some(entry) = self.conns.get(b.conn) else {
                continue;
            };
            let meta = &entry.meta;
            match b.dir {
                Direction::Fore => info.summary.fore += 1,
                Direction::Back => info.summary.back += 1,
                Direction::Both => info.summary.both += 1,
            }
            info.summary.total += 1;
            info.connections.push(BoundConnInfo {
                conn: b.conn,
                peer: meta.peer.to_string(),
                local: meta.local.to_string(),
                core: meta.core,
                direction: b.dir,
                bound_at_ms: b.bound_at_ms,
                draining: meta.shared.draining.load(Ordering::Relaxed),
                requests: meta.shared.requests.load(Ordering::Relaxed),
                xprtsec: meta.shared.security().name(),
            });
        }
        Some(info)
    }

    pub fn sessions(&self) -> Vec<SessionInfo> {
        let ids: Vec<SessionId> = self
            .shards
            .iter()
            .flat_map(|s| s.lock().session_ids())
            .collect();
        ids.iter().filter_map(|id| self.session_info(id)).collect()
    }

    /// Whether client record `client` still exists (its lease has not run out, it was
    /// not destroyed).
    pub fn client_exists(&self, client: ClientId) -> bool {
        self.clients.lock().get(client).is_some()
    }

    /// The ids of `client`'s sessions.
    pub fn session_ids_of_client(&self, client: ClientId) -> Vec<SessionId> {
        self.clients
            .lock()
            .get(client)
            .map(|c| c.sessions.clone())
            .unwrap_or_default()
    }

    pub fn sessions_of_client(&self, client: ClientId) -> Vec<SessionInfo> {
        let ids = self
            .clients
            .lock()
            .get(client)
            .map(|c| c.sessions.clone())
            .unwrap_or_default();
        ids.iter().filter_map(|id| self.session_info(id)).collect()
    }

    /// A live session's traffic.
    fn session_traffic(&self, sid: &SessionId) -> Option<super::lease::Traffic> {
        self.shard_of(sid)?.lock().session(sid).map(|s| s.traffic)
    }

    pub fn clients(&self) -> Vec<ClientInfo> {
        let now = self.clock.now_ms();
        let lease = self.lease_ms();
        let clients = self.clients.lock();
        let mut v: Vec<ClientInfo> = clients
            .records()
            .map(|r| ClientInfo {
                id: r.id,
                owner: String::from_utf8_lossy(&r.owner).into_owned(),
                confirmed: r.confirmed,
                principal: r.principal.clone(),
                state_protection: match r.protect.how {
                    0 => "none",
                    1 => "mach_cred",
                    _ => "ssv",
                },
                impl_name: r.impl_name.clone(),
                sessions: r.sessions.iter().map(|s| s.to_hex()).collect(),
                lease_remaining_ms: (r.lease.last_renew_ms() + lease).saturating_sub(now),
                created_at_ms: r.created_at_ms,
                traffic: r.lease.traffic(),
            })
            .collect();
        drop(clients);
        // Live sessions count their own traffic (read under their shards' locks, after
        // the client table's).
        for c in &mut v {
            for sid in &c.sessions {
                if let Some(t) = SessionId::from_hex(sid).and_then(|s| self.session_traffic(&s)) {
                    c.traffic.add(t);
                }
            }
        }
        v.sort_by_key(|c| c.id);
        v
    }

    pub fn connections(&self) -> Vec<ConnInfo> {
        self.conns
            .all()
            .into_iter()
            .map(|e| ConnInfo {
                id: e.meta.id,
                peer: e.meta.peer.to_string(),
                local: e.meta.local.to_string(),
                core: e.meta.core,
                accepted_at_ms: e.accepted_at_ms,
                draining: e.meta.shared.draining.load(Ordering::Relaxed),
                requests: e.meta.shared.requests.load(Ordering::Relaxed),
                xprtsec: e.meta.shared.security().name(),
                sessions: e.sessions.iter().map(|s| s.to_hex()).collect(),
            })
            .collect()
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    pub fn client_count(&self) -> usize {
        self.clients.lock().len()
    }

    pub fn session_count(&self) -> usize {
        self.shards.iter().map(|s| s.lock().session_count()).sum()
    }

    pub fn bound_connection_count(&self) -> usize {
        self.shards.iter().map(|s| s.lock().binding_count()).sum()
    }

    pub fn metrics_snapshot(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }
}
