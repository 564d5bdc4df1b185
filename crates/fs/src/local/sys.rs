//! Thin wrappers over the Linux system calls the local backend needs. Every `unsafe`
//! block of the backend that is not about file handles (`handle.rs`), credentials
//! (`creds.rs`) or data I/O (`io.rs`) lives here. Each wrapper takes borrowed fds and
//! `CStr`s, so the pointers handed to the kernel are valid for the call.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::{FsError, FsResult};

/// The calling thread's last OS error as an [`FsError`].
pub(super) fn last_err() -> FsError {
    FsError::from_errno(errno())
}

pub(super) fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// `ret` as a result: -1 means "look at errno".
fn cvt(ret: libc::c_int) -> Result<libc::c_int, i32> {
    if ret == -1 { Err(errno()) } else { Ok(ret) }
}

/// A name component as a C string (a NUL inside is a bad name).
pub(super) fn cname(name: &[u8]) -> FsResult<CString> {
    CString::new(name).map_err(|_| FsError::BadName)
}

/// The empty path used with `AT_EMPTY_PATH`.
pub(super) const EMPTY: &CStr = c"";

/// `/proc/self/fd/N`: reopening an `O_PATH` descriptor through its magic link gives a
/// real descriptor of the same inode (with the permission checks of the current fs
/// credentials), and works with calls that take no fd (chmod, link).
pub(super) fn proc_path(fd: BorrowedFd<'_>) -> CString {
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL in a number")
}

/// `struct open_how` of openat2(2) (libc's is `non_exhaustive`).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Resolution flags for every name the server opens: stay beneath the starting
/// directory, follow no symlink (a trailing one is opened itself with O_PATH|O_NOFOLLOW),
/// no /proc magic links, and never cross a mount point.
pub(super) const RESOLVE: u64 = libc::RESOLVE_BENEATH
    | libc::RESOLVE_NO_SYMLINKS
    | libc::RESOLVE_NO_MAGICLINKS
    | libc::RESOLVE_NO_XDEV;

/// openat2(2) with [`RESOLVE`]. Raw errno on failure (callers map EXDEV themselves).
pub(super) fn openat2(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: libc::c_int,
    mode: u32,
) -> Result<OwnedFd, i32> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u32 as u64,
        mode: if flags & libc::O_CREAT != 0 {
            u64::from(mode & 0o7777)
        } else {
            0
        },
        resolve: RESOLVE,
    };
    // EAGAIN: a concurrent rename raced with a RESOLVE_BENEATH walk; retry a few times.
    for _ in 0..8 {
        // SAFETY: `name` is a valid NUL-terminated string, `how` a valid open_how of the
        // size passed, both live for the call; the returned fd is new and owned by us.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                name.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if ret >= 0 {
            // SAFETY: the kernel returned a new descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) });
        }
        let e = errno();
        if e != libc::EAGAIN && e != libc::EINTR {
            return Err(e);
        }
    }
    Err(libc::EAGAIN)
}

