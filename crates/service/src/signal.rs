//! Work a request waits for that is done off the ring, by another thread (a cluster
//! node writing a client's recovery record to etcd before the client's first OPEN is
//! acknowledged). The request suspends on [`FileOp::Wait`](crate::FileOp::Wait) with
//! the signal's eventfd as its descriptor, so its core reads the eventfd through its
//! ring like any file operation and no worker thread ever blocks; the thread doing the
//! work writes the outcome once.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use crate::{FileIo, FileIoDone, FileOp, IoFd};

/// The counter values the waiter reads (eventfd adds writes up, and each signal is
/// written once, so the value read is the one written).
const SUCCEEDED: u64 = 1;
const FAILED: u64 = 2;
const REFUSED: u64 = 3;

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    Succeeded,
    /// The work could not be done (try again).
    Failed,
    /// The work was done and the answer is no (a cluster claim another node refused).
    Refused,
}

/// The writing end of a wait: signal the outcome once. Dropped without a word, it
/// signals failure, so a waiter never waits for work nobody will finish.
pub struct Signal {
    fd: Option<Arc<OwnedFd>>,
}

impl Signal {
    /// A new signal and the [`FileIo`] that waits for it.
    pub fn new() -> std::io::Result<(Signal, FileIo)> {
        let fd = Arc::new(rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC,
        )?);
        let wait = FileIo {
            fd: fd.clone() as IoFd,
            op: FileOp::Wait,
        };
        Ok((Signal { fd: Some(fd) }, wait))
    }

    /// The work is done.
    pub fn succeed(mut self) {
        self.write(SUCCEEDED);
    }

    /// The work could not be done.
    pub fn fail(mut self) {
        self.write(FAILED);
    }

    /// The work was done and the answer is no.
    pub fn refuse(mut self) {
        self.write(REFUSED);
    }

    fn write(&mut self, value: u64) {
        if let Some(fd) = self.fd.take() {
            // An eventfd write of 8 bytes cannot be short; it fails only on a counter
            // overflow, which one write per signal cannot reach.
            if let Err(e) = rustix::io::write(fd.as_fd(), &value.to_ne_bytes()) {
                tracing::error!(error = %e, "signalling a waiting request failed");
            }
        }
    }

    /// Whether a finished wait read a success.
    pub fn succeeded(done: &FileIoDone) -> bool {
        Self::outcome(done) == Waited::Succeeded
    }

    /// What a finished wait read (a short or failed read is a failure).
    pub fn outcome(done: &FileIoDone) -> Waited {
        let value = (done.result == 8)
            .then(|| done.buf.get(..8))
            .flatten()
            .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")));
        match value {
            Some(SUCCEEDED) => Waited::Succeeded,
            Some(REFUSED) => Waited::Refused,
            _ => Waited::Failed,
        }
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        self.write(FAILED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(wait: &FileIo) -> FileIoDone {
        let mut buf = [0u8; 8];
        let n = rustix::io::read(wait.fd.as_fd(), &mut buf).expect("read");
        FileIoDone {
            result: n as i32,
            buf: buf[..n].to_vec(),
        }
    }

    #[test]
    fn the_waiter_reads_what_was_signalled() {
        let (s, wait) = Signal::new().unwrap();
        s.succeed();
        assert!(Signal::succeeded(&read(&wait)));
        let (s, wait) = Signal::new().unwrap();
        s.fail();
        assert!(!Signal::succeeded(&read(&wait)));
        let (s, wait) = Signal::new().unwrap();
        s.refuse();
        assert_eq!(Signal::outcome(&read(&wait)), Waited::Refused);
    }

    #[test]
    fn a_dropped_signal_is_a_failure_not_a_hang() {
        let (s, wait) = Signal::new().unwrap();
        drop(s);
        assert!(!Signal::succeeded(&read(&wait)));
    }

    #[test]
    fn a_short_or_failed_read_is_no_success() {
        let done = FileIoDone {
            result: -libc::EIO,
            buf: SUCCEEDED.to_ne_bytes().to_vec(),
        };
        assert!(!Signal::succeeded(&done));
    }
}
