//! Multishot accept on a worker's listening sockets.
//!
//! Lifecycle of each listener: `Idle` → `submit` → `Armed` (completions hand over new
//! sockets) → final completion → re-armed, or `Retry` at the next tick after an error
//! that would fail again at once (EMFILE...); `stop` at shutdown cancels an armed
//! accept (`Cancelling`) or closes an idle socket (`Closed`); a final completion while
//! stopping closes it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use io_uring::{opcode, types};
use socket2::Socket;

use super::driver::{Completion, Driver};
use super::stats::WorkerCounters;
use super::token::{Kind, Token};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListenerState {
    /// Not armed yet.
    Idle,
    /// A multishot accept is in flight.
    Armed,
    /// Armed, and its cancel is submitted (shutdown).
    Cancelling,
    /// The last accept failed: re-arm at the next tick.
    Retry,
    /// The socket is closed.
    Closed,
}

struct Listener {
    /// `None` once closed.
    sock: Option<Socket>,
    state: ListenerState,
}

pub(crate) struct Listeners {
    list: Vec<Listener>,
}

fn token(idx: usize) -> Token {
    Token::new(Kind::Accept, 0, idx)
}

impl Listeners {
    pub fn new(socks: Vec<Socket>) -> Listeners {
        Listeners {
            list: socks
                .into_iter()
                .map(|s| Listener {
                    sock: Some(s),
                    state: ListenerState::Idle,
                })
                .collect(),
        }
    }

    pub fn submit_all(&mut self, driver: &mut Driver) {
        for i in 0..self.list.len() {
            self.submit(i, driver);
        }
    }

    fn submit(&mut self, idx: usize, driver: &mut Driver) {
        let l = &mut self.list[idx];
        let Some(fd) = l.sock.as_ref().map(|s| s.as_raw_fd()) else {
            return;
        };
        l.state = ListenerState::Armed;
        let e = opcode::AcceptMulti::new(types::Fd(fd))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(token(idx).encode());
        // SAFETY: the entry names no memory (no peer address is asked for); the socket
        // stays open until the final completion (`Closed` is only entered after it).
        unsafe { driver.push(e) };
    }

    /// An accept completion on listener `idx`: the new socket, if one came. `accepting`
    /// is false while the worker shuts down: the listener is closed once its accept
    /// ended.
    pub fn complete(
        &mut self,
        idx: usize,
        c: Completion,
        accepting: bool,
        driver: &mut Driver,
        counters: &WorkerCounters,
    ) -> Option<OwnedFd> {
        if idx >= self.list.len() {
            return None;
        }
        let mut fd = None;
        let mut failed = false;
        if c.res >= 0 {
            // SAFETY: the kernel just returned this new descriptor to us; nothing else
            // owns it.
            fd = Some(unsafe { OwnedFd::from_raw_fd(c.res) });
        } else if c.res != -libc::ECANCELED {
            WorkerCounters::add(&counters.accept_errors, 1);
            tracing::debug!(
                "accept failed: {}",
                std::io::Error::from_raw_os_error(-c.res)
            );
            failed = true;
        }
        if c.is_final() {
            let l = &mut self.list[idx];
            if !accepting {
                l.sock = None;
                l.state = ListenerState::Closed;
            } else if failed {
                // Resource errors (EMFILE...) would fail again at once: retry at the tick.
                l.state = ListenerState::Retry;
            } else {
                self.submit(idx, driver);
            }
        }
        fd
    }

    /// Re-arm the listeners whose accept failed (at the tick).
    pub fn retry(&mut self, driver: &mut Driver) {
        for i in 0..self.list.len() {
            if self.list[i].state == ListenerState::Retry {
                self.submit(i, driver);
            }
        }
    }

    /// Stop accepting: cancel armed accepts, close idle sockets.
    pub fn stop(&mut self, driver: &mut Driver) {
        for (i, l) in self.list.iter_mut().enumerate() {
            match l.state {
                ListenerState::Armed => {
                    l.state = ListenerState::Cancelling;
                    driver.cancel(token(i));
                }
                ListenerState::Cancelling | ListenerState::Closed => {}
                ListenerState::Idle | ListenerState::Retry => {
                    l.sock = None;
                    l.state = ListenerState::Closed;
                }
            }
        }
    }

    pub fn all_closed(&self) -> bool {
        self.list.iter().all(|l| l.state == ListenerState::Closed)
    }

    #[cfg(test)]
    pub fn states(&self) -> Vec<ListenerState> {
        self.list.iter().map(|l| l.state).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(res: i32, more: bool) -> Completion {
        Completion::fake(token(0), res, more, None)
    }

    #[test]
    fn lifecycle_rearm_retry_and_stop() {
        let (mut d, _) = Driver::new(16, None).unwrap();
        let sock = Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let counters = WorkerCounters::default();
        let mut l = Listeners::new(vec![sock]);
        assert_eq!(l.states(), [ListenerState::Idle]);
        l.submit_all(&mut d);
        assert_eq!(l.states(), [ListenerState::Armed]);
        // An error that ends the accept: retried at the tick, not at once.
        assert!(
            l.complete(0, completion(-libc::EMFILE, false), true, &mut d, &counters)
                .is_none()
        );
        assert_eq!(l.states(), [ListenerState::Retry]);
        assert_eq!(
            counters
                .accept_errors
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        l.retry(&mut d);
        assert_eq!(l.states(), [ListenerState::Armed]);
        // A final completion without error re-arms at once.
        l.complete(
            0,
            completion(-libc::ECANCELED, false),
            true,
            &mut d,
            &counters,
        );
        assert_eq!(l.states(), [ListenerState::Armed]);
        // Shutdown: cancel, then closed once the accept ended.
        l.stop(&mut d);
        assert_eq!(l.states(), [ListenerState::Cancelling]);
        assert!(!l.all_closed());
        l.complete(
            0,
            completion(-libc::ECANCELED, false),
            false,
            &mut d,
            &counters,
        );
        assert!(l.all_closed());
    }
}
