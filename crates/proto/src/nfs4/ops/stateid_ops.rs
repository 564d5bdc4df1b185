//! Operations on stateids alone (RFC 8881 §18.48, §18.38, §18.6): TEST_STATEID,
//! FREE_STATEID and DELEGRETURN. Their results other than TEST_STATEID's are void.

use super::{MAX_ARRAY, Xdr};
use crate::nfs4::consts::NfsStatus;
use crate::stateid::Stateid;
use crate::xdr::{XdrDecoder, XdrEncoder, XdrError};

/// Encoded size of a stateid4.
const STATEID_LEN: usize = 16;

/// TEST_STATEID4args: at most [`MAX_ARRAY`] stateids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestStateidArgs {
    pub stateids: Vec<Stateid>,
}

impl Xdr<'_> for TestStateidArgs {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        let n = d.array_len(MAX_ARRAY, STATEID_LEN)?;
        Ok(TestStateidArgs {
            stateids: (0..n)
                .map(|_| Stateid::decode(d))
                .collect::<Result<_, _>>()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.stateids.len() as u32);
        for s in &self.stateids {
            s.encode(out);
        }
    }
}

/// TEST_STATEID4resok: one nfsstat4 per stateid tested, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestStateidResOk {
    pub status_codes: Vec<NfsStatus>,
}

impl Xdr<'_> for TestStateidResOk {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        let n = d.array_len(MAX_ARRAY, 4)?;
        Ok(TestStateidResOk {
            status_codes: (0..n)
                .map(|_| Ok(NfsStatus::from_code(d.u32()?)))
                .collect::<Result<_, XdrError>>()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.status_codes.len() as u32);
        for s in &self.status_codes {
            out.put_u32(s.code());
        }
    }
}

stateid_only! {
    /// FREE_STATEID4args.
    FreeStateidArgs
}

stateid_only! {
    /// DELEGRETURN4args.
    DelegReturnArgs
}

#[cfg(test)]
mod tests {
    use super::super::open::tests::stateid;
    use super::super::roundtrip;
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn stateid_ops_round_trip(ids in vec(stateid(), 0..40), codes in vec(any::<u32>(), 0..40)) {
            let one = ids.first().copied().unwrap_or(Stateid::INVALID);
            roundtrip!(TestStateidArgs { stateids: ids });
            let status_codes = codes.into_iter().map(NfsStatus::from_code).collect();
            roundtrip!(TestStateidResOk { status_codes });
            roundtrip!(FreeStateidArgs { stateid: one });
            roundtrip!(DelegReturnArgs { stateid: one });
        }
    }

    #[test]
    fn test_stateid_counts_are_bounded() {
        // More than MAX_ARRAY, or more than the buffer holds: refused before allocating.
        let mut v = Vec::new();
        v.put_u32(MAX_ARRAY as u32 + 1);
        assert!(TestStateidArgs::from_bytes(&v).is_err());
        let mut v = Vec::new();
        v.put_u32(2);
        Stateid::ANONYMOUS.encode(&mut v);
        assert!(TestStateidArgs::from_bytes(&v).is_err());
    }
}
