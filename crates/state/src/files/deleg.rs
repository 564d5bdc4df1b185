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
use ringnfs_proto::nfs4::consts::{NfsStatus, status};

use super::{FileStateShard, FileStateTable, SHARE_ACCESS_WRITE, shard_index};
use crate::ids::ClientId;
use crate::stateid::{StateKind, Stateid};

/// One delegation.
#[derive(Debug)]
pub(super) struct DelegState {
    pub(super) client: ClientId,
    pub(super) file: ObjHandle,
    pub(super) write: bool,
    pub(super) seqid: u32,
    /// When the server asked for it back (CB_RECALL), if it did.
    pub(super) recalled: Option<Instant>,
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

impl FileStateTable {
    /// A delegation of `file` for `client` (a write delegation if `write`), if the open
    /// state allows one: no other client has the file open for writing (for any
    /// access, for a write delegation), no other client holds a write delegation (any
    /// delegation, for a write delegation), and none of the file's delegations is being
    /// recalled. A client that holds one already gets it again (a read delegation is not
    /// upgraded).
    pub fn delegate(&self, client: ClientId, file: ObjHandle, write: bool) -> Option<Stateid> {
        let idx = self.shard_index(&file);
        let mut guard = self.shards[idx].lock();
        let sh = &mut *guard;
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
                mine = Some((*id, d));
            } else if d.write || write {
                return None;
            }
        }
        if others_open & SHARE_ACCESS_WRITE != 0 || (write && others_open != 0) {
            return None;
        }
        if let Some((other, d)) = mine {
            return (d.write || !write).then_some(Stateid {
                seqid: d.seqid,
                other,
            });
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
            },
        );
        sh.files.entry(file).or_default().delegs.push(other);
        self.delegations.fetch_add(1, Ordering::Relaxed);
        Some(Stateid { seqid: 1, other })
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
        r
    }

    /// DELEGRETURN of `client`'s delegation `sid` on `file`.
    pub fn delegreturn(
        &self,
        sid: &Stateid,
        client: ClientId,
        file: &ObjHandle,
    ) -> Result<(), NfsStatus> {
        let mut guard = self.shard_of(sid)?.lock();
        let sh = &mut *guard;
        let d = sh
            .delegs
            .get(&sid.other)
            .ok_or(status::NFS4ERR_BAD_STATEID)?;
        if d.client != client || d.file != *file {
            return Err(status::NFS4ERR_BAD_STATEID);
        }
        Self::check_seqid(sid.seqid, d.seqid)?;
        self.drop_delegation(sh, &sid.other);
        Ok(())
    }

    /// Forget delegation `id` (returned or revoked), and its file once nothing is left
    /// of it.
    fn drop_delegation(&self, sh: &mut FileStateShard, id: &[u8; 12]) -> Option<DelegState> {
        let d = sh.delegs.remove(id)?;
        self.delegations.fetch_sub(1, Ordering::Relaxed);
        if let Some(info) = sh.files.get_mut(&d.file) {
            info.delegs.retain(|x| x != id);
        }
        Self::forget_file_if_idle(sh, &d.file, None);
        Some(d)
    }

    /// Revoke the delegations recalled more than `lease` before `now` and still held
    /// (RFC 8881 §10.2: a holder that does not return a recalled delegation within a
    /// lease loses it); returns them.
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
                revoked.push((
                    d.client,
                    Stateid {
                        seqid: d.seqid,
                        other: id,
                    },
                ));
            }
        }
        revoked
    }

    /// Delegations held, in all.
    pub fn delegation_count(&self) -> usize {
        self.delegations.load(Ordering::Relaxed)
    }
}

impl FileStateShard {
    /// - a delegation's stateid names this boot, this shard and its kind, and its file
    ///   hashes here and lists it once; a file lists only its own delegations;
    /// - a file's write delegation is its only delegation.
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
    use super::super::{Owner, SHARE_ACCESS_READ};
    use super::*;

    fn h(i: u8) -> ObjHandle {
        ObjHandle::new(&[i; 8]).unwrap()
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
        let r1 = t.delegate(1, f, false).expect("a read delegation");
        let r2 = t.delegate(2, f, false).expect("read delegations share");
        assert_ne!(r1, r2);
        assert_eq!(
            t.delegate(1, f, false),
            Some(r1),
            "held already: the same one"
        );
        assert_eq!(t.delegate(3, f, true), None, "others hold read delegations");
        assert_eq!(
            t.delegate(1, f, true),
            None,
            "no upgrade of a read delegation"
        );
        // Another client's open for writing forbids a new one.
        let g = h(2);
        t.open(owner(5), g, SHARE_ACCESS_WRITE, 0).unwrap();
        assert_eq!(t.delegate(1, g, false), None);
        assert!(t.delegate(5, g, true).is_some(), "its own open does not");
        // A read open of another client forbids a write delegation only.
        let k = h(3);
        t.open(owner(6), k, SHARE_ACCESS_READ, 0).unwrap();
        assert_eq!(t.delegate(1, k, true), None);
        assert!(t.delegate(1, k, false).is_some());
        assert_eq!(t.delegation_count(), 4);
        t.check_invariants().unwrap();
    }

    #[test]
    fn conflicts_are_recalled_once_then_returned_or_revoked() {
        let t = FileStateTable::new(7, 4);
        let f = h(1);
        let now = Instant::now();
        let r1 = t.delegate(1, f, false).unwrap();
        let r2 = t.delegate(2, f, false).unwrap();
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
        assert_eq!(t.delegate(4, f, false), None);
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
        assert_eq!(t.revoke_overdue(now + lease * 2, lease), vec![(1, r1)]);
        assert_eq!(t.delegation_count(), 0);
        t.check_invariants().unwrap();
    }

    #[test]
    fn a_write_delegation_is_alone_and_a_client_takes_its_delegations_along() {
        let t = FileStateTable::new(7, 4);
        let f = h(1);
        let w = t.delegate(1, f, true).expect("a write delegation");
        assert_eq!(
            t.delegate(2, f, false),
            None,
            "not beside a write delegation"
        );
        // A read by another client conflicts with a write delegation.
        let r = t.recalls_for(&f, Some(2), false, Instant::now());
        assert_eq!(r.send, vec![(1, w)]);
        // The holder's own state goes with it (lease expiry, DESTROY_CLIENTID).
        t.delegate(1, h(2), false).unwrap();
        t.remove_client(1);
        assert_eq!(t.delegation_count(), 0);
        t.check_invariants().unwrap();
        // The file is forgotten once nothing is left on it.
        assert!(t.delegate(2, f, true).is_some());
    }

    /// A delegation's stateid is good for I/O by its holder (reading under a read
    /// delegation, both under a write one), answers TEST_STATEID, and is not freed while
    /// held.
    #[test]
    fn a_delegation_stateid_is_a_stateid_of_its_holder() {
        use super::super::IoKind;
        let t = FileStateTable::new(7, 4);
        let (f, g) = (h(1), h(2));
        let r = t.delegate(1, f, false).unwrap();
        let w = t.delegate(1, g, true).unwrap();
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
