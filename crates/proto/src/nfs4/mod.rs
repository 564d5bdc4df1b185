//! NFSv4.1/4.2 protocol constants and the XDR of structures several operations share.

pub mod attr;
pub mod consts;
pub mod ops;
pub mod types;
