//! READDIR with getdents64(2). The cookie of an entry is the kernel's `d_off` of that
//! entry (the directory position just after it, stable across calls on ext4, xfs,
//! btrfs and tmpfs) plus [`COOKIE_BIAS`], so that no cookie we hand out is 0, 1 or 2
//! (0 means "from the start" and 1, 2 are reserved by NFS for "." and ".."). A cookie
//! coming back is turned into a position by subtracting the bias and `lseek`ing there.

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd};

use super::{LocalBackend, attrs, handle, sys};
use crate::{DirEntry, FsError, FsResult, ObjHandle};

/// Added to `d_off` to make a cookie.
pub(super) const COOKIE_BIAS: u64 = 3;

/// getdents64 buffer size.
const BUF: usize = 32 * 1024;

/// One `struct linux_dirent64` record: (d_off, name, record length).
fn parse(buf: &[u8]) -> Option<(i64, &[u8], usize)> {
    if buf.len() < 19 {
        return None;
    }
    let off = i64::from_ne_bytes(buf[8..16].try_into().ok()?);
    let reclen = u16::from_ne_bytes(buf[16..18].try_into().ok()?) as usize;
    if reclen < 19 || reclen > buf.len() {
        return None;
    }
    let raw = &buf[19..reclen];
    let name = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
    Some((off, name, reclen))
}

impl LocalBackend {
    pub(super) fn read_dir(
        &self,
        dir: &ObjHandle,
        cookie: u64,
        max: usize,
    ) -> FsResult<(Vec<DirEntry>, bool)> {
        let d = self.dir(dir)?;
        let rfd = sys::openat(Some(d.fd.as_fd()), c".", libc::O_RDONLY | libc::O_DIRECTORY)
            .map_err(FsError::from_errno)?;
        if cookie != 0 {
            if cookie < COOKIE_BIAS {
                return Err(FsError::Inval);
            }
            let pos = i64::try_from(cookie - COOKIE_BIAS).map_err(|_| FsError::Inval)?;
            sys::lseek_set(rfd.as_fd(), pos)?;
        }
        let mut out = Vec::new();
        if max == 0 {
            return Ok((out, false));
        }
        let mut buf = vec![0u8; BUF];
        loop {
            let n = sys::getdents64(rfd.as_fd(), &mut buf)?;
            if n == 0 {
                return Ok((out, true));
            }
            let mut pos = 0;
            while let Some((off, name, reclen)) = parse(&buf[pos..n]) {
                pos += reclen;
                if name == b"." || name == b".." {
                    continue;
                }
                if let Some(e) = self.entry(rfd.as_fd(), name, off)? {
                    out.push(e);
                }
                if out.len() == max {
                    if pos < n {
                        return Ok((out, false));
                    }
                    // Peek: is there anything after the last entry?
                    let more = sys::getdents64(rfd.as_fd(), &mut buf)?;
                    return Ok((out, more == 0));
                }
            }
        }
    }

    /// The entry for `name` in the directory `dir`, or `None` if it vanished meanwhile or
    /// is a mount point (other file systems are not exported).
    fn entry(&self, dir: BorrowedFd<'_>, name: &[u8], off: i64) -> FsResult<Option<DirEntry>> {
        let Ok(cname) = sys::cname(name) else {
            return Ok(None);
        };
        let cname: &CStr = &cname;
        let st = match sys::fstatat(dir, cname) {
            Ok(st) => st,
            Err(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(FsError::from_errno(e)),
        };
        if st.st_dev != self.root_dev {
            return Ok(None);
        }
        let h = match handle::name_to_handle(dir, cname) {
            Ok((h, mnt)) if mnt == self.root_mnt => h,
            Ok(_) | Err(libc::ENOENT) => return Ok(None),
            Err(libc::EOVERFLOW) => return Err(FsError::NotSupp),
            Err(e) => return Err(FsError::from_errno(e)),
        };
        Ok(Some(DirEntry {
            name: name.to_vec(),
            cookie: (off as u64).wrapping_add(COOKIE_BIAS),
            handle: h,
            attrs: attrs::from_stat(&st),
        }))
    }
}
