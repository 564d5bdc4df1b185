//! Conformance suite for [`Backend`] implementations: what the NFS layer relies on,
//! checked through the trait alone with exact errors. Every backend's tests call
//! [`run_all`] (or single `check_*` functions) on a fresh instance.
//!
//! Each check works in its own new directory under the export root (owned by root,
//! mode 0755), so checks are independent and may run in any order or more than once
//! on one backend. Non-root callers use uids 1000–1002 and gids 1000–1002/2000; the
//! suite assumes nothing about them beyond the trait (no user database).
//!
//! Assumptions a backend must meet (beyond the trait docs): POSIX/Linux semantics for
//! permissions, sticky and setgid directories; modes given at creation are applied
//! exactly (no umask); `change` strictly increases on every modification; directory
//! nlink is 2 + subdirectories; sizes beyond the backend's limit give `FBig`.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{
    Attrs, Backend, Caller, CreateKind, DirEntry, FileType, FsError, ObjHandle, SetAttrs, SetTime,
    Stability, Timespec, check_name,
};

const ALICE: u32 = 1000;
const BOB: u32 = 1001;
const CAROL: u32 = 1002;
/// A group only callers that list it in `gids` belong to.
const STAFF: u32 = 2000;

/// Every check, in a stable order.
pub fn run_all(b: &dyn Backend) {
    check_names(b);
    check_create_lookup(b);
    check_create_kinds(b);
    check_read_write(b);
    check_large_io(b);
    check_setattr_size(b);
    check_setattr_mode_times(b);
    check_chown_rules(b);
    check_remove(b);
    check_rename(b);
    check_link(b);
    check_readdir(b);
    check_readdir_paging(b);
    check_change(b);
    check_permissions(b);
    check_sticky(b);
    check_setgid_dir(b);
    check_stale_handles(b);
    check_statfs(b);
}

// ---------------------------------------------------------------------------------
// Helpers

fn root() -> Caller {
    Caller::root()
}

fn user(uid: u32) -> Caller {
    Caller {
        uid,
        gid: uid,
        gids: vec![],
    }
}

fn mode(m: u32) -> SetAttrs {
    SetAttrs {
        mode: Some(m),
        ..Default::default()
    }
}

/// A new directory under the root (owned by root, mode 0755) for one check.
pub fn scratch(b: &dyn Backend, topic: &str) -> ObjHandle {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let name = format!("conf-{topic}-{}-{n}", std::process::id());
    b.create(
        &b.root(),
        name.as_bytes(),
        &CreateKind::Directory,
        &mode(0o755),
        &root(),
    )
    .unwrap_or_else(|e| panic!("scratch dir {name}: {e:?}"))
}

fn attrs(b: &dyn Backend, h: &ObjHandle) -> Attrs {
    b.getattr(h)
        .unwrap_or_else(|e| panic!("getattr {h:?}: {e:?}"))
}

fn new_file(b: &dyn Backend, dir: &ObjHandle, name: &str, m: u32, c: &Caller) -> ObjHandle {
    let (h, created) = b
        .create_file(dir, name.as_bytes(), &mode(m), true, c)
        .unwrap_or_else(|e| panic!("create_file {name}: {e:?}"));
    assert!(
        created,
        "create_file {name}: exclusive create must report created"
    );
    h
}

fn mkdir(b: &dyn Backend, dir: &ObjHandle, name: &str, m: u32, c: &Caller) -> ObjHandle {
    b.create(dir, name.as_bytes(), &CreateKind::Directory, &mode(m), c)
        .unwrap_or_else(|e| panic!("mkdir {name}: {e:?}"))
}

fn write(b: &dyn Backend, h: &ObjHandle, offset: u64, data: &[u8]) {
    let (n, _) = b
        .write(h, offset, data, Stability::Unstable)
        .unwrap_or_else(|e| panic!("write at {offset}: {e:?}"));
    assert_eq!(n as usize, data.len(), "short write at {offset}");
}

fn read(b: &dyn Backend, h: &ObjHandle, offset: u64, count: u32) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let eof = b
        .read(h, offset, count, &mut buf)
        .unwrap_or_else(|e| panic!("read at {offset}+{count}: {e:?}"));
    (buf, eof)
}

fn lookup(b: &dyn Backend, dir: &ObjHandle, name: &str) -> ObjHandle {
    b.lookup(dir, name.as_bytes())
        .unwrap_or_else(|e| panic!("lookup {name}: {e:?}"))
}

fn fileid_of(b: &dyn Backend, dir: &ObjHandle, name: &str) -> u64 {
    attrs(b, &lookup(b, dir, name)).fileid
}

/// The whole directory, paging `max` entries at a time.
fn list(b: &dyn Backend, dir: &ObjHandle, max: usize) -> Vec<DirEntry> {
    list_from(b, dir, 0, max)
}

fn list_from(b: &dyn Backend, dir: &ObjHandle, mut cookie: u64, max: usize) -> Vec<DirEntry> {
    let mut all = Vec::new();
    for _ in 0..100_000 {
        let (page, eof) = b
            .readdir(dir, cookie, max)
            .unwrap_or_else(|e| panic!("readdir after {cookie}: {e:?}"));
        assert!(page.len() <= max, "readdir returned more than max={max}");
        if let Some(last) = page.last() {
            cookie = last.cookie;
        }
        let empty = page.is_empty();
        all.extend(page);
        if eof {
            return all;
        }
        assert!(!empty, "readdir returned no entries and no eof");
    }
    panic!("readdir never reached eof");
}

