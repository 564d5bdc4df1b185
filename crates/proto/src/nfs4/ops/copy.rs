//! Server-side copy and clone (RFC 7862 §15.2, §15.13): CLONE so far.
//!
//! Both take the source as the saved filehandle and the destination as the current one.

use super::Xdr;
use crate::stateid::Stateid;
use crate::xdr::{XdrDecoder, XdrEncoder, XdrError};

/// CLONE4args; a count of 0 means to the end of the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloneArgs {
    pub src_stateid: Stateid,
    pub dst_stateid: Stateid,
    pub src_offset: u64,
    pub dst_offset: u64,
    pub count: u64,
}

impl Xdr<'_> for CloneArgs {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(CloneArgs {
            src_stateid: Stateid::decode(d)?,
            dst_stateid: Stateid::decode(d)?,
            src_offset: d.u64()?,
            dst_offset: d.u64()?,
            count: d.u64()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.src_stateid.encode(out);
        self.dst_stateid.encode(out);
        out.put_u64(self.src_offset);
        out.put_u64(self.dst_offset);
        out.put_u64(self.count);
    }
}

#[cfg(test)]
mod tests {
    use super::super::open::tests::stateid;
    use super::super::roundtrip;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn copy_types_round_trip(s in stateid(), d in stateid(), w in any::<[u64; 3]>()) {
            roundtrip!(CloneArgs { src_stateid: s, dst_stateid: d, src_offset: w[0],
                                   dst_offset: w[1], count: w[2] });
        }
    }
}
