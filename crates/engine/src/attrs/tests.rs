use super::*;
use crate::consts::{NfsStatus, status};
use crate::types::{bitmap_to_ops, decode_bitmap, encode_bitmap, ops_to_bitmap};
use ringnfs_fs::types::{FileType, SetAttrs, SetTime, Timespec};
use ringnfs_proto::nfs4::ops::{Fattr4, Xdr};
use ringnfs_proto::xdr::{XdrDecoder, XdrEncoder};

/// The attribute code takes a fattr4 that proto decoded; these tests feed it raw
/// bytes, framing errors included (NFS4ERR_BADXDR, as the op answers them).
fn decode_settable(d: &mut XdrDecoder<'_>) -> Result<(SetAttrs, Vec<u32>), NfsStatus> {
    let f = Fattr4::decode(d).map_err(|_| status::NFS4ERR_BADXDR)?;
    super::decode_settable(&f)
}

fn verify(d: &mut XdrDecoder<'_>, src: &AttrSource<'_>) -> Result<bool, NfsStatus> {
    let f = Fattr4::decode(d).map_err(|_| status::NFS4ERR_BADXDR)?;
    super::verify(&f, src)
}

fn sample() -> Attrs {
    Attrs {
        ftype: FileType::Regular,
        mode: 0o644,
        nlink: 1,
        uid: 1000,
        gid: 100,
        size: 0x1_0000_0002,
        space_used: 8192,
        atime: Timespec {
            secs: 1_700_000_000,
            nsecs: 5,
        },
        mtime: Timespec {
            secs: 1_700_000_001,
            nsecs: 999_999_999,
        },
        ctime: Timespec {
            secs: 1_700_000_002,
            nsecs: 7,
        },
        fileid: 42,
        rdev: (8, 1),
        change: 0xdead_beef_0000_0001,
    }
}

const STATS: FsStats = FsStats {
    total_bytes: 1000,
    free_bytes: 600,
    avail_bytes: 500,
    total_files: 100,
    free_files: 60,
    avail_files: 50,
};

fn source<'a>(a: &'a Attrs, stats: Option<&'a FsStats>, locs: &'a [String]) -> AttrSource<'a> {
    AttrSource {
        attrs: a,
        fh: b"\x01\x02\x03\x04\x05",
        fsid: (7, 9),
        stats,
        lease_secs: 90,
        mounted_on_fileid: 42,
        rdattr_error: None,
        fs_root_path: &[],
        server_locations: locs,
        clone_blksize: 4096,
        minor: 2,
    }
}

/// Encodes, then returns (reply bitmap, attr_vals) checking the opaque framing.
fn getattr(requested: &[u32], src: &AttrSource<'_>) -> (Vec<u32>, Vec<u8>) {
    let mut out = Vec::new();
    encode_fattr(&mut out, requested, src);
    let mut d = XdrDecoder::new(&out);
    let bm = decode_bitmap(&mut d).unwrap();
    let vals = d.opaque(usize::MAX).unwrap().to_vec();
    assert_eq!(d.remaining(), 0);
    (bm, vals)
}

fn fattr(mask: &[u32], vals: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_bitmap(&mut out, mask);
    out.put_opaque(vals);
    out
}

fn time(d: &mut XdrDecoder<'_>) -> Timespec {
    Timespec {
        secs: d.i64().unwrap(),
        nsecs: d.u32().unwrap(),
    }
}

