//! Buffers of large received records (a 1 MiB WRITE), reused by the worker that received
//! them: a fresh 1 MiB buffer costs page faults and zeroed pages on its first receive,
//! every time. The record assembler takes its large-record buffers from here
//! ([`alloc`]); the service gets the record as [`Bytes`] whose owner puts the buffer
//! back ([`shared`]) once the last slice of it (a WRITE's data on the ring) is gone.
//! Per thread: no lock, no sharing; a buffer dropped on another thread joins that
//! thread's pool (or is freed).

use std::cell::RefCell;

use ringnfs_proto::rpc::record::OWN_BUFFER_FROM;
use ringnfs_service::Bytes;

/// Buffers kept per worker, and the largest capacity kept.
const KEEP: usize = 16;
const MAX_CAPACITY: usize = 4 << 20;

thread_local! {
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for at least `min` bytes: a pooled one if one is large
/// enough.
pub(crate) fn alloc(min: usize) -> Vec<u8> {
    POOL.with_borrow_mut(|p| {
        p.iter()
            .position(|b| b.capacity() >= min)
            .map(|i| p.swap_remove(i))
    })
    .unwrap_or_else(|| Vec::with_capacity(min))
}

/// A received record as shared bytes; its buffer goes back to the pool when the last
/// slice of it is dropped.
pub(crate) fn shared(record: Vec<u8>) -> Bytes {
    Bytes::from_owner(Pooled(record))
}

struct Pooled(Vec<u8>);

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut b = std::mem::take(&mut self.0);
        if (OWN_BUFFER_FROM..=MAX_CAPACITY).contains(&b.capacity()) {
            b.clear();
            // `try_with`: a thread being torn down just frees it.
            let _ = POOL.try_with(|p| {
                let mut p = p.borrow_mut();
                if p.len() < KEEP {
                    p.push(b);
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_buffer_comes_back_when_its_last_slice_is_dropped() {
        POOL.with_borrow_mut(Vec::clear);
        let mut v = alloc(1 << 20);
        v.extend_from_slice(&[7; 1000]);
        let ptr = v.as_ptr();
        let record = shared(v);
        let data = record.slice(10..20);
        drop(record);
        assert_eq!(POOL.with_borrow(Vec::len), 0, "a slice still holds it");
        assert_eq!(&data[..], &[7; 10]);
        drop(data);
        let again = alloc(4096);
        assert_eq!(again.as_ptr(), ptr, "reused");
        assert!(again.is_empty() && again.capacity() >= 1 << 20);
        // Small buffers are not kept.
        drop(shared(vec![1; 10]));
        assert_eq!(POOL.with_borrow(Vec::len), 0);
    }
}
