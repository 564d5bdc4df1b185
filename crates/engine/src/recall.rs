//! Delegation recalls (RFC 8881 §10.4): CB_RECALL sent by a helper thread, never by a
//! worker, to the holder on any of its sessions with a back channel; also CB_GETATTR to
//! a write delegation's holder when another client asks for the file's size or change
//! (§10.4.3), followed by a recall when it gets no answer. The access that
//! conflicts answers NFS4ERR_DELAY meanwhile (the state layer marks each delegation
//! recalled once, so each is recalled once); a holder that does not return it within a
//! lease loses it (the lease reaper revokes it).

use std::sync::{Arc, OnceLock};

use ringnfs_proto::nfs4::ops::CbRecallArgs;
use ringnfs_proto::stateid::Stateid;
use ringnfs_state::StateManager;

use crate::callback::CallbackTurns;

/// One callback about a delegation: the holder, the delegation, the file's NFS
/// filehandle, and whether to ask for its attributes (CB_GETATTR) or recall it.
struct RecallJob {
    client: u64,
    stateid: Stateid,
    fh: Vec<u8>,
    getattr: bool,
}

/// The engine's recall sender.
pub struct Recalls {
    state: Arc<StateManager>,
    turns: Arc<CallbackTurns>,
    jobs: OnceLock<crossbeam_channel::Sender<RecallJob>>,
}

impl Recalls {
    pub fn new(state: Arc<StateManager>, turns: Arc<CallbackTurns>) -> Self {
        Recalls {
            state,
            turns,
            jobs: OnceLock::new(),
        }
    }

    /// Recall each of `delegations` (holder, stateid) of the file whose filehandle is
    /// `fh`.
    pub fn send(&self, delegations: Vec<(u64, Stateid)>, fh: &[u8]) {
        for (client, stateid) in delegations {
            self.queue(RecallJob {
                client,
                stateid,
                fh: fh.to_vec(),
                getattr: false,
            });
        }
    }

    /// Ask the holder of write delegation `stateid` of the file whose filehandle is `fh`
    /// for its size and change attribute (CB_GETATTR); if it does not answer, recall the
    /// delegation.
    pub fn ask_attrs(&self, client: u64, stateid: Stateid, fh: &[u8]) {
        self.queue(RecallJob {
            client,
            stateid,
            fh: fh.to_vec(),
            getattr: true,
        });
    }

    fn queue(&self, job: RecallJob) {
        let tx = self.jobs.get_or_init(|| self.spawn());
        let (client, stateid) = (job.client, job.stateid);
        if tx.send(job).is_err() {
            // Not asked and not recalled: mark it recalled, so the lease reaper revokes
            // it rather than other clients waiting for it forever.
            self.state
                .files
                .holder_attrs_answered(&stateid, None, std::time::Instant::now());
            tracing::warn!(
                client,
                "no recall thread: the delegation goes with the lease"
            );
        }
    }

    fn spawn(&self) -> crossbeam_channel::Sender<RecallJob> {
        let (tx, rx) = crossbeam_channel::unbounded::<RecallJob>();
        let (state, turns) = (self.state.clone(), self.turns.clone());
        let spawned = std::thread::Builder::new()
            .name("ringnfs-recall".into())
            .spawn(move || {
                for job in rx {
                    if job.getattr {
                        ask_attrs(&state, &turns, &job);
                    } else {
                        recall(&state, &turns, &job);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the delegation recall thread: {e}");
        }
        tx
    }
}

/// CB_GETATTR on any of the holder's sessions; the answer goes to the state, and a
/// holder that does not answer (or answers without size and change) gets the
/// delegation recalled instead.
fn ask_attrs(state: &StateManager, turns: &CallbackTurns, job: &RecallJob) {
    let mut answer = None;
    for sid in state.session_ids_of_client(job.client) {
        let turn = turns.of(&sid);
        let _one = turn.lock();
        match crate::callback::cb_getattr(state, &sid, &job.fh, crate::callback::CALLBACK_TIMEOUT) {
            Ok(a) => {
                answer = a.change.zip(a.size);
                break;
            }
            Err(e) => tracing::debug!(client = job.client, "CB_GETATTR failed: {e}"),
        }
    }
    let now = std::time::Instant::now();
    if state.files.holder_attrs_answered(&job.stateid, answer, now) {
        tracing::info!(
            client = job.client,
            "CB_GETATTR not answered: recalling the delegation"
        );
        recall(state, turns, job);
    }
}

fn recall(state: &StateManager, turns: &CallbackTurns, job: &RecallJob) {
    let args = CbRecallArgs {
        stateid: job.stateid,
        truncate: false,
        fh: &job.fh,
    };
    let mut last = None;
    for sid in state.session_ids_of_client(job.client) {
        let turn = turns.of(&sid);
        let _one = turn.lock();
        match crate::callback::cb_recall(state, &sid, &args, crate::callback::CALLBACK_TIMEOUT) {
            Ok(()) => {
                tracing::debug!(client = job.client, "CB_RECALL delivered");
                state.files.callback_path(job.client, true);
                return;
            }
            Err(e) => last = Some(e),
        }
    }
    // The holder keeps the delegation until it returns it or the lease runs out; it
    // hears SEQ4_STATUS_CB_PATH_DOWN and gets no new delegation until a callback gets
    // through or it binds a back channel again.
    state.files.callback_path(job.client, false);
    tracing::info!(
        client = job.client,
        "CB_RECALL not delivered ({}): revoked after a lease unless returned",
        last.map_or_else(|| "no session".to_string(), |e| e.to_string())
    );
}