#[test]
fn supported_list_is_sorted_and_matches_bitmap() {
    assert!(SUPPORTED.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(bitmap_to_ops(&supported_attrs()), SUPPORTED);
    for a in SETTABLE.iter().chain(STATFS).chain(WRITE_ONLY) {
        assert!(SUPPORTED.contains(a));
    }
    // Not supported: acl, archive, hidden, time_create, mode_set_masked, layouts.
    for a in [
        attr::ACL,
        attr::ARCHIVE,
        attr::HIDDEN,
        attr::TIME_CREATE,
        attr::MODE_SET_MASKED,
        attr::FS_LAYOUT_TYPES,
    ] {
        assert!(!has(&supported_attrs(), a));
    }
}

/// A 4.1 COMPOUND does not see the attributes minor version 2 defines.
#[test]
fn minor_version_1_sees_no_4_2_attributes() {
    let a = sample();
    let mut src = source(&a, None, &[]);
    src.minor = 1;
    let req = ops_to_bitmap(&[
        attr::SUPPORTED_ATTRS,
        attr::CLONE_BLKSIZE,
        attr::XATTR_SUPPORT,
    ]);
    let (bm, vals) = getattr(&req, &src);
    assert_eq!(bitmap_to_ops(&bm), [attr::SUPPORTED_ATTRS]);
    let mut d = XdrDecoder::new(&vals);
    let shown = decode_bitmap(&mut d).unwrap();
    assert!(!has(&shown, attr::CLONE_BLKSIZE) && !has(&shown, attr::XATTR_SUPPORT));
    assert!(has(&shown, attr::SIZE));
}

#[test]
fn full_encode_decodes_by_hand() {
    let a = sample();
    let locs: Vec<String> = vec![];
    let src = source(&a, Some(&STATS), &locs);
    let all = supported_attrs();
    let (bm, vals) = getattr(&all, &src);
    // Everything but the set-only times.
    let mut expect: Vec<u32> = SUPPORTED.to_vec();
    expect.retain(|x| !WRITE_ONLY.contains(x));
    assert_eq!(bitmap_to_ops(&bm), expect);

    let mut d = XdrDecoder::new(&vals);
    assert_eq!(decode_bitmap(&mut d).unwrap(), all.to_vec()); // supported_attrs
    assert_eq!(d.u32().unwrap(), 1); // type NF4REG
    assert_eq!(d.u32().unwrap(), FH4_PERSISTENT);
    assert_eq!(d.u64().unwrap(), 0xdead_beef_0000_0001); // change
    assert_eq!(d.u64().unwrap(), 0x1_0000_0002); // size
    assert!(d.bool().unwrap()); // link_support
    assert!(d.bool().unwrap()); // symlink_support
    assert!(!d.bool().unwrap()); // named_attr
    assert_eq!((d.u64().unwrap(), d.u64().unwrap()), (7, 9)); // fsid
    assert!(d.bool().unwrap()); // unique_handles
    assert_eq!(d.u32().unwrap(), 90); // lease_time
    assert_eq!(d.u32().unwrap(), status::NFS4_OK.code()); // rdattr_error
    assert_eq!(d.u32().unwrap(), 0); // aclsupport
    assert!(d.bool().unwrap()); // cansettime
    assert!(!d.bool().unwrap()); // case_insensitive
    assert!(d.bool().unwrap()); // case_preserving
    assert!(d.bool().unwrap()); // chown_restricted
    assert_eq!(d.opaque(128).unwrap(), b"\x01\x02\x03\x04\x05"); // filehandle
    assert_eq!(d.u64().unwrap(), 42); // fileid
    assert_eq!(d.u64().unwrap(), 50); // files_avail
    assert_eq!(d.u64().unwrap(), 60); // files_free
    assert_eq!(d.u64().unwrap(), 100); // files_total
    assert_eq!(d.u32().unwrap(), 0); // fs_locations: fs_root "/"
    assert_eq!(d.u32().unwrap(), 0); // no locations
    assert!(d.bool().unwrap()); // homogeneous
    assert_eq!(d.u64().unwrap(), i64::MAX as u64); // maxfilesize
    assert_eq!(d.u32().unwrap(), MAXLINK);
    assert_eq!(d.u32().unwrap(), 255); // maxname
    assert_eq!(d.u64().unwrap(), 1 << 20); // maxread
    assert_eq!(d.u64().unwrap(), 1 << 20); // maxwrite
    assert_eq!(d.u32().unwrap(), 0o644); // mode
    assert!(d.bool().unwrap()); // no_trunc
    assert_eq!(d.u32().unwrap(), 1); // numlinks
    assert_eq!(d.opaque(64).unwrap(), b"1000"); // owner
    assert_eq!(d.opaque(64).unwrap(), b"100"); // owner_group
    assert_eq!((d.u32().unwrap(), d.u32().unwrap()), (8, 1)); // rawdev
    assert_eq!(d.u64().unwrap(), 500); // space_avail
    assert_eq!(d.u64().unwrap(), 600); // space_free
    assert_eq!(d.u64().unwrap(), 1000); // space_total
    assert_eq!(d.u64().unwrap(), 8192); // space_used
    assert_eq!(time(&mut d), a.atime);
    assert_eq!(time(&mut d), Timespec { secs: 0, nsecs: 1 }); // time_delta
    assert_eq!(time(&mut d), a.ctime); // time_metadata
    assert_eq!(time(&mut d), a.mtime); // time_modify
    assert_eq!(d.u64().unwrap(), 42); // mounted_on_fileid
    assert_eq!(
        decode_bitmap(&mut d).unwrap(),
        suppattr_exclcreat()[..2].to_vec()
    );
    assert_eq!(d.u32().unwrap(), 4096); // clone_blksize
    assert!(d.bool().unwrap()); // xattr_support
    assert_eq!(d.remaining(), 0);
}

#[test]
fn exact_bytes_of_a_few() {
    let a = sample();
    let src = source(&a, None, &[]);
    let req = ops_to_bitmap(&[
        attr::TYPE,
        attr::CHANGE,
        attr::SIZE,
        attr::FSID,
        attr::OWNER,
        attr::TIME_MODIFY,
    ]);
    let mut out = Vec::new();
    encode_fattr(&mut out, &req, &src);
    #[rustfmt::skip]
    let expect: Vec<u8> = vec![
        0, 0, 0, 2, // bitmap words
        0, 0, 0x01, 0x1a, // 1,3,4,8
        0, 0x20, 0, 0x10, // 36, 53
        0, 0, 0, 56, // attr_vals length
        0, 0, 0, 1, // type
        0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1, // change
        0, 0, 0, 1, 0, 0, 0, 2, // size
        0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 9, // fsid
        0, 0, 0, 4, b'1', b'0', b'0', b'0', // owner
        0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x01, 0x3b, 0x9a, 0xc9, 0xff, // time_modify
    ];
    assert_eq!(out, expect);
}

#[test]
fn requested_intersect_supported_and_order() {
    let a = sample();
    let src = source(&a, None, &[]);
    // acl (12), hidden (25), time_create (50), a word-3 bit, set-only time_access_set,
    // statfs attr without stats: all left out.
    let mut req = ops_to_bitmap(&[
        attr::MODE,
        attr::ACL,
        attr::HIDDEN,
        attr::TIME_CREATE,
        attr::TIME_ACCESS_SET,
        attr::SPACE_TOTAL,
        attr::TYPE,
        attr::SUPPATTR_EXCLCREAT,
    ]);
    req.push(0xffff_ffff);
    let (bm, vals) = getattr(&req, &src);
    assert_eq!(
        bitmap_to_ops(&bm),
        vec![attr::TYPE, attr::MODE, attr::SUPPATTR_EXCLCREAT]
    );
    let mut d = XdrDecoder::new(&vals);
    assert_eq!(d.u32().unwrap(), 1);
    assert_eq!(d.u32().unwrap(), 0o644);
    assert_eq!(
        decode_bitmap(&mut d).unwrap(),
        suppattr_exclcreat()[..2].to_vec()
    );
    assert_eq!(d.remaining(), 0);

    // Nothing answerable: empty bitmap, empty values.
    let mut out = Vec::new();
    encode_fattr(&mut out, &ops_to_bitmap(&[attr::ACL]), &src);
    assert_eq!(out, [0, 0, 0, 0, 0, 0, 0, 0]);
    encode_fattr(&mut out, &[], &src);
    assert_eq!(out.len(), 16);
}

#[test]
fn statfs_need_and_readable_check() {
    assert!(needs_statfs(&ops_to_bitmap(&[attr::SPACE_AVAIL])));
    assert!(needs_statfs(&ops_to_bitmap(&[attr::FILES_FREE])));
    assert!(!needs_statfs(&ops_to_bitmap(&[
        attr::SPACE_USED,
        attr::SIZE
    ])));
    assert!(!needs_statfs(&[]));
    assert_eq!(
        check_readable(&ops_to_bitmap(&[attr::TIME_MODIFY_SET])),
        Err(status::NFS4ERR_INVAL)
    );
    assert_eq!(
        check_readable(&supported_attrs()),
        Err(status::NFS4ERR_INVAL)
    );
    assert_eq!(check_readable(&ops_to_bitmap(&[attr::TIME_MODIFY])), Ok(()));
}

#[test]
fn owner_strings() {
    let mut a = sample();
    for (uid, s) in [(0u32, &b"0"[..]), (7, b"7"), (u32::MAX - 1, b"4294967294")] {
        a.uid = uid;
        a.gid = uid;
        let src = source(&a, None, &[]);
        let (_, vals) = getattr(&ops_to_bitmap(&[attr::OWNER, attr::OWNER_GROUP]), &src);
        let mut d = XdrDecoder::new(&vals);
        assert_eq!(d.opaque(64).unwrap(), s);
        assert_eq!(d.opaque(64).unwrap(), s);
    }
}

#[test]
fn rdattr_error_for_readdir() {
    let a = sample();
    let mut src = source(&a, None, &[]);
    src.rdattr_error = Some(status::NFS4ERR_ACCESS);
    let (_, vals) = getattr(&ops_to_bitmap(&[attr::RDATTR_ERROR]), &src);
    assert_eq!(vals, status::NFS4ERR_ACCESS.code().to_be_bytes());

    let mut out = Vec::new();
    assert!(!encode_rdattr_error(
        &mut out,
        &ops_to_bitmap(&[attr::TYPE]),
        NfsStatus::from_code(13)
    ));
    assert!(out.is_empty());
    assert!(encode_rdattr_error(
        &mut out,
        &ops_to_bitmap(&[attr::TYPE, attr::RDATTR_ERROR]),
        NfsStatus::from_code(13)
    ));
    assert_eq!(out, [0, 0, 0, 1, 0, 0, 8, 0, 0, 0, 0, 4, 0, 0, 0, 13]);
}

#[test]
fn fs_locations_two_servers() {
    let a = sample();
    let locs = vec!["127.0.0.1".to_string(), "10.0.0.2".to_string()];
    let mut src = source(&a, None, &locs);
    let root: [&[u8]; 2] = [b"export", b"data"];
    src.fs_root_path = &root;
    let (bm, vals) = getattr(&ops_to_bitmap(&[attr::FS_LOCATIONS]), &src);
    assert_eq!(bm, [1 << attr::FS_LOCATIONS]);
    #[rustfmt::skip]
    let path: Vec<u8> = vec![
        0, 0, 0, 2,
        0, 0, 0, 6, b'e', b'x', b'p', b'o', b'r', b't', 0, 0,
        0, 0, 0, 4, b'd', b'a', b't', b'a',
    ];
    let mut expect = path.clone();
    expect.extend([0, 0, 0, 2]); // two locations
    expect.extend([0, 0, 0, 1, 0, 0, 0, 9]); // one server name, 9 bytes
    expect.extend(b"127.0.0.1\0\0\0");
    expect.extend(&path);
    expect.extend([0, 0, 0, 1, 0, 0, 0, 8]);
    expect.extend(b"10.0.0.2");
    expect.extend(&path);
    assert_eq!(vals, expect);

    // And by hand with the decoder.
    let mut d = XdrDecoder::new(&vals);
    let comps = |d: &mut XdrDecoder<'_>| -> Vec<Vec<u8>> {
        let n = d.array_len(16, 4).unwrap();
        (0..n).map(|_| d.opaque(255).unwrap().to_vec()).collect()
    };
    assert_eq!(comps(&mut d), vec![b"export".to_vec(), b"data".to_vec()]);
    let n = d.array_len(16, 4).unwrap();
    let mut servers = vec![];
    for _ in 0..n {
        assert_eq!(d.array_len(16, 4).unwrap(), 1);
        servers.push(String::from_utf8(d.opaque(255).unwrap().to_vec()).unwrap());
        assert_eq!(comps(&mut d).len(), 2);
    }
    assert_eq!(servers, locs);
    assert_eq!(d.remaining(), 0);
}

