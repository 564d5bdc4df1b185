//! Data ops: READ, WRITE, COMMIT. READ appends file data straight into the reply.

use crate::consts::{NfsStatus, status};
use std::collections::VecDeque;

use crate::ctx::{
    CompoundCtx, DirectRead, DirectWrite, IoFinish, IoOutcome, OpResult, PendingIo, WritePart,
    resolved,
};
use ringnfs_fs::{DirectFile, FileType, FsError, Stability};
use ringnfs_proto::nfs4::ops::{
    CommitArgs, CommitResOk, ReadArgs, ReadResOk, WriteArgs, WriteResOk, Xdr, stable_how4,
};
use ringnfs_service::{Bytes, Caching, FileIoDone, FileOp, IoFd};
use ringnfs_state::StateManager;
use ringnfs_state::files::IoKind;

use super::attr::check_stateid_io;
use crate::export::Export;

use super::MAX_IO;

fn io_status(res: i32) -> NfsStatus {
    FsError::from_errno(-res).status()
}

/// Complete a data op's result in `out` from its file operation's outcome; the op's
/// status word is at `st_at` in `out`.
pub fn finish(
    state: &StateManager,
    export: &Export,
    f: IoFinish,
    done: FileIoDone,
    st_at: usize,
    out: &mut Vec<u8>,
) -> IoOutcome {
    if done.result < 0
        && let Some(c) = f.refused_caching()
        && refusal(c, FsError::from_errno(-done.result))
    {
        export.caching_refused(c);
        return buffered_again(f);
    }
    if done.result < 0 {
        return IoOutcome::Status(io_status(done.result));
    }
    let n = done.result as u32;
    match f {
        IoFinish::Space => IoOutcome::Status(status::NFS4_OK),
        // Finished by the loop itself (`Nfs4Engine::resume`), before the op runs.
        IoFinish::Before(_) => IoOutcome::Status(status::NFS4ERR_SERVERFAULT),
        IoFinish::ReadPlus(w) => super::space::finish_read_plus(&w, &done, out),
        IoFinish::Read {
            offset,
            count,
            size,
            in_place,
            direct,
            ..
        } => {
            // The head of READ4resok follows the status.
            let head = st_at + 4;
            let len = if in_place {
                (n as usize).min(out.len().saturating_sub(head + ReadResOk::HEAD_LEN))
            } else {
                // A direct read's buffer starts with padding and the bytes of its
                // aligned range before `offset`.
                let skip = direct.map_or(0, |d| d.skip);
                let got = done.buf.get(skip..).unwrap_or_default();
                let data = &got[..got.len().min(count as usize)];
                out.extend_from_slice(data);
                data.len()
            };
            let eof = read_eof(offset, len, count, size);
            export.stats.read(len as u64);
            ReadResOk::finish_head(out, head, eof, len);
            IoOutcome::Status(status::NFS4_OK)
        }
        IoFinish::Write {
            stable,
            synced: false,
            written,
            part: Some(part),
            mut direct,
        } => {
            let written = written.saturating_add(n);
            // The next part, unless this one was cut short (the client sends the rest).
            if n as usize >= part.data.len()
                && let Some(d) = direct.as_mut()
                && let Some(next) = d.next.pop_front()
            {
                return IoOutcome::Again {
                    fd: Some(d.fd(next.caching)),
                    op: next.op(),
                    finish: IoFinish::Write {
                        stable,
                        synced: false,
                        written,
                        part: Some(next),
                        direct,
                    },
                };
            }
            if stable != Stability::Unstable {
                return IoOutcome::Again {
                    fd: None,
                    op: FileOp::Fsync {
                        datasync: stable == Stability::DataSync,
                    },
                    finish: IoFinish::Write {
                        stable,
                        synced: true,
                        written,
                        part: None,
                        direct: None,
                    },
                };
            }
            export.stats.written(u64::from(written));
            write_ok(state, written, stable, out)
        }
        IoFinish::Write {
            stable, written, ..
        } => {
            export.stats.written(u64::from(written));
            write_ok(state, written, stable, out)
        }
        IoFinish::Commit => {
            CommitResOk {
                verifier: state.write_verifier,
            }
            .encode(out);
            IoOutcome::Status(status::NFS4_OK)
        }
        IoFinish::Done => IoOutcome::Status(status::NFS4ERR_SERVERFAULT),
    }
}

