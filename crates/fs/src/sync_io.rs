//! Run a file operation with plain syscalls on the calling thread: for callers without
//! an io_uring ring (engine tests, fuzzing, benchmarks), which drive a suspended
//! request with [`run_to_end`].

use ringnfs_service::{Caching, FileIo, FileIoDone, FileOp, Outcome};

use super::FsError;
use super::local::io;

fn errno(e: FsError) -> i32 {
    // Only the NFS status matters to the caller; EIO stands for anything unmapped.
    -match e {
        FsError::NoSpc => libc::ENOSPC,
        FsError::DQuot => libc::EDQUOT,
        FsError::FBig => libc::EFBIG,
        FsError::Inval => libc::EINVAL,
        FsError::IsDir => libc::EISDIR,
        FsError::Rofs => libc::EROFS,
        FsError::Access => libc::EACCES,
        _ => libc::EIO,
    }
}

/// Try a READ from the page cache without blocking; `None` if it would block (or found
/// nothing before end of file it could return right away).
pub fn read_nowait(
    fd: &ringnfs_service::IoFd,
    offset: u64,
    count: u32,
    size: u64,
    caching: Caching,
    out: &mut Vec<u8>,
) -> Option<Result<usize, FsError>> {
    let before = out.len();
    match io::pread_nowait_append(fd.as_fd(), out, count as usize, offset, caching.rw_flags()) {
        // Nothing came back though the file goes on: the data is not cached.
        Ok(Some(0)) if offset < size && count > 0 => {
            out.truncate(before);
            None
        }
        Ok(Some(n)) => Some(Ok(n)),
        Ok(None) => None,
        Err(e) => Some(Err(e)),
    }
}

/// Run a service call's outcome to its end, doing each file operation here; returns how
/// many it ran.
pub fn run_to_end(outcome: Outcome, out: &mut Vec<u8>) -> usize {
    outcome.run_to_end(out, run)
}

/// Do one file operation with plain syscalls (its caching mode is not applied: the
/// callers are tests, fuzzing and benchmarks of the protocol core).
pub fn run(req: FileIo) -> FileIoDone {
    let fd = req.fd.as_fd();
    let (result, buf) = match req.op {
        FileOp::Read {
            offset,
            len,
            mut into,
            ..
        } => match io::pread_append(fd, &mut into, len as usize, offset) {
            Ok(n) => (n as i32, into),
            Err(e) => (errno(e), into),
        },
        FileOp::Write { offset, data, .. } => match io::pwrite_all(fd, &data, offset) {
            Ok(n) => (n as i32, Vec::new()),
            Err(e) => (errno(e), Vec::new()),
        },
        FileOp::Fsync { datasync } => {
            let r = if datasync {
                io::fdatasync(fd)
            } else {
                io::fsync(fd)
            };
            (r.map_or_else(errno, |()| 0), Vec::new())
        }
        FileOp::Fallocate { mode, offset, len } => (
            io::fallocate(fd, mode, offset, len).map_or_else(errno, |()| 0),
            Vec::new(),
        ),
        // A signal's eventfd (blocking): waits here until another thread writes it.
        FileOp::Wait => {
            use std::io::Read;
            let mut buf = [0u8; 8];
            let read = fd
                .try_clone_to_owned()
                .and_then(|own| std::fs::File::from(own).read(&mut buf));
            match read {
                Ok(n) => (n as i32, buf[..n].to_vec()),
                Err(e) => (-e.raw_os_error().unwrap_or(libc::EIO), Vec::new()),
            }
        }
    };
    FileIoDone { result, buf }
}
