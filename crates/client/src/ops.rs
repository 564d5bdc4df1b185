//! COMPOUND operations the client sends (RFC 8881 §18). Their XDR is the server's:
//! every argument is encoded through its `ringnfs_proto::nfs4::ops` type ([`wire`]).
//! The types here are owned conveniences for building requests (no borrowed buffers,
//! no arms this client never sends); each converts into its wire type with `wire()`,
//! and none describes a layout of its own.

use ringnfs_proto::nfs4::consts::{NFS4_VERIFIER_SIZE, op};
use ringnfs_proto::rpc::{AuthSys, Credential};
use ringnfs_proto::xdr::XdrEncoder;

use ringnfs_proto::nfs4::attr;
/// The operation types the server and this client share (their XDR lives there).
pub use ringnfs_proto::nfs4::ops as wire;
use ringnfs_proto::nfs4::ops::Xdr;
pub use ringnfs_proto::stateid::Stateid;

pub use ringnfs_proto::ids::SessionId;
pub type Verifier = [u8; NFS4_VERIFIER_SIZE];

/// nfs_impl_id4, owned (the wire type `wire::ImplId` borrows).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImplId {
    pub domain: Vec<u8>,
    pub name: Vec<u8>,
    /// nfstime4: seconds, nseconds.
    pub date: (i64, u32),
}

/// state_protect4_a as this client asks for it (SP4_SSV is not offered); converts into
/// `wire::StateProtectArgs` through [`ExchangeIdArgs::wire`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StateProtect {
    #[default]
    None,
    /// SP4_MACH_CRED with spo_must_enforce and spo_must_allow bitmaps.
    MachCred {
        must_enforce: Vec<u32>,
        must_allow: Vec<u32>,
    },
}

/// EXCHANGE_ID4args, owned; [`ExchangeIdArgs::wire`] is the wire type
/// (`wire::ExchangeIdArgs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeIdArgs {
    pub verifier: Verifier,
    pub owner_id: Vec<u8>,
    pub flags: u32,
    pub state_protect: StateProtect,
    pub impl_id: Option<ImplId>,
}

pub use ringnfs_proto::nfs4::types::ChannelAttrs;

/// callback_sec_parms4 as this client offers it (RPCSEC_GSS is not offered); converts
/// into `wire::CallbackSecParms` through [`CreateSessionArgs::wire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackSec {
    None,
    Sys(AuthSys),
    /// RPCSEC_GSS with these gss_cb_handles4 (the client library has no GSS: for tests
    /// of what a server does with a flavor it cannot call back with).
    Gss {
        service: u32,
        server_handle: Vec<u8>,
        client_handle: Vec<u8>,
    },
}

impl CallbackSec {
    /// The callback security matching the credential the client itself uses.
    pub fn from_credential(cred: &Credential) -> Self {
        match cred {
            Credential::None | Credential::Gss(_) => CallbackSec::None,
            Credential::Sys(s) => CallbackSec::Sys(s.clone()),
        }
    }
}

/// CREATE_SESSION4args, owned; [`CreateSessionArgs::wire`] is the wire type
/// (`wire::CreateSessionArgs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSessionArgs {
    pub clientid: u64,
    pub sequence: u32,
    pub flags: u32,
    pub fore: ChannelAttrs,
    pub back: ChannelAttrs,
    pub cb_program: u32,
    pub sec_parms: Vec<CallbackSec>,
}

