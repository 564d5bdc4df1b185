//! Share reservations and delegations across two ringnfs nodes of a cluster on a real
//! 3-member etcd (ringnfs-testkit), exporting one shared directory: a deny mode held
//! through one node refuses a conflicting OPEN through the other (NFS4ERR_SHARE_DENIED)
//! until it is closed, both ways round; a read delegation given by one node is recalled
//! for a writer on the other (NFS4ERR_DELAY until it is returned); plain opens on both
//! nodes share one file's data. No timing assertions: bounded waits only.

pub mod common;

use std::time::Duration;

use common::{TestServer, wait_until};
use ringnfs::client::callback::DefaultCallbackHandler;
use ringnfs::client::files::Files;
use ringnfs::client::ops::{OpenClaim, OpenHow, share};
use ringnfs::client::{ClientError, ClientOptions, Delegation, Op, OpenFile};
use ringnfs::nfs4::consts::{NfsStatus, status};
use ringnfs_testkit::etcd::EtcdCluster;

fn node(
    etcd: &EtcdCluster,
    cluster: &str,
    id: u32,
    base: &std::path::Path,
    delegations: bool,
) -> TestServer {
    common::cluster_node(etcd.endpoints(), cluster, id, base, |c| {
        c.delegations = delegations
    })
}

/// Two nodes of one cluster over one directory, each knowing the other.
fn two_nodes(
    etcd: &EtcdCluster,
    name: &str,
    base: &std::path::Path,
    delegations: bool,
) -> (TestServer, TestServer) {
    let a = node(etcd, name, 1, base, delegations);
    let b = node(etcd, name, 2, base, delegations);
    assert!(
        wait_until(Duration::from_secs(10), || {
            let n = |s: &TestServer| s.state().grace.cluster().unwrap().status().nodes.len();
            n(&a) == 2 && n(&b) == 2
        }),
        "the nodes see each other"
    );
    (a, b)
}

/// A client of `server` with its own owner and a back channel (CB_RECALL answered).
fn client(server: &TestServer, owner: &[u8]) -> (Files, std::sync::Arc<DefaultCallbackHandler>) {
    let (ids, s) = server.session_with(ClientOptions {
        owner: Some(owner.to_vec()),
        ..Default::default()
    });
    (Files::new(s), ids.callbacks.expect("the default handler"))
}

fn status_of<T: std::fmt::Debug>(r: Result<T, ClientError>) -> NfsStatus {
    match r {
        Ok(_) => status::NFS4_OK,
        Err(e) => e
            .nfs_status()
            .unwrap_or_else(|| panic!("not an NFS status: {e}")),
    }
}

/// Try `open` until it succeeds (bounded): the other node's claim goes shortly after
/// the state behind it.
fn eventually_opens(mut open: impl FnMut() -> Result<OpenFile, ClientError>) -> OpenFile {
    let mut last = None;
    let ok = wait_until(Duration::from_secs(15), || match open() {
        Ok(f) => {
            last = Some(Ok(f));
            true
        }
        Err(e) => {
            last = Some(Err(e));
            false
        }
    });
    match last {
        Some(Ok(f)) if ok => f,
        other => panic!("the open never succeeded: {other:?}"),
    }
}

#[test]
fn a_deny_mode_on_one_node_refuses_conflicting_opens_on_the_other() {
    let Some(etcd) = EtcdCluster::start_or_skip(
        "a_deny_mode_on_one_node_refuses_conflicting_opens_on_the_other",
        3,
    ) else {
        return;
    };
    let base = common::TempDir::new("cluster-deny");
    let (a, b) = two_nodes(&etcd, "deny", &base.0, false);
    let (x, _) = client(&a, b"client-x");
    let (y, _) = client(&b, b"client-y");
    let root = x.root_fh().unwrap();
    let yroot = y.root_fh().unwrap();
    let (_, f) = x.create(&root, b"reserved", 0o666).unwrap();
    x.close(f).unwrap();

    // X (node A) reads and denies writers: its OPEN waits for node B's ack.
    let held = x
        .open(&root, b"reserved", share::ACCESS_READ, share::DENY_WRITE)
        .expect("the deny-write open through node A");
    // Y (node B): a writer is refused, a reader is not.
    assert_eq!(
        status_of(y.open(&yroot, b"reserved", share::ACCESS_WRITE, share::DENY_NONE)),
        status::NFS4ERR_SHARE_DENIED
    );
    let reader = y
        .open(&yroot, b"reserved", share::ACCESS_READ, share::DENY_NONE)
        .expect("reading is not denied");
    y.close(reader).unwrap();
    // X closes: Y's writer gets in.
    x.close(held).unwrap();
    let writer =
        eventually_opens(|| y.open(&yroot, b"reserved", share::ACCESS_WRITE, share::DENY_NONE));

    // The other way round: Y writes (a plain open, on node B only), so X's deny-write
    // open on node A is refused by node B's ack.
    assert_eq!(
        status_of(x.open(&root, b"reserved", share::ACCESS_READ, share::DENY_WRITE)),
        status::NFS4ERR_SHARE_DENIED
    );
    // A deny that does not meet Y's write access passes.
    let deny_read = x
        .open(&root, b"reserved", share::ACCESS_READ, share::DENY_READ)
        .expect("deny-read does not meet a writer");
    // ... and now Y's readers are refused on node B.
    let (z, _) = client(&b, b"client-z");
    assert_eq!(
        status_of(z.open(&yroot, b"reserved", share::ACCESS_READ, share::DENY_NONE)),
        status::NFS4ERR_SHARE_DENIED
    );
    x.close(deny_read).unwrap();
    y.close(writer).unwrap();
    let again =
        eventually_opens(|| x.open(&root, b"reserved", share::ACCESS_READ, share::DENY_WRITE));
    x.close(again).unwrap();
}

