//! One client TCP connection with pipelined RPC calls and a back channel.
//!
//! A background reader thread reassembles records, hands each reply to the caller
//! waiting on its xid, and answers calls the server sends (callbacks) through a
//! [`CallbackHandler`]. When the connection dies every waiting caller gets
//! [`ClientError::Disconnected`] at once. With RPCSEC_GSS ([`RpcConn::start_gss`]) calls
//! are sent and their replies checked by [`crate::gss`].

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};
use parking_lot::Mutex;

use super::callback::{CallbackHandler, DefaultCallbackHandler, answer_call};
use super::compound::CompoundReply;
use super::error::ClientError;
use super::gss::{ClientGss, GssConn};
use super::ops::{Op, encode_compound};
use super::tls::{self, ClientTls};
use ringnfs_proto::nfs4::consts::{NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND, PROC_NULL};
use ringnfs_proto::rpc::message::ReplyFailure;
use ringnfs_proto::rpc::record::mark;
use ringnfs_proto::rpc::{Credential, RecordAssembler, RpcMessage, decode_message, encode_call};

/// Largest record accepted from the server (1 MiB payloads plus headers).
pub(crate) const MAX_RECORD: usize = 4 << 20;
/// Replies nobody waits for that are kept for `recv_unmatched`.
const UNMATCHED_QUEUE: usize = 256;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The results of an accepted, successful RPC reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyBody {
    pub xid: u32,
    /// Procedure results (everything after accept_stat SUCCESS).
    pub data: Vec<u8>,
}

/// Where calls and callback replies are written: the socket, or TLS over it (the
/// lock orders writers, so TLS records go out in the order they were sealed).
enum Wire {
    Plain(TcpStream),
    Tls {
        stream: TcpStream,
        session: tls::Session,
    },
}

impl Wire {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Wire::Plain(s) => s.write_all(bytes),
            Wire::Tls { stream, session } => stream.write_all(&tls::seal(session, bytes)?),
        }
    }
}

struct Inner {
    stream: TcpStream,
    writer: Mutex<Wire>,
    /// xid → the waiting caller. Closed state is changed under this lock.
    pending: Mutex<HashMap<u32, Sender<Vec<u8>>>>,
    closed: AtomicBool,
    next_xid: AtomicU32,
    timeout_ms: AtomicU64,
    cred: Credential,
    handler: Arc<dyn CallbackHandler>,
    unmatched_tx: Sender<Vec<u8>>,
    unmatched_rx: Receiver<Vec<u8>>,
    local: SocketAddr,
    peer: SocketAddr,
    /// Why TLS ended the connection (an alert from the server, e.g. for a client
    /// certificate it refused after the handshake): calls then fail with it.
    tls_failure: Mutex<Option<String>>,
}

/// A client connection; share it with `Arc` to call from many threads at once.
pub struct RpcConn {
    inner: Arc<Inner>,
    default_handler: Option<Arc<DefaultCallbackHandler>>,
    reader: Mutex<Option<JoinHandle<()>>>,
    /// RPCSEC_GSS for every call, once [`RpcConn::start_gss`] made the context.
    gss: Option<GssConn>,
}

impl std::fmt::Debug for RpcConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcConn")
            .field("local", &self.inner.local)
            .field("peer", &self.inner.peer)
            .field("closed", &self.is_closed())
            .field("gss", &self.gss)
            .finish()
    }
}

impl RpcConn {
    /// Connect with the default callback handler (program [`super::DEFAULT_CB_PROGRAM`]).
    pub fn connect(addr: impl ToSocketAddrs, cred: Credential) -> Result<Self, ClientError> {
        let h = Arc::new(DefaultCallbackHandler::default());
        let mut c = Self::connect_with(addr, cred, h.clone())?;
        c.default_handler = Some(h);
        Ok(c)
    }

