//! CREATE_SESSION (RFC 8881 §18.36): csa_sequence replay, channel negotiation,
//! confirmation of the client record, and the auto-bind of the creating connection.

use ringnfs_proto::nfs4::consts::{NfsStatus, create_session_flag, op, status};
use ringnfs_proto::nfs4::ops::{CallbackSecParms, CreateSessionArgs};
use ringnfs_proto::rpc::Credential;
use ringnfs_service::ConnMeta;

use super::StateManager;
use super::binding::{Direction, UnbindReason};
use super::channel::{negotiate_back, negotiate_fore};
use super::client::Principal;
use super::ids::{SessionId, client_id_boot};
use super::lease::unix_ms;
use super::session::{ChannelAttrs, Session};
use super::slots::SlotTable;

/// The credential of callback_sec_parms4 the back channel uses: the last AUTH_SYS
/// entry, else AUTH_NONE if offered (RPCSEC_GSS entries are skipped: no GSS here).
pub(crate) fn callback_credential(parms: &[CallbackSecParms<'_>]) -> Option<Credential> {
    let mut best = None;
    for p in parms {
        match p {
            CallbackSecParms::None => {
                if best.is_none() {
                    best = Some(Credential::None);
                }
            }
            CallbackSecParms::Sys(s) => best = Some(Credential::Sys(s.clone())),
            CallbackSecParms::Gss { .. } => {}
        }
    }
    best
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSessionReply {
    pub sessionid: SessionId,
    pub sequence: u32,
    pub flags: u32,
    pub fore: ChannelAttrs,
    pub back: ChannelAttrs,
}

impl StateManager {
    pub fn create_session(
        &self,
        meta: &ConnMeta,
        cred: &Credential,
        args: &CreateSessionArgs<'_>,
    ) -> Result<CreateSessionReply, NfsStatus> {
        // csa_flags bits RFC 8881 does not define: refused before anything else.
        if args.flags & !create_session_flag::ALL != 0 {
            return Err(status::NFS4ERR_INVAL);
        }
        if client_id_boot(args.clientid) != self.boot {
            return Err(status::NFS4ERR_STALE_CLIENTID);
        }
        // Like knfsd, refuse unusable channel attributes before the sequence check, so
        // such a failure does not consume csa_sequence (and stores nothing).
        let fore = negotiate_fore(&args.fore, &self.config.limits)?;
        let cb_sec = callback_credential(&args.sec_parms);
        // An empty list offers nothing to refuse: callbacks go with AUTH_NONE. A list of
        // flavors we cannot use (RPCSEC_GSS) leaves the session without callbacks.
        let cb_sec_ok = cb_sec.is_some() || args.sec_parms.is_empty();
        let cb_cred = cb_sec.unwrap_or_default();
        let back = negotiate_back(&args.back, &cb_cred, &self.config.limits)?;
        let principal = Principal::of(cred);
        let mut clients = self.clients.lock();
        let Some(rec) = clients.get_mut(args.clientid) else {
            return Err(status::NFS4ERR_STALE_CLIENTID);
        };
        if rec.principal != principal
            && (!rec.confirmed || rec.protect.enforces(op::CREATE_SESSION))
        {
            return Err(if rec.confirmed {
                status::NFS4ERR_WRONG_CRED
            } else {
                status::NFS4ERR_CLID_INUSE
            });
        }
        // csa_sequence: the last one again is a replay, the next one is new.
        if args.sequence == rec.cs_last
            && let Some(cached) = &rec.cs_cache
        {
            return cached.clone();
        }
        if args.sequence != rec.cs_last.wrapping_add(1) {
            return Err(status::NFS4ERR_SEQ_MISORDERED);
        }
        let max_sessions = self.config.limits.max_sessions_per_client as usize;
        if max_sessions != 0 && rec.sessions.len() >= max_sessions {
            // RFC 8881 §18.36 lists NFS4ERR_NOSPC ("the server cannot allocate the
            // resources for the session") and NFS4ERR_DELAY. DELAY means "try again
            // later", and Linux retries it forever without bumping csa_sequence; this
            // refusal does not go away by waiting (only by the client destroying a
            // session), so NOSPC gives the client a clean, final failure. The result
            // is cached like any other: the sequence is consumed (Linux bumps its
            // sequence on every error but DELAY and STALE_CLIENTID), and a replay gets
            // the same error. NFS4ERR_RESOURCE is NFSv4.0-only.
            self.metrics.session_refused(meta.core);
            rec.cs_last = args.sequence;
            rec.cs_cache = Some(Err(status::NFS4ERR_NOSPC));
            return Err(status::NFS4ERR_NOSPC);
        }
        let reply = self.make_session(args, rec, fore, back, (cb_cred, cb_sec_ok));
        rec.cs_last = args.sequence;
        rec.cs_cache = Some(Ok(reply.clone()));
        rec.sessions.push(reply.sessionid);
        rec.lease.renew(self.clock.now_ms());
        let was_confirmed = rec.confirmed;
        let owner = rec.owner.clone();
        if let Some(old) = clients.confirm(args.clientid) {
            // The client rebooted: its previous incarnation's state goes.
            self.destroy_client_sessions(meta.core, old, UnbindReason::SessionDestroy);
        }
        if !was_confirmed {
            // On stable storage before the client can build state it may later reclaim.
            self.grace.client_confirmed(&owner);
        }
        drop(clients);

        let dir = if reply.flags & create_session_flag::CONN_BACK_CHAN != 0 {
            Direction::Both
        } else {
            Direction::Fore
        };
        tracing::debug!(
            clientid = %crate::ids::client_id_str(args.clientid),
            session = %reply.sessionid,
            conn = meta.id,
            "session created"
        );
        if let Some(shard) = self.shard_of(&reply.sessionid) {
            let limit = self.settings.max_connections_per_session();
            let mut guard = shard.lock();
            let outcome = guard.bind(&reply.sessionid, meta.id, dir, limit, unix_ms());
            let registered =
                outcome.is_ok_and(|o| self.register_bind(&mut guard, meta, &reply.sessionid, o));
            drop(guard);
            match outcome {
                Ok(o) => self.finish_bind(meta, reply.sessionid, o, registered),
                Err(e) => self.refuse(meta.core, e.refusal),
            }
        }
        Ok(reply)
    }

    /// Build and insert a session for a client record (client lock held).
    fn make_session(
        &self,
        args: &CreateSessionArgs<'_>,
        rec: &super::client::ClientRecord,
        fore: ChannelAttrs,
        back: ChannelAttrs,
        (cb_cred, cb_sec_ok): (Credential, bool),
    ) -> CreateSessionReply {
        // We keep no state across restarts and speak TCP only.
        let flags = args.flags & create_session_flag::CONN_BACK_CHAN;
        let shard_idx = rand::random_range(0..self.shards.len()) as u16;
        // 80 random bits: a collision is not a practical concern, but stay correct.
        let sid = loop {
            let sid = SessionId::new(self.boot, shard_idx, rand::random());
            let session = Session {
                id: sid,
                client: rec.id,
                lease: rec.lease.clone(),
                protect: rec.protect.clone(),
                principal: rec.principal.clone(),
                fore,
                back,
                flags,
                cb_program: args.cb_program,
                cb_cred: cb_cred.clone(),
                cb_sec_ok,
                slots: SlotTable::new(fore.maxrequests),
                cb_seqids: vec![
                    0;
                    back.maxrequests
                        .clamp(1, crate::session::MAX_BACK_SLOTS_USED)
                        as usize
                ],
                minor: 1,
                created_at_ms: unix_ms(),
                traffic: Default::default(),
            };
            if self.shards[shard_idx as usize]
                .lock()
                .insert_session(session)
            {
                break sid;
            }
        };
        CreateSessionReply {
            sessionid: sid,
            sequence: args.sequence,
            flags,
            fore,
            back,
        }
    }
}
