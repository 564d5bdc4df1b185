//! The seam between the transport (which owns sockets and rings) and the protocol core
//! (which owns no I/O): the transport calls a [`Service`] with complete RPC records, and
//! the protocol core reaches connections it does not own through [`ConnControl`].
//!
//! File I/O is an effect the protocol core returns, not a call it makes: a request that
//! must read, write or sync a file returns [`Outcome::Suspend`] with the operation and a
//! [`Continuation`]. The transport keeps the continuation with the ring operation and
//! resumes it on the same core when the operation completes; the protocol core keeps no
//! table of waiting requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};

/// Process-unique connection id. The top 16 bits hold the index of the owning core,
/// so a message for a connection can be routed from the id alone.
pub type ConnId = u64;

pub const CONN_CORE_SHIFT: u32 = 48;

/// The core that owns connection `id`.
pub fn conn_core(id: ConnId) -> usize {
    (id >> CONN_CORE_SHIFT) as usize
}

/// Build a connection id from the owning core and a per-core sequence number.
pub fn make_conn_id(core: usize, seq: u64) -> ConnId {
    ((core as u64) << CONN_CORE_SHIFT) | (seq & ((1 << CONN_CORE_SHIFT) - 1))
}

/// A file descriptor a file operation runs on (kept alive until the operation ends).
pub type IoFd = Arc<dyn std::os::fd::AsFd + Send + Sync>;

/// Shared, reference-counted bytes: a part of a received record that a request keeps
/// past the call that decoded it (a WRITE's data, the undecoded rest of a suspended
/// COMPOUND) without copying it.
pub use bytes::Bytes;

mod signal;
pub use signal::{Signal, Waited};

/// How a file operation's data goes through the page cache (an export's I/O mode,
/// like knfsd's `io_cache_read` / `io_cache_write`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Caching {
    /// Through the page cache, kept there (plain buffered I/O).
    #[default]
    Buffered,
    /// Through the page cache, dropped from it once written back or read
    /// (`RWF_DONTCACHE`, Linux 6.14+ on filesystems that support it; others answer
    /// EOPNOTSUPP and the caller falls back to [`Caching::Buffered`]).
    DontCache,
    /// Around the page cache: the descriptor is open with `O_DIRECT`, and the offset,
    /// length and memory of the operation are aligned as the file requires (the
    /// protocol core aligns them; the transport runs the operation as given).
    Direct,
}

impl Caching {
    /// The mode's name as the command line and the config file spell it.
    pub fn name(self) -> &'static str {
        match self {
            Caching::Buffered => "buffered",
            Caching::DontCache => "dontcache",
            Caching::Direct => "direct",
        }
    }

    /// The per-operation flags (`preadv2`/`pwritev2` `RWF_*`, io_uring `rw_flags`) of
    /// this mode; `Direct` is a property of the descriptor instead.
    pub fn rw_flags(self) -> i32 {
        match self {
            Caching::Buffered | Caching::Direct => 0,
            Caching::DontCache => libc::RWF_DONTCACHE,
        }
    }
}

/// A file operation the protocol core asks the connection's core to run on its ring.
pub enum FileOp {
    /// Read up to `len` bytes at `offset`, appended to `into` (empty, or the reply so
    /// far, so that the data lands at its final place: [`FileIoDone::buf`] is `into`
    /// with the data after it).
    Read {
        offset: u64,
        len: u32,
        caching: Caching,
        into: Vec<u8>,
    },
    /// Write `data` at `offset` (usually a slice of the request's own record).
    Write {
        offset: u64,
        data: Bytes,
        caching: Caching,
    },
    /// fsync (fdatasync when `datasync`).
    Fsync { datasync: bool },
    /// fallocate(2) of `[offset, offset + len)` with `mode` (ALLOCATE, DEALLOCATE).
    Fallocate { mode: i32, offset: u64, len: u64 },
    /// Wait for work done off the ring (a cluster's recovery record written to etcd):
    /// read the 8-byte counter of the [`Signal`]'s eventfd, the descriptor of the
    /// [`FileIo`]; [`FileIoDone::buf`] holds it ([`Signal::succeeded`] reads it).
    Wait,
}

