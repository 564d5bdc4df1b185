//! File-system backends behind the NFSv4.1 ops: the [`Backend`] trait and its
//! implementations (`memory`, `local`). Backends know nothing of NFS state (opens,
//! locks, sessions); they store objects and name them with opaque [`ObjHandle`]s that
//! stay valid across server restarts (for the local backend).

pub mod error;
pub mod local;
pub mod memory;
pub mod sync_io;
pub mod types;

/// Backend-independent tests of the [`Backend`] contract (every backend's tests run them).
#[cfg(test)]
pub(crate) mod conformance;

pub use error::{FsError, FsResult};
pub use local::{FsLockConflict, LockError, LockFile, LockKind};
pub use types::{
    Attrs, Caller, CreateKind, DirEntry, DirectFile, FileType, FsStats, ObjHandle, SetAttrs,
    SetTime, Stability, Timespec, XattrSet,
};

/// Longest extended attribute value (Linux's XATTR_SIZE_MAX).
pub const XATTR_SIZE_MAX: usize = 65536;
/// Longest extended attribute name without its `user.` prefix (Linux's XATTR_NAME_MAX,
/// 255, less the prefix).
pub const XATTR_NAME_MAX: usize = 255 - 5;

/// Longest name component accepted (NFS4ERR_NAMETOOLONG beyond).
pub const NAME_MAX: usize = 255;

/// Check one name component from a client: not empty, not "." or "..", no '/' or NUL
/// (NFS4ERR_BADNAME / NFS4ERR_INVAL), not longer than [`NAME_MAX`]. UTF-8 is not required
/// (Linux file names are bytes).
pub fn check_name(name: &[u8]) -> FsResult<()> {
    if name.is_empty() {
        return Err(FsError::Inval);
    }
    if name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
        return Err(FsError::BadName);
    }
    if name.len() > NAME_MAX {
        return Err(FsError::NameTooLong);
    }
    Ok(())
}

