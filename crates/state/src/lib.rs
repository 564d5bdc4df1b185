//! Protocol state: clients, sessions, slots, connection bindings, leases.
//!
//! # Lock order
//! `clients` (one mutex) → a session shard ([`shard::SessionShard`], one of many; never
//! two at once) → a connection-registry shard ([`conns::ConnShard`]). Code may skip levels
//! but never takes a lock that comes earlier in this order while holding a later one. A
//! file-state shard (`files`) comes after the client table and is never held with a
//! session shard or another file-state shard; the delegations' ledger comes after it (a
//! leaf, also taken alone). The grace period's owner list is taken last,
//! with the client table held. A COMPOUND takes its session's shard briefly twice
//! (SEQUENCE, and storing the reply) and a file's state shard for each op on open or
//! locked files, never the client table; leases and RECLAIM_COMPLETE are atomics shared by
//! a client and its sessions. A binding and its registry entry change together, under the
//! session shard's lock. A user of these ranks outside the crate: the engine's table of
//! asynchronous copies comes after all of them (`locks::rank::OFFLOAD_TABLE`).
//!
//! Every one of these is a [`locks::RankedMutex`] with its rank in [`locks::rank`]: debug
//! builds assert this order on each lock, and check a table's invariants whenever a lock
//! held for writing is released; release builds do neither.
//! [`StateManager::check_invariants`] checks everything, tables and what holds between
//! them, for tests.

pub mod binding;
pub mod callbacks;
pub mod channel;
pub mod client;
pub mod conns;
pub mod files;
pub mod grace;
pub mod gss_stats;
pub use ringnfs_proto::ids;
pub mod latency;
pub mod lease;
pub mod locks;
pub mod metrics;
pub mod query;
pub mod session;
pub mod settings;
pub mod shard;
pub mod slots;
pub use ringnfs_proto::stateid;

mod create_session;
mod invariants;
#[cfg(test)]
mod proptests;
mod sequence;
#[cfg(test)]
mod testutil;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ringnfs_proto::nfs4::consts::{NfsStatus, exchgid_flag, op, status};
use ringnfs_proto::nfs4::ops::StateProtectArgs;
use ringnfs_proto::rpc::Credential;
use ringnfs_service::{ConnId, ConnMeta};

pub use binding::{Direction, UnbindReason};
pub use client::{ExchangeIdReply, Principal, StateProtect};
pub use create_session::CreateSessionReply;
pub use ids::{ClientId, SessionId};
/// The session ops' arguments, as proto decodes them (one definition, shared with the
/// client): what [`StateManager::exchange_id`], [`StateManager::create_session`] and
/// [`StateManager::sequence`] take.
pub use ringnfs_proto::nfs4::ops::{CreateSessionArgs, ExchangeIdArgs, SequenceArgs};
pub use sequence::{CompoundSize, SeqGrant, SeqOutcome};
pub use session::ChannelAttrs;

use callbacks::CallbackTable;
use client::{ClientRecord, ClientTable};
use conns::ConnRegistry;
use lease::{Clock, unix_ms};
use locks::{RankedMutex, rank};
use metrics::{BindRefusal, Metrics};
use settings::LiveSettings;
use shard::{BindOutcome, SessionShard};

type ClientTableLock = RankedMutex<ClientTable, { rank::CLIENT_TABLE }>;
type SessionShardLock = RankedMutex<SessionShard, { rank::SESSION_SHARD }>;

/// Default of [`SessionLimits::max_sessions_per_client`]: Linux uses one session per
/// server (two briefly while recovering); 16 leaves room for other clients.
pub const DEFAULT_MAX_SESSIONS_PER_CLIENT: u32 = 16;

