//! Whole-server file tests over real sockets, on the memory and the local backend:
//! namespace ops (LOOKUP, CREATE, REMOVE, RENAME, LINK, symlinks), attributes (GETATTR,
//! SETATTR, VERIFY, NVERIFY, ACCESS), SECINFO, READ/WRITE/COMMIT, READDIR, file handles,
//! read-only exports — success paths and the error statuses RFC 8881 asks for.

pub mod common;
pub mod files_common;

use files_common::{Env, failure_of, for_each_backend, for_each_backend_with, status_of, sys};
use ringnfs::client::ops::{access, ftype, share, stable};
use ringnfs::client::{CommitArgs, ReadArgs};
use ringnfs::client::{CreateType, Fattr, FileAttrs, Files, Op, Stateid, TimeSet};
use ringnfs::nfs4::attrs::attr;
use ringnfs::nfs4::consts::{NfsStatus, op, status};
use ringnfs::server::BackendKind;

fn bit(a: u32) -> Vec<u32> {
    let mut w = vec![0u32; a as usize / 32 + 1];
    w[a as usize / 32] |= 1 << (a % 32);
    w
}

fn has(words: &[u32], a: u32) -> bool {
    words
        .get(a as usize / 32)
        .is_some_and(|w| w & (1 << (a % 32)) != 0)
}

/// A fresh scratch directory under the root.
fn scratch(f: &Files, name: &str) -> Vec<u8> {
    let root = f.root_fh().unwrap();
    f.mkdir(&root, name.as_bytes(), 0o777).unwrap()
}

#[test]
fn lookup_getattr_lookupp() {
    for_each_backend(|env| {
        let f = env.files();
        let root = f.root_fh().unwrap();
        let ra = f.getattr(&root).unwrap();
        assert_eq!(ra.ftype, Some(ftype::DIR));
        assert!(ra.fileid.is_some() && ra.change.is_some() && ra.owner.is_some());

        let d = f.mkdir(&root, b"dir", 0o750).unwrap();
        let da = f.getattr(&d).unwrap();
        assert_eq!((da.ftype, da.mode), (Some(ftype::DIR), Some(0o750)));
        assert_eq!(f.lookup(&root, b"dir").unwrap(), d);
        assert_eq!(f.lookup_path("/dir").unwrap(), d);
        assert_eq!(f.lookup_path("").unwrap(), root);
        // LOOKUPP from the directory is the root; at the root, NOENT.
        assert_eq!(f.lookupp(&d).unwrap(), root);
        assert_eq!(
            failure_of(f.lookupp(&root)),
            (op::LOOKUPP, status::NFS4ERR_NOENT)
        );

        let (file, of) = f.create(&d, b"file", 0o640).unwrap();
        f.close(of).unwrap();
        let fa = f.getattr(&file).unwrap();
        assert_eq!(fa.ftype, Some(ftype::REG));
        assert_eq!(
            (fa.size, fa.mode, fa.numlinks),
            (Some(0), Some(0o640), Some(1))
        );
        assert_ne!(fa.fileid, da.fileid);
        assert_eq!(f.lookup_path("dir/file").unwrap(), file);

        assert_eq!(
            failure_of(f.lookup(&d, b"missing")),
            (op::LOOKUP, status::NFS4ERR_NOENT)
        );
        assert_eq!(
            failure_of(f.lookup(&file, b"x")),
            (op::LOOKUP, status::NFS4ERR_NOTDIR)
        );
        // LOOKUPP of a regular file: NOTDIR (RFC 8881 §18.14.3).
        assert_eq!(
            failure_of(f.lookupp(&file)),
            (op::LOOKUPP, status::NFS4ERR_NOTDIR)
        );
        // No current filehandle.
        let r = f.call_raw(&[Op::Lookup(b"dir".to_vec())]).unwrap();
        assert_eq!(
            r.failure(),
            Some((op::LOOKUP, status::NFS4ERR_NOFILEHANDLE))
        );
        let r = f
            .call_raw(&[Op::GetAttr(FileAttrs::REQUEST.to_vec())])
            .unwrap();
        assert_eq!(
            r.failure(),
            Some((op::GETATTR, status::NFS4ERR_NOFILEHANDLE))
        );
        // GETATTR of a set-only attribute is INVAL.
        let r = f
            .call_raw(&[Op::PutRootFh, Op::GetAttr(bit(attr::TIME_MODIFY_SET))])
            .unwrap();
        assert_eq!(r.failure(), Some((op::GETATTR, status::NFS4ERR_INVAL)));
        // Multi-op: LOOKUP + GETFH + GETATTR + LOOKUPP + GETFH decode in one reply.
        let r = f
            .call(&[
                Op::PutRootFh,
                Op::Lookup(b"dir".to_vec()),
                Op::GetFh,
                Op::GetAttr(FileAttrs::REQUEST.to_vec()),
                Op::Access(access::READ | access::LOOKUP),
                Op::LookupP,
                Op::GetFh,
            ])
            .unwrap();
        assert_eq!(r.results.len(), 8);
        assert_eq!(r.getfh().unwrap(), d);
        assert_eq!(r.attrs().unwrap().fileid, da.fileid);
        assert_eq!(r.results[7].body.len(), 4 + root.len().div_ceil(4) * 4);
    });
}

#[test]
fn names_are_checked() {
    for_each_backend(|env| {
        let f = env.files();
        let d = scratch(&f, "names");
        let (file, of) = f.create(&d, b"f", 0o644).unwrap();
        f.close(of).unwrap();
        let long = vec![b'x'; 256];
        let cases: [(&[u8], NfsStatus); 5] = [
            (b".", status::NFS4ERR_BADNAME),
            (b"..", status::NFS4ERR_BADNAME),
            (b"a/b", status::NFS4ERR_BADNAME),
            (b"", status::NFS4ERR_INVAL),
            (&long, status::NFS4ERR_NAMETOOLONG),
        ];
        for (name, want) in cases {
            let n = String::from_utf8_lossy(name).into_owned();
            assert_eq!(status_of(f.lookup(&d, name)), want, "LOOKUP {n:?}");
            assert_eq!(status_of(f.mkdir(&d, name, 0o755)), want, "CREATE {n:?}");
            assert_eq!(status_of(f.create(&d, name, 0o644)), want, "OPEN {n:?}");
            assert_eq!(status_of(f.remove(&d, name)), want, "REMOVE {n:?}");
            assert_eq!(
                status_of(f.rename(&d, b"f", &d, name)),
                want,
                "RENAME to {n:?}"
            );
            assert_eq!(
                status_of(f.rename(&d, name, &d, b"g")),
                want,
                "RENAME from {n:?}"
            );
            assert_eq!(status_of(f.link(&file, &d, name)), want, "LINK {n:?}");
            let r = f
                .call_raw(&[Op::PutFh(d.clone()), Op::Secinfo(name.to_vec())])
                .unwrap();
            assert_eq!(r.failure(), Some((op::SECINFO, want)), "SECINFO {n:?}");
        }
        // 255 bytes is fine; nothing above was created.
        let ok = vec![b'y'; 255];
        f.mkdir(&d, &ok, 0o755).unwrap();
        let mut names: Vec<Vec<u8>> = f
            .readdir_all(&d)
            .unwrap()
            .into_iter()
            .map(|e| e.0)
            .collect();
        names.sort();
        assert_eq!(names, vec![b"f".to_vec(), ok]);
    });
}