fn names(entries: &[DirEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect()
}

fn set_now() -> SetAttrs {
    SetAttrs {
        atime: Some(SetTime::ServerNow),
        mtime: Some(SetTime::ServerNow),
        ..Default::default()
    }
}

fn set_client_times(t: Timespec) -> SetAttrs {
    SetAttrs {
        atime: Some(SetTime::Client(t)),
        mtime: Some(SetTime::Client(t)),
        ..Default::default()
    }
}

/// `t` is within a few seconds of the wall clock (kernel timestamps are coarse).
fn assert_recent(t: Timespec, what: &str) {
    let now = Timespec::now().secs;
    assert!(
        (now - 5..=now + 5).contains(&t.secs),
        "{what}: {t:?} is not close to now ({now})"
    );
}

// ---------------------------------------------------------------------------------
// Checks

/// `check_name`: what the NFS layer rejects before calling a backend.
pub fn check_names(_b: &dyn Backend) {
    assert_eq!(check_name(b""), Err(FsError::Inval));
    for bad in [&b"."[..], b"..", b"a/b", b"/", b"a\0b"] {
        assert_eq!(check_name(bad), Err(FsError::BadName), "{bad:?}");
    }
    assert_eq!(check_name(&[b'x'; 256]), Err(FsError::NameTooLong));
    assert_eq!(check_name(&[b'x'; 255]), Ok(()));
    assert_eq!(check_name(b"...").map(|_| ()), Ok(()));
    assert_eq!(check_name(b".hidden"), Ok(()));
    assert_eq!(
        check_name(&[0xff, 0xfe, b'a']),
        Ok(()),
        "names are bytes, not UTF-8"
    );
}

/// create_file / lookup / getattr / lookup_parent basics.
pub fn check_create_lookup(b: &dyn Backend) {
    let d = scratch(b, "create");
    let da = attrs(b, &d);
    assert_eq!(da.ftype, FileType::Directory);
    assert_eq!(da.mode & 0o7777, 0o755);
    assert_eq!(da.nlink, 2, "new directory");

    let f = new_file(b, &d, "f", 0o640, &root());
    let fa = attrs(b, &f);
    assert_eq!(fa.ftype, FileType::Regular);
    assert_eq!(fa.mode & 0o7777, 0o640, "mode given at creation, no umask");
    assert_eq!((fa.nlink, fa.size, fa.uid, fa.gid), (1, 0, 0, 0));
    assert_ne!(fa.fileid, da.fileid);
    assert_eq!(fileid_of(b, &d, "f"), fa.fileid);
    assert_eq!(b.lookup(&d, b"nope").err(), Some(FsError::NoEnt));

    // Exclusive create of an existing name fails; a plain one opens it untouched.
    let r = b.create_file(&d, b"f", &mode(0o600), true, &root());
    assert_eq!(r.err(), Some(FsError::Exist));
    let (again, created) = b
        .create_file(&d, b"f", &mode(0o600), false, &root())
        .expect("non-exclusive create of an existing file");
    assert!(!created);
    assert_eq!(attrs(b, &again).fileid, fa.fileid);
    assert_eq!(
        attrs(b, &again).mode & 0o7777,
        0o640,
        "attrs not applied to existing"
    );

    mkdir(b, &d, "sub", 0o755, &root());
    let r = b.create_file(&d, b"sub", &SetAttrs::default(), false, &root());
    assert_eq!(r.err(), Some(FsError::IsDir), "open-create of a directory");

    // Non-directories as directories.
    assert_eq!(b.lookup(&f, b"x").err(), Some(FsError::NotDir));
    let r = b.create_file(&f, b"x", &SetAttrs::default(), false, &root());
    assert_eq!(r.err(), Some(FsError::NotDir));
    let r = b.create(
        &f,
        b"x",
        &CreateKind::Directory,
        &SetAttrs::default(),
        &root(),
    );
    assert_eq!(r.err(), Some(FsError::NotDir));

    // Parents.
    assert_eq!(
        attrs(b, &b.lookup_parent(&d).expect("parent")).fileid,
        attrs(b, &b.root()).fileid
    );
    assert_eq!(b.lookup_parent(&b.root()).err(), Some(FsError::NoEnt));
    assert_eq!(b.lookup_parent(&f).err(), Some(FsError::NotDir));
    b.commit(&f).expect("commit");

    // Initial size needs no write permission: OPEN(O_CREAT|O_TRUNC, 0444) sends size 0.
    let open = mkdir(b, &d, "open", 0o777, &root());
    let trunc = SetAttrs {
        mode: Some(0o444),
        size: Some(0),
        ..Default::default()
    };
    let (ro, created) = b
        .create_file(&open, b"ro", &trunc, true, &user(ALICE))
        .expect("create 0444 with size 0");
    assert!(created);
    let ra = attrs(b, &ro);
    assert_eq!((ra.mode & 0o7777, ra.size), (0o444, 0));
    assert_eq!((ra.uid, ra.gid), (ALICE, ALICE), "owner is the caller");
}

/// Directories, symlinks, fifos, sockets; readlink.
pub fn check_create_kinds(b: &dyn Backend) {
    let d = scratch(b, "kinds");
    let sub = mkdir(b, &d, "sub", 0o750, &root());
    let sa = attrs(b, &sub);
    assert_eq!(
        (sa.ftype, sa.mode & 0o7777, sa.nlink),
        (FileType::Directory, 0o750, 2)
    );
    assert_eq!(attrs(b, &d).nlink, 3, "2 + one subdirectory");
    assert_eq!(
        attrs(b, &b.lookup_parent(&sub).expect("parent")).fileid,
        attrs(b, &d).fileid
    );
    let r = b.create(
        &d,
        b"sub",
        &CreateKind::Directory,
        &SetAttrs::default(),
        &root(),
    );
    assert_eq!(r.err(), Some(FsError::Exist));
    let r = b.create_file(&d, b"sub", &SetAttrs::default(), true, &root());
    assert_eq!(r.err(), Some(FsError::Exist));

    let target = b"../some/where".to_vec();
    let l = b
        .create(
            &d,
            b"link",
            &CreateKind::Symlink(target.clone()),
            &SetAttrs::default(),
            &root(),
        )
        .expect("symlink");
    let la = attrs(b, &l);
    assert_eq!(la.ftype, FileType::Symlink);
    assert_eq!(
        la.size,
        target.len() as u64,
        "symlink size is the target length"
    );
    assert_eq!(b.readlink(&l).expect("readlink"), target);
    let r = b.create(
        &d,
        b"link",
        &CreateKind::Symlink(b"x".to_vec()),
        &SetAttrs::default(),
        &root(),
    );
    assert_eq!(r.err(), Some(FsError::Exist));

    let fifo = b
        .create(&d, b"fifo", &CreateKind::Fifo, &mode(0o600), &root())
        .expect("fifo");
    assert_eq!(attrs(b, &fifo).ftype, FileType::Fifo);
    assert_eq!(attrs(b, &fifo).mode & 0o7777, 0o600);
    let sock = b
        .create(&d, b"sock", &CreateKind::Socket, &mode(0o644), &root())
        .expect("socket");
    assert_eq!(attrs(b, &sock).ftype, FileType::Socket);
    assert_eq!(attrs(b, &d).nlink, 3, "only directories count in nlink");

    let f = new_file(b, &d, "f", 0o644, &root());
    assert_eq!(b.readlink(&f).err(), Some(FsError::Inval));
    assert_eq!(b.readlink(&sub).err(), Some(FsError::Inval));
    for (name, h) in [("dir", &sub), ("symlink", &l), ("fifo", &fifo)] {
        let mut buf = Vec::new();
        let r = b.read(h, 0, 10, &mut buf).err();
        let want: &[FsError] = match name {
            "dir" => &[FsError::IsDir],
            // The NFS layer checks the type first; backends may say SymLink for links.
            "symlink" => &[FsError::Inval, FsError::BadType, FsError::SymLink],
            _ => &[FsError::Inval, FsError::BadType],
        };
        assert!(
            r.is_some_and(|e| want.contains(&e)),
            "read of {name}: {r:?}"
        );
        let r = b.write(h, 0, b"x", Stability::FileSync).err();
        assert!(
            r.is_some_and(|e| want.contains(&e)),
            "write to {name}: {r:?}"
        );
    }
}

/// Small reads and writes, EOF flag, holes.
pub fn check_read_write(b: &dyn Backend) {
    let d = scratch(b, "rw");
    let f = new_file(b, &d, "f", 0o644, &root());
    assert_eq!(read(b, &f, 0, 10), (vec![], true), "empty file");

    let (n, st) = b
        .write(&f, 0, b"hello", Stability::FileSync)
        .expect("write");
    assert_eq!(
        (n, st),
        (5, Stability::FileSync),
        "at least the stability asked for"
    );
    let (_, st) = b
        .write(&f, 5, b" world", Stability::Unstable)
        .expect("write");
    assert!(st >= Stability::Unstable);
    assert_eq!(attrs(b, &f).size, 11);
    assert_eq!(read(b, &f, 0, 100), (b"hello world".to_vec(), true));
    assert_eq!(
        read(b, &f, 0, 11),
        (b"hello world".to_vec(), true),
        "read to the end"
    );
    assert_eq!(read(b, &f, 0, 5), (b"hello".to_vec(), false));
    assert_eq!(read(b, &f, 6, 3), (b"wor".to_vec(), false));
    assert_eq!(read(b, &f, 11, 10), (vec![], true), "at EOF");
    assert_eq!(read(b, &f, 1000, 10), (vec![], true), "past EOF");
    assert_eq!(
        read(b, &f, u64::MAX - 1, 10),
        (vec![], true),
        "far past EOF"
    );

    // read appends to the buffer.
    let mut buf = b"prefix:".to_vec();
    b.read(&f, 0, 5, &mut buf).expect("read");
    assert_eq!(buf, b"prefix:hello");

    // Overwrite in the middle.
    write(b, &f, 6, b"WORLD");
    assert_eq!(read(b, &f, 0, 100).0, b"hello WORLD");
    assert_eq!(b.write(&f, 3, b"", Stability::FileSync).map(|w| w.0), Ok(0));
    assert_eq!(attrs(b, &f).size, 11, "empty write leaves the size");

    // Writing past EOF leaves a hole of zeros.
    write(b, &f, 20, b"tail");
    assert_eq!(attrs(b, &f).size, 24);
    let (data, eof) = read(b, &f, 0, 24);
    assert!(eof);
    assert_eq!(&data[11..20], &[0u8; 9], "hole reads as zeros");
    assert_eq!(&data[20..], b"tail");
}

/// 1 MiB writes, unaligned offsets, sparse files.
pub fn check_large_io(b: &dyn Backend) {
    let d = scratch(b, "large");
    let f = new_file(b, &d, "big", 0o644, &root());
    let data: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 + i / 251) as u8).collect();
    write(b, &f, 3, &data);
    assert_eq!(attrs(b, &f).size, 3 + data.len() as u64);
    let (back, eof) = read(b, &f, 3, 1 << 20);
    assert!(eof);
    assert!(back == data, "1 MiB read back differs");
    let (part, eof) = read(b, &f, 100_003, 70_000);
    assert!(!eof);
    assert!(part == data[100_000..170_000], "unaligned part differs");

    // Sparse: one byte range far out, zeros before it.
    let s = new_file(b, &d, "sparse", 0o644, &root());
    let far = 1 << 30;
    write(b, &s, far, b"0123456789");
    assert_eq!(attrs(b, &s).size, far + 10);
    assert_eq!(read(b, &s, 4096, 4096), (vec![0u8; 4096], false));
    assert_eq!(
        read(b, &s, far - 2, 100),
        (b"\0\x000123456789".to_vec(), true)
    );

    // Beyond any file size limit.
    let r = b.write(&s, u64::MAX - 2, b"xyz", Stability::FileSync);
    assert_eq!(
        r.err(),
        Some(FsError::FBig),
        "write beyond the maximum file size"
    );
}

