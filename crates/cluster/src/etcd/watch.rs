//! Watches: the changes under a prefix, as a channel of events fed by a thread.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde_json::json;

use super::json::{WatchResponse, b64, int, parse_streamed, prefix_end};
use super::stream::{self, MessageStream, StreamError};
use super::{Etcd, EtcdError, KeyValue};

/// A change under the watched prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// The key was put; its new value.
    Put(KeyValue),
    /// The key was deleted: its key and the revision of the delete (`mod_revision`).
    Delete(KeyValue),
    /// The history from where the watch was has been compacted, so changes may have been
    /// missed: re-read the prefix. The events that follow are those after a revision no
    /// later than the one that read will return (a change may show up in both: compare
    /// `mod_revision`s).
    Resync,
}

/// A running watch ([`Etcd::watch_prefix`]). Its thread reads the stream from one member
/// and, when the stream breaks, opens a new one on the next member from the revision
/// after the last one delivered: no event is lost or repeated. Dropping it stops the
/// thread (within a fraction of a second) and the events.
pub struct Watch {
    events: Receiver<WatchEvent>,
    stop: Arc<AtomicBool>,
    endpoint: Arc<Mutex<String>>,
    thread: Option<JoinHandle<()>>,
}

impl Watch {
    /// The events, in revision order.
    pub fn events(&self) -> &Receiver<WatchEvent> {
        &self.events
    }

    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<WatchEvent, RecvTimeoutError> {
        self.events.recv_timeout(timeout)
    }

    /// The endpoint the stream comes from now (or is being opened on).
    pub fn endpoint(&self) -> String {
        self.endpoint.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Every wait of the thread looks at the flag at least every stream::POLL, so
        // this join is short.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How long to wait before opening a stream again after a failure on every member.
const RETRY: Duration = Duration::from_millis(500);

struct Watcher {
    etcd: Etcd,
    prefix: Vec<u8>,
    stop: Arc<AtomicBool>,
    endpoint: Arc<Mutex<String>>,
    events: Sender<WatchEvent>,
    /// The revision the next stream starts from: the one after the last delivered; 0
    /// for "from now" (at the start, or after a compaction).
    next: i64,
    /// The endpoint index the next stream is opened on first.
    at: usize,
}

/// Why a stream ended.
enum End {
    Stopped,
    /// The history from `next` is gone.
    Compacted(i64),
    /// The stream broke: try the next member.
    Failed(String),
    /// The member answered with an error (no leader, or a refused watch): try the next
    /// member; if none takes the watch, this is the answer.
    Refused(EtcdError),
}

impl From<StreamError> for End {
    fn from(e: StreamError) -> End {
        match e {
            StreamError::Stopped => End::Stopped,
            other => End::Failed(other.to_string()),
        }
    }
}

impl Etcd {
    /// Watches every key starting with `prefix`, from `start_revision` (0: from now on).
    /// Returns once the watch is in place on some member: a change made after this
    /// returns is delivered. Fails when no member would open the watch. When
    /// `start_revision` is older than etcd's history (compacted), the first event is
    /// [`WatchEvent::Resync`].
    pub fn watch_prefix(&self, prefix: &[u8], start_revision: i64) -> Result<Watch, EtcdError> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let endpoint = Arc::new(Mutex::new(String::new()));
        let mut watcher = Watcher {
            etcd: self.clone(),
            prefix: prefix.to_vec(),
            stop: stop.clone(),
            endpoint: endpoint.clone(),
            events: tx,
            next: start_revision.max(0),
            at: self.inner.preferred.load(Ordering::Relaxed),
        };
        let (first, resync) = match watcher.open_any() {
            Ok(stream) => (stream, false),
            Err(EtcdError::Compacted(rev)) => {
                watcher.compacted(rev);
                (watcher.open_any()?, true)
            }
            Err(err) => return Err(err),
        };
        let thread = std::thread::Builder::new()
            .name("etcd-watch".into())
            .spawn(move || watcher.run(first, resync))
            .map_err(|e| EtcdError::BadReply(format!("cannot start the watch thread: {e}")))?;
        Ok(Watch {
            events: rx,
            stop,
            endpoint,
            thread: Some(thread),
        })
    }
}

impl Watcher {
    /// Opens a stream on the first member that takes it, starting at `at`.
    fn open_any(&mut self) -> Result<MessageStream<TcpStream>, EtcdError> {
        let n = self.etcd.inner.endpoints.len();
        let mut failures = Vec::new();
        let mut refusal = None;
        for _ in 0..n {
            if self.stop.load(Ordering::Relaxed) {
                return Err(EtcdError::BadReply("watch stopped".into()));
            }
            let i = self.at % n;
            let url = self.etcd.inner.endpoints[i].url();
            match self.open(i) {
                Ok(stream) => return Ok(stream),
                Err(End::Stopped) => return Err(EtcdError::BadReply("watch stopped".into())),
                Err(End::Compacted(rev)) => return Err(EtcdError::Compacted(rev)),
                Err(End::Failed(why)) => {
                    tracing::debug!(endpoint = %url, %why, "etcd watch: cannot open the stream here");
                    failures.push(format!("{url}: {why}"));
                }
                Err(End::Refused(err)) => {
                    tracing::debug!(endpoint = %url, %err, "etcd watch: refused here");
                    failures.push(format!("{url}: {err}"));
                    refusal = Some(err);
                }
            }
            self.at = i + 1;
        }
        if let Some(err) = refusal {
            return Err(err);
        }
        Err(EtcdError::Unreachable {
            endpoints: self.etcd.endpoints().join(", "),
            last: failures.pop().unwrap_or_default(),
        })
    }