#[test]
fn create_kinds_and_errors() {
    for_each_backend(|env| {
        let f = env.files();
        let d = scratch(&f, "kinds");
        let r = f
            .call(&[
                Op::PutFh(d.clone()),
                Op::Create {
                    kind: CreateType::Dir,
                    name: b"sub".to_vec(),
                    attrs: Fattr::new().mode(0o711),
                },
                Op::GetFh,
                Op::GetAttr(FileAttrs::REQUEST.to_vec()),
            ])
            .unwrap();
        let (cinfo, attrset) = r.create().unwrap();
        assert_ne!(
            cinfo.before, cinfo.after,
            "directory change attribute moves"
        );
        assert!(has(&attrset, attr::MODE), "attrset {attrset:?}");
        let a = r.attrs().unwrap();
        assert_eq!((a.ftype, a.mode), (Some(ftype::DIR), Some(0o711)));
        assert_eq!(f.getattr(&d).unwrap().change, Some(cinfo.after));

        for (name, kind, t) in [
            (&b"fifo"[..], CreateType::Fifo, ftype::FIFO),
            (b"sock", CreateType::Socket, ftype::SOCK),
            (
                b"link",
                CreateType::Symlink(b"target/x".to_vec()),
                ftype::LNK,
            ),
        ] {
            let fh = f.create_obj(&d, name, kind, Fattr::new()).unwrap();
            assert_eq!(f.getattr(&fh).unwrap().ftype, Some(t));
            assert_eq!(f.lookup(&d, name).unwrap(), fh);
        }
        // Existing names: EXIST, whatever the type asked for.
        assert_eq!(status_of(f.mkdir(&d, b"sub", 0o755)), status::NFS4ERR_EXIST);
        assert_eq!(
            status_of(f.create_obj(&d, b"fifo", CreateType::Dir, Fattr::new())),
            status::NFS4ERR_EXIST
        );
        // CREATE of a regular file is OPEN's job: BADTYPE.
        assert_eq!(
            status_of(f.create_obj(&d, b"reg", CreateType::Other(ftype::REG), Fattr::new())),
            status::NFS4ERR_BADTYPE
        );
        // An empty symlink target is INVAL.
        assert_eq!(
            status_of(f.symlink(&d, b"empty", b"")),
            status::NFS4ERR_INVAL
        );
        // CREATE inside a file: NOTDIR; inside a symlink: SYMLINK or NOTDIR.
        let (file, of) = f.create(&d, b"file", 0o644).unwrap();
        f.close(of).unwrap();
        assert_eq!(
            status_of(f.mkdir(&file, b"x", 0o755)),
            status::NFS4ERR_NOTDIR
        );
        let link = f.lookup(&d, b"link").unwrap();
        let st = status_of(f.mkdir(&link, b"x", 0o755));
        assert!(
            st == status::NFS4ERR_SYMLINK || st == status::NFS4ERR_NOTDIR,
            "CREATE in a symlink: {st}"
        );
        // Unsupported and read-only attributes in createattrs.
        assert_eq!(
            status_of(f.create_obj(&d, b"a1", CreateType::Dir, Fattr::new().ftype(ftype::DIR))),
            status::NFS4ERR_INVAL
        );
        assert_eq!(
            status_of(f.create_obj(
                &d,
                b"a2",
                CreateType::Dir,
                Fattr::new().raw(attr::ARCHIVE, vec![0, 0, 0, 1])
            )),
            status::NFS4ERR_ATTRNOTSUPP
        );
        assert_eq!(
            status_of(f.create_obj(&d, b"a3", CreateType::Dir, Fattr::new().mode(0o17777))),
            status::NFS4ERR_INVAL
        );
        assert_eq!(
            status_of(f.create_obj(&d, b"a4", CreateType::Dir, Fattr::new().owner("bob"))),
            status::NFS4ERR_BADOWNER
        );
        for n in [&b"a1"[..], b"a2", b"a3", b"a4", b"reg", b"empty"] {
            assert_eq!(status_of(f.lookup(&d, n)), status::NFS4ERR_NOENT);
        }
    });
}