/// Truncate and extend through setattr.
pub fn check_setattr_size(b: &dyn Backend) {
    let d = scratch(b, "size");
    let f = new_file(b, &d, "f", 0o644, &root());
    write(b, &f, 0, &[b'a'; 100]);
    let size = |n| SetAttrs {
        size: Some(n),
        ..Default::default()
    };
    let a = b.setattr(&f, &size(10), &root()).expect("truncate");
    assert_eq!(a.size, 10);
    assert_eq!(read(b, &f, 0, 1000), (vec![b'a'; 10], true));
    b.setattr(&f, &size(50), &root()).expect("extend");
    let (data, eof) = read(b, &f, 0, 1000);
    assert!(eof);
    assert_eq!(&data[..10], &[b'a'; 10]);
    assert_eq!(
        &data[10..],
        &[0u8; 40],
        "extension reads zeros, not old data"
    );
    b.setattr(&f, &size(0), &root()).expect("truncate to 0");
    assert_eq!(read(b, &f, 0, 10), (vec![], true));

    let r = b.setattr(&f, &size(u64::MAX), &root());
    assert_eq!(r.err(), Some(FsError::FBig));
    let sub = mkdir(b, &d, "sub", 0o755, &root());
    assert_eq!(
        b.setattr(&sub, &size(0), &root()).err(),
        Some(FsError::IsDir)
    );
    let l = b
        .create(
            &d,
            b"l",
            &CreateKind::Symlink(b"f".to_vec()),
            &SetAttrs::default(),
            &root(),
        )
        .expect("symlink");
    assert_eq!(b.setattr(&l, &size(0), &root()).err(), Some(FsError::Inval));
}