/// Declares [`Op`] from one row per operation: the variant, its nfs_opnum4, and how its
/// arguments are encoded, always through the operation's `ringnfs_proto` type (`out` is
/// the argument buffer). Variants carry the proto type itself where it owns its data;
/// where the proto type borrows, they carry owned fields that are lent to it.
macro_rules! ops {
    ($out:ident; $(
        $(#[$doc:meta])*
        $name:ident $( ( $a:ident : $t:ty ) )? $( { $($f:ident : $ft:ty),* $(,)? } )?
            = $opnum:expr => $enc:expr;
    )*) => {
        /// One operation of a COMPOUND request.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Op {
            $( $(#[$doc])* $name $( ($t) )? $( { $( $f: $ft ),* } )?, )*
        }

        impl Op {
            /// The nfs_opnum4 this operation is sent as.
            #[allow(unused_variables)]
            pub fn opnum(&self) -> u32 {
                match self {
                    $( Op::$name $( ($a) )? $( { $($f),* } )? => $opnum, )*
                }
            }

            /// Encode as nfs_argop4: the opnum, then the arguments.
            #[allow(unused_variables)]
            pub fn encode(&self, $out: &mut Vec<u8>) {
                $out.put_u32(self.opnum());
                match self {
                    $( Op::$name $( ($a) )? $( { $($f),* } )? => $enc, )*
                }
            }
        }
    };
}

ops! { out;
    Sequence(a: wire::SequenceArgs) = op::SEQUENCE => a.encode(out);
    ExchangeId(a: ExchangeIdArgs) = op::EXCHANGE_ID => a.wire().encode(out);
    CreateSession(a: CreateSessionArgs) = op::CREATE_SESSION => a.wire().encode(out);
    /// BACKCHANNEL_CTL: the session's callback program and security.
    BackchannelCtl { cb_program: u32, sec_parms: Vec<CallbackSec> } = op::BACKCHANNEL_CTL =>
        wire::BackchannelCtlArgs {
            cb_program: *cb_program,
            sec_parms: sec_parms.iter().map(CallbackSec::wire).collect(),
        }
        .encode(out);
    /// `dir` is a raw channel_dir_from_client4 so tests can send invalid values.
    BindConnToSession(a: wire::BindConnArgs) = op::BIND_CONN_TO_SESSION => a.encode(out);
    DestroySession(sessionid: SessionId) = op::DESTROY_SESSION =>
        wire::DestroySessionArgs { sessionid: *sessionid }.encode(out);
    DestroyClientid(clientid: u64) = op::DESTROY_CLIENTID =>
        wire::DestroyClientidArgs { clientid: *clientid }.encode(out);
    ReclaimComplete { one_fs: bool } = op::RECLAIM_COMPLETE =>
        wire::ReclaimCompleteArgs { one_fs: *one_fs }.encode(out);
    PutRootFh = op::PUTROOTFH => ();
    PutFh(fh: Vec<u8>) = op::PUTFH => wire::PutFhArgs { fh }.encode(out);
    GetFh = op::GETFH => ();
    SaveFh = op::SAVEFH => ();
    RestoreFh = op::RESTOREFH => ();
    /// GETATTR with the attr_request bitmap words.
    GetAttr(bitmap: Vec<u32>) = op::GETATTR =>
        wire::GetAttrArgs { attr_request: bitmap.clone() }.encode(out);
    Lookup(name: Vec<u8>) = op::LOOKUP => wire::LookupArgs { name }.encode(out);
    Access(access: u32) = op::ACCESS => wire::AccessArgs { access: *access }.encode(out);
    Close(a: wire::CloseArgs) = op::CLOSE => a.encode(out);
    Commit(a: wire::CommitArgs) = op::COMMIT => a.encode(out);
    Create { kind: CreateType, name: Vec<u8>, attrs: Fattr } = op::CREATE => {
        let mut vals = Vec::new();
        let createattrs = attrs.wire(&mut vals);
        wire::CreateArgs { objtype: kind.wire(), objname: name, createattrs }.encode(out)
    };
    /// LINK: the saved filehandle gets `name` in the current directory.
    Link(name: Vec<u8>) = op::LINK => wire::NameArgs { name }.encode(out);
    Lock { locktype: u32, reclaim: bool, offset: u64, length: u64, locker: Locker } = op::LOCK =>
        wire::LockArgs {
            locktype: *locktype,
            reclaim: *reclaim,
            offset: *offset,
            length: *length,
            locker: locker.wire(),
        }
        .encode(out);
    LockT { locktype: u32, offset: u64, length: u64, clientid: u64, owner: Vec<u8> } =
        op::LOCKT => wire::LocktArgs {
            locktype: *locktype,
            offset: *offset,
            length: *length,
            owner: wire::StateOwner { clientid: *clientid, owner },
        }
        .encode(out);
    LockU(a: wire::LockuArgs) = op::LOCKU => a.encode(out);
    LookupP = op::LOOKUPP => ();
    Nverify(attrs: Fattr) = op::NVERIFY =>
        wire::VerifyArgs { attrs: attrs.wire(&mut Vec::new()) }.encode(out);
    Open(a: OpenArgs) = op::OPEN => a.wire(&a.how.attr_vals()).encode(out);
    OpenDowngrade(a: wire::OpenDowngradeArgs) = op::OPEN_DOWNGRADE => a.encode(out);
    PutPubFh = op::PUTPUBFH => ();
    Read(a: wire::ReadArgs) = op::READ => a.encode(out);
    Readdir(a: wire::ReaddirArgs) = op::READDIR => a.encode(out);
    Readlink = op::READLINK => ();
    Remove(name: Vec<u8>) = op::REMOVE => wire::NameArgs { name }.encode(out);
    /// RENAME: `old` in the saved directory becomes `new` in the current one.
    Rename { old: Vec<u8>, new: Vec<u8> } = op::RENAME =>
        wire::RenameArgs { oldname: old, newname: new }.encode(out);
    Secinfo(name: Vec<u8>) = op::SECINFO => wire::NameArgs { name }.encode(out);
    SecinfoNoName(style: u32) = op::SECINFO_NO_NAME =>
        wire::SecinfoNoNameArgs { style: *style }.encode(out);
    SetAttr { stateid: Stateid, attrs: Fattr } = op::SETATTR =>
        wire::SetAttrArgs { stateid: *stateid, attrs: attrs.wire(&mut Vec::new()) }.encode(out);
    TestStateid(ids: Vec<Stateid>) = op::TEST_STATEID =>
        wire::TestStateidArgs { stateids: ids.clone() }.encode(out);
    FreeStateid(stateid: Stateid) = op::FREE_STATEID =>
        wire::FreeStateidArgs { stateid: *stateid }.encode(out);
    DelegReturn(stateid: Stateid) = op::DELEGRETURN =>
        wire::DelegReturnArgs { stateid: *stateid }.encode(out);
    WantDelegation(a: wire::WantDelegationArgs) = op::WANT_DELEGATION => a.encode(out);
    Verify(attrs: Fattr) = op::VERIFY =>
        wire::VerifyArgs { attrs: attrs.wire(&mut Vec::new()) }.encode(out);
    Write { stateid: Stateid, offset: u64, stable: u32, data: Vec<u8> } = op::WRITE =>
        wire::WriteArgs { stateid: *stateid, offset: *offset, stable: *stable, data }
            .encode(out);
    Seek(a: wire::SeekArgs) = op::SEEK => a.encode(out);
    ReadPlus(a: wire::ReadArgs) = op::READ_PLUS => a.encode(out);
    Allocate(a: wire::SpaceArgs) = op::ALLOCATE => a.encode(out);
    Deallocate(a: wire::SpaceArgs) = op::DEALLOCATE => a.encode(out);
    /// CLONE: the saved filehandle's range into the current one's.
    Clone(a: wire::CloneArgs) = op::CLONE => a.encode(out);
    /// COPY within the server (no source servers): saved filehandle to current one.
    Copy { a: wire::CloneArgs, synchronous: bool } = op::COPY => wire::CopyArgs {
        src_stateid: a.src_stateid,
        dst_stateid: a.dst_stateid,
        src_offset: a.src_offset,
        dst_offset: a.dst_offset,
        count: a.count,
        consecutive: true,
        synchronous: *synchronous,
        source_servers: Vec::new(),
    }
    .encode(out);
    OffloadStatus(stateid: Stateid) = op::OFFLOAD_STATUS =>
        wire::OffloadArgs { stateid: *stateid }.encode(out);
    OffloadCancel(stateid: Stateid) = op::OFFLOAD_CANCEL =>
        wire::OffloadArgs { stateid: *stateid }.encode(out);
    GetXattr(name: Vec<u8>) = op::GETXATTR => wire::XattrNameArgs { name }.encode(out);
    /// SETXATTR with a raw setxattr_option4 (tests send undefined ones).
    SetXattr { option: u32, name: Vec<u8>, value: Vec<u8> } = op::SETXATTR =>
        wire::SetXattrArgs { option: *option, name, value }.encode(out);
    ListXattrs(a: wire::ListXattrsArgs) = op::LISTXATTRS => a.encode(out);
    RemoveXattr(name: Vec<u8>) = op::REMOVEXATTR => wire::XattrNameArgs { name }.encode(out);
    /// Any operation number followed by pre-encoded argument bytes (may be illegal).
    Raw { opnum: u32, args: Vec<u8> } = *opnum => out.put_raw(args);
}

/// nfs_ftype4 values by short names (proto's `consts::ftype4`).
pub mod ftype {
    use ringnfs_proto::nfs4::consts::ftype4;
    pub const REG: u32 = ftype4::NF4REG;
    pub const DIR: u32 = ftype4::NF4DIR;
    pub const BLK: u32 = ftype4::NF4BLK;
    pub const CHR: u32 = ftype4::NF4CHR;
    pub const LNK: u32 = ftype4::NF4LNK;
    pub const SOCK: u32 = ftype4::NF4SOCK;
    pub const FIFO: u32 = ftype4::NF4FIFO;
}

/// ACCESS4 bits.
pub use ringnfs_proto::nfs4::consts::access;

/// OPEN4_SHARE_ACCESS_* / OPEN4_SHARE_DENY_*.
pub mod share {
    pub const ACCESS_READ: u32 = 1;
    pub const ACCESS_WRITE: u32 = 2;
    pub const ACCESS_BOTH: u32 = 3;
    pub const DENY_NONE: u32 = 0;
    pub const DENY_READ: u32 = 1;
    pub const DENY_WRITE: u32 = 2;
    pub const DENY_BOTH: u32 = 3;
}

/// nfs_lock_type4 by short names (proto's `nfs_lock_type4`).
pub mod locktype {
    use super::wire::nfs_lock_type4 as t;
    pub const READ: u32 = t::READ_LT;
    pub const WRITE: u32 = t::WRITE_LT;
    pub const READW: u32 = t::READW_LT;
    pub const WRITEW: u32 = t::WRITEW_LT;
}

/// stable_how4 (proto's).
pub use ringnfs_proto::nfs4::ops::stable_how4 as stable;

/// open_delegation_type4 (proto's).
pub use ringnfs_proto::nfs4::ops::open_delegation_type4 as deleg;

/// OPEN4_RESULT_* flags (proto's).
pub use ringnfs_proto::nfs4::ops::open4_result as open_result;

/// createtype4 (CREATE's object type and its type-specific data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateType {
    Dir,
    Symlink(Vec<u8>),
    Fifo,
    Socket,
    /// specdata1, specdata2 (major, minor).
    Block(u32, u32),
    Char(u32, u32),
    /// Any nfs_ftype4 without type-specific data (NF4REG, invalid values).
    Other(u32),
}

impl CreateType {
    /// The wire form (`ringnfs_proto`'s, which the server decodes).
    pub fn wire(&self) -> wire::CreateType<'_> {
        let spec = |specdata1, specdata2| wire::SpecData {
            specdata1,
            specdata2,
        };
        match self {
            CreateType::Dir => wire::CreateType::Dir,
            CreateType::Symlink(target) => wire::CreateType::Link(target),
            CreateType::Fifo => wire::CreateType::Fifo,
            CreateType::Socket => wire::CreateType::Socket,
            CreateType::Block(a, b) => wire::CreateType::Block(spec(*a, *b)),
            CreateType::Char(a, b) => wire::CreateType::Char(spec(*a, *b)),
            CreateType::Other(t) => wire::CreateType::Other(*t),
        }
    }
}

