//! File operations (READ/WRITE/FSYNC) that suspended requests wait for, run on the ring
//! of the core that owns the request's connection.
//!
//! The service returns [`Outcome::Suspend`](ringnfs_service::Outcome) with the operation
//! and a continuation; [`FileOps::submit`] puts both in a slot of this worker's table,
//! whose key is the operation's `user_data`, together with everything the kernel uses
//! (the buffer, a reference keeping the descriptor open). On completion
//! [`FileOps::complete`] empties the slot and hands back the continuation, the result
//! and the connection the request came on; the worker resumes it there (or, if that
//! connection closed meanwhile, with a scratch output: the request must still finish).
//!
//! Lifecycle: `submit` → one completion. File operations are never cancelled: the
//! worker waits for them before exiting, so every request finishes.

use std::os::fd::AsRawFd;

use io_uring::{opcode, types};
use slab::Slab;

use ringnfs_service::{Bytes, ConnId, Continuation, FileIoDone, FileOp, IoFd, Suspend};

use super::driver::Driver;
use super::stats::WorkerCounters;
use super::token::{Kind, Token};

/// The connection a file operation's request came on: its slot in the worker's table
/// and its id (the slot may hold another connection by the time the operation ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner {
    pub key: usize,
    pub id: ConnId,
}

/// An operation in flight.
struct InFlight {
    owner: Owner,
    then: Box<dyn Continuation>,
    /// Keeps the descriptor open until the completion.
    _fd: IoFd,
    /// What the kernel writes into (READ), after its first `read_at` bytes.
    buf: Vec<u8>,
    read_at: Option<usize>,
    /// What the kernel reads from (WRITE): usually a slice of the request's record.
    data: Bytes,
}

/// A [`FileOp`] without its data (which moved into the slot): offset, length, and the
/// `RWF_*` flags of its caching.
enum Op {
    Read(u64, u32, i32),
    Write(u64, i32),
    Fsync(bool),
    Fallocate(i32, u64, u64),
}

/// The worker's file operations in flight.
#[derive(Default)]
pub(crate) struct FileOps {
    slots: Slab<InFlight>,
}

/// A finished file operation, ready to resume its request.
pub(crate) struct Finished {
    pub owner: Owner,
    pub then: Box<dyn Continuation>,
    pub done: FileIoDone,
}

impl FileOps {
    /// Start `s`'s file operation for a request of connection `owner`.
    pub fn submit(&mut self, driver: &mut Driver, owner: Owner, s: Suspend) {
        let Suspend { io, then } = s;
        let fd = types::Fd(io.fd.as_fd().as_raw_fd());
        let (buf, data, kind) = match io.op {
            FileOp::Read {
                offset,
                len,
                caching,
                mut into,
            } => {
                into.reserve(len as usize);
                (
                    into,
                    Bytes::new(),
                    Op::Read(offset, len, caching.rw_flags()),
                )
            }
            FileOp::Write {
                offset,
                data,
                caching,
            } => (Vec::new(), data, Op::Write(offset, caching.rw_flags())),
            FileOp::Fsync { datasync } => (Vec::new(), Bytes::new(), Op::Fsync(datasync)),
            FileOp::Fallocate { mode, offset, len } => {
                (Vec::new(), Bytes::new(), Op::Fallocate(mode, offset, len))
            }
            // A signal's eventfd: its 8-byte counter, read at the descriptor's own
            // position (offset -1; an eventfd has none to seek). The ring polls it until
            // another thread writes it, so waiting costs the worker nothing.
            FileOp::Wait => (
                Vec::with_capacity(8),
                Bytes::new(),
                Op::Read(u64::MAX, 8, 0),
            ),
        };
        let read_at = matches!(kind, Op::Read(..)).then_some(buf.len());
        let key = self.slots.insert(InFlight {
            owner,
            then,
            _fd: io.fd,
            buf,
            read_at,
            data,
        });
        // The buffers now sit in the slot and are not touched until the completion;
        // their heap addresses (stable when the slab grows: a `Bytes` keeps its storage
        // where it is) are what the kernel uses.
        let slot = &mut self.slots[key];
        let e = match kind {
            Op::Read(offset, len, flags) => {
                let at = slot.buf.spare_capacity_mut().as_mut_ptr().cast();
                opcode::Read::new(fd, at, len)
                    .offset(offset)
                    .rw_flags(flags)
                    .build()
            }
            Op::Write(offset, flags) => {
                let len = u32::try_from(slot.data.len()).unwrap_or(u32::MAX);
                opcode::Write::new(fd, slot.data.as_ptr(), len)
                    .offset(offset)
                    .rw_flags(flags)
                    .build()
            }
            Op::Fsync(datasync) => {
                let flags = if datasync {
                    types::FsyncFlags::DATASYNC
                } else {
                    types::FsyncFlags::empty()
                };
                opcode::Fsync::new(fd).flags(flags).build()
            }
            Op::Fallocate(mode, offset, len) => opcode::Fallocate::new(fd, len)
                .offset(offset)
                .mode(mode)
                .build(),
        };
        // SAFETY: the buffer (`len` bytes of spare capacity after its length for a
        // READ, reserved above), the data (a WRITE) and the
        // descriptor's owner stay in slot `key` until `complete` takes them after the
        // completion (or are leaked with `leak`).
        unsafe { driver.push(e.user_data(Token::new(Kind::FileIo, 0, key).encode())) };
    }

