//! What an op handler sees of its COMPOUND ([`CompoundCtx`]: the current and saved
//! filehandles, the session, the caller, the reply budget) and what it hands back when
//! its result waits for file I/O ([`PendingIo`]). Handlers depend on this file only,
//! never on the loop (`compound.rs`) or the table (`optable.rs`) that call them.

use ringnfs_fs::{Attrs, Caller, ObjHandle, Stability};
use ringnfs_proto::rpc::Credential;
use ringnfs_service::{Bytes, Caching, ConnMeta, FileIo, FileOp, IoFd};
use ringnfs_state::slots::CachedReply;
use ringnfs_state::stateid::Stateid;
use ringnfs_state::{SeqGrant, StateManager};

use std::sync::Arc;

use crate::consts::{NfsStatus, status};
use crate::export::{Export, ExportId, ExportSet};
use crate::fh::FileHandle;

/// An op's outcome: Ok after appending its resok, or an error status.
pub type OpResult = Result<(), NfsStatus>;

/// A filehandle in the COMPOUND: the backend object, the wire handle and the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurFh {
    pub obj: ObjHandle,
    pub fh: FileHandle,
    pub export: ExportId,
}

/// The buffer a COMPOUND's arguments were decoded from, so that an op can keep a part of
/// them past the call (a WRITE's data, the undecoded rest of a suspended COMPOUND).
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// Valid during this call only (a record in the transport's receive buffer): a part
    /// that is kept is copied.
    Borrowed,
    /// A buffer of its own (a large record, or the rest of a resumed COMPOUND): a part
    /// that is kept shares it.
    Shared(&'a Bytes),
}

impl Source<'_> {
    /// `part` as a slice of the shared record, if the record is one (no copy).
    pub fn share(&self, part: &[u8]) -> Option<Bytes> {
        match self {
            Source::Shared(b) if contains(b, part) => Some(b.slice_ref(part)),
            _ => None,
        }
    }

    /// `part` (a slice of what was decoded) as bytes that outlive the call.
    pub fn keep(&self, part: &[u8]) -> Bytes {
        self.share(part)
            .unwrap_or_else(|| Bytes::copy_from_slice(part))
    }
}

/// Whether `part` lies within `whole` (`slice_ref` requires it).
fn contains(whole: &[u8], part: &[u8]) -> bool {
    let w = whole.as_ptr_range();
    let p = part.as_ptr_range();
    !part.is_empty() && w.start <= p.start && p.end <= w.end
}

/// Per-COMPOUND context handed to op handlers.
pub struct CompoundCtx<'a> {
    /// What the arguments are decoded from.
    pub source: Source<'a>,
    pub state: &'a StateManager,
    pub conn: &'a ConnMeta,
    pub cred: &'a Credential,
    pub minor: u32,
    /// The exports this COMPOUND works on (the set when it started).
    pub exports: &'a ExportSet,
    /// The current filehandle's export (the pseudo root's before there is one).
    pub export: &'a Arc<Export>,
    /// The saved filehandle's export.
    pub saved_export: &'a Arc<Export>,
    /// Asynchronous COPYs.
    pub offloads: &'a crate::offload::Offloads,
    /// Delegation recalls.
    pub recalls: &'a crate::recall::Recalls,
    /// The caller after the current export's squashing.
    pub caller: Caller,
    /// The current export admits this client read-only.
    pub read_only: bool,
    /// The current export does not admit the call's security flavor or the connection's
    /// transport security: ops that use the filehandle get NFS4ERR_WRONGSEC (RFC 8881
    /// §2.6.3.1; knfsd answers a client without the TLS an export requires the same way).
    pub wrong_sec: bool,
    /// Ops run on the current export's files since it became current, added to its
    /// counters when another export becomes current or the COMPOUND ends (one atomic add
    /// per COMPOUND, not one per op).
    pub(crate) export_ops: u64,
    /// Set when the COMPOUND started with a successful SEQUENCE.
    pub session: Option<SeqGrant>,
    pub current_fh: Option<CurFh>,
    pub saved_fh: Option<CurFh>,
    /// The current stateid (RFC 8881 §16.2.3.1.2): set, replaced in arguments and
    /// cleared by the loop as the rows say, saved and restored with the filehandle.
    pub(crate) current_stateid: Option<Stateid>,
    pub(crate) saved_stateid: Option<Stateid>,
    /// Set by a handler whose result waits for file I/O on the connection's ring.
    pub pending_io: Option<PendingIo>,
    /// Set by a handler that must wait before it can run (`wait_before`): the loop drops
    /// what it wrote, suspends, and runs it again when the wait ends.
    pub(crate) wait_before: Option<PendingIo>,
    /// On that second run: how the wait ended.
    pub(crate) waited: Option<ringnfs_service::Waited>,
    /// Reply bytes the session still allows (set before each op; READ and READDIR fit
    /// their results into it).
    pub reply_room: usize,
    /// Reply bytes so far, RPC header and this op's opnum and status included (set
    /// before each op).
    pub reply_used: usize,
    /// Ops in the COMPOUND, and the length of the whole RPC call (0 once resumed):
    /// what SEQUENCE checks against the session's limits.
    pub numops: usize,
    pub request_len: usize,
    /// For a [`REPLAYS`](crate::row::REPLAYS) op: the hash of the rest of the request, which tells a retry
    /// from a false retry.
    pub request_hash: u64,
    /// Set by a [`REPLAYS`](crate::row::REPLAYS) handler that found a retry: the loop answers with it.
    pub replay: Option<CachedReply>,
}