#[test]
fn remove_and_rename() {
    for_each_backend(|env| {
        let f = env.files();
        let a = scratch(&f, "ra");
        let b = scratch(&f, "rb");
        let (fh, of) = f.create(&a, b"f", 0o644).unwrap();
        f.write(&of, 0, b"hello", stable::FILE_SYNC).unwrap();
        f.close(of).unwrap();
        let fileid = f.getattr(&fh).unwrap().fileid;

        // Rename within a directory, then across directories; the file keeps its id.
        f.rename(&a, b"f", &a, b"g").unwrap();
        assert_eq!(status_of(f.lookup(&a, b"f")), status::NFS4ERR_NOENT);
        let r = f
            .call(&[
                Op::PutFh(a.clone()),
                Op::SaveFh,
                Op::PutFh(b.clone()),
                Op::Rename {
                    old: b"g".to_vec(),
                    new: b"h".to_vec(),
                },
                Op::GetAttr(FileAttrs::REQUEST.to_vec()),
            ])
            .unwrap();
        let (src, dst) = r.rename().unwrap();
        assert_ne!(src.before, src.after);
        assert_ne!(dst.before, dst.after);
        let h = f.lookup(&b, b"h").unwrap();
        assert_eq!(f.getattr(&h).unwrap().fileid, fileid);
        assert_eq!(f.read_file(&b, b"h").unwrap(), b"hello");

        // Missing source.
        assert_eq!(
            failure_of(f.rename(&a, b"nope", &b, b"x")),
            (op::RENAME, status::NFS4ERR_NOENT)
        );
        // Over an existing file: replaced.
        f.write_file(&b, b"other", b"other").unwrap();
        f.rename(&b, b"other", &b, b"h").unwrap();
        assert_eq!(f.read_file(&b, b"h").unwrap(), b"other");
        assert_eq!(status_of(f.lookup(&b, b"other")), status::NFS4ERR_NOENT);
        // A directory over a non-empty directory: not allowed (EXIST or NOTEMPTY).
        let d1 = f.mkdir(&a, b"d1", 0o755).unwrap();
        let d2 = f.mkdir(&a, b"d2", 0o755).unwrap();
        f.mkdir(&d2, b"inside", 0o755).unwrap();
        let st = status_of(f.rename(&a, b"d1", &a, b"d2"));
        assert!(
            st == status::NFS4ERR_EXIST || st == status::NFS4ERR_NOTEMPTY,
            "rename over a non-empty dir: {st}"
        );
        // A file over a directory and a directory over a file are refused.
        let st = status_of(f.rename(&b, b"h", &a, b"d1"));
        assert!(
            st == status::NFS4ERR_EXIST || st == status::NFS4ERR_ISDIR,
            "{st}"
        );
        let st = status_of(f.rename(&a, b"d1", &b, b"h"));
        assert!(
            st == status::NFS4ERR_EXIST || st == status::NFS4ERR_NOTDIR,
            "{st}"
        );
        // A directory into its own subtree: INVAL.
        let st = status_of(f.rename(&a, b"d2", &d2, b"loop"));
        assert_eq!(st, status::NFS4ERR_INVAL, "rename into own subtree");
        // RENAME without a saved filehandle.
        let r = f
            .call_raw(&[
                Op::PutFh(a.clone()),
                Op::Rename {
                    old: b"d1".to_vec(),
                    new: b"d3".to_vec(),
                },
            ])
            .unwrap();
        assert_eq!(
            r.failure(),
            Some((op::RENAME, status::NFS4ERR_NOFILEHANDLE))
        );
        // RENAME with a file as the target directory (`h` was replaced: look it up).
        let h = f.lookup(&b, b"h").unwrap();
        assert_eq!(
            status_of(f.rename(&a, b"d1", &h, b"x")),
            status::NFS4ERR_NOTDIR
        );

        // REMOVE: NOENT, NOTEMPTY, then empty directories and files go.
        let r = f
            .call(&[Op::PutFh(b.clone()), Op::Remove(b"h".to_vec())])
            .unwrap();
        let ci = r.remove().unwrap();
        assert_ne!(ci.before, ci.after);
        assert_eq!(status_of(f.remove(&b, b"h")), status::NFS4ERR_NOENT);
        assert_eq!(status_of(f.remove(&a, b"d2")), status::NFS4ERR_NOTEMPTY);
        f.remove(&d2, b"inside").unwrap();
        f.remove(&a, b"d2").unwrap();
        f.remove(&a, b"d1").unwrap();
        assert_eq!(status_of(f.remove(&d1, b"x")), status::NFS4ERR_STALE);
        assert!(f.readdir_all(&a).unwrap().is_empty());
        assert!(f.readdir_all(&b).unwrap().is_empty());
        // REMOVE in a file: NOTDIR.
        let (file, of) = f.create(&a, b"f2", 0o644).unwrap();
        f.close(of).unwrap();
        assert_eq!(status_of(f.remove(&file, b"x")), status::NFS4ERR_NOTDIR);
    });
}

#[test]
fn hard_links_and_symlinks() {
    for_each_backend(|env| {
        let f = env.files();
        let a = scratch(&f, "la");
        let b = scratch(&f, "lb");
        let fh = f.write_file(&a, b"f", b"linked data").unwrap();
        let r = f
            .call(&[
                Op::PutFh(fh.clone()),
                Op::SaveFh,
                Op::PutFh(b.clone()),
                Op::Link(b"g".to_vec()),
                Op::RestoreFh,
                Op::GetAttr(FileAttrs::REQUEST.to_vec()),
            ])
            .unwrap();
        let ci = r.link().unwrap();
        assert_ne!(ci.before, ci.after);
        assert_eq!(r.attrs().unwrap().numlinks, Some(2));
        let g = f.lookup(&b, b"g").unwrap();
        assert_eq!(
            f.getattr(&g).unwrap().fileid,
            f.getattr(&fh).unwrap().fileid
        );
        f.link(&fh, &a, b"f2").unwrap();
        assert_eq!(f.getattr(&fh).unwrap().numlinks, Some(3));
        assert_eq!(f.read_file(&b, b"g").unwrap(), b"linked data");
        // Errors: existing name, directory source, no saved fh, file as directory.
        assert_eq!(status_of(f.link(&fh, &b, b"g")), status::NFS4ERR_EXIST);
        assert_eq!(status_of(f.link(&a, &b, b"dirlink")), status::NFS4ERR_ISDIR);
        let r = f
            .call_raw(&[Op::PutFh(b.clone()), Op::Link(b"x".to_vec())])
            .unwrap();
        assert_eq!(r.failure(), Some((op::LINK, status::NFS4ERR_NOFILEHANDLE)));
        assert_eq!(status_of(f.link(&fh, &g, b"x")), status::NFS4ERR_NOTDIR);
        f.remove(&a, b"f").unwrap();
        f.remove(&a, b"f2").unwrap();
        assert_eq!(f.getattr(&g).unwrap().numlinks, Some(1));
        assert_eq!(f.read_file(&b, b"g").unwrap(), b"linked data");

        // Symlinks: READLINK gives the target back byte for byte, SIZE is its length.
        let target = b"../la/some where/\xff";
        let s = f.symlink(&a, b"sym", target).unwrap();
        assert_eq!(f.readlink(&s).unwrap(), target);
        let sa = f.getattr(&s).unwrap();
        assert_eq!(
            (sa.ftype, sa.size),
            (Some(ftype::LNK), Some(target.len() as u64))
        );
        // READLINK of a file or directory: INVAL.
        assert_eq!(status_of(f.readlink(&g)), status::NFS4ERR_INVAL);
        assert_eq!(status_of(f.readlink(&a)), status::NFS4ERR_INVAL);
        // OPEN of a symlink: SYMLINK; LOOKUP through it: SYMLINK or NOTDIR.
        assert_eq!(
            status_of(f.open(&a, b"sym", share::ACCESS_READ, share::DENY_NONE)),
            status::NFS4ERR_SYMLINK
        );
        let st = status_of(f.lookup(&s, b"x"));
        assert!(
            st == status::NFS4ERR_SYMLINK || st == status::NFS4ERR_NOTDIR,
            "{st}"
        );
        // A hard link to a symlink is allowed and is the same object.
        f.link(&s, &b, b"sym2").unwrap();
        assert_eq!(f.readlink(&f.lookup(&b, b"sym2").unwrap()).unwrap(), target);
    });
}

