//! A provided-buffer ring (`IORING_REGISTER_PBUF_RING`): the ring memory shared with
//! the kernel, the buffer memory it points into, and the bookkeeping the `io-uring`
//! crate leaves to us (tail, buffer ids, recycling).
//!
//! Life of a buffer: it starts in the ring (owned by the kernel); a receive completion
//! hands it to us ([`BufRing::take`]); once we are done with the bytes we give it back
//! ([`BufRing::recycle`]), which writes a ring entry at our private tail; the entries
//! become visible to the kernel when [`BufRing::publish`] stores the tail with release
//! ordering (so the kernel, which loads the tail with acquire, sees the entries).

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::Submitter;
use io_uring::types::BufRingEntry;

const ENTRY_SIZE: usize = std::mem::size_of::<BufRingEntry>();
const _: () = assert!(ENTRY_SIZE == 16);

/// The kernel limit on the number of entries of one buffer ring.
pub const MAX_ENTRIES: u16 = 32768;

/// Anonymous private mapping, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> io::Result<Mapping> {
        // SAFETY: an anonymous private mapping with a null hint touches no existing
        // memory; the result is checked against MAP_FAILED before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        NonNull::new(p.cast::<u8>())
            .map(|ptr| Mapping { ptr, len })
            .ok_or_else(|| io::Error::other("mmap returned null"))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.len == 0 {
            return; // a placeholder left by a leak (see `BufRing::drop`)
        }
        // SAFETY: `ptr`/`len` are exactly what mmap returned, and the mapping is
        // unmapped only here, once. Owners guarantee the kernel no longer uses it.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// Why a buffer id from a completion was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BufError {
    #[error("buffer id {0} out of range")]
    BadId(u16),
    #[error("buffer {0} is not owned by the kernel (taken twice?)")]
    NotInRing(u16),
    #[error("buffer {0} is not held by us (recycled twice?)")]
    NotHeld(u16),
    #[error("length {0} exceeds the buffer size")]
    BadLen(usize),
}

/// A provided-buffer ring with `entries` buffers of `buf_size` bytes each.
pub struct BufRing {
    ring: Mapping,
    bufs: Mapping,
    entries: u16,
    buf_size: u32,
    /// Our tail: entries before it have been written; those not yet published are
    /// invisible to the kernel.
    tail: u16,
    /// Per buffer id: true while the buffer is held by us (handed out by a completion).
    held: Vec<bool>,
    /// Buffer group id while registered.
    bgid: Option<u16>,
}

