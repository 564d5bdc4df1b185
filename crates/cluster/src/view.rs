//! A node's copy of what the cluster keeps in etcd (kept current by a watch), and the
//! recovery decisions made from it. Pure: no I/O here, so every rule is unit-tested.
//!
//! The rules (after nfs-ganesha's `rados_cluster` recovery backend):
//! - Grace is cluster-wide and has an epoch. It starts when a node that holds client
//!   records fails (its membership key expires) or starts again; that node's clients
//!   are the ones that may reclaim, on any node. While it is in force, every node
//!   refuses new state (NFS4ERR_GRACE).
//! - A client is "pending" in epoch E while its record is on a reclaiming node and older
//!   than E, or was moved to the node it reclaims on in E and it has not sent
//!   RECLAIM_COMPLETE. Grace ends when no client is pending, or at its deadline.
//! - At the end, records of reclaiming nodes older than the epoch are removed (those
//!   clients did not come back: their state is gone), and moved records that never saw
//!   RECLAIM_COMPLETE are marked done (the client keeps what it reclaimed).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::claims::{AckValue, ClaimValue};
use crate::keys::{Key, Keys};

/// `grace`: the current epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraceRecord {
    pub epoch: u64,
    pub active: bool,
    /// The nodes whose clients reclaim in this epoch.
    pub reclaiming: BTreeSet<u32>,
    /// Unix time, ms.
    pub started_ms: u64,
    pub deadline_ms: u64,
}

/// `records/<node>/<owner>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordValue {
    /// The grace epoch current when it was written.
    pub epoch: u64,
    /// The client has nothing (more) to reclaim.
    pub done: bool,
}

/// `nodes/<id>`: a live node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub addrs: Vec<String>,
    pub host: String,
    pub pid: u32,
    pub started_ms: u64,
}

/// One client record as the view holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub value: RecordValue,
    pub mod_revision: i64,
}

/// The cluster as this node last saw it.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub grace: GraceRecord,
    /// The `grace` key's last change (0: no such key yet), for compare-and-swap.
    pub grace_revision: i64,
    pub nodes: BTreeMap<u32, NodeInfo>,
    /// (node, owner) → record.
    pub records: BTreeMap<(u32, Vec<u8>), Record>,
    /// Shared documents by name (`config/<name>`).
    pub config: BTreeMap<String, Vec<u8>>,
    /// (file, node) → that node's claim on the file, and the revision it was written at
    /// (acks name it).
    pub claims: BTreeMap<(Vec<u8>, u32), (ClaimValue, i64)>,
    /// (file, claimer, acker) → answer.
    pub acks: BTreeMap<(Vec<u8>, u32, u32), AckValue>,
    /// (file, holder): recalls asked of `holder`.
    pub recalls: BTreeSet<(Vec<u8>, u32)>,
}

/// What ending a grace period leaves to do ([`View::end_of_grace`]), as (node, owner)
/// pairs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EndOfGrace {
    /// Records to remove: clients of reclaiming nodes that did not come back.
    pub gone: Vec<(u32, Vec<u8>)>,
    /// Records to mark done: clients that reclaimed but never sent RECLAIM_COMPLETE.
    pub finish: Vec<(u32, Vec<u8>)>,
}

/// A change to apply to the view.
pub enum Change<'a> {
    Put {
        key: &'a [u8],
        value: &'a [u8],
        mod_revision: i64,
    },
    Delete {
        key: &'a [u8],
    },
}

