//! Back-channel operations (RFC 8881 §20): what the server sends in CB_COMPOUND and
//! what the client answers. The server encodes the arguments and decodes the results;
//! the client the other way round.

use super::{MAX_ARRAY, Xdr, sessionid};
use crate::ids::SessionId;
use crate::nfs4::consts::NFS4_SESSIONID_SIZE;
use crate::xdr::{XdrDecoder, XdrEncoder, XdrError};

/// CB_SEQUENCE4args (§20.9.1). `referring_calls` is referring_call_list4<>: per
/// session, its (sequenceid, slotid) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CbSequenceArgs {
    pub sessionid: SessionId,
    pub sequenceid: u32,
    pub slotid: u32,
    pub highest_slotid: u32,
    pub cachethis: bool,
    pub referring_calls: Vec<(SessionId, Vec<(u32, u32)>)>,
}

impl Xdr<'_> for CbSequenceArgs {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        let id = sessionid(d)?;
        let sequenceid = d.u32()?;
        let slotid = d.u32()?;
        let highest_slotid = d.u32()?;
        let cachethis = d.bool()?;
        let n = d.array_len(MAX_ARRAY, NFS4_SESSIONID_SIZE + 4)?;
        let mut referring_calls = Vec::with_capacity(n);
        for _ in 0..n {
            let sid = sessionid(d)?;
            let m = d.array_len(MAX_ARRAY, 8)?;
            let mut calls = Vec::with_capacity(m);
            for _ in 0..m {
                calls.push((d.u32()?, d.u32()?));
            }
            referring_calls.push((sid, calls));
        }
        Ok(CbSequenceArgs {
            sessionid: id,
            sequenceid,
            slotid,
            highest_slotid,
            cachethis,
            referring_calls,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed(&self.sessionid.0);
        out.put_u32(self.sequenceid);
        out.put_u32(self.slotid);
        out.put_u32(self.highest_slotid);
        out.put_bool(self.cachethis);
        out.put_u32(self.referring_calls.len() as u32);
        for (sid, calls) in &self.referring_calls {
            out.put_fixed(&sid.0);
            out.put_u32(calls.len() as u32);
            for &(sequenceid, slotid) in calls {
                out.put_u32(sequenceid);
                out.put_u32(slotid);
            }
        }
    }
}

/// CB_SEQUENCE4resok (§20.9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CbSequenceResOk {
    pub sessionid: SessionId,
    pub sequenceid: u32,
    pub slotid: u32,
    pub highest_slotid: u32,
    pub target_highest_slotid: u32,
}

impl Xdr<'_> for CbSequenceResOk {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(CbSequenceResOk {
            sessionid: sessionid(d)?,
            sequenceid: d.u32()?,
            slotid: d.u32()?,
            highest_slotid: d.u32()?,
            target_highest_slotid: d.u32()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed(&self.sessionid.0);
        out.put_u32(self.sequenceid);
        out.put_u32(self.slotid);
        out.put_u32(self.highest_slotid);
        out.put_u32(self.target_highest_slotid);
    }
}

#[cfg(test)]
mod tests {
    use super::super::roundtrip;
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn sid() -> impl Strategy<Value = SessionId> {
        any::<[u8; 16]>().prop_map(SessionId)
    }

    proptest! {
        #[test]
        fn cb_sequence_args(
            s in sid(),
            w in any::<[u32; 3]>(),
            cachethis in any::<bool>(),
            referring_calls in vec((sid(), vec(any::<(u32, u32)>(), 0..3)), 0..3),
        ) {
            roundtrip!(CbSequenceArgs {
                sessionid: s,
                sequenceid: w[0],
                slotid: w[1],
                highest_slotid: w[2],
                cachethis,
                referring_calls,
            });
        }

        #[test]
        fn cb_sequence_resok(s in sid(), w in any::<[u32; 4]>()) {
            roundtrip!(CbSequenceResOk {
                sessionid: s,
                sequenceid: w[0],
                slotid: w[1],
                highest_slotid: w[2],
                target_highest_slotid: w[3],
            });
        }
    }
}

/// CB_GETATTR4args (RFC 8881 §20.1): what the holder of a write delegation knows of
/// file `fh` (servers ask for the size and the change attribute, §10.4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CbGetattrArgs<'a> {
    pub fh: &'a [u8],
    pub attr_request: Vec<u32>,
}

impl<'a> Xdr<'a> for CbGetattrArgs<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(CbGetattrArgs {
            fh: d.opaque(crate::nfs4::consts::NFS4_FHSIZE)?,
            attr_request: crate::nfs4::types::decode_bitmap(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_opaque(self.fh);
        crate::nfs4::types::encode_bitmap(out, &self.attr_request);
    }
}

/// The two attributes a CB_GETATTR asks for and a CB_GETATTR4resok carries: the file's
/// change attribute and size as the holder sees them (with its cached writes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CbGetattrAttrs {
    pub change: Option<u64>,
    pub size: Option<u64>,
}

impl CbGetattrAttrs {
    /// The attribute mask asking for both (FATTR4_CHANGE, FATTR4_SIZE).
    pub const REQUEST: [u32; 1] =
        [(1 << crate::nfs4::attr::CHANGE) | (1 << crate::nfs4::attr::SIZE)];
}

/// CB_GETATTR4resok: a fattr4 holding at most the change attribute and the size (in
/// attribute-number order); any other attribute in it is an error (they were not asked
/// for, and their values' lengths are not known here).
impl Xdr<'_> for CbGetattrAttrs {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        let mask = crate::nfs4::types::decode_bitmap(d)?;
        let vals = d.opaque(u32::MAX as usize)?;
        let (change_bit, size_bit) = (1 << crate::nfs4::attr::CHANGE, 1 << crate::nfs4::attr::SIZE);
        let first = mask.first().copied().unwrap_or(0);
        if first & !(change_bit | size_bit) != 0 || mask.iter().skip(1).any(|w| *w != 0) {
            return Err(XdrError::BadValue);
        }
        let mut v = XdrDecoder::new(vals);
        let change = (first & change_bit != 0).then(|| v.u64()).transpose()?;
        let size = (first & size_bit != 0).then(|| v.u64()).transpose()?;
        Ok(CbGetattrAttrs { change, size })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let mut mask = 0;
        let mut vals = Vec::with_capacity(16);
        if let Some(c) = self.change {
            mask |= 1 << crate::nfs4::attr::CHANGE;
            vals.put_u64(c);
        }
        if let Some(s) = self.size {
            mask |= 1 << crate::nfs4::attr::SIZE;
            vals.put_u64(s);
        }
        crate::nfs4::types::encode_bitmap(out, &[mask]);
        out.put_opaque(&vals);
    }
}

/// CB_RECALL4args (RFC 8881 §20.2): give delegation `stateid` of file `fh` back
/// (`truncate`: the file is about to be truncated to 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CbRecallArgs<'a> {
    pub stateid: crate::stateid::Stateid,
    pub truncate: bool,
    pub fh: &'a [u8],
}

impl<'a> Xdr<'a> for CbRecallArgs<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(CbRecallArgs {
            stateid: crate::stateid::Stateid::decode(d)?,
            truncate: d.bool()?,
            fh: d.opaque(crate::nfs4::consts::NFS4_FHSIZE)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.stateid.encode(out);
        out.put_bool(self.truncate);
        out.put_opaque(self.fh);
    }
}
