//! The local-directory backend: real files under an export directory.
//!
//! * **Handles** are the kernel's file handles (`name_to_handle_at`, see `handle.rs`):
//!   inode number + generation, valid across server restarts, stale once the inode is
//!   gone. They are reopened with `open_by_handle_at` relative to the export root's
//!   descriptor (needs CAP_DAC_READ_SEARCH: the server runs as root).
//! * **Containment.** Every handle we give out names an object reached from the export
//!   root by single-component, beneath-resolved lookups (openat2 with `RESOLVE_BENEATH |
//!   RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV`), or `..` of a
//!   directory other than the root; the NFS layer authenticates handles, so forged ones
//!   never arrive. But `open_by_handle_at` can open any inode of the file system, so a
//!   directory that a local user moved *out* of the export after a client got its handle
//!   is checked on every reopen: we walk `..` up from it until we meet the export root
//!   (same st_dev/st_ino); reaching the file-system or process root, or another device,
//!   first means it escaped and the handle answers `Stale`. Non-directories cannot be
//!   traversed, so for them only the device is checked: a *file* moved out of the export
//!   stays readable and writable through a handle obtained before the move (as with a
//!   file descriptor opened before it). Symlinks are never followed by the server
//!   (lookup returns the link itself; the client resolves it), and mount points inside
//!   the export are not crossed (lookup answers `NoEnt`, readdir leaves them out).
//! * **Credentials.** Operations that change something run under the caller's fs uid,
//!   gid and groups (`creds.rs`), so the kernel enforces POSIX permissions. Lookups,
//!   getattr, readdir, readlink, read, write and commit run as root: the NFS layer checks
//!   access at OPEN and ACCESS from the attributes. (A lookup thus does not require
//!   search permission on the directory for the caller.)
//! * **Data I/O** (`io.rs`) goes through an open-file cache (`cache.rs`). Regular files
//!   are reopened for data through `/proc/self/fd/N` of their O_PATH descriptor after a
//!   type check, so a device, fifo or socket is never opened (READ/WRITE → `Inval`);
//!   chmod, utimens and link go through the same magic link (`/proc` must be mounted).
//! * **Costs.** Directory descriptors are deliberately not cached: the containment walk
//!   runs on every operation that reopens a directory handle other than the root (two
//!   syscalls per level of depth), so a directory moved out is noticed at once.
//! * **Gone objects.** An object unlinked behind our back answers `Stale` (nlink 0);
//!   one removed through REMOVE or renamed over through RENAME leaves the open-file
//!   cache at once.

mod attrs;
mod cache;
mod creds;
mod handle;
pub(crate) mod io;
mod lock;
mod ops;
mod readdir;
mod sys;
mod xattr;
pub use lock::{FsLockConflict, LockError, LockFile, LockKind};
pub use sys::running_as_root;
#[cfg(test)]
mod tests;

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use cache::{FileCache, OpenFile};

use super::{FsError, FsResult, ObjHandle};

/// Options of [`LocalBackend::open`].
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Refuse every change with [`FsError::Rofs`].
    pub read_only: bool,
    /// Most regular files kept open for READ/WRITE/COMMIT (0 = none kept).
    pub open_file_cache: usize,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            read_only: false,
            open_file_cache: 1024,
        }
    }
}

/// A directory of the local file system exported as a [`super::Backend`].
pub struct LocalBackend {
    /// The export root, held for the life of the backend. Opened O_RDONLY|O_DIRECTORY
    /// rather than O_PATH because open_by_handle_at refuses an O_PATH mount fd (EBADF);
    /// it serves as the starting point of every `*at` call too.
    root_fd: OwnedFd,
    root_handle: ObjHandle,
    root_dev: u64,
    root_ino: u64,
    /// Mount id of the export root (entries on other mounts are not exported).
    root_mnt: i32,
    fsid: (u64, u64),
    /// The file system's block size: the alignment FICLONERANGE needs.
    block_size: u32,
    opts: LocalOptions,
    files: FileCache,
}

/// An object opened by handle: an O_PATH descriptor and its stat.
struct Obj {
    fd: OwnedFd,
    st: libc::stat,
}

impl Obj {
    fn is_dir(&self) -> bool {
        self.st.st_mode & libc::S_IFMT == libc::S_IFDIR
    }
    fn fmt(&self) -> u32 {
        self.st.st_mode & libc::S_IFMT
    }
}

