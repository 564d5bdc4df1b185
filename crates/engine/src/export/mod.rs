//! Exports: each a backend, a place in the pseudo file system, its options and the
//! clients it admits ([`rules`]); the table of all of them, swapped whole on a live
//! change ([`set`]); its counters ([`stats`]).

pub mod names;
pub mod rules;
pub mod set;
pub mod stats;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ringnfs_service::{Caching, TransportSecurity};
use std::net::IpAddr;

use ipnet::IpNet;

use ringnfs_fs::{Backend, Caller, ObjHandle};
use ringnfs_proto::rpc::Credential;
use ringnfs_proto::rpc::auth::{AUTH_NONE, AUTH_SYS};

use super::fh::{FileHandle, HandleCodec};
use crate::consts::{NfsStatus, status};
pub use rules::{ClientMatch, ClientRule};
pub use set::{ExportSet, Exports};
pub use stats::ExportStats;

/// The "nobody" ids knfsd uses by default.
pub const DEFAULT_ANON_ID: u32 = 65534;

/// An export's number: in its file handles and as the major number of its fsid. The
/// pseudo file system is [`PSEUDO_ID`].
pub type ExportId = u32;
pub const PSEUDO_ID: ExportId = 0;

/// The security flavors an export admits unless told otherwise, in the order SECINFO
/// lists them.
pub const DEFAULT_FLAVORS: [u32; 2] = [AUTH_SYS, AUTH_NONE];
/// The most flavors one export lists (SECINFO's reply-size bound counts on it).
pub const MAX_FLAVORS: usize = 8;

/// What one client may do with an export: its rule's options, or the export's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub read_only: bool,
    /// Map uid 0 / gid 0 to the anonymous ids (knfsd's default).
    pub root_squash: bool,
    /// Map every uid and gid to the anonymous ids.
    pub all_squash: bool,
    pub anon_uid: u32,
    pub anon_gid: u32,
    /// RPC security flavors admitted, in SECINFO's order.
    pub flavors: Vec<u32>,
    /// Transport security admitted (plain TCP, TLS, mutual TLS).
    pub xprtsec: XprtSec,
}

/// The transport security an export admits: knfsd's `xprtsec=` (a list of `none`,
/// `tls`, `mtls`). `tls` admits every TLS connection, with a client certificate or
/// without; `mtls` only those whose client certificate the server verified; `none`
/// plain TCP. (knfsd admits a mutual-TLS client on an `xprtsec=tls` export only when
/// `mtls` is listed too; refusing the stronger connection helps nobody.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XprtSec(u8);

impl XprtSec {
    pub const NONE: XprtSec = XprtSec(1);
    pub const TLS: XprtSec = XprtSec(2);
    pub const MTLS: XprtSec = XprtSec(4);
    /// Every transport (the default, as knfsd's).
    pub const ALL: XprtSec = XprtSec(7);

    /// The set a list of names gives (`none`, `tls`, `mtls`).
    pub fn parse<'n>(names: impl IntoIterator<Item = &'n str>) -> Result<XprtSec, String> {
        let mut bits = 0;
        for n in names {
            bits |= match n.trim() {
                "none" => Self::NONE.0,
                "tls" => Self::TLS.0,
                "mtls" => Self::MTLS.0,
                other => {
                    return Err(format!(
                        "{other:?} is not a transport security (none, tls, mtls)"
                    ));
                }
            };
        }
        if bits == 0 {
            return Err("xprtsec: give at least one of none, tls, mtls".into());
        }
        Ok(XprtSec(bits))
    }

    /// The names of the set, in the order none, tls, mtls.
    pub fn names(self) -> Vec<String> {
        [
            (Self::NONE, "none"),
            (Self::TLS, "tls"),
            (Self::MTLS, "mtls"),
        ]
        .into_iter()
        .filter(|(b, _)| self.0 & b.0 != 0)
        .map(|(_, n)| n.to_string())
        .collect()
    }

    /// Whether a request on a connection with `security` may use the export.
    #[inline]
    pub fn admits(self, security: TransportSecurity) -> bool {
        let need = match security {
            TransportSecurity::None => Self::NONE.0,
            TransportSecurity::Tls => Self::TLS.0,
            TransportSecurity::MutualTls => Self::TLS.0 | Self::MTLS.0,
        };
        self.0 & need != 0
    }
}

impl Default for XprtSec {
    fn default() -> Self {
        Self::ALL
    }
}