/// openat(2) (used for "." and ".." and for /proc/self/fd reopening, never for client names).
pub(super) fn openat(
    dir: Option<BorrowedFd<'_>>,
    path: &CStr,
    flags: libc::c_int,
) -> Result<OwnedFd, i32> {
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    loop {
        // SAFETY: valid NUL-terminated path; the returned fd is new and owned by us.
        let ret = unsafe { libc::openat(dirfd, path.as_ptr(), flags | libc::O_CLOEXEC) };
        if ret >= 0 {
            // SAFETY: a new descriptor nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(ret) });
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// The direct I/O alignment of the open file `fd` (statx `STATX_DIOALIGN`, Linux 6.1+):
/// `(offset_align, mem_align)`, or `None` when the file system does no direct I/O on it
/// or the kernel cannot say.
pub(super) fn dio_align(fd: BorrowedFd<'_>) -> Option<(u32, u32)> {
    // SAFETY: `statx` is plain old data; all-zero is a valid value.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: an empty NUL-terminated path with AT_EMPTY_PATH names `fd` itself; the
    // kernel fills `st`, which lives for the call.
    let r = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_DIOALIGN,
            &mut st,
        )
    };
    if r != 0 || st.stx_mask & libc::STATX_DIOALIGN == 0 || st.stx_dio_offset_align == 0 {
        return None;
    }
    Some((st.stx_dio_offset_align, st.stx_dio_mem_align.max(1)))
}

fn zeroed_stat() -> libc::stat {
    // SAFETY: `stat` is plain old data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// fstatat(2) of `name` in `dir` without following a trailing symlink; with an empty
/// name, of `dir` itself (works on O_PATH descriptors, symlinks included).
pub(super) fn fstatat(dir: BorrowedFd<'_>, name: &CStr) -> Result<libc::stat, i32> {
    let mut st = zeroed_stat();
    let flags = libc::AT_SYMLINK_NOFOLLOW
        | if name.is_empty() {
            libc::AT_EMPTY_PATH
        } else {
            0
        };
    // SAFETY: valid path pointer and a writable stat buffer for the call.
    cvt(unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut st, flags) })?;
    Ok(st)
}

pub(super) fn fstat(fd: BorrowedFd<'_>) -> FsResult<libc::stat> {
    fstatat(fd, EMPTY).map_err(FsError::from_errno)
}

