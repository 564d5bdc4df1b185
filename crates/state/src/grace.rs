//! The optional grace period after a restart (RFC 8881 §8.4.2): clients that held state
//! before may reclaim it with OPEN CLAIM_PREVIOUS and LOCK reclaim; everyone else's
//! OPEN/LOCK wait with NFS4ERR_GRACE. Which clients may reclaim is kept on stable
//! storage: the owners of confirmed clients, one hex line each, in `state_dir/clients`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::locks::{CheckInvariants, RankedMutex, rank};

pub struct Grace {
    /// Grace ends at this monotonic time (ms since start); 0 = no grace period.
    until_ms: u64,
    file: Option<PathBuf>,
    /// Owners confirmed before this start: the only ones allowed to reclaim.
    previous: HashSet<Vec<u8>>,
    /// Owners confirmed now, persisted on every change.
    current: RankedMutex<HashSet<Vec<u8>>, { rank::GRACE_OWNERS }>,
}

/// A set of owners has nothing to check.
impl CheckInvariants for HashSet<Vec<u8>> {}

use ringnfs_proto::ids::hex as to_hex;

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok())
        .collect()
}

impl Grace {
    /// `grace_secs` 0 = no grace period. Without a state directory nothing persists and
    /// nobody can reclaim.
    pub fn new(state_dir: Option<&Path>, grace_secs: u32) -> Self {
        let file = state_dir.map(|d| d.join("clients"));
        let previous: HashSet<Vec<u8>> = file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .map(|text| text.lines().filter_map(|l| from_hex(l.trim())).collect())
            .unwrap_or_default();
        Self {
            until_ms: grace_secs as u64 * 1000,
            file,
            current: RankedMutex::new(previous.clone()),
            previous,
        }
    }

    pub fn in_grace(&self, now_ms: u64) -> bool {
        now_ms < self.until_ms
    }

    /// May a client with this owner reclaim (it held state before the restart)?
    pub fn may_reclaim(&self, owner: &[u8], now_ms: u64) -> bool {
        self.in_grace(now_ms) && self.previous.contains(owner)
    }

    pub fn client_confirmed(&self, owner: &[u8]) {
        let mut cur = self.current.lock();
        if cur.insert(owner.to_vec()) {
            self.persist(&cur);
        }
    }

    pub fn client_gone(&self, owner: &[u8]) {
        let mut cur = self.current.lock();
        if cur.remove(owner) {
            self.persist(&cur);
        }
    }

    /// Rewrite the owner list (write then rename, so a crash leaves the old or new list).
    fn persist(&self, owners: &HashSet<Vec<u8>>) {
        let Some(file) = &self.file else {
            return;
        };
        let mut text: Vec<String> = owners.iter().map(|o| to_hex(o)).collect();
        text.sort();
        let tmp = file.with_extension("tmp");
        let result =
            std::fs::write(&tmp, text.join("\n") + "\n").and_then(|()| std::fs::rename(&tmp, file));
        if let Err(e) = result {
            tracing::warn!(error = %e, path = %file.display(), "cannot persist the client list");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_survive_a_restart_and_only_they_reclaim() {
        let dir = std::env::temp_dir().join(format!("ringnfs-grace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let g = Grace::new(Some(&dir), 0);
        g.client_confirmed(b"alice");
        g.client_confirmed(b"bob");
        g.client_gone(b"bob");
        assert!(!g.may_reclaim(b"alice", 0), "no grace period configured");
        let g2 = Grace::new(Some(&dir), 10);
        assert!(g2.in_grace(5_000));
        assert!(g2.may_reclaim(b"alice", 5_000));
        assert!(!g2.may_reclaim(b"bob", 5_000));
        assert!(!g2.may_reclaim(b"alice", 10_000), "grace over");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
