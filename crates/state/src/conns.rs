//! Registry of open connections and the sessions each is bound to, so a close unbinds in
//! O(bindings) and operators can look connections up. Sharded by connection id; last in
//! the lock order (after the client table and session shards).

use rustc_hash::FxHashMap;
use std::sync::atomic::Ordering;

use ringnfs_service::{ConnId, ConnMeta};

use super::ids::SessionId;
use super::locks::{CheckInvariants, RankedMutex, rank};

const SHARDS: usize = 16;

#[derive(Debug, Clone)]
pub struct ConnEntry {
    pub meta: ConnMeta,
    pub accepted_at_ms: u64,
    /// Sessions this connection is bound to (the shard slab holds the direction).
    pub sessions: Vec<SessionId>,
}

/// One shard of the registry: the connections whose id hashes here.
#[derive(Debug, Default)]
pub struct ConnShard {
    /// FxHash: connection ids are the server's own.
    conns: FxHashMap<ConnId, ConnEntry>,
}

impl CheckInvariants for ConnShard {
    /// Every entry is stored under its connection's id, lists a session at most once,
    /// and its connection's `bound_sessions` counts the sessions it lists.
    fn check_invariants(&self) -> Result<(), String> {
        for (id, e) in &self.conns {
            if e.meta.id != *id {
                return Err(format!("connection {} stored under {id}", e.meta.id));
            }
            for (i, s) in e.sessions.iter().enumerate() {
                if e.sessions[..i].contains(s) {
                    return Err(format!("connection {id} lists session {s} twice"));
                }
            }
            let counted = e.meta.shared.bound_sessions.load(Ordering::Relaxed) as usize;
            if counted != e.sessions.len() {
                return Err(format!(
                    "connection {id}: bound_sessions {counted}, {} sessions listed",
                    e.sessions.len()
                ));
            }
        }
        Ok(())
    }
}

type Shard = RankedMutex<ConnShard, { rank::CONN_SHARD }>;

pub struct ConnRegistry {
    shards: Box<[Shard]>,
}

impl Default for ConnRegistry {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| Shard::new(ConnShard::default()))
                .collect(),
        }
    }
}

impl ConnRegistry {
    fn shard(&self, id: ConnId) -> &Shard {
        // Mix core bits and sequence bits so consecutive ids spread out.
        let h = (id ^ (id >> 29)) as usize;
        &self.shards[h % SHARDS]
    }

    /// Every shard's [`ConnShard::check_invariants`], one shard at a time.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.shards
            .iter()
            .try_for_each(|s| s.lock().check_invariants())
    }

    pub fn insert(&self, meta: ConnMeta, accepted_at_ms: u64) {
        self.shard(meta.id).lock().conns.insert(
            meta.id,
            ConnEntry {
                meta,
                accepted_at_ms,
                sessions: Vec::new(),
            },
        );
    }

    pub fn remove(&self, id: ConnId) -> Option<ConnEntry> {
        self.shard(id).lock().conns.remove(&id)
    }

    /// Record that `id` is bound to `sid`. False if the connection is gone (it closed
    /// while the bind was being made; the caller undoes the bind).
    pub fn add_session(&self, id: ConnId, sid: SessionId) -> bool {
        match self.shard(id).lock().conns.get_mut(&id) {
            Some(e) => {
                if !e.sessions.contains(&sid) {
                    e.sessions.push(sid);
                    e.meta.shared.bound_sessions.fetch_add(1, Ordering::Relaxed);
                }
                true
            }
            None => false,
        }
    }

    pub fn remove_session(&self, id: ConnId, sid: &SessionId) {
        if let Some(e) = self.shard(id).lock().conns.get_mut(&id) {
            let before = e.sessions.len();
            e.sessions.retain(|s| s != sid);
            if e.sessions.len() < before {
                e.meta.shared.bound_sessions.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    pub fn get(&self, id: ConnId) -> Option<ConnEntry> {
        self.shard(id).lock().conns.get(&id).cloned()
    }

    pub fn sessions_of(&self, id: ConnId) -> Vec<SessionId> {
        self.shard(id)
            .lock()
            .conns
            .get(&id)
            .map(|e| e.sessions.clone())
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().conns.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn all(&self) -> Vec<ConnEntry> {
        let mut v: Vec<ConnEntry> = self
            .shards
            .iter()
            .flat_map(|s| s.lock().conns.values().cloned().collect::<Vec<_>>())
            .collect();
        v.sort_by_key(|e| e.meta.id);
        v
    }
}
