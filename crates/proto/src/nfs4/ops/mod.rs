//! Each operation's arguments and results, with their XDR beside them (RFC 8881 §18):
//! one file per group of operations, one definition that the server decodes and the
//! client encodes (and the other way round for results). Byte strings borrow from the
//! buffer they were decoded from, so the server reads a WRITE's data where it landed.
//!
//! Decoders check the XDR (lengths, union discriminants, limits); what an argument
//! *means* (an invalid enum value that is still valid XDR, a name too long for a
//! component) is the handler's to judge, so it can answer the status RFC 8881 gives.

/// Declares an XDR structure that is one stateid4 and nothing else (LOCK4resok,
/// LOCKU4resok, OPEN_DOWNGRADE4resok, CLOSE4res's stateid, FREE_STATEID4args,
/// DELEGRETURN4args): the type and its codec, written once.
macro_rules! stateid_only {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            pub stateid: $crate::stateid::Stateid,
        }

        impl $crate::nfs4::ops::Xdr<'_> for $name {
            #[inline]
            fn decode(
                d: &mut $crate::xdr::XdrDecoder<'_>,
            ) -> Result<Self, $crate::xdr::XdrError> {
                Ok($name {
                    stateid: $crate::stateid::Stateid::decode(d)?,
                })
            }

            #[inline]
            fn encode(&self, out: &mut Vec<u8>) {
                self.stateid.encode(out);
            }
        }
    };
}

pub mod attr;
pub mod callback;
pub mod common;
pub mod copy;
pub mod dir;
pub mod fh;
pub mod io;
pub mod lock;
pub mod open;
pub mod session;
pub mod space;
pub mod stateid_ops;
pub mod xattr;

pub use attr::*;
pub use callback::*;
pub use common::*;
pub use copy::*;
pub use dir::*;
pub use fh::*;
pub use io::*;
pub use lock::*;
pub use open::*;
pub use session::*;
pub use space::*;
pub use stateid_ops::*;
pub use xattr::*;

use crate::xdr::{XdrDecoder, XdrError};

/// A value with an XDR form: an operation's arguments or its result.
pub trait Xdr<'a>: Sized {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError>;
    fn encode(&self, out: &mut Vec<u8>);

    /// Decode a whole buffer (nothing may be left over).
    fn from_bytes(b: &'a [u8]) -> Result<Self, XdrError> {
        let mut d = XdrDecoder::new(b);
        let v = Self::decode(&mut d)?;
        if d.remaining() != 0 {
            return Err(XdrError::BadValue);
        }
        Ok(v)
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }
}

/// void: the arguments of the operations that take none (PUTROOTFH, PUTPUBFH, GETFH,
/// SAVEFH, RESTOREFH, LOOKUPP, READLINK), so every operation decodes through [`Xdr`].
impl Xdr<'_> for () {
    fn decode(_: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(())
    }

    fn encode(&self, _: &mut Vec<u8>) {}
}

/// sessionid4: sixteen bytes, no length (the server's and the callback ops').
pub(crate) fn sessionid(d: &mut XdrDecoder<'_>) -> Result<crate::ids::SessionId, XdrError> {
    Ok(crate::ids::SessionId(
        d.array::<{ crate::nfs4::consts::NFS4_SESSIONID_SIZE }>()?,
    ))
}

/// Largest array this codec accepts where the RFC sets no bound (bitmaps have their
/// own, smaller limit): enough for any real request, small enough that a hostile
/// length cannot make us allocate much.
pub const MAX_ARRAY: usize = 1024;

/// The per-op property tests' check: `$v` encodes, and decodes back to itself with
/// nothing left over.
#[cfg(test)]
macro_rules! roundtrip {
    ($v:expr) => {{
        let v = $v;
        let bytes = $crate::nfs4::ops::Xdr::to_bytes(&v);
        let back = $crate::nfs4::ops::decode_like(&v, &bytes);
        assert_eq!(back, v);
    }};
}
#[cfg(test)]
pub(crate) use roundtrip;

/// Decode `b` as the type of `_like` (which only names the type).
#[cfg(test)]
pub(crate) fn decode_like<'a, T: Xdr<'a>>(_like: &T, b: &'a [u8]) -> T {
    T::from_bytes(b).expect("decodes")
}