/// settime4 of time_access_set / time_modify_set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSet {
    /// SET_TO_SERVER_TIME4.
    Server,
    /// SET_TO_CLIENT_TIME4 with an nfstime4 (seconds, nseconds).
    Client(i64, u32),
}

/// A fattr4 to send: attribute number → XDR value. Encoded as the bitmap of the
/// attributes present followed by attr_vals in increasing attribute order (RFC 8881
/// §3.3.7), so any attribute can be sent (VERIFY of read-only ones, invalid values).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fattr {
    vals: std::collections::BTreeMap<u32, Vec<u8>>,
}

impl Fattr {
    pub fn new() -> Self {
        Self::default()
    }

    /// Any attribute with its value already XDR-encoded.
    pub fn raw(mut self, attr: u32, value: Vec<u8>) -> Self {
        self.vals.insert(attr, value);
        self
    }

    fn with(self, attr: u32, f: impl FnOnce(&mut Vec<u8>)) -> Self {
        let mut v = Vec::new();
        f(&mut v);
        self.raw(attr, v)
    }

    /// `type` (read-only: for VERIFY, or to provoke INVAL in SETATTR).
    pub fn ftype(self, t: u32) -> Self {
        self.with(attr::TYPE, |v| v.put_u32(t))
    }
    pub fn size(self, size: u64) -> Self {
        self.with(attr::SIZE, |v| v.put_u64(size))
    }
    pub fn mode(self, mode: u32) -> Self {
        self.with(attr::MODE, |v| v.put_u32(mode))
    }
    /// Owner as a string ("1000").
    pub fn owner(self, owner: &str) -> Self {
        self.with(attr::OWNER, |v| v.put_opaque(owner.as_bytes()))
    }
    pub fn owner_group(self, group: &str) -> Self {
        self.with(attr::OWNER_GROUP, |v| v.put_opaque(group.as_bytes()))
    }
    pub fn numlinks(self, n: u32) -> Self {
        self.with(attr::NUMLINKS, |v| v.put_u32(n))
    }
    pub fn fileid(self, id: u64) -> Self {
        self.with(attr::FILEID, |v| v.put_u64(id))
    }
    pub fn time_access_set(self, t: TimeSet) -> Self {
        self.with(attr::TIME_ACCESS_SET, |v| encode_settime(v, t))
    }
    pub fn time_modify_set(self, t: TimeSet) -> Self {
        self.with(attr::TIME_MODIFY_SET, |v| encode_settime(v, t))
    }

