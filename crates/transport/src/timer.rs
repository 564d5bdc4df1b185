//! The housekeeping timer: one `Timeout` in flight, re-armed by the worker after each
//! expiry until it exits (deadlines, idle connections, accept retries).
//!
//! Lifecycle: `submit` → one completion (`-ETIME` when it fired) → `submit` again;
//! `cancel` at exit.

use std::time::Duration;

use io_uring::{opcode, types};

use super::driver::Driver;
use super::token::{Kind, Token};

pub(crate) struct Timer {
    /// The period the kernel reads; boxed so its address stays put while a timeout is
    /// in flight.
    period: Box<types::Timespec>,
}

const TOKEN: Token = Token::new(Kind::Timer, 0, 0);

impl Timer {
    pub fn new(period: Duration) -> Timer {
        Timer {
            period: Box::new(
                types::Timespec::new()
                    .sec(period.as_secs())
                    .nsec(period.subsec_nanos()),
            ),
        }
    }

    pub fn submit(&self, driver: &mut Driver) {
        let ts: *const types::Timespec = &*self.period;
        let e = opcode::Timeout::new(ts).build().user_data(TOKEN.encode());
        // SAFETY: `period` is boxed and owned by this timer, which the worker keeps until
        // its last completion is reaped (or leaks, see `Timer::leak`).
        unsafe { driver.push(e) };
    }

    pub fn cancel(&self, driver: &mut Driver) {
        driver.cancel(TOKEN);
    }

    /// The worker gives up with a timeout maybe in flight: never free what it reads.
    pub fn leak(&mut self) {
        std::mem::forget(std::mem::replace(
            &mut self.period,
            Box::new(types::Timespec::new()),
        ));
    }
}