/// Mode bits (incl. setuid/setgid/sticky), explicit and server times, ctime.
pub fn check_setattr_mode_times(b: &dyn Backend) {
    let d = scratch(b, "mode");
    let f = new_file(b, &d, "f", 0o644, &root());
    let before = attrs(b, &f);
    let a = b.setattr(&f, &mode(0o4755), &root()).expect("chmod");
    assert_eq!(a.mode & 0o7777, 0o4755);
    assert!(a.ctime >= before.ctime);
    assert_eq!(
        b.setattr(&f, &mode(0o2711), &root())
            .map(|a| a.mode & 0o7777),
        Ok(0o2711)
    );
    let sub = mkdir(b, &d, "sub", 0o755, &root());
    assert_eq!(
        b.setattr(&sub, &mode(0o1777), &root())
            .map(|a| a.mode & 0o7777),
        Ok(0o1777)
    );

    let same = b
        .setattr(&f, &SetAttrs::default(), &root())
        .expect("empty setattr");
    assert_eq!(same.mode, attrs(b, &f).mode);

    let t = Timespec {
        secs: 1_000_000_000,
        nsecs: 123_456_789,
    };
    let a = b
        .setattr(&f, &set_client_times(t), &root())
        .expect("set times");
    assert_eq!((a.atime, a.mtime), (t, t));
    assert_recent(a.ctime, "ctime after setting times");
    let only_m = SetAttrs {
        mtime: Some(SetTime::Client(Timespec { secs: 5, nsecs: 0 })),
        ..Default::default()
    };
    let a = b.setattr(&f, &only_m, &root()).expect("set mtime");
    assert_eq!((a.atime, a.mtime.secs), (t, 5), "atime untouched");
    let a = b
        .setattr(&f, &set_now(), &root())
        .expect("set times to now");
    assert_recent(a.atime, "atime ServerNow");
    assert_recent(a.mtime, "mtime ServerNow");
}

/// Ownership and the owner-only attributes with non-root callers.
pub fn check_chown_rules(b: &dyn Backend) {
    let d = scratch(b, "chown");
    let f = new_file(b, &d, "f", 0o644, &root());
    let to = |uid, gid| SetAttrs {
        uid,
        gid,
        ..Default::default()
    };
    let a = b
        .setattr(&f, &to(Some(ALICE), Some(ALICE)), &root())
        .expect("root chown");
    assert_eq!((a.uid, a.gid), (ALICE, ALICE));

    let alice = Caller {
        uid: ALICE,
        gid: ALICE,
        gids: vec![STAFF],
    };
    let r = b.setattr(&f, &to(Some(BOB), None), &alice);
    assert_eq!(r.err(), Some(FsError::Perm), "giving a file away");
    b.setattr(&f, &to(Some(ALICE), None), &alice)
        .expect("chown to self");
    let a = b
        .setattr(&f, &to(None, Some(STAFF)), &alice)
        .expect("chgrp to own group");
    assert_eq!(a.gid, STAFF);
    let r = b.setattr(&f, &to(None, Some(3000)), &alice);
    assert_eq!(r.err(), Some(FsError::Perm), "chgrp to a foreign group");
    let a = b.setattr(&f, &mode(0o600), &alice).expect("owner chmod");
    assert_eq!(a.mode & 0o7777, 0o600);

    // Not the owner.
    let bob = user(BOB);
    assert_eq!(b.setattr(&f, &mode(0o777), &bob).err(), Some(FsError::Perm));
    assert_eq!(
        b.setattr(&f, &to(None, Some(BOB)), &bob).err(),
        Some(FsError::Perm)
    );
    let t = set_client_times(Timespec { secs: 7, nsecs: 0 });
    assert_eq!(
        b.setattr(&f, &t, &bob).err(),
        Some(FsError::Perm),
        "explicit times"
    );
    assert_eq!(
        b.setattr(&f, &set_now(), &bob).err(),
        Some(FsError::Access),
        "touch, 0600"
    );
    let trunc = SetAttrs {
        size: Some(0),
        ..Default::default()
    };
    assert_eq!(
        b.setattr(&f, &trunc, &bob).err(),
        Some(FsError::Access),
        "truncate, 0600"
    );
    // World-writable: "touch" and truncate need only write permission.
    b.setattr(&f, &mode(0o666), &alice).expect("owner chmod");
    b.setattr(&f, &set_now(), &bob)
        .expect("touch with write permission");
    b.setattr(&f, &trunc, &bob)
        .expect("truncate with write permission");
    assert_eq!(
        b.setattr(&f, &t, &bob).err(),
        Some(FsError::Perm),
        "still not owner"
    );

    // Setting setgid on a file whose group the owner is not in drops the bit.
    let g = new_file(b, &d, "g", 0o644, &root());
    b.setattr(&g, &to(Some(ALICE), Some(3000)), &root())
        .expect("root chown");
    let a = b
        .setattr(&g, &mode(0o2755), &user(ALICE))
        .expect("owner chmod");
    assert_eq!(a.mode & 0o7777, 0o755, "setgid dropped for a non-member");
}

