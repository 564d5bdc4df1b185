//! Data (RFC 8881 §18.22, §18.32, §18.3): READ, WRITE and COMMIT.
//!
//! WRITE's data borrows the request; its length is bounded only by the request (opaque
//! data<> has no XDR bound: the server's maxwrite is the handler's to enforce), and
//! stable_how4 is kept as sent (an undefined value is the handler's NFS4ERR_INVAL).
//! READ's data is written by the server straight into its reply: see
//! [`ReadResOk::encode_head`] and [`ReadResOk::finish_head`].

use super::Xdr;
use crate::nfs4::consts::NFS4_VERIFIER_SIZE;
use crate::stateid::Stateid;
use crate::xdr::{XdrDecoder, XdrEncoder, XdrError, pad4};

/// stable_how4.
pub mod stable_how4 {
    pub const UNSTABLE: u32 = 0;
    pub const DATA_SYNC: u32 = 1;
    pub const FILE_SYNC: u32 = 2;
}

// ---- READ -------------------------------------------------------------------------------

/// READ4args.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadArgs {
    pub stateid: Stateid,
    pub offset: u64,
    pub count: u32,
}

impl Xdr<'_> for ReadArgs {
    #[inline]
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(ReadArgs {
            stateid: Stateid::decode(d)?,
            offset: d.u64()?,
            count: d.u32()?,
        })
    }

    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        self.stateid.encode(out);
        out.put_u64(self.offset);
        out.put_u32(self.count);
    }
}

/// READ4resok.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadResOk<'a> {
    pub eof: bool,
    pub data: &'a [u8],
}

impl ReadResOk<'_> {
    /// Where eof is, from the start of the resok.
    pub const EOF_AT: usize = 0;
    /// Where the data's length is, from the start of the resok.
    pub const LEN_AT: usize = 4;
    /// Bytes before the data: eof and the length.
    pub const HEAD_LEN: usize = 8;

    /// Write the head of a READ4resok whose data is not known yet (eof false, length 0)
    /// and return where it starts. Append the data, then [`ReadResOk::finish_head`].
    #[inline]
    pub fn encode_head(out: &mut Vec<u8>) -> usize {
        let at = out.len();
        out.put_bool(false);
        out.put_u32(0);
        at
    }

    /// Complete the READ4resok whose head is at `at` (from
    /// [`ReadResOk::encode_head`]) once `len` bytes of data follow the head: set eof
    /// and the length, drop anything after the data and pad it to four bytes.
    #[inline]
    pub fn finish_head(out: &mut Vec<u8>, at: usize, eof: bool, len: usize) {
        let data_at = at + Self::HEAD_LEN;
        assert!(
            out.len() >= data_at + len,
            "READ data shorter than its length"
        );
        out.patch_u32(at + Self::EOF_AT, eof as u32);
        out.patch_u32(at + Self::LEN_AT, len as u32);
        out.truncate(data_at + len);
        out.resize(data_at + pad4(len), 0);
    }
}

impl<'a> Xdr<'a> for ReadResOk<'a> {
    #[inline]
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(ReadResOk {
            eof: d.bool()?,
            data: d.opaque(usize::MAX)?,
        })
    }

    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_bool(self.eof);
        out.put_opaque(self.data);
    }
}

// ---- WRITE ------------------------------------------------------------------------------

/// WRITE4args. `stable` is the stable_how4 as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteArgs<'a> {
    pub stateid: Stateid,
    pub offset: u64,
    pub stable: u32,
    pub data: &'a [u8],
}

impl<'a> Xdr<'a> for WriteArgs<'a> {
    #[inline]
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(WriteArgs {
            stateid: Stateid::decode(d)?,
            offset: d.u64()?,
            stable: d.u32()?,
            data: d.opaque(usize::MAX)?,
        })
    }

    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        self.stateid.encode(out);
        out.put_u64(self.offset);
        out.put_u32(self.stable);
        out.put_opaque(self.data);
    }
}

/// WRITE4resok. `committed` is a stable_how4, kept as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteResOk {
    pub count: u32,
    pub committed: u32,
    pub verifier: [u8; NFS4_VERIFIER_SIZE],
}

impl WriteResOk {
    /// Encoded size: count, committed, the verifier.
    pub const LEN: usize = 4 + 4 + NFS4_VERIFIER_SIZE;
}

impl Xdr<'_> for WriteResOk {
    #[inline]
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(WriteResOk {
            count: d.u32()?,
            committed: d.u32()?,
            verifier: d.array()?,
        })
    }

    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.count);
        out.put_u32(self.committed);
        out.put_fixed(&self.verifier);
    }
}

// ---- COMMIT -----------------------------------------------------------------------------

/// COMMIT4args.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitArgs {
    pub offset: u64,
    pub count: u32,
}

impl Xdr<'_> for CommitArgs {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(CommitArgs {
            offset: d.u64()?,
            count: d.u32()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.offset);
        out.put_u32(self.count);
    }
}

/// COMMIT4resok.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitResOk {
    pub verifier: [u8; NFS4_VERIFIER_SIZE],
}

impl Xdr<'_> for CommitResOk {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(CommitResOk {
            verifier: d.array()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed(&self.verifier);
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
        fn io_types_round_trip(sid in stateid(), offset in any::<u64>(), w in any::<[u32; 3]>(),
                               eof in any::<bool>(), data in bytes(600),
                               verifier in any::<[u8; 8]>()) {
            roundtrip!(ReadArgs { stateid: sid, offset, count: w[0] });
            roundtrip!(ReadResOk { eof, data: &data });
            roundtrip!(WriteArgs { stateid: sid, offset, stable: w[1], data: &data });
            roundtrip!(WriteResOk { count: w[0], committed: w[1], verifier });
            roundtrip!(CommitArgs { offset, count: w[2] });
            roundtrip!(CommitResOk { verifier });
            prop_assert_eq!(WriteResOk { count: 0, committed: 0, verifier }.to_bytes().len(),
                WriteResOk::LEN);
        }

        /// The head written first and finished later is the resok `encode` writes,
        /// whether the data was appended exactly or into a longer reservation.
        #[test]
        fn read_head_then_data_is_the_resok(prefix in bytes(9), eof in any::<bool>(),
                                            data in bytes(40), slack in 0usize..8) {
            let mut whole = prefix.clone();
            ReadResOk { eof, data: &data }.encode(&mut whole);
            let mut out = prefix.clone();
            let at = ReadResOk::encode_head(&mut out);
            prop_assert_eq!(at, prefix.len());
            out.extend_from_slice(&data);
            out.extend(std::iter::repeat_n(0xEE, slack));
            ReadResOk::finish_head(&mut out, at, eof, data.len());
            prop_assert_eq!(out, whole);
        }
    }

    #[test]
    fn undefined_stable_how_decodes() {
        let w = WriteArgs {
            stateid: Stateid::ANONYMOUS,
            offset: 0,
            stable: 7,
            data: b"x",
        };
        assert_eq!(WriteArgs::from_bytes(&w.to_bytes()), Ok(w));
    }
}
