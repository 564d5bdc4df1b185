//! Session setup and teardown on a raw stream (the same stream then carries load).

use std::io::{Read, Write};
use std::net::TcpStream;

use anyhow::{Context, bail};

use super::pattern;

use crate::client::callback::answer_call;
use crate::client::ops::encode_compound;
use crate::client::{
    CallbackSec, CompoundReply, CreateSessionArgs, CreateSessionRes, DEFAULT_CB_PROGRAM,
    DefaultCallbackHandler, ExchangeIdArgs, Op, StateProtect, default_back_attrs,
    default_fore_attrs, unique_owner,
};
use crate::nfs4::consts::{NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND, op};
use crate::rpc::message::ReplyFailure;
use crate::rpc::record::mark;
use crate::rpc::{Credential, RecordAssembler, RpcMessage, decode_message, encode_call};

/// One blocking COMPOUND on a stream nobody else uses; server calls are answered.
pub fn sync_compound(
    s: &mut TcpStream,
    cred: &Credential,
    xid: u32,
    ops: &[Op],
) -> anyhow::Result<CompoundReply> {
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
    s.write_all(&rec)?;
    let handler = DefaultCallbackHandler::default();
    let mut asm = RecordAssembler::new(4 << 20);
    let mut buf = vec![0u8; 64 * 1024];
    let mut result: Option<anyhow::Result<CompoundReply>> = None;
    while result.is_none() {
        let n = s.read(&mut buf)?;
        if n == 0 {
            bail!("server closed the connection during setup");
        }
        let mut answers = Vec::new();
        asm.feed(&buf[..n], |r| {
            match decode_message(r) {
                Ok(RpcMessage::Reply(h)) if h.xid == xid => {
                    result = Some(match h.body {
                        Ok(b) => CompoundReply::decode(b).map_err(Into::into),
                        Err(ReplyFailure::Accepted(a)) => {
                            Err(anyhow::anyhow!("RPC accept_stat {a:?}"))
                        }
                        Err(f) => Err(anyhow::anyhow!("RPC denied: {f:?}")),
                    });
                }
                Ok(RpcMessage::Call(c)) => {
                    if let Some(a) = answer_call(&handler, &c) {
                        answers.extend_from_slice(&mark(a.len()));
                        answers.extend_from_slice(&a);
                    }
                }
                _ => {}
            }
            true
        })?;
        if !answers.is_empty() {
            s.write_all(&answers)?;
        }
    }
    result.unwrap()
}

/// First sequence id of slot 0 after [`create_session`] (which used it once).
pub const SLOT0_FIRST_SEQID: u32 = 2;

/// EXCHANGE_ID, CREATE_SESSION and RECLAIM_COMPLETE, asking for `slots` fore slots, without a back channel.
pub fn create_session(
    s: &mut TcpStream,
    cred: &Credential,
    slots: u32,
) -> anyhow::Result<(u64, CreateSessionRes)> {
    let r = sync_compound(
        s,
        cred,
        1,
        &[Op::ExchangeId(ExchangeIdArgs {
            verifier: rand::random(),
            owner_id: unique_owner(),
            flags: 0,
            state_protect: StateProtect::None,
            impl_id: None,
        })],
    )?;
    let ex = r.exchange_id().context("EXCHANGE_ID")?;
    let r = sync_compound(
        s,
        cred,
        2,
        &[Op::CreateSession(CreateSessionArgs {
            clientid: ex.clientid,
            sequence: ex.sequenceid,
            flags: 0,
            fore: default_fore_attrs(slots),
            back: default_back_attrs(),
            cb_program: DEFAULT_CB_PROGRAM,
            sec_parms: vec![CallbackSec::from_credential(cred)],
        })],
    )?;
    let cs = r.create_session().context("CREATE_SESSION")?;
    // RFC 8881 18.51.3: before its first non-reclaim OPEN a new client sends
    // RECLAIM_COMPLETE (nfs-ganesha answers NFS4ERR_GRACE otherwise). Uses slot 0,
    // sequence id 1: the load on slot 0 starts at 2 (SLOT0_FIRST_SEQID).
    let r = sync_compound(
        s,
        cred,
        3,
        &[
            Op::Sequence(crate::client::SequenceArgs {
                sessionid: cs.sessionid,
                sequenceid: 1,
                slotid: 0,
                highest_slotid: 0,
                cachethis: false,
            }),
            Op::ReclaimComplete { one_fs: false },
        ],
    )?;
    r.ok_body(op::RECLAIM_COMPLETE)
        .context("RECLAIM_COMPLETE")?;
    Ok((ex.clientid, cs))
}

