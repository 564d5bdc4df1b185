//! All exports, in one NFSv4 pseudo file system (RFC 8881 §7.3): the directories
//! above the exports' pseudo paths are a small read-only in-memory tree, and a LOOKUP
//! of an export's last path component crosses into the export's root (a junction).
//! One export at "/" is the whole tree: no pseudo file system then.
//!
//! The set is immutable; a live change builds a new one and swaps it in ([`Exports`]).
//! A COMPOUND works on the set it started with; an export that is in neither set any
//! more makes its handles NFS4ERR_STALE from the next PUTFH on.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use ringnfs_fs::{Backend, Caller, CreateKind, ObjHandle, SetAttrs};

use super::{Export, ExportId, ExportOptions, PSEUDO_ID};
use crate::consts::{NfsStatus, status};
use crate::fh::{FileHandle, HandleCodec};

/// The number of an export that was given none: a hash of its pseudo path, so it stays
/// the same across restarts and when the export is removed and added again.
pub fn id_for_path(path: &[Vec<u8>]) -> ExportId {
    // FNV-1a over "/a/b".
    let mut h: u32 = 0x811c_9dc5;
    let mut eat = |b: u8| {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    };
    if path.is_empty() {
        eat(b'/');
    }
    for c in path {
        eat(b'/');
        c.iter().copied().for_each(&mut eat);
    }
    if h == PSEUDO_ID { 1 } else { h }
}

/// A pseudo path from text: absolute, no empty, `.` or `..` components.
pub fn parse_pseudo_path(s: &str) -> Result<Vec<Vec<u8>>, String> {
    if !s.starts_with('/') {
        return Err(format!("pseudo path {s:?} must start with /"));
    }
    let mut out = Vec::new();
    for c in s.split('/').filter(|c| !c.is_empty()) {
        if c == "." || c == ".." || c.len() > 255 {
            return Err(format!("pseudo path {s:?}: component {c:?} is not allowed"));
        }
        out.push(c.as_bytes().to_vec());
    }
    Ok(out)
}

/// The text of a pseudo path ("/" for the root).
pub(crate) fn path_text(path: &[Vec<u8>]) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.iter()
        .map(|c| format!("/{}", String::from_utf8_lossy(c)))
        .collect()
}

/// The checks of a set of exports that need no backend, each a (pseudo path, number):
/// numbers unique and not 0, pseudo paths unique and none inside another ("/" only
/// alone). Run before any backend is opened, so a refused change opens nothing.
pub fn check_places(places: &[(&[Vec<u8>], ExportId)]) -> Result<(), String> {
    for (i, (a, _)) in places.iter().enumerate() {
        for (b, _) in &places[i + 1..] {
            let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
            if long.starts_with(short) {
                let why = if short == long {
                    "the same pseudo path"
                } else if short.is_empty() {
                    "pseudo paths inside one another: the export at / is the whole tree; give \
                     it a pseudo path of its own (e.g. /data) to serve others beside it"
                } else {
                    "pseudo paths inside one another (exports do not nest)"
                };
                return Err(format!(
                    "exports {} and {} have {why}",
                    path_text(short),
                    path_text(long)
                ));
            }
        }
    }
    let mut by_id: HashMap<ExportId, &[Vec<u8>]> = HashMap::new();
    for (path, id) in places {
        if *id == PSEUDO_ID {
            return Err(format!(
                "export {}: fsid 0 is the pseudo root's; give it another fsid",
                path_text(path)
            ));
        }
        if let Some(other) = by_id.insert(*id, path) {
            return Err(format!(
                "exports {} and {} have the same fsid {id}; give one of them another `fsid`",
                path_text(other),
                path_text(path),
            ));
        }
    }
    Ok(())
}

pub struct ExportSet {
    /// What PUTROOTFH gives: the pseudo file system, or the one export at "/".
    root: Arc<Export>,
    /// Every export by number, ascending (the pseudo file system included).
    all: Vec<Arc<Export>>,
    /// Pseudo directory → the export mounted there.
    junctions: HashMap<ObjHandle, ExportId>,
    /// Export → the pseudo directory it is mounted on.
    mounts: HashMap<ExportId, ObjHandle>,
}

impl ExportSet {
    /// One export, at "/" whatever its path says.
    pub fn single(export: Arc<Export>) -> Self {
        Self {
            root: export.clone(),
            all: vec![export],
            junctions: HashMap::new(),
            mounts: HashMap::new(),
        }
    }

