//! Share reservations and delegations in a cluster of nodes over one shared file
//! system: what this node has seen of the other nodes' claims on a file, and its own
//! claim there, kept in the file's shard. An OPEN checks the other nodes' claims under
//! the same shard lock the cluster's agent holds when it records a claim and reports
//! this node's state on the file for its ack, so an OPEN and a claim of another node
//! never miss each other: either the OPEN's open is in the ack, or the OPEN sees the
//! claim. The cluster itself (etcd, acks, recalls) is behind [`ClusterShares`].
//!
//! A single server attaches nothing: every check here is skipped.

use std::collections::BTreeMap;

use ringnfs_fs::ObjHandle;
use ringnfs_proto::nfs4::consts::{NfsStatus, status};
use ringnfs_service::Signal;

use super::{FileStateShard, FileStateTable, SHARE_ACCESS_READ, SHARE_ACCESS_WRITE};

/// The delegation a node holds or claims on a file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum DelegKind {
    #[default]
    None,
    Read,
    Write,
}

/// Access and deny bits, and a delegation: what a node claims on a file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShareBits {
    pub access: u32,
    pub deny: u32,
    pub deleg: DelegKind,
}

impl ShareBits {
    fn is_empty(&self) -> bool {
        self.deny == 0 && self.deleg == DelegKind::None
    }
}

/// What the cluster does for this node's opens and delegations (implemented over etcd
/// by the server). Neither call waits.
pub trait ClusterShares: Send + Sync {
    /// Claim `share` on `file` (added to this node's claim there). `done` (an OPEN with
    /// deny bits waits on it) succeeds once granted, is refused when another node's
    /// clients conflict, fails when it could not be decided (retry). The cluster calls
    /// [`FileStateTable::cluster_settled`] before it signals.
    fn claim(&self, file: &ObjHandle, share: ShareBits, done: Option<Signal>);
    /// Ask the nodes `holders` to recall their clients' delegations of `file`.
    fn ask_recall(&self, file: &ObjHandle, holders: &[u32]);
}

/// One file's claims, as this node knows them.
#[derive(Debug, Default)]
pub(super) struct FileClaims {
    /// Other nodes' claims seen (pending or granted), by node.
    remote: BTreeMap<u32, ShareBits>,
    /// This node's granted claim.
    granted: ShareBits,
    /// What this node is claiming now (at most one claim per file in flight).
    pending: Option<ShareBits>,
    /// The file's handle as its clients know it, for a recall another node asks for.
    fh: Vec<u8>,
    /// When this node's delegation claim was granted: kept a while without a
    /// delegation under it (see [`DELEG_CLAIM_LINGER`]).
    deleg_granted_at: Option<std::time::Instant>,
    /// Another node asked for this node's delegations of the file back.
    recall_asked: bool,
}

/// How long a granted delegation claim stays without a delegation under it: the OPEN
/// that started it got none (it does not wait), so the client's next OPEN of the file
/// may get one. Dropped at once when another node asks for a recall (its OPEN gets
/// NFS4ERR_DELAY once).
pub const DELEG_CLAIM_LINGER: std::time::Duration = std::time::Duration::from_secs(5);

impl FileClaims {
    fn idle(&self) -> bool {
        self.remote.is_empty() && self.granted.is_empty() && self.pending.is_none()
    }
}

/// Why an OPEN in a cluster cannot be granted yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenBlocked {
    /// Answer this status.
    Status(NfsStatus),
    /// Claim this share first (this node's claim in flight is recorded).
    Claim(ShareBits),
    /// These nodes' delegations must be recalled first: NFS4ERR_DELAY meanwhile.
    Recall(Vec<u32>),
}

impl From<NfsStatus> for OpenBlocked {
    fn from(s: NfsStatus) -> Self {
        OpenBlocked::Status(s)
    }
}

/// Whether a delegation `held` must give way to `other`'s access, deny or delegation.
pub fn deleg_conflicts(held: DelegKind, other: &ShareBits) -> bool {
    match held {
        DelegKind::None => false,
        DelegKind::Read => {
            other.access & SHARE_ACCESS_WRITE != 0
                || other.deny & SHARE_ACCESS_READ != 0
                || other.deleg == DelegKind::Write
        }
        DelegKind::Write => other.access != 0 || other.deny != 0 || other.deleg != DelegKind::None,
    }
}