#[test]
fn suppattr_exclcreat_contents() {
    assert_eq!(
        bitmap_to_ops(&suppattr_exclcreat()),
        vec![attr::SIZE, attr::MODE, attr::OWNER, attr::OWNER_GROUP]
    );
}

fn settable(mask: &[u32], vals: &[u8]) -> Result<(SetAttrs, Vec<u32>), NfsStatus> {
    let buf = fattr(mask, vals);
    let mut d = XdrDecoder::new(&buf);
    let r = decode_settable(&mut d);
    if r.is_ok() {
        assert_eq!(d.remaining(), 0);
    }
    r
}

#[test]
fn decode_each_settable() {
    let mut v = Vec::new();
    v.put_u64(12345);
    let (sa, set) = settable(&ops_to_bitmap(&[attr::SIZE]), &v).unwrap();
    assert_eq!(sa.size, Some(12345));
    assert_eq!(set, ops_to_bitmap(&[attr::SIZE]));

    let (sa, _) = settable(&ops_to_bitmap(&[attr::MODE]), &0o4755u32.to_be_bytes()).unwrap();
    assert_eq!(sa.mode, Some(0o4755));

    let mut v = Vec::new();
    v.put_opaque(b"1000");
    v.put_opaque(b"0");
    let (sa, _) = settable(&ops_to_bitmap(&[attr::OWNER, attr::OWNER_GROUP]), &v).unwrap();
    assert_eq!((sa.uid, sa.gid), (Some(1000), Some(0)));

    let mut v = Vec::new();
    v.put_u32(SET_TO_SERVER_TIME4);
    v.put_u32(SET_TO_CLIENT_TIME4);
    v.put_i64(-5);
    v.put_u32(999_999_999);
    let mask = ops_to_bitmap(&[attr::TIME_ACCESS_SET, attr::TIME_MODIFY_SET]);
    let (sa, set) = settable(&mask, &v).unwrap();
    assert_eq!(sa.atime, Some(SetTime::ServerNow));
    assert_eq!(
        sa.mtime,
        Some(SetTime::Client(Timespec {
            secs: -5,
            nsecs: 999_999_999
        }))
    );
    assert_eq!(set, mask);

    // All at once, in attribute order; the attrsset bitmap drops trailing zero words.
    let mut v = Vec::new();
    v.put_u64(1);
    v.put_u32(0o600);
    v.put_opaque(b"1");
    v.put_opaque(b"2");
    v.put_u32(SET_TO_SERVER_TIME4);
    v.put_u32(SET_TO_SERVER_TIME4);
    let mut mask = SETTABLE_BITMAP.to_vec();
    mask.extend([0, 0]);
    let (sa, set) = settable(&mask, &v).unwrap();
    assert_eq!(
        sa,
        SetAttrs {
            mode: Some(0o600),
            uid: Some(1),
            gid: Some(2),
            size: Some(1),
            atime: Some(SetTime::ServerNow),
            mtime: Some(SetTime::ServerNow),
        }
    );
    assert_eq!(set, SETTABLE_BITMAP[..2].to_vec());

    // Empty mask: nothing set.
    let (sa, set) = settable(&[], &[]).unwrap();
    assert!(sa.is_empty() && set.is_empty());
}