impl View {
    /// Apply one put or delete under the cluster's root. A value this version cannot
    /// read is logged and left out (a node must not stop over one bad key).
    pub fn apply(&mut self, keys: &Keys, change: Change<'_>) {
        let (key, put) = match change {
            Change::Put {
                key,
                value,
                mod_revision,
            } => (key, Some((value, mod_revision))),
            Change::Delete { key } => (key, None),
        };
        let Some(k) = keys.parse(key) else { return };
        match (k, put) {
            // A change older than the one held (this node wrote the newer one itself
            // before the watch brought the older) is old news.
            (Key::Grace, Some((_, rev))) if rev < self.grace_revision => {}
            (Key::Grace, Some((v, rev))) => match serde_json::from_slice(v) {
                Ok(g) => {
                    self.grace = g;
                    self.grace_revision = rev;
                }
                Err(e) => bad(key, &e),
            },
            (Key::Grace, None) => {
                self.grace = GraceRecord::default();
                self.grace_revision = 0;
            }
            (Key::Node(id), Some((v, _))) => match serde_json::from_slice(v) {
                Ok(n) => {
                    self.nodes.insert(id, n);
                }
                Err(e) => bad(key, &e),
            },
            (Key::Node(id), None) => {
                self.nodes.remove(&id);
            }
            (Key::Record { node, owner }, Some((v, rev))) => match serde_json::from_slice(v) {
                Ok(value) => {
                    self.records.insert(
                        (node, owner),
                        Record {
                            value,
                            mod_revision: rev,
                        },
                    );
                }
                Err(e) => bad(key, &e),
            },
            (Key::Record { node, owner }, None) => {
                self.records.remove(&(node, owner));
            }
            (Key::Config(name), Some((v, _))) => {
                self.config.insert(name, v.to_vec());
            }
            (Key::Config(name), None) => {
                self.config.remove(&name);
            }
            (Key::Claim { file, node }, Some((v, rev))) => match serde_json::from_slice(v) {
                Ok(c) => {
                    self.claims.insert((file, node), (c, rev));
                }
                Err(e) => bad(key, &e),
            },
            (Key::Claim { file, node }, None) => {
                self.claims.remove(&(file, node));
            }
            (
                Key::Ack {
                    file,
                    claimer,
                    acker,
                },
                Some((v, _)),
            ) => match serde_json::from_slice(v) {
                Ok(a) => {
                    self.acks.insert((file, claimer, acker), a);
                }
                Err(e) => bad(key, &e),
            },
            (
                Key::Ack {
                    file,
                    claimer,
                    acker,
                },
                None,
            ) => {
                self.acks.remove(&(file, claimer, acker));
            }
            (Key::Recall { file, holder }, Some(_)) => {
                self.recalls.insert((file, holder));
            }
            (Key::Recall { file, holder }, None) => {
                self.recalls.remove(&(file, holder));
            }
            (Key::Identity | Key::Other, _) => {}
        }
    }

    fn pending(&self, node: u32, r: &Record) -> bool {
        let g = &self.grace;
        g.active
            && ((g.reclaiming.contains(&node) && r.value.epoch < g.epoch)
                || (r.value.epoch == g.epoch && !r.value.done))
    }

    /// The pending record of `owner`, if any: where it is.
    pub fn pending_record(&self, owner: &[u8]) -> Option<(u32, Record)> {
        self.records
            .iter()
            .find(|((node, o), r)| o == owner && self.pending(*node, r))
            .map(|((node, _), r)| (*node, *r))
    }

    /// May a client with this owner reclaim now?
    pub fn may_reclaim(&self, owner: &[u8]) -> bool {
        self.pending_record(owner).is_some()
    }

    /// How many clients still may reclaim.
    pub fn pending_count(&self) -> usize {
        self.records
            .iter()
            .filter(|((node, _), r)| self.pending(*node, r))
            .count()
    }

    /// Whether a node's clients need a grace period to reclaim: it has records and is
    /// not already reclaiming in the grace in force.
    pub fn needs_grace_for(&self, node: u32) -> bool {
        let has_records = self.records.keys().any(|(n, _)| *n == node);
        has_records && !(self.grace.active && self.grace.reclaiming.contains(&node))
    }