#[test]
fn access_bits_and_permission_errors() {
    for_each_backend_with(
        |cfg| cfg.export.root_squash = false,
        |env| {
            let root = env.files_as(sys(0, 0));
            let user = env.files_as(sys(1000, 1000));
            let rfh = root.root_fh().unwrap();
            let d = root.mkdir(&rfh, b"rootdir", 0o755).unwrap();
            let (file, of) = root.create(&d, b"rootfile", 0o644).unwrap();
            root.write(&of, 0, b"secret?", stable::FILE_SYNC).unwrap();
            root.close(of).unwrap();
            assert_eq!(root.getattr(&d).unwrap().owner.as_deref(), Some("0"));

            // ACCESS: root may do everything on the directory; uid 1000 only read/lookup.
            let all = access::READ
                | access::LOOKUP
                | access::MODIFY
                | access::EXTEND
                | access::DELETE
                | access::EXECUTE;
            let (sup, acc) = root.access(&d, all).unwrap();
            assert_eq!(sup & acc, acc);
            assert!(acc & access::MODIFY != 0 && acc & access::LOOKUP != 0);
            let (sup, acc) = user.access(&d, all).unwrap();
            assert!(sup & (access::READ | access::LOOKUP | access::MODIFY) != 0);
            assert_eq!(acc & (access::MODIFY | access::EXTEND | access::DELETE), 0);
            assert_eq!(
                acc & (access::READ | access::LOOKUP),
                access::READ | access::LOOKUP
            );
            let (_, acc) = user.access(&file, access::READ | access::MODIFY).unwrap();
            assert_eq!(acc, access::READ);

            // uid 1000 cannot create, remove or rename in a root-owned 0755 directory.
            assert_eq!(
                status_of(user.mkdir(&d, b"x", 0o755)),
                status::NFS4ERR_ACCESS
            );
            assert_eq!(
                status_of(user.create(&d, b"x", 0o644)),
                status::NFS4ERR_ACCESS
            );
            assert_eq!(
                status_of(user.symlink(&d, b"x", b"y")),
                status::NFS4ERR_ACCESS
            );
            assert_eq!(
                status_of(user.remove(&d, b"rootfile")),
                status::NFS4ERR_ACCESS
            );
            assert_eq!(
                status_of(user.rename(&d, b"rootfile", &d, b"z")),
                status::NFS4ERR_ACCESS
            );
            // ... nor open the 0644 root file for writing, nor chmod it.
            assert_eq!(
                status_of(user.open(&d, b"rootfile", share::ACCESS_WRITE, share::DENY_NONE)),
                status::NFS4ERR_ACCESS
            );
            let st = status_of(user.setattr(&file, Fattr::new().mode(0o666), Stateid::ANONYMOUS));
            assert!(
                st == status::NFS4ERR_PERM || st == status::NFS4ERR_ACCESS,
                "{st}"
            );
            // Reading is fine.
            let rf = user
                .open(&d, b"rootfile", share::ACCESS_READ, share::DENY_NONE)
                .unwrap();
            assert_eq!(user.read_all(&rf).unwrap(), b"secret?");
            user.close(rf).unwrap();
            // Nothing was created.
            let names: Vec<_> = root
                .readdir_all(&d)
                .unwrap()
                .into_iter()
                .map(|e| e.0)
                .collect();
            assert_eq!(names, vec![b"rootfile".to_vec()]);

            // Files created by uid 1000 in a 1777 directory are owned by it.
            let (uf, of) = user.create(&rfh, b"userfile", 0o600).unwrap();
            user.close(of).unwrap();
            let ua = user.getattr(&uf).unwrap();
            assert_eq!(
                (ua.owner.as_deref(), ua.owner_group.as_deref()),
                (Some("1000"), Some("1000"))
            );
            // chown to someone else as non-root: PERM; root may.
            let st = status_of(user.setattr(&uf, Fattr::new().owner("2000"), Stateid::ANONYMOUS));
            assert_eq!(st, status::NFS4ERR_PERM);
            root.setattr(
                &uf,
                Fattr::new().owner("2000").owner_group("3000"),
                Stateid::ANONYMOUS,
            )
            .unwrap();
            let ua = root.getattr(&uf).unwrap();
            assert_eq!(
                (ua.owner.as_deref(), ua.owner_group.as_deref()),
                (Some("2000"), Some("3000"))
            );
        },
    );
}

#[test]
fn names_in_a_directory_need_search_permission() {
    for_each_backend_with(
        |cfg| cfg.export.root_squash = false,
        |env| {
            let owner = env.files_as(sys(1000, 1000));
            let other = env.files_as(sys(2000, 2000));
            let root = env.files_as(sys(0, 0));
            let rfh = owner.root_fh().unwrap();
            let d = owner.mkdir(&rfh, b"private", 0o700).unwrap();
            let sub = owner.mkdir(&d, b"sub", 0o755).unwrap();
            owner.write_file(&d, b"f", b"data").unwrap();

            // Another user may not resolve names in the 0700 directory (knfsd: MAY_EXEC).
            for name in [&b"f"[..], b"missing"] {
                assert_eq!(
                    status_of(other.lookup(&d, name)),
                    status::NFS4ERR_ACCESS,
                    "LOOKUP {name:?}"
                );
            }
            assert_eq!(
                status_of(other.open(&d, b"f", share::ACCESS_READ, share::DENY_NONE)),
                status::NFS4ERR_ACCESS
            );
            // Nor go up out of a directory it cannot search.
            let locked = owner.mkdir(&d, b"locked", 0o600).unwrap();
            assert_eq!(status_of(other.lookupp(&locked)), status::NFS4ERR_ACCESS);
            // Its own handle on the subdirectory still works where the mode allows.
            assert_eq!(other.lookupp(&sub).unwrap(), d);

            // The owner and root may; execute-only is enough for a lookup.
            assert!(owner.lookup(&d, b"f").is_ok());
            assert!(root.lookup(&d, b"f").is_ok());
            owner
                .setattr(&d, Fattr::new().mode(0o711), Stateid::ANONYMOUS)
                .unwrap();
            assert!(other.lookup(&d, b"f").is_ok());
            assert_eq!(
                status_of(other.lookup(&d, b"missing")),
                status::NFS4ERR_NOENT
            );
        },
    );
}