/// Removing files and directories.
pub fn check_remove(b: &dyn Backend) {
    let d = scratch(b, "remove");
    let f = new_file(b, &d, "f", 0o644, &root());
    b.remove(&d, b"f", &root()).expect("remove file");
    assert_eq!(b.lookup(&d, b"f").err(), Some(FsError::NoEnt));
    assert_eq!(
        b.getattr(&f).err(),
        Some(FsError::Stale),
        "handle of a removed file"
    );
    assert_eq!(b.remove(&d, b"f", &root()).err(), Some(FsError::NoEnt));

    mkdir(b, &d, "empty", 0o755, &root());
    assert_eq!(attrs(b, &d).nlink, 3);
    b.remove(&d, b"empty", &root()).expect("remove empty dir");
    assert_eq!(attrs(b, &d).nlink, 2, "subdirectory gone from nlink");

    let full = mkdir(b, &d, "full", 0o755, &root());
    new_file(b, &full, "x", 0o644, &root());
    assert_eq!(
        b.remove(&d, b"full", &root()).err(),
        Some(FsError::NotEmpty)
    );
    b.remove(&full, b"x", &root()).expect("remove content");
    b.remove(&d, b"full", &root())
        .expect("remove now-empty dir");

    let g = new_file(b, &d, "g", 0o644, &root());
    assert_eq!(b.remove(&g, b"x", &root()).err(), Some(FsError::NotDir));
    let l = b
        .create(
            &d,
            b"l",
            &CreateKind::Symlink(b"g".to_vec()),
            &SetAttrs::default(),
            &root(),
        )
        .expect("symlink");
    b.remove(&d, b"l", &root())
        .expect("remove symlink, not its target");
    assert_eq!(b.getattr(&l).err(), Some(FsError::Stale));
    assert_eq!(attrs(b, &g).nlink, 1);
    assert!(list(b, &d, 100).iter().all(|e| e.name != b"l"));
}

/// Renames within and across directories, replacement rules, subtree rule.
pub fn check_rename(b: &dyn Backend) {
    let d = scratch(b, "rename");
    let r = root();
    let f = new_file(b, &d, "a", 0o644, &r);
    let id = attrs(b, &f).fileid;
    b.rename(&d, b"a", &d, b"b", &r).expect("same dir");
    assert_eq!(b.lookup(&d, b"a").err(), Some(FsError::NoEnt));
    assert_eq!(fileid_of(b, &d, "b"), id);
    assert_eq!(attrs(b, &f).fileid, id, "handle survives rename");

    let x = mkdir(b, &d, "x", 0o755, &r);
    let y = mkdir(b, &d, "y", 0o755, &r);
    b.rename(&d, b"b", &x, b"c", &r).expect("across dirs");
    assert_eq!(fileid_of(b, &x, "c"), id);
    assert_eq!(b.rename(&d, b"b", &x, b"c", &r).err(), Some(FsError::NoEnt));

    // Replace a file: the old target's object goes away.
    let victim = new_file(b, &x, "v", 0o644, &r);
    b.rename(&x, b"c", &x, b"v", &r).expect("over a file");
    assert_eq!(fileid_of(b, &x, "v"), id);
    assert_eq!(b.getattr(&victim).err(), Some(FsError::Stale));
    assert_eq!(names(&list(b, &x, 100)), vec!["v"]);

    // Type rules.
    assert_eq!(
        b.rename(&x, b"v", &d, b"y", &r).err(),
        Some(FsError::IsDir),
        "file over dir"
    );
    assert_eq!(
        b.rename(&d, b"y", &x, b"v", &r).err(),
        Some(FsError::NotDir),
        "dir over file"
    );
    // x holds "v": not empty.
    assert_eq!(
        b.rename(&d, b"y", &d, b"x", &r).err(),
        Some(FsError::NotEmpty)
    );
    let z = mkdir(b, &d, "z", 0o755, &r);
    b.rename(&d, b"z", &d, b"y", &r)
        .expect("dir over empty dir");
    assert_eq!(
        b.getattr(&y).err(),
        Some(FsError::Stale),
        "replaced dir is gone"
    );
    assert_eq!(fileid_of(b, &d, "y"), attrs(b, &z).fileid);
    assert_eq!(attrs(b, &d).nlink, 4, "d has x and y");

    // Directory moves: nlink and parent follow; never into its own subtree.
    let inner = mkdir(b, &z, "inner", 0o755, &r);
    assert_eq!(
        b.rename(&d, b"y", &inner, b"loop", &r).err(),
        Some(FsError::Inval)
    );
    assert_eq!(
        b.rename(&d, b"y", &z, b"self", &r).err(),
        Some(FsError::Inval)
    );
    b.rename(&z, b"inner", &x, b"moved", &r).expect("move dir");
    assert_eq!(attrs(b, &z).nlink, 2);
    assert_eq!(attrs(b, &x).nlink, 3);
    let p = b.lookup_parent(&inner).expect("parent after move");
    assert_eq!(attrs(b, &p).fileid, attrs(b, &x).fileid);

    // Onto itself (or another name of the same object): nothing happens.
    b.rename(&x, b"v", &x, b"v", &r).expect("onto itself");
    assert_eq!(fileid_of(b, &x, "v"), id);
    b.link(&f, &x, b"v2", &r).expect("link");
    b.rename(&x, b"v", &x, b"v2", &r)
        .expect("onto a hard link of itself");
    assert_eq!((fileid_of(b, &x, "v"), fileid_of(b, &x, "v2")), (id, id));
    assert_eq!(attrs(b, &f).nlink, 2);

    assert_eq!(
        b.rename(&f, b"a", &d, b"b", &r).err(),
        Some(FsError::NotDir)
    );
    assert_eq!(
        b.rename(&d, b"x", &f, b"b", &r).err(),
        Some(FsError::NotDir)
    );
}

