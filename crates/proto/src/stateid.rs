//! stateid4 values: the special stateids of RFC 8881 §8.2.3 and the layout of the
//! server's own `other` field, which names the file-state shard like session ids name
//! theirs.

use crate::xdr::{XdrDecoder, XdrEncoder, XdrError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stateid {
    pub seqid: u32,
    pub other: [u8; 12],
}

/// What kind of state an `other` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    Open = 1,
    Lock = 2,
    /// A delegation (RFC 8881 §10.2).
    Deleg = 3,
}

impl Stateid {
    pub const ANONYMOUS: Stateid = Stateid {
        seqid: 0,
        other: [0; 12],
    };
    pub const READ_BYPASS: Stateid = Stateid {
        seqid: u32::MAX,
        other: [0xff; 12],
    };
    pub const CURRENT: Stateid = Stateid {
        seqid: 1,
        other: [0; 12],
    };
    pub const INVALID: Stateid = Stateid {
        seqid: u32::MAX,
        other: [0; 12],
    };

    #[inline]
    pub fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(Stateid {
            seqid: d.u32()?,
            other: d.array::<12>()?,
        })
    }

    #[inline]
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.seqid);
        out.put_fixed(&self.other);
    }

    /// `[boot:4][shard:2][kind:1][0][counter:4]`
    pub fn make_other(boot: u32, shard: u16, kind: StateKind, counter: u32) -> [u8; 12] {
        let mut o = [0u8; 12];
        o[..4].copy_from_slice(&boot.to_be_bytes());
        o[4..6].copy_from_slice(&shard.to_be_bytes());
        o[6] = kind as u8;
        o[8..].copy_from_slice(&counter.to_be_bytes());
        o
    }

    pub fn boot(&self) -> u32 {
        u32::from_be_bytes([self.other[0], self.other[1], self.other[2], self.other[3]])
    }

    pub fn shard(&self) -> usize {
        u16::from_be_bytes([self.other[4], self.other[5]]) as usize
    }

    pub fn is_special(&self) -> bool {
        self.other == [0; 12] || self.other == [0xff; 12]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_specials() {
        let o = Stateid::make_other(7, 3, StateKind::Lock, 9);
        let s = Stateid { seqid: 1, other: o };
        assert_eq!((s.boot(), s.shard()), (7, 3));
        assert!(!s.is_special());
        assert!(Stateid::ANONYMOUS.is_special() && Stateid::READ_BYPASS.is_special());
        let mut v = Vec::new();
        s.encode(&mut v);
        assert_eq!(Stateid::decode(&mut XdrDecoder::new(&v)).unwrap(), s);
    }
}
