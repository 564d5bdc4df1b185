//! The open-file cache: regular files opened for data I/O, keyed by object handle, so
//! READ/WRITE/COMMIT need no open_by_handle_at per call. Bounded: least recently used
//! entries are evicted past the bound. Sharded by handle so workers rarely contend.
//!
//! Entries are `Arc`s: an evicted or removed entry stays usable by an operation that
//! already holds it, and its descriptor closes when the last user lets go.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use super::sys;
use crate::{DirectFile, FsError, ObjHandle};

/// An open regular file.
#[derive(Debug)]
pub(super) struct OpenFile {
    pub fd: OwnedFd,
    /// `None` if `fd` is open for writing; else why it could not be (returned by WRITE).
    pub write_err: Option<FsError>,
    /// The same file opened with `O_DIRECT`, once an export in direct I/O mode asked
    /// (`None` inside: the file system does no direct I/O on it).
    direct: OnceLock<Option<DirectFile>>,
}

impl OpenFile {
    pub fn new(fd: OwnedFd, write_err: Option<FsError>) -> Self {
        OpenFile {
            fd,
            write_err,
            direct: OnceLock::new(),
        }
    }

    /// The file opened again with `O_DIRECT` (and the same access), and its alignment.
    pub fn direct(&self) -> Option<DirectFile> {
        self.direct
            .get_or_init(|| {
                let (offset_align, mem_align) = sys::dio_align(self.fd.as_fd())?;
                let access = if self.write_err.is_none() {
                    libc::O_RDWR
                } else {
                    libc::O_RDONLY
                };
                let p = sys::proc_path(self.fd.as_fd());
                match sys::openat(None, &p, access | libc::O_DIRECT) {
                    Ok(fd) => Some(DirectFile {
                        fd: Arc::new(fd),
                        offset_align,
                        mem_align,
                    }),
                    Err(e) => {
                        tracing::debug!(errno = e, "O_DIRECT open refused; buffered I/O");
                        None
                    }
                }
            })
            .clone()
    }
}

impl std::os::fd::AsFd for OpenFile {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

struct Shard {
    map: HashMap<ObjHandle, (Arc<OpenFile>, u64)>,
    /// Last-use tick → handle, oldest first.
    lru: BTreeMap<u64, ObjHandle>,
    tick: u64,
    cap: usize,
}

impl Shard {
    fn touch(&mut self, h: &ObjHandle) -> Option<Arc<OpenFile>> {
        self.tick += 1;
        let tick = self.tick;
        let (f, t) = self.map.get_mut(h)?;
        self.lru.remove(t);
        *t = tick;
        self.lru.insert(tick, *h);
        Some(f.clone())
    }
}

pub(super) struct FileCache {
    shards: Vec<Mutex<Shard>>,
    hasher: std::collections::hash_map::RandomState,
}

impl FileCache {
    /// A cache holding at most `bound` open files (0 disables caching).
    pub(super) fn new(bound: usize) -> Self {
        let n = bound.clamp(1, 16);
        let shards = (0..n)
            .map(|_| {
                Mutex::new(Shard {
                    map: HashMap::new(),
                    lru: BTreeMap::new(),
                    tick: 0,
                    cap: bound / n,
                })
            })
            .collect();
        FileCache {
            shards,
            hasher: Default::default(),
        }
    }

    fn shard(&self, h: &ObjHandle) -> &Mutex<Shard> {
        let i = self.hasher.hash_one(h) as usize % self.shards.len();
        &self.shards[i]
    }

    pub(super) fn get(&self, h: &ObjHandle) -> Option<Arc<OpenFile>> {
        self.shard(h).lock().touch(h)
    }

    /// Cache `f` for `h` and return the entry to use: an entry another thread inserted
    /// meanwhile wins (and `f` is closed).
    pub(super) fn insert(&self, h: &ObjHandle, f: OpenFile) -> Arc<OpenFile> {
        let mut s = self.shard(h).lock();
        if let Some(existing) = s.touch(h) {
            return existing;
        }
        let f = Arc::new(f);
        if s.cap == 0 {
            return f;
        }
        while s.map.len() >= s.cap {
            let Some((_, old)) = s.lru.pop_first() else {
                break;
            };
            s.map.remove(&old);
        }
        s.tick += 1;
        let tick = s.tick;
        s.map.insert(*h, (f.clone(), tick));
        s.lru.insert(tick, *h);
        f
    }

    /// Forget `h` (after it was removed or renamed over).
    pub(super) fn remove(&self, h: &ObjHandle) {
        let mut s = self.shard(h).lock();
        if let Some((_, t)) = s.map.remove(h) {
            s.lru.remove(&t);
        }
    }

    /// Number of cached open files.
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> OpenFile {
        OpenFile::new(std::fs::File::open("/dev/null").unwrap().into(), None)
    }

    fn h(i: u32) -> ObjHandle {
        ObjHandle::new(&i.to_le_bytes()).unwrap()
    }

    #[test]
    fn bounded_and_lru() {
        let c = FileCache::new(1);
        c.insert(&h(1), file());
        c.insert(&h(2), file());
        assert_eq!(c.len(), 1);
        assert!(c.get(&h(1)).is_none());
        assert!(c.get(&h(2)).is_some());

        let c = FileCache::new(64);
        for i in 0..1000 {
            c.insert(&h(i), file());
            assert!(c.len() <= 64);
        }
        c.remove(&h(999));
        assert!(c.get(&h(999)).is_none());
    }

    #[test]
    fn zero_disables() {
        let c = FileCache::new(0);
        let f = c.insert(&h(1), file());
        assert!(f.write_err.is_none());
        assert_eq!(c.len(), 0);
    }
}
