//! One shard of the session table: the sessions whose id names this shard, and the slab
//! of their connection bindings. Every method runs with the shard's mutex held; the
//! fields are private so that every change goes through a method that keeps the two
//! consistent (see [`SessionShard::check_invariants`]).

use std::collections::HashSet;

use rustc_hash::FxHashMap;

use slab::Slab;

use ringnfs_proto::nfs4::consts::{NfsStatus, status};
use ringnfs_service::ConnId;

use super::binding::{Binding, Direction};
use super::ids::SessionId;
use super::locks::CheckInvariants;
use super::metrics::BindRefusal;
use super::session::Session;

/// A session and the slab keys of its bindings, in bind order.
#[derive(Debug)]
struct Entry {
    session: Session,
    bindings: Vec<usize>,
}

#[derive(Debug)]
pub struct SessionShard {
    /// The boot and shard index every session id here names.
    boot: u32,
    index: u16,
    /// Keyed with FxHash: session ids are chosen by the server (random), so a client
    /// cannot pick colliding keys; SipHash would cost every SEQUENCE more.
    sessions: FxHashMap<SessionId, Entry>,
    bindings: Slab<Binding>,
}

/// Result of asking to bind a connection to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindOutcome {
    /// A new binding.
    Bound(Direction),
    /// The pair was bound already; its direction is now this.
    Updated { from: Direction, to: Direction },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindError {
    pub status: NfsStatus,
    pub refusal: Option<BindRefusal>,
}

impl SessionShard {
    /// Shard `index` of the session table of server instance `boot`.
    pub fn new(boot: u32, index: u16) -> Self {
        Self {
            boot,
            index,
            sessions: FxHashMap::default(),
            bindings: Slab::new(),
        }
    }

    pub fn session(&self, sid: &SessionId) -> Option<&Session> {
        self.sessions.get(sid).map(|e| &e.session)
    }

    pub fn session_mut(&mut self, sid: &SessionId) -> Option<&mut Session> {
        self.sessions.get_mut(sid).map(|e| &mut e.session)
    }

    /// A session, and whether a connection bound to it can carry callbacks (SEQUENCE's
    /// CB_PATH_DOWN_SESSION), in one lookup.
    pub fn session_mut_with_back(&mut self, sid: &SessionId) -> Option<(&mut Session, bool)> {
        let e = self.sessions.get_mut(sid)?;
        // A back channel needs a connection for it and a flavor to call back with.
        let has_back =
            e.session.cb_sec_ok && e.bindings.iter().any(|&k| self.bindings[k].dir.has_back());
        Some((&mut e.session, has_back))
    }

    pub fn contains(&self, sid: &SessionId) -> bool {
        self.sessions.contains_key(sid)
    }