impl<'a> CompoundCtx<'a> {
    pub fn cur(&self) -> Result<CurFh, NfsStatus> {
        self.current_fh.ok_or(status::NFS4ERR_NOFILEHANDLE)
    }

    pub fn saved(&self) -> Result<CurFh, NfsStatus> {
        self.saved_fh.ok_or(status::NFS4ERR_NOFILEHANDLE)
    }

    /// `obj`, of the current export, becomes the current filehandle.
    pub fn set_current(&mut self, obj: ObjHandle) {
        let fh = self.export.handles.encode(&obj);
        self.current_fh = Some(CurFh {
            obj,
            fh,
            export: self.export.id,
        });
    }

    /// `obj` of export `e` becomes the current filehandle, with the caller and the
    /// permissions `e` gives this client: NFS4ERR_ACCESS if it gives none (the
    /// current filehandle is then unchanged).
    pub fn enter(&mut self, e: &'a Arc<Export>, obj: ObjHandle, fh: FileHandle) -> OpResult {
        if !Arc::ptr_eq(e, self.export) || self.current_fh.is_none() {
            let access = e.access_for(self.conn.peer.ip())?;
            self.flush_export_ops();
            self.caller = access.caller(self.cred);
            self.read_only = access.read_only;
            self.wrong_sec = !access.admits_flavor(self.cred)
                || !access.xprtsec.admits(self.conn.shared.security());
            self.export = e;
        }
        self.current_fh = Some(CurFh {
            obj,
            fh,
            export: e.id,
        });
        Ok(())
    }

    /// Add the ops counted so far to the current export's counters.
    pub(crate) fn flush_export_ops(&mut self) {
        if self.export_ops > 0 {
            self.export.stats.ops(self.export_ops);
            self.export_ops = 0;
        }
    }

    /// The root of export `e` becomes the current filehandle ([`Self::enter`]).
    pub fn enter_root(&mut self, e: &'a Arc<Export>) -> OpResult {
        self.enter(e, e.root, e.root_fh)
    }

    /// Fails with NFS4ERR_XDEV unless the saved and the current filehandle are in one
    /// export (RENAME, LINK, COPY, CLONE).
    pub fn same_export(&self, saved: &CurFh, cur: &CurFh) -> OpResult {
        if saved.export == cur.export {
            Ok(())
        } else {
            Err(status::NFS4ERR_XDEV)
        }
    }

    /// Fails with ROFS on a read-only export.
    pub fn writable(&self) -> Result<(), NfsStatus> {
        if self.read_only {
            Err(status::NFS4ERR_ROFS)
        } else {
            Ok(())
        }
    }

    /// An access to `obj` (`write`: one that changes it) conflicting with other
    /// clients' delegations: recall them (each once) and answer NFS4ERR_DELAY until they
    /// are returned or revoked (RFC 8881 §10.4.1).
    pub fn yield_delegations(&self, obj: &ObjHandle, write: bool) -> Result<(), NfsStatus> {
        if !self.state.files.may_conflict(write) {
            return Ok(());
        }
        let client = self.session.map(|g| g.clientid);
        let r = self
            .state
            .files
            .recalls_for(obj, client, write, std::time::Instant::now());
        if !r.send.is_empty() {
            let fh = self.export.handles.encode(obj);
            self.recalls.send(r.send, fh.as_bytes());
        }
        if r.wait {
            Err(status::NFS4ERR_DELAY)
        } else {
            Ok(())
        }
    }

