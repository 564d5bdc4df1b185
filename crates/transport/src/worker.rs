//! One worker: a thread that owns a [`Driver`] (its io_uring), a provided-buffer ring,
//! its listening sockets, its connections and the file operations of their requests,
//! and runs the completion loop. This file is the glue: each completion goes to the
//! part its token names (`accept`, `recv`, `send`, `fileio`, `timer`, `wake`); the
//! connections touched in a batch are planned at its end (`conn::decide`), and the
//! operations decided are submitted.
//!
//! Memory an operation refers to stays alive until its final completion (each part
//! says how), and the worker exits only when the driver has nothing outstanding, so
//! file operations in flight finish (and their requests with them) before it exits.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use socket2::{SockRef, Socket};

use ringnfs_service::{ConnControl, ConnMeta, Service};

use super::TransportConfig;
use super::accept::Listeners;
use super::bufring::BufRing;
use super::conn::{Closing, Conn, Decision, Lent, RecvSide, RecvStep, SendSide, SendStep};
use super::conns::ConnTable;
use super::driver::{Completion, Driver};
use super::fileio::{FileIoSink, FileOps};
use super::limits::{ConnLimiter, Refusal};
use super::mailbox::{Inbox, Msg};
use super::records::{self, FLUSH_GRACE};
use super::recv::{self, BGID, DirectReceived, Received};
use super::send::{self, Sent};
use super::stats::WorkerCounters;
use super::timer::Timer;
use super::token::{Kind, Token};
use super::wake::WakeRead;

/// Housekeeping period (deadlines, accept retries).
const TICK: Duration = Duration::from_millis(250);
/// How long shutdown waits for connections to flush.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// Shutdown requested: no accepting, connections flushing until the deadline.
    Draining,
    /// Everything closed; waiting for the last completions (file operations included).
    Exiting,
}

pub(crate) struct WorkerInit {
    pub core: usize,
    pub cfg: Arc<TransportConfig>,
    pub service: Arc<dyn Service>,
    pub control: Arc<dyn ConnControl>,
    pub listeners: Vec<Socket>,
    pub inbox: Inbox,
    pub counters: Arc<WorkerCounters>,
    pub limiter: Arc<ConnLimiter>,
}

