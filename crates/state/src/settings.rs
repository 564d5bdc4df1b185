//! Settings that can change while the server runs. Read on the request path with relaxed
//! atomics: a change applies to the next bind, never to one in progress.
//!
//! [`Range`] is the one range check of every integer option: `ringnfs serve` checks its
//! command line and config file with it (the option table in the `ringnfs` crate's
//! `options` module), and the setters here check `PATCH /api/v1/settings` with the same
//! ranges ([`MAX_CONNECTIONS_PER_SESSION_RANGE`], [`LEASE_TIME_RANGE`]).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

pub const DEFAULT_MAX_CONNECTIONS_PER_SESSION: u32 = 16;
/// Valid `max_connections_per_session`.
pub const MAX_CONNECTIONS_PER_SESSION_RANGE: Range = Range::new(0, 1024).zero_means("unlimited");
pub const DEFAULT_LEASE_SECS: u32 = 90;
/// Valid `lease_time`, seconds.
pub const LEASE_TIME_RANGE: Range = Range::new(1, 3600);

/// The values an integer option or setting takes: `min..=max`, and what 0 means when 0
/// is one of them and special (`0 = unlimited`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub min: u64,
    pub max: u64,
    pub zero: Option<&'static str>,
}

impl Range {
    pub const fn new(min: u64, max: u64) -> Self {
        Range {
            min,
            max,
            zero: None,
        }
    }

    /// The same range, where 0 means `what` (shown as `0 = what`).
    pub const fn zero_means(self, what: &'static str) -> Self {
        Range {
            zero: Some(what),
            ..self
        }
    }

    /// `v` when it is in the range; otherwise an error naming `name` (a config key, a
    /// setting or a flag), the range and `v`.
    pub fn check(&self, name: &str, v: impl Into<i128>) -> Result<u64, RangeError> {
        let v = v.into();
        if (i128::from(self.min)..=i128::from(self.max)).contains(&v) {
            Ok(v as u64)
        } else {
            Err(RangeError {
                name: name.to_string(),
                range: *self,
                got: v,
            })
        }
    }

    /// "must be between 0 and 1024 (0 = unlimited)".
    pub fn requirement(&self) -> String {
        let zero = self.zero.map(|z| format!(" (0 = {z})")).unwrap_or_default();
        format!("must be between {} and {}{zero}", self.min, self.max)
    }
}

/// As `--help` shows it: "0–1024, 0 = unlimited".
impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}–{}", self.min, self.max)?;
        match self.zero {
            Some(z) => write!(f, ", 0 = {z}"),
            None => Ok(()),
        }
    }
}

/// A value outside its [`Range`]: "lease_time must be between 1 and 3600, got 0".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} {}, got {got}", range.requirement())]
pub struct RangeError {
    pub name: String,
    pub range: Range,
    pub got: i128,
}

/// What a SEQUENCE gets when the implicit bind of its connection would exceed
/// `max_connections_per_session`. The bind is refused either way (counted as a `limit`
/// refusal); explicit BIND_CONN_TO_SESSION over the limit always gets NFS4ERR_DELAY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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
    delegations: AtomicBool,
}

/// A setting out of its range (the message names the setting's key).
pub type SettingsError = RangeError;

impl Default for LiveSettings {
    fn default() -> Self {
        Self {
            max_connections_per_session: AtomicU32::new(DEFAULT_MAX_CONNECTIONS_PER_SESSION),
            exclusive_binding: AtomicBool::new(false),
            lease_secs: AtomicU32::new(DEFAULT_LEASE_SECS),
            delay_over_limit: AtomicBool::new(false),
            delegations: AtomicBool::new(false),
        }
    }
}

impl LiveSettings {
    /// 0 means unlimited.
    pub fn max_connections_per_session(&self) -> u32 {
        self.max_connections_per_session.load(Ordering::Relaxed)
    }

    pub fn set_max_connections_per_session(&self, n: u64) -> Result<(), SettingsError> {
        let n = MAX_CONNECTIONS_PER_SESSION_RANGE.check("max_connections_per_session", n)?;
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

    /// OPEN grants delegations (RFC 8881 §10.4). Turning it off grants no new ones; the
    /// ones held stay until returned or recalled.
    pub fn delegations(&self) -> bool {
        self.delegations.load(Ordering::Relaxed)
    }

    pub fn set_delegations(&self, on: bool) {
        self.delegations.store(on, Ordering::Relaxed);
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
        let secs = LEASE_TIME_RANGE.check("lease_time", secs)?;
        self.lease_secs.store(secs as u32, Ordering::Relaxed);
        Ok(())
    }
}

/// Name of the file in the state directory that keeps settings changed at run time.
pub const SETTINGS_FILE: &str = "settings.toml";

/// The keys of the settings that change at run time (REST names, also the keys of
/// `settings.toml`).
pub const SETTING_KEYS: [&str; 5] = [
    "max_connections_per_session",
    "exclusive_binding",
    "lease_time",
    "log_level",
    "delegations",
];

/// Where the start value of a setting came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Source {
    /// Nobody gave one: the built-in default.
    #[default]
    Default,
    /// `ringnfs serve --flag`.
    CommandLine,
    /// `ringnfs serve --config FILE`.
    ConfigFile(std::path::PathBuf),
    /// An environment variable (`RUST_LOG` for the log level).
    Environment(String),
}

