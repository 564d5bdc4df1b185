//! Wiring: state + NFS program + io_uring transport + lease reaper = a running server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::nfs4::program::NfsService;
use crate::state::settings::{DEFAULT_LEASE_SECS, DEFAULT_MAX_CONNECTIONS_PER_SESSION};
use crate::state::{Reaper, StateConfig, StateManager};
use crate::transport::{self, TransportConfig, TransportHandle};

pub const DEFAULT_PORT: u16 = 2049;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: Vec<SocketAddr>,
    /// Worker threads (0 = one per CPU).
    pub threads: usize,
    pub pin_cores: bool,
    /// Where the server keeps its identity (server_owner). None: a fresh identity
    /// for this process only (tests).
    pub state_dir: Option<PathBuf>,
    pub lease_secs: u32,
    pub max_connections_per_session: u32,
    pub exclusive_binding: bool,
    pub max_fore_slots: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT))],
            threads: 0,
            pin_cores: true,
            state_dir: None,
            lease_secs: DEFAULT_LEASE_SECS,
            max_connections_per_session: DEFAULT_MAX_CONNECTIONS_PER_SESSION,
            exclusive_binding: false,
            max_fore_slots: 64,
        }
    }
}

pub struct Server {
    state: Arc<StateManager>,
    transport: TransportHandle,
    reaper: parking_lot::Mutex<Reaper>,
}

/// The server_owner major id: read from `state_dir/server-owner`, created on first start,
/// so it is the same on every listen address and across restarts.
pub fn server_identity(state_dir: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    let fresh = || format!("ringnfs-{:032x}", rand::random::<u128>());
    let Some(dir) = state_dir else {
        return Ok(fresh().into_bytes());
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating state dir {}", dir.display()))?;
    let path = dir.join("server-owner");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() && s.trim().len() <= 1024 => Ok(s.trim().as_bytes().to_vec()),
        Ok(_) => anyhow::bail!("{} is empty or longer than 1024 bytes", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = fresh();
            std::fs::write(&path, format!("{id}\n"))
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(id.into_bytes())
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

impl Server {
    pub fn start(cfg: ServerConfig) -> anyhow::Result<Server> {
        if cfg.listen.is_empty() {
            anyhow::bail!("no listen address given");
        }
        let threads = if cfg.threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            cfg.threads
        };
        let owner = server_identity(cfg.state_dir.as_deref())?;
        let mut state_cfg = StateConfig {
            worker_cores: threads,
            server_scope: owner.clone(),
            server_owner: owner,
            ..StateConfig::default()
        };
        state_cfg.limits.max_fore_slots = cfg.max_fore_slots.max(1);
        let state = StateManager::new(state_cfg);
        state
            .settings
            .set_max_connections_per_session(cfg.max_connections_per_session as u64)?;
        state.settings.set_exclusive_binding(cfg.exclusive_binding);
        state.settings.set_lease_secs(cfg.lease_secs as u64)?;

        let service = NfsService::new(state.clone());
        let tcfg = TransportConfig {
            threads,
            listen: cfg.listen.clone(),
            pin_cores: cfg.pin_cores,
            ..TransportConfig::default()
        };
        let transport =
            transport::start(tcfg, service).context("starting the io_uring transport")?;
        let reaper = parking_lot::Mutex::new(state.spawn_reaper());
        tracing::info!(addrs = ?transport.local_addrs(), threads, "ringnfs serving NFSv4.1");
        Ok(Server {
            state,
            transport,
            reaper,
        })
    }

    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.transport.local_addrs()
    }

    pub fn state(&self) -> &Arc<StateManager> {
        &self.state
    }

    /// Ask everything to stop (callable from any thread).
    pub fn shutdown(&self) {
        self.transport.shutdown();
        self.reaper.lock().stop();
    }

    /// Wait for the workers and the reaper to finish.
    pub fn join(self) -> anyhow::Result<()> {
        self.reaper.lock().stop();
        self.transport.join().context("transport workers")
    }
}