    /// Insert a new session without bindings; false (and nothing changes) if its id is
    /// taken.
    pub fn insert_session(&mut self, session: Session) -> bool {
        match self.sessions.entry(session.id) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Entry {
                    session,
                    bindings: Vec::new(),
                });
                true
            }
        }
    }

    pub fn session_ids(&self) -> Vec<SessionId> {
        self.sessions.keys().copied().collect()
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub fn binding_count(&self) -> usize {
        self.bindings.len()
    }

    /// The binding key of `conn` in the session, if bound.
    fn binding_of(&self, entry: &Entry, conn: ConnId) -> Option<usize> {
        entry
            .bindings
            .iter()
            .copied()
            .find(|&k| self.bindings[k].conn == conn)
    }

    /// A session, and whether `conn` is bound to it (one lookup, for SEQUENCE).
    pub fn session_bound(&self, sid: &SessionId, conn: ConnId) -> Option<(&Session, bool)> {
        let e = self.sessions.get(sid)?;
        Some((&e.session, self.binding_of(e, conn).is_some()))
    }

    pub fn direction_of(&self, sid: &SessionId, conn: ConnId) -> Option<Direction> {
        let e = self.sessions.get(sid)?;
        self.binding_of(e, conn).map(|k| self.bindings[k].dir)
    }

    /// Bind (or re-direct) `conn` to `sid` (RFC 8881 §2.10.3.1, docs/protocol.md "Binding rules"):
    /// the per-session limit (0 = unlimited) applies to new pairs; a bind that would
    /// leave the session without a fore-capable connection is refused.
    pub fn bind(
        &mut self,
        sid: &SessionId,
        conn: ConnId,
        dir: Direction,
        limit: u32,
        now_unix_ms: u64,
    ) -> Result<BindOutcome, BindError> {
        let Some(entry) = self.sessions.get(sid) else {
            return Err(BindError {
                status: status::NFS4ERR_BADSESSION,
                refusal: Some(BindRefusal::BadSession),
            });
        };
        let existing = self.binding_of(entry, conn);
        let fore_elsewhere = entry
            .bindings
            .iter()
            .any(|&k| self.bindings[k].conn != conn && self.bindings[k].dir.has_fore());
        if !dir.has_fore() && !fore_elsewhere {
            return Err(BindError {
                status: status::NFS4ERR_INVAL,
                refusal: Some(BindRefusal::ForeRequired),
            });
        }
        if let Some(k) = existing {
            let from = self.bindings[k].dir;
            self.bindings[k].dir = dir;
            return Ok(BindOutcome::Updated { from, to: dir });
        }
        if limit != 0 && entry.bindings.len() >= limit as usize {
            return Err(BindError {
                status: status::NFS4ERR_DELAY,
                refusal: Some(BindRefusal::Limit),
            });
        }
        let key = self.bindings.insert(Binding {
            conn,
            session: *sid,
            dir,
            bound_at_ms: now_unix_ms,
        });
        if let Some(e) = self.sessions.get_mut(sid) {
            e.bindings.push(key);
        }
        Ok(BindOutcome::Bound(dir))
    }

    /// Remove the binding of `conn` to `sid`; returns its direction if there was one.
    pub fn unbind(&mut self, sid: &SessionId, conn: ConnId) -> Option<Direction> {
        let entry = self.sessions.get_mut(sid)?;
        let pos = entry
            .bindings
            .iter()
            .position(|&k| self.bindings[k].conn == conn)?;
        let key = entry.bindings.swap_remove(pos);
        Some(self.bindings.remove(key).dir)
    }

    /// Remove a session and all its bindings; returns the session and the bindings.
    pub fn remove_session(&mut self, sid: &SessionId) -> Option<(Session, Vec<Binding>)> {
        let entry = self.sessions.remove(sid)?;
        let bindings = entry
            .bindings
            .iter()
            .map(|&k| self.bindings.remove(k))
            .collect();
        Some((entry.session, bindings))
    }

    /// Bindings of a session, in bind order.
    pub fn bindings_of(&self, sid: &SessionId) -> Vec<Binding> {
        self.sessions
            .get(sid)
            .map(|e| {
                e.bindings
                    .iter()
                    .map(|&k| self.bindings[k].clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A connection that can carry callbacks for the session, if any.
    pub fn back_conn(&self, sid: &SessionId) -> Option<ConnId> {
        let e = self.sessions.get(sid)?;
        e.bindings
            .iter()
            .map(|&k| &self.bindings[k])
            .find(|b| b.dir.has_back())
            .map(|b| b.conn)
    }
}

impl CheckInvariants for SessionShard {
    /// - every session's id is its key and names this shard and boot;
    /// - its slot table is consistent and has one slot per granted fore-channel request
    ///   (at least one);
    /// - every binding in the slab is listed by exactly one session, the one it names,
    ///   and every key a session lists is in the slab;
    /// - a connection is bound to a session at most once.
    fn check_invariants(&self) -> Result<(), String> {
        let mut listed = HashSet::with_capacity(self.bindings.len());
        for (sid, e) in &self.sessions {
            let s = &e.session;
            if s.id != *sid {
                return Err(format!("session {} stored under {}", s.id, sid));
            }
            if sid.boot() != self.boot || sid.shard() != self.index {
                return Err(format!(
                    "session {sid} in shard {} of boot {:#x}",
                    self.index, self.boot
                ));
            }
            s.slots
                .check_invariants()
                .map_err(|e| format!("session {sid}: {e}"))?;
            if s.slots.len() != s.fore.maxrequests.max(1) {
                return Err(format!(
                    "session {sid}: {} slots for ca_maxrequests {}",
                    s.slots.len(),
                    s.fore.maxrequests
                ));
            }
            let mut conns = HashSet::with_capacity(e.bindings.len());
            for &k in &e.bindings {
                let Some(b) = self.bindings.get(k) else {
                    return Err(format!("session {sid} lists binding {k}, not in the slab"));
                };
                if b.session != *sid {
                    return Err(format!(
                        "session {sid} lists binding {k}, which names session {}",
                        b.session
                    ));
                }
                if !listed.insert(k) {
                    return Err(format!("binding {k} listed twice"));
                }
                if !conns.insert(b.conn) {
                    return Err(format!("connection {} bound twice to {sid}", b.conn));
                }
            }
        }
        if listed.len() != self.bindings.len() {
            let orphan = self
                .bindings
                .iter()
                .find(|(k, _)| !listed.contains(k))
                .map(|(k, b)| format!("binding {k} of connection {} to {}", b.conn, b.session));
            return Err(format!(
                "{} bindings in the slab, {} listed by sessions ({} listed by none)",
                self.bindings.len(),
                listed.len(),
                orphan.unwrap_or_default()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::client::StateProtect;
    use crate::lease::Lease;
    use crate::session::ChannelAttrs;
    use crate::slots::SlotTable;
    use ringnfs_proto::rpc::Credential;

    fn shard_with_session() -> (SessionShard, SessionId) {
        let mut sh = SessionShard::new(1, 0);
        let sid = SessionId::new(1, 0, [1; 10]);
        assert!(sh.insert_session(Session {
            id: sid,
            client: 1,
            lease: Arc::new(Lease::new(0)),
            protect: StateProtect::default(),
            principal: crate::client::Principal::None,
            fore: ChannelAttrs {
                maxrequests: 4,
                ..ChannelAttrs::default()
            },
            back: ChannelAttrs::default(),
            flags: 0,
            cb_program: 0,
            cb_cred: Credential::None,
            cb_sec_ok: true,
            slots: SlotTable::new(4),
            cb_seqids: vec![0],
            minor: 1,
            created_at_ms: 0,
            traffic: Default::default(),
        }));
        (sh, sid)
    }

    #[test]
    fn bind_rules() {
        let (mut sh, sid) = shard_with_session();
        sh.check_invariants().unwrap();
        // No fore connection yet: BACK alone is refused.
        assert_eq!(
            sh.bind(&sid, 1, Direction::Back, 2, 0).unwrap_err().status,
            status::NFS4ERR_INVAL
        );
        assert_eq!(
            sh.bind(&sid, 1, Direction::Fore, 2, 0),
            Ok(BindOutcome::Bound(Direction::Fore))
        );
        assert_eq!(
            sh.bind(&sid, 2, Direction::Both, 2, 0),
            Ok(BindOutcome::Bound(Direction::Both))
        );
        // Limit 2 reached: a third connection waits.
        let e = sh.bind(&sid, 3, Direction::Fore, 2, 0).unwrap_err();
        assert_eq!(e.status, status::NFS4ERR_DELAY);
        assert_eq!(e.refusal, Some(BindRefusal::Limit));
        // 0 = unlimited.
        assert!(sh.bind(&sid, 3, Direction::Fore, 0, 0).is_ok());
        // Re-binding an existing pair changes its direction and ignores the limit.
        assert_eq!(
            sh.bind(&sid, 1, Direction::Back, 1, 0),
            Ok(BindOutcome::Updated {
                from: Direction::Fore,
                to: Direction::Back
            })
        );
        assert_eq!(sh.unbind(&sid, 3), Some(Direction::Fore));
        assert_eq!(sh.unbind(&sid, 3), None);
        // Conn 2 (BOTH) is now the last fore-capable one: it cannot become BACK.
        assert_eq!(
            sh.bind(&sid, 2, Direction::Back, 0, 0).unwrap_err().status,
            status::NFS4ERR_INVAL
        );
        assert_eq!(sh.back_conn(&sid), Some(1));
        sh.check_invariants().unwrap();
        let (_, b) = sh.remove_session(&sid).unwrap();
        sh.check_invariants().unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(sh.binding_count(), 0);
        assert_eq!(
            sh.bind(&sid, 1, Direction::Fore, 0, 0).unwrap_err().status,
            status::NFS4ERR_BADSESSION
        );
    }

    #[test]
    fn check_invariants_finds_inconsistent_bindings() {
        let (mut sh, sid) = shard_with_session();
        sh.bind(&sid, 1, Direction::Fore, 0, 0).unwrap();
        sh.check_invariants().unwrap();

        // A binding no session lists.
        let k = sh.bindings.insert(Binding {
            conn: 2,
            session: sid,
            dir: Direction::Fore,
            bound_at_ms: 0,
        });
        let e = sh.check_invariants().unwrap_err();
        assert!(e.contains("listed by none"), "{e}");

        // Listed, but the connection is already bound to the session.
        sh.bindings[k].conn = 1;
        sh.sessions.get_mut(&sid).unwrap().bindings.push(k);
        let e = sh.check_invariants().unwrap_err();
        assert!(e.contains("bound twice"), "{e}");

        // A key that is not in the slab.
        sh.sessions.get_mut(&sid).unwrap().bindings.pop();
        sh.bindings.remove(k);
        sh.sessions.get_mut(&sid).unwrap().bindings.push(k + 7);
        let e = sh.check_invariants().unwrap_err();
        assert!(e.contains("not in the slab"), "{e}");
        sh.sessions.get_mut(&sid).unwrap().bindings.pop();
        sh.check_invariants().unwrap();

        // A session of another shard.
        let mut other = SessionShard::new(1, 1);
        let (mut donor, _) = shard_with_session();
        let (s, _) = donor.remove_session(&sid).unwrap();
        assert!(other.insert_session(s));
        let e = other.check_invariants().unwrap_err();
        assert!(e.contains("in shard 1"), "{e}");
    }
}