#[test]
fn setattr_verify_nverify() {
    for_each_backend(|env| {
        let f = env.files();
        let d = scratch(&f, "attrs");
        let (fh, of) = f.create(&d, b"f", 0o644).unwrap();
        f.write(&of, 0, &[7u8; 1000], stable::FILE_SYNC).unwrap();

        // mode + times (client time), attrsset echoes what was set.
        let set = f
            .setattr(
                &fh,
                Fattr::new()
                    .mode(0o600)
                    .time_access_set(TimeSet::Client(1_000_000, 5))
                    .time_modify_set(TimeSet::Client(2_000_000, 7)),
                Stateid::ANONYMOUS,
            )
            .unwrap();
        assert!(
            has(&set, attr::MODE)
                && has(&set, attr::TIME_ACCESS_SET)
                && has(&set, attr::TIME_MODIFY_SET)
        );
        let a = f.getattr(&fh).unwrap();
        assert_eq!(a.mode, Some(0o600));
        assert_eq!(a.time_access, Some((1_000_000, 5)));
        assert_eq!(a.time_modify, Some((2_000_000, 7)));
        // Server time moves mtime to now.
        f.setattr(
            &fh,
            Fattr::new().time_modify_set(TimeSet::Server),
            Stateid::ANONYMOUS,
        )
        .unwrap();
        assert!(f.getattr(&fh).unwrap().time_modify.unwrap().0 > 1_600_000_000);

        // Size with the open stateid: truncate, then extend.
        let set = f.setattr(&fh, Fattr::new().size(10), of.stateid).unwrap();
        assert!(has(&set, attr::SIZE));
        assert_eq!(f.getattr(&fh).unwrap().size, Some(10));
        f.setattr(&fh, Fattr::new().size(5000), of.stateid).unwrap();
        let (data, eof) = f.read(&of, 0, 6000).unwrap();
        assert!(eof);
        assert_eq!(data.len(), 5000);
        assert!(data[..10].iter().all(|b| *b == 7) && data[10..].iter().all(|b| *b == 0));
        // Size on a directory: ISDIR; read-only attribute: INVAL with empty attrsset.
        assert_eq!(
            status_of(f.setattr(&d, Fattr::new().size(0), Stateid::ANONYMOUS)),
            status::NFS4ERR_ISDIR
        );
        let r = f
            .call_raw(&[
                Op::PutFh(fh.clone()),
                Op::SetAttr {
                    stateid: Stateid::ANONYMOUS,
                    attrs: Fattr::new().numlinks(3),
                },
            ])
            .unwrap();
        assert_eq!(r.setattr().unwrap(), (status::NFS4ERR_INVAL, vec![]));
        // A bad nseconds: INVAL; unknown attribute: ATTRNOTSUPP.
        let st = status_of(f.setattr(
            &fh,
            Fattr::new().time_modify_set(TimeSet::Client(1, 1_000_000_000)),
            Stateid::ANONYMOUS,
        ));
        assert_eq!(st, status::NFS4ERR_INVAL);
        let st = status_of(f.setattr(
            &fh,
            Fattr::new().raw(attr::HIDDEN, vec![0, 0, 0, 1]),
            Stateid::ANONYMOUS,
        ));
        assert_eq!(st, status::NFS4ERR_ATTRNOTSUPP);
        // A made-up stateid for a size change.
        let bogus = Stateid {
            seqid: 1,
            other: of.stateid.other.map(|b| b ^ 0x5a),
        };
        let st = status_of(f.setattr(&fh, Fattr::new().size(0), bogus));
        assert!(
            st == status::NFS4ERR_BAD_STATEID || st == status::NFS4ERR_STALE_STATEID,
            "{st}"
        );
        f.close(of).unwrap();

        // VERIFY / NVERIFY.
        let good = Fattr::new().ftype(ftype::REG).size(5000).mode(0o600);
        let bad = Fattr::new().size(4999);
        f.call(&[Op::PutFh(fh.clone()), Op::Verify(good.clone())])
            .unwrap();
        assert_eq!(
            failure_of(f.call(&[Op::PutFh(fh.clone()), Op::Verify(bad.clone())])),
            (op::VERIFY, status::NFS4ERR_NOT_SAME)
        );
        f.call(&[Op::PutFh(fh.clone()), Op::Nverify(bad)]).unwrap();
        assert_eq!(
            failure_of(f.call(&[Op::PutFh(fh.clone()), Op::Nverify(good)])),
            (op::NVERIFY, status::NFS4ERR_SAME)
        );
        let st = status_of(f.call(&[
            Op::PutFh(fh.clone()),
            Op::Verify(Fattr::new().time_modify_set(TimeSet::Server)),
        ]));
        assert_eq!(st, status::NFS4ERR_INVAL, "VERIFY of a set-only attribute");
        // VERIFY as a guard in front of a WRITE (the classic use).
        let owner = f.getattr(&fh).unwrap().owner.unwrap();
        f.call(&[
            Op::PutFh(fh.clone()),
            Op::Verify(Fattr::new().owner(&owner)),
        ])
        .unwrap();
    });
}

