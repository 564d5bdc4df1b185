//! The state's mutexes, ranked in the lock order of the crate documentation, and the
//! self-checks of the tables they guard.
//!
//! A [`RankedMutex`] is a `parking_lot` mutex with a rank. In debug builds
//! - locking it asserts that its rank is above the rank of every ranked lock the thread
//!   already holds (so two locks of one rank are never held together, and a lock is
//!   never taken under one that comes later in the order), before it blocks;
//! - a guard through which the table was borrowed mutably runs the table's
//!   [`CheckInvariants::check_invariants`] when it is dropped, with the lock still held,
//!   and panics on a broken invariant: every mutation is checked where it is made.
//!
//! In release builds all of this compiles away: a [`RankedGuard`] is the `parking_lot`
//! guard and nothing else, and no check runs on the request path. Property tests and
//! whole-state checks call `check_invariants` explicitly, in every build.

use std::ops::{Deref, DerefMut};

use parking_lot::{Mutex, MutexGuard};

/// Lock ranks, in the order locks must be taken. Two locks of the same rank are never
/// held together.
pub mod rank {
    /// The client table (`StateManager::clients`).
    pub const CLIENT_TABLE: u8 = 10;
    /// One session shard. A file-state shard has the same rank: the two are never held
    /// together, and never two of either.
    pub const SESSION_SHARD: u8 = 20;
    /// One file-state shard (`files/`).
    pub const FILE_STATE_SHARD: u8 = 20;
    /// The delegations' per-client ledger (`files/ledger.rs`): a leaf, taken alone or
    /// under a file-state shard.
    pub const DELEG_LEDGER: u8 = 25;
    /// One connection-registry shard (`conns.rs`).
    pub const CONN_SHARD: u8 = 30;
    /// The grace period's owner list, written with the client table held.
    pub const GRACE_OWNERS: u8 = 40;
    /// The engine's table of asynchronous copies (`engine/src/offload.rs`): a leaf.
    pub const OFFLOAD_TABLE: u8 = 50;
}

/// A table that can verify its own consistency.
pub trait CheckInvariants {
    /// Every invariant of the table that its own lock guarantees, or a description of
    /// the first one broken.
    fn check_invariants(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A mutex with a place in the lock order (see [`rank`]).
pub struct RankedMutex<T, const RANK: u8> {
    inner: Mutex<T>,
}

impl<T: CheckInvariants, const RANK: u8> RankedMutex<T, RANK> {
    pub fn new(value: T) -> Self {
        Self {
            inner: Mutex::new(value),
        }
    }

    /// Lock; in debug builds, first assert the lock order.
    #[inline]
    pub fn lock(&self) -> RankedGuard<'_, T, RANK> {
        #[cfg(debug_assertions)]
        held::acquire(RANK, std::any::type_name::<T>());
        RankedGuard {
            guard: self.inner.lock(),
            #[cfg(debug_assertions)]
            dirty: false,
        }
    }
}

/// The guard of a [`RankedMutex`]; see the module documentation for what it checks.
pub struct RankedGuard<'a, T: CheckInvariants, const RANK: u8> {
    guard: MutexGuard<'a, T>,
    /// Borrowed mutably: check the invariants on drop.
    #[cfg(debug_assertions)]
    dirty: bool,
}

impl<T: CheckInvariants, const RANK: u8> Deref for RankedGuard<'_, T, RANK> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T: CheckInvariants, const RANK: u8> DerefMut for RankedGuard<'_, T, RANK> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        #[cfg(debug_assertions)]
        {
            self.dirty = true;
        }
        &mut self.guard
    }
}

#[cfg(debug_assertions)]
impl<T: CheckInvariants, const RANK: u8> Drop for RankedGuard<'_, T, RANK> {
    fn drop(&mut self) {
        // Runs before the fields drop: the lock is still held during the check.
        let check = if self.dirty && !std::thread::panicking() {
            self.guard.check_invariants()
        } else {
            Ok(())
        };
        held::release(RANK, std::any::type_name::<T>());
        if let Err(e) = check {
            panic!("{} broke an invariant: {e}", std::any::type_name::<T>());
        }
    }
}

