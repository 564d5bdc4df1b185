//! The client's RPCSEC_GSS (`src/gss.rs`) against a fake server thread of this process that speaks RFC 2203 with
//! MIT's acceptor and the test KDC's service keytab: it makes contexts, checks every
//! call's verifier, sequence number and protected arguments, and answers with
//! protected results; NFSv4 COMPOUNDs go to the mock server's COMPOUND (so
//! `Client::connect` sets a session up through it) or are echoed. The client's tickets
//! are alice's, from the test KDC (`ringnfs_testkit::kdc`). A binary of its own: every
//! test in it starts with `Kdc::shared()`, which sets the KDC's variables in the
//! environment before any thread of the binary reaches MIT's library.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ringnfs_client::mock::{MOCK_FH, MockState, callback_call, compound as mock_compound};
use ringnfs_client::{Client, ClientError, ClientGss, ClientOptions, GssService, Op, RpcConn};
use ringnfs_gss::{AcceptState, AcceptStep, Acceptor, Gss, SecContext, status};
use ringnfs_proto::nfs4::consts::{NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND, PROC_NULL};
use ringnfs_proto::rpc::auth::{AUTH_NONE, AUTH_TLS, RPCSEC_GSS, STARTTLS_VERIFIER};
use ringnfs_proto::rpc::gss::{
    GssCred, GssInitRes, GssProc, IntegData, MAXSEQ, RPCSEC_GSS_CREDPROBLEM, RPCSEC_GSS_CTXPROBLEM,
    SeqCheck, SeqWindow, decode_init_arg, split_seq,
};
use ringnfs_proto::rpc::message::{encode_accepted_verf, encode_rejected_auth};
use ringnfs_proto::rpc::record::mark;
use ringnfs_proto::rpc::{AcceptStat, CallHeader, Credential, RpcMessage, decode_message};
use ringnfs_proto::xdr::{XdrDecoder, XdrEncoder};
use ringnfs_testkit::kdc::{self, Kdc, KdcError};

/// The largest protected body the fake server takes.
const MAX_RECORD: usize = 4 << 20;
/// The sequence window the fake server grants.
const WINDOW: u32 = 64;
/// Bytes every echoed payload starts with: seen in the records of krb5 and krb5i,
/// never in krb5p's.
const MARKER: &[u8] = b"ringnfs-plaintext-marker";
const SERVICES: [GssService; 3] = [GssService::None, GssService::Integrity, GssService::Privacy];

/// The KDC (its variables set in this process) and alice's tickets, or None after a
/// visible skip.
fn setup(test: &str) -> Option<(&'static Kdc, kdc::Ccache)> {
    let kdc = match Kdc::shared() {
        Ok(kdc) => kdc,
        Err(e @ KdcError::Missing { .. }) => {
            ringnfs_testkit::skip(test, &e.to_string());
            return None;
        }
        Err(e) => panic!("starting the test KDC: {e}"),
    };
    let cc = kdc.kinit("alice", None).unwrap_or_else(|e| panic!("{e}"));
    Some((kdc, cc))
}

fn opts(service: GssService, cc: &kdc::Ccache) -> ClientGss {
    ClientGss::new(service, "nfs@localhost").with_ccache(cc.name())
}

/// What the fake server does besides answering correctly.
#[derive(Clone, Default)]
struct Script {
    /// Answer every RPCSEC_GSS call with AUTH_ERROR and this auth_stat (a server
    /// without RPCSEC_GSS).
    refuse: Option<u32>,
    /// Change the protection of the results of the DATA call with this sequence
    /// number: the checksum (krb5i), the wrap token (krb5p), the verifier (krb5).
    tamper_seq: Option<u32>,
    /// Answer this many DATA calls with RPCSEC_GSS_CTXPROBLEM, forgetting the context.
    ctxproblem: usize,
    /// COMPOUNDs go to the mock server (else they are echoed).
    mock: bool,
    /// RPC-with-TLS: answer the AUTH_TLS probe, then everything inside TLS.
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// What the fake server saw.
#[derive(Default)]
struct Log {
    /// INIT calls.
    inits: AtomicUsize,
    /// Contexts established.
    contexts: AtomicUsize,
    /// Initiators of the contexts.
    principals: Mutex<Vec<String>>,
    /// DATA calls accepted: (service, sequence number, procedure).
    data: Mutex<Vec<(GssService, u32, u32)>>,
    destroyed: AtomicUsize,
    /// Records whose bytes contain [`MARKER`].
    plaintext: AtomicUsize,
    /// Anything the client did wrong; a test asserts it stays empty.
    problems: Mutex<Vec<String>>,
    /// Replies to callbacks.
    callback_replies: AtomicUsize,
}

impl Log {
    fn problem(&self, text: String) {
        self.problems.lock().push(text);
    }

