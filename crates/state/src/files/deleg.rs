//! Delegations (RFC 8881 §10.2–10.4): their state beside the file's opens and locks, in
//! the same shard. This is the state layer alone: the grant policy's part that the open
//! state decides, the conflicts an access has with other clients' delegations (each
//! marked as being recalled once, so the caller sends one CB_RECALL per delegation and
//! answers NFS4ERR_DELAY meanwhile), DELEGRETURN, and the recalls gone unanswered for a
//! lease (revoked). The engine grants them on OPEN (`ops/open.rs`) and sends the
//! recalls (`recall.rs`).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ringnfs_fs::ObjHandle;
use ringnfs_proto::nfs4::consts::{NfsStatus, seq4_status, status};

use super::ledger::DelegStats;
use super::{FileStateShard, FileStateTable, SHARE_ACCESS_WRITE, shard_index};
use crate::ids::ClientId;
use crate::stateid::{StateKind, Stateid};

/// After a file's delegation is recalled, no new delegation of it for this long: a file
/// that other clients change is not worth delegating again at once (knfsd keeps such
/// files in a filter for 30–60 s).
pub const RECALL_COOLDOWN: Duration = Duration::from_secs(30);

/// One delegation.
#[derive(Debug)]
pub(super) struct DelegState {
    pub(super) client: ClientId,
    pub(super) file: ObjHandle,
    pub(super) write: bool,
    pub(super) seqid: u32,
    /// When the server asked for it back (CB_RECALL), if it did.
    pub(super) recalled: Option<Instant>,
    /// A write delegation: the change attribute and size the file had when it was
    /// granted (what the holder's CB_GETATTR answers are compared with), and where the
    /// asking stands.
    pub(super) baseline: (u64, u64),
    pub(super) holder_attrs: HolderAttrs,
}

/// CB_GETATTR to a write delegation's holder (RFC 8881 §10.4.3): not asked, asked and
/// waiting for the answer, or answered (the answer serves the next GETATTR, once).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) enum HolderAttrs {
    #[default]
    Unasked,
    Asked,
    Answered {
        change: u64,
        size: u64,
    },
}

/// What a GETATTR (of the size, change or modify time) from another client finds of a
/// write delegation of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrConflict {
    /// No other client's write delegation: the server's attributes are the file's.
    None,
    /// Ask the holder (CB_GETATTR), and answer NFS4ERR_DELAY meanwhile.
    Ask { holder: ClientId, stateid: Stateid },
    /// Asked already, or the delegation is being recalled: NFS4ERR_DELAY.
    Wait,
    /// The holder answered: its size, and whether it changed the file since the grant
    /// (its change attribute or size differ from those of the grant), with the change
    /// attribute the file had then.
    Known {
        size: u64,
        modified: bool,
        baseline_change: u64,
    },
}

/// A revoked delegation, kept until its client frees it (FREE_STATEID): its stateid
/// answers NFS4ERR_DELEG_REVOKED meanwhile (RFC 8881 §8.2.4 and §10.2.1).
#[derive(Debug)]
pub(super) struct RevokedDeleg {
    pub(super) client: ClientId,
    pub(super) file: ObjHandle,
    pub(super) write: bool,
    pub(super) seqid: u32,
}

/// What an access found of other clients' delegations on its file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recalls {
    /// Delegations to recall now (holder, stateid): marked as being recalled by this
    /// call, so each is recalled once.
    pub send: Vec<(ClientId, Stateid)>,
    /// Some conflicting delegation is still held: the access waits (NFS4ERR_DELAY).
    pub wait: bool,
}

/// A delegation as the control plane shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationView {
    pub stateid: Stateid,
    pub file: ObjHandle,
    pub write: bool,
    /// How long ago it was recalled, if it was.
    pub recalled_for: Option<Duration>,
    /// Revoked, waiting for the client's FREE_STATEID.
    pub revoked: bool,
}

