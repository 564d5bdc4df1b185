//! The [`Backend`] operations of [`LocalBackend`].

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};

use super::cache::OpenFile;
use super::creds::CredGuard;
use super::{LocalBackend, LockFile, Obj, attrs, handle, io, sys};
use crate::{
    Attrs, Backend, Caller, CreateKind, DirEntry, FsError, FsResult, FsStats, ObjHandle, SetAttrs,
    Stability, check_name,
};

/// Mode of a new regular file, fifo, socket or device when the client gives none.
const DEFAULT_FILE_MODE: u32 = 0o644;
/// Mode of a new directory when the client gives none.
const DEFAULT_DIR_MODE: u32 = 0o755;

/// A client's name component, checked again (defence in depth) and as a C string.
fn name_arg(name: &[u8]) -> FsResult<CString> {
    check_name(name)?;
    sys::cname(name)
}

/// Lookup errors: a mount point inside the export (EXDEV from RESOLVE_NO_XDEV) is not
/// exported, so it does not exist for the client.
fn lookup_err(e: i32) -> FsError {
    if e == libc::EXDEV {
        FsError::NoEnt
    } else {
        FsError::from_errno(e)
    }
}

impl LocalBackend {
    /// Apply `set` to `o` with the current thread's (the caller's) credentials.
    /// `data_fd`, if given, is `o` open for writing (for the size).
    fn apply(&self, o: &Obj, set: &SetAttrs, data_fd: Option<BorrowedFd<'_>>) -> FsResult<()> {
        let is_link = o.fmt() == libc::S_IFLNK;
        if let Some(size) = set.size {
            match o.fmt() {
                libc::S_IFREG => {}
                libc::S_IFDIR => return Err(FsError::IsDir),
                _ => return Err(FsError::Inval),
            }
            match data_fd {
                Some(fd) => sys::ftruncate(fd, size)?,
                None => {
                    // Open for writing as the caller: the kernel checks write permission.
                    let p = sys::proc_path(o.fd.as_fd());
                    let fd = sys::openat(None, &p, libc::O_WRONLY).map_err(FsError::from_errno)?;
                    sys::ftruncate(fd.as_fd(), size)?;
                }
            }
        }
        if set.uid.is_some() || set.gid.is_some() {
            sys::fchownat_empty(o.fd.as_fd(), set.uid, set.gid)?;
        }
        // Linux symlinks have no mode of their own (always 0777): ignore it, as Linux does.
        if let Some(mode) = set.mode
            && !is_link
        {
            sys::chmod_fd(o.fd.as_fd(), mode)?;
        }
        if set.atime.is_some() || set.mtime.is_some() {
            sys::utimens_fd(o.fd.as_fd(), &attrs::utimens(set.atime, set.mtime), is_link)?;
        }
        Ok(())
    }

    /// After creating `o` with `attrs`: the attributes still to apply (the mode again if
    /// the process umask changed it; owner; size; times).
    fn remaining(o: &Obj, attrs: &SetAttrs, mode: u32) -> SetAttrs {
        let is_link = o.fmt() == libc::S_IFLNK;
        // A directory made in a setgid directory inherits the setgid bit from the kernel
        // (umask aside); keep it rather than "correct" it away.
        let mode = if o.fmt() == libc::S_IFDIR {
            mode | (o.st.st_mode & libc::S_ISGID)
        } else {
            mode
        };
        SetAttrs {
            mode: (!is_link && o.st.st_mode & 0o7777 != mode).then_some(mode),
            size: if o.fmt() == libc::S_IFREG {
                attrs.size.filter(|&s| s != 0)
            } else {
                None
            },
            ..*attrs
        }
    }
}

impl Backend for LocalBackend {
    fn root(&self) -> ObjHandle {
        self.root_handle
    }

    fn fsid(&self) -> (u64, u64) {
        self.fsid
    }

    fn getattr(&self, h: &ObjHandle) -> FsResult<Attrs> {
        if let Some(f) = self.files.get(h) {
            let st = sys::fstat(f.fd.as_fd())?;
            if st.st_nlink > 0 {
                return Ok(attrs::from_stat(&st));
            }
            // Unlinked behind our back (not through REMOVE): forget it.
            self.files.remove(h);
            return Err(FsError::Stale);
        }
        Ok(attrs::from_stat(&self.obj(h)?.st))
    }

    fn setattr(&self, h: &ObjHandle, set: &SetAttrs, caller: &Caller) -> FsResult<Attrs> {
        self.check_writable()?;
        let o = self.obj(h)?;
        {
            let _as_caller = CredGuard::switch(caller)?;
            self.apply(&o, set, None)?;
        }
        Ok(attrs::from_stat(&sys::fstat(o.fd.as_fd())?))
    }

