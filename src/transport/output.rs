//! Per-connection output: replies accumulate in `pending` while at most one send is in
//! flight from `inflight`; when it completes the two buffers are swapped, so several
//! replies go out in one send and steady state allocates nothing.

use crate::rpc::record::mark;

/// Largest record a single mark can describe.
const MAX_MARKED: usize = 0x7fff_ffff;
/// Buffers that grew beyond this (a large reply) are released after use.
const KEEP_CAPACITY: usize = 256 * 1024;
/// Largest single send request.
const MAX_SEND: usize = 1 << 30;

/// Why a reply produced by the service was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("reply of {0} bytes is too large for one record")]
    TooLarge(usize),
    #[error("the service removed bytes it did not append")]
    Truncated,
}

#[derive(Debug, Default)]
pub struct OutQueue {
    pending: Vec<u8>,
    inflight: Vec<u8>,
    /// Bytes of `inflight` already sent.
    sent: usize,
    busy: bool,
}

impl OutQueue {
    /// Start a reply: reserve its record mark. Returns the buffer the service appends
    /// to and the offset to pass to [`end_reply`](OutQueue::end_reply).
    pub fn begin_reply(&mut self) -> (&mut Vec<u8>, usize) {
        let start = self.pending.len();
        self.pending.extend_from_slice(&[0; 4]);
        (&mut self.pending, start)
    }

    /// Finish the reply begun at `start`: patch its mark, or drop the 4 reserved bytes
    /// if the service appended nothing. Returns the reply length.
    pub fn end_reply(&mut self, start: usize) -> Result<usize, ReplyError> {
        let Some(len) = self.pending.len().checked_sub(start + 4) else {
            self.pending.truncate(start);
            return Err(ReplyError::Truncated);
        };
        if len == 0 {
            self.pending.truncate(start);
        } else if len > MAX_MARKED {
            self.pending.truncate(start);
            return Err(ReplyError::TooLarge(len));
        } else {
            self.pending[start..start + 4].copy_from_slice(&mark(len));
        }
        Ok(len)
    }

    /// Queue a whole record (no mark) given by another thread.
    pub fn push_record(&mut self, record: &[u8]) -> Result<(), ReplyError> {
        if record.len() > MAX_MARKED {
            return Err(ReplyError::TooLarge(record.len()));
        }
        if !record.is_empty() {
            self.pending.extend_from_slice(&mark(record.len()));
            self.pending.extend_from_slice(record);
        }
        Ok(())
    }

    /// Bytes queued and not yet sent.
    pub fn backlog(&self) -> usize {
        self.pending.len() + (self.inflight.len() - self.sent)
    }

    pub fn busy(&self) -> bool {
        self.busy
    }

    /// Nothing pending and nothing in flight.
    pub fn is_idle(&self) -> bool {
        !self.busy && self.pending.is_empty()
    }

    /// If no send is in flight and bytes are pending, move them in flight and return
    /// the bytes to send. The slice's memory stays put until [`sent`](OutQueue::sent)
    /// reports completion (nothing touches `inflight` while busy).
    pub fn start(&mut self) -> Option<&[u8]> {
        if self.busy || self.pending.is_empty() {
            return None;
        }
        std::mem::swap(&mut self.pending, &mut self.inflight);
        self.pending.clear();
        self.sent = 0;
        self.busy = true;
        Some(self.remaining())
    }

    /// The in-flight bytes not yet sent (at most `MAX_SEND`).
    pub fn remaining(&self) -> &[u8] {
        let r = &self.inflight[self.sent..];
        &r[..r.len().min(MAX_SEND)]
    }

    /// A send of the in-flight buffer completed with `n` bytes. Returns true if part
    /// of the in-flight buffer is left to send (see [`remaining`](OutQueue::remaining)).
    pub fn sent(&mut self, n: usize) -> bool {
        self.sent = (self.sent + n).min(self.inflight.len());
        if self.sent < self.inflight.len() {
            return true;
        }
        self.busy = false;
        self.sent = 0;
        if self.inflight.capacity() > KEEP_CAPACITY {
            self.inflight = Vec::new();
        } else {
            self.inflight.clear();
        }
        false
    }

    /// The connection is going away: forget what is pending. A buffer in flight is
    /// kept (the kernel may be reading it) until [`send_failed`](OutQueue::send_failed)
    /// or [`sent`](OutQueue::sent) reports its send finished.
    pub fn abort(&mut self) {
        self.pending = Vec::new();
        if !self.busy {
            self.inflight = Vec::new();
        }
    }

    /// The in-flight send failed (its operation is over): release the buffer.
    pub fn send_failed(&mut self) {
        self.busy = false;
        self.sent = 0;
        self.inflight = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(q: &mut OutQueue, body: &[u8]) -> Result<usize, ReplyError> {
        let (buf, start) = q.begin_reply();
        buf.extend_from_slice(body);
        q.end_reply(start)
    }

    #[test]
    fn replies_are_marked_and_empty_ones_vanish() {
        let mut q = OutQueue::default();
        assert_eq!(reply(&mut q, b"abc"), Ok(3));
        assert_eq!(reply(&mut q, b""), Ok(0));
        assert_eq!(reply(&mut q, b"de"), Ok(2));
        q.push_record(b"xyz").unwrap();
        let mut want = crate::rpc::record::frame(b"abc");
        want.extend(crate::rpc::record::frame(b"de"));
        want.extend(crate::rpc::record::frame(b"xyz"));
        assert_eq!(q.backlog(), want.len());
        assert_eq!(q.start().unwrap(), &want[..]);
    }

    #[test]
    fn truncating_service_is_caught() {
        let mut q = OutQueue::default();
        reply(&mut q, b"abc").unwrap();
        let (buf, start) = q.begin_reply();
        buf.truncate(2);
        assert_eq!(q.end_reply(start), Err(ReplyError::Truncated));
        assert_eq!(q.backlog(), 2);
    }

    #[test]
    fn one_send_in_flight_then_swap() {
        let mut q = OutQueue::default();
        reply(&mut q, b"1111").unwrap();
        assert_eq!(q.start().map(<[u8]>::len), Some(8));
        assert!(q.busy());
        assert!(q.start().is_none(), "only one send in flight");
        reply(&mut q, b"22").unwrap();
        reply(&mut q, b"33").unwrap();
        assert_eq!(q.backlog(), 8 + 12);
        // Partial send: continue with the remainder.
        assert!(q.sent(3));
        assert_eq!(q.remaining().len(), 5);
        assert_eq!(q.backlog(), 5 + 12);
        assert!(!q.sent(5));
        assert!(!q.busy());
        // Everything accumulated meanwhile goes out in one send.
        assert_eq!(q.start().map(<[u8]>::len), Some(12));
        assert!(!q.sent(12));
        assert!(q.is_idle());
        assert_eq!(q.backlog(), 0);
    }

    #[test]
    fn large_buffers_are_released() {
        let mut q = OutQueue::default();
        reply(&mut q, &vec![7; KEEP_CAPACITY + 1]).unwrap();
        q.start().unwrap();
        assert!(!q.sent(KEEP_CAPACITY + 5));
        assert_eq!(q.inflight.capacity(), 0);
    }

    #[test]
    fn abort_forgets_everything() {
        let mut q = OutQueue::default();
        reply(&mut q, b"abc").unwrap();
        q.start().unwrap();
        reply(&mut q, b"def").unwrap();
        q.abort();
        assert!(q.busy(), "in-flight bytes stay until the send is over");
        assert_eq!(q.backlog(), 7);
        q.send_failed();
        assert!(q.is_idle());
        assert_eq!(q.backlog(), 0);
    }
}