/// The deny bits other nodes' claims on `file` hold (I/O under the anonymous stateid
/// honours them as it honours this node's opens' deny bits).
pub(super) fn remote_deny(sh: &FileStateShard, file: &ObjHandle) -> u32 {
    sh.claims
        .get(file)
        .map_or(0, |c| c.remote.values().fold(0, |d, r| d | r.deny))
}

/// The OPEN's check against other nodes' claims, and whether it needs a claim of its
/// own; under the file's shard lock.
pub(super) fn open_gate(
    sh: &mut FileStateShard,
    file: &ObjHandle,
    access: u32,
    deny: u32,
) -> Result<(), OpenBlocked> {
    let asked = ShareBits {
        access,
        deny,
        deleg: DelegKind::None,
    };
    if let Some(c) = sh.claims.get(file) {
        if c.remote
            .values()
            .any(|r| access & r.deny != 0 || deny & r.access != 0)
        {
            return Err(status::NFS4ERR_SHARE_DENIED.into());
        }
        let holders: Vec<u32> = c
            .remote
            .iter()
            .filter(|(_, r)| deleg_conflicts(r.deleg, &asked))
            .map(|(n, _)| *n)
            .collect();
        if !holders.is_empty() {
            return Err(OpenBlocked::Recall(holders));
        }
    }
    if deny == 0 {
        return Ok(());
    }
    let c = sh.claims.entry(*file).or_default();
    if deny & !c.granted.deny == 0 {
        return Ok(());
    }
    if c.pending.is_some() {
        // One claim per file at a time: this OPEN retries after it.
        return Err(status::NFS4ERR_DELAY.into());
    }
    c.pending = Some(asked);
    Err(OpenBlocked::Claim(asked))
}

/// The delegation's check against other nodes' claims, and whether this node's claim
/// covers it: Ok(None) it does, Ok(Some(share)) claim this first (no delegation this
/// time), Err(()) none may be given. Under the file's shard lock.
pub(super) fn deleg_gate(
    sh: &mut FileStateShard,
    file: &ObjHandle,
    write: bool,
    fh: &[u8],
) -> Result<Option<ShareBits>, ()> {
    let want = ShareBits {
        access: 0,
        deny: 0,
        deleg: if write {
            DelegKind::Write
        } else {
            DelegKind::Read
        },
    };
    let c = sh.claims.entry(*file).or_default();
    if c.remote
        .values()
        .any(|r| deleg_conflicts(want.deleg, r) || deleg_conflicts(r.deleg, &want))
    {
        return Err(());
    }
    if c.fh.is_empty() {
        c.fh = fh.to_vec();
    }
    if c.granted.deleg >= want.deleg {
        return Ok(None);
    }
    if c.pending.is_some() {
        return Err(());
    }
    c.pending = Some(want);
    Ok(Some(want))
}

impl FileStateShard {
    /// This node's own state on `file`: every open's access and deny, and the
    /// delegation its clients hold.
    fn held(&self, file: &ObjHandle) -> (ShareBits, u32) {
        let mut held = ShareBits::default();
        // The access of the opens that deny something (what a claim carries).
        let mut denying_access = 0;
        if let Some(info) = self.files.get(file) {
            for o in info.opens.iter().filter_map(|o| self.opens.get(o)) {
                held.access |= o.access;
                held.deny |= o.deny;
                if o.deny != 0 {
                    denying_access |= o.access;
                }
            }
            for d in info.delegs.iter().filter_map(|d| self.delegs.get(d)) {
                held.deleg = held.deleg.max(if d.write {
                    DelegKind::Write
                } else {
                    DelegKind::Read
                });
            }
        }
        (held, denying_access)
    }

    fn tidy_claims(&mut self, file: &ObjHandle) {
        if self.claims.get(file).is_some_and(FileClaims::idle) {
            self.claims.remove(file);
        }
    }
}

impl FileStateTable {
    /// Attach the cluster (at start, before serving): from then on OPENs and
    /// delegations are checked against the other nodes' claims.
    pub fn attach_cluster(&self, c: std::sync::Arc<dyn ClusterShares>) {
        let _ = self.cluster.set(c);
    }

    pub fn cluster(&self) -> Option<&std::sync::Arc<dyn ClusterShares>> {
        self.cluster.get()
    }