#[test]
fn secinfo_and_putpubfh() {
    for_each_backend(|env| {
        let f = env.files();
        let d = scratch(&f, "sec");
        let root = f.root_fh().unwrap();
        assert_eq!(
            f.call(&[Op::PutPubFh, Op::GetFh]).unwrap().getfh().unwrap(),
            root
        );
        let r = f
            .call(&[Op::PutFh(root.clone()), Op::Secinfo(b"sec".to_vec())])
            .unwrap();
        let flavors = r.secinfo(op::SECINFO).unwrap();
        assert!(flavors.contains(&1), "AUTH_SYS offered: {flavors:?}");
        // SECINFO consumes the current filehandle (RFC 8881 §2.6.3.1.1.8).
        let r = f
            .call_raw(&[
                Op::PutFh(root.clone()),
                Op::Secinfo(b"sec".to_vec()),
                Op::GetFh,
            ])
            .unwrap();
        assert_eq!(r.failure(), Some((op::GETFH, status::NFS4ERR_NOFILEHANDLE)));
        assert_eq!(
            failure_of(f.call(&[Op::PutFh(root.clone()), Op::Secinfo(b"none".to_vec())])),
            (op::SECINFO, status::NFS4ERR_NOENT)
        );
        let (file, of) = f.create(&d, b"f", 0o644).unwrap();
        f.close(of).unwrap();
        assert_eq!(
            failure_of(f.call(&[Op::PutFh(file), Op::Secinfo(b"x".to_vec())])),
            (op::SECINFO, status::NFS4ERR_NOTDIR)
        );
        for style in [0, 1] {
            let r = f
                .call(&[Op::PutFh(d.clone()), Op::SecinfoNoName(style)])
                .unwrap();
            assert!(r.secinfo(op::SECINFO_NO_NAME).unwrap().contains(&1));
        }
        // SECINFO_STYLE4_PARENT at the root: NOENT; unknown style: INVAL.
        assert_eq!(
            failure_of(f.call(&[Op::PutFh(root.clone()), Op::SecinfoNoName(1)])),
            (op::SECINFO_NO_NAME, status::NFS4ERR_NOENT)
        );
        assert_eq!(
            failure_of(f.call(&[Op::PutFh(root), Op::SecinfoNoName(7)])),
            (op::SECINFO_NO_NAME, status::NFS4ERR_INVAL)
        );
    });
}

#[test]
fn read_write_commit() {
    for_each_backend(|env| {
        let f = env.files();
        let d = scratch(&f, "io");
        let (fh, of) = f.create(&d, b"f", 0o644).unwrap();
        let mut verf = None;
        for (i, how) in [stable::UNSTABLE, stable::DATA_SYNC, stable::FILE_SYNC]
            .into_iter()
            .enumerate()
        {
            let w = f
                .write_at(&fh, of.stateid, i as u64 * 4, b"abcd", how)
                .unwrap();
            assert_eq!(w.count, 4);
            assert!(
                w.committed >= how && w.committed <= stable::FILE_SYNC,
                "{w:?}"
            );
            assert_eq!(
                *verf.get_or_insert(w.verifier),
                w.verifier,
                "one verifier per run"
            );
        }
        assert_eq!(f.commit(&fh, 0, 0).unwrap(), verf.unwrap());
        assert_eq!(f.commit(&fh, 4, 8).unwrap(), verf.unwrap());
        // COMMIT with offset + count overflowing: INVAL; on a directory: ISDIR.
        assert_eq!(
            status_of(f.commit(&fh, u64::MAX - 1, 10)),
            status::NFS4ERR_INVAL
        );
        assert_eq!(status_of(f.commit(&d, 0, 0)), status::NFS4ERR_ISDIR);

        // READ: inside, up to EOF, past EOF.
        assert_eq!(f.read(&of, 0, 4).unwrap(), (b"abcd".to_vec(), false));
        assert_eq!(f.read(&of, 4, 100).unwrap(), (b"abcdabcd".to_vec(), true));
        assert_eq!(f.read(&of, 12, 10).unwrap(), (vec![], true));
        assert_eq!(f.read(&of, 1 << 40, 10).unwrap(), (vec![], true));
        // A sparse write leaves zeros.
        f.write(&of, 100, b"z", stable::FILE_SYNC).unwrap();
        let (data, eof) = f.read(&of, 0, 200).unwrap();
        assert!(eof);
        assert_eq!(data.len(), 101);
        assert!(data[12..100].iter().all(|b| *b == 0));
        // A zero-length write and read.
        assert_eq!(f.write(&of, 5, b"", stable::FILE_SYNC).unwrap().0, 0);
        assert_eq!(f.read(&of, 0, 0).unwrap().0, Vec::<u8>::new());
        // An invalid stable_how4.
        let st = status_of(f.write_at(&fh, of.stateid, 0, b"x", 3));
        assert!(
            st == status::NFS4ERR_INVAL || st == status::NFS4ERR_BADXDR,
            "{st}"
        );

        // 1 MiB in one WRITE and one READ, on the anonymous stateid too.
        let big = files_common::pattern(42, 1 << 20);
        let w = f
            .write_at(&fh, of.stateid, 0, &big, stable::UNSTABLE)
            .unwrap();
        assert_eq!(w.count as usize, big.len());
        let (data, _) = f.read(&of, 0, 1 << 20).unwrap();
        assert_eq!(files_common::fnv(&data), files_common::fnv(&big));
        let (data, _) = f.read_at(&fh, Stateid::ANONYMOUS, 0, 1 << 20).unwrap();
        assert_eq!(data.len(), 1 << 20);
        assert_eq!(f.commit(&fh, 0, 0).unwrap(), verf.unwrap());
        f.close(of).unwrap();
        assert_eq!(f.read_file(&d, b"f").unwrap(), big);

        // READ / WRITE of a directory: ISDIR; of a symlink: SYMLINK or INVAL.
        assert_eq!(
            failure_of(f.read_at(&d, Stateid::ANONYMOUS, 0, 10)),
            (op::READ, status::NFS4ERR_ISDIR)
        );
        assert_eq!(
            status_of(f.write_at(&d, Stateid::ANONYMOUS, 0, b"x", stable::FILE_SYNC)),
            status::NFS4ERR_ISDIR
        );
        let s = f.symlink(&d, b"s", b"f").unwrap();
        let st = status_of(f.read_at(&s, Stateid::ANONYMOUS, 0, 10));
        assert!(
            st == status::NFS4ERR_SYMLINK || st == status::NFS4ERR_INVAL,
            "{st}"
        );
        // READ without a filehandle.
        let r = f
            .call_raw(&[Op::Read(ReadArgs {
                stateid: Stateid::ANONYMOUS,
                offset: 0,
                count: 1,
            })])
            .unwrap();
        assert_eq!(r.failure(), Some((op::READ, status::NFS4ERR_NOFILEHANDLE)));
    });
}

#[test]
fn write_verifier_changes_on_restart() {
    for_each_backend(|env| {
        let f = env.files();
        let root = f.root_fh().unwrap();
        let (fh, of) = f.create(&root, b"v", 0o644).unwrap();
        let (_, v1) = f.write(&of, 0, b"1", stable::UNSTABLE).unwrap();
        let (_, v2) = f.write(&of, 1, b"2", stable::FILE_SYNC).unwrap();
        assert_eq!(v1, v2);
        assert_eq!(f.commit(&fh, 0, 0).unwrap(), v1);
        env.restart();
        let f = env.files();
        let root = f.root_fh().unwrap();
        let (fh, of) = f.create(&root, b"v", 0o644).unwrap();
        let (_, v3) = f.write(&of, 0, b"3", stable::UNSTABLE).unwrap();
        assert_ne!(v1, v3, "a new server instance has a new write verifier");
        assert_eq!(f.commit(&fh, 0, 0).unwrap(), v3);
        if env.is_local() {
            // The local file kept what was written before the restart.
            assert_eq!(f.read(&of, 0, 10).unwrap(), (b"32".to_vec(), true));
        }
    });
}

