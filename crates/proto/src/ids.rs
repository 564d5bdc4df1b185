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

/// How a client id is printed everywhere (logs, `ringnfs ctl`, the REST API's `*_str`
/// fields): `0x` and 16 hex digits, so its upper half (the boot verifier) reads like the
/// first 8 hex digits of the client's session ids.
pub fn client_id_str(id: ClientId) -> String {
    format!("{id:#018x}")
}

/// A client id as printed (`0x` hex) or in decimal.
pub fn parse_client_id(s: &str) -> Option<ClientId> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) if !h.starts_with('+') => u64::from_str_radix(h, 16).ok(),
        Some(_) => None,
        None if !s.starts_with('+') => s.parse().ok(),
        None => None,
    }
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

    #[inline]
    pub fn boot(&self) -> u32 {
        u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }

    #[inline]
    pub fn shard(&self) -> u16 {
        u16::from_be_bytes([self.0[4], self.0[5]])
    }

    pub fn to_hex(&self) -> String {
        hex(&self.0)
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

/// Lower-case hex of `bytes`, as logs and the control plane print ids and handles.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_print_as_hex_and_parse_both_ways() {
        let id = make_client_id(0x6b07_96b4, 2);
        assert_eq!(client_id_str(id), "0x6b0796b400000002");
        assert_eq!(client_id_str(5), "0x0000000000000005");
        assert_eq!(parse_client_id("0x6b0796b400000002"), Some(id));
        assert_eq!(parse_client_id("0X6B0796B400000002"), Some(id));
        assert_eq!(parse_client_id(&id.to_string()), Some(id));
        assert_eq!(parse_client_id(&u64::MAX.to_string()), Some(u64::MAX));
        for bad in [
            "",
            "0x",
            "x1",
            "+5",
            "0x+5",
            "-1",
            "18446744073709551616",
            "0x1g",
        ] {
            assert_eq!(parse_client_id(bad), None, "{bad:?}");
        }
    }

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