impl Access {
    /// The identity file operations run as, after squashing.
    pub fn caller(&self, cred: &Credential) -> Caller {
        let (uid, gid, gids) = match cred {
            Credential::Sys(s) if !self.all_squash => (s.uid, s.gid, s.gids.clone()),
            Credential::Gss(g) if !self.all_squash => match &g.ids {
                Some((uid, gid, gids)) => (*uid, *gid, gids.clone()),
                None => return self.anonymous(),
            },
            _ => return self.anonymous(),
        };
        if self.root_squash {
            let squash = |id: u32, anon: u32| if id == 0 { anon } else { id };
            Caller {
                uid: squash(uid, self.anon_uid),
                gid: squash(gid, self.anon_gid),
                gids: gids.into_iter().map(|g| squash(g, self.anon_gid)).collect(),
            }
        } else {
            Caller { uid, gid, gids }
        }
    }

    fn anonymous(&self) -> Caller {
        Caller {
            uid: self.anon_uid,
            gid: self.anon_gid,
            gids: Vec::new(),
        }
    }

    /// Whether a call with credential `cred` may use the export (else NFS4ERR_WRONGSEC).
    #[inline]
    pub fn admits_flavor(&self, cred: &Credential) -> bool {
        let flavor = match cred {
            Credential::Sys(_) => AUTH_SYS,
            Credential::None => AUTH_NONE,
            Credential::Gss(g) => g.service.krb5_flavor(),
        };
        self.flavors.contains(&flavor)
    }
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub read_only: bool,
    /// Map uid 0 / gid 0 to the anonymous ids (knfsd's default).
    pub root_squash: bool,
    /// Map every uid and gid to the anonymous ids.
    pub all_squash: bool,
    pub anon_uid: u32,
    pub anon_gid: u32,
    /// Security flavors admitted (empty: [`DEFAULT_FLAVORS`]).
    pub flavors: Vec<u32>,
    /// Transport security admitted.
    pub xprtsec: XprtSec,
    /// Client networks allowed to use the export with these options (empty = everyone),
    /// when there are no `rules`.
    pub allowed: Vec<IpNet>,
    /// Clients and their options, first match wins (exports(5)); a client no rule
    /// matches may not use the export. Empty: `allowed` decides, with the options above.
    pub rules: Vec<ClientRule>,
    /// How READ and WRITE data of real files go through the page cache.
    pub io_mode: Caching,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            read_only: false,
            root_squash: true,
            all_squash: false,
            anon_uid: DEFAULT_ANON_ID,
            anon_gid: DEFAULT_ANON_ID,
            flavors: Vec::new(),
            xprtsec: XprtSec::ALL,
            allowed: Vec::new(),
            rules: Vec::new(),
            io_mode: Caching::Buffered,
        }
    }
}

impl ExportOptions {
    /// The export's own options as one client's access.
    pub fn access(&self) -> Access {
        Access {
            read_only: self.read_only,
            root_squash: self.root_squash,
            all_squash: self.all_squash,
            anon_uid: self.anon_uid,
            anon_gid: self.anon_gid,
            flavors: if self.flavors.is_empty() {
                DEFAULT_FLAVORS.to_vec()
            } else {
                self.flavors.clone()
            },
            xprtsec: self.xprtsec,
        }
    }
}

pub struct Export {
    /// Its number in handles and fsid.
    pub id: ExportId,
    pub backend: Arc<dyn Backend>,
    pub opts: ExportOptions,
    /// Makes handles of this export (with the server's key and `id`).
    pub handles: HandleCodec,
    pub root: ObjHandle,
    pub root_fh: FileHandle,
    /// Its pseudo path ("/" = empty), for fs_locations and the pseudo file system.
    pub path: Vec<Vec<u8>>,
    /// Server addresses reported in fs_locations (Linux uses them for trunk discovery).
    pub locations: Vec<String>,
    /// Operations and bytes, per core (kept when the options change).
    pub stats: Arc<ExportStats>,
    /// What a client no rule names gets (`opts` as an [`Access`]).
    own_access: Access,
    /// `io_mode` was refused by the kernel or the filesystem (EOPNOTSUPP): buffered I/O
    /// is used instead from then on.
    caching_refused: AtomicBool,
}

impl Export {
    /// The export at the pseudo root "/" (the only one there can be), numbered as
    /// [`set::id_for_path`] numbers "/".
    pub fn new(backend: Arc<dyn Backend>, opts: ExportOptions, key: [u8; 16]) -> Self {
        Self::at(backend, opts, key, set::id_for_path(&[]), Vec::new())
    }

