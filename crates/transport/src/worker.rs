//! One worker: a thread that owns an io_uring, a provided-buffer ring, its listening
//! sockets and its connections, and runs the completion loop.
//!
//! Every submitted operation produces exactly one final completion (multishot ones
//! end with a completion without `F_MORE`); `outstanding` counts submitted
//! operations whose final completion has not arrived. Memory an operation refers to
//! (receive buffers, an in-flight send buffer, the timer's timespec, the eventfd read
//! buffer) is kept alive until that completion, and the worker exits only when
//! `outstanding` is zero.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use io_uring::{IoUring, cqueue, opcode, squeue, types};
use slab::Slab;
use socket2::Socket;

use ringnfs_service::{ConnControl, ConnId, Service};

use super::TransportConfig;
use super::bufring::BufRing;
use super::conn::Conn;
use super::mailbox::{Inbox, LiveSet, Msg, Waker};
use super::ring;
use super::stats::WorkerCounters;
use super::token::{Kind, Token};

/// Housekeeping period (deadlines, accept retries).
const TICK: Duration = Duration::from_millis(250);
/// How long a draining (or EOF'd, or malformed) connection may take to flush.
pub(crate) const FLUSH_GRACE: Duration = Duration::from_secs(10);
/// How long shutdown waits for connections to flush.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Buffer group id of the worker's provided-buffer ring.
pub(crate) const BGID: u16 = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    /// Shutdown requested: no accepting, connections flushing until the deadline.
    Draining(Instant),
    /// Everything closed; waiting for the last completions.
    Exiting,
}

pub(crate) struct Listener {
    /// `None` once closed.
    pub sock: Option<Socket>,
    pub armed: bool,
    pub cancelled: bool,
    /// Re-arm at the next tick (the last accept failed).
    pub retry: bool,
}

pub(crate) struct WorkerInit {
    pub core: usize,
    pub cfg: Arc<TransportConfig>,
    pub service: Arc<dyn Service>,
    pub control: Arc<dyn ConnControl>,
    pub listeners: Vec<Socket>,
    pub inbox: Inbox,
    pub counters: Arc<WorkerCounters>,
    pub limiter: Arc<super::limits::ConnLimiter>,
}

pub(crate) struct Worker {
    pub core: usize,
    pub cfg: Arc<TransportConfig>,
    pub service: Arc<dyn Service>,
    pub control: Arc<dyn ConnControl>,
    pub counters: Arc<WorkerCounters>,
    pub limiter: Arc<super::limits::ConnLimiter>,
    pub ring: IoUring,
    pub bufs: BufRing,
    pub listeners: Vec<Listener>,
    pub conns: Slab<Conn>,
    pub ids: HashMap<ConnId, usize>,
    pub next_seq: u64,
    pub phase: Phase,
    pub outstanding: usize,
    /// Entries that did not fit in the submission queue, in order.
    pub overflow: VecDeque<squeue::Entry>,
    /// Connections to re-plan at the end of the batch: (key, generation).
    pub dirty: Vec<(usize, u32)>,
    /// Open connection ids, shared with senders.
    pub live: LiveSet,
    pub rx: Receiver<Msg>,
    pub waker: Arc<Waker>,
    /// Target of the eventfd read; boxed so its address is stable.
    wake_buf: Box<u64>,
    /// Timer period; boxed so its address is stable.
    tick: Box<types::Timespec>,
    cqes: Vec<(u64, i32, u32)>,
    /// File operations in flight for the service.
    pub file_ops: Slab<super::fileio::FileOpState>,
}