    pub fn is_empty(&self) -> bool {
        self.vals.is_empty()
    }

    /// The attribute bitmap (no trailing zero words).
    pub fn bitmap(&self) -> Vec<u32> {
        let mut w: Vec<u32> = Vec::new();
        for &a in self.vals.keys() {
            let i = a as usize / 32;
            if w.len() <= i {
                w.resize(i + 1, 0);
            }
            w[i] |= 1 << (a % 32);
        }
        w
    }

    /// attr_vals: the values packed in increasing attribute order.
    pub fn packed_vals(&self) -> Vec<u8> {
        self.vals.values().flatten().copied().collect()
    }

    /// The wire fattr4, its attr_vals packed into `vals`.
    pub fn wire<'a>(&self, vals: &'a mut Vec<u8>) -> wire::Fattr4<'a> {
        *vals = self.packed_vals();
        wire::Fattr4 {
            mask: self.bitmap(),
            vals,
        }
    }

    /// fattr4: bitmap4 attrmask; attrlist4 attr_vals.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut vals = Vec::new();
        self.wire(&mut vals).encode(out);
    }
}

fn encode_settime(out: &mut Vec<u8>, t: TimeSet) {
    match t {
        TimeSet::Server => out.put_u32(0),
        TimeSet::Client(secs, nsecs) => {
            out.put_u32(1);
            out.put_i64(secs);
            out.put_u32(nsecs);
        }
    }
}

/// locker4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locker {
    /// open_to_lock_owner4: a new lock owner, from an open stateid.
    New {
        open_seqid: u32,
        open_stateid: Stateid,
        lock_seqid: u32,
        clientid: u64,
        owner: Vec<u8>,
    },
    /// exist_lock_owner4.
    Existing { stateid: Stateid, seqid: u32 },
}

impl Locker {
    /// The wire form (`ringnfs_proto`'s, which the server decodes).
    pub fn wire(&self) -> wire::Locker<'_> {
        match self {
            Locker::New {
                open_seqid,
                open_stateid,
                lock_seqid,
                clientid,
                owner,
            } => wire::Locker::New {
                open_seqid: *open_seqid,
                open_stateid: *open_stateid,
                lock_seqid: *lock_seqid,
                owner: wire::StateOwner {
                    clientid: *clientid,
                    owner,
                },
            },
            Locker::Existing { stateid, seqid } => wire::Locker::Existing {
                stateid: *stateid,
                seqid: *seqid,
            },
        }
    }
}

/// openflag4 / createhow4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenHow {
    NoCreate,
    Unchecked(Fattr),
    Guarded(Fattr),
    Exclusive4(Verifier),
    Exclusive41(Verifier, Fattr),
}

impl OpenHow {
    /// The fattr4 its create mode carries.
    fn attrs(&self) -> Option<&Fattr> {
        match self {
            OpenHow::NoCreate | OpenHow::Exclusive4(_) => None,
            OpenHow::Unchecked(a) | OpenHow::Guarded(a) | OpenHow::Exclusive41(_, a) => Some(a),
        }
    }

    /// Its fattr4's attr_vals, packed (empty without one): what [`OpenHow::wire`]
    /// borrows.
    pub fn attr_vals(&self) -> Vec<u8> {
        self.attrs().map(Fattr::packed_vals).unwrap_or_default()
    }

    /// The wire form, its attr_vals borrowed from `vals` ([`OpenHow::attr_vals`]).
    pub fn wire<'a>(&self, vals: &'a [u8]) -> wire::OpenHow<'a> {
        let fattr = |a: &Fattr| wire::Fattr4 {
            mask: a.bitmap(),
            vals,
        };
        match self {
            OpenHow::NoCreate => wire::OpenHow::NoCreate,
            OpenHow::Unchecked(a) => wire::OpenHow::Create(wire::CreateHow::Unchecked(fattr(a))),
            OpenHow::Guarded(a) => wire::OpenHow::Create(wire::CreateHow::Guarded(fattr(a))),
            OpenHow::Exclusive4(v) => wire::OpenHow::Create(wire::CreateHow::Exclusive4(*v)),
            OpenHow::Exclusive41(v, a) => {
                wire::OpenHow::Create(wire::CreateHow::Exclusive41(*v, fattr(a)))
            }
        }
    }
}

/// open_claim4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenClaim {
    Null(Vec<u8>),
    /// CLAIM_PREVIOUS with the delegation type being reclaimed.
    Previous(u32),
    DelegateCur(Stateid, Vec<u8>),
    DelegatePrev(Vec<u8>),
    Fh,
    DelegCurFh(Stateid),
    DelegPrevFh,
}

