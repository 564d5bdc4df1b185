//! Extended attributes of the memory backend: the `user.` namespace of an inode, names
//! without the prefix, bounded like a file system bounds them (a value at most
//! [`crate::XATTR_SIZE_MAX`]; names and values of one inode at most
//! [`INODE_XATTR_BYTES`] together, NoSpc beyond, as ext4 answers when its block is full).

use std::collections::BTreeMap;

use crate::{FsError, FsResult, XattrSet};

/// Names and values one inode may hold in all.
pub(super) const INODE_XATTR_BYTES: usize = 256 * 1024;

#[derive(Default)]
pub(super) struct Xattrs(BTreeMap<Vec<u8>, Vec<u8>>);

impl Xattrs {
    pub(super) fn get(&self, name: &[u8]) -> FsResult<Vec<u8>> {
        self.0.get(name).cloned().ok_or(FsError::NoXattr)
    }

    pub(super) fn set(&mut self, name: &[u8], value: &[u8], how: XattrSet) -> FsResult<()> {
        if value.len() > crate::XATTR_SIZE_MAX {
            return Err(FsError::Xattr2Big);
        }
        let old = self.0.get(name);
        match (how, old) {
            (XattrSet::Create, Some(_)) => return Err(FsError::Exist),
            (XattrSet::Replace, None) => return Err(FsError::NoXattr),
            _ => {}
        }
        let held = self.bytes() - old.map_or(0, |v| name.len() + v.len());
        if held + name.len() + value.len() > INODE_XATTR_BYTES {
            return Err(FsError::NoSpc);
        }
        self.0.insert(name.to_vec(), value.to_vec());
        Ok(())
    }

    pub(super) fn remove(&mut self, name: &[u8]) -> FsResult<()> {
        self.0.remove(name).map(drop).ok_or(FsError::NoXattr)
    }

    /// The names, in byte order.
    pub(super) fn names(&self) -> Vec<Vec<u8>> {
        self.0.keys().cloned().collect()
    }

    fn bytes(&self) -> usize {
        self.0.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_replace_either_and_the_bounds() {
        let mut x = Xattrs::default();
        assert_eq!(x.get(b"a"), Err(FsError::NoXattr));
        assert_eq!(x.set(b"a", b"1", XattrSet::Replace), Err(FsError::NoXattr));
        x.set(b"a", b"1", XattrSet::Create).unwrap();
        assert_eq!(x.set(b"a", b"2", XattrSet::Create), Err(FsError::Exist));
        x.set(b"a", b"3", XattrSet::Replace).unwrap();
        x.set(b"b", b"", XattrSet::Either).unwrap();
        assert_eq!(
            (x.get(b"a").unwrap(), x.names()),
            (b"3".to_vec(), vec![b"a".to_vec(), b"b".to_vec()])
        );
        let big = vec![0u8; crate::XATTR_SIZE_MAX + 1];
        assert_eq!(x.set(b"c", &big, XattrSet::Either), Err(FsError::Xattr2Big));
        let max = vec![0u8; crate::XATTR_SIZE_MAX];
        for i in 0..3u8 {
            x.set(&[b'v', i], &max, XattrSet::Either).unwrap();
        }
        assert_eq!(x.set(b"w", &max, XattrSet::Either), Err(FsError::NoSpc));
        // Replacing a value with one as large still fits.
        x.set(&[b'v', 0], &max, XattrSet::Replace).unwrap();
        x.remove(b"a").unwrap();
        assert_eq!(x.remove(b"a"), Err(FsError::NoXattr));
    }
}