/// Run a worker thread: set up, report readiness on `ready`, loop until shutdown.
pub(crate) fn run(
    init: WorkerInit,
    ready: crossbeam_channel::Sender<io::Result<()>>,
) -> io::Result<()> {
    let core = init.core;
    if init.cfg.pin_cores {
        match core_affinity::get_core_ids() {
            Some(ids) if !ids.is_empty() => {
                let id = ids[core % ids.len()];
                if !core_affinity::set_for_current(id) {
                    tracing::debug!(core, "could not pin worker");
                }
            }
            _ => tracing::debug!(core, "no core ids to pin to"),
        }
    }
    let mut w = match Worker::new(init) {
        Ok(w) => {
            let _ = ready.send(Ok(()));
            w
        }
        Err(e) => {
            tracing::error!(core, "worker setup failed: {e}");
            let _ = ready.send(Err(io::Error::new(e.kind(), e.to_string())));
            return Err(e);
        }
    };
    drop(ready);
    w.run()
        .inspect_err(|e| tracing::error!(core, "worker failed: {e}"))
}

impl Worker {
    fn new(init: WorkerInit) -> io::Result<Worker> {
        let cfg = init.cfg;
        let (ring, mode) = ring::build_with(cfg.ring_entries, cfg.sqpoll_idle_ms)?;
        tracing::debug!(core = init.core, ?mode, "io_uring created");
        let mut bufs = BufRing::new(cfg.recv_buf_count, cfg.recv_buf_size)?;
        bufs.register(&ring.submitter(), BGID)?;
        let listeners = init
            .listeners
            .into_iter()
            .map(|s| Listener {
                sock: Some(s),
                armed: false,
                cancelled: false,
                retry: false,
            })
            .collect();
        let mut w = Worker {
            core: init.core,
            cfg,
            service: init.service,
            control: init.control,
            counters: init.counters,
            limiter: init.limiter,
            ring,
            bufs,
            listeners,
            conns: Slab::new(),
            ids: HashMap::new(),
            next_seq: 0,
            phase: Phase::Running,
            outstanding: 0,
            overflow: VecDeque::new(),
            dirty: Vec::new(),
            live: init.inbox.live,
            rx: init.inbox.rx,
            waker: init.inbox.waker,
            wake_buf: Box::new(0),
            tick: Box::new(types::Timespec::new().nsec(TICK.as_nanos() as u32)),
            cqes: Vec::with_capacity(256),
            file_ops: Slab::new(),
        };
        super::fileio::init_thread(w.core);
        for i in 0..w.listeners.len() {
            w.arm_accept(i);
        }
        w.arm_wake();
        w.arm_timer();
        w.ring.submit()?;
        Ok(w)
    }

    /// Queue a submission; it counts as outstanding until its final completion.
    pub(crate) fn push(&mut self, e: squeue::Entry) {
        self.outstanding += 1;
        if self.overflow.is_empty() {
            // SAFETY: every entry built by this worker refers only to memory that stays
            // valid until the entry's final completion (see the module docs).
            if unsafe { self.ring.submission().push(&e) }.is_ok() {
                return;
            }
            if let Err(err) = self.ring.submit() {
                tracing::debug!("submit on full queue: {err}");
            }
            // SAFETY: as above.
            if unsafe { self.ring.submission().push(&e) }.is_ok() {
                return;
            }
        }
        self.overflow.push_back(e);
    }

    fn flush_overflow(&mut self) {
        while let Some(e) = self.overflow.front() {
            // SAFETY: as in `push`.
            if unsafe { self.ring.submission().push(e) }.is_err() {
                break;
            }
            self.overflow.pop_front();
        }
    }

    pub(crate) fn cancel(&mut self, target: Token) {
        let e = opcode::AsyncCancel::new(target.encode())
            .build()
            .user_data(Token::new(Kind::Cancel, 0, 0).encode());
        self.push(e);
    }

    fn arm_wake(&mut self) {
        let buf: *mut u64 = &mut *self.wake_buf;
        let e = opcode::Read::new(types::Fd(self.waker.raw_fd()), buf.cast(), 8)
            .build()
            .user_data(Token::new(Kind::Wake, 0, 0).encode());
        self.push(e);
    }