    fn lookup(&self, dir: &ObjHandle, name: &[u8]) -> FsResult<ObjHandle> {
        let cname = name_arg(name)?;
        let d = self.dir(dir)?;
        // O_PATH|O_NOFOLLOW: a symlink is opened itself, never followed.
        let fd = sys::openat2(d.fd.as_fd(), &cname, libc::O_PATH | libc::O_NOFOLLOW, 0)
            .map_err(lookup_err)?;
        self.handle_of(fd.as_fd())
    }

    fn lookup_parent(&self, dir: &ObjHandle) -> FsResult<ObjHandle> {
        let d = self.dir(dir)?;
        if self.is_root(&d.st) {
            return Err(FsError::NoEnt);
        }
        // `d` is below the root (checked by `dir`), so its parent is inside the export.
        let p = sys::openat(Some(d.fd.as_fd()), c"..", libc::O_PATH | libc::O_DIRECTORY)
            .map_err(FsError::from_errno)?;
        self.handle_of(p.as_fd())
    }

    fn read(&self, h: &ObjHandle, offset: u64, count: u32, buf: &mut Vec<u8>) -> FsResult<bool> {
        let f = self.file(h)?;
        // The kernel takes signed offsets: nothing can live beyond i64::MAX.
        if offset > i64::MAX as u64 {
            return Ok(true);
        }
        let n = io::pread_append(f.fd.as_fd(), buf, count as usize, offset)?;
        if n < count as usize {
            return Ok(true);
        }
        let size = sys::fstat(f.fd.as_fd())?.st_size.max(0) as u64;
        Ok(offset.saturating_add(n as u64) >= size)
    }

    fn write(
        &self,
        h: &ObjHandle,
        offset: u64,
        data: &[u8],
        stable: Stability,
    ) -> FsResult<(u32, Stability)> {
        self.check_writable()?;
        let f = self.file(h)?;
        if let Some(e) = f.write_err {
            return Err(e);
        }
        if offset
            .checked_add(data.len() as u64)
            .is_none_or(|end| end > i64::MAX as u64)
        {
            return Err(FsError::FBig);
        }
        let n = io::pwrite_all(f.fd.as_fd(), data, offset)?;
        match stable {
            Stability::Unstable => {}
            Stability::DataSync => io::fdatasync(f.fd.as_fd())?,
            Stability::FileSync => io::fsync(f.fd.as_fd())?,
        }
        Ok((n as u32, stable))
    }

    fn commit(&self, h: &ObjHandle) -> FsResult<()> {
        let f = self.file(h)?;
        io::fsync(f.fd.as_fd())
    }

    fn create_file(
        &self,
        dir: &ObjHandle,
        name: &[u8],
        attrs: &SetAttrs,
        exclusive: bool,
        caller: &Caller,
    ) -> FsResult<(ObjHandle, bool)> {
        self.check_writable()?;
        let cname = name_arg(name)?;
        let d = self.dir(dir)?;
        let mode = attrs.mode.unwrap_or(DEFAULT_FILE_MODE) & 0o7777;
        // A few rounds in case the name is removed between "exists" and opening it.
        for _ in 0..4 {
            let as_caller = CredGuard::switch(caller)?;
            let flags = libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_NOFOLLOW;
            match sys::openat2(d.fd.as_fd(), &cname, flags, mode) {
                Ok(fd) => {
                    let st = sys::fstat(fd.as_fd())?;
                    let o = Obj { fd, st };
                    self.apply(&o, &Self::remaining(&o, attrs, mode), Some(o.fd.as_fd()))?;
                    drop(as_caller);
                    let h = self.handle_of(o.fd.as_fd())?;
                    // Opened read-write by its creator: ready for the WRITEs to come.
                    self.files.insert(&h, OpenFile::new(o.fd, None));
                    return Ok((h, true));
                }
                Err(libc::EEXIST) if !exclusive => {
                    drop(as_caller);
                    let fd = match sys::openat2(
                        d.fd.as_fd(),
                        &cname,
                        libc::O_PATH | libc::O_NOFOLLOW,
                        0,
                    ) {
                        Ok(fd) => fd,
                        Err(libc::ENOENT) => continue,
                        Err(e) => return Err(lookup_err(e)),
                    };
                    let st = sys::fstat(fd.as_fd())?;
                    return match st.st_mode & libc::S_IFMT {
                        libc::S_IFREG => Ok((self.handle_of(fd.as_fd())?, false)),
                        libc::S_IFDIR => Err(FsError::IsDir),
                        libc::S_IFLNK => Err(FsError::SymLink),
                        _ => Err(FsError::Inval),
                    };
                }
                Err(libc::EXDEV) => return Err(FsError::Exist),
                Err(e) => return Err(FsError::from_errno(e)),
            }
        }
        Err(FsError::Io)
    }

