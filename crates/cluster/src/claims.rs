//! Share reservations (OPEN deny modes) and delegations across nodes: a node that
//! needs restrictive state on a file (an OPEN with deny bits, or a delegation) first
//! *claims* it in etcd, and every other live node acks the claim after checking its own
//! clients' state on that file. Pure here: the values kept in etcd and the rules, so
//! every rule is unit-tested; the agent in `node.rs` moves them.
//!
//! Why an etcd record and not kernel leases or flock: it works over any shared file
//! system (a kernel CephFS mount refuses leases) and NFS deny modes have no kernel
//! equivalent at all (LOCK_MAND is gone). And it costs only the state that needs it:
//! plain opens without deny bits (all a Linux client ever sends) stay local.
//!
//! A claim's [`Share`] carries the access and deny bits of the node's deny-holding
//! opens on the file and the delegation it holds there. The checks:
//! - open vs open ([`shares_conflict`]): one side's access meets the other's deny;
//! - a delegation vs anything ([`deleg_conflicts`]): a read delegation gives way to
//!   write access and to deny-read, a write delegation to any access or deny.

use serde::{Deserialize, Serialize};

/// OPEN4_SHARE_ACCESS_READ / _WRITE (and the same bits for deny).
pub const READ: u32 = 1;
pub const WRITE: u32 = 2;

/// The delegation a node holds (or claims) on a file.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Deleg {
    #[default]
    None,
    Read,
    Write,
}

/// What a node holds, or claims, on one file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Share {
    /// Access bits (of the deny-holding opens, in a claim; of all opens, in a node's
    /// own state when it acks).
    pub access: u32,
    pub deny: u32,
    pub deleg: Deleg,
}

impl Share {
    pub fn is_empty(&self) -> bool {
        self.deny == 0 && self.deleg == Deleg::None
    }

    pub fn union(&self, o: &Share) -> Share {
        Share {
            access: self.access | o.access,
            deny: self.deny | o.deny,
            deleg: self.deleg.max(o.deleg),
        }
    }

    /// Whether holding `self` already grants `o` (its deny bits and its delegation).
    pub fn covers(&self, o: &Share) -> bool {
        o.deny & !self.deny == 0 && o.deleg <= self.deleg
    }
}

/// A claim's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimState {
    /// Waiting for the other nodes' acks.
    Pending,
    /// Every live node acked: the claimer may grant.
    Granted,
}

/// `claims/<file>/<node>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimValue {
    #[serde(flatten)]
    pub share: Share,
    pub state: ClaimState,
}

/// An acker's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    Ok,
    /// The acker's clients hold opens the claim conflicts with: refused
    /// (NFS4ERR_SHARE_DENIED for an OPEN, no delegation for a delegation).
    Conflict,
    /// The acker's clients hold delegations the claim conflicts with: the acker
    /// recalls them; the claimer's OPEN answers NFS4ERR_DELAY meanwhile.
    Recall,
}

/// `claim_acks/<file>/<claimer>/<acker>`: an answer to the claim written at `claim_rev`
/// (an answer to an earlier claim of the same node on the same file does not count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckValue {
    pub answer: Answer,
    pub claim_rev: i64,
}

/// A node's own state on a file, as its server reports it when it acks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Local {
    /// Its clients' opens (access and deny bits of all of them) and delegation held.
    pub held: Share,
    /// Its own claim in flight on the file, if any.
    pub pending: Option<Share>,
}

/// How a claim ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Granted,
    /// Some node's clients' opens conflict.
    Refused,
    /// A delegation is being recalled, or some node did not answer in time: try again.
    Retry,
}

/// Open vs open: `a`'s access meets `b`'s deny or the other way round.
pub fn shares_conflict(a: &Share, b: &Share) -> bool {
    a.access & b.deny != 0 || a.deny & b.access != 0
}

/// Whether a delegation `held` must give way to `other` (its opens' access and deny,
/// or the delegation it claims).
pub fn deleg_conflicts(held: Deleg, other: &Share) -> bool {
    match held {
        Deleg::None => false,
        Deleg::Read => {
            other.access & WRITE != 0 || other.deny & READ != 0 || other.deleg == Deleg::Write
        }
        Deleg::Write => other.access != 0 || other.deny != 0 || other.deleg != Deleg::None,
    }
}

/// Whether `a` and `b` cannot both be held, in either direction.
pub fn conflict(a: &Share, b: &Share) -> bool {
    shares_conflict(a, b) || deleg_conflicts(a.deleg, b) || deleg_conflicts(b.deleg, a)
}

/// The answer of node `me`, holding `local`, to `claimer`'s pending `claim`.
/// Two claims in flight at once that conflict: the lower node id's wins (it answers
/// Conflict to the other; the other answers Ok to it), so they cannot both be granted
/// and one of them is.
pub fn ack(me: u32, local: &Local, claimer: u32, claim: &Share) -> Answer {
    if deleg_conflicts(local.held.deleg, claim) {
        return Answer::Recall;
    }
    if shares_conflict(&local.held, claim) || deleg_conflicts(claim.deleg, &local.held) {
        return Answer::Conflict;
    }
    if let Some(p) = &local.pending
        && conflict(p, claim)
        && me < claimer
    {
        return Answer::Conflict;
    }
    Answer::Ok
}

