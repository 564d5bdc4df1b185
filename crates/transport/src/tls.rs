//! RPC-with-TLS (RFC 9289) on one connection: after the protocol core answered an
//! AUTH_TLS probe with "STARTTLS", the bytes that follow on the socket are a TLS 1.3
//! handshake (ALPN "sunrpc") and then TLS records carrying the usual record-marked RPC
//! stream.
//!
//! The TLS layer sits between the ring and the record assembler and never touches the
//! socket: [`TlsConn::received`] takes what a receive brought (ciphertext) and gives
//! back plaintext; [`TlsConn::seal`] moves the plaintext replies the service appended
//! to the connection's output into TLS records on the connection's wire queue, which
//! the send side sends as before. rustls does the TLS in user space on the worker that
//! owns the connection. (Kernel TLS, which would let the ring send and receive the
//! plaintext itself, needs the kernel's `tls` module; see `docs/tls.md`.)
//!
//! Key updates are answered by rustls itself (their replies go out with the next
//! seal); an alert or a malformed record fails the connection (the alert rustls
//! queued is sent before it closes); the peer's close_notify is an end of stream.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};

use super::output::OutQueue;

/// The ALPN protocol identifier of RPC-with-TLS (RFC 9289 §7.2).
pub const ALPN_SUNRPC: &[u8] = b"sunrpc";
/// A handshake not finished this long after the probe's reply fails the connection.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the server's certificate, its key and the CA of client certificates are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the server's certificate chain, its own certificate first.
    pub cert: PathBuf,
    /// PEM: the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM: CA certificates that sign client certificates. With it, clients are asked
    /// for a certificate (mutual TLS); one that shows a certificate these CAs did not
    /// sign, or an expired one, fails the handshake; one that shows none goes on
    /// without (an export's `xprtsec` decides what it may use).
    pub client_ca: Option<PathBuf>,
}

/// Why the TLS files could not be used; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS certificate {path}: {why}")]
    Cert { path: PathBuf, why: String },
    #[error("TLS key {path}: {why}")]
    Key { path: PathBuf, why: String },
    #[error("TLS client CA {path}: {why}")]
    ClientCa { path: PathBuf, why: String },
    #[error("TLS certificate and key {cert} / {key}: {why}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        why: String,
    },
}

/// The server's TLS configuration, shared by all workers and replaced whole by
/// [`TlsAcceptor::reload`] (connections keep the configuration they started with).
pub struct TlsAcceptor {
    files: TlsFiles,
    config: ArcSwap<ServerConfig>,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("files", &self.files)
            .finish()
    }
}

impl TlsAcceptor {
    /// Read the files and make the configuration.
    pub fn load(files: TlsFiles) -> Result<Arc<TlsAcceptor>, TlsError> {
        let config = server_config(&files)?;
        Ok(Arc::new(TlsAcceptor {
            files,
            config: ArcSwap::from_pointee(config),
        }))
    }

    /// Read the files again (a renewed certificate): new handshakes use them. On an
    /// error the configuration in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.files)?;
        self.config.store(Arc::new(config));
        Ok(())
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Whether clients are asked for certificates (a client CA is configured).
    pub fn verifies_clients(&self) -> bool {
        self.files.client_ca.is_some()
    }

    fn session(&self) -> Result<ServerConnection, rustls::Error> {
        let mut s = ServerConnection::new(self.config.load_full())?;
        // Plaintext is taken out and ciphertext written out at once after each step;
        // the bound on what waits is the connection's output bound, not rustls's.
        s.set_buffer_limit(None);
        Ok(s)
    }
}

/// ring's TLS 1.3 suites and key exchanges. rustls marks it deprecated for lacking the
/// post-quantum hybrid key exchange (X25519MLKEM768), which only its aws-lc-rs provider
/// has; clients then agree on X25519. aws-lc-rs is a much larger C build, and
/// RFC 9289 asks for no more than TLS 1.3's mandatory suites.
///
/// AES-128-GCM first: the cheapest of TLS 1.3's mandatory suites per byte with AES-NI
/// (the server chooses it over the client's order, `ignore_client_order`), then
/// AES-256-GCM and ChaCha20-Poly1305 for clients that offer only those.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::ring::cipher_suite::{
        TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384, TLS13_CHACHA20_POLY1305_SHA256,
    };
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites = vec![
        TLS13_AES_128_GCM_SHA256,
        TLS13_AES_256_GCM_SHA384,
        TLS13_CHACHA20_POLY1305_SHA256,
    ];
    Arc::new(p)
}

fn server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let cert_err = |why: String| TlsError::Cert {
        path: files.cert.clone(),
        why,
    };
    let certs = read_certs(&files.cert).map_err(cert_err)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::Key {
        path: files.key.clone(),
        why: pem_error(e),
    })?;
    let provider = provider();
    // RFC 9289 §5.1: TLS 1.3 or later only.
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| cert_err(e.to_string()))?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let ca_err = |why: String| TlsError::ClientCa {
                path: ca.clone(),
                why,
            };
            let mut roots = RootCertStore::empty();
            for c in read_certs(ca).map_err(ca_err)? {
                roots
                    .add(c)
                    .map_err(|e| ca_err(format!("not a usable CA certificate: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| ca_err(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config {
            cert: files.cert.clone(),
            key: files.key.clone(),
            why: e.to_string(),
        })?;
    config.alpn_protocols = vec![ALPN_SUNRPC.to_vec()];
    config.ignore_client_order = true;
    Ok(config)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if certs.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    Ok(certs)
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(e) => e.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM item of the right kind in it".into(),
        other => format!("not valid PEM ({other:?})"),
    }
}

