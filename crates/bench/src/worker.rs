//! One load-generating connection: keeps `depth` requests in flight on a raw stream,
//! with no allocation, channel or thread per request.

use super::stream::Stream;
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::pattern;
use super::template::Template;
use ringnfs_client::DefaultCallbackHandler;
use ringnfs_client::callback::answer_call;
use ringnfs_client::ops::wire::{self, Xdr};
use ringnfs_proto::nfs4::consts::{NfsStatus, op};
use ringnfs_proto::rpc::record::mark;
use ringnfs_proto::rpc::{RecordAssembler, RpcMessage, decode_message};
use ringnfs_proto::xdr::{XdrDecoder, pad4};

/// Error classes in [`WorkerResult::errors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKey {
    /// Compound status (nfsstat4).
    Nfs(NfsStatus),
    /// Accepted with this accept_stat.
    RpcAccept(u32),
    RpcDenied,
    Undecodable,
    UnexpectedXid,
    /// A READ returned bytes other than the pattern the bench wrote (`--verify`).
    VerifyMismatch,
}

impl std::fmt::Display for ErrorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorKey::Nfs(s) => match s.name() {
                Some(n) => f.write_str(n),
                None => write!(f, "nfs:{s}"),
            },
            ErrorKey::RpcAccept(s) => write!(f, "rpc_accept:{s}"),
            ErrorKey::RpcDenied => write!(f, "rpc_denied"),
            ErrorKey::Undecodable => write!(f, "undecodable"),
            ErrorKey::UnexpectedXid => write!(f, "unexpected_xid"),
            ErrorKey::VerifyMismatch => write!(f, "verify_mismatch"),
        }
    }
}

pub struct WorkerConfig {
    /// Request kinds; each request uses `templates[pick[r % pick.len()]]` for a random r.
    pub templates: Arc<Vec<Template>>,
    pub pick: Arc<Vec<u8>>,
    /// Check READ data against the pattern.
    pub verify: bool,
    /// First value of the per-request file name counter (create workload).
    pub name_base: u64,
    /// Offsets for READ/WRITE workloads.
    pub io: Option<IoPattern>,
    pub depth: usize,
    /// Slot of in-flight request 0 (request i uses slot_base + i).
    pub slot_base: u32,
    /// First sequence id for each slot.
    pub first_seqid: u32,
    pub measure_start: Instant,
    /// End of the measured window (duration mode).
    pub measure_end: Option<Instant>,
    /// Measured operations this worker performs (count mode).
    pub quota: Option<u64>,
    /// Completed operations (warmup included), for progress reports.
    pub progress: Arc<AtomicU64>,
    pub stop: Arc<AtomicBool>,
}

pub struct WorkerResult {
    /// Latency of the successful replies in the measured window.
    pub hist: Histogram<u64>,
    /// Successful replies (and with `verify`, verified ones) in the measured window:
    /// the work done. Failed replies are in `errors` only.
    pub ops: u64,
    /// All replies in the measured window, successful or not (what `quota` counts).
    pub replies: u64,
    /// Bytes of successful replies in the measured window: READ data returned (and
    /// verified, with `verify`), WRITE bytes the server acknowledged (its count).
    pub bytes: u64,
    /// Bytes of READ data checked against the pattern (all of it matched or counted
    /// as a `VerifyMismatch`).
    pub verified_bytes: u64,
    pub errors: HashMap<ErrorKey, u64>,
    pub last_completion: Option<Instant>,
    /// Files created (OPEN succeeded) and not removed, warm-up included.
    pub files_left: u64,
    pub stream: Stream,
    pub failure: Option<String>,
}

