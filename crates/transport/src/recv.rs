//! Receives: a multishot receive into the provided-buffer ring, or (inside a large
//! record) a single receive into that record's own buffer. At most one of either per
//! connection.
//!
//! Lifecycle of the multishot one: `submit` (the connection's receive side becomes
//! `Armed`) → completions, each naming a buffer the kernel filled → a final completion
//! (EOF, error, buffers ran dry, cancelled) ends it; `cancel` asks for that final
//! completion early (backpressure, closing, a large record). A direct one, `submit_direct`,
//! has exactly one completion: bytes written into the buffer's spare capacity, EOF, an
//! error or cancelled. What a completion means is decided by [`completion`] and
//! [`direct_completion`], pure functions; the worker acts on them.

use std::os::fd::{AsRawFd, BorrowedFd};

use io_uring::{cqueue, opcode, squeue, types};

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

/// Receive up to `want` bytes on connection `key`'s socket into the spare capacity of
/// `buf` (the current record's buffer, lent by the assembler).
///
/// # Safety
/// `buf` must neither be dropped, reallocated nor read past its length until this
/// receive's completion (the connection keeps it in `Conn::direct` until then, and is
/// only freed with its receive side idle); `want` is at most its spare capacity.
pub(crate) unsafe fn submit_direct(
    driver: &mut Driver,
    fd: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    want: usize,
    generation: u32,
    key: usize,
) {
    let spare = buf.spare_capacity_mut();
    let len = want.min(spare.len()).min(u32::MAX as usize) as u32;
    // MSG_WAITALL: one completion for the whole rest of the fragment, not one per
    // segment batch. It is cancelled only when the connection closes (`decide`), when
    // what it holds no longer matters.
    let e = opcode::Recv::new(types::Fd(fd.as_raw_fd()), spare.as_mut_ptr().cast(), len)
        .flags(libc::MSG_WAITALL)
        .build()
        .user_data(token(generation, key).encode());
    // SAFETY: the kernel writes at most `len` bytes into `buf`'s spare capacity, which
    // the caller keeps in place until the completion (this function's contract).
    unsafe { driver.push(e) };
}

/// What a direct receive's (only) completion says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirectReceived {
    /// `n` bytes were written after the buffer's length.
    Data(usize),
    Eof,
    Cancelled,
    Failed(i32),
}

pub(crate) fn direct_completion(res: i32) -> DirectReceived {
    match res {
        n if n > 0 => DirectReceived::Data(n as usize),
        0 => DirectReceived::Eof,
        e if e == -libc::ECANCELED => DirectReceived::Cancelled,
        e => DirectReceived::Failed(e),
    }
}

/// A single receive into one provided buffer (the connection is in single-receive mode,
/// see `Conn::single`): it completes like a multishot receive's final completion.
pub(crate) fn submit_single(driver: &mut Driver, fd: BorrowedFd<'_>, generation: u32, key: usize) {
    let e = opcode::Recv::new(types::Fd(fd.as_raw_fd()), std::ptr::null_mut(), 0)
        .buf_group(BGID)
        .build()
        .flags(squeue::Flags::BUFFER_SELECT)
        .user_data(token(generation, key).encode());
    // SAFETY: as for `submit`: the kernel picks the buffer from the registered ring.
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
    fn direct_completions_decode() {
        assert_eq!(direct_completion(4096), DirectReceived::Data(4096));
        assert_eq!(direct_completion(0), DirectReceived::Eof);
        assert_eq!(
            direct_completion(-libc::ECANCELED),
            DirectReceived::Cancelled
        );
        assert_eq!(
            direct_completion(-libc::ECONNRESET),
            DirectReceived::Failed(-libc::ECONNRESET)
        );
    }

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
