//! NFSv4.1 protocol numbers (RFC 8881 / RFC 7862 XDR).

pub const NFS4_PROGRAM: u32 = 100003;
pub const NFS4_VERSION: u32 = 4;
pub const NFS4_CALLBACK_VERSION: u32 = 1;
pub const PROC_NULL: u32 = 0;
pub const PROC_COMPOUND: u32 = 1;
pub const CB_PROC_COMPOUND: u32 = 1;

pub const NFS4_SESSIONID_SIZE: usize = 16;
pub const NFS4_VERIFIER_SIZE: usize = 8;
pub const NFS4_OPAQUE_LIMIT: usize = 1024;
pub const NFS4_FHSIZE: usize = 128;

/// Operation numbers (nfs_opnum4).
pub mod op {
    pub const ACCESS: u32 = 3;
    pub const CLOSE: u32 = 4;
    pub const COMMIT: u32 = 5;
    pub const CREATE: u32 = 6;
    pub const DELEGPURGE: u32 = 7;
    pub const DELEGRETURN: u32 = 8;
    pub const GETATTR: u32 = 9;
    pub const GETFH: u32 = 10;
    pub const LINK: u32 = 11;
    pub const LOCK: u32 = 12;
    pub const LOCKT: u32 = 13;
    pub const LOCKU: u32 = 14;
    pub const LOOKUP: u32 = 15;
    pub const LOOKUPP: u32 = 16;
    pub const NVERIFY: u32 = 17;
    pub const OPEN: u32 = 18;
    pub const OPENATTR: u32 = 19;
    pub const OPEN_CONFIRM: u32 = 20;
    pub const OPEN_DOWNGRADE: u32 = 21;
    pub const PUTFH: u32 = 22;
    pub const PUTPUBFH: u32 = 23;
    pub const PUTROOTFH: u32 = 24;
    pub const READ: u32 = 25;
    pub const READDIR: u32 = 26;
    pub const READLINK: u32 = 27;
    pub const REMOVE: u32 = 28;
    pub const RENAME: u32 = 29;
    pub const RENEW: u32 = 30;
    pub const RESTOREFH: u32 = 31;
    pub const SAVEFH: u32 = 32;
    pub const SECINFO: u32 = 33;
    pub const SETATTR: u32 = 34;
    pub const SETCLIENTID: u32 = 35;
    pub const SETCLIENTID_CONFIRM: u32 = 36;
    pub const VERIFY: u32 = 37;
    pub const WRITE: u32 = 38;
    pub const RELEASE_LOCKOWNER: u32 = 39;
    pub const BACKCHANNEL_CTL: u32 = 40;
    pub const BIND_CONN_TO_SESSION: u32 = 41;
    pub const EXCHANGE_ID: u32 = 42;
    pub const CREATE_SESSION: u32 = 43;
    pub const DESTROY_SESSION: u32 = 44;
    pub const FREE_STATEID: u32 = 45;
    pub const GET_DIR_DELEGATION: u32 = 46;
    pub const GETDEVICEINFO: u32 = 47;
    pub const GETDEVICELIST: u32 = 48;
    pub const LAYOUTCOMMIT: u32 = 49;
    pub const LAYOUTGET: u32 = 50;
    pub const LAYOUTRETURN: u32 = 51;
    pub const SECINFO_NO_NAME: u32 = 52;
    pub const SEQUENCE: u32 = 53;
    pub const SET_SSV: u32 = 54;
    pub const TEST_STATEID: u32 = 55;
    pub const WANT_DELEGATION: u32 = 56;
    pub const DESTROY_CLIENTID: u32 = 57;
    pub const RECLAIM_COMPLETE: u32 = 58;
    // NFSv4.2 (RFC 7862): optional, answered NFS4ERR_NOTSUPP.
    pub const ALLOCATE: u32 = 59;
    pub const COPY: u32 = 60;
    pub const COPY_NOTIFY: u32 = 61;
    pub const DEALLOCATE: u32 = 62;
    pub const IO_ADVISE: u32 = 63;
    pub const LAYOUTERROR: u32 = 64;
    pub const LAYOUTSTATS: u32 = 65;
    pub const OFFLOAD_CANCEL: u32 = 66;
    pub const OFFLOAD_STATUS: u32 = 67;
    pub const READ_PLUS: u32 = 68;
    pub const SEEK: u32 = 69;
    pub const WRITE_SAME: u32 = 70;
    pub const CLONE: u32 = 71;
    pub const GETXATTR: u32 = 72;
    pub const SETXATTR: u32 = 73;
    pub const LISTXATTRS: u32 = 74;
    pub const REMOVEXATTR: u32 = 75;
    pub const ILLEGAL: u32 = 10044;
}

