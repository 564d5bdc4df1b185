//! Sending a connection's queued output: one send in flight, continued on partial
//! completion.

use std::time::Instant;

use io_uring::{opcode, types};
use std::os::fd::AsRawFd;

use super::conn::Closing;
use super::stats::WorkerCounters;
use super::token::{Kind, Token};
use super::worker::Worker;

impl Worker {
    /// Submit a send of the connection's in-flight bytes (the plan has moved them
    /// in flight and marked the send armed).
    pub(crate) fn submit_send(&mut self, key: usize) {
        let c = &self.conns[key];
        let buf = c.out.remaining();
        // `inflight` is not touched while the send is armed, so `buf` stays valid
        // until the completion (see `OutQueue::start`).
        let e = opcode::Send::new(types::Fd(c.fd.as_raw_fd()), buf.as_ptr(), buf.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(Token::new(Kind::Send, c.generation as u64, key).encode());
        WorkerCounters::add(&self.counters.sends, 1);
        self.push(e);
    }

    pub(crate) fn on_send(&mut self, t: Token, res: i32) {
        let counters = self.counters.clone();
        let Some(c) = self.conn_for(t) else {
            tracing::warn!(?t, "send completion for a stale connection");
            return;
        };
        c.send_armed = false;
        if res > 0 {
            WorkerCounters::add(&counters.bytes_out, res as u64);
            c.out.sent(res as usize);
        } else {
            if res != -libc::ECANCELED {
                tracing::debug!(
                    conn = c.meta.id,
                    "send failed: {}",
                    std::io::Error::from_raw_os_error(-res)
                );
            }
            c.out.send_failed();
            c.close(Closing::Abort, Instant::now());
        }
        self.mark_dirty(t.key as usize);
    }
}
