//! NFSv4.2 sparse files and space over real sockets, on the memory and the local
//! backend (RFC 7862 §15): SEEK, READ_PLUS, ALLOCATE, DEALLOCATE — the bytes a client
//! reads back, the holes it is told about, and the statuses an RFC reader expects.

pub mod common;
pub mod files_common;

use files_common::{Env, failure_of, for_each_backend, status_of};
use ringnfs::client::{
    Files, Op, ReadArgs, ReadPlusRes, SeekArgs, SeekResOk, SpaceArgs, Stateid, data_content4,
};
use ringnfs::nfs4::consts::{op, status};

const MIB: u64 = 1 << 20;

fn seek(
    f: &Files,
    fh: &[u8],
    sid: Stateid,
    offset: u64,
    what: u32,
) -> Result<SeekResOk, ringnfs::client::ClientError> {
    f.call(&[
        Op::PutFh(fh.to_vec()),
        Op::Seek(SeekArgs {
            stateid: sid,
            offset,
            what,
        }),
    ])?
    .seek()
}

fn read_plus(f: &Files, fh: &[u8], sid: Stateid, offset: u64, count: u32) -> ReadPlusRes {
    f.call(&[
        Op::PutFh(fh.to_vec()),
        Op::ReadPlus(ReadArgs {
            stateid: sid,
            offset,
            count,
        }),
    ])
    .unwrap()
    .read_plus()
    .unwrap()
}

fn space(
    f: &Files,
    fh: &[u8],
    sid: Stateid,
    dealloc: bool,
    offset: u64,
    length: u64,
) -> Result<(), ringnfs::client::ClientError> {
    let a = SpaceArgs {
        stateid: sid,
        offset,
        length,
    };
    let o = if dealloc {
        Op::Deallocate(a)
    } else {
        Op::Allocate(a)
    };
    f.call(&[Op::PutFh(fh.to_vec()), o]).map(drop)
}

/// Bytes `offset..offset + len` of a file as READ returns them (several READs).
fn read_range(f: &Files, fh: &[u8], sid: Stateid, offset: u64, len: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while (out.len() as u64) < len {
        let at = offset + out.len() as u64;
        let want = (len - out.len() as u64).min(MIB) as u32;
        let (data, eof) = f.read_at(fh, sid, at, want).unwrap();
        out.extend_from_slice(&data);
        if eof || data.is_empty() {
            break;
        }
    }
    out
}

/// A file with data at [0, 8 KiB) and [1 MiB, 1 MiB + 4 KiB), a hole between.
fn sparse_file(env: &Env, name: &[u8]) -> (Files, Vec<u8>, Stateid, Vec<u8>) {
    let f = env.files();
    let root = f.root_fh().unwrap();
    let (fh, of) = f.create(&root, name, 0o644).unwrap();
    let head: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8 + 1).collect();
    let tail: Vec<u8> = (0..4096u32).map(|i| (i % 241) as u8 + 1).collect();
    f.write(&of, 0, &head, 2).unwrap();
    f.write(&of, MIB, &tail, 2).unwrap();
    let mut model = vec![0u8; (MIB + 4096) as usize];
    model[..8192].copy_from_slice(&head);
    model[MIB as usize..].copy_from_slice(&tail);
    (f, fh, of.stateid, model)
}

#[test]
fn seek_finds_data_and_holes() {
    for_each_backend(|env| {
        let (f, fh, sid, model) = sparse_file(env, b"sparse");
        let size = model.len() as u64;
        let data = |o| seek(&f, &fh, sid, o, data_content4::DATA).unwrap();
        let hole = |o| seek(&f, &fh, sid, o, data_content4::HOLE).unwrap();
        assert_eq!(
            data(0),
            SeekResOk {
                eof: false,
                offset: 0
            }
        );
        // The hole after the first data starts at its end (rounded up to the backend's
        // block or chunk: never inside data).
        let h = hole(0).offset;
        assert!((8192..=65536).contains(&h), "first hole at {h}");
        assert!(!hole(0).eof);
        assert_eq!(
            data(h),
            SeekResOk {
                eof: false,
                offset: MIB
            }
        );
        assert_eq!(data(MIB + 100).offset, MIB + 100, "inside data: itself");
        // The hole at the end of the file.
        assert_eq!(
            hole(MIB),
            SeekResOk {
                eof: true,
                offset: size
            }
        );
        // At or past the end: NXIO (RFC 7862 §15.11.3).
        assert_eq!(
            failure_of(seek(&f, &fh, sid, size, data_content4::DATA)),
            (op::SEEK, status::NFS4ERR_NXIO)
        );
        assert_eq!(
            status_of(seek(&f, &fh, sid, size + MIB, data_content4::HOLE)),
            status::NFS4ERR_NXIO
        );
        // An unknown data_content4.
        assert_eq!(
            status_of(seek(&f, &fh, sid, 0, 7)),
            status::NFS4ERR_UNION_NOTSUPP
        );
        // No data after the offset: OK with eof (the Linux client says ENXIO).
        let g = f.root_fh().unwrap();
        let (fh2, of2) = f.create(&g, b"trailing-hole", 0o644).unwrap();
        f.write(&of2, 0, b"x", 2).unwrap();
        space(&f, &fh2, of2.stateid, false, 0, 3 * MIB).unwrap();
        space(&f, &fh2, of2.stateid, true, 0, 3 * MIB).unwrap();
        let r = seek(&f, &fh2, of2.stateid, 10, data_content4::DATA).unwrap();
        assert!(r.eof, "{r:?}");
        // A directory is not sought; a bad stateid is refused.
        assert_eq!(
            status_of(seek(&f, &g, Stateid::ANONYMOUS, 0, data_content4::DATA)),
            status::NFS4ERR_ISDIR
        );
        let mut bad = sid;
        bad.other[11] ^= 0xff;
        assert_eq!(
            status_of(seek(&f, &fh, bad, 0, data_content4::DATA)),
            status::NFS4ERR_BAD_STATEID
        );
    });
}

