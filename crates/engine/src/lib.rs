//! NFSv4.1 COMPOUND engine: decoding, the per-op descriptor table, the ordering and
//! session rules, and the op handlers (one group per file under `ops/`). No I/O here:
//! the engine takes a decoded call and appends the reply.

pub mod attrs;
pub mod callback;
pub mod cb_dispatch;
pub mod compound;
pub mod ctx;
pub use ringnfs_proto::nfs4::consts;
pub mod export;
pub mod fh;
pub mod offload;
pub mod ops;
pub mod optable;
pub mod program;
pub mod recall;
mod record_wait;
pub mod row;
pub mod rpcsec_gss;
mod wait_before;
pub use ringnfs_proto::nfs4::types;

pub use compound::Nfs4Engine;
pub use ctx::CompoundCtx;
#[cfg(test)]
mod tests;
