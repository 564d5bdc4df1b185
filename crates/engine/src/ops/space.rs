//! Sparse files and space (RFC 7862 §15): SEEK, READ_PLUS, ALLOCATE, DEALLOCATE.
//!
//! SEEK asks the backend (`lseek(SEEK_DATA/SEEK_HOLE)` on a real file) on the worker.
//! READ_PLUS maps the requested range into data and holes the same way, then reads the
//! data span (from the page cache at once, else on the ring) and encodes one segment
//! per region. ALLOCATE and DEALLOCATE are `fallocate(2)` on the ring for real files.

use crate::consts::status;
use crate::ctx::{
    CompoundCtx, IoFinish, IoOutcome, OpResult, PendingIo, ReadPlusWait, Region, resolved,
};
use ringnfs_fs::{Backend, FileType, FsResult, ObjHandle};
use ringnfs_proto::nfs4::ops::{
    ReadArgs, ReadPlusSegment, SeekArgs, SeekResOk, SpaceArgs, Xdr, data_content4,
};
use ringnfs_proto::xdr::{XdrEncoder, pad4};
use ringnfs_service::{Caching, FileIoDone, FileOp};
use ringnfs_state::files::IoKind;

use super::MAX_IO;
use super::attr::check_stateid_io;

/// Holes shorter than this are sent as data (zeros): a hole segment costs 20 bytes of
/// reply, and file systems report holes in whole blocks anyway.
pub const MIN_HOLE: u64 = 4096;

/// fallocate(2) modes.
const FALLOC_ALLOCATE: i32 = 0;
/// FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE (the engine links no libc).
const FALLOC_PUNCH_HOLE: i32 = 0x02 | 0x01;

fn require_regular(t: FileType) -> OpResult {
    super::require_regular(t, status::NFS4ERR_WRONG_TYPE)
}

pub fn seek(ctx: &mut CompoundCtx<'_>, a: SeekArgs, out: &mut Vec<u8>) -> OpResult {
    let cur = ctx.cur()?;
    let sid = resolved(a.stateid)?;
    let attrs = ctx.export.backend.getattr(&cur.obj)?;
    require_regular(attrs.ftype)?;
    check_stateid_io(ctx, &sid, &cur, &attrs, IoKind::Read)?;
    let data = match a.what {
        data_content4::DATA => true,
        data_content4::HOLE => false,
        _ => return Err(status::NFS4ERR_UNION_NOTSUPP),
    };
    // RFC 7862 §15.11.3: an offset beyond the end is NFS4ERR_NXIO; no data after the
    // offset is NFS4_OK with sr_eof set (Linux's lseek then says ENXIO).
    if a.offset >= attrs.size {
        return Err(status::NFS4ERR_NXIO);
    }
    let res = match ctx.export.backend.seek(&cur.obj, a.offset, data)? {
        Some(at) => SeekResOk {
            eof: at >= attrs.size,
            offset: at,
        },
        None => SeekResOk {
            eof: true,
            offset: attrs.size,
        },
    };
    res.encode(out);
    Ok(())
}

pub fn allocate(ctx: &mut CompoundCtx<'_>, a: SpaceArgs, _: &mut Vec<u8>) -> OpResult {
    change_space(ctx, a, FALLOC_ALLOCATE)
}

pub fn deallocate(ctx: &mut CompoundCtx<'_>, a: SpaceArgs, _: &mut Vec<u8>) -> OpResult {
    change_space(ctx, a, FALLOC_PUNCH_HOLE)
}

