//! One connection's state, and the decision of what to do next with it.
//!
//! The worker records events on the connection (data, send progress, errors, drain
//! requests), then plans in two steps: [`decide`], a pure function from the
//! connection's [`Facts`] to a [`Decision`] (which ring operations to submit or cancel,
//! whether the connection is finished), and [`Conn::apply`], which moves the receive
//! and send sides to their new states (the worker submits the operations). The rules:
//!
//! * open: keep one multishot receive armed unless the output backlog is above
//!   `max_out` (then cancel it, and re-arm once the backlog is at most `max_out / 2`)
//!   or received records wait in `deferred`;
//! * inside a large record (at least [`DIRECT_FROM`] bytes of its fragment still to
//!   come): cancel the multishot receive and receive the rest straight into the
//!   record's own buffer (no copy out of the provided buffers). A multishot receive
//!   takes in all the socket holds before the worker sees its first completion, so a
//!   connection that had a large record then receives one provided buffer at a time
//!   (`single`): the header of the next large record arrives in one buffer and the
//!   rest goes straight to its own. After [`SINGLE_FOR`] receives without a large
//!   record it goes back to multishot;
//! * flushing: stop reading, send what is queued, then finish;
//! * aborting: cancel everything, finish as soon as no operation is in flight.
//!
//! "Finish" (calling `on_close`, closing the fd, freeing the state) only happens when
//! neither side has an operation in flight, so no receive or send completion can
//! outlive the connection. File operations of its requests do not hold it (`fileio`).

use ringnfs_proto::rpc::record::Record;
use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ringnfs_proto::rpc::record::RecordAssembler;
use ringnfs_service::ConnMeta;

use super::output::OutQueue;
use super::tls::TlsConn;

/// A request to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closing {
    /// Stop reading, send what is queued (until the deadline), then close.
    Flush,
    /// Close as soon as outstanding operations are cancelled.
    Abort,
}

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Life {
    Open,
    /// Closing after its output is sent, or at `deadline` (then aborted).
    Flushing {
        deadline: Instant,
    },
    /// Closing as soon as nothing is in flight.
    Aborting,
}

impl Life {
    pub fn closing(self) -> Option<Closing> {
        match self {
            Life::Open => None,
            Life::Flushing { .. } => Some(Closing::Flush),
            Life::Aborting => Some(Closing::Abort),
        }
    }
}

/// Receive the rest of a record's fragment straight into its buffer when at least
/// this much of it is still to come.
pub(crate) const DIRECT_FROM: usize = 64 * 1024;
/// Receives without a large record before a connection goes back to multishot.
pub(crate) const SINGLE_FOR: u32 = 64;

/// A record's buffer lent for a direct receive of up to `want` more bytes.
#[derive(Debug)]
pub(crate) struct Lent {
    pub buf: Vec<u8>,
    pub want: usize,
}

/// The receive side: the connection's multishot receive, or a single receive into a
/// large record's buffer (`recv`; which one is in flight: [`Conn::direct`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecvSide {
    /// No receive in flight.
    Idle,
    /// A receive is in flight.
    Armed,
    /// Its cancel is submitted; the final completion is still to come.
    Cancelling,
}

/// The send side: at most one send in flight (`send`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendSide {
    Idle,
    Armed,
    Cancelling,
}

/// Whether the connection takes in records (backpressure on its output backlog).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intake {
    Open,
    /// The backlog went over the bound: not reading until it is at most half of it.
    Paused,
}

/// Records received while the connection was over its output bound, kept in order
/// until the backlog drains. Bounded by what was already received when the receive
/// was cancelled.
#[derive(Debug, Default)]
pub(crate) struct Deferred {
    records: VecDeque<Vec<u8>>,
    bytes: usize,
}

impl Deferred {
    pub fn push(&mut self, record: Record<'_>) {
        let record = match record {
            Record::InPlace(b) => b.to_vec(),
            Record::Gathered(v) => v,
        };
        self.bytes += record.len();
        self.records.push_back(record);
    }

