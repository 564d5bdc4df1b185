//! Filehandles (RFC 8881 §18.8, §18.13, §18.14, §18.19–§18.21, §18.27, §18.28): PUTFH,
//! GETFH and LOOKUP.
//!
//! PUTROOTFH, PUTPUBFH, SAVEFH, RESTOREFH and LOOKUPP take no arguments and return
//! nothing but their status, so they have no types here.

use super::Xdr;
use super::common::{NameArgs, decode_borrowed};
use crate::nfs4::consts::NFS4_FHSIZE;
use crate::xdr::{XdrDecoder, XdrEncoder, XdrError};

/// PUTFH4args: nfs_fh4 object.
///
/// nfs_fh4 is opaque<NFS4_FHSIZE>, but a longer handle still decodes (bounded by the
/// buffer): the handler must answer it with NFS4ERR_BADHANDLE, as it does a handle of
/// the right size that it did not issue (and NFS4ERR_STALE one it no longer knows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutFhArgs<'a> {
    pub fh: &'a [u8],
}

impl<'a> Xdr<'a> for PutFhArgs<'a> {
    #[inline]
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(PutFhArgs {
            fh: decode_borrowed(d)?,
        })
    }

    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_opaque(self.fh);
    }
}

/// GETFH4resok: nfs_fh4 object, at most NFS4_FHSIZE bytes (the server only returns
/// handles it made).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetFhResOk<'a> {
    pub fh: &'a [u8],
}

impl<'a> Xdr<'a> for GetFhResOk<'a> {
    #[inline]
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(GetFhResOk {
            fh: d.opaque(NFS4_FHSIZE)?,
        })
    }

    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_opaque(self.fh);
    }
}

/// LOOKUP4args: component4 objname. The handler checks the name (see
/// [`decode_component`](super::common::decode_component)) after NFS4ERR_NOTDIR /
/// NFS4ERR_SYMLINK for a current filehandle that is not a directory, and then search
/// permission on the directory (NFS4ERR_ACCESS).
pub type LookupArgs<'a> = NameArgs<'a>;

#[cfg(test)]
mod tests {
    use super::super::roundtrip;
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn fh_ops_round_trip(fh in vec(any::<u8>(), 0..=NFS4_FHSIZE),
                             long in vec(any::<u8>(), 0..400),
                             name in vec(any::<u8>(), 0..400)) {
            roundtrip!(PutFhArgs { fh: &fh });
            // Too long for nfs_fh4, still decoded: the handler's NFS4ERR_BADHANDLE.
            roundtrip!(PutFhArgs { fh: &long });
            roundtrip!(GetFhResOk { fh: &fh });
            // Longer than NFS4_OPAQUE_LIMIT or NAME_MAX: the handler's NFS4ERR_NAMETOOLONG.
            roundtrip!(LookupArgs { name: &name });
        }
    }

    #[test]
    fn a_handle_longer_than_the_input_is_bad_xdr() {
        // The length says 64 bytes, four follow.
        assert!(PutFhArgs::from_bytes(&[0, 0, 0, 64, 1, 2, 3, 4]).is_err());
        let long = vec![7u8; NFS4_FHSIZE + 1];
        assert!(GetFhResOk::from_bytes(&PutFhArgs { fh: &long }.to_bytes()).is_err());
    }
}
