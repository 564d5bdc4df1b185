//! Values exchanged with backends.

/// An object's name inside a backend: opaque bytes the backend produces and accepts
/// back (the NFS layer wraps and authenticates them into file handles). At most
/// [`ObjHandle::MAX`] bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjHandle {
    len: u8,
    bytes: [u8; ObjHandle::MAX],
}

impl ObjHandle {
    pub const MAX: usize = 96;

    pub fn new(b: &[u8]) -> Option<Self> {
        if b.len() > Self::MAX {
            return None;
        }
        let mut bytes = [0u8; Self::MAX];
        bytes[..b.len()].copy_from_slice(b);
        Some(Self {
            len: b.len() as u8,
            bytes,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl std::fmt::Debug for ObjHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ObjHandle(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    Block,
    Char,
    Fifo,
    Socket,
}

impl FileType {
    /// nfs_ftype4.
    pub fn nfs4(self) -> u32 {
        use ringnfs_proto::nfs4::consts::ftype4::*;
        match self {
            FileType::Regular => NF4REG,
            FileType::Directory => NF4DIR,
            FileType::Block => NF4BLK,
            FileType::Char => NF4CHR,
            FileType::Symlink => NF4LNK,
            FileType::Socket => NF4SOCK,
            FileType::Fifo => NF4FIFO,
        }
    }
}

/// Seconds and nanoseconds since the Unix epoch (nfstime4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timespec {
    pub secs: i64,
    pub nsecs: u32,
}

impl Timespec {
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timespec {
            secs: d.as_secs() as i64,
            nsecs: d.subsec_nanos(),
        }
    }
}

/// What a backend knows of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attrs {
    pub ftype: FileType,
    /// Permission bits and set-id/sticky bits (07777).
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Bytes of storage used.
    pub space_used: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
    /// Unique within the export and stable (the inode number for the local backend).
    pub fileid: u64,
    /// Device numbers for block/char devices (major, minor).
    pub rdev: (u32, u32),
    /// Advances on every change to the object (data or metadata).
    pub change: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetTime {
    ServerNow,
    Client(Timespec),
}

/// Attributes to change (SETATTR, or initial attributes at creation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetAttrs {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<SetTime>,
    pub mtime: Option<SetTime>,
}

impl SetAttrs {
    pub fn is_empty(&self) -> bool {
        *self == SetAttrs::default()
    }
}

/// Non-regular objects CREATE makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateKind {
    Directory,
    Symlink(Vec<u8>),
    Block(u32, u32),
    Char(u32, u32),
    Fifo,
    Socket,
}

/// The caller after export squashing (root squash maps uid 0 to the anonymous id).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub gids: Vec<u32>,
}

impl Caller {
    pub fn root() -> Self {
        Caller::default()
    }

    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.gids.contains(&gid)
    }

    /// The rwx bits (4 read, 2 write, 1 execute/search) POSIX grants this caller on an
    /// object: root reads and writes anything and executes what has an execute bit
    /// (directories always); others get exactly one class: owner, else group, else other.
    pub fn perm_bits(&self, a: &Attrs) -> u32 {
        if self.uid == 0 {
            let x = a.ftype == FileType::Directory || a.mode & 0o111 != 0;
            return 6 | x as u32;
        }
        let bits = if self.uid == a.uid {
            a.mode >> 6
        } else if self.in_group(a.gid) {
            a.mode >> 3
        } else {
            a.mode
        };
        bits & 7
    }
}

/// stable_how4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stability {
    Unstable = 0,
    DataSync = 1,
    FileSync = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub cookie: u64,
    pub handle: ObjHandle,
    pub attrs: Attrs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FsStats {
    pub total_bytes: u64,
    pub free_bytes: u64,
    pub avail_bytes: u64,
    pub total_files: u64,
    pub free_files: u64,
    pub avail_files: u64,
}

/// A regular file opened with `O_DIRECT` (an export in direct I/O mode), and the
/// alignment its direct I/O needs (statx `STATX_DIOALIGN`): file offsets and lengths
/// in multiples of `offset_align`, memory addresses in multiples of `mem_align`.
#[derive(Clone)]
pub struct DirectFile {
    pub fd: ringnfs_service::IoFd,
    pub offset_align: u32,
    pub mem_align: u32,
}

impl std::fmt::Debug for DirectFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectFile")
            .field("offset_align", &self.offset_align)
            .field("mem_align", &self.mem_align)
            .finish()
    }
}

/// How SETXATTR sets an extended attribute (RFC 8276 setxattr_option4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XattrSet {
    /// Create it or replace it.
    Either,
    /// Create it: `Exist` if it is there.
    Create,
    /// Replace it: `NoXattr` if it is not there.
    Replace,
}