    fn create(
        &self,
        dir: &ObjHandle,
        name: &[u8],
        kind: &CreateKind,
        attrs: &SetAttrs,
        caller: &Caller,
    ) -> FsResult<ObjHandle> {
        self.check_writable()?;
        let cname = name_arg(name)?;
        let d = self.dir(dir)?;
        let dfd = d.fd.as_fd();
        let file_mode = attrs.mode.unwrap_or(DEFAULT_FILE_MODE) & 0o7777;
        let as_caller = CredGuard::switch(caller)?;
        let mode = match kind {
            CreateKind::Directory => {
                let mode = attrs.mode.unwrap_or(DEFAULT_DIR_MODE) & 0o7777;
                sys::mkdirat(dfd, &cname, mode)?;
                mode
            }
            CreateKind::Symlink(target) => {
                if target.is_empty() {
                    return Err(FsError::Inval);
                }
                let t = CString::new(target.as_slice()).map_err(|_| FsError::Inval)?;
                sys::symlinkat(&t, dfd, &cname)?;
                0o777
            }
            CreateKind::Block(ma, mi) => {
                sys::mknodat(
                    dfd,
                    &cname,
                    libc::S_IFBLK | file_mode,
                    libc::makedev(*ma, *mi),
                )?;
                file_mode
            }
            CreateKind::Char(ma, mi) => {
                sys::mknodat(
                    dfd,
                    &cname,
                    libc::S_IFCHR | file_mode,
                    libc::makedev(*ma, *mi),
                )?;
                file_mode
            }
            CreateKind::Fifo => {
                sys::mknodat(dfd, &cname, libc::S_IFIFO | file_mode, 0)?;
                file_mode
            }
            CreateKind::Socket => {
                sys::mknodat(dfd, &cname, libc::S_IFSOCK | file_mode, 0)?;
                file_mode
            }
        };
        let fd =
            sys::openat2(dfd, &cname, libc::O_PATH | libc::O_NOFOLLOW, 0).map_err(lookup_err)?;
        let st = sys::fstat(fd.as_fd())?;
        let o = Obj { fd, st };
        self.apply(&o, &Self::remaining(&o, attrs, mode), None)?;
        drop(as_caller);
        self.handle_of(o.fd.as_fd())
    }

    fn remove(&self, dir: &ObjHandle, name: &[u8], caller: &Caller) -> FsResult<()> {
        self.check_writable()?;
        let cname = name_arg(name)?;
        let d = self.dir(dir)?;
        let st = sys::fstatat(d.fd.as_fd(), &cname).map_err(FsError::from_errno)?;
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        let cached = if st.st_mode & libc::S_IFMT == libc::S_IFREG {
            handle::name_to_handle(d.fd.as_fd(), &cname)
                .ok()
                .map(|(h, _)| h)
        } else {
            None
        };
        let r = {
            let _as_caller = CredGuard::switch(caller)?;
            sys::unlinkat(d.fd.as_fd(), &cname, is_dir)
        };
        match r {
            Ok(()) => {}
            Err(libc::EEXIST) if is_dir => return Err(FsError::NotEmpty),
            Err(e) => return Err(FsError::from_errno(e)),
        }
        if let Some(h) = cached {
            self.files.remove(&h);
        }
        Ok(())
    }

    fn rename(
        &self,
        from_dir: &ObjHandle,
        from: &[u8],
        to_dir: &ObjHandle,
        to: &[u8],
        caller: &Caller,
    ) -> FsResult<()> {
        self.check_writable()?;
        let cfrom = name_arg(from)?;
        let cto = name_arg(to)?;
        let fd = self.dir(from_dir)?;
        let td = self.dir(to_dir)?;
        // The object renamed over, if any, leaves the open-file cache.
        let over = handle::name_to_handle(td.fd.as_fd(), &cto)
            .ok()
            .map(|(h, _)| h);
        let src = handle::name_to_handle(fd.fd.as_fd(), &cfrom)
            .ok()
            .map(|(h, _)| h);
        {
            let _as_caller = CredGuard::switch(caller)?;
            sys::renameat(fd.fd.as_fd(), &cfrom, td.fd.as_fd(), &cto)?;
        }
        if let Some(h) = over
            && over != src
        {
            self.files.remove(&h);
        }
        Ok(())
    }

    fn link(
        &self,
        target: &ObjHandle,
        dir: &ObjHandle,
        name: &[u8],
        caller: &Caller,
    ) -> FsResult<()> {
        self.check_writable()?;
        let cname = name_arg(name)?;
        let t = self.obj(target)?;
        if t.is_dir() {
            return Err(FsError::IsDir);
        }
        let d = self.dir(dir)?;
        let _as_caller = CredGuard::switch(caller)?;
        sys::link_fd(t.fd.as_fd(), d.fd.as_fd(), &cname)
    }