#[test]
fn read_plus_returns_the_bytes_with_holes_at_every_alignment() {
    for_each_backend(|env| {
        let (f, fh, sid, model) = sparse_file(env, b"rp");
        let whole = read_plus(&f, &fh, sid, 0, (MIB + 4096) as u32);
        // The session's reply size may cut the reply short: read on until eof.
        let mut got = Vec::new();
        let mut at = 0u64;
        let mut holes = 0;
        loop {
            let r = read_plus(&f, &fh, sid, at, MIB as u32);
            assert_eq!(r.offset, at, "the first segment starts at the offset");
            at += r.data.len() as u64;
            holes += r.hole_segments;
            got.extend_from_slice(&r.data);
            if r.eof {
                break;
            }
            assert!(!r.data.is_empty(), "progress");
        }
        assert!(got == model, "READ_PLUS bytes");
        assert!(
            holes >= 1,
            "the hole is reported as one ({whole:?} segments)"
        );
        // Odd offsets and counts around both edges of the hole and the end.
        for (offset, count) in [
            (0u64, 1u32),
            (1, 8191),
            (8191, 2),
            (8192, 4096),
            (4095, 70_000),
            (MIB - 1, 2),
            (MIB - 5000, 9000),
            (MIB + 4095, 10),
            (MIB + 4096, 10),
            (MIB + 5000, 10),
        ] {
            let r = read_plus(&f, &fh, sid, offset, count);
            let from = (offset as usize).min(model.len());
            let to = (offset as usize + count as usize).min(model.len());
            assert!(r.data == model[from..to], "READ_PLUS {count} at {offset}");
            assert_eq!(
                r.eof,
                to == model.len(),
                "eof of READ_PLUS {count} at {offset}"
            );
            let (plain, eof) = f.read_at(&fh, sid, offset, count).unwrap();
            assert_eq!((plain, eof), (r.data.clone(), r.eof), "same as READ");
        }
    });
}

#[test]
fn allocate_and_deallocate_change_space_not_bytes_read() {
    for_each_backend(|env| {
        let (f, fh, sid, mut model) = sparse_file(env, b"space");
        let size = model.len() as u64;
        // DEALLOCATE the first 4 KiB: zeros read back, size unchanged.
        space(&f, &fh, sid, true, 0, 4096).unwrap();
        model[..4096].fill(0);
        let a = f.getattr(&fh).unwrap();
        assert_eq!(a.size, Some(size));
        assert!(
            read_range(&f, &fh, sid, 0, size) == model,
            "after DEALLOCATE"
        );
        // DEALLOCATE past the end does not grow the file.
        space(&f, &fh, sid, true, size - 100, MIB).unwrap();
        model[(size - 100) as usize..].fill(0);
        assert_eq!(f.getattr(&fh).unwrap().size, Some(size));
        assert!(read_range(&f, &fh, sid, 0, size) == model);
        // ALLOCATE past the end grows it with zeros, and holds space.
        let used_before = f.getattr(&fh).unwrap().space_used.unwrap();
        space(&f, &fh, sid, false, size, 256 * 1024).unwrap();
        let a = f.getattr(&fh).unwrap();
        assert_eq!(a.size, Some(size + 256 * 1024));
        assert!(a.space_used.unwrap() >= used_before + 256 * 1024, "{a:?}");
        model.resize((size + 256 * 1024) as usize, 0);
        assert!(read_range(&f, &fh, sid, 0, size + 256 * 1024) == model);
        // ALLOCATE inside data changes nothing read.
        space(&f, &fh, sid, false, 4096, 4096).unwrap();
        assert!(read_range(&f, &fh, sid, 0, model.len() as u64) == model);
        // fallocate(2)'s errors: an empty range, one past the largest offset.
        assert_eq!(
            failure_of(space(&f, &fh, sid, false, 0, 0)),
            (op::ALLOCATE, status::NFS4ERR_INVAL)
        );
        assert_eq!(
            failure_of(space(&f, &fh, sid, true, u64::MAX - 10, 100)),
            (op::DEALLOCATE, status::NFS4ERR_FBIG)
        );
        // Not on a directory; not without write access.
        let root = f.root_fh().unwrap();
        assert_eq!(
            status_of(space(&f, &root, Stateid::ANONYMOUS, false, 0, 10)),
            status::NFS4ERR_ISDIR
        );
        // (Another open owner: the same one would share the read-write open.)
        let reader = f.with_owner(b"reader");
        let ro = reader
            .open_fh(&fh, ringnfs::client::ops::share::ACCESS_READ, 0)
            .unwrap();
        assert_eq!(
            status_of(space(&f, &fh, ro.stateid, true, 0, 10)),
            status::NFS4ERR_OPENMODE
        );
    });
}

