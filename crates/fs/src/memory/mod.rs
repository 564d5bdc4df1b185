//! The memory backend: every object lives in RAM and vanishes with the process. Used by
//! tests and by pure-protocol benchmarks, where a real disk would only add noise.
//!
//! Objects are inodes in one map keyed by fileid (never reused within a process). A
//! handle is `fileid (8 bytes LE) ‖ generation (8 bytes LE)`, where the generation is
//! random per backend instance, so handles from another instance (or an earlier run)
//! are `Stale` rather than silently naming some other object.
//!
//! Locking: one `parking_lot::RwLock` over the whole tree. Every operation takes it
//! once, for a short critical section (lookups and attribute reads share it; the
//! longest holder is a WRITE copying its payload, at most the negotiated max request
//! size). There is no second lock, so there is no lock order to get wrong; rename and
//! link, which touch several inodes, are atomic for free.
//!
//! File data is sparse: 64 KiB chunks in a `BTreeMap`, each a `Vec` only as long as the
//! furthest byte written into it. A 1-byte write at offset 1 TiB costs one byte, not a
//! terabyte, and holes read as zeros. Capacity accounting counts the bytes held in
//! chunks plus symlink targets. A WRITE that covers a whole chunk (from its start past
//! its data) from a received record of its own keeps a slice of that record as the
//! chunk instead of copying it; a later partial write into such a chunk copies it first.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use ringnfs_service::Bytes;

mod data;
mod xattr;
use data::{CHUNK, FileData};
use xattr::Xattrs;

use super::{
    Attrs, Backend, Caller, CreateKind, DirEntry, FileType, FsError, FsResult, FsStats, ObjHandle,
    SetAttrs, SetTime, Stability, Timespec, XattrSet,
};

/// Fileid of the export root (0 is avoided: some clients treat it as "no fileid").
const ROOT_ID: u64 = 1;
/// Cookies 0, 1 and 2 mean "start", ".", ".." to NFS clients, so entries start at 3.
const FIRST_COOKIE: u64 = 3;
/// Size reported for directories (like ext4's first block; clients only display it).
const DIR_SIZE: u64 = 4096;
const HANDLE_LEN: usize = 16;
/// Longest symlink target accepted (Linux PATH_MAX including the NUL).
const SYMLINK_MAX: usize = 4095;
/// Total bytes reported by `statfs` when the capacity is unlimited (1 PiB).
const UNLIMITED_REPORT: u64 = 1 << 50;

/// Permission bits as used by [`may`] (one class: rwx; read is checked for extended
/// attributes only: READ's access is the NFS layer's).
const R_OK: u32 = 4;
const W_OK: u32 = 2;
const X_OK: u32 = 1;
const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;

/// Distinguishes instances in `fsid` (two memory exports in one process must differ).
static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

/// Limits and the export root's ownership for a [`MemoryBackend`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryOptions {
    /// Total bytes of file data and symlink targets; `None` = unlimited. Writes that
    /// would exceed it fail with `NoSpc` (nothing is written).
    pub capacity_bytes: Option<u64>,
    /// Largest file size; writes or truncates beyond it fail with `FBig`.
    pub max_file_size: u64,
    /// Most objects (inodes, the root included); creating more fails with `NoSpc`.
    pub max_files: u64,
    /// Mode bits of the export root (07777).
    pub root_mode: u32,
    pub root_uid: u32,
    pub root_gid: u32,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        MemoryOptions {
            capacity_bytes: None,
            max_file_size: 1 << 40,
            max_files: 1 << 32,
            root_mode: 0o755,
            root_uid: 0,
            root_gid: 0,
        }
    }
}

/// A file system held entirely in RAM. See the module docs.
pub struct MemoryBackend {
    opts: MemoryOptions,
    generation: u64,
    instance: u64,
    tree: RwLock<Tree>,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new(MemoryOptions::default())
    }
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("opts", &self.opts)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

struct Dir {
    /// The parent directory; the root is its own parent.
    parent: u64,
    next_cookie: u64,
    /// Cookie order is READDIR order; cookies are never reused, so a cookie held by a
    /// client whose entry was removed still marks a position.
    by_cookie: BTreeMap<u64, Vec<u8>>,
    by_name: HashMap<Vec<u8>, (u64, u64)>,
}

enum Content {
    File(FileData),
    Dir(Dir),
    Symlink(Vec<u8>),
    /// Devices, fifos and sockets: all they have is in `Attrs` (type, rdev).
    Special,
}

struct Inode {
    /// Authoritative except `space_used`, which is derived from the content.
    attrs: Attrs,
    content: Content,
    xattrs: Xattrs,
}

struct Tree {
    inodes: HashMap<u64, Inode>,
    next_fileid: u64,
    /// Bytes counted against `capacity_bytes`.
    used_bytes: u64,
}

/// `inode` if it may carry `user.` extended attributes: regular files and directories
/// (Linux refuses them elsewhere with EPERM).
fn xattr_target(inode: &Inode) -> FsResult<&Inode> {
    match inode.content {
        Content::File(_) | Content::Dir(_) => Ok(inode),
        _ => Err(FsError::Perm),
    }
}

/// The regular file data of `c`.
fn file_data(c: &mut Content) -> FsResult<&mut FileData> {
    match c {
        Content::File(d) => Ok(d),
        Content::Dir(_) => Err(FsError::IsDir),
        _ => Err(FsError::Inval),
    }
}

/// The end of an ALLOCATE/DEALLOCATE range, as fallocate(2) judges it: an empty range
/// is `Inval`, one past `max` (or past the largest offset) `FBig`.
fn space_range(offset: u64, length: u64, max: u64) -> FsResult<u64> {
    if length == 0 {
        return Err(FsError::Inval);
    }
    match offset.checked_add(length) {
        Some(end) if end <= max && end <= i64::MAX as u64 => Ok(end),
        _ => Err(FsError::FBig),
    }
}

/// RAM available now (`MemAvailable` in /proc/meminfo), 0 if it cannot be read.
fn free_ram() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse::<u64>().ok())
        .map_or(0, |kib| kib.saturating_mul(1024))
}

// ---------------------------------------------------------------------------------
// Permissions (pure functions over attributes, Linux generic_permission rules)

/// Whether `caller` has all of `want` (rwx bits) on an object with attributes `a`.
/// Root passes read/write always and execute when any execute bit is set (always on
/// directories). Others get exactly one class: owner, else group, else other.
fn may(caller: &Caller, a: &Attrs, want: u32) -> bool {
    caller.perm_bits(a) & want == want
}

fn require(caller: &Caller, a: &Attrs, want: u32) -> FsResult<()> {
    if may(caller, a, want) {
        Ok(())
    } else {
        Err(FsError::Access)
    }
}

fn owner_or_root(caller: &Caller, a: &Attrs) -> bool {
    caller.uid == 0 || caller.uid == a.uid
}

/// In a sticky directory only root and the owners of the entry or of the directory
/// may remove or rename the entry (Linux answers EPERM).
fn check_sticky(caller: &Caller, dir: &Attrs, victim: &Attrs) -> FsResult<()> {
    if dir.mode & S_ISVTX == 0 || owner_or_root(caller, dir) || caller.uid == victim.uid {
        Ok(())
    } else {
        Err(FsError::Perm)
    }
}