impl FileStateTable {
    /// A delegation of `file` for `client` (a write delegation if `write`), if the
    /// bounds and the open state allow one:
    /// - fewer than the total and per-client bounds are held, the client's callback
    ///   path is not known to be down, and none of its delegations was revoked lately;
    /// - no other client has the file open for writing (for any access, for a write
    ///   delegation), no other client holds a write delegation (any delegation, for a
    ///   write delegation), none of the file's delegations is being recalled and none
    ///   was recalled in the last [`RECALL_COOLDOWN`].
    ///
    /// A client that holds one already gets it again (a read delegation is not
    /// upgraded; a write delegation answers a wish for a read one). Returns the stateid
    /// and whether it is a write delegation.
    pub fn delegate(
        &self,
        client: ClientId,
        file: ObjHandle,
        write: bool,
        now: Instant,
    ) -> Option<(Stateid, bool)> {
        self.delegate_at(client, file, write, now, None)
    }

    /// [`Self::delegate`] on a cluster node: the delegation also needs this node's
    /// granted claim on the file (`claims.rs`). Without one, none is given this time and
    /// the claim to ask for is returned with `None` (a later OPEN may get one once it is
    /// granted). `fh` is the file's handle, kept for a recall another node asks for.
    pub fn delegate_in_cluster(
        &self,
        client: ClientId,
        file: ObjHandle,
        write: bool,
        now: Instant,
        fh: &[u8],
    ) -> (Option<(Stateid, bool)>, Option<super::ShareBits>) {
        let mut claim = None;
        let d = self.delegate_at(client, file, write, now, Some((fh, &mut claim)));
        (d, claim)
    }

    fn delegate_at(
        &self,
        client: ClientId,
        file: ObjHandle,
        write: bool,
        now: Instant,
        cluster: Option<(&[u8], &mut Option<super::ShareBits>)>,
    ) -> Option<(Stateid, bool)> {
        if self.delegation_count() >= self.book.limits.total {
            return None;
        }
        // The client's ledger entry is consulted last, under the file's shard (ranked
        // after it): an open the file's state refuses never takes the ledger's lock.
        let idx = self.shard_index(&file);
        let mut guard = self.shards[idx].lock();
        let sh = &mut *guard;
        if let Some(t) = sh.recent_recalls.get(&file) {
            if now.saturating_duration_since(*t) < RECALL_COOLDOWN {
                return None;
            }
            sh.recent_recalls.remove(&file);
        }
        let info = sh.files.get(&file);
        let others_open = info.map_or(0, |i| {
            i.opens
                .iter()
                .filter_map(|o| sh.opens.get(o))
                .filter(|o| o.owner.client != client)
                .fold(0, |acc, o| acc | o.access)
        });
        let mut mine = None;
        for id in info.map_or(&[][..], |i| &i.delegs[..]) {
            let d = &sh.delegs[id];
            if d.recalled.is_some() {
                return None;
            }
            if d.client == client {
                mine = Some((*id, d.seqid, d.write));
            } else if d.write || write {
                return None;
            }
        }
        if others_open & SHARE_ACCESS_WRITE != 0 || (write && others_open != 0) {
            return None;
        }
        if let Some((fh, claim)) = cluster {
            // Checked last, under the same lock: a claim is asked only for a delegation
            // this node would otherwise give.
            match super::claims::deleg_gate(sh, &file, write, fh) {
                Ok(None) => {}
                Ok(Some(c)) => {
                    *claim = Some(c);
                    return None;
                }
                Err(()) => return None,
            }
        }
        if let Some((other, seqid, held_write)) = mine {
            return ((held_write || !write) && self.book.admits(client, now))
                .then_some((Stateid { seqid, other }, held_write));
        }
        if !self.book.reserve(client, now) {
            return None;
        }
        let other = self.insert_new(
            &mut sh.delegs,
            idx,
            StateKind::Deleg,
            DelegState {
                client,
                file,
                write,
                seqid: 1,
                recalled: None,
                baseline: (0, 0),
                holder_attrs: HolderAttrs::Unasked,
            },
        );
        sh.files.entry(file).or_default().delegs.push(other);
        self.delegations.fetch_add(1, Ordering::Relaxed);
        if write {
            self.write_delegations.fetch_add(1, Ordering::Relaxed);
        }
        let c = &self.book.counters;
        if write {
            &c.granted_write
        } else {
            &c.granted_read
        }
        .fetch_add(1, Ordering::Relaxed);
        Some((Stateid { seqid: 1, other }, write))
    }