/// The word at `at` of `rec`.
#[inline]
fn word(rec: &[u8], at: usize) -> Option<u32> {
    rec.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Outcome of one reply: (success, SEQUENCE processed, error class).
#[inline]
fn parse_reply(rec: &[u8], compound: bool) -> (bool, bool, Option<ErrorKey>) {
    let w = |at: usize| word(rec, at);
    let inner = || -> Option<(bool, bool, Option<ErrorKey>)> {
        if w(8)? != 0 {
            return Some((false, false, Some(ErrorKey::RpcDenied)));
        }
        let mut p = 20 + pad4(w(16)? as usize);
        let accept = w(p)?;
        if accept != 0 {
            return Some((false, false, Some(ErrorKey::RpcAccept(accept))));
        }
        if !compound {
            return Some((true, false, None));
        }
        p += 4;
        let status = NfsStatus::from_code(w(p)?);
        p += 8 + pad4(w(p + 4)? as usize);
        let count = w(p)?;
        let seq_ok = count > 0 && w(p + 4)? == op::SEQUENCE && w(p + 8)? == 0;
        if status.is_ok() {
            Some((true, seq_ok, None))
        } else {
            Some((false, seq_ok, Some(ErrorKey::Nfs(status))))
        }
    };
    inner().unwrap_or((false, false, Some(ErrorKey::Undecodable)))
}

/// Offset of the third result of a COMPOUND { SEQUENCE, PUTFH, X } reply whose SEQUENCE
/// and PUTFH succeeded (the layout of every request that moves data or creates files).
#[inline]
fn third_result(rec: &[u8]) -> Option<usize> {
    let w = |at: usize| word(rec, at);
    if w(8)? != 0 {
        return None; // MSG_DENIED
    }
    let mut p = 20 + pad4(w(16)? as usize);
    if w(p)? != 0 {
        return None; // accept_stat
    }
    p += 4;
    p += 8 + pad4(w(p + 4)? as usize); // status, tag
    if w(p)? < 3 {
        return None;
    }
    p += 4;
    // SEQUENCE: opnum, status, sessionid, 5 words.
    if w(p)? != op::SEQUENCE || w(p + 4)? != 0 {
        return None;
    }
    p += 8 + 16 + 20;
    // PUTFH: opnum, status.
    if w(p)? != op::PUTFH || w(p + 4)? != 0 {
        return None;
    }
    Some(p + 8)
}

/// Where the resok of the third result starts, if that result is a successful `opnum`.
#[inline]
fn third_ok(rec: &[u8], opnum: u32) -> Option<usize> {
    let p = third_result(rec)?;
    (word(rec, p)? == opnum && word(rec, p + 4)? == 0).then_some(p + 8)
}

/// The data of a successful COMPOUND { SEQUENCE, PUTFH, READ } reply, or of
/// { SEQUENCE, PUTFH, OPEN, READ, ... } (open-read-close).
#[inline]
fn read_payload(rec: &[u8]) -> Option<&[u8]> {
    let mut at = third_result(rec)?;
    if word(rec, at)? == op::OPEN && word(rec, at + 4)? == 0 {
        // Step over OPEN4resok, whose length depends on what it grants.
        let mut d = XdrDecoder::new(rec.get(at + 8..)?);
        wire::OpenResOk::decode(&mut d).ok()?;
        at += 8 + d.position();
    }
    if word(rec, at)? != op::READ || word(rec, at + 4)? != 0 {
        return None;
    }
    // READ4resok, its data borrowed from the record.
    let r = wire::ReadResOk::decode(&mut XdrDecoder::new(rec.get(at + 8..)?)).ok()?;
    Some(r.data)
}

/// The count of a successful COMPOUND { SEQUENCE, PUTFH, WRITE } reply: the bytes the
/// server acknowledged (RFC 8881 §18.32.3; it may be less than was sent).
#[inline]
fn write_count(rec: &[u8]) -> Option<u32> {
    let at = third_ok(rec, op::WRITE)?;
    let r = wire::WriteResOk::decode(&mut XdrDecoder::new(rec.get(at..)?)).ok()?;
    Some(r.count)
}

/// Whether the OPEN of a COMPOUND { SEQUENCE, PUTFH, OPEN, ... } reply succeeded (it
/// created or opened the file, whatever happened after it).
#[inline]
fn open_succeeded(rec: &[u8]) -> bool {
    third_ok(rec, op::OPEN).is_some()
}

/// Where READ/WRITE requests go: sequential through the file from a per-worker start, or
/// random I/O-size-aligned offsets.
#[derive(Debug, Clone, Copy)]
pub struct IoPattern {
    pub file_size: u64,
    pub io_size: u64,
    pub random: bool,
    /// Start (sequential) or seed (random) for this worker.
    pub start: u64,
}

struct Offsets {
    p: Option<IoPattern>,
    next: u64,
}

impl Offsets {
    fn new(p: Option<IoPattern>) -> Self {
        let next = p.map_or(0, |p| if p.random { p.start | 1 } else { p.start });
        Self { p, next }
    }

    #[inline]
    fn next(&mut self) -> u64 {
        let Some(p) = self.p else {
            return 0;
        };
        let blocks = (p.file_size / p.io_size).max(1);
        if p.random {
            // xorshift64: cheap and good enough to spread requests over the file.
            let mut x = self.next;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.next = x;
            (x % blocks) * p.io_size
        } else {
            let off = self.next;
            self.next = (self.next + p.io_size) % (blocks * p.io_size);
            off
        }
    }
}

/// How often a worker waiting for replies looks at the stop flag.
const POLL: Duration = Duration::from_millis(200);
/// A connection with requests in flight and no reply for this long has failed.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// After a stop (Ctrl-C), how long in-flight requests may take to be answered before
/// the worker gives up on them (the session is destroyed anyway).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub fn run_worker(mut stream: Stream, cfg: WorkerConfig) -> WorkerResult {
    let depth = cfg.depth;
    let templates = &cfg.templates[..];
    let compound = templates[0].compound;
    let max_len = templates.iter().map(|t| t.bytes.len()).max().unwrap_or(0);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    let mut errors: HashMap<ErrorKey, u64> = HashMap::new();
    let handler = DefaultCallbackHandler::default();
    let mut seqids = vec![cfg.first_seqid; depth];
    if cfg.slot_base == 0 && compound {
        seqids[0] = super::setup::SLOT0_FIRST_SEQID;
    }
    let mut gens = vec![1u32; depth];
    let mut sent = vec![Instant::now(); depth];
    let mut inflight = vec![false; depth];
    // Per in-flight request: its template and I/O offset.
    let mut kinds = vec![0usize; depth];
    let mut offs = vec![0u64; depth];
    let mut n_inflight = 0usize;
    let mut ops = 0u64;
    let mut replies = 0u64;
    let mut files_left = 0u64;
    let mut bytes = 0u64;
    let mut verified_bytes = 0u64;
    let mut total = 0u64;
    let mut last_completion = None;
    let mut failure = None;
    let mut out = Vec::with_capacity(depth * max_len + 4096);
    let mut buf = vec![0u8; 256 * 1024];
    let mut asm = RecordAssembler::new(64 << 20);

    let mut offsets = Offsets::new(cfg.io);
    let mut counter = cfg.name_base;
    // Picks request kinds for mixed workloads (xorshift64, seeded per worker).
    let mut rng = cfg.name_base | 0x2545_f491_4f6c_dd1d;
    let mut choose = || -> usize {
        if cfg.pick.len() == 1 {
            return cfg.pick[0] as usize;
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        cfg.pick[(rng % cfg.pick.len() as u64) as usize] as usize
    };
    let mut emit = |out: &mut Vec<u8>,
                    i: usize,
                    xid: u32,
                    seqid: u32,
                    kinds: &mut [usize],
                    offs: &mut [u64]| {
        let k = choose();
        let t = &templates[k];
        let off = if t.io_offset.is_some() {
            offsets.next()
        } else {
            0
        };
        counter += 1;
        t.emit(out, xid, cfg.slot_base + i as u32, seqid, off, counter);
        kinds[i] = k;
        offs[i] = off;
    };
    let now = Instant::now();
    for i in 0..depth {
        let xid = (gens[i] << 16) | i as u32;
        emit(&mut out, i, xid, seqids[i], &mut kinds, &mut offs);
        sent[i] = now;
        inflight[i] = true;
        n_inflight += 1;
    }
    if let Err(e) = stream.write_all(&out) {
        failure = Some(format!("write: {e}"));
        n_inflight = 0;
    }
    out.clear();
    // Reads wake up now and then to notice a stop and a server that stopped answering.
    if let Err(e) = stream.set_read_timeout(Some(POLL)) {
        failure = Some(format!("setting a read timeout: {e}"));
        n_inflight = 0;
    }
    let mut last_reply = Instant::now();
    let mut stopped_at: Option<Instant> = None;

    while n_inflight > 0 {
        let n = match stream.read(&mut buf) {
            Ok(0) => {
                failure = Some("server closed the connection".into());
                break;
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let now = Instant::now();
                if cfg.stop.load(Ordering::Relaxed) {
                    let since = *stopped_at.get_or_insert(now);
                    if now.duration_since(since) > DRAIN_TIMEOUT {
                        failure = Some(format!(
                            "{n_inflight} request(s) unanswered {} s after the stop",
                            DRAIN_TIMEOUT.as_secs()
                        ));
                        break;
                    }
                }
                if now.duration_since(last_reply) > REPLY_TIMEOUT {
                    failure = Some(format!(
                        "no reply for {} s with {n_inflight} request(s) in flight",
                        REPLY_TIMEOUT.as_secs()
                    ));
                    break;
                }
                continue;
            }
            Err(e) => {
                failure = Some(format!("read: {e}"));
                break;
            }
        };
        let now = Instant::now();
        last_reply = now;
        // A stop (Ctrl-C) ends the measured window: replies drained after it are not
        // counted, so the rate is over the time measured.
        let stop = cfg.stop.load(Ordering::Relaxed);
        let in_window =
            !stop && now >= cfg.measure_start && cfg.measure_end.is_none_or(|e| now <= e);
        let mut stopping = cfg.measure_end.is_some_and(|e| now > e) || stop;
        let res = asm.feed(&buf[..n], |rec| {
            if rec.len() < 8 {
                *errors.entry(ErrorKey::Undecodable).or_default() += 1;
                return true;
            }
            let xid = u32::from_be_bytes([rec[0], rec[1], rec[2], rec[3]]);
            if rec[4..8] == [0, 0, 0, 0] {
                // A call from the server (back channel).
                if let Ok(RpcMessage::Call(c)) = decode_message(rec)
                    && let Some(a) = answer_call(&handler, &c)
                {
                    out.extend_from_slice(&mark(a.len()));
                    out.extend_from_slice(&a);
                }
                return true;
            }
            let idx = (xid & 0xffff) as usize;
            if idx >= depth || !inflight[idx] || gens[idx] != xid >> 16 {
                *errors.entry(ErrorKey::UnexpectedXid).or_default() += 1;
                return true;
            }
            inflight[idx] = false;
            n_inflight -= 1;
            total += 1;
            let (mut ok, seq_ok, mut err) = parse_reply(rec, compound);
            if seq_ok {
                seqids[idx] = seqids[idx].wrapping_add(1);
            }
            let t = &templates[kinds[idx]];
            if t.opens && open_succeeded(rec) && !(ok && t.removes) {
                files_left += 1;
            }
            let mut moved = 0u64;
            if ok && t.read_count > 0 {
                match read_payload(rec) {
                    Some(d) => {
                        moved = d.len() as u64;
                        if cfg.verify {
                            if d.is_empty() || !pattern::matches(offs[idx], d) {
                                ok = false;
                                err = Some(ErrorKey::VerifyMismatch);
                            } else if in_window {
                                verified_bytes += moved;
                            }
                        }
                    }
                    None => {
                        ok = false;
                        err = Some(ErrorKey::Undecodable);
                    }
                }
            } else if ok && t.data.is_some() {
                match write_count(rec) {
                    Some(n) => moved = u64::from(n),
                    None => {
                        ok = false;
                        err = Some(ErrorKey::Undecodable);
                    }
                }
            }
            if in_window {
                replies += 1;
                last_completion = Some(now);
                if ok {
                    ops += 1;
                    bytes += moved;
                    let _ = hist.record(now.duration_since(sent[idx]).as_nanos().max(1) as u64);
                } else {
                    *errors
                        .entry(err.unwrap_or(ErrorKey::Undecodable))
                        .or_default() += 1;
                }
            }
            // The quota counts replies, not successes: a run whose every request fails
            // still ends.
            if let Some(q) = cfg.quota
                && now >= cfg.measure_start
                && replies + n_inflight as u64 >= q
            {
                stopping = true;
            }
            if !stopping {
                let g = if gens[idx] >= 0xffff {
                    1
                } else {
                    gens[idx] + 1
                };
                gens[idx] = g;
                emit(
                    &mut out,
                    idx,
                    (g << 16) | idx as u32,
                    seqids[idx],
                    &mut kinds,
                    &mut offs,
                );
                sent[idx] = now;
                inflight[idx] = true;
                n_inflight += 1;
            }
            true
        });
        if let Err(e) = res {
            failure = Some(format!("bad record marking: {e}"));
            break;
        }
        cfg.progress.store(total, Ordering::Relaxed);
        if !out.is_empty() {
            if let Err(e) = stream.write_all(&out) {
                failure = Some(format!("write: {e}"));
                break;
            }
            out.clear();
        }
    }
    WorkerResult {
        hist,
        ops,
        replies,
        bytes,
        verified_bytes,
        errors,
        last_completion,
        files_left,
        stream,
        failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringnfs_client::SessionId;
    use ringnfs_client::ops::wire::ReadArgs;
    use ringnfs_proto::rpc::{AcceptStat, encode_accepted};
    use ringnfs_proto::xdr::XdrEncoder;

    #[test]
    fn parses_replies() {
        let mut v = Vec::new();
        encode_accepted(&mut v, 1, AcceptStat::Success);
        assert_eq!(parse_reply(&v, false), (true, false, None));
        v.put_u32(0);
        v.put_opaque(b"tag");
        v.put_u32(1);
        v.put_u32(op::SEQUENCE);
        v.put_u32(0);
        assert_eq!(parse_reply(&v, true), (true, true, None));
        let mut v = Vec::new();
        encode_accepted(&mut v, 1, AcceptStat::Success);
        v.put_u32(10052);
        v.put_opaque(b"");
        v.put_u32(1);
        v.put_u32(op::SEQUENCE);
        v.put_u32(10052);
        assert_eq!(
            parse_reply(&v, true),
            (
                false,
                false,
                Some(ErrorKey::Nfs(NfsStatus::from_code(10052)))
            )
        );
        let mut v = Vec::new();
        encode_accepted(&mut v, 1, AcceptStat::GarbageArgs);
        assert_eq!(
            parse_reply(&v, true),
            (false, false, Some(ErrorKey::RpcAccept(4)))
        );
        assert_eq!(
            parse_reply(&v[..10], true),
            (false, false, Some(ErrorKey::Undecodable))
        );
    }

    #[test]
    fn finds_read_payload() {
        let mut v = Vec::new();
        encode_accepted(&mut v, 1, AcceptStat::Success);
        v.put_u32(0);
        v.put_opaque(b"");
        v.put_u32(3);
        v.put_u32(op::SEQUENCE);
        v.put_u32(0);
        v.put_fixed(&[0; 16]);
        for _ in 0..5 {
            v.put_u32(0);
        }
        v.put_u32(op::PUTFH);
        v.put_u32(0);
        v.put_u32(op::READ);
        v.put_u32(0);
        v.put_u32(0);
        v.put_opaque(b"hello");
        assert_eq!(read_payload(&v), Some(&b"hello"[..]));
        assert_eq!(read_payload(&v[..v.len() - 4]), None);
    }

    /// Drive one worker with `ops` (after SEQUENCE) against a server that answers every
    /// request with `reply`, for `n` replies.
    fn drive(ops: &[ringnfs_client::Op], reply: Vec<u8>, verify: bool, n: u64) -> WorkerResult {
        use ringnfs_proto::rpc::Credential;
        let addr = crate::canned::canned_server(reply);
        let t = Template::sequenced(&Credential::None, SessionId([7; 16]), 3, ops);
        let s = Stream::Plain(std::net::TcpStream::connect(addr).unwrap());
        let cfg = WorkerConfig {
            templates: Arc::new(vec![t]),
            pick: Arc::new(vec![0]),
            verify,
            name_base: 0,
            io: Some(IoPattern {
                file_size: 1 << 20,
                io_size: 4096,
                random: false,
                start: 0,
            }),
            depth: 4,
            slot_base: 0,
            first_seqid: 1,
            measure_start: Instant::now(),
            measure_end: None,
            quota: Some(n),
            progress: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        run_worker(s, cfg)
    }

    fn putfh() -> ringnfs_client::Op {
        ringnfs_client::Op::PutFh(vec![1; 8])
    }

    #[test]
    fn write_bytes_are_what_the_server_acknowledged() {
        use ringnfs_client::Op;
        use ringnfs_proto::stateid::Stateid;
        // Every 4 KiB WRITE is acknowledged with a count of 1 KiB (a short write).
        let reply = crate::canned::sequence_reply(2, |v| {
            v.put_u32(op::PUTFH);
            v.put_u32(0);
            v.put_u32(op::WRITE);
            v.put_u32(0);
            v.put_u32(1024);
            v.put_u32(0);
            v.put_fixed(&[0; 8]);
        });
        let write = Op::Write {
            stateid: Stateid::ANONYMOUS,
            offset: 0,
            stable: 0,
            data: vec![0; 4096],
        };
        let r = drive(&[putfh(), write], reply, false, 100);
        assert!(r.failure.is_none(), "{:?}", r.failure);
        assert_eq!(r.ops, 100);
        assert_eq!(r.bytes, 100 * 1024, "acknowledged, not sent");
    }

    #[test]
    fn unverified_reads_are_errors_not_ops() {
        use ringnfs_client::Op;
        use ringnfs_proto::stateid::Stateid;
        // Every READ returns 4 KiB of zeros: never the pattern the bench wrote.
        let reply = crate::canned::sequence_reply(2, |v| {
            v.put_u32(op::PUTFH);
            v.put_u32(0);
            v.put_u32(op::READ);
            v.put_u32(0);
            v.put_u32(0);
            v.put_opaque(&[0; 4096]);
        });
        let read = Op::Read(ReadArgs {
            stateid: Stateid::ANONYMOUS,
            offset: 0,
            count: 4096,
        });
        let r = drive(&[putfh(), read.clone()], reply.clone(), true, 100);
        assert_eq!(r.ops, 0);
        assert_eq!((r.bytes, r.verified_bytes), (0, 0));
        assert_eq!(r.errors.get(&ErrorKey::VerifyMismatch), Some(&100));
        // Without --verify the same replies are successful READs of 4 KiB.
        let r = drive(&[putfh(), read], reply, false, 100);
        assert_eq!((r.ops, r.bytes), (100, 100 * 4096));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
    }
}
