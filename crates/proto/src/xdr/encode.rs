use super::pad4;

/// XDR encoding on a growable byte buffer. Implemented for `Vec<u8>`.
pub trait XdrEncoder {
    fn put_u32(&mut self, v: u32);
    fn put_raw(&mut self, b: &[u8]);
    /// Position to patch later with `patch_u32` (e.g. a count known only at the end).
    fn mark(&self) -> usize;
    fn patch_u32(&mut self, at: usize, v: u32);

    #[inline]
    fn put_i32(&mut self, v: i32) {
        self.put_u32(v as u32)
    }
    #[inline]
    fn put_u64(&mut self, v: u64) {
        self.put_u32((v >> 32) as u32);
        self.put_u32(v as u32);
    }
    #[inline]
    fn put_i64(&mut self, v: i64) {
        self.put_u64(v as u64)
    }
    #[inline]
    fn put_bool(&mut self, v: bool) {
        self.put_u32(v as u32)
    }
    /// Fixed-length opaque, zero padded.
    #[inline]
    fn put_fixed(&mut self, b: &[u8]) {
        self.put_raw(b);
        let pad = pad4(b.len()) - b.len();
        self.put_raw(&[0u8; 3][..pad]);
    }
    /// Variable-length opaque or string.
    #[inline]
    fn put_opaque(&mut self, b: &[u8]) {
        self.put_u32(b.len() as u32);
        self.put_fixed(b);
    }
}

impl XdrEncoder for Vec<u8> {
    #[inline]
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    #[inline]
    fn put_raw(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
    #[inline]
    fn mark(&self) -> usize {
        self.len()
    }
    #[inline]
    fn patch_u32(&mut self, at: usize, v: u32) {
        self[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdr::XdrDecoder;

    #[test]
    fn round_trip() {
        let mut v = Vec::new();
        v.put_u32(5);
        v.put_u64(u64::MAX - 1);
        v.put_opaque(b"hello");
        v.put_bool(false);
        let m = v.mark();
        v.put_u32(0);
        v.patch_u32(m, 42);
        assert_eq!(v.len() % 4, 0);
        let mut d = XdrDecoder::new(&v);
        assert_eq!(d.u32().unwrap(), 5);
        assert_eq!(d.u64().unwrap(), u64::MAX - 1);
        assert_eq!(d.opaque(16).unwrap(), b"hello");
        assert!(!d.bool().unwrap());
        assert_eq!(d.u32().unwrap(), 42);
    }
}