/// May `caller` apply `set` to an object with attributes `a`? Mirrors Linux
/// `setattr_prepare` (EPERM for ownership/mode/explicit times) and the EACCES cases
/// (truncate without write permission, "touch" without ownership or write).
fn check_setattr(a: &Attrs, set: &SetAttrs, caller: &Caller, max_size: u64) -> FsResult<()> {
    if let Some(size) = set.size {
        match a.ftype {
            FileType::Regular => {}
            FileType::Directory => return Err(FsError::IsDir),
            _ => return Err(FsError::Inval),
        }
        if size > max_size {
            return Err(FsError::FBig);
        }
        require(caller, a, W_OK)?;
    }
    if set.mode.is_some() && !owner_or_root(caller, a) {
        return Err(FsError::Perm);
    }
    if let Some(uid) = set.uid {
        // Only root gives files away; the owner may "change" to the same uid.
        if caller.uid != 0 && !(caller.uid == a.uid && uid == a.uid) {
            return Err(FsError::Perm);
        }
    }
    if let Some(gid) = set.gid {
        let owner_ok = caller.uid == a.uid && (gid == a.gid || caller.in_group(gid));
        if caller.uid != 0 && !owner_ok {
            return Err(FsError::Perm);
        }
    }
    check_times(a, set, caller)
}

fn check_initial_size(ftype: FileType, size: Option<u64>, max_size: u64) -> FsResult<()> {
    match size {
        Some(_) if ftype != FileType::Regular => Err(FsError::Inval),
        Some(s) if s > max_size => Err(FsError::FBig),
        _ => Ok(()),
    }
}

fn check_times(a: &Attrs, set: &SetAttrs, caller: &Caller) -> FsResult<()> {
    let times = [set.atime, set.mtime];
    let explicit = times.iter().any(|t| matches!(t, Some(SetTime::Client(_))));
    let now = times.iter().any(|t| matches!(t, Some(SetTime::ServerNow)));
    if explicit && !owner_or_root(caller, a) {
        return Err(FsError::Perm);
    }
    if now && !owner_or_root(caller, a) && !may(caller, a, W_OK) {
        return Err(FsError::Access);
    }
    Ok(())
}

/// Mode after chmod: set-group-id is dropped when a non-root caller is not in the
/// file's group (Linux), so nobody can gain a group they do not have.
fn chmod_bits(mode: u32, gid: u32, caller: &Caller) -> u32 {
    let mode = mode & 0o7777;
    if caller.uid != 0 && !caller.in_group(gid) {
        mode & !S_ISGID
    } else {
        mode
    }
}

/// Mode after a change of owner or group of a non-directory: set-user-id always goes,
/// set-group-id when it means "setgid" (group execute set) rather than mandatory
/// locking (knfsd `nfsd_sanitize_attrs`).
fn kill_suid(mode: u32) -> u32 {
    let mut mode = mode & !S_ISUID;
    if mode & 0o010 != 0 {
        mode &= !S_ISGID;
    }
    mode
}

fn resolve(t: SetTime, now: Timespec) -> Timespec {
    match t {
        SetTime::ServerNow => now,
        SetTime::Client(ts) => ts,
    }
}

// ---------------------------------------------------------------------------------
// Tree

impl Inode {
    fn attrs(&self) -> Attrs {
        let mut a = self.attrs;
        a.space_used = match &self.content {
            Content::File(d) => d.allocated,
            Content::Dir(_) => DIR_SIZE,
            Content::Symlink(t) => t.len() as u64,
            Content::Special => 0,
        };
        a
    }

    fn dir(&self) -> FsResult<&Dir> {
        match &self.content {
            Content::Dir(d) => Ok(d),
            _ => Err(FsError::NotDir),
        }
    }

    /// Record a change to the object itself (metadata).
    fn touch_ctime(&mut self, now: Timespec) {
        self.attrs.ctime = now;
        self.attrs.change += 1;
    }

    /// Record a change to the object's content (data or directory entries).
    fn touch_mtime(&mut self, now: Timespec) {
        self.attrs.mtime = now;
        self.touch_ctime(now);
    }
}

impl Tree {
    fn get(&self, id: u64) -> FsResult<&Inode> {
        self.inodes.get(&id).ok_or(FsError::Stale)
    }

    fn get_mut(&mut self, id: u64) -> FsResult<&mut Inode> {
        self.inodes.get_mut(&id).ok_or(FsError::Stale)
    }

    fn dir_mut(&mut self, id: u64) -> FsResult<&mut Dir> {
        match &mut self.get_mut(id)?.content {
            Content::Dir(d) => Ok(d),
            _ => Err(FsError::NotDir),
        }
    }

    /// Attributes of directory `id` (`NotDir` for anything else).
    fn dir_attrs(&self, id: u64) -> FsResult<Attrs> {
        let inode = self.get(id)?;
        inode.dir()?;
        Ok(inode.attrs)
    }

    /// `(cookie, fileid)` of `name` in directory `dir`.
    fn entry(&self, dir: u64, name: &[u8]) -> FsResult<Option<(u64, u64)>> {
        Ok(self.get(dir)?.dir()?.by_name.get(name).copied())
    }

    /// Add `name → child` to `dir`, with `cookie` or a fresh one. The caller checked
    /// that the name is free. Updates the directory's times.
    fn add_entry(
        &mut self,
        dir: u64,
        name: &[u8],
        child: u64,
        cookie: Option<u64>,
        now: Timespec,
    ) -> FsResult<()> {
        let d = self.dir_mut(dir)?;
        let cookie = cookie.unwrap_or_else(|| {
            let c = d.next_cookie;
            d.next_cookie += 1;
            c
        });
        d.by_cookie.insert(cookie, name.to_vec());
        d.by_name.insert(name.to_vec(), (cookie, child));
        self.get_mut(dir)?.touch_mtime(now);
        Ok(())
    }

    /// Remove `name` from `dir`, returning its cookie. Updates the directory's times.
    fn remove_entry(&mut self, dir: u64, name: &[u8], now: Timespec) -> FsResult<u64> {
        let d = self.dir_mut(dir)?;
        let (cookie, _) = d.by_name.remove(name).ok_or(FsError::NoEnt)?;
        d.by_cookie.remove(&cookie);
        self.get_mut(dir)?.touch_mtime(now);
        Ok(cookie)
    }

    /// One name of `id` is gone: drop the inode when no name is left (a directory
    /// loses its only name at once, and its parent a link).
    fn drop_link(&mut self, id: u64, now: Timespec) -> FsResult<()> {
        let inode = self.get_mut(id)?;
        if let Content::Dir(d) = &inode.content {
            let parent = d.parent;
            self.inodes.remove(&id);
            let p = self.get_mut(parent)?;
            p.attrs.nlink = p.attrs.nlink.saturating_sub(1);
            return Ok(());
        }
        inode.attrs.nlink = inode.attrs.nlink.saturating_sub(1);
        inode.touch_ctime(now);
        if inode.attrs.nlink == 0
            && let Some(gone) = self.inodes.remove(&id)
        {
            self.used_bytes -= charged_bytes(&gone.content);
        }
        Ok(())
    }

    /// Whether `ancestor` is `id` or one of its ancestors.
    fn is_ancestor(&self, ancestor: u64, mut id: u64) -> bool {
        // Bounded walk: the tree never has cycles, but a bug must not hang a worker.
        for _ in 0..=self.inodes.len() {
            if id == ancestor {
                return true;
            }
            match self.get(id).and_then(Inode::dir) {
                Ok(d) if d.parent != id => id = d.parent,
                _ => return false,
            }
        }
        false
    }
}

/// Bytes an object holds against the capacity.
fn charged_bytes(c: &Content) -> u64 {
    match c {
        Content::File(d) => d.allocated,
        Content::Symlink(t) => t.len() as u64,
        Content::Dir(_) | Content::Special => 0,
    }
}

fn new_dir(parent: u64) -> Dir {
    Dir {
        parent,
        next_cookie: FIRST_COOKIE,
        by_cookie: BTreeMap::new(),
        by_name: HashMap::new(),
    }
}