impl Source {
    /// Given by the operator at start (not the built-in default).
    pub fn is_explicit(&self) -> bool {
        *self != Source::Default
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("the default"),
            Source::CommandLine => f.write_str("the command line"),
            Source::ConfigFile(p) => write!(f, "the config file {}", p.display()),
            Source::Environment(v) => write!(f, "the environment variable {v}"),
        }
    }
}

/// Where each live setting's start value came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingSources {
    pub max_connections_per_session: Source,
    pub exclusive_binding: Source,
    pub lease_time: Source,
    pub log_level: Source,
    pub delegations: Source,
}

/// The live settings' start values (command line, config file, environment or default),
/// before any persisted value: what `DELETE /api/v1/settings/persisted` goes back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartSettings {
    pub max_connections_per_session: u32,
    pub exclusive_binding: bool,
    pub lease_time: u32,
    pub log_level: String,
    pub delegations: bool,
}

/// A persisted value that lost to a start value given explicitly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overridden {
    pub key: &'static str,
    /// The start value that wins, and where it came from.
    pub start: String,
    pub source: Source,
    /// The persisted value that is not used.
    pub persisted: String,
}

/// The settings an operator changed through the control plane, as kept in
/// `state_dir/settings.toml`, so a change made while the server ran survives a restart.
/// At start a persisted value is used unless the same setting was given explicitly (on
/// the command line, in the config file, or `RUST_LOG` for the log level): then the
/// explicit value wins and a warning names both ([`PersistedSettings::resolve`]).
/// `DELETE /api/v1/settings/persisted[/KEY]` (`ringnfs ctl settings reset [KEY]`) drops
/// persisted values.
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegations: Option<bool>,
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

    /// The values present, as `key=value` separated by commas (for logs).
    pub fn describe(&self) -> String {
        let mut v = Vec::new();
        if let Some(n) = self.max_connections_per_session {
            v.push(format!("max_connections_per_session={n}"));
        }
        if let Some(b) = self.exclusive_binding {
            v.push(format!("exclusive_binding={b}"));
        }
        if let Some(l) = self.lease_time {
            v.push(format!("lease_time={l}"));
        }
        if let Some(l) = &self.log_level {
            v.push(format!("log_level={l:?}"));
        }
        if let Some(b) = self.delegations {
            v.push(format!("delegations={b}"));
        }
        v.join(",")
    }

    /// No value persisted.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Drop the value of `key` (one of [`SETTING_KEYS`]).
    pub fn remove(&mut self, key: &str) -> Result<(), String> {
        match key {
            "max_connections_per_session" => self.max_connections_per_session = None,
            "exclusive_binding" => self.exclusive_binding = None,
            "lease_time" => self.lease_time = None,
            "log_level" => self.log_level = None,
            "delegations" => self.delegations = None,
            _ => return Err(unknown_key(key)),
        }
        Ok(())
    }

    /// Split into the values to apply at start (settings whose start value is the
    /// default) and the ones an explicit start value beats (listed when they differ).
    pub fn resolve(
        &self,
        start: &StartSettings,
        sources: &SettingSources,
    ) -> (PersistedSettings, Vec<Overridden>) {
        fn pick<T: Clone + PartialEq + ToString>(
            key: &'static str,
            saved: &Option<T>,
            start: &T,
            source: &Source,
            overridden: &mut Vec<Overridden>,
        ) -> Option<T> {
            let v = saved.as_ref()?;
            if !source.is_explicit() {
                return Some(v.clone());
            }
            if v != start {
                overridden.push(Overridden {
                    key,
                    start: start.to_string(),
                    source: source.clone(),
                    persisted: v.to_string(),
                });
            }
            None
        }
        let mut o = Vec::new();
        let apply = PersistedSettings {
            max_connections_per_session: pick(
                "max_connections_per_session",
                &self.max_connections_per_session,
                &start.max_connections_per_session,
                &sources.max_connections_per_session,
                &mut o,
            ),
            exclusive_binding: pick(
                "exclusive_binding",
                &self.exclusive_binding,
                &start.exclusive_binding,
                &sources.exclusive_binding,
                &mut o,
            ),
            lease_time: pick(
                "lease_time",
                &self.lease_time,
                &start.lease_time,
                &sources.lease_time,
                &mut o,
            ),
            log_level: pick(
                "log_level",
                &self.log_level,
                &start.log_level,
                &sources.log_level,
                &mut o,
            ),
            delegations: pick(
                "delegations",
                &self.delegations,
                &start.delegations,
                &sources.delegations,
                &mut o,
            ),
        };
        (apply, o)
    }

    /// Write `dir/settings.toml` atomically (temporary file, fsync, rename); with no
    /// value left, remove the file.
    pub fn save(&self, dir: &std::path::Path) -> std::io::Result<()> {
        use std::io::Write;
        if self.is_empty() {
            return match std::fs::remove_file(dir.join(SETTINGS_FILE)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
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
        if let Some(b) = self.delegations {
            live.set_delegations(b);
        }
        Ok(())
    }
}

/// The message for a key that is not a setting.
pub fn unknown_key(key: &str) -> String {
    format!(
        "unknown setting {key:?} (one of: {})",
        SETTING_KEYS.join(", ")
    )
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
            s.set_max_connections_per_session(1025)
                .unwrap_err()
                .to_string(),
            "max_connections_per_session must be between 0 and 1024 (0 = unlimited), got 1025"
        );
        assert_eq!(s.max_connections_per_session(), 0);
        assert_eq!(
            s.set_lease_secs(0).unwrap_err().to_string(),
            "lease_time must be between 1 and 3600, got 0"
        );
        assert_eq!(s.lease_secs(), DEFAULT_LEASE_SECS);
    }

    #[test]
    fn ranges_check_and_show_themselves() {
        let r = MAX_CONNECTIONS_PER_SESSION_RANGE;
        assert_eq!(r.to_string(), "0–1024, 0 = unlimited");
        assert_eq!(LEASE_TIME_RANGE.to_string(), "1–3600");
        assert_eq!(r.check("k", 1024u32), Ok(1024));
        assert_eq!(
            r.check("k", -1i64).unwrap_err().to_string(),
            "k must be between 0 and 1024 (0 = unlimited), got -1"
        );
        assert!(Range::new(1, u64::MAX).check("k", u64::MAX).is_ok());
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

    #[test]
    fn explicit_start_values_beat_persisted_ones() {
        let saved = PersistedSettings {
            max_connections_per_session: Some(3),
            exclusive_binding: Some(true),
            lease_time: Some(60),
            log_level: Some("debug".into()),
            delegations: Some(true),
        };
        let start = StartSettings {
            max_connections_per_session: 16,
            exclusive_binding: true,
            lease_time: 30,
            log_level: "info".into(),
            delegations: false,
        };
        // Nothing explicit: every persisted value applies.
        let (apply, o) = saved.resolve(&start, &SettingSources::default());
        assert_eq!(apply, saved);
        assert!(o.is_empty());
        // Explicit lease time and exclusive binding: they win; only the lease time
        // differs, so only it is reported.
        let sources = SettingSources {
            lease_time: Source::CommandLine,
            exclusive_binding: Source::ConfigFile("r.toml".into()),
            ..Default::default()
        };
        let (apply, o) = saved.resolve(&start, &sources);
        assert_eq!(
            apply,
            PersistedSettings {
                max_connections_per_session: Some(3),
                log_level: Some("debug".into()),
                delegations: Some(true),
                ..Default::default()
            }
        );
        assert_eq!(
            o,
            vec![Overridden {
                key: "lease_time",
                start: "30".into(),
                source: Source::CommandLine,
                persisted: "60".into(),
            }]
        );
        assert_eq!(
            Source::ConfigFile("r.toml".into()).to_string(),
            "the config file r.toml"
        );
    }

    #[test]
    fn remove_drops_one_key_and_an_empty_file_goes_away() {
        let dir = std::env::temp_dir().join(format!("ringnfs-reset-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut p = PersistedSettings {
            lease_time: Some(30),
            log_level: Some("debug".into()),
            ..Default::default()
        };
        p.remove("lease_time").unwrap();
        assert_eq!(p.lease_time, None);
        assert!(
            p.remove("lease-time")
                .unwrap_err()
                .contains("unknown setting")
        );
        p.save(&dir).unwrap();
        assert!(dir.join(SETTINGS_FILE).exists());
        p.remove("log_level").unwrap();
        assert!(p.is_empty());
        p.save(&dir).unwrap();
        assert!(!dir.join(SETTINGS_FILE).exists());
        p.save(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
