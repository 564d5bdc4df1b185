//! The seam between the transport (which owns sockets and rings) and the protocol core
//! (which owns no I/O): the transport calls a [`Service`] with complete RPC records, and
//! the protocol core reaches connections it does not own through [`ConnControl`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

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

/// A file operation the protocol core asks the connection's core to run on its ring.
pub enum FileOp {
    /// Read up to `len` bytes at `offset`.
    Read { offset: u64, len: u32 },
    /// Write `data` at `offset`.
    Write { offset: u64, data: Vec<u8> },
    /// fsync (fdatasync when `datasync`).
    Fsync { datasync: bool },
}

pub struct FileIoRequest {
    /// The connection whose request waits for this I/O (its core runs it).
    pub conn: ConnId,
    /// Chosen by the service; handed back in [`FileIoDone`].
    pub token: u64,
    pub fd: IoFd,
    pub op: FileOp,
}

/// A finished [`FileIoRequest`]: the syscall-style result (bytes or -errno) and the
/// buffer (the data read, or the write's data handed back).
pub struct FileIoDone {
    pub token: u64,
    pub result: i32,
    pub buf: Vec<u8>,
}

/// Reaches connections from any thread; implemented by the transport with cross-core
/// queues and a ring wake-up.
pub trait ConnControl: Send + Sync {
    /// Run a file operation on the ring of the core that owns `req.conn`; completion is
    /// reported to [`Service::on_file_io`]. Only possible while handling a record on
    /// that core: otherwise the request is handed back and the caller does the I/O
    /// itself.
    fn submit_file_io(&self, req: FileIoRequest) -> Result<(), FileIoRequest> {
        Err(req)
    }

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
}

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
    /// other replies); append nothing to send no reply.
    fn on_record(&self, conn: &ConnMeta, record: &[u8], out: &mut Vec<u8>);
    /// The connection closed (EOF, error, drain, idle timeout or shutdown). Called
    /// exactly once per accepted connection.
    fn on_close(&self, conn: &ConnMeta);
    /// A file operation submitted with [`ConnControl::submit_file_io`] finished; append
    /// the reply it completes (if any) to `out`, as in `on_record`.
    fn on_file_io(&self, _conn: &ConnMeta, _done: FileIoDone, _out: &mut Vec<u8>) {}
    /// A file operation finished after its connection closed: finish (or forget) what
    /// waited for it; there is nowhere to send a reply.
    fn on_file_io_orphaned(&self, _done: FileIoDone) {}
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
