//! NFS file handles: a backend object handle wrapped with a format tag, the number of
//! its export and a keyed MAC over all of it, so a client can only present handles
//! this server (with this key, kept in the state directory across restarts) gave out.
//! A forged handle can never name an object the client did not reach through the
//! export, nor move an object from one export to another.
//!
//! Layout: `RN`, version 3, the export number (4 bytes, big-endian), the object
//! handle's length (1 byte), the object handle, the MAC (8 bytes). Version 2 (no export
//! number) is still read, as the export at "/".

use siphasher::sip::SipHasher24;
use std::hash::Hasher;

use crate::consts::{NFS4_FHSIZE, NfsStatus, status};
use ringnfs_fs::ObjHandle;

const MAGIC: [u8; 2] = *b"RN";
const VERSION: u8 = 3;
/// Handles from before exports had numbers.
const VERSION_UNNUMBERED: u8 = 2;
const MAC_LEN: usize = 8;
const HEADER: usize = 8;
const HEADER_UNNUMBERED: usize = 4;

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

/// Makes and checks the file handles of one export with the server's handle key.
#[derive(Clone)]
pub struct HandleCodec {
    key: [u8; 16],
    export: u32,
}

impl HandleCodec {
    pub fn new(key: [u8; 16], export: u32) -> Self {
        Self { key, export }
    }

    /// The export a well-formed handle names (not yet checked: [`Self::decode`] with
    /// that export's codec does); None for a handle from before handles named one.
    pub fn export_of(b: &[u8]) -> Result<Option<u32>, NfsStatus> {
        if b.len() < HEADER_UNNUMBERED + MAC_LEN || b.len() > NFS4_FHSIZE || b[..2] != MAGIC {
            return Err(status::NFS4ERR_BADHANDLE);
        }
        match b[2] {
            VERSION if b.len() >= HEADER + MAC_LEN => Ok(Some(u32::from_be_bytes(
                b[3..7].try_into().expect("4 bytes"),
            ))),
            VERSION_UNNUMBERED => Ok(None),
            _ => Err(status::NFS4ERR_BADHANDLE),
        }
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
        data[3..7].copy_from_slice(&self.export.to_be_bytes());
        data[7] = o.len() as u8;
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
    /// A handle of another export (its number differs) is STALE too.
    pub fn decode(&self, b: &[u8]) -> Result<(ObjHandle, FileHandle), NfsStatus> {
        let header = match Self::export_of(b)? {
            Some(id) if id == self.export => HEADER,
            Some(_) => return Err(status::NFS4ERR_STALE),
            None => HEADER_UNNUMBERED,
        };
        let olen = b[header - 1] as usize;
        if header + olen + MAC_LEN != b.len() {
            return Err(status::NFS4ERR_BADHANDLE);
        }
        let body = &b[..header + olen];
        if self.mac(body)[..] != b[header + olen..] {
            return Err(status::NFS4ERR_STALE);
        }
        let obj = ObjHandle::new(&b[header..header + olen]).ok_or(status::NFS4ERR_BADHANDLE)?;
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
        let c = HandleCodec::new([7; 16], 5);
        let obj = ObjHandle::new(b"object-42").unwrap();
        let fh = c.encode(&obj);
        assert_eq!(c.decode(fh.as_bytes()).unwrap().0, obj);
        let mut forged = fh.as_bytes().to_vec();
        forged[5] ^= 1;
        assert_eq!(c.decode(&forged).unwrap_err(), status::NFS4ERR_STALE);
        assert_eq!(
            HandleCodec::new([8; 16], 5)
                .decode(fh.as_bytes())
                .unwrap_err(),
            status::NFS4ERR_STALE
        );
        // Another export's codec, same key: stale; and relabelling breaks the MAC.
        assert_eq!(
            HandleCodec::new([7; 16], 6)
                .decode(fh.as_bytes())
                .unwrap_err(),
            status::NFS4ERR_STALE
        );
        let mut moved = fh.as_bytes().to_vec();
        moved[6] = 6;
        assert_eq!(HandleCodec::export_of(&moved), Ok(Some(6)));
        assert_eq!(
            HandleCodec::new([7; 16], 6).decode(&moved).unwrap_err(),
            status::NFS4ERR_STALE
        );
        assert_eq!(c.decode(b"short").unwrap_err(), status::NFS4ERR_BADHANDLE);
        assert_eq!(c.decode(&[0; 129]).unwrap_err(), status::NFS4ERR_BADHANDLE);
        let mut bad_len = fh.as_bytes().to_vec();
        bad_len[7] = 50;
        assert_eq!(c.decode(&bad_len).unwrap_err(), status::NFS4ERR_BADHANDLE);
    }

    #[test]
    fn unnumbered_handles_still_decode() {
        // A version 2 handle, as an earlier ringnfs made them.
        let key = [7; 16];
        let obj = b"object-42";
        let mut b = b"RN\x02".to_vec();
        b.push(obj.len() as u8);
        b.extend_from_slice(obj);
        let mut h = SipHasher24::new_with_key(&key);
        h.write(&b);
        b.extend_from_slice(&h.finish().to_be_bytes());
        assert_eq!(HandleCodec::export_of(&b), Ok(None));
        let (o, fh) = HandleCodec::new(key, 1).decode(&b).unwrap();
        assert_eq!(o.as_bytes(), obj);
        assert_eq!(fh.as_bytes(), &b[..]);
    }
}
