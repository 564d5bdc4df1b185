//! ringnfs nodes in a cluster on a real 3-member etcd (ringnfs-testkit), exporting one
//! shared directory: a node stops, the node that takes over its clients begins
//! cluster-wide grace, the client reclaims its open and lock there with the handle the
//! first node gave it (same key, same scope), new state waits for the end of grace on
//! every node, and grace ends once the reclaiming client says it is done.

pub mod common;

use std::time::Duration;

use common::{TestServer, wait_until};
use ringnfs::client::files::Files;
use ringnfs::client::ops::{OpenClaim, OpenHow, locktype, share};
use ringnfs::client::{ClientOptions, Locker, Op};
use ringnfs::cluster::ClusterOptions;
use ringnfs::nfs4::consts::status;
use ringnfs::server::BackendKind;
use ringnfs_testkit::etcd::EtcdCluster;

fn node(etcd: &EtcdCluster, cluster: &str, id: u32, base: &std::path::Path) -> TestServer {
    let (export, state) = (base.join("export"), base.join(format!("state-{id}")));
    let endpoints = etcd.endpoints();
    TestServer::with(move |c| {
        c.backend = BackendKind::Local;
        c.export_path = export;
        c.state_dir = Some(state);
        c.grace_secs = 60;
        c.cluster = Some(ClusterOptions {
            endpoints,
            name: cluster.into(),
            node_id: Some(id),
            node_ttl_secs: 2,
        });
    })
}

fn client(owner: &[u8], verifier: u8, reclaim_complete: bool) -> ClientOptions {
    ClientOptions {
        owner: Some(owner.to_vec()),
        verifier: Some([verifier; 8]),
        reclaim_complete,
        ..Default::default()
    }
}

#[test]
fn a_stopped_nodes_client_reclaims_on_the_node_that_takes_over() {
    let Some(etcd) = EtcdCluster::start_or_skip(
        "a_stopped_nodes_client_reclaims_on_the_node_that_takes_over",
        3,
    ) else {
        return;
    };
    let base = common::TempDir::new("cluster-takeover");
    let mut a = node(&etcd, "takeover", 1, &base.0);
    let b = node(&etcd, "takeover", 2, &base.0);

    // A client of node A opens a file, writes it and locks a range.
    let (_, s) = a.session_with(client(b"client-x", 1, true));
    let x = Files::new(s);
    let root = x.root_fh().unwrap();
    let (fh, f) = x.create(&root, b"shared", 0o666).unwrap();
    // FILE_SYNC: on the shared disk before the node goes.
    x.write(&f, 0, b"written through node A", 2).unwrap();
    x.lock_new(&f, b"x-locks", locktype::WRITE, 0, 100)
        .unwrap()
        .expect("lock granted");
    // Node B's own client.
    let (_, s) = b.session_with(client(b"client-y", 1, true));
    let y = Files::new(s);
    let yroot = y.root_fh().unwrap();
    let (_, g) = y.create(&yroot, b"before", 0o666).unwrap();
    y.close(g).unwrap();
    assert!(!b.state().in_grace());

    // Node A stops; B sees it gone and the whole cluster enters grace.
    a.stop();
    assert!(
        wait_until(Duration::from_secs(15), || b.state().in_grace()),
        "node B began grace for node A's clients"
    );
    // New state waits on every node, B's own clients included.
    let err = y.create(&yroot, b"during", 0o666).unwrap_err();
    assert_eq!(err.nfs_status(), Some(status::NFS4ERR_GRACE));

    // The client comes back through node B (its address moved there): new client ID,
    // the same owner; it reclaims its open and its lock with node A's handle.
    let (_, s) = b.session_with(client(b"client-x", 2, false));
    let x = Files::new(s);
    let args = x.open_args(
        share::ACCESS_BOTH,
        share::DENY_NONE,
        OpenHow::NoCreate,
        OpenClaim::Previous(0),
    );
    let (reopened, _) = x.open_with(&fh, args).expect("CLAIM_PREVIOUS on node B");
    let r = x
        .call_raw(&[
            Op::PutFh(fh.clone()),
            Op::Lock {
                locktype: locktype::WRITE,
                reclaim: true,
                offset: 0,
                length: 100,
                locker: Locker::New {
                    open_seqid: 0,
                    open_stateid: reopened.stateid,
                    lock_seqid: 0,
                    clientid: x.clientid(),
                    owner: b"x-locks".to_vec(),
                },
            },
        ])
        .unwrap();
    assert_eq!(r.status, status::NFS4_OK, "LOCK reclaim on node B: {r:?}");
    assert_eq!(x.read_all(&reopened).unwrap(), b"written through node A");
    let reclaims = b.state().grace.reclaims().map(|(_, n)| n);
    assert_eq!(reclaims, [1, 0, 1], "an open and a lock reclaimed, counted");
    let st = b.state().grace.cluster().unwrap().status();
    assert_eq!(
        (st.node_id, st.in_grace, st.reclaiming_nodes.clone()),
        (2, true, vec![1])
    );
    assert_eq!(st.nodes.len(), 1, "node A is gone: {st:?}");
    // Someone who held nothing cannot reclaim.
    let (_, s) = b.session_with(client(b"client-z", 1, false));
    let z = Files::new(s);
    let zargs = z.open_args(
        share::ACCESS_READ,
        share::DENY_NONE,
        OpenHow::NoCreate,
        OpenClaim::Previous(0),
    );
    assert_eq!(
        z.open_with(&fh, zargs).unwrap_err().nfs_status(),
        Some(status::NFS4ERR_NO_GRACE)
    );

    // Done reclaiming: nobody else is pending, so grace ends for the cluster.
    let r = x
        .session()
        .call(0, &[Op::ReclaimComplete { one_fs: false }], false)
        .unwrap();
    assert_eq!(r.status, status::NFS4_OK);
    assert!(
        wait_until(Duration::from_secs(15), || !b.state().in_grace()),
        "grace ended once the only reclaiming client was done"
    );
    let (_, h) = y.create(&yroot, b"after", 0o666).unwrap();
    y.close(h).unwrap();
    // The reclaimed lock holds against B's other clients.
    let yf = y
        .open(&yroot, b"shared", share::ACCESS_BOTH, share::DENY_NONE)
        .unwrap();
    let denied = y
        .lock_new(&yf, b"y-locks", locktype::WRITE, 50, 10)
        .unwrap();
    assert!(denied.is_err(), "the reclaimed lock conflicts: {denied:?}");
}