pub(super) fn fchownat_empty(
    fd: BorrowedFd<'_>,
    uid: Option<u32>,
    gid: Option<u32>,
) -> FsResult<()> {
    // SAFETY: the empty string is valid; AT_EMPTY_PATH makes the call act on `fd`.
    cvt(unsafe {
        libc::fchownat(
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            uid.unwrap_or(u32::MAX),
            gid.unwrap_or(u32::MAX),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
    .map_err(FsError::from_errno)
}

/// A value the kernel reports the size of first: `call` with a null buffer of size 0
/// says how long it is, then fills a buffer that long (asked again if it grew between).
fn sized_value(mut call: impl FnMut(*mut libc::c_void, usize) -> isize) -> FsResult<Vec<u8>> {
    loop {
        let want = call(std::ptr::null_mut(), 0);
        if want < 0 {
            return Err(last_err());
        }
        let mut buf = vec![0u8; want as usize];
        let n = call(buf.as_mut_ptr().cast(), buf.len());
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        if errno() != libc::ERANGE {
            return Err(last_err());
        }
    }
}

/// getxattr(2) of `name` on the object behind `fd`, through its /proc magic link (the
/// f*xattr calls refuse O_PATH descriptors); the value, read whole.
pub(super) fn getxattr(fd: BorrowedFd<'_>, name: &CStr) -> FsResult<Vec<u8>> {
    let p = proc_path(fd);
    // SAFETY: valid NUL-terminated path and name; `sized_value` passes a buffer writable
    // for the size it gives (or null with size 0).
    sized_value(|buf, len| unsafe { libc::getxattr(p.as_ptr(), name.as_ptr(), buf, len) })
}

/// setxattr(2) of `name` to `value` with `flags` (0, XATTR_CREATE or XATTR_REPLACE).
pub(super) fn setxattr(fd: BorrowedFd<'_>, name: &CStr, value: &[u8], flags: i32) -> FsResult<()> {
    let p = proc_path(fd);
    // SAFETY: valid NUL-terminated path and name; `value` is readable for its length.
    cvt(unsafe {
        libc::setxattr(
            p.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    })
    .map(drop)
    .map_err(FsError::from_errno)
}

/// listxattr(2): the names, each NUL-terminated, as the kernel lists them.
pub(super) fn listxattr(fd: BorrowedFd<'_>) -> FsResult<Vec<u8>> {
    let p = proc_path(fd);
    // SAFETY: valid NUL-terminated path; `sized_value` passes a buffer writable for the
    // size it gives (or null with size 0).
    sized_value(|buf, len| unsafe { libc::listxattr(p.as_ptr(), buf.cast(), len) })
}

/// removexattr(2) of `name`.
pub(super) fn removexattr(fd: BorrowedFd<'_>, name: &CStr) -> FsResult<()> {
    let p = proc_path(fd);
    // SAFETY: valid NUL-terminated path and name.
    cvt(unsafe { libc::removexattr(p.as_ptr(), name.as_ptr()) })
        .map(drop)
        .map_err(FsError::from_errno)
}

/// copy_file_range(2) of up to `len` bytes (the kernel shares blocks where the file
/// system can); the bytes copied.
pub(super) fn copy_file_range(
    src: BorrowedFd<'_>,
    src_off: u64,
    dst: BorrowedFd<'_>,
    dst_off: u64,
    len: u64,
) -> FsResult<u64> {
    let mut from = i64::try_from(src_off).map_err(|_| FsError::Inval)?;
    let mut to = i64::try_from(dst_off).map_err(|_| FsError::FBig)?;
    loop {
        // SAFETY: valid descriptors; the offsets live for the call.
        let n = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                &mut from,
                dst.as_raw_fd(),
                &mut to,
                usize::try_from(len).unwrap_or(usize::MAX),
                0,
            )
        };
        if n >= 0 {
            return Ok(n as u64);
        }
        match errno() {
            libc::EINTR => continue,
            e => return Err(FsError::from_errno(e)),
        }
    }
}

/// `struct file_clone_range` of ioctl_ficlonerange(2) (not in libc).
#[repr(C)]
struct FileCloneRange {
    src_fd: i64,
    src_offset: u64,
    src_length: u64,
    dest_offset: u64,
}

/// `_IOW(0x94, 13, struct file_clone_range)`.
const FICLONERANGE: libc::c_ulong = 0x4020_940d;

/// ioctl(FICLONERANGE): `len` bytes (0: to the end) of `src` at `src_off` shared into
/// `dst` at `dst_off`.
pub(super) fn clone_range(
    src: BorrowedFd<'_>,
    src_off: u64,
    dst: BorrowedFd<'_>,
    dst_off: u64,
    len: u64,
) -> FsResult<()> {
    let range = FileCloneRange {
        src_fd: i64::from(src.as_raw_fd()),
        src_offset: src_off,
        src_length: len,
        dest_offset: dst_off,
    };
    // SAFETY: `range` is the kernel's struct file_clone_range and lives for the call.
    cvt(unsafe { libc::ioctl(dst.as_raw_fd(), FICLONERANGE, &range) })
        .map(drop)
        .map_err(FsError::from_errno)
}

/// chmod through the object's /proc magic link (fchmod refuses O_PATH descriptors).
pub(super) fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> FsResult<()> {
    let p = proc_path(fd);
    // SAFETY: valid NUL-terminated path.
    cvt(unsafe { libc::fchmodat(libc::AT_FDCWD, p.as_ptr(), mode & 0o7777, 0) })
        .map(drop)
        .map_err(FsError::from_errno)
}

/// utimensat(2) on the object itself (`times` as in the syscall: UTIME_NOW / UTIME_OMIT).
pub(super) fn utimens_fd(
    fd: BorrowedFd<'_>,
    times: &[libc::timespec; 2],
    is_symlink: bool,
) -> FsResult<()> {
    if is_symlink {
        // SAFETY: valid empty path and a 2-element timespec array for the call.
        return cvt(unsafe {
            libc::utimensat(
                fd.as_raw_fd(),
                EMPTY.as_ptr(),
                times.as_ptr(),
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            )
        })
        .map(drop)
        .map_err(FsError::from_errno);
    }
    let p = proc_path(fd);
    // SAFETY: valid NUL-terminated path and a 2-element timespec array for the call.
    cvt(unsafe { libc::utimensat(libc::AT_FDCWD, p.as_ptr(), times.as_ptr(), 0) })
        .map(drop)
        .map_err(FsError::from_errno)
}

pub(super) fn ftruncate(fd: BorrowedFd<'_>, size: u64) -> FsResult<()> {
    let size = i64::try_from(size).map_err(|_| FsError::FBig)?;
    // SAFETY: plain syscall on a valid descriptor.
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), size) })
        .map(drop)
        .map_err(FsError::from_errno)
}