    /// The attributes of `obj` a GETATTR asking for `request` answers with, when another
    /// client holds a write delegation of it (RFC 8881 §10.4.3): the holder may have
    /// changed the size and the data in its cache. A request for the size, the change
    /// attribute or the modify time asks the holder (CB_GETATTR, through the callback dispatcher)
    /// and waits with NFS4ERR_DELAY; the retry gets the holder's size and, if it changed
    /// the file, a change attribute above the one of the grant and the current time.
    pub fn holder_attrs(&self, obj: &ObjHandle, request: &[u32], attrs: &mut Attrs) -> OpResult {
        use ringnfs_proto::nfs4::attr;
        use ringnfs_state::files::AttrConflict;
        let asked = |a: u32| {
            request
                .get(a as usize / 32)
                .is_some_and(|w| w & (1 << (a % 32)) != 0)
        };
        if !self.state.files.may_conflict(false)
            || ![attr::SIZE, attr::CHANGE, attr::TIME_MODIFY]
                .into_iter()
                .any(asked)
        {
            return Ok(());
        }
        let client = self.session.map(|g| g.clientid);
        match self.state.files.getattr_conflict(obj, client) {
            AttrConflict::None => Ok(()),
            AttrConflict::Ask { holder, stateid } => {
                let fh = self.export.handles.encode(obj);
                self.recalls.ask_attrs(holder, stateid, fh.as_bytes());
                Err(status::NFS4ERR_DELAY)
            }
            AttrConflict::Wait => Err(status::NFS4ERR_DELAY),
            AttrConflict::Known {
                size,
                modified,
                baseline_change,
            } => {
                if modified {
                    attrs.size = size;
                    attrs.change = attrs.change.max(baseline_change) + 1;
                    attrs.mtime = ringnfs_fs::Timespec::now();
                    attrs.ctime = attrs.mtime;
                }
                Ok(())
            }
        }
    }

    /// The client of this COMPOUND's session (file ops always run in a session).
    pub fn client(&self) -> Result<u64, NfsStatus> {
        self.session
            .map(|g| g.clientid)
            .ok_or(status::NFS4ERR_OP_NOT_IN_SESSION)
    }

    /// RFC 8881 §18.51.3: new locking state (an OPEN or LOCK that reclaims nothing)
    /// waits with NFS4ERR_GRACE during the grace period, and until the client has sent
    /// its global RECLAIM_COMPLETE whether or not a grace period runs.
    pub fn may_take_new_locks(&self) -> Result<(), NfsStatus> {
        let grant = self.session.ok_or(status::NFS4ERR_OP_NOT_IN_SESSION)?;
        if !grant.reclaim_complete || self.state.in_grace() {
            return Err(status::NFS4ERR_GRACE);
        }
        // A cluster node cut off from its store may have been declared dead, and its
        // clients' state may be reclaimed on another node: nothing new until it is back.
        if !self.state.granting() {
            return Err(status::NFS4ERR_DELAY);
        }
        Ok(())
    }

    /// SAVEFH: the current filehandle becomes the saved one, with its stateid.
    pub fn save_fh(&mut self) {
        self.saved_fh = self.current_fh;
        self.saved_export = self.export;
        self.saved_stateid = self.current_stateid;
    }

    /// RESTOREFH: the saved filehandle becomes current again, with the stateid that was
    /// current when it was saved (NFS4ERR_RESTOREFH if none was saved).
    pub fn restore_fh(&mut self) -> OpResult {
        let fh = self.saved_fh.ok_or(status::NFS4ERR_RESTOREFH)?;
        self.enter(self.saved_export, fh.obj, fh.fh)?;
        self.current_stateid = self.saved_stateid;
        Ok(())
    }
}

/// A stateid argument of a [`USES_STATEID`](crate::row::USES_STATEID) op, which the loop has already replaced if
/// it was the current stateid and one was set. Still the current stateid means no op
/// set one: NFS4ERR_BAD_STATEID (RFC 8881 §8.2.3, §16.2.3.1.2). Handlers call this
/// where they judge the stateid, so the order of their errors stays theirs.
pub fn resolved(sid: Stateid) -> Result<Stateid, NfsStatus> {
    if sid == Stateid::CURRENT {
        Err(status::NFS4ERR_BAD_STATEID)
    } else {
        Ok(sid)
    }
}

/// A data op waiting for its file operation on the connection's ring.
pub struct PendingIo {
    pub fd: IoFd,
    /// Taken when handed to the transport ([`PendingIo::take`]).
    pub op: Option<FileOp>,
    pub finish: IoFinish,
    pub(crate) opnum: u32,
    /// Where the op's status is, relative to the start of COMPOUND4res.
    pub(crate) st_at: usize,
}

impl PendingIo {
    pub(crate) fn new(fd: IoFd, op: FileOp, finish: IoFinish) -> Self {
        Self {
            fd,
            op: Some(op),
            finish,
            opnum: 0,
            st_at: 0,
        }
    }

    /// The file operation to run now (None if it was taken already).
    pub fn take(&mut self) -> Option<FileIo> {
        let op = self.op.take()?;
        Some(FileIo {
            fd: self.fd.clone(),
            op,
        })
    }
}

