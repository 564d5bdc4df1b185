//! An NFSv4.1 session over one or more connections: the fore-channel slot table and
//! SEQUENCE handling (RFC 8881 §2.10.6).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use super::compound::CompoundReply;
use super::conn::RpcConn;
use super::error::ClientError;
use super::ops::wire::{BindConnArgs, BindConnResOk, CreateSessionResOk, SequenceArgs, Xdr};
use super::ops::{ChannelAttrs, CreateSessionArgs, Op, SessionId};
use ringnfs_proto::nfs4::consts::{op, status};
use ringnfs_proto::xdr::XdrEncoder;

/// How long `call_retrying` waits for a live connection or for a request the server
/// still has in progress (NFS4ERR_DELAY) before giving up.
const RETRY_DEADLINE: Duration = Duration::from_secs(30);
const RETRY_PAUSE: Duration = Duration::from_millis(10);
/// How long `call_retrying` waits for a connection to be added when none is open.
const NO_CONN_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// The sequence id the next new request on this slot uses.
    next_seqid: u32,
    in_use: bool,
    /// The last request's reply was lost: the server may or may not have executed it.
    uncertain: bool,
}

#[derive(Debug)]
struct SlotTable {
    slots: Vec<Slot>,
}

impl SlotTable {
    fn highest_in_use(&self) -> u32 {
        self.slots.iter().rposition(|s| s.in_use).unwrap_or(0) as u32
    }
}

/// What a finished request means for its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotOutcome {
    /// SEQUENCE was processed: the slot's sequence id advances.
    Advanced,
    /// SEQUENCE failed: the server left the slot alone (RFC 8881 §18.46.3).
    Unchanged,
    /// No reply: unknown whether the server executed the request.
    Uncertain,
}

fn outcome_of(r: &Result<CompoundReply, ClientError>) -> SlotOutcome {
    match r {
        Ok(reply) => match reply.sequence_status() {
            Some(status::NFS4_OK) => SlotOutcome::Advanced,
            _ => SlotOutcome::Unchanged,
        },
        // Refused before NFS processing.
        Err(
            ClientError::RpcAccepted(_)
            | ClientError::RpcMismatch(..)
            | ClientError::AuthError(_)
            | ClientError::GssContext(_),
        ) => SlotOutcome::Unchanged,
        Err(_) => SlotOutcome::Uncertain,
    }
}

/// A session shared by threads (`Arc<Session>`).
#[derive(Debug)]
pub struct Session {
    clientid: u64,
    sessionid: SessionId,
    /// What CREATE_SESSION asked for (reused by [`Session::recover`]).
    create_args: CreateSessionArgs,
    created: CreateSessionResOk,
    conns: RwLock<Vec<Arc<RpcConn>>>,
    table: Mutex<SlotTable>,
    slot_freed: Condvar,
    next_conn: AtomicUsize,
    /// The minor version of its COMPOUNDs (1 unless set; 4.2 ops go in 2 anyway).
    minor: AtomicU32,
}

impl Session {
    /// A session created by CREATE_SESSION (`args`, answered with `created`) on `conn`.
    pub fn new(args: CreateSessionArgs, created: CreateSessionResOk, conn: RpcConn) -> Self {
        Self::with_conns(args, created, vec![Arc::new(conn)])
    }

    fn with_conns(
        args: CreateSessionArgs,
        created: CreateSessionResOk,
        conns: Vec<Arc<RpcConn>>,
    ) -> Self {
        let n = created.fore.maxrequests.clamp(1, 1 << 16) as usize;
        Session {
            minor: AtomicU32::new(1),
            clientid: args.clientid,
            sessionid: created.sessionid,
            create_args: args,
            created,
            conns: RwLock::new(conns),
            table: Mutex::new(SlotTable {
                slots: vec![
                    Slot {
                        next_seqid: 1,
                        ..Slot::default()
                    };
                    n
                ],
            }),
            slot_freed: Condvar::new(),
            next_conn: AtomicUsize::new(0),
        }
    }

