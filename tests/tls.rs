//! RPC-with-TLS (RFC 9289) over real sockets: the AUTH_TLS probe, the TLS 1.3 handshake
//! with ALPN "sunrpc", 1 MiB WRITE and READ inside TLS, exports that require TLS or
//! mutual TLS (`xprtsec`), certificates the other side must refuse (another CA's, an
//! expired one), a server without TLS, clients that stall or send garbage where the
//! handshake belongs, and re-reading the certificate files.

pub mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::{TempDir, TestServer, WAIT, wait_until};
use ringnfs::client::ops::stable;
use ringnfs::client::{Client, ClientError, ClientOptions, ClientTls, Files};
use ringnfs::control::exports::ExportSpec;
use ringnfs::nfs4::consts::status;
use ringnfs::rpc::record::mark;
use ringnfs::rpc::{AuthSys, Credential};
use ringnfs::server::ServerConfig;
use ringnfs::transport::HANDSHAKE_TIMEOUT;
use ringnfs_testkit::pki::{CertFiles, Role, TestCa};

fn sys() -> Credential {
    Credential::Sys(AuthSys {
        stamp: 0,
        machine_name: b"tls-test".to_vec(),
        uid: 0,
        gid: 0,
        gids: Vec::new(),
    })
}

/// A CA, the server's certificate for 127.0.0.1 signed by it, and a place for more.
struct Pki {
    dir: TempDir,
    ca: TestCa,
    server: CertFiles,
}

impl Pki {
    fn new(tag: &str) -> Pki {
        let dir = TempDir::new(tag);
        let ca = TestCa::new(&dir.0, "main");
        let server = ca.issue("server", &["127.0.0.1", "localhost"], Role::Server, false);
        Pki { dir, ca, server }
    }

    fn path(&self) -> &Path {
        &self.dir.0
    }
}

/// One export at "/" (memory), requiring `xprtsec` (None: any transport).
fn tls_server(pki: &Pki, client_ca: bool, xprtsec: Option<&[&str]>) -> TestServer {
    TestServer::with(|c: &mut ServerConfig| {
        c.tls_cert = Some(pki.server.cert.clone());
        c.tls_key = Some(pki.server.key.clone());
        c.tls_client_ca = client_ca.then(|| pki.ca.cert.clone());
        c.exports = vec![ExportSpec {
            pseudo: "/".into(),
            backend: Some("memory".into()),
            root_squash: Some(false),
            xprtsec: xprtsec.map(|x| x.iter().map(|s| s.to_string()).collect()),
            ..ExportSpec::default()
        }];
        c.exports_given = true;
    })
}

fn connect(srv: &TestServer, tls: Option<ClientTls>) -> Result<Files, ClientError> {
    let (_, s) = Client::connect(
        &srv.addrs,
        ClientOptions {
            cred: sys(),
            tls,
            timeout: Duration::from_secs(10),
            ..ClientOptions::default()
        },
    )?;
    Ok(Files::new(s))
}

fn trusting(ca: &Path) -> ClientTls {
    ClientTls::new(ca, "127.0.0.1", None).expect("client TLS config")
}

fn tls_refusal(r: Result<Files, ClientError>) -> String {
    match r {
        Err(ClientError::Tls(why)) => why,
        Err(e) => panic!("expected a TLS refusal, got {e}"),
        Ok(_) => panic!("expected a TLS refusal, the connection worked"),
    }
}

/// 1 MiB of bytes that are not a repeating pattern.
fn payload() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Write `data` in one WRITE, read it back in one READ, through `f`.
fn round_trip(f: &Files, name: &[u8], data: &[u8]) -> Vec<u8> {
    let root = f.root_fh().unwrap();
    let (_, file) = f.create(&root, name, 0o644).unwrap();
    let (n, _) = f.write(&file, 0, data, stable::FILE_SYNC).unwrap();
    assert_eq!(n as usize, data.len());
    let (back, eof) = f.read(&file, 0, data.len() as u32).unwrap();
    assert!(eof || back.len() == data.len());
    f.close(file).unwrap();
    back
}

#[test]
fn one_mib_both_ways_inside_tls() {
    let pki = Pki::new("tls-data");
    let srv = tls_server(&pki, false, None);
    let f = connect(&srv, Some(trusting(&pki.ca.cert))).expect("TLS session");
    let data = payload();
    let back = round_trip(&f, b"big", &data);
    assert!(
        back == data,
        "the 1 MiB read back differs from what was written"
    );
    let t = srv.transport_stats();
    assert_eq!((t.tls_starts, t.tls_handshakes), (1, 1));
    assert_eq!(t.tls_handshake_failures, 0);
    // The connection says what it is (REST and `ctl` show this).
    let conns = srv.state().connections();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].xprtsec, "tls");
    // A plaintext client on the same server and export (which admits any transport).
    let plain = connect(&srv, None).expect("plain session");
    assert!(round_trip(&plain, b"plain", &data[..4096]) == data[..4096]);
}