fn new_attrs(ftype: FileType, fileid: u64, now: Timespec) -> Attrs {
    Attrs {
        ftype,
        mode: 0,
        nlink: if ftype == FileType::Directory { 2 } else { 1 },
        uid: 0,
        gid: 0,
        size: 0,
        space_used: 0,
        atime: now,
        mtime: now,
        ctime: now,
        fileid,
        rdev: (0, 0),
        change: 1,
    }
}

// ---------------------------------------------------------------------------------
// Backend

impl MemoryBackend {
    /// WRITE's body for both entry points (`shared`: the data as a record slice).
    fn write_data(
        &self,
        h: &ObjHandle,
        offset: u64,
        data: &[u8],
        shared: Option<&Bytes>,
    ) -> FsResult<(u32, Stability)> {
        let id = self.fileid(h)?;
        let len = u32::try_from(data.len()).map_err(|_| FsError::Inval)?;
        let end = offset.checked_add(u64::from(len)).ok_or(FsError::FBig)?;
        let now = Timespec::now();
        let mut t = self.tree.write();
        let used = t.used_bytes;
        let inode = t.get_mut(id)?;
        let file = match &mut inode.content {
            Content::File(d) => d,
            Content::Dir(_) => return Err(FsError::IsDir),
            _ => return Err(FsError::Inval),
        };
        if end > self.opts.max_file_size {
            return Err(FsError::FBig);
        }
        if len == 0 {
            // POSIX: a zero-length write changes nothing, times included.
            return Ok((0, Stability::FileSync));
        }
        let growth = file.growth(offset, u64::from(len));
        if self
            .opts
            .capacity_bytes
            .is_some_and(|cap| used.saturating_add(growth) > cap)
        {
            return Err(FsError::NoSpc);
        }
        file.write(offset, data, shared);
        inode.attrs.size = inode.attrs.size.max(end);
        inode.touch_mtime(now);
        t.used_bytes += growth;
        // RAM is as stable as this backend gets: report FILE_SYNC so clients skip COMMIT.
        Ok((len, Stability::FileSync))
    }

    pub fn new(opts: MemoryOptions) -> Self {
        let now = Timespec::now();
        let mut root = new_attrs(FileType::Directory, ROOT_ID, now);
        root.mode = opts.root_mode & 0o7777;
        root.uid = opts.root_uid;
        root.gid = opts.root_gid;
        root.size = DIR_SIZE;
        let mut inodes = HashMap::new();
        inodes.insert(
            ROOT_ID,
            Inode {
                attrs: root,
                content: Content::Dir(new_dir(ROOT_ID)),
                xattrs: Xattrs::default(),
            },
        );
        MemoryBackend {
            opts,
            generation: rand::random(),
            instance: NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed),
            tree: RwLock::new(Tree {
                inodes,
                next_fileid: ROOT_ID + 1,
                used_bytes: 0,
            }),
        }
    }

    fn handle(&self, fileid: u64) -> ObjHandle {
        let mut b = [0u8; HANDLE_LEN];
        b[..8].copy_from_slice(&fileid.to_le_bytes());
        b[8..].copy_from_slice(&self.generation.to_le_bytes());
        // 16 bytes always fit in ObjHandle::MAX; the fallback is unreachable.
        ObjHandle::new(&b).unwrap_or_else(|| unreachable!("handle longer than ObjHandle::MAX"))
    }

    /// The fileid in `h`: `BadHandle` if malformed, `Stale` if from another instance.
    /// Whether the object still exists is checked when the tree is consulted.
    fn fileid(&self, h: &ObjHandle) -> FsResult<u64> {
        let b = h.as_bytes();
        if b.len() != HANDLE_LEN {
            return Err(FsError::BadHandle);
        }
        let (id, generation) = b.split_at(8);
        let id = u64::from_le_bytes(id.try_into().map_err(|_| FsError::BadHandle)?);
        let generation = u64::from_le_bytes(generation.try_into().map_err(|_| FsError::BadHandle)?);
        if generation != self.generation || id == 0 {
            return Err(FsError::Stale);
        }
        Ok(id)
    }

    /// Check the creation preconditions in `dir` (search and write permission, name
    /// free). Returns the directory's attributes.
    fn check_create(&self, t: &Tree, dir: u64, name: &[u8], caller: &Caller) -> FsResult<Attrs> {
        let da = t.dir_attrs(dir)?;
        require(caller, &da, X_OK)?;
        if t.entry(dir, name)?.is_some() {
            return Err(FsError::Exist);
        }
        require(caller, &da, W_OK)?;
        if t.inodes.len() as u64 >= self.opts.max_files {
            return Err(FsError::NoSpc);
        }
        Ok(da)
    }

    /// Make a new object named `name` in `dir` (preconditions already checked) and
    /// apply the initial attributes. Returns its fileid.
    fn insert_new(
        &self,
        t: &mut Tree,
        dir: (u64, &Attrs),
        name: &[u8],
        obj: NewObj,
        set: &SetAttrs,
        caller: &Caller,
    ) -> FsResult<u64> {
        let now = Timespec::now();
        let (dir, da) = dir;
        let NewObj {
            mut content,
            ftype,
            rdev,
        } = obj;
        if let Content::Dir(d) = &mut content {
            d.parent = dir;
        }
        let mut a = new_attrs(ftype, t.next_fileid, now);
        a.rdev = rdev;
        a.uid = caller.uid;
        // BSD group semantics in setgid directories (new subdirectories inherit it).
        let setgid_dir = da.mode & S_ISGID != 0;
        a.gid = if setgid_dir { da.gid } else { caller.gid };
        let default_mode = match ftype {
            FileType::Directory => 0o755,
            FileType::Symlink => 0o777,
            _ => 0o644,
        };
        a.mode = chmod_bits(set.mode.unwrap_or(default_mode), a.gid, caller);
        if setgid_dir && ftype == FileType::Directory {
            a.mode |= S_ISGID;
        }
        let rest = SetAttrs { mode: None, ..*set };
        // An initial size needs no write permission (O_CREAT|O_TRUNC with mode 0444
        // must work), so it is checked apart from the other attributes.
        check_initial_size(ftype, set.size, self.opts.max_file_size)?;
        let owner_bits = SetAttrs { size: None, ..rest };
        check_setattr(&a, &owner_bits, caller, self.opts.max_file_size)?;
        match &content {
            Content::Dir(_) => a.size = DIR_SIZE,
            Content::Symlink(target) => a.size = target.len() as u64,
            _ => {}
        }
        let id = t.next_fileid;
        t.next_fileid += 1;
        t.used_bytes += charged_bytes(&content);
        let mut inode = Inode {
            attrs: a,
            content,
            xattrs: Xattrs::default(),
        };
        apply_setattr(&mut inode, &rest, caller, now);
        // Initial owner/group are not a "chown": the requested mode stays intact.
        inode.attrs.mode = a.mode;
        inode.attrs.ctime = now;
        inode.attrs.change = 1;
        t.inodes.insert(id, inode);
        t.add_entry(dir, name, id, None, now)?;
        if ftype == FileType::Directory {
            t.get_mut(dir)?.attrs.nlink += 1;
        }
        Ok(id)
    }

    fn make_content(&self, t: &Tree, kind: &CreateKind, caller: &Caller) -> FsResult<NewObj> {
        let (content, ftype, rdev) = match kind {
            // The parent is filled in by `insert_new`.
            CreateKind::Directory => (Content::Dir(new_dir(0)), FileType::Directory, (0, 0)),
            CreateKind::Symlink(target) => {
                if target.is_empty() || target.contains(&0) {
                    return Err(FsError::Inval);
                }
                if target.len() > SYMLINK_MAX {
                    return Err(FsError::NameTooLong);
                }
                self.reserve(t, target.len() as u64)?;
                (Content::Symlink(target.clone()), FileType::Symlink, (0, 0))
            }
            // Device nodes need CAP_MKNOD on Linux.
            CreateKind::Block(..) | CreateKind::Char(..) if caller.uid != 0 => {
                return Err(FsError::Perm);
            }
            CreateKind::Block(ma, mi) => (Content::Special, FileType::Block, (*ma, *mi)),
            CreateKind::Char(ma, mi) => (Content::Special, FileType::Char, (*ma, *mi)),
            CreateKind::Fifo => (Content::Special, FileType::Fifo, (0, 0)),
            CreateKind::Socket => (Content::Special, FileType::Socket, (0, 0)),
        };
        Ok(NewObj {
            content,
            ftype,
            rdev,
        })
    }

    /// Change the extended attributes of `h` with `f`, as `caller` (write permission),
    /// recording the change.
    fn change_xattrs(
        &self,
        h: &ObjHandle,
        caller: &Caller,
        f: impl FnOnce(&mut Xattrs) -> FsResult<()>,
    ) -> FsResult<()> {
        let id = self.fileid(h)?;
        let now = Timespec::now();
        let mut t = self.tree.write();
        let inode = t.get_mut(id)?;
        xattr_target(inode)?;
        require(caller, &inode.attrs, W_OK)?;
        f(&mut inode.xattrs)?;
        inode.touch_ctime(now);
        Ok(())
    }

    /// `NoSpc` unless `more` bytes fit in the capacity.
    fn reserve(&self, t: &Tree, more: u64) -> FsResult<()> {
        match self.opts.capacity_bytes {
            Some(cap) if t.used_bytes.saturating_add(more) > cap => Err(FsError::NoSpc),
            _ => Ok(()),
        }
    }

    /// The checks of `rename` that need no mutation: permissions, sticky bits, types,
    /// subtree. Returns `None` when source and target are the same object (a no-op).
    fn check_rename(
        &self,
        t: &Tree,
        r: &RenameArgs,
        caller: &Caller,
    ) -> FsResult<Option<Renaming>> {
        let fa = t.dir_attrs(r.from_dir)?;
        let ta = t.dir_attrs(r.to_dir)?;
        require(caller, &fa, X_OK)?;
        require(caller, &ta, X_OK)?;
        let (_, src) = t.entry(r.from_dir, r.from)?.ok_or(FsError::NoEnt)?;
        let dst = t.entry(r.to_dir, r.to)?;
        if dst.is_some_and(|(_, d)| d == src) {
            return Ok(None);
        }
        require(caller, &fa, W_OK)?;
        require(caller, &ta, W_OK)?;
        let sa = t.get(src)?.attrs;
        check_sticky(caller, &fa, &sa)?;
        let src_is_dir = sa.ftype == FileType::Directory;
        if let Some((_, d)) = dst {
            let dst_inode = t.get(d)?;
            check_sticky(caller, &ta, &dst_inode.attrs)?;
            match (&dst_inode.content, src_is_dir) {
                (Content::Dir(_), false) => return Err(FsError::IsDir),
                (Content::Dir(dd), true) if !dd.by_name.is_empty() => {
                    return Err(FsError::NotEmpty);
                }
                (Content::Dir(_), true) => {}
                (_, true) => return Err(FsError::NotDir),
                (_, false) => {}
            }
        }
        if src_is_dir {
            if t.is_ancestor(src, r.to_dir) {
                return Err(FsError::Inval);
            }
            // Moving a directory rewrites its "..", which needs write permission on it.
            if r.from_dir != r.to_dir {
                require(caller, &sa, W_OK)?;
            }
        }
        Ok(Some(Renaming {
            src,
            src_is_dir,
            dst,
        }))
    }
}

