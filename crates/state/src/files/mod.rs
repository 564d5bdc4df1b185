//! Open and byte-range lock state (RFC 8881 §9), sharded by file: all state of one file
//! lives in one shard, and every stateid names its shard, so READ/WRITE validate a
//! stateid under one short shard lock and never a global one. Lock order: a file-state
//! shard is taken after the client table (when a client is destroyed) and never together
//! with a session shard or another file-state shard.

use std::collections::{HashMap, HashSet};

use rustc_hash::FxHashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};

use ringnfs_fs::ObjHandle;
use ringnfs_proto::nfs4::consts::{NfsStatus, status};

use super::ids::ClientId;
use super::locks::{CheckInvariants, RankedMutex, rank};
use super::stateid::{StateKind, Stateid};
use ringnfs_fs::LockKind;

mod claims;
mod deleg;
mod ledger;
mod on_fs;
mod revoke;
pub use claims::{ClusterShares, DelegKind, OpenBlocked, ShareBits};
pub use deleg::{AttrConflict, DelegationView, RECALL_COOLDOWN, Recalls};
pub use ledger::{
    DEFAULT_MAX_DELEGATIONS, DEFAULT_MAX_DELEGATIONS_PER_CLIENT, DelegLimits, DelegStats,
};
pub use on_fs::{FOREIGN_OWNER, OpenLockFile};

pub const SHARE_ACCESS_READ: u32 = 1;
pub const SHARE_ACCESS_WRITE: u32 = 2;
pub const SHARE_ACCESS_BOTH: u32 = 3;

/// A byte range, `end` exclusive (u64::MAX = to end of file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

impl Range {
    /// From NFS offset/length: length 0 is invalid, all-ones means "to EOF".
    pub fn from_nfs(offset: u64, length: u64) -> Result<Range, NfsStatus> {
        if length == 0 {
            return Err(status::NFS4ERR_INVAL);
        }
        if length == u64::MAX {
            return Ok(Range {
                start: offset,
                end: u64::MAX,
            });
        }
        match offset.checked_add(length) {
            Some(end) => Ok(Range { start: offset, end }),
            None => Err(status::NFS4ERR_INVAL),
        }
    }

    pub fn overlaps(&self, o: &Range) -> bool {
        self.start < o.end && o.start < self.end
    }

    /// NFS length of this range.
    pub fn length(&self) -> u64 {
        if self.end == u64::MAX {
            u64::MAX
        } else {
            self.end - self.start
        }
    }
}

/// Who holds a lock, for LOCK4denied.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    pub client: ClientId,
    pub owner: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub range: Range,
    pub write: bool,
    pub owner: Owner,
}

#[derive(Debug)]
struct OpenState {
    owner: Owner,
    file: ObjHandle,
    access: u32,
    deny: u32,
    seqid: u32,
    /// Lock stateids opened under this open.
    locks: Vec<[u8; 12]>,
}

#[derive(Debug)]
struct LockState {
    owner: Owner,
    file: ObjHandle,
    open: [u8; 12],
    seqid: u32,
    /// The open file description holding this owner's locks on the file system (local
    /// backend), opened by its first LOCK. Dropped with the lock state on every path
    /// that frees it (FREE_STATEID, CLOSE, client removal, administrative revocation),
    /// which closes it and so releases its locks there.
    on_fs: Option<ringnfs_fs::LockFile>,
}

#[derive(Debug, Clone)]
struct HeldLock {
    lock_state: [u8; 12],
    owner: Owner,
    write: bool,
    range: Range,
}

#[derive(Debug, Default)]
struct FileInfo {
    opens: Vec<[u8; 12]>,
    locks: Vec<HeldLock>,
    /// Delegations on the file (they may outlive its opens).
    delegs: Vec<[u8; 12]>,
}

/// The open and lock state of the files that hash to one shard.
#[derive(Debug)]
struct FileStateShard {
    /// The boot, this shard's index and the number of shards: which files and stateids
    /// belong here.
    boot: u32,
    index: usize,
    count: usize,
    // Stateids and handles are the server's own (FxHash); owners are the client's
    // bytes (SipHash, so no client can choose colliding keys).
    opens: FxHashMap<[u8; 12], OpenState>,
    lock_states: FxHashMap<[u8; 12], LockState>,
    open_by_owner: HashMap<(Owner, ObjHandle), [u8; 12]>,
    lock_by_owner: HashMap<(Owner, ObjHandle), [u8; 12]>,
    delegs: FxHashMap<[u8; 12], deleg::DelegState>,
    /// Revoked delegations their clients have not freed yet.
    revoked: FxHashMap<[u8; 12], deleg::RevokedDeleg>,
    /// Opens, locks and delegations revoked by the administrator (their export was
    /// removed), until their clients free them.
    admin_revoked: FxHashMap<[u8; 12], revoke::AdminRevoked>,
    /// Files whose delegations were recalled lately, and when.
    recent_recalls: FxHashMap<ObjHandle, std::time::Instant>,
    files: FxHashMap<ObjHandle, FileInfo>,
    /// In a cluster: other nodes' claims seen and this node's own, per file
    /// (`claims.rs`; empty on a single server).
    claims: FxHashMap<ObjHandle, claims::FileClaims>,
}

/// What an I/O op needs a stateid to allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoKind {
    Read,
    Write,
}

type FileStateShardLock = RankedMutex<FileStateShard, { rank::FILE_STATE_SHARD }>;

pub struct FileStateTable {
    boot: u32,
    counter: AtomicU32,
    shards: Box<[FileStateShardLock]>,
    /// Delegations held in all shards (so that ops can skip looking when there are none).
    delegations: std::sync::atomic::AtomicUsize,
    /// Write delegations among them (so reads can skip looking when there are none).
    write_delegations: std::sync::atomic::AtomicUsize,
    /// Delegations per client, their bounds and counters.
    book: ledger::DelegBook,
    /// The cluster this node belongs to, if any (`claims.rs`).
    cluster: std::sync::OnceLock<std::sync::Arc<dyn ClusterShares>>,
}