fn write_ok(state: &StateManager, count: u32, stable: Stability, out: &mut Vec<u8>) -> IoOutcome {
    WriteResOk {
        count,
        committed: stable as u32,
        verifier: state.write_verifier,
    }
    .encode(out);
    IoOutcome::Status(status::NFS4_OK)
}

/// Whether error `e` of a file operation in caching mode `c` means the mode itself is
/// refused: EOPNOTSUPP for any, and EINVAL for direct I/O (the file system's alignment
/// is not what it said).
fn refusal(c: Caching, e: FsError) -> bool {
    e == FsError::NotSupp || (c == Caching::Direct && e == FsError::Inval)
}

/// A file operation in a caching mode other than buffered was refused: the same
/// operation buffered (on the file's plain descriptor), and any parts after it.
fn buffered_again(f: IoFinish) -> IoOutcome {
    match f {
        IoFinish::Read {
            offset,
            count,
            size,
            direct,
            ..
        } => IoOutcome::Again {
            fd: direct.map(|d| d.plain),
            op: FileOp::Read {
                offset,
                len: count,
                caching: Caching::Buffered,
                into: Vec::new(),
            },
            finish: IoFinish::Read {
                offset,
                count,
                size,
                caching: Caching::Buffered,
                in_place: false,
                direct: None,
            },
        },
        IoFinish::Write {
            stable,
            written,
            part: Some(part),
            direct,
            ..
        } => {
            let part = WritePart {
                caching: Caching::Buffered,
                ..part
            };
            // The parts after it are written buffered too.
            let direct = direct.map(|mut d| {
                d.next
                    .iter_mut()
                    .for_each(|p| p.caching = Caching::Buffered);
                d
            });
            IoOutcome::Again {
                fd: direct.as_ref().map(|d| d.plain.clone()),
                op: part.op(),
                finish: IoFinish::Write {
                    stable,
                    synced: false,
                    written,
                    part: Some(part),
                    direct,
                },
            }
        }
        _ => IoOutcome::Status(status::NFS4ERR_NOTSUPP),
    }
}

impl WritePart {
    fn op(&self) -> FileOp {
        FileOp::Write {
            offset: self.offset,
            data: self.data.clone(),
            caching: self.caching,
        }
    }
}

/// The parts of a direct WRITE of `data` at `offset`: an unaligned head and tail
/// written buffered around the aligned middle written directly (from memory aligned as
/// the file requires: the data where it is if it is so aligned, else a copy). A write
/// with no aligned middle is one buffered part.
pub fn direct_parts(offset: u64, data: Bytes, df: &DirectFile) -> VecDeque<WritePart> {
    let a = u64::from(df.offset_align.max(1));
    let len = data.len() as u64;
    let head = ((a - offset % a) % a).min(len);
    let middle = (len - head) / a * a;
    let part = |from: u64, to: u64, caching| WritePart {
        offset: offset + from,
        data: data.slice(from as usize..to as usize),
        caching,
    };
    let mut parts = VecDeque::with_capacity(3);
    if middle == 0 {
        parts.push_back(part(0, len, Caching::Buffered));
        return parts;
    }
    if head > 0 {
        parts.push_back(part(0, head, Caching::Buffered));
    }
    let mut mid = part(head, head + middle, Caching::Direct);
    let mem = df.mem_align.max(1) as usize;
    if !(mid.data.as_ptr() as usize).is_multiple_of(mem) {
        mid.data = aligned_copy(&mid.data, mem);
    }
    parts.push_back(mid);
    if head + middle < len {
        parts.push_back(part(head + middle, len, Caching::Buffered));
    }
    parts
}

/// `data` copied to memory that starts at a multiple of `align`.
fn aligned_copy(data: &[u8], align: usize) -> Bytes {
    let mut v = aligned_buffer(data.len(), align);
    let pad = v.len();
    v.extend_from_slice(data);
    // Bytes takes the vector's allocation as it is: the slice stays aligned.
    Bytes::from(v).slice(pad..)
}

/// A buffer with room for `len` bytes that start at a multiple of `align`: its length
/// is the padding before them.
fn aligned_buffer(len: usize, align: usize) -> Vec<u8> {
    let mut v = Vec::<u8>::with_capacity(len + align);
    let pad = v.as_ptr().align_offset(align);
    v.resize(pad, 0);
    v
}