/// An object about to be created.
struct NewObj {
    content: Content,
    ftype: FileType,
    rdev: (u32, u32),
}

struct RenameArgs<'a> {
    from_dir: u64,
    from: &'a [u8],
    to_dir: u64,
    to: &'a [u8],
}

/// A rename that passed its checks.
struct Renaming {
    src: u64,
    src_is_dir: bool,
    dst: Option<(u64, u64)>,
}

/// Apply an already-checked `set` to `inode` (size, mode, owner, times).
fn apply_setattr(inode: &mut Inode, set: &SetAttrs, caller: &Caller, now: Timespec) -> u64 {
    let mut freed = 0;
    let a = &mut inode.attrs;
    if let Some(size) = set.size {
        if let Content::File(d) = &mut inode.content {
            freed = d.truncate(size);
        }
        a.size = size;
        a.mtime = now;
    }
    if let Some(gid) = set.gid {
        a.gid = gid;
    }
    if let Some(uid) = set.uid {
        a.uid = uid;
    }
    if let Some(mode) = set.mode {
        a.mode = chmod_bits(mode, a.gid, caller);
    }
    if (set.uid.is_some() || set.gid.is_some()) && a.ftype != FileType::Directory {
        a.mode = kill_suid(a.mode);
    }
    if let Some(t) = set.atime {
        a.atime = resolve(t, now);
    }
    if let Some(t) = set.mtime {
        a.mtime = resolve(t, now);
    }
    freed
}

impl Backend for MemoryBackend {
    fn root(&self) -> ObjHandle {
        self.handle(ROOT_ID)
    }

    fn fsid(&self) -> (u64, u64) {
        (0x6d656d, self.instance)
    }

    fn getattr(&self, h: &ObjHandle) -> FsResult<Attrs> {
        let id = self.fileid(h)?;
        Ok(self.tree.read().get(id)?.attrs())
    }

    fn setattr(&self, h: &ObjHandle, set: &SetAttrs, caller: &Caller) -> FsResult<Attrs> {
        let id = self.fileid(h)?;
        let now = Timespec::now();
        let mut t = self.tree.write();
        let inode = t.get_mut(id)?;
        check_setattr(&inode.attrs, set, caller, self.opts.max_file_size)?;
        if set.is_empty() {
            return Ok(inode.attrs());
        }
        let freed = apply_setattr(inode, set, caller, now);
        inode.touch_ctime(now);
        let attrs = inode.attrs();
        t.used_bytes -= freed;
        Ok(attrs)
    }

    fn lookup(&self, dir: &ObjHandle, name: &[u8]) -> FsResult<ObjHandle> {
        let id = self.fileid(dir)?;
        let t = self.tree.read();
        let (_, child) = t.entry(id, name)?.ok_or(FsError::NoEnt)?;
        Ok(self.handle(child))
    }

    fn lookup_parent(&self, dir: &ObjHandle) -> FsResult<ObjHandle> {
        let id = self.fileid(dir)?;
        let t = self.tree.read();
        let parent = t.get(id)?.dir()?.parent;
        if id == ROOT_ID {
            return Err(FsError::NoEnt);
        }
        Ok(self.handle(parent))
    }

    fn read(&self, h: &ObjHandle, offset: u64, count: u32, buf: &mut Vec<u8>) -> FsResult<bool> {
        let id = self.fileid(h)?;
        let t = self.tree.read();
        let inode = t.get(id)?;
        match &inode.content {
            Content::File(d) => Ok(d.read(inode.attrs.size, offset, count, buf)),
            Content::Dir(_) => Err(FsError::IsDir),
            _ => Err(FsError::Inval),
        }
    }

    fn write(
        &self,
        h: &ObjHandle,
        offset: u64,
        data: &[u8],
        _stable: Stability,
    ) -> FsResult<(u32, Stability)> {
        self.write_data(h, offset, data, None)
    }