/// nfs_ftype4: the type attribute, and CREATE's object type.
pub mod ftype4 {
    pub const NF4REG: u32 = 1;
    pub const NF4DIR: u32 = 2;
    pub const NF4BLK: u32 = 3;
    pub const NF4CHR: u32 = 4;
    pub const NF4LNK: u32 = 5;
    pub const NF4SOCK: u32 = 6;
    pub const NF4FIFO: u32 = 7;
    pub const NF4ATTRDIR: u32 = 8;
    pub const NF4NAMEDATTR: u32 = 9;
}

/// Callback operation numbers (nfs_cb_opnum4).
pub mod cb_op {
    /// RFC 8881 §20.1.
    pub const CB_GETATTR: u32 = 3;
    /// RFC 8881 §20.2.
    pub const CB_RECALL: u32 = 4;
    pub const CB_SEQUENCE: u32 = 11;
    /// RFC 7862 §16.1.
    pub const CB_OFFLOAD: u32 = 15;
    pub const CB_ILLEGAL: u32 = 10044;
}

/// NFS status codes (nfsstat4) that this server returns.
pub mod status {
    use super::NfsStatus;

    pub const NFS4_OK: NfsStatus = NfsStatus(0);
    pub const NFS4ERR_PERM: NfsStatus = NfsStatus(1);
    pub const NFS4ERR_NOENT: NfsStatus = NfsStatus(2);
    pub const NFS4ERR_NXIO: NfsStatus = NfsStatus(6);
    pub const NFS4ERR_IO: NfsStatus = NfsStatus(5);
    pub const NFS4ERR_ACCESS: NfsStatus = NfsStatus(13);
    pub const NFS4ERR_EXIST: NfsStatus = NfsStatus(17);
    pub const NFS4ERR_NOTDIR: NfsStatus = NfsStatus(20);
    pub const NFS4ERR_ISDIR: NfsStatus = NfsStatus(21);
    pub const NFS4ERR_INVAL: NfsStatus = NfsStatus(22);
    pub const NFS4ERR_XDEV: NfsStatus = NfsStatus(18);
    pub const NFS4ERR_FBIG: NfsStatus = NfsStatus(27);
    pub const NFS4ERR_NOSPC: NfsStatus = NfsStatus(28);
    pub const NFS4ERR_MLINK: NfsStatus = NfsStatus(31);
    pub const NFS4ERR_DQUOT: NfsStatus = NfsStatus(69);
    pub const NFS4ERR_ROFS: NfsStatus = NfsStatus(30);
    pub const NFS4ERR_NAMETOOLONG: NfsStatus = NfsStatus(63);
    pub const NFS4ERR_NOTEMPTY: NfsStatus = NfsStatus(66);
    pub const NFS4ERR_STALE: NfsStatus = NfsStatus(70);
    pub const NFS4ERR_BADHANDLE: NfsStatus = NfsStatus(10001);
    pub const NFS4ERR_BAD_COOKIE: NfsStatus = NfsStatus(10003);
    pub const NFS4ERR_NOTSUPP: NfsStatus = NfsStatus(10004);
    pub const NFS4ERR_TOOSMALL: NfsStatus = NfsStatus(10005);
    pub const NFS4ERR_SERVERFAULT: NfsStatus = NfsStatus(10006);
    pub const NFS4ERR_BADTYPE: NfsStatus = NfsStatus(10007);
    pub const NFS4ERR_DELAY: NfsStatus = NfsStatus(10008);
    pub const NFS4ERR_SAME: NfsStatus = NfsStatus(10009);
    pub const NFS4ERR_DENIED: NfsStatus = NfsStatus(10010);
    pub const NFS4ERR_EXPIRED: NfsStatus = NfsStatus(10011);
    pub const NFS4ERR_LOCKED: NfsStatus = NfsStatus(10012);
    pub const NFS4ERR_GRACE: NfsStatus = NfsStatus(10013);
    pub const NFS4ERR_FHEXPIRED: NfsStatus = NfsStatus(10014);
    pub const NFS4ERR_SHARE_DENIED: NfsStatus = NfsStatus(10015);
    pub const NFS4ERR_WRONGSEC: NfsStatus = NfsStatus(10016);
    pub const NFS4ERR_CLID_INUSE: NfsStatus = NfsStatus(10017);
    pub const NFS4ERR_RESOURCE: NfsStatus = NfsStatus(10018);
    pub const NFS4ERR_MOVED: NfsStatus = NfsStatus(10019);
    pub const NFS4ERR_NOFILEHANDLE: NfsStatus = NfsStatus(10020);
    pub const NFS4ERR_MINOR_VERS_MISMATCH: NfsStatus = NfsStatus(10021);
    pub const NFS4ERR_STALE_CLIENTID: NfsStatus = NfsStatus(10022);
    pub const NFS4ERR_STALE_STATEID: NfsStatus = NfsStatus(10023);
    pub const NFS4ERR_OLD_STATEID: NfsStatus = NfsStatus(10024);
    pub const NFS4ERR_BAD_STATEID: NfsStatus = NfsStatus(10025);
    pub const NFS4ERR_BAD_SEQID: NfsStatus = NfsStatus(10026);
    pub const NFS4ERR_NOT_SAME: NfsStatus = NfsStatus(10027);
    pub const NFS4ERR_LOCK_RANGE: NfsStatus = NfsStatus(10028);
    pub const NFS4ERR_SYMLINK: NfsStatus = NfsStatus(10029);
    pub const NFS4ERR_RESTOREFH: NfsStatus = NfsStatus(10030);
    pub const NFS4ERR_ATTRNOTSUPP: NfsStatus = NfsStatus(10032);
    pub const NFS4ERR_NO_GRACE: NfsStatus = NfsStatus(10033);
    pub const NFS4ERR_LOCKS_HELD: NfsStatus = NfsStatus(10037);
    pub const NFS4ERR_OPENMODE: NfsStatus = NfsStatus(10038);
    pub const NFS4ERR_BADXDR: NfsStatus = NfsStatus(10036);
    pub const NFS4ERR_BADOWNER: NfsStatus = NfsStatus(10039);
    pub const NFS4ERR_BADCHAR: NfsStatus = NfsStatus(10040);
    pub const NFS4ERR_BADNAME: NfsStatus = NfsStatus(10041);
    pub const NFS4ERR_OP_ILLEGAL: NfsStatus = NfsStatus(10044);
    pub const NFS4ERR_DEADLOCK: NfsStatus = NfsStatus(10045);
    pub const NFS4ERR_FILE_OPEN: NfsStatus = NfsStatus(10046);
    pub const NFS4ERR_ADMIN_REVOKED: NfsStatus = NfsStatus(10047);
    pub const NFS4ERR_CB_PATH_DOWN: NfsStatus = NfsStatus(10048);
    pub const NFS4ERR_BADIOMODE: NfsStatus = NfsStatus(10049);
    pub const NFS4ERR_BADLAYOUT: NfsStatus = NfsStatus(10050);
    pub const NFS4ERR_BAD_SESSION_DIGEST: NfsStatus = NfsStatus(10051);
    pub const NFS4ERR_BADSESSION: NfsStatus = NfsStatus(10052);
    pub const NFS4ERR_BADSLOT: NfsStatus = NfsStatus(10053);
    pub const NFS4ERR_COMPLETE_ALREADY: NfsStatus = NfsStatus(10054);
    pub const NFS4ERR_CONN_NOT_BOUND_TO_SESSION: NfsStatus = NfsStatus(10055);
    pub const NFS4ERR_DELEG_ALREADY_WANTED: NfsStatus = NfsStatus(10056);
    pub const NFS4ERR_BACK_CHAN_BUSY: NfsStatus = NfsStatus(10057);
    pub const NFS4ERR_LAYOUTTRYLATER: NfsStatus = NfsStatus(10058);
    pub const NFS4ERR_LAYOUTUNAVAILABLE: NfsStatus = NfsStatus(10059);
    pub const NFS4ERR_NOMATCHING_LAYOUT: NfsStatus = NfsStatus(10060);
    pub const NFS4ERR_RECALLCONFLICT: NfsStatus = NfsStatus(10061);
    pub const NFS4ERR_UNKNOWN_LAYOUTTYPE: NfsStatus = NfsStatus(10062);
    pub const NFS4ERR_SEQ_MISORDERED: NfsStatus = NfsStatus(10063);
    pub const NFS4ERR_SEQUENCE_POS: NfsStatus = NfsStatus(10064);
    pub const NFS4ERR_REQ_TOO_BIG: NfsStatus = NfsStatus(10065);
    pub const NFS4ERR_REP_TOO_BIG: NfsStatus = NfsStatus(10066);
    pub const NFS4ERR_REP_TOO_BIG_TO_CACHE: NfsStatus = NfsStatus(10067);
    pub const NFS4ERR_RETRY_UNCACHED_REP: NfsStatus = NfsStatus(10068);
    pub const NFS4ERR_UNSAFE_COMPOUND: NfsStatus = NfsStatus(10069);
    pub const NFS4ERR_TOO_MANY_OPS: NfsStatus = NfsStatus(10070);
    pub const NFS4ERR_OP_NOT_IN_SESSION: NfsStatus = NfsStatus(10071);
    pub const NFS4ERR_HASH_ALG_UNSUPP: NfsStatus = NfsStatus(10072);
    pub const NFS4ERR_CLIENTID_BUSY: NfsStatus = NfsStatus(10074);
    pub const NFS4ERR_PNFS_IO_HOLE: NfsStatus = NfsStatus(10075);
    pub const NFS4ERR_SEQ_FALSE_RETRY: NfsStatus = NfsStatus(10076);
    pub const NFS4ERR_BAD_HIGH_SLOT: NfsStatus = NfsStatus(10077);
    pub const NFS4ERR_DEADSESSION: NfsStatus = NfsStatus(10078);
    pub const NFS4ERR_ENCR_ALG_UNSUPP: NfsStatus = NfsStatus(10079);
    pub const NFS4ERR_PNFS_NO_LAYOUT: NfsStatus = NfsStatus(10080);
    pub const NFS4ERR_NOT_ONLY_OP: NfsStatus = NfsStatus(10081);
    pub const NFS4ERR_WRONG_CRED: NfsStatus = NfsStatus(10082);
    pub const NFS4ERR_WRONG_TYPE: NfsStatus = NfsStatus(10083);
    pub const NFS4ERR_DIRDELEG_UNAVAIL: NfsStatus = NfsStatus(10084);
    pub const NFS4ERR_REJECT_DELEG: NfsStatus = NfsStatus(10085);
    pub const NFS4ERR_RETURNCONFLICT: NfsStatus = NfsStatus(10086);
    pub const NFS4ERR_DELEG_REVOKED: NfsStatus = NfsStatus(10087);
    // NFSv4.2 (RFC 7862 §11.2) and extended attributes (RFC 8276 §8.1).
    pub const NFS4ERR_PARTNER_NOTSUPP: NfsStatus = NfsStatus(10088);
    pub const NFS4ERR_PARTNER_NO_AUTH: NfsStatus = NfsStatus(10089);
    pub const NFS4ERR_UNION_NOTSUPP: NfsStatus = NfsStatus(10090);
    pub const NFS4ERR_OFFLOAD_DENIED: NfsStatus = NfsStatus(10091);
    pub const NFS4ERR_WRONG_LFS: NfsStatus = NfsStatus(10092);
    pub const NFS4ERR_BADLABEL: NfsStatus = NfsStatus(10093);
    pub const NFS4ERR_OFFLOAD_NO_REQS: NfsStatus = NfsStatus(10094);
    pub const NFS4ERR_NOXATTR: NfsStatus = NfsStatus(10095);
    pub const NFS4ERR_XATTR2BIG: NfsStatus = NfsStatus(10096);
}

