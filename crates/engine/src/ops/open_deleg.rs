//! The delegation part of OPEN (RFC 8881 §18.16): the OPEN4_SHARE_ACCESS_WANT_* bits a
//! client sends, and the open_delegation4 it gets back when none is granted (read
//! delegations are granted by `open.rs` where the export allows them): a client that
//! said what it wants learns why it got none (OPEN_DELEGATE_NONE_EXT), one that did not
//! gets plain OPEN_DELEGATE_NONE.

use crate::consts::{NfsStatus, status};
use ringnfs_proto::nfs4::ops::{OpenDelegation, WhyNoDelegation};
use ringnfs_state::files::{SHARE_ACCESS_BOTH, SHARE_ACCESS_WRITE};

/// OPEN4_SHARE_ACCESS_WANT_* values (one of them, in the mask) and flags.
mod want {
    pub const TYPE_MASK: u32 = 0xff00;
    pub const READ_DELEG: u32 = 0x0100;
    pub const WRITE_DELEG: u32 = 0x0200;
    pub const ANY_DELEG: u32 = 0x0300;
    pub const NO_DELEG: u32 = 0x0400;
    pub const CANCEL: u32 = 0x0500;
    pub const SIGNAL_DELEG_WHEN_RESRC_AVAIL: u32 = 0x10000;
    pub const PUSH_DELEG_WHEN_UNCONTENDED: u32 = 0x20000;
    /// RFC 9754 (delegated timestamps, OPEN without an open stateid when delegated).
    pub const DELEG_TIMESTAMPS: u32 = 0x10_0000;
    pub const OPEN_XOR_DELEGATION: u32 = 0x20_0000;
    pub const ALL: u32 = TYPE_MASK
        | SIGNAL_DELEG_WHEN_RESRC_AVAIL
        | PUSH_DELEG_WHEN_UNCONTENDED
        | DELEG_TIMESTAMPS
        | OPEN_XOR_DELEGATION;
}

/// why_no_delegation4.
pub use ringnfs_proto::nfs4::ops::why_no_delegation4 as why;

/// The delegation wish carried in OPEN's share_access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want(u32);

impl Want {
    /// The client said something about delegations (any WANT bit set).
    pub fn is_stated(self) -> bool {
        self.0 != 0
    }

    /// No wish stated, or one a read delegation answers (READ or ANY).
    pub fn allows_read_delegation(self) -> bool {
        !self.is_stated() || matches!(self.0 & want::TYPE_MASK, want::READ_DELEG | want::ANY_DELEG)
    }

    /// The wish for any delegation (what WANT_DELEGATION with no preference means).
    pub fn any() -> Self {
        Want(want::ANY_DELEG)
    }

    /// The delegation a WANT_DELEGATION wish asks for: a write one (true) for WRITE, a
    /// read one for READ, ANY or no preference; none for NO_DELEG and CANCEL.
    pub fn wanted_type(self) -> Option<bool> {
        match self.0 & want::TYPE_MASK {
            want::WRITE_DELEG => Some(true),
            want::NO_DELEG | want::CANCEL => None,
            _ => Some(false),
        }
    }

    /// No wish stated, or one a write delegation answers (WRITE or ANY).
    pub fn allows_write_delegation(self) -> bool {
        !self.is_stated()
            || matches!(
                self.0 & want::TYPE_MASK,
                want::WRITE_DELEG | want::ANY_DELEG
            )
    }
}

/// Split OPEN's share_access into the access bits and the delegation wish; an unknown
/// wish is NFS4ERR_INVAL.
pub fn split_share_access(raw: u32) -> Result<(u32, Want), NfsStatus> {
    let wish = raw & want::ALL;
    if wish & want::TYPE_MASK > want::CANCEL {
        return Err(status::NFS4ERR_INVAL);
    }
    Ok((raw & !want::ALL, Want(wish)))
}

/// OPEN_DOWNGRADE carries no wish: its share_access is the access bits alone.
pub fn access_only(raw: u32) -> u32 {
    raw & !want::ALL
}

/// The open_delegation4 of an OPEN that granted none, given the wish and the access
/// other clients' opens of the file hold (`others_access`, only read for a stated wish).
pub fn no_delegation(wish: Want, others_access: u32) -> OpenDelegation<'static> {
    if !wish.is_stated() {
        return OpenDelegation::None;
    }
    let reason = match wish.0 & want::TYPE_MASK {
        want::NO_DELEG => why::NOT_WANTED,
        want::CANCEL => why::CANCELLED,
        // A read delegation conflicts with others' writes, a write one with any open.
        want::READ_DELEG | want::ANY_DELEG if others_access & SHARE_ACCESS_WRITE != 0 => {
            why::CONTENTION
        }
        want::WRITE_DELEG if others_access & SHARE_ACCESS_BOTH != 0 => why::CONTENTION,
        // Nothing conflicts: the server does not hand out delegations (yet).
        _ => why::RESOURCE,
    };
    // ond_server_will_push_deleg / ond_server_will_signal_avail: we will not.
    OpenDelegation::NoneExt(match reason {
        why::CONTENTION => WhyNoDelegation::Contention { will_push: false },
        why::RESOURCE => WhyNoDelegation::Resource { will_signal: false },
        other => WhyNoDelegation::Other(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringnfs_proto::nfs4::ops::Xdr;
    use ringnfs_proto::nfs4::ops::open_delegation_type4::NONE as OPEN_DELEGATE_NONE;

    fn answer(raw: u32, others: u32) -> Vec<u32> {
        let (_, wish) = split_share_access(raw).unwrap();
        let mut out = Vec::new();
        no_delegation(wish, others).encode(&mut out);
        out.chunks(4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn wishes_are_answered_with_a_reason() {
        assert_eq!(answer(1, 0), vec![OPEN_DELEGATE_NONE]);
        assert_eq!(answer(0x0401, 0), vec![3, why::NOT_WANTED]);
        assert_eq!(answer(0x0501, 0), vec![3, why::CANCELLED]);
        assert_eq!(answer(0x0101, 0), vec![3, why::RESOURCE, 0]);
        assert_eq!(answer(0x0101, 1), vec![3, why::RESOURCE, 0]);
        assert_eq!(answer(0x0101, 2), vec![3, why::CONTENTION, 0]);
        assert_eq!(answer(0x0303, 2), vec![3, why::CONTENTION, 0]);
        assert_eq!(answer(0x0203, 1), vec![3, why::CONTENTION, 0]);
        assert_eq!(answer(0x0203, 0), vec![3, why::RESOURCE, 0]);
        // The "tell me later" flags alone are a wish too.
        assert_eq!(answer(0x10001, 0), vec![3, why::RESOURCE, 0]);
    }

    #[test]
    fn access_bits_and_wish_split() {
        assert_eq!(split_share_access(0x0403).unwrap().0, 3);
        assert_eq!(split_share_access(0x30003).unwrap().0, 3);
        assert_eq!(
            split_share_access(0x0601),
            Err(status::NFS4ERR_INVAL),
            "no such WANT value"
        );
        // Bits outside every field stay in the access bits, where OPEN refuses them.
        assert_eq!(split_share_access(0x4_0001).unwrap().0, 0x4_0001);
        assert_eq!(split_share_access(0x30_0001).unwrap().0, 1);
    }
}
