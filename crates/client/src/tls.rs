//! RPC-with-TLS (RFC 9289) for the client: the AUTH_TLS probe, the TLS 1.3 handshake
//! with ALPN "sunrpc" on the same connection, and the record stream inside TLS after.
//!
//! A connection's TLS session is shared by its reader thread (which decrypts) and its
//! writers (which encrypt): the session's lock is held only while bytes go in or out of
//! rustls, never across a socket read or write, so a writer blocked on a full socket
//! never stops the reader from taking the server's replies.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::error::ClientError;
use ringnfs_proto::nfs4::consts::{NFS4_PROGRAM, NFS4_VERSION, PROC_NULL};
use ringnfs_proto::rpc::auth::{AUTH_NONE, AUTH_TLS, STARTTLS_VERIFIER};
use ringnfs_proto::rpc::record::mark;
use ringnfs_proto::xdr::{XdrDecoder, XdrEncoder};

/// How long the probe's reply and the handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a client connection needs for TLS: whom to trust, what to show, whom it talks
/// to. Cheap to clone (one per connection of a session).
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish()
    }
}

fn tls_error(what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Tls(format!("{what}: {e}"))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let what = path.display().to_string();
    CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_error(&what, format!("{e:?}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(&what, format!("{e:?}")))
}

impl ClientTls {
    /// Trust the CA certificates in `ca` (PEM) for a server named `server_name` (a DNS
    /// name or an IP address its certificate lists); show the certificate `client`
    /// (chain and key, PEM) when given (mutual TLS).
    pub fn new(
        ca: &Path,
        server_name: &str,
        client: Option<(&Path, &Path)>,
    ) -> Result<ClientTls, ClientError> {
        let mut roots = RootCertStore::empty();
        for c in read_certs(ca)? {
            roots
                .add(c)
                .map_err(|e| tls_error(&ca.display().to_string(), e))?;
        }
        #[allow(deprecated)] // ring: see the server's transport (no post-quantum kx)
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| tls_error("TLS 1.3", e))?
            .with_root_certificates(roots);
        let mut config = match client {
            Some((cert, key)) => {
                let chain = read_certs(cert)?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| tls_error(&key.display().to_string(), format!("{e:?}")))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| tls_error("client certificate", e))?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"sunrpc".to_vec()];
        let server_name =
            ServerName::try_from(server_name.to_string()).map_err(|e| tls_error(server_name, e))?;
        Ok(ClientTls {
            config: Arc::new(config),
            server_name,
        })
    }

    /// Offer these ALPN protocols instead of "sunrpc" (none: as Linux's tlshd 1.0, which
    /// sends no ALPN extension); for tests of what a server does with such clients.
    pub fn with_alpn(mut self, protocols: Vec<Vec<u8>>) -> ClientTls {
        Arc::make_mut(&mut self.config).alpn_protocols = protocols;
        self
    }

    /// Probe for TLS on the fresh connection `stream` and run the handshake: the
    /// session, ready for records. [`ClientError::Tls`] when the server does not offer
    /// TLS or the handshake fails (an untrusted or expired certificate, say).
    pub fn start(&self, stream: &mut TcpStream) -> Result<ClientConnection, ClientError> {
        let restore = stream.read_timeout()?;
        stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        let r = self.probe(stream).and_then(|()| self.handshake(stream));
        stream.set_read_timeout(restore)?;
        r
    }

    fn probe(&self, stream: &mut TcpStream) -> Result<(), ClientError> {
        let xid = rand::random::<u32>();
        let mut call = Vec::with_capacity(44);
        call.extend_from_slice(&[0; 4]);
        call.put_u32(xid);
        call.put_u32(0); // CALL
        call.put_u32(2); // RPC version
        call.put_u32(NFS4_PROGRAM);
        call.put_u32(NFS4_VERSION);
        call.put_u32(PROC_NULL);
        call.put_u32(AUTH_TLS);
        call.put_u32(0); // empty credential body
        call.put_u32(AUTH_NONE);
        call.put_u32(0);
        let len = call.len() - 4;
        call[..4].copy_from_slice(&mark(len));
        stream.write_all(&call)?;
        let mut head = [0u8; 4];
        stream.read_exact(&mut head)?;
        let len = (u32::from_be_bytes(head) & 0x7fff_ffff) as usize;
        if len > 1024 {
            return Err(ClientError::Tls(format!(
                "the reply to the AUTH_TLS probe is {len} bytes: not an RPC server speaking RFC 9289"
            )));
        }
        let mut reply = vec![0; len];
        stream.read_exact(&mut reply)?;
        let mut d = XdrDecoder::new(&reply);
        let header = (|| -> Result<_, ringnfs_proto::xdr::XdrError> {
            let (rxid, mtype, stat) = (d.u32()?, d.u32()?, d.u32()?);
            let flavor = d.u32()?;
            let body = d.opaque(400)?.to_vec();
            Ok((rxid, mtype, stat, flavor, body))
        })();
        match header {
            Ok((rxid, 1, 0, AUTH_NONE, body)) if rxid == xid && body == STARTTLS_VERIFIER => Ok(()),
            Ok((rxid, 1, 0, ..)) if rxid == xid => Err(ClientError::Tls(
                "the server does not offer TLS (its answer to the AUTH_TLS probe has no STARTTLS)"
                    .into(),
            )),
            _ => Err(ClientError::Tls(
                "the server refused the AUTH_TLS probe".into(),
            )),
        }
    }

    fn handshake(&self, stream: &mut TcpStream) -> Result<ClientConnection, ClientError> {
        let mut session = ClientConnection::new(self.config.clone(), self.server_name.clone())
            .map_err(|e| tls_error("TLS", e))?;
        while session.is_handshaking() {
            session.complete_io(stream).map_err(|e| match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    ClientError::Tls("the TLS handshake did not finish in time".into())
                }
                io::ErrorKind::UnexpectedEof => ClientError::Tls(
                    "the server closed the connection during the TLS handshake".into(),
                ),
                _ => tls_error("TLS handshake", e),
            })?;
        }
        let offered = self.config.alpn_protocols.iter().any(|p| p == b"sunrpc");
        if offered && session.alpn_protocol() != Some(b"sunrpc") {
            return Err(ClientError::Tls(
                "the server did not agree to ALPN \"sunrpc\"".into(),
            ));
        }
        while session.wants_write() {
            session.write_tls(stream)?;
        }
        // Each write is encrypted and taken out at once (`seal`): no bound of rustls's
        // own on what it holds.
        session.set_buffer_limit(None);
        Ok(session)
    }
}

/// The shared TLS session of one connection.
pub(crate) type Session = Arc<Mutex<ClientConnection>>;

/// Encrypt `bytes` into TLS records (with anything else TLS has to send).
pub(crate) fn seal(session: &Session, bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut s = session.lock();
    s.writer().write_all(bytes)?;
    let mut out = Vec::with_capacity(bytes.len() + 64);
    while s.wants_write() {
        s.write_tls(&mut out)?;
    }
    Ok(out)
}

/// Decrypt `data` from the socket, appending the plaintext to `plain`. Ok(false): the
/// server said close_notify.
pub(crate) fn open(session: &Session, mut data: &[u8], plain: &mut Vec<u8>) -> io::Result<bool> {
    let mut s = session.lock();
    while !data.is_empty() {
        s.read_tls(&mut data)?;
        let state = s.process_new_packets().map_err(io::Error::other)?;
        let n = state.plaintext_bytes_to_read();
        if n > 0 {
            let at = plain.len();
            plain.resize(at + n, 0);
            s.reader().read_exact(&mut plain[at..])?;
        }
        if state.peer_has_closed() {
            return Ok(false);
        }
    }
    Ok(true)
}