/// DESTROY_SESSION then DESTROY_CLIENTID.
pub fn destroy_session(
    s: &mut TcpStream,
    cred: &Credential,
    clientid: u64,
    sessionid: [u8; 16],
) -> anyhow::Result<()> {
    sync_compound(s, cred, 5, &[Op::DestroySession(sessionid)])?
        .ok_body(op::DESTROY_SESSION)
        .context("DESTROY_SESSION")?;
    sync_compound(s, cred, 6, &[Op::DestroyClientid(clientid)])?
        .ok_body(op::DESTROY_CLIENTID)
        .context("DESTROY_CLIENTID")?;
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
/// 0666 and the given size. Uses its own client and session. Never assumes our server:
/// the write size follows the limits the server granted.
pub fn prepare(
    server: std::net::SocketAddr,
    cred: &Credential,
    export: &[Vec<u8>],
    file: Option<FileSpec>,
) -> anyhow::Result<Prepared> {
    use crate::client::ops::{Fattr, OpenArgs, OpenClaim, OpenHow, SequenceArgs};
    let mut s = TcpStream::connect(server).with_context(|| format!("connecting to {server}"))?;
    s.set_nodelay(true)?;
    let (clientid, cs) = create_session(&mut s, cred, 1)?;
    let mut seqid = SLOT0_FIRST_SEQID - 1;
    let mut xid = 10u32;
    let mut call = |s: &mut TcpStream, ops: Vec<Op>| -> anyhow::Result<CompoundReply> {
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
        if r.status != crate::nfs4::consts::status::NFS4_OK {
            bail!("preparing the benchmark: {:?}", r.failure());
        }
        Ok(r)
    };
    let mut ops = vec![Op::PutRootFh];
    ops.extend(export.iter().map(|c| Op::Lookup(c.clone())));
    ops.push(Op::GetFh);
    let dir_fh = call(&mut s, ops)
        .with_context(|| {
            let p: Vec<_> = export.iter().map(|c| String::from_utf8_lossy(c)).collect();
            format!("looking up the export path /{}", p.join("/"))
        })?
        .getfh()
        .context("GETFH")?;
    let mut prepared = Prepared {
        dir_fh: dir_fh.clone(),
        file_fh: Vec::new(),
        max_request: cs.fore.maxrequestsize,
        max_response: cs.fore.maxresponsesize,
    };
    if let Some(spec) = file {
        let r = call(
            &mut s,
            vec![
                Op::PutFh(dir_fh),
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
        let open = r.open().context("OPEN")?;
        let fh = r.getfh().context("GETFH")?;
        let current = call(
            &mut s,
            vec![Op::PutFh(fh.clone()), Op::GetAttr(vec![1 << 4])],
        )?
        .attrs()
        .context("GETATTR size")?
        .size
        .context("GETATTR without size")?;
        // Largest block-aligned WRITE/READ that fits the granted sizes, at most 1 MiB.
        let chunk = (1u64 << 20).min(
            u64::from(cs.fore.maxrequestsize.min(cs.fore.maxresponsesize)).saturating_sub(1024),
        ) / pattern::BLOCK as u64
            * pattern::BLOCK as u64;
        if chunk == 0 {
            bail!("the server's maximum request size is too small for the benchmark");
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
                let r = call(
                    &mut s,
                    vec![
                        Op::PutFh(fh.clone()),
                        Op::Read {
                            stateid: open.stateid,
                            offset: off,
                            count: pattern::BLOCK as u32,
                        },
                    ],
                )?;
                let data = r.read().context("READ")?.data;
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
                call(
                    &mut s,
                    vec![
                        Op::PutFh(fh.clone()),
                        Op::Write {
                            stateid: open.stateid,
                            offset: off,
                            stable: 0,
                            data: data[..n].to_vec(),
                        },
                    ],
                )?;
                off += n as u64;
            }
            call(
                &mut s,
                vec![
                    Op::PutFh(fh.clone()),
                    Op::Commit {
                        offset: 0,
                        count: 0,
                    },
                ],
            )?;
        }
        call(
            &mut s,
            vec![
                Op::PutFh(fh.clone()),
                Op::Close {
                    seqid: 0,
                    stateid: open.stateid,
                },
            ],
        )?;
        prepared.file_fh = fh;
    }
    destroy_session(&mut s, cred, clientid, cs.sessionid)?;
    Ok(prepared)
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
