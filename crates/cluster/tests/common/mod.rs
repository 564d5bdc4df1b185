//! Helpers shared by the cluster crate's tests against a real etcd. Each test file
//! declares it `pub mod common;`, so a helper one file does not call is not dead code.

use std::time::{Duration, Instant};

use ringnfs_cluster::ClusterConfig;
use ringnfs_testkit::etcd::EtcdCluster;

/// Node `id` of cluster `name` on `etcd`: a 2 s lease, 30 s of grace at most.
pub fn config(etcd: &EtcdCluster, name: &str, id: u32) -> ClusterConfig {
    ClusterConfig {
        endpoints: etcd.endpoints(),
        name: name.into(),
        node_id: id,
        node_ttl: Duration::from_secs(2),
        grace: Duration::from_secs(30),
        join_timeout: Duration::from_secs(10),
        addrs: vec![format!("127.0.0.{id}:2049")],
    }
}

/// Wait (bounded) until `f` holds; false if it never did.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}
