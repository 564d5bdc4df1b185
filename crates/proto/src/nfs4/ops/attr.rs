//! Attributes and access (RFC 8881 §18.1, §18.7, §18.15, §18.30, §18.31): ACCESS,
//! GETATTR, SETATTR, VERIFY and NVERIFY. fattr4 itself is [`Fattr4`].

use super::Xdr;
use super::common::Fattr4;
use crate::nfs4::consts::NfsStatus;
use crate::nfs4::types::{decode_bitmap, encode_bitmap};
use crate::stateid::Stateid;
use crate::xdr::{XdrDecoder, XdrEncoder, XdrError};

/// GETATTR4args: bitmap4 attr_request (at most `MAX_BITMAP_WORDS` words).
///
/// The handler must still check: set-only attributes requested (NFS4ERR_INVAL);
/// unsupported ones are left out of the answer, not an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetAttrArgs {
    pub attr_request: Vec<u32>,
}

impl Xdr<'_> for GetAttrArgs {
    #[inline]
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(GetAttrArgs {
            attr_request: decode_bitmap(d)?,
        })
    }

    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        encode_bitmap(out, &self.attr_request);
    }
}

/// GETATTR4resok: fattr4 obj_attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetAttrResOk<'a> {
    pub attrs: Fattr4<'a>,
}

impl<'a> Xdr<'a> for GetAttrResOk<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(GetAttrResOk {
            attrs: Fattr4::decode(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.attrs.encode(out);
    }
}

/// SETATTR4args: stateid4 stateid, fattr4 obj_attributes.
///
/// The handler must still check the attributes (see [`Fattr4`]: ATTRNOTSUPP, INVAL
/// for read-only ones, mode > 07777 and nseconds ≥ 10^9, BADOWNER, BADXDR for values
/// that do not match the bitmap) and the stateid when the size changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAttrArgs<'a> {
    pub stateid: Stateid,
    pub attrs: Fattr4<'a>,
}

impl<'a> Xdr<'a> for SetAttrArgs<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(SetAttrArgs {
            stateid: Stateid::decode(d)?,
            attrs: Fattr4::decode(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.stateid.encode(out);
        self.attrs.encode(out);
    }
}

/// SETATTR4res: unlike other results, attrsset follows the status whatever it is
/// (empty when nothing was set).
///
/// The `Xdr` form is the whole SETATTR4res. A COMPOUND's result loop reads and writes
/// every status itself: it uses [`SetAttrRes::decode_body`] / [`SetAttrRes::encode_body`]
/// for what follows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetAttrRes {
    pub status: NfsStatus,
    pub attrsset: Vec<u32>,
}

impl SetAttrRes {
    /// attrsset, after a status already read.
    pub fn decode_body(status: NfsStatus, d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(SetAttrRes {
            status,
            attrsset: decode_bitmap(d)?,
        })
    }

    /// attrsset, after a status already written.
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        encode_bitmap(out, &self.attrsset);
    }
}

impl Xdr<'_> for SetAttrRes {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        let status = NfsStatus::from_code(d.u32()?);
        Self::decode_body(status, d)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.status.code());
        self.encode_body(out);
    }
}

/// ACCESS4args: the ACCESS4_* bits asked about. Bits the server does not know are
/// not an error: the handler leaves them out of `supported`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccessArgs {
    pub access: u32,
}

impl Xdr<'_> for AccessArgs {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(AccessArgs { access: d.u32()? })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.access);
    }
}

/// ACCESS4resok.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccessResOk {
    pub supported: u32,
    pub access: u32,
}

impl Xdr<'_> for AccessResOk {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(AccessResOk {
            supported: d.u32()?,
            access: d.u32()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.supported);
        out.put_u32(self.access);
    }
}

/// VERIFY4args: fattr4 obj_attributes, compared with the current filehandle's.
///
/// The handler must still check (see [`Fattr4`]): unsupported attributes
/// (NFS4ERR_ATTRNOTSUPP), set-only ones and rdattr_error (NFS4ERR_INVAL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyArgs<'a> {
    pub attrs: Fattr4<'a>,
}

impl<'a> Xdr<'a> for VerifyArgs<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(VerifyArgs {
            attrs: Fattr4::decode(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.attrs.encode(out);
    }
}

/// NVERIFY4args: the same as VERIFY's.
pub type NverifyArgs<'a> = VerifyArgs<'a>;

#[cfg(test)]
mod tests {
    use super::super::common::tests::bitmap;
    use super::super::roundtrip;
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn attr_ops_round_trip(mask in bitmap(), other in bitmap(), vals in vec(any::<u8>(), 0..64),
                               seqid in any::<u32>(), sid in any::<[u8; 12]>(),
                               w in any::<[u32; 3]>()) {
            let attrs = Fattr4 { mask: mask.clone(), vals: &vals };
            roundtrip!(GetAttrArgs { attr_request: mask.clone() });
            roundtrip!(GetAttrResOk { attrs: attrs.clone() });
            roundtrip!(SetAttrArgs { stateid: Stateid { seqid, other: sid }, attrs: attrs.clone() });
            let status = NfsStatus::from_code(w[0]);
            roundtrip!(SetAttrRes { status, attrsset: other.clone() });
            roundtrip!(AccessArgs { access: w[1] });
            roundtrip!(AccessResOk { supported: w[1], access: w[2] });
            roundtrip!(VerifyArgs { attrs });
            // What follows the status alone.
            let r = SetAttrRes { status, attrsset: other };
            let mut body = Vec::new();
            r.encode_body(&mut body);
            prop_assert_eq!(&r.to_bytes()[4..], &body[..]);
            prop_assert_eq!(SetAttrRes::decode_body(status, &mut XdrDecoder::new(&body)).unwrap(), r);
        }
    }
}