    /// The operation in slot `key` completed with `res`: empty the slot.
    pub fn complete(&mut self, key: usize, res: i32) -> Option<Finished> {
        let mut op = self.slots.try_remove(key)?;
        if let Some(at) = op.read_at
            && res > 0
            && op.buf.capacity() - at >= res as usize
        {
            // SAFETY: the kernel wrote `res` bytes into the READ's spare capacity right
            // after its first `at` bytes (the length it had), within its capacity.
            unsafe { op.buf.set_len(at + res as usize) };
        }
        Some(Finished {
            owner: op.owner,
            then: op.then,
            done: FileIoDone {
                result: res,
                buf: op.buf,
            },
        })
    }

    pub fn in_flight(&self) -> usize {
        self.slots.len()
    }

    /// The worker gives up with operations maybe in flight: never free their buffers.
    pub fn leak(&mut self) {
        std::mem::forget(std::mem::take(&mut self.slots));
    }
}

/// Where a service call's file operation goes: the worker's table and ring. Handed to
/// the code that calls the service, so a suspended request starts its operation at
/// once, on this core.
pub(crate) struct FileIoSink<'a> {
    pub ops: &'a mut FileOps,
    pub driver: &'a mut Driver,
    pub counters: &'a WorkerCounters,
}

impl FileIoSink<'_> {
    pub fn start(&mut self, owner: Owner, s: Suspend) {
        WorkerCounters::add(&self.counters.file_ops, 1);
        self.ops.submit(self.driver, owner, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringnfs_service::{Caching, FileIo, Outcome};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI32, Ordering};

    struct Record(Arc<AtomicI32>);

    impl Continuation for Record {
        fn resume(self: Box<Self>, done: FileIoDone, out: &mut Vec<u8>) -> Outcome {
            self.0.store(done.result, Ordering::SeqCst);
            out.extend_from_slice(&done.buf);
            Outcome::Done
        }
    }

    #[test]
    fn a_read_completes_with_its_data_and_continuation() {
        let dir = std::env::temp_dir().join(format!("ringnfs-fileio-{}", std::process::id()));
        std::fs::write(&dir, b"0123456789").unwrap();
        let file: IoFd = Arc::new(std::fs::File::open(&dir).unwrap());
        let (mut d, _) = Driver::new(8, None).unwrap();
        let mut ops = FileOps::default();
        let seen = Arc::new(AtomicI32::new(-1));
        let owner = Owner { key: 4, id: 77 };
        let io = FileIo {
            fd: file,
            op: FileOp::Read {
                offset: 3,
                len: 4,
                caching: Caching::Buffered,
                into: b"xy".to_vec(),
            },
        };
        let then = Box::new(Record(seen.clone()));
        ops.submit(&mut d, owner, Suspend { io, then });
        assert_eq!(ops.in_flight(), 1);
        let mut got = Vec::new();
        while got.is_empty() {
            d.submit_and_wait().unwrap();
            d.reap(&mut got);
        }
        let t = Token::decode(got[0].user_data).unwrap();
        assert_eq!(t.kind, Kind::FileIo);
        let f = ops.complete(t.key as usize, got[0].res).unwrap();
        assert_eq!(ops.in_flight(), 0);
        assert_eq!(f.owner, owner);
        assert_eq!(f.done.buf, b"xy3456", "appended to `into`");
        let mut out = Vec::new();
        assert!(matches!(f.then.resume(f.done, &mut out), Outcome::Done));
        assert_eq!((seen.load(Ordering::SeqCst), &out[..]), (4, &b"xy3456"[..]));
        assert!(ops.complete(t.key as usize, 0).is_none(), "slot emptied");
        let _ = std::fs::remove_file(&dir);
    }

    /// A wait for work done by another thread completes through the ring once that
    /// thread signals, with what it signalled.
    #[test]
    fn a_wait_completes_when_another_thread_signals() {
        let (mut d, _) = Driver::new(8, None).unwrap();
        let mut ops = FileOps::default();
        let seen = Arc::new(AtomicI32::new(-1));
        let (signal, io) = ringnfs_service::Signal::new().unwrap();
        let then = Box::new(Record(seen.clone()));
        ops.submit(&mut d, Owner { key: 1, id: 2 }, Suspend { io, then });
        let signaller = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            signal.succeed();
        });
        let mut got = Vec::new();
        while got.is_empty() {
            d.submit_and_wait().unwrap();
            d.reap(&mut got);
        }
        signaller.join().unwrap();
        let t = Token::decode(got[0].user_data).unwrap();
        let f = ops.complete(t.key as usize, got[0].res).unwrap();
        assert!(
            ringnfs_service::Signal::succeeded(&f.done),
            "{}",
            f.done.result
        );
    }
}