#[test]
fn decode_settable_errors() {
    let e = |mask: &[u32], vals: &[u8]| settable(mask, vals).unwrap_err();
    // Read-only supported attributes.
    for a in [
        attr::TYPE,
        attr::FILEID,
        attr::CHANGE,
        attr::TIME_MODIFY,
        attr::SUPPORTED_ATTRS,
    ] {
        assert_eq!(
            e(&ops_to_bitmap(&[a]), &[0; 8]),
            status::NFS4ERR_INVAL,
            "{a}"
        );
    }
    // Unsupported, even next to a read-only one.
    assert_eq!(
        e(&ops_to_bitmap(&[attr::ACL]), &[0; 4]),
        status::NFS4ERR_ATTRNOTSUPP
    );
    assert_eq!(
        e(&ops_to_bitmap(&[attr::TYPE, attr::TIME_CREATE]), &[0; 16]),
        status::NFS4ERR_ATTRNOTSUPP
    );
    assert_eq!(e(&[0, 0, 0, 1], &[]), status::NFS4ERR_ATTRNOTSUPP);
    // Owners.
    for bad in [
        &b"bob"[..],
        b"",
        b"1000@example.com",
        b"-1",
        b"4294967295",
        b"99999999999",
    ] {
        let mut v = Vec::new();
        v.put_opaque(bad);
        assert_eq!(
            e(&ops_to_bitmap(&[attr::OWNER]), &v),
            status::NFS4ERR_BADOWNER
        );
        assert_eq!(
            e(&ops_to_bitmap(&[attr::OWNER_GROUP]), &v),
            status::NFS4ERR_BADOWNER
        );
    }
    // Mode and times.
    assert_eq!(
        e(&ops_to_bitmap(&[attr::MODE]), &0o10000u32.to_be_bytes()),
        status::NFS4ERR_INVAL
    );
    let mut v = Vec::new();
    v.put_u32(SET_TO_CLIENT_TIME4);
    v.put_i64(0);
    v.put_u32(1_000_000_000);
    assert_eq!(
        e(&ops_to_bitmap(&[attr::TIME_MODIFY_SET]), &v),
        status::NFS4ERR_INVAL
    );
    assert_eq!(
        e(
            &ops_to_bitmap(&[attr::TIME_ACCESS_SET]),
            &2u32.to_be_bytes()
        ),
        status::NFS4ERR_BADXDR
    );
    // Truncated and overlong attr_vals.
    assert_eq!(
        e(&ops_to_bitmap(&[attr::SIZE]), &[0; 4]),
        status::NFS4ERR_BADXDR
    );
    assert_eq!(
        e(&ops_to_bitmap(&[attr::SIZE]), &[0; 12]),
        status::NFS4ERR_BADXDR
    );
    let mut v = Vec::new();
    v.put_u32(SET_TO_CLIENT_TIME4);
    v.put_i64(0);
    assert_eq!(
        e(&ops_to_bitmap(&[attr::TIME_ACCESS_SET]), &v),
        status::NFS4ERR_BADXDR
    );
    // Truncated framing: every prefix of a valid fattr4 fails with BADXDR.
    let mut v = Vec::new();
    v.put_u64(1);
    v.put_u32(0o600);
    let full = fattr(&ops_to_bitmap(&[attr::SIZE, attr::MODE]), &v);
    for n in 0..full.len() {
        assert_eq!(
            decode_settable(&mut XdrDecoder::new(&full[..n])).unwrap_err(),
            status::NFS4ERR_BADXDR,
            "prefix {n}"
        );
    }
    // Hostile lengths.
    assert_eq!(
        decode_settable(&mut XdrDecoder::new(&[0xff, 0xff, 0xff, 0xff])).unwrap_err(),
        status::NFS4ERR_BADXDR
    );
    assert_eq!(
        decode_settable(&mut XdrDecoder::new(&[
            0, 0, 0, 1, 0, 0, 0, 16, 0xff, 0xff, 0xff, 0xff
        ]))
        .unwrap_err(),
        status::NFS4ERR_BADXDR
    );
    let mut v = Vec::new();
    v.put_u32(0xffff_fff0);
    assert_eq!(
        e(&ops_to_bitmap(&[attr::OWNER]), &v),
        status::NFS4ERR_BADXDR
    );
}

