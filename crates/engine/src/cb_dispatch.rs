//! The server's callbacks about delegations and copies (CB_RECALL, CB_GETATTR,
//! CB_OFFLOAD), sent and awaited by one helper thread that never blocks on a client.
//! Each call goes out on a free back-channel slot of its session, as many at once as the
//! client granted (up to `MAX_BACK_SLOTS_USED`); its reply is matched by xid through the
//! state's callback table; a call with no reply within [`CALLBACK_TIMEOUT`] fails. Calls
//! to a session whose slots are all busy wait, in order. So a client that never answers
//! occupies its own slots and nothing else: other clients' callbacks go on.
//!
//! A call names a client (any of its sessions with a back channel will do: the next is
//! tried when one fails) or one session (CB_OFFLOAD goes on the session that started the
//! copy). What to do with the outcome is the caller's closure, run on this thread.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select, Sender};
use ringnfs_state::callbacks::{CallbackError, CallbackResult};
use ringnfs_state::{SessionId, StateManager};

use crate::callback::{CB_COMPOUND, check_compound_reply, compound_args, send_record};

/// How long the server waits for the client to answer a callback.
pub const CALLBACK_TIMEOUT: Duration = Duration::from_secs(15);

/// Where a callback goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Any session of this client with a back channel.
    Client(u64),
    /// This session.
    Session(SessionId),
}

/// What to do with a callback's outcome: the CB_COMPOUND reply body once CB_SEQUENCE
/// and every op succeeded, or why not. Runs on the dispatcher thread; it may queue more
/// calls.
pub type Done = Box<dyn FnOnce(&Callbacks, CallbackResult) + Send>;

struct Job {
    target: Target,
    /// The minor version the op needs at least (CB_OFFLOAD: 2).
    min_minor: u32,
    /// The op after CB_SEQUENCE: its number and arguments, encoded.
    op: Vec<u8>,
    done: Done,
    /// Sessions that failed this call already, and the last failure.
    tried: Vec<SessionId>,
    last: Option<CallbackError>,
}

struct InFlight {
    xid: u32,
    rx: Receiver<CallbackResult>,
    deadline: Instant,
    sid: SessionId,
    slot: u32,
    job: Job,
}

/// The dispatcher's handle: queue calls. Cheap to clone; the thread starts with the first
/// call.
#[derive(Clone)]
pub struct Callbacks {
    state: Arc<StateManager>,
    tx: Arc<OnceLock<Sender<Job>>>,
}

impl Callbacks {
    pub fn new(state: Arc<StateManager>) -> Self {
        Callbacks {
            state,
            tx: Arc::new(OnceLock::new()),
        }
    }

    pub fn state(&self) -> &StateManager {
        &self.state
    }

    /// Send CB_COMPOUND { CB_SEQUENCE, `op` } to `target`; `done` gets the outcome.
    pub fn call(&self, target: Target, min_minor: u32, op: Vec<u8>, done: Done) {
        let job = Job {
            target,
            min_minor,
            op,
            done,
            tried: Vec::new(),
            last: None,
        };
        let tx = self.tx.get_or_init(|| self.spawn());
        if let Err(e) = tx.send(job) {
            // No dispatcher thread: the call fails at once.
            let job = e.into_inner();
            (job.done)(self, Err(CallbackError::NoBackChannel));
        }
    }

    fn spawn(&self) -> Sender<Job> {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("ringnfs-callbacks".into())
            .spawn(move || Dispatcher::default().run(&me, &rx));
        if let Err(e) = spawned {
            tracing::error!("cannot start the callback thread: {e}");
        }
        tx
    }
}

#[derive(Default)]
struct Dispatcher {
    queue: VecDeque<Job>,
    inflight: Vec<InFlight>,
    /// Slots in use: (session, slot).
    busy: HashSet<(SessionId, u32)>,
}

/// What starting a queued call came to.
enum Start {
    /// Sent, or failed for good (its closure has the failure).
    Over,
    /// Every slot of its sessions is busy: it waits.
    Wait(Job),
}