impl BufRing {
    /// Allocate a ring of `count` buffers (rounded up to a power of two, at most
    /// 32768) of `buf_size` bytes, with every buffer initially given to the ring.
    pub fn new(count: u16, buf_size: u32) -> io::Result<BufRing> {
        if count == 0 || buf_size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer ring needs at least one non-empty buffer",
            ));
        }
        let entries = count.checked_next_power_of_two().unwrap_or(MAX_ENTRIES);
        let entries = entries.min(MAX_ENTRIES);
        let ring = Mapping::new(entries as usize * ENTRY_SIZE)?;
        let bufs = Mapping::new(entries as usize * buf_size as usize)?;
        let mut r = BufRing {
            ring,
            bufs,
            entries,
            buf_size,
            tail: 0,
            held: vec![true; entries as usize],
            bgid: None,
        };
        for bid in 0..entries {
            // Every buffer starts "held", so recycling it is the normal give-back path.
            let ok = r.recycle(bid);
            debug_assert!(ok.is_ok());
        }
        r.publish();
        Ok(r)
    }

    #[cfg(test)]
    pub fn entries(&self) -> u16 {
        self.entries
    }

    /// Register the ring with `submitter`'s io_uring as buffer group `bgid`.
    pub fn register(&mut self, submitter: &Submitter<'_>, bgid: u16) -> io::Result<()> {
        if self.bgid.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "buffer ring already registered",
            ));
        }
        // SAFETY: the ring memory is a page-aligned mapping of `entries` entries that
        // lives as long as `self`; it is not unmapped while registered (Drop leaks it
        // if `unregister` was not called), so it stays valid for the kernel.
        unsafe {
            submitter.register_buf_ring_with_flags(
                self.ring.ptr.as_ptr() as u64,
                self.entries,
                bgid,
                0,
            )?;
        }
        self.bgid = Some(bgid);
        Ok(())
    }

    /// Unregister from the io_uring it was registered with. Call only once no
    /// operation that may select a buffer from this group is in flight.
    pub fn unregister(&mut self, submitter: &Submitter<'_>) -> io::Result<()> {
        if let Some(bgid) = self.bgid {
            submitter.unregister_buf_ring(bgid)?;
            self.bgid = None;
        }
        Ok(())
    }

    /// Take buffer `bid` that a completion handed us, with `len` valid bytes.
    /// The slice is valid until the buffer is recycled (the borrow of `self` ends).
    pub fn take(&mut self, bid: u16, len: usize) -> Result<&[u8], BufError> {
        if bid >= self.entries {
            return Err(BufError::BadId(bid));
        }
        if len > self.buf_size as usize {
            return Err(BufError::BadLen(len));
        }
        if self.held[bid as usize] {
            return Err(BufError::NotInRing(bid));
        }
        self.held[bid as usize] = true;
        // SAFETY: `bid < entries` so the range lies inside the buffer mapping; the
        // kernel handed this buffer to us with `len` bytes written and will not touch
        // it again until we recycle it, which needs `&mut self` and so ends this borrow.
        Ok(unsafe {
            std::slice::from_raw_parts(
                self.bufs
                    .ptr
                    .as_ptr()
                    .add(bid as usize * self.buf_size as usize),
                len,
            )
        })
    }

    /// Give buffer `bid` back to the ring (visible to the kernel after [`publish`]).
    ///
    /// [`publish`]: BufRing::publish
    pub fn recycle(&mut self, bid: u16) -> Result<(), BufError> {
        if bid >= self.entries {
            return Err(BufError::BadId(bid));
        }
        if !self.held[bid as usize] {
            return Err(BufError::NotHeld(bid));
        }
        self.held[bid as usize] = false;
        // SAFETY: an all-zero `io_uring_buf` (plain integers) is a valid value.
        let mut e: BufRingEntry = unsafe { std::mem::zeroed() };
        // SAFETY: `bid < entries`, so the address lies inside the buffer mapping.
        let addr = unsafe {
            self.bufs
                .ptr
                .as_ptr()
                .add(bid as usize * self.buf_size as usize)
        };
        e.set_addr(addr as u64);
        e.set_len(self.buf_size);
        e.set_bid(bid);
        let slot = (self.tail & (self.entries - 1)) as usize;
        // SAFETY: `slot < entries`, so the destination is inside the ring mapping. We
        // copy only the bytes before `resv`: in slot 0 `resv` is the shared tail, which
        // we update only atomically in `publish`. The kernel reads only slots in
        // [head, published tail); since a buffer id is given back only while held (so
        // at most `entries` buffers are ever in the ring), the slot at our tail is
        // outside that window: this plain write does not race with the kernel.
        unsafe {
            let dst = self.ring.ptr.as_ptr().add(slot * ENTRY_SIZE);
            std::ptr::copy_nonoverlapping((&raw const e).cast::<u8>(), dst, tail_offset());
        }
        self.tail = self.tail.wrapping_add(1);
        Ok(())
    }

    /// Make recycled buffers visible to the kernel.
    pub fn publish(&self) {
        self.shared_tail().store(self.tail, Ordering::Release);
    }

    /// The tail as last published (what the kernel sees).
    #[cfg(test)]
    pub fn published_tail(&self) -> u16 {
        self.shared_tail().load(Ordering::Acquire)
    }

    /// The tail including unpublished entries.
    #[cfg(test)]
    pub fn local_tail(&self) -> u16 {
        self.tail
    }

    /// Buffers currently held by us.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.held.iter().filter(|h| **h).count()
    }

    fn shared_tail(&self) -> &AtomicU16 {
        // SAFETY: the tail is the `resv` field of entry 0 (2-byte aligned: the mapping
        // is page aligned and the field is at offset 14). The kernel only reads it; we
        // only access it atomically through this reference, for as long as `self`.
        unsafe {
            let base = self.ring.ptr.as_ptr().cast::<BufRingEntry>();
            AtomicU16::from_ptr(BufRingEntry::tail(base).cast_mut())
        }
    }

    #[cfg(test)]
    fn entry(&self, slot: u16) -> (u64, u32, u16) {
        // SAFETY: test-only read of a slot inside the mapping while no kernel is attached.
        unsafe {
            let e = &*self
                .ring
                .ptr
                .as_ptr()
                .cast::<BufRingEntry>()
                .add((slot & (self.entries - 1)) as usize);
            (e.addr(), e.len(), e.bid())
        }
    }
}

/// Byte offset of the `resv` (tail) field inside a ring entry.
fn tail_offset() -> usize {
    // SAFETY: `BufRingEntry::tail` only computes a field address of the entry we pass,
    // which is a valid local value.
    unsafe {
        let e: BufRingEntry = std::mem::zeroed();
        let base = &raw const e;
        BufRingEntry::tail(base) as usize - base as usize
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        if self.bgid.is_some() {
            // The kernel may still reference this memory: never unmap it under it.
            tracing::warn!("buffer ring dropped while registered; leaking its memory");
            std::mem::forget(std::mem::replace(&mut self.ring, dangling()));
            std::mem::forget(std::mem::replace(&mut self.bufs, dangling()));
        }
    }
}

