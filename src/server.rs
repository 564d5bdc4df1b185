//! Wiring: state + NFS program + io_uring transport + lease reaper = a running server.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::control::exports::ExportSpec;
use crate::control::{ControlConfig, ControlHandle};
use crate::exports::{ExportDefaults, ExportsFile, LiveExports};
use crate::nfs4::export::ExportOptions;
use crate::nfs4::program::NfsService;
use crate::state::settings::{
    OverLimit, PersistedSettings, SETTINGS_FILE, SettingSources, StartSettings,
};
use crate::state::{Reaper, StateConfig, StateManager};
use crate::transport::{
    self, TlsAcceptor, TlsFiles, TransportConfig, TransportHandle, TransportTuning,
};

pub const DEFAULT_PORT: u16 = 2049;
/// Loopback only.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_PORT);
pub const DEFAULT_EXPORT: &str = "ringnfs-export";
/// `ringnfs serve`'s state directory (a [`ServerConfig`] has none by default); also
/// where `ringnfs ctl` looks for the token.
pub const DEFAULT_STATE_DIR: &str = crate::control::DEFAULT_STATE_DIR;
/// Fore-channel slots offered per session.
pub const DEFAULT_MAX_FORE_SLOTS: u32 = 64;

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
    /// OPEN grants delegations (a live setting).
    pub delegations: bool,
    /// Where the start values of the live settings (`max_connections_per_session`,
    /// `exclusive_binding`, `lease_secs`, the log level) came from. A value persisted by
    /// the control plane in `state_dir/settings.toml` replaces a start value from
    /// [`Source::Default`](crate::state::settings::Source::Default) (all of them by
    /// default); an explicit start value wins over it, with a warning.
    pub setting_sources: SettingSources,
    /// What a SEQUENCE on a connection over the per-session limit gets.
    pub over_limit: OverLimit,
    pub max_fore_slots: u32,
    pub backend: BackendKind,
    /// Directory exported by the local backend (created, mode 1777, if missing) at the
    /// pseudo root, when `exports` is empty.
    pub export_path: PathBuf,
    /// The defaults of every export's options (the only export's options when
    /// `exports` is empty).
    pub export: ExportOptions,
    /// The exports (`[[export]]` tables); empty: `export_path` alone, at "/".
    pub exports: Vec<ExportSpec>,
    /// The exports were given at start (`--export` or `[[export]]`): they win over
    /// exports persisted by the control plane, with a warning.
    pub exports_given: bool,
    /// Grace period after start for reclaims, seconds (0 = none, the default). In a
    /// cluster, the longest a cluster-wide grace lasts (0: the lease time).
    pub grace_secs: u32,
    /// Run as a node of a cluster on etcd (None: one server).
    pub cluster: Option<crate::cluster::ClusterOptions>,
    /// RPC-with-TLS: the server's certificate chain and key (both or neither), and the
    /// CA of client certificates (mutual TLS).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_client_ca: Option<PathBuf>,
    /// Kerberos (RPCSEC_GSS): the keytab (None: the default one, used only when an
    /// export lists a krb5 flavor), and the realms of local users (empty: krb5.conf's
    /// default_realm).
    pub krb5_keytab: Option<PathBuf>,
    pub krb5_realms: Vec<String>,
    /// Control-plane address (HTTP API and metrics); None: no control plane (the
    /// default here; `ringnfs serve` uses 127.0.0.1:9049). Port 0 picks a free port
    /// ([`Server::control_addr`] tells which).
    pub control: Option<SocketAddr>,
    /// Bearer token file of the control plane (default `state_dir/control-token`;
    /// without either, a token kept in memory only). When the control address cannot be
    /// bound (e.g. another server holds it), the start fails: a server never runs
    /// without the control plane it was asked for.
    pub control_token_file: Option<PathBuf>,
    /// Hardening limits (see [`Limits`]).
    pub limits: Limits,
    /// Transport knobs (ring size, receive buffers, output bound); defaults unchanged.
    pub tuning: TransportTuning,
}