/// An nfsstat4 (RFC 8881 §15): what an operation or a COMPOUND answers. A status is
/// this type, never a bare `u32`; the values are in [`status`]. `code` is its XDR value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize)]
#[serde(transparent)]
#[repr(transparent)]
pub struct NfsStatus(u32);

impl NfsStatus {
    /// The status whose XDR value is `code` (any value a peer sent).
    #[inline]
    pub const fn from_code(code: u32) -> Self {
        NfsStatus(code)
    }

    /// The XDR value.
    #[inline]
    pub const fn code(self) -> u32 {
        self.0
    }

    #[inline]
    pub const fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// The symbolic name (None for codes [`status_name`] does not know).
    pub fn name(self) -> Option<&'static str> {
        status_name(self)
    }
}

/// Written as its number, like the RFC's tables.
impl std::fmt::Display for NfsStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Written as its name and number ("NFS4ERR_NOENT(2)").
impl std::fmt::Debug for NfsStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}({})", self.0),
            None => write!(f, "nfsstat4({})", self.0),
        }
    }
}

/// Symbolic name of an nfsstat4 (None for codes this table does not know).
pub fn status_name(s: NfsStatus) -> Option<&'static str> {
    Some(match s {
        status::NFS4_OK => "NFS4_OK",
        status::NFS4ERR_PERM => "NFS4ERR_PERM",
        status::NFS4ERR_NOENT => "NFS4ERR_NOENT",
        status::NFS4ERR_NXIO => "NFS4ERR_NXIO",
        status::NFS4ERR_IO => "NFS4ERR_IO",
        status::NFS4ERR_ACCESS => "NFS4ERR_ACCESS",
        status::NFS4ERR_EXIST => "NFS4ERR_EXIST",
        status::NFS4ERR_NOTDIR => "NFS4ERR_NOTDIR",
        status::NFS4ERR_ISDIR => "NFS4ERR_ISDIR",
        status::NFS4ERR_INVAL => "NFS4ERR_INVAL",
        status::NFS4ERR_XDEV => "NFS4ERR_XDEV",
        status::NFS4ERR_FBIG => "NFS4ERR_FBIG",
        status::NFS4ERR_NOSPC => "NFS4ERR_NOSPC",
        status::NFS4ERR_MLINK => "NFS4ERR_MLINK",
        status::NFS4ERR_DQUOT => "NFS4ERR_DQUOT",
        status::NFS4ERR_ROFS => "NFS4ERR_ROFS",
        status::NFS4ERR_NAMETOOLONG => "NFS4ERR_NAMETOOLONG",
        status::NFS4ERR_NOTEMPTY => "NFS4ERR_NOTEMPTY",
        status::NFS4ERR_STALE => "NFS4ERR_STALE",
        status::NFS4ERR_BADHANDLE => "NFS4ERR_BADHANDLE",
        status::NFS4ERR_BAD_COOKIE => "NFS4ERR_BAD_COOKIE",
        status::NFS4ERR_NOTSUPP => "NFS4ERR_NOTSUPP",
        status::NFS4ERR_TOOSMALL => "NFS4ERR_TOOSMALL",
        status::NFS4ERR_SERVERFAULT => "NFS4ERR_SERVERFAULT",
        status::NFS4ERR_BADTYPE => "NFS4ERR_BADTYPE",
        status::NFS4ERR_DELAY => "NFS4ERR_DELAY",
        status::NFS4ERR_SAME => "NFS4ERR_SAME",
        status::NFS4ERR_DENIED => "NFS4ERR_DENIED",
        status::NFS4ERR_EXPIRED => "NFS4ERR_EXPIRED",
        status::NFS4ERR_LOCKED => "NFS4ERR_LOCKED",
        status::NFS4ERR_GRACE => "NFS4ERR_GRACE",
        status::NFS4ERR_FHEXPIRED => "NFS4ERR_FHEXPIRED",
        status::NFS4ERR_SHARE_DENIED => "NFS4ERR_SHARE_DENIED",
        status::NFS4ERR_WRONGSEC => "NFS4ERR_WRONGSEC",
        status::NFS4ERR_CLID_INUSE => "NFS4ERR_CLID_INUSE",
        status::NFS4ERR_RESOURCE => "NFS4ERR_RESOURCE",
        status::NFS4ERR_MOVED => "NFS4ERR_MOVED",
        status::NFS4ERR_NOFILEHANDLE => "NFS4ERR_NOFILEHANDLE",
        status::NFS4ERR_MINOR_VERS_MISMATCH => "NFS4ERR_MINOR_VERS_MISMATCH",
        status::NFS4ERR_STALE_CLIENTID => "NFS4ERR_STALE_CLIENTID",
        status::NFS4ERR_STALE_STATEID => "NFS4ERR_STALE_STATEID",
        status::NFS4ERR_OLD_STATEID => "NFS4ERR_OLD_STATEID",
        status::NFS4ERR_BAD_STATEID => "NFS4ERR_BAD_STATEID",
        status::NFS4ERR_BAD_SEQID => "NFS4ERR_BAD_SEQID",
        status::NFS4ERR_NOT_SAME => "NFS4ERR_NOT_SAME",
        status::NFS4ERR_LOCK_RANGE => "NFS4ERR_LOCK_RANGE",
        status::NFS4ERR_SYMLINK => "NFS4ERR_SYMLINK",
        status::NFS4ERR_RESTOREFH => "NFS4ERR_RESTOREFH",
        status::NFS4ERR_ATTRNOTSUPP => "NFS4ERR_ATTRNOTSUPP",
        status::NFS4ERR_NO_GRACE => "NFS4ERR_NO_GRACE",
        status::NFS4ERR_LOCKS_HELD => "NFS4ERR_LOCKS_HELD",
        status::NFS4ERR_OPENMODE => "NFS4ERR_OPENMODE",
        status::NFS4ERR_BADXDR => "NFS4ERR_BADXDR",
        status::NFS4ERR_BADOWNER => "NFS4ERR_BADOWNER",
        status::NFS4ERR_BADCHAR => "NFS4ERR_BADCHAR",
        status::NFS4ERR_BADNAME => "NFS4ERR_BADNAME",
        status::NFS4ERR_OP_ILLEGAL => "NFS4ERR_OP_ILLEGAL",
        status::NFS4ERR_DEADLOCK => "NFS4ERR_DEADLOCK",
        status::NFS4ERR_FILE_OPEN => "NFS4ERR_FILE_OPEN",
        status::NFS4ERR_ADMIN_REVOKED => "NFS4ERR_ADMIN_REVOKED",
        status::NFS4ERR_CB_PATH_DOWN => "NFS4ERR_CB_PATH_DOWN",
        status::NFS4ERR_BADIOMODE => "NFS4ERR_BADIOMODE",
        status::NFS4ERR_BADLAYOUT => "NFS4ERR_BADLAYOUT",
        status::NFS4ERR_BAD_SESSION_DIGEST => "NFS4ERR_BAD_SESSION_DIGEST",
        status::NFS4ERR_BADSESSION => "NFS4ERR_BADSESSION",
        status::NFS4ERR_BADSLOT => "NFS4ERR_BADSLOT",
        status::NFS4ERR_COMPLETE_ALREADY => "NFS4ERR_COMPLETE_ALREADY",
        status::NFS4ERR_CONN_NOT_BOUND_TO_SESSION => "NFS4ERR_CONN_NOT_BOUND_TO_SESSION",
        status::NFS4ERR_DELEG_ALREADY_WANTED => "NFS4ERR_DELEG_ALREADY_WANTED",
        status::NFS4ERR_BACK_CHAN_BUSY => "NFS4ERR_BACK_CHAN_BUSY",
        status::NFS4ERR_LAYOUTTRYLATER => "NFS4ERR_LAYOUTTRYLATER",
        status::NFS4ERR_LAYOUTUNAVAILABLE => "NFS4ERR_LAYOUTUNAVAILABLE",
        status::NFS4ERR_NOMATCHING_LAYOUT => "NFS4ERR_NOMATCHING_LAYOUT",
        status::NFS4ERR_RECALLCONFLICT => "NFS4ERR_RECALLCONFLICT",
        status::NFS4ERR_UNKNOWN_LAYOUTTYPE => "NFS4ERR_UNKNOWN_LAYOUTTYPE",
        status::NFS4ERR_SEQ_MISORDERED => "NFS4ERR_SEQ_MISORDERED",
        status::NFS4ERR_SEQUENCE_POS => "NFS4ERR_SEQUENCE_POS",
        status::NFS4ERR_REQ_TOO_BIG => "NFS4ERR_REQ_TOO_BIG",
        status::NFS4ERR_REP_TOO_BIG => "NFS4ERR_REP_TOO_BIG",
        status::NFS4ERR_REP_TOO_BIG_TO_CACHE => "NFS4ERR_REP_TOO_BIG_TO_CACHE",
        status::NFS4ERR_RETRY_UNCACHED_REP => "NFS4ERR_RETRY_UNCACHED_REP",
        status::NFS4ERR_UNSAFE_COMPOUND => "NFS4ERR_UNSAFE_COMPOUND",
        status::NFS4ERR_TOO_MANY_OPS => "NFS4ERR_TOO_MANY_OPS",
        status::NFS4ERR_OP_NOT_IN_SESSION => "NFS4ERR_OP_NOT_IN_SESSION",
        status::NFS4ERR_HASH_ALG_UNSUPP => "NFS4ERR_HASH_ALG_UNSUPP",
        status::NFS4ERR_CLIENTID_BUSY => "NFS4ERR_CLIENTID_BUSY",
        status::NFS4ERR_PNFS_IO_HOLE => "NFS4ERR_PNFS_IO_HOLE",
        status::NFS4ERR_SEQ_FALSE_RETRY => "NFS4ERR_SEQ_FALSE_RETRY",
        status::NFS4ERR_BAD_HIGH_SLOT => "NFS4ERR_BAD_HIGH_SLOT",
        status::NFS4ERR_DEADSESSION => "NFS4ERR_DEADSESSION",
        status::NFS4ERR_ENCR_ALG_UNSUPP => "NFS4ERR_ENCR_ALG_UNSUPP",
        status::NFS4ERR_PNFS_NO_LAYOUT => "NFS4ERR_PNFS_NO_LAYOUT",
        status::NFS4ERR_NOT_ONLY_OP => "NFS4ERR_NOT_ONLY_OP",
        status::NFS4ERR_WRONG_CRED => "NFS4ERR_WRONG_CRED",
        status::NFS4ERR_WRONG_TYPE => "NFS4ERR_WRONG_TYPE",
        status::NFS4ERR_DIRDELEG_UNAVAIL => "NFS4ERR_DIRDELEG_UNAVAIL",
        status::NFS4ERR_REJECT_DELEG => "NFS4ERR_REJECT_DELEG",
        status::NFS4ERR_RETURNCONFLICT => "NFS4ERR_RETURNCONFLICT",
        status::NFS4ERR_DELEG_REVOKED => "NFS4ERR_DELEG_REVOKED",
        status::NFS4ERR_PARTNER_NOTSUPP => "NFS4ERR_PARTNER_NOTSUPP",
        status::NFS4ERR_PARTNER_NO_AUTH => "NFS4ERR_PARTNER_NO_AUTH",
        status::NFS4ERR_UNION_NOTSUPP => "NFS4ERR_UNION_NOTSUPP",
        status::NFS4ERR_OFFLOAD_DENIED => "NFS4ERR_OFFLOAD_DENIED",
        status::NFS4ERR_WRONG_LFS => "NFS4ERR_WRONG_LFS",
        status::NFS4ERR_BADLABEL => "NFS4ERR_BADLABEL",
        status::NFS4ERR_OFFLOAD_NO_REQS => "NFS4ERR_OFFLOAD_NO_REQS",
        status::NFS4ERR_NOXATTR => "NFS4ERR_NOXATTR",
        status::NFS4ERR_XATTR2BIG => "NFS4ERR_XATTR2BIG",
        _ => return None,
    })
}