    /// Connect with a caller-provided callback handler.
    pub fn connect_with(
        addr: impl ToSocketAddrs,
        cred: Credential,
        handler: Arc<dyn CallbackHandler>,
    ) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(addr)?;
        Self::from_stream(stream, cred, handler)
    }

    /// Connect from local address `source` (any port), or the system's choice.
    /// With `tls`, RPC-with-TLS: the AUTH_TLS probe and the handshake come first.
    pub fn connect_from(
        addr: std::net::SocketAddr,
        source: Option<std::net::IpAddr>,
        cred: Credential,
        handler: Arc<dyn CallbackHandler>,
        tls: Option<&ClientTls>,
    ) -> Result<Self, ClientError> {
        let stream = match source {
            None => TcpStream::connect(addr)?,
            Some(ip) => {
                let sock = socket2::Socket::new(
                    socket2::Domain::for_address(addr),
                    socket2::Type::STREAM,
                    Some(socket2::Protocol::TCP),
                )?;
                sock.bind(&std::net::SocketAddr::new(ip, 0).into())?;
                sock.connect(&addr.into())?;
                sock.into()
            }
        };
        Self::from_stream_tls(stream, cred, handler, tls)
    }

    /// Wrap an already connected stream.
    pub fn from_stream(
        stream: TcpStream,
        cred: Credential,
        handler: Arc<dyn CallbackHandler>,
    ) -> Result<Self, ClientError> {
        Self::from_stream_tls(stream, cred, handler, None)
    }

    /// Wrap an already connected stream, first starting TLS on it with `tls`.
    pub fn from_stream_tls(
        mut stream: TcpStream,
        cred: Credential,
        handler: Arc<dyn CallbackHandler>,
        tls: Option<&ClientTls>,
    ) -> Result<Self, ClientError> {
        stream.set_nodelay(true)?;
        let session = match tls {
            Some(t) => Some(Arc::new(Mutex::new(t.start(&mut stream)?))),
            None => None,
        };
        let wire = match &session {
            Some(s) => Wire::Tls {
                stream: stream.try_clone()?,
                session: s.clone(),
            },
            None => Wire::Plain(stream.try_clone()?),
        };
        let local = stream.local_addr()?;
        let peer = stream.peer_addr()?;
        let (unmatched_tx, unmatched_rx) = bounded(UNMATCHED_QUEUE);
        let inner = Arc::new(Inner {
            writer: Mutex::new(wire),
            stream: stream.try_clone()?,
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            next_xid: AtomicU32::new(rand::random::<u32>()),
            timeout_ms: AtomicU64::new(DEFAULT_TIMEOUT.as_millis() as u64),
            cred,
            handler,
            unmatched_tx,
            unmatched_rx,
            local,
            peer,
            tls_failure: Mutex::new(None),
        });
        let r = inner.clone();
        let reader = std::thread::Builder::new()
            .name(format!("rpcconn-{local}"))
            .spawn(move || reader_loop(r, stream, session))?;
        Ok(RpcConn {
            inner,
            default_handler: None,
            reader: Mutex::new(Some(reader)),
            gss: None,
        })
    }

    /// Makes an RPCSEC_GSS context with the server (inside TLS, on a TLS connection):
    /// every later call goes out with it, protected as `gss.service` says. Callbacks
    /// from the server are still answered as before (they are not RPCSEC_GSS). Fails
    /// with [`ClientError::Gss`], in words, when the server does not offer RPCSEC_GSS or
    /// the context cannot be made (no tickets, an unknown service, ...).
    pub fn start_gss(&mut self, gss: &ClientGss) -> Result<(), ClientError> {
        if self.gss.is_some() {
            return Err(ClientError::Gss(
                "the connection already has an RPCSEC_GSS context".into(),
            ));
        }
        let g = GssConn::start(self, gss)?;
        self.gss = Some(g);
        Ok(())
    }

    /// How long the connection's RPCSEC_GSS context stays valid (it ends with the
    /// Kerberos ticket it was made with; a call after that makes a new one): None without
    /// RPCSEC_GSS or once destroyed.
    pub fn gss_lifetime(&self) -> Option<Duration> {
        self.gss.as_ref().and_then(|g| g.lifetime())
    }

    /// Tests only: the next RPCSEC_GSS sequence number (to reach MAXSEQ).
    #[cfg(any(test, feature = "mock"))]
    #[doc(hidden)]
    pub fn gss_set_next_seq(&self, next: u32) {
        if let Some(g) = &self.gss {
            g.set_next_seq(next);
        }
    }

    /// The RPCSEC_GSS options the connection's calls use, if any.
    pub fn gss(&self) -> Option<&ClientGss> {
        self.gss.as_ref().map(|g| g.options())
    }

    /// The default callback handler, when the connection was made with [`RpcConn::connect`].
    pub fn default_callbacks(&self) -> Option<&Arc<DefaultCallbackHandler>> {
        self.default_handler.as_ref()
    }

    pub fn set_timeout(&self, t: Duration) {
        self.inner
            .timeout_ms
            .store(t.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.inner.timeout_ms.load(Ordering::Relaxed))
    }

    pub fn credential(&self) -> &Credential {
        &self.inner.cred
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.peer
    }

    /// The error of a call on a closed connection: the TLS failure that closed it, if
    /// one did.
    fn disconnected(&self) -> ClientError {
        match self.inner.tls_failure.lock().clone() {
            Some(why) => ClientError::Tls(why),
            None => ClientError::Disconnected,
        }
    }

    /// Close the connection; waiting callers get `Disconnected`. An RPCSEC_GSS context
    /// is destroyed first (best effort, waiting at most [`crate::gss::DESTROY_WAIT`]).
    pub fn shutdown(&self) {
        if let Some(g) = &self.gss
            && !self.is_closed()
        {
            g.destroy(self);
        }
        self.close();
    }

    /// Close the socket at once.
    fn close(&self) {
        self.inner.close();
        let _ = self.inner.stream.shutdown(Shutdown::Both);
    }

    /// One RPC call: waits for the reply (up to the timeout) and returns its results.
    pub fn call(
        &self,
        prog: u32,
        vers: u32,
        proc_: u32,
        args: &[u8],
    ) -> Result<ReplyBody, ClientError> {
        if let Some(g) = &self.gss {
            return g.call(self, (prog, vers, proc_), args);
        }
        let (xid, reply) = self.exchange(self.timeout(), args.len() + 128, |xid, rec| {
            encode_call(rec, xid, prog, vers, proc_, &self.inner.cred);
            rec.extend_from_slice(args);
            Ok::<(), ClientError>(())
        })?;
        match decode_message(&reply) {
            Ok(RpcMessage::Reply(r)) => match r.body {
                Ok(data) => Ok(ReplyBody {
                    xid,
                    data: data.to_vec(),
                }),
                Err(f) => Err(reply_failure_error(f)),
            },
            _ => Err(ClientError::BadReply("undecodable RPC reply".into())),
        }
    }

    /// Sends the call `build` appends to the record (after the 4 bytes of its record
    /// mark, filled in here) for a fresh xid, and waits up to `timeout` for the reply:
    /// (xid, the reply record).
    pub(crate) fn exchange<E: From<ClientError>>(
        &self,
        timeout: Duration,
        capacity: usize,
        build: impl FnOnce(u32, &mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(u32, Vec<u8>), E> {
        let xid = self.inner.next_xid.fetch_add(1, Ordering::Relaxed);
        let mut rec = Vec::with_capacity(capacity);
        rec.extend_from_slice(&[0; 4]);
        build(xid, &mut rec)?;
        let m = mark(rec.len() - 4);
        rec[..4].copy_from_slice(&m);

        let (tx, rx) = bounded(1);
        {
            let mut p = self.inner.pending.lock();
            if self.is_closed() {
                return Err(self.disconnected().into());
            }
            p.insert(xid, tx);
        }
        if let Err(e) = self.write_all(&rec) {
            self.inner.pending.lock().remove(&xid);
            return Err(e.into());
        }
        let reply = match rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => {
                self.inner.pending.lock().remove(&xid);
                return Err(ClientError::Timeout.into());
            }
            Err(RecvTimeoutError::Disconnected) => return Err(self.disconnected().into()),
        };
        Ok((xid, reply))
    }

    /// NFSPROC4_NULL.
    pub fn null(&self) -> Result<(), ClientError> {
        self.call(NFS4_PROGRAM, NFS4_VERSION, PROC_NULL, &[])
            .map(|_| ())
    }

    /// NFSPROC4_COMPOUND with these operations. A non-OK compound status is returned in
    /// the reply, not as an error.
    pub fn compound(
        &self,
        minorversion: u32,
        tag: &[u8],
        ops: &[Op],
    ) -> Result<CompoundReply, ClientError> {
        let mut args = Vec::with_capacity(256);
        encode_compound(&mut args, minorversion, tag, ops);
        self.compound_encoded(&args)
    }

    /// COMPOUND with pre-encoded COMPOUND4args.
    pub fn compound_encoded(&self, args: &[u8]) -> Result<CompoundReply, ClientError> {
        let r = self.call(NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND, args)?;
        CompoundReply::decode(&r.data)
    }

    /// Write raw bytes (record marks included, or not: for bad-input tests).
    pub fn send_raw(&self, bytes: &[u8]) -> Result<(), ClientError> {
        self.write_all(bytes)
    }

    /// A record that arrived and matched no waiting call (a reply to `send_raw`, or
    /// something undecodable), waiting up to `timeout`.
    pub fn recv_unmatched(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.inner.unmatched_rx.recv_timeout(timeout).ok()
    }

    fn write_all(&self, bytes: &[u8]) -> Result<(), ClientError> {
        if self.is_closed() {
            return Err(self.disconnected());
        }
        let res = self.inner.writer.lock().write_all(bytes);
        res.map_err(|e| {
            tracing::debug!(peer = %self.inner.peer, error = %e, "client write failed");
            // A broken stream: make sure the reader notices and wakes everyone.
            self.close();
            match e.kind() {
                ErrorKind::BrokenPipe
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted => self.disconnected(),
                _ => ClientError::Io(e),
            }
        })
    }
}