pub(crate) struct Worker {
    core: usize,
    cfg: Arc<TransportConfig>,
    service: Arc<dyn Service>,
    control: Arc<dyn ConnControl>,
    counters: Arc<WorkerCounters>,
    limiter: Arc<ConnLimiter>,
    driver: Driver,
    bufs: BufRing,
    listeners: Listeners,
    conns: ConnTable,
    file_ops: FileOps,
    timer: Timer,
    wake: WakeRead,
    rx: Receiver<Msg>,
    phase: Phase,
    completions: Vec<Completion>,
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
        let (driver, mode) = Driver::new(cfg.ring_entries, cfg.sqpoll_idle_ms)?;
        tracing::debug!(core = init.core, ?mode, "io_uring created");
        let mut bufs = BufRing::new(cfg.recv_buf_count, cfg.recv_buf_size)?;
        bufs.register(&driver.submitter(), BGID)?;
        let mut w = Worker {
            core: init.core,
            cfg,
            service: init.service,
            control: init.control,
            counters: init.counters,
            limiter: init.limiter,
            driver,
            bufs,
            listeners: Listeners::new(init.listeners),
            conns: ConnTable::new(init.inbox.live),
            file_ops: FileOps::default(),
            timer: Timer::new(TICK),
            wake: WakeRead::new(init.inbox.waker),
            rx: init.inbox.rx,
            phase: Phase::Running,
            completions: Vec::with_capacity(256),
        };
        w.listeners.submit_all(&mut w.driver);
        w.wake.submit(&mut w.driver);
        w.timer.submit(&mut w.driver);
        w.driver.submit()?;
        Ok(w)
    }

    fn run(&mut self) -> io::Result<()> {
        loop {
            if self.phase == Phase::Exiting && self.driver.outstanding() == 0 {
                break;
            }
            if let Err(e) = self.driver.submit_and_wait() {
                self.abandon();
                return Err(e);
            }
            let mut batch = std::mem::take(&mut self.completions);
            self.driver.reap(&mut batch);
            for &c in &batch {
                self.dispatch(c);
            }
            batch.clear();
            self.completions = batch;
            self.drain_mailbox();
            self.plan_dirty();
            self.bufs.publish();
            self.check_phase();
        }
        tracing::debug!(core = self.core, "worker exited");
        Ok(())
    }

    fn dispatch(&mut self, c: Completion) {
        let Some(t) = Token::decode(c.user_data) else {
            tracing::warn!(ud = c.user_data, "completion with unknown user_data");
            return;
        };
        match t.kind {
            Kind::Accept => self.on_accept(t.key as usize, c),
            Kind::Recv => self.on_recv(t, c),
            Kind::Send => self.on_send(t, c.res),
            Kind::FileIo => self.on_file_io(t.key as usize, c.res),
            Kind::Wake => {
                self.wake.complete(c.res);
                if self.phase != Phase::Exiting {
                    self.wake.submit(&mut self.driver);
                }
            }
            Kind::Timer => {
                if self.phase != Phase::Exiting {
                    self.on_tick();
                    self.timer.submit(&mut self.driver);
                }
            }
            Kind::Cancel => {}
        }
    }

    // ---- completions ------------------------------------------------------------------

    fn on_accept(&mut self, idx: usize, c: Completion) {
        let accepting = self.phase == Phase::Running;
        let fd = self
            .listeners
            .complete(idx, c, accepting, &mut self.driver, &self.counters);
        if let Some(fd) = fd
            && accepting
        {
            self.new_conn(fd);
        }
    }

    fn new_conn(&mut self, fd: OwnedFd) {
        let sock = SockRef::from(&fd);
        if let Err(e) = sock.set_tcp_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
        let peer = sock.peer_addr().ok().and_then(|a| a.as_socket());
        let local = sock.local_addr().ok().and_then(|a| a.as_socket());
        let (Some(peer), Some(local)) = (peer, local) else {
            tracing::debug!("accepted socket already gone");
            return;
        };
        if let Err(why) = self.limiter.admit(peer.ip()) {
            let counter = match why {
                Refusal::Total => &self.counters.conns_refused_total,
                Refusal::PerPeer => &self.counters.conns_refused_per_peer,
            };
            WorkerCounters::add(counter, 1);
            tracing::debug!(%peer, ?why, "connection refused: limit reached");
            return; // dropping `fd` closes the socket
        }
        let (core, control, max_record) = (self.core, &self.control, self.cfg.max_record);
        let key = self.conns.insert(core, |id, generation| {
            let meta = ConnMeta {
                id,
                core,
                peer,
                local,
                control: control.clone(),
                shared: Default::default(),
            };
            Conn::new(meta, fd, generation, max_record)
        });
        let Some(key) = key else {
            tracing::warn!("too many connections on one core");
            self.limiter.release(peer.ip());
            return;
        };
        WorkerCounters::add(&self.counters.accepted, 1);
        let service = &self.service;
        let meta = &self.conns.at(key).meta;
        if self.cfg.tls.is_some() {
            meta.shared.offer_tls();
        }
        tracing::trace!(conn = meta.id, %peer, "accepted");
        if catch_unwind(AssertUnwindSafe(|| service.on_accept(meta))).is_err() {
            tracing::error!(conn = meta.id, "Service::on_accept panicked");
            WorkerCounters::add(&self.counters.service_panics, 1);
        }
        self.conns.mark_dirty(key);
    }

    fn on_recv(&mut self, t: Token, comp: Completion) {
        let key = t.key as usize;
        if let Some(c) = self.conns.get(key, t.generation)
            && c.direct.is_some()
        {
            self.on_direct_recv(key, comp.res);
            return;
        }
        let (last, what) = recv::completion(comp);
        let max_out = self.cfg.max_out_bytes;
        let Worker {
            conns,
            bufs,
            service,
            counters,
            driver,
            file_ops,
            cfg,
            ..
        } = self;
        let Some(c) = conns.get(key, t.generation) else {
            // Cannot happen (state outlives its operations), but never leak a buffer.
            tracing::warn!(?t, "receive completion for a stale connection");
            if let Received::Data { bid, .. } = what
                && bufs.take(bid, 0).is_ok()
            {
                let _ = bufs.recycle(bid);
            }
            return;
        };
        if last {
            c.recv = RecvSide::Idle;
        }
        match what {
            Received::Data { bid, len } => {
                WorkerCounters::add(&counters.bytes_in, len as u64);
                match bufs.take(bid, len) {
                    Ok(data) => {
                        if c.closing().is_none() {
                            let mut io = FileIoSink {
                                ops: file_ops,
                                driver,
                                counters,
                            };
                            if c.tls.is_some() {
                                records::feed_tls(
                                    &**service, c, key, data, max_out, counters, &mut io,
                                );
                            } else {
                                let tls = cfg.tls.as_deref();
                                records::feed(
                                    &**service, c, key, data, max_out, counters, &mut io, tls,
                                );
                            }
                        }
                        let _ = bufs.recycle(bid);
                    }
                    Err(e) => {
                        tracing::error!(conn = c.meta.id, "bad receive buffer: {e}");
                        c.close(Closing::Abort, Instant::now());
                    }
                }
            }
            Received::NoBuffer => {
                tracing::error!(conn = c.meta.id, "receive completion without a buffer");
                c.close(Closing::Abort, Instant::now());
            }
            Received::Eof => {
                tracing::trace!(conn = c.meta.id, "EOF");
                c.close(Closing::Flush, Instant::now() + FLUSH_GRACE);
            }
            Received::RanDry => WorkerCounters::add(&counters.enobufs, 1),
            Received::Cancelled => {}
            Received::Failed(e) => {
                tracing::debug!(
                    conn = c.meta.id,
                    "receive failed: {}",
                    io::Error::from_raw_os_error(-e)
                );
                c.close(Closing::Abort, Instant::now());
            }
        }
        conns.mark_dirty(key);
    }

    /// The direct receive into a large record's buffer completed: the buffer goes back
    /// to the assembler with what arrived (and a record that completes to the service).
    fn on_direct_recv(&mut self, key: usize, res: i32) {
        let max_out = self.cfg.max_out_bytes;
        let Worker {
            conns,
            service,
            counters,
            driver,
            file_ops,
            ..
        } = self;
        let c = conns.at(key);
        let Some(Lent { mut buf, .. }) = c.direct.take() else {
            return;
        };
        c.recv = RecvSide::Idle;
        let what = recv::direct_completion(res);
        if let DirectReceived::Data(n) = what {
            WorkerCounters::add(&counters.bytes_in, n as u64);
            let n = n.min(buf.capacity() - buf.len());
            // SAFETY: the kernel wrote `n` bytes into the spare capacity right after the
            // length (at most what `submit_direct` asked for, which fits in it).
            unsafe { buf.set_len(buf.len() + n) };
        }
        if c.closing().is_none() {
            let mut io = FileIoSink {
                ops: file_ops,
                driver,
                counters,
            };
            records::direct_received(&**service, c, key, buf, max_out, counters, &mut io);
        } else {
            // Closing: what arrived is not read any more, as with a multishot receive.
            let _ = c.asm.return_direct(buf, |_| true);
        }
        match what {
            DirectReceived::Data(_) | DirectReceived::Cancelled => {}
            DirectReceived::Eof => {
                tracing::trace!(conn = c.meta.id, "EOF");
                c.close(Closing::Flush, Instant::now() + FLUSH_GRACE);
            }
            DirectReceived::Failed(e) => {
                tracing::debug!(
                    conn = c.meta.id,
                    "receive failed: {}",
                    io::Error::from_raw_os_error(-e)
                );
                c.close(Closing::Abort, Instant::now());
            }
        }
        conns.mark_dirty(key);
    }

    fn on_send(&mut self, t: Token, res: i32) {
        let Some(c) = self.conns.get(t.key as usize, t.generation) else {
            tracing::warn!(?t, "send completion for a stale connection");
            return;
        };
        c.send = SendSide::Idle;
        match send::completion(res) {
            Sent::Bytes(n) => {
                WorkerCounters::add(&self.counters.bytes_out, n as u64);
                c.wire_mut().sent(n);
            }
            failed => {
                if let Sent::Failed(e) = failed {
                    tracing::debug!(
                        conn = c.meta.id,
                        "send failed: {}",
                        io::Error::from_raw_os_error(-e)
                    );
                }
                c.wire_mut().send_failed();
                c.close(Closing::Abort, Instant::now());
            }
        }
        self.conns.mark_dirty(t.key as usize);
    }

    /// A file operation finished: resume its request on its connection, or (closed
    /// meanwhile) to its end with nowhere to send the reply.
    fn on_file_io(&mut self, key: usize, res: i32) {
        let Some(f) = self.file_ops.complete(key, res) else {
            tracing::warn!(key, "file I/O completion for no operation");
            return;
        };
        let mut io = FileIoSink {
            ops: &mut self.file_ops,
            driver: &mut self.driver,
            counters: &self.counters,
        };
        let Some(c) = self.conns.owner(f.owner) else {
            records::resume_orphan(f.then, f.done, f.owner, &self.counters, &mut io);
            return;
        };
        let r = records::resume(f.then, f.done, c, f.owner.key, &self.counters, &mut io);
        if let Err(e) = r {
            tracing::warn!(
                conn = f.owner.id,
                "closing after a failed file I/O reply: {e}"
            );
            c.close(Closing::Abort, Instant::now());
        }
        self.conns.mark_dirty(f.owner.key);
    }

    fn drain_mailbox(&mut self) {
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Send { conn, record } => {
                    let Some(key) = self.conns.key_of(conn) else {
                        tracing::debug!(conn, "send_record to a closed connection");
                        continue;
                    };
                    let c = self.conns.at(key);
                    if c.closing() == Some(Closing::Abort) {
                        continue;
                    }
                    if let Err(e) = c.out.push_record(&record) {
                        tracing::warn!(conn, "send_record refused: {e}");
                    }
                    self.conns.mark_dirty(key);
                }
                Msg::Drain { conn } => {
                    if let Some(key) = self.conns.key_of(conn) {
                        let c = self.conns.at(key);
                        c.deferred.clear();
                        c.close(Closing::Flush, Instant::now() + FLUSH_GRACE);
                        self.conns.mark_dirty(key);
                    }
                }
                Msg::Shutdown => self.begin_shutdown(),
            }
        }
    }

    // ---- housekeeping and shutdown ----------------------------------------------------

    fn on_tick(&mut self) {
        let now = Instant::now();
        if self.phase == Phase::Running {
            self.listeners.retry(&mut self.driver);
        }
        let expired = self.conns.select(|c| c.flush_overdue(now));
        for key in self
            .conns
            .select(|c| c.tls.as_ref().is_some_and(|t| t.overdue(now)))
        {
            let c = self.conns.at(key);
            tracing::info!(conn = c.meta.id, peer = %c.meta.peer, "closing: TLS handshake not finished in time");
            WorkerCounters::add(&self.counters.tls_handshake_timeouts, 1);
            c.close(Closing::Abort, now);
            self.conns.mark_dirty(key);
        }
        if self.phase == Phase::Running {
            let (idle, session_idle) = (self.cfg.idle_timeout, self.cfg.session_idle_timeout);
            for key in self
                .conns
                .select(|c| c.idle_too_long(now, idle, session_idle))
            {
                let c = self.conns.at(key);
                tracing::debug!(conn = c.meta.id, peer = %c.meta.peer, "closing idle unbound connection");
                WorkerCounters::add(&self.counters.idle_closes, 1);
                c.deferred.clear();
                c.close(Closing::Flush, now + FLUSH_GRACE);
                self.conns.mark_dirty(key);
            }
        }
        for key in expired {
            let c = self.conns.at(key);
            tracing::debug!(conn = c.meta.id, "flush deadline passed");
            WorkerCounters::add(&self.counters.flush_timeouts, 1);
            c.close(Closing::Abort, now);
            self.conns.mark_dirty(key);
        }
    }

    fn begin_shutdown(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        tracing::debug!(core = self.core, conns = self.conns.len(), "shutting down");
        self.phase = Phase::Draining;
        self.listeners.stop(&mut self.driver);
        for key in self.conns.keys() {
            let c = self.conns.at(key);
            c.deferred.clear();
            c.close(Closing::Flush, deadline);
            self.conns.mark_dirty(key);
        }
    }

    fn check_phase(&mut self) {
        if self.phase == Phase::Draining && self.conns.is_empty() && self.listeners.all_closed() {
            self.phase = Phase::Exiting;
            self.timer.cancel(&mut self.driver);
            self.wake.cancel(&mut self.driver);
            if self.file_ops.in_flight() > 0 {
                tracing::debug!(
                    core = self.core,
                    file_ops = self.file_ops.in_flight(),
                    "waiting for file operations before exiting"
                );
            }
        }
    }

    // ---- planning ---------------------------------------------------------------------

    /// Plan every connection touched in this batch.
    fn plan_dirty(&mut self) {
        let list = self.conns.take_dirty();
        for &(key, generation) in &list {
            if let Some(c) = self.conns.get(key, generation) {
                c.dirty = false;
                self.advance(key);
            }
        }
        self.conns.reuse(list);
    }

    /// Replay deferred records if the backlog allows, decide, and carry the decision
    /// out on the ring.
    fn advance(&mut self, key: usize) {
        let max_out = self.cfg.max_out_bytes;
        let Worker {
            conns,
            service,
            counters,
            driver,
            file_ops,
            cfg,
            ..
        } = self;
        let c = conns.at(key);
        let mut io = FileIoSink {
            ops: file_ops,
            driver,
            counters,
        };
        let tls = cfg.tls.as_deref();
        records::replay_deferred(&**service, c, key, max_out, counters, &mut io, tls);
        if let Err(e) = c.seal_tls() {
            tracing::info!(conn = c.meta.id, "closing: TLS: {e}");
            WorkerCounters::add(&counters.tls_errors, 1);
            c.close(Closing::Abort, Instant::now());
        }
        let (d, paused_now) = c.plan(max_out);
        WorkerCounters::peak(&counters.peak_out_bytes, c.backlog() as u64);
        if paused_now {
            WorkerCounters::add(&counters.backpressure_pauses, 1);
        }
        submit(driver, key, c, &d, counters);
        if d.finish {
            self.finish(key);
        }
    }

    /// Call `on_close`, close the fd and free the state of a connection with no
    /// operation in flight.
    fn finish(&mut self, key: usize) {
        let c = self.conns.remove(key);
        self.limiter.release(c.meta.peer.ip());
        let service = &self.service;
        if catch_unwind(AssertUnwindSafe(|| service.on_close(&c.meta))).is_err() {
            tracing::error!(conn = c.meta.id, "Service::on_close panicked");
            WorkerCounters::add(&self.counters.service_panics, 1);
        }
        WorkerCounters::add(&self.counters.closed, 1);
        tracing::trace!(conn = c.meta.id, "closed");
    }

    /// The loop failed: report every connection closed, and leak memory the kernel may
    /// still use.
    fn abandon(&mut self) {
        let conns = self.conns.take_all();
        for (_, c) in conns.iter() {
            self.limiter.release(c.meta.peer.ip());
            let service = &self.service;
            let _ = catch_unwind(AssertUnwindSafe(|| service.on_close(&c.meta)));
            WorkerCounters::add(&self.counters.closed, 1);
        }
        if self.driver.outstanding() > 0 {
            std::mem::forget(conns);
            self.file_ops.leak();
            self.wake.leak();
            self.timer.leak();
        }
    }
}

