//! Whole-server workload over four trunked connections (tree, 64 MiB of data with
//! checksums, renames, hard links, symlinks, removal; restarts on the local backend with
//! the old file handles kept), and escape attempts against the local backend.

pub mod common;
pub mod files_common;

use std::collections::BTreeSet;
use std::path::Path;

use files_common::{Env, fnv, for_each_backend, pattern, status_of};
use ringnfs::client::ops::{ftype, share};
use ringnfs::client::{CreateType, Fattr, FileAttrs, Files, Op, OpenClaim, OpenHow};
use ringnfs::nfs4::consts::{op, status};
use ringnfs::server::BackendKind;

const CONNS: usize = 4;
const FILES: usize = 16;
const FILE_SIZE: usize = 4 << 20; // 16 files × 4 MiB = 64 MiB

/// On the local backend: stop the server, start a new one on the same export and state
/// directories, and return a new client; on memory: the same client.
fn maybe_restart(env: &mut Env, f: Files) -> Files {
    if !env.is_local() {
        return f;
    }
    drop(f);
    env.restart();
    env.trunked_files(CONNS)
}

/// Remove everything below `dir` (depth first), using READDIR + LOOKUP + GETATTR.
fn remove_tree(f: &Files, dir: &[u8]) {
    for (name, _) in f.readdir_all(dir).unwrap() {
        let r = f
            .call(&[
                Op::PutFh(dir.to_vec()),
                Op::Lookup(name.clone()),
                Op::GetFh,
                Op::GetAttr(FileAttrs::REQUEST.to_vec()),
            ])
            .unwrap();
        if r.attrs().unwrap().ftype == Some(ftype::DIR) {
            remove_tree(f, &r.getfh().unwrap());
        }
        f.remove(dir, &name).unwrap();
    }
}

