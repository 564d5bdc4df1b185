//! One shard of the session table: the sessions whose id names this shard, and the slab
//! of their connection bindings. Every method runs with the shard's mutex held.

use std::collections::HashMap;

use slab::Slab;

use ringnfs_proto::nfs4::consts::status;
use ringnfs_service::ConnId;

use super::binding::{Binding, Direction};
use super::ids::SessionId;
use super::metrics::BindRefusal;
use super::session::Session;

#[derive(Debug, Default)]
pub struct Shard {
    pub sessions: HashMap<SessionId, Session>,
    pub bindings: Slab<Binding>,
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
    pub status: u32,
    pub refusal: Option<BindRefusal>,
}

impl Shard {
    /// The binding key of `conn` in `session`, if bound.
    pub fn binding_of(&self, session: &Session, conn: ConnId) -> Option<usize> {
        session
            .bindings
            .iter()
            .copied()
            .find(|&k| self.bindings[k].conn == conn)
    }

    pub fn direction_of(&self, sid: &SessionId, conn: ConnId) -> Option<Direction> {
        let s = self.sessions.get(sid)?;
        self.binding_of(s, conn).map(|k| self.bindings[k].dir)
    }

    /// Bind (or re-direct) `conn` to `sid` (RFC 8881 §2.10.3.1, README "Binding rules"):
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
        let Some(session) = self.sessions.get(sid) else {
            return Err(BindError {
                status: status::NFS4ERR_BADSESSION,
                refusal: Some(BindRefusal::BadSession),
            });
        };
        let existing = self.binding_of(session, conn);
        let fore_elsewhere = session
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
        if limit != 0 && session.bindings.len() >= limit as usize {
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
        if let Some(s) = self.sessions.get_mut(sid) {
            s.bindings.push(key);
        }
        Ok(BindOutcome::Bound(dir))
    }

    /// Remove the binding of `conn` to `sid`; returns its direction if there was one.
    pub fn unbind(&mut self, sid: &SessionId, conn: ConnId) -> Option<Direction> {
        let session = self.sessions.get_mut(sid)?;
        let pos = session
            .bindings
            .iter()
            .position(|&k| self.bindings[k].conn == conn)?;
        let key = session.bindings.swap_remove(pos);
        Some(self.bindings.remove(key).dir)
    }

    /// Remove a session and all its bindings; returns the session and the bindings.
    pub fn remove_session(&mut self, sid: &SessionId) -> Option<(Session, Vec<Binding>)> {
        let session = self.sessions.remove(sid)?;
        let bindings = session
            .bindings
            .iter()
            .map(|&k| self.bindings.remove(k))
            .collect();
        Some((session, bindings))
    }

    /// Bindings of a session, in bind order.
    pub fn bindings_of(&self, sid: &SessionId) -> Vec<Binding> {
        self.sessions
            .get(sid)
            .map(|s| {
                s.bindings
                    .iter()
                    .map(|&k| self.bindings[k].clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A connection that can carry callbacks for the session, if any.
    pub fn back_conn(&self, sid: &SessionId) -> Option<ConnId> {
        let s = self.sessions.get(sid)?;
        s.bindings
            .iter()
            .map(|&k| &self.bindings[k])
            .find(|b| b.dir.has_back())
            .map(|b| b.conn)
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

    fn shard_with_session() -> (Shard, SessionId) {
        let mut sh = Shard::default();
        let sid = SessionId::new(1, 0, [1; 10]);
        sh.sessions.insert(
            sid,
            Session {
                id: sid,
                client: 1,
                lease: Arc::new(Lease::new(0)),
                protect: StateProtect::default(),
                principal: crate::client::Principal::None,
                fore: ChannelAttrs::default(),
                back: ChannelAttrs::default(),
                flags: 0,
                cb_program: 0,
                cb_cred: Credential::None,
                slots: SlotTable::new(4),
                bindings: Vec::new(),
                cb_seqid: 0,
                created_at_ms: 0,
            },
        );
        (sh, sid)
    }

    #[test]
    fn bind_rules() {
        let (mut sh, sid) = shard_with_session();
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
        let (_, b) = sh.remove_session(&sid).unwrap();
        assert_eq!(b.len(), 2);
        assert!(sh.bindings.is_empty());
        assert_eq!(
            sh.bind(&sid, 1, Direction::Fore, 0, 0).unwrap_err().status,
            status::NFS4ERR_BADSESSION
        );
    }
}