#[test]
fn a_read_delegation_on_one_node_is_recalled_for_a_writer_on_the_other() {
    let Some(etcd) = EtcdCluster::start_or_skip(
        "a_read_delegation_on_one_node_is_recalled_for_a_writer_on_the_other",
        3,
    ) else {
        return;
    };
    let base = common::TempDir::new("cluster-deleg");
    let (a, b) = two_nodes(&etcd, "deleg", &base.0, true);
    let (x, cb) = client(&a, b"client-x");
    let (y, _) = client(&b, b"client-y");
    let root = x.root_fh().unwrap();
    let yroot = y.root_fh().unwrap();
    x.write_file(&root, b"cached", b"hello").unwrap();

    // X's first read OPEN through node A starts node A's delegation claim and gets no
    // delegation; a later one gets it once the claim is granted.
    let read_open = || {
        let args = x.open_args(
            share::ACCESS_READ,
            share::DENY_NONE,
            OpenHow::NoCreate,
            OpenClaim::Null(b"cached".to_vec()),
        );
        x.open_with(&root, args).unwrap()
    };
    let mut deleg = None;
    let mut opened = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            let (of, r) = read_open();
            if let Delegation::Read { stateid, .. } = r.delegation {
                deleg = Some(stateid);
            }
            opened = Some(of);
            deleg.is_some()
        }),
        "node A gave a read delegation once its claim was granted"
    );
    let (deleg, opened) = (deleg.unwrap(), opened.unwrap());

    // Y writes through node B: NFS4ERR_DELAY while node A recalls it.
    let write_open = || y.open(&yroot, b"cached", share::ACCESS_WRITE, share::DENY_NONE);
    assert_eq!(status_of(write_open()), status::NFS4ERR_DELAY);
    assert!(
        wait_until(Duration::from_secs(10), || {
            cb.stats().recalls.iter().any(|(s, _)| *s == deleg)
        }),
        "CB_RECALL reached the holder through node A"
    );
    assert_eq!(
        status_of(write_open()),
        status::NFS4ERR_DELAY,
        "until returned"
    );
    x.call(&[Op::PutFh(opened.fh.clone()), Op::DelegReturn(deleg)])
        .unwrap();
    let w = eventually_opens(write_open);
    y.write(&w, 0, b"HELLO", 2).unwrap();
    y.close(w).unwrap();
    assert_eq!(x.read_all(&opened).unwrap(), b"HELLO");
    x.close(opened).unwrap();
    let stats = a.server().cluster_node().unwrap().claim_stats();
    assert!(stats.granted.load(std::sync::atomic::Ordering::Relaxed) >= 1);
}

#[test]
fn two_nodes_share_one_files_data_through_plain_opens() {
    let Some(etcd) =
        EtcdCluster::start_or_skip("two_nodes_share_one_files_data_through_plain_opens", 3)
    else {
        return;
    };
    let base = common::TempDir::new("cluster-data");
    let (a, b) = two_nodes(&etcd, "data", &base.0, false);
    let (x, _) = client(&a, b"client-x");
    let (y, _) = client(&b, b"client-y");
    let root = x.root_fh().unwrap();
    let yroot = y.root_fh().unwrap();
    let (_, xf) = x.create(&root, b"both", 0o666).unwrap();
    x.write(&xf, 0, b"from node A", 2).unwrap();
    let yf = y
        .open(&yroot, b"both", share::ACCESS_BOTH, share::DENY_NONE)
        .expect("plain opens on both nodes at once");
    assert_eq!(y.read_all(&yf).unwrap(), b"from node A");
    y.write(&yf, 0, b"FROM NODE B", 2).unwrap();
    assert_eq!(x.read_all(&xf).unwrap(), b"FROM NODE B");
    y.close(yf).unwrap();
    x.close(xf).unwrap();
    // Plain opens claim nothing.
    let node = a.server().cluster_node().unwrap();
    assert_eq!(
        node.claim_stats()
            .granted
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}
