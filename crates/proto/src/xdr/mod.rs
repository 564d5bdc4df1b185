//! XDR (RFC 4506): a zero-copy decoder over `&[u8]` and an encoder into `Vec<u8>`.

mod decode;
mod encode;
#[cfg(test)]
mod proptests;

pub use decode::{XdrDecoder, XdrError};
pub use encode::XdrEncoder;

/// Round `len` up to the 4-byte XDR unit.
#[inline]
pub const fn pad4(len: usize) -> usize {
    (len + 3) & !3
}
