//! Backend errors and their NFSv4 status codes.

use ringnfs_proto::nfs4::consts::{NfsStatus, status};

pub type FsResult<T> = Result<T, FsError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    #[error("no such file or directory")]
    NoEnt,
    #[error("file exists")]
    Exist,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("directory not empty")]
    NotEmpty,
    #[error("permission denied")]
    Access,
    #[error("operation not permitted")]
    Perm,
    #[error("no space left")]
    NoSpc,
    #[error("quota exceeded")]
    DQuot,
    #[error("read-only file system")]
    Rofs,
    #[error("name too long")]
    NameTooLong,
    #[error("bad name")]
    BadName,
    #[error("invalid argument")]
    Inval,
    #[error("file too large")]
    FBig,
    #[error("stale file handle")]
    Stale,
    #[error("bad file handle")]
    BadHandle,
    #[error("cross-device link")]
    XDev,
    #[error("too many links")]
    MLink,
    #[error("symbolic link loop")]
    SymLink,
    #[error("wrong object type")]
    BadType,
    #[error("not supported")]
    NotSupp,
    #[error("no such extended attribute")]
    NoXattr,
    #[error("extended attribute value too large")]
    Xattr2Big,
    #[error("I/O error")]
    Io,
}

/// Lets op handlers use `?` on backend calls in functions that return an nfsstat4.
impl From<FsError> for NfsStatus {
    fn from(e: FsError) -> NfsStatus {
        e.status()
    }
}

impl FsError {
    pub fn status(self) -> NfsStatus {
        match self {
            FsError::NoEnt => status::NFS4ERR_NOENT,
            FsError::Exist => status::NFS4ERR_EXIST,
            FsError::NotDir => status::NFS4ERR_NOTDIR,
            FsError::IsDir => status::NFS4ERR_ISDIR,
            FsError::NotEmpty => status::NFS4ERR_NOTEMPTY,
            FsError::Access => status::NFS4ERR_ACCESS,
            FsError::Perm => status::NFS4ERR_PERM,
            FsError::NoSpc => status::NFS4ERR_NOSPC,
            FsError::DQuot => status::NFS4ERR_DQUOT,
            FsError::Rofs => status::NFS4ERR_ROFS,
            FsError::NameTooLong => status::NFS4ERR_NAMETOOLONG,
            FsError::BadName => status::NFS4ERR_BADNAME,
            FsError::Inval => status::NFS4ERR_INVAL,
            FsError::FBig => status::NFS4ERR_FBIG,
            FsError::Stale => status::NFS4ERR_STALE,
            FsError::BadHandle => status::NFS4ERR_BADHANDLE,
            FsError::XDev => status::NFS4ERR_XDEV,
            FsError::MLink => status::NFS4ERR_MLINK,
            FsError::SymLink => status::NFS4ERR_SYMLINK,
            FsError::BadType => status::NFS4ERR_BADTYPE,
            FsError::NotSupp => status::NFS4ERR_NOTSUPP,
            FsError::NoXattr => status::NFS4ERR_NOXATTR,
            FsError::Xattr2Big => status::NFS4ERR_XATTR2BIG,
            FsError::Io => status::NFS4ERR_IO,
        }
    }

    /// Map an OS error from the local backend.
    pub fn from_errno(errno: i32) -> Self {
        match errno {
            libc::ENOENT => FsError::NoEnt,
            libc::EEXIST => FsError::Exist,
            libc::ENOTDIR => FsError::NotDir,
            libc::EISDIR => FsError::IsDir,
            libc::ENOTEMPTY => FsError::NotEmpty,
            libc::EACCES => FsError::Access,
            libc::EPERM => FsError::Perm,
            libc::ENOSPC => FsError::NoSpc,
            libc::EDQUOT => FsError::DQuot,
            libc::EROFS => FsError::Rofs,
            libc::ENAMETOOLONG => FsError::NameTooLong,
            libc::EINVAL => FsError::Inval,
            libc::EFBIG => FsError::FBig,
            libc::ESTALE => FsError::Stale,
            libc::EXDEV => FsError::XDev,
            libc::EMLINK => FsError::MLink,
            libc::ELOOP => FsError::SymLink,
            libc::EOPNOTSUPP => FsError::NotSupp,
            libc::ENODATA => FsError::NoXattr,
            libc::E2BIG => FsError::Xattr2Big,
            _ => FsError::Io,
        }
    }
}

impl From<std::io::Error> for FsError {
    fn from(e: std::io::Error) -> Self {
        e.raw_os_error().map_or(FsError::Io, FsError::from_errno)
    }
}
