//! Whole-state consistency: what no single lock guarantees, checked across the client
//! table, the session shards, the connection registry and the file-state shards.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ringnfs_service::ConnId;

use super::StateManager;
use super::ids::{ClientId, SessionId, client_id_str};
use super::locks::CheckInvariants;

impl StateManager {
    /// Check every table's own invariants (which debug builds check after every
    /// mutation) and those between tables:
    /// - a client record's sessions exist, name it as their client and share its lease
    ///   and principal; every session's client exists and lists it;
    /// - the connection registry lists a session for a connection exactly when the
    ///   session's shard holds a binding of that connection;
    /// - every open and lock state belongs to a client that exists.
    ///
    /// The tables are taken one at a time (in lock order), so a request in flight can
    /// be seen half done (a bind in its shard but not yet in the registry): call this
    /// only when no request is being handled, as tests do.
    pub fn check_invariants(&self) -> Result<(), String> {
        let clients = self.clients.lock();
        clients.check_invariants()?;

        let mut sessions = HashMap::new();
        let mut bindings: HashSet<(ConnId, SessionId)> = HashSet::new();
        for shard in self.shards.iter() {
            let sh = shard.lock();
            sh.check_invariants()?;
            for sid in sh.session_ids() {
                let s = sh.session(&sid).expect("listed");
                sessions.insert(sid, (s.client, s.lease.clone(), s.principal.clone()));
                bindings.extend(sh.bindings_of(&sid).iter().map(|b| (b.conn, sid)));
            }
        }
        for (sid, (client, lease, principal)) in &sessions {
            let Some(rec) = clients.get(*client) else {
                return Err(format!(
                    "session {sid} of client {}, which does not exist",
                    client_id_str(*client)
                ));
            };
            if !rec.sessions.contains(sid) {
                return Err(format!(
                    "session {sid} not listed by its client {}",
                    client_id_str(*client)
                ));
            }
            if !Arc::ptr_eq(lease, &rec.lease) || *principal != rec.principal {
                return Err(format!(
                    "session {sid} does not share its client's lease and principal"
                ));
            }
        }
        for rec in clients.records() {
            for sid in &rec.sessions {
                match sessions.get(sid) {
                    Some((c, _, _)) if *c == rec.id => {}
                    _ => {
                        return Err(format!(
                            "client {} lists session {sid}, which is not its session",
                            client_id_str(rec.id)
                        ));
                    }
                }
            }
        }

        self.conns.check_invariants()?;
        let mut registered = HashSet::new();
        for e in self.conns.all() {
            for sid in e.sessions {
                if !bindings.contains(&(e.meta.id, sid)) {
                    return Err(format!(
                        "the registry lists session {sid} for connection {}, which is not \
                         bound to it",
                        e.meta.id
                    ));
                }
                registered.insert((e.meta.id, sid));
            }
        }
        if let Some((conn, sid)) = bindings.difference(&registered).next() {
            return Err(format!(
                "connection {conn} is bound to session {sid}, which the registry does not \
                 list for it"
            ));
        }

        self.files.check_invariants()?;
        if let Some(c) = self
            .files
            .clients_with_state()
            .into_iter()
            .find(|c: &ClientId| clients.get(*c).is_none())
        {
            return Err(format!(
                "client {} holds opens or locks but does not exist",
                client_id_str(c)
            ));
        }
        Ok(())
    }
}
