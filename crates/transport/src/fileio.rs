//! File operations (READ/WRITE/FSYNC) the service asks a worker to run on its own ring.
//!
//! `submit_file_io` is called by the service while the worker is inside a callback, so
//! requests are queued in a per-thread list and turned into submissions after the
//! callback returns. Each in-flight operation owns its buffer and a reference to its
//! file descriptor in the worker's `file_ops` slab until its completion arrives.

use std::cell::RefCell;
use std::os::fd::AsRawFd;

use io_uring::{opcode, types};

use ringnfs_service::{FileIoDone, FileIoRequest, FileOp, IoFd, conn_core};

use super::stats::WorkerCounters;
use super::token::{Kind, Token};
use super::worker::Worker;

thread_local! {
    /// Some(core) on a worker thread: the requests queued during the current batch.
    static QUEUE: RefCell<Option<(usize, Vec<FileIoRequest>)>> = const { RefCell::new(None) };
}

/// Mark the current thread as worker `core` (done once at worker start).
pub(crate) fn init_thread(core: usize) {
    QUEUE.with(|q| *q.borrow_mut() = Some((core, Vec::new())));
}

/// Queue `req` if this thread is the worker that owns its connection.
pub(crate) fn queue(req: FileIoRequest) -> Result<(), FileIoRequest> {
    QUEUE.with(|q| match &mut *q.borrow_mut() {
        Some((core, list)) if *core == conn_core(req.conn) => {
            list.push(req);
            Ok(())
        }
        _ => Err(req),
    })
}

fn take_queued() -> Vec<FileIoRequest> {
    QUEUE.with(|q| match &mut *q.borrow_mut() {
        Some((_, list)) => std::mem::take(list),
        None => Vec::new(),
    })
}

enum Plan {
    Read(u64, u32),
    Write(u64),
    Fsync(bool),
}

/// An operation in flight: what the kernel reads from or writes into.
pub(crate) struct FileOpState {
    conn: u64,
    token: u64,
    /// Keeps the descriptor open until the completion.
    _fd: IoFd,
    buf: Vec<u8>,
}

impl Worker {
    /// Submit the file operations queued during this batch.
    pub(crate) fn submit_file_ops(&mut self) {
        for req in take_queued() {
            let fd = types::Fd(req.fd.as_fd().as_raw_fd());
            let (buf, plan) = match req.op {
                FileOp::Read { offset, len } => {
                    (Vec::with_capacity(len as usize), Plan::Read(offset, len))
                }
                FileOp::Write { offset, data } => (data, Plan::Write(offset)),
                FileOp::Fsync { datasync } => (Vec::new(), Plan::Fsync(datasync)),
            };
            let key = self.file_ops.insert(FileOpState {
                conn: req.conn,
                token: req.token,
                _fd: req.fd,
                buf,
            });
            // The buffer now sits in the slab and is not touched until the completion;
            // its heap address (stable when the slab grows) is what the kernel uses.
            let b = &mut self.file_ops[key].buf;
            let e = match plan {
                Plan::Read(offset, len) => opcode::Read::new(fd, b.as_mut_ptr(), len)
                    .offset(offset)
                    .build(),
                Plan::Write(offset) => opcode::Write::new(fd, b.as_ptr(), b.len() as u32)
                    .offset(offset)
                    .build(),
                Plan::Fsync(datasync) => {
                    let flags = if datasync {
                        types::FsyncFlags::DATASYNC
                    } else {
                        types::FsyncFlags::empty()
                    };
                    opcode::Fsync::new(fd).flags(flags).build()
                }
            };
            WorkerCounters::add(&self.counters.file_ops, 1);
            self.push(e.user_data(Token::new(Kind::FileIo, 0, key).encode()));
        }
    }

    pub(crate) fn on_file_io(&mut self, t: Token, res: i32) {
        let key = t.key as usize;
        let Some(mut op) = self.file_ops.try_remove(key) else {
            tracing::warn!(?t, "file I/O completion for no operation");
            return;
        };
        if res > 0 && op.buf.capacity() >= res as usize && op.buf.is_empty() {
            // SAFETY: the kernel wrote `res` bytes into this buffer (a READ; writes
            // hand their buffer back full), within its capacity.
            unsafe { op.buf.set_len(res as usize) };
        }
        let done = FileIoDone {
            token: op.token,
            result: res,
            buf: op.buf,
        };
        let Some(&ckey) = self.ids.get(&op.conn) else {
            self.service.on_file_io_orphaned(done);
            return;
        };
        let c = &mut self.conns[ckey];
        let (out, start) = c.out.begin_reply();
        let service = &self.service;
        let meta = &c.meta;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            service.on_file_io(meta, done, out)
        }));
        let reply = c.out.end_reply(start);
        if r.is_err() || reply.is_err() {
            WorkerCounters::add(&self.counters.service_panics, r.is_err() as u64);
            tracing::warn!(conn = op.conn, "closing after a failed file I/O reply");
            c.close(super::conn::Closing::Abort, std::time::Instant::now());
        }
        self.mark_dirty(ckey);
    }
}