pub(super) fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> FsResult<()> {
    // SAFETY: valid NUL-terminated name.
    cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode & 0o7777) })
        .map(drop)
        .map_err(FsError::from_errno)
}

pub(super) fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> FsResult<()> {
    // SAFETY: valid NUL-terminated strings.
    cvt(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) })
        .map(drop)
        .map_err(FsError::from_errno)
}

pub(super) fn mknodat(
    dir: BorrowedFd<'_>,
    name: &CStr,
    mode: u32,
    dev: libc::dev_t,
) -> FsResult<()> {
    // SAFETY: valid NUL-terminated name.
    cvt(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, dev) })
        .map(drop)
        .map_err(FsError::from_errno)
}

pub(super) fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, rmdir: bool) -> Result<(), i32> {
    let flags = if rmdir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: valid NUL-terminated name.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) }).map(drop)
}

pub(super) fn renameat(
    from_dir: BorrowedFd<'_>,
    from: &CStr,
    to_dir: BorrowedFd<'_>,
    to: &CStr,
) -> FsResult<()> {
    // SAFETY: valid NUL-terminated names.
    cvt(unsafe {
        libc::renameat(
            from_dir.as_raw_fd(),
            from.as_ptr(),
            to_dir.as_raw_fd(),
            to.as_ptr(),
        )
    })
    .map(drop)
    .map_err(FsError::from_errno)
}

/// A new name for the object behind `target` (an O_PATH fd), through its /proc magic
/// link: unlike `AT_EMPTY_PATH` this needs no CAP_DAC_READ_SEARCH, so it works under a
/// client's credentials.
pub(super) fn link_fd(target: BorrowedFd<'_>, dir: BorrowedFd<'_>, name: &CStr) -> FsResult<()> {
    let p = proc_path(target);
    // SAFETY: valid NUL-terminated paths.
    cvt(unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            p.as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    })
    .map(drop)
    .map_err(FsError::from_errno)
}

/// The text of the symlink behind the O_PATH descriptor `fd`.
pub(super) fn readlink_fd(fd: BorrowedFd<'_>) -> FsResult<Vec<u8>> {
    let mut cap = 256usize;
    loop {
        let mut buf = vec![0u8; cap];
        // SAFETY: `buf` is writable for `cap` bytes; the empty path acts on `fd`.
        let n = unsafe {
            libc::readlinkat(fd.as_raw_fd(), EMPTY.as_ptr(), buf.as_mut_ptr().cast(), cap)
        };
        if n < 0 {
            return Err(last_err());
        }
        let n = n as usize;
        if n < cap {
            buf.truncate(n);
            return Ok(buf);
        }
        if cap >= 1 << 16 {
            return Err(FsError::NameTooLong);
        }
        cap *= 4;
    }
}

pub(super) fn lseek_set(fd: BorrowedFd<'_>, off: i64) -> FsResult<()> {
    // SAFETY: plain syscall on a valid descriptor.
    let r = unsafe { libc::lseek(fd.as_raw_fd(), off, libc::SEEK_SET) };
    if r < 0 { Err(last_err()) } else { Ok(()) }
}

/// lseek(2) with SEEK_DATA (`data`) or SEEK_HOLE from `off`; `None` for ENXIO (at or
/// past the end, or no data after `off`).
pub(super) fn seek_data_hole(fd: BorrowedFd<'_>, off: u64, data: bool) -> FsResult<Option<u64>> {
    let off = i64::try_from(off).map_err(|_| FsError::Inval)?;
    let whence = if data {
        libc::SEEK_DATA
    } else {
        libc::SEEK_HOLE
    };
    // SAFETY: lseek on a descriptor we hold; no memory is passed.
    let r = unsafe { libc::lseek(fd.as_raw_fd(), off, whence) };
    if r >= 0 {
        return Ok(Some(r as u64));
    }
    match errno() {
        libc::ENXIO => Ok(None),
        e => Err(FsError::from_errno(e)),
    }
}

