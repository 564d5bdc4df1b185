//! Opening and closing files (RFC 8881 §18.16, §18.18, §18.2): OPEN, OPEN_DOWNGRADE and
//! CLOSE, with state_owner4, which LOCK and LOCKT use too.
//!
//! What the decoder leaves to OPEN's handler: share_access and share_deny are kept as
//! sent (access bits, OPEN4_SHARE_ACCESS_WANT_* bits), the createattrs are a raw
//! [`Fattr4`], names are not length-checked (component4 has no XDR bound: a name longer
//! than NFS4_OPAQUE_LIMIT is the handler's NFS4ERR_NAMETOOLONG), and an opentype4,
//! createmode4 or open_claim_type4 that RFC 8881 does not define decodes as an
//! `Undefined` value, the handler's NFS4ERR_INVAL. Such a value's arm has no known
//! layout, so the decoder stops right after it.

use super::Xdr;
use super::common::{ChangeInfo, Fattr4};
use crate::nfs4::consts::{NFS4_OPAQUE_LIMIT, NFS4_VERIFIER_SIZE};
use crate::nfs4::types::{decode_bitmap, encode_bitmap};
use crate::stateid::Stateid;
use crate::xdr::{XdrDecoder, XdrEncoder, XdrError};

/// opentype4.
pub mod opentype4 {
    pub const NOCREATE: u32 = 0;
    pub const CREATE: u32 = 1;
}

/// createmode4.
pub mod createmode4 {
    pub const UNCHECKED: u32 = 0;
    pub const GUARDED: u32 = 1;
    pub const EXCLUSIVE4: u32 = 2;
    pub const EXCLUSIVE4_1: u32 = 3;
}

/// open_claim_type4.
pub mod open_claim_type4 {
    pub const NULL: u32 = 0;
    pub const PREVIOUS: u32 = 1;
    pub const DELEGATE_CUR: u32 = 2;
    pub const DELEGATE_PREV: u32 = 3;
    pub const FH: u32 = 4;
    pub const DELEG_PREV_FH: u32 = 5;
    pub const DELEG_CUR_FH: u32 = 6;
}

/// open_delegation_type4.
pub mod open_delegation_type4 {
    pub const NONE: u32 = 0;
    pub const READ: u32 = 1;
    pub const WRITE: u32 = 2;
    pub const NONE_EXT: u32 = 3;
}

/// why_no_delegation4.
pub mod why_no_delegation4 {
    pub const NOT_WANTED: u32 = 0;
    pub const CONTENTION: u32 = 1;
    pub const RESOURCE: u32 = 2;
    pub const NOT_SUPP_FTYPE: u32 = 3;
    pub const WRITE_DELEG_NOT_SUPP_FTYPE: u32 = 4;
    pub const NOT_SUPP_UPGRADE: u32 = 5;
    pub const NOT_SUPP_DOWNGRADE: u32 = 6;
    pub const CANCELLED: u32 = 7;
    pub const IS_DIR: u32 = 8;
}

/// OPEN4_RESULT_* flags (OPEN4resok's rflags).
pub mod open4_result {
    pub const CONFIRM: u32 = 0x2;
    pub const LOCKTYPE_POSIX: u32 = 0x4;
    pub const PRESERVE_UNLINKED: u32 = 0x8;
    pub const MAY_NOTIFY_LOCK: u32 = 0x20;
}

/// limit_by4.
pub mod limit_by4 {
    pub const SIZE: u32 = 1;
    pub const BLOCKS: u32 = 2;
}

/// verifier4.
pub type Verifier = [u8; NFS4_VERIFIER_SIZE];

/// component4 (and the file names of the claims): any length the request holds.
fn component<'a>(d: &mut XdrDecoder<'a>) -> Result<&'a [u8], XdrError> {
    d.opaque(usize::MAX)
}

// ---- state_owner4 -----------------------------------------------------------------------

/// state_owner4: open_owner4 and lock_owner4.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateOwner<'a> {
    pub clientid: u64,
    pub owner: &'a [u8],
}

impl<'a> Xdr<'a> for StateOwner<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(StateOwner {
            clientid: d.u64()?,
            owner: d.opaque(NFS4_OPAQUE_LIMIT)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.clientid);
        out.put_opaque(self.owner);
    }
}