impl Dispatcher {
    fn run(mut self, cbs: &Callbacks, jobs: &Receiver<Job>) {
        loop {
            let (event, index) = {
                let mut sel = Select::new();
                sel.recv(jobs);
                for f in &self.inflight {
                    sel.recv(&f.rx);
                }
                let next = self.inflight.iter().map(|f| f.deadline).min();
                let op = match next {
                    Some(d) => sel.select_deadline(d),
                    None => Ok(sel.select()),
                };
                match op {
                    Ok(op) if op.index() == 0 => match op.recv(jobs) {
                        Ok(job) => (Some(Ok(job)), 0),
                        // Every handle is gone: the server is shutting down.
                        Err(_) => return,
                    },
                    Ok(op) => {
                        let i = op.index() - 1;
                        let r = op
                            .recv(&self.inflight[i].rx)
                            .unwrap_or(Err(CallbackError::Disconnected));
                        (Some(Err(r)), i)
                    }
                    Err(_) => (None, 0),
                }
            };
            match event {
                Some(Ok(job)) => self.queue.push_back(job),
                Some(Err(r)) => {
                    let f = self.inflight.swap_remove(index);
                    self.finished(cbs, f, r);
                }
                None => {
                    let now = Instant::now();
                    while let Some(i) = self.inflight.iter().position(|f| f.deadline <= now) {
                        let f = self.inflight.swap_remove(i);
                        cbs.state.callbacks.cancel(f.xid);
                        self.finished(cbs, f, Err(CallbackError::Timeout));
                    }
                }
            }
            self.start_queued(cbs);
        }
    }

    /// A call came back (or timed out): free its slot; done, or on to the next session.
    fn finished(&mut self, cbs: &Callbacks, f: InFlight, r: CallbackResult) {
        self.busy.remove(&(f.sid, f.slot));
        let mut job = f.job;
        match r.and_then(|body| check_compound_reply(&body).map(|_| body)) {
            Ok(body) => (job.done)(cbs, Ok(body)),
            Err(e) => {
                tracing::debug!(session = %f.sid, error = %e, "callback failed");
                job.tried.push(f.sid);
                job.last = Some(e);
                self.queue.push_front(job);
            }
        }
    }

    fn start_queued(&mut self, cbs: &Callbacks) {
        for _ in 0..self.queue.len() {
            let job = self.queue.pop_front().expect("counted");
            if let Start::Wait(job) = self.start(cbs, job) {
                self.queue.push_back(job);
            }
        }
    }

    /// Send `job` on a free slot of one of its sessions not tried yet; when it has no
    /// session left, it fails.
    fn start(&mut self, cbs: &Callbacks, mut job: Job) -> Start {
        let state = &cbs.state;
        let mut sessions = match job.target {
            Target::Client(c) => state.session_ids_of_client(c),
            Target::Session(s) => vec![s],
        };
        sessions.retain(|s| !job.tried.contains(s));
        let mut waiting = false;
        for sid in sessions {
            let Some(bc) = state.back_channel(&sid, None) else {
                job.tried.push(sid);
                continue;
            };
            let Some(slot) = (0..bc.slots).find(|s| !self.busy.contains(&(sid, *s))) else {
                waiting = true;
                continue;
            };
            let Some(bc) = state.back_channel(&sid, Some(slot)) else {
                job.tried.push(sid);
                continue;
            };
            let args = compound_args(&bc, &sid, job.min_minor, &job.op);
            match send_record(state, &bc, CB_COMPOUND, &args) {
                Ok((xid, rx)) => {
                    self.busy.insert((sid, slot));
                    self.inflight.push(InFlight {
                        xid,
                        rx,
                        deadline: Instant::now() + CALLBACK_TIMEOUT,
                        sid,
                        slot,
                        job,
                    });
                    return Start::Over;
                }
                Err(e) => {
                    job.tried.push(sid);
                    job.last = Some(e);
                }
            }
        }
        if waiting {
            return Start::Wait(job);
        }
        let e = job.last.take().unwrap_or(CallbackError::NoBackChannel);
        (job.done)(cbs, Err(e));
        Start::Over
    }
}