    /// The grace record that starts a new epoch with `nodes`' clients reclaiming (and
    /// those of the epoch in force, if one is).
    pub fn next_grace(&self, nodes: &[u32], now_ms: u64, grace_ms: u64) -> GraceRecord {
        let mut reclaiming: BTreeSet<u32> = nodes.iter().copied().collect();
        if self.grace.active {
            reclaiming.extend(self.grace.reclaiming.iter().copied());
        }
        GraceRecord {
            epoch: self.grace.epoch + 1,
            active: true,
            reclaiming,
            started_ms: now_ms,
            deadline_ms: now_ms + grace_ms,
        }
    }

    /// Whether the grace in force may end now: no client pending, or past its deadline.
    pub fn grace_may_end(&self, now_ms: u64) -> bool {
        self.grace.active && (self.pending_count() == 0 || now_ms >= self.grace.deadline_ms)
    }

    /// What ending the grace in force leaves behind: records to remove (clients that
    /// did not come back) and records to mark done (clients that reclaimed but never
    /// said they were done).
    pub fn end_of_grace(&self) -> EndOfGrace {
        let g = &self.grace;
        let mut end = EndOfGrace::default();
        for ((node, owner), r) in &self.records {
            if g.reclaiming.contains(node) && r.value.epoch < g.epoch {
                end.gone.push((*node, owner.clone()));
            } else if r.value.epoch == g.epoch && !r.value.done {
                end.finish.push((*node, owner.clone()));
            }
        }
        end
    }
}