impl Drop for Worker {
    /// Unregister the buffer ring before the ring and the buffer memory go away, if no
    /// operation can still pick a buffer; otherwise the buffer ring leaks its memory.
    fn drop(&mut self) {
        if self.driver.outstanding() == 0
            && let Err(e) = self.bufs.unregister(&self.driver.submitter())
        {
            tracing::debug!("unregistering the buffer ring: {e}");
        }
    }
}

/// Submit the ring operations `d` decided for connection `key` (already applied to its
/// sides by `Conn::apply`).
fn submit(driver: &mut Driver, key: usize, c: &mut Conn, d: &Decision, counters: &WorkerCounters) {
    let generation = c.generation;
    match d.recv {
        Some(RecvStep::ArmDirect) if c.direct.is_some() => {
            WorkerCounters::add(&counters.recv_direct, 1);
            if let Some(lent) = c.direct.as_mut() {
                // SAFETY: the buffer stays in `c.direct` until this receive's
                // completion (`on_recv` takes it back then), and a connection is only
                // freed with its receive side idle; `want` is within its spare capacity
                // (`RecordAssembler::take_direct` reserved it).
                unsafe {
                    recv::submit_direct(
                        driver,
                        c.fd.as_fd(),
                        &mut lent.buf,
                        lent.want,
                        generation,
                        key,
                    )
                };
            }
        }
        Some(RecvStep::Arm | RecvStep::ArmDirect) if c.single > 0 => {
            c.single -= 1;
            recv::submit_single(driver, c.fd.as_fd(), generation, key);
        }
        Some(RecvStep::Arm | RecvStep::ArmDirect) => {
            WorkerCounters::add(&counters.recv_rearms, 1);
            recv::submit(driver, c.fd.as_fd(), generation, key);
        }
        Some(RecvStep::Cancel) => recv::cancel(driver, generation, key),
        None => {}
    }
    match d.send {
        Some(SendStep::Start) => {
            WorkerCounters::add(&counters.sends, 1);
            // SAFETY: the send side is `Armed` until this send's completion, and while it
            // is, nothing touches the output's in-flight buffer that `remaining` points
            // into (`OutQueue::start`); an aborted connection keeps it until then too
            // (`OutQueue::abort`), and a connection is only freed with its send side idle.
            unsafe { send::submit(driver, c.fd.as_fd(), c.wire().remaining(), generation, key) };
        }
        Some(SendStep::Cancel) => send::cancel(driver, generation, key),
        None => {}
    }
}
