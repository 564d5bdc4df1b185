//! Pieces several operations' arguments and results share: component4, fattr4 and
//! change_info4 (RFC 8881 §3.2, §3.3).
//!
//! Byte strings the RFC leaves unbounded (component4, linktext4, attr_vals) are only
//! borrowed from the buffer, never copied, so the decoder bounds them by the buffer
//! alone: a length that the rest of the input cannot hold is an error, any other is
//! accepted and judged by the handler (a name longer than NFS4_OPAQUE_LIMIT is
//! NFS4ERR_NAMETOOLONG there, not bad XDR here).

use super::Xdr;
use crate::nfs4::types::{decode_bitmap, encode_bitmap};
use crate::xdr::{XdrDecoder, XdrEncoder, XdrError};

/// A variable-length opaque or string with no bound in the RFC, borrowed from the
/// buffer: its length may be anything the remaining input holds.
pub fn decode_borrowed<'a>(d: &mut XdrDecoder<'a>) -> Result<&'a [u8], XdrError> {
    d.opaque(d.remaining())
}

/// component4 (utf8str_cs): one name in a directory, as the bytes sent.
///
/// The handler must still check: empty (NFS4ERR_INVAL), longer than the server
/// accepts (NFS4ERR_NAMETOOLONG: past NFS4_OPAQUE_LIMIT before looking further,
/// past NAME_MAX in `ringnfs_fs::check_name`), ".", "..", '/' or NUL (NFS4ERR_BADNAME).
pub fn decode_component<'a>(d: &mut XdrDecoder<'a>) -> Result<&'a [u8], XdrError> {
    decode_borrowed(d)
}

/// One component4 argument: LOOKUP4args (objname), REMOVE4args (target), LINK4args
/// (newname), SECINFO4args (name). The handler checks the name (see
/// [`decode_component`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameArgs<'a> {
    pub name: &'a [u8],
}

impl<'a> Xdr<'a> for NameArgs<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(NameArgs {
            name: decode_component(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_opaque(self.name);
    }
}

/// fattr4: the bitmap of the attributes present and their values, packed in
/// increasing attribute order (attrlist4). The values stay raw: what each attribute's
/// value means, and its own XDR, belong to the attribute code
/// (`ringnfs_engine::attrs`, the client's `FileAttrs`).
///
/// The decoder checks the bitmap's length (at most `MAX_BITMAP_WORDS` words) and that
/// attr_vals is present. The handler must still check: attributes it does not support
/// (NFS4ERR_ATTRNOTSUPP, also for any set bit past the words it knows), attributes not
/// allowed in this op (read-only ones in SETATTR/CREATE: NFS4ERR_INVAL; set-only ones
/// or rdattr_error in VERIFY/NVERIFY: NFS4ERR_INVAL), and that attr_vals holds exactly
/// the values the bitmap names (NFS4ERR_BADXDR if not) with valid values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fattr4<'a> {
    /// attrmask, as sent (encoding drops trailing zero words).
    pub mask: Vec<u32>,
    /// attr_vals.
    pub vals: &'a [u8],
}

impl Fattr4<'_> {
    /// Write the head of a fattr4 whose values are not known yet: `mask` (without
    /// trailing zero words) and a zero attr_vals length. Returns where the length is;
    /// append the values, then [`Fattr4::finish_head`]. A server builds its answers
    /// this way, straight into the reply.
    #[inline]
    pub fn encode_head(out: &mut Vec<u8>, mask: &[u32]) -> usize {
        encode_bitmap(out, mask);
        let at = out.len();
        out.put_u32(0);
        at
    }

    /// Complete the fattr4 whose head put its length at `at` (from
    /// [`Fattr4::encode_head`]): the values are everything after it. Attribute values
    /// are whole XDR items, so no padding is needed.
    #[inline]
    pub fn finish_head(out: &mut Vec<u8>, at: usize) {
        let len = out.len() - (at + 4);
        debug_assert!(len.is_multiple_of(4), "attr_vals of whole XDR items");
        out.patch_u32(at, len as u32);
    }
}

impl<'a> Xdr<'a> for Fattr4<'a> {
    #[inline]
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(Fattr4 {
            mask: decode_bitmap(d)?,
            vals: decode_borrowed(d)?,
        })
    }

    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        encode_bitmap(out, &self.mask);
        out.put_opaque(self.vals);
    }
}

/// change_info4: a directory's change attribute before and after an operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeInfo {
    pub atomic: bool,
    pub before: u64,
    pub after: u64,
}

impl ChangeInfo {
    /// Encoded size: a bool and two changeid4.
    pub const LEN: usize = 4 + 8 + 8;
}

impl Xdr<'_> for ChangeInfo {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(ChangeInfo {
            atomic: d.bool()?,
            before: d.u64()?,
            after: d.u64()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_bool(self.atomic);
        out.put_u64(self.before);
        out.put_u64(self.after);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::roundtrip;
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// A bitmap as encode_bitmap leaves it (no trailing zero words).
    pub(crate) fn bitmap() -> impl Strategy<Value = Vec<u32>> {
        vec(any::<u32>(), 0..4).prop_map(|mut v| {
            while v.last() == Some(&0) {
                v.pop();
            }
            v
        })
    }

    proptest! {
        #[test]
        fn shared_pieces_round_trip(mask in bitmap(), vals in vec(any::<u8>(), 0..64),
                                    atomic in any::<bool>(), before in any::<u64>(),
                                    after in any::<u64>()) {
            roundtrip!(Fattr4 { mask, vals: &vals });
            roundtrip!(ChangeInfo { atomic, before, after });
            prop_assert_eq!(ChangeInfo { atomic, before, after }.to_bytes().len(), ChangeInfo::LEN);
        }

        #[test]
        fn components_are_bounded_by_the_buffer_only(name in vec(any::<u8>(), 0..3000)) {
            let mut b = Vec::new();
            b.put_opaque(&name);
            prop_assert_eq!(decode_component(&mut XdrDecoder::new(&b)).unwrap(), &name[..]);
            // A length the input cannot hold (padding included) is bad XDR.
            prop_assert!(decode_component(&mut XdrDecoder::new(&b[..b.len() - 1])).is_err());
        }
    }

    proptest! {
        /// A head written first and finished once the values follow is the fattr4
        /// `encode` writes.
        #[test]
        fn fattr_head_then_values_is_the_fattr(mask in bitmap(), words in vec(any::<u32>(), 0..16)) {
            let vals: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            let whole = Fattr4 { mask: mask.clone(), vals: &vals }.to_bytes();
            let mut out = Vec::new();
            let at = Fattr4::encode_head(&mut out, &mask);
            out.extend_from_slice(&vals);
            Fattr4::finish_head(&mut out, at);
            prop_assert_eq!(out, whole);
        }
    }

    #[test]
    fn oversized_bitmaps_and_missing_values_do_not_decode() {
        let mut b = Vec::new();
        b.put_u32(9);
        for _ in 0..9 {
            b.put_u32(1);
        }
        b.put_u32(0);
        assert!(Fattr4::from_bytes(&b).is_err());
        let mut b = Vec::new();
        encode_bitmap(&mut b, &[2]);
        b.put_u32(8);
        b.put_u32(0);
        assert!(Fattr4::from_bytes(&b).is_err());
    }
}