// ---- OPEN -------------------------------------------------------------------------------

/// createhow4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateHow<'a> {
    Unchecked(Fattr4<'a>),
    Guarded(Fattr4<'a>),
    Exclusive4(Verifier),
    /// creatverfattr: the verifier and the attributes to set.
    Exclusive41(Verifier, Fattr4<'a>),
    /// A createmode4 RFC 8881 does not define (NFS4ERR_INVAL): nothing after it is
    /// decoded.
    Undefined(u32),
}

impl<'a> CreateHow<'a> {
    pub fn mode(&self) -> u32 {
        match self {
            CreateHow::Unchecked(_) => createmode4::UNCHECKED,
            CreateHow::Guarded(_) => createmode4::GUARDED,
            CreateHow::Exclusive4(_) => createmode4::EXCLUSIVE4,
            CreateHow::Exclusive41(..) => createmode4::EXCLUSIVE4_1,
            CreateHow::Undefined(m) => *m,
        }
    }
}

impl<'a> Xdr<'a> for CreateHow<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(match d.u32()? {
            createmode4::UNCHECKED => CreateHow::Unchecked(Fattr4::decode(d)?),
            createmode4::GUARDED => CreateHow::Guarded(Fattr4::decode(d)?),
            createmode4::EXCLUSIVE4 => CreateHow::Exclusive4(d.array()?),
            createmode4::EXCLUSIVE4_1 => CreateHow::Exclusive41(d.array()?, Fattr4::decode(d)?),
            m => CreateHow::Undefined(m),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.mode());
        match self {
            CreateHow::Unchecked(a) | CreateHow::Guarded(a) => a.encode(out),
            CreateHow::Exclusive4(v) => out.put_fixed(v),
            CreateHow::Exclusive41(v, a) => {
                out.put_fixed(v);
                a.encode(out);
            }
            CreateHow::Undefined(_) => {}
        }
    }
}

/// openflag4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenHow<'a> {
    NoCreate,
    Create(CreateHow<'a>),
    /// An opentype4 RFC 8881 does not define (NFS4ERR_INVAL): nothing after it is
    /// decoded.
    Undefined(u32),
}

impl OpenHow<'_> {
    /// Whether the decoder could read past it: false for an undefined opentype4 or
    /// createmode4.
    pub fn is_defined(&self) -> bool {
        !matches!(
            self,
            OpenHow::Undefined(_) | OpenHow::Create(CreateHow::Undefined(_))
        )
    }
}

impl<'a> Xdr<'a> for OpenHow<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(match d.u32()? {
            opentype4::NOCREATE => OpenHow::NoCreate,
            opentype4::CREATE => OpenHow::Create(CreateHow::decode(d)?),
            t => OpenHow::Undefined(t),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            OpenHow::NoCreate => out.put_u32(opentype4::NOCREATE),
            OpenHow::Create(how) => {
                out.put_u32(opentype4::CREATE);
                how.encode(out);
            }
            OpenHow::Undefined(t) => out.put_u32(*t),
        }
    }
}

/// open_claim4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenClaim<'a> {
    /// CLAIM_NULL: the file's name in the current directory.
    Null(&'a [u8]),
    /// CLAIM_PREVIOUS: the open_delegation_type4 being reclaimed, as sent.
    Previous(u32),
    /// CLAIM_DELEGATE_CUR: open_claim_delegate_cur4.
    DelegateCur {
        stateid: Stateid,
        file: &'a [u8],
    },
    /// CLAIM_DELEGATE_PREV: the file's name.
    DelegatePrev(&'a [u8]),
    Fh,
    DelegCurFh(Stateid),
    DelegPrevFh,
    /// An open_claim_type4 RFC 8881 does not define (NFS4ERR_INVAL): nothing after it
    /// is decoded.
    Undefined(u32),
    /// Not decoded: the claim follows an undefined [`OpenHow`], so where it starts is
    /// unknown. Encodes as nothing.
    Unread,
}

impl OpenClaim<'_> {
    /// open_claim_type4 (None for [`OpenClaim::Unread`]).
    pub fn claim_type(&self) -> Option<u32> {
        Some(match self {
            OpenClaim::Null(_) => open_claim_type4::NULL,
            OpenClaim::Previous(_) => open_claim_type4::PREVIOUS,
            OpenClaim::DelegateCur { .. } => open_claim_type4::DELEGATE_CUR,
            OpenClaim::DelegatePrev(_) => open_claim_type4::DELEGATE_PREV,
            OpenClaim::Fh => open_claim_type4::FH,
            OpenClaim::DelegCurFh(_) => open_claim_type4::DELEG_CUR_FH,
            OpenClaim::DelegPrevFh => open_claim_type4::DELEG_PREV_FH,
            OpenClaim::Undefined(t) => *t,
            OpenClaim::Unread => return None,
        })
    }
}

