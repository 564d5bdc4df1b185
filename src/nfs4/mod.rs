//! NFSv4.1 COMPOUND engine.

pub mod consts;