/// Server-wide limits offered in CREATE_SESSION negotiation.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    pub max_fore_slots: u32,
    pub max_back_slots: u32,
    pub max_request: u32,
    pub max_response: u32,
    pub max_response_cached: u32,
    pub max_ops: u32,
    /// Sessions one client may hold at once (0 = unlimited); CREATE_SESSION over it
    /// fails with NFS4ERR_NOSPC (see `create_session`).
    pub max_sessions_per_client: u32,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            max_fore_slots: 64,
            max_back_slots: 16,
            max_request: 1024 * 1024 + 8 * 1024,
            max_response: 1024 * 1024 + 8 * 1024,
            max_response_cached: 64 * 1024,
            max_ops: 64,
            max_sessions_per_client: DEFAULT_MAX_SESSIONS_PER_CLIENT,
        }
    }
}

#[derive(Debug, Clone)]
pub struct StateConfig {
    pub shards: usize,
    /// Number of worker cores (metrics slots).
    pub worker_cores: usize,
    /// server_owner.so_major_id; the same on every address and across restarts.
    pub server_owner: Vec<u8>,
    pub server_scope: Vec<u8>,
    pub limits: SessionLimits,
    /// Stable storage for the grace period's client list (None: nothing persists).
    pub state_dir: Option<std::path::PathBuf>,
    /// Grace period after start, seconds (0 = none).
    pub grace_secs: u32,
    /// Bounds on the delegations granted.
    pub delegation_limits: files::DelegLimits,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            shards: 64,
            worker_cores: 1,
            server_owner: b"ringnfs".to_vec(),
            server_scope: b"ringnfs".to_vec(),
            limits: SessionLimits::default(),
            state_dir: None,
            grace_secs: 0,
            delegation_limits: files::DelegLimits::default(),
        }
    }
}

/// Everything the protocol core keeps between requests. Shared by all worker cores.
pub struct StateManager {
    pub boot: u32,
    /// WRITE/COMMIT verifier: changes with every server start, so clients resend
    /// unstable writes a restart may have lost.
    pub write_verifier: [u8; 8],
    pub config: StateConfig,
    pub settings: LiveSettings,
    pub metrics: Metrics,
    /// RPCSEC_GSS (Kerberos) counters, written by the engine's GSS layer.
    pub gss: std::sync::Arc<gss_stats::GssStats>,
    pub clock: Clock,
    pub callbacks: CallbackTable,
    /// Opens and byte-range locks.
    pub files: files::FileStateTable,
    pub grace: grace::Grace,
    clients: ClientTableLock,
    shards: Box<[SessionShardLock]>,
    conns: ConnRegistry,
}

impl StateManager {
    pub fn new(config: StateConfig) -> Arc<Self> {
        // The boot verifier: seconds since the epoch, so ids from an earlier run differ.
        let boot = (unix_ms() / 1000) as u32 ^ rand::random::<u16>() as u32;
        let shards = config.shards.clamp(1, u16::MAX as usize);
        Arc::new(Self {
            boot,
            write_verifier: rand::random(),
            settings: LiveSettings::default(),
            metrics: Metrics::new(config.worker_cores),
            gss: Default::default(),
            clock: Clock::new(),
            callbacks: CallbackTable::default(),
            files: files::FileStateTable::with_limits(boot, shards, config.delegation_limits),
            grace: grace::Grace::new(config.state_dir.as_deref(), config.grace_secs),
            clients: ClientTableLock::new(ClientTable::new(boot)),
            shards: (0..shards)
                .map(|i| SessionShardLock::new(SessionShard::new(boot, i as u16)))
                .collect(),
            conns: ConnRegistry::default(),
            config,
        })
    }

    fn lease_ms(&self) -> u64 {
        self.settings.lease_secs() as u64 * 1000
    }

    /// The shard a session id names, or None for ids of another boot or shard count.
    fn shard_of(&self, sid: &SessionId) -> Option<&SessionShardLock> {
        if sid.boot() != self.boot {
            return None;
        }
        self.shards.get(sid.shard() as usize)
    }

    // ---- connection lifecycle -------------------------------------------------------

    pub fn conn_opened(&self, meta: &ConnMeta) {
        self.metrics.accepted(meta.core);
        self.conns.insert(meta.clone(), unix_ms());
    }

