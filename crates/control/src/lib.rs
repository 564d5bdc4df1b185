//! The control plane: an HTTP API (REST under `/api/v1`, Prometheus metrics at
//! `/metrics`, an OpenAPI document) on its own thread with a current-thread tokio
//! runtime, beside the io_uring workers and never on them. It reads state only through
//! the query API of [`StateManager`] (short lock holds) and acts only through its operator
//! actions (`drain_connection`, `force_destroy_session`) and the live settings.
//!
//! Split by concern: [`server`] (thread, runtime, router), [`auth`] (bearer token),
//! [`metrics`] (Prometheus text), [`api`] (REST handlers and their JSON types),
//! [`openapi`] (the generated document), [`client`] (a small HTTP/1.1 client) and
//! [`cli`] (`ringnfs ctl ...`). Settings persistence lives in
//! [`ringnfs_state::settings::PersistedSettings`].

pub mod api;
pub mod auth;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod error;
pub mod exports;
pub mod metrics;
pub mod openapi;
pub mod server;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use ringnfs_state::StateManager;
use ringnfs_state::settings::{PersistedSettings, StartSettings};
use ringnfs_transport::TransportStats;

/// The default control address of `ringnfs serve`.
pub const DEFAULT_CONTROL_ADDR: &str = "127.0.0.1:9049";
/// Name of the token file in the state directory.
pub const TOKEN_FILE: &str = "control-token";
/// The state directory of `ringnfs serve` by default (relative to its working
/// directory), where `ringnfs ctl` looks for [`TOKEN_FILE`] by default.
pub const DEFAULT_STATE_DIR: &str = "ringnfs-state";

pub use server::ControlHandle;

/// Where the control plane listens: `ADDR:PORT`, or `off` (None) for no control plane.
/// The value of `ringnfs serve --control` and of the config file's `control` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct ControlAddr(pub Option<SocketAddr>);

impl FromStr for ControlAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().eq_ignore_ascii_case("off") {
            return Ok(ControlAddr(None));
        }
        ringnfs_proto::addr::resolve_addr(s)
            .map(|a| ControlAddr(Some(a)))
            .map_err(|e| format!("expected ADDR:PORT or \"off\": {e}"))
    }
}

impl TryFrom<String> for ControlAddr {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// What the control plane needs to start.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    pub addr: SocketAddr,
    /// Bearer token file; created (0600) with a fresh token if missing. None: a token
    /// kept in memory only (no state directory).
    pub token_file: Option<PathBuf>,
    /// Where `settings.toml` is written on changes (None: changes are not persisted).
    pub state_dir: Option<PathBuf>,
    /// The live settings' start values, which a reset goes back to.
    pub start_settings: StartSettings,
    /// Export administration (None: the exports cannot be listed or changed here).
    pub exports: Option<Arc<dyn exports::ExportAdmin>>,
    /// RPC-with-TLS, when the server has it (its files can be reloaded here).
    pub tls: Option<Arc<ringnfs_transport::TlsAcceptor>>,
    /// In a cluster: shares an operator's settings with every node before they are
    /// saved and applied here (an error refuses the change).
    pub share_settings: Option<SettingsSharer>,
}

/// Shares changed settings with a cluster's other nodes.
#[derive(Clone)]
pub struct SettingsSharer(pub Arc<ShareFn>);

/// What [`SettingsSharer`] calls: the settings to share, or why they could not be.
pub type ShareFn = dyn Fn(&PersistedSettings) -> Result<(), String> + Send + Sync;

impl std::fmt::Debug for SettingsSharer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SettingsSharer")
    }
}

/// Shared by every request handler.
pub struct Ctx {
    pub state: Arc<StateManager>,
    pub transport_stats: Box<dyn Fn() -> TransportStats + Send + Sync>,
    pub token: String,
    /// The listener is not on a loopback address: every request needs the token.
    pub token_always: bool,
    pub state_dir: Option<PathBuf>,
    /// The live settings' start values, which a reset goes back to.
    pub start_settings: StartSettings,
    /// Serialises settings changes (validate, persist, apply).
    pub settings_lock: parking_lot::Mutex<()>,
    pub exports: Option<Arc<dyn exports::ExportAdmin>>,
    pub tls: Option<Arc<ringnfs_transport::TlsAcceptor>>,
    pub share_settings: Option<SettingsSharer>,
}

type LogReloader = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;
static LOG_RELOADER: OnceLock<LogReloader> = OnceLock::new();
static START_LOG_LEVEL: OnceLock<String> = OnceLock::new();
/// The log filter in force (process-wide, like the tracing subscriber); None: the start one.
static LOG_LEVEL: parking_lot::Mutex<Option<String>> = parking_lot::Mutex::new(None);

/// Install the function that changes the process's log filter (the `ringnfs` binary
/// does, with a `tracing_subscriber::reload` layer), and the level it started with.
/// Without one, a log-level change is validated and remembered but changes nothing.
pub fn set_log_reloader(start_level: &str, f: LogReloader) {
    let _ = START_LOG_LEVEL.set(start_level.to_string());
    let _ = LOG_RELOADER.set(f);
}

/// The log level the process started with ("info" unless told).
pub fn start_log_level() -> String {
    START_LOG_LEVEL
        .get()
        .cloned()
        .unwrap_or_else(|| "info".to_string())
}

/// The log filter in force.
pub fn current_log_level() -> String {
    LOG_LEVEL.lock().clone().unwrap_or_else(start_log_level)
}

/// Longest log filter taken from the control plane or the settings file.
pub const MAX_LOG_FILTER: usize = 256;

/// Validate a log filter from the control plane or the settings file: EnvFilter syntax,
/// printable ASCII, at most [`MAX_LOG_FILTER`] bytes, and no span field filters (`[span{field=value}]`):
/// field values compile to regular expressions, and a crafted one of a few hundred bytes
/// kept `EnvFilter::try_new` busy for longer than 14 s (found by the `rest_json` fuzz
/// target; reproducer in `fuzz/artifacts/rest_json/`).
pub fn check_log_level(level: &str) -> Result<(), String> {
    if level.len() > MAX_LOG_FILTER {
        return Err(format!(
            "invalid log level: longer than {MAX_LOG_FILTER} bytes"
        ));
    }
    // tracing-subscriber 0.3.23's directive parser slices strings at byte offsets that
    // may fall inside a multi-byte character and panics (e.g. on U+0085; found by the
    // `rest_json` fuzz target): filters are targets, levels and punctuation, all ASCII.
    if !level.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(format!(
            "invalid log level {level:?}: only printable ASCII is accepted"
        ));
    }
    if level.contains('{') {
        return Err(format!(
            "invalid log level {level:?}: field filters (`{{...}}`) are not accepted"
        ));
    }
    tracing_subscriber::EnvFilter::try_new(level)
        .map(drop)
        .map_err(|e| format!("invalid log level {level:?}: {e}"))
}

/// Check a log filter (`tracing_subscriber` EnvFilter syntax, e.g. `debug` or
/// `info,ringnfs_state=trace`) and apply it if a reloader is installed.
pub fn apply_log_level(level: &str) -> Result<(), String> {
    check_log_level(level)?;
    if let Some(f) = LOG_RELOADER.get() {
        f(level)?;
    }
    *LOG_LEVEL.lock() = Some(level.to_string());
    Ok(())
}