#[test]
fn workload_on_trunked_connections() {
    for_each_backend(|env| {
        let mut f = env.trunked_files(CONNS);
        assert_eq!(f.session().connection_count(), CONNS);
        let root = f.root_fh().unwrap();
        let top = f.mkdir(&root, b"work", 0o755).unwrap();

        // A tree: work/d{0..3}/s{0,1}.
        let mut dirs = Vec::new();
        for i in 0..4 {
            let d = f.mkdir(&top, format!("d{i}").as_bytes(), 0o755).unwrap();
            for j in 0..2 {
                let s = f.mkdir(&d, format!("s{j}").as_bytes(), 0o700).unwrap();
                dirs.push((format!("work/d{i}/s{j}"), s));
            }
        }
        // 64 MiB: each file written over connection i % 4 (its 4 MiB in 256 KiB
        // writes), checksummed.
        let mut files = Vec::new();
        for i in 0..FILES {
            let (path, dir) = &dirs[i % dirs.len()];
            let name = format!("file{i:02}");
            let data = pattern(i as u64 + 1, FILE_SIZE);
            let w = f.pinned(i % CONNS);
            let (fh, of) = w.create(dir, name.as_bytes(), 0o644).unwrap();
            for (k, chunk) in data.chunks(256 * 1024).enumerate() {
                let (n, _) = w
                    .write(
                        &of,
                        (k * 256 * 1024) as u64,
                        chunk,
                        ringnfs::client::ops::stable::UNSTABLE,
                    )
                    .unwrap();
                assert_eq!(n as usize, chunk.len());
            }
            w.commit(&fh, 0, 0).unwrap();
            w.close(of).unwrap();
            files.push((format!("{path}/{name}"), fh, fnv(&data)));
        }
        // Read back on a different connection than the writer's, in 1 MiB READs.
        for (i, (path, fh, sum)) in files.iter().enumerate() {
            let r = f.pinned((i + 1) % CONNS);
            let of = r.open_fh(fh, share::ACCESS_READ, share::DENY_NONE).unwrap();
            let data = r.read_all(&of).unwrap();
            r.close(of).unwrap();
            assert_eq!(data.len(), FILE_SIZE, "{path}");
            assert_eq!(fnv(&data), *sum, "{path}");
            assert_eq!(r.lookup_path(path).unwrap(), *fh);
        }

        f = maybe_restart(env, f);

        // Old handles still work after a restart (local backend).
        for (path, fh, _) in &files {
            let a = f.getattr(fh).unwrap();
            assert_eq!(a.size, Some(FILE_SIZE as u64), "{path}");
            assert_eq!(f.lookup_path(path).unwrap(), *fh);
        }

        // Rename every other file into another directory: handles follow the files.
        let mut renamed = Vec::new();
        for (i, (path, fh, sum)) in files.iter().enumerate() {
            if i % 2 == 1 {
                renamed.push((path.clone(), fh.clone(), *sum));
                continue;
            }
            let (src_path, src) = &dirs[i % dirs.len()];
            let (dst_path, dst) = &dirs[(i + 3) % dirs.len()];
            let old = path.rsplit('/').next().unwrap();
            let new = format!("moved-{old}");
            f.pinned(i % CONNS)
                .rename(src, old.as_bytes(), dst, new.as_bytes())
                .unwrap();
            assert_eq!(
                status_of(f.lookup_path(&format!("{src_path}/{old}"))),
                status::NFS4ERR_NOENT
            );
            renamed.push((format!("{dst_path}/{new}"), fh.clone(), *sum));
        }
        let files = renamed;

        // Hard links in work/links; numlinks counts them.
        let links = f.mkdir(&top, b"links", 0o755).unwrap();
        for (i, (_, fh, _)) in files.iter().enumerate().take(4) {
            f.link(fh, &links, format!("hard{i}").as_bytes()).unwrap();
            f.link(fh, &links, format!("hard{i}b").as_bytes()).unwrap();
            assert_eq!(f.getattr(fh).unwrap().numlinks, Some(3));
        }
        // Symlinks with relative and absolute targets.
        let mut syms = Vec::new();
        for (i, (path, _, _)) in files.iter().enumerate().take(4) {
            let target = format!("../{}", path.trim_start_matches("work/"));
            let s = f
                .symlink(&links, format!("sym{i}").as_bytes(), target.as_bytes())
                .unwrap();
            assert_eq!(f.readlink(&s).unwrap(), target.as_bytes());
            syms.push((s, target));
        }

        f = maybe_restart(env, f);

        // Everything survived: data via old handles across connections, links, symlinks.
        for (i, (path, fh, sum)) in files.iter().enumerate() {
            let r = f.pinned(i % CONNS);
            assert_eq!(r.lookup_path(path).unwrap(), *fh, "{path}");
            let of = r.open_fh(fh, share::ACCESS_READ, 0).unwrap();
            assert_eq!(fnv(&r.read_all(&of).unwrap()), *sum, "{path}");
            r.close(of).unwrap();
        }
        for (i, (_, fh, _)) in files.iter().enumerate().take(4) {
            let h = f.lookup(&links, format!("hard{i}").as_bytes()).unwrap();
            assert_eq!(h, *fh);
            assert_eq!(f.getattr(&h).unwrap().numlinks, Some(3));
        }
        for (s, target) in &syms {
            assert_eq!(f.readlink(s).unwrap(), target.as_bytes());
        }
        let mut names: Vec<_> = f
            .readdir_all(&links)
            .unwrap()
            .into_iter()
            .map(|e| e.0)
            .collect();
        names.sort();
        assert_eq!(names.len(), 12);

        // Remove everything; the removed files' handles go stale.
        remove_tree(&f, &top);
        f.remove(&root, b"work").unwrap();
        assert!(f.readdir_all(&root).unwrap().is_empty());
        for (path, fh, _) in &files {
            let r = f
                .call_raw(&[
                    Op::PutFh(fh.clone()),
                    Op::GetAttr(FileAttrs::REQUEST.to_vec()),
                ])
                .unwrap();
            assert_eq!(
                r.failure().map(|x| x.1),
                Some(status::NFS4ERR_STALE),
                "{path}"
            );
        }
        if let Some(p) = env.export_path() {
            assert_eq!(std::fs::read_dir(p).unwrap().count(), 0);
        }
    });
}

