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