/// Hard links and nlink.
pub fn check_link(b: &dyn Backend) {
    let d = scratch(b, "link");
    let r = root();
    let f = new_file(b, &d, "f", 0o644, &r);
    write(b, &f, 0, b"data");
    let other = mkdir(b, &d, "other", 0o755, &r);
    b.link(&f, &other, b"g", &r).expect("link");
    assert_eq!(attrs(b, &f).nlink, 2);
    assert_eq!(fileid_of(b, &other, "g"), attrs(b, &f).fileid);
    assert_eq!(
        attrs(b, &other).nlink,
        2,
        "files do not count in a dir's nlink"
    );

    assert_eq!(b.link(&f, &other, b"g", &r).err(), Some(FsError::Exist));
    assert_eq!(b.link(&f, &f, b"h", &r).err(), Some(FsError::NotDir));
    let e = b.link(&other, &d, b"dirlink", &r).err();
    assert!(
        matches!(e, Some(FsError::IsDir | FsError::Perm)),
        "hard link to a directory: {e:?}"
    );

    b.remove(&d, b"f", &r).expect("remove one name");
    assert_eq!(
        attrs(b, &f).nlink,
        1,
        "object lives on under its other name"
    );
    assert_eq!(
        read(b, &lookup(b, &other, "g"), 0, 10),
        (b"data".to_vec(), true)
    );
    b.remove(&other, b"g", &r).expect("remove last name");
    assert_eq!(b.getattr(&f).err(), Some(FsError::Stale));
    assert_eq!(b.link(&f, &d, b"zombie", &r).err(), Some(FsError::Stale));
}

/// READDIR contents: no "." or "..", cookies, attributes and handles.
pub fn check_readdir(b: &dyn Backend) {
    let d = scratch(b, "readdir");
    assert_eq!(
        b.readdir(&d, 0, 10).map(|(e, eof)| (e.len(), eof)),
        Ok((0, true))
    );
    new_file(b, &d, "f", 0o644, &root());
    mkdir(b, &d, "sub", 0o755, &root());
    let all = list(b, &d, 100);
    let mut n = names(&all);
    n.sort();
    assert_eq!(n, vec!["f", "sub"], "no . or ..");
    for e in &all {
        assert!(e.cookie > 2, "cookies 0, 1, 2 are reserved: {}", e.cookie);
        let name = String::from_utf8_lossy(&e.name);
        let id = fileid_of(b, &d, &name);
        assert_eq!(e.attrs.fileid, id, "{name}: attrs");
        assert_eq!(attrs(b, &e.handle).fileid, id, "{name}: handle");
    }
    let last = all.last().map_or(0, |e| e.cookie);
    assert_eq!(
        b.readdir(&d, last, 10).map(|(e, eof)| (e.len(), eof)),
        Ok((0, true))
    );
    let f = lookup(b, &d, "f");
    assert_eq!(b.readdir(&f, 0, 10).err(), Some(FsError::NotDir));
}

/// READDIR paging: cookies stable across calls and while entries are removed.
pub fn check_readdir_paging(b: &dyn Backend) {
    let d = scratch(b, "paging");
    for i in 0..25 {
        new_file(b, &d, &format!("e{i:02}"), 0o644, &root());
    }
    let all = list(b, &d, 1000);
    assert_eq!(all.len(), 25);
    let cookies: std::collections::HashSet<u64> = all.iter().map(|e| e.cookie).collect();
    assert_eq!(cookies.len(), 25, "cookies are unique");
    assert_eq!(
        names(&list(b, &d, 7)),
        names(&all),
        "paging by 7 sees the same order"
    );
    assert_eq!(names(&list(b, &d, 1)), names(&all), "paging by 1");
    let again: Vec<u64> = list(b, &d, 1000).iter().map(|e| e.cookie).collect();
    let first: Vec<u64> = all.iter().map(|e| e.cookie).collect();
    assert_eq!(again, first, "cookies stable across calls");

    let (page, eof) = b.readdir(&d, 0, 10).expect("first page");
    assert_eq!((page.len(), eof), (10, false));
    let resume = page[9].cookie;
    // Remove entries before and after the position, then the one it points at.
    let gone = [&all[2].name, &all[15].name, &all[20].name];
    for name in gone {
        b.remove(&d, name, &root()).expect("remove");
    }
    let expect: Vec<String> = names(&all[10..])
        .into_iter()
        .filter(|n| !gone.iter().any(|g| g.as_slice() == n.as_bytes()))
        .collect();
    assert_eq!(
        names(&list_from(b, &d, resume, 4)),
        expect,
        "resume after removals"
    );
    b.remove(&d, &all[9].name, &root())
        .expect("remove the resume entry");
    assert_eq!(
        names(&list_from(b, &d, resume, 4)),
        expect,
        "a cookie whose entry is gone still works"
    );
}

