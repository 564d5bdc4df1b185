//! What the server keeps of delegations per client and in all, beside the file shards:
//! how many each client holds (the per-client bound), the revoked ones it has not freed
//! yet (SEQ4_STATUS_RECALLABLE_STATE_REVOKED), whether its callback path failed
//! (SEQ4_STATUS_CB_PATH_DOWN), and until when it gets no new delegations after one of
//! its delegations was revoked. Also the counters the metrics show.
//!
//! The ledger is one mutex for all clients, ranked after the file shards
//! ([`rank::DELEG_LEDGER`]): a grant, return or revocation updates it under its file's
//! shard. SEQUENCE, which runs on every request, reads it only while some client is
//! flagged (an atomic count), so a server with no revoked state and no failed callback
//! path never takes it there.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use ringnfs_proto::nfs4::consts::seq4_status;
use rustc_hash::FxHashMap;

use crate::ids::ClientId;
use crate::locks::{CheckInvariants, RankedMutex, rank};

/// Bounds on delegations: past them no new ones are granted (OPEN answers with no
/// delegation, never an error), like a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelegLimits {
    /// Delegations held by all clients together.
    pub total: usize,
    /// Delegations held by one client.
    pub per_client: u32,
}

pub const DEFAULT_MAX_DELEGATIONS: usize = 65_536;
pub const DEFAULT_MAX_DELEGATIONS_PER_CLIENT: u32 = 8_192;

impl Default for DelegLimits {
    fn default() -> Self {
        DelegLimits {
            total: DEFAULT_MAX_DELEGATIONS,
            per_client: DEFAULT_MAX_DELEGATIONS_PER_CLIENT,
        }
    }
}

/// One client's entry; gone when all is zero.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct ClientDelegs {
    held: u32,
    /// Revoked and not yet freed (FREE_STATEID) by the client.
    revoked: u32,
    /// A callback to the client failed: no new delegations until one succeeds or the
    /// client binds a back channel again.
    path_down: bool,
    /// No new delegations before this (set when one of its delegations is revoked).
    refuse_until: Option<Instant>,
    /// Opens, locks and delegations revoked by the administrator, not yet freed
    /// (SEQ4_STATUS_ADMIN_STATE_REVOKED).
    admin_revoked: u32,
}

impl ClientDelegs {
    fn flagged(&self) -> bool {
        self.revoked > 0 || self.path_down || self.admin_revoked > 0
    }
}

#[derive(Debug, Default)]
pub(super) struct Ledger {
    clients: FxHashMap<ClientId, ClientDelegs>,
}

impl CheckInvariants for Ledger {}

pub(super) type LedgerLock = RankedMutex<Ledger, { rank::DELEG_LEDGER }>;

/// Counters since start (for the metrics).
#[derive(Debug, Default)]
pub(super) struct DelegCounters {
    pub(super) granted_read: AtomicU64,
    pub(super) granted_write: AtomicU64,
    pub(super) recalled: AtomicU64,
    pub(super) returned: AtomicU64,
    pub(super) revoked: AtomicU64,
}

/// What the metrics show of delegations.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DelegStats {
    pub granted_read: u64,
    pub granted_write: u64,
    pub recalled: u64,
    pub returned: u64,
    pub revoked: u64,
    /// Held now.
    pub current: usize,
    /// Revoked and not freed by their clients yet.
    pub revoked_unfreed: usize,
}

/// The ledger and the count of clients it flags.
pub(super) struct DelegBook {
    pub(super) limits: DelegLimits,
    ledger: LedgerLock,
    /// Clients with revoked state or a failed callback path.
    flagged: AtomicUsize,
    pub(super) counters: DelegCounters,
}

