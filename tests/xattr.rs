//! Extended attributes (RFC 8276) over real sockets, on the memory and the local
//! backend: GETXATTR, SETXATTR (create / replace / either), LISTXATTRS (cookies,
//! maxcount), REMOVEXATTR, the change attribute, ACCESS's XA bits, xattr_support, and
//! the errors an RFC reader expects.

pub mod common;
pub mod files_common;

use files_common::{for_each_backend, status_of, sys};
use ringnfs::client::ops::access;
use ringnfs::client::{ClientError, Files, ListXattrsArgs, Op, setxattr_option4};
use ringnfs::nfs4::attrs::attr;
use ringnfs::nfs4::consts::status;

fn set(
    f: &Files,
    fh: &[u8],
    option: u32,
    name: &[u8],
    value: &[u8],
) -> Result<(u64, u64), ClientError> {
    let ci = f
        .call(&[
            Op::PutFh(fh.to_vec()),
            Op::SetXattr {
                option,
                name: name.to_vec(),
                value: value.to_vec(),
            },
        ])?
        .setxattr()?;
    Ok((ci.before, ci.after))
}

fn get(f: &Files, fh: &[u8], name: &[u8]) -> Result<Vec<u8>, ClientError> {
    f.call(&[Op::PutFh(fh.to_vec()), Op::GetXattr(name.to_vec())])?
        .getxattr()
}

fn remove(f: &Files, fh: &[u8], name: &[u8]) -> Result<(), ClientError> {
    f.call(&[Op::PutFh(fh.to_vec()), Op::RemoveXattr(name.to_vec())])?
        .removexattr()
        .map(drop)
}

fn list(
    f: &Files,
    fh: &[u8],
    cookie: u64,
    maxcount: u32,
) -> Result<(Vec<Vec<u8>>, u64, bool), ClientError> {
    f.call(&[
        Op::PutFh(fh.to_vec()),
        Op::ListXattrs(ListXattrsArgs { cookie, maxcount }),
    ])?
    .listxattrs()
}

#[test]
fn set_get_list_remove_on_files_and_directories() {
    use setxattr_option4::{CREATE, EITHER, REPLACE};
    for_each_backend(|env| {
        let f = env.files();
        let root = f.root_fh().unwrap();
        let (fh, of) = f.create(&root, b"x", 0o644).unwrap();
        f.close(of).unwrap();
        let change = |fh: &[u8]| f.getattr(fh).unwrap().change.unwrap();

        assert_eq!(status_of(get(&f, &fh, b"a")), status::NFS4ERR_NOXATTR);
        assert_eq!(
            status_of(set(&f, &fh, REPLACE, b"a", b"1")),
            status::NFS4ERR_NOXATTR
        );
        let c0 = change(&fh);
        let (before, after) = set(&f, &fh, CREATE, b"a", b"1").unwrap();
        assert!(
            after > before && before >= c0,
            "change advances: {c0} {before} {after}"
        );
        assert_eq!(
            status_of(set(&f, &fh, CREATE, b"a", b"2")),
            status::NFS4ERR_EXIST
        );
        set(&f, &fh, REPLACE, b"a", b"two").unwrap();
        set(&f, &fh, EITHER, b"b", b"").unwrap();
        set(&f, &fh, EITHER, b"c", &[0u8, 255, 7]).unwrap();
        assert_eq!(get(&f, &fh, b"a").unwrap(), b"two");
        assert_eq!(get(&f, &fh, b"b").unwrap(), b"");
        assert_eq!(get(&f, &fh, b"c").unwrap(), [0u8, 255, 7]);
        let (names, cookie, eof) = list(&f, &fh, 0, 4096).unwrap();
        assert_eq!(
            (names, cookie, eof),
            (vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()], 3, true)
        );
        // A value at the size limit, and one byte over.
        let max = vec![9u8; 65536];
        set(&f, &fh, EITHER, b"big", &max).ok();
        if let Ok(v) = get(&f, &fh, b"big") {
            assert_eq!(v, max);
        }
        assert_eq!(
            status_of(set(&f, &fh, EITHER, b"big", &vec![9u8; 65537])),
            status::NFS4ERR_XATTR2BIG
        );
        let _ = remove(&f, &fh, b"big");
        let c1 = change(&fh);
        remove(&f, &fh, b"b").unwrap();
        assert!(
            change(&fh) > c1,
            "REMOVEXATTR advances the change attribute"
        );
        assert_eq!(status_of(remove(&f, &fh, b"b")), status::NFS4ERR_NOXATTR);
        // Names: empty, NUL, too long, and an undefined option.
        assert_eq!(
            status_of(set(&f, &fh, EITHER, b"", b"v")),
            status::NFS4ERR_INVAL
        );
        assert_eq!(status_of(get(&f, &fh, b"a\0b")), status::NFS4ERR_INVAL);
        assert_eq!(
            status_of(get(&f, &fh, &[b'n'; 251])),
            status::NFS4ERR_NAMETOOLONG
        );
        assert_eq!(
            status_of(set(&f, &fh, 3, b"a", b"v")),
            status::NFS4ERR_INVAL
        );
        // Directories carry them too.
        let d = f.mkdir(&root, b"d", 0o755).unwrap();
        set(&f, &d, EITHER, b"dir", b"yes").unwrap();
        assert_eq!(get(&f, &d, b"dir").unwrap(), b"yes");
        // Symlinks do not (Linux: EPERM for user. attributes there).
        let l = f.symlink(&root, b"l", b"x").unwrap();
        assert_eq!(
            status_of(set(&f, &l, EITHER, b"a", b"1")),
            status::NFS4ERR_PERM
        );
        if let Some(export) = env.export_path() {
            // The file's own user. attributes on the local backend.
            let v = xattr_of(&export.join("x"), "user.a");
            assert_eq!(v.as_deref(), Some(&b"two"[..]));
        }
    });
}