/// `change` advances on every modification of the object, and only then.
pub fn check_change(b: &dyn Backend) {
    let d = scratch(b, "change");
    let r = root();
    let f = new_file(b, &d, "f", 0o644, &r);
    let step = |h: &ObjHandle, what: &str, op: &dyn Fn()| {
        let before = attrs(b, h);
        op();
        let after = attrs(b, h);
        assert!(
            after.change > before.change,
            "change must advance on {what}"
        );
        assert!(
            after.ctime >= before.ctime,
            "ctime must not go back on {what}"
        );
    };
    assert_eq!(
        attrs(b, &f).change,
        attrs(b, &f).change,
        "reading changes nothing"
    );
    step(&f, "write", &|| write(b, &f, 0, b"x"));
    step(&f, "truncate", &|| {
        b.setattr(
            &f,
            &SetAttrs {
                size: Some(0),
                ..Default::default()
            },
            &r,
        )
        .map(drop)
        .expect("truncate")
    });
    step(&f, "chmod", &|| {
        b.setattr(&f, &mode(0o600), &r).map(drop).expect("chmod")
    });
    step(&f, "touch", &|| {
        b.setattr(&f, &set_now(), &r).map(drop).expect("touch")
    });
    step(&f, "link", &|| b.link(&f, &d, b"f2", &r).expect("link"));
    step(&f, "unlink", &|| b.remove(&d, b"f2", &r).expect("unlink"));

    let dm = attrs(b, &d).mtime;
    step(&d, "create in dir", &|| {
        new_file(b, &d, "g", 0o644, &r);
    });
    assert!(attrs(b, &d).mtime >= dm);
    step(&d, "mkdir in dir", &|| {
        mkdir(b, &d, "s", 0o755, &r);
    });
    step(&d, "rename in dir", &|| {
        b.rename(&d, b"g", &d, b"h", &r).expect("rename")
    });
    let s = lookup(b, &d, "s");
    step(&d, "rename out of dir", &|| {
        b.rename(&d, b"h", &s, b"h", &r).expect("rename")
    });
    step(&s, "rename into dir", &|| {
        b.rename(&s, b"h", &s, b"i", &r).expect("rename")
    });
    step(&d, "link into dir", &|| {
        b.link(&f, &d, b"f3", &r).expect("link")
    });
    step(&d, "remove from dir", &|| {
        b.remove(&d, b"f3", &r).expect("remove")
    });
    step(&d, "chmod dir", &|| {
        b.setattr(&d, &mode(0o711), &r).map(drop).expect("chmod")
    });
}

/// Non-root callers need write and search permission on directories they change.
pub fn check_permissions(b: &dyn Backend) {
    let d = scratch(b, "perm"); // root-owned, 0755
    let alice = user(ALICE);
    let f = new_file(b, &d, "rootfile", 0o644, &root());
    let open = mkdir(b, &d, "open", 0o777, &root());
    let denied = |what: &str, r: Option<FsError>| assert_eq!(r, Some(FsError::Access), "{what}");
    let none = SetAttrs::default();
    denied(
        "create_file",
        b.create_file(&d, b"x", &none, false, &alice).err(),
    );
    denied(
        "mkdir",
        b.create(&d, b"x", &CreateKind::Directory, &none, &alice)
            .err(),
    );
    let sym = CreateKind::Symlink(b"t".to_vec());
    denied("symlink", b.create(&d, b"x", &sym, &none, &alice).err());
    denied("remove", b.remove(&d, b"rootfile", &alice).err());
    denied(
        "rename within",
        b.rename(&d, b"rootfile", &d, b"y", &alice).err(),
    );
    denied(
        "rename out",
        b.rename(&d, b"rootfile", &open, b"y", &alice).err(),
    );
    // Linux with fs.protected_hardlinks refuses to link another user's file (EPERM)
    // before it checks the directory (EACCES): either answer keeps the file unlinked.
    let r = b.link(&f, &d, b"y", &alice).err();
    assert!(
        matches!(r, Some(FsError::Access | FsError::Perm)),
        "link into: {r:?}"
    );
    denied(
        "truncate",
        b.setattr(
            &f,
            &SetAttrs {
                size: Some(0),
                ..none
            },
            &alice,
        )
        .err(),
    );
    assert_eq!(
        b.setattr(&f, &mode(0o777), &alice).err(),
        Some(FsError::Perm)
    );
    assert!(b.lookup(&d, b"rootfile").is_ok(), "nothing was removed");

    // In a world-writable directory the caller owns what it makes.
    let (mine, _) = b
        .create_file(&open, b"mine", &mode(0o600), true, &alice)
        .expect("create in 0777 dir");
    let a = attrs(b, &mine);
    assert_eq!((a.uid, a.gid, a.mode & 0o7777), (ALICE, ALICE, 0o600));
    b.rename(&open, b"mine", &open, b"mine2", &alice)
        .expect("rename own file");
    b.link(&mine, &open, b"mine3", &alice)
        .expect("link own file");
    b.remove(&open, b"mine3", &alice).expect("remove own link");

    // Exactly one class applies: the owner's bits, even if "other" would allow more.
    let owned = mkdir(b, &d, "owned", 0o777, &root());
    b.setattr(
        &owned,
        &SetAttrs {
            uid: Some(ALICE),
            gid: Some(ALICE),
            mode: Some(0o077),
            ..none
        },
        &root(),
    )
    .expect("chown");
    denied(
        "owner bits 0",
        b.create_file(&owned, b"x", &none, false, &alice).err(),
    );
    b.create_file(&owned, b"bob", &none, true, &user(BOB))
        .expect("others have rwx");
    b.create_file(&owned, b"root", &none, true, &root())
        .expect("root ignores modes");

    // Write without search is not enough.
    let wonly = mkdir(b, &d, "wonly", 0o777, &root());
    b.setattr(&wonly, &mode(0o666), &root()).expect("chmod");
    denied(
        "no search permission",
        b.create_file(&wonly, b"x", &none, false, &alice).err(),
    );
}

