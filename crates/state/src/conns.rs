//! Registry of open connections and the sessions each is bound to, so a close unbinds in
//! O(bindings) and operators can look connections up. Sharded by connection id; last in
//! the lock order (after the client table and session shards).

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use ringnfs_service::{ConnId, ConnMeta};

use super::ids::SessionId;

const SHARDS: usize = 16;

#[derive(Debug, Clone)]
pub struct ConnEntry {
    pub meta: ConnMeta,
    pub accepted_at_ms: u64,
    /// Sessions this connection is bound to (the shard slab holds the direction).
    pub sessions: Vec<SessionId>,
}

pub struct ConnRegistry {
    shards: Box<[Mutex<HashMap<ConnId, ConnEntry>>]>,
}

impl Default for ConnRegistry {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl ConnRegistry {
    fn shard(&self, id: ConnId) -> &Mutex<HashMap<ConnId, ConnEntry>> {
        // Mix core bits and sequence bits so consecutive ids spread out.
        let h = (id ^ (id >> 29)) as usize;
        &self.shards[h % SHARDS]
    }

    pub fn insert(&self, meta: ConnMeta, accepted_at_ms: u64) {
        self.shard(meta.id).lock().insert(
            meta.id,
            ConnEntry {
                meta,
                accepted_at_ms,
                sessions: Vec::new(),
            },
        );
    }

    pub fn remove(&self, id: ConnId) -> Option<ConnEntry> {
        self.shard(id).lock().remove(&id)
    }

    /// Record that `id` is bound to `sid`. False if the connection is gone (it closed
    /// while the bind was being made; the caller undoes the bind).
    pub fn add_session(&self, id: ConnId, sid: SessionId) -> bool {
        match self.shard(id).lock().get_mut(&id) {
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
        if let Some(e) = self.shard(id).lock().get_mut(&id) {
            let before = e.sessions.len();
            e.sessions.retain(|s| s != sid);
            if e.sessions.len() < before {
                e.meta.shared.bound_sessions.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    pub fn get(&self, id: ConnId) -> Option<ConnEntry> {
        self.shard(id).lock().get(&id).cloned()
    }

    pub fn sessions_of(&self, id: ConnId) -> Vec<SessionId> {
        self.shard(id)
            .lock()
            .get(&id)
            .map(|e| e.sessions.clone())
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn all(&self) -> Vec<ConnEntry> {
        let mut v: Vec<ConnEntry> = self
            .shards
            .iter()
            .flat_map(|s| s.lock().values().cloned().collect::<Vec<_>>())
            .collect();
        v.sort_by_key(|e| e.meta.id);
        v
    }
}