impl OpenClaim {
    /// The wire form (`ringnfs_proto`'s, which the server decodes).
    pub fn wire(&self) -> wire::OpenClaim<'_> {
        match self {
            OpenClaim::Null(name) => wire::OpenClaim::Null(name),
            OpenClaim::Previous(t) => wire::OpenClaim::Previous(*t),
            OpenClaim::DelegateCur(sid, name) => wire::OpenClaim::DelegateCur {
                stateid: *sid,
                file: name,
            },
            OpenClaim::DelegatePrev(name) => wire::OpenClaim::DelegatePrev(name),
            OpenClaim::Fh => wire::OpenClaim::Fh,
            OpenClaim::DelegCurFh(sid) => wire::OpenClaim::DelegCurFh(*sid),
            OpenClaim::DelegPrevFh => wire::OpenClaim::DelegPrevFh,
        }
    }
}

/// OPEN4args.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenArgs {
    pub seqid: u32,
    pub share_access: u32,
    pub share_deny: u32,
    /// open_owner4: clientid and owner.
    pub clientid: u64,
    pub owner: Vec<u8>,
    pub how: OpenHow,
    pub claim: OpenClaim,
}

impl OpenArgs {
    /// The wire form (`ringnfs_proto`'s, which the server decodes), the createattrs'
    /// attr_vals borrowed from `vals` ([`OpenHow::attr_vals`]).
    pub fn wire<'a>(&'a self, vals: &'a [u8]) -> wire::OpenArgs<'a> {
        wire::OpenArgs {
            seqid: self.seqid,
            share_access: self.share_access,
            share_deny: self.share_deny,
            owner: wire::StateOwner {
                clientid: self.clientid,
                owner: &self.owner,
            },
            how: self.how.wire(vals),
            claim: self.claim.wire(),
        }
    }
}

impl ImplId {
    fn wire(&self) -> wire::ImplId<'_> {
        wire::ImplId {
            domain: &self.domain,
            name: &self.name,
            date: self.date,
        }
    }
}

impl ExchangeIdArgs {
    /// The wire form (`ringnfs_proto`'s, which the server decodes).
    pub fn wire(&self) -> wire::ExchangeIdArgs<'_> {
        wire::ExchangeIdArgs {
            verifier: self.verifier,
            owner: &self.owner_id,
            flags: self.flags,
            state_protect: match &self.state_protect {
                StateProtect::None => wire::StateProtectArgs::None,
                StateProtect::MachCred {
                    must_enforce,
                    must_allow,
                } => wire::StateProtectArgs::MachCred(wire::StateProtectOps {
                    must_enforce: must_enforce.clone(),
                    must_allow: must_allow.clone(),
                }),
            },
            impl_id: self.impl_id.as_ref().map(ImplId::wire),
        }
    }
}

impl CreateSessionArgs {
    /// The wire form (`ringnfs_proto`'s, which the server decodes).
    pub fn wire(&self) -> wire::CreateSessionArgs<'_> {
        wire::CreateSessionArgs {
            clientid: self.clientid,
            sequence: self.sequence,
            flags: self.flags,
            fore: self.fore,
            back: self.back,
            cb_program: self.cb_program,
            sec_parms: self.sec_parms.iter().map(CallbackSec::wire).collect(),
        }
    }
}

impl CallbackSec {
    /// The wire form (callback_sec_parms4).
    pub fn wire(&self) -> wire::CallbackSecParms<'_> {
        match self {
            CallbackSec::None => wire::CallbackSecParms::None,
            CallbackSec::Sys(s) => wire::CallbackSecParms::Sys(s.clone()),
            CallbackSec::Gss {
                service,
                server_handle,
                client_handle,
            } => wire::CallbackSecParms::Gss {
                service: *service,
                server_handle,
                client_handle,
            },
        }
    }
}

/// Encode COMPOUND4args: tag, minorversion, argarray.
pub fn encode_compound(out: &mut Vec<u8>, minorversion: u32, tag: &[u8], ops: &[Op]) {
    out.put_opaque(tag);
    out.put_u32(minorversion);
    out.put_u32(ops.len() as u32);
    for o in ops {
        o.encode(out);
    }
}

#[cfg(test)]
mod tests {
    use super::wire::{
        BindConnArgs, CloseArgs, CommitArgs, LockuArgs, OpenDowngradeArgs, ReadArgs, ReaddirArgs,
        SequenceArgs,
    };
    use super::*;
    use ringnfs_proto::xdr::XdrDecoder;

    fn enc(o: &Op) -> Vec<u8> {
        let mut v = Vec::new();
        o.encode(&mut v);
        v
    }

