//! Claims of share reservations and delegations between nodes against a real 3-member
//! etcd (ringnfs-testkit), with a fake server behind each node ([`ClaimHost`]): a claim
//! is refused by another node's conflicting opens and granted otherwise; the other
//! node sees it; it goes when its state goes, and with its node; a delegation in the
//! way is recalled; a node that does not answer makes the claim time out.

pub mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{config, eventually};
use ringnfs_cluster::claims::{Deleg, Local, Outcome, READ, Share, WRITE};
use ringnfs_cluster::{ClaimHost, Node};
use ringnfs_testkit::etcd::EtcdCluster;

/// A server's state on each file: what its clients hold, its own claim, the other
/// nodes' claims it was told about, the recalls it was asked for.
#[derive(Default)]
struct Fake {
    held: Mutex<HashMap<Vec<u8>, Share>>,
    pending: Mutex<HashMap<Vec<u8>, Share>>,
    granted: Mutex<HashMap<Vec<u8>, Share>>,
    remote: Mutex<HashMap<(Vec<u8>, u32), Share>>,
    recalls: Mutex<Vec<Vec<u8>>>,
}

impl Fake {
    fn hold(&self, file: &[u8], s: Share) {
        self.held.lock().unwrap().insert(file.to_vec(), s);
    }
    fn remote(&self, file: &[u8], node: u32) -> Option<Share> {
        self.remote
            .lock()
            .unwrap()
            .get(&(file.to_vec(), node))
            .copied()
    }
}

impl ClaimHost for Fake {
    fn remote_claim(&self, file: &[u8], node: u32, claim: Option<Share>) -> Local {
        let mut r = self.remote.lock().unwrap();
        match claim {
            Some(c) => r.insert((file.to_vec(), node), c),
            None => r.remove(&(file.to_vec(), node)),
        };
        Local {
            held: self
                .held
                .lock()
                .unwrap()
                .get(file)
                .copied()
                .unwrap_or_default(),
            pending: self.pending.lock().unwrap().get(file).copied(),
        }
    }
    fn settled(&self, file: &[u8], _won: bool, granted: Option<Share>) {
        self.pending.lock().unwrap().remove(file);
        let mut g = self.granted.lock().unwrap();
        match granted {
            Some(s) => g.insert(file.to_vec(), s),
            None => g.remove(file),
        };
    }
    fn needed(&self, file: &[u8]) -> Share {
        let h = self
            .held
            .lock()
            .unwrap()
            .get(file)
            .copied()
            .unwrap_or_default();
        Share {
            access: h.access,
            deny: h.deny,
            deleg: h.deleg,
        }
    }
    fn recall(&self, file: &[u8]) {
        self.recalls.lock().unwrap().push(file.to_vec());
    }
}

fn claim(node: &Node, host: &Fake, file: &[u8], s: Share) -> Outcome {
    host.pending.lock().unwrap().insert(file.to_vec(), s);
    let (tx, rx) = std::sync::mpsc::channel();
    node.claim(file, s, Box::new(move |o| tx.send(o).unwrap()));
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the claim's outcome")
}

fn share(access: u32, deny: u32, deleg: Deleg) -> Share {
    Share {
        access,
        deny,
        deleg,
    }
}

fn pair(etcd: &EtcdCluster, name: &str) -> (Node, Arc<Fake>, Node, Arc<Fake>) {
    let a = Node::join(config(etcd, name, 1)).unwrap();
    let b = Node::join(config(etcd, name, 2)).unwrap();
    let (ha, hb) = (Arc::new(Fake::default()), Arc::new(Fake::default()));
    a.attach_claims(ha.clone());
    b.attach_claims(hb.clone());
    assert!(eventually(Duration::from_secs(5), || a
        .status()
        .nodes
        .len()
        == 2
        && b.status().nodes.len() == 2));
    (a, ha, b, hb)
}