    pub fn pop(&mut self) -> Option<Vec<u8>> {
        let r = self.records.pop_front()?;
        self.bytes -= r.len();
        Some(r)
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn clear(&mut self) {
        self.records = VecDeque::new();
        self.bytes = 0;
    }
}

/// What [`decide`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Facts {
    pub closing: Option<Closing>,
    pub intake: Intake,
    /// Received records wait in `deferred`.
    pub deferred: bool,
    pub recv: RecvSide,
    /// The receive in flight (if any) is a direct one, into a record's buffer.
    pub recv_direct: bool,
    /// The current record has at least [`DIRECT_FROM`] bytes still to come.
    pub large_record: bool,
    pub send: SendSide,
    /// Output bytes are in flight (a send to continue after a partial completion).
    pub out_in_flight: bool,
    /// Output bytes wait behind them.
    pub out_queued: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecvStep {
    /// Arm the multishot receive.
    Arm,
    /// Receive into the current record's buffer ([`Conn::direct`]).
    ArmDirect,
    Cancel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendStep {
    /// Send the in-flight bytes (moving the oldest queued ones in flight first if none
    /// are).
    Start,
    Cancel,
}

/// What to do with a connection now.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    pub recv: Option<RecvStep>,
    pub send: Option<SendStep>,
    /// Everything is done: call `on_close`, close the fd, free the state.
    pub finish: bool,
}

/// The lifecycle rules (see the module docs), as a pure function.
pub(crate) fn decide(f: &Facts) -> Decision {
    let want_recv = f.closing.is_none() && f.intake == Intake::Open && !f.deferred;
    let recv = match (f.recv, want_recv) {
        (RecvSide::Idle, true) if f.large_record => Some(RecvStep::ArmDirect),
        (RecvSide::Idle, true) => Some(RecvStep::Arm),
        // A direct receive is bounded by its record, which was already taken in: it is
        // left to finish under backpressure, and cancelled only when closing (a
        // cancelled MSG_WAITALL receive may not report what it had received).
        (RecvSide::Armed, false) if f.recv_direct && f.closing.is_none() => None,
        (RecvSide::Armed, false) => Some(RecvStep::Cancel),
        // Into a large record: the multishot receive makes way for direct ones.
        (RecvSide::Armed, true) if f.large_record && !f.recv_direct => Some(RecvStep::Cancel),
        _ => None,
    };
    let recv_armed = matches!(recv, Some(RecvStep::Arm | RecvStep::ArmDirect));
    let out_pending = f.out_in_flight || f.out_queued;
    let send = match (f.closing, f.send) {
        (Some(Closing::Abort), SendSide::Armed) => Some(SendStep::Cancel),
        (Some(Closing::Abort), _) => None,
        (_, SendSide::Idle) if out_pending => Some(SendStep::Start),
        _ => None,
    };
    let recv_idle = f.recv == RecvSide::Idle && !recv_armed;
    let send_idle = f.send == SendSide::Idle && send != Some(SendStep::Start);
    let finish = recv_idle
        && send_idle
        && match f.closing {
            None => false,
            Some(Closing::Abort) => true,
            Some(Closing::Flush) => !out_pending && !f.deferred,
        };
    Decision { recv, send, finish }
}

pub(crate) struct Conn {
    pub meta: ConnMeta,
    pub fd: OwnedFd,
    pub generation: u32,
    pub asm: RecordAssembler,
    /// The buffer of the record a direct receive is filling (lent by `asm`), while one
    /// is in flight: the kernel writes into its spare capacity.
    pub direct: Option<Lent>,
    /// Receive one provided buffer at a time (a large record came lately): how many
    /// receives more without one before going back to multishot; 0 = multishot.
    pub single: u32,
    /// Replies (plain text, record-marked). Without TLS these are what the send side
    /// sends; with TLS they are sealed into `tls.wire` first.
    pub out: OutQueue,
    /// RPC-with-TLS, once the client asked for it.
    pub tls: Option<Box<TlsConn>>,
    pub deferred: Deferred,
    pub recv: RecvSide,
    pub send: SendSide,
    pub intake: Intake,
    pub life: Life,
    /// Queued for planning at the end of the completion batch (the worker's list).
    pub dirty: bool,
    /// When the last complete record arrived (or the accept, before any): the idle
    /// timeout counts from here.
    pub last_record: Instant,
}

impl Conn {
    pub fn new(meta: ConnMeta, fd: OwnedFd, generation: u32, max_record: usize) -> Conn {
        Conn {
            meta,
            fd,
            generation,
            asm: RecordAssembler::new(max_record).with_alloc(super::recpool::alloc),
            direct: None,
            single: 0,
            out: OutQueue::default(),
            tls: None,
            deferred: Deferred::default(),
            recv: RecvSide::Idle,
            send: SendSide::Idle,
            intake: Intake::Open,
            life: Life::Open,
            dirty: false,
            last_record: Instant::now(),
        }
    }

