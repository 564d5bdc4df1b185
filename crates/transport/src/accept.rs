//! Multishot accept on a worker's listening sockets.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};

use io_uring::{cqueue, opcode, types};
use socket2::SockRef;

use ringnfs_service::{ConnMeta, make_conn_id};

use super::conn::Conn;
use super::limits::Refusal;
use super::stats::WorkerCounters;
use super::token::{Kind, Token, generation_of};
use super::worker::{Phase, Worker};

impl Worker {
    pub(crate) fn arm_accept(&mut self, idx: usize) {
        let Some(fd) = self.listeners[idx].sock.as_ref().map(|s| s.as_raw_fd()) else {
            return;
        };
        self.listeners[idx].armed = true;
        let e = opcode::AcceptMulti::new(types::Fd(fd))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(Token::new(Kind::Accept, 0, idx).encode());
        self.push(e);
    }

    pub(crate) fn on_accept(&mut self, idx: usize, res: i32, flags: u32) {
        let more = cqueue::more(flags);
        if idx >= self.listeners.len() {
            return;
        }
        if res >= 0 {
            // SAFETY: the kernel just returned this new descriptor to us; nothing else
            // owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(res) };
            if self.phase == Phase::Running {
                self.new_conn(fd);
            }
        } else if res != -libc::ECANCELED {
            WorkerCounters::add(&self.counters.accept_errors, 1);
            tracing::debug!(
                core = self.core,
                "accept failed: {}",
                std::io::Error::from_raw_os_error(-res)
            );
            if !more {
                // Resource errors (EMFILE...) would fail again at once: retry at the tick.
                self.listeners[idx].retry = true;
            }
        }
        if !more {
            let l = &mut self.listeners[idx];
            l.armed = false;
            if self.phase != Phase::Running {
                l.sock = None;
            } else if !l.retry {
                self.arm_accept(idx);
            }
        }
    }

    fn new_conn(&mut self, fd: OwnedFd) {
        let sock = SockRef::from(&fd);
        if let Err(e) = sock.set_tcp_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
        let peer = sock.peer_addr().ok().and_then(|a| a.as_socket());
        let local = sock.local_addr().ok().and_then(|a| a.as_socket());
        let (Some(peer), Some(local)) = (peer, local) else {
            tracing::debug!("accepted socket already gone");
            return;
        };
        if let Err(why) = self.limiter.admit(peer.ip()) {
            let counter = match why {
                Refusal::Total => &self.counters.conns_refused_total,
                Refusal::PerPeer => &self.counters.conns_refused_per_peer,
            };
            WorkerCounters::add(counter, 1);
            tracing::debug!(%peer, ?why, "connection refused: limit reached");
            return; // dropping `fd` closes the socket
        }
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if key > u32::MAX as usize {
            tracing::warn!("too many connections on one core");
            self.limiter.release(peer.ip());
            return;
        }
        self.next_seq += 1;
        let id = make_conn_id(self.core, self.next_seq);
        let meta = ConnMeta {
            id,
            core: self.core,
            peer,
            local,
            control: self.control.clone(),
            shared: Default::default(),
        };
        let generation = generation_of(self.next_seq);
        entry.insert(Conn::new(meta, fd, generation, self.cfg.max_record));
        self.ids.insert(id, key);
        self.live.lock().insert(id);
        WorkerCounters::add(&self.counters.accepted, 1);
        tracing::trace!(conn = id, %peer, "accepted");
        let service = &self.service;
        let meta = &self.conns[key].meta;
        if catch_unwind(AssertUnwindSafe(|| service.on_accept(meta))).is_err() {
            tracing::error!(conn = id, "Service::on_accept panicked");
            WorkerCounters::add(&self.counters.service_panics, 1);
        }
        self.mark_dirty(key);
    }
}
