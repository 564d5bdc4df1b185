//! Settings that can change while the server runs. Read on the request path with relaxed
//! atomics: a change applies to the next bind, never to one in progress.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

pub const DEFAULT_MAX_CONNECTIONS_PER_SESSION: u32 = 16;
pub const MAX_CONNECTIONS_PER_SESSION_LIMIT: u32 = 1024;
pub const DEFAULT_LEASE_SECS: u32 = 90;

#[derive(Debug)]
pub struct LiveSettings {
    max_connections_per_session: AtomicU32,
    exclusive_binding: AtomicBool,
    lease_secs: AtomicU32,
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
}