    fn write_shared(
        &self,
        h: &ObjHandle,
        offset: u64,
        data: &Bytes,
        _stable: Stability,
    ) -> FsResult<(u32, Stability)> {
        self.write_data(h, offset, data, Some(data))
    }

    fn commit(&self, h: &ObjHandle) -> FsResult<()> {
        let id = self.fileid(h)?;
        self.tree.read().get(id).map(|_| ())
    }

    fn clone_range(
        &self,
        src: &ObjHandle,
        src_offset: u64,
        dst: &ObjHandle,
        dst_offset: u64,
        count: u64,
    ) -> FsResult<()> {
        let (src_id, dst_id) = (self.fileid(src)?, self.fileid(dst)?);
        let now = Timespec::now();
        let mut t = self.tree.write();
        let used = t.used_bytes;
        // What to put: whole chunks (shared, not copied, when they are record slices)
        // and the bytes of a last partial chunk.
        let (len, copies, tail) = {
            let inode = t.get(src_id)?;
            let size = inode.attrs.size;
            let Content::File(data) = &inode.content else {
                return Err(match inode.content {
                    Content::Dir(_) => FsError::IsDir,
                    _ => FsError::Inval,
                });
            };
            let end = if count == 0 {
                size
            } else {
                src_offset.checked_add(count).ok_or(FsError::Inval)?
            };
            if src_offset > size || end > size {
                return Err(FsError::Inval);
            }
            let len = end - src_offset;
            let aligned = |x: u64| x.is_multiple_of(CHUNK);
            if !aligned(src_offset) || !aligned(dst_offset) || !(aligned(len) || end == size) {
                return Err(FsError::Inval);
            }
            if src_id == dst_id && src_offset < dst_offset + len && dst_offset < end {
                return Err(FsError::Inval);
            }
            let first = src_offset / CHUNK;
            let copies: Vec<_> = (0..len / CHUNK)
                .map(|i| data.chunk_copy(first + i))
                .collect();
            let mut tail = Vec::new();
            data.read(size, end - len % CHUNK, (len % CHUNK) as u32, &mut tail);
            (len, copies, tail)
        };
        let end = dst_offset.checked_add(len).ok_or(FsError::FBig)?;
        if end > self.opts.max_file_size {
            return Err(FsError::FBig);
        }
        let inode = t.get_mut(dst_id)?;
        let data = file_data(&mut inode.content)?;
        let first = dst_offset / CHUNK;
        let tail_at = dst_offset + (copies.len() as u64) * CHUNK;
        let growth = data.put_growth(first, &copies) + data.growth(tail_at, tail.len() as u64);
        if self
            .opts
            .capacity_bytes
            .is_some_and(|cap| used.saturating_add(growth) > cap)
        {
            return Err(FsError::NoSpc);
        }
        let before = data.allocated;
        data.put_chunks(first, copies);
        data.write(tail_at, &tail, None);
        let after = data.allocated;
        inode.attrs.size = inode.attrs.size.max(end);
        inode.touch_mtime(now);
        // `used_bytes` counts this file's `before` among the rest.
        t.used_bytes = t.used_bytes + after - before;
        Ok(())
    }

    fn clone_blksize(&self) -> u32 {
        CHUNK as u32
    }

    fn copy_step(
        &self,
        src: &ObjHandle,
        src_offset: u64,
        dst: &ObjHandle,
        dst_offset: u64,
        len: u64,
    ) -> FsResult<u64> {
        let mut buf = Vec::new();
        let count = u32::try_from(len.min(u64::from(u32::MAX))).unwrap_or(u32::MAX);
        self.read(src, src_offset, count, &mut buf)?;
        if buf.is_empty() {
            return Ok(0);
        }
        let (n, _) = self.write_data(dst, dst_offset, &buf, None)?;
        Ok(u64::from(n))
    }

    fn getxattr(&self, h: &ObjHandle, name: &[u8], caller: &Caller) -> FsResult<Vec<u8>> {
        let id = self.fileid(h)?;
        let t = self.tree.read();
        let inode = xattr_target(t.get(id)?)?;
        require(caller, &inode.attrs, R_OK)?;
        inode.xattrs.get(name)
    }

    fn setxattr(
        &self,
        h: &ObjHandle,
        name: &[u8],
        value: &[u8],
        how: XattrSet,
        caller: &Caller,
    ) -> FsResult<()> {
        self.change_xattrs(h, caller, |x| x.set(name, value, how))
    }

    fn listxattrs(&self, h: &ObjHandle, caller: &Caller) -> FsResult<Vec<Vec<u8>>> {
        let id = self.fileid(h)?;
        let t = self.tree.read();
        let inode = xattr_target(t.get(id)?)?;
        require(caller, &inode.attrs, R_OK)?;
        Ok(inode.xattrs.names())
    }

    fn removexattr(&self, h: &ObjHandle, name: &[u8], caller: &Caller) -> FsResult<()> {
        self.change_xattrs(h, caller, |x| x.remove(name))
    }

    fn seek(&self, h: &ObjHandle, offset: u64, data: bool) -> FsResult<Option<u64>> {
        let id = self.fileid(h)?;
        let t = self.tree.read();
        let inode = t.get(id)?;
        match &inode.content {
            Content::File(d) => Ok(d.seek(inode.attrs.size, offset, data)),
            Content::Dir(_) => Err(FsError::IsDir),
            _ => Err(FsError::Inval),
        }
    }

    fn allocate(&self, h: &ObjHandle, offset: u64, length: u64) -> FsResult<()> {
        let id = self.fileid(h)?;
        let end = space_range(offset, length, self.opts.max_file_size)?;
        let now = Timespec::now();
        let mut t = self.tree.write();
        let used = t.used_bytes;
        let inode = t.get_mut(id)?;
        let file = file_data(&mut inode.content)?;
        let growth = file.allocate_growth(offset, end);
        let fits = match self.opts.capacity_bytes {
            Some(cap) => used.saturating_add(growth) <= cap,
            // Unlimited: still never more than half of the RAM free now in one go.
            None => growth <= free_ram() / 2,
        };
        if !fits {
            return Err(FsError::NoSpc);
        }
        file.allocate(offset, end);
        inode.attrs.size = inode.attrs.size.max(end);
        inode.touch_mtime(now);
        t.used_bytes += growth;
        Ok(())
    }

    fn deallocate(&self, h: &ObjHandle, offset: u64, length: u64) -> FsResult<()> {
        let id = self.fileid(h)?;
        let end = space_range(offset, length, u64::MAX)?;
        let now = Timespec::now();
        let mut t = self.tree.write();
        let inode = t.get_mut(id)?;
        let size = inode.attrs.size;
        let freed = file_data(&mut inode.content)?.deallocate(offset, end.min(size));
        inode.touch_mtime(now);
        t.used_bytes -= freed;
        Ok(())
    }

    fn create_file(
        &self,
        dir: &ObjHandle,
        name: &[u8],
        attrs: &SetAttrs,
        exclusive: bool,
        caller: &Caller,
    ) -> FsResult<(ObjHandle, bool)> {
        let dir = self.fileid(dir)?;
        let mut t = self.tree.write();
        require(caller, &t.dir_attrs(dir)?, X_OK)?;
        if let Some((_, existing)) = t.entry(dir, name)? {
            // OPEN of an existing name: the NFS layer checks access; attrs are not
            // applied (O_CREAT without O_EXCL leaves an existing file alone).
            return match t.get(existing)?.attrs.ftype {
                _ if exclusive => Err(FsError::Exist),
                FileType::Regular => Ok((self.handle(existing), false)),
                FileType::Directory => Err(FsError::IsDir),
                FileType::Symlink => Err(FsError::SymLink),
                _ => Err(FsError::Exist),
            };
        }
        let da = self.check_create(&t, dir, name, caller)?;
        let obj = NewObj {
            content: Content::File(FileData::default()),
            ftype: FileType::Regular,
            rdev: (0, 0),
        };
        let id = self.insert_new(&mut t, (dir, &da), name, obj, attrs, caller)?;
        Ok((self.handle(id), true))
    }