#[test]
fn read_only_export_refuses_space_changes_but_seeks() {
    for_each_backend(|env| {
        let (f, fh, _, _) = sparse_file(env, b"ro");
        drop(f);
        env.restart_with(|cfg| cfg.export.read_only = true);
        let f = env.files();
        let fh = if env.is_local() {
            f.lookup(&f.root_fh().unwrap(), b"ro").unwrap()
        } else {
            // The memory backend starts empty: nothing to look up, the handle is stale.
            assert_eq!(
                status_of(space(&f, &fh, Stateid::ANONYMOUS, false, 0, 10)),
                status::NFS4ERR_STALE
            );
            return;
        };
        assert_eq!(
            status_of(space(&f, &fh, Stateid::ANONYMOUS, false, 0, 10)),
            status::NFS4ERR_ROFS
        );
        assert_eq!(
            status_of(space(&f, &fh, Stateid::ANONYMOUS, true, 0, 10)),
            status::NFS4ERR_ROFS
        );
        let r = seek(&f, &fh, Stateid::ANONYMOUS, 0, data_content4::HOLE).unwrap();
        assert!(r.offset >= 8192);
    });
}

/// Deterministic pseudo-random numbers.
fn lcg(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state >> 33
}

/// Random layouts of data and holes (writes and punches at any alignment, a size set
/// past the data), read back at random offsets and counts: READ_PLUS stands for exactly
/// the bytes READ returns and the model holds, and every hole SEEK reports reads as zeros.
#[test]
fn random_layouts_read_back_exactly() {
    for_each_backend(|env| {
        let f = env.files();
        let root = f.root_fh().unwrap();
        let mut seed = 7 + env.is_local() as u64;
        for round in 0..12 {
            let name = format!("r{round}");
            let (fh, of) = f.create(&root, name.as_bytes(), 0o644).unwrap();
            let sid = of.stateid;
            let mut model: Vec<u8> = Vec::new();
            for _ in 0..12 {
                let off = lcg(&mut seed) % (3 * MIB);
                let len = 1 + lcg(&mut seed) % 90_000;
                if lcg(&mut seed).is_multiple_of(3) && !model.is_empty() {
                    let off = off % model.len() as u64;
                    space(&f, &fh, sid, true, off, len).unwrap();
                    let end = (off + len).min(model.len() as u64);
                    model[off as usize..end as usize].fill(0);
                } else {
                    let data: Vec<u8> = (0..len).map(|i| (i % 250) as u8 + 1).collect();
                    f.write(&of, off, &data, 2).unwrap();
                    let end = (off + len) as usize;
                    if model.len() < end {
                        model.resize(end, 0);
                    }
                    model[off as usize..end].copy_from_slice(&data);
                }
            }
            let size = model.len() as u64;
            for _ in 0..25 {
                let offset = lcg(&mut seed) % (size + 10_000);
                let count = 1 + (lcg(&mut seed) % (600_000)) as u32;
                let r = read_plus(&f, &fh, sid, offset, count);
                let from = (offset as usize).min(model.len());
                let to = from + r.data.len();
                assert!(to <= model.len(), "round {round}: past the end");
                assert!(
                    r.data == model[from..to],
                    "round {round}: READ_PLUS {count} at {offset}"
                );
                let want = (offset as usize + count as usize).min(model.len());
                assert_eq!(r.eof, to == model.len(), "round {round}: eof at {offset}");
                assert!(r.eof || to == want || !r.data.is_empty(), "progress");
                if offset < size {
                    let h = seek(&f, &fh, sid, offset, data_content4::HOLE)
                        .unwrap()
                        .offset;
                    let next = seek(
                        &f,
                        &fh,
                        sid,
                        h.min(size.saturating_sub(1)),
                        data_content4::DATA,
                    )
                    .map(|r| if r.eof { size } else { r.offset })
                    .unwrap_or(size);
                    if h < size {
                        assert!(
                            model[h as usize..next.max(h) as usize]
                                .iter()
                                .all(|b| *b == 0),
                            "round {round}: the hole at {h} holds data"
                        );
                    }
                }
            }
            f.close(of).unwrap();
        }
    });
}