/// The ranked locks this thread holds (debug builds only).
#[cfg(debug_assertions)]
mod held {
    use std::cell::RefCell;

    thread_local! {
        static HELD: RefCell<Vec<(u8, &'static str)>> = const { RefCell::new(Vec::new()) };
    }

    pub fn acquire(rank: u8, name: &'static str) {
        HELD.with(|h| {
            let mut h = h.borrow_mut();
            if let Some(&(r, n)) = h.iter().find(|&&(r, _)| r >= rank) {
                let held: Vec<&str> = h.iter().map(|&(_, n)| n).collect();
                // Release the borrow first: the guards that unwind release their own
                // entries.
                drop(h);
                panic!(
                    "lock order: taking {name} (rank {rank}) while holding {n} (rank {r}); \
                     held: {held:?}"
                );
            }
            h.push((rank, name));
        });
    }

    pub fn release(rank: u8, name: &'static str) {
        HELD.with(|h| {
            let mut h = h.borrow_mut();
            if let Some(i) = h.iter().rposition(|&e| e == (rank, name)) {
                h.remove(i);
            }
        });
    }

    /// How many ranked locks this thread holds (for tests).
    #[cfg(test)]
    pub fn count() -> usize {
        HELD.with(|h| h.borrow().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Table {
        a: u32,
        b: u32,
    }

    impl CheckInvariants for Table {
        fn check_invariants(&self) -> Result<(), String> {
            if self.a == self.b {
                Ok(())
            } else {
                Err(format!("a {} != b {}", self.a, self.b))
            }
        }
    }

    #[test]
    fn order_kept_is_fine() {
        let clients = RankedMutex::<Table, { rank::CLIENT_TABLE }>::new(Table::default());
        let session = RankedMutex::<Table, { rank::SESSION_SHARD }>::new(Table::default());
        let conns = RankedMutex::<Table, { rank::CONN_SHARD }>::new(Table::default());
        let files = RankedMutex::<Table, { rank::FILE_STATE_SHARD }>::new(Table::default());
        {
            let _c = clients.lock();
            let s = session.lock();
            let r = conns.lock();
            // Released out of order, then the same rank again.
            drop(s);
            drop(r);
            let _f = files.lock();
            let _r = conns.lock();
        }
        let _r = conns.lock();
        #[cfg(debug_assertions)]
        assert_eq!(held::count(), 1);
    }

    #[test]
    fn a_consistent_mutation_passes() {
        let t = RankedMutex::<Table, { rank::CLIENT_TABLE }>::new(Table::default());
        let mut g = t.lock();
        g.a += 1;
        g.b += 1;
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "lock order")]
    fn earlier_rank_under_a_later_one_panics() {
        let clients = RankedMutex::<Table, { rank::CLIENT_TABLE }>::new(Table::default());
        let session = RankedMutex::<Table, { rank::SESSION_SHARD }>::new(Table::default());
        let _s = session.lock();
        let _c = clients.lock();
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "lock order")]
    fn a_file_state_shard_under_a_session_shard_panics() {
        let session = RankedMutex::<Table, { rank::SESSION_SHARD }>::new(Table::default());
        let files = RankedMutex::<Table, { rank::FILE_STATE_SHARD }>::new(Table::default());
        let _s = session.lock();
        let _f = files.lock();
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "lock order")]
    fn two_shards_of_one_rank_panic() {
        let one = RankedMutex::<Table, { rank::SESSION_SHARD }>::new(Table::default());
        let two = RankedMutex::<Table, { rank::SESSION_SHARD }>::new(Table::default());
        let _a = one.lock();
        let _b = two.lock();
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "broke an invariant: a 1 != b 0")]
    fn a_broken_invariant_panics_when_the_guard_drops() {
        let t = RankedMutex::<Table, { rank::CLIENT_TABLE }>::new(Table::default());
        t.lock().a += 1;
    }

    #[test]
    fn reading_does_not_check() {
        // A table broken behind the guard's back is only noticed by a mutation.
        let t = RankedMutex::<Table, { rank::CLIENT_TABLE }>::new(Table { a: 1, b: 0 });
        assert_eq!(t.lock().a, 1);
        assert!(t.lock().check_invariants().is_err());
    }
}
