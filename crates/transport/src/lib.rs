//! The io_uring transport: thread-per-core workers, each with its own ring, a
//! `SO_REUSEPORT` listener per listen address, multishot accept, multishot receive
//! into a provided-buffer ring, RPC record reassembly and batched sends. Records go to
//! a [`Service`]; other threads reach connections through [`ConnControl`].
//!
//! Layout: `ring` (ring setup) under `driver` (owns the ring: submissions, completions,
//! what is in flight); one file per ring operation kind over the driver, each with its
//! submit / complete / cancel: `accept`, `recv`, `send`, `fileio` (file operations of
//! suspended requests, with their continuations), `timer`, `wake` (the mailbox
//! eventfd); `token` (`user_data` encoding); `bufring` (provided buffers); `output`
//! (per-connection send queue); `conn` (one connection's state and the pure decision
//! of what to do next); `conns` (the worker's connection table); `records` (bytes to
//! records to the service, and back); `mailbox` (cross-core messages); `listener`,
//! `limits`, `stats`; `worker` (the completion loop gluing these together).
//!
//! Built on the `io-uring` crate directly: tokio-uring (io-uring 0.6, no multishot, no
//! provided-buffer rings) and monoio/glommio lack multishot receive into buffer rings.
//!
//! Guarantees: `on_accept` then `on_close` exactly once per connection, on the owning
//! core, never overlapping; replies leave in request order, several per send; a
//! connection whose output backlog exceeds `max_out_bytes` is not read until the
//! backlog is at most half of it (records already received wait, in order); no
//! per-connection state is freed while one of its ring operations is in flight.
//!
//! Limits: accepted sockets are plain fds (no direct descriptors); sends use plain
//! SEND (no SEND_ZC); `send_record` bypasses the output bound; a `send_record` racing
//! with the connection's close returns true but is dropped.

mod accept;
mod bufring;
mod conn;
mod conns;
mod driver;
mod fileio;
mod limits;
mod listener;
mod mailbox;
mod output;
mod records;
mod recpool;
mod recv;
mod ring;
mod send;
mod stats;
mod timer;
mod tls;
mod token;
mod wake;
mod worker;

#[cfg(test)]
mod tests;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use ringnfs_service::{ConnControl, Service};

pub use stats::TransportStats;
pub use tls::{ALPN_SUNRPC, HANDSHAKE_TIMEOUT, TlsAcceptor, TlsError, TlsFiles};

use mailbox::{Control, Mailbox};
use stats::WorkerCounters;

/// Transport settings.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Worker threads (one ring each).
    pub threads: usize,
    /// Addresses to listen on; each gets one port shared by all workers.
    pub listen: Vec<SocketAddr>,
    /// Largest accepted RPC record; larger ones close the connection.
    pub max_record: usize,
    /// Pin worker `i` to core `i`.
    pub pin_cores: bool,
    /// Submission queue entries per ring.
    pub ring_entries: u32,
    /// Provided receive buffers per worker (rounded up to a power of two).
    pub recv_buf_count: u16,
    /// Size of each provided receive buffer.
    pub recv_buf_size: u32,
    /// Per-connection output bound: above it the connection stops being read until
    /// its backlog drains below half.
    pub max_out_bytes: usize,
    /// Open connections allowed in total (0 = unlimited); over it a new connection is
    /// closed right after accept (counted in `conns_refused_total`).
    pub max_connections: usize,
    /// Open connections allowed per peer IP address (0 = unlimited); counted in
    /// `conns_refused_per_peer`.
    pub max_connections_per_peer: usize,
    /// Close a connection that is bound to no session and has not completed a record
    /// for this long (idle, or dribbling bytes slowloris-style). None = never.
    pub idle_timeout: Option<std::time::Duration>,
    /// The same for a connection that had a session (a SEQUENCE or CREATE_SESSION
    /// succeeded on it) and is bound to none now. None = never.
    pub session_idle_timeout: Option<std::time::Duration>,
    /// SQPOLL: a kernel thread per ring polls the submission queue, sleeping after
    /// this many idle milliseconds (None, the default: no SQPOLL, the ring uses
    /// `SINGLE_ISSUER | DEFER_TASKRUN`).
    pub sqpoll_idle_ms: Option<u32>,
    /// RPC-with-TLS (RFC 9289): with an acceptor, an AUTH_TLS probe starts TLS on its
    /// connection; without one the probe is told there is none.
    pub tls: Option<Arc<TlsAcceptor>>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 2049))],
            max_record: (1 << 20) + (64 << 10),
            pin_cores: true,
            ring_entries: 1024,
            recv_buf_count: 256,
            recv_buf_size: 64 << 10,
            max_out_bytes: 8 << 20,
            max_connections: 0,
            max_connections_per_peer: 0,
            idle_timeout: None,
            session_idle_timeout: None,
            sqpoll_idle_ms: None,
            tls: None,
        }
    }
}