    /// The connection closed: unbind it from every session, once.
    pub fn conn_closed(&self, meta: &ConnMeta) {
        self.metrics.closed(meta.core);
        let reason = if meta.shared.draining.load(Ordering::Relaxed) {
            UnbindReason::Drain
        } else {
            UnbindReason::Disconnect
        };
        // Unbind first, then forget the connection: a query never sees a binding whose
        // connection is already gone. No bind can race with this: binds for a connection
        // come from its own requests, on this core, and they have all been processed.
        for sid in self.conns.sessions_of(meta.id) {
            if let Some(shard) = self.shard_of(&sid)
                && shard.lock().unbind(&sid, meta.id).is_some()
            {
                self.metrics.unbind(meta.core, reason);
            }
        }
        self.conns.remove(meta.id);
        self.callbacks.conn_closed(meta.id);
    }

    /// Record a bind that `shard.bind` just made in the connection registry, under the
    /// same shard lock, so that a concurrent unbind or session destruction (which change
    /// the registry under that lock too) sees both or neither. A connection that closed
    /// meanwhile cannot be registered: the bind is undone. False when it was undone.
    fn register_bind(
        &self,
        shard: &mut SessionShard,
        meta: &ConnMeta,
        sid: &SessionId,
        outcome: BindOutcome,
    ) -> bool {
        match outcome {
            BindOutcome::Bound(_) => {
                if self.conns.add_session(meta.id, *sid) {
                    true
                } else {
                    // Cannot happen for a request on this connection, but keep the slab
                    // consistent if it ever does.
                    shard.unbind(sid, meta.id);
                    false
                }
            }
            BindOutcome::Updated { .. } => true,
        }
    }

    /// The bookkeeping of a bind outside the shard lock: metrics, and the
    /// exclusive-binding rebind. `registered`: what [`Self::register_bind`] returned.
    fn finish_bind(&self, meta: &ConnMeta, sid: SessionId, outcome: BindOutcome, registered: bool) {
        let dir = match outcome {
            BindOutcome::Bound(d) | BindOutcome::Updated { to: d, .. } => d,
        };
        if registered && dir.has_back() {
            self.back_channel_bound(&sid);
        }
        match outcome {
            BindOutcome::Bound(dir) => {
                self.metrics.bind(meta.core, dir);
                if !registered {
                    self.metrics.unbind(meta.core, UnbindReason::Disconnect);
                    return;
                }
            }
            BindOutcome::Updated { from, to } => {
                if from != to {
                    self.metrics.bind(meta.core, to);
                }
            }
        }
        if self.settings.exclusive_binding() {
            for other in self.conns.sessions_of(meta.id) {
                if other != sid {
                    self.unbind_one(meta.core, meta.id, &other, UnbindReason::Rebind);
                }
            }
        }
    }

    /// A connection now carries `sid`'s back channel: a client whose callback path was
    /// down (a callback failed) has one again, so it may hold delegations again.
    fn back_channel_bound(&self, sid: &SessionId) {
        let Some(shard) = self.shard_of(sid) else {
            return;
        };
        let client = shard.lock().session(sid).map(|s| s.client);
        if let Some(client) = client {
            self.files.callback_path(client, true);
        }
    }

    /// Remove one binding, from its shard and the registry under the shard lock.
    fn unbind_one(&self, core: usize, conn: ConnId, sid: &SessionId, reason: UnbindReason) -> bool {
        let removed = match self.shard_of(sid) {
            Some(shard) => {
                let mut guard = shard.lock();
                let removed = guard.unbind(sid, conn).is_some();
                self.conns.remove_session(conn, sid);
                removed
            }
            None => {
                self.conns.remove_session(conn, sid);
                false
            }
        };
        if removed {
            self.metrics.unbind(core, reason);
        }
        removed
    }

    fn refuse(&self, core: usize, refusal: Option<BindRefusal>) {
        if let Some(r) = refusal {
            self.metrics.refusal(core, r);
        }
    }

    /// True when the connection may take new binds.
    fn conn_accepts_binds(meta: &ConnMeta) -> bool {
        !meta.shared.draining.load(Ordering::Relaxed)
    }