    fn create(
        &self,
        dir: &ObjHandle,
        name: &[u8],
        kind: &CreateKind,
        attrs: &SetAttrs,
        caller: &Caller,
    ) -> FsResult<ObjHandle> {
        let dir = self.fileid(dir)?;
        let mut t = self.tree.write();
        let da = self.check_create(&t, dir, name, caller)?;
        let obj = self.make_content(&t, kind, caller)?;
        let id = self.insert_new(&mut t, (dir, &da), name, obj, attrs, caller)?;
        Ok(self.handle(id))
    }

    fn remove(&self, dir: &ObjHandle, name: &[u8], caller: &Caller) -> FsResult<()> {
        let dir = self.fileid(dir)?;
        let now = Timespec::now();
        let mut t = self.tree.write();
        let da = t.dir_attrs(dir)?;
        require(caller, &da, X_OK)?;
        let (_, victim) = t.entry(dir, name)?.ok_or(FsError::NoEnt)?;
        require(caller, &da, W_OK)?;
        let v = t.get(victim)?;
        check_sticky(caller, &da, &v.attrs)?;
        if let Content::Dir(d) = &v.content
            && !d.by_name.is_empty()
        {
            return Err(FsError::NotEmpty);
        }
        t.remove_entry(dir, name, now)?;
        t.drop_link(victim, now)
    }

    fn rename(
        &self,
        from_dir: &ObjHandle,
        from: &[u8],
        to_dir: &ObjHandle,
        to: &[u8],
        caller: &Caller,
    ) -> FsResult<()> {
        let r = RenameArgs {
            from_dir: self.fileid(from_dir)?,
            from,
            to_dir: self.fileid(to_dir)?,
            to,
        };
        let now = Timespec::now();
        let mut t = self.tree.write();
        let Some(plan) = self.check_rename(&t, &r, caller)? else {
            return Ok(());
        };
        // The replaced name keeps its cookie, so it keeps its place in READDIR order.
        let mut cookie = None;
        if let Some((_, dst)) = plan.dst {
            cookie = Some(t.remove_entry(r.to_dir, r.to, now)?);
            t.drop_link(dst, now)?;
        }
        t.remove_entry(r.from_dir, r.from, now)?;
        t.add_entry(r.to_dir, r.to, plan.src, cookie, now)?;
        if plan.src_is_dir && r.from_dir != r.to_dir {
            t.dir_mut(plan.src)?.parent = r.to_dir;
            let f = t.get_mut(r.from_dir)?;
            f.attrs.nlink = f.attrs.nlink.saturating_sub(1);
            t.get_mut(r.to_dir)?.attrs.nlink += 1;
        }
        t.get_mut(plan.src)?.touch_ctime(now);
        Ok(())
    }

    fn link(
        &self,
        target: &ObjHandle,
        dir: &ObjHandle,
        name: &[u8],
        caller: &Caller,
    ) -> FsResult<()> {
        let target = self.fileid(target)?;
        let dir = self.fileid(dir)?;
        let now = Timespec::now();
        let mut t = self.tree.write();
        let ta = t.get(target)?.attrs;
        t.dir_attrs(dir)?;
        if ta.ftype == FileType::Directory {
            // Hard links to directories would make the tree a graph.
            return Err(FsError::IsDir);
        }
        if ta.nlink == u32::MAX {
            return Err(FsError::MLink);
        }
        let da = t.dir_attrs(dir)?;
        require(caller, &da, X_OK)?;
        if t.entry(dir, name)?.is_some() {
            return Err(FsError::Exist);
        }
        require(caller, &da, W_OK)?;
        t.add_entry(dir, name, target, None, now)?;
        let inode = t.get_mut(target)?;
        inode.attrs.nlink += 1;
        inode.touch_ctime(now);
        Ok(())
    }

    fn readlink(&self, h: &ObjHandle) -> FsResult<Vec<u8>> {
        let id = self.fileid(h)?;
        match &self.tree.read().get(id)?.content {
            Content::Symlink(target) => Ok(target.clone()),
            _ => Err(FsError::Inval),
        }
    }

    fn readdir(&self, dir: &ObjHandle, cookie: u64, max: usize) -> FsResult<(Vec<DirEntry>, bool)> {
        let id = self.fileid(dir)?;
        let t = self.tree.read();
        let d = t.get(id)?.dir()?;
        // Cookies are ordered, so one whose entry is gone still marks where to go on.
        let mut names = d
            .by_cookie
            .range((Bound::Excluded(cookie), Bound::Unbounded));
        let mut out = Vec::new();
        for (&c, name) in names.by_ref().take(max) {
            let Some(&(_, child)) = d.by_name.get(name) else {
                continue;
            };
            out.push(DirEntry {
                name: name.clone(),
                cookie: c,
                handle: self.handle(child),
                attrs: t.get(child)?.attrs(),
            });
        }
        let eof = names.next().is_none();
        Ok((out, eof))
    }