    fn arm_timer(&mut self) {
        let ts: *const types::Timespec = &*self.tick;
        let e = opcode::Timeout::new(ts)
            .build()
            .user_data(Token::new(Kind::Timer, 0, 0).encode());
        self.push(e);
    }

    fn run(&mut self) -> io::Result<()> {
        loop {
            self.flush_overflow();
            if self.phase == Phase::Exiting && self.outstanding == 0 {
                break;
            }
            if let Err(e) = self.ring.submit_and_wait(1) {
                match e.raw_os_error() {
                    Some(libc::EINTR) | Some(libc::EBUSY) | Some(libc::EAGAIN) => {}
                    _ => {
                        self.abandon();
                        return Err(e);
                    }
                }
            }
            self.cqes.clear();
            self.cqes.extend(
                self.ring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            for i in 0..self.cqes.len() {
                let (ud, res, flags) = self.cqes[i];
                self.dispatch(ud, res, flags);
            }
            self.drain_mailbox();
            self.submit_file_ops();
            self.flush_dirty();
            self.bufs.publish();
            self.check_phase();
        }
        tracing::debug!(core = self.core, "worker exited");
        Ok(())
    }

    fn dispatch(&mut self, ud: u64, res: i32, flags: u32) {
        if !cqueue::more(flags) {
            self.outstanding = self.outstanding.saturating_sub(1);
        }
        let Some(t) = Token::decode(ud) else {
            tracing::warn!(ud, "completion with unknown user_data");
            return;
        };
        match t.kind {
            Kind::Accept => self.on_accept(t.key as usize, res, flags),
            Kind::Recv => self.on_recv(t, res, flags),
            Kind::Send => self.on_send(t, res),
            Kind::Wake => {
                if res < 0 && res != -libc::ECANCELED {
                    tracing::debug!("eventfd read failed: {res}");
                }
                if self.phase != Phase::Exiting {
                    self.arm_wake();
                }
            }
            Kind::Timer => {
                if self.phase != Phase::Exiting {
                    self.on_tick();
                    self.arm_timer();
                }
            }
            Kind::Cancel => {}
            Kind::FileIo => self.on_file_io(t, res),
        }
    }

    /// The connection at `key` if it is the one `t` was submitted for.
    pub(crate) fn conn_for(&mut self, t: Token) -> Option<&mut Conn> {
        self.conns
            .get_mut(t.key as usize)
            .filter(|c| c.generation == t.generation)
    }

    pub(crate) fn mark_dirty(&mut self, key: usize) {
        if let Some(c) = self.conns.get_mut(key)
            && !c.dirty
        {
            c.dirty = true;
            self.dirty.push((key, c.generation));
        }
    }

    /// The loop failed: report every connection closed, and leak memory the kernel may
    /// still use.
    pub(crate) fn abandon(&mut self) {
        let conns = std::mem::take(&mut self.conns);
        self.live.lock().clear();
        for (_, c) in conns.iter() {
            self.limiter.release(c.meta.peer.ip());
            let service = &self.service;
            let _ = catch_unwind(AssertUnwindSafe(|| service.on_close(&c.meta)));
            WorkerCounters::add(&self.counters.closed, 1);
        }
        if self.outstanding > 0 {
            std::mem::forget(conns);
            std::mem::forget(std::mem::take(&mut self.file_ops));
            std::mem::forget(std::mem::replace(&mut self.wake_buf, Box::new(0)));
            std::mem::forget(std::mem::replace(
                &mut self.tick,
                Box::new(types::Timespec::new()),
            ));
        }
    }
}

impl Drop for Worker {
    /// Unregister the buffer ring before the ring and the buffer memory go away, if no
    /// operation can still pick a buffer; otherwise the buffer ring leaks its memory.
    fn drop(&mut self) {
        if self.outstanding == 0
            && let Err(e) = self.bufs.unregister(&self.ring.submitter())
        {
            tracing::debug!("unregistering the buffer ring: {e}");
        }
    }
}
