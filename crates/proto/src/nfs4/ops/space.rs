//! Sparse files and space (RFC 7862 §15.1, §15.4, §15.10, §15.11): ALLOCATE,
//! DEALLOCATE, SEEK and READ_PLUS.
//!
//! `data_content4` values other than DATA and HOLE decode (they are valid XDR): SEEK's
//! handler answers NFS4ERR_UNION_NOTSUPP for them. READ_PLUS's reply is written by the
//! server segment by segment ([`ReadPlusSegment::encode_data_head`]); the client decodes
//! the whole [`ReadPlusResOk`].

use super::{MAX_ARRAY, Xdr};
use crate::stateid::Stateid;
use crate::xdr::{XdrDecoder, XdrEncoder, XdrError};

/// data_content4.
pub mod data_content4 {
    pub const DATA: u32 = 0;
    pub const HOLE: u32 = 1;
}

// ---- ALLOCATE, DEALLOCATE ---------------------------------------------------------------

/// ALLOCATE4args and DEALLOCATE4args (the same three fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceArgs {
    pub stateid: Stateid,
    pub offset: u64,
    pub length: u64,
}

impl Xdr<'_> for SpaceArgs {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(SpaceArgs {
            stateid: Stateid::decode(d)?,
            offset: d.u64()?,
            length: d.u64()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.stateid.encode(out);
        out.put_u64(self.offset);
        out.put_u64(self.length);
    }
}

// ---- SEEK -------------------------------------------------------------------------------

/// SEEK4args; `what` is the data_content4 as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeekArgs {
    pub stateid: Stateid,
    pub offset: u64,
    pub what: u32,
}

impl Xdr<'_> for SeekArgs {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(SeekArgs {
            stateid: Stateid::decode(d)?,
            offset: d.u64()?,
            what: d.u32()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.stateid.encode(out);
        out.put_u64(self.offset);
        out.put_u32(self.what);
    }
}

/// seek_res4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeekResOk {
    pub eof: bool,
    pub offset: u64,
}

impl SeekResOk {
    pub const LEN: usize = 12;
}

impl Xdr<'_> for SeekResOk {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(SeekResOk {
            eof: d.bool()?,
            offset: d.u64()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_bool(self.eof);
        out.put_u64(self.offset);
    }
}

// ---- READ_PLUS --------------------------------------------------------------------------

/// READ_PLUS4args: READ4args' fields.
pub type ReadPlusArgs = super::ReadArgs;

/// One read_plus_content: data at an offset, or a hole (zeros) of a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPlusSegment<'a> {
    Data { offset: u64, data: &'a [u8] },
    Hole { offset: u64, length: u64 },
}

impl ReadPlusSegment<'_> {
    /// Bytes of a data segment's XDR before its data: discriminant, offset, length.
    pub const DATA_HEAD_LEN: usize = 16;
    /// Bytes of a hole segment's XDR: discriminant, offset, length.
    pub const HOLE_LEN: usize = 20;

    /// Write the head of a data segment at `offset` whose data (of `len` bytes) the
    /// caller appends next, then pads to four bytes.
    pub fn encode_data_head(out: &mut Vec<u8>, offset: u64, len: usize) {
        out.put_u32(data_content4::DATA);
        out.put_u64(offset);
        out.put_u32(len as u32);
    }
}

impl<'a> Xdr<'a> for ReadPlusSegment<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        match d.u32()? {
            data_content4::DATA => Ok(ReadPlusSegment::Data {
                offset: d.u64()?,
                data: d.opaque(usize::MAX)?,
            }),
            data_content4::HOLE => Ok(ReadPlusSegment::Hole {
                offset: d.u64()?,
                length: d.u64()?,
            }),
            _ => Err(XdrError::BadValue),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            ReadPlusSegment::Data { offset, data } => {
                out.put_u32(data_content4::DATA);
                out.put_u64(offset);
                out.put_opaque(data);
            }
            ReadPlusSegment::Hole { offset, length } => {
                out.put_u32(data_content4::HOLE);
                out.put_u64(offset);
                out.put_u64(length);
            }
        }
    }
}

/// read_plus_res4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPlusResOk<'a> {
    pub eof: bool,
    pub contents: Vec<ReadPlusSegment<'a>>,
}

impl<'a> Xdr<'a> for ReadPlusResOk<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        let eof = d.bool()?;
        let n = d.u32()? as usize;
        // A segment is at least 16 bytes: a count beyond what is left is bad XDR.
        if n > MAX_ARRAY.max(d.remaining() / 16) {
            return Err(XdrError::BadValue);
        }
        let contents = (0..n)
            .map(|_| ReadPlusSegment::decode(d))
            .collect::<Result<_, _>>()?;
        Ok(ReadPlusResOk { eof, contents })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_bool(self.eof);
        out.put_u32(self.contents.len() as u32);
        for s in &self.contents {
            s.encode(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::open::tests::{bytes, stateid};
    use super::super::roundtrip;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn space_types_round_trip(sid in stateid(), w in any::<[u64; 3]>(), what in any::<u32>(),
                                  eof in any::<bool>(), data in bytes(100)) {
            roundtrip!(SpaceArgs { stateid: sid, offset: w[0], length: w[1] });
            roundtrip!(SeekArgs { stateid: sid, offset: w[0], what });
            roundtrip!(SeekResOk { eof, offset: w[2] });
            roundtrip!(ReadPlusResOk {
                eof,
                contents: vec![
                    ReadPlusSegment::Hole { offset: w[0], length: w[1] },
                    ReadPlusSegment::Data { offset: w[2], data: &data },
                ],
            });
            prop_assert_eq!(SeekResOk { eof, offset: w[2] }.to_bytes().len(), SeekResOk::LEN);
        }

        /// A data segment written head first, then its data and padding, is the
        /// segment `encode` writes.
        #[test]
        fn data_head_then_data_is_the_segment(offset in any::<u64>(), data in bytes(40)) {
            let mut whole = Vec::new();
            ReadPlusSegment::Data { offset, data: &data }.encode(&mut whole);
            let mut out = Vec::new();
            ReadPlusSegment::encode_data_head(&mut out, offset, data.len());
            prop_assert_eq!(out.len(), ReadPlusSegment::DATA_HEAD_LEN);
            out.extend_from_slice(&data);
            out.resize(ReadPlusSegment::DATA_HEAD_LEN + crate::xdr::pad4(data.len()), 0);
            prop_assert_eq!(out, whole);
        }
    }

    #[test]
    fn an_unknown_content_or_an_overlong_count_is_bad_xdr() {
        let mut b = Vec::new();
        b.put_bool(false);
        b.put_u32(1);
        b.put_u32(7);
        assert!(ReadPlusResOk::from_bytes(&b).is_err());
        let mut b = Vec::new();
        b.put_bool(false);
        b.put_u32(u32::MAX);
        assert!(ReadPlusResOk::from_bytes(&b).is_err());
        assert_eq!(
            ReadPlusSegment::Hole {
                offset: 1,
                length: 2
            }
            .to_bytes()
            .len(),
            ReadPlusSegment::HOLE_LEN
        );
    }
}
