//! Extended attributes of the local backend: the file's own `user.*` xattrs, named on
//! the wire without the prefix, read and changed as the caller (the kernel checks the
//! permissions), on regular files and directories only — a symlink's magic link would
//! lead to its target, perhaps outside the export.

use std::ffi::CString;
use std::os::fd::AsFd;

use super::creds::CredGuard;
use super::{LocalBackend, sys};
use crate::{Caller, FsError, FsResult, ObjHandle, XattrSet};

const PREFIX: &[u8] = b"user.";

/// `user.` + `name` as a C string.
fn full_name(name: &[u8]) -> FsResult<CString> {
    CString::new([PREFIX, name].concat()).map_err(|_| FsError::Inval)
}

impl LocalBackend {
    /// The object `h`, refused unless it is a regular file or a directory.
    fn xattr_obj(&self, h: &ObjHandle) -> FsResult<super::Obj> {
        let o = self.obj(h)?;
        match o.fmt() {
            libc::S_IFREG | libc::S_IFDIR => Ok(o),
            _ => Err(FsError::Perm),
        }
    }

    pub(super) fn get_xattr(
        &self,
        h: &ObjHandle,
        name: &[u8],
        caller: &Caller,
    ) -> FsResult<Vec<u8>> {
        let o = self.xattr_obj(h)?;
        let name = full_name(name)?;
        let _as_caller = CredGuard::switch(caller)?;
        sys::getxattr(o.fd.as_fd(), &name)
    }

    pub(super) fn set_xattr(
        &self,
        h: &ObjHandle,
        name: &[u8],
        value: &[u8],
        how: XattrSet,
        caller: &Caller,
    ) -> FsResult<()> {
        self.check_writable()?;
        let o = self.xattr_obj(h)?;
        let name = full_name(name)?;
        let flags = match how {
            XattrSet::Either => 0,
            XattrSet::Create => libc::XATTR_CREATE,
            XattrSet::Replace => libc::XATTR_REPLACE,
        };
        let _as_caller = CredGuard::switch(caller)?;
        sys::setxattr(o.fd.as_fd(), &name, value, flags)
    }

    pub(super) fn list_xattrs(&self, h: &ObjHandle, caller: &Caller) -> FsResult<Vec<Vec<u8>>> {
        let o = self.xattr_obj(h)?;
        // listxattr(2) needs no permission; listing is reading to RFC 8276 (and knfsd).
        if caller.perm_bits(&super::attrs::from_stat(&o.st)) & 4 == 0 {
            return Err(FsError::Access);
        }
        let raw = sys::listxattr(o.fd.as_fd())?;
        let mut names: Vec<Vec<u8>> = raw
            .split(|b| *b == 0)
            .filter_map(|n| n.strip_prefix(PREFIX))
            .filter(|n| !n.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        names.sort_unstable();
        Ok(names)
    }

    pub(super) fn remove_xattr(&self, h: &ObjHandle, name: &[u8], caller: &Caller) -> FsResult<()> {
        self.check_writable()?;
        let o = self.xattr_obj(h)?;
        let name = full_name(name)?;
        let _as_caller = CredGuard::switch(caller)?;
        sys::removexattr(o.fd.as_fd(), &name)
    }
}