/// Resource limits against hostile or broken clients, each counted in `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open connections in total (0 = unlimited); more are closed at accept
    /// (`ringnfs_connections_refused_total{cause="total"}`).
    pub max_connections: usize,
    /// Open connections per peer IP address (0 = unlimited)
    /// (`ringnfs_connections_refused_total{cause="per_peer"}`).
    pub max_connections_per_peer: usize,
    /// Seconds after which a connection bound to no session that has not completed an
    /// RPC record is closed (0 = never) (`ringnfs_idle_closes_total`).
    pub idle_timeout_secs: u32,
    /// The same for a connection that had a session and is bound to none now, e.g.
    /// after its client's lease expired (0 = never); long, so the client finds it open.
    pub session_idle_timeout_secs: u32,
    /// Largest RPC record accepted; a larger one closes the connection
    /// (`ringnfs_record_errors_total{cause="too_large"}`).
    pub max_record_size: usize,
    /// Reply bytes queued for one connection before it stops being read
    /// (`ringnfs_backpressure_pauses_total`).
    pub max_reply_queue: usize,
    /// Sessions one client may hold (0 = unlimited); CREATE_SESSION over it gets
    /// NFS4ERR_NOSPC (`ringnfs_sessions_refused_total{cause="per_client"}`).
    pub max_sessions_per_client: u32,
    /// Delegations held by all clients together; past it OPEN grants none.
    pub max_delegations: usize,
    /// Delegations one client may hold; past it OPEN grants it none.
    pub max_delegations_per_client: u32,
}

pub const DEFAULT_MAX_CONNECTIONS: usize = 8192;
pub const DEFAULT_MAX_CONNECTIONS_PER_PEER: usize = 1024;
pub const DEFAULT_IDLE_TIMEOUT_SECS: u32 = 60;
/// Six minutes, as knfsd keeps an idle connection.
pub const DEFAULT_SESSION_IDLE_TIMEOUT_SECS: u32 = 360;
/// 1 MiB of WRITE data plus room for the COMPOUND around it.
pub const DEFAULT_MAX_RECORD_SIZE: usize = (1 << 20) + (64 << 10);
pub const DEFAULT_MAX_REPLY_QUEUE: usize = 8 << 20;
/// Smallest `max_record_size` accepted: a CREATE_SESSION needs a few hundred bytes,
/// and session negotiation never offers less than 512.
pub const MIN_RECORD_SIZE: usize = 4096;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_peer: DEFAULT_MAX_CONNECTIONS_PER_PEER,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
            session_idle_timeout_secs: DEFAULT_SESSION_IDLE_TIMEOUT_SECS,
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
            max_reply_queue: DEFAULT_MAX_REPLY_QUEUE,
            max_sessions_per_client: crate::state::DEFAULT_MAX_SESSIONS_PER_CLIENT,
            max_delegations: crate::state::files::DEFAULT_MAX_DELEGATIONS,
            max_delegations_per_client: crate::state::files::DEFAULT_MAX_DELEGATIONS_PER_CLIENT,
        }
    }
}

/// A timeout in seconds where 0 means never.
fn secs_or_never(secs: u32) -> Option<std::time::Duration> {
    (secs > 0).then(|| std::time::Duration::from_secs(secs.into()))
}

/// How READ and WRITE data of the local backend go through the page cache (knfsd's
/// `io_cache_read` / `io_cache_write`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum IoMode {
    /// Buffered I/O, the data stays cached.
    #[default]
    Buffered,
    /// Buffered I/O whose pages are dropped once read or written back (RWF_DONTCACHE,
    /// Linux 6.14+ and a filesystem that supports it; buffered otherwise, said in the
    /// log).
    Dontcache,
    /// Direct I/O (O_DIRECT) for the aligned part of each READ and WRITE, buffered for
    /// a WRITE's unaligned head and tail; buffered where the filesystem does no direct
    /// I/O (said in the log).
    Direct,
}