/// EXCHANGE_ID flags (RFC 8881 §18.35).
pub mod exchgid_flag {
    pub const SUPP_MOVED_REFER: u32 = 0x0000_0001;
    pub const SUPP_MOVED_MIGR: u32 = 0x0000_0002;
    pub const BIND_PRINC_STATEID: u32 = 0x0000_0100;
    pub const USE_NON_PNFS: u32 = 0x0001_0000;
    pub const USE_PNFS_MDS: u32 = 0x0002_0000;
    pub const USE_PNFS_DS: u32 = 0x0004_0000;
    pub const MASK_PNFS: u32 = 0x0007_0000;
    pub const UPD_CONFIRMED_REC_A: u32 = 0x4000_0000;
    pub const CONFIRMED_R: u32 = 0x8000_0000;
    /// Every flag a client may send.
    pub const CLIENT_MASK: u32 =
        SUPP_MOVED_REFER | SUPP_MOVED_MIGR | BIND_PRINC_STATEID | MASK_PNFS | UPD_CONFIRMED_REC_A;
}

/// State protection (state_protect_how4).
pub mod sp4 {
    pub const NONE: u32 = 0;
    pub const MACH_CRED: u32 = 1;
    pub const SSV: u32 = 2;
}

/// CREATE_SESSION flags.
pub mod create_session_flag {
    pub const PERSIST: u32 = 0x1;
    pub const CONN_BACK_CHAN: u32 = 0x2;
    pub const CONN_RDMA: u32 = 0x4;
    /// Every flag RFC 8881 defines; other bits are NFS4ERR_INVAL.
    pub const ALL: u32 = PERSIST | CONN_BACK_CHAN | CONN_RDMA;
}

