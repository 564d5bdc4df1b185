//! Connection bindings: which connection serves which session, in which direction.

use serde::Serialize;

use ringnfs_proto::nfs4::consts::{cdfc, cdfs};
use ringnfs_service::ConnId;

use super::ids::SessionId;

/// Channel direction(s) a connection serves for one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Fore = 0,
    Back = 1,
    Both = 2,
}

impl Direction {
    pub fn has_fore(self) -> bool {
        matches!(self, Direction::Fore | Direction::Both)
    }

    pub fn has_back(self) -> bool {
        matches!(self, Direction::Back | Direction::Both)
    }

    /// channel_dir_from_server4 value.
    pub fn to_cdfs(self) -> u32 {
        match self {
            Direction::Fore => cdfs::FORE,
            Direction::Back => cdfs::BACK,
            Direction::Both => cdfs::BOTH,
        }
    }

    /// What the server grants for a client's channel_dir_from_client4 (RFC 8881
    /// §18.34.3): FORE→FORE, BACK→BACK, FORE_OR_BOTH→BOTH, BACK_OR_BOTH→BOTH; any other
    /// value is invalid.
    pub fn grant_for(cdfc_value: u32) -> Option<Direction> {
        match cdfc_value {
            cdfc::FORE => Some(Direction::Fore),
            cdfc::BACK => Some(Direction::Back),
            cdfc::FORE_OR_BOTH | cdfc::BACK_OR_BOTH => Some(Direction::Both),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Direction::Fore => "fore",
            Direction::Back => "back",
            Direction::Both => "both",
        }
    }

    pub const ALL: [Direction; 3] = [Direction::Fore, Direction::Back, Direction::Both];
}

/// Why a binding ended (a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnbindReason {
    /// An operator removed this one binding.
    Explicit = 0,
    /// The connection closed.
    Disconnect = 1,
    /// The session was destroyed (DESTROY_SESSION or forced).
    SessionDestroy = 2,
    /// The client's lease expired.
    Reaper = 3,
    /// The connection was drained by an operator.
    Drain = 4,
    /// `exclusive_binding`: the connection was bound to another session.
    Rebind = 5,
}

impl UnbindReason {
    pub const ALL: [UnbindReason; 6] = [
        Self::Explicit,
        Self::Disconnect,
        Self::SessionDestroy,
        Self::Reaper,
        Self::Drain,
        Self::Rebind,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Explicit => "explicit",
            Self::Disconnect => "disconnect",
            Self::SessionDestroy => "session_destroy",
            Self::Reaper => "reaper",
            Self::Drain => "drain",
            Self::Rebind => "rebind",
        }
    }
}

/// One entry of a shard's binding slab.
#[derive(Debug, Clone)]
pub struct Binding {
    pub conn: ConnId,
    pub session: SessionId,
    pub dir: Direction,
    /// Wall-clock time of the bind (ms since the Unix epoch).
    pub bound_at_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_negotiation_table() {
        assert_eq!(Direction::grant_for(cdfc::FORE), Some(Direction::Fore));
        assert_eq!(Direction::grant_for(cdfc::BACK), Some(Direction::Back));
        assert_eq!(
            Direction::grant_for(cdfc::FORE_OR_BOTH),
            Some(Direction::Both)
        );
        assert_eq!(
            Direction::grant_for(cdfc::BACK_OR_BOTH),
            Some(Direction::Both)
        );
        for bad in [0, 4, 5, 6, 8, u32::MAX] {
            assert_eq!(Direction::grant_for(bad), None);
        }
    }
}