impl<'a> Xdr<'a> for OpenClaim<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(match d.u32()? {
            open_claim_type4::NULL => OpenClaim::Null(component(d)?),
            open_claim_type4::PREVIOUS => OpenClaim::Previous(d.u32()?),
            open_claim_type4::DELEGATE_CUR => OpenClaim::DelegateCur {
                stateid: Stateid::decode(d)?,
                file: component(d)?,
            },
            open_claim_type4::DELEGATE_PREV => OpenClaim::DelegatePrev(component(d)?),
            open_claim_type4::FH => OpenClaim::Fh,
            open_claim_type4::DELEG_CUR_FH => OpenClaim::DelegCurFh(Stateid::decode(d)?),
            open_claim_type4::DELEG_PREV_FH => OpenClaim::DelegPrevFh,
            t => OpenClaim::Undefined(t),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let Some(t) = self.claim_type() else {
            return;
        };
        out.put_u32(t);
        match self {
            OpenClaim::Null(name) | OpenClaim::DelegatePrev(name) => out.put_opaque(name),
            OpenClaim::Previous(deleg) => out.put_u32(*deleg),
            OpenClaim::DelegateCur { stateid, file } => {
                stateid.encode(out);
                out.put_opaque(file);
            }
            OpenClaim::DelegCurFh(stateid) => stateid.encode(out),
            OpenClaim::Fh
            | OpenClaim::DelegPrevFh
            | OpenClaim::Undefined(_)
            | OpenClaim::Unread => {}
        }
    }
}

/// OPEN4args. `claim` is [`OpenClaim::Unread`] exactly when `how` is not
/// [`OpenHow::is_defined`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenArgs<'a> {
    pub seqid: u32,
    /// Access bits and OPEN4_SHARE_ACCESS_WANT_* bits, as sent.
    pub share_access: u32,
    pub share_deny: u32,
    pub owner: StateOwner<'a>,
    pub how: OpenHow<'a>,
    pub claim: OpenClaim<'a>,
}

impl<'a> Xdr<'a> for OpenArgs<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        let seqid = d.u32()?;
        let share_access = d.u32()?;
        let share_deny = d.u32()?;
        let owner = StateOwner::decode(d)?;
        let how = OpenHow::decode(d)?;
        let claim = match how.is_defined() {
            true => OpenClaim::decode(d)?,
            false => OpenClaim::Unread,
        };
        Ok(OpenArgs {
            seqid,
            share_access,
            share_deny,
            owner,
            how,
            claim,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.seqid);
        out.put_u32(self.share_access);
        out.put_u32(self.share_deny);
        self.owner.encode(out);
        self.how.encode(out);
        self.claim.encode(out);
    }
}

/// nfsace4.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NfsAce<'a> {
    pub acetype: u32,
    pub flag: u32,
    pub access_mask: u32,
    /// utf8str_mixed.
    pub who: &'a [u8],
}

impl<'a> Xdr<'a> for NfsAce<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(NfsAce {
            acetype: d.u32()?,
            flag: d.u32()?,
            access_mask: d.u32()?,
            who: d.opaque(NFS4_OPAQUE_LIMIT)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.acetype);
        out.put_u32(self.flag);
        out.put_u32(self.access_mask);
        out.put_opaque(self.who);
    }
}

