//! Property tests: random sequences of protocol operations against one
//! [`StateManager`], with [`StateManager::check_invariants`] after every operation (in
//! release builds too; debug builds also check every table after each mutation), and
//! byte-range locking against a model that tracks each byte.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use ringnfs_fs::ObjHandle;
use ringnfs_proto::nfs4::consts::{cdfc, create_session_flag, exchgid_flag};
use ringnfs_proto::nfs4::ops::{StateProtectArgs, StateProtectOps};
use ringnfs_proto::nfs4::types::ops_to_bitmap;
use ringnfs_proto::rpc::{AuthSys, Credential};
use ringnfs_service::{ConnMeta, make_conn_id};

use crate::client::MACH_CRED_ENFORCEABLE;
use crate::files::{FileStateTable, LockRequest, Locker, Owner, Range, SHARE_ACCESS_BOTH};
use crate::lease::Clock;
use crate::session::ChannelAttrs;
use crate::settings::OverLimit;
use crate::slots::CachedReply;
use crate::stateid::Stateid;
use crate::{
    ClientId, CompoundSize, CreateSessionArgs, ExchangeIdArgs, SeqGrant, SeqOutcome, SequenceArgs,
    SessionId, StateConfig, StateManager,
};

const CONNS: usize = 4;

/// One step a client, an operator or the reaper can take. Small numbers pick among the
/// connections, clients, sessions and stateids seen so far.
#[derive(Debug, Clone)]
enum Op {
    Connect(u8),
    Disconnect(u8),
    Drain(u8),
    ExchangeId {
        owner: u8,
        verifier: u8,
        principal: u8,
        update: bool,
        mach_cred: bool,
    },
    CreateSession {
        client: u8,
        conn: u8,
        principal: u8,
        sequence: u8,
        back: bool,
        slots: u8,
    },
    Bind {
        conn: u8,
        session: u8,
        principal: u8,
        dir: u8,
    },
    Sequence {
        conn: u8,
        session: u8,
        slot: u8,
        seqid: u8,
        hash: u8,
        done: bool,
    },
    Done(u8),
    DestroySession {
        conn: u8,
        session: u8,
        principal: u8,
    },
    ForceDestroySession(u8),
    DestroyClientid {
        client: u8,
        principal: u8,
    },
    Unbind {
        conn: u8,
        session: u8,
    },
    ReclaimComplete(u8),
    Expire(u8),
    Reap,
    Exclusive(bool),
    Limit(u8),
    OverLimit(bool),
    Open {
        session: u8,
        owner: u8,
        file: u8,
        access: u8,
        deny: u8,
    },
    Downgrade {
        open: u8,
        access: u8,
        deny: u8,
        current: bool,
    },
    Close {
        open: u8,
        current: bool,
    },
    Lock {
        open: u8,
        owner: u8,
        start: u8,
        len: u8,
        write: bool,
    },
    Relock {
        lock: u8,
        start: u8,
        len: u8,
        write: bool,
    },
    Unlock {
        lock: u8,
        start: u8,
        len: u8,
    },
    Free {
        which: u8,
        lock: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let n = any::<u8>;
    prop_oneof![
        1 => n().prop_map(Op::Connect),
        1 => n().prop_map(Op::Disconnect),
        1 => n().prop_map(Op::Drain),
        3 => (n(), n(), n(), any::<bool>(), any::<bool>()).prop_map(
            |(owner, verifier, principal, update, mach_cred)| Op::ExchangeId {
                owner,
                verifier,
                principal,
                update,
                mach_cred,
            }
        ),
        5 => (n(), n(), n(), n(), any::<bool>(), n()).prop_map(
            |(client, conn, principal, sequence, back, slots)| Op::CreateSession {
                client,
                conn,
                principal,
                sequence,
                back,
                slots,
            }
        ),
        3 => (n(), n(), n(), n()).prop_map(|(conn, session, principal, dir)| Op::Bind {
            conn,
            session,
            principal,
            dir
        }),
        4 => (n(), n(), n(), n(), n(), any::<bool>()).prop_map(
            |(conn, session, slot, seqid, hash, done)| Op::Sequence {
                conn,
                session,
                slot,
                seqid,
                hash,
                done,
            }
        ),
        1 => n().prop_map(Op::Done),
        1 => (n(), n(), n()).prop_map(|(conn, session, principal)| Op::DestroySession {
            conn,
            session,
            principal
        }),
        1 => n().prop_map(Op::ForceDestroySession),
        1 => (n(), n()).prop_map(|(client, principal)| Op::DestroyClientid { client, principal }),
        1 => (n(), n()).prop_map(|(conn, session)| Op::Unbind { conn, session }),
        1 => n().prop_map(Op::ReclaimComplete),
        1 => n().prop_map(Op::Expire),
        1 => Just(Op::Reap),
        1 => any::<bool>().prop_map(Op::Exclusive),
        1 => n().prop_map(Op::Limit),
        1 => any::<bool>().prop_map(Op::OverLimit),
        4 => (n(), n(), n(), n(), n()).prop_map(|(session, owner, file, access, deny)| {
            Op::Open {
                session,
                owner,
                file,
                access,
                deny,
            }
        }),
        1 => (n(), n(), n(), any::<bool>()).prop_map(|(open, access, deny, current)| {
            Op::Downgrade {
                open,
                access,
                deny,
                current,
            }
        }),
        2 => (n(), any::<bool>()).prop_map(|(open, current)| Op::Close { open, current }),
        4 => (n(), n(), n(), n(), any::<bool>()).prop_map(|(open, owner, start, len, write)| {
            Op::Lock {
                open,
                owner,
                start,
                len,
                write,
            }
        }),
        3 => (n(), n(), n(), any::<bool>()).prop_map(|(lock, start, len, write)| Op::Relock {
            lock,
            start,
            len,
            write
        }),
        3 => (n(), n(), n()).prop_map(|(lock, start, len)| Op::Unlock { lock, start, len }),
        1 => (n(), any::<bool>()).prop_map(|(which, lock)| Op::Free { which, lock }),
    ]
}

fn pick<T: Copy>(v: &[T], i: u8) -> Option<T> {
    (!v.is_empty()).then(|| v[i as usize % v.len()])
}

/// Mostly one principal (AUTH_NONE), sometimes one of two others.
fn cred(principal: u8) -> Credential {
    match principal {
        0..224 => Credential::None,
        p => Credential::Sys(AuthSys {
            stamp: 0,
            machine_name: b"host".to_vec(),
            uid: 1000 + p as u32 % 2,
            gid: 0,
            gids: vec![],
        }),
    }
}

fn file(n: u8) -> ObjHandle {
    ObjHandle::new(&[n % 3 + 1; 8]).unwrap()
}

/// A range of a few bytes within the first 16, or from there to the end of the file.
fn range(start: u8, len: u8) -> Range {
    let start = (start % 16) as u64;
    match len % 5 {
        0 => Range::from_nfs(start, u64::MAX).unwrap(),
        l => Range::from_nfs(start, (l as u64).min(16 - start)).unwrap(),
    }
}

fn fore(slots: u8) -> ChannelAttrs {
    crate::testutil::channel_attrs(slots as u32 % 3 + 1)
}

fn back() -> ChannelAttrs {
    ChannelAttrs {
        maxrequests: 1,
        maxoperations: 2,
        ..fore(0)
    }
}

/// What the test knows, like a client would: ids it was given.
struct World {
    state: Arc<StateManager>,
    conns: Vec<Option<ConnMeta>>,
    next_conn: u64,
    clients: Vec<ClientId>,
    /// The csa_sequence EXCHANGE_ID told each client to use next.
    next_cs: std::collections::HashMap<ClientId, u32>,
    sessions: Vec<SessionId>,
    /// Last sequence id used on (session, slot).
    seqids: std::collections::HashMap<(SessionId, u32), u32>,
    pending: Vec<SeqGrant>,
    opens: Vec<(ClientId, ObjHandle, Stateid)>,
    locks: Vec<(ClientId, ObjHandle, Stateid)>,
}

impl World {
    fn new() -> Self {
        let mut state = StateManager::new(StateConfig {
            shards: 4,
            limits: crate::SessionLimits {
                max_sessions_per_client: 3,
                ..Default::default()
            },
            ..Default::default()
        });
        // Started long ago, so a lease renewed "at time 0" has expired.
        Arc::get_mut(&mut state).expect("not shared yet").clock =
            Clock::started_ago(Duration::from_secs(1000));
        let mut w = Self {
            state,
            conns: vec![None; CONNS],
            next_conn: 1,
            clients: Vec::new(),
            next_cs: Default::default(),
            sessions: Vec::new(),
            seqids: Default::default(),
            pending: Vec::new(),
            opens: Vec::new(),
            locks: Vec::new(),
        };
        for i in 0..CONNS as u8 {
            w.apply(&Op::Connect(i));
        }
        w
    }

