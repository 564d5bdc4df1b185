//! Byte-range locks (RFC 8881 §18.10–§18.12): LOCK, LOCKT and LOCKU, and LOCK4denied,
//! the body of their NFS4ERR_DENIED.
//!
//! The lock type is kept as sent (an undefined nfs_lock_type4 is the handler's
//! NFS4ERR_INVAL), and so are offset and length (a zero length or a range past the
//! largest offset is the handler's NFS4ERR_INVAL too).

use super::Xdr;
use super::open::StateOwner;
use crate::stateid::Stateid;
use crate::xdr::{XdrDecoder, XdrEncoder, XdrError};

/// nfs_lock_type4.
pub mod nfs_lock_type4 {
    pub const READ_LT: u32 = 1;
    pub const WRITE_LT: u32 = 2;
    pub const READW_LT: u32 = 3;
    pub const WRITEW_LT: u32 = 4;
}

/// locker4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locker<'a> {
    /// open_to_lock_owner4: a new lock owner, from an open stateid.
    New {
        open_seqid: u32,
        open_stateid: Stateid,
        lock_seqid: u32,
        owner: StateOwner<'a>,
    },
    /// exist_lock_owner4.
    Existing { stateid: Stateid, seqid: u32 },
}

impl<'a> Xdr<'a> for Locker<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(match d.bool()? {
            true => Locker::New {
                open_seqid: d.u32()?,
                open_stateid: Stateid::decode(d)?,
                lock_seqid: d.u32()?,
                owner: StateOwner::decode(d)?,
            },
            false => Locker::Existing {
                stateid: Stateid::decode(d)?,
                seqid: d.u32()?,
            },
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Locker::New {
                open_seqid,
                open_stateid,
                lock_seqid,
                owner,
            } => {
                out.put_bool(true);
                out.put_u32(*open_seqid);
                open_stateid.encode(out);
                out.put_u32(*lock_seqid);
                owner.encode(out);
            }
            Locker::Existing { stateid, seqid } => {
                out.put_bool(false);
                stateid.encode(out);
                out.put_u32(*seqid);
            }
        }
    }
}

/// LOCK4args.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockArgs<'a> {
    pub locktype: u32,
    pub reclaim: bool,
    pub offset: u64,
    pub length: u64,
    pub locker: Locker<'a>,
}

impl<'a> Xdr<'a> for LockArgs<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(LockArgs {
            locktype: d.u32()?,
            reclaim: d.bool()?,
            offset: d.u64()?,
            length: d.u64()?,
            locker: Locker::decode(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.locktype);
        out.put_bool(self.reclaim);
        out.put_u64(self.offset);
        out.put_u64(self.length);
        self.locker.encode(out);
    }
}

stateid_only! {
    /// LOCK4resok.
    LockResOk
}

/// LOCK4denied: what LOCK and LOCKT answer after NFS4ERR_DENIED, the conflicting lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockDenied<'a> {
    pub offset: u64,
    pub length: u64,
    pub locktype: u32,
    pub owner: StateOwner<'a>,
}

impl<'a> Xdr<'a> for LockDenied<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(LockDenied {
            offset: d.u64()?,
            length: d.u64()?,
            locktype: d.u32()?,
            owner: StateOwner::decode(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.offset);
        out.put_u64(self.length);
        out.put_u32(self.locktype);
        self.owner.encode(out);
    }
}

/// LOCKT4args.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocktArgs<'a> {
    pub locktype: u32,
    pub offset: u64,
    pub length: u64,
    pub owner: StateOwner<'a>,
}

impl<'a> Xdr<'a> for LocktArgs<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(LocktArgs {
            locktype: d.u32()?,
            offset: d.u64()?,
            length: d.u64()?,
            owner: StateOwner::decode(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.locktype);
        out.put_u64(self.offset);
        out.put_u64(self.length);
        self.owner.encode(out);
    }
}

/// LOCKU4args.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockuArgs {
    pub locktype: u32,
    pub seqid: u32,
    pub stateid: Stateid,
    pub offset: u64,
    pub length: u64,
}

impl Xdr<'_> for LockuArgs {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(LockuArgs {
            locktype: d.u32()?,
            seqid: d.u32()?,
            stateid: Stateid::decode(d)?,
            offset: d.u64()?,
            length: d.u64()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.locktype);
        out.put_u32(self.seqid);
        self.stateid.encode(out);
        out.put_u64(self.offset);
        out.put_u64(self.length);
    }
}

stateid_only! {
    /// LOCKU4resok.
    LockuResOk
}

#[cfg(test)]
mod tests {
    use super::super::open::tests::{bytes, stateid};
    use super::super::roundtrip;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn lock_types_round_trip(locktype in any::<u32>(), reclaim in any::<bool>(),
                                 range in any::<(u64, u64)>(), seqids in any::<(u32, u32)>(),
                                 sid in stateid(), open in stateid(), clientid in any::<u64>(),
                                 owner in bytes(1025), new in any::<bool>()) {
            let owner = StateOwner { clientid, owner: &owner };
            let locker = match new {
                true => Locker::New { open_seqid: seqids.0, open_stateid: open,
                    lock_seqid: seqids.1, owner },
                false => Locker::Existing { stateid: sid, seqid: seqids.0 },
            };
            let (offset, length) = range;
            roundtrip!(locker);
            roundtrip!(LockArgs { locktype, reclaim, offset, length, locker });
            roundtrip!(LockResOk { stateid: sid });
            roundtrip!(LockDenied { offset, length, locktype, owner });
            roundtrip!(LocktArgs { locktype, offset, length, owner });
            roundtrip!(LockuArgs { locktype, seqid: seqids.0, stateid: sid, offset, length });
            roundtrip!(LockuResOk { stateid: sid });
        }
    }

    #[test]
    fn new_lock_owner_is_a_bool() {
        let mut v = LockArgs {
            locktype: 99,
            reclaim: false,
            offset: 0,
            length: 1,
            locker: Locker::Existing {
                stateid: Stateid::ANONYMOUS,
                seqid: 0,
            },
        }
        .to_bytes();
        // An undefined lock type decodes (the handler's NFS4ERR_INVAL) ...
        assert_eq!(LockArgs::from_bytes(&v).unwrap().locktype, 99);
        // ... a new_lock_owner that is not a bool does not (locktype, reclaim, offset,
        // length come first).
        v[24..28].copy_from_slice(&2u32.to_be_bytes());
        assert!(LockArgs::from_bytes(&v).is_err());
    }
}