    /// The delegations an access to `file` by `client` (`None`: by no client, e.g. the
    /// server's own file system) conflicts with: a write conflicts with every other
    /// client's delegation, a read with other clients' write delegations.
    pub fn recalls_for(
        &self,
        file: &ObjHandle,
        client: Option<ClientId>,
        write: bool,
        now: Instant,
    ) -> Recalls {
        let mut guard = self.shards[self.shard_index(file)].lock();
        let sh = &mut *guard;
        let mut r = Recalls::default();
        let Some(info) = sh.files.get(file) else {
            return r;
        };
        for id in &info.delegs {
            let d = sh.delegs.get_mut(id).expect("a file lists its delegations");
            if Some(d.client) == client || !(write || d.write) {
                continue;
            }
            r.wait = true;
            if d.recalled.is_none() {
                d.recalled = Some(now);
                r.send.push((
                    d.client,
                    Stateid {
                        seqid: d.seqid,
                        other: *id,
                    },
                ));
            }
        }
        if !r.send.is_empty() {
            // Forget cooled-down files now and then, so the map stays small.
            if sh.recent_recalls.len() >= 1024 {
                sh.recent_recalls
                    .retain(|_, t| now.saturating_duration_since(*t) < RECALL_COOLDOWN);
            }
            sh.recent_recalls.insert(*file, now);
            self.book
                .counters
                .recalled
                .fetch_add(r.send.len() as u64, Ordering::Relaxed);
        }
        r
    }

    /// Record the change attribute and size of the file when write delegation `sid` was
    /// granted (the holder's CB_GETATTR answers are compared with them).
    pub fn set_write_baseline(&self, sid: &Stateid, change: u64, size: u64) {
        if let Ok(shard) = self.shard_of(sid)
            && let Some(d) = shard.lock().delegs.get_mut(&sid.other)
        {
            d.baseline = (change, size);
        }
    }

    /// A GETATTR of the size, change or modify time of `file` by `client` (`None`: no
    /// client): what another client's write delegation of it means for the answer (see
    /// [`AttrConflict`]). Asking is marked here, so one GETATTR asks and the others wait.
    pub fn getattr_conflict(&self, file: &ObjHandle, client: Option<ClientId>) -> AttrConflict {
        let mut guard = self.shards[self.shard_index(file)].lock();
        let sh = &mut *guard;
        let Some(info) = sh.files.get(file) else {
            return AttrConflict::None;
        };
        for id in &info.delegs {
            let d = sh.delegs.get_mut(id).expect("a file lists its delegations");
            if !d.write || Some(d.client) == client {
                continue;
            }
            if d.recalled.is_some() {
                return AttrConflict::Wait;
            }
            return match d.holder_attrs {
                HolderAttrs::Unasked => {
                    d.holder_attrs = HolderAttrs::Asked;
                    AttrConflict::Ask {
                        holder: d.client,
                        stateid: Stateid {
                            seqid: d.seqid,
                            other: *id,
                        },
                    }
                }
                HolderAttrs::Asked => AttrConflict::Wait,
                HolderAttrs::Answered { change, size } => {
                    d.holder_attrs = HolderAttrs::Unasked;
                    AttrConflict::Known {
                        size,
                        modified: (change, size) != d.baseline,
                        baseline_change: d.baseline.0,
                    }
                }
            };
        }
        AttrConflict::None
    }