fn run_verify(mask: &[u32], vals: &[u8], src: &AttrSource<'_>) -> Result<bool, NfsStatus> {
    let buf = fattr(mask, vals);
    verify(&mut XdrDecoder::new(&buf), src)
}

#[test]
fn verify_cases() {
    let a = sample();
    let src = source(&a, Some(&STATS), &[]);
    let mask = ops_to_bitmap(&[attr::SIZE, attr::MODE, attr::OWNER, attr::SPACE_FREE]);
    let mut v = Vec::new();
    v.put_u64(a.size);
    v.put_u32(0o644);
    v.put_opaque(b"1000");
    v.put_u64(600);
    assert_eq!(run_verify(&mask, &v, &src), Ok(true));
    // What GETATTR returns verifies.
    let all = supported_attrs();
    let mut readable = all;
    readable[0] &= !(1 << attr::RDATTR_ERROR);
    readable[1] &= !WRITE_ONLY_BITMAP[1];
    let (bm, vals) = getattr(&readable, &src);
    assert_eq!(run_verify(&bm, &vals, &src), Ok(true));

    // A different value, a different owner, a short list.
    let mut w = v.clone();
    w[7] ^= 1;
    assert_eq!(run_verify(&mask, &w, &src), Ok(false));
    let mut w = Vec::new();
    w.put_u64(a.size);
    w.put_u32(0o644);
    w.put_opaque(b"1001");
    w.put_u64(600);
    assert_eq!(run_verify(&mask, &w, &src), Ok(false));
    assert_eq!(run_verify(&mask, &v[..8], &src), Ok(false));
    assert_eq!(run_verify(&[], &[], &src), Ok(true));

    // Errors.
    assert_eq!(
        run_verify(&ops_to_bitmap(&[attr::ACL]), &[0; 4], &src),
        Err(status::NFS4ERR_ATTRNOTSUPP)
    );
    assert_eq!(
        run_verify(&ops_to_bitmap(&[attr::RDATTR_ERROR]), &[0; 4], &src),
        Err(status::NFS4ERR_INVAL)
    );
    assert_eq!(
        run_verify(&ops_to_bitmap(&[attr::TIME_MODIFY_SET]), &[0; 4], &src),
        Err(status::NFS4ERR_INVAL)
    );
    let no_stats = source(&a, None, &[]);
    assert_eq!(
        run_verify(&mask, &v, &no_stats),
        Err(status::NFS4ERR_SERVERFAULT)
    );
    assert_eq!(
        verify(&mut XdrDecoder::new(&[0, 0, 0, 1, 0, 0, 0, 16]), &src),
        Err(status::NFS4ERR_BADXDR)
    );
}