/// READ's eof (RFC 8881 §18.22.4): the data reaches the end of the file (`size`, read
/// before the data), or there was none to read. A read cut short in the middle of a file
/// (the ring, the page cache, a signal) is not the end: the client reads on from there.
fn read_eof(offset: u64, len: usize, count: u32, size: u64) -> bool {
    (len == 0 && count > 0) || offset.saturating_add(len as u64) >= size
}

fn require_regular(t: FileType) -> OpResult {
    super::require_regular(t, status::NFS4ERR_INVAL)
}

/// The file's `O_DIRECT` descriptor for an export in direct I/O mode; none when the
/// file system does no direct I/O, and then the export uses buffered I/O from now on.
fn direct_file(export: &Export, obj: &ringnfs_fs::ObjHandle) -> Option<DirectFile> {
    let df = export.backend.direct_file(obj);
    if df.is_none() {
        export.caching_refused(Caching::Direct);
    }
    df
}

/// A direct READ of `count` bytes at `offset`: the aligned range around them is read
/// into aligned memory, and the data copied from there into the reply.
fn direct_read(plain: IoFd, df: &DirectFile, offset: u64, count: u32, size: u64) -> PendingIo {
    let a = u64::from(df.offset_align.max(1));
    let start = offset / a * a;
    let end = (offset + u64::from(count)).div_ceil(a) * a;
    let len = (end - start) as usize;
    let into = aligned_buffer(len, df.mem_align.max(1) as usize);
    let skip = into.len() + (offset - start) as usize;
    PendingIo::new(
        df.fd.clone(),
        FileOp::Read {
            offset: start,
            len: len as u32,
            caching: Caching::Direct,
            into,
        },
        IoFinish::Read {
            offset,
            count,
            size,
            caching: Caching::Direct,
            in_place: false,
            direct: Some(Box::new(DirectRead { plain, skip })),
        },
    )
}