/// channel_dir_from_client4 / channel_dir_from_server4.
pub mod cdfc {
    pub const FORE: u32 = 0x1;
    pub const BACK: u32 = 0x2;
    pub const FORE_OR_BOTH: u32 = 0x3;
    pub const BACK_OR_BOTH: u32 = 0x7;
}
pub mod cdfs {
    pub const FORE: u32 = 0x1;
    pub const BACK: u32 = 0x2;
    pub const BOTH: u32 = 0x3;
}

/// ACCESS4 bits (RFC 8881 §18.1).
pub mod access {
    pub const READ: u32 = 0x01;
    pub const LOOKUP: u32 = 0x02;
    pub const MODIFY: u32 = 0x04;
    pub const EXTEND: u32 = 0x08;
    pub const DELETE: u32 = 0x10;
    pub const EXECUTE: u32 = 0x20;
    /// RFC 8276 §8.1.3: read, write and list extended attributes.
    pub const XAREAD: u32 = 0x40;
    pub const XAWRITE: u32 = 0x80;
    pub const XALIST: u32 = 0x100;
    pub const ALL: u32 = 0x1ff;
}

/// SEQUENCE status flags (sr_status_flags).
pub mod seq4_status {
    pub const CB_PATH_DOWN: u32 = 0x0000_0001;
    pub const CB_GSS_CONTEXTS_EXPIRING: u32 = 0x0000_0002;
    pub const CB_GSS_CONTEXTS_EXPIRED: u32 = 0x0000_0004;
    pub const EXPIRED_ALL_STATE_REVOKED: u32 = 0x0000_0008;
    pub const EXPIRED_SOME_STATE_REVOKED: u32 = 0x0000_0010;
    pub const ADMIN_STATE_REVOKED: u32 = 0x0000_0020;
    pub const RECALLABLE_STATE_REVOKED: u32 = 0x0000_0040;
    pub const LEASE_MOVED: u32 = 0x0000_0080;
    pub const RESTART_RECLAIM_NEEDED: u32 = 0x0000_0100;
    pub const CB_PATH_DOWN_SESSION: u32 = 0x0000_0200;
    pub const BACKCHANNEL_FAULT: u32 = 0x0000_0400;
    pub const DEVID_CHANGED: u32 = 0x0000_0800;
    pub const DEVID_DELETED: u32 = 0x0000_1000;
}