    fn assert_clean(&self) {
        let p = self.problems.lock();
        assert!(p.is_empty(), "the fake server found: {p:#?}");
    }
}

struct FakeServer {
    addr: SocketAddr,
    log: Arc<Log>,
    mock: Arc<MockState>,
}

impl FakeServer {
    fn start(kdc: &Kdc, script: Script) -> FakeServer {
        let gss = Gss::load().unwrap_or_else(|e| panic!("{e}"));
        let acceptor = Arc::new(Acceptor::new(&gss, Some(&kdc.service_keytab())).unwrap());
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let log = Arc::new(Log::default());
        let mock = Arc::new(MockState::new());
        let (lg, mk) = (log.clone(), mock.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { return };
                let conn = ServerConn {
                    acceptor: acceptor.clone(),
                    script: script.clone(),
                    log: lg.clone(),
                    mock: mk.clone(),
                    accepting: HashMap::new(),
                    contexts: HashMap::new(),
                };
                std::thread::spawn(move || conn.serve(s));
            }
        });
        FakeServer { addr, log, mock }
    }
}

/// A byte stream: the socket, or TLS over it.
trait Wire: Read + Write {}
impl<T: Read + Write> Wire for T {}

fn read_record(s: &mut dyn Wire) -> Option<Vec<u8>> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).ok()?;
    let len = (u32::from_be_bytes(h) & 0x7fff_ffff) as usize;
    let mut v = vec![0; len];
    s.read_exact(&mut v).ok()?;
    Some(v)
}

fn write_record(s: &mut dyn Wire, rec: &[u8]) {
    let mut out = mark(rec.len()).to_vec();
    out.extend_from_slice(rec);
    let _ = s.write_all(&out);
    let _ = s.flush();
}

struct ServerContext {
    sec: SecContext,
    window: SeqWindow,
}

/// One connection of the fake server.
struct ServerConn {
    acceptor: Arc<Acceptor>,
    script: Script,
    log: Arc<Log>,
    mock: Arc<MockState>,
    accepting: HashMap<Vec<u8>, AcceptState>,
    contexts: HashMap<Vec<u8>, ServerContext>,
}

impl ServerConn {
    fn serve(self, mut s: TcpStream) {
        let Some(tls) = self.script.tls.clone() else {
            return self.serve_on(&mut s);
        };
        // The AUTH_TLS probe, answered "STARTTLS"; then the handshake and the records.
        let Some(probe) = read_record(&mut s) else {
            return;
        };
        match decode_message(&probe) {
            Ok(RpcMessage::Call(c)) if c.cred_flavor == AUTH_TLS => {
                let mut out = Vec::new();
                encode_accepted_verf(
                    &mut out,
                    c.xid,
                    AUTH_NONE,
                    STARTTLS_VERIFIER,
                    AcceptStat::Success,
                );
                write_record(&mut s, &out);
            }
            _ => {
                self.log.problem("no AUTH_TLS probe first".into());
                return;
            }
        }
        let session = rustls::ServerConnection::new(tls).unwrap();
        self.serve_on(&mut rustls::StreamOwned::new(session, s));
    }