/// What a step of the TLS layer ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TlsStep {
    /// Nothing to report (what arrived was handed on).
    Going,
    /// The peer sent close_notify: no more data comes.
    Closed,
}

/// What [`TlsConn::received`] hands on, in order.
pub(crate) enum TlsEvent<'a> {
    /// The handshake just finished; `mutual`: with a verified client certificate. Comes
    /// before any plaintext.
    Established { mutual: bool },
    /// Decrypted bytes of the record stream.
    Plaintext(&'a [u8]),
}

/// Why the TLS layer failed the connection (counted and logged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TlsFailure {
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
    #[error("the client negotiated an ALPN protocol other than \"sunrpc\" (RFC 9289 §5.1)")]
    OtherAlpn,
    #[error("TLS failed: {0}")]
    Record(String),
}

/// TLS on one connection.
pub(crate) struct TlsConn {
    session: ServerConnection,
    /// What goes on the socket: first what was queued before TLS began (the probe's
    /// reply, in plain text), then TLS records.
    pub wire: OutQueue,
    /// While the handshake runs: when it must have finished.
    deadline: Option<Instant>,
    /// The connection is closing: close_notify goes out once the replies queued so far
    /// are sealed.
    closing: bool,
    /// close_notify was sealed: replies made after it (a file operation that finished
    /// late) are dropped, as they would be on a plain connection that closed.
    notified: bool,
}

impl TlsConn {
    /// Start TLS on a connection whose output so far, `wire`, is still sent as it is.
    pub fn start(acceptor: &TlsAcceptor, wire: OutQueue, now: Instant) -> io::Result<TlsConn> {
        let session = acceptor.session().map_err(io::Error::other)?;
        Ok(TlsConn {
            session,
            wire,
            deadline: Some(now + HANDSHAKE_TIMEOUT),
            closing: false,
            notified: false,
        })
    }

    /// The handshake ran past its deadline.
    pub fn overdue(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| d <= now)
    }

    /// Ciphertext arrived: decrypt what it completes and hand the plaintext to `on`
    /// (the end of the handshake first). On an error rustls queues an alert, which the
    /// next [`seal`](Self::seal) sends.
    pub fn received(
        &mut self,
        mut data: &[u8],
        mut on: impl FnMut(TlsEvent<'_>),
    ) -> Result<TlsStep, TlsFailure> {
        use std::io::BufRead;
        while !data.is_empty() {
            let n = self
                .session
                .read_tls(&mut data)
                .map_err(|e| self.failure(e.to_string()))?;
            let state = self
                .session
                .process_new_packets()
                .map_err(|e| self.failure(e.to_string()))?;
            if self.deadline.is_some() && !self.session.is_handshaking() {
                self.deadline = None;
                // RFC 9289 §5.1 has clients offer ALPN "sunrpc", but Linux's tlshd (1.0)
                // offers no ALPN at all: a client without ALPN is taken. One that offers
                // others only fails in the handshake (rustls: no_application_protocol).
                if let Some(p) = self.session.alpn_protocol()
                    && p != ALPN_SUNRPC
                {
                    self.session.send_close_notify();
                    self.notified = true;
                    return Err(TlsFailure::OtherAlpn);
                }
                on(TlsEvent::Established {
                    mutual: self
                        .session
                        .peer_certificates()
                        .is_some_and(|c| !c.is_empty()),
                });
            }
            // The plaintext straight from rustls's buffer (no copy of ours).
            let mut left = state.plaintext_bytes_to_read();
            while left > 0 {
                let mut reader = self.session.reader();
                // Plaintext only comes after the handshake: a failure here is a record's.
                let chunk = reader
                    .fill_buf()
                    .map_err(|e| TlsFailure::Record(e.to_string()))?;
                let len = chunk.len().min(left);
                if len == 0 {
                    break;
                }
                on(TlsEvent::Plaintext(&chunk[..len]));
                reader.consume(len);
                left -= len;
            }
            if state.peer_has_closed() {
                return Ok(TlsStep::Closed);
            }
            if n == 0 {
                break;
            }
        }
        Ok(TlsStep::Going)
    }

    fn failure(&self, why: String) -> TlsFailure {
        if self.deadline.is_some() {
            TlsFailure::Handshake(why)
        } else {
            TlsFailure::Record(why)
        }
    }

    /// Encrypt the replies queued in `out` into TLS records on the wire queue, with
    /// whatever else TLS has to send (handshake messages, a key update's answer, an
    /// alert, close_notify).
    pub fn seal(&mut self, out: &mut OutQueue) -> io::Result<()> {
        while let Some(plain) = out.start() {
            let n = plain.len();
            if !self.notified {
                // Before the handshake finished rustls keeps the plaintext until it has.
                self.session.writer().write_all(plain)?;
            }
            out.sent(n);
        }
        if self.closing && !self.notified {
            self.session.send_close_notify();
            self.notified = true;
        }
        while self.session.wants_write() {
            self.wire.append_raw(|buf| self.session.write_tls(buf))?;
        }
        Ok(())
    }

    /// Say close_notify after the replies queued so far (a connection this side closes).
    pub fn close_notify(&mut self) {
        self.closing = true;
    }
}