pub fn read(ctx: &mut CompoundCtx<'_>, a: ReadArgs, out: &mut Vec<u8>) -> OpResult {
    let offset = a.offset;
    // Never more than maxread, nor more than the session's reply size still allows.
    let room = ctx.reply_room.saturating_sub(64).min(MAX_IO as usize) as u32;
    let count = a.count.min(room);
    let cur = ctx.cur()?;
    let sid = resolved(a.stateid)?;
    let attrs = ctx.export.backend.getattr(&cur.obj)?;
    require_regular(attrs.ftype)?;
    check_stateid_io(ctx, &sid, &cur, &attrs, IoKind::Read)?;
    let head = ReadResOk::encode_head(out);
    if let Some(fd) = ctx.export.backend.io_file(&cur.obj, false) {
        let fd = fd?;
        // Real files: what the page cache holds is copied at once; anything else is
        // read on the worker's ring while the core serves other requests.
        let mut caching = ctx.export.caching();
        let nowait = if caching == Caching::Direct {
            Caching::Buffered
        } else {
            caching
        };
        match ringnfs_fs::sync_io::read_nowait(&fd, offset, count, attrs.size, nowait, out) {
            Some(Ok(n)) => {
                // A non-blocking read may stop short of `count` before end of file.
                let eof = read_eof(offset, n, count, attrs.size);
                ReadResOk::finish_head(out, head, eof, n);
                return Ok(());
            }
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
        // (Beyond the kernel's signed offsets a read is left to fail buffered: EINVAL
        // from a direct one would read as a refusal of direct I/O.)
        let in_range = offset.saturating_add(u64::from(count) + (1 << 20)) < i64::MAX as u64;
        if caching == Caching::Direct && in_range {
            match direct_file(ctx.export, &cur.obj) {
                Some(df) => {
                    ctx.pending_io = Some(direct_read(fd, &df, offset, count, attrs.size));
                    return Ok(());
                }
                None => caching = Caching::Buffered,
            }
        }
        let op = FileOp::Read {
            offset,
            len: count,
            caching,
            into: Vec::new(),
        };
        ctx.pending_io = Some(PendingIo::new(
            fd,
            op,
            IoFinish::Read {
                offset,
                count,
                size: attrs.size,
                caching,
                in_place: false,
                direct: None,
            },
        ));
        return Ok(());
    }
    let start = out.len();
    let eof = ctx.export.backend.read(&cur.obj, offset, count, out)?;
    let n = out.len() - start;
    ctx.export.stats.read(n as u64);
    ReadResOk::finish_head(out, head, eof, n);
    Ok(())
}

pub fn write(ctx: &mut CompoundCtx<'_>, a: WriteArgs<'_>, out: &mut Vec<u8>) -> OpResult {
    let (offset, data) = (a.offset, a.data);
    let stable = match a.stable {
        stable_how4::UNSTABLE => Stability::Unstable,
        stable_how4::DATA_SYNC => Stability::DataSync,
        stable_how4::FILE_SYNC => Stability::FileSync,
        _ => return Err(status::NFS4ERR_INVAL),
    };
    // opaque data<> has no XDR bound: more than our maxwrite is refused as bad XDR.
    if data.len() > MAX_IO as usize {
        return Err(status::NFS4ERR_BADXDR);
    }
    let cur = ctx.cur()?;
    ctx.writable()?;
    let sid = resolved(a.stateid)?;
    let attrs = ctx.export.backend.getattr(&cur.obj)?;
    require_regular(attrs.ftype)?;
    check_stateid_io(ctx, &sid, &cur, &attrs, IoKind::Write)?;
    ctx.yield_delegations(&cur.obj, true)?;
    if let Some(fd) = ctx.export.backend.io_file(&cur.obj, true) {
        // The kernel takes signed offsets: nothing can be written beyond i64::MAX.
        if super::past_max_offset(offset, data.len() as u64) {
            return Err(status::NFS4ERR_FBIG);
        }
        let fd = fd?;
        // The data stays where it was received when the record has a buffer of its own.
        let data = ctx.source.keep(data);
        let mut direct = None;
        let part = match ctx.export.caching() {
            Caching::Direct => match direct_file(ctx.export, &cur.obj) {
                Some(df) => {
                    let mut next = direct_parts(offset, data, &df);
                    let first = next.pop_front().expect("a write has a part");
                    direct = Some(Box::new(DirectWrite {
                        plain: fd.clone(),
                        direct: df.fd,
                        next,
                    }));
                    first
                }
                None => WritePart {
                    offset,
                    data,
                    caching: Caching::Buffered,
                },
            },
            caching => WritePart {
                offset,
                data,
                caching,
            },
        };
        let fd = direct.as_ref().map_or(fd, |d| d.fd(part.caching));
        let op = part.op();
        ctx.pending_io = Some(PendingIo::new(
            fd,
            op,
            IoFinish::Write {
                stable,
                synced: false,
                written: 0,
                part: Some(part),
                direct,
            },
        ));
        return Ok(());
    }
    // A backend that keeps data (memory) keeps a slice of a record of its own as is.
    let (n, done) = match ctx.source.share(data) {
        Some(shared) => ctx
            .export
            .backend
            .write_shared(&cur.obj, offset, &shared, stable)?,
        None => ctx.export.backend.write(&cur.obj, offset, data, stable)?,
    };
    ctx.export.stats.written(u64::from(n));
    WriteResOk {
        count: n,
        committed: done as u32,
        verifier: ctx.state.write_verifier,
    }
    .encode(out);
    Ok(())
}

pub fn commit(ctx: &mut CompoundCtx<'_>, a: CommitArgs, out: &mut Vec<u8>) -> OpResult {
    if a.offset.checked_add(a.count as u64).is_none() {
        return Err(status::NFS4ERR_INVAL);
    }
    let cur = ctx.cur()?;
    let attrs = ctx.export.backend.getattr(&cur.obj)?;
    require_regular(attrs.ftype)?;
    if let Some(fd) = ctx.export.backend.io_file(&cur.obj, false) {
        let op = FileOp::Fsync { datasync: false };
        ctx.pending_io = Some(PendingIo::new(fd?, op, IoFinish::Commit));
        return Ok(());
    }
    ctx.export.backend.commit(&cur.obj)?;
    CommitResOk {
        verifier: ctx.state.write_verifier,
    }
    .encode(out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::ExportOptions;
    use ringnfs_proto::xdr::pad4;
    use ringnfs_service::Bytes;
    use ringnfs_state::{StateConfig, StateManager};

    /// Finish a READ of `count` bytes at `offset` in a file of `size` whose file
    /// operation returned `got` bytes; the (eof, length) words it wrote.
    fn finish_read(offset: u64, count: u32, size: u64, got: usize) -> (u32, u32) {
        let state = StateManager::new(StateConfig::default());
        let mut out = vec![0u8; 12]; // status, eof, length
        let done = FileIoDone {
            result: got as i32,
            buf: vec![7; got],
        };
        let f = IoFinish::Read {
            offset,
            count,
            size,
            caching: Caching::Buffered,
            in_place: false,
            direct: None,
        };
        let export = Export::memory(Default::default());
        match finish(&state, &export, f, done, 0, &mut out) {
            IoOutcome::Status(st) => assert_eq!(st, status::NFS4_OK),
            IoOutcome::Again { .. } => panic!("a READ needs one file operation"),
        }
        assert_eq!(out.len(), 12 + pad4(got));
        let word = |at: usize| u32::from_be_bytes(out[at..at + 4].try_into().unwrap());
        (word(4), word(8))
    }

    /// A file operation refused in dontcache mode (EOPNOTSUPP) is done again buffered,
    /// and the export stays buffered from then on.
    #[test]
    fn a_refused_caching_mode_falls_back_to_buffered() {
        let state = StateManager::new(StateConfig::default());
        let export = Export::memory(ExportOptions {
            io_mode: Caching::DontCache,
            ..Default::default()
        });
        assert_eq!(export.caching(), Caching::DontCache);
        let refused = |f| {
            let done = FileIoDone {
                result: -EOPNOTSUPP,
                buf: Vec::new(),
            };
            finish(&state, &export, f, done, 0, &mut vec![0u8; 4])
        };
        let read = IoFinish::Read {
            offset: 8,
            count: 16,
            size: 100,
            caching: Caching::DontCache,
            in_place: false,
            direct: None,
        };
        match refused(read) {
            IoOutcome::Again {
                fd: None,
                op:
                    FileOp::Read {
                        offset,
                        len,
                        caching,
                        ..
                    },
                finish: IoFinish::Read { .. },
            } => {
                assert_eq!((offset, len, caching), (8, 16, Caching::Buffered));
            }
            _ => panic!("a refused dontcache READ is read again buffered"),
        }
        assert_eq!(export.caching(), Caching::Buffered);
        let write = IoFinish::Write {
            stable: Stability::FileSync,
            synced: false,
            written: 0,
            part: Some(WritePart {
                offset: 4096,
                data: Bytes::from_static(b"data"),
                caching: Caching::DontCache,
            }),
            direct: None,
        };
        match refused(write) {
            IoOutcome::Again {
                fd: None,
                op:
                    FileOp::Write {
                        offset,
                        data,
                        caching,
                    },
                finish: IoFinish::Write { part: Some(p), .. },
            } => {
                assert_eq!(
                    (offset, &data[..], caching),
                    (4096, &b"data"[..], Caching::Buffered)
                );
                assert_eq!(p.caching, Caching::Buffered, "not retried twice");
            }
            _ => panic!("a refused dontcache WRITE is written again buffered"),
        }
        // A buffered operation's EOPNOTSUPP is its answer.
        let buffered = IoFinish::Read {
            offset: 0,
            count: 1,
            size: 1,
            caching: Caching::Buffered,
            in_place: false,
            direct: None,
        };
        assert!(matches!(
            refused(buffered),
            IoOutcome::Status(st) if st == status::NFS4ERR_NOTSUPP
        ));
    }

    /// Linux's EOPNOTSUPP (the engine links no libc).
    const EOPNOTSUPP: i32 = 95;

    #[test]
    fn a_short_read_in_the_middle_of_a_file_is_not_eof() {
        // The ring returned 4 KiB of a 64 KiB request at offset 0 of a 1 MiB file.
        assert_eq!(finish_read(0, 65536, 1 << 20, 4096), (0, 4096));
        // Short because the file ends there: eof.
        assert_eq!(finish_read(1_044_480, 65536, 1 << 20, 4096), (1, 4096));
        // Exactly to the end, and past it with nothing read.
        assert_eq!(finish_read(0, 4096, 4096, 4096), (1, 4096));
        assert_eq!(finish_read(8192, 4096, 4096, 0), (1, 0));
        // Nothing read although the file was longer (truncated meanwhile): eof, so a
        // client does not loop on empty replies.
        assert_eq!(finish_read(0, 4096, 8192, 0), (1, 0));
        // A full read that does not reach the end.
        assert_eq!(finish_read(0, 4096, 8192, 4096), (0, 4096));
    }

    fn direct_file(offset_align: u32, mem_align: u32) -> DirectFile {
        DirectFile {
            fd: std::sync::Arc::new(std::fs::File::open("/dev/null").unwrap()),
            offset_align,
            mem_align,
        }
    }

    /// (offset, length, caching) of each part, and whether every direct part's memory
    /// is aligned.
    fn split(offset: u64, len: usize, df: &DirectFile) -> (Vec<(u64, usize, Caching)>, bool) {
        let data: Bytes = (0..len).map(|i| i as u8).collect::<Vec<u8>>().into();
        // A record's data sits at any 4-byte offset: start it unaligned on purpose.
        let record = Bytes::from([&[0u8; 4][..], &data].concat());
        let parts = direct_parts(offset, record.slice(4..), df);
        let joined: Vec<u8> = parts.iter().flat_map(|p| p.data.to_vec()).collect();
        assert_eq!(joined, data, "the parts hold the data, in order");
        let aligned = parts
            .iter()
            .filter(|p| p.caching == Caching::Direct)
            .all(|p| (p.data.as_ptr() as usize).is_multiple_of(df.mem_align as usize));
        let shape = parts
            .iter()
            .map(|p| (p.offset, p.data.len(), p.caching))
            .collect();
        (shape, aligned)
    }

    #[test]
    fn a_direct_write_is_split_at_the_files_alignment() {
        use Caching::{Buffered as B, Direct as D};
        let df = direct_file(512, 512);
        // Unaligned both ends: buffered head, direct middle, buffered tail.
        let (parts, aligned) = split(100, 10_000, &df);
        assert_eq!(parts, [(100, 412, B), (512, 9216, D), (9728, 372, B)]);
        assert!(aligned, "the middle is in aligned memory");
        // Aligned both ends: one direct part.
        assert_eq!(split(4096, 1 << 20, &df).0, [(4096, 1 << 20, D)]);
        // Aligned start, short tail; unaligned start, aligned end.
        assert_eq!(split(0, 1000, &df).0, [(0, 512, D), (512, 488, B)]);
        assert_eq!(split(12, 1012, &df).0, [(12, 500, B), (512, 512, D)]);
        // No whole aligned block: one buffered part.
        assert_eq!(split(1, 600, &df).0, [(1, 600, B)]);
        assert_eq!(split(0, 511, &df).0, [(0, 511, B)]);
        assert_eq!(split(7, 0, &df).0, [(7, 0, B)]);
        // Memory aligned already (4-byte alignment, as some devices need): no copy.
        let df4 = direct_file(512, 4);
        let record = Bytes::from(vec![5u8; 4096 + 8]);
        let data = record.slice(8..);
        let parts = direct_parts(0, data.clone(), &df4);
        assert_eq!(
            parts[0].data.as_ptr(),
            data.as_ptr(),
            "written from the record"
        );
    }

    /// A direct write runs its parts in order on the right descriptors, adds up what
    /// they wrote, then syncs; a refusal (EINVAL) redoes the part and the rest buffered.
    #[test]
    fn a_direct_write_runs_its_parts_then_syncs() {
        let state = StateManager::new(StateConfig::default());
        let export = Export::memory(ExportOptions {
            io_mode: Caching::Direct,
            ..Default::default()
        });
        let df = direct_file(512, 512);
        let plain: IoFd = std::sync::Arc::new(std::fs::File::open("/dev/null").unwrap());
        let start = |data_len: usize| {
            let mut next = direct_parts(100, Bytes::from(vec![1u8; data_len]), &df);
            let first = next.pop_front().unwrap();
            IoFinish::Write {
                stable: Stability::FileSync,
                synced: false,
                written: 0,
                part: Some(first),
                direct: Some(Box::new(DirectWrite {
                    plain: plain.clone(),
                    direct: df.fd.clone(),
                    next,
                })),
            }
        };
        let len_of = |f: &IoFinish| match f {
            IoFinish::Write { part: Some(p), .. } => p.data.len() as i32,
            _ => 0,
        };
        let same = |a: &IoFd, b: &IoFd| std::sync::Arc::ptr_eq(a, b);
        // Head, middle, tail, fsync, result.
        let mut f = start(10_000);
        let mut seen = Vec::new();
        let mut out = vec![0u8; 4];
        loop {
            let done = FileIoDone {
                result: len_of(&f),
                buf: Vec::new(),
            };
            match finish(&state, &export, f, done, 0, &mut out) {
                IoOutcome::Again { fd, op, finish } => {
                    let kind = match op {
                        FileOp::Write { caching, .. } => format!("write {caching:?}"),
                        FileOp::Fsync { .. } => "fsync".to_string(),
                        _ => "other".to_string(),
                    };
                    let on = fd.map(|fd| if same(&fd, &df.fd) { "direct" } else { "plain" });
                    seen.push((kind, on));
                    f = finish;
                }
                IoOutcome::Status(st) => {
                    assert_eq!(st, status::NFS4_OK);
                    break;
                }
            }
        }
        let seen: Vec<(&str, Option<&str>)> = seen.iter().map(|(k, o)| (k.as_str(), *o)).collect();
        assert_eq!(
            seen,
            [
                ("write Direct", Some("direct")),
                ("write Buffered", Some("plain")),
                ("fsync", None),
            ]
        );
        assert_eq!(&out[4..8], &10_000u32.to_be_bytes(), "count: all parts");

        // The middle refused (EINVAL): it and the tail are written buffered on the plain
        // descriptor, and the export goes buffered.
        let f = start(10_000);
        let done = FileIoDone {
            result: 412,
            buf: Vec::new(),
        };
        let IoOutcome::Again { finish: f, .. } = finish(&state, &export, f, done, 0, &mut out)
        else {
            panic!("the middle follows the head");
        };
        let done = FileIoDone {
            result: -22,
            buf: Vec::new(),
        };
        match finish(&state, &export, f, done, 0, &mut out) {
            IoOutcome::Again {
                fd: Some(fd),
                op: FileOp::Write { caching, .. },
                finish: IoFinish::Write {
                    written, direct, ..
                },
            } => {
                assert!(same(&fd, &plain));
                assert_eq!((caching, written), (Caching::Buffered, 412));
                let rest = &direct.unwrap().next;
                assert!(rest.iter().all(|p| p.caching == Caching::Buffered));
            }
            _ => panic!("a refused direct write is redone buffered"),
        }
        assert_eq!(export.caching(), Caching::Buffered);

        // A part cut short ends the WRITE there (the client sends the rest).
        let state = StateManager::new(StateConfig::default());
        let f = start(10_000);
        let done = FileIoDone {
            result: 400,
            buf: Vec::new(),
        };
        let IoOutcome::Again {
            op: FileOp::Fsync { .. },
            finish: f,
            ..
        } = finish(&state, &export, f, done, 0, &mut out)
        else {
            panic!("a short part goes to the sync");
        };
        let mut out = vec![0u8; 4];
        let done = FileIoDone {
            result: 0,
            buf: Vec::new(),
        };
        assert!(matches!(
            finish(&state, &export, f, done, 0, &mut out),
            IoOutcome::Status(_)
        ));
        assert_eq!(&out[4..8], &400u32.to_be_bytes());
    }

    /// A direct read's data is taken from its aligned buffer past the padding and the
    /// bytes before the asked-for offset.
    #[test]
    fn a_direct_read_copies_the_asked_range_from_its_aligned_buffer() {
        let df = direct_file(512, 512);
        let plain: IoFd = std::sync::Arc::new(std::fs::File::open("/dev/null").unwrap());
        // 1000 bytes at 700 in a 1500-byte file: the aligned range is 512..2048.
        let mut p = direct_read(plain, &df, 700, 1000, 1500);
        let Some(ringnfs_service::FileIo {
            op: FileOp::Read {
                offset, len, into, ..
            },
            ..
        }) = p.take()
        else {
            panic!("a read");
        };
        assert_eq!((offset, len), (512, 1536));
        let at = into.len();
        assert!((into.as_ptr() as usize + at).is_multiple_of(512), "aligned");
        // The file holds bytes i % 251; the kernel read 988 bytes (to the end at 1500).
        let mut buf = into;
        buf.extend((512..1500u32).map(|i| (i % 251) as u8));
        let state = StateManager::new(StateConfig::default());
        let export = Export::memory(Default::default());
        let mut out = vec![0u8; 12];
        let done = FileIoDone { result: 988, buf };
        assert!(matches!(
            finish(&state, &export, p.finish, done, 0, &mut out),
            IoOutcome::Status(_)
        ));
        let want: Vec<u8> = (700..1500u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(&out[12..12 + 800], &want[..]);
        assert_eq!(&out[4..12], &[0, 0, 0, 1, 0, 0, 3, 32], "eof, 800 bytes");
    }
}