/// How to finish the op's result when its file operation completes.
pub enum IoFinish {
    Done,
    /// READ: the data follows the eof and length words already written; `in_place`:
    /// the ring read it there already (into the reply so far, see
    /// `Suspended::reply_into_read`).
    Read {
        offset: u64,
        count: u32,
        size: u64,
        caching: Caching,
        in_place: bool,
        /// A direct read (of the aligned range around the one asked for).
        direct: Option<Box<DirectRead>>,
    },
    /// WRITE: after a part of the write (`synced` false) or after the fsync a stable
    /// write needs; `written`: bytes the parts before wrote.
    Write {
        stable: Stability,
        synced: bool,
        written: u32,
        /// The part being written (none while syncing), kept to be redone buffered if
        /// its caching mode is refused.
        part: Option<WritePart>,
        /// A direct write: its other parts and descriptors.
        direct: Option<Box<DirectWrite>>,
    },
    /// COMMIT: after the fsync.
    Commit,
    /// ALLOCATE, DEALLOCATE: after the fallocate.
    Space,
    /// READ_PLUS: after its data span was read.
    ReadPlus(Box<ReadPlusWait>),
    /// Before an op (`wait_before`): the op has not run yet, and runs when the wait
    /// ends.
    Before(Before),
}

/// What an op waits for before it runs (`wait_before`): its client's recovery record
/// (`record_wait`), or a cluster claim of its share reservation (`ops/open.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Before {
    Record,
    Claim,
}

/// A READ of an export in direct I/O mode: the file's plain descriptor (to redo the
/// read buffered if direct I/O is refused) and where the asked-for data starts in the
/// buffer read (after the padding that aligns the buffer and the bytes before
/// `offset` in its aligned range).
pub struct DirectRead {
    pub plain: IoFd,
    pub skip: usize,
}

/// One region of a READ_PLUS range: `[start, end)`, data or a hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    pub data: bool,
}

/// A READ_PLUS waiting for its data span (the first data byte of `map` to the last,
/// read from `span_at`) on the ring; its segments then take at most `budget` bytes.
pub struct ReadPlusWait {
    pub map: Vec<Region>,
    pub span_at: u64,
    pub size: u64,
    pub budget: usize,
}

/// One write a WRITE op makes.
#[derive(Clone)]
pub struct WritePart {
    pub offset: u64,
    pub data: Bytes,
    pub caching: Caching,
}

/// A WRITE of an export in direct I/O mode: the parts still to write after the current
/// one (an aligned middle written directly between an unaligned head and tail written
/// buffered), on the file's plain or `O_DIRECT` descriptor.
pub struct DirectWrite {
    pub plain: IoFd,
    pub direct: IoFd,
    pub next: std::collections::VecDeque<WritePart>,
}

impl DirectWrite {
    /// The descriptor for a part in caching mode `c`.
    pub fn fd(&self, c: Caching) -> IoFd {
        if c == Caching::Direct {
            self.direct.clone()
        } else {
            self.plain.clone()
        }
    }
}

impl IoFinish {
    /// The caching mode of the file operation this waits for, when a refusal of it
    /// (EOPNOTSUPP) can be retried buffered.
    pub fn refused_caching(&self) -> Option<Caching> {
        let c = match self {
            IoFinish::Read { caching, .. } => *caching,
            IoFinish::Write {
                part: Some(p),
                synced: false,
                ..
            } => p.caching,
            _ => return None,
        };
        (c != Caching::Buffered).then_some(c)
    }
}

pub enum IoOutcome {
    /// The op's final status (its result is complete in the reply when OK).
    Status(NfsStatus),
    /// Another file operation is needed first (the next part of a WRITE, a stable
    /// WRITE's fsync, a refused one redone buffered), on `fd` if given (else on the
    /// descriptor of the one before).
    Again {
        fd: Option<IoFd>,
        op: FileOp,
        finish: IoFinish,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_part_shares_a_record_of_its_own_and_copies_a_borrowed_one() {
        let record = Bytes::from((0..=255u8).collect::<Vec<u8>>());
        let part = &record[16..80];
        let shared = Source::Shared(&record).keep(part);
        assert_eq!(shared.as_ptr(), part.as_ptr(), "no copy");
        assert_eq!(&shared[..], part);
        let copied = Source::Borrowed.keep(part);
        assert_ne!(copied.as_ptr(), part.as_ptr());
        assert_eq!(&copied[..], part);
        // A slice from elsewhere (never the case in the engine) is copied, not a panic.
        let other = [7u8; 8];
        assert_eq!(&Source::Shared(&record).keep(&other)[..], &other);
        assert!(Source::Shared(&record).keep(&[]).is_empty());
    }
}