fn bad(key: &[u8], e: &serde_json::Error) {
    tracing::warn!(key = %String::from_utf8_lossy(key), error = %e, "ignoring a cluster key this version cannot read");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(view: &mut View, keys: &Keys, key: Vec<u8>, value: impl Serialize, rev: i64) {
        let v = serde_json::to_vec(&value).unwrap();
        view.apply(
            keys,
            Change::Put {
                key: &key,
                value: &v,
                mod_revision: rev,
            },
        );
    }

    fn rec(epoch: u64, done: bool) -> RecordValue {
        RecordValue { epoch, done }
    }

    /// Node 1 fails holding clients a and b; c is node 2's. In the grace that follows a
    /// and b may reclaim (anywhere), c may not; a reclaims on node 2 (its record moves)
    /// and stays pending until RECLAIM_COMPLETE; grace may end when nobody is pending,
    /// and b, who never came, is removed then.
    #[test]
    fn a_failed_nodes_clients_reclaim_until_they_are_done() {
        let k = Keys::new("t");
        let mut v = View::default();
        put(&mut v, &k, k.record(1, b"a"), rec(0, true), 5);
        put(&mut v, &k, k.record(1, b"b"), rec(0, true), 6);
        put(&mut v, &k, k.record(2, b"c"), rec(0, true), 7);
        assert!(!v.may_reclaim(b"a"), "no grace yet");
        assert!(v.needs_grace_for(1));
        assert!(!v.needs_grace_for(3), "no records, no grace");

        let g = v.next_grace(&[1], 1_000, 60_000);
        assert_eq!((g.epoch, g.deadline_ms), (1, 61_000));
        put(&mut v, &k, k.grace(), g, 8);
        assert!(!v.needs_grace_for(1), "already reclaiming");
        assert!(v.may_reclaim(b"a") && v.may_reclaim(b"b"));
        assert!(!v.may_reclaim(b"c"));
        assert_eq!(v.pending_count(), 2);

        // a's first reclaim on node 2 moves its record there.
        v.apply(
            &k,
            Change::Delete {
                key: &k.record(1, b"a"),
            },
        );
        put(&mut v, &k, k.record(2, b"a"), rec(1, false), 9);
        assert!(v.may_reclaim(b"a"), "still reclaiming");
        assert!(!v.grace_may_end(2_000));
        put(&mut v, &k, k.record(2, b"a"), rec(1, true), 10);
        assert!(!v.may_reclaim(b"a"), "RECLAIM_COMPLETE sent");
        assert!(!v.grace_may_end(2_000), "b is pending");
        assert!(v.grace_may_end(61_000), "the deadline");
        let end = v.end_of_grace();
        assert_eq!(end.gone, [(1, b"b".to_vec())]);
        assert!(end.finish.is_empty());
    }

    /// A second failure during grace starts a new epoch that keeps the first one's
    /// reclaiming nodes; a client that reclaimed without RECLAIM_COMPLETE is marked done
    /// when grace ends.
    #[test]
    fn a_second_failure_extends_grace_and_unfinished_reclaims_are_kept() {
        let k = Keys::new("t");
        let mut v = View::default();
        put(&mut v, &k, k.record(1, b"a"), rec(0, true), 5);
        put(&mut v, &k, k.record(2, b"b"), rec(0, true), 6);
        let g1 = v.next_grace(&[1], 0, 1000);
        put(&mut v, &k, k.grace(), g1, 7);
        assert!(v.needs_grace_for(2));
        let g2 = v.next_grace(&[2], 500, 1000);
        assert_eq!(g2.reclaiming, [1, 2].into());
        assert_eq!(g2.epoch, 2);
        put(&mut v, &k, k.grace(), g2, 8);
        assert!(v.may_reclaim(b"a") && v.may_reclaim(b"b"));
        v.apply(
            &k,
            Change::Delete {
                key: &k.record(1, b"a"),
            },
        );
        put(&mut v, &k, k.record(3, b"a"), rec(2, false), 9);
        let end = v.end_of_grace();
        assert_eq!(end.gone, [(2, b"b".to_vec())]);
        assert_eq!(end.finish, [(3, b"a".to_vec())]);
    }

    #[test]
    fn an_unreadable_value_is_left_out() {
        let k = Keys::new("t");
        let mut v = View::default();
        v.apply(
            &k,
            Change::Put {
                key: &k.grace(),
                value: b"{nonsense",
                mod_revision: 3,
            },
        );
        assert_eq!(v.grace_revision, 0);
        v.apply(
            &k,
            Change::Put {
                key: &k.node(4),
                value: b"[]",
                mod_revision: 3,
            },
        );
        assert!(v.nodes.is_empty());
    }

    #[test]
    fn claims_acks_and_recalls_are_kept_with_their_revision_and_go_when_deleted() {
        use crate::claims::{Answer, ClaimState, Deleg, Share};
        let k = Keys::new("t");
        let mut v = View::default();
        let file = b"obj".to_vec();
        let claim = ClaimValue {
            share: Share {
                access: 1,
                deny: 2,
                deleg: Deleg::None,
            },
            state: ClaimState::Pending,
        };
        put(&mut v, &k, k.claim(&file, 2), claim, 7);
        assert_eq!(v.claims.get(&(file.clone(), 2)), Some(&(claim, 7)));
        let ack = AckValue {
            answer: Answer::Conflict,
            claim_rev: 7,
        };
        put(&mut v, &k, k.ack(&file, 2, 1), ack, 8);
        assert_eq!(v.acks.get(&(file.clone(), 2, 1)), Some(&ack));
        put(&mut v, &k, k.recall(&file, 3), serde_json::json!({}), 9);
        assert!(v.recalls.contains(&(file.clone(), 3)));
        for key in [k.claim(&file, 2), k.ack(&file, 2, 1), k.recall(&file, 3)] {
            v.apply(&k, Change::Delete { key: &key });
        }
        assert!(v.claims.is_empty() && v.acks.is_empty() && v.recalls.is_empty());
        // A claim this version cannot read is left out, not a stop.
        v.apply(
            &k,
            Change::Put {
                key: &k.claim(&file, 2),
                value: b"{\"deny\":\"x\"}",
                mod_revision: 10,
            },
        );
        assert!(v.claims.is_empty());
    }
}