    pub fn closing(&self) -> Option<Closing> {
        self.life.closing()
    }

    /// Begin closing. `Abort` overrides `Flush`; a later deadline never extends an
    /// earlier one.
    pub fn close(&mut self, mode: Closing, deadline: Instant) {
        self.life = match (self.life, mode) {
            (Life::Aborting, _) => return,
            (_, Closing::Abort) => {
                self.out.abort();
                if let Some(t) = &mut self.tls {
                    t.wire.abort();
                }
                self.deferred.clear();
                Life::Aborting
            }
            (Life::Flushing { deadline: d }, Closing::Flush) => Life::Flushing {
                deadline: d.min(deadline),
            },
            (Life::Open, Closing::Flush) => {
                // TLS: the peer learns that the end of data is not a truncation.
                if let Some(t) = &mut self.tls {
                    t.close_notify();
                }
                Life::Flushing { deadline }
            }
        };
    }

    /// Should a newly received record wait (the connection is over its bound)?
    pub fn must_defer(&self) -> bool {
        self.intake == Intake::Paused || !self.deferred.is_empty()
    }

    /// Re-evaluate backpressure after the backlog changed. Returns true if the
    /// connection just became paused.
    pub fn update_pause(&mut self, max_out: usize) -> bool {
        let backlog = self.backlog();
        match self.intake {
            Intake::Open if backlog > max_out => {
                self.intake = Intake::Paused;
                true
            }
            Intake::Paused if backlog <= max_out / 2 => {
                self.intake = Intake::Open;
                false
            }
            _ => false,
        }
    }

    /// The queue the send side sends from: the replies themselves, or with TLS the
    /// records they were sealed into.
    pub fn wire(&self) -> &OutQueue {
        match &self.tls {
            Some(t) => &t.wire,
            None => &self.out,
        }
    }

    pub fn wire_mut(&mut self) -> &mut OutQueue {
        match &mut self.tls {
            Some(t) => &mut t.wire,
            None => &mut self.out,
        }
    }

    /// Bytes queued and not yet sent (with TLS, replies not yet sealed too).
    pub fn backlog(&self) -> usize {
        match &self.tls {
            Some(t) => self.out.backlog() + t.wire.backlog(),
            None => self.out.backlog(),
        }
    }

    /// With TLS: seal the replies queued so far into TLS records on the wire queue.
    /// Called before planning, so that what `decide` sees queued is on the wire queue.
    pub fn seal_tls(&mut self) -> std::io::Result<()> {
        match &mut self.tls {
            Some(t) if self.life != Life::Aborting => t.seal(&mut self.out),
            _ => Ok(()),
        }
    }

    pub fn facts(&self) -> Facts {
        let wire = self.wire();
        Facts {
            closing: self.closing(),
            intake: self.intake,
            deferred: !self.deferred.is_empty(),
            recv: self.recv,
            recv_direct: self.direct.is_some(),
            // TLS records are not RPC records: no receiving straight into a record.
            large_record: self.tls.is_none() && self.asm.direct_want(DIRECT_FROM).is_some(),
            send: self.send,
            out_in_flight: wire.busy(),
            out_queued: wire.has_queued(),
        }
    }