/// One file operation on one descriptor.
pub struct FileIo {
    pub fd: IoFd,
    pub op: FileOp,
}

/// A finished [`FileIo`]: the syscall-style result (bytes or -errno) and, for a READ,
/// its `into` buffer with the data read appended (empty for the other operations).
pub struct FileIoDone {
    pub result: i32,
    pub buf: Vec<u8>,
}

/// What is left of a request that waits for a file operation: called once, on the core
/// that owns the request's connection, when the operation finished.
/// Bytes the transport reserves in front of each reply in `out` (its record mark).
pub const RECORD_MARK_LEN: usize = 4;

pub trait Continuation: Send {
    /// Go on with the request. Append the reply (if any) to `out` as in
    /// [`Service::on_record`], or wait for another file operation. When the connection
    /// closed meanwhile, `out` is a scratch buffer nobody sends: the request must still
    /// finish (an NFS slot caches its reply for the client's retry on another
    /// connection).
    ///
    /// When `out` holds exactly [`RECORD_MARK_LEN`] zero bytes (the transport started a
    /// fresh buffer for this reply), a continuation whose reply so far is in a buffer of
    /// its own that starts with as many zero bytes may swap that buffer in instead of
    /// copying it (a large READ's reply, read into place by the ring).
    fn resume(self: Box<Self>, done: FileIoDone, out: &mut Vec<u8>) -> Outcome;

    /// Whether the reply is better started in a fresh buffer (it has a large one of its
    /// own to swap in): the transport then queues what is pending before resuming.
    fn wants_fresh_reply(&self) -> bool {
        false
    }
}

/// A request waiting for `io`; `then` goes on once it finished.
pub struct Suspend {
    pub io: FileIo,
    pub then: Box<dyn Continuation>,
}

/// How a call into the [`Service`] ended.
#[must_use = "a suspended request must be run to its end"]
pub enum Outcome {
    /// Done: the reply, if there is one, is in `out`.
    Done,
    /// Run this file operation, then resume the request (see [`Continuation`]).
    Suspend(Suspend),
}

impl Outcome {
    /// Shorthand for a suspension.
    pub fn suspend(io: FileIo, then: Box<dyn Continuation>) -> Outcome {
        Outcome::Suspend(Suspend { io, then })
    }

    /// Run the request to its end with `run` doing each file operation on this thread
    /// (callers without a ring: tests, fuzzing, benchmarks). Returns how many file
    /// operations it ran.
    pub fn run_to_end(self, out: &mut Vec<u8>, mut run: impl FnMut(FileIo) -> FileIoDone) -> usize {
        let mut ran = 0;
        let mut next = self;
        while let Outcome::Suspend(s) = next {
            let done = run(s.io);
            ran += 1;
            next = s.then.resume(done, out);
        }
        ran
    }
}

/// Reaches connections from any thread; implemented by the transport with cross-core
/// queues and a ring wake-up.
pub trait ConnControl: Send + Sync {
    /// Queue one complete RPC record (no record mark) to be sent on `conn`, e.g. a
    /// callback call. Returns false if the connection is gone.
    fn send_record(&self, conn: ConnId, record: Vec<u8>) -> bool;
    /// Begin draining `conn`: stop reading requests, send the replies already produced,
    /// then close it. The close is reported to [`Service::on_close`] as usual.
    fn drain(&self, conn: ConnId) -> bool;
}