    pub fn clientid(&self) -> u64 {
        self.clientid
    }
    pub fn sessionid(&self) -> SessionId {
        self.sessionid
    }
    pub fn fore_attrs(&self) -> &ChannelAttrs {
        &self.created.fore
    }
    pub fn back_attrs(&self) -> &ChannelAttrs {
        &self.created.back
    }
    pub fn create_flags(&self) -> u32 {
        self.created.flags
    }
    /// Negotiated fore-channel slot count.
    pub fn slot_count(&self) -> usize {
        self.table.lock().slots.len()
    }
    /// The sequence id the next new request on `slot` will use.
    pub fn next_seqid(&self, slot: u32) -> Option<u32> {
        self.table
            .lock()
            .slots
            .get(slot as usize)
            .map(|s| s.next_seqid)
    }

    /// Add a connection; the server binds it (fore channel) on its first SEQUENCE.
    /// Returns its index.
    pub fn add_connection(&self, conn: RpcConn) -> usize {
        let mut c = self.conns.write();
        c.push(Arc::new(conn));
        c.len() - 1
    }

    pub fn connection(&self, index: usize) -> Option<Arc<RpcConn>> {
        self.conns.read().get(index).cloned()
    }
    pub fn connections(&self) -> Vec<Arc<RpcConn>> {
        self.conns.read().clone()
    }
    pub fn connection_count(&self) -> usize {
        self.conns.read().len()
    }

    fn conn(&self, index: usize) -> Result<Arc<RpcConn>, ClientError> {
        self.connection(index)
            .ok_or_else(|| ClientError::BadReply(format!("no connection {index}")))
    }

    /// Wait for a free slot (lowest id first) and take it.
    fn take_slot(&self) -> (u32, u32, bool, u32) {
        let mut t = self.table.lock();
        loop {
            if let Some(i) = t.slots.iter().position(|s| !s.in_use) {
                t.slots[i].in_use = true;
                let s = t.slots[i];
                let highest = t.highest_in_use();
                return (i as u32, s.next_seqid, s.uncertain, highest);
            }
            self.slot_freed.wait(&mut t);
        }
    }

    /// Free `slot`. `orig` is the sequence id the table held when the slot was taken,
    /// `used` the one the deciding request carried.
    fn release_slot(&self, slot: u32, orig: u32, used: u32, outcome: SlotOutcome) {
        let mut t = self.table.lock();
        let s = &mut t.slots[slot as usize];
        s.in_use = false;
        match outcome {
            SlotOutcome::Advanced => {
                s.next_seqid = used.wrapping_add(1);
                s.uncertain = false;
            }
            SlotOutcome::Unchanged => s.next_seqid = orig,
            SlotOutcome::Uncertain => {
                s.next_seqid = orig;
                s.uncertain = true;
            }
        }
        drop(t);
        self.slot_freed.notify_one();
    }

    /// COMPOUND4args of SEQUENCE followed by `ops`.
    fn encode(&self, slot: u32, seqid: u32, highest: u32, cachethis: bool, ops: &[Op]) -> Vec<u8> {
        let mut a = Vec::with_capacity(128);
        a.put_opaque(b"");
        // NFSv4.2 ops (RFC 7862, numbered from ALLOCATE on) go in a minor version 2
        // COMPOUND on the same session; everything else in the session's version.
        let minor = if ops.iter().any(|o| o.opnum() >= op::ALLOCATE) {
            2
        } else {
            self.minor.load(Ordering::Relaxed)
        };
        a.put_u32(minor);
        a.put_u32(ops.len() as u32 + 1);
        a.put_u32(op::SEQUENCE);
        SequenceArgs {
            sessionid: self.sessionid,
            sequenceid: seqid,
            slotid: slot,
            highest_slotid: highest,
            cachethis,
        }
        .encode(&mut a);
        for o in ops {
            o.encode(&mut a);
        }
        a
    }