    /// The exports, checked: numbers unique and not 0, pseudo paths unique and none
    /// inside another, "/" only alone. Every export must have been made with `key`.
    pub fn build(exports: Vec<Arc<Export>>, key: [u8; 16]) -> Result<Self, String> {
        if exports.is_empty() {
            return Err("no exports".into());
        }
        let places: Vec<(&[Vec<u8>], ExportId)> =
            exports.iter().map(|e| (&e.path[..], e.id)).collect();
        check_places(&places)?;
        if exports.len() == 1 && exports[0].path.is_empty() {
            return Ok(Self::single(exports.into_iter().next().expect("one")));
        }
        let pseudo = Arc::new(Export::at(
            Arc::new(super::memory_backend(0o755)),
            ExportOptions {
                read_only: true,
                ..ExportOptions::default()
            },
            key,
            PSEUDO_ID,
            Vec::new(),
        ));
        let mut junctions = HashMap::new();
        let mut mounts = HashMap::new();
        for e in &exports {
            let node = mkdir_p(&*pseudo.backend, &pseudo.root, &e.path)
                .map_err(|err| format!("pseudo path {}: {err}", e.pseudo_path()))?;
            junctions.insert(node, e.id);
            mounts.insert(e.id, node);
        }
        let mut all = exports;
        all.push(pseudo.clone());
        all.sort_by_key(|e| e.id);
        Ok(Self {
            root: pseudo,
            all,
            junctions,
            mounts,
        })
    }

    /// What PUTROOTFH gives.
    pub fn root(&self) -> &Arc<Export> {
        &self.root
    }

    /// Whether there is a pseudo file system above the exports.
    pub fn has_pseudo(&self) -> bool {
        self.root.id == PSEUDO_ID
    }

    pub fn get(&self, id: ExportId) -> Option<&Arc<Export>> {
        self.all
            .binary_search_by_key(&id, |e| e.id)
            .ok()
            .map(|i| &self.all[i])
    }

    /// The exports, the pseudo file system left out, by number.
    pub fn exports(&self) -> impl Iterator<Item = &Arc<Export>> {
        self.all.iter().filter(|e| e.id != PSEUDO_ID)
    }

    /// A handle from a client: its export and object. Malformed → BADHANDLE; an
    /// export this set does not have (removed), or not made with our key → STALE.
    pub fn decode(&self, b: &[u8]) -> Result<(&Arc<Export>, ObjHandle, FileHandle), NfsStatus> {
        let id = match HandleCodec::export_of(b)? {
            Some(id) => id,
            // A handle from before handles named their export: the export at "/".
            None if !self.has_pseudo() => self.root.id,
            None => return Err(status::NFS4ERR_STALE),
        };
        let e = self.get(id).ok_or(status::NFS4ERR_STALE)?;
        let (obj, fh) = e.handles.decode(b)?;
        Ok((e, obj, fh))
    }

    /// The export mounted on `obj`, an object of export `dir`: one only where `dir` is
    /// the pseudo file system and `obj` one of its directories an export is mounted on.
    pub fn junction(&self, dir: &Export, obj: &ObjHandle) -> Option<&Arc<Export>> {
        if dir.id != PSEUDO_ID {
            return None;
        }
        self.junctions.get(obj).and_then(|id| self.get(*id))
    }

    /// The pseudo directory `obj` is mounted on, when it is the root of export `e` (none
    /// for any other object, and for the one export at "/").
    pub fn mount_point(&self, e: &Export, obj: &ObjHandle) -> Option<&ObjHandle> {
        if *obj != e.root {
            return None;
        }
        self.mounts.get(&e.id)
    }
}

/// Make the directories of `path` under `root` (those that exist are kept); the last.
fn mkdir_p(fs: &dyn Backend, root: &ObjHandle, path: &[Vec<u8>]) -> Result<ObjHandle, String> {
    let root_caller = Caller::default();
    let mut at = *root;
    for c in path {
        at = match fs.lookup(&at, c) {
            Ok(h) => h,
            Err(_) => fs
                .create(
                    &at,
                    c,
                    &CreateKind::Directory,
                    &SetAttrs {
                        mode: Some(0o755),
                        ..SetAttrs::default()
                    },
                    &root_caller,
                )
                .map_err(|e| e.to_string())?,
        };
    }
    Ok(at)
}

