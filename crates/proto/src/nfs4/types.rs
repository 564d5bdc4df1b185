//! XDR of structures shared by several operations.

use crate::xdr::{XdrDecoder, XdrEncoder, XdrError};

/// channel_attrs4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ChannelAttrs {
    pub headerpadsize: u32,
    pub maxrequestsize: u32,
    pub maxresponsesize: u32,
    pub maxresponsesize_cached: u32,
    pub maxoperations: u32,
    pub maxrequests: u32,
    pub rdma_ird: Option<u32>,
}

/// Bitmaps longer than this many words are refused (attributes need 3 at most).
pub const MAX_BITMAP_WORDS: usize = 8;

#[inline]
pub fn decode_bitmap(d: &mut XdrDecoder<'_>) -> Result<Vec<u32>, XdrError> {
    let n = d.array_len(MAX_BITMAP_WORDS, 4)?;
    (0..n).map(|_| d.u32()).collect()
}

#[inline]
pub fn encode_bitmap(out: &mut Vec<u8>, words: &[u32]) {
    // Trailing zero words are dropped, as clients expect.
    let len = words.iter().rposition(|w| *w != 0).map_or(0, |i| i + 1);
    out.put_u32(len as u32);
    for w in &words[..len] {
        out.put_u32(*w);
    }
}

/// Op numbers set in a bitmap.
pub fn bitmap_to_ops(words: &[u32]) -> Vec<u32> {
    let mut v = Vec::new();
    for (i, w) in words.iter().enumerate() {
        for bit in 0..32 {
            if w & (1 << bit) != 0 {
                v.push(i as u32 * 32 + bit);
            }
        }
    }
    v
}

pub fn ops_to_bitmap(ops: &[u32]) -> Vec<u32> {
    let mut words = vec![0u32; ops.iter().map(|o| *o as usize / 32 + 1).max().unwrap_or(0)];
    for o in ops {
        words[*o as usize / 32] |= 1 << (o % 32);
    }
    words
}

pub fn decode_channel_attrs(d: &mut XdrDecoder<'_>) -> Result<ChannelAttrs, XdrError> {
    let mut a = ChannelAttrs {
        headerpadsize: d.u32()?,
        maxrequestsize: d.u32()?,
        maxresponsesize: d.u32()?,
        maxresponsesize_cached: d.u32()?,
        maxoperations: d.u32()?,
        maxrequests: d.u32()?,
        rdma_ird: None,
    };
    if d.array_len(1, 4)? == 1 {
        a.rdma_ird = Some(d.u32()?);
    }
    Ok(a)
}

pub fn encode_channel_attrs(out: &mut Vec<u8>, a: &ChannelAttrs) {
    out.put_u32(a.headerpadsize);
    out.put_u32(a.maxrequestsize);
    out.put_u32(a.maxresponsesize);
    out.put_u32(a.maxresponsesize_cached);
    out.put_u32(a.maxoperations);
    out.put_u32(a.maxrequests);
    match a.rdma_ird {
        Some(v) => {
            out.put_u32(1);
            out.put_u32(v);
        }
        None => out.put_u32(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_helpers() {
        let words = ops_to_bitmap(&[41, 43, 3]);
        assert_eq!(bitmap_to_ops(&words), vec![3, 41, 43]);
        let mut out = Vec::new();
        encode_bitmap(&mut out, &[1, 0, 0]);
        assert_eq!(out, [0, 0, 0, 1, 0, 0, 0, 1]);
    }

    #[test]
    fn channel_attrs_round_trip() {
        let a = ChannelAttrs {
            headerpadsize: 0,
            maxrequestsize: 1 << 20,
            maxresponsesize: 1 << 20,
            maxresponsesize_cached: 4096,
            maxoperations: 8,
            maxrequests: 64,
            rdma_ird: Some(3),
        };
        let mut out = Vec::new();
        encode_channel_attrs(&mut out, &a);
        assert_eq!(decode_channel_attrs(&mut XdrDecoder::new(&out)).unwrap(), a);
    }
}