/// The shard of `file` among `count`.
fn shard_index(file: &ObjHandle, count: usize) -> usize {
    let mut h = rustc_hash::FxHasher::default();
    file.hash(&mut h);
    (h.finish() % count as u64) as usize
}

impl FileStateTable {
    pub fn new(boot: u32, shards: usize) -> Self {
        Self::with_limits(boot, shards, DelegLimits::default())
    }

    pub fn with_limits(boot: u32, shards: usize, limits: DelegLimits) -> Self {
        let count = shards.clamp(1, u16::MAX as usize);
        Self {
            boot,
            counter: AtomicU32::new(1),
            delegations: std::sync::atomic::AtomicUsize::new(0),
            write_delegations: std::sync::atomic::AtomicUsize::new(0),
            book: ledger::DelegBook::new(limits),
            cluster: std::sync::OnceLock::new(),
            shards: (0..count)
                .map(|index| {
                    FileStateShardLock::new(FileStateShard {
                        boot,
                        index,
                        count,
                        opens: FxHashMap::default(),
                        lock_states: FxHashMap::default(),
                        open_by_owner: HashMap::new(),
                        lock_by_owner: HashMap::new(),
                        delegs: FxHashMap::default(),
                        revoked: FxHashMap::default(),
                        admin_revoked: FxHashMap::default(),
                        recent_recalls: FxHashMap::default(),
                        files: FxHashMap::default(),
                        claims: FxHashMap::default(),
                    })
                })
                .collect(),
        }
    }

    fn shard_index(&self, file: &ObjHandle) -> usize {
        shard_index(file, self.shards.len())
    }

    fn new_other(&self, shard: usize, kind: StateKind) -> [u8; 12] {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        Stateid::make_other(self.boot, shard as u16, kind, n)
    }

    /// Insert `value` under a new stateid `other` of `kind` and return it. Once the
    /// 32-bit counter has wrapped, ids still in use are skipped (an open and a lock
    /// state differ in their kind byte, so each map only needs checking against itself).
    fn insert_new<V>(
        &self,
        map: &mut FxHashMap<[u8; 12], V>,
        shard: usize,
        kind: StateKind,
        value: V,
    ) -> [u8; 12] {
        loop {
            let other = self.new_other(shard, kind);
            if let std::collections::hash_map::Entry::Vacant(v) = map.entry(other) {
                v.insert(value);
                return other;
            }
        }
    }

    /// The shard of a server-issued stateid, or the error for a foreign one.
    fn shard_of(&self, sid: &Stateid) -> Result<&FileStateShardLock, NfsStatus> {
        if sid.boot() != self.boot {
            return Err(status::NFS4ERR_STALE_STATEID);
        }
        self.shards
            .get(sid.shard())
            .ok_or(status::NFS4ERR_BAD_STATEID)
    }

    /// seqid 0 means "the current one" in NFSv4.1.
    fn check_seqid(given: u32, current: u32) -> Result<(), NfsStatus> {
        if given == 0 || given == current {
            Ok(())
        } else if given < current {
            Err(status::NFS4ERR_OLD_STATEID)
        } else {
            Err(status::NFS4ERR_BAD_STATEID)
        }
    }

    /// OPEN: share reservations against other owners' opens; the same owner upgrades
    /// its open (union of access and deny) and gets the next seqid.
    pub fn open(
        &self,
        owner: Owner,
        file: ObjHandle,
        access: u32,
        deny: u32,
    ) -> Result<Stateid, NfsStatus> {
        self.open_checked(owner, file, access, deny, false)
            .map_err(|e| match e {
                OpenBlocked::Status(s) => s,
                // Not asked to check the cluster: cannot happen.
                OpenBlocked::Claim(_) | OpenBlocked::Recall(_) => status::NFS4ERR_SERVERFAULT,
            })
    }

    /// [`Self::open`], and in a cluster (`clustered`) the other nodes' claims too.
    fn open_checked(
        &self,
        owner: Owner,
        file: ObjHandle,
        access: u32,
        deny: u32,
        clustered: bool,
    ) -> Result<Stateid, OpenBlocked> {
        if access & SHARE_ACCESS_BOTH == 0
            || access & !SHARE_ACCESS_BOTH != 0
            || deny & !SHARE_ACCESS_BOTH != 0
        {
            return Err(status::NFS4ERR_INVAL.into());
        }
        let idx = self.shard_index(&file);
        let mut sh = self.shards[idx].lock();
        let sh = &mut *sh;
        let mine = sh.open_by_owner.get(&(owner.clone(), file)).copied();
        if let Some(info) = sh.files.get(&file) {
            for other in &info.opens {
                if Some(*other) == mine {
                    continue;
                }
                let o = &sh.opens[other];
                if access & o.deny != 0 || deny & o.access != 0 {
                    return Err(status::NFS4ERR_SHARE_DENIED.into());
                }
            }
        }
        if clustered {
            // Under the same lock as the open's insertion below (see `claims.rs`).
            claims::open_gate(sh, &file, access, deny)?;
        }
        if let Some(other) = mine {
            let o = sh.opens.get_mut(&other).expect("indexed open exists");
            o.access |= access;
            o.deny |= deny;
            o.seqid = o.seqid.wrapping_add(1);
            return Ok(Stateid {
                seqid: o.seqid,
                other,
            });
        }
        let other = self.insert_new(
            &mut sh.opens,
            idx,
            StateKind::Open,
            OpenState {
                owner: owner.clone(),
                file,
                access,
                deny,
                seqid: 1,
                locks: Vec::new(),
            },
        );
        sh.open_by_owner.insert((owner, file), other);
        sh.files.entry(file).or_default().opens.push(other);
        Ok(Stateid { seqid: 1, other })
    }

