//! Op handlers, one group per file.

pub mod fh;
pub mod session;