    /// Send COMPOUNDs of minor version `minor` (1 or 2) from now on, as a client that
    /// mounted with `vers=4.2` does.
    pub fn use_minor_version(&self, minor: u32) {
        self.minor.store(minor, Ordering::Relaxed);
    }

    /// Send `ops` behind a SEQUENCE on a free slot over connection `conn_index`.
    /// The reply is returned whatever its status; the slot's sequence id advances when
    /// the server processed the SEQUENCE.
    ///
    /// After a lost reply the slot is "uncertain": the next request on it first tries the
    /// following sequence id (right if the server executed the lost request) and, on
    /// NFS4ERR_SEQ_MISORDERED, the same one (the server never saw it).
    pub fn call(
        &self,
        conn_index: usize,
        ops: &[Op],
        cachethis: bool,
    ) -> Result<CompoundReply, ClientError> {
        let conn = self.conn(conn_index)?;
        if conn.is_closed() {
            // Nothing sent: the slot stays as it is.
            return Err(ClientError::Disconnected);
        }
        let (slot, seqid, uncertain, highest) = self.take_slot();
        // `used`: the sequence id of the request whose reply decides the slot's fate.
        let (used, res) = if uncertain {
            let next = seqid.wrapping_add(1);
            let r = conn.compound_encoded(&self.encode(slot, next, highest, cachethis, ops));
            match &r {
                Ok(rep) if rep.sequence_status() == Some(status::NFS4ERR_SEQ_MISORDERED) => (
                    seqid,
                    conn.compound_encoded(&self.encode(slot, seqid, highest, cachethis, ops)),
                ),
                _ => (next, r),
            }
        } else {
            (
                seqid,
                conn.compound_encoded(&self.encode(slot, seqid, highest, cachethis, ops)),
            )
        };
        self.release_slot(slot, seqid, used, outcome_of(&res));
        res
    }

    /// Send with an explicit slot and sequence id; the slot table is not touched
    /// (for replay and misordering tests). sa_highest_slotid is the table's highest slot.
    pub fn call_on_slot(
        &self,
        conn_index: usize,
        slot: u32,
        seqid: u32,
        ops: &[Op],
        cachethis: bool,
    ) -> Result<CompoundReply, ClientError> {
        let conn = self.conn(conn_index)?;
        let highest = self.slot_count().saturating_sub(1) as u32;
        conn.compound_encoded(&self.encode(slot, seqid, highest, cachethis, ops))
    }

    /// Like `call`, but survives connections dying: when the connection used closes (or
    /// the call times out) before the reply, the identical request (same slot and
    /// sequence id) is resent on another live connection, and NFS4ERR_DELAY (the first
    /// copy still in progress) is retried after a pause. The server's reply cache makes
    /// this exactly-once; use `cachethis = true` for non-idempotent operations.
    /// Gives up after 30 s, or after 2 s without any open connection.
    pub fn call_retrying(&self, ops: &[Op], cachethis: bool) -> Result<CompoundReply, ClientError> {
        let (slot, orig, uncertain, highest) = self.take_slot();
        // An uncertain slot from a plain `call`: resolve it the same way `call` does.
        let mut seqid = if uncertain {
            orig.wrapping_add(1)
        } else {
            orig
        };
        let mut probing = uncertain;
        let deadline = Instant::now() + RETRY_DEADLINE;
        let mut last_err = ClientError::Disconnected;
        let mut start = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let mut no_conn_since: Option<Instant> = None;
        loop {
            if Instant::now() > deadline {
                self.release_slot(slot, orig, seqid, SlotOutcome::Uncertain);
                return Err(last_err);
            }
            let Some(conn) = self.live_conn(start) else {
                // Another thread may add a connection; do not wait long for it.
                let since = *no_conn_since.get_or_insert_with(Instant::now);
                if since.elapsed() > NO_CONN_WAIT {
                    self.release_slot(slot, orig, seqid, SlotOutcome::Uncertain);
                    return Err(last_err);
                }
                std::thread::sleep(RETRY_PAUSE);
                continue;
            };
            no_conn_since = None;
            let args = self.encode(slot, seqid, highest, cachethis, ops);
            let res = conn.compound_encoded(&args);
            match &res {
                Ok(rep) => match rep.sequence_status() {
                    Some(status::NFS4ERR_DELAY) => {
                        std::thread::sleep(RETRY_PAUSE);
                        continue;
                    }
                    Some(status::NFS4ERR_SEQ_MISORDERED) if probing => {
                        probing = false;
                        seqid = orig;
                        continue;
                    }
                    _ => {}
                },
                Err(e) if e.outcome_unknown() => {
                    tracing::debug!(slot, seqid, error = %e, "retrying on another connection");
                    start = start.wrapping_add(1);
                    if let Err(e) = res {
                        last_err = e;
                    }
                    continue;
                }
                Err(_) => {}
            }
            self.release_slot(slot, orig, seqid, outcome_of(&res));
            return res;
        }
    }