/// nfs_space_limit4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpaceLimit {
    /// NFS_LIMIT_SIZE: a file size.
    Size(u64),
    /// NFS_LIMIT_BLOCKS: nfs_modified_limit4.
    Blocks {
        num_blocks: u32,
        bytes_per_block: u32,
    },
}

impl Xdr<'_> for SpaceLimit {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(match d.u32()? {
            limit_by4::SIZE => SpaceLimit::Size(d.u64()?),
            limit_by4::BLOCKS => SpaceLimit::Blocks {
                num_blocks: d.u32()?,
                bytes_per_block: d.u32()?,
            },
            _ => return Err(XdrError::BadValue),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            SpaceLimit::Size(size) => {
                out.put_u32(limit_by4::SIZE);
                out.put_u64(*size);
            }
            SpaceLimit::Blocks {
                num_blocks,
                bytes_per_block,
            } => {
                out.put_u32(limit_by4::BLOCKS);
                out.put_u32(*num_blocks);
                out.put_u32(*bytes_per_block);
            }
        }
    }
}

/// open_none_delegation4: why no delegation was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhyNoDelegation {
    /// WND4_CONTENTION with ond_server_will_push_deleg.
    Contention { will_push: bool },
    /// WND4_RESOURCE with ond_server_will_signal_avail.
    Resource { will_signal: bool },
    /// Any other why_no_delegation4 (the union's default arm: nothing follows). Never
    /// WND4_CONTENTION or WND4_RESOURCE.
    Other(u32),
}

impl WhyNoDelegation {
    /// why_no_delegation4.
    pub fn why(&self) -> u32 {
        match self {
            WhyNoDelegation::Contention { .. } => why_no_delegation4::CONTENTION,
            WhyNoDelegation::Resource { .. } => why_no_delegation4::RESOURCE,
            WhyNoDelegation::Other(w) => *w,
        }
    }
}

impl Xdr<'_> for WhyNoDelegation {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(match d.u32()? {
            why_no_delegation4::CONTENTION => WhyNoDelegation::Contention {
                will_push: d.bool()?,
            },
            why_no_delegation4::RESOURCE => WhyNoDelegation::Resource {
                will_signal: d.bool()?,
            },
            w => WhyNoDelegation::Other(w),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.why());
        match self {
            WhyNoDelegation::Contention { will_push: b }
            | WhyNoDelegation::Resource { will_signal: b } => out.put_bool(*b),
            WhyNoDelegation::Other(_) => {}
        }
    }
}

/// open_delegation4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenDelegation<'a> {
    None,
    /// open_read_delegation4.
    Read {
        stateid: Stateid,
        recall: bool,
        permissions: NfsAce<'a>,
    },
    /// open_write_delegation4.
    Write {
        stateid: Stateid,
        recall: bool,
        space_limit: SpaceLimit,
        permissions: NfsAce<'a>,
    },
    /// OPEN_DELEGATE_NONE_EXT.
    NoneExt(WhyNoDelegation),
}

impl OpenDelegation<'_> {
    /// open_delegation_type4.
    pub fn kind(&self) -> u32 {
        match self {
            OpenDelegation::None => open_delegation_type4::NONE,
            OpenDelegation::Read { .. } => open_delegation_type4::READ,
            OpenDelegation::Write { .. } => open_delegation_type4::WRITE,
            OpenDelegation::NoneExt(_) => open_delegation_type4::NONE_EXT,
        }
    }
}

impl<'a> Xdr<'a> for OpenDelegation<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(match d.u32()? {
            open_delegation_type4::NONE => OpenDelegation::None,
            open_delegation_type4::READ => OpenDelegation::Read {
                stateid: Stateid::decode(d)?,
                recall: d.bool()?,
                permissions: NfsAce::decode(d)?,
            },
            open_delegation_type4::WRITE => OpenDelegation::Write {
                stateid: Stateid::decode(d)?,
                recall: d.bool()?,
                space_limit: SpaceLimit::decode(d)?,
                permissions: NfsAce::decode(d)?,
            },
            open_delegation_type4::NONE_EXT => OpenDelegation::NoneExt(WhyNoDelegation::decode(d)?),
            _ => return Err(XdrError::BadValue),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.kind());
        match self {
            OpenDelegation::None => {}
            OpenDelegation::Read {
                stateid,
                recall,
                permissions,
            } => {
                stateid.encode(out);
                out.put_bool(*recall);
                permissions.encode(out);
            }
            OpenDelegation::Write {
                stateid,
                recall,
                space_limit,
                permissions,
            } => {
                stateid.encode(out);
                out.put_bool(*recall);
                space_limit.encode(out);
                permissions.encode(out);
            }
            OpenDelegation::NoneExt(why) => why.encode(out),
        }
    }
}

