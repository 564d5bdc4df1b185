//! An export's counters: operations and bytes read and written. Each thread adds to
//! its own cache line with relaxed atomics (threads are given lines in turn; past
//! [`SLOTS`] they share lines, still exact); a scrape adds them up.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Cache lines per export.
const SLOTS: usize = 16;

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's line in every export's counters.
    static SLOT: usize = NEXT_SLOT.fetch_add(1, Ordering::Relaxed) % SLOTS;
}

#[repr(align(128))]
#[derive(Default)]
struct Slot {
    ops: AtomicU64,
    read: AtomicU64,
    written: AtomicU64,
}

#[derive(Default)]
pub struct ExportStats {
    slots: [Slot; SLOTS],
}

/// The sums, for a scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportTotals {
    pub ops: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

impl ExportStats {
    fn slot(&self) -> &Slot {
        &self.slots[SLOT.with(|s| *s)]
    }

    #[inline]
    pub fn op(&self) {
        self.ops(1);
    }

    #[inline]
    pub fn ops(&self, n: u64) {
        self.slot().ops.fetch_add(n, Ordering::Relaxed);
    }

    #[inline]
    pub fn read(&self, bytes: u64) {
        self.slot().read.fetch_add(bytes, Ordering::Relaxed);
    }

    #[inline]
    pub fn written(&self, bytes: u64) {
        self.slot().written.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn totals(&self) -> ExportTotals {
        let mut t = ExportTotals::default();
        for s in &self.slots {
            t.ops += s.ops.load(Ordering::Relaxed);
            t.bytes_read += s.read.load(Ordering::Relaxed);
            t.bytes_written += s.written.load(Ordering::Relaxed);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_add_up() {
        let s = std::sync::Arc::new(ExportStats::default());
        let threads: Vec<_> = (0..40)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    s.op();
                    s.read(10);
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        s.written(7);
        assert_eq!(
            s.totals(),
            ExportTotals {
                ops: 40,
                bytes_read: 400,
                bytes_written: 7
            }
        );
    }
}
