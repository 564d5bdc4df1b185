//! A worker's connections: the slab their ring operations name by key, the index by
//! connection id (for mailbox messages), the set of open ids senders check, and the
//! list of connections to re-plan at the end of the completion batch.

use std::collections::HashMap;

use slab::Slab;

use ringnfs_service::{ConnId, make_conn_id};

use super::conn::Conn;
use super::fileio::Owner;
use super::mailbox::LiveSet;
use super::token::generation_of;

pub(crate) struct ConnTable {
    slab: Slab<Conn>,
    ids: HashMap<ConnId, usize>,
    /// Open connection ids, shared with senders on other threads.
    live: LiveSet,
    next_seq: u64,
    /// Connections to re-plan: (key, generation).
    dirty: Vec<(usize, u32)>,
}

impl ConnTable {
    pub fn new(live: LiveSet) -> ConnTable {
        ConnTable {
            slab: Slab::new(),
            ids: HashMap::new(),
            live,
            next_seq: 0,
            dirty: Vec::new(),
        }
    }

    /// Add the connection `make` builds from its id and generation; None (nothing
    /// added) if the slab is beyond what a token's key can name.
    pub fn insert(&mut self, core: usize, make: impl FnOnce(ConnId, u32) -> Conn) -> Option<usize> {
        let entry = self.slab.vacant_entry();
        let key = entry.key();
        if key > u32::MAX as usize {
            return None;
        }
        self.next_seq += 1;
        let id = make_conn_id(core, self.next_seq);
        entry.insert(make(id, generation_of(self.next_seq)));
        self.ids.insert(id, key);
        self.live.lock().insert(id);
        Some(key)
    }

    /// The connection at `key`, if it is the one a ring operation of `generation` was
    /// submitted for.
    pub fn get(&mut self, key: usize, generation: u32) -> Option<&mut Conn> {
        self.slab
            .get_mut(key)
            .filter(|c| c.generation == generation)
    }

    /// The connection a file operation's request came on, if it is still open.
    pub fn owner(&mut self, o: Owner) -> Option<&mut Conn> {
        self.slab.get_mut(o.key).filter(|c| c.meta.id == o.id)
    }

    pub fn key_of(&self, id: ConnId) -> Option<usize> {
        self.ids.get(&id).copied()
    }

    /// The live connection at `key` (a key just looked up or listed).
    pub fn at(&mut self, key: usize) -> &mut Conn {
        &mut self.slab[key]
    }

    pub fn keys(&self) -> Vec<usize> {
        self.slab.iter().map(|(k, _)| k).collect()
    }

    /// Keys of the connections matching `f`.
    pub fn select(&self, f: impl Fn(&Conn) -> bool) -> Vec<usize> {
        self.slab
            .iter()
            .filter(|(_, c)| f(c))
            .map(|(k, _)| k)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Queue the connection at `key` for planning at the end of the batch (once).
    pub fn mark_dirty(&mut self, key: usize) {
        if let Some(c) = self.slab.get_mut(key)
            && !c.dirty
        {
            c.dirty = true;
            self.dirty.push((key, c.generation));
        }
    }

    /// The connections queued for planning (some may be gone by now); give the list
    /// back with [`ConnTable::reuse`] to keep its allocation.
    pub fn take_dirty(&mut self) -> Vec<(usize, u32)> {
        std::mem::take(&mut self.dirty)
    }

    pub fn reuse(&mut self, mut list: Vec<(usize, u32)>) {
        list.clear();
        if self.dirty.is_empty() {
            self.dirty = list;
        }
    }

    /// Remove the connection at `key` (its id is no longer open to senders).
    pub fn remove(&mut self, key: usize) -> Conn {
        let c = self.slab.remove(key);
        self.ids.remove(&c.meta.id);
        self.live.lock().remove(&c.meta.id);
        c
    }

    /// Remove every connection (the worker gives up).
    pub fn take_all(&mut self) -> Slab<Conn> {
        self.ids.clear();
        self.live.lock().clear();
        std::mem::take(&mut self.slab)
    }
}