    fn statfs(&self) -> FsResult<FsStats> {
        let t = self.tree.read();
        let total = self
            .opts
            .capacity_bytes
            .unwrap_or(UNLIMITED_REPORT)
            .max(t.used_bytes);
        let free = total - t.used_bytes;
        let files = self.opts.max_files;
        let free_files = files.saturating_sub(t.inodes.len() as u64);
        Ok(FsStats {
            total_bytes: total,
            free_bytes: free,
            avail_bytes: free,
            total_files: files,
            free_files,
            avail_files: free_files,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::data::CHUNK;
    use super::*;
    use crate::conformance;

    fn root() -> Caller {
        Caller::root()
    }

    fn small(capacity: Option<u64>, max_file_size: u64) -> MemoryBackend {
        MemoryBackend::new(MemoryOptions {
            capacity_bytes: capacity,
            max_file_size,
            ..Default::default()
        })
    }

    fn new_file(b: &MemoryBackend, dir: &ObjHandle, name: &str) -> ObjHandle {
        b.create_file(dir, name.as_bytes(), &SetAttrs::default(), true, &root())
            .expect("create_file")
            .0
    }

    fn used(b: &MemoryBackend) -> u64 {
        b.tree.read().used_bytes
    }

    /// ALLOCATE reserves within the capacity (all or nothing, NoSpc beyond it) and
    /// counts what it holds; DEALLOCATE gives it back.
    #[test]
    fn allocate_is_bounded_by_the_capacity() {
        let b = MemoryBackend::new(MemoryOptions {
            capacity_bytes: Some(4 * CHUNK),
            ..Default::default()
        });
        let f = new_file(&b, &b.root(), "f");
        assert_eq!(b.allocate(&f, 0, 5 * CHUNK), Err(FsError::NoSpc));
        assert_eq!(
            (b.getattr(&f).unwrap().size, used(&b)),
            (0, 0),
            "nothing done"
        );
        b.allocate(&f, CHUNK, 2 * CHUNK)
            .expect("within the capacity");
        let a = b.getattr(&f).unwrap();
        assert_eq!(
            (a.size, a.space_used, used(&b)),
            (3 * CHUNK, 2 * CHUNK, 2 * CHUNK),
            "the two chunks of the range are held, the one before is a hole"
        );
        assert_eq!(b.allocate(&f, 0, 0), Err(FsError::Inval));
        assert_eq!(b.deallocate(&f, u64::MAX, 2), Err(FsError::FBig));
        b.deallocate(&f, 0, 10 * CHUNK).expect("past the end too");
        let a = b.getattr(&f).unwrap();
        assert_eq!((a.size, a.space_used, used(&b)), (3 * CHUNK, 0, 0));
        assert_eq!(b.seek(&f, 0, true), Ok(None), "all hole");
        assert_eq!(b.seek(&f, 5, false), Ok(Some(5)));
        assert_eq!(b.allocate(&b.root(), 0, 1), Err(FsError::IsDir));
    }

    #[test]
    fn conformance() {
        conformance::run_all(&MemoryBackend::new(Default::default()));
    }

    #[test]
    fn conformance_twice_on_one_instance() {
        let b = MemoryBackend::default();
        conformance::run_all(&b);
        conformance::run_all(&b);
    }

    #[test]
    fn enospc_and_accounting() {
        let b = small(Some(100_000), 1 << 40);
        let r = b.root();
        let f = new_file(&b, &r, "f");
        let g = new_file(&b, &r, "g");
        b.write(&f, 0, &[1; 60_000], Stability::Unstable)
            .expect("fits");
        assert_eq!(
            b.write(&g, 0, &[2; 60_000], Stability::Unstable),
            Err(FsError::NoSpc)
        );
        assert_eq!(
            b.getattr(&g).map(|a| a.size),
            Ok(0),
            "nothing written on NoSpc"
        );
        assert_eq!(b.statfs().map(|s| s.free_bytes), Ok(40_000));
        // Overwriting allocated bytes needs no space.
        b.write(&f, 0, &[3; 60_000], Stability::Unstable)
            .expect("overwrite");
        let big = CreateKind::Symlink(vec![b'x'; 4000]);
        b.write(&g, 0, &[2; 38_000], Stability::Unstable)
            .expect("fits");
        let e = b.create(&r, b"l", &big, &SetAttrs::default(), &root());
        assert_eq!(e.err(), Some(FsError::NoSpc), "symlink targets count too");
        // Truncation and removal give space back.
        let trunc = SetAttrs {
            size: Some(10_000),
            ..Default::default()
        };
        b.setattr(&f, &trunc, &root()).expect("truncate");
        assert_eq!(used(&b), 48_000);
        b.remove(&r, b"g", &root()).expect("remove");
        assert_eq!(used(&b), 10_000);
        b.create(&r, b"l", &big, &SetAttrs::default(), &root())
            .expect("symlink fits now");
        assert_eq!(used(&b), 14_000);
        b.remove(&r, b"l", &root()).expect("remove symlink");
        b.remove(&r, b"f", &root()).expect("remove");
        assert_eq!(used(&b), 0);
    }

    #[test]
    fn fbig() {
        let b = small(None, 1 << 20);
        let r = b.root();
        let f = new_file(&b, &r, "f");
        b.write(&f, (1 << 20) - 1, b"x", Stability::Unstable)
            .expect("last byte");
        assert_eq!(
            b.write(&f, 1 << 20, b"x", Stability::Unstable),
            Err(FsError::FBig)
        );
        let size = |n| SetAttrs {
            size: Some(n),
            ..Default::default()
        };
        assert_eq!(
            b.setattr(&f, &size((1 << 20) + 1), &root()).err(),
            Some(FsError::FBig)
        );
        let e = b.create_file(&r, b"g", &size(2 << 20), true, &root());
        assert_eq!(e.err(), Some(FsError::FBig));
        assert_eq!(
            b.lookup(&r, b"g").err(),
            Some(FsError::NoEnt),
            "nothing created"
        );
    }

    #[test]
    fn default_limit_is_one_tib_and_sparse() {
        let b = MemoryBackend::default();
        let f = new_file(&b, &b.root(), "f");
        b.write(&f, (1 << 40) - 1, b"x", Stability::Unstable)
            .expect("last byte");
        let a = b.getattr(&f).expect("getattr");
        assert_eq!(a.size, 1 << 40);
        assert!(
            a.space_used <= CHUNK,
            "holes take no space: {}",
            a.space_used
        );
        assert_eq!(
            b.write(&f, 1 << 40, b"x", Stability::Unstable),
            Err(FsError::FBig)
        );
    }

    #[test]
    fn max_files() {
        let b = MemoryBackend::new(MemoryOptions {
            max_files: 3,
            ..Default::default()
        });
        let r = b.root();
        new_file(&b, &r, "a");
        new_file(&b, &r, "b");
        let e = b.create(&r, b"c", &CreateKind::Fifo, &SetAttrs::default(), &root());
        assert_eq!(e.err(), Some(FsError::NoSpc));
        assert_eq!(b.statfs().map(|s| s.free_files), Ok(0));
    }

    #[test]
    fn handles_are_per_instance() {
        let (a, b) = (MemoryBackend::default(), MemoryBackend::default());
        assert_eq!(b.getattr(&a.root()), Err(FsError::Stale));
        assert_ne!(a.fsid(), b.fsid());
        let unknown = {
            let mut h = a.root().as_bytes().to_vec();
            h[0] = 99;
            ObjHandle::new(&h).expect("16 bytes")
        };
        assert_eq!(a.getattr(&unknown), Err(FsError::Stale));
        let short = ObjHandle::new(&a.root().as_bytes()[..15]).expect("15 bytes");
        assert_eq!(a.getattr(&short), Err(FsError::BadHandle));
    }

    #[test]
    fn default_modes_and_devices() {
        let b = MemoryBackend::default();
        let r = b.root();
        let none = SetAttrs::default();
        let mode = |h: &ObjHandle| b.getattr(h).map(|a| a.mode);
        assert_eq!(mode(&new_file(&b, &r, "f")), Ok(0o644));
        let d = b.create(&r, b"d", &CreateKind::Directory, &none, &root());
        assert_eq!(mode(&d.expect("mkdir")), Ok(0o755));
        let l = b.create(
            &r,
            b"l",
            &CreateKind::Symlink(b"f".to_vec()),
            &none,
            &root(),
        );
        assert_eq!(mode(&l.expect("symlink")), Ok(0o777));
        let c = b.create(&r, b"null", &CreateKind::Char(1, 3), &none, &root());
        let ca = b.getattr(&c.expect("mknod")).expect("getattr");
        assert_eq!((ca.ftype, ca.rdev), (FileType::Char, (1, 3)));
        let user = Caller {
            uid: 1000,
            gid: 1000,
            gids: vec![],
        };
        let open = b
            .create(
                &r,
                b"open",
                &CreateKind::Directory,
                &mode_attrs(0o777),
                &root(),
            )
            .expect("mkdir");
        let e = b.create(&open, b"blk", &CreateKind::Block(8, 0), &none, &user);
        assert_eq!(e.err(), Some(FsError::Perm), "mknod of a device needs root");
        // Open-create of an existing non-regular file.
        let e = b.create_file(&r, b"l", &none, false, &root());
        assert_eq!(e.err(), Some(FsError::SymLink));
        let e = b.create_file(&r, b"null", &none, false, &root());
        assert_eq!(e.err(), Some(FsError::Exist));
        assert_eq!(
            b.readdir(&r, 0, 0).map(|(e, eof)| (e.len(), eof)),
            Ok((0, false))
        );
    }

    fn mode_attrs(m: u32) -> SetAttrs {
        SetAttrs {
            mode: Some(m),
            ..Default::default()
        }
    }

    #[test]
    fn chown_clears_setuid() {
        let b = MemoryBackend::default();
        let f = new_file(&b, &b.root(), "f");
        b.setattr(&f, &mode_attrs(0o6755), &root()).expect("chmod");
        let chown = SetAttrs {
            uid: Some(5),
            ..Default::default()
        };
        assert_eq!(b.setattr(&f, &chown, &root()).map(|a| a.mode), Ok(0o755));
        b.setattr(&f, &mode_attrs(0o6745), &root()).expect("chmod");
        // setgid without group execute means mandatory locking: kept.
        assert_eq!(b.setattr(&f, &chown, &root()).map(|a| a.mode), Ok(0o2745));
    }

    #[test]
    fn replaced_name_keeps_its_readdir_place() {
        let b = MemoryBackend::default();
        let r = b.root();
        for name in ["a", "b", "c"] {
            new_file(&b, &r, name);
        }
        let cookies = |b: &MemoryBackend| {
            let (e, _) = b.readdir(&r, 0, 10).expect("readdir");
            e.iter()
                .map(|e| (String::from_utf8_lossy(&e.name).into_owned(), e.cookie))
                .collect::<Vec<_>>()
        };
        let before = cookies(&b);
        assert_eq!(before[0].1, FIRST_COOKIE);
        b.rename(&r, b"c", &r, b"a", &root())
            .expect("rename over a");
        let after = cookies(&b);
        assert_eq!(after, vec![before[0].clone(), before[1].clone()]);
        // A plain rename is a new entry at the end; cookies are never reused.
        b.rename(&r, b"a", &r, b"z", &root()).expect("rename");
        let last = cookies(&b).pop().expect("entries");
        assert_eq!(last, ("z".to_string(), FIRST_COOKIE + 3));
    }

    /// Deterministic pseudo-random numbers (no seed plumbing needed in tests).
    fn lcg(state: &mut u64) -> u64 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *state >> 33
    }

    #[test]
    fn file_data_matches_a_flat_model() {
        let mut data = FileData::default();
        let mut model: Vec<u8> = Vec::new();
        let mut seed = 42;
        for round in 0..2000 {
            let size = model.len() as u64;
            let pick = lcg(&mut seed) % 10;
            if pick < 2 {
                let new = lcg(&mut seed) % (4 * CHUNK);
                data.truncate(new);
                model.resize(new as usize, 0);
            } else if pick == 2 {
                // ALLOCATE: the bytes stay, the size may grow; the growth is foretold.
                let off = lcg(&mut seed) % (4 * CHUNK);
                let end = off + 1 + lcg(&mut seed) % (CHUNK + 100);
                let foretold = data.allocate_growth(off, end);
                let before = data.allocated;
                data.allocate(off, end);
                assert_eq!(data.allocated - before, foretold, "round {round}");
                model.resize(model.len().max(end as usize), 0);
            } else if pick == 3 {
                // DEALLOCATE within the size: zeros.
                let off = lcg(&mut seed) % (4 * CHUNK);
                let end = (off + 1 + lcg(&mut seed) % (2 * CHUNK)).min(size);
                data.deallocate(off, end);
                if off < end {
                    model[off as usize..end as usize].fill(0);
                }
            } else {
                let off = lcg(&mut seed) % (4 * CHUNK);
                let len = lcg(&mut seed) % (CHUNK + 100);
                let byte = (round % 251) as u8 + 1;
                // Every other write comes as a slice of a larger shared buffer, as a
                // WRITE from a received record does: whole chunks are kept, not copied.
                let bytes = vec![byte; len as usize];
                if round % 2 == 0 {
                    let mut record = vec![0u8; 7];
                    record.extend_from_slice(&bytes);
                    let record = Bytes::from(record);
                    let slice = record.slice(7..);
                    data.write(off, &slice, Some(&slice));
                } else {
                    data.write(off, &bytes, None);
                }
                let end = (off + len) as usize;
                if end > model.len() {
                    model.resize(end, 0);
                }
                model[off as usize..end].fill(byte);
            }
            let _ = size;
            let mut buf = Vec::new();
            let eof = data.read(model.len() as u64, 0, u32::MAX, &mut buf);
            assert!(eof);
            assert!(buf == model, "round {round}: content differs");
            let held = data.held_bytes();
            assert_eq!(held, data.allocated, "round {round}: allocation count");
            assert!(
                data.allocated <= model.len() as u64,
                "round {round}: data beyond size"
            );
            // SEEK: what is called a hole reads as zeros, data is found where it is.
            let size = model.len() as u64;
            let zeros =
                |from: u64, to: u64| model[from as usize..to as usize].iter().all(|b| *b == 0);
            for _ in 0..4 {
                let off = lcg(&mut seed) % (size + 10);
                let next_data = data.seek(size, off, true);
                let hole = data.seek(size, off, false);
                if off >= size {
                    assert_eq!((next_data, hole), (None, None), "round {round}");
                    continue;
                }
                match next_data {
                    Some(d) => assert!(d >= off && d < size && zeros(off, d), "round {round}"),
                    None => assert!(zeros(off, size), "round {round}: data after {off}"),
                }
                let h = hole.expect("a hole at the end at least");
                assert!(h >= off && h <= size, "round {round}");
                let after = data.seek(size, h, true).unwrap_or(size);
                assert!(zeros(h, after), "round {round}: hole at {h} holds data");
            }
        }
    }

    #[test]
    fn concurrent_create_write_remove() {
        let b = std::sync::Arc::new(MemoryBackend::default());
        let dir = b
            .create(
                &b.root(),
                b"busy",
                &CreateKind::Directory,
                &SetAttrs::default(),
                &root(),
            )
            .expect("mkdir");
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let b = b.clone();
                std::thread::spawn(move || worker(&b, &dir, t))
            })
            .collect();
        for th in threads {
            th.join().expect("worker panicked");
        }
        // Each thread keeps its last 10 files and 5 subdirectories.
        let (entries, eof) = b.readdir(&dir, 0, 10_000).expect("readdir");
        assert!(eof);
        let dirs = entries
            .iter()
            .filter(|e| e.attrs.ftype == FileType::Directory)
            .count();
        assert_eq!((entries.len(), dirs), (8 * 15, 8 * 5));
        assert_eq!(b.getattr(&dir).map(|a| a.nlink), Ok(2 + 8 * 5));
        for e in &entries {
            assert_eq!(
                e.attrs.nlink,
                if e.attrs.ftype == FileType::Directory {
                    2
                } else {
                    1
                }
            );
        }
        let files = (entries.len() - dirs) as u64;
        assert_eq!(used(&b), files * 4096, "capacity accounting after churn");
    }

