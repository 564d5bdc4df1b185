//! `user_data` encoding for ring operations: (kind, generation, slab key).
//!
//! Every submission carries a token; a completion is routed by its kind, and a
//! connection completion is only applied if the generation still matches the live
//! connection in that slab slot, so a stale completion can never touch another
//! connection's state.

/// What a ring operation was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// Multishot accept; key = listener index.
    Accept = 1,
    /// Multishot receive; key = connection slab key.
    Recv = 2,
    /// Send; key = connection slab key.
    Send = 3,
    /// Eventfd read (mailbox wake-up).
    Wake = 4,
    /// Housekeeping timer.
    Timer = 5,
    /// An `AsyncCancel` request itself.
    Cancel = 6,
    /// A file READ/WRITE/FSYNC for the service; key = `file_ops` slab key.
    FileIo = 7,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::Accept,
            2 => Kind::Recv,
            3 => Kind::Send,
            4 => Kind::Wake,
            5 => Kind::Timer,
            6 => Kind::Cancel,
            7 => Kind::FileIo,
            _ => return None,
        })
    }
}

const KIND_SHIFT: u32 = 56;
const GEN_SHIFT: u32 = 32;
/// Generations are 24 bits wide.
pub(crate) const GEN_MASK: u64 = (1 << 24) - 1;

/// A decoded `user_data` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: Kind,
    pub generation: u32,
    pub key: u32,
}

impl Token {
    pub const fn new(kind: Kind, generation: u64, key: usize) -> Token {
        Token {
            kind,
            generation: (generation & GEN_MASK) as u32,
            key: key as u32,
        }
    }

    pub fn encode(self) -> u64 {
        ((self.kind as u64) << KIND_SHIFT)
            | ((self.generation as u64 & GEN_MASK) << GEN_SHIFT)
            | self.key as u64
    }

    /// Decode a completion's `user_data`; `None` for values we never submitted.
    pub fn decode(v: u64) -> Option<Token> {
        let kind = Kind::from_u8((v >> KIND_SHIFT) as u8)?;
        Some(Token {
            kind,
            generation: ((v >> GEN_SHIFT) & GEN_MASK) as u32,
            key: v as u32,
        })
    }
}

/// Generation of a connection with per-core sequence number `seq`.
pub(crate) fn generation_of(seq: u64) -> u32 {
    (seq & GEN_MASK) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for kind in [
            Kind::Accept,
            Kind::Recv,
            Kind::Send,
            Kind::Wake,
            Kind::Timer,
            Kind::Cancel,
            Kind::FileIo,
        ] {
            for (g, k) in [
                (0u64, 0usize),
                (1, 1),
                (GEN_MASK, u32::MAX as usize),
                (12345, 678),
            ] {
                let t = Token::new(kind, g, k);
                assert_eq!(Token::decode(t.encode()), Some(t));
                assert_eq!(t.generation as u64, g);
                assert_eq!(t.key as usize, k);
            }
        }
    }

    #[test]
    fn generation_wraps_into_24_bits() {
        let t = Token::new(Kind::Recv, (1 << 24) + 7, 3);
        assert_eq!(t.generation, 7);
        assert_eq!(generation_of((1 << 24) + 7), 7);
    }

    #[test]
    fn unknown_values_rejected() {
        assert_eq!(Token::decode(0), None);
        assert_eq!(Token::decode(0xff << 56), None);
    }
}