#[test]
fn hostile_input_never_panics() {
    let a = sample();
    let src = source(&a, Some(&STATS), &[]);
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..20_000 {
        let len = (next() % 64) as usize;
        let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Often make the framing plausible so the value decoders get exercised.
        if len >= 16 && next() % 2 == 0 {
            buf[..4].copy_from_slice(&2u32.to_be_bytes());
            let w0 = (next() as u32) & SETTABLE_BITMAP[0];
            let w1 = (next() as u32) & SETTABLE_BITMAP[1];
            buf[4..8].copy_from_slice(&w0.to_be_bytes());
            buf[8..12].copy_from_slice(&w1.to_be_bytes());
            buf[12..16].copy_from_slice(&((len - 16) as u32).to_be_bytes());
        }
        let _ = decode_settable(&mut XdrDecoder::new(&buf));
        let _ = verify(&mut XdrDecoder::new(&buf), &src);
    }
}

/// The client's fattr4 encoder and the server's settable-attribute decoder agree.
#[test]
fn the_clients_settable_attributes_decode_on_the_server() {
    use ringnfs_client::{Fattr, TimeSet};
    let a = Fattr::new()
        .time_modify_set(TimeSet::Client(5, 6))
        .owner("1000")
        .mode(0o644)
        .size(7)
        .time_access_set(TimeSet::Server);
    let mut v = Vec::new();
    a.encode(&mut v);
    let mut d = XdrDecoder::new(&v);
    let (set, bits) = decode_settable(&mut d).unwrap();
    assert_eq!(bits, vec![1 << 4, 1 << 1 | 1 << 4 | 1 << 16 | 1 << 22]);
    assert_eq!(
        (set.size, set.mode, set.uid),
        (Some(7), Some(0o644), Some(1000))
    );
}

/// GETATTR's reply-size bound holds for every attribute at its largest.
#[test]
fn max_fattr_len_bounds_the_encoding() {
    let mut a = sample();
    a.uid = u32::MAX - 1;
    a.gid = 4_000_000_000;
    let locs = vec!["192.168.100.200".to_string(), "h".to_string()];
    let root: [&[u8]; 2] = [b"export", b"sub"];
    let mut src = source(&a, Some(&STATS), &locs);
    let fh = [7u8; crate::consts::NFS4_FHSIZE];
    src.fh = &fh;
    src.fs_root_path = &root;
    let all = [u32::MAX; WORDS];
    let mut out = Vec::new();
    encode_fattr(&mut out, &all, &src);
    let max = max_fattr_len(&all, &root, &locs);
    assert!(out.len() <= max, "{} > {max}", out.len());
    // Only suppattr_exclcreat's bitmap is shorter than the bound allows.
    assert!(max - out.len() <= 4, "{} much less than {max}", out.len());
    // A bitmap longer than the words we know, and nothing asked.
    assert!(max_fattr_len(&[u32::MAX; 8], &root, &locs) >= out.len());
    assert_eq!(max_fattr_len(&[], &[], &[]), 4 + 4 * WORDS + 4);
}