    fn worker(b: &MemoryBackend, dir: &ObjHandle, t: usize) {
        let c = root();
        for i in 0..200 {
            let name = format!("t{t}-f{i}");
            let f = new_file(b, dir, &name);
            let data = vec![(t * 31 + i) as u8; 4096];
            b.write(&f, 0, &data, Stability::Unstable).expect("write");
            let mut buf = Vec::new();
            assert_eq!(b.read(&f, 0, 8192, &mut buf), Ok(true));
            assert!(buf == data);
            let renamed = format!("t{t}-r{i}");
            b.rename(dir, name.as_bytes(), dir, renamed.as_bytes(), &c)
                .expect("rename");
            if i >= 10 {
                let old = format!("t{t}-r{}", i - 10);
                b.remove(dir, old.as_bytes(), &c).expect("remove");
            }
            if i % 20 == 0 {
                let sub = format!("t{t}-d{i}");
                b.create(
                    dir,
                    sub.as_bytes(),
                    &CreateKind::Directory,
                    &SetAttrs::default(),
                    &c,
                )
                .expect("mkdir");
            }
            // Readers run alongside the writers.
            b.readdir(dir, 0, 50).expect("readdir");
        }
        for i in (0..200).step_by(40) {
            let sub = format!("t{t}-d{i}");
            b.remove(dir, sub.as_bytes(), &c).expect("rmdir");
        }
    }
}