impl std::fmt::Debug for DelegBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelegBook")
            .field("limits", &self.limits)
            .field("flagged", &self.flagged)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl DelegBook {
    pub(super) fn new(limits: DelegLimits) -> Self {
        DelegBook {
            limits,
            ledger: LedgerLock::new(Ledger::default()),
            flagged: AtomicUsize::new(0),
            counters: DelegCounters::default(),
        }
    }

    /// Change `client`'s entry (made if missing), keeping the flagged count and dropping
    /// empty entries.
    fn update<R>(&self, client: ClientId, f: impl FnOnce(&mut ClientDelegs) -> R) -> R {
        let mut l = self.ledger.lock();
        l.clients.entry(client).or_default();
        self.apply(&mut l, client, f).expect("made above")
    }

    /// [`update`](Self::update), but only for a client with an entry (one that holds
    /// delegations or has revoked ones): news of a client already gone (its state
    /// removed) must not flag it forever.
    fn update_existing(&self, client: ClientId, f: impl FnOnce(&mut ClientDelegs)) {
        let mut l = self.ledger.lock();
        self.apply(&mut l, client, f);
    }

    fn apply<R>(
        &self,
        l: &mut Ledger,
        client: ClientId,
        f: impl FnOnce(&mut ClientDelegs) -> R,
    ) -> Option<R> {
        let e = l.clients.get_mut(&client)?;
        let before = e.flagged();
        let r = f(e);
        let after = e.flagged();
        if *e == ClientDelegs::default() {
            l.clients.remove(&client);
        }
        match (before, after) {
            (false, true) => self.flagged.fetch_add(1, Ordering::Relaxed),
            (true, false) => self.flagged.fetch_sub(1, Ordering::Relaxed),
            _ => 0,
        };
        Some(r)
    }

    /// Take one of `client`'s places for a new delegation, if it may have one now:
    /// under its bound, its callback path not down, not refused since a revocation.
    pub(super) fn reserve(&self, client: ClientId, now: Instant) -> bool {
        self.admit(client, now, true)
    }

    /// Whether `client` could [`reserve`](Self::reserve) a place now (for handing it a
    /// delegation it holds already), taking none.
    pub(super) fn admits(&self, client: ClientId, now: Instant) -> bool {
        self.admit(client, now, false)
    }

    fn admit(&self, client: ClientId, now: Instant, take: bool) -> bool {
        let per_client = self.limits.per_client;
        self.update(client, |e| {
            let refused = e.refuse_until.is_some_and(|t| now < t);
            if e.refuse_until.is_some() && !refused {
                e.refuse_until = None;
            }
            if refused || e.path_down || e.held >= per_client {
                return false;
            }
            if take {
                e.held += 1;
            }
            true
        })
    }

    /// Give back a place taken by [`reserve`](Self::reserve) or held by a delegation.
    pub(super) fn release(&self, client: ClientId) {
        self.update_existing(client, |e| e.held = e.held.saturating_sub(1));
    }

    /// One of `client`'s delegations was revoked: it counts as revoked state until
    /// freed, and the client gets no new delegation before `refuse_until`.
    pub(super) fn revoked(&self, client: ClientId, refuse_until: Instant) {
        self.counters.revoked.fetch_add(1, Ordering::Relaxed);
        self.update_existing(client, |e| {
            e.held = e.held.saturating_sub(1);
            e.revoked += 1;
            e.refuse_until = Some(refuse_until);
        });
    }

    /// `client` freed (FREE_STATEID) one revoked delegation.
    pub(super) fn revoked_freed(&self, client: ClientId) {
        self.update_existing(client, |e| e.revoked = e.revoked.saturating_sub(1));
    }

    /// `n` of `client`'s stateids were revoked by the administrator.
    pub(super) fn admin_revoked(&self, client: ClientId, n: u32) {
        self.update(client, |e| e.admin_revoked += n);
    }

    /// `client` freed one of them.
    pub(super) fn admin_freed(&self, client: ClientId) {
        self.update_existing(client, |e| {
            e.admin_revoked = e.admin_revoked.saturating_sub(1)
        });
    }

    pub(super) fn set_path_down(&self, client: ClientId, down: bool) {
        self.update_existing(client, |e| e.path_down = down);
    }

    /// The client is gone (its state went with it).
    pub(super) fn forget(&self, client: ClientId) {
        self.update_existing(client, |e| *e = ClientDelegs::default());
    }

    /// SEQ4_STATUS flags for `client`'s delegations: RECALLABLE_STATE_REVOKED while it
    /// has revoked delegations it has not freed, CB_PATH_DOWN while its callback path
    /// is down.
    pub(super) fn status_flags(&self, client: ClientId) -> u32 {
        if self.flagged.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let l = self.ledger.lock();
        let Some(e) = l.clients.get(&client) else {
            return 0;
        };
        let mut flags = 0;
        if e.revoked > 0 {
            flags |= seq4_status::RECALLABLE_STATE_REVOKED;
        }
        if e.path_down {
            flags |= seq4_status::CB_PATH_DOWN;
        }
        if e.admin_revoked > 0 {
            flags |= seq4_status::ADMIN_STATE_REVOKED;
        }
        flags
    }

    /// Delegations `client` holds, by the ledger.
    pub(super) fn held_by(&self, client: ClientId) -> u32 {
        self.ledger
            .lock()
            .clients
            .get(&client)
            .map_or(0, |e| e.held)
    }

    pub(super) fn revoked_unfreed(&self) -> usize {
        self.ledger
            .lock()
            .clients
            .values()
            .map(|e| e.revoked as usize)
            .sum()
    }
}