    /// The first open connection at or after `start` (round robin).
    fn live_conn(&self, start: usize) -> Option<Arc<RpcConn>> {
        let conns = self.conns.read();
        let n = conns.len();
        (0..n)
            .map(|i| &conns[(start + i) % n])
            .find(|c| !c.is_closed())
            .cloned()
    }

    /// BIND_CONN_TO_SESSION (alone in its COMPOUND) on connection `conn_index`; `dir` is
    /// sent as given (a channel_dir_from_client4 value, valid or not).
    pub fn bind_conn(&self, conn_index: usize, dir: u32) -> Result<BindConnResOk, ClientError> {
        let conn = self.conn(conn_index)?;
        let r = conn.compound(
            1,
            b"",
            &[Op::BindConnToSession(BindConnArgs {
                sessionid: self.sessionid,
                dir,
                use_rdma: false,
            })],
        )?;
        r.bind_conn()
    }

    /// A new session for the same client, to replace this one once the server has lost
    /// it (NFS4ERR_BADSESSION: destroyed by an operator, for instance) while the client
    /// record lives on. CREATE_SESSION with the next `csa_sequence` and the same request
    /// as before (channel attributes, back channel, callback program) is sent on the
    /// first open connection, which it binds; the other open connections are shared with
    /// the new session and bound by their first SEQUENCE there. File handles and the
    /// client's open and lock state stay valid. Calling it twice on the same old session
    /// resends the same CREATE_SESSION, which the server answers from its replay cache.
    pub fn recover(&self) -> Result<Arc<Session>, ClientError> {
        let conns: Vec<Arc<RpcConn>> = self
            .conns
            .read()
            .iter()
            .filter(|c| !c.is_closed())
            .cloned()
            .collect();
        let first = conns.first().ok_or(ClientError::Disconnected)?;
        let args = CreateSessionArgs {
            sequence: self.created.sequence.wrapping_add(1),
            ..self.create_args.clone()
        };
        let r = first.compound(1, b"", &[Op::CreateSession(args.clone())])?;
        let created = r.create_session()?;
        tracing::debug!(
            clientid = self.clientid,
            connections = conns.len(),
            "new session after the old one was lost"
        );
        Ok(Arc::new(Session::with_conns(args, created, conns)))
    }

    /// DESTROY_SESSION (alone) on the first open connection.
    pub fn destroy(&self) -> Result<(), ClientError> {
        let conn = self.live_conn(0).ok_or(ClientError::Disconnected)?;
        let r = conn.compound(1, b"", &[Op::DestroySession(self.sessionid)])?;
        r.ok_body(op::DESTROY_SESSION).map(|_| ())
    }

    /// DESTROY_CLIENTID (alone) on the first open connection; destroy the session first.
    pub fn destroy_clientid(&self) -> Result<(), ClientError> {
        let conn = self.live_conn(0).ok_or(ClientError::Disconnected)?;
        let r = conn.compound(1, b"", &[Op::DestroyClientid(self.clientid)])?;
        r.ok_body(op::DESTROY_CLIENTID).map(|_| ())
    }