    fn words(v: &[u8]) -> Vec<u32> {
        assert_eq!(v.len() % 4, 0);
        v.chunks(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    #[test]
    fn sequence_layout() {
        let sid = SessionId([0x11u8; 16]);
        let v = enc(&Op::Sequence(SequenceArgs {
            sessionid: sid,
            sequenceid: 7,
            slotid: 3,
            highest_slotid: 63,
            cachethis: true,
        }));
        // opnum, 16-byte session id (no length), seqid, slot, highest, bool
        assert_eq!(v.len(), 4 + 16 + 16);
        assert_eq!(&v[..4], &53u32.to_be_bytes());
        assert_eq!(&v[4..20], &sid.0);
        assert_eq!(words(&v[20..]), vec![7, 3, 63, 1]);
    }

    #[test]
    fn exchange_id_layout_none_and_mach_cred() {
        let a = ExchangeIdArgs {
            verifier: *b"verf0001",
            owner_id: b"abcde".to_vec(),
            flags: 0x101,
            state_protect: StateProtect::None,
            impl_id: None,
        };
        let v = enc(&Op::ExchangeId(a.clone()));
        let mut d = XdrDecoder::new(&v);
        assert_eq!(d.u32().unwrap(), 42);
        assert_eq!(d.opaque_fixed(8).unwrap(), b"verf0001");
        assert_eq!(d.opaque(1024).unwrap(), b"abcde");
        assert_eq!(d.u32().unwrap(), 0x101);
        assert_eq!(d.u32().unwrap(), 0); // SP4_NONE
        assert_eq!(d.u32().unwrap(), 0); // no impl id
        assert_eq!(d.remaining(), 0);
        // 4 + 8 + (4+8 padded "abcde") + 4 + 4 + 4
        assert_eq!(v.len(), 4 + 8 + 12 + 12);

        let b = ExchangeIdArgs {
            state_protect: StateProtect::MachCred {
                must_enforce: vec![1 << 10, 0x2],
                must_allow: vec![],
            },
            impl_id: Some(ImplId {
                domain: b"x.org".to_vec(),
                name: b"ringnfs".to_vec(),
                date: (-2, 9),
            }),
            ..a
        };
        let v = enc(&Op::ExchangeId(b));
        let mut d = XdrDecoder::new(&v);
        d.skip(4 + 8 + 12 + 4).unwrap();
        assert_eq!(d.u32().unwrap(), 1); // SP4_MACH_CRED
        assert_eq!(d.u32().unwrap(), 2);
        assert_eq!(d.u32().unwrap(), 1 << 10);
        assert_eq!(d.u32().unwrap(), 2);
        assert_eq!(d.u32().unwrap(), 0); // empty must_allow
        assert_eq!(d.u32().unwrap(), 1); // one impl id
        assert_eq!(d.opaque(1024).unwrap(), b"x.org");
        assert_eq!(d.opaque(1024).unwrap(), b"ringnfs");
        assert_eq!(d.i64().unwrap(), -2);
        assert_eq!(d.u32().unwrap(), 9);
        assert_eq!(d.remaining(), 0);
    }

    #[test]
    fn create_session_layout() {
        let attrs = ChannelAttrs {
            headerpadsize: 0,
            maxrequestsize: 1 << 20,
            maxresponsesize: 2 << 20,
            maxresponsesize_cached: 4096,
            maxoperations: 16,
            maxrequests: 64,
            rdma_ird: None,
        };
        let sys = AuthSys {
            stamp: 5,
            machine_name: b"m".to_vec(),
            uid: 1000,
            gid: 100,
            gids: vec![4],
        };
        let v = enc(&Op::CreateSession(CreateSessionArgs {
            clientid: 0x0102_0304_0506_0708,
            sequence: 1,
            flags: 2,
            fore: attrs,
            back: ChannelAttrs {
                rdma_ird: Some(9),
                ..attrs
            },
            cb_program: 0x4000_0000,
            sec_parms: vec![CallbackSec::None, CallbackSec::Sys(sys)],
        }));
        let w = words(&v);
        assert_eq!(
            w,
            vec![
                43,
                0x0102_0304,
                0x0506_0708,
                1,
                2, // opnum, clientid, sequence, flags
                0,
                1 << 20,
                2 << 20,
                4096,
                16,
                64,
                0, // fore, empty ird
                0,
                1 << 20,
                2 << 20,
                4096,
                16,
                64,
                1,
                9, // back, one ird
                0x4000_0000,
                2, // cb_program, two sec parms
                0, // AUTH_NONE
                1,
                5,
                1,
                u32::from_be_bytes(*b"m\0\0\0"),
                1000,
                100,
                1,
                4, // AUTH_SYS inline
            ]
        );
    }

    #[test]
    fn small_ops_layout() {
        let sid = SessionId([7u8; 16]);
        let v = enc(&Op::BindConnToSession(BindConnArgs {
            sessionid: sid,
            dir: 0x99,
            use_rdma: false,
        }));
        assert_eq!(&v[..4], &41u32.to_be_bytes());
        assert_eq!(&v[4..20], &sid.0);
        assert_eq!(words(&v[20..]), vec![0x99, 0]);
        let v = enc(&Op::DestroySession(sid));
        assert_eq!((v.len(), &v[4..]), (20, &sid.0[..]));
        assert_eq!(words(&enc(&Op::DestroyClientid(5))), vec![57, 0, 5]);
        assert_eq!(
            words(&enc(&Op::ReclaimComplete { one_fs: true })),
            vec![58, 1]
        );
        assert_eq!(words(&enc(&Op::PutRootFh)), vec![24]);
        assert_eq!(words(&enc(&Op::GetFh)), vec![10]);
        assert_eq!(words(&enc(&Op::SaveFh)), vec![32]);
        assert_eq!(words(&enc(&Op::RestoreFh)), vec![31]);
        assert_eq!(
            words(&enc(&Op::PutFh(vec![1, 2, 3, 4, 5]))),
            vec![22, 5, 0x0102_0304, 0x0500_0000]
        );
        assert_eq!(
            words(&enc(&Op::GetAttr(vec![0x10, 0x20]))),
            vec![9, 2, 0x10, 0x20]
        );
        assert_eq!(
            words(&enc(&Op::Lookup(b"ab".to_vec()))),
            vec![15, 2, 0x6162_0000]
        );
        assert_eq!(
            words(&enc(&Op::Raw {
                opnum: 9999,
                args: vec![0, 0, 0, 1]
            })),
            vec![9999, 1]
        );
    }

    #[test]
    fn file_ops_decode_as_the_server_will() {
        // Each op's arguments through ringnfs_proto's type (opnum stripped).
        fn args(o: &Op) -> Vec<u8> {
            enc(o)[4..].to_vec()
        }
        let s = Stateid {
            seqid: 2,
            other: [3; 12],
        };
        let attrs = Fattr::new().size(3).mode(0o600);
        let mut vals = Vec::new();
        let fattr = attrs.wire(&mut vals);
        assert_eq!(fattr.mask, vec![1 << 4, 1 << 1]);
        let b = args(&Op::Create {
            kind: CreateType::Char(1, 2),
            name: b"c".to_vec(),
            attrs: attrs.clone(),
        });
        assert_eq!(
            wire::CreateArgs::from_bytes(&b).unwrap(),
            wire::CreateArgs {
                objtype: wire::CreateType::Char(wire::SpecData {
                    specdata1: 1,
                    specdata2: 2
                }),
                objname: b"c",
                createattrs: fattr.clone(),
            }
        );
        // NF4REG has no arm of its own: the server's NFS4ERR_BADTYPE to give.
        let b = args(&Op::Create {
            kind: CreateType::Other(ftype::REG),
            name: b"r".to_vec(),
            attrs: Fattr::new(),
        });
        assert_eq!(
            wire::CreateArgs::from_bytes(&b).unwrap().objtype,
            wire::CreateType::Other(ftype::REG)
        );
        let b = args(&Op::SetAttr {
            stateid: s,
            attrs: attrs.clone(),
        });
        assert_eq!(
            wire::SetAttrArgs::from_bytes(&b).unwrap(),
            wire::SetAttrArgs {
                stateid: s,
                attrs: fattr.clone()
            }
        );
        let b = args(&Op::Verify(attrs.clone()));
        assert_eq!(wire::VerifyArgs::from_bytes(&b).unwrap().attrs, fattr);
        let b = args(&Op::Readdir(ReaddirArgs {
            cookie: 9,
            cookieverf: *b"cookieve",
            dircount: 1,
            maxcount: 2,
            attr_request: vec![1, 2],
        }));
        assert_eq!(
            wire::ReaddirArgs::from_bytes(&b).unwrap(),
            wire::ReaddirArgs {
                cookie: 9,
                cookieverf: *b"cookieve",
                dircount: 1,
                maxcount: 2,
                attr_request: vec![1, 2],
            }
        );
        // Too long for the protocol, still decoded: the server's BADHANDLE and
        // NAMETOOLONG to give.
        let b = args(&Op::PutFh(vec![7; 129]));
        assert_eq!(wire::PutFhArgs::from_bytes(&b).unwrap().fh.len(), 129);
        let b = args(&Op::Lookup(vec![b'a'; 70_000]));
        assert_eq!(wire::LookupArgs::from_bytes(&b).unwrap().name.len(), 70_000);
        let b = args(&Op::Rename {
            old: b"o".to_vec(),
            new: b"n".to_vec(),
        });
        assert_eq!(
            wire::RenameArgs::from_bytes(&b).unwrap(),
            wire::RenameArgs {
                oldname: b"o",
                newname: b"n"
            }
        );
        for o in [
            Op::Remove(b"x".to_vec()),
            Op::Link(b"x".to_vec()),
            Op::Secinfo(b"x".to_vec()),
        ] {
            assert_eq!(wire::NameArgs::from_bytes(&args(&o)).unwrap().name, b"x");
        }
        let b = args(&Op::SecinfoNoName(9));
        assert_eq!(wire::SecinfoNoNameArgs::from_bytes(&b).unwrap().style, 9);
        let b = args(&Op::Access(0x3f));
        assert_eq!(wire::AccessArgs::from_bytes(&b).unwrap().access, 0x3f);
        let b = args(&Op::GetAttr(vec![0, 1]));
        assert_eq!(
            wire::GetAttrArgs::from_bytes(&b).unwrap().attr_request,
            vec![0, 1]
        );
    }

    #[test]
    fn compound_layout() {
        let mut v = Vec::new();
        encode_compound(&mut v, 1, b"tag", &[Op::PutRootFh, Op::GetFh]);
        assert_eq!(
            words(&v),
            vec![3, u32::from_be_bytes(*b"tag\0"), 1, 2, 24, 10]
        );
    }

    #[test]
    fn fattr_bitmap_and_value_order() {
        // Inserted out of order; encoded in attribute order, values packed.
        let a = Fattr::new()
            .time_modify_set(TimeSet::Client(5, 6))
            .owner("1000")
            .mode(0o644)
            .size(7)
            .time_access_set(TimeSet::Server);
        let mut v = Vec::new();
        a.encode(&mut v);
        let w = words(&v);
        assert_eq!(w[0], 2); // two bitmap words
        assert_eq!(w[1], 1 << 4);
        assert_eq!(w[2], 1 << 1 | 1 << 4 | 1 << 16 | 1 << 22);
        assert_eq!(w[3] as usize, v.len() - 16);
        assert_eq!(
            &w[4..],
            &[0, 7, 0o644, 4, u32::from_be_bytes(*b"1000"), 0, 1, 0, 5, 6]
        );
        let mut v = Vec::new();
        Fattr::new().encode(&mut v);
        assert_eq!(words(&v), vec![0, 0]);
    }

    #[test]
    fn file_ops_layout() {
        let s = Stateid {
            seqid: 9,
            other: [0xAA; 12],
        };
        let sw = [9, 0xAAAA_AAAA, 0xAAAA_AAAA, 0xAAAA_AAAA];
        let cat = |parts: &[&[u32]]| parts.concat();
        assert_eq!(words(&enc(&Op::Access(0x3f))), vec![3, 0x3f]);
        assert_eq!(
            words(&enc(&Op::Close(CloseArgs {
                seqid: 0,
                stateid: s
            }))),
            cat(&[&[4, 0], &sw])
        );
        assert_eq!(
            words(&enc(&Op::Commit(CommitArgs {
                offset: 1 << 32,
                count: 5
            }))),
            vec![5, 1, 0, 5]
        );
        assert_eq!(
            words(&enc(&Op::Create {
                kind: CreateType::Symlink(b"/".to_vec()),
                name: b"l".to_vec(),
                attrs: Fattr::new()
            })),
            vec![6, 5, 1, 0x2f00_0000, 1, 0x6c00_0000, 0, 0]
        );
        assert_eq!(
            words(&enc(&Op::Create {
                kind: CreateType::Block(3, 4),
                name: b"b".to_vec(),
                attrs: Fattr::new()
            }))[..4],
            [6, 3, 3, 4]
        );
        assert_eq!(
            words(&enc(&Op::Lock {
                locktype: 2,
                reclaim: false,
                offset: 1,
                length: u64::MAX,
                locker: Locker::New {
                    open_seqid: 0,
                    open_stateid: s,
                    lock_seqid: 0,
                    clientid: 7,
                    owner: b"o".to_vec()
                }
            })),
            cat(&[
                &[12, 2, 0, 0, 1, u32::MAX, u32::MAX, 1, 0],
                &sw,
                &[0, 0, 7, 1, 0x6f00_0000]
            ])
        );
        assert_eq!(
            words(&enc(&Op::Lock {
                locktype: 1,
                reclaim: true,
                offset: 0,
                length: 1,
                locker: Locker::Existing {
                    stateid: s,
                    seqid: 3
                }
            })),
            cat(&[&[12, 1, 1, 0, 0, 0, 1, 0], &sw, &[3]])
        );
        assert_eq!(
            words(&enc(&Op::LockT {
                locktype: 1,
                offset: 2,
                length: 3,
                clientid: 4,
                owner: vec![]
            })),
            vec![13, 1, 0, 2, 0, 3, 0, 4, 0]
        );
        assert_eq!(
            words(&enc(&Op::LockU(LockuArgs {
                locktype: 1,
                seqid: 2,
                stateid: s,
                offset: 3,
                length: 4
            }))),
            cat(&[&[14, 1, 2], &sw, &[0, 3, 0, 4]])
        );
        let open = |how, claim| {
            words(&enc(&Op::Open(OpenArgs {
                seqid: 0,
                share_access: 3,
                share_deny: 0,
                clientid: 5,
                owner: b"ow".to_vec(),
                how,
                claim,
            })))
        };
        let head = [18, 0, 3, 0, 0, 5, 2, 0x6f77_0000];
        assert_eq!(
            open(OpenHow::NoCreate, OpenClaim::Fh),
            cat(&[&head, &[0, 4]])
        );
        assert_eq!(
            open(
                OpenHow::Guarded(Fattr::new().mode(0o600)),
                OpenClaim::Null(b"f".to_vec())
            ),
            cat(&[&head, &[1, 1, 2, 0, 2, 4, 0o600, 0, 1, 0x6600_0000]])
        );
        assert_eq!(
            open(
                OpenHow::Exclusive41(*b"verifier", Fattr::new()),
                OpenClaim::Previous(0)
            ),
            cat(&[&head, &[1, 3, 0x7665_7269, 0x6669_6572, 0, 0, 1, 0]])
        );
        assert_eq!(
            open(OpenHow::Exclusive4(*b"verifier"), OpenClaim::DelegCurFh(s)),
            cat(&[&head, &[1, 2, 0x7665_7269, 0x6669_6572, 6], &sw])
        );
        assert_eq!(
            open(OpenHow::NoCreate, OpenClaim::DelegateCur(s, b"n".to_vec())),
            cat(&[&head, &[0, 2], &sw, &[1, 0x6e00_0000]])
        );
        assert_eq!(
            open(OpenHow::NoCreate, OpenClaim::DelegPrevFh),
            cat(&[&head, &[0, 5]])
        );
        assert_eq!(
            words(&enc(&Op::OpenDowngrade(OpenDowngradeArgs {
                stateid: s,
                seqid: 1,
                share_access: 1,
                share_deny: 0
            }))),
            cat(&[&[21], &sw, &[1, 1, 0]])
        );
        assert_eq!(
            words(&enc(&Op::Read(ReadArgs {
                stateid: s,
                offset: 8,
                count: 9
            }))),
            cat(&[&[25], &sw, &[0, 8, 9]])
        );
        assert_eq!(
            words(&enc(&Op::Readdir(ReaddirArgs {
                cookie: 3,
                cookieverf: [0; 8],
                dircount: 10,
                maxcount: 20,
                attr_request: vec![2]
            }))),
            vec![26, 0, 3, 0, 0, 10, 20, 1, 2]
        );
        assert_eq!(
            words(&enc(&Op::Rename {
                old: b"a".to_vec(),
                new: b"bc".to_vec()
            })),
            vec![29, 1, 0x6100_0000, 2, 0x6263_0000]
        );
        assert_eq!(
            words(&enc(&Op::SetAttr {
                stateid: s,
                attrs: Fattr::new().size(1)
            })),
            cat(&[&[34], &sw, &[1, 1 << 4, 8, 0, 1]])
        );
        assert_eq!(
            words(&enc(&Op::TestStateid(vec![s, s]))),
            cat(&[&[55, 2], &sw, &sw])
        );
        assert_eq!(
            words(&enc(&Op::Write {
                stateid: s,
                offset: 0,
                stable: 2,
                data: b"xyz".to_vec()
            })),
            cat(&[&[38], &sw, &[0, 0, 2, 3, 0x7879_7a00]])
        );
        for (o, n) in [
            (Op::LookupP, 16),
            (Op::PutPubFh, 23),
            (Op::Readlink, 27),
            (Op::SecinfoNoName(1), 52),
            (Op::FreeStateid(s), 45),
            (Op::DelegReturn(s), 8),
            (Op::Remove(vec![]), 28),
            (Op::Link(vec![]), 11),
            (Op::Secinfo(vec![]), 33),
            (Op::Verify(Fattr::new()), 37),
            (Op::Nverify(Fattr::new()), 17),
        ] {
            assert_eq!(o.opnum(), n);
            assert_eq!(words(&enc(&o))[0], n);
        }
    }
}