/// Per-connection facts shared between the transport, the protocol core and queries,
/// readable without a lock.
#[derive(Debug, Default)]
pub struct ConnShared {
    /// RPC calls received on this connection.
    pub requests: AtomicU64,
    /// Set when an operator drains the connection: no new binds are taken on it.
    pub draining: AtomicBool,
    /// Sessions this connection is bound to (kept by the state's connection registry);
    /// the transport's idle timeout spares connections with a binding.
    pub bound_sessions: AtomicU32,
    /// A SEQUENCE or CREATE_SESSION succeeded on this connection. Once it is bound to no
    /// session (its client's lease expired, say) it gets the long idle timeout: a client
    /// that comes back on it must get NFS4ERR_BADSESSION and recover, not find it closed.
    pub had_session: AtomicBool,
    /// Where the connection stands with RPC-with-TLS (RFC 9289): one of the `TLS_*`
    /// states below. The transport offers TLS at accept and runs the handshake; the
    /// protocol core asks for it (the AUTH_TLS probe) and reads the outcome for each
    /// request (an export may require TLS).
    tls: AtomicU8,
}

/// The transport security a connection has (knfsd's `xprtsec` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportSecurity {
    /// Plain TCP.
    None,
    /// TLS; the client showed no certificate.
    Tls,
    /// TLS with a client certificate the server verified (mutual TLS).
    MutualTls,
}

impl TransportSecurity {
    pub fn name(self) -> &'static str {
        match self {
            TransportSecurity::None => "none",
            TransportSecurity::Tls => "tls",
            TransportSecurity::MutualTls => "mtls",
        }
    }
}

/// Plain TCP; the server has no TLS to offer on it.
const TLS_UNAVAILABLE: u8 = 0;
/// Plain TCP; the server can start TLS on it.
const TLS_OFFERED: u8 = 1;
/// The AUTH_TLS probe was answered with STARTTLS: the next bytes are a TLS handshake.
const TLS_REQUESTED: u8 = 2;
/// The transport is running the handshake.
const TLS_HANDSHAKE: u8 = 3;
const TLS_UP: u8 = 4;
const TLS_UP_MUTUAL: u8 = 5;

impl ConnShared {
    pub fn mark_had_session(&self) {
        // Read first: the flag is set once, and a store per request would dirty the
        // cache line other cores read.
        if !self.had_session.load(Ordering::Relaxed) {
            self.had_session.store(true, Ordering::Relaxed);
        }
    }

    pub fn had_session(&self) -> bool {
        self.had_session.load(Ordering::Relaxed)
    }

    /// The transport can start TLS on this connection (it has a certificate).
    pub fn offer_tls(&self) {
        self.tls.store(TLS_OFFERED, Ordering::Relaxed);
    }