/// Short upper-case name of an operation, for logs and metrics labels.
pub fn op_name(opnum: u32) -> &'static str {
    use op::*;
    match opnum {
        ACCESS => "ACCESS",
        CLOSE => "CLOSE",
        COMMIT => "COMMIT",
        CREATE => "CREATE",
        DELEGPURGE => "DELEGPURGE",
        DELEGRETURN => "DELEGRETURN",
        GETATTR => "GETATTR",
        GETFH => "GETFH",
        LINK => "LINK",
        LOCK => "LOCK",
        LOCKT => "LOCKT",
        LOCKU => "LOCKU",
        LOOKUP => "LOOKUP",
        LOOKUPP => "LOOKUPP",
        NVERIFY => "NVERIFY",
        OPEN => "OPEN",
        OPENATTR => "OPENATTR",
        OPEN_CONFIRM => "OPEN_CONFIRM",
        OPEN_DOWNGRADE => "OPEN_DOWNGRADE",
        PUTFH => "PUTFH",
        PUTPUBFH => "PUTPUBFH",
        PUTROOTFH => "PUTROOTFH",
        READ => "READ",
        READDIR => "READDIR",
        READLINK => "READLINK",
        REMOVE => "REMOVE",
        RENAME => "RENAME",
        RENEW => "RENEW",
        RESTOREFH => "RESTOREFH",
        SAVEFH => "SAVEFH",
        SECINFO => "SECINFO",
        SETATTR => "SETATTR",
        SETCLIENTID => "SETCLIENTID",
        SETCLIENTID_CONFIRM => "SETCLIENTID_CONFIRM",
        VERIFY => "VERIFY",
        WRITE => "WRITE",
        RELEASE_LOCKOWNER => "RELEASE_LOCKOWNER",
        BACKCHANNEL_CTL => "BACKCHANNEL_CTL",
        BIND_CONN_TO_SESSION => "BIND_CONN_TO_SESSION",
        EXCHANGE_ID => "EXCHANGE_ID",
        CREATE_SESSION => "CREATE_SESSION",
        DESTROY_SESSION => "DESTROY_SESSION",
        FREE_STATEID => "FREE_STATEID",
        GET_DIR_DELEGATION => "GET_DIR_DELEGATION",
        GETDEVICEINFO => "GETDEVICEINFO",
        GETDEVICELIST => "GETDEVICELIST",
        LAYOUTCOMMIT => "LAYOUTCOMMIT",
        LAYOUTGET => "LAYOUTGET",
        LAYOUTRETURN => "LAYOUTRETURN",
        SECINFO_NO_NAME => "SECINFO_NO_NAME",
        SEQUENCE => "SEQUENCE",
        SET_SSV => "SET_SSV",
        TEST_STATEID => "TEST_STATEID",
        WANT_DELEGATION => "WANT_DELEGATION",
        DESTROY_CLIENTID => "DESTROY_CLIENTID",
        RECLAIM_COMPLETE => "RECLAIM_COMPLETE",
        ALLOCATE => "ALLOCATE",
        COPY => "COPY",
        COPY_NOTIFY => "COPY_NOTIFY",
        DEALLOCATE => "DEALLOCATE",
        IO_ADVISE => "IO_ADVISE",
        LAYOUTERROR => "LAYOUTERROR",
        LAYOUTSTATS => "LAYOUTSTATS",
        OFFLOAD_CANCEL => "OFFLOAD_CANCEL",
        OFFLOAD_STATUS => "OFFLOAD_STATUS",
        READ_PLUS => "READ_PLUS",
        SEEK => "SEEK",
        WRITE_SAME => "WRITE_SAME",
        CLONE => "CLONE",
        GETXATTR => "GETXATTR",
        SETXATTR => "SETXATTR",
        LISTXATTRS => "LISTXATTRS",
        REMOVEXATTR => "REMOVEXATTR",
        _ => "ILLEGAL",
    }
}