    fn serve_on(mut self, s: &mut dyn Wire) {
        while let Some(rec) = read_record(s) {
            if rec.windows(MARKER.len()).any(|w| w == MARKER) {
                self.log.plaintext.fetch_add(1, Ordering::Relaxed);
            }
            let c = match decode_message(&rec) {
                Ok(RpcMessage::Call(c)) => c,
                Ok(RpcMessage::Reply(_)) => {
                    self.log.callback_replies.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Err(e) => {
                    self.log.problem(format!("undecodable record: {e}"));
                    return;
                }
            };
            let mut out = Vec::new();
            let callback = self.answer(&c, &mut out);
            if !out.is_empty() {
                write_record(s, &out);
            }
            if callback {
                write_record(s, &callback_call());
            }
        }
    }

    /// The reply to `c` in `out` (nothing: dropped); true to send a callback after it.
    fn answer(&mut self, c: &CallHeader<'_>, out: &mut Vec<u8>) -> bool {
        if c.cred_flavor != RPCSEC_GSS {
            self.log
                .problem(format!("a call with credential flavor {}", c.cred_flavor));
            encode_rejected_auth(out, c.xid, 5);
            return false;
        }
        if let Some(stat) = self.script.refuse {
            encode_rejected_auth(out, c.xid, stat);
            return false;
        }
        let cred = match GssCred::decode(c.cred_body) {
            Ok(cred) => cred,
            Err(e) => {
                self.log
                    .problem(format!("a credential that does not decode: {e}"));
                encode_rejected_auth(out, c.xid, 1);
                return false;
            }
        };
        match cred.proc_ {
            GssProc::Init | GssProc::ContinueInit => {
                self.init(c, cred, out);
                false
            }
            GssProc::Data | GssProc::Destroy => self.data(c, cred, out),
        }
    }

    fn init(&mut self, c: &CallHeader<'_>, cred: GssCred, out: &mut Vec<u8>) {
        if (c.prog, c.vers, c.proc_) != (NFS4_PROGRAM, NFS4_VERSION, PROC_NULL)
            || c.verf_flavor != AUTH_NONE
            || cred.seq_num != 0
        {
            self.log.problem(format!(
                "context creation as procedure {} with verifier flavor {} and sequence \
                 number {}",
                c.proc_, c.verf_flavor, cred.seq_num
            ));
        }
        let handle = if cred.proc_ == GssProc::Init {
            let n = self.log.inits.fetch_add(1, Ordering::Relaxed);
            if !cred.handle.is_empty() {
                self.log.problem("INIT with a handle".into());
            }
            let h = format!("context-{n}").into_bytes();
            self.accepting.insert(h.clone(), AcceptState::new());
            h
        } else {
            cred.handle.clone()
        };
        let token = decode_init_arg(c.args).expect("rpc_gss_init_arg");
        let Some(state) = self.accepting.get_mut(&handle) else {
            self.log
                .problem("CONTINUE_INIT of no context being made".into());
            encode_rejected_auth(out, c.xid, RPCSEC_GSS_CREDPROBLEM);
            return;
        };
        let (res, verf) = match self.acceptor.step(state, token) {
            Ok(AcceptStep::Continue { token }) => (
                GssInitRes {
                    handle,
                    major: status::CONTINUE_NEEDED,
                    minor: 0,
                    seq_window: 0,
                    token,
                },
                None,
            ),
            Ok(AcceptStep::Complete {
                context,
                token,
                initiator,
            }) => {
                self.accepting.remove(&handle);
                self.log.principals.lock().push(initiator);
                self.log.contexts.fetch_add(1, Ordering::Relaxed);
                let verf = context.get_mic(&WINDOW.to_be_bytes()).unwrap();
                self.contexts.insert(
                    handle.clone(),
                    ServerContext {
                        sec: context,
                        window: SeqWindow::new(WINDOW),
                    },
                );
                (
                    GssInitRes {
                        handle,
                        major: status::COMPLETE,
                        minor: 0,
                        seq_window: WINDOW,
                        token: token.unwrap_or_default(),
                    },
                    Some(verf),
                )
            }
            Err(e) => {
                self.accepting.remove(&handle);
                (
                    GssInitRes {
                        handle: Vec::new(),
                        major: e.error.major().unwrap_or(status::FAILURE),
                        minor: e.error.minor().unwrap_or(0),
                        seq_window: 0,
                        token: e.token.unwrap_or_default(),
                    },
                    None,
                )
            }
        };
        match verf {
            Some(v) => encode_accepted_verf(out, c.xid, RPCSEC_GSS, &v, AcceptStat::Success),
            None => encode_accepted_verf(out, c.xid, AUTH_NONE, &[], AcceptStat::Success),
        }
        res.encode(out);
    }

    fn data(&mut self, c: &CallHeader<'_>, cred: GssCred, out: &mut Vec<u8>) -> bool {
        let Some(ctx) = self.contexts.get_mut(&cred.handle) else {
            encode_rejected_auth(out, c.xid, RPCSEC_GSS_CREDPROBLEM);
            return false;
        };
        if c.verf_flavor != RPCSEC_GSS {
            self.log
                .problem(format!("a call verifier of flavor {}", c.verf_flavor));
        } else if let Err(e) = ctx.sec.verify_mic(c.header, c.verf) {
            self.log.problem(format!("the call verifier: {e}"));
            encode_rejected_auth(out, c.xid, RPCSEC_GSS_CREDPROBLEM);
            return false;
        }
        let seq = cred.seq_num;
        match ctx.window.check(seq) {
            SeqCheck::Fresh => {}
            other => {
                self.log
                    .problem(format!("sequence number {seq}: {other:?}"));
                return false;
            }
        }
        if cred.proc_ == GssProc::Destroy {
            if !c.args.is_empty() || c.proc_ != PROC_NULL {
                self.log.problem("DESTROY with arguments".into());
            }
            self.log.destroyed.fetch_add(1, Ordering::Relaxed);
            let verf = ctx.sec.get_mic(&seq.to_be_bytes()).unwrap();
            encode_accepted_verf(out, c.xid, RPCSEC_GSS, &verf, AcceptStat::Success);
            self.contexts.remove(&cred.handle);
            return false;
        }
        if self.script.ctxproblem > 0 {
            self.script.ctxproblem -= 1;
            self.contexts.remove(&cred.handle);
            encode_rejected_auth(out, c.xid, RPCSEC_GSS_CTXPROBLEM);
            return false;
        }
        let args = match cred.service {
            GssService::None => c.args.to_vec(),
            GssService::Integrity => {
                let integ = IntegData::decode(c.args, MAX_RECORD).expect("rpc_gss_integ_data");
                if let Err(e) = ctx.sec.verify_mic(integ.body, integ.checksum) {
                    self.log.problem(format!("the arguments' checksum: {e}"));
                }
                split_seq(integ.body, seq)
                    .expect("the arguments' sequence number")
                    .to_vec()
            }
            GssService::Privacy => {
                let token = XdrDecoder::new(c.args)
                    .opaque(MAX_RECORD)
                    .expect("rpc_gss_priv_data");
                let u = ctx.sec.unwrap(token).expect("unwrapping the arguments");
                if !u.confidential {
                    self.log.problem("krb5p arguments not encrypted".into());
                }
                split_seq(&u.message, seq)
                    .expect("the arguments' sequence number")
                    .to_vec()
            }
        };
        self.log.data.lock().push((cred.service, seq, c.proc_));
        let (results, callback) = match c.proc_ {
            PROC_NULL => {
                if !args.is_empty() {
                    self.log.problem("NULL with arguments".into());
                }
                (Vec::new(), false)
            }
            PROC_COMPOUND if self.script.mock => match mock_compound(&self.mock, &args) {
                Ok(Some((res, cb))) => (res, cb),
                _ => panic!("the mock's COMPOUND failed"),
            },
            _ => (args, false),
        };
        let tamper = self.script.tamper_seq == Some(seq);
        let mut verf = ctx.sec.get_mic(&seq.to_be_bytes()).unwrap();
        let mut body = Vec::new();
        match cred.service {
            GssService::None => {
                if tamper {
                    let last = verf.len() - 1;
                    verf[last] ^= 1;
                }
                body = results;
            }
            GssService::Integrity => {
                let mut databody = seq.to_be_bytes().to_vec();
                databody.extend_from_slice(&results);
                let mut mic = ctx.sec.get_mic(&databody).unwrap();
                if tamper {
                    let last = mic.len() - 1;
                    mic[last] ^= 1;
                }
                IntegData::encode(&databody, &mic, &mut body);
            }
            GssService::Privacy => {
                let mut databody = seq.to_be_bytes().to_vec();
                databody.extend_from_slice(&results);
                let mut token = ctx.sec.wrap(&databody, true).unwrap();
                if tamper {
                    let at = token.len() / 2;
                    token[at] ^= 1;
                }
                body.put_opaque(&token);
            }
        }
        encode_accepted_verf(out, c.xid, RPCSEC_GSS, &verf, AcceptStat::Success);
        out.extend_from_slice(&body);
        callback
    }
}

/// A payload shaped like COMPOUND4args (tag, minor version, operations), `len` bytes
/// (not always a multiple of four: the padding of databody_integ is exercised).
fn payload(len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(len);
    p.put_opaque(MARKER);
    p.put_u32(1);
    while p.len() < len {
        p.push((p.len() % 251) as u8);
    }
    p.truncate(len.max(MARKER.len() + 8));
    p
}

fn connect(addr: SocketAddr, gss: &ClientGss) -> Result<RpcConn, ClientError> {
    let mut conn = RpcConn::connect(addr, Credential::None)?;
    conn.start_gss(gss)?;
    Ok(conn)
}

/// The text of an error, checked to be words (no Rust debug tuples).
fn words(e: &ClientError) -> String {
    let text = e.to_string();
    for debug in ["AuthError(", "Status {", "Some(", "Accepted("] {
        assert!(!text.contains(debug), "{text}");
    }
    text
}

#[test]
fn null_and_payloads_round_trip_under_krb5_krb5i_and_krb5p() {
    let Some((kdc, cc)) = setup("null_and_payloads_round_trip_under_krb5_krb5i_and_krb5p") else {
        return;
    };
    for service in SERVICES {
        let srv = FakeServer::start(kdc, Script::default());
        let conn = Arc::new(connect(srv.addr, &opts(service, &cc)).unwrap());
        assert_eq!(conn.gss().unwrap().service, service);
        conn.null().unwrap();
        conn.null().unwrap();
        for len in [MARKER.len() + 8, 1001, 64 * 1024 + 2, 1 << 20] {
            let p = payload(len);
            let r = conn
                .call(NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND, &p)
                .unwrap();
            assert!(r.data == p, "{service:?}: {len} bytes came back changed");
        }
        // Concurrent callers: each number once, all inside the window.
        let threads: Vec<_> = (0..6u32)
            .map(|t| {
                let c = conn.clone();
                std::thread::spawn(move || {
                    for i in 0..8u32 {
                        let mut p = payload(100 + 4 * (t * 8 + i) as usize);
                        p.extend_from_slice(&[t as u8, i as u8, 0, 0]);
                        let r = c.call(NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND, &p);
                        assert_eq!(r.unwrap().data, p);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(conn);
        let log = &srv.log;
        log.assert_clean();
        assert_eq!(log.contexts.load(Ordering::Relaxed), 1);
        assert_eq!(
            *log.principals.lock(),
            vec![format!("alice@{}", kdc::REALM)]
        );
        let data = log.data.lock().clone();
        let calls = 2 + 4 + 6 * 8;
        assert_eq!(data.len(), calls, "{service:?}");
        let mut seqs: Vec<u32> = data.iter().map(|d| d.1).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=calls as u32).collect::<Vec<_>>(), "{service:?}");
        assert!(data.iter().all(|d| d.0 == service));
        assert_eq!(data[0].2, PROC_NULL);
        assert_eq!(log.destroyed.load(Ordering::Relaxed), 1, "DESTROY on drop");
        let plaintext = log.plaintext.load(Ordering::Relaxed);
        match service {
            GssService::Privacy => assert_eq!(plaintext, 0, "krb5p sent plaintext"),
            _ => assert_eq!(plaintext, 4 + 6 * 8, "{service:?}"),
        }
    }
}

#[test]
fn client_connect_sets_up_a_session_through_each_service() {
    let Some((kdc, cc)) = setup("client_connect_sets_up_a_session_through_each_service") else {
        return;
    };
    for service in SERVICES {
        let srv = FakeServer::start(
            kdc,
            Script {
                mock: true,
                ..Script::default()
            },
        );
        srv.mock
            .callback_after_create
            .store(true, Ordering::Relaxed);
        let (ids, session) = Client::connect(
            &[srv.addr],
            ClientOptions {
                gss: Some(opts(service, &cc)),
                connections: 2,
                ..ClientOptions::default()
            },
        )
        .unwrap();
        // On each connection (the second one's context is used for the first time).
        for c in [0, 1] {
            let r = session.call(c, &[Op::PutRootFh, Op::GetFh], false).unwrap();
            assert_eq!(r.getfh().unwrap(), MOCK_FH);
        }
        // The callback after CREATE_SESSION (AUTH_NONE, not RPCSEC_GSS) was answered.
        let callbacks = ids.callbacks.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while srv.log.callback_replies.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            callbacks.op_count(ringnfs_proto::nfs4::consts::cb_op::CB_SEQUENCE),
            1
        );
        assert_eq!(srv.log.callback_replies.load(Ordering::Relaxed), 1);
        drop(session);
        let log = &srv.log;
        log.assert_clean();
        assert_eq!(
            log.contexts.load(Ordering::Relaxed),
            2,
            "one per connection"
        );
        assert_eq!(log.destroyed.load(Ordering::Relaxed), 2);
        // EXCHANGE_ID, CREATE_SESSION, RECLAIM_COMPLETE, two of PUTROOTFH and GETFH.
        assert_eq!(log.data.lock().len(), 5, "{service:?}");
        assert_eq!(srv.mock.executed.load(Ordering::Relaxed), 3);
    }
}

#[test]
fn a_changed_reply_is_refused_and_the_connection_goes_on() {
    let Some((kdc, cc)) = setup("a_changed_reply_is_refused_and_the_connection_goes_on") else {
        return;
    };
    for service in SERVICES {
        let srv = FakeServer::start(
            kdc,
            Script {
                tamper_seq: Some(2),
                ..Script::default()
            },
        );
        let conn = connect(srv.addr, &opts(service, &cc)).unwrap();
        let p = payload(300);
        conn.call(NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND, &p)
            .unwrap();
        let e = conn
            .call(NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND, &p)
            .unwrap_err();
        let text = words(&e);
        assert!(matches!(e, ClientError::Gss(_)), "{e:?}");
        let what = match service {
            GssService::None => "the reply's verifier",
            GssService::Integrity => "the reply's integrity checksum does not verify",
            GssService::Privacy => "the reply's encrypted results do not unwrap",
        };
        assert!(text.starts_with("RPCSEC_GSS: "), "{text}");
        assert!(text.contains(what), "{service:?}: {text}");
        assert!(text.contains("gss_"), "the library's words too: {text}");
        let r = conn
            .call(NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND, &p)
            .unwrap();
        assert_eq!(r.data, p);
        drop(conn);
        srv.log.assert_clean();
    }
}

#[test]
fn a_server_without_rpcsec_gss_is_named_in_words() {
    let Some((kdc, cc)) = setup("a_server_without_rpcsec_gss_is_named_in_words") else {
        return;
    };
    for (stat, name) in [(5, "AUTH_TOOWEAK"), (1, "AUTH_BADCRED")] {
        let srv = FakeServer::start(
            kdc,
            Script {
                refuse: Some(stat),
                ..Script::default()
            },
        );
        let e = connect(srv.addr, &opts(GssService::Integrity, &cc)).unwrap_err();
        let text = words(&e);
        assert!(matches!(e, ClientError::Gss(_)), "{e:?}");
        assert!(text.contains("does not accept RPCSEC_GSS"), "{text}");
        assert!(text.contains(name), "{text}");
        assert!(text.contains(&srv.addr.to_string()), "{text}");
        // The same through Client::connect.
        let e = Client::connect(
            &[srv.addr],
            ClientOptions {
                gss: Some(opts(GssService::Privacy, &cc)),
                ..ClientOptions::default()
            },
        )
        .unwrap_err();
        assert!(words(&e).contains(name), "{e}");
    }
}

#[test]
fn a_service_the_server_has_no_key_for_is_refused_in_words() {
    let Some((kdc, cc)) = setup("a_service_the_server_has_no_key_for_is_refused_in_words") else {
        return;
    };
    let srv = FakeServer::start(kdc, Script::default());
    let gss = ClientGss::new(GssService::None, "nfs@otherhost").with_ccache(cc.name());
    let e = connect(srv.addr, &gss).unwrap_err();
    let text = words(&e);
    assert!(matches!(e, ClientError::Gss(_)), "{e:?}");
    assert!(
        text.contains("refused the krb5 context for nfs@otherhost"),
        "{text}"
    );
    assert!(text.contains("GSS major status 0x"), "{text}");
    // A ccache that does not exist: the client's library says so before any call.
    let gss = ClientGss::new(GssService::None, "nfs@localhost")
        .with_ccache(format!("FILE:{}/no-such-ccache", kdc.dir().display()));
    let e = connect(srv.addr, &gss).unwrap_err();
    let text = words(&e);
    assert!(
        text.contains("making a krb5 context with nfs@localhost"),
        "{text}"
    );
    assert!(text.contains("kinit"), "{text}");
    assert_eq!(
        srv.log.inits.load(Ordering::Relaxed),
        1,
        "no INIT without tickets"
    );
}

#[test]
fn a_refused_context_is_replaced_once() {
    let Some((kdc, cc)) = setup("a_refused_context_is_replaced_once") else {
        return;
    };
    // CTXPROBLEM once: a new context carries the call.
    let srv = FakeServer::start(
        kdc,
        Script {
            ctxproblem: 1,
            ..Script::default()
        },
    );
    let conn = connect(srv.addr, &opts(GssService::Integrity, &cc)).unwrap();
    let p = payload(500);
    let r = conn
        .call(NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND, &p)
        .unwrap();
    assert_eq!(r.data, p);
    assert_eq!(srv.log.contexts.load(Ordering::Relaxed), 2);
    assert_eq!(
        srv.log.data.lock().clone(),
        vec![(GssService::Integrity, 1, 1)]
    );
    drop(conn);
    srv.log.assert_clean();

    // CTXPROBLEM always: one retry, then a clear error; the call was never executed.
    let srv = FakeServer::start(
        kdc,
        Script {
            ctxproblem: usize::MAX,
            ..Script::default()
        },
    );
    let conn = connect(srv.addr, &opts(GssService::None, &cc)).unwrap();
    let e = conn.null().unwrap_err();
    let text = words(&e);
    assert!(matches!(e, ClientError::GssContext(_)), "{e:?}");
    assert_eq!(text.matches("RPCSEC_GSS_CTXPROBLEM").count(), 2, "{text}");
    assert_eq!(srv.log.contexts.load(Ordering::Relaxed), 2);
    assert!(srv.log.data.lock().is_empty());
}

#[test]
fn a_used_up_context_is_replaced_before_the_call_goes_out() {
    let Some((kdc, cc)) = setup("a_used_up_context_is_replaced_before_the_call_goes_out") else {
        return;
    };
    let srv = FakeServer::start(kdc, Script::default());
    let conn = connect(srv.addr, &opts(GssService::Privacy, &cc)).unwrap();
    conn.gss_set_next_seq(MAXSEQ - 1);
    conn.null().unwrap();
    assert_eq!(srv.log.contexts.load(Ordering::Relaxed), 1);
    conn.null().unwrap();
    assert_eq!(srv.log.contexts.load(Ordering::Relaxed), 2);
    let seqs: Vec<u32> = srv.log.data.lock().iter().map(|d| d.1).collect();
    assert_eq!(seqs, vec![MAXSEQ - 1, 1]);
    drop(conn);
    srv.log.assert_clean();
}

/// A TLS server configuration (TLS 1.3, ALPN "sunrpc") with a certificate for
/// localhost from a new CA in `dir`, and the client's side trusting that CA.
fn tls_pair(dir: &std::path::Path) -> (Arc<rustls::ServerConfig>, ringnfs_client::ClientTls) {
    use ringnfs_testkit::pki::{Role, TestCa};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let ca = TestCa::new(dir, "gss");
    let files = ca.issue("server", &["localhost"], Role::Server, false);
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&files.key).unwrap();
    #[allow(deprecated)] // as the client's side (ringnfs_client::tls)
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"sunrpc".to_vec()];
    let client = ringnfs_client::ClientTls::new(&ca.cert, "localhost", None).unwrap();
    (Arc::new(config), client)
}

#[test]
fn krb5p_runs_inside_tls() {
    let Some((kdc, cc)) = setup("krb5p_runs_inside_tls") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("ringnfs-client-gss-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (server_tls, client_tls) = tls_pair(&dir);
    for service in [GssService::Integrity, GssService::Privacy] {
        let srv = FakeServer::start(
            kdc,
            Script {
                mock: true,
                tls: Some(server_tls.clone()),
                ..Script::default()
            },
        );
        srv.mock
            .callback_after_create
            .store(true, Ordering::Relaxed);
        let (ids, session) = Client::connect(
            &[srv.addr],
            ClientOptions {
                gss: Some(opts(service, &cc)),
                tls: Some(client_tls.clone()),
                ..ClientOptions::default()
            },
        )
        .unwrap();
        let r = session.call(0, &[Op::PutRootFh, Op::GetFh], false).unwrap();
        assert_eq!(r.getfh().unwrap(), MOCK_FH);
        let deadline = Instant::now() + Duration::from_secs(10);
        while srv.log.callback_replies.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let callbacks = ids.callbacks.unwrap();
        assert_eq!(
            callbacks.op_count(ringnfs_proto::nfs4::consts::cb_op::CB_SEQUENCE),
            1
        );
        drop(session);
        srv.log.assert_clean();
        assert_eq!(srv.log.contexts.load(Ordering::Relaxed), 1);
        assert_eq!(srv.log.destroyed.load(Ordering::Relaxed), 1);
        assert_eq!(srv.log.data.lock().len(), 4, "{service:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_context_that_expired_with_its_ticket_is_named() {
    let Some((kdc, _)) = setup("a_context_that_expired_with_its_ticket_is_named") else {
        return;
    };
    let cc = kdc.kinit("alice", Some("3s")).unwrap();
    let srv = FakeServer::start(kdc, Script::default());
    let conn = connect(srv.addr, &opts(GssService::Integrity, &cc)).unwrap();
    conn.null().unwrap();
    let left = conn.gss_lifetime().unwrap();
    assert!(left <= Duration::from_secs(3), "{left:?}");
    std::thread::sleep(left + Duration::from_millis(200));
    // Refused before it goes out; the new context needs a ticket, which expired too.
    // (Within the clock skew MIT still makes the AP-REQ and the server accepts it, but
    // the context it makes ends at once.)
    let e = conn.null().unwrap_err();
    let text = words(&e);
    assert!(matches!(e, ClientError::GssContext(_)), "{e:?}");
    assert!(text.contains("the context expired"), "{text}");
    assert!(text.contains("making a new context failed"), "{text}");
    assert!(text.contains("kinit"), "{text}");
    assert_eq!(srv.log.data.lock().len(), 1, "the call never went out");
    srv.log.assert_clean();
}

#[test]
fn callers_that_all_find_the_context_refused_make_one_new_context() {
    let Some((kdc, cc)) = setup("callers_that_all_find_the_context_refused_make_one_new_context")
    else {
        return;
    };
    // The first DATA call is refused and the context forgotten: the calls in flight
    // with it are refused too (RPCSEC_GSS_CREDPROBLEM).
    let srv = FakeServer::start(
        kdc,
        Script {
            ctxproblem: 1,
            ..Script::default()
        },
    );
    let conn = Arc::new(connect(srv.addr, &opts(GssService::Privacy, &cc)).unwrap());
    let start = Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let (c, start) = (conn.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for i in 0..5u8 {
                    let mut p = payload(64);
                    p.extend_from_slice(&[t, i, 0, 0]);
                    let r = c.call(NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND, &p);
                    assert_eq!(r.unwrap().data, p);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(srv.log.contexts.load(Ordering::Relaxed), 2);
    assert_eq!(srv.log.data.lock().len(), 40);
    drop(conn);
    srv.log.assert_clean();
}
