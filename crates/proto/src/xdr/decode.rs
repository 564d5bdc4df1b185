use super::pad4;

/// Why a buffer did not decode. Callers map this to GARBAGE_ARGS / NFS4ERR_BADXDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum XdrError {
    #[error("XDR input truncated")]
    Truncated,
    #[error("XDR length {len} exceeds limit {max}")]
    TooLong { len: usize, max: usize },
    #[error("XDR value out of range")]
    BadValue,
}

/// Reads XDR items from a borrowed buffer; opaque data is returned as sub-slices, never copied.
#[derive(Debug, Clone)]
pub struct XdrDecoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> XdrDecoder<'a> {
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Everything not yet consumed.
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// The bytes consumed between `start` (an earlier `position()`) and now.
    #[inline]
    pub fn consumed_since(&self, start: usize) -> &'a [u8] {
        &self.buf[start..self.pos]
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], XdrError> {
        if self.remaining() < n {
            return Err(XdrError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    pub fn u32(&mut self) -> Result<u32, XdrError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    #[inline]
    pub fn i32(&mut self) -> Result<i32, XdrError> {
        Ok(self.u32()? as i32)
    }

    #[inline]
    pub fn u64(&mut self) -> Result<u64, XdrError> {
        let hi = self.u32()? as u64;
        let lo = self.u32()? as u64;
        Ok((hi << 32) | lo)
    }

    #[inline]
    pub fn i64(&mut self) -> Result<i64, XdrError> {
        Ok(self.u64()? as i64)
    }

    #[inline]
    pub fn bool(&mut self) -> Result<bool, XdrError> {
        match self.u32()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(XdrError::BadValue),
        }
    }

    /// Fixed-length opaque of `n` bytes (padded to 4).
    #[inline]
    pub fn opaque_fixed(&mut self, n: usize) -> Result<&'a [u8], XdrError> {
        let padded = self.take(pad4(n))?;
        Ok(&padded[..n])
    }

    /// Fixed-length opaque decoded into an array.
    #[inline]
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], XdrError> {
        let s = self.opaque_fixed(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Variable-length opaque of at most `max` bytes.
    #[inline]
    pub fn opaque(&mut self, max: usize) -> Result<&'a [u8], XdrError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(XdrError::TooLong { len, max });
        }
        self.opaque_fixed(len)
    }

    /// A length prefix for an array of at most `max` items, each at least
    /// `min_item_size` bytes: rejects counts the remaining input cannot hold,
    /// so a hostile count never drives a large allocation.
    #[inline]
    pub fn array_len(&mut self, max: usize, min_item_size: usize) -> Result<usize, XdrError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(XdrError::TooLong { len, max });
        }
        if len.saturating_mul(min_item_size.max(1)) > self.remaining() && min_item_size > 0 {
            return Err(XdrError::Truncated);
        }
        Ok(len)
    }

    /// Skip `n` bytes (already padded by the caller).
    #[inline]
    pub fn skip(&mut self, n: usize) -> Result<(), XdrError> {
        self.take(n).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_primitives_and_padding() {
        let buf = [
            0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, b'a', b'b', b'c', 0, 0, 0, 0, 1,
        ];
        let mut d = XdrDecoder::new(&buf);
        assert_eq!(d.u32().unwrap(), 7);
        assert_eq!(d.u64().unwrap(), (1 << 32) | 2);
        assert_eq!(d.opaque(8).unwrap(), b"abc");
        assert!(d.bool().unwrap());
        assert_eq!(d.remaining(), 0);
        assert_eq!(d.u32(), Err(XdrError::Truncated));
    }

    #[test]
    fn rejects_oversize_and_bad_bool() {
        let buf = [0, 0, 0, 9, 0, 0, 0, 0];
        assert!(matches!(
            XdrDecoder::new(&buf).opaque(4),
            Err(XdrError::TooLong { len: 9, max: 4 })
        ));
        assert_eq!(
            XdrDecoder::new(&[0, 0, 0, 2]).bool(),
            Err(XdrError::BadValue)
        );
        // A count that the remaining bytes cannot hold is refused before any allocation.
        assert_eq!(
            XdrDecoder::new(&[0, 0, 1, 0]).array_len(1 << 20, 4),
            Err(XdrError::Truncated)
        );
    }
}
