//! Tests of the local backend against real directories under the temp dir (run as root).

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::{LocalBackend, LocalOptions};
use crate::{
    Backend, Caller, CreateKind, FileType, FsError, ObjHandle, SetAttrs, SetTime, Stability,
    Timespec,
};

/// A fresh directory holding `export/` (the export) and `outside/` (beside it).
struct Tmp {
    base: PathBuf,
}

impl Tmp {
    fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let base = std::env::temp_dir().join(format!(
            "ringnfs-localfs-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("export")).unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        for d in [&base, &base.join("export"), &base.join("outside")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Tmp { base }
    }
    fn export(&self) -> PathBuf {
        self.base.join("export")
    }
    fn outside(&self) -> PathBuf {
        self.base.join("outside")
    }
    fn open(&self) -> LocalBackend {
        LocalBackend::open(&self.export(), LocalOptions::default()).unwrap()
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn root() -> Caller {
    Caller::root()
}

fn user(uid: u32) -> Caller {
    Caller {
        uid,
        gid: uid,
        gids: vec![uid],
    }
}

fn mkfile(b: &LocalBackend, dir: &ObjHandle, name: &str) -> ObjHandle {
    let (h, created) = b
        .create_file(dir, name.as_bytes(), &SetAttrs::default(), true, &root())
        .unwrap();
    assert!(created);
    h
}

fn mkdir(b: &LocalBackend, dir: &ObjHandle, name: &str, mode: u32) -> ObjHandle {
    let attrs = SetAttrs {
        mode: Some(mode),
        ..Default::default()
    };
    b.create(
        dir,
        name.as_bytes(),
        &CreateKind::Directory,
        &attrs,
        &root(),
    )
    .unwrap()
}

fn read_all(b: &LocalBackend, h: &ObjHandle, off: u64, count: u32) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let eof = b.read(h, off, count, &mut buf).unwrap();
    (buf, eof)
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn open_fails_clearly() {
    let t = Tmp::new("openerr");
    let e = LocalBackend::open(&t.base.join("missing"), LocalOptions::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("missing"), "{e}");
    std::fs::write(t.base.join("file"), b"x").unwrap();
    assert!(LocalBackend::open(&t.base.join("file"), LocalOptions::default()).is_err());
}

#[test]
fn handles_survive_restart() {
    let t = Tmp::new("restart");
    let (root_h, dh, fh, fileid, fsid) = {
        let b = t.open();
        let r = b.root();
        let dh = mkdir(&b, &r, "dir", 0o755);
        let fh = mkfile(&b, &dh, "file");
        b.write(&fh, 0, b"persist", Stability::FileSync).unwrap();
        let id = b.getattr(&fh).unwrap().fileid;
        (r, dh, fh, id, b.fsid())
    };
    let b = t.open();
    assert_eq!(b.root(), root_h);
    assert_eq!(b.fsid(), fsid);
    assert_eq!(b.getattr(&fh).unwrap().fileid, fileid);
    assert_eq!(b.lookup(&root_h, b"dir").unwrap(), dh);
    assert_eq!(b.lookup(&dh, b"file").unwrap(), fh);
    assert_eq!(read_all(&b, &fh, 0, 100), (b"persist".to_vec(), true));
    assert_eq!(b.lookup_parent(&dh).unwrap(), root_h);

    // Removed → stale, also after a restart.
    b.remove(&dh, b"file", &root()).unwrap();
    assert_eq!(b.getattr(&fh), Err(FsError::Stale));
    drop(b);
    let b = t.open();
    assert_eq!(b.getattr(&fh), Err(FsError::Stale));
}

#[test]
fn bad_handles() {
    let t = Tmp::new("badh");
    let b = t.open();
    assert_eq!(
        b.getattr(&ObjHandle::new(b"").unwrap()),
        Err(FsError::BadHandle)
    );
    assert_eq!(
        b.getattr(&ObjHandle::new(b"\x09abcdefgh").unwrap()),
        Err(FsError::BadHandle)
    );
    let junk = ObjHandle::new(&[1, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]).unwrap();
    assert!(matches!(
        b.getattr(&junk),
        Err(FsError::Stale | FsError::BadHandle)
    ));
}

#[test]
fn symlink_is_never_followed() {
    let t = Tmp::new("symlink");
    let b = t.open();
    let r = b.root();
    let l = b
        .create(
            &r,
            b"evil",
            &CreateKind::Symlink(b"/".to_vec()),
            &SetAttrs::default(),
            &root(),
        )
        .unwrap();
    assert_eq!(b.getattr(&l).unwrap().ftype, FileType::Symlink);
    assert_eq!(b.readlink(&l).unwrap(), b"/");
    assert_eq!(b.lookup(&r, b"evil").unwrap(), l);
    assert_eq!(b.lookup(&l, b"etc"), Err(FsError::NotDir));
    assert_eq!(b.readdir(&l, 0, 10).err(), Some(FsError::NotDir));
    assert_eq!(
        b.create_file(&l, b"x", &SetAttrs::default(), false, &root())
            .err(),
        Some(FsError::NotDir)
    );
    assert_eq!(b.lookup_parent(&l), Err(FsError::NotDir));
    let mut buf = Vec::new();
    assert_eq!(b.read(&l, 0, 10, &mut buf), Err(FsError::SymLink));
    assert_eq!(
        b.write(&l, 0, b"x", Stability::Unstable),
        Err(FsError::SymLink)
    );

    // Made locally, pointing up and out: still just a link.
    std::os::unix::fs::symlink("../outside", t.export().join("up")).unwrap();
    std::fs::write(t.outside().join("secret"), b"s").unwrap();
    let up = b.lookup(&r, b"up").unwrap();
    assert_eq!(b.getattr(&up).unwrap().ftype, FileType::Symlink);
    assert_eq!(b.readlink(&up).unwrap(), b"../outside");
    assert_eq!(b.lookup(&up, b"secret"), Err(FsError::NotDir));
    // Creating through a (dangling) symlink never creates its target.
    std::os::unix::fs::symlink("../outside/created", t.export().join("dangling")).unwrap();
    let none = SetAttrs::default();
    assert_eq!(
        b.create_file(&r, b"dangling", &none, false, &root()).err(),
        Some(FsError::SymLink)
    );
    assert_eq!(
        b.create_file(&r, b"dangling", &none, true, &root()).err(),
        Some(FsError::Exist)
    );
    assert_eq!(
        b.create(&r, b"dangling", &CreateKind::Directory, &none, &root())
            .err(),
        Some(FsError::Exist)
    );
    assert!(!t.outside().join("created").exists());
    // Removing and renaming a link acts on the link.
    b.rename(&r, b"dangling", &r, b"dangling2", &root())
        .unwrap();
    b.remove(&r, b"dangling2", &root()).unwrap();
    assert!(t.outside().exists());
    // A regular file given as "directory".
    let f = mkfile(&b, &r, "plain");
    assert_eq!(b.lookup(&f, b"x"), Err(FsError::NotDir));
    assert_eq!(b.readlink(&f), Err(FsError::Inval));
    // Symlink through setattr of times and (ignored) mode.
    let set = SetAttrs {
        mode: Some(0o600),
        mtime: Some(SetTime::Client(Timespec {
            secs: 1000,
            nsecs: 5,
        })),
        ..Default::default()
    };
    let a = b.setattr(&l, &set, &root()).unwrap();
    assert_eq!(
        a.mtime,
        Timespec {
            secs: 1000,
            nsecs: 5
        }
    );
    assert_eq!(
        std::fs::read_link(t.export().join("evil")).unwrap(),
        Path::new("/")
    );
}

#[test]
fn bad_names() {
    let t = Tmp::new("names");
    let b = t.open();
    let r = b.root();
    let d = mkdir(&b, &r, "d", 0o755);
    for bad in [&b".."[..], b".", b"a/b", b"/", b"a\0b"] {
        assert_eq!(b.lookup(&d, bad), Err(FsError::BadName), "{bad:?}");
        assert_eq!(
            b.create_file(&d, bad, &SetAttrs::default(), false, &root())
                .err(),
            Some(FsError::BadName)
        );
        assert_eq!(b.remove(&d, bad, &root()), Err(FsError::BadName));
        assert_eq!(b.rename(&d, bad, &d, b"x", &root()), Err(FsError::BadName));
    }
    assert_eq!(b.lookup(&d, b""), Err(FsError::Inval));
    assert_eq!(b.lookup(&d, &[b'a'; 256]), Err(FsError::NameTooLong));
    assert_eq!(b.lookup_parent(&r), Err(FsError::NoEnt));
    assert_eq!(b.lookup_parent(&d).unwrap(), r);
}

#[test]
fn directory_moved_out_goes_stale() {
    let t = Tmp::new("moveout");
    let b = t.open();
    let r = b.root();
    let d = mkdir(&b, &r, "d", 0o755);
    let sub = mkdir(&b, &d, "sub", 0o755);
    let inner = mkfile(&b, &d, "inner");
    std::fs::write(t.outside().join("secret"), b"secret").unwrap();

    // A local user moves d out of the export.
    std::fs::rename(t.export().join("d"), t.outside().join("d")).unwrap();
    assert_eq!(b.getattr(&d), Err(FsError::Stale));
    assert_eq!(b.getattr(&sub), Err(FsError::Stale));
    assert_eq!(b.lookup(&d, b"inner"), Err(FsError::Stale));
    assert_eq!(b.lookup_parent(&d), Err(FsError::Stale));
    assert_eq!(b.lookup_parent(&sub), Err(FsError::Stale));
    assert_eq!(b.readdir(&d, 0, 10).err(), Some(FsError::Stale));
    assert_eq!(
        b.create_file(&d, b"new", &SetAttrs::default(), false, &root())
            .err(),
        Some(FsError::Stale)
    );
    assert!(!t.outside().join("d/new").exists());
    assert_eq!(
        b.rename(&d, b"inner", &r, b"stolen", &root()),
        Err(FsError::Stale)
    );
    // Nothing outside is reachable by name from anything we handed out.
    assert_eq!(b.lookup(&r, b"secret"), Err(FsError::NoEnt));
    assert_eq!(b.lookup(&r, b"outside"), Err(FsError::NoEnt));
    // Files are not traversable: the documented exception is that a file moved out stays
    // usable through an old handle.
    assert!(b.getattr(&inner).is_ok());

    // Moved back: valid again.
    std::fs::rename(t.outside().join("d"), t.export().join("d")).unwrap();
    assert!(b.getattr(&d).is_ok());
    assert_eq!(b.lookup(&d, b"inner").unwrap(), inner);
    assert_eq!(b.lookup_parent(&sub).unwrap(), d);
}

#[test]
fn mount_points_are_not_crossed() {
    // Needs mount privileges: skipped (visibly) where the sandbox forbids it.
    let t = Tmp::new("mnt");
    let mp = t.export().join("mp");
    std::fs::create_dir(&mp).unwrap();
    let src = std::ffi::CString::new(t.outside().as_os_str().as_encoded_bytes()).unwrap();
    let dst = std::ffi::CString::new(mp.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid NUL-terminated paths; MS_BIND ignores the other arguments.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if r != 0 {
        ringnfs_testkit::skip(
            "mount_points_are_not_crossed",
            &format!("bind mount refused: {}", std::io::Error::last_os_error()),
        );
        return;
    }
    std::fs::write(t.outside().join("secret"), b"s").unwrap();
    let res = std::panic::catch_unwind(|| {
        let b = t.open();
        let r = b.root();
        assert_eq!(b.lookup(&r, b"mp"), Err(FsError::NoEnt));
        let (es, _) = b.readdir(&r, 0, 100).unwrap();
        assert!(es.iter().all(|e| e.name != b"mp"));
    });
    // SAFETY: valid NUL-terminated path.
    unsafe { libc::umount2(dst.as_ptr(), libc::MNT_DETACH) };
    res.unwrap();
}

#[test]
fn write_read_commit_1mib() {
    let t = Tmp::new("rw");
    let b = t.open();
    let f = mkfile(&b, &b.root(), "big");
    let data = pattern(1 << 20, 7);
    for (i, chunk) in data.chunks(64 * 1024).enumerate() {
        let (n, s) = b
            .write(&f, (i * 64 * 1024) as u64, chunk, Stability::Unstable)
            .unwrap();
        assert_eq!((n as usize, s), (chunk.len(), Stability::Unstable));
    }
    b.commit(&f).unwrap();
    assert_eq!(
        b.write(&f, 0, &data[..10], Stability::DataSync).unwrap(),
        (10, Stability::DataSync)
    );
    assert_eq!(
        b.write(&f, 0, &data[..10], Stability::FileSync).unwrap(),
        (10, Stability::FileSync)
    );
    let (got, eof) = read_all(&b, &f, 0, 1 << 20);
    assert!(got == data);
    assert!(eof);
    let (got, eof) = read_all(&b, &f, 4096, 4096);
    assert_eq!(got, &data[4096..8192]);
    assert!(!eof);
    // Appends to what the buffer holds.
    let mut buf = b"head".to_vec();
    assert!(b.read(&f, (1 << 20) - 4, 100, &mut buf).unwrap());
    assert_eq!(&buf[4..], &data[data.len() - 4..]);
    assert_eq!(b.getattr(&f).unwrap().size, 1 << 20);
    assert_eq!(std::fs::read(t.export().join("big")).unwrap(), data);
    // Read at or past the end.
    assert_eq!(read_all(&b, &f, 1 << 20, 10), (vec![], true));
    assert_eq!(read_all(&b, &f, 5 << 20, 10), (vec![], true));
    assert_eq!(read_all(&b, &f, 0, 0), (vec![], false));
    // Data ops on a directory.
    let mut buf = Vec::new();
    assert_eq!(b.read(&b.root(), 0, 1, &mut buf), Err(FsError::IsDir));
    assert_eq!(
        b.write(&b.root(), 0, b"x", Stability::Unstable),
        Err(FsError::IsDir)
    );
    assert_eq!(
        b.write(&f, u64::MAX - 2, b"xyz", Stability::Unstable),
        Err(FsError::FBig)
    );
}

#[test]
fn sparse_reads() {
    let t = Tmp::new("sparse");
    let b = t.open();
    let f = mkfile(&b, &b.root(), "sparse");
    let at = 10u64 << 20;
    b.write(&f, at, b"tail", Stability::Unstable).unwrap();
    let a = b.getattr(&f).unwrap();
    assert_eq!(a.size, at + 4);
    assert!(a.space_used < 1 << 20, "sparse file uses {}", a.space_used);
    let (got, eof) = read_all(&b, &f, 4096, 65536);
    assert_eq!(got, vec![0u8; 65536]);
    assert!(!eof);
    let (got, eof) = read_all(&b, &f, at - 2, 100);
    assert_eq!(got, b"\0\0tail");
    assert!(eof);
}

#[test]
fn truncate_and_extend() {
    let t = Tmp::new("trunc");
    let b = t.open();
    let r = b.root();
    let f = mkfile(&b, &r, "f");
    b.write(&f, 0, &pattern(1000, 1), Stability::Unstable)
        .unwrap();
    let size = |s: u64| SetAttrs {
        size: Some(s),
        ..Default::default()
    };
    assert_eq!(b.setattr(&f, &size(100), &root()).unwrap().size, 100);
    assert_eq!(read_all(&b, &f, 0, 1000), (pattern(100, 1), true));
    assert_eq!(b.setattr(&f, &size(300), &root()).unwrap().size, 300);
    let (got, eof) = read_all(&b, &f, 0, 1000);
    assert!(eof);
    assert_eq!(&got[..100], &pattern(100, 1)[..]);
    assert_eq!(&got[100..], &[0u8; 200][..]);
    assert_eq!(b.setattr(&r, &size(0), &root()), Err(FsError::IsDir));
    // Size at creation.
    let attrs = SetAttrs {
        size: Some(5000),
        mode: Some(0o600),
        ..Default::default()
    };
    let (g, _) = b.create_file(&r, b"g", &attrs, true, &root()).unwrap();
    let a = b.getattr(&g).unwrap();
    assert_eq!((a.size, a.mode), (5000, 0o600));
}

#[test]
fn readdir_pages_with_stable_cookies() {
    let t = Tmp::new("readdir");
    let b = t.open();
    let r = b.root();
    let d = mkdir(&b, &r, "d", 0o755);
    let names: HashSet<Vec<u8>> = (0..100)
        .map(|i| format!("file-{i:03}").into_bytes())
        .collect();
    for n in &names {
        mkfile(&b, &d, std::str::from_utf8(n).unwrap());
    }
    let page = |cookie| b.readdir(&d, cookie, 7).unwrap();
    let mut all = Vec::new();
    let mut cookie = 0;
    let mut pages = 0;
    loop {
        let (es, eof) = page(cookie);
        pages += 1;
        assert!(es.len() <= 7);
        for e in &es {
            assert!(e.cookie > 2);
            assert_eq!(b.lookup(&d, &e.name).unwrap(), e.handle);
            assert_eq!(e.attrs, b.getattr(&e.handle).unwrap());
        }
        if let Some(last) = es.last() {
            cookie = last.cookie;
        }
        all.extend(es);
        if eof {
            break;
        }
        assert!(pages < 100);
    }
    let got: HashSet<Vec<u8>> = all.iter().map(|e| e.name.clone()).collect();
    assert_eq!(all.len(), 100, "no duplicates");
    assert_eq!(got, names);
    // The same cookie gives the same page again.
    let mid = all[40].cookie;
    let (again, _) = page(mid);
    let expect: Vec<_> = all[41..48].iter().map(|e| e.name.clone()).collect();
    assert_eq!(
        again.iter().map(|e| e.name.clone()).collect::<Vec<_>>(),
        expect
    );
    // Removing an earlier entry does not disturb later cookies.
    b.remove(&d, &all[10].name, &root()).unwrap();
    let (again, _) = page(mid);
    assert_eq!(
        again.iter().map(|e| e.name.clone()).collect::<Vec<_>>(),
        expect
    );
    // Empty directory; bad cookies.
    let e = mkdir(&b, &r, "empty", 0o755);
    assert_eq!(b.readdir(&e, 0, 10).unwrap(), (vec![], true));
    assert_eq!(b.readdir(&e, 1, 10).err(), Some(FsError::Inval));
    let (one, eof) = b.readdir(&r, 0, 100).unwrap();
    assert!(eof);
    let mut rn: Vec<_> = one.iter().map(|e| e.name.clone()).collect();
    rn.sort();
    assert_eq!(rn, vec![b"d".to_vec(), b"empty".to_vec()]);
}

#[test]
fn callers_credentials_are_enforced() {
    let t = Tmp::new("creds");
    let b = t.open();
    let r = b.root();
    let u = user(1000);
    let none = SetAttrs::default();
    // Root-owned 0755 export root: uid 1000 may not change it.
    assert_eq!(
        b.create_file(&r, b"x", &none, false, &u).err(),
        Some(FsError::Access)
    );
    assert_eq!(
        b.create(&r, b"x", &CreateKind::Directory, &none, &u).err(),
        Some(FsError::Access)
    );
    let rootfile = mkfile(&b, &r, "rootfile");
    assert_eq!(b.remove(&r, b"rootfile", &u), Err(FsError::Access));
    assert_eq!(
        b.rename(&r, b"rootfile", &r, b"y", &u),
        Err(FsError::Access)
    );
    let open = mkdir(&b, &r, "open", 0o777);
    assert_eq!(b.getattr(&open).unwrap().mode, 0o777);
    // EPERM under fs.protected_hardlinks (not the owner), else EACCES (the directory).
    assert!(matches!(
        b.link(&rootfile, &r, b"l", &u),
        Err(FsError::Perm | FsError::Access)
    ));
    assert_eq!(
        b.setattr(
            &rootfile,
            &SetAttrs {
                mode: Some(0o777),
                ..Default::default()
            },
            &u
        ),
        Err(FsError::Perm)
    );
    assert_eq!(
        b.setattr(
            &rootfile,
            &SetAttrs {
                size: Some(0),
                ..Default::default()
            },
            &u
        ),
        Err(FsError::Access)
    );

    // A 0777 directory: uid 1000 creates, and owns what it creates.
    let (f, created) = b.create_file(&open, b"mine", &none, false, &u).unwrap();
    assert!(created);
    let a = b.getattr(&f).unwrap();
    assert_eq!((a.uid, a.gid, a.mode), (1000, 1000, 0o644));
    assert_eq!(
        std::fs::metadata(t.export().join("open/mine"))
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
            .unwrap(),
        1000
    );
    let sd = b
        .create(&open, b"subdir", &CreateKind::Directory, &none, &u)
        .unwrap();
    assert_eq!(b.getattr(&sd).unwrap().uid, 1000);
    let a = b
        .setattr(
            &f,
            &SetAttrs {
                mode: Some(0o600),
                ..Default::default()
            },
            &u,
        )
        .unwrap();
    assert_eq!(a.mode, 0o600);
    assert_eq!(
        b.setattr(
            &f,
            &SetAttrs {
                uid: Some(0),
                ..Default::default()
            },
            &u
        ),
        Err(FsError::Perm)
    );
    assert_eq!(
        b.create(&open, b"dev", &CreateKind::Char(1, 3), &none, &u)
            .err(),
        Some(FsError::Perm)
    );
    assert_eq!(b.link(&f, &r, b"l", &u), Err(FsError::Access));
    b.link(&f, &open, b"mine2", &u).unwrap();
    assert_eq!(b.getattr(&f).unwrap().nlink, 2);
    b.rename(&open, b"mine2", &open, b"mine3", &u).unwrap();
    b.remove(&open, b"mine3", &u).unwrap();
    // Another user cannot change uid 1000's file or its times.
    let v = user(1001);
    assert_eq!(
        b.setattr(
            &f,
            &SetAttrs {
                mtime: Some(SetTime::Client(Timespec { secs: 1, nsecs: 0 })),
                ..Default::default()
            },
            &v
        ),
        Err(FsError::Perm)
    );
    // Supplementary groups count: a group-writable directory.
    let grp = mkdir(&b, &r, "grp", 0o775);
    b.setattr(
        &grp,
        &SetAttrs {
            gid: Some(4242),
            ..Default::default()
        },
        &root(),
    )
    .unwrap();
    assert_eq!(
        b.create_file(&grp, b"g", &none, false, &v).err(),
        Some(FsError::Access)
    );
    let member = Caller {
        uid: 1001,
        gid: 1001,
        gids: vec![4242],
    };
    assert!(b.create_file(&grp, b"g", &none, false, &member).is_ok());
    // Sticky directory: others' files cannot be removed.
    let sticky = mkdir(&b, &r, "sticky", 0o1777);
    assert_eq!(b.getattr(&sticky).unwrap().mode, 0o1777);
    b.create_file(&sticky, b"his", &none, false, &u).unwrap();
    assert_eq!(b.remove(&sticky, b"his", &v), Err(FsError::Perm));
    b.remove(&sticky, b"his", &u).unwrap();
    // The thread is root again afterwards.
    mkfile(&b, &r, "after");
    // SAFETY: querying (invalid id: no change).
    assert_eq!(unsafe { libc::setfsuid(u32::MAX) }, 0);
}

#[test]
fn read_only_refuses_every_change() {
    let t = Tmp::new("ro");
    std::fs::create_dir(t.export().join("d")).unwrap();
    std::fs::write(t.export().join("f"), b"data").unwrap();
    let b = LocalBackend::open(
        &t.export(),
        LocalOptions {
            read_only: true,
            ..Default::default()
        },
    )
    .unwrap();
    let r = b.root();
    let f = b.lookup(&r, b"f").unwrap();
    let d = b.lookup(&r, b"d").unwrap();
    let none = SetAttrs::default();
    let ro = Err(FsError::Rofs);
    assert_eq!(
        b.setattr(
            &f,
            &SetAttrs {
                mode: Some(0o600),
                ..Default::default()
            },
            &root()
        )
        .map(drop),
        ro
    );
    assert_eq!(b.write(&f, 0, b"x", Stability::FileSync).map(drop), ro);
    assert_eq!(b.create_file(&r, b"n", &none, false, &root()).map(drop), ro);
    assert_eq!(b.create_file(&r, b"f", &none, false, &root()).map(drop), ro);
    assert_eq!(
        b.create(&r, b"n", &CreateKind::Directory, &none, &root())
            .map(drop),
        ro
    );
    assert_eq!(b.remove(&r, b"f", &root()), ro);
    assert_eq!(b.remove(&r, b"d", &root()), ro);
    assert_eq!(b.rename(&r, b"f", &d, b"f", &root()), ro);
    assert_eq!(b.link(&f, &d, b"l", &root()), ro);
    assert_eq!(read_all(&b, &f, 0, 10), (b"data".to_vec(), true));
    b.commit(&f).unwrap();
    assert_eq!(b.readdir(&r, 0, 10).unwrap().0.len(), 2);
    assert_eq!(std::fs::read(t.export().join("f")).unwrap(), b"data");
}

#[test]
fn errno_mapping() {
    let t = Tmp::new("errno");
    let b = t.open();
    let r = b.root();
    let none = SetAttrs::default();
    assert_eq!(b.lookup(&r, b"missing"), Err(FsError::NoEnt));
    assert_eq!(b.remove(&r, b"missing", &root()), Err(FsError::NoEnt));
    let f = mkfile(&b, &r, "f");
    assert_eq!(
        b.create_file(&r, b"f", &none, true, &root()).err(),
        Some(FsError::Exist)
    );
    assert_eq!(
        b.create_file(&r, b"f", &none, false, &root()).unwrap(),
        (f, false)
    );
    assert_eq!(
        b.create(&r, b"f", &CreateKind::Directory, &none, &root())
            .err(),
        Some(FsError::Exist)
    );
    let d = mkdir(&b, &r, "d", 0o755);
    mkfile(&b, &d, "inner");
    assert_eq!(b.remove(&r, b"d", &root()), Err(FsError::NotEmpty));
    let d2 = mkdir(&b, &r, "d2", 0o755);
    assert!(matches!(
        b.rename(&r, b"d2", &r, b"d", &root()),
        Err(FsError::NotEmpty | FsError::Exist)
    ));
    assert_eq!(b.rename(&r, b"f", &r, b"d", &root()), Err(FsError::IsDir));
    assert_eq!(b.rename(&r, b"d2", &r, b"f", &root()), Err(FsError::NotDir));
    assert_eq!(
        b.rename(&r, b"d", &d, b"self", &root()),
        Err(FsError::Inval)
    );
    assert_eq!(b.lookup(&f, b"x"), Err(FsError::NotDir));
    assert_eq!(
        b.create_file(&r, b"d", &none, false, &root()).err(),
        Some(FsError::IsDir)
    );
    assert_eq!(b.link(&d2, &r, b"dl", &root()), Err(FsError::IsDir));
    assert_eq!(b.link(&f, &r, b"d", &root()), Err(FsError::Exist));
    assert_eq!(b.readdir(&f, 0, 1).err(), Some(FsError::NotDir));
    assert_eq!(b.remove(&r, b"d2", &root()), Ok(()));
    assert_eq!(b.getattr(&d2), Err(FsError::Stale));
}

#[test]
fn create_kinds_and_times() {
    let t = Tmp::new("kinds");
    let b = t.open();
    let r = b.root();
    let none = SetAttrs::default();
    let fifo = b
        .create(&r, b"fifo", &CreateKind::Fifo, &none, &root())
        .unwrap();
    assert_eq!(b.getattr(&fifo).unwrap().ftype, FileType::Fifo);
    let sock = b
        .create(&r, b"sock", &CreateKind::Socket, &none, &root())
        .unwrap();
    assert_eq!(b.getattr(&sock).unwrap().ftype, FileType::Socket);
    let chr = b
        .create(&r, b"null", &CreateKind::Char(1, 3), &none, &root())
        .unwrap();
    let a = b.getattr(&chr).unwrap();
    assert_eq!((a.ftype, a.rdev), (FileType::Char, (1, 3)));
    let blk = b
        .create(&r, b"blk", &CreateKind::Block(7, 200), &none, &root())
        .unwrap();
    assert_eq!(b.getattr(&blk).unwrap().rdev, (7, 200));
    // Devices and fifos are never opened for data.
    let mut buf = Vec::new();
    assert_eq!(b.read(&chr, 0, 10, &mut buf), Err(FsError::Inval));
    assert_eq!(b.read(&fifo, 0, 10, &mut buf), Err(FsError::Inval));
    assert_eq!(
        b.write(&chr, 0, b"x", Stability::Unstable),
        Err(FsError::Inval)
    );
    // Mode exactly as asked (no umask), times.
    let attrs = SetAttrs {
        mode: Some(0o777),
        atime: Some(SetTime::Client(Timespec {
            secs: 100,
            nsecs: 1,
        })),
        mtime: Some(SetTime::Client(Timespec {
            secs: 200,
            nsecs: 2,
        })),
        ..Default::default()
    };
    let d = b
        .create(&r, b"d", &CreateKind::Directory, &attrs, &root())
        .unwrap();
    let a = b.getattr(&d).unwrap();
    assert_eq!(
        (a.mode, a.atime.secs, a.mtime),
        (
            0o777,
            100,
            Timespec {
                secs: 200,
                nsecs: 2
            }
        )
    );
    let (f, _) = b.create_file(&r, b"f", &attrs, true, &root()).unwrap();
    let a = b.getattr(&f).unwrap();
    assert_eq!((a.mode, a.mtime.secs), (0o777, 200));
    let before = b.getattr(&f).unwrap();
    let now = SetAttrs {
        mtime: Some(SetTime::ServerNow),
        ..Default::default()
    };
    let after = b.setattr(&f, &now, &root()).unwrap();
    assert!(after.mtime > before.mtime);
    assert!(after.change > before.change);
    assert_eq!(after.atime, before.atime);
    // change advances on data writes too.
    b.write(&f, 0, b"x", Stability::Unstable).unwrap();
    assert!(b.getattr(&f).unwrap().change > after.change);
    // chown by root.
    let a = b
        .setattr(
            &f,
            &SetAttrs {
                uid: Some(1234),
                gid: Some(5678),
                ..Default::default()
            },
            &root(),
        )
        .unwrap();
    assert_eq!((a.uid, a.gid), (1234, 5678));
    // Symlink with an empty target.
    assert_eq!(
        b.create(&r, b"l", &CreateKind::Symlink(vec![]), &none, &root())
            .err(),
        Some(FsError::Inval)
    );
    let s = b.statfs().unwrap();
    assert!(s.total_bytes > 0 && s.total_files > 0 && s.avail_bytes <= s.total_bytes);
}

#[test]
fn rename_and_link_keep_handles() {
    let t = Tmp::new("rename");
    let b = t.open();
    let r = b.root();
    let a = mkdir(&b, &r, "a", 0o755);
    let c = mkdir(&b, &r, "c", 0o755);
    let f = mkfile(&b, &a, "f");
    b.write(&f, 0, b"hello", Stability::Unstable).unwrap();
    b.rename(&a, b"f", &c, b"g", &root()).unwrap();
    assert_eq!(b.lookup(&c, b"g").unwrap(), f);
    assert_eq!(b.lookup(&a, b"f"), Err(FsError::NoEnt));
    assert_eq!(read_all(&b, &f, 0, 10), (b"hello".to_vec(), true));
    b.link(&f, &a, b"f2", &root()).unwrap();
    assert_eq!(b.lookup(&a, b"f2").unwrap(), f);
    // Rename over another file: the victim is gone from the cache and goes stale.
    let v = mkfile(&b, &r, "victim");
    b.write(&v, 0, b"v", Stability::Unstable).unwrap();
    let open = b.open_files();
    b.rename(&c, b"g", &r, b"victim", &root()).unwrap();
    assert_eq!(b.open_files(), open - 1);
    assert_eq!(b.getattr(&v), Err(FsError::Stale));
    // Directory renames keep the directory's handle and its parent changes.
    b.rename(&r, b"c", &a, b"c", &root()).unwrap();
    assert_eq!(b.lookup_parent(&c).unwrap(), a);
    // Link a symlink.
    let l = b
        .create(
            &r,
            b"sl",
            &CreateKind::Symlink(b"target".to_vec()),
            &SetAttrs::default(),
            &root(),
        )
        .unwrap();
    b.link(&l, &r, b"sl2", &root()).unwrap();
    assert_eq!(b.lookup(&r, b"sl2").unwrap(), l);
    assert_eq!(b.getattr(&l).unwrap().nlink, 2);
}

#[test]
fn open_file_cache_is_bounded() {
    let t = Tmp::new("cache");
    let b = LocalBackend::open(
        &t.export(),
        LocalOptions {
            open_file_cache: 8,
            ..Default::default()
        },
    )
    .unwrap();
    let r = b.root();
    let files: Vec<_> = (0..60).map(|i| mkfile(&b, &r, &format!("f{i}"))).collect();
    for (i, f) in files.iter().enumerate() {
        b.write(f, 0, format!("file {i}").as_bytes(), Stability::Unstable)
            .unwrap();
        assert!(b.open_files() <= 8, "{} open", b.open_files());
    }
    for (i, f) in files.iter().enumerate() {
        assert_eq!(read_all(&b, f, 0, 100).0, format!("file {i}").into_bytes());
        assert!(b.open_files() <= 8);
    }
    // Removing drops the cached descriptor.
    let last = files.last().unwrap();
    read_all(&b, last, 0, 1);
    let before = b.open_files();
    b.remove(&r, b"f59", &root()).unwrap();
    assert_eq!(b.open_files(), before - 1);
    // Unlinked locally while cached: stale, and the descriptor is let go.
    read_all(&b, &files[0], 0, 1);
    std::fs::remove_file(t.export().join("f0")).unwrap();
    let before = b.open_files();
    assert_eq!(b.getattr(&files[0]), Err(FsError::Stale));
    assert_eq!(b.open_files(), before - 1);
    assert_eq!(b.getattr(&files[0]), Err(FsError::Stale));
    // No caching at all still works.
    let b = LocalBackend::open(
        &t.export(),
        LocalOptions {
            open_file_cache: 0,
            ..Default::default()
        },
    )
    .unwrap();
    b.write(&files[1], 0, b"again", Stability::Unstable)
        .unwrap();
    assert_eq!(read_all(&b, &files[1], 0, 5).0, b"again");
    assert_eq!(b.open_files(), 0);
}

#[test]
fn concurrent_writers() {
    let t = Tmp::new("conc");
    let b = Arc::new(t.open());
    let r = b.root();
    let open = mkdir(&b, &r, "open", 0o777);
    let shared = mkfile(&b, &r, "shared");
    const ROUNDS: usize = 50;
    const CHUNK: usize = 4096;
    let threads: Vec<_> = (0..8u32)
        .map(|i| {
            let b = b.clone();
            std::thread::spawn(move || {
                // Half the threads act as ordinary users: credentials are per thread.
                let caller = if i % 2 == 0 { root() } else { user(2000 + i) };
                let name = format!("t{i}");
                let (f, _) = b
                    .create_file(&open, name.as_bytes(), &SetAttrs::default(), false, &caller)
                    .unwrap();
                assert_eq!(b.getattr(&f).unwrap().uid, caller.uid);
                for k in 0..ROUNDS {
                    let data = pattern(CHUNK, (i as u8) ^ (k as u8));
                    b.write(&f, (k * CHUNK) as u64, &data, Stability::Unstable)
                        .unwrap();
                    let off = ((k * 8 + i as usize) * CHUNK) as u64;
                    b.write(&shared, off, &data, Stability::Unstable).unwrap();
                    if k % 10 == 0 {
                        b.commit(&f).unwrap();
                        b.readdir(&open, 0, 4).unwrap();
                        b.getattr(&shared).unwrap();
                    }
                }
                f
            })
        })
        .collect();
    let handles: Vec<ObjHandle> = threads.into_iter().map(|j| j.join().unwrap()).collect();
    for (i, f) in handles.iter().enumerate() {
        let (got, eof) = read_all(&b, f, 0, (ROUNDS * CHUNK) as u32);
        assert!(eof);
        for k in 0..ROUNDS {
            assert!(got[k * CHUNK..(k + 1) * CHUNK] == pattern(CHUNK, (i as u8) ^ (k as u8)));
            let off = ((k * 8 + i) * CHUNK) as u64;
            let (s, _) = read_all(&b, &shared, off, CHUNK as u32);
            assert!(s == pattern(CHUNK, (i as u8) ^ (k as u8)));
        }
        let uid = b.getattr(f).unwrap().uid;
        assert_eq!(uid, if i % 2 == 0 { 0 } else { 2000 + i as u32 });
    }
    assert_eq!(
        b.getattr(&shared).unwrap().size,
        (ROUNDS * 8 * CHUNK) as u64
    );
}

#[test]
fn conformance() {
    let t = Tmp::new("conformance");
    let b = LocalBackend::open(&t.export(), LocalOptions::default()).unwrap();
    crate::conformance::run_all(&b);
}

#[test]
fn lock_files_are_descriptions_of_their_own() {
    let t = Tmp::new("lockfile");
    let b = t.open();
    let r = b.root();
    let f = mkfile(&b, &r, "f");
    let owner1 = b.lock_file(&f, true).unwrap().unwrap();
    let owner2 = b.lock_file(&f, true).unwrap().unwrap();
    let asker = b.lock_file(&f, false).unwrap().unwrap();
    assert!(owner1.writable() && !asker.writable());
    owner1.set(crate::LockKind::Write, 0, 10).unwrap();
    // Another owner's description conflicts; a read-only one sees the lock.
    assert!(matches!(
        owner2.set(crate::LockKind::Read, 5, 6),
        Err(crate::LockError::Denied(_))
    ));
    assert_eq!(
        asker
            .test(0, u64::MAX, false)
            .unwrap()
            .map(|c| (c.start, c.end)),
        Some((0, 10))
    );
    // Not regular files: no lock file.
    assert_eq!(b.lock_file(&r, true).unwrap().err(), Some(FsError::IsDir));
    // A read-only export: read-only descriptions, so write locks are refused.
    let ro = LocalBackend::open(
        &t.export(),
        LocalOptions {
            read_only: true,
            ..LocalOptions::default()
        },
    )
    .unwrap();
    let lf = ro.lock_file(&f, true).unwrap().unwrap();
    assert!(!lf.writable());
    assert_eq!(
        lf.set(crate::LockKind::Write, 100, 101),
        Err(crate::LockError::NotWritable)
    );
}
