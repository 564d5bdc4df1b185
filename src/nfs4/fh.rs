//! File handles. Until the file backends land, the only object is the pseudo-root
//! directory; handles carry a magic and version so foreign bytes are told apart from
//! stale ones.

use crate::nfs4::consts::{NFS4_FHSIZE, status};

const MAGIC: &[u8; 4] = b"RNFS";
const VERSION: u8 = 1;
const KIND_PSEUDO_ROOT: u8 = 0;

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
    pub fn from_bytes(b: &[u8]) -> Result<Self, u32> {
        if b.is_empty() || b.len() > NFS4_FHSIZE {
            return Err(status::NFS4ERR_BADHANDLE);
        }
        let mut data = [0u8; NFS4_FHSIZE];
        data[..b.len()].copy_from_slice(b);
        Ok(Self {
            len: b.len() as u8,
            data,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }

    /// The handle of the pseudo-root `/`.
    pub fn pseudo_root() -> Self {
        let mut b = Vec::with_capacity(16);
        b.extend_from_slice(MAGIC);
        b.push(VERSION);
        b.push(KIND_PSEUDO_ROOT);
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&1u64.to_be_bytes());
        Self::from_bytes(&b).expect("16-byte handle fits")
    }

    /// Check a handle a client sent: ours and live, or the right error.
    pub fn validate(b: &[u8]) -> Result<Self, u32> {
        let fh = Self::from_bytes(b)?;
        if b.len() < 6 || &b[..4] != MAGIC || b[4] != VERSION {
            return Err(status::NFS4ERR_BADHANDLE);
        }
        if fh != Self::pseudo_root() {
            return Err(status::NFS4ERR_STALE);
        }
        Ok(fh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let root = FileHandle::pseudo_root();
        assert_eq!(FileHandle::validate(root.as_bytes()), Ok(root));
        assert_eq!(FileHandle::validate(&[]), Err(status::NFS4ERR_BADHANDLE));
        assert_eq!(
            FileHandle::validate(&[0; 129]),
            Err(status::NFS4ERR_BADHANDLE)
        );
        assert_eq!(
            FileHandle::validate(b"garbage!"),
            Err(status::NFS4ERR_BADHANDLE)
        );
        let mut other = root.as_bytes().to_vec();
        other[15] = 9;
        assert_eq!(FileHandle::validate(&other), Err(status::NFS4ERR_STALE));
    }
}
