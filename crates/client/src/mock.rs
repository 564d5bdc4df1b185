//! A small in-process NFSv4.1 server for the client's and the load generator's tests:
//! EXCHANGE_ID, CREATE_SESSION, SEQUENCE with a slot table and reply cache,
//! BIND_CONN_TO_SESSION, DESTROY_*, PUTROOTFH, GETFH. Not a reference implementation.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::ops::SessionId;
use super::ops::wire::{self, Xdr};
use ringnfs_proto::nfs4::consts::{
    CB_PROC_COMPOUND, NFS4_PROGRAM, cb_op, cdfc, cdfs, create_session_flag, op, status,
};
use ringnfs_proto::rpc::record::mark;
use ringnfs_proto::rpc::{
    AcceptStat, Credential, RpcMessage, decode_message, encode_accepted, encode_call,
};
use ringnfs_proto::xdr::{XdrDecoder, XdrEncoder, XdrError};

pub const MOCK_SESSION: SessionId = SessionId([0x42; 16]);
pub const MOCK_CLIENTID: u64 = 0x1111_2222_3333_4444;
pub const MOCK_FH: [u8; 4] = [1, 2, 3, 4];
const MAX_SLOTS: u32 = 128;

#[derive(Default)]
struct SlotState {
    seqid: u32,
    reply: Option<Vec<u8>>,
}

#[derive(Default)]
pub struct MockState {
    slots: Mutex<HashMap<u32, SlotState>>,
    nslots: AtomicUsize,
    /// Requests executed (not replays), by SEQUENCE.
    pub executed: AtomicU64,
    pub replays: AtomicU64,
    /// Execute the next N SEQUENCE requests but close the connection instead of replying.
    pub drop_replies: AtomicUsize,
    /// Send a CB_COMPOUND/CB_SEQUENCE after CREATE_SESSION with CONN_BACK_CHAN.
    pub callback_after_create: std::sync::atomic::AtomicBool,
    pub callback_replies: AtomicU64,
    /// csa_sequence of every CREATE_SESSION received.
    pub create_sequences: Mutex<Vec<u32>>,
}

impl MockState {
    /// A fresh state with 64 slots, as [`MockServer::start`] makes it.
    pub fn new() -> MockState {
        let state = MockState::default();
        state.nslots.store(64, Ordering::Relaxed);
        state
    }
}

pub struct MockServer {
    pub addr: SocketAddr,
    pub state: Arc<MockState>,
}

impl MockServer {
    pub fn start() -> MockServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let state = Arc::new(MockState::new());
        let st = state.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { return };
                let st = st.clone();
                std::thread::spawn(move || serve(s, st));
            }
        });
        MockServer { addr, state }
    }
}

