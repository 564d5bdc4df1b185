//! Session setup and teardown on a raw stream (the same stream then carries load).
//! Every failure is a [`BenchError`] in words; whatever a failed setup created on the
//! server (client, session) is destroyed before the error is returned.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::stream::Stream;
use std::time::Duration;

use super::error::BenchError;
use super::{interrupt, pattern};

use ringnfs_client::callback::answer_call;
use ringnfs_client::ops::encode_compound;
use ringnfs_client::{
    CallbackSec, ClientError, CompoundReply, CreateSessionArgs, CreateSessionResOk,
    DEFAULT_CB_PROGRAM, DefaultCallbackHandler, ExchangeIdArgs, Op, SessionId, StateProtect,
    default_back_attrs, default_fore_attrs, unique_owner,
};
use ringnfs_proto::nfs4::consts::{NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND, op, op_name, status};
use ringnfs_proto::rpc::record::mark;
use ringnfs_proto::rpc::{Credential, RecordAssembler, RpcMessage, decode_message, encode_call};

/// How long a setup call waits for its reply.
const SETUP_REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to the server for setup and load (Nagle off: requests are batched by
/// the bench itself).
pub fn connect(
    addr: SocketAddr,
    tls: Option<&ringnfs_client::ClientTls>,
) -> Result<Stream, BenchError> {
    let connect_err = |source| BenchError::Connect { addr, source };
    let s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(connect_err)?;
    s.set_nodelay(true).map_err(connect_err)?;
    Stream::start(s, tls).map_err(|why| BenchError::Tls { addr, why })
}

/// The name a setup call goes by in messages: its first operation after SEQUENCE.
fn step_of(ops: &[Op]) -> String {
    ops.iter()
        .map(|o| o.opnum())
        .find(|&n| n != op::SEQUENCE)
        .or_else(|| ops.first().map(|o| o.opnum()))
        .map(|n| op_name(n).to_string())
        .unwrap_or_else(|| "COMPOUND".into())
}

/// One blocking COMPOUND on a stream nobody else uses; server calls are answered. The
/// reply may carry any NFS status (see [`check`]); RPC-level and transport failures,
/// and bytes that are not an RPC reply, are errors.
pub fn sync_compound(
    s: &mut Stream,
    cred: &Credential,
    xid: u32,
    ops: &[Op],
) -> Result<CompoundReply, BenchError> {
    let step = step_of(ops);
    let peer = s
        .tcp()
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let lost = |detail: String| BenchError::Connection {
        step: step.clone(),
        detail,
    };
    let not_nfs = || BenchError::NotNfs {
        addr: peer,
        detail: "reply was not an RPC record".into(),
    };
    let mut rec = vec![0; 4];
    encode_call(
        &mut rec,
        xid,
        NFS4_PROGRAM,
        NFS4_VERSION,
        PROC_COMPOUND,
        cred,
    );
    encode_compound(&mut rec, 1, b"", ops);
    let m = mark(rec.len() - 4);
    rec[..4].copy_from_slice(&m);
    s.set_read_timeout(Some(SETUP_REPLY_TIMEOUT))
        .map_err(|e| lost(format!("setting a read timeout: {e}")))?;
    s.write_all(&rec)
        .map_err(|e| lost(format!("sending the request: {e}")))?;
    let handler = DefaultCallbackHandler::default();
    let mut asm = RecordAssembler::new(4 << 20);
    let mut buf = vec![0u8; 64 * 1024];
    let mut received = 0usize;
    let mut result: Option<Result<CompoundReply, BenchError>> = None;
    while result.is_none() {
        let n = match s.read(&mut buf) {
            Ok(0) if received > 0 => return Err(not_nfs()),
            Ok(0) => {
                return Err(lost(
                    "the server closed the connection without replying".into(),
                ));
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if received > 0 {
                    return Err(not_nfs());
                }
                return Err(lost(format!(
                    "no reply within {} s",
                    SETUP_REPLY_TIMEOUT.as_secs()
                )));
            }
            Err(e) => return Err(lost(format!("reading the reply: {e}"))),
        };
        received += n;
        let mut answers = Vec::new();
        let mut garbage = false;
        let fed = asm.feed(&buf[..n], |r| {
            match decode_message(r) {
                Ok(RpcMessage::Reply(h)) if h.xid == xid => {
                    result = Some(match h.body {
                        Ok(b) => CompoundReply::decode(b).map_err(|e| BenchError::Rpc {
                            step: step.clone(),
                            detail: format!("the reply did not decode: {e}"),
                        }),
                        Err(f) => Err(BenchError::rpc(peer, &step, &f)),
                    });
                }
                Ok(RpcMessage::Call(c)) => {
                    if let Some(a) = answer_call(&handler, &c) {
                        answers.extend_from_slice(&mark(a.len()));
                        answers.extend_from_slice(&a);
                    }
                }
                // A reply to an earlier call (after a timeout) is not ours to read.
                Ok(RpcMessage::Reply(_)) => {}
                Err(_) => {
                    garbage = true;
                    return false;
                }
            }
            true
        });
        if fed.is_err() || garbage {
            return Err(not_nfs());
        }
        if !answers.is_empty() {
            s.write_all(&answers)
                .map_err(|e| lost(format!("answering a callback: {e}")))?;
        }
    }
    result.expect("loop ends with a result")
}

/// The error of a reply whose status is not NFS4_OK, named after the failed operation
/// (`label` may name it better, e.g. with its argument); `lease_secs` feeds the hint.
pub fn reply_error(
    r: &CompoundReply,
    ops: &[Op],
    label: impl Fn(u32, usize) -> Option<String>,
    lease_secs: Option<u32>,
) -> BenchError {
    // The failed result, or when the server stopped before any result (e.g.
    // NFS4ERR_MINOR_VERS_MISMATCH), the first operation.
    let (index, opnum) = match r.results.iter().position(|x| x.status != status::NFS4_OK) {
        Some(i) => (i, r.results[i].opnum),
        None => (0, ops.first().map(|o| o.opnum()).unwrap_or(0)),
    };
    let step = label(opnum, index).unwrap_or_else(|| op_name(opnum).to_string());
    BenchError::nfs(step, opnum, r.status, lease_secs)
}

/// `r` when it succeeded, else its error named by operation.
fn check(r: CompoundReply, ops: &[Op]) -> Result<CompoundReply, BenchError> {
    if r.status == status::NFS4_OK {
        Ok(r)
    } else {
        Err(reply_error(&r, ops, |_, _| None, None))
    }
}

/// A successful reply whose results do not decode.
fn undecodable(step: &str, e: ClientError) -> BenchError {
    BenchError::Rpc {
        step: step.to_string(),
        detail: format!("the reply did not decode: {e}"),
    }
}

/// First sequence id of slot 0 after [`create_session`] (which used it once).
pub const SLOT0_FIRST_SEQID: u32 = 2;

/// EXCHANGE_ID, CREATE_SESSION and RECLAIM_COMPLETE, asking for `slots` fore slots,
/// without a back channel. On failure, the client (and session) it made are destroyed.
pub fn create_session(
    s: &mut Stream,
    cred: &Credential,
    slots: u32,
) -> Result<(u64, CreateSessionResOk), BenchError> {
    create_session_then(s, cred, slots, &[]).map(|(c, cs, _)| (c, cs))
}

/// [`create_session`], then `then` in the COMPOUND that sends RECLAIM_COMPLETE (slot 0,
/// sequence id 1, so the load's slots are untouched); with `then` not empty the session
/// has a back channel on this connection (CONN_BACK_CHAN), as the server needs to grant
/// delegations. Returns that COMPOUND's reply.
pub fn create_session_then(
    s: &mut Stream,
    cred: &Credential,
    slots: u32,
    then: &[Op],
) -> Result<(u64, CreateSessionResOk, CompoundReply), BenchError> {
    let ops = [Op::ExchangeId(ExchangeIdArgs {
        verifier: rand::random(),
        owner_id: unique_owner(),
        flags: 0,
        state_protect: StateProtect::None,
        impl_id: None,
    })];
    let r = check(sync_compound(s, cred, 1, &ops)?, &ops)?;
    let ex = r.exchange_id().map_err(|e| undecodable("EXCHANGE_ID", e))?;
    let ops = [Op::CreateSession(CreateSessionArgs {
        clientid: ex.clientid,
        sequence: ex.sequenceid,
        // CREATE_SESSION4_FLAG_CONN_BACK_CHAN.
        flags: if then.is_empty() { 0 } else { 0x2 },
        fore: default_fore_attrs(slots),
        back: default_back_attrs(),
        cb_program: DEFAULT_CB_PROGRAM,
        sec_parms: vec![CallbackSec::from_credential(cred)],
    })];
    let cs = sync_compound(s, cred, 2, &ops)
        .and_then(|r| check(r, &ops))
        .and_then(|r| {
            r.create_session()
                .map_err(|e| undecodable("CREATE_SESSION", e))
        });
    let cs = match cs {
        Ok(cs) => cs,
        Err(e) => {
            destroy_client_quietly(s, cred, ex.clientid);
            return Err(e);
        }
    };
    // RFC 8881 §18.51.3: before its first non-reclaim OPEN a new client sends
    // RECLAIM_COMPLETE (servers answer NFS4ERR_GRACE otherwise). Uses slot 0, sequence
    // id 1: the load on slot 0 starts at 2 (SLOT0_FIRST_SEQID).
    let mut ops = vec![
        Op::Sequence(ringnfs_client::SequenceArgs {
            sessionid: cs.sessionid,
            sequenceid: 1,
            slotid: 0,
            highest_slotid: 0,
            cachethis: false,
        }),
        Op::ReclaimComplete { one_fs: false },
    ];
    ops.extend_from_slice(then);
    match sync_compound(s, cred, 3, &ops).and_then(|r| check(r, &ops)) {
        Ok(r) => Ok((ex.clientid, cs, r)),
        Err(e) => {
            if let Err(d) = destroy_session(s, cred, ex.clientid, cs.sessionid) {
                tracing::warn!(error = %d, "destroying the session of a failed setup");
            }
            Err(e)
        }
    }
}

/// DESTROY_CLIENTID of a client without a session; failures are only logged (the
/// server's lease expiry removes the client anyway).
fn destroy_client_quietly(s: &mut Stream, cred: &Credential, clientid: u64) {
    let ops = [Op::DestroyClientid(clientid)];
    if let Err(e) = sync_compound(s, cred, 4, &ops).and_then(|r| check(r, &ops)) {
        tracing::warn!(error = %e, "destroying the client of a failed setup");
    }
}

/// DESTROY_SESSION then DESTROY_CLIENTID.
pub fn destroy_session(
    s: &mut Stream,
    cred: &Credential,
    clientid: u64,
    sessionid: SessionId,
) -> Result<(), BenchError> {
    let ops = [Op::DestroySession(sessionid)];
    check(sync_compound(s, cred, 5, &ops)?, &ops)?;
    let ops = [Op::DestroyClientid(clientid)];
    check(sync_compound(s, cred, 6, &ops)?, &ops)?;
    Ok(())
}

/// Name of the file I/O workloads use, in the export directory.
pub const BENCH_FILE: &[u8] = b"ringnfs-bench.dat";

/// What the workloads need from the server, found before the load starts.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// The export directory (where the file is and files are created).
    pub dir_fh: Vec<u8>,
    /// The I/O workloads' file (empty when none was asked for).
    pub file_fh: Vec<u8>,
    /// Fore channel limits the server granted to a session.
    pub max_request: u32,
    pub max_response: u32,
}