    /// The union of the access modes other clients' opens of `file` hold.
    pub fn others_access(&self, file: &ObjHandle, client: ClientId) -> u32 {
        let sh = self.shards[self.shard_index(file)].lock();
        sh.files.get(file).map_or(0, |info| {
            info.opens
                .iter()
                .filter_map(|o| sh.opens.get(o))
                .filter(|o| o.owner.client != client)
                .fold(0, |acc, o| acc | o.access)
        })
    }

    fn open_mut<'a>(
        sh: &'a mut FileStateShard,
        sid: &Stateid,
        client: ClientId,
        file: &ObjHandle,
    ) -> Result<&'a mut OpenState, NfsStatus> {
        let o = sh
            .opens
            .get_mut(&sid.other)
            .ok_or(status::NFS4ERR_BAD_STATEID)?;
        if o.owner.client != client || o.file != *file {
            return Err(status::NFS4ERR_BAD_STATEID);
        }
        Self::check_seqid(sid.seqid, o.seqid)?;
        Ok(o)
    }

    pub fn open_downgrade(
        &self,
        sid: &Stateid,
        client: ClientId,
        file: &ObjHandle,
        access: u32,
        deny: u32,
    ) -> Result<Stateid, NfsStatus> {
        let mut sh = self.shard_of(sid)?.lock();
        let o = Self::open_mut(&mut sh, sid, client, file)?;
        if access & SHARE_ACCESS_BOTH == 0 || access & !o.access != 0 || deny & !o.deny != 0 {
            return Err(status::NFS4ERR_INVAL);
        }
        o.access = access;
        o.deny = deny;
        o.seqid = o.seqid.wrapping_add(1);
        Ok(Stateid {
            seqid: o.seqid,
            other: sid.other,
        })
    }

    /// CLOSE: refused while the open's lock owners still hold locks.
    pub fn close(
        &self,
        sid: &Stateid,
        client: ClientId,
        file: &ObjHandle,
    ) -> Result<(), NfsStatus> {
        let mut guard = self.shard_of(sid)?.lock();
        let sh = &mut *guard;
        let o = Self::open_mut(sh, sid, client, file)?;
        let lock_ids = o.locks.clone();
        if let Some(info) = sh.files.get(file)
            && info.locks.iter().any(|l| lock_ids.contains(&l.lock_state))
        {
            return Err(status::NFS4ERR_LOCKS_HELD);
        }
        let o = sh.opens.remove(&sid.other).expect("checked above");
        sh.open_by_owner.remove(&(o.owner, o.file));
        for l in &o.locks {
            if let Some(ls) = sh.lock_states.remove(l) {
                sh.lock_by_owner.remove(&(ls.owner, ls.file));
            }
        }
        Self::forget_file_if_idle(sh, file, Some(&sid.other));
        Ok(())
    }

    fn forget_file_if_idle(sh: &mut FileStateShard, file: &ObjHandle, open: Option<&[u8; 12]>) {
        if let Some(info) = sh.files.get_mut(file) {
            if let Some(o) = open {
                info.opens.retain(|x| x != o);
            }
            if info.opens.is_empty() && info.locks.is_empty() && info.delegs.is_empty() {
                sh.files.remove(file);
            }
        }
    }

    /// Check a stateid for READ/WRITE/SETATTR(size) on `file`. Special stateids are
    /// allowed (anonymous access is checked against share deny reservations; READ
    /// bypass skips them for reads).
    pub fn check_io(
        &self,
        sid: &Stateid,
        client: Option<ClientId>,
        file: &ObjHandle,
        kind: IoKind,
    ) -> Result<(), NfsStatus> {
        if sid.is_special() {
            if *sid == Stateid::READ_BYPASS && kind == IoKind::Read {
                return Ok(());
            }
            if *sid != Stateid::ANONYMOUS && *sid != Stateid::READ_BYPASS {
                return Err(status::NFS4ERR_BAD_STATEID);
            }
            let want = if kind == IoKind::Write {
                SHARE_ACCESS_WRITE
            } else {
                SHARE_ACCESS_READ
            };
            let sh = self.shards[self.shard_index(file)].lock();
            if let Some(info) = sh.files.get(file)
                && info.opens.iter().any(|o| sh.opens[o].deny & want != 0)
            {
                return Err(status::NFS4ERR_LOCKED);
            }
            // Another cluster node's clients' deny modes hold too (`claims.rs`).
            if claims::remote_deny(&sh, file) & want != 0 {
                return Err(status::NFS4ERR_LOCKED);
            }
            return Ok(());
        }
        let sh = self.shard_of(sid)?.lock();
        let (owner_client, of_file, access, seqid) = if let Some(o) = sh.opens.get(&sid.other) {
            (o.owner.client, o.file, o.access, o.seqid)
        } else if let Some(l) = sh.lock_states.get(&sid.other) {
            let access = sh.opens.get(&l.open).map_or(0, |o| o.access);
            (l.owner.client, l.file, access, l.seqid)
        } else if let Some(d) = sh.delegs.get(&sid.other) {
            // A read delegation allows reading, a write delegation both.
            let access = if d.write {
                SHARE_ACCESS_BOTH
            } else {
                SHARE_ACCESS_READ
            };
            (d.client, d.file, access, d.seqid)
        } else {
            return Err(sh
                .revoked_answer(&sid.other, client, None)
                .unwrap_or(status::NFS4ERR_BAD_STATEID));
        };
        if client.is_some_and(|c| c != owner_client) || of_file != *file {
            return Err(status::NFS4ERR_BAD_STATEID);
        }
        Self::check_seqid(sid.seqid, seqid)?;
        if kind == IoKind::Write && access & SHARE_ACCESS_WRITE == 0 {
            return Err(status::NFS4ERR_OPENMODE);
        }
        Ok(())
    }

    /// LOCK with a new lock owner (derived from an open stateid) or an existing lock
    /// stateid. Returns the lock stateid, or the conflicting lock. In memory only.
    pub fn lock(&self, req: LockRequest<'_>) -> Result<Result<Stateid, Conflict>, NfsStatus> {
        self.lock_mirrored(req, &|| None)
    }

    /// [`lock`](Self::lock), with the lock also taken on the file system through the
    /// owner's description (`open_file` opens one for its first lock; `None` from it:
    /// no file system). The order, all under the file's shard lock: the in-memory
    /// check (cheap, and a conflict with this node's own clients names its owner), then
    /// the file-system lock (the only step that can still fail: another node's or a
    /// local process's lock, or an errno), then the in-memory grant (which cannot fail).
    /// So a failure leaves nothing to undo but a lock state made by this call, which is
    /// removed, and no op of this node ever sees the two disagree.
    pub fn lock_mirrored(
        &self,
        req: LockRequest<'_>,
        open_file: &OpenLockFile<'_>,
    ) -> Result<Result<Stateid, Conflict>, NfsStatus> {
        let file = *req.file;
        let idx = self.shard_index(&file);
        let mut guard = self.shards[idx].lock();
        let sh = &mut *guard;
        // Find or create the lock state.
        let (lock_other, owner, created) = match req.locker {
            Locker::New { open, owner } => {
                let o = sh
                    .opens
                    .get(&open.other)
                    .ok_or(status::NFS4ERR_BAD_STATEID)?;
                if open.shard() != idx || o.owner.client != req.client || o.file != file {
                    return Err(status::NFS4ERR_BAD_STATEID);
                }
                Self::check_seqid(open.seqid, o.seqid)?;
                let access = o.access;
                // Like knfsd: a read lock needs read access, a write lock write access.
                let need = if req.write {
                    SHARE_ACCESS_WRITE
                } else {
                    SHARE_ACCESS_READ
                };
                if access & need == 0 {
                    return Err(status::NFS4ERR_OPENMODE);
                }
                let owner = Owner {
                    client: req.client,
                    owner: owner.to_vec(),
                };
                match sh.lock_by_owner.get(&(owner.clone(), file)) {
                    Some(existing) => (*existing, owner, false),
                    None => {
                        let other = self.insert_new(
                            &mut sh.lock_states,
                            idx,
                            StateKind::Lock,
                            LockState {
                                owner: owner.clone(),
                                file,
                                open: open.other,
                                seqid: 0,
                                on_fs: None,
                            },
                        );
                        sh.lock_by_owner.insert((owner.clone(), file), other);
                        if let Some(o) = sh.opens.get_mut(&open.other) {
                            o.locks.push(other);
                        }
                        sh.files.entry(file).or_default();
                        (other, owner, true)
                    }
                }
            }
            Locker::Existing(sid) => {
                let l = sh
                    .lock_states
                    .get(&sid.other)
                    .ok_or(status::NFS4ERR_BAD_STATEID)?;
                if sid.shard() != idx || l.owner.client != req.client || l.file != file {
                    return Err(status::NFS4ERR_BAD_STATEID);
                }
                Self::check_seqid(sid.seqid, l.seqid)?;
                (sid.other, l.owner.clone(), false)
            }
        };
        let info = sh.files.entry(file).or_default();
        if let Some(c) = info
            .locks
            .iter()
            .find(|l| l.owner != owner && l.range.overlaps(&req.range) && (l.write || req.write))
        {
            return Ok(Err(Conflict {
                range: c.range,
                write: c.write,
                owner: c.owner.clone(),
            }));
        }
        let ls = sh
            .lock_states
            .get_mut(&lock_other)
            .expect("lock state exists");
        let kind = if req.write {
            LockKind::Write
        } else {
            LockKind::Read
        };
        if let Err(failed) = on_fs::set(&mut ls.on_fs, open_file, kind, req.range) {
            if created {
                Self::drop_new_lock_state(sh, &lock_other);
            }
            return failed.map(Err);
        }
        let info = sh.files.get_mut(&file).expect("made above");
        apply_posix_lock(
            &mut info.locks,
            lock_other,
            &owner,
            req.range,
            Some(req.write),
        );
        let ls = sh
            .lock_states
            .get_mut(&lock_other)
            .expect("lock state exists");
        ls.seqid = ls.seqid.wrapping_add(1);
        Ok(Ok(Stateid {
            seqid: ls.seqid,
            other: lock_other,
        }))
    }

    /// A lock state that LOCK made and then could not use (its file-system lock
    /// failed): gone again, as if the LOCK had not come.
    fn drop_new_lock_state(sh: &mut FileStateShard, id: &[u8; 12]) {
        if let Some(l) = sh.lock_states.remove(id) {
            sh.lock_by_owner.remove(&(l.owner, l.file));
            if let Some(o) = sh.opens.get_mut(&l.open) {
                o.locks.retain(|x| x != id);
            }
        }
    }

    /// LOCKT: would this lock conflict? In memory only.
    pub fn test_lock(
        &self,
        file: &ObjHandle,
        owner: &Owner,
        range: Range,
        write: bool,
    ) -> Option<Conflict> {
        let sh = self.shards[self.shard_index(file)].lock();
        Self::conflict_in_memory(&sh, file, owner, range, write)
    }

    fn conflict_in_memory(
        sh: &FileStateShard,
        file: &ObjHandle,
        owner: &Owner,
        range: Range,
        write: bool,
    ) -> Option<Conflict> {
        let info = sh.files.get(file)?;
        info.locks
            .iter()
            .find(|l| l.owner != *owner && l.range.overlaps(&range) && (l.write || write))
            .map(|c| Conflict {
                range: c.range,
                write: c.write,
                owner: c.owner.clone(),
            })
    }

    /// LOCKT in memory, then on the file system (F_OFD_GETLK): through the owner's own
    /// description when it has one (its own locks never conflict), else through a new
    /// one from `open_file`, opened and used outside the shard lock.
    pub fn test_lock_mirrored(
        &self,
        file: &ObjHandle,
        owner: &Owner,
        range: Range,
        write: bool,
        open_file: &OpenLockFile<'_>,
    ) -> Result<Option<Conflict>, NfsStatus> {
        {
            let sh = self.shards[self.shard_index(file)].lock();
            if let Some(c) = Self::conflict_in_memory(&sh, file, owner, range, write) {
                return Ok(Some(c));
            }
            let own = sh
                .lock_by_owner
                .get(&(owner.clone(), *file))
                .and_then(|id| sh.lock_states.get(id))
                .and_then(|l| l.on_fs.as_ref());
            if let Some(f) = own {
                return on_fs::test(f, range, write);
            }
        }
        match open_file() {
            None => Ok(None),
            Some(Err(e)) => Err(e.status()),
            Some(Ok(f)) => on_fs::test(&f, range, write),
        }
    }

    /// LOCKU: release a range (POSIX split semantics).
    pub fn unlock(
        &self,
        sid: &Stateid,
        client: ClientId,
        file: &ObjHandle,
        range: Range,
    ) -> Result<Stateid, NfsStatus> {
        let mut guard = self.shard_of(sid)?.lock();
        let sh = &mut *guard;
        let l = sh
            .lock_states
            .get(&sid.other)
            .ok_or(status::NFS4ERR_BAD_STATEID)?;
        if l.owner.client != client || l.file != *file {
            return Err(status::NFS4ERR_BAD_STATEID);
        }
        Self::check_seqid(sid.seqid, l.seqid)?;
        let owner = l.owner.clone();
        // The file system first: unlocking the middle of a range can fail there (ENOLCK,
        // no room for the split), and then memory must still say locked.
        if let Some(f) = &l.on_fs {
            on_fs::unlock(f, range)?;
        }
        if let Some(info) = sh.files.get_mut(file) {
            apply_posix_lock(&mut info.locks, sid.other, &owner, range, None);
        }
        let ls = sh.lock_states.get_mut(&sid.other).expect("checked");
        ls.seqid = ls.seqid.wrapping_add(1);
        Ok(Stateid {
            seqid: ls.seqid,
            other: sid.other,
        })
    }

    /// TEST_STATEID for one stateid of `client`.
    pub fn test(&self, sid: &Stateid, client: ClientId) -> NfsStatus {
        if sid.is_special() {
            return status::NFS4ERR_BAD_STATEID;
        }
        let sh = match self.shard_of(sid) {
            Ok(s) => s.lock(),
            Err(e) => return e,
        };
        let (owner, seqid) = match (
            sh.opens.get(&sid.other),
            sh.lock_states.get(&sid.other),
            sh.delegs.get(&sid.other),
        ) {
            (Some(o), _, _) => (o.owner.client, o.seqid),
            (_, Some(l), _) => (l.owner.client, l.seqid),
            (_, _, Some(d)) => (d.client, d.seqid),
            _ => {
                return sh
                    .revoked_answer(&sid.other, Some(client), None)
                    .unwrap_or(status::NFS4ERR_BAD_STATEID);
            }
        };
        if owner != client {
            return status::NFS4ERR_BAD_STATEID;
        }
        match Self::check_seqid(sid.seqid, seqid) {
            Ok(()) => status::NFS4_OK,
            Err(e) => e,
        }
    }

    /// FREE_STATEID: a lock stateid without locks can be freed, and a revoked
    /// delegation; open stateids, held delegations and lock stateids still holding
    /// locks cannot.
    pub fn free(&self, sid: &Stateid, client: ClientId) -> Result<(), NfsStatus> {
        let mut guard = self.shard_of(sid)?.lock();
        let sh = &mut *guard;
        match sh.revoked_answer(&sid.other, Some(client), None) {
            Some(status::NFS4ERR_DELEG_REVOKED) => {
                sh.revoked.remove(&sid.other);
                drop(guard);
                self.book.revoked_freed(client);
                return Ok(());
            }
            Some(status::NFS4ERR_ADMIN_REVOKED) => {
                sh.admin_revoked.remove(&sid.other);
                drop(guard);
                self.book.admin_freed(client);
                return Ok(());
            }
            _ => {}
        }
        let held_by = sh
            .opens
            .get(&sid.other)
            .map(|o| o.owner.client)
            .or_else(|| sh.delegs.get(&sid.other).map(|d| d.client));
        if let Some(holder) = held_by {
            return Err(if holder == client {
                status::NFS4ERR_LOCKS_HELD
            } else {
                status::NFS4ERR_BAD_STATEID
            });
        }
        let l = sh
            .lock_states
            .get(&sid.other)
            .ok_or(status::NFS4ERR_BAD_STATEID)?;
        if l.owner.client != client {
            return Err(status::NFS4ERR_BAD_STATEID);
        }
        let file = l.file;
        if sh
            .files
            .get(&file)
            .is_some_and(|i| i.locks.iter().any(|h| h.lock_state == sid.other))
        {
            return Err(status::NFS4ERR_LOCKS_HELD);
        }
        let l = sh.lock_states.remove(&sid.other).expect("checked");
        sh.lock_by_owner.remove(&(l.owner, l.file));
        if let Some(o) = sh.opens.get_mut(&l.open) {
            o.locks.retain(|x| *x != sid.other);
        }
        Self::forget_file_if_idle(sh, &file, None);
        Ok(())
    }

    /// Drop every open and lock of a client (lease expiry, DESTROY_CLIENTID, reboot).
    pub fn remove_client(&self, client: ClientId) -> usize {
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut guard = shard.lock();
            let sh = &mut *guard;
            let before = sh.opens.len() + sh.lock_states.len();
            sh.opens.retain(|_, o| o.owner.client != client);
            sh.lock_states.retain(|_, l| l.owner.client != client);
            let (mut gone, mut gone_write) = (0, 0);
            sh.delegs.retain(|_, d| {
                let keep = d.client != client;
                if !keep {
                    gone += 1;
                    gone_write += usize::from(d.write);
                }
                keep
            });
            self.delegations.fetch_sub(gone, Ordering::Relaxed);
            self.write_delegations
                .fetch_sub(gone_write, Ordering::Relaxed);
            sh.revoked.retain(|_, r| r.client != client);
            sh.admin_revoked.retain(|_, r| r.client != client);
            sh.open_by_owner.retain(|k, _| k.0.client != client);
            sh.lock_by_owner.retain(|k, _| k.0.client != client);
            let (opens, delegs) = (&sh.opens, &sh.delegs);
            sh.files.retain(|_, info| {
                info.opens.retain(|o| opens.contains_key(o));
                info.locks.retain(|l| l.owner.client != client);
                info.delegs.retain(|d| delegs.contains_key(d));
                !info.opens.is_empty() || !info.locks.is_empty() || !info.delegs.is_empty()
            });
            removed += before - sh.opens.len() - sh.lock_states.len();
        }
        self.book.forget(client);
        removed
    }

    /// Every shard's own invariants (see `FileStateShard::check_invariants`), one shard at a
    /// time.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.shards
            .iter()
            .try_for_each(|s| s.lock().check_invariants())
    }

    /// The clients that hold an open or a lock state.
    pub fn clients_with_state(&self) -> HashSet<ClientId> {
        let mut clients = HashSet::new();
        for shard in self.shards.iter() {
            let sh = shard.lock();
            clients.extend(sh.opens.values().map(|o| o.owner.client));
            clients.extend(sh.lock_states.values().map(|l| l.owner.client));
        }
        clients
    }

    /// The byte-range locks held on `file`, as a conflict would report them.
    #[cfg(test)]
    pub(crate) fn held_locks(&self, file: &ObjHandle) -> Vec<Conflict> {
        let sh = self.shards[self.shard_index(file)].lock();
        sh.files.get(file).map_or_else(Vec::new, |info| {
            info.locks
                .iter()
                .map(|l| Conflict {
                    range: l.range,
                    write: l.write,
                    owner: l.owner.clone(),
                })
                .collect()
        })
    }

    /// Open and lock states held (for tests and metrics).
    pub fn counts(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(o, l), s| {
            let s = s.lock();
            (o + s.opens.len(), l + s.lock_states.len())
        })
    }
}

