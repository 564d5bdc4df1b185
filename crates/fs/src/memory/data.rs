//! Regular file data of the memory backend: sparse 64 KiB chunks (see the module above
//! for the model), read, written, truncated, and for NFSv4.2 sought, allocated and
//! deallocated.

use std::collections::BTreeMap;

use ringnfs_service::Bytes;

/// Unit of sparse file storage.
pub(super) const CHUNK: u64 = 64 * 1024;

/// Regular file data: sparse chunks, no data beyond the file size (truncation trims,
/// so extending again exposes zeros, not old bytes).
#[derive(Default)]
pub(super) struct FileData {
    chunks: BTreeMap<u64, Chunk>,
    /// Sum of the chunk lengths (kept to answer `space_used` in O(1)).
    pub(super) allocated: u64,
}

/// One chunk of file data: bytes of its own, or a slice of a received record.
#[derive(Clone)]
enum Chunk {
    Owned(Vec<u8>),
    Shared(Bytes),
}

impl Default for Chunk {
    fn default() -> Self {
        Chunk::Owned(Vec::new())
    }
}

impl Chunk {
    fn len(&self) -> usize {
        self.bytes().len()
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Shared(b) => b,
        }
    }

    /// The chunk as bytes of its own (a shared one is copied first).
    fn owned(&mut self) -> &mut Vec<u8> {
        if let Chunk::Shared(b) = self {
            let mut v = Vec::with_capacity(CHUNK as usize);
            v.extend_from_slice(b);
            *self = Chunk::Owned(v);
        }
        match self {
            Chunk::Owned(v) => v,
            Chunk::Shared(_) => unreachable!("made owned above"),
        }
    }

    fn truncate(&mut self, len: usize) {
        match self {
            Chunk::Owned(v) => {
                v.truncate(len);
                v.shrink_to_fit();
            }
            Chunk::Shared(b) => b.truncate(len),
        }
    }
}

impl FileData {
    /// Copy `[offset, min(offset+count, size))` onto `buf`, holes as zeros. True at EOF.
    pub(super) fn read(&self, size: u64, offset: u64, count: u32, buf: &mut Vec<u8>) -> bool {
        if offset >= size {
            return true;
        }
        let end = size.min(offset.saturating_add(u64::from(count)));
        if end == offset {
            return false;
        }
        // Append chunk by chunk (zeros only for holes): no zero-fill of the whole range
        // before copying over it.
        buf.reserve((end - offset) as usize);
        let mut at = offset;
        for (&idx, chunk) in self.chunks.range(offset / CHUNK..=(end - 1) / CHUNK) {
            let cstart = idx * CHUNK;
            let lo = cstart.max(at);
            let hi = (cstart + chunk.len() as u64).min(end);
            if lo < hi {
                buf.resize(buf.len() + (lo - at) as usize, 0);
                buf.extend_from_slice(
                    &chunk.bytes()[(lo - cstart) as usize..(hi - cstart) as usize],
                );
                at = hi;
            }
        }
        buf.resize(buf.len() + (end - at) as usize, 0);
        end >= size
    }

    /// Chunks touched by `[offset, end)` with the range inside each chunk.
    fn spans(offset: u64, end: u64) -> impl Iterator<Item = (u64, usize, usize)> {
        let first = offset / CHUNK;
        // One past the last chunk touched; an empty range touches none.
        let stop = if end > offset {
            (end - 1) / CHUNK + 1
        } else {
            first
        };
        (first..stop).map(move |idx| {
            let cstart = idx * CHUNK;
            let lo = offset.max(cstart) - cstart;
            let hi = end.min(cstart + CHUNK) - cstart;
            (idx, lo as usize, hi as usize)
        })
    }

    /// Bytes a write of `len` at `offset` would add to `allocated`.
    pub(super) fn growth(&self, offset: u64, len: u64) -> u64 {
        Self::spans(offset, offset + len)
            .map(|(idx, _, hi)| {
                let have = self.chunks.get(&idx).map_or(0, Chunk::len);
                hi.saturating_sub(have) as u64
            })
            .sum()
    }

    /// Write `data` at `offset`; `shared` is the same bytes as a slice of a received
    /// record, kept as the chunk where the write covers one whole.
    pub(super) fn write(&mut self, offset: u64, data: &[u8], shared: Option<&Bytes>) {
        let mut src = data;
        let mut at = 0;
        for (idx, lo, hi) in Self::spans(offset, offset + data.len() as u64) {
            let entry = self.chunks.entry(idx).or_default();
            if let Some(b) = shared
                && lo == 0
                && hi >= entry.len()
            {
                // From the chunk's start past its data: nothing of it survives.
                self.allocated += hi as u64;
                self.allocated -= entry.len() as u64;
                *entry = Chunk::Shared(b.slice(at..at + hi));
                src = &src[hi..];
                at += hi;
                continue;
            }
            let chunk = entry.owned();
            if chunk.len() < hi {
                // Grow at most to a whole chunk so appends do not over-allocate 2x.
                let want = (chunk.len() * 2).clamp(hi, CHUNK as usize);
                chunk.reserve_exact(want - chunk.len());
                self.allocated += (hi - chunk.len()) as u64;
                chunk.resize(hi, 0);
            }
            let (now, rest) = src.split_at(hi - lo);
            chunk[lo..hi].copy_from_slice(now);
            src = rest;
            at += hi - lo;
        }
    }