    /// Another node's claim on `file` is now `claim` (None: gone). Returns this node's
    /// state on the file (its opens and delegation) and its own claim in flight, read
    /// under the same lock (see the module's comment).
    pub fn cluster_remote_claim(
        &self,
        file: &ObjHandle,
        node: u32,
        claim: Option<ShareBits>,
    ) -> (ShareBits, Option<ShareBits>) {
        let mut sh = self.shards[self.shard_index(file)].lock();
        match claim {
            Some(c) => {
                sh.claims.entry(*file).or_default().remote.insert(node, c);
            }
            None => {
                if let Some(c) = sh.claims.get_mut(file) {
                    c.remote.remove(&node);
                }
                sh.tidy_claims(file);
            }
        }
        let pending = sh.claims.get(file).and_then(|c| c.pending);
        (sh.held(file).0, pending)
    }

    /// This node's claim in flight on `file` ended (`won`: granted): its claim now stands
    /// at `granted`.
    pub fn cluster_settled(&self, file: &ObjHandle, won: bool, granted: Option<ShareBits>) {
        let mut sh = self.shards[self.shard_index(file)].lock();
        let c = sh.claims.entry(*file).or_default();
        // Never more than this node held or asked: what the cluster reports comes from
        // its view of etcd, which may not show yet a shrink this node already made (and
        // an OPEN must not count bits as granted that the others no longer see).
        let asked = if won {
            c.pending.unwrap_or_default()
        } else {
            ShareBits::default()
        };
        let g = granted.unwrap_or_default();
        let granted = ShareBits {
            access: g.access & (c.granted.access | asked.access),
            deny: g.deny & (c.granted.deny | asked.deny),
            deleg: g.deleg.min(c.granted.deleg.max(asked.deleg)),
        };
        if granted.deleg > c.granted.deleg {
            c.deleg_granted_at = Some(std::time::Instant::now());
            c.recall_asked = false;
        }
        c.granted = granted;
        c.pending = None;
        sh.tidy_claims(file);
    }

    /// What this node's clients hold on `file` that needs a claim (deny bits with the
    /// access of the opens that deny, the delegation held). What OPENs count as granted
    /// shrinks to it here, before the cluster shrinks the claim in etcd, so no OPEN is
    /// admitted on a claim about to go.
    pub fn cluster_needed(&self, file: &ObjHandle) -> ShareBits {
        let mut sh = self.shards[self.shard_index(file)].lock();
        let (held, denying_access) = sh.held(file);
        let mut needed = ShareBits {
            access: denying_access,
            deny: held.deny,
            deleg: held.deleg,
        };
        if let Some(c) = sh.claims.get_mut(file) {
            let linger = !c.recall_asked
                && c.deleg_granted_at
                    .is_some_and(|t| t.elapsed() < DELEG_CLAIM_LINGER);
            if linger {
                needed.deleg = needed.deleg.max(c.granted.deleg);
            }
            if needed.deleg == DelegKind::None {
                c.recall_asked = false;
                c.deleg_granted_at = None;
            }
            c.granted.deny &= needed.deny;
            c.granted.deleg = c.granted.deleg.min(needed.deleg);
            c.granted.access = needed.access;
        }
        sh.tidy_claims(file);
        needed
    }

    /// Another node asked for this node's delegations of `file` back: its delegation
    /// claim goes as soon as they are returned (not kept to linger). The handle they were
    /// given under, for the recall.
    pub fn cluster_recall_asked(&self, file: &ObjHandle) -> Option<Vec<u8>> {
        let mut sh = self.shards[self.shard_index(file)].lock();
        let c = sh.claims.get_mut(file)?;
        c.recall_asked = true;
        Some(c.fh.clone()).filter(|f| !f.is_empty())
    }