fn dangling() -> Mapping {
    Mapping {
        ptr: NonNull::dangling(),
        len: 0,
    }
}

// SAFETY: the ring owns its mappings exclusively; nothing in it is tied to a thread.
unsafe impl Send for BufRing {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_offset_is_14() {
        assert_eq!(tail_offset(), 14);
    }

    #[test]
    fn new_fills_ring_and_publishes() {
        let r = BufRing::new(6, 128).unwrap();
        assert_eq!(r.entries(), 8, "rounded up to a power of two");
        assert_eq!(r.local_tail(), 8);
        assert_eq!(r.published_tail(), 8);
        assert_eq!(r.held(), 0);
        let base = r.entry(0).0;
        for slot in 0..8u16 {
            let (addr, len, bid) = r.entry(slot);
            assert_eq!(bid, slot);
            assert_eq!(len, 128);
            assert_eq!(addr, base + slot as u64 * 128);
        }
    }

    #[test]
    fn take_recycle_and_wraparound() {
        let mut r = BufRing::new(4, 64).unwrap();
        let base = r.entry(0).0;
        // Simulate the kernel consuming buffers 2 and 0, in that order.
        assert_eq!(r.take(2, 10).unwrap().len(), 10);
        assert_eq!(r.take(0, 64).unwrap().len(), 64);
        assert_eq!(r.held(), 2);
        r.recycle(2).unwrap();
        // Written at slot tail & mask = 4 & 3 = 0, but not yet published.
        assert_eq!(r.local_tail(), 5);
        assert_eq!(r.published_tail(), 4);
        assert_eq!(r.entry(0), (base + 2 * 64, 64, 2));
        r.recycle(0).unwrap();
        assert_eq!(r.entry(1), (base, 64, 0));
        r.publish();
        assert_eq!(r.published_tail(), 6);
        assert_eq!(r.held(), 0);
        // The tail is stored in slot 0's resv: writing the slot must not clobber it.
        assert_eq!(r.published_tail(), 6);
    }

    #[test]
    fn tail_wraps_u16() {
        let mut r = BufRing::new(2, 8).unwrap();
        for _ in 0..40_000u32 {
            r.take(1, 1).unwrap();
            r.recycle(1).unwrap();
        }
        r.publish();
        assert_eq!(r.published_tail(), (2u32 + 40_000) as u16);
    }

    #[test]
    fn misuse_is_refused() {
        let mut r = BufRing::new(2, 8).unwrap();
        assert_eq!(r.take(5, 1), Err(BufError::BadId(5)));
        assert_eq!(r.take(0, 9), Err(BufError::BadLen(9)));
        assert_eq!(r.recycle(0), Err(BufError::NotHeld(0)));
        r.take(0, 1).unwrap();
        assert_eq!(r.take(0, 1), Err(BufError::NotInRing(0)));
        r.recycle(0).unwrap();
        assert_eq!(r.recycle(0), Err(BufError::NotHeld(0)));
        assert_eq!(r.local_tail(), 3);
    }

    #[test]
    fn zero_sizes_refused() {
        assert!(BufRing::new(0, 8).is_err());
        assert!(BufRing::new(8, 0).is_err());
    }

    #[test]
    fn kernel_selects_buffers() {
        use io_uring::{IoUring, cqueue, opcode, types};
        use std::io::Write;
        use std::os::fd::AsRawFd;

        let mut ring = IoUring::new(8).unwrap();
        let mut br = BufRing::new(4, 16).unwrap();
        br.register(&ring.submitter(), 7).unwrap();
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        for round in 0..6u8 {
            a.write_all(&[round; 5]).unwrap();
            let e = opcode::Recv::new(types::Fd(b.as_raw_fd()), std::ptr::null_mut(), 16)
                .buf_group(7)
                .build()
                .flags(io_uring::squeue::Flags::BUFFER_SELECT)
                .user_data(1);
            // SAFETY: the entry references no user memory (the kernel picks a buffer).
            unsafe { ring.submission().push(&e).unwrap() };
            ring.submit_and_wait(1).unwrap();
            let cqe = ring.completion().next().unwrap();
            assert_eq!(cqe.result(), 5);
            let bid = cqueue::buffer_select(cqe.flags()).unwrap();
            assert_eq!(
                bid,
                (round % 4) as u16,
                "kernel takes buffers in ring order"
            );
            assert_eq!(br.take(bid, 5).unwrap(), &[round; 5]);
            br.recycle(bid).unwrap();
            br.publish();
        }
        br.unregister(&ring.submitter()).unwrap();
    }
}
