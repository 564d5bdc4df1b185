//! Multishot receive into the provided-buffer ring: at most one per connection.
//!
//! Lifecycle: `submit` (the connection's receive side becomes `Armed`) → completions,
//! each naming a buffer the kernel filled → a final completion (EOF, error, buffers ran
//! dry, cancelled) ends it; `cancel` asks for that final completion early
//! (backpressure, closing). What a completion means is decided by [`completion`], a
//! pure function; the worker acts on it.

use std::os::fd::{AsRawFd, BorrowedFd};

use io_uring::{cqueue, opcode, types};

use super::driver::{Completion, Driver};
use super::token::{Kind, Token};

/// Buffer group id of the worker's provided-buffer ring.
pub(crate) const BGID: u16 = 0;

fn token(generation: u32, key: usize) -> Token {
    Token::new(Kind::Recv, generation as u64, key)
}

/// Arm a multishot receive on connection `key`'s socket.
pub(crate) fn submit(driver: &mut Driver, fd: BorrowedFd<'_>, generation: u32, key: usize) {
    let e = opcode::RecvMulti::new(types::Fd(fd.as_raw_fd()), BGID)
        .build()
        .user_data(token(generation, key).encode());
    // SAFETY: the entry names no memory of ours: the kernel picks buffers from the
    // registered buffer ring, which stays registered (and mapped) until the worker has
    // reaped every completion. The socket stays open as long: a connection is only
    // freed once its receive side is idle again.
    unsafe { driver.push(e) };
}

pub(crate) fn cancel(driver: &mut Driver, generation: u32, key: usize) {
    driver.cancel(token(generation, key));
}

/// What one receive completion says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Received {
    /// `len` bytes in provided buffer `bid` (to be recycled after use).
    Data {
        bid: u16,
        len: usize,
    },
    /// Data reported without a buffer (a kernel contract violation).
    NoBuffer,
    /// The peer closed its side.
    Eof,
    /// The buffer ring ran dry (`ENOBUFS`); buffers come back as the batch is processed
    /// and the receive is re-armed after that.
    RanDry,
    Cancelled,
    /// Any other error (negative errno).
    Failed(i32),
}

/// Decode a receive completion: (is it the last one of this receive, what it says).
pub(crate) fn completion(c: Completion) -> (bool, Received) {
    let what = match c.res {
        n if n > 0 => match cqueue::buffer_select(c.flags) {
            Some(bid) => Received::Data {
                bid,
                len: n as usize,
            },
            None => Received::NoBuffer,
        },
        0 => Received::Eof,
        e if e == -libc::ENOBUFS => Received::RanDry,
        e if e == -libc::ECANCELED => Received::Cancelled,
        e => Received::Failed(e),
    };
    (c.is_final(), what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_decode() {
        let t = token(3, 9);
        let c = |res, more, bid| completion(Completion::fake(t, res, more, bid));
        assert_eq!(
            c(100, true, Some(5)),
            (false, Received::Data { bid: 5, len: 100 })
        );
        assert_eq!(
            c(100, false, Some(5)),
            (true, Received::Data { bid: 5, len: 100 })
        );
        assert_eq!(c(100, true, None), (false, Received::NoBuffer));
        assert_eq!(c(0, false, None), (true, Received::Eof));
        assert_eq!(c(-libc::ENOBUFS, false, None), (true, Received::RanDry));
        assert_eq!(
            c(-libc::ECANCELED, false, None),
            (true, Received::Cancelled)
        );
        assert_eq!(
            c(-libc::ECONNRESET, false, None),
            (true, Received::Failed(-libc::ECONNRESET))
        );
    }
}
