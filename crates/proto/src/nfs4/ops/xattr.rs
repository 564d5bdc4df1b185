//! Extended attributes (RFC 8276 §8.4): GETXATTR, SETXATTR, LISTXATTRS, REMOVEXATTR.
//!
//! Names travel without a namespace: they are the `user.` namespace's (the server adds
//! and strips the prefix). Names decode up to NFS4_OPAQUE_LIMIT bytes and values with
//! no bound of their own (the record is the bound); the handler judges lengths against
//! what the file system takes (NFS4ERR_NAMETOOLONG, NFS4ERR_XATTR2BIG).
//! `setxattr_option4` decodes as sent: an undefined value is the handler's
//! NFS4ERR_INVAL.

use super::{ChangeInfo, MAX_ARRAY, Xdr};
use crate::nfs4::consts::NFS4_OPAQUE_LIMIT;
use crate::xdr::{XdrDecoder, XdrEncoder, XdrError, pad4};

/// setxattr_option4.
pub mod setxattr_option4 {
    pub const EITHER: u32 = 0;
    pub const CREATE: u32 = 1;
    pub const REPLACE: u32 = 2;
}

/// GETXATTR4args and REMOVEXATTR4args: one xattrkey4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XattrNameArgs<'a> {
    pub name: &'a [u8],
}

impl<'a> Xdr<'a> for XattrNameArgs<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(XattrNameArgs {
            name: d.opaque(NFS4_OPAQUE_LIMIT)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_opaque(self.name);
    }
}

/// GETXATTR4resok: the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetXattrResOk<'a> {
    pub value: &'a [u8],
}

impl<'a> Xdr<'a> for GetXattrResOk<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(GetXattrResOk {
            value: d.opaque(usize::MAX)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_opaque(self.value);
    }
}

/// SETXATTR4args; `option` is the setxattr_option4 as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetXattrArgs<'a> {
    pub option: u32,
    pub name: &'a [u8],
    pub value: &'a [u8],
}

impl<'a> Xdr<'a> for SetXattrArgs<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(SetXattrArgs {
            option: d.u32()?,
            name: d.opaque(NFS4_OPAQUE_LIMIT)?,
            value: d.opaque(usize::MAX)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.option);
        out.put_opaque(self.name);
        out.put_opaque(self.value);
    }
}

/// SETXATTR4resok and REMOVEXATTR4resok: the change_info4 of the object.
pub type XattrChangeResOk = ChangeInfo;

/// LISTXATTRS4args.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListXattrsArgs {
    pub cookie: u64,
    pub maxcount: u32,
}

impl Xdr<'_> for ListXattrsArgs {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(ListXattrsArgs {
            cookie: d.u64()?,
            maxcount: d.u32()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.cookie);
        out.put_u32(self.maxcount);
    }
}

/// LISTXATTRS4resok.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListXattrsResOk<'a> {
    pub cookie: u64,
    pub names: Vec<&'a [u8]>,
    pub eof: bool,
}

impl ListXattrsResOk<'_> {
    /// Bytes of the resok besides its names: cookie, array count, eof.
    pub const FRAME_LEN: usize = 8 + 4 + 4;

    /// Bytes one name takes in the array.
    pub fn name_len(name: &[u8]) -> usize {
        4 + pad4(name.len())
    }
}

impl<'a> Xdr<'a> for ListXattrsResOk<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        let cookie = d.u64()?;
        let n = d.u32()? as usize;
        if n > MAX_ARRAY.max(d.remaining() / 4) {
            return Err(XdrError::BadValue);
        }
        let names = (0..n)
            .map(|_| d.opaque(NFS4_OPAQUE_LIMIT))
            .collect::<Result<_, _>>()?;
        Ok(ListXattrsResOk {
            cookie,
            names,
            eof: d.bool()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.cookie);
        out.put_u32(self.names.len() as u32);
        for n in &self.names {
            out.put_opaque(n);
        }
        out.put_bool(self.eof);
    }
}

#[cfg(test)]
mod tests {
    use super::super::open::tests::bytes;
    use super::super::roundtrip;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn xattr_types_round_trip(name in bytes(40), value in bytes(300), option in any::<u32>(),
                                  cookie in any::<u64>(), maxcount in any::<u32>(),
                                  eof in any::<bool>()) {
            roundtrip!(XattrNameArgs { name: &name });
            roundtrip!(GetXattrResOk { value: &value });
            roundtrip!(SetXattrArgs { option, name: &name, value: &value });
            roundtrip!(ListXattrsArgs { cookie, maxcount });
            let r = ListXattrsResOk { cookie, names: vec![&name[..], b"b"], eof };
            prop_assert_eq!(r.to_bytes().len(),
                ListXattrsResOk::FRAME_LEN + r.names.iter().map(|n| ListXattrsResOk::name_len(n)).sum::<usize>());
            roundtrip!(r);
        }
    }
}