    // ---- EXCHANGE_ID ------------------------------------------------------------------

    /// EXCHANGE_ID (RFC 8881 §18.35): what the arguments may not ask for, then the
    /// client record's cases (`client.rs`).
    pub fn exchange_id(
        &self,
        core: usize,
        cred: &Credential,
        args: &ExchangeIdArgs<'_>,
    ) -> Result<ExchangeIdReply, NfsStatus> {
        let mach_cred = match args.state_protect {
            StateProtectArgs::None => false,
            StateProtectArgs::MachCred(_) => true,
            // SSV needs GSS; we do not offer it.
            StateProtectArgs::Ssv { .. } => return Err(status::NFS4ERR_ENCR_ALG_UNSUPP),
        };
        if args.owner.is_empty() {
            return Err(status::NFS4ERR_INVAL);
        }
        if args.flags & !exchgid_flag::CLIENT_MASK != 0 {
            return Err(status::NFS4ERR_INVAL);
        }
        if mach_cred && !cred.has_principal() {
            // Machine credentials need a principal: AUTH_NONE has none.
            return Err(status::NFS4ERR_INVAL);
        }
        let principal = Principal::of(cred);
        let now = self.clock.now_ms();
        let mut clients = self.clients.lock();
        // Under SP4_MACH_CRED, an existing client's EXCHANGE_ID must come from its principal.
        let (reply, removed) =
            clients.exchange_id(args, principal, now, self.lease_ms(), unix_ms())?;
        for rec in removed {
            self.destroy_client_sessions(core, rec, UnbindReason::SessionDestroy);
        }
        Ok(reply)
    }

    /// Destroy a removed client record's sessions, opens and locks (file-state and
    /// session shards both come after the client table in the lock order).
    fn destroy_client_sessions(&self, core: usize, rec: ClientRecord, reason: UnbindReason) {
        for sid in rec.sessions {
            self.remove_session(core, &sid, reason);
        }
        self.files.remove_client(rec.id);
        if rec.confirmed {
            self.grace.client_gone(&rec.owner);
        }
    }

    pub fn in_grace(&self) -> bool {
        self.grace.in_grace(self.clock.now_ms())
    }

    /// Whether new state may be granted now (a cluster node that lost its store may not:
    /// NFS4ERR_DELAY until it is back).
    pub fn granting(&self) -> bool {
        self.grace.granting()
    }

    /// In a cluster, the owner of a client whose recovery record must be written before
    /// its OPEN or LOCK is acknowledged (`grant.recorded` false, and not since).
    pub fn record_needed(&self, grant: &SeqGrant) -> Option<Vec<u8>> {
        if grant.recorded || self.grace.cluster().is_none() {
            return None;
        }
        let clients = self.clients.lock();
        let rec = clients.get(grant.clientid)?;
        (!rec.lease.recorded()).then(|| rec.owner.clone())
    }

    /// Write a client's recovery record (the cluster signals `done`).
    pub fn record_client(&self, owner: &[u8], done: ringnfs_service::Signal) {
        match self.grace.cluster() {
            Some(c) => c.record(owner, done),
            None => done.succeed(),
        }
    }

    /// The record `record_client` wrote is durable: later COMPOUNDs need not wait.
    pub fn client_recorded(&self, clientid: ClientId) {
        if let Some(rec) = self.clients.lock().get(clientid) {
            rec.lease.set_recorded();
        }
    }

    /// OPEN CLAIM_PREVIOUS / LOCK reclaim: allowed during grace for clients that held
    /// state before the restart and have not sent RECLAIM_COMPLETE.
    pub fn check_reclaim(&self, clientid: ClientId, what: grace::Reclaim) -> Result<(), NfsStatus> {
        if !self.in_grace() {
            return Err(status::NFS4ERR_NO_GRACE);
        }
        let clients = self.clients.lock();
        let rec = clients
            .get(clientid)
            .ok_or(status::NFS4ERR_STALE_CLIENTID)?;
        if rec.lease.reclaim_complete() || !self.grace.may_reclaim(&rec.owner, self.clock.now_ms())
        {
            return Err(status::NFS4ERR_NO_GRACE);
        }
        self.grace.count_reclaim(what);
        Ok(())
    }