    /// The holder of write delegation `sid` answered CB_GETATTR (`None`: it did not,
    /// or not usefully: the delegation is then recalled, and this says whether it was
    /// newly marked so, for the caller to send CB_RECALL).
    pub fn holder_attrs_answered(
        &self,
        sid: &Stateid,
        answer: Option<(u64, u64)>,
        now: Instant,
    ) -> bool {
        let Ok(shard) = self.shard_of(sid) else {
            return false;
        };
        let mut guard = shard.lock();
        let sh = &mut *guard;
        let Some(d) = sh.delegs.get_mut(&sid.other) else {
            return false;
        };
        match answer {
            Some((change, size)) => {
                if d.holder_attrs == HolderAttrs::Asked {
                    d.holder_attrs = HolderAttrs::Answered { change, size };
                }
                false
            }
            None if d.recalled.is_none() => {
                d.recalled = Some(now);
                let file = d.file;
                sh.recent_recalls.insert(file, now);
                self.book.counters.recalled.fetch_add(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// DELEGRETURN of `client`'s delegation `sid` on `file`. A revoked one answers
    /// NFS4ERR_DELEG_REVOKED and stays until FREE_STATEID.
    pub fn delegreturn(
        &self,
        sid: &Stateid,
        client: ClientId,
        file: &ObjHandle,
    ) -> Result<(), NfsStatus> {
        let mut guard = self.shard_of(sid)?.lock();
        let sh = &mut *guard;
        if let Some(answer) = sh.revoked_answer(&sid.other, Some(client), Some(file)) {
            return Err(answer);
        }
        let d = sh
            .delegs
            .get(&sid.other)
            .ok_or(status::NFS4ERR_BAD_STATEID)?;
        if d.client != client || d.file != *file {
            return Err(status::NFS4ERR_BAD_STATEID);
        }
        Self::check_seqid(sid.seqid, d.seqid)?;
        self.drop_delegation(sh, &sid.other);
        drop(guard);
        self.book.release(client);
        self.book.counters.returned.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Forget delegation `id` (returned or revoked), and its file once nothing is left
    /// of it. The caller settles the ledger.
    fn drop_delegation(&self, sh: &mut FileStateShard, id: &[u8; 12]) -> Option<DelegState> {
        let d = sh.delegs.remove(id)?;
        self.delegations.fetch_sub(1, Ordering::Relaxed);
        if d.write {
            self.write_delegations.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(info) = sh.files.get_mut(&d.file) {
            info.delegs.retain(|x| x != id);
        }
        Self::forget_file_if_idle(sh, &d.file, None);
        Some(d)
    }

    /// Revoke the delegations recalled more than `lease` before `now` and still held
    /// (RFC 8881 §10.2: a holder that does not return a recalled delegation within a
    /// lease loses it); returns them. Each stays as revoked state of its client until
    /// freed, and the client gets no new delegation for a lease.
    pub fn revoke_overdue(&self, now: Instant, lease: Duration) -> Vec<(ClientId, Stateid)> {
        let mut revoked = Vec::new();
        for shard in self.shards.iter() {
            let mut guard = shard.lock();
            let sh = &mut *guard;
            let overdue: Vec<[u8; 12]> = sh
                .delegs
                .iter()
                .filter(|(_, d)| d.recalled.is_some_and(|t| now.duration_since(t) > lease))
                .map(|(id, _)| *id)
                .collect();
            for id in overdue {
                let d = self.drop_delegation(sh, &id).expect("listed above");
                sh.revoked.insert(
                    id,
                    RevokedDeleg {
                        client: d.client,
                        file: d.file,
                        write: d.write,
                        seqid: d.seqid,
                    },
                );
                revoked.push((
                    d.client,
                    Stateid {
                        seqid: d.seqid,
                        other: id,
                    },
                ));
            }
        }
        for (client, _) in &revoked {
            self.book.revoked(*client, now + lease);
        }
        revoked
    }

    /// A callback to `client` failed (`up` false) or got through (`up` true): while its
    /// path is down, SEQUENCE says SEQ4_STATUS_CB_PATH_DOWN and it gets no new
    /// delegations.
    pub fn callback_path(&self, client: ClientId, up: bool) {
        // Up is the usual news: skip the ledger unless the path was down.
        if up && self.book.status_flags(client) & seq4_status::CB_PATH_DOWN == 0 {
            return;
        }
        self.book.set_path_down(client, !up);
    }

    /// SEQ4_STATUS flags of `client`'s delegations (revoked state, callback path down).
    pub fn delegation_status_flags(&self, client: ClientId) -> u32 {
        self.book.status_flags(client)
    }

    /// Delegations held, in all.
    pub fn delegation_count(&self) -> usize {
        self.delegations.load(Ordering::Relaxed)
    }

    /// Whether an access (`write`: one that changes the file) may conflict with any
    /// delegation at all: a cheap test before [`recalls_for`](Self::recalls_for).
    pub fn may_conflict(&self, write: bool) -> bool {
        let n = if write {
            &self.delegations
        } else {
            &self.write_delegations
        };
        n.load(Ordering::Relaxed) > 0
    }

    /// Delegations `client` holds.
    pub fn delegations_held_by(&self, client: ClientId) -> u32 {
        self.book.held_by(client)
    }

    /// Counters since start, and what is held now.
    pub fn delegation_stats(&self) -> DelegStats {
        let c = &self.book.counters;
        DelegStats {
            granted_read: c.granted_read.load(Ordering::Relaxed),
            granted_write: c.granted_write.load(Ordering::Relaxed),
            recalled: c.recalled.load(Ordering::Relaxed),
            returned: c.returned.load(Ordering::Relaxed),
            revoked: c.revoked.load(Ordering::Relaxed),
            current: self.delegation_count(),
            revoked_unfreed: self.book.revoked_unfreed(),
        }
    }

    /// `client`'s delegations, held and revoked (for the control plane; walks every
    /// shard).
    pub fn delegations_of(&self, client: ClientId, now: Instant) -> Vec<DelegationView> {
        let mut v = Vec::new();
        for shard in self.shards.iter() {
            let sh = shard.lock();
            for (id, d) in sh.delegs.iter().filter(|(_, d)| d.client == client) {
                v.push(DelegationView {
                    stateid: Stateid {
                        seqid: d.seqid,
                        other: *id,
                    },
                    file: d.file,
                    write: d.write,
                    recalled_for: d.recalled.map(|t| now.saturating_duration_since(t)),
                    revoked: false,
                });
            }
            for (id, r) in sh.revoked.iter().filter(|(_, r)| r.client == client) {
                v.push(DelegationView {
                    stateid: Stateid {
                        seqid: r.seqid,
                        other: *id,
                    },
                    file: r.file,
                    write: r.write,
                    recalled_for: None,
                    revoked: true,
                });
            }
        }
        v
    }
}

impl FileStateShard {
    /// What stateid `other` answers when it names a revoked delegation (None when it
    /// does not): NFS4ERR_DELEG_REVOKED to its holder (`client` None: whoever asks; with
    /// `file`, only for that file), NFS4ERR_BAD_STATEID to anyone else.
    pub(super) fn revoked_answer(
        &self,
        other: &[u8; 12],
        client: Option<ClientId>,
        file: Option<&ObjHandle>,
    ) -> Option<NfsStatus> {
        let (holder, answer) = match (self.revoked.get(other), self.admin_revoked.get(other)) {
            (Some(r), _) => ((r.client, r.file), status::NFS4ERR_DELEG_REVOKED),
            (None, Some(r)) => ((r.client, r.file), status::NFS4ERR_ADMIN_REVOKED),
            (None, None) => return None,
        };
        let holder = client.is_none_or(|c| c == holder.0) && file.is_none_or(|f| *f == holder.1);
        Some(if holder {
            answer
        } else {
            status::NFS4ERR_BAD_STATEID
        })
    }

    /// - a delegation's stateid names this boot, this shard and its kind, and its file
    ///   hashes here and lists it once; a file lists only its own delegations;
    /// - a file's write delegation is its only delegation;
    /// - a revoked delegation belongs here and is no longer held.
    pub(super) fn check_delegations(&self) -> Result<(), String> {
        for (id, d) in &self.delegs {
            let sid = Stateid {
                seqid: 0,
                other: *id,
            };
            if sid.boot() != self.boot
                || sid.shard() != self.index
                || id[6] != StateKind::Deleg as u8
            {
                return Err(format!(
                    "delegation {id:02x?} does not name shard {}",
                    self.index
                ));
            }
            if shard_index(&d.file, self.count) != self.index {
                return Err(format!(
                    "delegation {id:02x?}: its file belongs to another shard"
                ));
            }
            let listed = self
                .files
                .get(&d.file)
                .map_or(0, |f| f.delegs.iter().filter(|x| *x == id).count());
            if listed != 1 {
                return Err(format!(
                    "delegation {id:02x?} listed {listed} times by its file"
                ));
            }
        }
        for (id, r) in &self.revoked {
            let sid = Stateid {
                seqid: 0,
                other: *id,
            };
            if sid.shard() != self.index
                || id[6] != StateKind::Deleg as u8
                || shard_index(&r.file, self.count) != self.index
                || self.delegs.contains_key(id)
            {
                return Err(format!(
                    "revoked delegation {id:02x?} does not belong to shard {} or is held",
                    self.index
                ));
            }
        }
        for (file, info) in &self.files {
            for id in &info.delegs {
                if self.delegs.get(id).map(|d| &d.file) != Some(file) {
                    return Err(format!("file {file:?} lists {id:02x?}, not its delegation"));
                }
            }
            let writes = info
                .delegs
                .iter()
                .filter(|id| self.delegs[*id].write)
                .count();
            if writes > 0 && info.delegs.len() > 1 {
                return Err(format!(
                    "file {file:?}: a write delegation beside {} others",
                    info.delegs.len() - 1
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AttrConflict, DelegLimits, Owner, SHARE_ACCESS_READ};
    use super::*;

    fn h(i: u8) -> ObjHandle {
        ObjHandle::new(&[i; 8]).unwrap()
    }

    fn now() -> Instant {
        Instant::now()
    }

    fn owner(client: ClientId) -> Owner {
        Owner {
            client,
            owner: b"o".to_vec(),
        }
    }

    #[test]
    fn grants_follow_the_open_state_and_other_delegations() {
        let t = FileStateTable::new(7, 4);
        let f = h(1);
        // Read delegations for two clients; no write delegation beside them.
        let r1 = t.delegate(1, f, false, now()).expect("a read delegation").0;
        let r2 = t
            .delegate(2, f, false, now())
            .expect("read delegations share")
            .0;
        assert_ne!(r1, r2);
        assert_eq!(
            t.delegate(1, f, false, now()),
            Some((r1, false)),
            "held already: the same one"
        );
        assert_eq!(
            t.delegate(3, f, true, now()),
            None,
            "others hold read delegations"
        );
        assert_eq!(
            t.delegate(1, f, true, now()),
            None,
            "no upgrade of a read delegation"
        );
        // Another client's open for writing forbids a new one.
        let g = h(2);
        t.open(owner(5), g, SHARE_ACCESS_WRITE, 0).unwrap();
        assert_eq!(t.delegate(1, g, false, now()), None);
        assert!(
            t.delegate(5, g, true, now()).is_some(),
            "its own open does not"
        );
        // A read open of another client forbids a write delegation only.
        let k = h(3);
        t.open(owner(6), k, SHARE_ACCESS_READ, 0).unwrap();
        assert_eq!(t.delegate(1, k, true, now()), None);
        assert!(t.delegate(1, k, false, now()).is_some());
        assert_eq!(t.delegation_count(), 4);
        t.check_invariants().unwrap();
    }

    #[test]
    fn conflicts_are_recalled_once_then_returned_or_revoked() {
        let t = FileStateTable::new(7, 4);
        let f = h(1);
        let now = Instant::now();
        let r1 = t.delegate(1, f, false, now).unwrap().0;
        let r2 = t.delegate(2, f, false, now).unwrap().0;
        // Reads by anyone do not conflict with read delegations.
        assert_eq!(t.recalls_for(&f, Some(3), false, now), Recalls::default());
        // A write by client 1 recalls client 2's delegation, once.
        let r = t.recalls_for(&f, Some(1), true, now);
        assert_eq!((r.send, r.wait), (vec![(2, r2)], true));
        let again = t.recalls_for(&f, Some(1), true, now);
        assert_eq!(
            (again.send.len(), again.wait),
            (0, true),
            "recalled already: wait"
        );
        // While recalled, no new delegation of the file.
        assert_eq!(t.delegate(4, f, false, now), None);
        // Client 2 returns it; the write goes on.
        assert_eq!(t.delegreturn(&r2, 1, &f), Err(status::NFS4ERR_BAD_STATEID));
        t.delegreturn(&r2, 2, &f).unwrap();
        assert_eq!(t.recalls_for(&f, Some(1), true, now), Recalls::default());
        assert_eq!(t.delegreturn(&r2, 2, &f), Err(status::NFS4ERR_BAD_STATEID));
        // A write from outside any client recalls client 1's too; unanswered for a
        // lease, it is revoked.
        let r = t.recalls_for(&f, None, true, now);
        assert_eq!(r.send, vec![(1, r1)]);
        let lease = Duration::from_secs(90);
        assert!(t.revoke_overdue(now + lease / 2, lease).is_empty());
        let later = now + lease * 2;
        assert_eq!(t.revoke_overdue(later, lease), vec![(1, r1)]);
        assert_eq!(t.delegation_count(), 0);
        t.check_invariants().unwrap();
        // Revoked: its stateid says so until the client frees it, the client hears of
        // it in SEQUENCE, and gets no new delegation for a lease.
        assert_eq!(t.test(&r1, 1), status::NFS4ERR_DELEG_REVOKED);
        assert_eq!(t.test(&r1, 2), status::NFS4ERR_BAD_STATEID);
        assert_eq!(
            t.check_io(&r1, Some(1), &f, super::super::IoKind::Read),
            Err(status::NFS4ERR_DELEG_REVOKED)
        );
        assert_eq!(
            t.delegreturn(&r1, 1, &f),
            Err(status::NFS4ERR_DELEG_REVOKED)
        );
        assert_eq!(
            t.delegation_status_flags(1),
            seq4_status::RECALLABLE_STATE_REVOKED
        );
        assert_eq!(t.delegation_status_flags(2), 0);
        let g = h(9);
        assert_eq!(t.delegate(1, g, false, later), None, "refused for a lease");
        assert!(t.delegate(2, g, false, later).is_some(), "others are not");
        assert_eq!(t.free(&r1, 2), Err(status::NFS4ERR_BAD_STATEID));
        t.free(&r1, 1).unwrap();
        assert_eq!(t.delegation_status_flags(1), 0);
        assert_eq!(t.test(&r1, 1), status::NFS4ERR_BAD_STATEID);
        assert!(t.delegate(1, g, false, later + lease).is_some());
        let st = t.delegation_stats();
        assert_eq!(
            (
                st.granted_read,
                st.recalled,
                st.returned,
                st.revoked,
                st.current
            ),
            (4, 2, 1, 1, 2)
        );
        t.check_invariants().unwrap();
    }

    #[test]
    fn a_recalled_file_cools_down_and_bounds_hold() {
        let limits = DelegLimits {
            total: 3,
            per_client: 2,
        };
        let t = FileStateTable::with_limits(7, 4, limits);
        let now = Instant::now();
        let f = h(1);
        t.delegate(1, f, false, now).unwrap();
        t.recalls_for(&f, Some(2), true, now);
        t.delegreturn(&t.delegations_of(1, now)[0].stateid, 1, &f)
            .unwrap();
        assert_eq!(t.delegate(1, f, false, now), None, "recalled lately");
        assert!(t.delegate(1, f, false, now + RECALL_COOLDOWN).is_some());
        // Per client, then in all: past a bound, simply no new delegation.
        assert!(t.delegate(1, h(2), false, now).is_some());
        assert_eq!(t.delegate(1, h(3), false, now), None, "two for client 1");
        assert!(t.delegate(2, h(3), false, now).is_some());
        assert_eq!(t.delegate(3, h(4), false, now), None, "three in all");
        assert_eq!(t.delegations_held_by(1), 2);
        // A failed callback to client 2 (it holds one): no new ones until the path is
        // back. News of a client holding nothing (gone) flags nobody.
        t.callback_path(2, false);
        assert_eq!(t.delegation_status_flags(2), seq4_status::CB_PATH_DOWN);
        t.delegreturn(&t.delegations_of(2, now)[0].stateid, 2, &h(3))
            .unwrap();
        assert_eq!(t.delegate(2, h(4), false, now), None);
        t.callback_path(2, true);
        assert_eq!(t.delegation_status_flags(2), 0);
        assert!(t.delegate(2, h(4), false, now).is_some());
        t.callback_path(9, false);
        assert_eq!(t.delegation_status_flags(9), 0);
        t.check_invariants().unwrap();
    }

    #[test]
    fn a_write_delegation_is_alone_and_a_client_takes_its_delegations_along() {
        let t = FileStateTable::new(7, 4);
        let f = h(1);
        let w = t.delegate(1, f, true, now()).expect("a write delegation").0;
        assert_eq!(
            t.delegate(2, f, false, now()),
            None,
            "not beside a write delegation"
        );
        // A read by another client conflicts with a write delegation.
        assert_eq!(t.delegate(1, f, false, now()), Some((w, true)), "its own");
        let r = t.recalls_for(&f, Some(2), false, Instant::now());
        assert_eq!(r.send, vec![(1, w)]);
        // The holder's own state goes with it (lease expiry, DESTROY_CLIENTID).
        t.delegate(1, h(2), false, now()).unwrap();
        t.remove_client(1);
        assert_eq!(t.delegation_count(), 0);
        assert_eq!(t.delegations_held_by(1), 0);
        t.check_invariants().unwrap();
        // The file is forgotten once nothing is left on it (and it was recalled: a new
        // delegation waits out the cool-down).
        assert!(t.delegate(2, f, true, now() + RECALL_COOLDOWN).is_some());
    }

    /// GETATTR by another client against a write delegation: one asks, others wait, the
    /// answer serves once; an unanswered ask recalls.
    #[test]
    fn getattr_asks_a_write_delegations_holder_once() {
        let t = FileStateTable::new(7, 4);
        let (f, g) = (h(1), h(2));
        let w = t.delegate(1, f, true, now()).unwrap().0;
        t.set_write_baseline(&w, 5, 10);
        assert_eq!(
            t.getattr_conflict(&f, Some(1)),
            AttrConflict::None,
            "its holder"
        );
        assert_eq!(
            t.getattr_conflict(&f, Some(2)),
            AttrConflict::Ask {
                holder: 1,
                stateid: w
            }
        );
        assert_eq!(t.getattr_conflict(&f, Some(3)), AttrConflict::Wait);
        assert!(!t.holder_attrs_answered(&w, Some((5, 10)), now()));
        assert_eq!(
            t.getattr_conflict(&f, Some(2)),
            AttrConflict::Known {
                size: 10,
                modified: false,
                baseline_change: 5
            }
        );
        assert!(matches!(
            t.getattr_conflict(&f, Some(2)),
            AttrConflict::Ask { .. }
        ));
        assert!(!t.holder_attrs_answered(&w, Some((6, 99)), now()));
        assert_eq!(
            t.getattr_conflict(&f, None),
            AttrConflict::Known {
                size: 99,
                modified: true,
                baseline_change: 5
            }
        );
        // No answer: recalled (once), and GETATTRs wait for the return.
        assert!(matches!(
            t.getattr_conflict(&f, Some(2)),
            AttrConflict::Ask { .. }
        ));
        assert!(t.holder_attrs_answered(&w, None, now()));
        assert!(!t.holder_attrs_answered(&w, None, now()));
        assert_eq!(t.getattr_conflict(&f, Some(2)), AttrConflict::Wait);
        // Read delegations have nothing to ask.
        t.delegate(1, g, false, now()).unwrap();
        assert_eq!(t.getattr_conflict(&g, Some(2)), AttrConflict::None);
        t.check_invariants().unwrap();
    }

    /// A delegation's stateid is good for I/O by its holder (reading under a read
    /// delegation, both under a write one), answers TEST_STATEID, and is not freed while
    /// held.
    #[test]
    fn a_delegation_stateid_is_a_stateid_of_its_holder() {
        use super::super::IoKind;
        let t = FileStateTable::new(7, 4);
        let (f, g) = (h(1), h(2));
        let r = t.delegate(1, f, false, now()).unwrap().0;
        let w = t.delegate(1, g, true, now()).unwrap().0;
        assert_eq!(t.check_io(&r, Some(1), &f, IoKind::Read), Ok(()));
        assert_eq!(
            t.check_io(&r, Some(1), &f, IoKind::Write),
            Err(status::NFS4ERR_OPENMODE)
        );
        assert_eq!(t.check_io(&w, Some(1), &g, IoKind::Write), Ok(()));
        assert_eq!(
            t.check_io(&r, Some(2), &f, IoKind::Read),
            Err(status::NFS4ERR_BAD_STATEID)
        );
        assert_eq!(t.test(&r, 1), status::NFS4_OK);
        assert_eq!(t.test(&r, 2), status::NFS4ERR_BAD_STATEID);
        assert_eq!(t.free(&r, 1), Err(status::NFS4ERR_LOCKS_HELD));
        t.delegreturn(&r, 1, &f).unwrap();
        assert_eq!(t.test(&r, 1), status::NFS4ERR_BAD_STATEID);
    }
}