    fn readlink(&self, h: &ObjHandle) -> FsResult<Vec<u8>> {
        let o = self.obj(h)?;
        if o.fmt() != libc::S_IFLNK {
            return Err(FsError::Inval);
        }
        sys::readlink_fd(o.fd.as_fd())
    }

    fn readdir(&self, dir: &ObjHandle, cookie: u64, max: usize) -> FsResult<(Vec<DirEntry>, bool)> {
        self.read_dir(dir, cookie, max)
    }

    fn io_file(&self, h: &ObjHandle, write: bool) -> Option<FsResult<ringnfs_service::IoFd>> {
        let f = if write {
            self.writable_file(h)
        } else {
            self.file(h)
        };
        Some(f.map(|f| f as ringnfs_service::IoFd))
    }

    /// A description of its own. For a lock-owner (`write`) read-write when the file can
    /// be opened so (a write lock needs it, and the owner may take one later; opening by
    /// handle runs as root, so only a read-only export, mount or file refuses), else
    /// read-only: read locks still work, write locks answer NFS4ERR_OPENMODE. Only to
    /// ask (LOCKT), read-only: F_OFD_GETLK needs no write access, and an open for
    /// writing has costs a question should not pay (it breaks local processes' read
    /// leases; a cluster file system may recall other nodes' cached write rights).
    fn lock_file(&self, h: &ObjHandle, write: bool) -> Option<FsResult<LockFile>> {
        let opened = if write {
            self.open_regular(h)
        } else {
            self.open_regular_read_only(h)
        };
        Some(opened.map(|(fd, write_err)| LockFile::new(fd, write_err.is_none())))
    }

    fn clone_range(
        &self,
        src: &ObjHandle,
        src_offset: u64,
        dst: &ObjHandle,
        dst_offset: u64,
        count: u64,
    ) -> FsResult<()> {
        let from = self.file(src)?;
        let to = self.writable_file(dst)?;
        sys::clone_range(
            from.fd.as_fd(),
            src_offset,
            to.fd.as_fd(),
            dst_offset,
            count,
        )
    }

    fn copy_step(
        &self,
        src: &ObjHandle,
        src_offset: u64,
        dst: &ObjHandle,
        dst_offset: u64,
        len: u64,
    ) -> FsResult<u64> {
        let from = self.file(src)?;
        let to = self.writable_file(dst)?;
        sys::copy_file_range(from.fd.as_fd(), src_offset, to.fd.as_fd(), dst_offset, len)
    }

    fn clone_blksize(&self) -> u32 {
        // FICLONERANGE works in whole blocks of the file system.
        self.block_size
    }

    fn getxattr(&self, h: &ObjHandle, name: &[u8], caller: &Caller) -> FsResult<Vec<u8>> {
        self.get_xattr(h, name, caller)
    }

    fn setxattr(
        &self,
        h: &ObjHandle,
        name: &[u8],
        value: &[u8],
        how: crate::XattrSet,
        caller: &Caller,
    ) -> FsResult<()> {
        self.set_xattr(h, name, value, how, caller)
    }

    fn listxattrs(&self, h: &ObjHandle, caller: &Caller) -> FsResult<Vec<Vec<u8>>> {
        self.list_xattrs(h, caller)
    }

    fn removexattr(&self, h: &ObjHandle, name: &[u8], caller: &Caller) -> FsResult<()> {
        self.remove_xattr(h, name, caller)
    }

    fn seek(&self, h: &ObjHandle, offset: u64, data: bool) -> FsResult<Option<u64>> {
        sys::seek_data_hole(self.file(h)?.fd.as_fd(), offset, data)
    }

    fn allocate(&self, h: &ObjHandle, offset: u64, length: u64) -> FsResult<()> {
        let f = self.writable_file(h)?;
        sys::fallocate(f.fd.as_fd(), 0, offset, length)
    }

    fn deallocate(&self, h: &ObjHandle, offset: u64, length: u64) -> FsResult<()> {
        let f = self.writable_file(h)?;
        let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
        sys::fallocate(f.fd.as_fd(), mode, offset, length)
    }

    fn direct_file(&self, h: &ObjHandle) -> Option<crate::DirectFile> {
        self.file(h).ok()?.direct()
    }

    fn statfs(&self) -> FsResult<FsStats> {
        let s = sys::fstatvfs(self.rootfd())?;
        let frsize = s.f_frsize as u64;
        Ok(FsStats {
            total_bytes: (s.f_blocks as u64).saturating_mul(frsize),
            free_bytes: (s.f_bfree as u64).saturating_mul(frsize),
            avail_bytes: (s.f_bavail as u64).saturating_mul(frsize),
            total_files: s.f_files as u64,
            free_files: s.f_ffree as u64,
            avail_files: s.f_favail as u64,
        })
    }
}