    /// Remove a session from its shard and unbind all its connections.
    fn remove_session(&self, core: usize, sid: &SessionId, reason: UnbindReason) -> bool {
        let Some(shard) = self.shard_of(sid) else {
            return false;
        };
        // The registry forgets the bindings under the shard lock, like `unbind_one`.
        let mut guard = shard.lock();
        let Some((session, bindings)) = guard.remove_session(sid) else {
            return false;
        };
        // The client keeps the session's traffic.
        session.lease.count(session.traffic);
        for b in &bindings {
            self.conns.remove_session(b.conn, sid);
        }
        drop(guard);
        for _ in &bindings {
            self.metrics.unbind(core, reason);
        }
        true
    }

    // ---- BIND_CONN_TO_SESSION -----------------------------------------------------------

    /// RFC 8881 §18.34 and §2.10.3.1, as docs/protocol.md "Binding rules" lists them.
    pub fn bind_conn_to_session(
        &self,
        meta: &ConnMeta,
        cred: &Credential,
        sid: &SessionId,
        cdfc: u32,
    ) -> Result<Direction, NfsStatus> {
        let Some(shard) = self.shard_of(sid) else {
            self.refuse(meta.core, Some(BindRefusal::BadSession));
            return Err(status::NFS4ERR_BADSESSION);
        };
        let mut guard = shard.lock();
        let Some((session, already)) = guard.session_bound(sid, meta.id) else {
            drop(guard);
            self.refuse(meta.core, Some(BindRefusal::BadSession));
            return Err(status::NFS4ERR_BADSESSION);
        };
        // The client's principal is copied into the session at creation, so this check
        // needs no client-table lock (which comes earlier in the lock order).
        if session.protect.enforces(op::BIND_CONN_TO_SESSION)
            && session_principal_mismatch(session, &Principal::of(cred))
        {
            return Err(status::NFS4ERR_WRONG_CRED);
        }
        let Some(dir) = Direction::grant_for(cdfc) else {
            return Err(status::NFS4ERR_INVAL);
        };
        if !already && !Self::conn_accepts_binds(meta) {
            return Err(status::NFS4ERR_DELAY);
        }
        session.lease.renew(self.clock.now_ms());
        let limit = self.settings.max_connections_per_session();
        let outcome = guard.bind(sid, meta.id, dir, limit, unix_ms());
        let registered = outcome.is_ok_and(|o| self.register_bind(&mut guard, meta, sid, o));
        drop(guard);
        match outcome {
            Ok(o) => {
                self.finish_bind(meta, *sid, o, registered);
                Ok(dir)
            }
            Err(e) => {
                self.refuse(meta.core, e.refusal);
                Err(e.status)
            }
        }
    }

    // ---- DESTROY_SESSION / DESTROY_CLIENTID / RECLAIM_COMPLETE ----------------------------

    /// DESTROY_SESSION: the connection must be bound to the session it destroys.
    pub fn destroy_session(
        &self,
        meta: &ConnMeta,
        cred: &Credential,
        sid: &SessionId,
    ) -> Result<(), NfsStatus> {
        let client = {
            let Some(shard) = self.shard_of(sid) else {
                return Err(status::NFS4ERR_BADSESSION);
            };
            let guard = shard.lock();
            let Some((session, bound)) = guard.session_bound(sid, meta.id) else {
                return Err(status::NFS4ERR_BADSESSION);
            };
            if !bound {
                return Err(status::NFS4ERR_CONN_NOT_BOUND_TO_SESSION);
            }
            if session.protect.enforces(op::DESTROY_SESSION)
                && session_principal_mismatch(session, &Principal::of(cred))
            {
                return Err(status::NFS4ERR_WRONG_CRED);
            }
            session.client
        };
        self.destroy_session_of_client(meta.core, client, sid, UnbindReason::SessionDestroy);
        Ok(())
    }