/// The local file's extended attribute `name`.
fn xattr_of(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    xattr::get(path, name).ok().flatten()
}

#[test]
fn listxattrs_pages_by_cookie_and_maxcount() {
    for_each_backend(|env| {
        let f = env.files();
        let root = f.root_fh().unwrap();
        let (fh, of) = f.create(&root, b"many", 0o644).unwrap();
        f.close(of).unwrap();
        let mut want: Vec<Vec<u8>> = (0..40)
            .map(|i| format!("name-{i:02}").into_bytes())
            .collect();
        for n in &want {
            set(&f, &fh, setxattr_option4::EITHER, n, b"v").unwrap();
        }
        want.sort();
        // Pages of 100 bytes: the 16-byte frame and a few 12-byte names each.
        let mut got = Vec::new();
        let mut cookie = 0;
        loop {
            let (names, next, eof) = list(&f, &fh, cookie, 100).unwrap();
            assert!(
                !names.is_empty() && names.len() <= 7,
                "{} names",
                names.len()
            );
            assert_eq!(next, cookie + names.len() as u64);
            got.extend(names);
            cookie = next;
            if eof {
                break;
            }
        }
        assert_eq!(got, want);
        // Too small for the frame, or for the next name; a cookie past the end.
        assert_eq!(status_of(list(&f, &fh, 0, 10)), status::NFS4ERR_TOOSMALL);
        assert_eq!(status_of(list(&f, &fh, 0, 20)), status::NFS4ERR_TOOSMALL);
        assert_eq!(
            status_of(list(&f, &fh, 41, 4096)),
            status::NFS4ERR_BAD_COOKIE
        );
        // At the end: nothing, eof.
        assert_eq!(list(&f, &fh, 40, 4096).unwrap(), (vec![], 40, true));
    });
}

#[test]
fn permissions_access_bits_and_xattr_support() {
    for_each_backend(|env| {
        let owner = env.files_as(sys(1000, 1000));
        let other = env.files_as(sys(2000, 2000));
        let root = owner.root_fh().unwrap();
        let (fh, of) = owner.create(&root, b"mine", 0o640).unwrap();
        owner.close(of).unwrap();
        set(&owner, &fh, setxattr_option4::EITHER, b"k", b"v").unwrap();
        // No read or write permission for others: NFS4ERR_ACCESS.
        assert_eq!(status_of(get(&other, &fh, b"k")), status::NFS4ERR_ACCESS);
        assert_eq!(
            status_of(list(&other, &fh, 0, 4096)),
            status::NFS4ERR_ACCESS
        );
        assert_eq!(
            status_of(set(&other, &fh, setxattr_option4::EITHER, b"k", b"w")),
            status::NFS4ERR_ACCESS
        );
        // ACCESS answers the XA bits in 4.2 (the client sends ACCESS in 4.1 COMPOUNDs,
        // so ask with a 4.2 op beside it).
        let all = access::XAREAD | access::XAWRITE | access::XALIST;
        let r = owner
            .call(&[
                Op::PutFh(fh.clone()),
                Op::Access(all),
                Op::GetXattr(b"k".to_vec()),
            ])
            .unwrap();
        assert_eq!(
            r.access().unwrap(),
            (all, all),
            "the owner may read and write"
        );
        let r = other
            .call_raw(&[
                Op::PutFh(fh.clone()),
                Op::Access(all),
                Op::GetXattr(b"k".to_vec()),
            ])
            .unwrap();
        assert_eq!(r.access().unwrap(), (all, 0), "others may not");
        // xattr_support is TRUE (a 4.2 attribute: asked in a 4.2 COMPOUND).
        owner.session().use_minor_version(2);
        let r = owner
            .call(&[
                Op::PutFh(fh.clone()),
                Op::GetAttr(vec![0, 0, 1 << (attr::XATTR_SUPPORT - 64)]),
            ])
            .unwrap();
        let (mask, vals) = r.getattr().unwrap();
        assert_eq!(
            mask.get(2).copied().unwrap_or(0) & (1 << (attr::XATTR_SUPPORT - 64)),
            1 << (attr::XATTR_SUPPORT - 64)
        );
        assert_eq!(vals, [0, 0, 0, 1]);
    });
}

#[test]
fn read_only_export_refuses_changes_but_reads() {
    for_each_backend(|env| {
        if !env.is_local() {
            return; // the memory backend starts empty on restart: nothing to read
        }
        let f = env.files();
        let root = f.root_fh().unwrap();
        let (fh, of) = f.create(&root, b"ro", 0o644).unwrap();
        f.close(of).unwrap();
        set(&f, &fh, setxattr_option4::EITHER, b"k", b"v").unwrap();
        drop(f);
        env.restart_with(|cfg| cfg.export.read_only = true);
        let f = env.files();
        let fh = f.lookup(&f.root_fh().unwrap(), b"ro").unwrap();
        assert_eq!(get(&f, &fh, b"k").unwrap(), b"v");
        assert_eq!(
            status_of(set(&f, &fh, setxattr_option4::EITHER, b"k", b"w")),
            status::NFS4ERR_ROFS
        );
        assert_eq!(status_of(remove(&f, &fh, b"k")), status::NFS4ERR_ROFS);
    });
}
