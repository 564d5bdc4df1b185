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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use ringnfs_proto::rpc::Credential;
    use ringnfs_service::ConnMeta;

    use super::*;
    use crate::session::ChannelAttrs;
    use crate::{
        CompoundSize, CreateSessionArgs, ExchangeIdArgs, SeqOutcome, SequenceArgs, StateConfig,
    };

    fn attrs() -> ChannelAttrs {
        crate::testutil::channel_attrs(4)
    }

    /// A client with one session created on `meta`.
    fn session(st: &StateManager, meta: &ConnMeta, owner: &[u8]) -> SessionId {
        let ex = st
            .exchange_id(
                0,
                &Credential::None,
                &ExchangeIdArgs {
                    verifier: [1; 8],
                    owner,
                    flags: 0,
                    state_protect: Default::default(),
                    impl_id: None,
                },
            )
            .unwrap();
        st.create_session(
            meta,
            &Credential::None,
            &CreateSessionArgs {
                clientid: ex.clientid,
                sequence: ex.sequenceid,
                flags: 0,
                fore: attrs(),
                back: attrs(),
                cb_program: 0,
                sec_parms: vec![],
            },
        )
        .unwrap()
        .sessionid
    }

    /// SEQUENCE on `meta` (binding it implicitly), slot 0.
    fn sequence(st: &StateManager, meta: &ConnMeta, sid: SessionId, seqid: u32) -> bool {
        let args = SequenceArgs {
            sessionid: sid,
            sequenceid: seqid,
            slotid: 0,
            highest_slotid: 0,
            cachethis: false,
        };
        let size = CompoundSize {
            numops: 1,
            request_len: 100,
            min_reply_len: 100,
        };
        match st.sequence(meta, &args, seqid as u64, size) {
            Ok(SeqOutcome::Execute(g)) => {
                st.sequence_done(&g, Default::default(), Default::default());
                true
            }
            _ => false,
        }
    }

    /// Run `a` and `b` on two threads for a while, then check the whole state.
    fn race(
        st: &Arc<StateManager>,
        a: impl FnMut() + Send + 'static,
        b: impl FnMut() + Send + 'static,
    ) {
        let stop = Arc::new(AtomicBool::new(false));
        let spawn = |mut f: Box<dyn FnMut() + Send>| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    f();
                }
            })
        };
        let (ta, tb) = (spawn(Box::new(a)), spawn(Box::new(b)));
        let until = Instant::now() + Duration::from_millis(1500);
        let mut checked = 0;
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
            checked += 1;
        }
        stop.store(true, Ordering::Relaxed);
        ta.join().unwrap();
        tb.join().unwrap();
        assert!(checked > 0);
        st.check_invariants().unwrap();
    }

    /// An operator unbinds a connection while its own requests bind it again: the
    /// binding and the registry entry must come and go together.
    #[test]
    fn unbind_racing_an_implicit_bind_keeps_the_registry_in_step() {
        let st = StateManager::new(StateConfig::default());
        let creator = ConnMeta::detached(1, 0);
        st.conn_opened(&creator);
        let sid = session(&st, &creator, b"racer");
        let conn = ConnMeta::detached(2, 0);
        st.conn_opened(&conn);
        let (st_a, conn_a) = (st.clone(), conn.clone());
        let mut seqid = 0;
        let st_b = st.clone();
        race(
            &st,
            move || {
                seqid += 1;
                sequence(&st_a, &conn_a, sid, seqid);
            },
            move || {
                st_b.unbind(2, &sid);
            },
        );
    }

    /// A session is destroyed while a SEQUENCE binds a connection to it: the registry
    /// must not be left listing the destroyed session.
    #[test]
    fn destroy_racing_an_implicit_bind_leaves_no_registry_entry() {
        let st = StateManager::new(StateConfig::default());
        let creator = ConnMeta::detached(1, 0);
        st.conn_opened(&creator);
        let current = Arc::new(parking_lot::Mutex::new(session(&st, &creator, b"racer")));
        let conn = ConnMeta::detached(2, 0);
        st.conn_opened(&conn);
        let (st_a, cur_a) = (st.clone(), current.clone());
        let (st_b, cur_b) = (st.clone(), current.clone());
        let mut n = 0u32;
        race(
            &st,
            move || {
                let sid = *cur_a.lock();
                sequence(&st_a, &conn, sid, 1);
            },
            move || {
                let old = *cur_b.lock();
                st_b.force_destroy_session(&old);
                n += 1;
                *cur_b.lock() = session(&st_b, &creator, format!("racer{n}").as_bytes());
            },
        );
    }
}