/// What [`prepare`] should leave in the export directory.
#[derive(Debug, Clone, Copy)]
pub struct FileSpec {
    pub size: u64,
    /// Fill with the pattern (readers must read real bytes, not holes); an existing file
    /// is sampled and refilled if it does not hold the pattern.
    pub fill: bool,
}

/// Split an export path ("/", "/export", "export/sub") into LOOKUP components.
pub fn path_components(path: &str) -> Vec<Vec<u8>> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(|c| c.as_bytes().to_vec())
        .collect()
}

/// Resolve the export directory from the root of the server's namespace (PUTROOTFH,
/// LOOKUP each component), and create (or reuse) the I/O workloads' file in it with mode
/// 0666 and the given size. Uses its own client and session, destroyed before returning
/// (also on failure). Never assumes our server: the write size follows the limits the
/// server granted.
pub fn prepare(
    (server, tls): (SocketAddr, Option<&ringnfs_client::ClientTls>),
    cred: &Credential,
    export: &[Vec<u8>],
    file: Option<FileSpec>,
) -> Result<Prepared, BenchError> {
    let mut s = connect(server, tls)?;
    let (clientid, cs) = create_session(&mut s, cred, 1)?;
    let prepared = prepare_in_session(&mut s, cred, clientid, &cs, export, file);
    let destroyed = destroy_session(&mut s, cred, clientid, cs.sessionid);
    match (prepared, destroyed) {
        (Ok(p), Ok(())) => Ok(p),
        (Ok(_), Err(e)) => Err(e),
        (Err(e), d) => {
            if let Err(d) = d {
                tracing::warn!(error = %d, "destroying the session of a failed setup");
            }
            Err(e)
        }
    }
}

