//! Settings that can change while the server runs. Read on the request path with relaxed
//! atomics: a change applies to the next bind, never to one in progress.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

pub const DEFAULT_MAX_CONNECTIONS_PER_SESSION: u32 = 16;
pub const MAX_CONNECTIONS_PER_SESSION_LIMIT: u32 = 1024;
pub const DEFAULT_LEASE_SECS: u32 = 90;

/// What a SEQUENCE gets when the implicit bind of its connection would exceed
/// `max_connections_per_session`. The bind is refused either way (counted as a `limit`
/// refusal); explicit BIND_CONN_TO_SESSION over the limit always gets NFS4ERR_DELAY.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum OverLimit {
    /// Run the request on the unbound connection (the default). Linux sends a request
    /// again on the same connection after NFS4ERR_DELAY, forever, so with nconnect
    /// above the limit only this keeps its I/O going.
    #[default]
    Serve,
    /// Refuse the request with NFS4ERR_DELAY (strict; hangs Linux nconnect mounts with
    /// more connections than the limit).
    Delay,
}

#[derive(Debug)]
pub struct LiveSettings {
    max_connections_per_session: AtomicU32,
    exclusive_binding: AtomicBool,
    lease_secs: AtomicU32,
    /// `OverLimit::Delay` when set.
    delay_over_limit: AtomicBool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("max_connections_per_session must be between 0 and 1024 (0 = unlimited), got {0}")]
    ConnLimitRange(u64),
    #[error("lease time must be between 1 and 3600 seconds, got {0}")]
    LeaseRange(u64),
}

impl Default for LiveSettings {
    fn default() -> Self {
        Self {
            max_connections_per_session: AtomicU32::new(DEFAULT_MAX_CONNECTIONS_PER_SESSION),
            exclusive_binding: AtomicBool::new(false),
            lease_secs: AtomicU32::new(DEFAULT_LEASE_SECS),
            delay_over_limit: AtomicBool::new(false),
        }
    }
}

impl LiveSettings {
    /// 0 means unlimited.
    pub fn max_connections_per_session(&self) -> u32 {
        self.max_connections_per_session.load(Ordering::Relaxed)
    }

    pub fn set_max_connections_per_session(&self, n: u64) -> Result<(), SettingsError> {
        if n > MAX_CONNECTIONS_PER_SESSION_LIMIT as u64 {
            return Err(SettingsError::ConnLimitRange(n));
        }
        self.max_connections_per_session
            .store(n as u32, Ordering::Relaxed);
        Ok(())
    }

    /// Opt-in pre-RFC 8881 behaviour: binding a connection to a session unbinds it from
    /// every other session (unbind reason `rebind`).
    pub fn exclusive_binding(&self) -> bool {
        self.exclusive_binding.load(Ordering::Relaxed)
    }

    pub fn set_exclusive_binding(&self, on: bool) {
        self.exclusive_binding.store(on, Ordering::Relaxed);
    }

    pub fn over_limit(&self) -> OverLimit {
        if self.delay_over_limit.load(Ordering::Relaxed) {
            OverLimit::Delay
        } else {
            OverLimit::Serve
        }
    }

    pub fn set_over_limit(&self, v: OverLimit) {
        self.delay_over_limit
            .store(v == OverLimit::Delay, Ordering::Relaxed);
    }

    pub fn lease_secs(&self) -> u32 {
        self.lease_secs.load(Ordering::Relaxed)
    }

    pub fn set_lease_secs(&self, secs: u64) -> Result<(), SettingsError> {
        if !(1..=3600).contains(&secs) {
            return Err(SettingsError::LeaseRange(secs));
        }
        self.lease_secs.store(secs as u32, Ordering::Relaxed);
        Ok(())
    }
}

/// Name of the file in the state directory that keeps settings changed at run time.
pub const SETTINGS_FILE: &str = "settings.toml";

/// The settings an operator changed through the control plane, as kept in
/// `state_dir/settings.toml`. At start a value in this file wins over the command line
/// and the config file (those give the start value only when nothing was persisted),
/// so a change made while the server ran survives a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistedSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections_per_session: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclusive_binding: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_time: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
}

impl PersistedSettings {
    /// Read `dir/settings.toml`; `Ok(None)` when it does not exist.
    pub fn load(dir: &std::path::Path) -> Result<Option<Self>, String> {
        let path = dir.join(SETTINGS_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map(Some)
                .map_err(|e| format!("parsing {}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("reading {}: {e}", path.display())),
        }
    }

    /// Write `dir/settings.toml` atomically (temporary file, fsync, rename).
    pub fn save(&self, dir: &std::path::Path) -> std::io::Result<()> {
        use std::io::Write;
        let text = toml::to_string(self).map_err(std::io::Error::other)?;
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{SETTINGS_FILE}.tmp"));
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, dir.join(SETTINGS_FILE))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Apply the values present to `live` (each validated like a control-plane change).
    pub fn apply(&self, live: &LiveSettings) -> Result<(), SettingsError> {
        if let Some(n) = self.max_connections_per_session {
            live.set_max_connections_per_session(n as u64)?;
        }
        if let Some(b) = self.exclusive_binding {
            live.set_exclusive_binding(b);
        }
        if let Some(l) = self.lease_time {
            live.set_lease_secs(l as u64)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_ranges() {
        let s = LiveSettings::default();
        assert_eq!(s.max_connections_per_session(), 16);
        assert!(s.set_max_connections_per_session(1024).is_ok());
        assert!(s.set_max_connections_per_session(0).is_ok());
        assert_eq!(
            s.set_max_connections_per_session(1025),
            Err(SettingsError::ConnLimitRange(1025))
        );
        assert_eq!(s.max_connections_per_session(), 0);
        assert!(s.set_lease_secs(0).is_err());
    }

    #[test]
    fn persisted_settings_round_trip_and_apply() {
        let dir = std::env::temp_dir().join(format!("ringnfs-settings-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(PersistedSettings::load(&dir), Ok(None));
        let p = PersistedSettings {
            max_connections_per_session: Some(3),
            lease_time: Some(30),
            ..Default::default()
        };
        p.save(&dir).unwrap();
        assert_eq!(PersistedSettings::load(&dir), Ok(Some(p.clone())));
        let live = LiveSettings::default();
        p.apply(&live).unwrap();
        assert_eq!(live.max_connections_per_session(), 3);
        assert_eq!(live.lease_secs(), 30);
        let bad = PersistedSettings {
            max_connections_per_session: Some(5000),
            ..Default::default()
        };
        assert!(bad.apply(&live).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
