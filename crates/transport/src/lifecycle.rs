//! Connection and worker lifecycle: mailbox messages, re-planning connections after
//! each completion batch, closing, the housekeeping tick and shutdown phases.

use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::conn::Closing;
use super::mailbox::Msg;
use super::stats::WorkerCounters;
use super::token::{Kind, Token};
use super::worker::{FLUSH_GRACE, Phase, SHUTDOWN_GRACE, Worker};

impl Worker {
    pub(crate) fn drain_mailbox(&mut self) {
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Send { conn, record } => {
                    let Some(&key) = self.ids.get(&conn) else {
                        tracing::debug!(conn, "send_record to a closed connection");
                        continue;
                    };
                    let c = &mut self.conns[key];
                    if c.closing == Some(Closing::Abort) {
                        continue;
                    }
                    if let Err(e) = c.out.push_record(&record) {
                        tracing::warn!(conn, "send_record refused: {e}");
                    }
                    self.mark_dirty(key);
                }
                Msg::Drain { conn } => {
                    if let Some(&key) = self.ids.get(&conn) {
                        let c = &mut self.conns[key];
                        c.deferred.clear();
                        c.close(Closing::Flush, Instant::now() + FLUSH_GRACE);
                        self.mark_dirty(key);
                    }
                }
                Msg::Shutdown => self.begin_shutdown(),
            }
        }
    }

    pub(crate) fn begin_shutdown(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        tracing::debug!(core = self.core, conns = self.conns.len(), "shutting down");
        self.phase = Phase::Draining(deadline);
        for i in 0..self.listeners.len() {
            let l = &mut self.listeners[i];
            if l.armed && !l.cancelled {
                l.cancelled = true;
                self.cancel(Token::new(Kind::Accept, 0, i));
            } else if !l.armed {
                l.sock = None;
            }
        }
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            let c = &mut self.conns[key];
            c.deferred.clear();
            c.close(Closing::Flush, deadline);
            self.mark_dirty(key);
        }
    }

    pub(crate) fn on_tick(&mut self) {
        let now = Instant::now();
        if self.phase == Phase::Running {
            for i in 0..self.listeners.len() {
                if self.listeners[i].retry {
                    self.listeners[i].retry = false;
                    self.arm_accept(i);
                }
            }
        }
        let expired: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.closing == Some(Closing::Flush) && c.deadline.is_some_and(|d| d <= now)
            })
            .map(|(k, _)| k)
            .collect();
        if self.phase == Phase::Running {
            let idle_keys: Vec<usize> = self
                .conns
                .iter()
                .filter(|(_, c)| {
                    let shared = &c.meta.shared;
                    let limit = if shared.had_session() {
                        self.cfg.session_idle_timeout
                    } else {
                        self.cfg.idle_timeout
                    };
                    c.closing.is_none()
                        && shared.bound_sessions.load(Ordering::Relaxed) == 0
                        && limit.is_some_and(|idle| {
                            now.saturating_duration_since(c.last_record) >= idle
                        })
                })
                .map(|(k, _)| k)
                .collect();
            for key in idle_keys {
                let c = &mut self.conns[key];
                tracing::debug!(conn = c.meta.id, peer = %c.meta.peer, "closing idle unbound connection");
                WorkerCounters::add(&self.counters.idle_closes, 1);
                c.deferred.clear();
                c.close(Closing::Flush, now + FLUSH_GRACE);
                self.mark_dirty(key);
            }
        }
        for key in expired {
            tracing::debug!(conn = self.conns[key].meta.id, "flush deadline passed");
            WorkerCounters::add(&self.counters.flush_timeouts, 1);
            self.conns[key].close(Closing::Abort, now);
            self.mark_dirty(key);
        }
    }

    pub(crate) fn check_phase(&mut self) {
        if let Phase::Draining(_) = self.phase
            && self.conns.is_empty()
            && self.listeners.iter().all(|l| l.sock.is_none())
        {
            self.phase = Phase::Exiting;
            self.cancel(Token::new(Kind::Timer, 0, 0));
            self.cancel(Token::new(Kind::Wake, 0, 0));
        }
    }

    /// Re-plan every connection touched in this batch.
    pub(crate) fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for &(key, generation) in &dirty {
            match self.conns.get_mut(key) {
                Some(c) if c.generation == generation => {
                    c.dirty = false;
                    self.advance(key);
                }
                _ => {}
            }
        }
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
    }

    /// Replay deferred records if the backlog allows, then submit what the plan says.
    pub(crate) fn advance(&mut self, key: usize) {
        let max_out = self.cfg.max_out_bytes;
        let c = &mut self.conns[key];
        if c.closing != Some(Closing::Abort) {
            c.update_pause(max_out);
            while !c.paused {
                let Some(rec) = c.deferred.pop() else { break };
                if let Err(e) = super::recv::handle_record(&*self.service, c, &rec, &self.counters)
                {
                    tracing::warn!(conn = c.meta.id, "closing: {e}");
                    c.close(Closing::Abort, Instant::now());
                    break;
                }
                if c.update_pause(max_out) {
                    WorkerCounters::add(&self.counters.backpressure_pauses, 1);
                }
            }
        }
        let plan = c.plan(max_out);
        WorkerCounters::peak(&self.counters.peak_out_bytes, c.out.backlog() as u64);
        if plan.paused_now {
            WorkerCounters::add(&self.counters.backpressure_pauses, 1);
        }
        let generation = c.generation as u64;
        if plan.cancel_recv {
            self.cancel(Token::new(Kind::Recv, generation, key));
        }
        if plan.cancel_send {
            self.cancel(Token::new(Kind::Send, generation, key));
        }
        if plan.arm_recv {
            self.arm_recv(key);
        }
        if plan.send {
            self.submit_send(key);
        }
        if plan.finish {
            self.finish(key);
        }
    }

    /// Call `on_close`, close the fd and free the state of a connection with no
    /// operation in flight.
    pub(crate) fn finish(&mut self, key: usize) {
        let c = self.conns.remove(key);
        self.limiter.release(c.meta.peer.ip());
        self.ids.remove(&c.meta.id);
        self.live.lock().remove(&c.meta.id);
        let service = &self.service;
        if catch_unwind(AssertUnwindSafe(|| service.on_close(&c.meta))).is_err() {
            tracing::error!(conn = c.meta.id, "Service::on_close panicked");
            WorkerCounters::add(&self.counters.service_panics, 1);
        }
        WorkerCounters::add(&self.counters.closed, 1);
        tracing::trace!(conn = c.meta.id, fd = c.fd.as_raw_fd(), "closed");
    }
}