/// An export path as given ("/" for the root, "/a/b").
pub fn display_path(export: &[Vec<u8>]) -> String {
    let p: Vec<_> = export.iter().map(|c| String::from_utf8_lossy(c)).collect();
    format!("/{}", p.join("/"))
}

/// The export path up to and including component `n` ("/a/b").
fn path_prefix(export: &[Vec<u8>], n: usize) -> String {
    display_path(&export[..n.min(export.len())])
}

fn prepare_in_session(
    s: &mut Stream,
    cred: &Credential,
    clientid: u64,
    cs: &CreateSessionResOk,
    export: &[Vec<u8>],
    file: Option<FileSpec>,
) -> Result<Prepared, BenchError> {
    use ringnfs_client::ops::{Fattr, OpenArgs, OpenClaim, OpenHow};
    use ringnfs_client::{CloseArgs, CommitArgs, ReadArgs, SequenceArgs};
    let mut seqid = SLOT0_FIRST_SEQID - 1;
    let mut xid = 10u32;
    // One SEQUENCE'd COMPOUND; a failure is returned as the reply (the caller names it).
    let mut call = |s: &mut Stream, ops: Vec<Op>| -> Result<(CompoundReply, Vec<Op>), BenchError> {
        if interrupt::requested() {
            return Err(BenchError::Interrupted);
        }
        seqid += 1;
        xid += 1;
        let mut all = vec![Op::Sequence(SequenceArgs {
            sessionid: cs.sessionid,
            sequenceid: seqid,
            slotid: 0,
            highest_slotid: 0,
            cachethis: false,
        })];
        all.extend(ops);
        let r = sync_compound(s, cred, xid, &all)?;
        Ok((r, all))
    };
    let ok = |(r, ops): (CompoundReply, Vec<Op>)| check(r, &ops);
    let mut ops = vec![Op::PutRootFh];
    ops.extend(export.iter().map(|c| Op::Lookup(c.clone())));
    ops.push(Op::GetFh);
    let (r, sent) = call(s, ops)?;
    if r.status != status::NFS4_OK {
        // "LOOKUP /export": the path up to the component that failed.
        return Err(reply_error(
            &r,
            &sent,
            |opnum, index| {
                let lookups_before = r.results[..index]
                    .iter()
                    .filter(|x| x.opnum == op::LOOKUP)
                    .count();
                (opnum == op::LOOKUP)
                    .then(|| format!("LOOKUP {}", path_prefix(export, lookups_before + 1)))
            },
            None,
        ));
    }
    let dir_fh = r.getfh().map_err(|e| undecodable("GETFH", e))?;
    let mut prepared = Prepared {
        dir_fh: dir_fh.clone(),
        file_fh: Vec::new(),
        max_request: cs.fore.maxrequestsize,
        max_response: cs.fore.maxresponsesize,
    };
    let Some(spec) = file else {
        return Ok(prepared);
    };
    let (r, sent) = call(
        s,
        vec![
            Op::PutFh(dir_fh.clone()),
            Op::Open(OpenArgs {
                seqid: 0,
                share_access: 3,
                share_deny: 0,
                clientid,
                owner: b"ringnfs-bench".to_vec(),
                how: OpenHow::Unchecked(Fattr::new().mode(0o666)),
                claim: OpenClaim::Null(BENCH_FILE.to_vec()),
            }),
            Op::GetFh,
        ],
    )?;
    if r.status != status::NFS4_OK {
        // How long a grace period lasts is the server's business; its lease time is
        // the usual length, worth naming in the hint.
        let lease = if r.status == status::NFS4ERR_GRACE {
            lease_time(s, &mut call, &dir_fh)
        } else {
            None
        };
        return Err(reply_error(&r, &sent, |_, _| None, lease));
    }
    let open = r.open().map_err(|e| undecodable("OPEN", e))?;
    let fh = r.getfh().map_err(|e| undecodable("GETFH", e))?;
    let current = ok(call(
        s,
        vec![Op::PutFh(fh.clone()), Op::GetAttr(vec![1 << 4])],
    )?)?
    .attrs()
    .map_err(|e| undecodable("GETATTR", e))?
    .size
    .ok_or_else(|| BenchError::Rpc {
        step: "GETATTR".into(),
        detail: "the server did not return the file's size".into(),
    })?;
    // Largest block-aligned WRITE/READ that fits the granted sizes, at most 1 MiB.
    let chunk = (1u64 << 20)
        .min(u64::from(cs.fore.maxrequestsize.min(cs.fore.maxresponsesize)).saturating_sub(1024))
        / pattern::BLOCK as u64
        * pattern::BLOCK as u64;
    if chunk == 0 {
        return Err(BenchError::Limits(
            "the server's maximum request size is too small for the benchmark".into(),
        ));
    }
    let mut from = None;
    if spec.fill {
        if current < spec.size {
            from = Some(current - current % chunk);
        }
        // Sample 17 blocks spread over the file: a file left by an older bench, with
        // holes from a write run, or written by something else is rewritten.
        let blocks = spec.size / pattern::BLOCK as u64;
        for off in (0..=16).map(|i| blocks.saturating_sub(1) * i / 16 * pattern::BLOCK as u64) {
            if from == Some(0) {
                break;
            }
            if off >= current {
                continue;
            }
            let r = ok(call(
                s,
                vec![
                    Op::PutFh(fh.clone()),
                    Op::Read(ReadArgs {
                        stateid: open.stateid,
                        offset: off,
                        count: pattern::BLOCK as u32,
                    }),
                ],
            )?)?;
            let data = r.read().map_err(|e| undecodable("READ", e))?.data;
            if !pattern::matches(off, &data) {
                from = Some(0);
            }
        }
    }
    if let Some(mut off) = from {
        let mut data = vec![0u8; chunk as usize];
        while off < spec.size {
            let n = chunk.min(spec.size - off) as usize;
            pattern::generate(off, &mut data[..n]);
            ok(call(
                s,
                vec![
                    Op::PutFh(fh.clone()),
                    Op::Write {
                        stateid: open.stateid,
                        offset: off,
                        stable: 0,
                        data: data[..n].to_vec(),
                    },
                ],
            )?)?;
            off += n as u64;
        }
        ok(call(
            s,
            vec![
                Op::PutFh(fh.clone()),
                Op::Commit(CommitArgs {
                    offset: 0,
                    count: 0,
                }),
            ],
        )?)?;
    }
    ok(call(
        s,
        vec![
            Op::PutFh(fh.clone()),
            Op::Close(CloseArgs {
                seqid: 0,
                stateid: open.stateid,
            }),
        ],
    )?)?;
    prepared.file_fh = fh;
    Ok(prepared)
}

/// A SEQUENCE'd setup call: the reply (whatever its status) and the operations sent.
type Call<'a> =
    dyn FnMut(&mut Stream, Vec<Op>) -> Result<(CompoundReply, Vec<Op>), BenchError> + 'a;

/// The server's lease time (FATTR4_LEASE_TIME of `fh`), if it tells.
fn lease_time(s: &mut Stream, call: &mut Call<'_>, fh: &[u8]) -> Option<u32> {
    use ringnfs_proto::nfs4::attr::LEASE_TIME;
    let (r, _) = call(
        s,
        vec![Op::PutFh(fh.to_vec()), Op::GetAttr(vec![1 << LEASE_TIME])],
    )
    .ok()?;
    let (mask, vals) = r.getattr().ok()?;
    if mask.first()? & (1 << LEASE_TIME) == 0 {
        return None;
    }
    Some(u32::from_be_bytes(vals.get(..4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_paths_split_into_components() {
        assert!(path_components("/").is_empty());
        assert!(path_components("").is_empty());
        assert_eq!(path_components("/export"), vec![b"export".to_vec()]);
        assert_eq!(
            path_components("a//b/./c/"),
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
    }
}