#[test]
fn fbig_on_memory() {
    let env = Env::start(BackendKind::Memory, |_| {});
    let f = env.files();
    let root = f.root_fh().unwrap();
    let (fh, of) = f.create(&root, b"big", 0o644).unwrap();
    assert_eq!(
        status_of(f.write(&of, 1 << 63, b"x", stable::FILE_SYNC)),
        status::NFS4ERR_FBIG
    );
    assert_eq!(
        status_of(f.write(&of, u64::MAX, b"x", stable::FILE_SYNC)),
        status::NFS4ERR_FBIG
    );
    assert_eq!(f.getattr(&fh).unwrap().size, Some(0));
    f.close(of).unwrap();
}

#[test]
fn readdir_300_entries_paged() {
    for_each_backend(|env| {
        let f = env.files();
        let d = scratch(&f, "many");
        let mut want = Vec::new();
        for i in 0..300 {
            let name = format!("entry-{i:04}-{}", "n".repeat(i % 40));
            if i % 3 == 0 {
                f.mkdir(&d, name.as_bytes(), 0o755).unwrap();
            } else {
                f.create_obj(&d, name.as_bytes(), CreateType::Fifo, Fattr::new())
                    .unwrap();
            }
            want.push(name.into_bytes());
        }
        want.sort();
        let first = f.readdir_all(&d).unwrap();
        let mut names: Vec<_> = first.iter().map(|e| e.0.clone()).collect();
        names.sort();
        assert_eq!(names, want, "every name once");
        let mut cookies: Vec<u64> = first.iter().map(|e| e.1).collect();
        assert!(
            cookies.iter().all(|c| *c > 2),
            "cookies 0, 1, 2 are reserved"
        );
        cookies.sort();
        cookies.dedup();
        assert_eq!(cookies.len(), 300, "unique cookies");
        // Stable across calls.
        assert_eq!(f.readdir_all(&d).unwrap(), first);

        // Paging with small pages: many pages, each within maxcount.
        let mut pages = 0;
        let (mut cookie, mut verf) = (0u64, [0u8; 8]);
        let mut seen = Vec::new();
        let req = FileAttrs::REQUEST.to_vec();
        loop {
            let p = f.readdir_page(&d, cookie, verf, 1024, &req).unwrap();
            pages += 1;
            assert!(!p.entries.is_empty() || p.eof);
            for e in &p.entries {
                let a = e.decode_attrs().unwrap();
                let t = a.ftype.unwrap();
                assert!(t == ftype::DIR || t == ftype::FIFO);
                assert!(a.fileid.is_some() && a.mode.is_some());
                seen.push((e.name.clone(), e.cookie));
            }
            verf = p.cookieverf;
            if p.eof {
                break;
            }
            cookie = p.entries.last().unwrap().cookie;
        }
        assert!(pages > 10, "1 KiB pages: {pages}");
        assert_eq!(seen, first);
        // Resuming from the middle gives the rest.
        let mid = first[150].1;
        let p = f.readdir_page(&d, mid, verf, 4096, &[]).unwrap();
        assert_eq!(p.entries[0].name, first[151].0);

        // Removing entries while paging: the remaining cookies stay valid.
        for (name, _) in first.iter().take(50) {
            f.remove(&d, name).unwrap();
        }
        let p = f.readdir_page(&d, mid, verf, 4096, &[]).unwrap();
        assert_eq!(p.entries[0].name, first[151].0);
        assert_eq!(f.readdir_all(&d).unwrap(), first[50..].to_vec());
    });
}

#[test]
fn readdir_errors() {
    for_each_backend(|env| {
        let f = env.files();
        let d = scratch(&f, "rderr");
        for i in 0..5 {
            f.mkdir(&d, format!("d{i}").as_bytes(), 0o755).unwrap();
        }
        let p = f.readdir_page(&d, 0, [0; 8], 8192, &[]).unwrap();
        assert!(p.eof && p.entries.len() == 5);
        let c = p.entries[1].cookie;
        // Reserved cookies 1 and 2: BAD_COOKIE.
        for bad in [1, 2] {
            assert_eq!(
                failure_of(f.readdir_page(&d, bad, p.cookieverf, 8192, &[])),
                (op::READDIR, status::NFS4ERR_BAD_COOKIE)
            );
        }
        // A cookie with a verifier the server never gave: NOT_SAME.
        assert_eq!(
            status_of(f.readdir_page(&d, c, *b"bogus!!!", 8192, &[])),
            status::NFS4ERR_NOT_SAME
        );
        // A maxcount too small for even one entry: TOOSMALL.
        assert_eq!(
            status_of(f.readdir_page(&d, 0, [0; 8], 24, &[])),
            status::NFS4ERR_TOOSMALL
        );
        // READDIR of a file: NOTDIR; with a set-only attribute: INVAL.
        let (fh, of) = f.create(&d, b"file", 0o644).unwrap();
        f.close(of).unwrap();
        assert_eq!(
            status_of(f.readdir_page(&fh, 0, [0; 8], 8192, &[])),
            status::NFS4ERR_NOTDIR
        );
        assert_eq!(
            status_of(f.readdir_page(&d, 0, [0; 8], 8192, &bit(attr::TIME_ACCESS_SET))),
            status::NFS4ERR_INVAL
        );
        // An empty directory: eof at once, no entries.
        let e = f.mkdir(&d, b"empty", 0o755).unwrap();
        let p = f.readdir_page(&e, 0, [0; 8], 8192, &[]).unwrap();
        assert!(p.eof && p.entries.is_empty());
    });
}

