//! Entry points of the fuzz targets (`fuzz/`, cargo-fuzz on nightly) and of the stable
//! corpus replay test (`tests/fuzz_corpus.rs`): both call these functions, so every
//! corpus file and committed crash reproducer keeps being checked by `cargo test`.
//! Not a stable API.
//!
//! Each function takes arbitrary bytes and must return normally: a panic (including a
//! failed consistency check here) or a hang is a bug.
//!
//! Session and client ids are random per server, so a fuzzer could never guess them:
//! inputs of [`compound`] and [`pipeline`] may carry [`SESSION_PLACEHOLDER`] and
//! [`CLIENTID_PLACEHOLDER`], which are replaced by the ids of a session the harness
//! creates first. Captured traffic is stored with the placeholders in place of the real
//! ids (see [`placeholders_for`]), and file handles are signed with the fixed
//! [`HANDLE_KEY`].

use std::sync::Arc;

use ringnfs_client::{CreateSessionArgs, ExchangeIdArgs, Op, StateProtect, ops::encode_compound};
use ringnfs_engine::compound::{Flow, Nfs4Engine};
use ringnfs_engine::ctx::Source;
use ringnfs_engine::export::{Export, ExportOptions};
use ringnfs_engine::program::NfsService;
use ringnfs_fs::memory::{MemoryBackend, MemoryOptions};
use ringnfs_proto::nfs4::consts::{NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND};
use ringnfs_proto::rpc::record::{RecordAssembler, RecordError};
use ringnfs_proto::rpc::{AuthSys, Credential, RpcMessage, decode_message, encode_call};
use ringnfs_service::{ConnMeta, Service};
use ringnfs_state::{StateConfig, StateManager};

/// Stands for the harness session's id in fuzz inputs (16 bytes).
pub const SESSION_PLACEHOLDER: &[u8; 16] = b"RINGNFS-SESSION!";
/// Stands for the harness client's id in fuzz inputs (8 bytes, the XDR of a clientid4).
pub const CLIENTID_PLACEHOLDER: &[u8; 8] = b"CLIENTID";
/// File-handle key of the harness and of the corpus capture.
pub const HANDLE_KEY: [u8; 16] = *b"ringnfs-fuzz-key";
/// Largest record the harnesses assemble (the server's default).
pub const MAX_RECORD: usize = (1 << 20) + (64 << 10);

/// A small memory export: bounded, so a fuzz input cannot make the harness allocate
/// without limit.
pub fn memory_export() -> Export {
    let backend = MemoryBackend::new(MemoryOptions {
        capacity_bytes: Some(64 << 20),
        max_file_size: 1 << 30,
        max_files: 10_000,
        root_mode: 0o1777,
        ..MemoryOptions::default()
    });
    Export::new(Arc::new(backend), ExportOptions::default(), HANDLE_KEY)
}

pub fn state() -> Arc<StateManager> {
    StateManager::new(StateConfig {
        shards: 4,
        worker_cores: 1,
        ..StateConfig::default()
    })
}

/// The caller the harnesses use: AUTH_SYS uid/gid 1000.
pub fn caller() -> Credential {
    Credential::Sys(AuthSys {
        stamp: 1,
        machine_name: b"fuzz".to_vec(),
        uid: 1000,
        gid: 1000,
        gids: vec![1000],
    })
}

/// COMPOUND4args of `ops` (minor version 1).
pub fn compound_args(ops: &[Op]) -> Vec<u8> {
    let mut v = Vec::new();
    encode_compound(&mut v, 1, b"", ops);
    v
}

/// One RPC call record (no record mark) carrying COMPOUND4args.
pub fn compound_call(xid: u32, args: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    encode_call(
        &mut v,
        xid,
        NFS4_PROGRAM,
        NFS4_VERSION,
        PROC_COMPOUND,
        &caller(),
    );
    v.extend_from_slice(args);
    v
}

fn exchange_id_op() -> Op {
    Op::ExchangeId(ExchangeIdArgs {
        verifier: *b"fuzzverf",
        owner_id: b"ringnfs-fuzz-client".to_vec(),
        flags: 0,
        state_protect: StateProtect::None,
        impl_id: None,
    })
}

fn create_session_op(clientid: u64, sequence: u32) -> Op {
    Op::CreateSession(CreateSessionArgs {
        clientid,
        sequence,
        flags: 0,
        fore: ringnfs_client::default_fore_attrs(16),
        back: ringnfs_client::default_back_attrs(),
        cb_program: ringnfs_client::DEFAULT_CB_PROGRAM,
        sec_parms: vec![],
    })
}

