//! Data ops: READ, WRITE, COMMIT. READ appends file data straight into the reply.

use crate::consts::{NfsStatus, status};
use crate::ctx::{CompoundCtx, IoFinish, IoOutcome, OpResult, PendingIo, resolved};
use ringnfs_fs::{FileType, FsError, Stability};
use ringnfs_proto::nfs4::ops::{
    CommitArgs, CommitResOk, ReadArgs, ReadResOk, WriteArgs, WriteResOk, Xdr, stable_how4,
};
use ringnfs_service::{Caching, FileIoDone, FileOp};
use ringnfs_state::StateManager;
use ringnfs_state::files::IoKind;

use super::attr::check_stateid_io;
use crate::export::Export;

/// maxread / maxwrite (the fattr4 values say the same).
pub const MAX_IO: u32 = 1024 * 1024;

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
        && FsError::from_errno(-done.result) == FsError::NotSupp
        && let Some(again) = buffered_again(export, f.refused_caching())
    {
        return again(f);
    }
    if done.result < 0 {
        return IoOutcome::Status(io_status(done.result));
    }
    let n = done.result as u32;
    match f {
        IoFinish::Read {
            offset,
            count,
            size,
            in_place,
            ..
        } => {
            // The head of READ4resok follows the status.
            let head = st_at + 4;
            let len = if in_place {
                (n as usize).min(out.len().saturating_sub(head + ReadResOk::HEAD_LEN))
            } else {
                let data = &done.buf[..(n as usize).min(done.buf.len())];
                out.extend_from_slice(data);
                data.len()
            };
            let eof = read_eof(offset, len, count, size);
            ReadResOk::finish_head(out, head, eof, len);
            IoOutcome::Status(status::NFS4_OK)
        }
        IoFinish::Write {
            stable,
            synced: false,
            ..
        } if stable != Stability::Unstable => IoOutcome::Again(
            FileOp::Fsync {
                datasync: stable == Stability::DataSync,
            },
            IoFinish::Write {
                stable,
                synced: true,
                written: n,
                retry: None,
            },
        ),
        IoFinish::Write {
            stable,
            synced,
            written,
            ..
        } => {
            WriteResOk {
                count: if synced { written } else { n },
                committed: stable as u32,
                verifier: state.write_verifier,
            }
            .encode(out);
            IoOutcome::Status(status::NFS4_OK)
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

/// A file operation in a caching mode other than buffered was refused (EOPNOTSUPP):
/// the same operation buffered, from now on for the whole export.
fn buffered_again(
    export: &Export,
    refused: Option<Caching>,
) -> Option<impl FnOnce(IoFinish) -> IoOutcome> {
    let c = refused?;
    export.caching_refused(c);
    Some(|f: IoFinish| match f {
        IoFinish::Read {
            offset,
            count,
            size,
            ..
        } => IoOutcome::Again(
            FileOp::Read {
                offset,
                len: count,
                caching: Caching::Buffered,
                into: Vec::new(),
            },
            IoFinish::Read {
                offset,
                count,
                size,
                caching: Caching::Buffered,
                in_place: false,
            },
        ),
        IoFinish::Write {
            stable,
            retry: Some((offset, data)),
            ..
        } => IoOutcome::Again(
            FileOp::Write {
                offset,
                data,
                caching: Caching::Buffered,
            },
            IoFinish::Write {
                stable,
                synced: false,
                written: 0,
                retry: None,
            },
        ),
        _ => IoOutcome::Status(status::NFS4ERR_NOTSUPP),
    })
}

/// READ's eof (RFC 8881 §18.22.4): the data reaches the end of the file (`size`, read
/// before the data), or there was none to read. A read cut short in the middle of a file
/// (the ring, the page cache, a signal) is not the end: the client reads on from there.
fn read_eof(offset: u64, len: usize, count: u32, size: u64) -> bool {
    (len == 0 && count > 0) || offset.saturating_add(len as u64) >= size
}

fn require_regular(t: FileType) -> OpResult {
    match t {
        FileType::Regular => Ok(()),
        FileType::Directory => Err(status::NFS4ERR_ISDIR),
        FileType::Symlink => Err(status::NFS4ERR_SYMLINK),
        _ => Err(status::NFS4ERR_INVAL),
    }
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
        let caching = ctx.export.caching();
        match ringnfs_fs::sync_io::read_nowait(&fd, offset, count, attrs.size, caching, out) {
            Some(Ok(n)) => {
                // A non-blocking read may stop short of `count` before end of file.
                let eof = read_eof(offset, n, count, attrs.size);
                ReadResOk::finish_head(out, head, eof, n);
                return Ok(());
            }
            Some(Err(e)) => return Err(e.into()),
            None => {}
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
            },
        ));
        return Ok(());
    }
    let start = out.len();
    let eof = ctx.export.backend.read(&cur.obj, offset, count, out)?;
    let n = out.len() - start;
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
    if let Some(fd) = ctx.export.backend.io_file(&cur.obj, true) {
        // The kernel takes signed offsets: nothing can be written beyond i64::MAX.
        if offset
            .checked_add(data.len() as u64)
            .is_none_or(|end| end > i64::MAX as u64)
        {
            return Err(status::NFS4ERR_FBIG);
        }
        // The data stays where it was received when the record has a buffer of its own.
        let data = ctx.source.keep(data);
        let caching = ctx.export.caching();
        let retry = (caching != Caching::Buffered).then(|| (offset, data.clone()));
        let op = FileOp::Write {
            offset,
            data,
            caching,
        };
        ctx.pending_io = Some(PendingIo::new(
            fd?,
            op,
            IoFinish::Write {
                stable,
                synced: false,
                written: 0,
                retry,
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
        };
        let export = Export::memory(Default::default());
        match finish(&state, &export, f, done, 0, &mut out) {
            IoOutcome::Status(st) => assert_eq!(st, status::NFS4_OK),
            IoOutcome::Again(..) => panic!("a READ needs one file operation"),
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
        };
        match refused(read) {
            IoOutcome::Again(
                FileOp::Read {
                    offset,
                    len,
                    caching,
                    ..
                },
                IoFinish::Read { .. },
            ) => {
                assert_eq!((offset, len, caching), (8, 16, Caching::Buffered));
            }
            _ => panic!("a refused dontcache READ is read again buffered"),
        }
        assert_eq!(export.caching(), Caching::Buffered);
        let write = IoFinish::Write {
            stable: Stability::FileSync,
            synced: false,
            written: 0,
            retry: Some((4096, Bytes::from_static(b"data"))),
        };
        match refused(write) {
            IoOutcome::Again(
                FileOp::Write {
                    offset,
                    data,
                    caching,
                },
                IoFinish::Write { retry, .. },
            ) => {
                assert_eq!(
                    (offset, &data[..], caching),
                    (4096, &b"data"[..], Caching::Buffered)
                );
                assert!(retry.is_none(), "not retried twice");
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
}
