//! ringnfs: an NFSv4.1 server on io_uring, thread-per-core, with session trunking.
//!
//! The layers are the workspace's crates (ARCHITECTURE.md): `ringnfs-proto` (wire types)
//! under `ringnfs-transport`, `ringnfs-fs` and `ringnfs-state`, under `ringnfs-engine`
//! (COMPOUND engine), under `ringnfs-control`; `ringnfs-client` (the client) on the wire
//! types only, and `ringnfs-bench` (the load generator) on the client. This crate wires
//! them into a server ([`server`], [`options`], [`config`]) and re-exports each but the
//! bench under one path: the bench is the separate executable `ringnfs-bench`, and
//! nothing here may name it, so the `ringnfs` binary does not link it.

pub use ringnfs_client as client;
pub mod cluster;
pub mod config;
pub mod exports;
pub mod manpages;
pub use ringnfs_control as control;
pub use ringnfs_engine as nfs4;
pub use ringnfs_fs as fs;
pub mod options;
pub use ringnfs_proto::rpc;
pub mod server;
pub mod systemd;
pub use ringnfs_proto::xdr;
pub use ringnfs_service as service;
pub use ringnfs_state as state;
pub use ringnfs_transport as transport;