impl IoMode {
    pub fn caching(self) -> crate::service::Caching {
        match self {
            IoMode::Buffered => crate::service::Caching::Buffered,
            IoMode::Dontcache => crate::service::Caching::DontCache,
            IoMode::Direct => crate::service::Caching::Direct,
        }
    }
}

/// Where exported files live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// Real files under the export directory.
    Local,
    /// Everything in RAM (tests, pure-protocol benchmarks).
    Memory,
}

impl BackendKind {
    /// The name `--backend` takes.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Memory => "memory",
            BackendKind::Local => "local",
        }
    }
}

/// The defaults of `ringnfs serve` ([`crate::options`]), but no state directory (a fresh
/// identity per process) and no control plane.
impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            state_dir: None,
            control: None,
            ..crate::options::ServeOptions::default().server_config()
        }
    }
}

pub struct Server {
    state: Arc<StateManager>,
    /// The exports served, changed live by the control plane and SIGHUP.
    exports: Arc<LiveExports>,
    /// Shared with the control plane (for the transport counters); unwrapped at join,
    /// after the control thread stopped.
    transport: Arc<TransportHandle>,
    reaper: parking_lot::Mutex<Reaper>,
    control: parking_lot::Mutex<Option<ControlHandle>>,
    control_addr: Option<SocketAddr>,
    control_token_path: Option<PathBuf>,
    /// RPC-with-TLS, when configured (its files are re-read by [`Server::reload_tls`]).
    tls: Option<Arc<TlsAcceptor>>,
    /// This server's membership of a cluster, if it is a node of one.
    cluster: Option<Arc<ringnfs_cluster::Node>>,
}

/// Kerberos, when `cfg` gives a keytab or an export lists a krb5 flavor: MIT's GSS-API
/// loaded and the keytab's keys acquired now, so a missing library or keytab stops the
/// start with a message.
fn start_gss(
    cfg: &ServerConfig,
    specs: &[ExportSpec],
    state: &StateManager,
) -> anyhow::Result<Option<Arc<crate::nfs4::rpcsec_gss::RpcsecGss>>> {
    let asked = specs.iter().any(|s| {
        std::iter::once(&s.sec)
            .chain(s.clients.iter().map(|c| &c.sec))
            .flatten()
            .flatten()
            .any(|f| f.trim().starts_with("krb5"))
    });
    if cfg.krb5_keytab.is_none() && !asked {
        return Ok(None);
    }
    let local_realms = if cfg.krb5_realms.is_empty() {
        krb5_default_realm().into_iter().collect()
    } else {
        cfg.krb5_realms.clone()
    };
    let gss_cfg = crate::nfs4::rpcsec_gss::GssConfig {
        keytab: cfg.krb5_keytab.clone(),
        local_realms,
    };
    let gss =
        crate::nfs4::rpcsec_gss::RpcsecGss::new(&gss_cfg, state.gss.clone()).map_err(|e| {
            anyhow::anyhow!(
                "Kerberos: {e} (keytab {})",
                gss_cfg.keytab.as_ref().map_or_else(
                    || "the default: KRB5_KTNAME or /etc/krb5.keytab".to_string(),
                    |k| k.display().to_string()
                )
            )
        })?;
    tracing::info!(
        keytab = %gss_cfg.keytab.as_ref().map_or_else(|| "default".to_string(), |k| k.display().to_string()),
        realms = %gss_cfg.local_realms.join(" "),
        "Kerberos (RPCSEC_GSS) ready"
    );
    Ok(Some(Arc::new(gss)))
}

/// `default_realm` of `[libdefaults]` in MIT's configuration file (`KRB5_CONFIG`, else
/// /etc/krb5.conf), as nfsidmap's `Local-Realms` defaults to it.
fn krb5_default_realm() -> Option<String> {
    let path = std::env::var_os("KRB5_CONFIG")
        .and_then(|v| std::env::split_paths(&v).next())
        .unwrap_or_else(|| PathBuf::from("/etc/krb5.conf"));
    let text = std::fs::read_to_string(path).ok()?;
    let mut in_libdefaults = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_libdefaults = line == "[libdefaults]";
        } else if in_libdefaults
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == "default_realm"
        {
            return Some(v.trim().to_string());
        }
    }
    None
}