/// Sticky directories: only root and the owners of the entry or directory remove it.
pub fn check_sticky(b: &dyn Backend) {
    let d = scratch(b, "sticky");
    let t = mkdir(b, &d, "tmp", 0o1777, &root());
    let (alice, bob) = (user(ALICE), user(BOB));
    new_file(b, &t, "a", 0o666, &alice);
    new_file(b, &t, "b", 0o666, &bob);
    assert_eq!(b.remove(&t, b"a", &bob).err(), Some(FsError::Perm));
    assert_eq!(
        b.rename(&t, b"a", &t, b"c", &bob).err(),
        Some(FsError::Perm)
    );
    assert_eq!(
        b.rename(&t, b"b", &t, b"a", &bob).err(),
        Some(FsError::Perm),
        "replacing"
    );
    b.rename(&t, b"b", &t, b"b2", &bob).expect("own file");
    b.remove(&t, b"a", &alice).expect("owner removes");
    b.remove(&t, b"b2", &root()).expect("root removes");

    // The directory's owner may remove anything in it.
    new_file(b, &t, "c", 0o644, &alice);
    b.setattr(
        &t,
        &SetAttrs {
            uid: Some(CAROL),
            ..Default::default()
        },
        &root(),
    )
    .expect("chown dir");
    b.remove(&t, b"c", &user(CAROL)).expect("dir owner removes");
}

/// setgid directories hand their group down (and the bit to subdirectories).
pub fn check_setgid_dir(b: &dyn Backend) {
    let d = scratch(b, "setgid");
    let g = mkdir(b, &d, "g", 0o777, &root());
    let set = SetAttrs {
        gid: Some(STAFF),
        mode: Some(0o2777),
        ..Default::default()
    };
    b.setattr(&g, &set, &root()).expect("make setgid dir");
    let f = new_file(b, &g, "f", 0o644, &user(ALICE));
    assert_eq!((attrs(b, &f).uid, attrs(b, &f).gid), (ALICE, STAFF));
    let s = mkdir(b, &g, "s", 0o755, &root());
    let sa = attrs(b, &s);
    assert_eq!(sa.gid, STAFF);
    assert_eq!(sa.mode & 0o2000, 0o2000, "subdirectory inherits setgid");
}

/// Handles of removed objects are stale; garbage handles are rejected.
pub fn check_stale_handles(b: &dyn Backend) {
    let d = scratch(b, "stale");
    let f = new_file(b, &d, "f", 0o644, &root());
    let s = mkdir(b, &d, "s", 0o755, &root());
    b.remove(&d, b"f", &root()).expect("remove");
    b.remove(&d, b"s", &root()).expect("rmdir");
    let stale = Some(FsError::Stale);
    let mut buf = Vec::new();
    assert_eq!(b.getattr(&f).err(), stale);
    assert_eq!(b.read(&f, 0, 1, &mut buf).err(), stale);
    assert_eq!(b.write(&f, 0, b"x", Stability::FileSync).err(), stale);
    assert_eq!(b.setattr(&f, &mode(0o600), &root()).err(), stale);
    assert_eq!(b.commit(&f).err(), stale);
    assert_eq!(b.lookup(&s, b"x").err(), stale);
    assert_eq!(b.readdir(&s, 0, 10).err(), stale);
    assert_eq!(b.lookup_parent(&s).err(), stale);
    let r = b.create_file(&s, b"x", &SetAttrs::default(), false, &root());
    assert_eq!(r.err(), stale);

    let garbage: [&[u8]; 4] = [b"", b"garbage", &[0xff; 16], &[0xab; ObjHandle::MAX]];
    for g in garbage {
        let Some(h) = ObjHandle::new(g) else { continue };
        let e = b.getattr(&h).err();
        assert!(
            matches!(e, Some(FsError::BadHandle | FsError::Stale)),
            "garbage handle {h:?}: {e:?}"
        );
        let e = b.lookup(&h, b"x").err();
        assert!(
            matches!(e, Some(FsError::BadHandle | FsError::Stale)),
            "{e:?}"
        );
    }
}

/// statfs numbers are coherent; fsid is stable.
pub fn check_statfs(b: &dyn Backend) {
    let s = b.statfs().expect("statfs");
    assert!(
        s.total_bytes >= s.free_bytes && s.free_bytes >= s.avail_bytes,
        "{s:?}"
    );
    assert!(
        s.total_files >= s.free_files && s.free_files >= s.avail_files,
        "{s:?}"
    );
    assert!(s.total_bytes > 0 && s.total_files > 0, "{s:?}");
    assert_eq!(b.fsid(), b.fsid());
}
