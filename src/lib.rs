//! ringnfs: an NFSv4.1 server on io_uring, thread-per-core, with session trunking.
//!
//! The layers are the workspace's crates (ARCHITECTURE.md): `ringnfs-proto` (wire types)
//! under `ringnfs-transport`, `ringnfs-fs` and `ringnfs-state`, under `ringnfs-engine`
//! (COMPOUND engine), under `ringnfs-control`; `ringnfs-client` (client and load
//! generator) on the wire types only. This crate wires them into a server
//! ([`server`], [`options`], [`config`]) and re-exports each under one path.

pub use ringnfs_client as client;
pub use ringnfs_client::bench;
pub mod config;
pub use ringnfs_control as control;
pub use ringnfs_engine as nfs4;
pub use ringnfs_fs as fs;
pub mod options;
pub use ringnfs_proto::rpc;
pub mod server;
pub use ringnfs_proto::xdr;
pub use ringnfs_service as service;
pub use ringnfs_state as state;
pub use ringnfs_transport as transport;