/// The TLS acceptor `cfg` asks for: its files are read now, so a missing or bad file
/// stops the start with a message naming it.
fn tls_acceptor(cfg: &ServerConfig) -> anyhow::Result<Option<Arc<TlsAcceptor>>> {
    let (cert, key) = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) if cfg.tls_client_ca.is_some() => {
            anyhow::bail!("--tls-client-ca needs --tls-cert and --tls-key")
        }
        (None, None) => return Ok(None),
        (Some(_), None) => {
            anyhow::bail!("--tls-cert needs --tls-key (the certificate's private key)")
        }
        (None, Some(_)) => {
            anyhow::bail!("--tls-key needs --tls-cert (the certificate it belongs to)")
        }
    };
    let files = TlsFiles {
        cert,
        key,
        client_ca: cfg.tls_client_ca.clone(),
    };
    Ok(Some(TlsAcceptor::load(files)?))
}

/// The server_owner major id: read from `state_dir/server-owner`, created on first start,
/// so it is the same on every listen address and across restarts.
pub fn server_identity(state_dir: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    let fresh = || format!("ringnfs-{:032x}", rand::random::<u128>());
    let Some(dir) = state_dir else {
        return Ok(fresh().into_bytes());
    };
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!(
            "the state directory {} is a file, not a directory (give --state-dir a directory; it is created if missing)",
            dir.display()
        );
    }
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