fn serve(s: TcpStream, st: Arc<MockState>) {
    s.set_nodelay(true).unwrap();
    let mut r = BufReader::with_capacity(64 * 1024, s.try_clone().unwrap());
    let mut w = BufWriter::with_capacity(64 * 1024, s.try_clone().unwrap());
    loop {
        let mut h = [0u8; 4];
        if r.read_exact(&mut h).is_err() {
            return;
        }
        let len = (u32::from_be_bytes(h) & 0x7fff_ffff) as usize;
        let mut rec = vec![0; len];
        if r.read_exact(&mut rec).is_err() {
            return;
        }
        let mut out = Vec::with_capacity(256);
        let mut callback = false;
        match decode_message(&rec) {
            Ok(RpcMessage::Call(c)) if c.prog == NFS4_PROGRAM => {
                if c.proc_ == 0 {
                    encode_accepted(&mut out, c.xid, AcceptStat::Success);
                } else {
                    match compound(&st, c.args) {
                        Ok(Some((res, cb))) => {
                            encode_accepted(&mut out, c.xid, AcceptStat::Success);
                            out.extend_from_slice(&res);
                            callback = cb;
                        }
                        Ok(None) => {
                            // Executed, reply "lost": drop the connection.
                            let _ = w.flush();
                            let _ = s.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                        Err(_) => encode_accepted(&mut out, c.xid, AcceptStat::GarbageArgs),
                    }
                }
            }
            Ok(RpcMessage::Call(c)) => encode_accepted(&mut out, c.xid, AcceptStat::ProgUnavail),
            Ok(RpcMessage::Reply(_)) => {
                st.callback_replies.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Err(_) => return,
        }
        let _ = w.write_all(&mark(out.len()));
        let _ = w.write_all(&out);
        if callback {
            let cb = callback_call();
            let _ = w.write_all(&mark(cb.len()));
            let _ = w.write_all(&cb);
        }
        if r.buffer().is_empty() && w.flush().is_err() {
            return;
        }
    }
}

/// The CB_COMPOUND { CB_SEQUENCE } the mock sends after CREATE_SESSION asked for a back
/// channel (AUTH_NONE, xid 0xCB).
pub fn callback_call() -> Vec<u8> {
    let mut cb = Vec::new();
    encode_call(
        &mut cb,
        0xCB,
        0x4000_0000,
        1,
        CB_PROC_COMPOUND,
        &Credential::None,
    );
    cb.put_opaque(b"");
    cb.put_u32(1);
    cb.put_u32(0);
    cb.put_u32(1);
    cb.put_u32(cb_op::CB_SEQUENCE);
    wire::CbSequenceArgs {
        sessionid: MOCK_SESSION,
        sequenceid: 1,
        slotid: 0,
        highest_slotid: 0,
        cachethis: false,
        referring_calls: Vec::new(),
    }
    .encode(&mut cb);
    cb
}

/// Returns the COMPOUND4res, whether to send a callback, or None to drop the reply.
pub fn compound(st: &MockState, args: &[u8]) -> Result<Option<(Vec<u8>, bool)>, XdrError> {
    let mut d = XdrDecoder::new(args);
    let tag = d.opaque(1024)?.to_vec();
    let _minor = d.u32()?;
    let n = d.array_len(64, 4)?;
    let mut res = Vec::new();
    let mut status = status::NFS4_OK;
    let mut count = 0;
    let mut seq_slot = None;
    let mut callback = false;
    for i in 0..n {
        let opnum = d.u32()?;
        count += 1;
        res.put_u32(opnum);
        match opnum {
            op::SEQUENCE if i == 0 => {
                let a = wire::SequenceArgs::decode(&mut d)?;
                let (sid, seqid, slot) = (a.sessionid, a.sequenceid, a.slotid);
                let nslots = st.nslots.load(Ordering::Relaxed) as u32;
                if sid != MOCK_SESSION {
                    status = status::NFS4ERR_BADSESSION;
                } else if slot >= nslots {
                    status = status::NFS4ERR_BADSLOT;
                } else {
                    let slots = st.slots.lock();
                    let cur = slots.get(&slot).map(|s| s.seqid).unwrap_or(0);
                    if seqid == cur && cur != 0 {
                        st.replays.fetch_add(1, Ordering::Relaxed);
                        let r = slots[&slot].reply.clone().unwrap();
                        return Ok(Some((r, false)));
                    } else if seqid != cur.wrapping_add(1) {
                        status = status::NFS4ERR_SEQ_MISORDERED;
                    } else {
                        seq_slot = Some((slot, seqid));
                        res.put_u32(0);
                        wire::SequenceResOk {
                            sessionid: sid,
                            sequenceid: seqid,
                            slotid: slot,
                            highest_slotid: nslots - 1,
                            target_highest_slotid: nslots - 1,
                            status_flags: 0,
                        }
                        .encode(&mut res);
                        continue;
                    }
                }
            }
            op::EXCHANGE_ID => {
                wire::ExchangeIdArgs::decode(&mut d)?;
                res.put_u32(0);
                wire::ExchangeIdResOk {
                    clientid: MOCK_CLIENTID,
                    sequenceid: 1,
                    flags: 0x8001_0000,
                    state_protect: wire::StateProtectRes::None,
                    server_owner: wire::ServerOwner {
                        minor_id: 1,
                        major_id: b"mock",
                    },
                    server_scope: b"mock-scope",
                    impl_id: None,
                }
                .encode(&mut res);
                continue;
            }
            op::CREATE_SESSION => {
                let a = wire::CreateSessionArgs::decode(&mut d)?;
                let (seq, flags, mut fore) = (a.sequence, a.flags, a.fore);
                st.create_sequences.lock().push(seq);
                // A new session (always MOCK_SESSION): a fresh slot table.
                st.slots.lock().clear();
                fore.maxrequests = fore.maxrequests.min(MAX_SLOTS);
                // The mock has one session: a new one starts with fresh slots.
                st.slots.lock().clear();
                st.nslots
                    .store(fore.maxrequests as usize, Ordering::Relaxed);
                callback = flags & create_session_flag::CONN_BACK_CHAN != 0
                    && st.callback_after_create.load(Ordering::Relaxed);
                res.put_u32(0);
                wire::CreateSessionResOk {
                    sessionid: MOCK_SESSION,
                    sequence: seq,
                    flags: flags & create_session_flag::CONN_BACK_CHAN,
                    fore,
                    back: a.back,
                }
                .encode(&mut res);
                continue;
            }
            op::BIND_CONN_TO_SESSION => {
                let a = wire::BindConnArgs::decode(&mut d)?;
                let granted = match a.dir {
                    cdfc::FORE => Some(cdfs::FORE),
                    cdfc::BACK => Some(cdfs::BACK),
                    cdfc::FORE_OR_BOTH | cdfc::BACK_OR_BOTH => Some(cdfs::BOTH),
                    _ => None,
                };
                match granted {
                    Some(g) if n == 1 => {
                        res.put_u32(0);
                        wire::BindConnResOk { dir: g, ..a }.encode(&mut res);
                        continue;
                    }
                    Some(_) => status = status::NFS4ERR_NOT_ONLY_OP,
                    None => status = status::NFS4ERR_INVAL,
                }
            }
            op::DESTROY_SESSION => {
                wire::DestroySessionArgs::decode(&mut d)?;
                res.put_u32(0);
                continue;
            }
            op::DESTROY_CLIENTID => {
                wire::DestroyClientidArgs::decode(&mut d)?;
                res.put_u32(0);
                continue;
            }
            op::PUTROOTFH => {
                res.put_u32(0);
                continue;
            }
            op::RECLAIM_COMPLETE => {
                wire::ReclaimCompleteArgs::decode(&mut d)?;
                res.put_u32(0);
                continue;
            }
            op::GETFH => {
                res.put_u32(0);
                res.put_opaque(&MOCK_FH);
                continue;
            }
            _ => {
                status = status::NFS4ERR_OP_ILLEGAL;
                res.truncate(res.len() - 4);
                res.put_u32(op::ILLEGAL);
            }
        }
        res.put_u32(status.code());
        break;
    }
    let mut out = Vec::new();
    out.put_u32(status.code());
    out.put_opaque(&tag);
    out.put_u32(count);
    out.put_raw(&res);
    if let Some((slot, seqid)) = seq_slot {
        st.executed.fetch_add(1, Ordering::Relaxed);
        st.slots.lock().insert(
            slot,
            SlotState {
                seqid,
                reply: Some(out.clone()),
            },
        );
        let drop_it = st
            .drop_replies
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
            .is_ok();
        if drop_it {
            return Ok(None);
        }
    }
    Ok(Some((out, callback)))
}
