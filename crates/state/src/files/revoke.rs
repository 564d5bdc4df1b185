//! Administrative revocation (RFC 8881 §8.5): the opens, locks and delegations of files
//! the server stopped serving (an export removed) are taken away. Each stateid answers
//! NFS4ERR_ADMIN_REVOKED to its client until the client frees it (FREE_STATEID), and
//! meanwhile every SEQUENCE of the client carries SEQ4_STATUS_ADMIN_STATE_REVOKED (the
//! client then finds which with TEST_STATEID).

use std::sync::atomic::Ordering;

use ringnfs_fs::ObjHandle;

use super::{FileStateShard, FileStateTable};
use crate::ids::ClientId;

/// A revoked stateid, kept until its client frees it.
#[derive(Debug)]
pub(super) struct AdminRevoked {
    pub(super) client: ClientId,
    pub(super) file: ObjHandle,
}

impl FileStateTable {
    /// Revoke all state of the files `gone` says the server no longer serves; the
    /// number of stateids revoked.
    pub fn revoke_files(&self, gone: impl Fn(&ObjHandle) -> bool) -> usize {
        let mut revoked = 0;
        for shard in self.shards.iter() {
            // `gone` may ask a backend (syscalls): not under the shard's lock.
            let candidates: Vec<ObjHandle> = shard.lock().files.keys().copied().collect();
            let files: Vec<ObjHandle> = candidates.into_iter().filter(|f| gone(f)).collect();
            if files.is_empty() {
                continue;
            }
            let mut guard = shard.lock();
            let sh = &mut *guard;
            for file in files {
                for (client, n) in self.revoke_file(sh, &file) {
                    revoked += n as usize;
                    self.book.admin_revoked(client, n);
                }
            }
        }
        revoked
    }

    /// Move every stateid of `file` to the revoked ones; how many per client.
    fn revoke_file(&self, sh: &mut FileStateShard, file: &ObjHandle) -> Vec<(ClientId, u32)> {
        let Some(info) = sh.files.remove(file) else {
            return Vec::new();
        };
        let mut ids: Vec<([u8; 12], ClientId)> = Vec::new();
        for o in &info.opens {
            if let Some(open) = sh.opens.remove(o) {
                sh.open_by_owner.remove(&(open.owner.clone(), open.file));
                for l in &open.locks {
                    if let Some(ls) = sh.lock_states.remove(l) {
                        sh.lock_by_owner.remove(&(ls.owner.clone(), ls.file));
                        ids.push((*l, ls.owner.client));
                    }
                }
                ids.push((*o, open.owner.client));
            }
        }
        for d in &info.delegs {
            if let Some(del) = sh.delegs.remove(d) {
                self.delegations.fetch_sub(1, Ordering::Relaxed);
                if del.write {
                    self.write_delegations.fetch_sub(1, Ordering::Relaxed);
                }
                self.book.release(del.client);
                ids.push((*d, del.client));
            }
        }
        // A delegation revoked earlier and not freed yet becomes an administrative one.
        let earlier: Vec<[u8; 12]> = sh
            .revoked
            .iter()
            .filter(|(_, r)| r.file == *file)
            .map(|(id, _)| *id)
            .collect();
        for id in earlier {
            if let Some(r) = sh.revoked.remove(&id) {
                self.book.revoked_freed(r.client);
                ids.push((id, r.client));
            }
        }
        let mut per_client: Vec<(ClientId, u32)> = Vec::new();
        for (id, client) in ids {
            sh.admin_revoked.insert(
                id,
                AdminRevoked {
                    client,
                    file: *file,
                },
            );
            match per_client.iter_mut().find(|(c, _)| *c == client) {
                Some((_, n)) => *n += 1,
                None => per_client.push((client, 1)),
            }
        }
        per_client
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use ringnfs_proto::nfs4::consts::seq4_status;

    #[test]
    fn revoked_state_answers_until_freed() {
        let t = FileStateTable::new(7, 4);
        let gone = ObjHandle::new(b"gone").unwrap();
        let kept = ObjHandle::new(b"kept").unwrap();
        let owner = |c| Owner {
            client: c,
            owner: b"o".to_vec(),
        };
        let open_gone = t.open(owner(1), gone, 3, 0).unwrap();
        let open_kept = t.open(owner(1), kept, 3, 0).unwrap();
        let other_client = t.open(owner(2), gone, 1, 0).unwrap();
        assert_eq!(t.revoke_files(|f| *f == gone), 2);
        t.check_invariants().unwrap();
        assert_eq!(t.test(&open_gone, 1), status::NFS4ERR_ADMIN_REVOKED);
        assert_eq!(t.test(&open_gone, 2), status::NFS4ERR_BAD_STATEID);
        assert_eq!(t.test(&open_kept, 1), status::NFS4_OK);
        assert_eq!(
            t.delegation_status_flags(1) & seq4_status::ADMIN_STATE_REVOKED,
            seq4_status::ADMIN_STATE_REVOKED
        );
        assert_eq!(
            t.check_io(&open_gone, Some(1), &gone, IoKind::Read),
            Err(status::NFS4ERR_ADMIN_REVOKED)
        );
        // The file is free for others now.
        t.open(owner(3), gone, 3, 3).unwrap();
        t.free(&open_gone, 1).unwrap();
        assert_eq!(t.delegation_status_flags(1), 0);
        assert_eq!(t.test(&open_gone, 1), status::NFS4ERR_BAD_STATEID);
        assert_ne!(t.delegation_status_flags(2), 0);
        t.free(
            &Stateid {
                seqid: 0,
                ..other_client
            },
            2,
        )
        .unwrap();
        assert_eq!(t.delegation_status_flags(2), 0);
        t.check_invariants().unwrap();
    }
}
