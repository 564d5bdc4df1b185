//! Per-connection output: replies accumulate in `pending` while at most one send is in
//! flight from `inflight`; when it completes the next buffer goes out, so several small
//! replies go out in one send and steady state allocates nothing.
//!
//! Once `pending` holds `SEAL_AT` bytes it is sealed (queued whole) and the next reply
//! starts a new buffer: pipelined 1 MiB READ replies then never make one buffer grow by
//! doubling (which copied every byte again and faulted in fresh pages each time). Large
//! buffers, once sent, go to a small per-worker pool instead of back to the allocator.

use ringnfs_proto::rpc::record::mark;

/// Largest record a single mark can describe.
const MAX_MARKED: usize = 0x7fff_ffff;
/// Buffers that grew beyond this (a large reply) are not kept by their connection:
/// they go to the worker's pool (or are released).
const KEEP_CAPACITY: usize = 256 * 1024;
/// `pending` is sealed once it holds this many bytes.
const SEAL_AT: usize = 64 * 1024;
/// The worker's pool keeps at most this many large buffers, each at most `POOL_MAX_CAP`.
const POOL_BUFFERS: usize = 8;
const POOL_MAX_CAP: usize = 4 << 20;

thread_local! {
    /// Large output buffers of this worker's connections, ready for reuse. Per thread
    /// because each worker owns its connections; no lock, no sharing.
    static POOL: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Give a sent buffer back: small ones stay with the connection (returned), large ones
/// go to the pool (or the allocator, if the pool is full or the buffer huge).
fn recycle(mut buf: Vec<u8>) -> Vec<u8> {
    buf.clear();
    if buf.capacity() <= KEEP_CAPACITY {
        return buf;
    }
    if buf.capacity() <= POOL_MAX_CAP {
        POOL.with_borrow_mut(|p| {
            if p.len() < POOL_BUFFERS {
                p.push(buf);
            }
        });
    }
    Vec::new()
}

/// A buffer for a new `pending`: a pooled large one if there is one.
fn fresh() -> Vec<u8> {
    POOL.with_borrow_mut(|p| p.pop()).unwrap_or_default()
}
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
    /// Full buffers waiting to be sent, oldest first (all before `pending`).
    sealed: std::collections::VecDeque<Vec<u8>>,
    /// Bytes in `sealed`.
    sealed_bytes: usize,
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
            self.seal_if_full();
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
            self.seal_if_full();
        }
        Ok(())
    }

    /// Append bytes that are already framed (TLS records) with `write`, which appends
    /// to the buffer it is given and returns how many bytes it appended.
    pub fn append_raw(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<usize>,
    ) -> std::io::Result<usize> {
        let n = write(&mut self.pending)?;
        self.seal_if_full();
        Ok(n)
    }

    /// Queue what is pending as it is, so the next reply starts a buffer of its own
    /// (one the service may swap in whole: `Continuation::resume`).
    pub fn seal(&mut self) {
        if !self.pending.is_empty() {
            let full = std::mem::take(&mut self.pending);
            self.sealed_bytes += full.len();
            self.sealed.push_back(full);
        }
    }

    fn seal_if_full(&mut self) {
        if self.pending.len() >= SEAL_AT {
            let full = std::mem::replace(&mut self.pending, fresh());
            self.sealed_bytes += full.len();
            self.sealed.push_back(full);
        }
    }

    /// Bytes queued and not yet sent.
    pub fn backlog(&self) -> usize {
        self.pending.len() + self.sealed_bytes + (self.inflight.len() - self.sent)
    }

    pub fn busy(&self) -> bool {
        self.busy
    }

    /// Bytes wait to be moved in flight.
    pub fn has_queued(&self) -> bool {
        !self.pending.is_empty() || !self.sealed.is_empty()
    }

    /// Nothing pending and nothing in flight.
    #[cfg(test)]
    pub fn is_idle(&self) -> bool {
        !self.busy && self.pending.is_empty() && self.sealed.is_empty()
    }

    /// If no send is in flight and bytes are waiting, move the oldest buffer in flight
    /// and return the bytes to send. The slice's memory stays put until
    /// [`sent`](OutQueue::sent) reports completion (nothing touches `inflight` while busy).
    pub fn start(&mut self) -> Option<&[u8]> {
        if self.busy {
            return None;
        }
        // `inflight` is empty here (`sent` cleared or recycled it).
        let next = if let Some(b) = self.sealed.pop_front() {
            self.sealed_bytes -= b.len();
            b
        } else if !self.pending.is_empty() {
            // Swap: the empty in-flight buffer becomes the new `pending`.
            let spare = std::mem::take(&mut self.inflight);
            std::mem::replace(&mut self.pending, spare)
        } else {
            return None;
        };
        let old = std::mem::replace(&mut self.inflight, next);
        if self.pending.capacity() == 0 {
            self.pending = old;
        }
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
        self.inflight = recycle(std::mem::take(&mut self.inflight));
        false
    }

    /// The connection is going away: forget what is pending. A buffer in flight is
    /// kept (the kernel may be reading it) until [`send_failed`](OutQueue::send_failed)
    /// or [`sent`](OutQueue::sent) reports its send finished.
    pub fn abort(&mut self) {
        self.pending = Vec::new();
        self.sealed.clear();
        self.sealed_bytes = 0;
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
        let mut want = ringnfs_proto::rpc::record::frame(b"abc");
        want.extend(ringnfs_proto::rpc::record::frame(b"de"));
        want.extend(ringnfs_proto::rpc::record::frame(b"xyz"));
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
    fn large_replies_get_their_own_buffers_in_order_and_buffers_are_pooled() {
        let mut q = OutQueue::default();
        let big = |b: u8| vec![b; KEEP_CAPACITY + 1];
        reply(&mut q, b"s1").unwrap();
        reply(&mut q, &big(1)).unwrap();
        reply(&mut q, &big(2)).unwrap();
        reply(&mut q, b"s2").unwrap();
        assert_eq!(q.sealed.len(), 2, "each large reply sealed its buffer");
        assert_eq!(q.backlog(), 4 * 4 + 2 + 2 + 2 * (KEEP_CAPACITY + 1));
        let mut out = Vec::new();
        while let Some(b) = q.start() {
            let n = b.len();
            out.extend_from_slice(b);
            assert!(!q.sent(n));
        }
        let mut want = ringnfs_proto::rpc::record::frame(b"s1");
        want.extend(ringnfs_proto::rpc::record::frame(&big(1)));
        want.extend(ringnfs_proto::rpc::record::frame(&big(2)));
        want.extend(ringnfs_proto::rpc::record::frame(b"s2"));
        assert_eq!(out, want);
        assert!(q.is_idle());
        // The sent large buffers wait in the worker's pool; a new large reply reuses one.
        let pooled = POOL.with_borrow(|p| p.len());
        assert!(pooled >= 1);
        reply(&mut q, &big(3)).unwrap();
        assert_eq!(POOL.with_borrow(|p| p.len()), pooled - 1);
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
