//! The TOML configuration file of `ringnfs serve --config FILE`: every serve option,
//! under the same names with underscores. Options given on the command line win.
//!
//! ```toml
//! listen = ["127.0.0.1:2049", "127.0.0.2:2049"]
//! threads = 2
//! backend = "local"          # or "memory"
//! export = "/srv/nfs"
//! read_only = false
//! root_squash = true
//! anon_uid = 65534
//! anon_gid = 65534
//! allow = ["127.0.0.0/8", "10.0.0.0/8"]
//! max_connections_per_session = 16
//! exclusive_binding = false
//! over_limit = "serve"       # or "delay": SEQUENCE on a connection over the limit
//! lease_time = 90
//! max_slots = 64
//! state_dir = "ringnfs-state"
//! grace = 0                  # seconds of grace after start for reclaims
//! control = "127.0.0.1:9049" # control plane (HTTP API, metrics), or "off"
//! control_token_file = "ringnfs-state/control-token"
//! max_connections = 8192     # hardening limits (0 = unlimited / off)
//! max_connections_per_peer = 1024
//! idle_timeout = 60          # seconds; unbound connections with no record
//! session_idle_timeout = 360 # the same once a connection had a session
//! max_record_size = 1114112
//! max_reply_queue = 8388608
//! max_sessions_per_client = 16
//! ring_entries = 1024        # io_uring submission queue entries per worker
//! recv_buffers = 256         # provided receive buffers per worker
//! recv_buffer_kib = 64       # size of each receive buffer
//! # sqpoll_idle_ms = 10      # SQPOLL with this idle time (absent: no SQPOLL)
//! ```

use std::net::SocketAddr;

pub use ringnfs_proto::addr::resolve_addr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::control::ControlAddr;

fn listen_addrs<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<SocketAddr>>, D::Error> {
    let v = Option::<Vec<String>>::deserialize(d)?;
    v.map(|v| {
        v.iter()
            .map(|a| resolve_addr(a).map_err(serde::de::Error::custom))
            .collect()
    })
    .transpose()
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Like `--listen` (host names resolve).
    #[serde(default, deserialize_with = "listen_addrs")]
    pub listen: Option<Vec<SocketAddr>>,
    pub threads: Option<usize>,
    pub pin: Option<bool>,
    pub backend: Option<String>,
    pub export: Option<PathBuf>,
    pub read_only: Option<bool>,
    pub root_squash: Option<bool>,
    pub anon_uid: Option<u32>,
    pub anon_gid: Option<u32>,
    pub allow: Option<Vec<ipnet::IpNet>>,
    pub max_connections_per_session: Option<u32>,
    pub exclusive_binding: Option<bool>,
    pub over_limit: Option<crate::state::settings::OverLimit>,
    pub lease_time: Option<u32>,
    pub max_slots: Option<u32>,
    pub state_dir: Option<PathBuf>,
    pub grace: Option<u32>,
    /// `"ADDR:PORT"` or `"off"`, like `--control`.
    pub control: Option<ControlAddr>,
    /// Like `--control-token-file`.
    pub control_token_file: Option<PathBuf>,
    pub max_connections: Option<usize>,
    pub max_connections_per_peer: Option<usize>,
    pub idle_timeout: Option<u32>,
    pub session_idle_timeout: Option<u32>,
    pub max_record_size: Option<usize>,
    pub max_reply_queue: Option<usize>,
    pub max_sessions_per_client: Option<u32>,
    /// Like `--ring-entries`.
    pub ring_entries: Option<u32>,
    /// Like `--recv-buffers`.
    pub recv_buffers: Option<u16>,
    /// Like `--recv-buffer-kib`.
    pub recv_buffer_kib: Option<u32>,
    /// Like `--sqpoll IDLE_MS`.
    pub sqpoll_idle_ms: Option<u32>,
}

pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example_and_rejects_unknown_keys() {
        let doc = include_str!("config.rs")
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim_start())
            .collect::<Vec<_>>()
            .join("\n");
        let c: FileConfig = toml::from_str(&doc).unwrap();
        assert_eq!(c.listen.as_ref().map(Vec::len), Some(2));
        assert_eq!(c.backend.as_deref(), Some("local"));
        assert_eq!(c.ring_entries, Some(1024));
        assert_eq!(c.recv_buffers, Some(256));
        assert_eq!(c.recv_buffer_kib, Some(64));
        assert_eq!(c.allow.as_ref().map(Vec::len), Some(2));
        assert!(toml::from_str::<FileConfig>("listn = []").is_err());
        assert_eq!(
            c.control,
            Some(ControlAddr(Some("127.0.0.1:9049".parse().unwrap())))
        );
        assert_eq!(
            c.control_token_file.as_deref(),
            Some(Path::new("ringnfs-state/control-token"))
        );
    }

    #[test]
    fn listen_addresses_in_the_file_resolve() {
        let c: FileConfig = toml::from_str("listen = [\"localhost:2049\"]").unwrap();
        assert!(c.listen.unwrap()[0].ip().is_loopback());
        let e = toml::from_str::<FileConfig>("listen = [\"127.0.0.1:99999\"]").unwrap_err();
        assert!(e.to_string().contains("port out of range"), "{e}");
    }

    #[test]
    fn tuning_profiles_parse() {
        let d: FileConfig = toml::from_str(include_str!("../tuning/default.toml")).unwrap();
        assert_eq!(d.ring_entries, Some(1024));
        assert_eq!(d.sqpoll_idle_ms, None);
        let t: FileConfig = toml::from_str(include_str!("../tuning/tuned.toml")).unwrap();
        assert_eq!(t.ring_entries, Some(4096));
    }

    #[test]
    fn control_key_takes_an_address_or_off() {
        let c: FileConfig = toml::from_str("control = \"off\"").unwrap();
        assert_eq!(c.control, Some(ControlAddr(None)));
        let c: FileConfig = toml::from_str("control = \"OFF\"").unwrap();
        assert_eq!(c.control, Some(ControlAddr(None)));
        let c: FileConfig = toml::from_str("control = \"[::1]:9050\"").unwrap();
        assert_eq!(
            c.control,
            Some(ControlAddr(Some("[::1]:9050".parse().unwrap())))
        );
        assert_eq!(FileConfig::default().control, None);
        for bad in [
            "control = \"on\"",
            "control = \"127.0.0.1\"",
            "control = 9049",
            "control_token = \"x\"",
        ] {
            assert!(toml::from_str::<FileConfig>(bad).is_err(), "{bad}");
        }
        let e = toml::from_str::<FileConfig>("control = \"nowhere\"").unwrap_err();
        assert!(e.to_string().contains("ADDR:PORT or \"off\""), "{e}");
    }
}