/// OPEN4resok.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenResOk<'a> {
    pub stateid: Stateid,
    pub cinfo: ChangeInfo,
    /// OPEN4_RESULT_* flags.
    pub rflags: u32,
    pub attrset: Vec<u32>,
    pub delegation: OpenDelegation<'a>,
}

impl<'a> Xdr<'a> for OpenResOk<'a> {
    fn decode(d: &mut XdrDecoder<'a>) -> Result<Self, XdrError> {
        Ok(OpenResOk {
            stateid: Stateid::decode(d)?,
            cinfo: ChangeInfo::decode(d)?,
            rflags: d.u32()?,
            attrset: decode_bitmap(d)?,
            delegation: OpenDelegation::decode(d)?,
        })
    }

    /// `attrset` goes out without trailing zero words.
    fn encode(&self, out: &mut Vec<u8>) {
        self.stateid.encode(out);
        self.cinfo.encode(out);
        out.put_u32(self.rflags);
        encode_bitmap(out, &self.attrset);
        self.delegation.encode(out);
    }
}

// ---- OPEN_DOWNGRADE, CLOSE --------------------------------------------------------------

/// deleg_claim4 (RFC 8881 §18.49.1): which delegation WANT_DELEGATION asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelegClaim {
    /// CLAIM_FH: a new delegation of the current file.
    Fh,
    /// CLAIM_DELEG_PREV_FH: one held by the client's previous instance.
    DelegPrevFh,
    /// CLAIM_PREVIOUS: one held before the server restarted (its open_delegation_type4).
    Previous(u32),
    /// Any other open_claim_type4 (NFS4ERR_INVAL).
    Other(u32),
}

/// WANT_DELEGATION4args (RFC 8881 §18.49): `want` holds OPEN4_SHARE_ACCESS_WANT_* bits
/// only. The result is an open_delegation4 ([`OpenDelegation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WantDelegationArgs {
    pub want: u32,
    pub claim: DelegClaim,
}

impl Xdr<'_> for WantDelegationArgs {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        let want = d.u32()?;
        let claim = match d.u32()? {
            open_claim_type4::FH => DelegClaim::Fh,
            open_claim_type4::DELEG_PREV_FH => DelegClaim::DelegPrevFh,
            open_claim_type4::PREVIOUS => DelegClaim::Previous(d.u32()?),
            other => DelegClaim::Other(other),
        };
        Ok(WantDelegationArgs { want, claim })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.want);
        match self.claim {
            DelegClaim::Fh => out.put_u32(open_claim_type4::FH),
            DelegClaim::DelegPrevFh => out.put_u32(open_claim_type4::DELEG_PREV_FH),
            DelegClaim::Previous(t) => {
                out.put_u32(open_claim_type4::PREVIOUS);
                out.put_u32(t);
            }
            DelegClaim::Other(c) => out.put_u32(c),
        }
    }
}

/// OPEN_DOWNGRADE4args. `share_access` as sent (WANT bits included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenDowngradeArgs {
    pub stateid: Stateid,
    pub seqid: u32,
    pub share_access: u32,
    pub share_deny: u32,
}

impl Xdr<'_> for OpenDowngradeArgs {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(OpenDowngradeArgs {
            stateid: Stateid::decode(d)?,
            seqid: d.u32()?,
            share_access: d.u32()?,
            share_deny: d.u32()?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.stateid.encode(out);
        out.put_u32(self.seqid);
        out.put_u32(self.share_access);
        out.put_u32(self.share_deny);
    }
}

stateid_only! {
    /// OPEN_DOWNGRADE4resok.
    OpenDowngradeResOk
}

