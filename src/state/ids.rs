//! Server-generated identifiers: session ids encode their shard, and both session ids and
//! client ids carry the boot verifier so ids from before a restart are recognised as stale.

use std::fmt;

use crate::nfs4::consts::NFS4_SESSIONID_SIZE;

/// A client id: boot verifier in the high 32 bits, a per-boot counter in the low 32.
pub type ClientId = u64;

pub fn make_client_id(boot: u32, seq: u32) -> ClientId {
    ((boot as u64) << 32) | seq as u64
}

pub fn client_id_boot(id: ClientId) -> u32 {
    (id >> 32) as u32
}

/// `[boot verifier: 4][shard: 2][random: 10]`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub [u8; NFS4_SESSIONID_SIZE]);

impl SessionId {
    pub fn new(boot: u32, shard: u16, random: [u8; 10]) -> Self {
        let mut b = [0u8; NFS4_SESSIONID_SIZE];
        b[..4].copy_from_slice(&boot.to_be_bytes());
        b[4..6].copy_from_slice(&shard.to_be_bytes());
        b[6..].copy_from_slice(&random);
        SessionId(b)
    }

    pub fn boot(&self) -> u32 {
        u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }

    pub fn shard(&self) -> u16 {
        u16::from_be_bytes([self.0[4], self.0[5]])
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != NFS4_SESSIONID_SIZE * 2 || !s.is_ascii() {
            return None;
        }
        let mut b = [0u8; NFS4_SESSIONID_SIZE];
        for (i, out) in b.iter_mut().enumerate() {
            *out = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
        }
        Some(SessionId(b))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.to_hex())
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_encodes_boot_and_shard() {
        let id = SessionId::new(0xdead_beef, 37, [7; 10]);
        assert_eq!(id.boot(), 0xdead_beef);
        assert_eq!(id.shard(), 37);
        assert_eq!(SessionId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(SessionId::from_hex("zz"), None);
        let c = make_client_id(5, 9);
        assert_eq!(client_id_boot(c), 5);
    }
}
