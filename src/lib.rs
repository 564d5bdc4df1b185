//! ringnfs: an NFSv4.1 server on io_uring, thread-per-core, with session trunking.
//!
//! Layers, bottom up: [`xdr`] → [`rpc`] → [`transport`] (io_uring runtime) feeding
//! [`nfs4`] (COMPOUND engine) over [`state`] (sessions, bindings, leases). [`client`] is
//! an NFSv4.1 client used by the tests and the load generator in [`bench`].

pub use ringnfs_client as client;
pub use ringnfs_client::bench;
pub mod config;
pub use ringnfs_control as control;
pub use ringnfs_fs as fs;
#[doc(hidden)]
pub mod fuzzing;
pub use ringnfs_engine as nfs4;
pub use ringnfs_proto::rpc;
pub mod server;
pub use ringnfs_proto::xdr;
pub use ringnfs_service as service;
pub use ringnfs_state as state;
#[doc(hidden)]
pub use ringnfs_testkit as test_support;
pub use ringnfs_transport as transport;
