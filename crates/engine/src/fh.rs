//! NFS file handles: a backend object handle wrapped with a format tag and a keyed MAC,
//! so a client can only present handles this server (with this key, kept in the state
//! directory across restarts) gave out. A forged handle can never name an object the
//! client did not reach through the export.

use siphasher::sip::SipHasher24;
use std::hash::Hasher;

use crate::consts::{NFS4_FHSIZE, NfsStatus, status};
use ringnfs_fs::ObjHandle;

const MAGIC: [u8; 2] = *b"RN";
const VERSION: u8 = 2;
const MAC_LEN: usize = 8;
const HEADER: usize = 4;

/// An NFSv4 file handle (at most 128 bytes), held inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FileHandle {
    len: u8,
    data: [u8; NFS4_FHSIZE],
}

impl std::fmt::Debug for FileHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileHandle({:02x?})", self.as_bytes())
    }
}

impl FileHandle {
    pub fn as_bytes(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }
}

/// Makes and checks file handles with the server's handle key.
#[derive(Clone)]
pub struct HandleCodec {
    key: [u8; 16],
}

impl HandleCodec {
    pub fn new(key: [u8; 16]) -> Self {
        Self { key }
    }

    fn mac(&self, body: &[u8]) -> [u8; MAC_LEN] {
        let mut h = SipHasher24::new_with_key(&self.key);
        h.write(body);
        h.finish().to_be_bytes()
    }

    pub fn encode(&self, obj: &ObjHandle) -> FileHandle {
        let o = obj.as_bytes();
        let mut data = [0u8; NFS4_FHSIZE];
        data[..2].copy_from_slice(&MAGIC);
        data[2] = VERSION;
        data[3] = o.len() as u8;
        data[HEADER..HEADER + o.len()].copy_from_slice(o);
        let body_len = HEADER + o.len();
        let mac = self.mac(&data[..body_len]);
        data[body_len..body_len + MAC_LEN].copy_from_slice(&mac);
        FileHandle {
            len: (body_len + MAC_LEN) as u8,
            data,
        }
    }

    /// A handle from a client: malformed → BADHANDLE; well-formed but not made with
    /// our key (another server, a deleted state directory, tampering) → STALE.
    pub fn decode(&self, b: &[u8]) -> Result<(ObjHandle, FileHandle), NfsStatus> {
        if b.len() < HEADER + MAC_LEN || b.len() > NFS4_FHSIZE || b[..2] != MAGIC || b[2] != VERSION
        {
            return Err(status::NFS4ERR_BADHANDLE);
        }
        let olen = b[3] as usize;
        if HEADER + olen + MAC_LEN != b.len() {
            return Err(status::NFS4ERR_BADHANDLE);
        }
        let body = &b[..HEADER + olen];
        if self.mac(body)[..] != b[HEADER + olen..] {
            return Err(status::NFS4ERR_STALE);
        }
        let obj = ObjHandle::new(&b[HEADER..HEADER + olen]).ok_or(status::NFS4ERR_BADHANDLE)?;
        let mut data = [0u8; NFS4_FHSIZE];
        data[..b.len()].copy_from_slice(b);
        Ok((
            obj,
            FileHandle {
                len: b.len() as u8,
                data,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_forgery() {
        let c = HandleCodec::new([7; 16]);
        let obj = ObjHandle::new(b"object-42").unwrap();
        let fh = c.encode(&obj);
        assert_eq!(c.decode(fh.as_bytes()).unwrap().0, obj);
        let mut forged = fh.as_bytes().to_vec();
        forged[5] ^= 1;
        assert_eq!(c.decode(&forged).unwrap_err(), status::NFS4ERR_STALE);
        assert_eq!(
            HandleCodec::new([8; 16]).decode(fh.as_bytes()).unwrap_err(),
            status::NFS4ERR_STALE
        );
        assert_eq!(c.decode(b"short").unwrap_err(), status::NFS4ERR_BADHANDLE);
        assert_eq!(c.decode(&[0; 129]).unwrap_err(), status::NFS4ERR_BADHANDLE);
        let mut bad_len = fh.as_bytes().to_vec();
        bad_len[3] = 50;
        assert_eq!(c.decode(&bad_len).unwrap_err(), status::NFS4ERR_BADHANDLE);
    }
}
