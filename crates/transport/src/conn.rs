//! Per-connection state and the decision of what to do next with it.
//!
//! The worker records events (data, send progress, errors, drain requests) on the
//! connection and then asks [`Conn::plan`] which operations to submit or cancel; the
//! plan is a pure function of the flags, so the lifecycle rules are unit-tested here:
//!
//! * open: keep one multishot receive armed unless the output backlog is above
//!   `max_out` (then cancel it, and re-arm once the backlog is at most `max_out / 2`);
//! * closing, flush: stop reading, send what is queued, then finish;
//! * closing, abort: cancel everything, finish as soon as no operation is in flight.
//!
//! "Finish" (calling `on_close`, closing the fd, freeing the state) only happens when
//! no operation of the connection is in flight, so no completion can outlive it.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::time::Instant;

use ringnfs_proto::rpc::record::RecordAssembler;
use ringnfs_service::ConnMeta;

use super::output::OutQueue;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closing {
    /// Stop reading, send what is queued (until the deadline), then close.
    Flush,
    /// Close as soon as outstanding operations are cancelled.
    Abort,
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
    pub fn push(&mut self, record: &[u8]) {
        self.bytes += record.len();
        self.records.push_back(record.to_vec());
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

/// What the worker should submit for a connection now.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    pub arm_recv: bool,
    pub cancel_recv: bool,
    /// Submit a send (of the remainder if a partial send is being continued).
    pub send: bool,
    pub cancel_send: bool,
    /// Everything is done: call `on_close`, close the fd, free the state.
    pub finish: bool,
    /// The connection just became paused (for the counter).
    pub paused_now: bool,
}

pub(crate) struct Conn {
    pub meta: ConnMeta,
    pub fd: OwnedFd,
    pub generation: u32,
    pub asm: RecordAssembler,
    pub out: OutQueue,
    pub deferred: Deferred,
    /// A multishot receive is in flight (until its final completion).
    pub recv_armed: bool,
    pub recv_cancelled: bool,
    /// A send operation is in flight.
    pub send_armed: bool,
    pub send_cancelled: bool,
    /// Not reading: the output backlog went over the bound.
    pub paused: bool,
    pub closing: Option<Closing>,
    pub deadline: Option<Instant>,
    /// Queued for [`Conn::plan`] at the end of the completion batch.
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
            asm: RecordAssembler::new(max_record),
            out: OutQueue::default(),
            deferred: Deferred::default(),
            recv_armed: false,
            recv_cancelled: false,
            send_armed: false,
            send_cancelled: false,
            paused: false,
            closing: None,
            deadline: None,
            dirty: false,
            last_record: Instant::now(),
        }
    }

    /// Begin closing. `Abort` overrides `Flush`; a later deadline never extends an
    /// earlier one.
    pub fn close(&mut self, mode: Closing, deadline: Instant) {
        match (self.closing, mode) {
            (Some(Closing::Abort), _) => return,
            (_, Closing::Abort) => {
                self.closing = Some(Closing::Abort);
                self.out.abort();
                self.deferred.clear();
            }
            (_, Closing::Flush) => self.closing = Some(Closing::Flush),
        }
        self.deadline = Some(self.deadline.map_or(deadline, |d| d.min(deadline)));
    }

    /// Should a newly received record wait (the connection is over its bound)?
    pub fn must_defer(&self) -> bool {
        self.paused || !self.deferred.is_empty()
    }

    /// Re-evaluate backpressure after the backlog changed. Returns true if the
    /// connection just became paused.
    pub fn update_pause(&mut self, max_out: usize) -> bool {
        let backlog = self.out.backlog();
        if !self.paused && backlog > max_out {
            self.paused = true;
            return true;
        }
        if self.paused && backlog <= max_out / 2 {
            self.paused = false;
        }
        false
    }

    /// Decide the next operations and mark them as submitted/cancelled.
    pub fn plan(&mut self, max_out: usize) -> Plan {
        let mut p = Plan {
            paused_now: self.update_pause(max_out),
            ..Plan::default()
        };
        let want_recv = self.closing.is_none() && !self.paused && self.deferred.is_empty();
        if self.recv_armed && !want_recv && !self.recv_cancelled {
            p.cancel_recv = true;
            self.recv_cancelled = true;
        }
        if !self.recv_armed && want_recv {
            p.arm_recv = true;
            self.recv_armed = true;
            self.recv_cancelled = false;
        }
        if self.closing == Some(Closing::Abort) {
            if self.send_armed && !self.send_cancelled {
                p.cancel_send = true;
                self.send_cancelled = true;
            }
        } else if !self.send_armed && (self.out.busy() || self.out.start().is_some()) {
            // Either continue a partial send or start sending what accumulated.
            p.send = true;
            self.send_armed = true;
            self.send_cancelled = false;
        }
        p.finish = !self.recv_armed
            && !self.send_armed
            && match self.closing {
                None => false,
                Some(Closing::Abort) => true,
                Some(Closing::Flush) => self.out.is_idle() && self.deferred.is_empty(),
            };
        p
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

    #[test]
    fn new_connection_arms_one_receive() {
        let mut c = conn();
        let p = c.plan(100);
        assert!(p.arm_recv && !p.send && !p.finish);
        assert_eq!(c.plan(100), Plan::default(), "nothing twice");
    }

    #[test]
    fn replies_are_sent_one_at_a_time_with_continuation() {
        let mut c = conn();
        c.plan(1000);
        reply(&mut c, 10);
        assert!(c.plan(1000).send);
        reply(&mut c, 10);
        assert!(!c.plan(1000).send, "one send in flight");
        // Partial completion: continue.
        c.send_armed = false;
        assert!(c.out.sent(5));
        assert!(c.plan(1000).send);
        assert_eq!(c.out.remaining().len(), 9);
        c.send_armed = false;
        assert!(!c.out.sent(9));
        // The second reply goes out next.
        assert!(c.plan(1000).send);
        assert_eq!(c.out.remaining().len(), 14);
    }

    #[test]
    fn backpressure_pauses_and_resumes_with_hysteresis() {
        let mut c = conn();
        c.plan(100);
        reply(&mut c, 150);
        let p = c.plan(100);
        assert!(p.paused_now && p.cancel_recv && p.send);
        assert!(c.must_defer());
        c.deferred.push(b"later");
        // The receive's final completion arrives.
        c.recv_armed = false;
        assert!(!c.plan(100).arm_recv);
        // 154 bytes in flight; sending 94 leaves 60 > 50: still paused.
        c.send_armed = false;
        c.out.sent(94);
        let p = c.plan(100);
        assert!(p.send && !p.arm_recv);
        assert!(c.paused);
        c.send_armed = false;
        c.out.sent(20);
        c.plan(100);
        assert!(!c.paused, "backlog 40 <= 50");
        // Deferred records must be replayed before reading again.
        assert!(!c.recv_armed);
        assert_eq!(c.deferred.pop().as_deref(), Some(&b"later"[..]));
        assert!(c.plan(100).arm_recv);
    }

    #[test]
    fn flush_close_sends_then_finishes() {
        let mut c = conn();
        c.plan(1000);
        reply(&mut c, 10);
        c.close(Closing::Flush, Instant::now());
        let p = c.plan(1000);
        assert!(p.cancel_recv && p.send && !p.finish);
        c.recv_armed = false;
        assert!(!c.plan(1000).finish, "send in flight");
        c.send_armed = false;
        c.out.sent(14);
        assert!(c.plan(1000).finish);
    }

    #[test]
    fn abort_cancels_everything_and_waits_for_completions() {
        let mut c = conn();
        c.plan(1000);
        reply(&mut c, 10);
        c.plan(1000);
        c.close(Closing::Abort, Instant::now());
        let p = c.plan(1000);
        assert!(p.cancel_recv && p.cancel_send && !p.finish);
        assert_eq!(c.plan(1000), Plan::default(), "cancel once");
        c.recv_armed = false;
        assert!(!c.plan(1000).finish);
        c.send_armed = false;
        c.out.send_failed();
        assert!(c.plan(1000).finish);
        // Flush cannot downgrade an abort.
        c.close(Closing::Flush, Instant::now());
        assert_eq!(c.closing, Some(Closing::Abort));
    }

    #[test]
    fn deadline_only_shrinks() {
        let mut c = conn();
        let now = Instant::now();
        let later = now + std::time::Duration::from_secs(5);
        c.close(Closing::Flush, now);
        c.close(Closing::Flush, later);
        assert_eq!(c.deadline, Some(now));
    }
}