    /// An open connection (opening one if the pick is closed).
    fn conn(&mut self, i: u8) -> ConnMeta {
        let i = i as usize % CONNS;
        if self.conns[i].is_none() {
            self.apply(&Op::Connect(i as u8));
        }
        self.conns[i].clone().expect("open")
    }

    /// A client id given out: mostly one that still exists.
    fn client(&self, i: u8) -> Option<ClientId> {
        if i < 224 {
            let clients = self.state.clients.lock();
            let live: Vec<ClientId> = self
                .clients
                .iter()
                .copied()
                .filter(|c| clients.get(*c).is_some())
                .collect();
            if !live.is_empty() {
                return pick(&live, i);
            }
        }
        pick(&self.clients, i)
    }

    /// A session id given out: mostly one that still exists.
    fn session(&self, i: u8) -> Option<SessionId> {
        if i < 224 {
            let live: Vec<SessionId> = self
                .sessions
                .iter()
                .copied()
                .filter(|s| {
                    self.state
                        .shard_of(s)
                        .is_some_and(|sh| sh.lock().contains(s))
                })
                .collect();
            if !live.is_empty() {
                return pick(&live, i);
            }
        }
        pick(&self.sessions, i)
    }

    /// The client of a live session, as a COMPOUND after SEQUENCE would have it.
    fn session_client(&self, i: u8) -> Option<ClientId> {
        let sid = self.session(i)?;
        let shard = self.state.shard_of(&sid)?;
        shard.lock().session(&sid).map(|s| s.client)
    }

