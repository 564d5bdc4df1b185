//! Data I/O on open regular files with plain syscalls: the in-place fallback when no
//! ring can run the operation, and the non-blocking read tried before going to the ring.

use std::os::fd::{AsRawFd, BorrowedFd};

use super::sys;
use crate::{FsError, FsResult};

/// Read up to `count` bytes at `offset`, appended to `buf` (no zero-filling first).
/// Stops early only at end of file; returns the number of bytes read.
pub(crate) fn pread_append(
    fd: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    count: usize,
    offset: u64,
) -> FsResult<usize> {
    let start = buf.len();
    buf.reserve(count);
    let mut done = 0usize;
    while done < count {
        let off = offset
            .checked_add(done as u64)
            .and_then(|o| i64::try_from(o).ok())
            .ok_or(FsError::Inval)?;
        // SAFETY: after `reserve`, the spare capacity holds at least `count - done`
        // bytes starting at `start + done`; the kernel writes at most that many.
        let n = unsafe {
            libc::pread(
                fd.as_raw_fd(),
                buf.as_mut_ptr().add(start + done).cast(),
                count - done,
                off,
            )
        };
        if n < 0 {
            let e = sys::errno();
            if e == libc::EINTR {
                continue;
            }
            // SAFETY: the first `start + done` bytes are initialised.
            unsafe { buf.set_len(start + done) };
            return Err(FsError::from_errno(e));
        }
        if n == 0 {
            break;
        }
        done += n as usize;
    }
    // SAFETY: the kernel initialised `done` bytes after `start`.
    unsafe { buf.set_len(start + done) };
    Ok(done)
}

/// Read what the page cache already holds, without blocking (`preadv2` with
/// `RWF_NOWAIT`): up to `count` bytes at `offset`, appended to `buf`. `Ok(None)` when the
/// read would block (or the kernel cannot say), so the caller goes to the ring.
pub(crate) fn pread_nowait_append(
    fd: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    count: usize,
    offset: u64,
    flags: libc::c_int,
) -> FsResult<Option<usize>> {
    let Ok(off) = i64::try_from(offset) else {
        return Ok(Some(0));
    };
    let start = buf.len();
    buf.reserve(count);
    let iov = libc::iovec {
        // SAFETY: after `reserve`, the spare capacity at `start` holds `count` bytes.
        iov_base: unsafe { buf.as_mut_ptr().add(start) }.cast(),
        iov_len: count,
    };
    // SAFETY: one iovec describing spare capacity of `buf` that stays valid (and is not
    // otherwise touched) for the call; the kernel writes at most `count` bytes there.
    let n = unsafe { libc::preadv2(fd.as_raw_fd(), &iov, 1, off, libc::RWF_NOWAIT | flags) };
    if n < 0 {
        return match sys::errno() {
            libc::EAGAIN | libc::EOPNOTSUPP | libc::EINTR => Ok(None),
            e => Err(FsError::from_errno(e)),
        };
    }
    // SAFETY: the kernel initialised `n` bytes after `start`.
    unsafe { buf.set_len(start + n as usize) };
    Ok(Some(n as usize))
}

/// Write all of `data` at `offset`; returns the bytes written.
pub(crate) fn pwrite_all(fd: BorrowedFd<'_>, data: &[u8], offset: u64) -> FsResult<usize> {
    let end = offset.checked_add(data.len() as u64).ok_or(FsError::FBig)?;
    if i64::try_from(end).is_err() {
        return Err(FsError::FBig);
    }
    let mut done = 0usize;
    while done < data.len() {
        // SAFETY: `data[done..]` is readable for its length during the call.
        let n = unsafe {
            libc::pwrite(
                fd.as_raw_fd(),
                data[done..].as_ptr().cast(),
                data.len() - done,
                (offset + done as u64) as i64,
            )
        };
        if n < 0 {
            let e = sys::errno();
            if e == libc::EINTR {
                continue;
            }
            if done > 0 {
                return Ok(done);
            }
            return Err(FsError::from_errno(e));
        }
        if n == 0 {
            return if done > 0 { Ok(done) } else { Err(FsError::Io) };
        }
        done += n as usize;
    }
    Ok(done)
}

/// Data and metadata to stable storage.
pub(crate) fn fsync(fd: BorrowedFd<'_>) -> FsResult<()> {
    // SAFETY: plain syscall on a valid descriptor.
    if unsafe { libc::fsync(fd.as_raw_fd()) } == -1 {
        return Err(sys::last_err());
    }
    Ok(())
}

/// Data (and the metadata needed to read it back) to stable storage.
pub(crate) fn fdatasync(fd: BorrowedFd<'_>) -> FsResult<()> {
    // SAFETY: plain syscall on a valid descriptor.
    if unsafe { libc::fdatasync(fd.as_raw_fd()) } == -1 {
        return Err(sys::last_err());
    }
    Ok(())
}

/// fallocate(2) with `mode` over `[offset, offset + len)`.
pub(crate) fn fallocate(fd: BorrowedFd<'_>, mode: i32, offset: u64, len: u64) -> FsResult<()> {
    sys::fallocate(fd, mode, offset, len)
}