/// The transport knobs a user may set (`ringnfs serve --ring-entries` etc.), with
/// their valid ranges; everything else of [`TransportConfig`] comes from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportTuning {
    /// Submission queue entries per ring ([`RING_ENTRIES_RANGE`]; the completion queue
    /// gets four times as many).
    pub ring_entries: u32,
    /// Provided receive buffers per worker ([`RECV_BUFFERS_RANGE`], rounded up to a
    /// power of two).
    pub recv_buf_count: u16,
    /// Bytes per provided receive buffer (a multiple of 1 KiB in [`RECV_BUFFER_KIB_RANGE`]).
    pub recv_buf_size: u32,
    /// SQPOLL idle milliseconds ([`SQPOLL_IDLE_MS_RANGE`]); None: no SQPOLL.
    pub sqpoll_idle_ms: Option<u32>,
}

/// Valid `--ring-entries`.
pub const RING_ENTRIES_RANGE: std::ops::RangeInclusive<u32> = 32..=32768;
/// Valid `--recv-buffers` (the kernel's buffer-ring limit is 32768 entries).
pub const RECV_BUFFERS_RANGE: std::ops::RangeInclusive<u16> = 8..=32768;
/// Valid `--recv-buffer-kib`.
pub const RECV_BUFFER_KIB_RANGE: std::ops::RangeInclusive<u32> = 4..=1024;
/// Valid `--sqpoll` idle times, milliseconds.
pub const SQPOLL_IDLE_MS_RANGE: std::ops::RangeInclusive<u32> = 1..=10_000;
/// Largest receive-buffer memory per worker (buffers × size): 1 GiB.
pub const MAX_RECV_BUFFER_BYTES: u64 = 1 << 30;

impl Default for TransportTuning {
    fn default() -> Self {
        let d = TransportConfig::default();
        TransportTuning {
            ring_entries: d.ring_entries,
            recv_buf_count: d.recv_buf_count,
            recv_buf_size: d.recv_buf_size,
            sqpoll_idle_ms: d.sqpoll_idle_ms,
        }
    }
}

/// `v` in `range`, or the error `ringnfs serve` gives for the option `key` out of its
/// range ("ring_entries must be between 32 and 32768, got 8"; the `ringnfs` crate's
/// options tests check that the two say the same).
fn check_range<T: PartialOrd + std::fmt::Display>(
    key: &str,
    range: &std::ops::RangeInclusive<T>,
    v: T,
) -> Result<(), String> {
    if range.contains(&v) {
        return Ok(());
    }
    Err(format!(
        "{key} must be between {} and {}, got {v}",
        range.start(),
        range.end()
    ))
}