    /// Move the sides to the states `d` leads to; the caller submits the operations
    /// (for [`SendStep::Start`], of [`OutQueue::remaining`]).
    pub fn apply(&mut self, d: &Decision) {
        match d.recv {
            Some(RecvStep::Arm) => self.recv = RecvSide::Armed,
            Some(RecvStep::ArmDirect) => {
                debug_assert!(self.direct.is_none(), "one receive at a time");
                self.direct = self
                    .asm
                    .take_direct(DIRECT_FROM)
                    .map(|(buf, want)| Lent { buf, want });
                debug_assert!(self.direct.is_some(), "decided on a large record");
                self.single = SINGLE_FOR;
                self.recv = RecvSide::Armed;
            }
            Some(RecvStep::Cancel) => self.recv = RecvSide::Cancelling,
            None => {}
        }
        match d.send {
            Some(SendStep::Start) => {
                let wire = self.wire_mut();
                if !wire.busy() {
                    // Either continue a partial send or start sending what accumulated.
                    let started = wire.start().is_some();
                    debug_assert!(started, "decided to send with nothing queued");
                }
                self.send = SendSide::Armed;
            }
            Some(SendStep::Cancel) => self.send = SendSide::Cancelling,
            None => {}
        }
    }

    /// Update backpressure, decide and apply: what the worker must submit now, and
    /// whether the connection just became paused.
    pub fn plan(&mut self, max_out: usize) -> (Decision, bool) {
        let paused_now = self.update_pause(max_out);
        let d = decide(&self.facts());
        self.apply(&d);
        (d, paused_now)
    }

    /// A flushing connection whose deadline passed (it is aborted).
    pub fn flush_overdue(&self, now: Instant) -> bool {
        matches!(self.life, Life::Flushing { deadline } if deadline <= now)
    }