impl CheckInvariants for FileStateShard {
    /// - every open and lock state is indexed by its owner and file, and each index
    ///   entry names such a state;
    /// - its stateid names this boot, this shard and its kind, and its file hashes here;
    /// - an open is listed once by its file, a file lists only its own opens and has at
    ///   least one (a file without opens holds no locks either);
    /// - a lock state points at an open of its client on its file, which lists it once,
    ///   and an open lists only lock states that point back;
    /// - a held lock belongs to a lock state of its owner on its file, its range is not
    ///   empty, it does not overlap another lock of its owner, and it does not conflict
    ///   (overlap, either one a write lock) with a lock of another owner.
    fn check_invariants(&self) -> Result<(), String> {
        for (id, r) in &self.admin_revoked {
            if self.opens.contains_key(id)
                || self.lock_states.contains_key(id)
                || self.delegs.contains_key(id)
                || shard_index(&r.file, self.count) != self.index
            {
                return Err(format!(
                    "revoked stateid {id:02x?} is still held or belongs to another shard"
                ));
            }
        }
        let here = |other: &[u8; 12], kind: StateKind| {
            let sid = Stateid {
                seqid: 0,
                other: *other,
            };
            sid.boot() == self.boot && sid.shard() == self.index && other[6] == kind as u8
        };
        for (id, o) in &self.opens {
            if !here(id, StateKind::Open) {
                return Err(format!("open {id:02x?} does not name shard {}", self.index));
            }
            if shard_index(&o.file, self.count) != self.index {
                return Err(format!("open {id:02x?}: its file belongs to another shard"));
            }
            if self.open_by_owner.get(&(o.owner.clone(), o.file)) != Some(id) {
                return Err(format!("open {id:02x?} not indexed by its owner and file"));
            }
            let listed = self
                .files
                .get(&o.file)
                .map_or(0, |f| f.opens.iter().filter(|x| *x == id).count());
            if listed != 1 {
                return Err(format!("open {id:02x?} listed {listed} times by its file"));
            }
            if o.access & SHARE_ACCESS_BOTH == 0
                || o.access & !SHARE_ACCESS_BOTH != 0
                || o.deny & !SHARE_ACCESS_BOTH != 0
            {
                return Err(format!(
                    "open {id:02x?}: access {:#x} deny {:#x}",
                    o.access, o.deny
                ));
            }
            for (i, l) in o.locks.iter().enumerate() {
                if o.locks[..i].contains(l) {
                    return Err(format!("open {id:02x?} lists lock state {l:02x?} twice"));
                }
                if self.lock_states.get(l).map(|ls| &ls.open) != Some(id) {
                    return Err(format!(
                        "open {id:02x?} lists lock state {l:02x?}, which is not under it"
                    ));
                }
            }
        }
        for ((owner, file), id) in &self.open_by_owner {
            match self.opens.get(id) {
                Some(o) if o.owner == *owner && o.file == *file => {}
                _ => return Err(format!("open index names {id:02x?}, not such an open")),
            }
        }
        for (id, l) in &self.lock_states {
            if !here(id, StateKind::Lock) {
                return Err(format!(
                    "lock state {id:02x?} does not name shard {}",
                    self.index
                ));
            }
            if self.lock_by_owner.get(&(l.owner.clone(), l.file)) != Some(id) {
                return Err(format!(
                    "lock state {id:02x?} not indexed by its owner and file"
                ));
            }
            match self.opens.get(&l.open) {
                Some(o)
                    if o.file == l.file
                        && o.owner.client == l.owner.client
                        && o.locks.contains(id) => {}
                _ => {
                    return Err(format!(
                        "lock state {id:02x?} points at open {:02x?}, which is not its \
                         client's open of its file listing it",
                        l.open
                    ));
                }
            }
        }
        for ((owner, file), id) in &self.lock_by_owner {
            match self.lock_states.get(id) {
                Some(l) if l.owner == *owner && l.file == *file => {}
                _ => return Err(format!("lock index names {id:02x?}, not such a lock state")),
            }
        }
        let mut listed_opens = 0;
        for (file, info) in &self.files {
            if shard_index(file, self.count) != self.index {
                return Err(format!("file {file:?} belongs to another shard"));
            }
            if info.opens.is_empty() && (info.delegs.is_empty() || !info.locks.is_empty()) {
                return Err(format!(
                    "file {file:?} kept without opens ({} locks, {} delegations)",
                    info.locks.len(),
                    info.delegs.len()
                ));
            }
            for id in &info.opens {
                if self.opens.get(id).map(|o| &o.file) != Some(file) {
                    return Err(format!("file {file:?} lists {id:02x?}, not its open"));
                }
            }
            listed_opens += info.opens.len();
            for h in &info.locks {
                match self.lock_states.get(&h.lock_state) {
                    Some(l) if l.file == *file && l.owner == h.owner => {}
                    _ => {
                        return Err(format!(
                            "file {file:?}: a lock held under {:02x?}, not a lock state of \
                             its owner on this file",
                            h.lock_state
                        ));
                    }
                }
                if h.range.start >= h.range.end {
                    return Err(format!("file {file:?}: empty lock range {:?}", h.range));
                }
            }
            let mut by_start: Vec<&HeldLock> = info.locks.iter().collect();
            by_start.sort_by_key(|h| h.range.start);
            for (i, a) in by_start.iter().enumerate() {
                for b in by_start[i + 1..]
                    .iter()
                    .take_while(|b| b.range.start < a.range.end)
                {
                    if a.owner == b.owner {
                        return Err(format!(
                            "file {file:?}: locks {:?} and {:?} of one owner overlap",
                            a.range, b.range
                        ));
                    }
                    if a.write || b.write {
                        return Err(format!(
                            "file {file:?}: conflicting locks {:?} ({:?}) and {:?} ({:?})",
                            a.range, a.owner, b.range, b.owner
                        ));
                    }
                }
            }
        }
        if listed_opens != self.opens.len() {
            return Err(format!(
                "{} opens, {listed_opens} listed by files",
                self.opens.len()
            ));
        }
        self.check_delegations()
    }
}

