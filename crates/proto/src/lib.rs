//! The wire: XDR primitives (RFC 4506), ONC RPC messages, record marking and credentials
//! (RFC 5531), and NFSv4.1/4.2 constants, identifiers and shared structures
//! (RFC 8881, RFC 7862). No I/O, no server or client state: both sides build on this.

pub mod addr;
pub mod ids;
pub mod nfs4;
pub mod rpc;
pub mod stateid;
pub mod xdr;