    /// Shut every connection down.
    pub fn close_connections(&self) {
        for c in self.conns.read().iter() {
            c.shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::{MOCK_CLIENTID, MOCK_FH, MOCK_SESSION, MockServer};
    use crate::{Client, ClientOptions};
    use ringnfs_proto::nfs4::consts::{cb_op, cdfc, cdfs};

    fn setup(conns: usize) -> (MockServer, crate::ClientIds, Arc<Session>) {
        let m = MockServer::start();
        let (ids, s) = Client::connect(
            &[m.addr],
            ClientOptions {
                connections: conns,
                // These tests count the COMPOUNDs the mock executes.
                reclaim_complete: false,
                ..Default::default()
            },
        )
        .unwrap();
        (m, ids, s)
    }

    #[test]
    fn connect_and_sequence_advances_slot() {
        let (_m, ids, s) = setup(2);
        assert_eq!(ids.clientid, MOCK_CLIENTID);
        assert_eq!(s.sessionid(), MOCK_SESSION);
        assert_eq!(s.slot_count(), 64);
        assert_eq!(s.connection_count(), 2);
        assert_eq!(ids.exchange.server_scope, b"mock-scope");
        let r = s.call(1, &[Op::PutRootFh, Op::GetFh], false).unwrap();
        assert_eq!(r.getfh().unwrap(), MOCK_FH);
        let seq = r.sequence().unwrap();
        assert_eq!((seq.slotid, seq.sequenceid), (0, 1));
        assert_eq!(s.next_seqid(0), Some(2));
        s.call(0, &[], false).unwrap();
        assert_eq!(s.next_seqid(0), Some(3));
        s.destroy().unwrap();
        s.destroy_clientid().unwrap();
    }

    #[test]
    fn concurrent_calls_share_slots() {
        let (m, _ids, s) = setup(4);
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let r = s.call(i % 4, &[Op::PutRootFh], false).unwrap();
                        assert_eq!(r.status, status::NFS4_OK);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(m.state.executed.load(Ordering::Relaxed), 800);
        assert_eq!(m.state.replays.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn raw_slot_calls_replay_and_misorder() {
        let (m, _ids, s) = setup(1);
        s.call(0, &[Op::PutRootFh], true).unwrap();
        // Same slot and seqid again: the reply cache answers.
        let r = s.call_on_slot(0, 0, 1, &[Op::PutRootFh], true).unwrap();
        assert_eq!(r.sequence_status(), Some(status::NFS4_OK));
        assert_eq!(m.state.replays.load(Ordering::Relaxed), 1);
        let r = s.call_on_slot(0, 0, 5, &[], false).unwrap();
        assert_eq!(r.sequence_status(), Some(status::NFS4ERR_SEQ_MISORDERED));
        let r = s.call_on_slot(0, 999, 1, &[], false).unwrap();
        assert_eq!(r.sequence_status(), Some(status::NFS4ERR_BADSLOT));
        // The table was not touched by raw calls.
        assert_eq!(s.next_seqid(0), Some(2));
    }

    #[test]
    fn retrying_call_survives_a_lost_reply_exactly_once() {
        let (m, _ids, s) = setup(3);
        m.state.drop_replies.store(1, Ordering::Relaxed);
        let r = s.call_retrying(&[Op::PutRootFh, Op::GetFh], true).unwrap();
        assert_eq!(r.getfh().unwrap(), MOCK_FH);
        assert_eq!(m.state.executed.load(Ordering::Relaxed), 1);
        assert_eq!(m.state.replays.load(Ordering::Relaxed), 1);
        assert_eq!(s.connections().iter().filter(|c| c.is_closed()).count(), 1);
        assert_eq!(s.next_seqid(0), Some(2));
        // And the session goes on.
        s.call_retrying(&[], false).unwrap();
        assert_eq!(s.next_seqid(0), Some(3));
    }

    #[test]
    fn plain_call_after_lost_reply_recovers_the_slot() {
        let (m, _ids, s) = setup(2);
        m.state.drop_replies.store(1, Ordering::Relaxed);
        assert!(matches!(
            s.call(0, &[], false),
            Err(ClientError::Disconnected)
        ));
        // The server executed seqid 1; the uncertain slot is probed with seqid 2.
        let r = s.call(1, &[], false).unwrap();
        assert_eq!(r.sequence().unwrap().sequenceid, 2);
        assert_eq!(s.next_seqid(0), Some(3));
        assert_eq!(m.state.executed.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn retrying_call_gives_up_without_connections() {
        let (m, _ids, s) = setup(1);
        m.state.drop_replies.store(1, Ordering::Relaxed);
        let t = Instant::now();
        assert!(matches!(
            s.call_retrying(&[], true),
            Err(ClientError::Disconnected)
        ));
        assert!(t.elapsed() < Duration::from_secs(5));
        // The server executed it: the slot is uncertain and a new connection resolves it.
        s.add_connection(RpcConn::connect(m.addr, ringnfs_proto::rpc::Credential::None).unwrap());
        let r = s.call(1, &[], false).unwrap();
        assert_eq!(r.sequence().unwrap().sequenceid, 2);
        assert_eq!(m.state.executed.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn recover_creates_a_new_session_on_the_open_connections() {
        let (m, _ids, s) = setup(3);
        s.call(0, &[], false).unwrap();
        s.connection(1).unwrap().shutdown();
        let n = s.recover().unwrap();
        assert_eq!(n.clientid(), s.clientid());
        assert_eq!(
            n.connection_count(),
            2,
            "the closed connection is left behind"
        );
        assert!(Arc::ptr_eq(
            &n.connection(1).unwrap(),
            &s.connection(2).unwrap()
        ));
        assert_eq!(n.create_flags(), s.create_flags());
        assert_eq!(n.slot_count(), s.slot_count());
        // The next csa_sequence: the first CREATE_SESSION used the EXCHANGE_ID's one.
        assert_eq!(*m.state.create_sequences.lock(), vec![1, 2]);
        // A fresh slot table that works on every connection.
        assert_eq!(n.next_seqid(0), Some(1));
        n.call(1, &[Op::PutRootFh], false).unwrap();
        n.call(0, &[Op::PutRootFh], false).unwrap();
        assert_eq!(n.next_seqid(0), Some(3));
        // Again from the old session: the same request (a replay for the server).
        s.recover().unwrap();
        assert_eq!(*m.state.create_sequences.lock(), vec![1, 2, 2]);
    }

    #[test]
    fn recover_needs_an_open_connection() {
        let (_m, _ids, s) = setup(1);
        s.close_connections();
        assert!(matches!(s.recover(), Err(ClientError::Disconnected)));
    }

    #[test]
    fn bind_conn_directions() {
        let (_m, _ids, s) = setup(2);
        let b = s.bind_conn(1, cdfc::FORE_OR_BOTH).unwrap();
        assert_eq!(
            (b.sessionid, b.dir, b.use_rdma),
            (MOCK_SESSION, cdfs::BOTH, false)
        );
        let e = s.bind_conn(1, 0x42).unwrap_err();
        assert_eq!(e.nfs_status(), Some(status::NFS4ERR_INVAL));
    }

    #[test]
    fn callbacks_reach_the_default_handler() {
        let m = MockServer::start();
        m.state
            .callback_after_create
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let (ids, s) = Client::connect(&[m.addr], ClientOptions::default()).unwrap();
        let cb = ids.callbacks.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while m.state.callback_replies.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(m.state.callback_replies.load(Ordering::Relaxed), 1);
        assert_eq!(cb.op_count(cb_op::CB_SEQUENCE), 1);
        assert_eq!(cb.stats().last_sessionid, Some(s.sessionid()));
    }
}