/// fallocate(2) of `[off, off + len)` with `mode` (0: allocate, growing the file;
/// `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`: deallocate).
pub(super) fn fallocate(fd: BorrowedFd<'_>, mode: i32, off: u64, len: u64) -> FsResult<()> {
    let off = i64::try_from(off).map_err(|_| FsError::FBig)?;
    let len = i64::try_from(len).map_err(|_| FsError::FBig)?;
    loop {
        // SAFETY: fallocate on a descriptor we hold; no memory is passed.
        let r = unsafe { libc::fallocate(fd.as_raw_fd(), mode, off, len) };
        if r == 0 {
            return Ok(());
        }
        match errno() {
            libc::EINTR => continue,
            e => return Err(FsError::from_errno(e)),
        }
    }
}

/// getdents64(2) into `buf`; returns the number of bytes filled (0 at the end).
pub(super) fn getdents64(fd: BorrowedFd<'_>, buf: &mut [u8]) -> FsResult<usize> {
    loop {
        // SAFETY: `buf` is writable for `buf.len()` bytes for the duration of the call.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                fd.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(FsError::from_errno(e));
        }
    }
}

pub(super) fn fstatvfs(fd: BorrowedFd<'_>) -> FsResult<libc::statvfs> {
    // SAFETY: `statvfs` is plain old data; all-zero is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: writable buffer for the call.
    cvt(unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut st) }).map_err(FsError::from_errno)?;
    Ok(st)
}

/// The file system id the kernel reports for the file system of `fd` (statfs f_fsid).
pub(super) fn fs_fsid(fd: BorrowedFd<'_>) -> FsResult<[i32; 2]> {
    // SAFETY: `statfs` is plain old data; all-zero is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: writable buffer for the call.
    cvt(unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) }).map_err(FsError::from_errno)?;
    // SAFETY: fsid_t is `struct { int val[2]; }` in C, so the layouts are identical.
    Ok(unsafe { std::mem::transmute::<libc::fsid_t, [i32; 2]>(st.f_fsid) })
}

/// Whether the process runs with effective uid 0 (what reopening files by handle needs,
/// short of CAP_DAC_READ_SEARCH alone): for a clearer error when opening an export fails.
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `l_type`, `l_start`, `l_len` of a `struct flock` (always SEEK_SET).
pub(super) type FlockRange = (i16, i64, i64);

fn flock(range: FlockRange) -> libc::flock {
    // SAFETY: `flock` is plain old data; all-zero is a valid value (and OFD locks
    // require l_pid 0).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = range.0;
    fl.l_whence = libc::SEEK_SET as i16;
    fl.l_start = range.1;
    fl.l_len = range.2;
    fl
}

/// fcntl(2) F_OFD_SETLK: set or clear (`F_UNLCK`) an open-file-description lock without
/// waiting (never F_OFD_SETLKW: the caller is a worker thread). Raw errno on failure.
pub(super) fn ofd_setlk(fd: BorrowedFd<'_>, range: FlockRange) -> Result<(), i32> {
    let fl = flock(range);
    loop {
        // SAFETY: `fl` is a valid struct flock that lives for the call; the kernel only
        // reads it for F_OFD_SETLK.
        match cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &fl) }) {
            Err(libc::EINTR) => continue,
            r => return r.map(drop),
        }
    }
}

/// fcntl(2) F_OFD_GETLK: the first lock held through another description that conflicts
/// with `range` (its type, start and length, length 0 meaning "to the end"), or `None`.
pub(super) fn ofd_getlk(fd: BorrowedFd<'_>, range: FlockRange) -> Result<Option<FlockRange>, i32> {
    let mut fl = flock(range);
    loop {
        // SAFETY: `fl` is a valid, writable struct flock that lives for the call.
        match cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) }) {
            Err(libc::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(_) if fl.l_type == libc::F_UNLCK as i16 => return Ok(None),
            Ok(_) => return Ok(Some((fl.l_type, fl.l_start, fl.l_len))),
        }
    }
}