    /// Opens a stream on endpoint `i` and reads its "created" message.
    fn open(&mut self, i: usize) -> Result<MessageStream<TcpStream>, End> {
        let endpoint = &self.etcd.inner.endpoints[i];
        if let Ok(mut e) = self.endpoint.lock() {
            *e = endpoint.url();
        }
        let mut create = json!({
            "key": b64(&self.prefix),
            "range_end": b64(&prefix_end(&self.prefix)),
            // etcd then says now and then how far the stream is, which moves `next` on
            // while nothing under the prefix changes (so that a reconnect does not start
            // from a revision compacted since).
            "progress_notify": true,
        });
        if self.next > 0 {
            create["start_revision"] = int(self.next).into();
        }
        let body = json!({ "create_request": create }).to_string();
        let timeout = self.etcd.inner.timeout;
        let mut stream = stream::post(endpoint, "/v3/watch", &body, timeout, self.stop.clone())?;
        let deadline = Instant::now() + timeout;
        let line = stream
            .next_message(Some(deadline))?
            .ok_or_else(|| End::Failed("the stream ended before the watch was made".into()))?;
        let created: WatchResponse = parse_streamed(&line).map_err(refused)?;
        if created.canceled {
            return Err(cancel(&created));
        }
        if !created.created {
            return Err(End::Failed(format!(
                "expected the watch's creation, got {}",
                String::from_utf8_lossy(&line)
            )));
        }
        if self.next == 0 {
            // "From now": the events that follow are those after the creation's revision.
            self.next = created.header.revision + 1;
        }
        self.at = i;
        Ok(stream)
    }

    fn run(mut self, first: MessageStream<TcpStream>, mut resync: bool) {
        let mut stream = Some(first);
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let current = match stream.take() {
                Some(s) => s,
                None => match self.open_any() {
                    Ok(s) => s,
                    Err(EtcdError::Compacted(rev)) => {
                        self.compacted(rev);
                        resync = true;
                        continue;
                    }
                    Err(err) => {
                        tracing::warn!(%err, "etcd watch: no member would take the stream; trying again");
                        if !self.pause(RETRY) {
                            return;
                        }
                        continue;
                    }
                },
            };
            if std::mem::take(&mut resync) && self.events.send(WatchEvent::Resync).is_err() {
                return;
            }
            match self.pump(current) {
                End::Stopped => return,
                End::Compacted(rev) => {
                    self.compacted(rev);
                    resync = true;
                }
                End::Failed(why) => {
                    tracing::info!(endpoint = %self.current_url(), %why, "etcd watch stream broke; reopening on the next member");
                    self.at += 1;
                }
                End::Refused(err) => {
                    tracing::info!(endpoint = %self.current_url(), %err, "etcd watch stream refused; reopening on the next member");
                    self.at += 1;
                }
            }
        }
    }

    fn current_url(&self) -> String {
        let endpoints = &self.etcd.inner.endpoints;
        endpoints[self.at % endpoints.len()].url()
    }

    fn compacted(&mut self, rev: i64) {
        tracing::warn!(
            from = self.next,
            compacted = rev,
            "etcd watch: history compacted; resynchronizing"
        );
        self.next = 0;
    }

    /// Delivers the stream's events until it ends.
    fn pump(&mut self, mut stream: MessageStream<TcpStream>) -> End {
        loop {
            let line = match stream.next_message(None) {
                Ok(Some(line)) => line,
                Ok(None) => return End::Failed("the stream ended".into()),
                Err(e) => return e.into(),
            };
            let r: WatchResponse = match parse_streamed(&line) {
                Ok(r) => r,
                Err(e) => return refused(e),
            };
            if r.canceled {
                return cancel(&r);
            }
            if r.events.is_empty() {
                // A progress notification: everything to its revision was sent.
                if !r.created && r.header.revision >= self.next {
                    self.next = r.header.revision + 1;
                }
                continue;
            }
            // One revision's events (a transaction's) come in one message: skip by the
            // revision the message started at, and move on after all of them.
            let from = self.next;
            for e in r.events {
                let kv = KeyValue::from(e.kv);
                if kv.mod_revision < from {
                    continue; // delivered before a reconnect
                }
                self.next = self.next.max(kv.mod_revision + 1);
                let event = if e.kind == "DELETE" {
                    WatchEvent::Delete(kv)
                } else {
                    WatchEvent::Put(kv)
                };
                if self.stop.load(Ordering::Relaxed) || self.events.send(event).is_err() {
                    return End::Stopped;
                }
            }
        }
    }

    /// Sleeps `d` unless stopped first; false when stopped.
    fn pause(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            std::thread::sleep(stream::POLL.min(end - Instant::now()));
        }
        !self.stop.load(Ordering::Relaxed)
    }
}

/// Why etcd canceled a watch.
fn cancel(r: &WatchResponse) -> End {
    if r.compact_revision > 0 {
        End::Compacted(r.compact_revision)
    } else {
        End::Refused(EtcdError::Status {
            code: 0,
            message: format!("etcd canceled the watch: {}", r.cancel_reason),
        })
    }
}

/// A message etcd sent that is an error, or that is not understood.
fn refused(e: EtcdError) -> End {
    match e {
        EtcdError::Status { .. } => End::Refused(e),
        other => End::Failed(other.to_string()),
    }
}