#[test]
fn a_deny_claim_is_refused_by_another_nodes_writer_and_goes_with_its_opens() {
    let Some(etcd) = EtcdCluster::start_or_skip(
        "a_deny_claim_is_refused_by_another_nodes_writer_and_goes_with_its_opens",
        3,
    ) else {
        return;
    };
    let (a, ha, b, hb) = pair(&etcd, "deny");
    let f = b"file-1".to_vec();
    // B's client writes the file: A's deny-write is refused, its deny-read is not.
    hb.hold(&f, share(WRITE, 0, Deleg::None));
    assert_eq!(
        claim(&a, &ha, &f, share(READ, WRITE, Deleg::None)),
        Outcome::Refused
    );
    assert!(ha.granted.lock().unwrap().get(&f).is_none());
    ha.hold(&f, share(WRITE, READ, Deleg::None));
    assert_eq!(
        claim(&a, &ha, &f, share(WRITE, READ, Deleg::None)),
        Outcome::Granted
    );
    assert_eq!(a.claims_on(&f).len(), 1);
    // B saw it (its OPENs check it).
    assert!(eventually(Duration::from_secs(5), || hb
        .remote(&f, 1)
        .is_some_and(|s| s.deny == READ)));
    // A's open closes: the claim goes, and B hears it.
    ha.hold(&f, Share::default());
    assert!(eventually(Duration::from_secs(5), || hb
        .remote(&f, 1)
        .is_none()));
    assert!(a.claims_on(&f).is_empty());
    drop(b);
}

#[test]
fn a_delegation_in_the_way_is_recalled_and_a_dead_nodes_claims_go() {
    let Some(etcd) = EtcdCluster::start_or_skip(
        "a_delegation_in_the_way_is_recalled_and_a_dead_nodes_claims_go",
        3,
    ) else {
        return;
    };
    let (a, ha, b, hb) = pair(&etcd, "deleg");
    let f = b"file-2".to_vec();
    // A may give read delegations of the file.
    ha.hold(&f, share(READ, 0, Deleg::Read));
    assert_eq!(
        claim(&a, &ha, &f, share(0, 0, Deleg::Read)),
        Outcome::Granted
    );
    // B's deny-read conflicts with them: retry while A recalls.
    assert_eq!(
        claim(&b, &hb, &f, share(READ, READ, Deleg::None)),
        Outcome::Retry
    );
    assert!(eventually(Duration::from_secs(5), || ha
        .recalls
        .lock()
        .unwrap()
        .contains(&f)));
    // A's client returns it (and closes): A's claim goes, B's claim passes.
    ha.hold(&f, Share::default());
    assert!(eventually(Duration::from_secs(5), || hb
        .remote(&f, 1)
        .is_none()));
    hb.hold(&f, share(READ, READ, Deleg::None));
    assert_eq!(
        claim(&b, &hb, &f, share(READ, READ, Deleg::None)),
        Outcome::Granted
    );
    // A recall request: the holder is asked to recall.
    let asked = ha.recalls.lock().unwrap().len();
    b.ask_recall(&f, &[1]);
    assert!(eventually(Duration::from_secs(5), || ha
        .recalls
        .lock()
        .unwrap()
        .len()
        > asked));
    // B dies without a word: its claim goes with its lease.
    assert!(eventually(Duration::from_secs(5), || ha
        .remote(&f, 2)
        .is_some()));
    b.abandon();
    assert!(eventually(Duration::from_secs(15), || ha
        .remote(&f, 2)
        .is_none()));
    assert!(a.claims_on(&f).is_empty());
}

#[test]
fn a_node_that_does_not_answer_makes_a_claim_retry() {
    let Some(etcd) =
        EtcdCluster::start_or_skip("a_node_that_does_not_answer_makes_a_claim_retry", 3)
    else {
        return;
    };
    let a = Node::join(config(&etcd, "mute", 1)).unwrap();
    let ha = Arc::new(Fake::default());
    a.attach_claims(ha.clone());
    // A lone node grants at once.
    let f = b"file-3".to_vec();
    ha.hold(&f, share(READ, WRITE, Deleg::None));
    assert_eq!(
        claim(&a, &ha, &f, share(READ, WRITE, Deleg::None)),
        Outcome::Granted
    );
    // A node without a server behind it yet does not answer.
    let mute = Node::join(config(&etcd, "mute", 2)).unwrap();
    assert!(eventually(Duration::from_secs(5), || a
        .status()
        .nodes
        .len()
        == 2));
    let g = b"file-4".to_vec();
    assert_eq!(
        claim(&a, &ha, &g, share(READ, READ, Deleg::None)),
        Outcome::Retry
    );
    // The failed claim is withdrawn; the granted one stays.
    assert!(eventually(Duration::from_secs(5), || a
        .claims_on(&g)
        .is_empty()));
    assert_eq!(a.claims_on(&f).len(), 1);
    drop(mute);
}