/// ALLOCATE or DEALLOCATE (`mode`) of the range in `a`.
fn change_space(ctx: &mut CompoundCtx<'_>, a: SpaceArgs, mode: i32) -> OpResult {
    let cur = ctx.cur()?;
    ctx.writable()?;
    let sid = resolved(a.stateid)?;
    let attrs = ctx.export.backend.getattr(&cur.obj)?;
    require_regular(attrs.ftype)?;
    check_stateid_io(ctx, &sid, &cur, &attrs, IoKind::Write)?;
    ctx.yield_delegations(&cur.obj, true)?;
    // fallocate(2)'s own checks, answered before any I/O.
    if a.length == 0 {
        return Err(status::NFS4ERR_INVAL);
    }
    if super::past_max_offset(a.offset, a.length) {
        return Err(status::NFS4ERR_FBIG);
    }
    if let Some(fd) = ctx.export.backend.io_file(&cur.obj, true) {
        let op = FileOp::Fallocate {
            mode,
            offset: a.offset,
            len: a.length,
        };
        ctx.pending_io = Some(PendingIo::new(fd?, op, IoFinish::Space));
        return Ok(());
    }
    let backend = &ctx.export.backend;
    if mode == FALLOC_ALLOCATE {
        backend.allocate(&cur.obj, a.offset, a.length)?;
    } else {
        backend.deallocate(&cur.obj, a.offset, a.length)?;
    }
    Ok(())
}

/// `[offset, end)` of file `h` as data and holes (holes shorter than [`MIN_HOLE`]
/// folded into the data around them).
fn regions(backend: &dyn Backend, h: &ObjHandle, offset: u64, end: u64) -> FsResult<Vec<Region>> {
    let mut out: Vec<Region> = Vec::new();
    let mut push = |start: u64, stop: u64, data: bool| {
        let data = data || stop - start < MIN_HOLE;
        match out.last_mut() {
            Some(last) if last.data == data => last.end = stop,
            _ => out.push(Region {
                start,
                end: stop,
                data,
            }),
        }
    };
    let mut pos = offset;
    while pos < end {
        let data_at = backend.seek(h, pos, true)?.unwrap_or(end).min(end);
        if data_at > pos {
            push(pos, data_at, false);
        }
        if data_at >= end {
            break;
        }
        // A backend that finds no hole after data (or none further on) ends the data
        // at `end`: never loop in place.
        let hole_at = match backend.seek(h, data_at, false)? {
            Some(at) if at > data_at => at.min(end),
            _ => end,
        };
        push(data_at, hole_at, true);
        pos = hole_at;
    }
    Ok(out)
}

/// READ_PLUS4resok for the regions `map` of a file of `size` bytes, whose data span
/// (the first data byte to the last) is `span` bytes read from `span_at` (fewer if the
/// file shrank meanwhile). The segments take at most `budget` bytes after the eof and
/// count words: the last data segment is cut to fit, and the reply stops there (eof
/// unset, the client reads on).
pub fn encode_read_plus(
    out: &mut Vec<u8>,
    map: &[Region],
    (span_at, span): (u64, &[u8]),
    size: u64,
    budget: usize,
) {
    let eof_at = out.len();
    out.put_bool(false);
    let count_at = out.len();
    out.put_u32(0);
    let mut segments = 0u32;
    let mut used = 0usize;
    let mut reached = map.first().map_or(0, |r| r.start);
    for r in map {
        if r.data {
            let from = (r.start - span_at) as usize;
            let want = (r.end - r.start) as usize;
            let have = span.len().saturating_sub(from);
            let room = budget.saturating_sub(used + ReadPlusSegment::DATA_HEAD_LEN) & !3;
            let len = want.min(have).min(room);
            if len == 0 {
                break;
            }
            ReadPlusSegment::encode_data_head(out, r.start, len);
            out.extend_from_slice(&span[from..from + len]);
            out.resize(out.len() + pad4(len) - len, 0);
            used += ReadPlusSegment::DATA_HEAD_LEN + pad4(len);
            segments += 1;
            reached = r.start + len as u64;
            if len < want {
                break;
            }
        } else {
            if used + ReadPlusSegment::HOLE_LEN > budget {
                break;
            }
            ReadPlusSegment::Hole {
                offset: r.start,
                length: r.end - r.start,
            }
            .encode(out);
            used += ReadPlusSegment::HOLE_LEN;
            segments += 1;
            reached = r.end;
        }
    }
    out.patch_u32(count_at, segments);
    out.patch_u32(eof_at, u32::from(reached >= size));
}