fn listing(p: &Path) -> BTreeSet<String> {
    std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn local_symlinks_do_not_escape_the_export() {
    let env = Env::start(BackendKind::Local, |_| {});
    let base = env.dir.as_ref().unwrap().path().to_path_buf();
    let export = env.export_path().unwrap();
    let outside = base.join("outside-target");
    let before = listing(&base);

    let f = env.files();
    let root = f.root_fh().unwrap();
    let esc = f.symlink(&root, b"esc", b"/").unwrap();
    assert_eq!(f.readlink(&esc).unwrap(), b"/");
    assert_eq!(f.getattr(&esc).unwrap().ftype, Some(ftype::LNK));
    // LOOKUP through the symlink: it is not a directory to the server.
    for name in [&b"etc"[..], b"tmp", b"."] {
        let st = status_of(f.lookup(&esc, name));
        assert!(
            st == status::NFS4ERR_NOTDIR
                || st == status::NFS4ERR_SYMLINK
                || st == status::NFS4ERR_BADNAME,
            "{st}"
        );
    }
    // OPEN of the symlink: SYMLINK; creating through it or in it never works.
    assert_eq!(
        status_of(f.open(&root, b"esc", share::ACCESS_READ, 0)),
        status::NFS4ERR_SYMLINK
    );
    let st = status_of(f.create(&esc, b"evil", 0o644));
    assert!(
        st == status::NFS4ERR_NOTDIR || st == status::NFS4ERR_SYMLINK,
        "{st}"
    );
    let st = status_of(f.mkdir(&esc, b"evil", 0o755));
    assert!(
        st == status::NFS4ERR_NOTDIR || st == status::NFS4ERR_SYMLINK,
        "{st}"
    );
    // LOOKUPP at the export root: NOENT (the export root is "/").
    assert_eq!(status_of(f.lookupp(&root)), status::NFS4ERR_NOENT);
    assert_eq!(status_of(f.lookup(&root, b"..")), status::NFS4ERR_BADNAME);

    // A dangling symlink to a path outside: OPEN with create must not create the target.
    let target = outside.to_string_lossy().into_owned();
    f.symlink(&root, b"dangling", target.as_bytes()).unwrap();
    for how in [
        OpenHow::Unchecked(Fattr::new()),
        OpenHow::Guarded(Fattr::new()),
        OpenHow::Exclusive41([9; 8], Fattr::new()),
    ] {
        let args = f.open_args(
            share::ACCESS_BOTH,
            0,
            how,
            OpenClaim::Null(b"dangling".to_vec()),
        );
        let st = status_of(f.open_with(&root, args));
        assert!(
            st == status::NFS4ERR_SYMLINK || st == status::NFS4ERR_EXIST,
            "{st}"
        );
    }
    let rel = f.symlink(&root, b"up", b"../../outside-target").unwrap();
    let st = status_of(f.create(&rel, b"x", 0o644));
    assert!(
        st == status::NFS4ERR_NOTDIR || st == status::NFS4ERR_SYMLINK,
        "{st}"
    );
    // Rename and link of symlinks stay inside: they are just names.
    let d = f.mkdir(&root, b"d", 0o755).unwrap();
    f.rename(&root, b"esc", &d, b"esc2").unwrap();
    f.link(&esc, &d, b"esc3").unwrap();
    assert_eq!(f.readlink(&f.lookup(&d, b"esc2").unwrap()).unwrap(), b"/");
    // CREATE with a name holding a path: BADNAME.
    assert_eq!(
        status_of(f.mkdir(&root, b"../outside-target", 0o755)),
        status::NFS4ERR_BADNAME
    );

    // A forged handle (any byte flipped): STALE or BADHANDLE.
    let dfh = f.lookup(&root, b"d").unwrap();
    for i in 0..dfh.len() {
        let mut forged = dfh.clone();
        forged[i] ^= 0x80;
        let r = f
            .call_raw(&[Op::PutFh(forged), Op::GetAttr(FileAttrs::REQUEST.to_vec())])
            .unwrap();
        let st = r.failure().map(|x| x.1);
        assert!(
            st == Some(status::NFS4ERR_STALE) || st == Some(status::NFS4ERR_BADHANDLE),
            "byte {i}: {st:?}"
        );
    }

    // Nothing appeared outside the export; the symlinks are inside it.
    assert!(!outside.exists(), "created {}", outside.display());
    assert_eq!(listing(&base), before);
    assert!(
        std::fs::symlink_metadata(export.join("d/esc2"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_link(export.join("d/esc3")).unwrap(),
        Path::new("/")
    );
    // The special file types stay inside too.
    f.create_obj(&d, b"fifo", CreateType::Fifo, Fattr::new())
        .unwrap();
    assert!(export.join("d/fifo").exists());
}

#[test]
fn local_handles_survive_restart_and_see_outside_changes() {
    let mut env = Env::start(BackendKind::Local, |_| {});
    let export = env.export_path().unwrap();
    let f = env.files();
    let root = f.root_fh().unwrap();
    let d = f.mkdir(&root, b"keep", 0o755).unwrap();
    let fh = f.write_file(&d, b"f", b"before restart").unwrap();
    drop(f);
    env.restart();
    let f = env.files();
    assert_eq!(f.root_fh().unwrap(), root, "root handle is stable");
    assert_eq!(f.lookup(&d, b"f").unwrap(), fh);
    let of = f.open_fh(&fh, share::ACCESS_BOTH, 0).unwrap();
    assert_eq!(f.read_all(&of).unwrap(), b"before restart");
    f.close(of).unwrap();
    // A file removed behind the server's back: its handle is STALE.
    std::fs::remove_file(export.join("keep/f")).unwrap();
    let r = f
        .call_raw(&[
            Op::PutFh(fh.clone()),
            Op::GetAttr(FileAttrs::REQUEST.to_vec()),
        ])
        .unwrap();
    assert_eq!(r.failure().map(|x| x.1), Some(status::NFS4ERR_STALE));
    // A file created behind its back is visible.
    std::fs::write(export.join("keep/g"), b"outside").unwrap();
    assert_eq!(f.read_file(&d, b"g").unwrap(), b"outside");
    // A new state directory (new handle key) makes old handles STALE.
    drop(f);
    let new_state = env.dir.as_ref().unwrap().path().join("state-new-key");
    env.restart_with(move |cfg| cfg.state_dir = Some(new_state.clone()));
    let f = env.files();
    let r = f.call_raw(&[Op::PutFh(d.clone()), Op::GetFh]).unwrap();
    assert_eq!(r.failure(), Some((op::PUTFH, status::NFS4ERR_STALE)));
}
