//! SEQUENCE (RFC 8881 §18.46): slot check, implicit fore-channel bind, lease renewal,
//! status flags; and storing the reply when the COMPOUND is done.

use ringnfs_proto::nfs4::consts::{NfsStatus, seq4_status, status};
use ringnfs_service::ConnMeta;

use super::StateManager;
use super::binding::Direction;
use super::channel::reply_too_big;
use super::ids::SessionId;
use super::lease::{Traffic, unix_ms};
use super::metrics::BindRefusal;
use super::settings::OverLimit;
use super::slots::{CachedReply, SlotCheck};

/// SEQUENCE4args, as proto decodes them.
pub use ringnfs_proto::nfs4::ops::SequenceArgs;

/// What the COMPOUND needs to go on after a successful SEQUENCE.
#[derive(Debug, Clone, Copy)]
pub struct SeqGrant {
    pub sessionid: SessionId,
    pub slotid: u32,
    pub sequenceid: u32,
    pub cachethis: bool,
    pub highest_slotid: u32,
    pub target_highest_slotid: u32,
    pub status_flags: u32,
    pub max_response: u32,
    pub max_response_cached: u32,
    pub clientid: u64,
    /// The client has sent its global RECLAIM_COMPLETE (when SEQUENCE ran, or later in
    /// this COMPOUND): only then may it obtain new opens and locks.
    pub reclaim_complete: bool,
    /// In a cluster: the client's recovery record was durable when SEQUENCE ran (its
    /// first OPEN or LOCK waits for it otherwise).
    pub recorded: bool,
}

/// What SEQUENCE checks of its COMPOUND against the session's fore channel.
#[derive(Debug, Clone, Copy)]
pub struct CompoundSize {
    /// Operations in the COMPOUND, SEQUENCE included.
    pub numops: usize,
    /// The whole RPC call, headers included (RFC 8881 §18.36.3 ca_maxrequestsize).
    pub request_len: usize,
    /// The RPC reply up to and including a successful SEQUENCE result: the least any
    /// reply to this COMPOUND takes.
    pub min_reply_len: usize,
}

#[derive(Debug)]
pub enum SeqOutcome {
    /// Execute the rest of the COMPOUND, then call `sequence_done`.
    Execute(SeqGrant),
    /// A retry: answer from the cache.
    Replay(SeqGrant, CachedReply),
}

impl StateManager {
    /// Run SEQUENCE for a COMPOUND of the given size.
    pub fn sequence(
        &self,
        meta: &ConnMeta,
        args: &SequenceArgs,
        request_hash: u64,
        size: CompoundSize,
    ) -> Result<SeqOutcome, NfsStatus> {
        let sid = args.sessionid;
        let shard = self.shard_of(&sid).ok_or(status::NFS4ERR_BADSESSION)?;
        let mut guard = shard.lock();
        let (session, bound) = guard
            .session_bound(&sid, meta.id)
            .ok_or(status::NFS4ERR_BADSESSION)?;
        if size.numops > session.fore.maxoperations as usize {
            return Err(status::NFS4ERR_TOO_MANY_OPS);
        }
        if size.request_len > session.fore.maxrequestsize as usize {
            return Err(status::NFS4ERR_REQ_TOO_BIG);
        }
        let check = session
            .slots
            .check(args.slotid, args.sequenceid, request_hash);
        if let SlotCheck::Error(e) = check {
            return Err(e);
        }
        // Not even the SEQUENCE result fits what the client may receive (or cache, when
        // it asked us to): refused before the slot moves on, like knfsd.
        if check == SlotCheck::New
            && let Some(e) = reply_too_big(
                size.min_reply_len,
                session.fore.maxresponsesize,
                session.fore.maxresponsesize_cached,
                args.cachethis,
            )
        {
            return Err(e);
        }
        // The slot check passed: a connection new to this session is bound, fore only
        // (never the back channel implicitly).
        let mut new_bind = None;
        let mut registered = false;
        let mut refused = None;
        if !bound {
            if !Self::conn_accepts_binds(meta) {
                return Err(status::NFS4ERR_DELAY);
            }
            let limit = self.settings.max_connections_per_session();
            match guard.bind(&sid, meta.id, Direction::Fore, limit, unix_ms()) {
                Ok(o) => {
                    registered = self.register_bind(&mut guard, meta, &sid, o);
                    new_bind = Some(o);
                }
                Err(e)
                    if e.refusal == Some(BindRefusal::Limit)
                        && self.settings.over_limit() == OverLimit::Serve =>
                {
                    // Served unbound: the client's requests on this connection go on,
                    // it carries no callbacks, and a later SEQUENCE binds it once the
                    // session has room.
                    refused = e.refusal;
                }
                Err(e) => {
                    // The client is alive and its session valid; only this connection is
                    // refused. Renew the lease so a client whose renewals keep landing on
                    // a refused connection is not expired for it.
                    if let Some(s) = guard.session(&sid) {
                        s.lease.renew(self.clock.now_ms());
                    }
                    drop(guard);
                    self.refuse(meta.core, e.refusal);
                    return Err(e.status);
                }
            }
        }
        let (session, has_back) = guard
            .session_mut_with_back(&sid)
            .ok_or(status::NFS4ERR_BADSESSION)?;
        session.lease.renew(self.clock.now_ms());
        let slots = session.slots.len();
        let mut grant = SeqGrant {
            sessionid: sid,
            slotid: args.slotid,
            sequenceid: args.sequenceid,
            cachethis: args.cachethis,
            highest_slotid: slots - 1,
            target_highest_slotid: slots - 1,
            status_flags: 0,
            max_response: session.fore.maxresponsesize,
            max_response_cached: session.fore.maxresponsesize_cached,
            clientid: session.client,
            reclaim_complete: session.lease.reclaim_complete(),
            recorded: session.lease.recorded(),
        };
        let outcome = match check {
            SlotCheck::New => {
                session
                    .slots
                    .begin(args.slotid, args.sequenceid, request_hash);
                None
            }
            _ => Some(
                session
                    .slots
                    .get(args.slotid)
                    .map(|s| s.reply.clone())
                    .unwrap_or_default(),
            ),
        };
        if !has_back {
            grant.status_flags |= seq4_status::CB_PATH_DOWN_SESSION;
        }
        drop(guard);
        grant.status_flags |= self.files.delegation_status_flags(grant.clientid);
        if refused.is_some() {
            tracing::debug!(conn = meta.id, session = %sid, "over the per-session connection limit: served unbound");
            self.refuse(meta.core, refused);
        }
        if let Some(o) = new_bind {
            self.finish_bind(meta, sid, o, registered);
        }
        Ok(match outcome {
            None => SeqOutcome::Execute(grant),
            Some(reply) => SeqOutcome::Replay(grant, reply),
        })
    }

    /// Store the reply of a COMPOUND that SEQUENCE let execute.
    pub fn sequence_done(&self, grant: &SeqGrant, reply: CachedReply, traffic: Traffic) {
        if let Some(shard) = self.shard_of(&grant.sessionid)
            && let Some(s) = shard.lock().session_mut(&grant.sessionid)
        {
            s.slots.complete(grant.slotid, grant.sequenceid, reply);
            s.traffic.add(traffic);
        }
    }
}