    fn apply(&mut self, op: &Op) {
        let st = Arc::clone(&self.state);
        match *op {
            Op::Connect(i) => {
                let i = i as usize % CONNS;
                if self.conns[i].is_none() {
                    let meta = ConnMeta::detached(make_conn_id(i % 2, self.next_conn), i % 2);
                    self.next_conn += 1;
                    st.conn_opened(&meta);
                    self.conns[i] = Some(meta);
                }
            }
            Op::Disconnect(i) => {
                if let Some(meta) = self.conns[i as usize % CONNS].take() {
                    st.conn_closed(&meta);
                }
            }
            Op::Drain(i) => {
                if let Some(meta) = &self.conns[i as usize % CONNS] {
                    st.drain_connection(meta.id);
                }
            }
            Op::ExchangeId {
                owner,
                verifier,
                principal,
                update,
                mach_cred,
            } => {
                let owner = [b'a' + owner % 3];
                let args = ExchangeIdArgs {
                    verifier: [verifier % 2; 8],
                    owner: &owner,
                    flags: if update {
                        exchgid_flag::UPD_CONFIRMED_REC_A
                    } else {
                        0
                    },
                    state_protect: if mach_cred {
                        StateProtectArgs::MachCred(StateProtectOps {
                            must_enforce: ops_to_bitmap(&MACH_CRED_ENFORCEABLE),
                            must_allow: vec![],
                        })
                    } else {
                        StateProtectArgs::None
                    },
                    impl_id: None,
                };
                if let Ok(r) = st.exchange_id(0, &cred(principal), &args) {
                    if !self.clients.contains(&r.clientid) {
                        self.clients.push(r.clientid);
                    }
                    self.next_cs.insert(r.clientid, r.sequenceid);
                }
            }
            Op::CreateSession {
                client,
                conn,
                principal,
                sequence,
                back: with_back,
                slots,
            } => {
                let Some(clientid) = self.client(client) else {
                    return;
                };
                let next = self.next_cs.get(&clientid).copied().unwrap_or(1);
                let sequence = match sequence % 4 {
                    0 => next.wrapping_sub(1),
                    3 => next.wrapping_add(1),
                    _ => next,
                };
                let meta = self.conn(conn);
                let args = CreateSessionArgs {
                    clientid,
                    sequence,
                    flags: if with_back {
                        create_session_flag::CONN_BACK_CHAN
                    } else {
                        0
                    },
                    fore: fore(slots),
                    back: back(),
                    cb_program: 0x4000_0000,
                    sec_parms: vec![],
                };
                if let Ok(r) = st.create_session(&meta, &cred(principal), &args) {
                    if r.sequence == next {
                        self.next_cs.insert(clientid, next.wrapping_add(1));
                    }
                    if !self.sessions.contains(&r.sessionid) {
                        self.sessions.push(r.sessionid);
                    }
                }
            }
            Op::Bind {
                conn,
                session,
                principal,
                dir,
            } => {
                let Some(sid) = self.session(session) else {
                    return;
                };
                let meta = self.conn(conn);
                let dir = [
                    cdfc::FORE,
                    cdfc::BACK,
                    cdfc::FORE_OR_BOTH,
                    cdfc::BACK_OR_BOTH,
                    5,
                ][dir as usize % 5];
                let _ = st.bind_conn_to_session(&meta, &cred(principal), &sid, dir);
            }
            Op::Sequence {
                conn,
                session,
                slot,
                seqid,
                hash,
                done,
            } => {
                let Some(sid) = self.session(session) else {
                    return;
                };
                let meta = self.conn(conn);
                let slot = slot as u32 % 4;
                let last = self.seqids.get(&(sid, slot)).copied().unwrap_or(0);
                let seqid = match seqid % 4 {
                    0 => last,
                    3 => last.wrapping_add(2),
                    _ => last.wrapping_add(1),
                };
                let args = SequenceArgs {
                    sessionid: sid,
                    sequenceid: seqid,
                    slotid: slot,
                    highest_slotid: slot,
                    cachethis: hash % 2 == 0,
                };
                let size = CompoundSize {
                    numops: 2,
                    request_len: 200,
                    min_reply_len: 100,
                };
                match st.sequence(&meta, &args, hash as u64 % 2, size) {
                    Ok(SeqOutcome::Execute(grant)) => {
                        self.seqids.insert((sid, slot), seqid);
                        if done {
                            st.sequence_done(
                                &grant,
                                CachedReply::Full(vec![hash; 8]),
                                Default::default(),
                            );
                        } else {
                            self.pending.push(grant);
                        }
                    }
                    Ok(SeqOutcome::Replay(..)) | Err(_) => {}
                }
            }
            Op::Done(i) => {
                if !self.pending.is_empty() {
                    let g = self.pending.remove(i as usize % self.pending.len());
                    st.sequence_done(&g, CachedReply::Empty, Default::default());
                }
            }
            Op::DestroySession {
                conn,
                session,
                principal,
            } => {
                let Some(sid) = self.session(session) else {
                    return;
                };
                let meta = self.conn(conn);
                let _ = st.destroy_session(&meta, &cred(principal), &sid);
            }
            Op::ForceDestroySession(i) => {
                if let Some(sid) = self.session(i) {
                    st.force_destroy_session(&sid);
                }
            }
            Op::DestroyClientid { client, principal } => {
                if let Some(c) = self.client(client) {
                    let _ = st.destroy_clientid(0, &cred(principal), c);
                }
            }
            Op::Unbind { conn, session } => {
                if let (Some(sid), Some(meta)) = (
                    self.session(session),
                    self.conns[conn as usize % CONNS].clone(),
                ) {
                    st.unbind(meta.id, &sid);
                }
            }
            Op::ReclaimComplete(i) => {
                if let Some(c) = self.client(i) {
                    let _ = st.reclaim_complete(c, i % 2 == 0);
                }
            }
            Op::Expire(i) => {
                if let Some(c) = self.client(i) {
                    if let Some(rec) = st.clients.lock().get(c) {
                        rec.lease.renew(0);
                    }
                    st.reap();
                }
            }
            Op::Reap => {
                st.reap();
            }
            Op::Exclusive(on) => st.settings.set_exclusive_binding(on),
            Op::Limit(n) => st
                .settings
                .set_max_connections_per_session(n as u64 % 3)
                .unwrap(),
            Op::OverLimit(serve) => st.settings.set_over_limit(if serve {
                OverLimit::Serve
            } else {
                OverLimit::Delay
            }),
            Op::Open {
                session,
                owner,
                file: f,
                access,
                deny,
            } => {
                let Some(client) = self.session_client(session) else {
                    return;
                };
                let owner = Owner {
                    client,
                    owner: vec![b'o', owner % 2],
                };
                let f = file(f);
                if let Ok(sid) = st.files.open(owner, f, access as u32 % 4, deny as u32 % 4) {
                    self.opens.retain(|o| o.2.other != sid.other);
                    self.opens.push((client, f, sid));
                }
            }
            Op::Downgrade {
                open,
                access,
                deny,
                current,
            } => {
                let Some((client, f, sid)) = pick(&self.opens, open) else {
                    return;
                };
                let sid = if current {
                    Stateid { seqid: 0, ..sid }
                } else {
                    sid
                };
                let _ =
                    st.files
                        .open_downgrade(&sid, client, &f, access as u32 % 4, deny as u32 % 4);
            }
            Op::Close { open, current } => {
                let Some((client, f, sid)) = pick(&self.opens, open) else {
                    return;
                };
                let sid = if current {
                    Stateid { seqid: 0, ..sid }
                } else {
                    sid
                };
                let _ = st.files.close(&sid, client, &f);
            }
            Op::Lock {
                open,
                owner,
                start,
                len,
                write,
            } => {
                let Some((client, f, sid)) = pick(&self.opens, open) else {
                    return;
                };
                let lock_owner = [b'l', owner % 2];
                let r = st.files.lock(LockRequest {
                    client,
                    file: &f,
                    locker: Locker::New {
                        open: Stateid { seqid: 0, ..sid },
                        owner: &lock_owner,
                    },
                    range: range(start, len),
                    write,
                });
                if let Ok(Ok(l)) = r {
                    self.locks.retain(|x| x.2.other != l.other);
                    self.locks.push((client, f, l));
                }
            }
            Op::Relock {
                lock,
                start,
                len,
                write,
            } => {
                let Some((client, f, sid)) = pick(&self.locks, lock) else {
                    return;
                };
                let _ = st.files.lock(LockRequest {
                    client,
                    file: &f,
                    locker: Locker::Existing(Stateid { seqid: 0, ..sid }),
                    range: range(start, len),
                    write,
                });
            }
            Op::Unlock { lock, start, len } => {
                let Some((client, f, sid)) = pick(&self.locks, lock) else {
                    return;
                };
                let _ =
                    st.files
                        .unlock(&Stateid { seqid: 0, ..sid }, client, &f, range(start, len));
            }
            Op::Free { which, lock } => {
                let list = if lock { &self.locks } else { &self.opens };
                if let Some((client, _, sid)) = pick(list, which) {
                    let _ = st.files.free(&sid, client);
                }
            }
        }
    }
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut w = World::new();
    // Two clients with a session each to start from.
    for owner in 0..2 {
        w.apply(&Op::ExchangeId {
            owner,
            verifier: 0,
            principal: 0,
            update: false,
            mach_cred: owner == 1,
        });
        w.apply(&Op::CreateSession {
            client: 255,
            conn: owner,
            principal: 0,
            sequence: 1,
            back: owner == 0,
            slots: 2,
        });
    }
    for (i, op) in ops.iter().enumerate() {
        w.apply(op);
        if let Err(e) = w.state.check_invariants() {
            return Err(TestCaseError::fail(format!("after op {i} {op:?}: {e}")));
        }
    }
    // Every connection closes: no binding and no registered connection is left.
    for i in 0..CONNS as u8 {
        w.apply(&Op::Disconnect(i));
    }
    w.state
        .check_invariants()
        .map_err(|e| TestCaseError::fail(format!("after closing: {e}")))?;
    prop_assert_eq!(w.state.bound_connection_count(), 0);
    prop_assert_eq!(w.state.connection_count(), 0);
    // Every client expires: no session, open or lock is left.
    for c in w.clients.clone() {
        if let Some(rec) = w.state.clients.lock().get(c) {
            rec.lease.renew(0);
        }
    }
    w.state.reap();
    w.state
        .check_invariants()
        .map_err(|e| TestCaseError::fail(format!("after expiring: {e}")))?;
    prop_assert_eq!(w.state.session_count(), 0);
    prop_assert_eq!(w.state.files.counts(), (0, 0));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1024,
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_operations_keep_the_state_consistent(ops in prop::collection::vec(op(), 1..150)) {
        run(&ops)?;
    }
}

/// A lock request for the lock model: owner (0..3, clients 1, 1, 2), range, write.
#[derive(Debug, Clone)]
enum LockOp {
    Lock(u8, u8, u8, bool),
    Unlock(u8, u8, u8),
    Test(u8, u8, u8, bool),
}

fn lock_op() -> impl Strategy<Value = LockOp> {
    let n = any::<u8>;
    prop_oneof![
        3 => (n(), n(), n(), any::<bool>()).prop_map(|(o, s, l, w)| LockOp::Lock(o, s, l, w)),
        2 => (n(), n(), n()).prop_map(|(o, s, l)| LockOp::Unlock(o, s, l)),
        1 => (n(), n(), n(), any::<bool>()).prop_map(|(o, s, l, w)| LockOp::Test(o, s, l, w)),
    ]
}

/// Bytes 0..16 one by one, and byte 16 standing for everything from 16 to the end.
const CELLS: usize = 17;

fn cells(r: Range) -> std::ops::Range<usize> {
    let end = if r.end == u64::MAX {
        CELLS
    } else {
        r.end as usize
    };
    r.start as usize..end
}

/// The model: what each owner holds of each cell (None, or Some(write)).
type Held = [[Option<bool>; CELLS]; 3];

fn model_conflict(held: &Held, owner: usize, r: Range, write: bool) -> bool {
    (0..3)
        .filter(|&o| o != owner)
        .any(|o| cells(r).any(|c| held[o][c].is_some_and(|w| w || write)))
}

/// What the table holds, cell by cell.
fn table_cells(t: &FileStateTable, f: &ObjHandle, owners: &[Owner; 3]) -> Held {
    let mut held = [[None; CELLS]; 3];
    for l in t.held_locks(f) {
        let o = owners
            .iter()
            .position(|o| *o == l.owner)
            .expect("known owner");
        for c in cells(l.range) {
            assert!(held[o][c].is_none(), "cell {c} held twice by owner {o}");
            held[o][c] = Some(l.write);
        }
    }
    held
}

fn run_locks(ops: &[LockOp]) -> Result<(), TestCaseError> {
    let t = FileStateTable::new(1, 2);
    let f = file(0);
    let clients = [1, 1, 2];
    let mut opens = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        let open_owner = Owner {
            client: *c,
            owner: vec![b'o', i as u8],
        };
        opens.push(t.open(open_owner, f, SHARE_ACCESS_BOTH, 0).unwrap());
    }
    let owners: [Owner; 3] = std::array::from_fn(|i| Owner {
        client: clients[i],
        owner: vec![b'l', i as u8],
    });
    let mut lock_ids: [Option<Stateid>; 3] = [None; 3];
    let mut held: Held = [[None; CELLS]; 3];
    for (step, op) in ops.iter().enumerate() {
        match *op {
            LockOp::Lock(o, s, l, write) => {
                let o = o as usize % 3;
                let r = range(s, l);
                let locker = match lock_ids[o] {
                    Some(id) => Locker::Existing(Stateid { seqid: 0, ..id }),
                    None => Locker::New {
                        open: opens[o],
                        owner: &owners[o].owner,
                    },
                };
                let got = t
                    .lock(LockRequest {
                        client: clients[o],
                        file: &f,
                        locker,
                        range: r,
                        write,
                    })
                    .map_err(|e| TestCaseError::fail(format!("step {step}: status {e}")))?;
                let conflict = model_conflict(&held, o, r, write);
                match got {
                    Ok(id) => {
                        prop_assert!(!conflict, "step {}: {:?} granted over a conflict", step, op);
                        lock_ids[o] = Some(id);
                        for c in cells(r) {
                            held[o][c] = Some(write);
                        }
                    }
                    Err(c) => {
                        prop_assert!(conflict, "step {}: {:?} denied without conflict", step, op);
                        prop_assert!(
                            c.owner != owners[o] && c.range.overlaps(&r) && (c.write || write)
                        );
                    }
                }
            }
            LockOp::Unlock(o, s, l) => {
                let o = o as usize % 3;
                let Some(id) = lock_ids[o] else { continue };
                let r = range(s, l);
                t.unlock(&Stateid { seqid: 0, ..id }, clients[o], &f, r)
                    .map_err(|e| TestCaseError::fail(format!("step {step}: status {e}")))?;
                for c in cells(r) {
                    held[o][c] = None;
                }
            }
            LockOp::Test(o, s, l, write) => {
                let o = o as usize % 3;
                let r = range(s, l);
                let c = t.test_lock(&f, &owners[o], r, write);
                prop_assert_eq!(
                    c.is_some(),
                    model_conflict(&held, o, r, write),
                    "step {}: {:?}",
                    step,
                    op
                );
            }
        }
        t.check_invariants()
            .map_err(|e| TestCaseError::fail(format!("step {step} {op:?}: {e}")))?;
        prop_assert_eq!(
            table_cells(&t, &f, &owners),
            held,
            "step {}: {:?}",
            step,
            op
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    })]

    #[test]
    fn byte_range_locks_match_a_byte_model(ops in prop::collection::vec(lock_op(), 1..60)) {
        run_locks(&ops)?;
    }
}