pub enum Locker<'a> {
    New { open: Stateid, owner: &'a [u8] },
    Existing(Stateid),
}

pub struct LockRequest<'a> {
    pub client: ClientId,
    pub file: &'a ObjHandle,
    pub locker: Locker<'a>,
    pub range: Range,
    pub write: bool,
}

/// Set (`Some(write)`) or clear (`None`) `range` for one owner, POSIX style: existing
/// locks of that owner are trimmed or split around the range, then the new one added.
fn apply_posix_lock(
    locks: &mut Vec<HeldLock>,
    lock_state: [u8; 12],
    owner: &Owner,
    range: Range,
    set: Option<bool>,
) {
    let mut kept = Vec::with_capacity(locks.len() + 1);
    for l in locks.drain(..) {
        if l.owner != *owner || !l.range.overlaps(&range) {
            kept.push(l);
            continue;
        }
        if l.range.start < range.start {
            kept.push(HeldLock {
                range: Range {
                    start: l.range.start,
                    end: range.start,
                },
                ..l.clone()
            });
        }
        if l.range.end > range.end {
            kept.push(HeldLock {
                range: Range {
                    start: range.end,
                    end: l.range.end,
                },
                ..l.clone()
            });
        }
    }
    if let Some(write) = set {
        kept.push(HeldLock {
            lock_state,
            owner: owner.clone(),
            write,
            range,
        });
    }
    *locks = kept;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fh(n: u8) -> ObjHandle {
        ObjHandle::new(&[n; 8]).unwrap()
    }
    fn owner(c: u64, o: &str) -> Owner {
        Owner {
            client: c,
            owner: o.as_bytes().to_vec(),
        }
    }

    #[test]
    fn share_reservations() {
        let t = FileStateTable::new(1, 4);
        let a = t
            .open(owner(1, "a"), fh(1), SHARE_ACCESS_READ, SHARE_ACCESS_WRITE)
            .unwrap();
        assert_eq!(
            t.open(owner(2, "b"), fh(1), SHARE_ACCESS_WRITE, 0),
            Err(status::NFS4ERR_SHARE_DENIED)
        );
        assert!(t.open(owner(2, "b"), fh(1), SHARE_ACCESS_READ, 0).is_ok());
        assert_eq!(
            t.open(owner(3, "c"), fh(1), SHARE_ACCESS_READ, SHARE_ACCESS_READ),
            Err(status::NFS4ERR_SHARE_DENIED)
        );
        // Same owner again: upgrade, seqid 2.
        let a2 = t.open(owner(1, "a"), fh(1), SHARE_ACCESS_BOTH, 0).unwrap();
        assert_eq!((a2.other, a2.seqid), (a.other, 2));
        assert_eq!(
            t.check_io(&a, Some(1), &fh(1), IoKind::Read),
            Err(status::NFS4ERR_OLD_STATEID)
        );
        assert_eq!(t.check_io(&a2, Some(1), &fh(1), IoKind::Write), Ok(()));
        assert_eq!(
            t.check_io(&a2, Some(2), &fh(1), IoKind::Write),
            Err(status::NFS4ERR_BAD_STATEID)
        );
        assert_eq!(
            t.check_io(&a2, Some(1), &fh(2), IoKind::Write),
            Err(status::NFS4ERR_BAD_STATEID)
        );
        // Anonymous writes are refused while someone denies writes.
        assert_eq!(
            t.check_io(&Stateid::ANONYMOUS, None, &fh(1), IoKind::Write),
            Err(status::NFS4ERR_LOCKED)
        );
        let d = t
            .open_downgrade(&a2, 1, &fh(1), SHARE_ACCESS_READ, 0)
            .unwrap();
        assert_eq!(d.seqid, 3);
        assert_eq!(
            t.open_downgrade(&d, 1, &fh(1), SHARE_ACCESS_BOTH, 0),
            Err(status::NFS4ERR_INVAL)
        );
        assert_eq!(t.close(&d, 1, &fh(1)), Ok(()));
        assert_eq!(t.close(&d, 1, &fh(1)), Err(status::NFS4ERR_BAD_STATEID));
        assert_eq!(t.remove_client(2), 1);
        assert_eq!(t.counts(), (0, 0));
    }

    #[test]
    fn byte_range_locks() {
        let t = FileStateTable::new(1, 4);
        let o1 = t.open(owner(1, "o1"), fh(1), SHARE_ACCESS_BOTH, 0).unwrap();
        let o2 = t.open(owner(2, "o2"), fh(1), SHARE_ACCESS_BOTH, 0).unwrap();
        let f = fh(1);
        let req = |client, locker, start, len, write| LockRequest {
            client,
            file: &f,
            locker,
            range: Range::from_nfs(start, len).unwrap(),
            write,
        };
        let l1 = t
            .lock(req(
                1,
                Locker::New {
                    open: o1,
                    owner: b"lo1",
                },
                0,
                100,
                true,
            ))
            .unwrap()
            .unwrap();
        let denied = t
            .lock(req(
                2,
                Locker::New {
                    open: o2,
                    owner: b"lo2",
                },
                50,
                10,
                false,
            ))
            .unwrap()
            .unwrap_err();
        assert_eq!(denied.range, Range { start: 0, end: 100 });
        assert_eq!(denied.owner, owner(1, "lo1"));
        // Unlock the middle: the holder keeps [0,50) and [60,100); [50,60) is free.
        let l1 = t
            .unlock(&l1, 1, &f, Range::from_nfs(50, 10).unwrap())
            .unwrap();
        assert!(
            t.test_lock(&f, &owner(2, "lo2"), Range::from_nfs(50, 10).unwrap(), true)
                .is_none()
        );
        assert!(
            t.test_lock(
                &f,
                &owner(2, "lo2"),
                Range::from_nfs(40, 20).unwrap(),
                false
            )
            .is_some()
        );
        assert_eq!(t.close(&o1, 1, &f), Err(status::NFS4ERR_LOCKS_HELD));
        assert_eq!(t.free(&l1, 1), Err(status::NFS4ERR_LOCKS_HELD));
        let l1 = t
            .unlock(&l1, 1, &f, Range::from_nfs(0, u64::MAX).unwrap())
            .unwrap();
        assert_eq!(t.test(&l1, 1), status::NFS4_OK);
        assert_eq!(t.free(&l1, 1), Ok(()));
        assert_eq!(t.test(&l1, 1), status::NFS4ERR_BAD_STATEID);
        assert_eq!(t.close(&o1, 1, &f), Ok(()));
        assert_eq!(Range::from_nfs(1, 0), Err(status::NFS4ERR_INVAL));
        assert_eq!(Range::from_nfs(u64::MAX - 1, 5), Err(status::NFS4ERR_INVAL));
    }

    #[test]
    fn stateid_counter_wrap_skips_ids_in_use() {
        let t = FileStateTable::new(1, 1);
        let a = t.open(owner(1, "a"), fh(1), SHARE_ACCESS_READ, 0).unwrap();
        // The 32-bit counter comes round to an id that is still in use.
        t.counter.store(1, Ordering::Relaxed);
        let b = t.open(owner(2, "b"), fh(1), SHARE_ACCESS_READ, 0).unwrap();
        assert_ne!(a.other, b.other);
        assert_eq!(t.counts(), (2, 0));
        t.check_invariants().unwrap();
        t.counter.store(2, Ordering::Relaxed);
        let f = fh(1);
        let lock = |open, o: &'static [u8]| {
            t.lock(LockRequest {
                client: 1,
                file: &f,
                locker: Locker::New { open, owner: o },
                range: Range::from_nfs(0, 1).unwrap(),
                write: false,
            })
            .unwrap()
            .unwrap()
        };
        let l1 = lock(a, b"l1");
        t.counter.store(
            l1.other[8..].iter().fold(0, |n, b| n << 8 | *b as u32),
            Ordering::Relaxed,
        );
        let l2 = lock(a, b"l2");
        assert_ne!(l1.other, l2.other);
        assert_eq!(t.counts(), (2, 2));
        t.check_invariants().unwrap();
    }
}