    fn destroy_session_of_client(
        &self,
        core: usize,
        client: ClientId,
        sid: &SessionId,
        reason: UnbindReason,
    ) -> bool {
        let mut clients = self.clients.lock();
        if let Some(rec) = clients.get_mut(client) {
            rec.sessions.retain(|s| s != sid);
        }
        self.remove_session(core, sid, reason)
    }

    /// Operator action: destroy a session whatever its state (unbind reason
    /// `session_destroy`).
    pub fn force_destroy_session(&self, sid: &SessionId) -> bool {
        let client = match self
            .shard_of(sid)
            .and_then(|s| s.lock().session(sid).map(|s| s.client))
        {
            Some(c) => c,
            None => return false,
        };
        self.destroy_session_of_client(
            self.metrics.shared_slot(),
            client,
            sid,
            UnbindReason::SessionDestroy,
        )
    }

    pub fn destroy_clientid(
        &self,
        core: usize,
        cred: &Credential,
        clientid: ClientId,
    ) -> Result<(), NfsStatus> {
        let mut clients = self.clients.lock();
        let Some(rec) = clients.get(clientid) else {
            return Err(status::NFS4ERR_STALE_CLIENTID);
        };
        if rec.protect.enforces(op::DESTROY_CLIENTID) && rec.principal != Principal::of(cred) {
            return Err(status::NFS4ERR_WRONG_CRED);
        }
        if !rec.sessions.is_empty() {
            return Err(status::NFS4ERR_CLIENTID_BUSY);
        }
        if let Some(rec) = clients.remove(clientid) {
            self.destroy_client_sessions(core, rec, UnbindReason::SessionDestroy);
        }
        Ok(())
    }

    pub fn reclaim_complete(&self, clientid: ClientId, one_fs: bool) -> Result<(), NfsStatus> {
        let clients = self.clients.lock();
        let Some(rec) = clients.get(clientid) else {
            return Err(status::NFS4ERR_STALE_CLIENTID);
        };
        if one_fs {
            // Per-file-system reclaim: we export one file system and keep no per-fs
            // reclaim state, so this is always accepted.
            return Ok(());
        }
        if !rec.lease.complete_reclaim() {
            return Err(status::NFS4ERR_COMPLETE_ALREADY);
        }
        if let Some(c) = self.grace.cluster() {
            c.reclaim_complete(&rec.owner);
        }
        Ok(())
    }

    // ---- leases -----------------------------------------------------------------------------

    /// Expire clients whose lease ran out; returns how many were expired.
    pub fn reap(&self) -> usize {
        let now = self.clock.now_ms();
        let core = self.metrics.shared_slot();
        let mut clients = self.clients.lock();
        let expired = clients.expired(now, self.lease_ms());
        let n = expired.len();
        for id in expired {
            if let Some(rec) = clients.remove(id) {
                tracing::info!(
                    clientid = %ids::client_id_str(id),
                    sessions = rec.sessions.len(),
                    "lease expired"
                );
                self.destroy_client_sessions(core, rec, UnbindReason::Reaper);
            }
        }
        drop(clients);
        // A holder that has not returned a recalled delegation within a lease loses it
        // (RFC 8881 §10.4.6).
        let lease = std::time::Duration::from_millis(self.lease_ms());
        for (client, _) in self.files.revoke_overdue(std::time::Instant::now(), lease) {
            tracing::info!(
                clientid = %ids::client_id_str(client),
                "delegation revoked: not returned within a lease of its recall"
            );
        }
        n
    }

