//! Object handles: the kernel's own file handles (name_to_handle_at(2)), which name an
//! inode by number and generation, so they survive a server restart and go stale when
//! the inode is freed (open_by_handle_at(2) then fails with ESTALE).
//!
//! Encoding of an [`ObjHandle`]: `[version = 1][handle_type: i32 LE][kernel handle bytes]`.
//! The mount id is not stored: handles are always opened relative to the export root's
//! descriptor, which fixes the file system. ext4 (8 bytes), xfs (8–24), btrfs (20–40)
//! and tmpfs (12) handles fit easily in the 91 bytes left.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::sys;
use crate::{FsError, FsResult, ObjHandle};

const VERSION: u8 = 1;
const HEADER: usize = 5;
/// Largest kernel handle an [`ObjHandle`] can carry.
pub(super) const MAX_KERNEL_HANDLE: usize = ObjHandle::MAX - HEADER;

/// `struct file_handle` with room for the largest handle the kernel produces.
#[repr(C)]
struct FileHandle {
    handle_bytes: u32,
    handle_type: i32,
    f_handle: [u8; libc::MAX_HANDLE_SZ as usize],
}

/// The handle of `name` in `dir` (not following a trailing symlink), or of `dir` itself
/// when `name` is empty. Also returns the mount id the kernel resolved it on.
pub(super) fn name_to_handle(dir: BorrowedFd<'_>, name: &CStr) -> Result<(ObjHandle, i32), i32> {
    let mut fh = FileHandle {
        handle_bytes: libc::MAX_HANDLE_SZ as u32,
        handle_type: 0,
        f_handle: [0; libc::MAX_HANDLE_SZ as usize],
    };
    let mut mount_id: libc::c_int = 0;
    let flags = if name.is_empty() {
        libc::AT_EMPTY_PATH
    } else {
        0
    };
    // SAFETY: `fh` is a file_handle whose handle_bytes matches its buffer, `mount_id`
    // is writable, `name` is NUL-terminated; all live for the call.
    let r = unsafe {
        libc::name_to_handle_at(
            dir.as_raw_fd(),
            name.as_ptr(),
            (&mut fh as *mut FileHandle).cast::<libc::file_handle>(),
            &mut mount_id,
            flags,
        )
    };
    if r == -1 {
        return Err(sys::errno());
    }
    let n = fh.handle_bytes as usize;
    if n > MAX_KERNEL_HANDLE {
        return Err(libc::EOVERFLOW);
    }
    let mut b = [0u8; ObjHandle::MAX];
    b[0] = VERSION;
    b[1..HEADER].copy_from_slice(&fh.handle_type.to_le_bytes());
    b[HEADER..HEADER + n].copy_from_slice(&fh.f_handle[..n]);
    Ok((ObjHandle::new(&b[..HEADER + n]).expect("fits"), mount_id))
}

/// Open the object `h` names on the file system of `mount_fd` (needs
/// CAP_DAC_READ_SEARCH: call with root's fs credentials).
pub(super) fn open_by_handle(
    mount_fd: BorrowedFd<'_>,
    h: &ObjHandle,
    flags: libc::c_int,
) -> FsResult<OwnedFd> {
    open_by_handle_raw(mount_fd, h, flags).map_err(|e| match e {
        // A handle of an inode deleted a moment ago can fail with ENOMEM (the kernel
        // cannot build a dentry for an inode being evicted) or EFSCORRUPTED/EUCLEAN
        // (ext4: "deleted inode referenced"): both mean the object is gone.
        libc::ESTALE | libc::ENOENT | libc::EUCLEAN | libc::ENOMEM => FsError::Stale,
        libc::EINVAL | BAD => FsError::BadHandle,
        e => {
            tracing::debug!(errno = e, "open_by_handle_at failed");
            FsError::from_errno(e)
        }
    })
}

/// Not an errno: the bytes are not one of our handles.
const BAD: i32 = -1;

/// [`open_by_handle`] with the raw errno (or [`BAD`]).
pub(super) fn open_by_handle_raw(
    mount_fd: BorrowedFd<'_>,
    h: &ObjHandle,
    flags: libc::c_int,
) -> Result<OwnedFd, i32> {
    let b = h.as_bytes();
    if b.len() <= HEADER || b[0] != VERSION {
        return Err(BAD);
    }
    let n = b.len() - HEADER;
    let mut fh = FileHandle {
        handle_bytes: n as u32,
        handle_type: i32::from_le_bytes(b[1..HEADER].try_into().expect("4 bytes")),
        f_handle: [0; libc::MAX_HANDLE_SZ as usize],
    };
    fh.f_handle[..n].copy_from_slice(&b[HEADER..]);
    loop {
        // SAFETY: `fh` is a valid file_handle (handle_bytes within its buffer) that lives
        // for the call; the returned fd is new and owned by us.
        let r = unsafe {
            libc::open_by_handle_at(
                mount_fd.as_raw_fd(),
                (&mut fh as *mut FileHandle).cast::<libc::file_handle>(),
                flags | libc::O_CLOEXEC,
            )
        };
        if r >= 0 {
            // SAFETY: a new descriptor nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(r) });
        }
        match sys::errno() {
            libc::EINTR => continue,
            e => return Err(e),
        }
    }
}
