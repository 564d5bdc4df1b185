//! The deterministic data the bench writes and, with `--verify`, checks on reads: every
//! 4 KiB block of the file holds its own offset (and its complement) in its first 16
//! bytes and a fixed pseudo-random fill after that. A server that returns the wrong
//! block, stale zeroes or garbage fails the check; concurrent writers all write the same
//! bytes to the same offset, so the expected content never depends on ordering.

use std::sync::OnceLock;

/// Granularity of the pattern: I/O offsets and sizes are multiples of it.
pub const BLOCK: usize = 4096;
const MAGIC: u64 = 0x7269_6e67_6e66_7321; // "ringnfs!"

fn fill() -> &'static [u8; BLOCK] {
    static FILL: OnceLock<Box<[u8; BLOCK]>> = OnceLock::new();
    FILL.get_or_init(|| {
        let mut b = Box::new([0u8; BLOCK]);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for c in b.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes());
        }
        b
    })
}

fn header(off: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..8].copy_from_slice(&off.to_be_bytes());
    h[8..].copy_from_slice(&(off ^ MAGIC).to_be_bytes());
    h
}

/// Fill `buf` with the pattern of the file bytes starting at `off` (block-aligned).
pub fn generate(off: u64, buf: &mut [u8]) {
    debug_assert_eq!(off % BLOCK as u64, 0);
    for (i, b) in buf.chunks_mut(BLOCK).enumerate() {
        let n = b.len();
        b.copy_from_slice(&fill()[..n]);
        let h = header(off + (i * BLOCK) as u64);
        let k = n.min(16);
        b[..k].copy_from_slice(&h[..k]);
    }
}

/// Rewrite only the block headers of a buffer already holding the pattern of some other
/// block-aligned offset: turns it into the pattern for `off` at 16 bytes per block.
#[inline]
pub fn retarget(off: u64, buf: &mut [u8]) {
    for (i, b) in buf.chunks_mut(BLOCK).enumerate() {
        let h = header(off + (i * BLOCK) as u64);
        let k = b.len().min(16);
        b[..k].copy_from_slice(&h[..k]);
    }
}

/// Whether `data` is the pattern of the file bytes starting at `off` (block-aligned).
#[inline]
pub fn matches(off: u64, data: &[u8]) -> bool {
    if !off.is_multiple_of(BLOCK as u64) {
        return false;
    }
    data.chunks(BLOCK).enumerate().all(|(i, b)| {
        let h = header(off + (i * BLOCK) as u64);
        let k = b.len().min(16);
        b[..k] == h[..k] && b[k..] == fill()[k..b.len()]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_retarget_and_match() {
        let mut a = vec![0u8; 3 * BLOCK];
        generate(8192, &mut a);
        assert!(matches(8192, &a));
        assert!(!matches(4096, &a));
        assert!(!matches(8193, &a));
        // A block-aligned prefix and a partial last block still match.
        assert!(matches(8192, &a[..BLOCK + 100]));
        assert!(matches(8192 + BLOCK as u64, &a[BLOCK..]));
        retarget(1 << 20, &mut a);
        let mut b = vec![0u8; 3 * BLOCK];
        generate(1 << 20, &mut b);
        assert_eq!(a, b);
        b[BLOCK + 17] ^= 1;
        assert!(!matches(1 << 20, &b));
        assert!(!matches(0, &[0u8; BLOCK]));
    }
}