/// The file-handle key: read from `state_dir/handle-key`, created (0600) on first start,
/// so handles stay valid across restarts. Without a state dir: random per process.
pub fn handle_key(state_dir: Option<&Path>) -> anyhow::Result<[u8; 16]> {
    let Some(dir) = state_dir else {
        return Ok(rand::random());
    };
    let path = dir.join("handle-key");
    match std::fs::read(&path) {
        Ok(b) if b.len() == 16 => Ok(b.try_into().expect("16 bytes")),
        Ok(_) => anyhow::bail!("{} must hold exactly 16 bytes", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let key: [u8; 16] = rand::random();
            std::fs::create_dir_all(dir)?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(&key)?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The exports a start serves: those given (`exports`, or `export_path` alone at "/"),
/// or, when none were given, those the control plane persisted.
fn start_specs(cfg: &ServerConfig) -> anyhow::Result<Vec<ExportSpec>> {
    let given = if cfg.exports.is_empty() {
        vec![ExportSpec {
            pseudo: "/".into(),
            path: (cfg.backend == BackendKind::Local)
                .then(|| cfg.export_path.display().to_string()),
            ..ExportSpec::default()
        }]
    } else {
        cfg.exports.clone()
    };
    let Some(dir) = cfg.state_dir.as_deref() else {
        return Ok(given);
    };
    let Some(saved) = ExportsFile::load(dir)? else {
        return Ok(given);
    };
    if cfg.exports_given {
        if saved != given {
            tracing::warn!(
                persisted_in = %dir.join(crate::exports::EXPORTS_FILE).display(),
                "the exports given at start win over those the control plane persisted \
                 (remove the file to drop them)"
            );
        }
        return Ok(given);
    }
    tracing::info!(
        file = %dir.join(crate::exports::EXPORTS_FILE).display(),
        exports = saved.len(),
        "serving the exports persisted by the control plane"
    );
    Ok(saved)
}

fn start_exports(
    cfg: &ServerConfig,
    state: &Arc<StateManager>,
    specs: &[ExportSpec],
    kerberos: bool,
    handle_key: [u8; 16],
) -> anyhow::Result<LiveExports> {
    let defaults = ExportDefaults {
        backend: cfg.backend,
        options: cfg.export.clone(),
        locations: cfg.listen.iter().map(|a| a.ip().to_string()).collect(),
        kerberos,
    };
    LiveExports::start(
        specs,
        defaults,
        handle_key,
        cfg.state_dir.clone(),
        Some(state.clone()),
    )
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
        // Sockets plus the local backend's open-file cache need more than the usual 1024.
        match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(n) => tracing::debug!(limit = n, "open file limit"),
            Err(e) => tracing::warn!(error = %e, "could not raise the open file limit"),
        }
        // A cluster node presents the cluster's scope and handle key, and an owner of
        // its own; one server keeps its identity in the state directory.
        let cluster = match &cfg.cluster {
            Some(c) => {
                let grace = if cfg.grace_secs > 0 {
                    cfg.grace_secs
                } else {
                    cfg.lease_secs
                };
                Some(crate::cluster::join(
                    c,
                    &cfg.listen,
                    std::time::Duration::from_secs(grace.into()),
                )?)
            }
            None => None,
        };
        let (owner, scope) = match &cluster {
            Some(node) => (
                node.server_owner(),
                node.identity().scope.as_bytes().to_vec(),
            ),
            None => {
                let owner = server_identity(cfg.state_dir.as_deref())?;
                (owner.clone(), owner)
            }
        };
        let handle_key = match &cluster {
            Some(node) => node.identity().handle_key,
            None => handle_key(cfg.state_dir.as_deref())?,
        };
        let mut state_cfg = StateConfig {
            worker_cores: threads,
            server_scope: scope,
            server_owner: owner,
            state_dir: cfg.state_dir.clone(),
            grace_secs: cfg.grace_secs,
            ..StateConfig::default()
        };
        state_cfg.limits.max_fore_slots = cfg.max_fore_slots.max(1);
        if cfg.limits.max_record_size < MIN_RECORD_SIZE {
            anyhow::bail!(
                "max record size must be at least {MIN_RECORD_SIZE} bytes, got {}",
                cfg.limits.max_record_size
            );
        }
        state_cfg.limits.max_sessions_per_client = cfg.limits.max_sessions_per_client;
        state_cfg.delegation_limits = crate::state::files::DelegLimits {
            total: cfg.limits.max_delegations,
            per_client: cfg.limits.max_delegations_per_client,
        };
        // A session never offers requests larger than a record may be.
        let max_req = u32::try_from(cfg.limits.max_record_size).unwrap_or(u32::MAX);
        state_cfg.limits.max_request = state_cfg.limits.max_request.min(max_req);
        let state = StateManager::new(state_cfg);
        if let Some(node) = &cluster {
            state
                .grace
                .attach_cluster(Arc::new(crate::cluster::Recovery(node.clone())));
            state
                .files
                .attach_cluster(Arc::new(crate::cluster::Shares(node.clone())));
        }
        state
            .settings
            .set_max_connections_per_session(cfg.max_connections_per_session as u64)?;
        state.settings.set_exclusive_binding(cfg.exclusive_binding);
        state.settings.set_delegations(cfg.delegations);
        state.settings.set_over_limit(cfg.over_limit);
        state.settings.set_lease_secs(cfg.lease_secs as u64)?;
        // Settings changed through the control plane and persisted are used, except where
        // the start value was given explicitly: that one wins, with a warning.
        let start_settings = StartSettings {
            max_connections_per_session: cfg.max_connections_per_session,
            exclusive_binding: cfg.exclusive_binding,
            lease_time: cfg.lease_secs,
            log_level: crate::control::current_log_level(),
            delegations: cfg.delegations,
        };
        if let Some(dir) = cfg.state_dir.as_deref()
            && let Some(saved) = PersistedSettings::load(dir).map_err(anyhow::Error::msg)?
        {
            let file = dir.join(SETTINGS_FILE);
            let (apply, overridden) = saved.resolve(&start_settings, &cfg.setting_sources);
            for o in &overridden {
                tracing::warn!(
                    key = %o.key,
                    value = %o.start,
                    from = ?o.source.to_string(),
                    persisted = %o.persisted,
                    persisted_in = %file.display(),
                    "a setting given at start wins over the value persisted by the control \
                     plane (`ringnfs ctl settings reset {}` drops the persisted one)",
                    o.key
                );
            }
            apply
                .apply(&state.settings)
                .with_context(|| format!("applying {}", file.display()))?;
            if let Some(level) = &apply.log_level
                && let Err(e) = crate::control::apply_log_level(level)
            {
                tracing::warn!(error = %e, "ignoring the persisted log level");
            }
            if !apply.is_empty() {
                tracing::info!(settings = %apply.describe(), file = %file.display(), "applied settings persisted by the control plane");
            }
        }

        let specs = match &cluster {
            Some(node) => crate::exports::cluster_exports(node, start_specs(&cfg)?)?,
            None => start_specs(&cfg)?,
        };
        let gss = start_gss(&cfg, &specs, &state)?;
        let live = Arc::new(start_exports(
            &cfg,
            &state,
            &specs,
            gss.is_some(),
            handle_key,
        )?);
        if let Some(node) = &cluster {
            live.share_with(node.clone());
            crate::cluster::serve_shared_settings(node, &state, cfg.state_dir.clone());
        }
        let service = NfsService::with_gss(state.clone(), live.exports().clone(), gss.clone());
        if let Some(node) = &cluster {
            // From now on the node answers the other nodes' claims.
            node.attach_claims(Arc::new(crate::cluster::Host {
                state: Arc::downgrade(&state),
                service: Arc::downgrade(&service),
            }));
        }
        cfg.tuning.validate().map_err(anyhow::Error::msg)?;
        let mut tcfg = TransportConfig {
            threads,
            listen: cfg.listen.clone(),
            pin_cores: cfg.pin_cores,
            max_record: cfg.limits.max_record_size,
            max_out_bytes: cfg.limits.max_reply_queue.max(1),
            max_connections: cfg.limits.max_connections,
            max_connections_per_peer: cfg.limits.max_connections_per_peer,
            idle_timeout: secs_or_never(cfg.limits.idle_timeout_secs),
            session_idle_timeout: secs_or_never(cfg.limits.session_idle_timeout_secs),
            ..TransportConfig::default()
        };
        cfg.tuning.apply(&mut tcfg);
        let tls = tls_acceptor(&cfg)?;
        tcfg.tls = tls.clone();
        let transport =
            transport::start(tcfg, service).context("starting the io_uring transport")?;
        let transport = Arc::new(transport);
        let reaper = parking_lot::Mutex::new(state.spawn_reaper());
        let control = match cfg.control {
            Some(addr) => {
                let token_file = cfg.control_token_file.clone().or_else(|| {
                    cfg.state_dir
                        .as_ref()
                        .map(|d| d.join(crate::control::TOKEN_FILE))
                });
                let t = transport.clone();
                let started = crate::control::server::start(
                    ControlConfig {
                        addr,
                        token_file,
                        state_dir: cfg.state_dir.clone(),
                        start_settings: start_settings.clone(),
                        exports: Some(live.clone()),
                        tls: tls.clone(),
                        share_settings: cluster
                            .as_ref()
                            .map(|n| crate::cluster::settings_sharer(n.clone())),
                    },
                    state.clone(),
                    Box::new(move || crate::transport::TransportStats::sum(&t.stats())),
                );
                match started {
                    Ok(c) => Some(c),
                    Err(e) => {
                        transport.shutdown();
                        reaper.lock().stop();
                        return Err(e.context(format!(
                            "cannot start the control plane on {addr} (is another server \
                             using it? give another address with --control ADDR:PORT, or \
                             run without a control plane with --control off)"
                        )));
                    }
                }
            }
            None => None,
        };
        let control_addr = control.as_ref().map(|c| c.addr());
        let control_token_path = control
            .as_ref()
            .and_then(|c| c.token_path().map(Path::to_path_buf));
        let none = || "-".to_string();
        let export = live
            .specs()
            .iter()
            .map(|s| match &s.path {
                Some(p) => format!("{}={p}", s.pseudo),
                None => format!("{}=(memory)", s.pseudo),
            })
            .collect::<Vec<_>>()
            .join(" ");
        // The memory backend has no page cache to go through or around.
        let io_mode = match cfg.backend {
            BackendKind::Local => cfg.export.io_mode.name(),
            BackendKind::Memory => "-",
        };
        let state_dir = cfg
            .state_dir
            .as_ref()
            .map_or_else(none, |d| d.display().to_string());
        let control_shown = control_addr.map_or_else(|| "off".to_string(), |a| a.to_string());
        tracing::info!(
            addrs = ?transport.local_addrs(),
            threads,
            backend = %cfg.backend.name(),
            exports = %export,
            io_mode = %io_mode,
            state_dir = %state_dir,
            grace_secs = cfg.grace_secs,
            cluster = %cluster.as_ref().map_or_else(none, |n| {
                let c = cfg.cluster.as_ref().expect("a node has cluster options");
                format!("{} node {} (etcd {})", c.name, n.node_id(), c.endpoints.join(","))
            }),
            tls = %tls.as_ref().map_or_else(|| "off".to_string(), |t| {
                let mutual = if t.verifies_clients() { " (client certificates verified)" } else { "" };
                format!("{}{mutual}", t.files().cert.display())
            }),
            control = %control_shown,
            "ringnfs serving NFSv4.1 and 4.2"
        );
        Ok(Server {
            state,
            exports: live,
            transport,
            reaper,
            control: parking_lot::Mutex::new(control),
            control_addr,
            control_token_path,
            tls,
            cluster,
        })
    }

    /// Re-read the TLS certificate, key and client CA files (new handshakes use them);
    /// false when TLS is not configured. On an error the files in use stay.
    pub fn reload_tls(&self) -> Result<bool, crate::transport::TlsError> {
        match &self.tls {
            Some(t) => t.reload().map(|()| true),
            None => Ok(false),
        }
    }

    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.transport.local_addrs()
    }

    /// The control plane's bound address, when it runs.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control_addr
    }

    /// The control plane's bearer token file, when there is one.
    pub fn control_token_path(&self) -> Option<&Path> {
        self.control_token_path.as_deref()
    }

    /// This server's cluster node, if it is one.
    pub fn cluster_node(&self) -> Option<&Arc<ringnfs_cluster::Node>> {
        self.cluster.as_ref()
    }

    pub fn state(&self) -> &Arc<StateManager> {
        &self.state
    }

    pub fn exports(&self) -> &Arc<LiveExports> {
        &self.exports
    }

    /// The transport's counters summed over the workers.
    pub fn transport_stats(&self) -> crate::transport::TransportStats {
        crate::transport::TransportStats::sum(&self.transport.stats())
    }

    /// Ask everything to stop (callable from any thread).
    pub fn shutdown(&self) {
        if let Some(mut c) = self.control.lock().take() {
            c.stop();
        }
        self.transport.shutdown();
        self.reaper.lock().stop();
        // Gone from the cluster at once: its clients may reclaim where its address goes.
        if let Some(node) = &self.cluster {
            node.leave();
        }
    }

    /// Wait for the control plane, the workers and the reaper to finish.
    pub fn join(self) -> anyhow::Result<()> {
        if let Some(mut c) = self.control.lock().take() {
            c.stop();
        }
        self.reaper.lock().stop();
        match Arc::try_unwrap(self.transport) {
            Ok(t) => t.join().context("transport workers"),
            Err(t) => {
                // Someone still holds the transport (cannot happen once the control
                // thread has stopped); the workers were told to stop all the same.
                t.shutdown();
                anyhow::bail!("transport still shared at join")
            }
        }
    }
}