    /// OPEN on a cluster node: like [`Self::open`], and checked against the other
    /// nodes' claims; an OPEN with deny bits this node's claim does not cover yet
    /// must claim them first.
    pub fn open_in_cluster(
        &self,
        owner: super::Owner,
        file: ObjHandle,
        access: u32,
        deny: u32,
    ) -> Result<ringnfs_proto::stateid::Stateid, OpenBlocked> {
        self.open_checked(owner, file, access, deny, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::Owner;

    fn h(n: u8) -> ObjHandle {
        ObjHandle::new(&[n; 8]).unwrap()
    }

    fn owner(c: u64) -> Owner {
        Owner {
            client: c,
            owner: b"o".to_vec(),
        }
    }

    fn deny(access: u32, deny: u32) -> ShareBits {
        ShareBits {
            access,
            deny,
            deleg: DelegKind::None,
        }
    }

    #[test]
    fn another_nodes_deny_refuses_and_its_delegation_is_recalled() {
        let t = FileStateTable::new(1, 4);
        let f = h(1);
        t.cluster_remote_claim(&f, 2, Some(deny(1, 2)));
        assert_eq!(
            t.open_in_cluster(owner(1), f, 2, 0),
            Err(OpenBlocked::Status(status::NFS4ERR_SHARE_DENIED))
        );
        assert!(
            t.open_in_cluster(owner(1), f, 1, 0).is_ok(),
            "reading is fine"
        );
        t.cluster_remote_claim(&f, 2, None);
        let g = h(2);
        let read = ShareBits {
            access: 0,
            deny: 0,
            deleg: DelegKind::Read,
        };
        t.cluster_remote_claim(&g, 3, Some(read));
        assert!(t.open_in_cluster(owner(1), g, 1, 0).is_ok());
        assert_eq!(
            t.open_in_cluster(owner(2), g, 2, 0),
            Err(OpenBlocked::Recall(vec![3]))
        );
    }

    #[test]
    fn a_deny_open_claims_once_and_then_is_covered() {
        let t = FileStateTable::new(1, 4);
        let f = h(1);
        assert_eq!(
            t.open_in_cluster(owner(1), f, 3, 2),
            Err(OpenBlocked::Claim(deny(3, 2)))
        );
        // A second one waits for the first claim.
        assert_eq!(
            t.open_in_cluster(owner(2), f, 1, 2),
            Err(OpenBlocked::Status(status::NFS4ERR_DELAY))
        );
        // Answering another node's claim meanwhile reports the claim in flight.
        let (held, pending) = t.cluster_remote_claim(&f, 2, Some(deny(1, 0)));
        assert_eq!((held, pending), (ShareBits::default(), Some(deny(3, 2))));
        t.cluster_remote_claim(&f, 2, None);
        t.cluster_settled(&f, true, Some(deny(3, 2)));
        let sid = t.open_in_cluster(owner(1), f, 3, 2).expect("covered now");
        // Plain opens pass; the claim is what the open still needs.
        assert!(t.open_in_cluster(owner(2), f, 1, 0).is_ok());
        assert_eq!(t.cluster_needed(&f), deny(3, 2));
        t.close(&sid, 1, &f).unwrap();
        assert_eq!(t.cluster_needed(&f), deny(0, 0));
        // The grant shrank with it: a new deny open claims again.
        assert!(matches!(
            t.open_in_cluster(owner(1), f, 1, 2),
            Err(OpenBlocked::Claim(_))
        ));
    }

    #[test]
    fn a_refusal_from_a_stale_view_grants_nothing() {
        let t = FileStateTable::new(1, 4);
        let f = h(2);
        assert!(matches!(
            t.open_in_cluster(owner(1), f, 1, 1),
            Err(OpenBlocked::Claim(_))
        ));
        // Refused, and the view still showed an older claim of this node denying both.
        t.cluster_settled(&f, false, Some(deny(3, 3)));
        assert!(matches!(
            t.open_in_cluster(owner(1), f, 1, 1),
            Err(OpenBlocked::Claim(_))
        ));
    }

    #[test]
    fn anonymous_io_honours_another_nodes_deny() {
        let t = FileStateTable::new(1, 4);
        let f = h(3);
        t.cluster_remote_claim(&f, 2, Some(deny(1, 2)));
        let anon = crate::stateid::Stateid::ANONYMOUS;
        assert_eq!(
            t.check_io(&anon, None, &f, crate::files::IoKind::Write),
            Err(status::NFS4ERR_LOCKED)
        );
        assert_eq!(
            t.check_io(&anon, None, &f, crate::files::IoKind::Read),
            Ok(())
        );
    }

    #[test]
    fn the_ack_sees_an_open_made_before_it() {
        let t = FileStateTable::new(1, 4);
        let f = h(1);
        t.open_in_cluster(owner(1), f, 2, 0).unwrap();
        let (held, _) = t.cluster_remote_claim(&f, 2, Some(deny(1, 2)));
        assert_eq!(held.access, 2);
    }
}
