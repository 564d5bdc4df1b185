//! Shared helpers of the whole-server file tests (tests/files*.rs): a server on either
//! backend, restartable with the same export directory and state directory.
//!
//! Each test file declares it `pub mod files_common;`, so its public helpers count as used in every
//! test binary, whichever ones that file calls, without a blanket `allow(dead_code)`: a
//! private item nothing reaches still warns.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ringnfs::client::{ClientError, ClientOptions, Files, Session};
use ringnfs::nfs4::consts::NfsStatus;
use ringnfs::rpc::{AuthSys, Credential};
use ringnfs::server::{BackendKind, ServerConfig};

use crate::common::TestServer;

type Tweak = Arc<dyn Fn(&mut ServerConfig) + Send + Sync>;

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "ringnfs-{tag}-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server on one backend. Field order matters: the server stops before the
/// directories are removed.
pub struct Env {
    pub kind: BackendKind,
    pub server: TestServer,
    tweak: Tweak,
    pub dir: Option<TempDir>,
}

impl Env {
    pub fn start(
        kind: BackendKind,
        tweak: impl Fn(&mut ServerConfig) + Send + Sync + 'static,
    ) -> Env {
        let dir = (kind == BackendKind::Local).then(|| TempDir::new("files"));
        Self::start_in(kind, Arc::new(tweak), dir)
    }

    fn start_in(kind: BackendKind, tweak: Tweak, dir: Option<TempDir>) -> Env {
        let server = Self::server(kind, &tweak, dir.as_ref());
        Env {
            kind,
            server,
            tweak,
            dir,
        }
    }

    fn server(kind: BackendKind, tweak: &Tweak, dir: Option<&TempDir>) -> TestServer {
        let dir = dir.map(|d| d.path().to_path_buf());
        let tweak = tweak.clone();
        TestServer::with(move |cfg| {
            cfg.backend = kind;
            if let Some(d) = &dir {
                // The server creates the export (mode 1777) itself.
                cfg.export_path = d.join("export");
                cfg.state_dir = Some(d.join("state"));
            }
            tweak(cfg);
        })
    }

    pub fn is_local(&self) -> bool {
        self.kind == BackendKind::Local
    }

    /// The exported directory (local backend).
    pub fn export_path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().join("export"))
    }

    /// Stop and start again with the same configuration, export and state directories
    /// (the memory backend starts empty).
    pub fn restart(&mut self) {
        self.server.stop();
        self.server = Self::server(self.kind, &self.tweak, self.dir.as_ref());
    }

    /// Restart with a different configuration tweak (same directories).
    pub fn restart_with(&mut self, tweak: impl Fn(&mut ServerConfig) + Send + Sync + 'static) {
        self.tweak = Arc::new(tweak);
        self.restart();
    }

    pub fn session(&self) -> Arc<Session> {
        self.server.session().1
    }

    pub fn session_as(&self, cred: Credential) -> Arc<Session> {
        self.server
            .session_with(ClientOptions {
                cred,
                ..Default::default()
            })
            .1
    }

    /// A new client (its own client id and session) with one connection.
    pub fn files(&self) -> Files {
        Files::new(self.session())
    }

    pub fn files_as(&self, cred: Credential) -> Files {
        Files::new(self.session_as(cred))
    }

    /// A new client with `n` connections, each already bound.
    pub fn trunked_files(&self, n: usize) -> Files {
        Files::new(self.server.trunked_session(n))
    }
}

/// Run `f` on a memory-backend server, then on a local-backend one.
pub fn for_each_backend(f: impl Fn(&mut Env)) {
    for_each_backend_with(|_| {}, f)
}

pub fn for_each_backend_with(
    tweak: impl Fn(&mut ServerConfig) + Send + Sync + Clone + 'static,
    f: impl Fn(&mut Env),
) {
    for kind in [BackendKind::Memory, BackendKind::Local] {
        eprintln!("--- backend {kind:?}");
        let mut env = Env::start(kind, tweak.clone());
        f(&mut env);
    }
}

pub fn sys(uid: u32, gid: u32) -> Credential {
    Credential::Sys(AuthSys {
        stamp: 1,
        machine_name: b"files-test".to_vec(),
        uid,
        gid,
        gids: vec![],
    })
}

/// The nfsstat4 of an NFS failure (panics on transport errors and successes).
#[track_caller]
pub fn status_of<T: std::fmt::Debug>(r: Result<T, ClientError>) -> NfsStatus {
    match r {
        Err(ClientError::Nfs { status, .. }) => status,
        other => panic!("expected an NFS error, got {other:?}"),
    }
}

/// (opnum, nfsstat4) of an NFS failure.
#[track_caller]
pub fn failure_of<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u32, NfsStatus) {
    match r {
        Err(ClientError::Nfs { opnum, status }) => (opnum, status),
        other => panic!("expected an NFS error, got {other:?}"),
    }
}

/// A small hash over bytes (FNV-1a 64).
pub fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Deterministic pseudo-random bytes (xorshift).
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}