    /// The protocol core answered an AUTH_TLS probe: true when TLS was on offer and the
    /// transport is now to start it after this reply (the probe's verifier then says
    /// "STARTTLS"); false when it is not available or already running.
    pub fn request_tls(&self) -> bool {
        self.tls
            .compare_exchange(
                TLS_OFFERED,
                TLS_REQUESTED,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// The transport takes a request to start TLS (once): true if there was one.
    pub fn take_tls_request(&self) -> bool {
        self.tls
            .compare_exchange(
                TLS_REQUESTED,
                TLS_HANDSHAKE,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// The handshake finished; `mutual`: the client's certificate was verified.
    pub fn tls_established(&self, mutual: bool) {
        let state = if mutual { TLS_UP_MUTUAL } else { TLS_UP };
        self.tls.store(state, Ordering::Relaxed);
    }

    /// The transport security requests on this connection have. Requests are only
    /// read once the handshake finished (the transport reads no record meanwhile), so
    /// a state between offer and handshake means plain TCP.
    #[inline]
    pub fn security(&self) -> TransportSecurity {
        match self.tls.load(Ordering::Relaxed) {
            TLS_UP => TransportSecurity::Tls,
            TLS_UP_MUTUAL => TransportSecurity::MutualTls,
            TLS_UNAVAILABLE | TLS_OFFERED | TLS_REQUESTED | TLS_HANDSHAKE => {
                TransportSecurity::None
            }
            _ => TransportSecurity::None,
        }
    }
}

/// What the protocol core knows about a connection.
#[derive(Clone)]
pub struct ConnMeta {
    pub id: ConnId,
    pub core: usize,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub control: Arc<dyn ConnControl>,
    pub shared: Arc<ConnShared>,
}

impl std::fmt::Debug for ConnMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnMeta")
            .field("id", &self.id)
            .field("core", &self.core)
            .field("peer", &self.peer)
            .field("local", &self.local)
            .finish()
    }
}

/// The protocol side of the server, called by the transport on the core that owns
/// the connection. Calls for one connection never overlap.
pub trait Service: Send + Sync + 'static {
    /// A connection was accepted.
    fn on_accept(&self, conn: &ConnMeta);
    /// One complete RPC record arrived (a call, or a reply to a callback we sent).
    /// Append the reply record's bytes to `out` (only append: `out` may already hold
    /// other replies); append nothing to send no reply. A request that needs file I/O
    /// first returns [`Outcome::Suspend`]: the transport runs the operation on the
    /// connection's ring and resumes the continuation on this core when it is done.
    fn on_record(&self, conn: &ConnMeta, record: &[u8], out: &mut Vec<u8>) -> Outcome;
    /// As [`on_record`](Service::on_record), for a record the transport gathered into a
    /// buffer of its own (a large one): the service may keep parts of it past the call
    /// (a WRITE's data goes to the file straight from it).
    fn on_owned_record(&self, conn: &ConnMeta, record: Bytes, out: &mut Vec<u8>) -> Outcome {
        self.on_record(conn, &record, out)
    }
    /// The connection closed (EOF, error, drain, idle timeout or shutdown). Called
    /// exactly once per accepted connection. Continuations of its requests may still
    /// be resumed afterwards (with a scratch `out`).
    fn on_close(&self, conn: &ConnMeta);
}

/// Control for connections without a transport (engine tests, benchmarks): nothing can
/// be sent or drained.
pub struct DetachedControl;

impl ConnControl for DetachedControl {
    fn send_record(&self, _: ConnId, _: Vec<u8>) -> bool {
        false
    }
    fn drain(&self, _: ConnId) -> bool {
        false
    }
}

impl ConnMeta {
    /// A connection known to the protocol core only (see [`DetachedControl`]).
    pub fn detached(id: ConnId, core: usize) -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        ConnMeta {
            id,
            core,
            peer: addr,
            local: addr,
            control: Arc::new(DetachedControl),
            shared: Arc::new(ConnShared::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads twice (the second read asked for by the first's continuation), then
    /// replies with what it read.
    struct TwoReads {
        fd: IoFd,
        got: Vec<u8>,
    }

    fn read(fd: &IoFd, offset: u64) -> FileIo {
        FileIo {
            fd: fd.clone(),
            op: FileOp::Read {
                offset,
                len: 2,
                caching: Caching::Buffered,
                into: Vec::new(),
            },
        }
    }

    impl Continuation for TwoReads {
        fn resume(mut self: Box<Self>, done: FileIoDone, out: &mut Vec<u8>) -> Outcome {
            self.got.extend_from_slice(&done.buf);
            if self.got.len() < 4 {
                return Outcome::suspend(read(&self.fd, 2), self);
            }
            out.extend_from_slice(&self.got);
            Outcome::Done
        }
    }

    #[test]
    fn run_to_end_runs_each_operation_and_resumes_until_done() {
        let fd: IoFd = Arc::new(std::fs::File::open("/dev/null").unwrap());
        let first = Outcome::suspend(
            read(&fd, 0),
            Box::new(TwoReads {
                fd: fd.clone(),
                got: Vec::new(),
            }),
        );
        let mut offsets = Vec::new();
        let mut out = b"before:".to_vec();
        let ran = first.run_to_end(&mut out, |io| match io.op {
            FileOp::Read { offset, len, .. } => {
                offsets.push(offset);
                FileIoDone {
                    result: len as i32,
                    buf: vec![b'a' + offset as u8; len as usize],
                }
            }
            _ => unreachable!(),
        });
        assert_eq!(ran, 2);
        assert_eq!(offsets, [0, 2]);
        assert_eq!(out, b"before:aacc");
        assert_eq!(Outcome::Done.run_to_end(&mut out, |_| unreachable!()), 0);
    }
}
