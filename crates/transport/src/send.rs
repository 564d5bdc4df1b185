//! Sending a connection's queued output: at most one send in flight per connection,
//! continued after a partial completion.
//!
//! Lifecycle: `submit` of the in-flight bytes (the connection's send side becomes
//! `Armed`) → one completion: bytes sent (the rest goes in the next send) or an error
//! (the connection aborts); `cancel` when aborting. [`completion`] decodes it.

use std::os::fd::{AsRawFd, BorrowedFd};

use io_uring::{opcode, types};

use super::driver::Driver;
use super::token::{Kind, Token};

fn token(generation: u32, key: usize) -> Token {
    Token::new(Kind::Send, generation as u64, key)
}

/// Send `buf` on connection `key`'s socket.
///
/// # Safety
///
/// `buf` must stay valid and unchanged until this send's completion is reaped.
pub(crate) unsafe fn submit(
    driver: &mut Driver,
    fd: BorrowedFd<'_>,
    buf: &[u8],
    generation: u32,
    key: usize,
) {
    let e = opcode::Send::new(types::Fd(fd.as_raw_fd()), buf.as_ptr(), buf.len() as u32)
        .flags(libc::MSG_NOSIGNAL)
        .build()
        .user_data(token(generation, key).encode());
    // SAFETY: `buf` outlives the operation (this function's contract); the socket stays
    // open as long (a connection is only freed once its send side is idle again).
    unsafe { driver.push(e) };
}

pub(crate) fn cancel(driver: &mut Driver, generation: u32, key: usize) {
    driver.cancel(token(generation, key));
}

/// What a send completion says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// This many bytes left (maybe fewer than asked: the rest goes next).
    Bytes(usize),
    Cancelled,
    /// Nothing was sent: the error (negative errno, or 0).
    Failed(i32),
}

pub(crate) fn completion(res: i32) -> Sent {
    match res {
        n if n > 0 => Sent::Bytes(n as usize),
        e if e == -libc::ECANCELED => Sent::Cancelled,
        e => Sent::Failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_decode() {
        assert_eq!(completion(5), Sent::Bytes(5));
        assert_eq!(completion(-libc::ECANCELED), Sent::Cancelled);
        assert_eq!(completion(-libc::EPIPE), Sent::Failed(-libc::EPIPE));
        assert_eq!(completion(0), Sent::Failed(0));
    }
}