#[test]
fn alpn_none_is_taken_and_another_protocol_refused() {
    let pki = Pki::new("tls-alpn");
    let srv = tls_server(&pki, false, None);
    // Linux's tlshd 1.0 offers no ALPN.
    let f = connect(&srv, Some(trusting(&pki.ca.cert).with_alpn(Vec::new())))
        .expect("a client without ALPN");
    assert!(round_trip(&f, b"alpn", b"none") == b"none");
    let why = tls_refusal(connect(
        &srv,
        Some(trusting(&pki.ca.cert).with_alpn(vec![b"h2".to_vec()])),
    ));
    assert!(why.to_lowercase().contains("application"), "{why}");
}

#[test]
fn tls_only_export_refuses_plain_tcp_with_wrongsec() {
    let pki = Pki::new("tls-only");
    let srv = tls_server(&pki, false, Some(&["tls"]));
    let plain = connect(&srv, None).expect("a plain session is made (no filehandle yet)");
    let e = plain.root_fh().unwrap_err();
    assert_eq!(e.nfs_status(), Some(status::NFS4ERR_WRONGSEC), "{e}");
    let tls = connect(&srv, Some(trusting(&pki.ca.cert))).expect("TLS session");
    assert!(round_trip(&tls, b"f", b"hello") == b"hello");
}

#[test]
fn mutual_tls_accepts_the_ca_s_clients_and_refuses_others() {
    let pki = Pki::new("tls-mutual");
    let srv = tls_server(&pki, true, Some(&["mtls"]));
    let good = pki
        .ca
        .issue("client", &["client.test"], Role::Client, false);
    let expired = pki
        .ca
        .issue("old-client", &["client.test"], Role::Client, true);
    let other_ca = TestCa::new(pki.path(), "other");
    let stranger = other_ca.issue("stranger", &["client.test"], Role::Client, false);
    let with_cert =
        |c: &CertFiles| ClientTls::new(&pki.ca.cert, "127.0.0.1", Some((&c.cert, &c.key))).unwrap();

    let f = connect(&srv, Some(with_cert(&good))).expect("mutual TLS session");
    assert!(round_trip(&f, b"m", b"mutual") == b"mutual");
    assert!(
        srv.state()
            .connections()
            .iter()
            .all(|c| c.xprtsec == "mtls")
    );

    // TLS without a certificate is up, but the export wants mutual TLS.
    let anon = connect(&srv, Some(trusting(&pki.ca.cert))).expect("TLS without a certificate");
    let e = anon.root_fh().unwrap_err();
    assert_eq!(e.nfs_status(), Some(status::NFS4ERR_WRONGSEC), "{e}");

    // Certificates the server must not take: the handshake fails.
    let before = srv.transport_stats().tls_handshake_failures;
    for c in [&stranger, &expired] {
        let why = tls_refusal(connect(&srv, Some(with_cert(c))));
        assert!(!why.is_empty());
    }
    assert!(
        wait_until(WAIT, || srv.transport_stats().tls_handshake_failures
            >= before + 2),
        "both refused handshakes are counted"
    );
}

#[test]
fn client_refuses_an_untrusted_or_expired_server_certificate() {
    let pki = Pki::new("tls-server-cert");
    let srv = tls_server(&pki, false, None);
    let other = TestCa::new(pki.path(), "other");
    let why = tls_refusal(connect(&srv, Some(trusting(&other.cert))));
    assert!(why.contains("certificate"), "{why}");

    let old = pki
        .ca
        .issue("expired-server", &["127.0.0.1"], Role::Server, true);
    let stale = TestServer::with(|c| {
        c.tls_cert = Some(old.cert.clone());
        c.tls_key = Some(old.key.clone());
    });
    let why = tls_refusal(connect(&stale, Some(trusting(&pki.ca.cert))));
    assert!(why.to_lowercase().contains("expired"), "{why}");
}

#[test]
fn a_server_without_tls_says_so_and_auth_tls_is_only_for_null() {
    let srv = TestServer::start();
    let dir = TempDir::new("tls-none");
    let ca = TestCa::new(&dir.0, "ca");
    let why = tls_refusal(connect(&srv, Some(trusting(&ca.cert))));
    assert!(why.contains("does not offer TLS"), "{why}");
    assert_eq!(srv.transport_stats().tls_starts, 0);

    // AUTH_TLS on COMPOUND: AUTH_ERROR / AUTH_BADCRED (1), as knfsd answers.
    let mut s = TcpStream::connect(srv.addr()).unwrap();
    s.write_all(&probe(0x51, 1)).unwrap();
    let reply = read_record(&mut s).expect("a reply");
    assert_eq!(&reply[..4], &0x51u32.to_be_bytes());
    assert_eq!(
        u32s(&reply)[1..5],
        [1, 1, 1, 1],
        "REPLY, MSG_DENIED, AUTH_ERROR, BADCRED"
    );
}