/// The outcome of a claim from the answers so far (acker, answer) and the live nodes
/// that must answer; None while some have not.
pub fn outcome<'a>(
    answers: impl IntoIterator<Item = (u32, Answer)>,
    must_answer: impl IntoIterator<Item = &'a u32>,
) -> Option<Outcome> {
    let answers: std::collections::BTreeMap<u32, Answer> = answers.into_iter().collect();
    if answers.values().any(|a| *a == Answer::Conflict) {
        return Some(Outcome::Refused);
    }
    if answers.values().any(|a| *a == Answer::Recall) {
        return Some(Outcome::Retry);
    }
    must_answer
        .into_iter()
        .all(|n| answers.contains_key(n))
        .then_some(Outcome::Granted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(access: u32, deny: u32) -> Share {
        Share {
            access,
            deny,
            deleg: Deleg::None,
        }
    }

    fn deleg(d: Deleg) -> Share {
        Share {
            access: 0,
            deny: 0,
            deleg: d,
        }
    }

    fn held(s: Share) -> Local {
        Local {
            held: s,
            pending: None,
        }
    }

    #[test]
    fn a_deny_claim_meets_the_ackers_opens() {
        let deny_write = open(READ, WRITE);
        // The acker's client writes: refused.
        assert_eq!(
            ack(2, &held(open(WRITE, 0)), 1, &deny_write),
            Answer::Conflict
        );
        // It only reads: fine.
        assert_eq!(ack(2, &held(open(READ, 0)), 1, &deny_write), Answer::Ok);
        // Its client denies read, and the claimer reads: refused the other way round.
        assert_eq!(
            ack(2, &held(open(READ, READ)), 1, &deny_write),
            Answer::Conflict
        );
        assert_eq!(ack(2, &Local::default(), 1, &deny_write), Answer::Ok);
    }

    #[test]
    fn delegations_are_recalled_by_what_they_cannot_live_with() {
        let read = held(deleg(Deleg::Read));
        let write = held(deleg(Deleg::Write));
        assert_eq!(ack(2, &read, 1, &open(READ, WRITE)), Answer::Ok);
        assert_eq!(ack(2, &read, 1, &open(READ, READ)), Answer::Recall);
        assert_eq!(ack(2, &read, 1, &open(WRITE, 0)), Answer::Recall);
        assert_eq!(ack(2, &read, 1, &deleg(Deleg::Read)), Answer::Ok);
        assert_eq!(ack(2, &read, 1, &deleg(Deleg::Write)), Answer::Recall);
        assert_eq!(ack(2, &write, 1, &open(READ, WRITE)), Answer::Recall);
        assert_eq!(ack(2, &write, 1, &deleg(Deleg::Read)), Answer::Recall);
    }

    #[test]
    fn a_delegation_claim_meets_the_ackers_opens() {
        assert_eq!(
            ack(2, &held(open(WRITE, 0)), 1, &deleg(Deleg::Read)),
            Answer::Conflict
        );
        assert_eq!(
            ack(2, &held(open(READ, 0)), 1, &deleg(Deleg::Read)),
            Answer::Ok
        );
        assert_eq!(
            ack(2, &held(open(READ, 0)), 1, &deleg(Deleg::Write)),
            Answer::Conflict
        );
    }

    #[test]
    fn of_two_conflicting_claims_in_flight_the_lower_node_wins() {
        let both = open(READ | WRITE, WRITE);
        let a = Local {
            held: Share::default(),
            pending: Some(both),
        };
        // Node 1 answers node 2's claim: conflict; node 2 answers node 1's: ok.
        assert_eq!(ack(1, &a, 2, &both), Answer::Conflict);
        assert_eq!(ack(2, &a, 1, &both), Answer::Ok);
        // Claims that do not conflict pass both ways.
        let reader = Local {
            held: Share::default(),
            pending: Some(open(READ, WRITE)),
        };
        assert_eq!(ack(1, &reader, 2, &open(READ, WRITE)), Answer::Ok);
    }

    #[test]
    fn a_claim_is_granted_when_every_live_node_said_ok() {
        let live = [2, 3];
        assert_eq!(outcome([(2, Answer::Ok)], &live), None);
        assert_eq!(
            outcome([(2, Answer::Ok), (3, Answer::Ok)], &live),
            Some(Outcome::Granted)
        );
        assert_eq!(
            outcome([(2, Answer::Conflict)], &live),
            Some(Outcome::Refused)
        );
        assert_eq!(outcome([(3, Answer::Recall)], &live), Some(Outcome::Retry));
        assert_eq!(outcome([], &[]), Some(Outcome::Granted), "a lone node");
    }

    #[test]
    fn shares_cover_what_they_grant_and_read_back_from_json() {
        let s = open(READ, WRITE).union(&deleg(Deleg::Read));
        assert!(
            s.covers(&open(READ | WRITE, WRITE)),
            "access is not claimed"
        );
        assert!(!s.covers(&open(READ, READ)));
        assert!(s.covers(&deleg(Deleg::Read)));
        assert!(!s.covers(&deleg(Deleg::Write)));
        let v = ClaimValue {
            share: s,
            state: ClaimState::Pending,
        };
        let j = serde_json::to_string(&v).unwrap();
        assert_eq!(
            j,
            r#"{"access":1,"deny":2,"deleg":"read","state":"pending"}"#
        );
        assert_eq!(serde_json::from_str::<ClaimValue>(&j).unwrap(), v);
        let a = AckValue {
            answer: Answer::Recall,
            claim_rev: 7,
        };
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"answer":"recall","claim_rev":7}"#
        );
    }
}
