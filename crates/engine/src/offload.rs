//! Asynchronous COPY (RFC 7862 §15.2, §15.8, §15.9, §16.1): copies too large to run
//! inline go to a small pool of helper threads, each copying in steps of [`STEP`]
//! bytes (`copy_file_range` on the local backend) so that a cancel, or the client going
//! away, stops it between steps. When a copy ends the helper sends CB_OFFLOAD on the
//! client's back channel; OFFLOAD_STATUS reads its progress and OFFLOAD_CANCEL stops it.
//!
//! Bounds: at most [`PER_CLIENT`] copies in flight per client and [`TOTAL`] in all (a
//! COPY beyond them is NFS4ERR_DELAY); [`THREADS`] helpers, the rest queued; the
//! outcomes of ended copies are kept for OFFLOAD_STATUS, the oldest dropped past
//! [`KEPT`].
//!
//! CB_OFFLOAD goes through the callback dispatcher (`cb_dispatch.rs`). Lock order
//! (ranked, `ringnfs_state::locks::rank`): the table (`OFFLOAD_TABLE`) is a leaf.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use ringnfs_fs::ObjHandle;
use ringnfs_proto::nfs4::ops::{CbOffloadArgs, OffloadStatusResOk, WriteResponse};
use ringnfs_proto::stateid::Stateid;
use ringnfs_state::locks::{CheckInvariants, RankedMutex, rank};
use ringnfs_state::{SessionId, StateManager};

use crate::cb_dispatch::{Callbacks, Target};
use crate::consts::{NfsStatus, status};
use crate::export::Export;

/// Bytes a helper copies per step.
pub const STEP: u64 = 4 << 20;
/// Copies in flight (queued or running) per client, and in all.
pub const PER_CLIENT: usize = 4;
pub const TOTAL: usize = 16;
/// Helper threads.
pub const THREADS: usize = 2;
/// Ended copies whose outcome is kept for OFFLOAD_STATUS.
pub const KEPT: usize = 256;

/// A copy's progress, shared by its helper and the table.
#[derive(Default)]
struct Progress {
    copied: AtomicU64,
    cancel: AtomicBool,
    /// Set once the copy ended (NFS4_OK, or why it stopped).
    ended: OnceLock<NfsStatus>,
}

struct Entry {
    clientid: u64,
    progress: Arc<Progress>,
}

/// One asynchronous copy to run.
pub struct CopyJob {
    /// The export of both files (held: a copy outlives an export's removal).
    pub export: Arc<Export>,
    pub clientid: u64,
    pub session: SessionId,
    pub src: ObjHandle,
    pub dst: ObjHandle,
    /// The destination's NFS filehandle, for CB_OFFLOAD.
    pub dst_fh: Vec<u8>,
    pub src_offset: u64,
    pub dst_offset: u64,
    pub len: u64,
    pub verifier: [u8; 8],
}

#[derive(Default)]
struct Table {
    running: HashMap<[u8; 12], Entry>,
    /// Ended copies, oldest first.
    ended: VecDeque<([u8; 12], Entry)>,
}

impl CheckInvariants for Table {
    fn check_invariants(&self) -> Result<(), String> {
        if self.running.len() > TOTAL || self.ended.len() > KEPT {
            return Err(format!(
                "{} copies running (at most {TOTAL}), {} kept (at most {KEPT})",
                self.running.len(),
                self.ended.len()
            ));
        }
        Ok(())
    }
}

type TableLock = RankedMutex<Table, { rank::OFFLOAD_TABLE }>;

/// The asynchronous copies of one engine.
pub struct Offloads {
    state: Arc<StateManager>,
    callbacks: Callbacks,
    table: Arc<TableLock>,
    jobs: OnceLock<crossbeam_channel::Sender<(CopyJob, Stateid, Arc<Progress>)>>,
    next: AtomicU64,
    /// Distinguishes this server instance's copy stateids from an earlier one's.
    boot: u32,
}

impl Offloads {
    /// No copies yet; the helpers start with the first.
    pub fn new(state: Arc<StateManager>, callbacks: Callbacks) -> Self {
        Offloads {
            state,
            callbacks,
            table: Arc::new(RankedMutex::new(Table::default())),
            jobs: OnceLock::new(),
            next: AtomicU64::new(1),
            boot: rand::random(),
        }
    }

    /// Queue `job`; its copy stateid, or NFS4ERR_DELAY past the bounds.
    pub fn start(&self, job: CopyJob) -> Result<Stateid, NfsStatus> {
        let progress = Arc::new(Progress::default());
        let sid = {
            let mut t = self.table.lock();
            let mine = t
                .running
                .values()
                .filter(|e| e.clientid == job.clientid)
                .count();
            if mine >= PER_CLIENT || t.running.len() >= TOTAL {
                return Err(status::NFS4ERR_DELAY);
            }
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let mut other = [0u8; 12];
            other[..4].copy_from_slice(&self.boot.to_be_bytes());
            other[4..].copy_from_slice(&n.to_be_bytes());
            t.running.insert(
                other,
                Entry {
                    clientid: job.clientid,
                    progress: progress.clone(),
                },
            );
            Stateid { seqid: 1, other }
        };
        tracing::debug!(
            client = job.clientid,
            bytes = job.len,
            "asynchronous COPY queued"
        );
        let tx = self.jobs.get_or_init(|| self.spawn());
        if tx.send((job, sid, progress)).is_err() {
            self.table.lock().running.remove(&sid.other);
            return Err(status::NFS4ERR_SERVERFAULT);
        }
        Ok(sid)
    }

