//! The export: a backend, its options (read-only, squashing, allowed networks) and the
//! handle codec. The export root is the NFS pseudo-root `/`.

use std::sync::atomic::{AtomicBool, Ordering};

use ringnfs_service::Caching;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use ringnfs_fs::{Backend, Caller, ObjHandle};
use ringnfs_proto::rpc::Credential;

use super::fh::{FileHandle, HandleCodec};

/// The "nobody" ids knfsd uses by default.
pub const DEFAULT_ANON_ID: u32 = 65534;

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub read_only: bool,
    /// Map uid 0 / gid 0 to the anonymous ids (knfsd's default).
    pub root_squash: bool,
    pub anon_uid: u32,
    pub anon_gid: u32,
    /// Client networks allowed to use the export (empty = everyone).
    pub allowed: Vec<IpNet>,
    /// How READ and WRITE data of real files go through the page cache.
    pub io_mode: Caching,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            read_only: false,
            root_squash: true,
            anon_uid: DEFAULT_ANON_ID,
            anon_gid: DEFAULT_ANON_ID,
            allowed: Vec::new(),
            io_mode: Caching::Buffered,
        }
    }
}

pub struct Export {
    pub backend: Arc<dyn Backend>,
    pub opts: ExportOptions,
    pub handles: HandleCodec,
    pub root: ObjHandle,
    pub root_fh: FileHandle,
    /// Path of the export in the server namespace, for fs_locations ("/" = empty).
    pub path: Vec<Vec<u8>>,
    /// Server addresses reported in fs_locations (Linux uses them for trunk discovery).
    pub locations: Vec<String>,
    /// `io_mode` was refused by the kernel or the filesystem (EOPNOTSUPP): buffered I/O
    /// is used instead from then on.
    caching_refused: AtomicBool,
}

impl Export {
    pub fn new(backend: Arc<dyn Backend>, opts: ExportOptions, key: [u8; 16]) -> Self {
        let handles = HandleCodec::new(key);
        let root = backend.root();
        let root_fh = handles.encode(&root);
        Self {
            backend,
            opts,
            handles,
            root,
            root_fh,
            path: Vec::new(),
            locations: Vec::new(),
            caching_refused: AtomicBool::new(false),
        }
    }

    /// The caching mode for READ and WRITE data now: the export's `io_mode`, unless
    /// that was refused.
    pub fn caching(&self) -> Caching {
        if self.caching_refused.load(Ordering::Relaxed) {
            Caching::Buffered
        } else {
            self.opts.io_mode
        }
    }

    /// The kernel or the filesystem refused caching mode `c` (EOPNOTSUPP; EINVAL or no
    /// `O_DIRECT` for direct I/O): use buffered I/O from now on (said once, in the log).
    pub fn caching_refused(&self, c: Caching) {
        if c != Caching::Buffered && !self.caching_refused.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                io_mode = c.name(),
                "the kernel or the exported filesystem refuses this I/O mode (RWF_DONTCACHE \
                 needs Linux 6.14 and a filesystem that supports it; direct I/O needs \
                 O_DIRECT and STATX_DIOALIGN): using buffered I/O"
            );
        }
    }

    /// An export of a fresh in-memory file system whose root anyone may write to (mode
    /// 1777), with a random handle key: for engine tests and benchmarks.
    pub fn memory(opts: ExportOptions) -> Self {
        let backend = ringnfs_fs::memory::MemoryBackend::new(ringnfs_fs::memory::MemoryOptions {
            root_mode: 0o1777,
            ..Default::default()
        });
        Self::new(Arc::new(backend), opts, rand::random())
    }

    /// The identity file operations run as, after squashing.
    pub fn caller(&self, cred: &Credential) -> Caller {
        let (uid, gid, gids) = match cred {
            Credential::Sys(s) => (s.uid, s.gid, s.gids.clone()),
            Credential::None => (self.opts.anon_uid, self.opts.anon_gid, Vec::new()),
        };
        if self.opts.root_squash {
            let squash = |id: u32, anon: u32| if id == 0 { anon } else { id };
            Caller {
                uid: squash(uid, self.opts.anon_uid),
                gid: squash(gid, self.opts.anon_gid),
                gids: gids
                    .into_iter()
                    .map(|g| squash(g, self.opts.anon_gid))
                    .collect(),
            }
        } else {
            Caller { uid, gid, gids }
        }
    }

    pub fn allows(&self, peer: IpAddr) -> bool {
        let peer = match peer {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        self.opts.allowed.is_empty() || self.opts.allowed.iter().any(|n| n.contains(&peer))
    }
}