    /// Drop data at and beyond `size`; returns the bytes freed.
    pub(super) fn truncate(&mut self, size: u64) -> u64 {
        let before = self.allocated;
        let first_gone = size.div_ceil(CHUNK);
        let gone = self.chunks.split_off(&first_gone);
        self.allocated -= gone.values().map(|c| c.len() as u64).sum::<u64>();
        let tail = (size % CHUNK) as usize;
        if tail != 0
            && let Some(chunk) = self.chunks.get_mut(&(size / CHUNK))
            && chunk.len() > tail
        {
            self.allocated -= (chunk.len() - tail) as u64;
            chunk.truncate(tail);
        }
        before - self.allocated
    }

    /// Bytes the chunks hold (what `allocated` must equal).
    #[cfg(test)]
    pub(super) fn held_bytes(&self) -> u64 {
        self.chunks.values().map(|c| c.len() as u64).sum()
    }

    /// Data regions, in order: each non-empty chunk's `[start, end)`.
    fn regions(&self, from_chunk: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.chunks
            .range(from_chunk..)
            .filter(|(_, c)| c.len() > 0)
            .map(|(&idx, c)| (idx * CHUNK, idx * CHUNK + c.len() as u64))
    }

    /// SEEK: the first offset at or after `offset` (below `size`) in data (`data`) or
    /// in a hole (the end of the file counts as one). `None`: `offset` is at or past
    /// the end, or no data follows it.
    pub(super) fn seek(&self, size: u64, offset: u64, data: bool) -> Option<u64> {
        if offset >= size {
            return None;
        }
        let mut regions = self.regions(offset / CHUNK);
        if data {
            let (start, _) = regions.find(|&(_, end)| end > offset)?;
            let at = start.max(offset);
            return (at < size).then_some(at);
        }
        let mut at = offset;
        for (start, end) in regions {
            if start > at {
                break;
            }
            at = at.max(end);
        }
        Some(at.min(size))
    }

    /// Bytes [`FileData::allocate`] of `[offset, end)` would add: every chunk the range
    /// touches held from its start to the range's end in it, less what the chunks that
    /// exist hold already (visits only those).
    pub(super) fn allocate_growth(&self, offset: u64, end: u64) -> u64 {
        if end <= offset {
            return 0;
        }
        let (first, stop) = (offset / CHUNK, (end - 1) / CHUNK);
        let hi = |idx: u64| (end - idx * CHUNK).min(CHUNK);
        let wanted = (stop - first) * CHUNK + hi(stop);
        let held: u64 = self
            .chunks
            .range(first..=stop)
            .map(|(&idx, c)| (c.len() as u64).min(hi(idx)))
            .sum();
        wanted - held
    }

    /// ALLOCATE: hold bytes over `[offset, end)` (zeros where there was no data);
    /// returns the bytes added.
    pub(super) fn allocate(&mut self, offset: u64, end: u64) -> u64 {
        let before = self.allocated;
        for (idx, _, hi) in Self::spans(offset, end) {
            let chunk = self.chunks.entry(idx).or_default();
            if chunk.len() < hi {
                let v = chunk.owned();
                self.allocated += (hi - v.len()) as u64;
                v.resize(hi, 0);
            }
        }
        self.allocated - before
    }

    /// DEALLOCATE: `[offset, end)` becomes a hole (reads as zeros; whole chunks and
    /// chunk tails are freed, bytes inside a chunk zeroed); returns the bytes freed.
    /// Visits only the chunks that exist, however long the range.
    pub(super) fn deallocate(&mut self, offset: u64, end: u64) -> u64 {
        if end <= offset {
            return 0;
        }
        let before = self.allocated;
        let first = offset / CHUNK;
        let stop = (end - 1) / CHUNK;
        let held: Vec<u64> = self.chunks.range(first..=stop).map(|(&i, _)| i).collect();
        for idx in held {
            let cstart = idx * CHUNK;
            let lo = (offset.max(cstart) - cstart) as usize;
            let hi = (end.min(cstart + CHUNK) - cstart) as usize;
            let Some(chunk) = self.chunks.get_mut(&idx) else {
                continue;
            };
            let len = chunk.len();
            if lo >= len {
                continue;
            }
            if hi >= len {
                self.allocated -= (len - lo) as u64;
                if lo == 0 {
                    self.chunks.remove(&idx);
                } else {
                    chunk.truncate(lo);
                }
            } else {
                chunk.owned()[lo..hi].fill(0);
            }
        }
        before - self.allocated
    }

    /// A copy of chunk `idx` (cheap for a slice of a record), `None` for a hole.
    pub(super) fn chunk_copy(&self, idx: u64) -> Option<ChunkCopy> {
        self.chunks.get(&idx).cloned().map(ChunkCopy)
    }

    /// Bytes putting `copies` at chunks `first..` would add to `allocated` (negative
    /// numbers are frees: the result saturates at 0).
    pub(super) fn put_growth(&self, first: u64, copies: &[Option<ChunkCopy>]) -> u64 {
        let (mut add, mut free) = (0u64, 0u64);
        for (i, c) in copies.iter().enumerate() {
            add += c.as_ref().map_or(0, |c| c.0.len() as u64);
            free += self
                .chunks
                .get(&(first + i as u64))
                .map_or(0, |c| c.len() as u64);
        }
        add.saturating_sub(free)
    }

    /// Chunks `first..` become `copies` (a hole where a copy is `None`): CLONE of
    /// chunk-aligned ranges.
    pub(super) fn put_chunks(&mut self, first: u64, copies: Vec<Option<ChunkCopy>>) {
        for (i, c) in copies.into_iter().enumerate() {
            let idx = first + i as u64;
            if let Some(old) = self.chunks.remove(&idx) {
                self.allocated -= old.len() as u64;
            }
            if let Some(ChunkCopy(c)) = c {
                self.allocated += c.len() as u64;
                self.chunks.insert(idx, c);
            }
        }
    }
}

/// A chunk taken from one file to be put in another (CLONE).
pub(super) struct ChunkCopy(Chunk);
