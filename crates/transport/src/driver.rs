//! The driver: owns one worker's io_uring and counts what is in flight on it.
//!
//! Every submitted operation produces exactly one final completion (multishot ones end
//! with a completion without `F_MORE`); [`Driver::outstanding`] counts submitted
//! operations whose final completion has not been reaped. The ring operation types
//! (`accept`, `recv`, `send`, `fileio`, `timer`, `wake`) build their entries and push
//! them here; [`Driver::push`] is `unsafe` and states the one rule they all keep: memory
//! an entry names lives, untouched, until that entry's final completion.

use std::collections::VecDeque;
use std::io;

use io_uring::{IoUring, Submitter, cqueue, opcode, squeue};

use super::ring::{self, RingMode};
use super::token::{Kind, Token};

/// One completion, copied out of the completion queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Completion {
    pub user_data: u64,
    pub res: i32,
    pub flags: u32,
}

impl Completion {
    /// The operation ends with this completion (no `F_MORE`).
    pub fn is_final(&self) -> bool {
        !cqueue::more(self.flags)
    }

    /// A completion as the kernel would post it (`IORING_CQE_F_MORE` = 2,
    /// `IORING_CQE_F_BUFFER` = 1 with the buffer id in the top 16 bits).
    #[cfg(test)]
    pub fn fake(token: Token, res: i32, more: bool, bid: Option<u16>) -> Completion {
        let mut flags = if more { 2 } else { 0 };
        if let Some(bid) = bid {
            flags |= 1 | (u32::from(bid) << 16);
        }
        Completion {
            user_data: token.encode(),
            res,
            flags,
        }
    }
}

pub(crate) struct Driver {
    ring: IoUring,
    /// Entries that did not fit in the submission queue, in order.
    overflow: VecDeque<squeue::Entry>,
    outstanding: usize,
}

impl Driver {
    /// A ring with `entries` submission entries (see `ring::build_with`).
    pub fn new(entries: u32, sqpoll_idle_ms: Option<u32>) -> io::Result<(Driver, RingMode)> {
        let (ring, mode) = ring::build_with(entries, sqpoll_idle_ms)?;
        let d = Driver {
            ring,
            overflow: VecDeque::new(),
            outstanding: 0,
        };
        Ok((d, mode))
    }

    /// Queue a submission; it counts as outstanding until its final completion is
    /// reaped. An entry that does not fit waits, in order, for the next
    /// [`submit_and_wait`](Driver::submit_and_wait).
    ///
    /// # Safety
    ///
    /// Every pointer in `e` (a buffer, a timespec, a read target) must stay valid, and
    /// the memory it names must not be moved, freed or (for memory the kernel writes)
    /// read until the entry's final completion has been reaped, or, if the worker gives
    /// up, must be leaked.
    pub unsafe fn push(&mut self, e: squeue::Entry) {
        self.outstanding += 1;
        if self.overflow.is_empty() {
            // SAFETY: the caller keeps the memory `e` names alive (this function's
            // contract).
            if unsafe { self.ring.submission().push(&e) }.is_ok() {
                return;
            }
            if let Err(err) = self.ring.submit() {
                tracing::debug!("submit on full queue: {err}");
            }
            // SAFETY: as above.
            if unsafe { self.ring.submission().push(&e) }.is_ok() {
                return;
            }
        }
        self.overflow.push_back(e);
    }

    /// Ask the kernel to cancel the operation submitted with `target`'s token. The
    /// target still ends with its own final completion (often `-ECANCELED`).
    pub fn cancel(&mut self, target: Token) {
        let e = opcode::AsyncCancel::new(target.encode())
            .build()
            .user_data(Token::new(Kind::Cancel, 0, 0).encode());
        // SAFETY: a cancel request names no memory, only another entry's user_data.
        unsafe { self.push(e) };
    }

    fn flush_overflow(&mut self) {
        while let Some(e) = self.overflow.front() {
            // SAFETY: every entry in `overflow` was pushed under `push`'s contract.
            if unsafe { self.ring.submission().push(e) }.is_err() {
                break;
            }
            self.overflow.pop_front();
        }
    }

    /// Submit what is queued without waiting.
    pub fn submit(&mut self) -> io::Result<()> {
        self.flush_overflow();
        self.ring.submit().map(|_| ())
    }

    /// Submit what is queued and wait for at least one completion. Interrupted or busy
    /// waits are not errors (the caller reaps whatever arrived and comes back).
    pub fn submit_and_wait(&mut self) -> io::Result<()> {
        self.flush_overflow();
        match self.ring.submit_and_wait(1) {
            Ok(_) => Ok(()),
            Err(e) => match e.raw_os_error() {
                Some(libc::EINTR) | Some(libc::EBUSY) | Some(libc::EAGAIN) => Ok(()),
                _ => Err(e),
            },
        }
    }

    /// Move every completion that arrived into `into`, counting final ones off.
    pub fn reap(&mut self, into: &mut Vec<Completion>) {
        let before = into.len();
        into.extend(self.ring.completion().map(|c| Completion {
            user_data: c.user_data(),
            res: c.result(),
            flags: c.flags(),
        }));
        let finals = into[before..].iter().filter(|c| c.is_final()).count();
        self.outstanding = self.outstanding.saturating_sub(finals);
    }

    /// Submitted operations whose final completion has not been reaped.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// For registering resources (the provided-buffer ring).
    pub fn submitter(&self) -> Submitter<'_> {
        self.ring.submitter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use io_uring::types;

    #[test]
    fn counts_operations_until_their_final_completion_past_a_full_queue() {
        let (mut d, _) = Driver::new(4, None).unwrap();
        let nop = |i| opcode::Nop::new().build().user_data(i);
        for i in 0..10 {
            // SAFETY: a NOP names no memory.
            unsafe { d.push(nop(i)) };
        }
        // A full queue is submitted to make room (what still does not fit waits).
        assert_eq!(d.outstanding(), 10);
        let mut got = Vec::new();
        while got.len() < 10 {
            d.submit_and_wait().unwrap();
            d.reap(&mut got);
        }
        let mut ids: Vec<u64> = got.iter().map(|c| c.user_data).collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..10).collect::<Vec<_>>());
        assert_eq!(d.outstanding(), 0);
    }

    #[test]
    fn a_cancelled_timeout_ends_once_and_the_cancel_counts_too() {
        let (mut d, _) = Driver::new(8, None).unwrap();
        let ts = Box::new(types::Timespec::new().sec(60));
        let target = Token::new(Kind::Timer, 0, 0);
        let e = opcode::Timeout::new(&*ts)
            .build()
            .user_data(target.encode());
        // SAFETY: `ts` lives until the end of the test, after the final completion.
        unsafe { d.push(e) };
        d.cancel(target);
        assert_eq!(d.outstanding(), 2);
        let mut got = Vec::new();
        while d.outstanding() > 0 {
            d.submit_and_wait().unwrap();
            d.reap(&mut got);
        }
        let timer = got.iter().find(|c| c.user_data == target.encode()).unwrap();
        assert_eq!(timer.res, -libc::ECANCELED);
        assert_eq!(got.len(), 2);
    }
}