/// Deepest directory walk accepted by the containment check.
const MAX_DEPTH: usize = 4096;

fn io_err(path: &Path, what: &str, errno: i32) -> std::io::Error {
    let e = std::io::Error::from_raw_os_error(errno);
    std::io::Error::new(
        e.kind(),
        format!("export directory {}: {what}: {e}", path.display()),
    )
}

impl LocalBackend {
    /// Export `export_dir` (which must exist and be a directory on a file system that
    /// supports file handles: ext4, xfs, btrfs, tmpfs... not e.g. FAT or overlayfs
    /// without `nfs_export`). The server must run as root.
    pub fn open(export_dir: &Path, opts: LocalOptions) -> std::io::Result<Self> {
        if !Path::new("/proc/self/fd").is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the local backend needs /proc mounted (it reopens files through /proc/self/fd)",
            ));
        }
        let path = CString::new(export_dir.as_os_str().as_bytes()).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "export path contains NUL")
        })?;
        let root_fd = sys::openat(None, &path, libc::O_RDONLY | libc::O_DIRECTORY)
            .map_err(|e| io_err(export_dir, "open", e))?;
        let st =
            sys::fstatat(root_fd.as_fd(), sys::EMPTY).map_err(|e| io_err(export_dir, "stat", e))?;
        let (root_handle, root_mnt) = match handle::name_to_handle(root_fd.as_fd(), sys::EMPTY) {
            Ok(x) => x,
            Err(e @ (libc::EOPNOTSUPP | libc::ENOSYS)) => {
                return Err(io_err(
                    export_dir,
                    "its file system does not support file handles (name_to_handle_at), so it cannot be exported",
                    e,
                ));
            }
            Err(e) => return Err(io_err(export_dir, "name_to_handle_at", e)),
        };
        // Check now that handles can be opened again (needs CAP_DAC_READ_SEARCH).
        handle::open_by_handle_raw(root_fd.as_fd(), &root_handle, libc::O_PATH).map_err(|e| {
            io_err(
                export_dir,
                "open_by_handle_at (the server must run as root)",
                e,
            )
        })?;
        let fsid = match sys::fs_fsid(root_fd.as_fd()) {
            Ok([a, b]) if (a, b) != (0, 0) => (u64::from(a as u32), u64::from(b as u32)),
            _ => (
                u64::from(libc::major(st.st_dev)),
                u64::from(libc::minor(st.st_dev)),
            ),
        };
        let block_size = sys::fstatvfs(root_fd.as_fd()).map_or(0, |s| s.f_bsize as u32);
        Ok(LocalBackend {
            root_fd,
            root_handle,
            root_dev: st.st_dev,
            root_ino: st.st_ino,
            root_mnt,
            fsid,
            block_size,
            files: FileCache::new(opts.open_file_cache),
            opts,
        })
    }

    /// Number of regular files currently held open by the cache.
    pub fn open_files(&self) -> usize {
        self.files.len()
    }

    fn rootfd(&self) -> BorrowedFd<'_> {
        self.root_fd.as_fd()
    }

    fn is_root(&self, st: &libc::stat) -> bool {
        st.st_dev == self.root_dev && st.st_ino == self.root_ino
    }

    fn check_writable(&self) -> FsResult<()> {
        if self.opts.read_only {
            Err(FsError::Rofs)
        } else {
            Ok(())
        }
    }

    /// Reopen `h` as an O_PATH descriptor (symlinks not followed) and check it is inside
    /// the export (see the module documentation).
    fn obj(&self, h: &ObjHandle) -> FsResult<Obj> {
        let fd = if *h == self.root_handle {
            sys::openat(Some(self.rootfd()), c".", libc::O_PATH | libc::O_DIRECTORY)
                .map_err(FsError::from_errno)?
        } else {
            handle::open_by_handle(self.rootfd(), h, libc::O_PATH | libc::O_NOFOLLOW)?
        };
        let st = sys::fstat(fd.as_fd())?;
        if st.st_dev != self.root_dev {
            return Err(FsError::Stale);
        }
        if st.st_nlink == 0 {
            // Unlinked but still in memory (open somewhere): no longer reachable by
            // name, so no longer a valid NFS object.
            return Err(FsError::Stale);
        }
        let o = Obj { fd, st };
        if o.is_dir() {
            self.check_contained(&o)?;
        }
        Ok(o)
    }

    /// `obj` that must be a directory.
    fn dir(&self, h: &ObjHandle) -> FsResult<Obj> {
        let o = self.obj(h)?;
        if !o.is_dir() {
            return Err(FsError::NotDir);
        }
        Ok(o)
    }

    /// Walk `..` from directory `o` up to the export root; `Stale` if it is not below it.
    fn check_contained(&self, o: &Obj) -> FsResult<()> {
        let mut key = (o.st.st_dev, o.st.st_ino);
        let mut cur: Option<OwnedFd> = None;
        for _ in 0..MAX_DEPTH {
            if key == (self.root_dev, self.root_ino) {
                return Ok(());
            }
            let from = cur.as_ref().map_or(o.fd.as_fd(), |f| f.as_fd());
            let parent = sys::openat(Some(from), c"..", libc::O_PATH | libc::O_DIRECTORY)
                .map_err(|_| FsError::Stale)?;
            let pst = sys::fstat(parent.as_fd()).map_err(|_| FsError::Stale)?;
            let pkey = (pst.st_dev, pst.st_ino);
            if pkey == key || pst.st_dev != self.root_dev {
                // Reached the top of the file system (or of the process) or left the
                // device without meeting the export root.
                return Err(FsError::Stale);
            }
            key = pkey;
            cur = Some(parent);
        }
        Err(FsError::Stale)
    }

    /// The handle of an object we opened (by a beneath-resolved name or by handle).
    fn handle_of(&self, fd: BorrowedFd<'_>) -> FsResult<ObjHandle> {
        match handle::name_to_handle(fd, sys::EMPTY) {
            Ok((h, _)) => Ok(h),
            Err(libc::EOVERFLOW) => Err(FsError::NotSupp),
            Err(e) => Err(FsError::from_errno(e)),
        }
    }

    /// The open regular file `h` for a change of its data: refused on a read-only
    /// export, or when it could only be opened for reading.
    fn writable_file(&self, h: &ObjHandle) -> FsResult<Arc<OpenFile>> {
        let f = self.file(h)?;
        if let Some(e) = f.write_err {
            return Err(e);
        }
        self.check_writable()?;
        Ok(f)
    }

    /// The open regular file `h`, from the cache or opened (read-write when possible).
    fn file(&self, h: &ObjHandle) -> FsResult<Arc<OpenFile>> {
        if let Some(f) = self.files.get(h) {
            return Ok(f);
        }
        let (fd, write_err) = self.open_regular(h)?;
        Ok(self.files.insert(h, OpenFile::new(fd, write_err)))
    }

    /// A new description of regular file `h`, read-write when possible; else read-only
    /// and why it could not be written.
    fn open_regular(&self, h: &ObjHandle) -> FsResult<(OwnedFd, Option<FsError>)> {
        self.open_regular_as(h, !self.opts.read_only)
    }

    /// A new read-only description of regular file `h` (and why it cannot be written:
    /// it was not asked).
    fn open_regular_read_only(&self, h: &ObjHandle) -> FsResult<(OwnedFd, Option<FsError>)> {
        self.open_regular_as(h, false)
    }

    fn open_regular_as(
        &self,
        h: &ObjHandle,
        try_write: bool,
    ) -> FsResult<(OwnedFd, Option<FsError>)> {
        let o = self.obj(h)?;
        match o.fmt() {
            libc::S_IFREG => {}
            libc::S_IFDIR => return Err(FsError::IsDir),
            libc::S_IFLNK => return Err(FsError::SymLink),
            // Never open devices, fifos or sockets for data: that would reach the
            // device itself (or block on a fifo).
            _ => return Err(FsError::Inval),
        }
        // Reopen the very inode (checked regular above) through its magic link.
        let p = sys::proc_path(o.fd.as_fd());
        if !try_write {
            let fd = sys::openat(None, &p, libc::O_RDONLY).map_err(FsError::from_errno)?;
            let why = if self.opts.read_only {
                FsError::Rofs
            } else {
                FsError::Access
            };
            return Ok((fd, Some(why)));
        }
        match sys::openat(None, &p, libc::O_RDWR) {
            Ok(fd) => Ok((fd, None)),
            Err(e @ (libc::EACCES | libc::EPERM | libc::EROFS | libc::ETXTBSY)) => {
                let fd = sys::openat(None, &p, libc::O_RDONLY).map_err(FsError::from_errno)?;
                Ok((fd, Some(FsError::from_errno(e))))
            }
            Err(e) => Err(FsError::from_errno(e)),
        }
    }
}