/// Replace every occurrence of `from` in `data` by `to` (same length).
fn replace_all(data: &mut [u8], from: &[u8], to: &[u8]) {
    debug_assert_eq!(from.len(), to.len());
    if data.len() < from.len() {
        return;
    }
    let mut i = 0;
    while i + from.len() <= data.len() {
        if &data[i..i + from.len()] == from {
            data[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
}

/// Turn captured bytes back into a fuzz input: the real ids become placeholders.
pub fn placeholders_for(data: &mut [u8], sessionid: &[u8; 16], clientid: u64) {
    replace_all(data, sessionid, SESSION_PLACEHOLDER);
    replace_all(data, &clientid.to_be_bytes(), CLIENTID_PLACEHOLDER);
}

/// A server with one client and session, driven without sockets.
pub struct Harness {
    pub service: Arc<NfsService>,
    pub engine: Nfs4Engine,
    pub conn: ConnMeta,
    pub sessionid: [u8; 16],
    pub clientid: u64,
}

impl Harness {
    /// A fresh server (memory backend) with a client and a session bound to the
    /// harness connection. `engine` and `service` share the state and export.
    pub fn new() -> Harness {
        let state = state();
        let export = Arc::new(memory_export());
        let service = NfsService::new(state.clone(), export);
        let engine = Nfs4Engine::new(state, service.exports().clone());
        let conn = ConnMeta::detached(1, 0);
        service.on_accept(&conn);
        let mut h = Harness {
            service,
            engine,
            conn,
            sessionid: [0; 16],
            clientid: 0,
        };
        let r = h.call_compound(&compound_args(&[exchange_id_op()]));
        let ex = r.exchange_id().expect("harness EXCHANGE_ID");
        let r = h.call_compound(&compound_args(&[create_session_op(
            ex.clientid,
            ex.sequenceid,
        )]));
        let cs = r.create_session().expect("harness CREATE_SESSION");
        // As every client does before its first OPEN (RFC 8881 §18.51.3), so fuzzed
        // OPENs and LOCKs reach the code past that rule.
        h.service
            .state()
            .reclaim_complete(ex.clientid, false)
            .expect("harness RECLAIM_COMPLETE");
        h.clientid = ex.clientid;
        h.sessionid = cs.sessionid.0;
        h
    }

    /// Send one COMPOUND through the whole service and decode the reply.
    pub fn call_compound(&self, args: &[u8]) -> ringnfs_client::CompoundReply {
        let out = self.record(&compound_call(7, args));
        match decode_message(&out) {
            Ok(RpcMessage::Reply(r)) => {
                let body = r.body.expect("accepted reply");
                ringnfs_client::CompoundReply::decode(body).expect("COMPOUND reply decodes")
            }
            _ => panic!("harness call got no reply"),
        }
    }

    /// Hand one record to the service; the reply record's bytes (empty: no reply).
    pub fn record(&self, record: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // No ring here: a request waiting for file I/O is run to its end in place.
        let outcome = self.service.on_record(&self.conn, record, &mut out);
        ringnfs_fs::sync_io::run_to_end(outcome, &mut out);
        out
    }

    /// The input with the placeholders replaced by this harness's ids.
    pub fn substitute(&self, data: &[u8]) -> Vec<u8> {
        let mut v = data.to_vec();
        replace_all(&mut v, SESSION_PLACEHOLDER, &self.sessionid);
        replace_all(&mut v, CLIENTID_PLACEHOLDER, &self.clientid.to_be_bytes());
        v
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.service.on_close(&self.conn);
    }
}

/// Feed `input` to an assembler in one piece and in pieces; both must give the same
/// records and the same error, and no record may exceed the maximum.
///
/// Input: byte 0 picks the maximum record size, byte 1 the split pattern, the rest is
/// the stream.
pub fn record_marking(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let max = 16 + data[0] as usize * 97;
    let seed = data[1];
    let stream = &data[2..];
    let run = |pieces: &mut dyn Iterator<Item = &[u8]>| {
        let mut asm = RecordAssembler::new(max);
        let mut recs: Vec<Vec<u8>> = Vec::new();
        let mut err: Option<RecordError> = None;
        for p in pieces {
            if let Err(e) = asm.feed(p, |r| {
                assert!(r.len() <= max, "record of {} over {max}", r.len());
                recs.push(r.to_vec());
                true
            }) {
                err = Some(e);
                break;
            }
        }
        (recs, err, asm.buffered())
    };
    let (whole, whole_err, _) = run(&mut std::iter::once(stream));
    // Pieces of 1..=(seed % 13 + 1) bytes, varying.
    let mut pieces = Vec::new();
    let mut at = 0;
    let mut k = seed as usize;
    while at < stream.len() {
        let n = (k % (seed as usize % 13 + 1)) + 1;
        let end = (at + n).min(stream.len());
        pieces.push(&stream[at..end]);
        at = end;
        k = k.wrapping_mul(31).wrapping_add(7);
    }
    let (split, split_err, buffered) = run(&mut pieces.into_iter());
    assert_eq!(whole, split, "records differ when the stream is split");
    assert_eq!(
        whole_err, split_err,
        "errors differ when the stream is split"
    );
    assert!(
        buffered <= (max.max(256 * 1024)) * 2,
        "assembler holds {buffered}"
    );
}

/// Decode an RPC message; a call's credential is re-encoded and decoded again.
pub fn rpc_call(data: &[u8]) {
    let Ok(RpcMessage::Call(c)) = decode_message(data) else {
        return;
    };
    if let Ok(cred) = &c.cred {
        let mut v = Vec::new();
        ringnfs_proto::rpc::encode_call(&mut v, c.xid, c.prog, c.vers, c.proc_, cred);
        match decode_message(&v) {
            Ok(RpcMessage::Call(c2)) => {
                assert_eq!(c2.cred.as_ref().ok(), Some(cred), "credential round trip");
                assert_eq!(
                    (c2.xid, c2.prog, c2.vers, c2.proc_),
                    (c.xid, c.prog, c.vers, c.proc_)
                );
            }
            _ => panic!("re-encoded call does not decode"),
        }
    }
}

/// Run COMPOUND4args (every op decodes its own arguments) on a server with a live
/// session (see the placeholders).
pub fn compound(data: &[u8]) {
    let h = Harness::new();
    let args = h.substitute(data);
    let mut out = Vec::new();
    match h.engine.compound(
        &h.conn,
        &caller(),
        (&args, Source::Borrowed),
        args.len(),
        &mut out,
    ) {
        Ok(Flow::Done) => {
            let r = ringnfs_client::CompoundReply::decode(&out);
            assert!(
                r.is_ok(),
                "the server's COMPOUND reply does not decode: {r:?}"
            );
        }
        Ok(Flow::Suspend(_)) | Err(_) => {}
    }
}

/// A byte stream of records through record marking and the whole service (RPC, NFS,
/// state, memory backend). Every reply must be an RPC reply to the call's xid.
pub fn pipeline(data: &[u8]) {
    let h = Harness::new();
    let stream = h.substitute(data);
    let mut asm = RecordAssembler::new(MAX_RECORD);
    let _ = asm.feed(&stream, |rec| {
        let out = h.record(rec);
        if !out.is_empty() {
            match decode_message(&out) {
                Ok(RpcMessage::Reply(r)) => {
                    assert_eq!(&r.xid.to_be_bytes()[..], &rec[..4], "reply to another xid");
                }
                other => panic!("reply does not decode as a reply: {other:?}"),
            }
        }
        true
    });
}

/// The control plane's JSON inputs: the settings PATCH body (parsed and validated as
/// the handler does, then persisted and read back), and the id path parameters.
pub fn rest_json(data: &[u8]) {
    use ringnfs_control::api::SettingsPatch;
    use ringnfs_state::settings::{LiveSettings, PersistedSettings};
    if let Ok(p) = serde_json::from_slice::<SettingsPatch>(data) {
        let scratch = LiveSettings::default();
        let mut valid = true;
        if let Some(n) = p.max_connections_per_session {
            valid &= scratch.set_max_connections_per_session(n).is_ok();
        }
        if let Some(l) = p.lease_time {
            valid &= scratch.set_lease_secs(l).is_ok();
        }
        if let Some(level) = &p.log_level {
            valid &= ringnfs_control::check_log_level(level).is_ok();
        }
        if valid {
            let saved = PersistedSettings {
                max_connections_per_session: p.max_connections_per_session.map(|n| n as u32),
                exclusive_binding: p.exclusive_binding,
                lease_time: p.lease_time.map(|l| l as u32),
                log_level: p.log_level.clone(),
                delegations: p.delegations,
            };
            let text = toml::to_string(&saved).expect("settings serialize");
            let back: PersistedSettings = toml::from_str(&text).expect("settings read back");
            assert_eq!(back, saved, "persisted settings round trip");
            back.apply(&LiveSettings::default())
                .expect("validated settings apply");
        }
        let _ = serde_json::to_vec(&p).expect("patch serializes");
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = ringnfs_control::api::parse_client_id(s);
        if let Some(sid) = ringnfs_state::SessionId::from_hex(s) {
            assert_eq!(
                ringnfs_state::SessionId::from_hex(&sid.to_hex()),
                Some(sid),
                "session id hex round trip"
            );
        }
    }
}

/// RPCSEC_GSS wire types and the sequence window (`ringnfs_proto::rpc::gss`): the
/// credential, the INIT result, the INIT argument, rpc_gss_integ_data decode without
/// panicking and encode back to what they decoded; the rest of the input drives a
/// sequence window, whose answers must agree with a plain set of what it took.
pub fn gss_wire(data: &[u8]) {
    use ringnfs_proto::rpc::gss::{
        GssCred, GssInitRes, IntegData, SeqCheck, SeqWindow, decode_init_arg, split_seq,
    };
    use ringnfs_proto::xdr::XdrEncoder;
    if let Ok(c) = GssCred::decode(data) {
        let mut v = Vec::new();
        c.encode(&mut v);
        assert_eq!(GssCred::decode(&v).ok(), Some(c), "credential round trip");
    }
    if let Ok(r) = GssInitRes::decode(data) {
        let mut v = Vec::new();
        r.encode(&mut v);
        assert_eq!(
            GssInitRes::decode(&v).ok(),
            Some(r),
            "init result round trip"
        );
    }
    if let Ok(t) = decode_init_arg(data) {
        // One opaque and nothing after it (its padding is not checked: XDR decoders,
        // Linux's among them, take any pad bytes).
        let mut v = Vec::new();
        v.put_opaque(t);
        assert_eq!(
            v.len(),
            data.len(),
            "an init argument is one opaque, nothing after it"
        );
        assert_eq!(decode_init_arg(&v).ok(), Some(t));
    }
    if let Ok(i) = IntegData::decode(data, data.len()) {
        let mut v = Vec::new();
        IntegData::encode(i.body, i.checksum, &mut v);
        assert_eq!(IntegData::decode(&v, v.len()).ok(), Some(i));
        if let Some(seq) = i.body.get(..4) {
            let seq = u32::from_be_bytes([seq[0], seq[1], seq[2], seq[3]]);
            assert_eq!(split_seq(i.body, seq).ok(), Some(&i.body[4..]));
            assert!(split_seq(i.body, seq.wrapping_add(1)).is_err());
        }
    }
    // A window of 1..=64 numbers, fed the input's words; a number is New at most once,
    // and never one that fell below the window.
    let size = 1 + u32::from(*data.first().unwrap_or(&0) % 64);
    let mut w = SeqWindow::new(size);
    let mut taken = std::collections::HashSet::new();
    let mut highest: Option<u32> = None;
    for c in data.get(1..).unwrap_or_default().chunks_exact(4) {
        let seq = u32::from_be_bytes([c[0], c[1], c[2], c[3]]) >> 20; // small numbers collide
        match w.check(seq) {
            SeqCheck::Fresh => {
                assert!(taken.insert(seq), "sequence number {seq} taken twice");
                if let Some(h) = highest {
                    assert!(seq + size > h, "{seq} below the window (highest {h})");
                }
                highest = Some(highest.map_or(seq, |h| h.max(seq)));
            }
            SeqCheck::Drop => {}
            SeqCheck::Exhausted => panic!("{seq} is far below MAXSEQ"),
        }
    }
}

/// An RPC call with the AUTH_TLS credential at the NFS program on a connection that
/// can start TLS (RFC 9289 §4.1): whatever the input says, only a NULL call gets the
/// STARTTLS verifier, only once per connection, and every call gets exactly one reply.
pub fn tls_probe(data: &[u8]) {
    use ringnfs_proto::rpc::auth::{AUTH_TLS, STARTTLS_VERIFIER};
    let svc = NfsService::new(state(), Arc::new(memory_export()));
    let conn = ConnMeta::detached(1, 0);
    conn.shared.offer_tls();
    svc.on_accept(&conn);
    // The input's first word picks the procedure, the rest is the call's arguments; the
    // header is a well-formed AUTH_TLS call (the fuzzer gets past the RPC decoder).
    let proc_ = data.first().map_or(0, |b| u32::from(*b % 3));
    let mut rec = Vec::new();
    for w in [7u32, 0, 2, NFS4_PROGRAM, NFS4_VERSION, proc_, AUTH_TLS] {
        rec.extend_from_slice(&w.to_be_bytes());
    }
    rec.extend_from_slice(data.get(1..).unwrap_or_default());
    let mut started = 0;
    for _ in 0..2 {
        let mut out = Vec::new();
        let _ = svc
            .on_record(&conn, &rec, &mut out)
            .run_to_end(&mut out, |_| panic!("a probe needs no file I/O"));
        let starts = out
            .windows(12)
            .any(|w| w[..4] == 8u32.to_be_bytes() && &w[4..] == STARTTLS_VERIFIER);
        if conn.shared.take_tls_request() {
            started += 1;
            assert!(starts, "TLS requested without the STARTTLS answer");
            assert_eq!(proc_, 0, "STARTTLS for procedure {proc_}");
        } else {
            assert!(!starts, "STARTTLS without a request");
        }
        // A reply (accepted or denied) for every call whose header decoded.
        if decode_message(&rec).is_ok() {
            assert!(out.len() >= 12, "no reply");
        }
    }
    assert!(started <= 1, "TLS started twice on one connection");
    svc.on_close(&conn);
}
