//! The cluster on etcd: membership, shared identity, cluster-wide grace, recovery records
//! (coming next). For now, [`etcd`]: the client those are built on.

pub mod etcd;