/// CLOSE4args.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseArgs {
    pub seqid: u32,
    pub stateid: Stateid,
}

impl Xdr<'_> for CloseArgs {
    fn decode(d: &mut XdrDecoder<'_>) -> Result<Self, XdrError> {
        Ok(CloseArgs {
            seqid: d.u32()?,
            stateid: Stateid::decode(d)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.seqid);
        self.stateid.encode(out);
    }
}

stateid_only! {
    /// CLOSE4resok: the open stateid, which a server answers with the invalid special
    /// stateid (RFC 8881 §18.2.4).
    CloseResOk
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::roundtrip;
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    pub fn stateid() -> impl Strategy<Value = Stateid> {
        (any::<u32>(), any::<[u8; 12]>()).prop_map(|(seqid, other)| Stateid { seqid, other })
    }

    /// A bitmap as the encoder writes it: no trailing zero words.
    pub fn bitmap() -> impl Strategy<Value = Vec<u32>> {
        vec(any::<u32>(), 0..4).prop_map(|mut v| {
            while v.last() == Some(&0) {
                v.pop();
            }
            v
        })
    }

    pub fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        vec(any::<u8>(), 0..max)
    }

    /// A defined opentype4 and createmode4 (0..5), or an undefined one (5, 6).
    fn how<'a>(k: u8, verf: Verifier, attrs: Fattr4<'a>, undefined: u32) -> OpenHow<'a> {
        match k {
            0 => OpenHow::NoCreate,
            1 => OpenHow::Create(CreateHow::Unchecked(attrs)),
            2 => OpenHow::Create(CreateHow::Guarded(attrs)),
            3 => OpenHow::Create(CreateHow::Exclusive4(verf)),
            4 => OpenHow::Create(CreateHow::Exclusive41(verf, attrs)),
            5 => OpenHow::Undefined(undefined.max(2)),
            _ => OpenHow::Create(CreateHow::Undefined(undefined.max(4))),
        }
    }

    fn claim(k: u8, sid: Stateid, name: &[u8], w: u32) -> OpenClaim<'_> {
        match k {
            0 => OpenClaim::Null(name),
            1 => OpenClaim::Previous(w),
            2 => OpenClaim::DelegateCur {
                stateid: sid,
                file: name,
            },
            3 => OpenClaim::DelegatePrev(name),
            4 => OpenClaim::Fh,
            5 => OpenClaim::DelegPrevFh,
            6 => OpenClaim::DelegCurFh(sid),
            _ => OpenClaim::Undefined(w.max(7)),
        }
    }

    fn ace(w: [u32; 3], who: &[u8]) -> NfsAce<'_> {
        NfsAce {
            acetype: w[0],
            flag: w[1],
            access_mask: w[2],
            who,
        }
    }

    proptest! {
        #[test]
        fn open_args_round_trip(seqid in any::<u32>(), access in any::<u32>(), deny in any::<u32>(),
                                clientid in any::<u64>(), owner in bytes(64),
                                hk in 0u8..7, ck in 0u8..8, verf in any::<Verifier>(),
                                mask in bitmap(), vals in bytes(40), sid in stateid(),
                                name in bytes(300), w in any::<u32>()) {
            let attrs = Fattr4 { mask, vals: &vals };
            let how = how(hk, verf, attrs.clone(), w);
            let claim = if how.is_defined() { claim(ck, sid, &name, w) } else { OpenClaim::Unread };
            roundtrip!(how.clone());
            if claim != OpenClaim::Unread {
                roundtrip!(claim.clone());
            }
            if let OpenHow::Create(c) = &how {
                roundtrip!(c.clone());
            }
            roundtrip!(attrs);
            roundtrip!(StateOwner { clientid, owner: &owner });
            roundtrip!(OpenArgs { seqid, share_access: access, share_deny: deny,
                owner: StateOwner { clientid, owner: &owner }, how, claim });
        }

        #[test]
        fn open_results_round_trip(sid in stateid(), atomic in any::<bool>(), ch in any::<(u64, u64)>(),
                                   rflags in any::<u32>(), attrset in bitmap(), dk in 0u8..7,
                                   recall in any::<bool>(), w in any::<[u32; 3]>(),
                                   who in bytes(32), size in any::<u64>(), b in any::<bool>(),
                                   why in any::<u32>()) {
            let permissions = ace(w, &who);
            let delegation = match dk {
                0 => OpenDelegation::None,
                1 => OpenDelegation::Read { stateid: sid, recall, permissions },
                2 => OpenDelegation::Write { stateid: sid, recall,
                    space_limit: SpaceLimit::Size(size), permissions },
                3 => OpenDelegation::Write { stateid: sid, recall, space_limit: SpaceLimit::Blocks {
                    num_blocks: w[0], bytes_per_block: w[1] }, permissions },
                4 => OpenDelegation::NoneExt(WhyNoDelegation::Contention { will_push: b }),
                5 => OpenDelegation::NoneExt(WhyNoDelegation::Resource { will_signal: b }),
                // Contention and resource reasons have their own arms.
                _ => OpenDelegation::NoneExt(WhyNoDelegation::Other(
                    if (1..=2).contains(&why) { 0 } else { why })),
            };
            let cinfo = ChangeInfo { atomic, before: ch.0, after: ch.1 };
            roundtrip!(cinfo);
            roundtrip!(permissions);
            roundtrip!(delegation.clone());
            roundtrip!(OpenResOk { stateid: sid, cinfo, rflags, attrset, delegation });
            roundtrip!(SpaceLimit::Size(size));
            roundtrip!(OpenDowngradeArgs { stateid: sid, seqid: w[0], share_access: w[1],
                share_deny: w[2] });
            roundtrip!(OpenDowngradeResOk { stateid: sid });
            roundtrip!(CloseArgs { seqid: w[0], stateid: sid });
            roundtrip!(CloseResOk { stateid: sid });
        }
    }

    #[test]
    fn undefined_discriminants_stop_or_fail() {
        let owner = StateOwner {
            clientid: 5,
            owner: b"o",
        };
        // An undefined opentype4 or createmode4 is kept, and nothing after it is read:
        // the handler answers NFS4ERR_INVAL whatever follows.
        for (how, words) in [
            (OpenHow::Undefined(2), vec![2u32]),
            (OpenHow::Create(CreateHow::Undefined(9)), vec![1, 9]),
        ] {
            let mut v = Vec::new();
            v.put_u32(0);
            v.put_u32(1);
            v.put_u32(0);
            owner.encode(&mut v);
            for w in words {
                v.put_u32(w);
            }
            v.put_raw(b"junk");
            let mut d = XdrDecoder::new(&v);
            let a = OpenArgs::decode(&mut d).unwrap();
            assert_eq!((a.how, a.claim), (how, OpenClaim::Unread));
            assert_eq!(d.rest(), b"junk");
        }
        // An undefined claim type is kept too.
        let mut v = Vec::new();
        v.put_u32(99);
        assert_eq!(OpenClaim::from_bytes(&v), Ok(OpenClaim::Undefined(99)));
        // A name longer than NFS4_OPAQUE_LIMIT decodes (NAMETOOLONG is the handler's);
        // an owner longer does not (open_owner4 bounds it).
        let long = vec![b'a'; 5000];
        let c = OpenClaim::Null(&long).to_bytes();
        assert_eq!(OpenClaim::from_bytes(&c), Ok(OpenClaim::Null(&long)));
        let o = StateOwner {
            clientid: 1,
            owner: &long,
        }
        .to_bytes();
        assert!(StateOwner::from_bytes(&o).is_err());
        // Results: open_delegation4 and limit_by4 have no default arm.
        let mut v = Vec::new();
        v.put_u32(4);
        assert!(OpenDelegation::from_bytes(&v).is_err());
        let mut v = Vec::new();
        v.put_u32(3);
        v.put_u64(0);
        assert!(SpaceLimit::from_bytes(&v).is_err());
        // why_no_delegation4 has one: an unknown reason carries nothing.
        let mut v = Vec::new();
        v.put_u32(3);
        v.put_u32(42);
        assert_eq!(
            OpenDelegation::from_bytes(&v),
            Ok(OpenDelegation::NoneExt(WhyNoDelegation::Other(42)))
        );
    }
}
