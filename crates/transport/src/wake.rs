//! The mailbox wake-up: an 8-byte read of the worker's eventfd, in flight whenever the
//! worker runs, so a message posted from another thread ends the ring wait.
//!
//! Lifecycle: `submit` → one completion (the counter was bumped) → `submit` again;
//! `cancel` at exit.

use std::sync::Arc;

use io_uring::{opcode, types};

use super::driver::Driver;
use super::mailbox::Waker;
use super::token::{Kind, Token};

pub(crate) struct WakeRead {
    waker: Arc<Waker>,
    /// Target of the read; boxed so its address stays put while the read is in flight.
    buf: Box<u64>,
}

const TOKEN: Token = Token::new(Kind::Wake, 0, 0);

impl WakeRead {
    pub fn new(waker: Arc<Waker>) -> WakeRead {
        WakeRead {
            waker,
            buf: Box::new(0),
        }
    }

    pub fn submit(&mut self, driver: &mut Driver) {
        let buf: *mut u64 = &mut *self.buf;
        let e = opcode::Read::new(types::Fd(self.waker.raw_fd()), buf.cast(), 8)
            .build()
            .user_data(TOKEN.encode());
        // SAFETY: `buf` is boxed and owned by this value, which the worker keeps until
        // the read's completion is reaped (or leaks, see `WakeRead::leak`); nothing reads
        // it. The eventfd stays open as long (`waker`).
        unsafe { driver.push(e) };
    }

    /// The read finished (the value read is not needed: the mailbox is drained anyway).
    pub fn complete(&self, res: i32) {
        if res < 0 && res != -libc::ECANCELED {
            tracing::debug!("eventfd read failed: {res}");
        }
    }

    pub fn cancel(&self, driver: &mut Driver) {
        driver.cancel(TOKEN);
    }

    /// The worker gives up with the read maybe in flight: never free its target.
    pub fn leak(&mut self) {
        std::mem::forget(std::mem::replace(&mut self.buf, Box::new(0)));
    }
}
