//! Session setup and teardown on a raw stream (the same stream then carries load).

use std::io::{Read, Write};
use std::net::TcpStream;

use anyhow::{Context, bail};

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

/// EXCHANGE_ID and CREATE_SESSION asking for `slots` fore slots, without a back channel.
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
    Ok((ex.clientid, cs))
}

/// DESTROY_SESSION then DESTROY_CLIENTID.
pub fn destroy_session(
    s: &mut TcpStream,
    cred: &Credential,
    clientid: u64,
    sessionid: [u8; 16],
) -> anyhow::Result<()> {
    sync_compound(s, cred, 3, &[Op::DestroySession(sessionid)])?
        .ok_body(op::DESTROY_SESSION)
        .context("DESTROY_SESSION")?;
    sync_compound(s, cred, 4, &[Op::DestroyClientid(clientid)])?
        .ok_body(op::DESTROY_CLIENTID)
        .context("DESTROY_CLIENTID")?;
    Ok(())
}

/// Name of the file I/O workloads use, in the export root.
pub const BENCH_FILE: &[u8] = b"ringnfs-bench.dat";

/// Create (or reuse) the I/O workloads' file in the export root with mode 0666 and the
/// given size, filling it with data first when `fill` (read workloads must read real
/// bytes, not holes). Uses its own client and session. Returns the file handle.
pub fn prepare_file(
    server: std::net::SocketAddr,
    cred: &Credential,
    size: u64,
    fill: bool,
) -> anyhow::Result<Vec<u8>> {
    use crate::client::ops::{Fattr, OpenArgs, OpenClaim, OpenHow, SequenceArgs};
    const CHUNK: u64 = 1 << 20;
    let mut s = TcpStream::connect(server).with_context(|| format!("connecting to {server}"))?;
    s.set_nodelay(true)?;
    let (clientid, cs) = create_session(&mut s, cred, 1)?;
    let mut seqid = 0u32;
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
            bail!("preparing the benchmark file: {:?}", r.failure());
        }
        Ok(r)
    };
    let r = call(
        &mut s,
        vec![
            Op::PutRootFh,
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
    let current = {
        let r = call(
            &mut s,
            vec![Op::PutFh(fh.clone()), Op::GetAttr(vec![1 << 4])],
        )?;
        r.attrs()
            .context("GETATTR size")?
            .size
            .context("GETATTR without size")?
    };
    if fill && current < size {
        let data = vec![0xa5u8; CHUNK as usize];
        let mut off = current - current % CHUNK;
        while off < size {
            let n = CHUNK.min(size - off) as usize;
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
    destroy_session(&mut s, cred, clientid, cs.sessionid)?;
    Ok(fh)
}