#[test]
fn a_handshake_that_stalls_or_is_garbage_is_closed_and_counted() {
    let pki = Pki::new("tls-hostile");
    let srv = tls_server(&pki, false, None);

    // Garbage where the ClientHello belongs: an alert, then the close.
    let mut s = probed(&srv);
    s.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])
        .unwrap();
    s.write_all(&[0xff; 64]).unwrap();
    assert!(closed_within(&mut s, WAIT), "garbage handshake closed");
    assert!(wait_until(WAIT, || srv
        .transport_stats()
        .tls_handshake_failures
        == 1));

    // RPC records sent before the probe's reply came back: not RFC 9289, closed.
    let mut s = TcpStream::connect(srv.addr()).unwrap();
    let mut two = probe(1, 0);
    two.extend(probe(2, 0));
    s.write_all(&two).unwrap();
    let reply = read_record(&mut s).expect("the probe is answered");
    assert_eq!(&reply[..4], &1u32.to_be_bytes());
    assert!(
        closed_within(&mut s, WAIT),
        "records after the probe closed"
    );
    assert!(wait_until(WAIT, || srv
        .transport_stats()
        .tls_handshake_failures
        == 2));

    // A client that goes quiet after the probe: closed at the handshake deadline.
    let mut s = probed(&srv);
    assert!(
        closed_within(&mut s, HANDSHAKE_TIMEOUT + WAIT),
        "stalled handshake closed"
    );
    assert!(wait_until(WAIT, || srv
        .transport_stats()
        .tls_handshake_timeouts
        == 1));
    // Nothing of that reached the NFS service, and a real client still gets in.
    let f = connect(&srv, Some(trusting(&pki.ca.cert))).expect("TLS session after all that");
    assert!(round_trip(&f, b"after", b"ok") == b"ok");
}

#[test]
fn reloaded_files_serve_new_handshakes() {
    let pki = Pki::new("tls-reload");
    let srv = tls_server(&pki, false, None);
    connect(&srv, Some(trusting(&pki.ca.cert))).expect("first certificate");
    // A renewed certificate from another CA, written over the same files.
    let next = TestCa::new(pki.path(), "next");
    let renewed = next.issue("renewed", &["127.0.0.1"], Role::Server, false);
    std::fs::copy(&renewed.cert, &pki.server.cert).unwrap();
    std::fs::copy(&renewed.key, &pki.server.key).unwrap();
    assert_eq!(srv.server().reload_tls().ok(), Some(true));
    connect(&srv, Some(trusting(&next.cert))).expect("renewed certificate");
    tls_refusal(connect(&srv, Some(trusting(&pki.ca.cert))));
    // A file that is not a key: the reload is refused and the renewed files stay.
    std::fs::write(&pki.server.key, "not a key").unwrap();
    let e = srv.server().reload_tls().unwrap_err().to_string();
    assert!(e.contains("key"), "{e}");
    connect(&srv, Some(trusting(&next.cert))).expect("still the renewed certificate");
}

// ---- raw RPC helpers ------------------------------------------------------------------

/// A record-marked call with the AUTH_TLS credential to procedure `proc_` (0 = NULL).
fn probe(xid: u32, proc_: u32) -> Vec<u8> {
    let words = [xid, 0, 2, 100003, 4, proc_, 7, 0, 0, 0];
    let body: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    let mut v = mark(body.len()).to_vec();
    v.extend(body);
    v
}

/// A connection whose AUTH_TLS probe got the STARTTLS answer.
fn probed(srv: &TestServer) -> TcpStream {
    let mut s = TcpStream::connect(srv.addr()).unwrap();
    s.write_all(&probe(7, 0)).unwrap();
    let reply = read_record(&mut s).expect("probe reply");
    assert_eq!(
        &reply[reply.len() - 16..reply.len() - 4],
        b"\0\0\0\x08STARTTLS"
    );
    s
}

fn read_record(s: &mut TcpStream) -> Option<Vec<u8>> {
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut h = [0u8; 4];
    s.read_exact(&mut h).ok()?;
    let mut v = vec![0; (u32::from_be_bytes(h) & 0x7fff_ffff) as usize];
    s.read_exact(&mut v).ok()?;
    Some(v)
}

fn u32s(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The server closes the connection (EOF or reset; what it sends first, e.g. an alert,
/// is read and dropped) within `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}