    /// A copy stateid of an earlier instance of the server: its copy died with it
    /// (nothing of it survives a restart; the client copies again).
    fn check_instance(&self, sid: &Stateid) -> Result<(), NfsStatus> {
        if sid.other[..4] == self.boot.to_be_bytes() {
            Ok(())
        } else {
            Err(status::NFS4ERR_STALE_STATEID)
        }
    }

    /// OFFLOAD_STATUS: bytes copied so far, and the outcome once it ended.
    pub fn status(&self, clientid: u64, sid: &Stateid) -> Result<OffloadStatusResOk, NfsStatus> {
        self.check_instance(sid)?;
        let t = self.table.lock();
        let e = find(&t, clientid, sid)?;
        Ok(OffloadStatusResOk {
            count: e.progress.copied.load(Ordering::Relaxed),
            complete: e.progress.ended.get().copied(),
        })
    }

    /// OFFLOAD_CANCEL: stop a running copy (no CB_OFFLOAD follows); one that ended
    /// already is NFS4ERR_COMPLETE_ALREADY.
    pub fn cancel(&self, clientid: u64, sid: &Stateid) -> Result<(), NfsStatus> {
        self.check_instance(sid)?;
        let t = self.table.lock();
        let e = find(&t, clientid, sid)?;
        if e.progress.ended.get().is_some() {
            return Err(status::NFS4ERR_COMPLETE_ALREADY);
        }
        e.progress.cancel.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Copies in flight (queued or running).
    pub fn in_flight(&self) -> usize {
        self.table.lock().running.len()
    }

    fn spawn(&self) -> crossbeam_channel::Sender<(CopyJob, Stateid, Arc<Progress>)> {
        let (tx, rx) = crossbeam_channel::unbounded::<(CopyJob, Stateid, Arc<Progress>)>();
        let callbacks = self.callbacks.clone();
        for i in 0..THREADS {
            let (rx, state) = (rx.clone(), self.state.clone());
            let (table, callbacks) = (self.table.clone(), callbacks.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("ringnfs-copy-{i}"))
                .spawn(move || {
                    for (job, sid, progress) in rx {
                        let Some(st) = run(&state, &job.export, &job, &progress) else {
                            // Cancelled, or the client is gone: nothing to report to.
                            table.lock().running.remove(&sid.other);
                            continue;
                        };
                        let _ = progress.ended.set(st);
                        retire(&table, &sid);
                        tracing::debug!(
                            client = job.clientid,
                            bytes = progress.copied.load(Ordering::Relaxed),
                            status = ?st,
                            "asynchronous COPY ended"
                        );
                        notify(&callbacks, &job, &sid, &progress);
                    }
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start a copy helper thread: {e}");
            }
        }
        tx
    }
}

fn find<'t>(t: &'t Table, clientid: u64, sid: &Stateid) -> Result<&'t Entry, NfsStatus> {
    let e = t
        .running
        .get(&sid.other)
        .or_else(|| {
            t.ended
                .iter()
                .find(|(o, _)| *o == sid.other)
                .map(|(_, e)| e)
        })
        .ok_or(status::NFS4ERR_BAD_STATEID)?;
    if e.clientid != clientid {
        return Err(status::NFS4ERR_BAD_STATEID);
    }
    Ok(e)
}

/// Move an ended copy from the running set to the kept outcomes.
fn retire(table: &TableLock, sid: &Stateid) {
    let mut t = table.lock();
    if let Some(e) = t.running.remove(&sid.other) {
        t.ended.push_back((sid.other, e));
        while t.ended.len() > KEPT {
            t.ended.pop_front();
        }
    }
}

/// Copy `job` step by step. `Some(status)` when it ended on its own (done, or an
/// error), `None` when it was cancelled or its client went away.
fn run(state: &StateManager, export: &Export, job: &CopyJob, p: &Progress) -> Option<NfsStatus> {
    let mut copied = 0u64;
    while copied < job.len {
        if p.cancel.load(Ordering::Relaxed) || !state.client_exists(job.clientid) {
            return None;
        }
        let step = STEP.min(job.len - copied);
        match export.backend.copy_step(
            &job.src,
            job.src_offset + copied,
            &job.dst,
            job.dst_offset + copied,
            step,
        ) {
            // The source ended early (truncated meanwhile): what is there is copied.
            Ok(0) => break,
            Ok(n) => {
                copied += n;
                p.copied.store(copied, Ordering::Relaxed);
            }
            Err(e) => return Some(e.status()),
        }
    }
    Some(status::NFS4_OK)
}

/// CB_OFFLOAD for an ended copy on the session that started it.
fn notify(callbacks: &Callbacks, job: &CopyJob, sid: &Stateid, p: &Progress) {
    let copied = p.copied.load(Ordering::Relaxed);
    let st = p.ended.get().copied().unwrap_or(status::NFS4ERR_IO);
    let result = if st == status::NFS4_OK {
        Ok(WriteResponse {
            callback_id: None,
            count: copied,
            committed: 0,
            verifier: job.verifier,
        })
    } else {
        Err((st, copied))
    };
    let args = CbOffloadArgs {
        fh: &job.dst_fh,
        stateid: *sid,
        result,
    };
    let client = job.clientid;
    callbacks.call(
        Target::Session(job.session),
        2,
        crate::callback::offload_op(&args),
        Box::new(move |_, r| match r {
            Ok(_) => tracing::debug!(client, "CB_OFFLOAD delivered"),
            // The outcome stays for OFFLOAD_STATUS.
            Err(e) => tracing::info!(client, "CB_OFFLOAD not delivered: {e}"),
        }),
    );
}