    /// An open connection bound to no session that completed no record for longer than
    /// its idle timeout (`session_idle` if it ever had a session, `idle` otherwise).
    pub fn idle_too_long(
        &self,
        now: Instant,
        idle: Option<Duration>,
        session_idle: Option<Duration>,
    ) -> bool {
        let shared = &self.meta.shared;
        let limit = if shared.had_session() {
            session_idle
        } else {
            idle
        };
        self.life == Life::Open
            && shared.bound_sessions.load(Ordering::Relaxed) == 0
            && limit.is_some_and(|l| now.saturating_duration_since(self.last_record) >= l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Conn {
        let meta = ConnMeta::detached(1, 0);
        let fd = std::fs::File::open("/dev/null").unwrap().into();
        Conn::new(meta, fd, 1, 1024)
    }

    fn reply(c: &mut Conn, n: usize) {
        let (buf, start) = c.out.begin_reply();
        buf.resize(buf.len() + n, 1);
        c.out.end_reply(start).unwrap();
    }

    fn plan(c: &mut Conn, max_out: usize) -> Decision {
        c.plan(max_out).0
    }

    const ARM: Decision = Decision {
        recv: Some(RecvStep::Arm),
        send: None,
        finish: false,
    };

    #[test]
    fn decide_is_a_table() {
        let open = Facts {
            closing: None,
            intake: Intake::Open,
            deferred: false,
            recv: RecvSide::Idle,
            recv_direct: false,
            large_record: false,
            send: SendSide::Idle,
            out_in_flight: false,
            out_queued: false,
        };
        assert_eq!(decide(&open), ARM);
        let armed = Facts {
            recv: RecvSide::Armed,
            ..open
        };
        assert_eq!(decide(&armed), Decision::default());
        // Output waiting: one send.
        let d = decide(&Facts {
            out_queued: true,
            ..armed
        });
        assert_eq!(d.send, Some(SendStep::Start));
        // A send in flight: nothing more, even with bytes waiting.
        let d = decide(&Facts {
            out_queued: true,
            out_in_flight: true,
            send: SendSide::Armed,
            ..armed
        });
        assert_eq!(d, Decision::default());
        // Paused, or records deferred: the receive is cancelled, once.
        for f in [
            Facts {
                intake: Intake::Paused,
                ..armed
            },
            Facts {
                deferred: true,
                ..armed
            },
        ] {
            assert_eq!(decide(&f).recv, Some(RecvStep::Cancel));
            let f = Facts {
                recv: RecvSide::Cancelling,
                ..f
            };
            assert_eq!(decide(&f), Decision::default());
        }
        // Inside a large record: the multishot receive is cancelled, then a direct
        // one armed; while it is in flight nothing more; then back to multishot.
        let large = Facts {
            large_record: true,
            ..armed
        };
        assert_eq!(decide(&large).recv, Some(RecvStep::Cancel));
        let large = Facts {
            recv: RecvSide::Idle,
            ..large
        };
        assert_eq!(decide(&large).recv, Some(RecvStep::ArmDirect));
        let direct = Facts {
            recv: RecvSide::Armed,
            recv_direct: true,
            ..large
        };
        assert_eq!(decide(&direct), Decision::default());
        // Under backpressure it is left to finish; when closing it is cancelled.
        let paused = Facts {
            intake: Intake::Paused,
            ..direct
        };
        assert_eq!(decide(&paused).recv, None);
        let aborting = Facts {
            closing: Some(Closing::Abort),
            ..direct
        };
        assert_eq!(decide(&aborting).recv, Some(RecvStep::Cancel));
        // A large record while closing: nothing is armed.
        let flushing = Facts {
            closing: Some(Closing::Flush),
            ..large
        };
        assert_eq!(decide(&flushing).recv, None);
        // Cancelling while reading is wanted again: wait for the final completion.
        let f = Facts {
            recv: RecvSide::Cancelling,
            ..open
        };
        assert_eq!(decide(&f), Decision::default());
        // Flushing: finish only when idle, nothing queued, nothing deferred.
        let flush = Facts {
            closing: Some(Closing::Flush),
            ..open
        };
        assert!(decide(&flush).finish);
        for f in [
            Facts {
                out_queued: true,
                ..flush
            },
            Facts {
                deferred: true,
                ..flush
            },
            Facts {
                recv: RecvSide::Cancelling,
                ..flush
            },
        ] {
            assert!(!decide(&f).finish, "{f:?}");
        }
        // Aborting: cancel both sides; finish once neither is in flight, whatever is
        // queued.
        let abort = Facts {
            closing: Some(Closing::Abort),
            recv: RecvSide::Armed,
            send: SendSide::Armed,
            out_queued: true,
            out_in_flight: true,
            ..open
        };
        assert_eq!(
            decide(&abort),
            Decision {
                recv: Some(RecvStep::Cancel),
                send: Some(SendStep::Cancel),
                finish: false
            }
        );
        let done = Facts {
            recv: RecvSide::Idle,
            send: SendSide::Idle,
            ..abort
        };
        assert_eq!(
            decide(&done),
            Decision {
                finish: true,
                ..Decision::default()
            }
        );
    }

    #[test]
    fn new_connection_arms_one_receive() {
        let mut c = conn();
        assert_eq!(plan(&mut c, 100), ARM);
        assert_eq!(c.recv, RecvSide::Armed);
        assert_eq!(plan(&mut c, 100), Decision::default(), "nothing twice");
    }

    #[test]
    fn replies_are_sent_one_at_a_time_with_continuation() {
        let mut c = conn();
        plan(&mut c, 1000);
        reply(&mut c, 10);
        assert_eq!(plan(&mut c, 1000).send, Some(SendStep::Start));
        assert_eq!(c.send, SendSide::Armed);
        reply(&mut c, 10);
        assert_eq!(plan(&mut c, 1000).send, None, "one send in flight");
        // Partial completion: continue.
        c.send = SendSide::Idle;
        assert!(c.out.sent(5));
        assert_eq!(plan(&mut c, 1000).send, Some(SendStep::Start));
        assert_eq!(c.out.remaining().len(), 9);
        c.send = SendSide::Idle;
        assert!(!c.out.sent(9));
        // The second reply goes out next.
        assert_eq!(plan(&mut c, 1000).send, Some(SendStep::Start));
        assert_eq!(c.out.remaining().len(), 14);
    }

    #[test]
    fn backpressure_pauses_and_resumes_with_hysteresis() {
        let mut c = conn();
        plan(&mut c, 100);
        reply(&mut c, 150);
        let (d, paused_now) = c.plan(100);
        assert!(paused_now);
        assert_eq!(d.recv, Some(RecvStep::Cancel));
        assert_eq!(d.send, Some(SendStep::Start));
        assert!(c.must_defer());
        c.deferred.push(Record::InPlace(b"later"));
        // The receive's final completion arrives.
        c.recv = RecvSide::Idle;
        assert_eq!(plan(&mut c, 100).recv, None);
        // 154 bytes in flight; sending 94 leaves 60 > 50: still paused.
        c.send = SendSide::Idle;
        c.out.sent(94);
        let d = plan(&mut c, 100);
        assert_eq!((d.send, d.recv), (Some(SendStep::Start), None));
        assert_eq!(c.intake, Intake::Paused);
        c.send = SendSide::Idle;
        c.out.sent(20);
        plan(&mut c, 100);
        assert_eq!(c.intake, Intake::Open, "backlog 40 <= 50");
        // Deferred records must be replayed before reading again.
        assert_eq!(c.recv, RecvSide::Idle);
        assert_eq!(c.deferred.pop().as_deref(), Some(&b"later"[..]));
        assert_eq!(plan(&mut c, 100).recv, Some(RecvStep::Arm));
    }

    #[test]
    fn flush_close_sends_then_finishes() {
        let mut c = conn();
        plan(&mut c, 1000);
        reply(&mut c, 10);
        c.close(Closing::Flush, Instant::now());
        let d = plan(&mut c, 1000);
        assert_eq!(
            (d.recv, d.send, d.finish),
            (Some(RecvStep::Cancel), Some(SendStep::Start), false)
        );
        c.recv = RecvSide::Idle;
        assert!(!plan(&mut c, 1000).finish, "send in flight");
        c.send = SendSide::Idle;
        c.out.sent(14);
        assert!(plan(&mut c, 1000).finish);
    }

    #[test]
    fn abort_cancels_everything_and_waits_for_completions() {
        let mut c = conn();
        plan(&mut c, 1000);
        reply(&mut c, 10);
        plan(&mut c, 1000);
        c.close(Closing::Abort, Instant::now());
        let d = plan(&mut c, 1000);
        assert_eq!(
            (d.recv, d.send, d.finish),
            (Some(RecvStep::Cancel), Some(SendStep::Cancel), false)
        );
        assert_eq!(plan(&mut c, 1000), Decision::default(), "cancel once");
        c.recv = RecvSide::Idle;
        assert!(!plan(&mut c, 1000).finish);
        c.send = SendSide::Idle;
        c.out.send_failed();
        assert!(plan(&mut c, 1000).finish);
        // Flush cannot downgrade an abort.
        c.close(Closing::Flush, Instant::now());
        assert_eq!(c.closing(), Some(Closing::Abort));
    }

    #[test]
    fn deadline_only_shrinks() {
        let mut c = conn();
        let now = Instant::now();
        let later = now + Duration::from_secs(5);
        c.close(Closing::Flush, now);
        c.close(Closing::Flush, later);
        assert_eq!(c.life, Life::Flushing { deadline: now });
        assert!(c.flush_overdue(now));
        assert!(!c.flush_overdue(now - Duration::from_millis(1)));
    }

    #[test]
    fn idle_timeouts_spare_bound_connections_and_use_the_session_limit() {
        let c = conn();
        let t = c.last_record + Duration::from_secs(3);
        let (two, ten) = (Some(Duration::from_secs(2)), Some(Duration::from_secs(10)));
        assert!(c.idle_too_long(t, two, ten));
        assert!(!c.idle_too_long(t, None, ten), "no idle timeout");
        c.meta.shared.mark_had_session();
        assert!(
            !c.idle_too_long(t, two, ten),
            "the session idle timeout applies"
        );
        assert!(c.idle_too_long(t, two, two));
        c.meta.shared.bound_sessions.store(1, Ordering::Relaxed);
        assert!(!c.idle_too_long(t, two, two), "bound to a session");
    }
}
