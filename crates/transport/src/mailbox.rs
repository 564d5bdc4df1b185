//! Cross-core messages: each worker has a channel and an eventfd its ring reads (see
//! `wake`); a sender pushes a message and writes the eventfd so the worker wakes up.
//! Only for what other threads ask (callbacks to send, drains, shutdown): a worker's
//! own requests and their file I/O never pass through here.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use ringnfs_service::{ConnControl, ConnId, conn_core};

/// A message to a worker.
#[derive(Debug)]
pub(crate) enum Msg {
    /// Queue a record (no mark) on a connection.
    Send { conn: ConnId, record: Vec<u8> },
    /// Stop reading the connection, flush, close.
    Drain { conn: ConnId },
    /// Close everything and exit.
    Shutdown,
}

/// The eventfd a worker's ring waits on. Shared, so it is closed only once neither
/// the worker nor any sender can still use it.
#[derive(Debug)]
pub(crate) struct Waker {
    fd: OwnedFd,
}

impl Waker {
    pub fn new() -> io::Result<Waker> {
        // SAFETY: plain syscall; the result is checked before use. Blocking mode:
        // the ring arms a poll for it, and writes never block (the counter would have
        // to reach 2^64-2).
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        Ok(Waker {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live local to a descriptor we own.
        let r = unsafe { libc::write(self.fd.as_raw_fd(), (&raw const one).cast(), 8) };
        if r != 8 {
            tracing::debug!("eventfd write failed: {}", io::Error::last_os_error());
        }
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

/// Ids of a worker's open connections (inserted at accept, removed just before
/// `on_close`), so senders can tell a closed connection apart. Touched only at accept,
/// close and `send_record`/`drain`, never on the request path.
pub(crate) type LiveSet = Arc<Mutex<HashSet<ConnId>>>;

/// The sending side of one worker's mailbox.
#[derive(Debug, Clone)]
pub(crate) struct Mailbox {
    tx: Sender<Msg>,
    waker: Arc<Waker>,
    live: LiveSet,
}

/// The worker's side of its mailbox.
pub(crate) struct Inbox {
    pub rx: Receiver<Msg>,
    pub waker: Arc<Waker>,
    pub live: LiveSet,
}

impl Mailbox {
    pub fn new() -> io::Result<(Mailbox, Inbox)> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let waker = Arc::new(Waker::new()?);
        let live = LiveSet::default();
        Ok((
            Mailbox {
                tx,
                waker: waker.clone(),
                live: live.clone(),
            },
            Inbox { rx, waker, live },
        ))
    }

    /// Deliver a message about connection `conn`; false if it is closed or the
    /// worker is gone.
    pub fn post_conn(&self, conn: ConnId, msg: Msg) -> bool {
        if !self.live.lock().contains(&conn) {
            return false;
        }
        self.post(msg)
    }

    /// Deliver `msg`; false if the worker is gone.
    pub fn post(&self, msg: Msg) -> bool {
        if self.tx.send(msg).is_err() {
            return false;
        }
        self.waker.wake();
        true
    }
}

/// [`ConnControl`] over all workers' mailboxes: routes by [`conn_core`].
#[derive(Debug)]
pub(crate) struct Control {
    pub mailboxes: Vec<Mailbox>,
}

impl Control {
    fn route(&self, conn: ConnId, msg: Msg) -> bool {
        match self.mailboxes.get(conn_core(conn)) {
            Some(m) => m.post_conn(conn, msg),
            None => false,
        }
    }

    pub fn shutdown_all(&self) {
        for m in &self.mailboxes {
            m.post(Msg::Shutdown);
        }
    }
}

impl ConnControl for Control {
    fn send_record(&self, conn: ConnId, record: Vec<u8>) -> bool {
        self.route(conn, Msg::Send { conn, record })
    }

    fn drain(&self, conn: ConnId) -> bool {
        self.route(conn, Msg::Drain { conn })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringnfs_service::make_conn_id;

    #[test]
    fn routes_by_core_and_reports_gone_workers() {
        let (m0, in0) = Mailbox::new().unwrap();
        let (m1, in1) = Mailbox::new().unwrap();
        let c = Control {
            mailboxes: vec![m0, m1],
        };
        assert!(
            !c.send_record(make_conn_id(1, 5), b"x".to_vec()),
            "not open"
        );
        in1.live.lock().insert(make_conn_id(1, 5));
        in0.live.lock().insert(make_conn_id(0, 1));
        assert!(c.send_record(make_conn_id(1, 5), b"x".to_vec()));
        assert!(
            matches!(in1.rx.try_recv(), Ok(Msg::Send { conn, .. }) if conn == make_conn_id(1, 5))
        );
        assert!(in0.rx.try_recv().is_err());
        let w1 = in1.waker;
        // The eventfd counter was bumped.
        let mut v = 0u64;
        // SAFETY: reads 8 bytes into a live local from a descriptor the waker owns.
        let r = unsafe { libc::read(w1.raw_fd(), (&raw mut v).cast(), 8) };
        assert_eq!((r, v), (8, 1));
        assert!(!c.drain(make_conn_id(7, 1)), "no such core");
        let live0 = in0.live.clone();
        drop(in0);
        assert!(!c.drain(make_conn_id(0, 1)), "worker gone");
        drop(live0);
    }
}