/// Bytes as `ringnfs serve --help` words a size: "1 GiB", "512 MiB".
pub fn size_text(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

impl TransportTuning {
    /// Check the ranges (the command line and the config file check them too, with the
    /// same words; this covers library callers), and the receive-buffer memory
    /// ([`MAX_RECV_BUFFER_BYTES`], which only this checks). Errors name the knobs by
    /// their `ringnfs serve` config keys.
    pub fn validate(&self) -> Result<(), String> {
        check_range("ring_entries", &RING_ENTRIES_RANGE, self.ring_entries)?;
        check_range("recv_buffers", &RECV_BUFFERS_RANGE, self.recv_buf_count)?;
        if !self.recv_buf_size.is_multiple_of(1024) {
            return Err(format!(
                "recv_buffer_kib: the receive buffer size must be whole KiB, got {} bytes",
                self.recv_buf_size
            ));
        }
        check_range(
            "recv_buffer_kib",
            &RECV_BUFFER_KIB_RANGE,
            self.recv_buf_size / 1024,
        )?;
        let total =
            u64::from(self.recv_buf_count.next_power_of_two()) * u64::from(self.recv_buf_size);
        if total > MAX_RECV_BUFFER_BYTES {
            return Err(format!(
                "recv_buffers × recv_buffer_kib is {} per worker (buffers rounded up to a \
                 power of two), more than {}",
                size_text(total),
                size_text(MAX_RECV_BUFFER_BYTES)
            ));
        }
        if let Some(ms) = self.sqpoll_idle_ms {
            check_range("sqpoll_idle_ms", &SQPOLL_IDLE_MS_RANGE, ms)?;
        }
        Ok(())
    }

    /// Copy the knobs into a transport configuration.
    pub fn apply(&self, cfg: &mut TransportConfig) {
        cfg.ring_entries = self.ring_entries;
        cfg.recv_buf_count = self.recv_buf_count;
        cfg.recv_buf_size = self.recv_buf_size;
        cfg.sqpoll_idle_ms = self.sqpoll_idle_ms;
    }
}

/// A running transport.
pub struct TransportHandle {
    local_addrs: Vec<SocketAddr>,
    control: Arc<Control>,
    counters: Vec<Arc<WorkerCounters>>,
    threads: Vec<JoinHandle<io::Result<()>>>,
    shut: Arc<AtomicBool>,
}

/// Something that can stop the transport from any thread (e.g. a signal thread).
#[derive(Clone)]
pub struct ShutdownTrigger {
    control: Arc<Control>,
    shut: Arc<AtomicBool>,
}

impl ShutdownTrigger {
    /// Ask every worker to stop (idempotent).
    pub fn shutdown(&self) {
        if !self.shut.swap(true, Ordering::AcqRel) {
            self.control.shutdown_all();
        }
    }
}

/// Start the workers. Returns once every worker has its ring set up and its listeners
/// armed, so clients can connect right away.
pub fn start(cfg: TransportConfig, service: Arc<dyn Service>) -> io::Result<TransportHandle> {
    let threads = cfg.threads.max(1);
    if threads > 1 << 16 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many threads",
        ));
    }
    if cfg.listen.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no listen address",
        ));
    }
    let (mut sockets, local_addrs) = listener::bind_all(&cfg.listen, threads)?;
    let mut mailboxes = Vec::with_capacity(threads);
    let mut inboxes = Vec::with_capacity(threads);
    for _ in 0..threads {
        let (mb, inbox) = Mailbox::new()?;
        mailboxes.push(mb);
        inboxes.push(inbox);
    }
    let control = Arc::new(Control {
        mailboxes: mailboxes.clone(),
    });
    let cfg = Arc::new(cfg);
    let limiter = Arc::new(limits::ConnLimiter::new(
        cfg.max_connections,
        cfg.max_connections_per_peer,
    ));
    let (ready_tx, ready_rx) = crossbeam_channel::unbounded();
    let mut handle = TransportHandle {
        local_addrs,
        control,
        counters: Vec::with_capacity(threads),
        threads: Vec::with_capacity(threads),
        shut: Arc::new(AtomicBool::new(false)),
    };
    for (core, inbox) in inboxes.into_iter().enumerate().rev() {
        let counters = Arc::new(WorkerCounters::default());
        handle.counters.push(counters.clone());
        let init = worker::WorkerInit {
            core,
            cfg: cfg.clone(),
            service: service.clone(),
            // One per worker: its connections' metadata clones it (a suspended request
            // keeps a copy) without touching a counter other cores write.
            control: Arc::new(Control {
                mailboxes: mailboxes.clone(),
            }),
            listeners: sockets.pop().unwrap_or_default(),
            inbox,
            counters,
            limiter: limiter.clone(),
        };
        let ready = ready_tx.clone();
        let t = std::thread::Builder::new()
            .name(format!("ringnfs-io-{core}"))
            .spawn(move || worker::run(init, ready));
        match t {
            Ok(t) => handle.threads.push(t),
            Err(e) => return Err(e), // dropping `handle` stops the started workers
        }
    }
    handle.counters.reverse();
    drop(ready_tx);
    for _ in 0..threads {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(io::Error::other("worker exited during setup")),
        }
    }
    Ok(handle)
}

impl TransportHandle {
    /// The bound address of each listen address (port 0 resolved), in order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.local_addrs.clone()
    }

    /// Reach any connection from any thread.
    pub fn control(&self) -> Arc<dyn ConnControl> {
        self.control.clone()
    }

    /// Ask all workers to stop: stop accepting, flush and close every connection
    /// (bounded by a short deadline), exit. Idempotent; any thread.
    pub fn shutdown(&self) {
        self.trigger().shutdown();
    }

    /// A clonable handle that can call [`shutdown`](TransportHandle::shutdown) from
    /// another thread.
    pub fn trigger(&self) -> ShutdownTrigger {
        ShutdownTrigger {
            control: self.control.clone(),
            shut: self.shut.clone(),
        }
    }

    /// Counters of each worker, by core index.
    pub fn stats(&self) -> Vec<TransportStats> {
        self.counters.iter().map(|c| c.snapshot()).collect()
    }

    /// Wait for the workers to exit (after [`shutdown`](TransportHandle::shutdown)).
    /// Returns the first error a worker failed with (setup errors are returned by
    /// [`start`] instead).
    pub fn join(mut self) -> io::Result<()> {
        self.join_all()
    }

    fn join_all(&mut self) -> io::Result<()> {
        let mut first = Ok(());
        for t in self.threads.drain(..) {
            let r = t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a transport worker panicked")));
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

impl Drop for TransportHandle {
    /// Dropping the handle stops the transport and waits for it.
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shutdown();
            let _ = self.join_all();
        }
    }
}