    /// Export number `id` at pseudo path `path` (components).
    pub fn at(
        backend: Arc<dyn Backend>,
        opts: ExportOptions,
        key: [u8; 16],
        id: ExportId,
        path: Vec<Vec<u8>>,
    ) -> Self {
        let handles = HandleCodec::new(key, id);
        let root = backend.root();
        let root_fh = handles.encode(&root);
        Self {
            id,
            backend,
            own_access: opts.access(),
            opts,
            handles,
            root,
            root_fh,
            path,
            locations: Vec::new(),
            stats: Arc::default(),
            caching_refused: AtomicBool::new(false),
        }
    }

    /// The same export (backend, number, path, counters) with other options: what a
    /// live change of its options serves from then on.
    pub fn with_options(&self, opts: ExportOptions) -> Export {
        Export {
            id: self.id,
            backend: self.backend.clone(),
            own_access: opts.access(),
            opts,
            handles: self.handles.clone(),
            root: self.root,
            root_fh: self.root_fh,
            path: self.path.clone(),
            locations: self.locations.clone(),
            stats: self.stats.clone(),
            caching_refused: AtomicBool::new(self.caching_refused.load(Ordering::Relaxed)),
        }
    }

    /// The fsid clients see: the export's number, so every export is a file system of
    /// its own to them (a mount point under the pseudo root).
    pub fn fsid(&self) -> (u64, u64) {
        (u64::from(self.id), 0)
    }

    /// The pseudo path as text ("/" for the root).
    pub fn pseudo_path(&self) -> String {
        set::path_text(&self.path)
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
                export = %self.pseudo_path(),
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
        Self::new(Arc::new(memory_backend(0o1777)), opts, rand::random())
    }

    /// What a client at `peer` may do with the export: the first rule naming it, or
    /// the export's own options if it has no rules and `allowed` admits the peer.
    /// NFS4ERR_ACCESS: the client may not use the export; NFS4ERR_DELAY: a wildcard rule
    /// waits for the client's host name (looked up off the worker).
    pub fn access_for(&self, peer: IpAddr) -> Result<&Access, NfsStatus> {
        let peer = rules::plain_ip(peer);
        if !self.opts.rules.is_empty() {
            for r in &self.opts.rules {
                match r.client.matches(peer) {
                    rules::Matched::Yes => return Ok(&r.access),
                    rules::Matched::No => {}
                    rules::Matched::Pending => return Err(status::NFS4ERR_DELAY),
                }
            }
            return Err(status::NFS4ERR_ACCESS);
        }
        if self.opts.allowed.is_empty() || self.opts.allowed.iter().any(|n| n.contains(&peer)) {
            Ok(&self.own_access)
        } else {
            Err(status::NFS4ERR_ACCESS)
        }
    }
}

pub(crate) fn memory_backend(root_mode: u32) -> ringnfs_fs::memory::MemoryBackend {
    ringnfs_fs::memory::MemoryBackend::new(ringnfs_fs::memory::MemoryOptions {
        root_mode,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringnfs_proto::rpc::AuthSys;

    fn sys(uid: u32, gid: u32) -> Credential {
        Credential::Sys(AuthSys {
            stamp: 0,
            machine_name: Vec::new(),
            uid,
            gid,
            gids: vec![0, 7],
        })
    }

    #[test]
    fn squashing() {
        let mut a = ExportOptions::default().access();
        let c = a.caller(&sys(0, 0));
        assert_eq!((c.uid, c.gid, c.gids), (65534, 65534, vec![65534, 7]));
        assert_eq!(a.caller(&sys(5, 6)).uid, 5);
        a.root_squash = false;
        assert_eq!(a.caller(&sys(0, 0)).uid, 0);
        a.all_squash = true;
        a.anon_uid = 99;
        let c = a.caller(&sys(5, 6));
        assert_eq!((c.uid, c.gid, c.gids.len()), (99, 65534, 0));
        assert_eq!(a.caller(&Credential::None).uid, 99);
    }

    #[test]
    fn flavors() {
        let mut a = ExportOptions::default().access();
        assert!(a.admits_flavor(&Credential::None));
        a.flavors = vec![AUTH_SYS];
        assert!(!a.admits_flavor(&Credential::None));
        assert!(a.admits_flavor(&sys(1, 1)));
    }
}