    /// Run the reaper on its own thread until the returned handle is stopped or dropped.
    pub fn spawn_reaper(self: &Arc<Self>) -> Reaper {
        let me = Arc::clone(self);
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("ringnfs-reaper".into())
            .spawn(move || {
                // Check four times per lease, at least every second; wake at once on stop.
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = stopped.recv_timeout(
                    std::time::Duration::from_millis((me.lease_ms() / 4).clamp(50, 1000)),
                ) {
                    me.reap();
                }
            })
            .expect("spawn reaper thread");
        Reaper {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    // ---- operator actions ---------------------------------------------------------------------

    /// Mark a connection draining and ask its core to flush and close it.
    pub fn drain_connection(&self, conn: ConnId) -> bool {
        let Some(entry) = self.conns.get(conn) else {
            return false;
        };
        entry.meta.shared.draining.store(true, Ordering::Relaxed);
        entry.meta.control.drain(conn)
    }

    /// Remove one binding (unbind reason `explicit`).
    pub fn unbind(&self, conn: ConnId, sid: &SessionId) -> bool {
        self.unbind_one(
            self.metrics.shared_slot(),
            conn,
            sid,
            UnbindReason::Explicit,
        )
    }

    /// Current direction of `conn` in `sid`.
    pub fn direction(&self, conn: ConnId, sid: &SessionId) -> Option<Direction> {
        self.shard_of(sid)?.lock().direction_of(sid, conn)
    }

    /// Record the minor version of the COMPOUND that created session `sid` (its
    /// callbacks use it).
    pub fn set_session_minor(&self, sid: &SessionId, minor: u32) {
        if let Some(shard) = self.shard_of(sid)
            && let Some(s) = shard.lock().session_mut(sid)
        {
            s.minor = minor;
        }
    }

    /// The connection that carries callbacks for `sid`, with what a callback needs.
    /// `slot`: the call will use this back-channel slot (CB_SEQUENCE), so take its next
    /// sequence id (None: no slot, e.g. CB_NULL, or only asking whether there is a back
    /// channel). A slot beyond those the session has is none.
    /// BACKCHANNEL_CTL (RFC 8881 §18.33): the session's callbacks go to `cb_program`
    /// with the credential of `parms` (the last AUTH_SYS entry, else AUTH_NONE); with no
    /// entry this server can call back with (only RPCSEC_GSS, or none),
    /// NFS4ERR_ENCR_ALG_UNSUPP and nothing changes, as knfsd answers.
    pub fn backchannel_ctl(
        &self,
        sid: &SessionId,
        cb_program: u32,
        parms: &[ringnfs_proto::nfs4::ops::session::CallbackSecParms<'_>],
    ) -> Result<(), NfsStatus> {
        let cred =
            create_session::callback_credential(parms).ok_or(status::NFS4ERR_ENCR_ALG_UNSUPP)?;
        let shard = self.shard_of(sid).ok_or(status::NFS4ERR_BADSESSION)?;
        let mut guard = shard.lock();
        let session = guard.session_mut(sid).ok_or(status::NFS4ERR_BADSESSION)?;
        session.cb_program = cb_program;
        session.cb_cred = cred;
        session.cb_sec_ok = true;
        Ok(())
    }

    pub fn back_channel(
        &self,
        sid: &SessionId,
        slot: Option<u32>,
    ) -> Option<callbacks::BackChannel> {
        let shard = self.shard_of(sid)?;
        let mut guard = shard.lock();
        let conn = guard.back_conn(sid)?;
        let session = guard.session_mut(sid)?;
        if !session.cb_sec_ok {
            return None;
        }
        let slots = session.cb_seqids.len() as u32;
        let seqid = match slot {
            Some(s) => {
                let seqid = session.cb_seqids.get_mut(s as usize)?;
                *seqid = seqid.wrapping_add(1);
                *seqid
            }
            None => 0,
        };
        let bc = callbacks::BackChannel {
            conn,
            program: session.cb_program,
            cred: session.cb_cred.clone(),
            slot: slot.unwrap_or(0),
            seqid,
            slots,
            minor: session.minor,
            meta: None,
        };
        drop(guard);
        let meta = self.conns.get(conn)?.meta;
        Some(callbacks::BackChannel {
            meta: Some(meta),
            ..bc
        })
    }
}

/// The lease reaper thread; stopping (or dropping) it wakes and joins the thread.
pub struct Reaper {
    stop: Option<crossbeam_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reaper {
    pub fn stop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.stop();
    }
}

fn session_principal_mismatch(session: &session::Session, principal: &Principal) -> bool {
    session.principal != *principal
}