/// The exports being served; swapped whole by a live change. A COMPOUND loads the set
/// once (a cheap, lock-free read) and keeps it to its end.
pub struct Exports {
    set: ArcSwap<ExportSet>,
}

impl Exports {
    pub fn new(set: ExportSet) -> Self {
        Self {
            set: ArcSwap::from_pointee(set),
        }
    }

    pub fn load(&self) -> arc_swap::Guard<Arc<ExportSet>> {
        self.set.load()
    }

    /// Serve `set` from now on.
    pub fn replace(&self, set: ExportSet) {
        self.set.store(Arc::new(set));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(path: &str, id: Option<ExportId>, key: [u8; 16]) -> Arc<Export> {
        let p = parse_pseudo_path(path).unwrap();
        let id = id.unwrap_or_else(|| id_for_path(&p));
        Arc::new(Export::at(
            Arc::new(super::super::memory_backend(0o777)),
            ExportOptions::default(),
            key,
            id,
            p,
        ))
    }

    #[test]
    fn pseudo_tree_and_junctions() {
        let key = [3; 16];
        let home = export("/home", None, key);
        let data = export("/srv/data", Some(7), key);
        let set = ExportSet::build(vec![home.clone(), data.clone()], key).unwrap();
        assert!(set.has_pseudo());
        let fs = &set.root().backend;
        let srv = fs.lookup(&set.root().root, b"srv").unwrap();
        let node = fs.lookup(&srv, b"data").unwrap();
        let pseudo = set.root();
        assert_eq!(set.junction(pseudo, &node).unwrap().id, 7);
        assert!(
            set.junction(&data, &node).is_none(),
            "only in the pseudo file system"
        );
        assert_eq!(set.mount_point(&data, &data.root), Some(&node));
        assert!(
            set.mount_point(&data, &node).is_none(),
            "only at the export's root"
        );
        assert!(set.junction(pseudo, &srv).is_none());
        assert_eq!(set.exports().count(), 2);
        // Handles find their export; another key's or a removed export's are stale.
        let fh = data.handles.encode(&data.root);
        let (e, obj, _) = set.decode(fh.as_bytes()).unwrap();
        assert_eq!((e.id, obj), (7, data.root));
        let other = ExportSet::build(vec![home], key).unwrap();
        assert_eq!(
            other.decode(fh.as_bytes()).err(),
            Some(status::NFS4ERR_STALE)
        );
        let foreign = export("/srv/data", Some(7), [4; 16]);
        let fh = foreign.handles.encode(&foreign.root);
        assert_eq!(set.decode(fh.as_bytes()).err(), Some(status::NFS4ERR_STALE));
    }

    #[test]
    fn one_export_at_the_root_is_the_tree() {
        let key = [1; 16];
        let set = ExportSet::build(vec![export("/", None, key)], key).unwrap();
        assert!(!set.has_pseudo());
        assert_eq!(set.root().id, id_for_path(&[]));
    }

    #[test]
    fn refusals() {
        let key = [1; 16];
        // (pseudo path, fsid) of each export, and what the refusal says.
        type Case<'a> = (&'a [(&'a str, Option<u32>)], &'a str);
        let cases: [Case<'_>; 5] = [
            (&[("/a", Some(1)), ("/b", Some(1))], "same fsid"),
            (&[("/a", None), ("/a", Some(9))], "same pseudo path"),
            (&[("/a", None), ("/a/b", None)], "do not nest"),
            (&[("/", None), ("/b", None)], "pseudo path of its own"),
            (&[("/a", Some(0))], "fsid 0"),
        ];
        for (exports, says) in cases {
            let v = exports.iter().map(|(p, id)| export(p, *id, key)).collect();
            let e = ExportSet::build(v, key).err().unwrap();
            assert!(e.contains(says), "{exports:?}: {e}");
        }
        assert!(parse_pseudo_path("data").is_err());
        assert!(parse_pseudo_path("/a/../b").is_err());
        assert_eq!(
            parse_pseudo_path("//a//b/").unwrap(),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
    }

    #[test]
    fn ids_are_stable_and_never_the_pseudo_root() {
        let p = parse_pseudo_path("/home").unwrap();
        assert_eq!(id_for_path(&p), id_for_path(&p));
        assert_ne!(id_for_path(&p), id_for_path(&[]));
        assert_ne!(id_for_path(&p), PSEUDO_ID);
    }
}