/// Reply bytes READ_PLUS's segments may take for a READ of `count`: the data padded,
/// and one segment head beyond (so a hole in front of all the data still fits).
pub fn read_plus_budget(count: u32) -> usize {
    pad4(count as usize) + ReadPlusSegment::HOLE_LEN
}

pub fn read_plus(ctx: &mut CompoundCtx<'_>, a: ReadArgs, out: &mut Vec<u8>) -> OpResult {
    let offset = a.offset;
    // As READ: never more than maxread, nor more than the reply size still allows.
    let room = ctx
        .reply_room
        .saturating_sub(64 + 2 * ReadPlusSegment::HOLE_LEN);
    let count = a.count.min(room.min(MAX_IO as usize) as u32);
    let cur = ctx.cur()?;
    let sid = resolved(a.stateid)?;
    let attrs = ctx.export.backend.getattr(&cur.obj)?;
    // As READ (whose arguments these are): INVAL for what is neither file nor directory.
    super::require_regular(attrs.ftype, status::NFS4ERR_INVAL)?;
    check_stateid_io(ctx, &sid, &cur, &attrs, IoKind::Read)?;
    let size = attrs.size;
    let end = size.min(offset.saturating_add(u64::from(count)));
    let budget = read_plus_budget(count);
    if offset >= end {
        // Nothing to read: at or past the end (eof), or a READ of nothing before it.
        let eof = offset >= size;
        out.put_bool(eof);
        out.put_u32(0);
        return Ok(());
    }
    let backend = &*ctx.export.backend;
    let map = regions(backend, &cur.obj, offset, end)?;
    let (span_at, span_end) = match (
        map.iter().find(|r| r.data),
        map.iter().rev().find(|r| r.data),
    ) {
        (Some(first), Some(last)) => (first.start, last.end),
        _ => (offset, offset),
    };
    let span_len = (span_end - span_at) as u32;
    let mut span = Vec::new();
    if span_len > 0 {
        match backend.io_file(&cur.obj, false) {
            Some(fd) => {
                let fd = fd?;
                let cached = ringnfs_fs::sync_io::read_nowait(
                    &fd,
                    span_at,
                    span_len,
                    size,
                    Caching::Buffered,
                    &mut span,
                );
                match cached {
                    Some(Ok(n)) if n == span_len as usize => {}
                    Some(Err(e)) => return Err(e.into()),
                    // Not all cached: the whole span on the ring.
                    _ => {
                        let op = FileOp::Read {
                            offset: span_at,
                            len: span_len,
                            caching: Caching::Buffered,
                            into: Vec::new(),
                        };
                        let finish = IoFinish::ReadPlus(Box::new(ReadPlusWait {
                            map,
                            span_at,
                            size,
                            budget,
                        }));
                        ctx.pending_io = Some(PendingIo::new(fd, op, finish));
                        return Ok(());
                    }
                }
            }
            None => {
                backend.read(&cur.obj, span_at, span_len, &mut span)?;
            }
        }
    }
    encode_read_plus(out, &map, (span_at, &span), size, budget);
    Ok(())
}