impl Drop for RpcConn {
    fn drop(&mut self) {
        self.shutdown();
        if let Some(h) = self.reader.lock().take()
            && h.thread().id() != std::thread::current().id()
        {
            let _ = h.join();
        }
    }
}

/// The error of a reply that is not an accepted SUCCESS.
pub(crate) fn reply_failure_error(f: ReplyFailure) -> ClientError {
    match f {
        ReplyFailure::Accepted(s) => ClientError::RpcAccepted(s),
        ReplyFailure::RpcMismatch(lo, hi) => ClientError::RpcMismatch(lo, hi),
        ReplyFailure::AuthError(s) => ClientError::AuthError(s),
    }
}

impl Inner {
    /// Mark closed and wake every waiting caller (their senders are dropped).
    fn close(&self) {
        let drained: Vec<_> = {
            let mut p = self.pending.lock();
            self.closed.store(true, Ordering::Release);
            p.drain().collect()
        };
        drop(drained);
    }

    fn on_record(&self, rec: &[u8]) {
        match decode_message(rec) {
            Ok(RpcMessage::Reply(r)) => {
                let waiter = self.pending.lock().remove(&r.xid);
                match waiter {
                    Some(tx) => {
                        let _ = tx.send(rec.to_vec());
                    }
                    None => self.unmatched(rec),
                }
            }
            Ok(RpcMessage::Call(c)) => {
                tracing::debug!(xid = c.xid, prog = c.prog, proc_ = c.proc_, "callback call");
                if let Some(reply) = answer_call(self.handler.as_ref(), &c) {
                    let mut out = Vec::with_capacity(reply.len() + 4);
                    out.extend_from_slice(&mark(reply.len()));
                    out.extend_from_slice(&reply);
                    if let Err(e) = self.writer.lock().write_all(&out) {
                        tracing::debug!(error = %e, "callback reply write failed");
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "undecodable record from server");
                self.unmatched(rec);
            }
        }
    }

    fn unmatched(&self, rec: &[u8]) {
        if let Err(TrySendError::Full(_)) = self.unmatched_tx.try_send(rec.to_vec()) {
            // Oldest first out: drop one and keep the newest.
            let _ = self.unmatched_rx.try_recv();
            let _ = self.unmatched_tx.try_send(rec.to_vec());
        }
    }
}

fn reader_loop(inner: Arc<Inner>, mut stream: TcpStream, session: Option<tls::Session>) {
    let mut asm = RecordAssembler::new(MAX_RECORD);
    let mut buf = vec![0u8; 256 * 1024];
    let mut plain = Vec::new();
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::debug!(error = %e, "client read failed");
                break;
            }
        };
        let mut data = &buf[..n];
        let mut open = true;
        if let Some(s) = &session {
            plain.clear();
            match tls::open(s, data, &mut plain) {
                Ok(o) => open = o,
                Err(e) => {
                    tracing::debug!(error = %e, "TLS from the server failed");
                    *inner.tls_failure.lock() = Some(e.to_string());
                    break;
                }
            }
            data = &plain;
            // A key update's answer waits in the session: send it unless a writer is
            // busy (which sends it with its own bytes).
            if s.lock().wants_write()
                && let Some(mut w) = inner.writer.try_lock()
            {
                let _ = w.write_all(&[]);
            }
        }
        if let Err(e) = asm.feed(data, |rec| {
            inner.on_record(rec);
            true
        }) {
            tracing::warn!(error = %e, "bad record marking from server");
            break;
        }
        if !open {
            break;
        }
    }
    inner.close();
    let _ = stream.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::SessionId;
    use ringnfs_proto::nfs4::consts::{CB_PROC_COMPOUND, cb_op, op, status};
    use ringnfs_proto::rpc::{AcceptStat, encode_accepted};
    use ringnfs_proto::xdr::{XdrDecoder, XdrEncoder};
    use std::net::TcpListener;
    use std::time::Instant;

    /// Read one framed record from a blocking stream.
    fn read_record(s: &mut TcpStream) -> Option<Vec<u8>> {
        let mut h = [0u8; 4];
        s.read_exact(&mut h).ok()?;
        let len = (u32::from_be_bytes(h) & 0x7fff_ffff) as usize;
        let mut v = vec![0; len];
        s.read_exact(&mut v).ok()?;
        Some(v)
    }

    fn write_record(s: &mut TcpStream, rec: &[u8]) {
        s.write_all(&mark(rec.len())).unwrap();
        s.write_all(rec).unwrap();
    }

    fn xid_of(rec: &[u8]) -> u32 {
        u32::from_be_bytes([rec[0], rec[1], rec[2], rec[3]])
    }

    /// Echo server: replies SUCCESS with the call's args as results, in reverse order of
    /// each batch of `batch` calls.
    fn echo_server(batch: usize) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            loop {
                let mut calls = Vec::new();
                for _ in 0..batch {
                    match read_record(&mut s) {
                        Some(r) => calls.push(r),
                        None => return,
                    }
                }
                for c in calls.iter().rev() {
                    let args = match decode_message(c).unwrap() {
                        RpcMessage::Call(h) => h.args.to_vec(),
                        _ => panic!(),
                    };
                    let mut rep = Vec::new();
                    encode_accepted(&mut rep, xid_of(c), AcceptStat::Success);
                    rep.extend_from_slice(&args);
                    write_record(&mut s, &rep);
                }
            }
        });
        (addr, h)
    }

    #[test]
    fn pipelined_calls_matched_out_of_order() {
        let (addr, server) = echo_server(8);
        let conn = Arc::new(RpcConn::connect(addr, Credential::None).unwrap());
        let threads: Vec<_> = (0..8u32)
            .map(|i| {
                let c = conn.clone();
                std::thread::spawn(move || {
                    let r = c.call(100003, 4, 1, &i.to_be_bytes()).unwrap();
                    assert_eq!(r.data, i.to_be_bytes());
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(conn);
        server.join().unwrap();
    }

    #[test]
    fn disconnect_wakes_all_waiters() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            for _ in 0..4 {
                read_record(&mut s).unwrap();
            }
            // Close without answering.
        });
        let conn = Arc::new(RpcConn::connect(addr, Credential::None).unwrap());
        conn.set_timeout(Duration::from_secs(20));
        let start = Instant::now();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = conn.clone();
                std::thread::spawn(move || c.call(100003, 4, 0, &[]))
            })
            .collect();
        for t in threads {
            assert!(matches!(t.join().unwrap(), Err(ClientError::Disconnected)));
        }
        assert!(start.elapsed() < Duration::from_secs(5));
        server.join().unwrap();
        assert!(conn.is_closed());
        assert!(matches!(conn.null(), Err(ClientError::Disconnected)));
    }

    #[test]
    fn timeout_and_rpc_errors() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            // First call: no answer (timeout). Second: PROG_MISMATCH. Third: garbage.
            read_record(&mut s).unwrap();
            let c = read_record(&mut s).unwrap();
            let mut rep = Vec::new();
            encode_accepted(&mut rep, xid_of(&c), AcceptStat::ProgMismatch(4, 4));
            write_record(&mut s, &rep);
            let c = read_record(&mut s).unwrap();
            write_record(&mut s, &c[..6]);
            // A reply nobody waits for.
            let mut rep = Vec::new();
            encode_accepted(&mut rep, 0xdead, AcceptStat::Success);
            write_record(&mut s, &rep);
            let _ = read_record(&mut s);
        });
        let conn = RpcConn::connect(addr, Credential::None).unwrap();
        conn.set_timeout(Duration::from_millis(200));
        assert!(matches!(conn.null(), Err(ClientError::Timeout)));
        assert!(matches!(
            conn.null(),
            Err(ClientError::RpcAccepted(AcceptStat::ProgMismatch(4, 4)))
        ));
        // The garbage reply matches no xid: the call times out, the record is kept.
        assert!(matches!(conn.null(), Err(ClientError::Timeout)));
        let a = conn.recv_unmatched(Duration::from_secs(2)).unwrap();
        assert_eq!(a.len(), 6);
        let b = conn.recv_unmatched(Duration::from_secs(2)).unwrap();
        assert_eq!(xid_of(&b), 0xdead);
        conn.shutdown();
        server.join().unwrap();
    }

    #[test]
    fn compound_and_callback_on_same_connection() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let sid = SessionId([0xABu8; 16]);
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let c = read_record(&mut s).unwrap();
            // Before answering, call back: CB_COMPOUND { CB_SEQUENCE }.
            let mut cb = Vec::new();
            encode_call(
                &mut cb,
                0x55,
                0x4000_0000,
                1,
                CB_PROC_COMPOUND,
                &Credential::None,
            );
            cb.put_opaque(b"");
            cb.put_u32(1);
            cb.put_u32(0);
            cb.put_u32(1);
            cb.put_u32(cb_op::CB_SEQUENCE);
            cb.put_fixed(&sid.0);
            for w in [1, 0, 0, 0, 0] {
                cb.put_u32(w);
            }
            write_record(&mut s, &cb);
            let cbrep = read_record(&mut s).unwrap();
            // Then answer the COMPOUND: status OK, tag, PUTROOTFH ok, GETFH ok.
            let mut rep = Vec::new();
            encode_accepted(&mut rep, xid_of(&c), AcceptStat::Success);
            rep.put_u32(0);
            rep.put_opaque(b"x");
            rep.put_u32(2);
            for w in [op::PUTROOTFH, 0, op::GETFH, 0] {
                rep.put_u32(w);
            }
            rep.put_opaque(&[1, 2, 3, 4, 5, 6, 7, 8]);
            write_record(&mut s, &rep);
            let _ = read_record(&mut s);
            cbrep
        });
        let conn = RpcConn::connect(addr, Credential::None).unwrap();
        let r = conn.compound(1, b"x", &[Op::PutRootFh, Op::GetFh]).unwrap();
        assert_eq!(r.status, status::NFS4_OK);
        assert_eq!(r.getfh().unwrap(), vec![1, 2, 3, 4, 5, 6, 7, 8]);
        let h = conn.default_callbacks().unwrap();
        assert_eq!(h.op_count(cb_op::CB_SEQUENCE), 1);
        assert_eq!(h.stats().last_sessionid, Some(sid));
        conn.shutdown();
        let cbrep = server.join().unwrap();
        let mut d = XdrDecoder::new(&cbrep);
        assert_eq!(d.u32().unwrap(), 0x55);
        assert_eq!(d.u32().unwrap(), 1); // REPLY
        d.skip(16).unwrap(); // accepted, verifier, SUCCESS
        assert_eq!(d.u32().unwrap(), status::NFS4_OK.code());
    }
}