/// A file system exported over NFS. Every method is called on a worker core and must
/// not block for long (the local backend does short syscalls; long I/O moves to the
/// worker's ring later). Permission checks against `Caller` are the backend's job for
/// operations that change things; ACCESS is computed by the NFS layer from `Attrs`.
pub trait Backend: Send + Sync + 'static {
    /// The export root.
    fn root(&self) -> ObjHandle;
    /// (major, minor) file system id reported in the `fsid` attribute.
    fn fsid(&self) -> (u64, u64);

    fn getattr(&self, h: &ObjHandle) -> FsResult<Attrs>;
    /// Apply `set` (size truncates/extends; times may be "server now"). Returns new attrs.
    fn setattr(&self, h: &ObjHandle, set: &SetAttrs, caller: &Caller) -> FsResult<Attrs>;

    /// `name` in directory `dir` (already checked with [`check_name`]).
    fn lookup(&self, dir: &ObjHandle, name: &[u8]) -> FsResult<ObjHandle>;
    /// The parent of directory `dir`; `FsError::NoEnt` at the export root.
    fn lookup_parent(&self, dir: &ObjHandle) -> FsResult<ObjHandle>;

    /// Read up to `count` bytes at `offset`, appending them to `buf`. Returns true at EOF.
    fn read(&self, h: &ObjHandle, offset: u64, count: u32, buf: &mut Vec<u8>) -> FsResult<bool>;
    /// Write `data` at `offset`; returns bytes written and the stability achieved (at
    /// least what was asked).
    fn write(
        &self,
        h: &ObjHandle,
        offset: u64,
        data: &[u8],
        stable: Stability,
    ) -> FsResult<(u32, Stability)>;
    /// As [`write`](Backend::write), with the data as shared bytes (a slice of the
    /// received record) that the backend may keep instead of copying.
    fn write_shared(
        &self,
        h: &ObjHandle,
        offset: u64,
        data: &ringnfs_service::Bytes,
        stable: Stability,
    ) -> FsResult<(u32, Stability)> {
        self.write(h, offset, data, stable)
    }
    /// Make earlier unstable writes to `h` durable.
    fn commit(&self, h: &ObjHandle) -> FsResult<()>;

    /// SEEK (RFC 7862 §15.11): the first offset at or after `offset` of regular file
    /// `h` that is in data (`data`) or in a hole (the end of the file counts as one).
    /// `None`: there is none (`offset` at or past the end, or no data after it).
    fn seek(&self, h: &ObjHandle, offset: u64, data: bool) -> FsResult<Option<u64>>;
    /// ALLOCATE (RFC 7862 §15.1): space for `[offset, offset + length)` is reserved, so
    /// writes there do not fail for want of it; the file grows to cover the range.
    fn allocate(&self, h: &ObjHandle, offset: u64, length: u64) -> FsResult<()>;
    /// DEALLOCATE (RFC 7862 §15.4): `[offset, offset + length)` becomes a hole that
    /// reads as zeros and holds no space; the size does not change.
    fn deallocate(&self, h: &ObjHandle, offset: u64, length: u64) -> FsResult<()>;

    /// Create (or, unless `exclusive`, open an existing) regular file. Returns the
    /// handle and whether it was created. `attrs` are applied to a new file only.
    fn create_file(
        &self,
        dir: &ObjHandle,
        name: &[u8],
        attrs: &SetAttrs,
        exclusive: bool,
        caller: &Caller,
    ) -> FsResult<(ObjHandle, bool)>;
    /// Create a non-regular object (directory, symlink, device, fifo, socket).
    fn create(
        &self,
        dir: &ObjHandle,
        name: &[u8],
        kind: &CreateKind,
        attrs: &SetAttrs,
        caller: &Caller,
    ) -> FsResult<ObjHandle>;
    /// Remove `name` from `dir` (a file, or an empty directory).
    fn remove(&self, dir: &ObjHandle, name: &[u8], caller: &Caller) -> FsResult<()>;
    fn rename(
        &self,
        from_dir: &ObjHandle,
        from: &[u8],
        to_dir: &ObjHandle,
        to: &[u8],
        caller: &Caller,
    ) -> FsResult<()>;
    /// Hard link: `target` gets the new name `name` in `dir`.
    fn link(
        &self,
        target: &ObjHandle,
        dir: &ObjHandle,
        name: &[u8],
        caller: &Caller,
    ) -> FsResult<()>;
    fn readlink(&self, h: &ObjHandle) -> FsResult<Vec<u8>>;
    /// Entries of `dir` after `cookie` (0 = from the start; "." and ".." are never
    /// returned), at most `max` of them. Cookies are stable while the entry exists and
    /// never 0, 1 or 2. Returns the entries and whether the end was reached.
    fn readdir(&self, dir: &ObjHandle, cookie: u64, max: usize) -> FsResult<(Vec<DirEntry>, bool)>;
    fn statfs(&self) -> FsResult<FsStats>;

    /// CLONE (RFC 7862 §15.13): `[src_offset, src_offset + count)` of `src` (to its end
    /// when `count` is 0) shares or copies its data into `dst` at `dst_offset`, growing
    /// it if needed. Offsets and count in multiples of [`Backend::clone_blksize`]
    /// (a count may instead reach the end of `src`); `Inval` otherwise, `NotSupp` where
    /// the file system cannot.
    fn clone_range(
        &self,
        src: &ObjHandle,
        src_offset: u64,
        dst: &ObjHandle,
        dst_offset: u64,
        count: u64,
    ) -> FsResult<()>;
    /// The alignment CLONE needs (the `clone_blksize` attribute).
    fn clone_blksize(&self) -> u32;
    /// One step of a COPY (RFC 7862 §15.2): up to `len` bytes of `src` at `src_offset`
    /// into `dst` at `dst_offset`, growing it if needed; the bytes copied (fewer at the
    /// end of `src`, 0 past it). Callers copy a large range in steps of a few MiB, so
    /// that a step blocks its thread for milliseconds, not for the whole copy.
    fn copy_step(
        &self,
        src: &ObjHandle,
        src_offset: u64,
        dst: &ObjHandle,
        dst_offset: u64,
        len: u64,
    ) -> FsResult<u64>;

    /// Extended attributes (RFC 8276) of the `user.` namespace, named without the prefix
    /// (at most [`XATTR_NAME_MAX`] bytes, no NUL: the caller checks), on regular files
    /// and directories; `caller` needs read permission to get or list them and write
    /// permission to change them. The value of `name` (`NoXattr` if there is none).
    fn getxattr(&self, h: &ObjHandle, name: &[u8], caller: &Caller) -> FsResult<Vec<u8>>;
    /// Set `name` to `value` as `how` says.
    fn setxattr(
        &self,
        h: &ObjHandle,
        name: &[u8],
        value: &[u8],
        how: XattrSet,
        caller: &Caller,
    ) -> FsResult<()>;
    /// The names, in byte order.
    fn listxattrs(&self, h: &ObjHandle, caller: &Caller) -> FsResult<Vec<Vec<u8>>>;
    fn removexattr(&self, h: &ObjHandle, name: &[u8], caller: &Caller) -> FsResult<()>;

    /// A descriptor for READ/WRITE/COMMIT of regular file `h` through the worker's
    /// io_uring ring (`write`: open for writing). `None`: the backend has no real files
    /// and `read`/`write`/`commit` are used instead.
    fn io_file(&self, _h: &ObjHandle, _write: bool) -> Option<FsResult<ringnfs_service::IoFd>> {
        None
    }

    /// A new open file description of regular file `h` to hold one NFSv4 lock-owner's
    /// byte-range locks on the file system (Linux OFD locks, see [`LockFile`]), so that
    /// other servers on a shared file system and local processes see them. `None`: the
    /// backend has no file system beneath it (memory); locks then live only in the
    /// server's table. `write`: for a lock-owner, which may take write locks (opened
    /// read-write when the file allows it); else only to ask (LOCKT: read-only).
    fn lock_file(&self, _h: &ObjHandle, _write: bool) -> Option<FsResult<LockFile>> {
        None
    }

    /// The same file as [`io_file`](Backend::io_file) (called after it succeeded),
    /// opened with `O_DIRECT` for an export in direct I/O mode. `None`: no real files,
    /// or the file system does no direct I/O; the caller then uses buffered I/O.
    fn direct_file(&self, _h: &ObjHandle) -> Option<DirectFile> {
        None
    }
}
