//! The seam between the transport (which owns sockets and rings) and the protocol core
//! (which owns no I/O): the transport calls a [`Service`] with complete RPC records, and
//! the protocol core reaches connections it does not own through [`ConnControl`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

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