#[test]
fn handles_bad_stale_and_missing() {
    for_each_backend(|env| {
        let f = env.files();
        let d = scratch(&f, "fh");
        let (fh, of) = f.create(&d, b"f", 0o644).unwrap();
        f.close(of).unwrap();
        // Garbage: BADHANDLE at PUTFH.
        for garbage in [vec![], vec![1, 2, 3], vec![0xAB; 64], vec![0; 128]] {
            let r = f.call_raw(&[
                Op::PutFh(garbage.clone()),
                Op::GetAttr(FileAttrs::REQUEST.to_vec()),
            ]);
            assert_eq!(
                r.unwrap().failure(),
                Some((op::PUTFH, status::NFS4ERR_BADHANDLE)),
                "{garbage:?}"
            );
        }
        // Longer than NFS4_FHSIZE: BADHANDLE too.
        let r = f.call_raw(&[Op::PutFh(vec![7; 129])]).unwrap();
        assert_eq!(r.failure(), Some((op::PUTFH, status::NFS4ERR_BADHANDLE)));
        // Any single flipped byte: STALE or BADHANDLE, never another object.
        for i in 0..fh.len() {
            let mut forged = fh.clone();
            forged[i] ^= 0x01;
            let r = f
                .call_raw(&[Op::PutFh(forged), Op::GetAttr(FileAttrs::REQUEST.to_vec())])
                .unwrap();
            let (_, st) = r.failure().expect("forged handle refused");
            assert!(
                st == status::NFS4ERR_STALE || st == status::NFS4ERR_BADHANDLE,
                "byte {i}: {st}"
            );
        }
        // A removed file's handle: STALE (at PUTFH or at the op using it).
        f.remove(&d, b"f").unwrap();
        let r = f
            .call_raw(&[
                Op::PutFh(fh.clone()),
                Op::GetAttr(FileAttrs::REQUEST.to_vec()),
            ])
            .unwrap();
        assert_eq!(r.failure().map(|x| x.1), Some(status::NFS4ERR_STALE));
        assert_eq!(
            status_of(f.open_fh(&fh, share::ACCESS_READ, 0)),
            status::NFS4ERR_STALE
        );
        // A removed directory's handle.
        let sub = f.mkdir(&d, b"sub", 0o755).unwrap();
        f.remove(&d, b"sub").unwrap();
        assert_eq!(status_of(f.mkdir(&sub, b"x", 0o755)), status::NFS4ERR_STALE);
        assert_eq!(status_of(f.lookup(&sub, b"x")), status::NFS4ERR_STALE);
        // A handle from another server instance (different handle key): STALE.
        let other = Env::start(env.kind, |_| {});
        let of = other.files();
        let oroot = of.root_fh().unwrap();
        let ofile = of.mkdir(&oroot, b"elsewhere", 0o755).unwrap();
        let r = f
            .call_raw(&[Op::PutFh(ofile), Op::GetAttr(FileAttrs::REQUEST.to_vec())])
            .unwrap();
        assert_eq!(r.failure().map(|x| x.1), Some(status::NFS4ERR_STALE));
        // Ops that need a filehandle without one: NOFILEHANDLE.
        for o in [
            Op::GetFh,
            Op::SaveFh,
            Op::LookupP,
            Op::Readlink,
            Op::Access(1),
            Op::Remove(b"x".to_vec()),
            Op::Commit(CommitArgs {
                offset: 0,
                count: 0,
            }),
        ] {
            let n = o.opnum();
            let r = f.call_raw(&[o]).unwrap();
            assert_eq!(r.failure(), Some((n, status::NFS4ERR_NOFILEHANDLE)));
        }
        // RESTOREFH with nothing saved.
        let r = f.call_raw(&[Op::PutRootFh, Op::RestoreFh]).unwrap();
        assert_eq!(
            r.failure(),
            Some((op::RESTOREFH, status::NFS4ERR_RESTOREFH))
        );
    });
}

#[test]
fn read_only_export() {
    // Memory: nothing can be created, so test what needs no existing file.
    // Local: populate the export with a writable server first, then restart read-only.
    for_each_backend(|env| {
        if env.is_local() {
            let f = env.files();
            let root = f.root_fh().unwrap();
            f.write_file(&root, b"f", b"read me").unwrap();
            f.mkdir(&root, b"d", 0o777).unwrap();
            env.restart_with(|cfg| cfg.export.read_only = true);
        } else {
            env.restart_with(|cfg| cfg.export.read_only = true);
        }
        let f = env.files();
        let root = f.root_fh().unwrap();
        assert_eq!(
            status_of(f.mkdir(&root, b"new", 0o755)),
            status::NFS4ERR_ROFS
        );
        assert_eq!(
            status_of(f.create(&root, b"new", 0o644)),
            status::NFS4ERR_ROFS
        );
        assert_eq!(
            status_of(f.symlink(&root, b"new", b"x")),
            status::NFS4ERR_ROFS
        );
        assert_eq!(
            status_of(f.remove(&root, b"whatever")),
            status::NFS4ERR_ROFS
        );
        assert_eq!(
            status_of(f.setattr(&root, Fattr::new().mode(0o700), Stateid::ANONYMOUS)),
            status::NFS4ERR_ROFS
        );
        assert_eq!(
            status_of(f.write_at(&root, Stateid::ANONYMOUS, 0, b"x", stable::FILE_SYNC)),
            status::NFS4ERR_ROFS
        );
        // ACCESS never grants modification on a read-only export.
        let (_, acc) = f.access(&root, 0x3f).unwrap();
        assert_eq!(acc & (access::MODIFY | access::EXTEND | access::DELETE), 0);
        if env.is_local() {
            let d = f.lookup(&root, b"d").unwrap();
            assert_eq!(
                status_of(f.rename(&root, b"f", &d, b"g")),
                status::NFS4ERR_ROFS
            );
            let fh = f.lookup(&root, b"f").unwrap();
            assert_eq!(status_of(f.link(&fh, &d, b"g")), status::NFS4ERR_ROFS);
            assert_eq!(
                status_of(f.open(&root, b"f", share::ACCESS_WRITE, 0)),
                status::NFS4ERR_ROFS
            );
            assert_eq!(
                status_of(f.open(&root, b"f", share::ACCESS_BOTH, 0)),
                status::NFS4ERR_ROFS
            );
            assert_eq!(
                status_of(f.setattr(&fh, Fattr::new().size(0), Stateid::ANONYMOUS)),
                status::NFS4ERR_ROFS
            );
            // Reading works.
            let of = f.open(&root, b"f", share::ACCESS_READ, 0).unwrap();
            assert_eq!(f.read_all(&of).unwrap(), b"read me");
            assert_eq!(
                status_of(f.write(&of, 0, b"x", stable::FILE_SYNC)),
                status::NFS4ERR_ROFS
            );
            f.close(of).unwrap();
            assert_eq!(f.read_file(&root, b"f").unwrap(), b"read me");
        }
    });
}