/// Finish a READ_PLUS whose data span the ring read.
pub fn finish_read_plus(w: &ReadPlusWait, done: &FileIoDone, out: &mut Vec<u8>) -> IoOutcome {
    let got = &done.buf[..(done.result.max(0) as usize).min(done.buf.len())];
    encode_read_plus(out, &w.map, (w.span_at, got), w.size, w.budget);
    IoOutcome::Status(status::NFS4_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringnfs_proto::nfs4::ops::ReadPlusResOk;

    /// Decode a READ_PLUS4resok and expand it to the bytes it stands for from its
    /// first segment on (holes as zeros), checking the segments are in order and
    /// adjacent.
    fn expand(out: &[u8], from: u64) -> (bool, Vec<u8>) {
        let r = ReadPlusResOk::from_bytes(out).unwrap();
        let mut bytes = Vec::new();
        let mut at = from;
        for s in r.contents {
            match s {
                ReadPlusSegment::Data { offset, data } => {
                    assert_eq!(offset, at, "adjacent");
                    bytes.extend_from_slice(data);
                    at += data.len() as u64;
                }
                ReadPlusSegment::Hole { offset, length } => {
                    assert_eq!(offset, at, "adjacent");
                    assert!(length >= MIN_HOLE);
                    bytes.resize(bytes.len() + length as usize, 0);
                    at += length;
                }
            }
        }
        (r.eof, bytes)
    }

    fn file(size: usize, data: &[(usize, usize)]) -> Vec<u8> {
        let mut f = vec![0u8; size];
        for &(s, e) in data {
            for (i, b) in f[s..e].iter_mut().enumerate() {
                *b = (i % 250) as u8 + 1;
            }
        }
        f
    }

    /// Regions as a backend would report them for `data` ranges.
    fn map_of(offset: u64, end: u64, data: &[(usize, usize)]) -> Vec<Region> {
        let mut v: Vec<Region> = Vec::new();
        let mut pos = offset;
        for &(s, e) in data {
            let (s, e) = ((s as u64).max(offset), (e as u64).min(end));
            if e <= s {
                continue;
            }
            if s > pos {
                v.push(Region {
                    start: pos,
                    end: s,
                    data: false,
                });
            }
            v.push(Region {
                start: s,
                end: e,
                data: true,
            });
            pos = e;
        }
        if pos < end {
            v.push(Region {
                start: pos,
                end,
                data: false,
            });
        }
        v
    }

    #[test]
    fn segments_stand_for_the_file_bytes_and_fit_the_budget() {
        let data = [(0, 5000), (20_000, 20_001), (40_960, 70_000)];
        let f = file(100_000, &data);
        for (offset, count) in [
            (0u64, 100_000u32),
            (4999, 30_000),
            (5000, 10_000),
            (69_999, 40_000),
        ] {
            let end = (offset + u64::from(count)).min(f.len() as u64);
            let map = map_of(offset, end, &data);
            let span_at = map.iter().find(|r| r.data).map_or(offset, |r| r.start);
            let span_end = map.iter().rev().find(|r| r.data).map_or(offset, |r| r.end);
            let span = &f[span_at as usize..span_end as usize];
            let budget = read_plus_budget(count);
            let mut out = Vec::new();
            encode_read_plus(&mut out, &map, (span_at, span), f.len() as u64, budget);
            assert!(out.len() <= 8 + budget, "within the budget");
            let (eof, bytes) = expand(&out, offset);
            assert_eq!(bytes, f[offset as usize..end as usize], "at {offset}");
            assert_eq!(eof, end == f.len() as u64);
        }
    }

    #[test]
    fn a_short_span_or_budget_stops_early_without_eof() {
        let data = [(0, 10_000)];
        let f = file(10_000, &data);
        let map = map_of(0, 10_000, &data);
        // The file shrank to 6,000 bytes after the map was made.
        let mut out = Vec::new();
        encode_read_plus(
            &mut out,
            &map,
            (0, &f[..6000]),
            10_000,
            read_plus_budget(10_000),
        );
        let (eof, bytes) = expand(&out, 0);
        assert_eq!((eof, bytes.len()), (false, 6000));
        // A budget of 1,000 bytes: the data is cut to fit.
        let mut out = Vec::new();
        encode_read_plus(&mut out, &map, (0, &f), 10_000, 1000);
        let (eof, bytes) = expand(&out, 0);
        assert!(!eof && bytes.len() <= 1000 - 16 && bytes == f[..bytes.len()]);
    }
}
