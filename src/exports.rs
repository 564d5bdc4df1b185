//! The exports a server serves, from their descriptions ([`ExportSpec`], the config
//! file's `[[export]]` tables, the REST API's JSON): options resolved against the
//! server's defaults, backends opened, checked all together, then served; changed live
//! through the control plane ([`LiveExports`]) and persisted in the state directory.
//!
//! A change builds a whole new set and swaps it in: an export whose directory, backend,
//! pseudo path and fsid stay the same keeps its backend (open files, handles, its
//! clients' state) whatever else changes; an export that is not in the new set stops
//! being served: its handles answer NFS4ERR_STALE, and its clients' opens, locks and
//! delegations are revoked (NFS4ERR_ADMIN_REVOKED, SEQ4_STATUS_ADMIN_STATE_REVOKED).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::control::exports::{AccessSpec, ExportAdmin, ExportError, ExportSpec, ExportView};
use crate::fs::Backend;
use crate::fs::local::{LocalBackend, LocalOptions};
use crate::fs::memory::{MemoryBackend, MemoryOptions};
use crate::nfs4::export::set::{id_for_path, parse_pseudo_path};
use crate::nfs4::export::{
    Access, ClientMatch, ClientRule, Export, ExportId, ExportOptions, ExportSet, Exports,
    MAX_FLAVORS, XprtSec,
};
use crate::rpc::auth::{AUTH_NONE, AUTH_SYS};
use crate::rpc::gss::{KRB5, KRB5I, KRB5P};
use crate::server::{BackendKind, IoMode};

/// Where the control plane keeps the exports it changed, in the state directory.
pub const EXPORTS_FILE: &str = "exports.toml";

/// Mode of an export root ringnfs creates: writable by everyone, like /tmp, so squashed
/// root and ordinary users can create files out of the box.
const CREATED_EXPORT_MODE: u32 = 0o1777;

/// What an export's description leaves out: the `serve` options.
#[derive(Debug, Clone)]
pub struct ExportDefaults {
    pub backend: BackendKind,
    pub options: ExportOptions,
    /// Server addresses for fs_locations.
    pub locations: Vec<String>,
    /// The server has Kerberos (RPCSEC_GSS): exports may list krb5 flavors.
    pub kerberos: bool,
}

/// The exports file: `[[export]]` tables, as in the config file.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportsFile {
    #[serde(default)]
    pub export: Vec<ExportSpec>,
}

impl ExportsFile {
    /// The exports persisted in `dir`, if there is a file.
    pub fn load(dir: &Path) -> anyhow::Result<Option<Vec<ExportSpec>>> {
        let path = dir.join(EXPORTS_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let f: ExportsFile =
                    toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
                Ok(Some(f.export))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Write `specs` to `dir` (a temporary file renamed over the old one).
    pub fn save(dir: &Path, specs: &[ExportSpec]) -> std::io::Result<()> {
        let text = toml::to_string(&ExportsFile {
            export: specs.to_vec(),
        })
        .map_err(std::io::Error::other)?;
        let path = dir.join(EXPORTS_FILE);
        let tmp = dir.join(format!("{EXPORTS_FILE}.tmp"));
        std::fs::write(
            &tmp,
            format!("# Written by ringnfs on export changes.\n{text}"),
        )?;
        std::fs::rename(&tmp, &path)
    }
}

/// A security flavor by its exports(5) name.
fn flavor(name: &str) -> Result<u32, String> {
    match name.trim() {
        "sys" => Ok(AUTH_SYS),
        "none" => Ok(AUTH_NONE),
        "krb5" => Ok(KRB5),
        "krb5i" => Ok(KRB5I),
        "krb5p" => Ok(KRB5P),
        f @ ("tls" | "mtls") => Err(format!(
            "{f:?} is a transport security, not a flavor: give it as xprtsec = [\"{f}\"]"
        )),
        f => Err(format!(
            "{f:?} is not a security flavor (sys, none, krb5, krb5i, krb5p)"
        )),
    }
}

/// `base` with what `spec` sets.
fn access(spec: &AccessSpec, base: &Access) -> Result<Access, String> {
    let flavors = match &spec.sec {
        Some(names) => {
            let mut v = Vec::new();
            for n in names {
                let f = flavor(n)?;
                if !v.contains(&f) {
                    v.push(f);
                }
            }
            if v.is_empty() || v.len() > MAX_FLAVORS {
                return Err(format!("sec: give 1 to {MAX_FLAVORS} flavors"));
            }
            v
        }
        None => base.flavors.clone(),
    };
    let xprtsec = match &spec.xprtsec {
        Some(names) => XprtSec::parse(names.iter().map(String::as_str))?,
        None => base.xprtsec,
    };
    Ok(Access {
        xprtsec,
        read_only: spec.read_only.unwrap_or(base.read_only),
        root_squash: spec.root_squash.unwrap_or(base.root_squash),
        all_squash: spec.all_squash.unwrap_or(base.all_squash),
        anon_uid: spec.anon_uid.unwrap_or(base.anon_uid),
        anon_gid: spec.anon_gid.unwrap_or(base.anon_gid),
        flavors,
    })
}

/// The options of the export `spec` describes, over the server's defaults.
pub fn export_options(spec: &ExportSpec, d: &ExportDefaults) -> Result<ExportOptions, String> {
    let own = access(&spec.access(), &d.options.access())?;
    let mut rules = Vec::new();
    for c in &spec.clients {
        rules.push(ClientRule {
            client: ClientMatch::parse(&c.host)?,
            access: access(&c.access(), &own).map_err(|e| format!("client {:?}: {e}", c.host))?,
        });
    }
    let krb5 = |a: &Access| a.flavors.iter().any(|f| [KRB5, KRB5I, KRB5P].contains(f));
    if !d.kerberos && (krb5(&own) || rules.iter().any(|r| krb5(&r.access))) {
        return Err(
            "sec krb5, krb5i and krb5p need Kerberos, which this server was started \
                    without: start it with --krb5-keytab FILE (or an export that lists a \
                    krb5 flavor in the config file)"
                .into(),
        );
    }
    let io_mode = match &spec.io_mode {
        Some(m) => <IoMode as clap::ValueEnum>::from_str(m, true)
            .map_err(|_| format!("io_mode {m:?} is not one of buffered, dontcache, direct"))?
            .caching(),
        None => d.options.io_mode,
    };
    Ok(ExportOptions {
        read_only: own.read_only,
        root_squash: own.root_squash,
        all_squash: own.all_squash,
        anon_uid: own.anon_uid,
        anon_gid: own.anon_gid,
        flavors: own.flavors,
        xprtsec: own.xprtsec,
        // Rules name their clients; without rules `--allow` does.
        allowed: if rules.is_empty() {
            d.options.allowed.clone()
        } else {
            Vec::new()
        },
        rules,
        io_mode,
    })
}

fn backend_kind(spec: &ExportSpec, d: &ExportDefaults) -> Result<BackendKind, String> {
    match spec.backend.as_deref() {
        None => Ok(d.backend),
        Some(b) => <BackendKind as clap::ValueEnum>::from_str(b, true)
            .map_err(|_| format!("backend {b:?} is not one of local, memory")),
    }
}

/// The backend of an export: a fresh in-memory one, or the directory `path` (created
/// with mode 1777 if missing).
pub fn open_backend(
    kind: BackendKind,
    path: Option<&Path>,
    read_only: bool,
) -> anyhow::Result<Arc<dyn Backend>> {
    Ok(match kind {
        BackendKind::Memory => Arc::new(MemoryBackend::new(MemoryOptions {
            root_mode: CREATED_EXPORT_MODE,
            ..MemoryOptions::default()
        })),
        BackendKind::Local => {
            let Some(path) = path else {
                anyhow::bail!("an export of the local backend needs a `path` (its directory)");
            };
            if !path.exists() {
                use std::os::unix::fs::PermissionsExt;
                std::fs::create_dir_all(path)
                    .with_context(|| format!("creating export directory {}", path.display()))?;
                std::fs::set_permissions(
                    path,
                    std::fs::Permissions::from_mode(CREATED_EXPORT_MODE),
                )?;
                tracing::info!(path = %path.display(), "created export directory");
            }
            if !path.is_dir() {
                anyhow::bail!(
                    "the export {} is a file, not a directory (give --export a directory)",
                    path.display()
                );
            }
            let opts = LocalOptions {
                read_only,
                ..LocalOptions::default()
            };
            Arc::new(LocalBackend::open(path, opts).map_err(|e| {
                // Reopening files by handle (open_by_handle_at) needs CAP_DAC_READ_SEARCH.
                let denied = matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES))
                    || e.kind() == std::io::ErrorKind::PermissionDenied;
                let root = ringnfs_fs::local::running_as_root();
                if denied && !root {
                    anyhow::anyhow!(
                        "opening export {}: {e}: the local backend needs root \
                         (CAP_DAC_READ_SEARCH, to reopen files by handle): run as root, or \
                         use --backend memory",
                        path.display()
                    )
                } else {
                    anyhow::anyhow!("opening export {}: {e}", path.display())
                }
            })?)
        }
    })
}

/// Whether `a` and `b` are the same export but for its options: same backend, same
/// directory, same pseudo path, same number.
fn same_place(a: &ExportSpec, b: &ExportSpec, d: &ExportDefaults) -> bool {
    let norm = |s: &ExportSpec| {
        (
            parse_pseudo_path(&s.pseudo).ok(),
            s.path
                .as_deref()
                .map(|p| PathBuf::from(p).components().collect::<PathBuf>()),
            backend_kind(s, d).ok(),
            s.fsid,
        )
    };
    norm(a) == norm(b)
}

/// An export's description checked and resolved (options, client host names, number),
/// before its backend is opened.
struct Planned<'s> {
    spec: &'s ExportSpec,
    path: Vec<Vec<u8>>,
    id: ExportId,
    opts: ExportOptions,
    kind: BackendKind,
}

fn plan<'s>(spec: &'s ExportSpec, d: &ExportDefaults) -> Result<Planned<'s>, String> {
    let path = parse_pseudo_path(&spec.pseudo)?;
    Ok(Planned {
        opts: export_options(spec, d).map_err(|e| format!("export {}: {e}", spec.pseudo))?,
        kind: backend_kind(spec, d)?,
        id: spec.fsid.unwrap_or_else(|| id_for_path(&path)),
        path,
        spec,
    })
}

/// The export `p` plans, on a backend opened for it.
fn open_planned(p: Planned<'_>, d: &ExportDefaults, key: [u8; 16]) -> Result<Export, String> {
    let dir = p.spec.path.as_deref().map(Path::new);
    let backend = open_backend(p.kind, dir, p.opts.read_only)
        .map_err(|e| format!("export {}: {e:#}", p.spec.pseudo))?;
    let mut e = Export::at(backend, p.opts, key, p.id, p.path);
    e.locations = d.locations.clone();
    Ok(e)
}

/// Each export served with the description it was built from.
pub type Served = Vec<(ExportSpec, Arc<Export>)>;

/// The exports `specs` describe, checked together; each reuses the backend of the
/// export of `old` at the same place.
pub fn build(
    specs: &[ExportSpec],
    d: &ExportDefaults,
    key: [u8; 16],
    old: &[(ExportSpec, Arc<Export>)],
) -> Result<(ExportSet, Served), String> {
    // Everything that needs no backend first: a refused change opens (or creates) no
    // directory.
    let plans = specs
        .iter()
        .map(|s| plan(s, d))
        .collect::<Result<Vec<_>, String>>()?;
    let places: Vec<(&[Vec<u8>], ExportId)> = plans.iter().map(|p| (&p.path[..], p.id)).collect();
    crate::nfs4::export::set::check_places(&places)?;
    let mut built = Vec::new();
    for p in plans {
        let spec = p.spec.clone();
        let e = match old.iter().find(|(s, _)| same_place(s, p.spec, d)) {
            Some((_, old)) => old.with_options(p.opts),
            None => open_planned(p, d, key)?,
        };
        built.push((spec, Arc::new(e)));
    }
    let set = ExportSet::build(built.iter().map(|(_, e)| e.clone()).collect(), key)?;
    Ok((set, built))
}

/// The exports being served and their descriptions; what the control plane changes.
pub struct LiveExports {
    exports: Arc<Exports>,
    defaults: ExportDefaults,
    key: [u8; 16],
    state_dir: Option<PathBuf>,
    /// Whose opens, locks and delegations a removed export's files lose (none in unit
    /// tests).
    state: Option<Arc<crate::state::StateManager>>,
    /// The descriptions and exports served now, in order. Held while a change is
    /// checked, persisted and swapped in, so changes happen one at a time.
    current: Mutex<Served>,
    /// In a cluster: the node through which an operator's change reaches every node
    /// (set once, by [`LiveExports::share_with`]).
    cluster: std::sync::OnceLock<Arc<ringnfs_cluster::Node>>,
}

/// How far a change of the exports goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// This server only, nothing written.
    Here,
    /// Saved in the state directory (a change another node made, arriving here).
    Saved,
    /// Saved, and in a cluster shared with every node first (an operator's change).
    Everywhere,
}

/// The name of the exports among a cluster's shared documents.
const SHARED_EXPORTS: &str = "exports";

/// The `[[export]]` tables of `specs`, as the exports file holds them.
fn exports_text(specs: &[ExportSpec]) -> Result<String, String> {
    toml::to_string(&ExportsFile {
        export: specs.to_vec(),
    })
    .map_err(|e| e.to_string())
}

fn parse_exports(text: &[u8]) -> Result<Vec<ExportSpec>, String> {
    let text = std::str::from_utf8(text).map_err(|e| e.to_string())?;
    let f: ExportsFile = toml::from_str(text).map_err(|e| e.to_string())?;
    Ok(f.export)
}

/// The exports a cluster node serves: the cluster's (kept in etcd), or, when the
/// cluster has none yet, `given` become them. Every node serves the same exports, so
/// that export numbers — and so file handles — mean the same on all of them.
pub fn cluster_exports(
    node: &ringnfs_cluster::Node,
    given: Vec<ExportSpec>,
) -> anyhow::Result<Vec<ExportSpec>> {
    let ours = exports_text(&given).map_err(anyhow::Error::msg)?;
    let stored = node
        .seed_config(SHARED_EXPORTS, ours.as_bytes())
        .context("reading the cluster's exports from etcd")?;
    let specs = parse_exports(&stored)
        .map_err(|e| anyhow::anyhow!("the cluster's exports in etcd cannot be read: {e}"))?;
    if specs != given {
        tracing::warn!(
            exports = specs.len(),
            "serving the cluster's exports (kept in etcd), not those given at start: every node serves the same"
        );
    }
    Ok(specs)
}

impl LiveExports {
    /// Serve `specs` (opening their backends); refused with the reason if they are not
    /// valid together.
    pub fn start(
        specs: &[ExportSpec],
        defaults: ExportDefaults,
        key: [u8; 16],
        state_dir: Option<PathBuf>,
        state: Option<Arc<crate::state::StateManager>>,
    ) -> anyhow::Result<LiveExports> {
        let (set, built) = build(specs, &defaults, key, &[]).map_err(anyhow::Error::msg)?;
        Ok(LiveExports {
            exports: Arc::new(Exports::new(set)),
            defaults,
            key,
            state_dir,
            state,
            current: Mutex::new(built),
            cluster: std::sync::OnceLock::new(),
        })
    }

    /// In a cluster: share operators' changes with every node through `node`, and serve
    /// the changes other nodes make.
    pub fn share_with(self: &Arc<Self>, node: Arc<ringnfs_cluster::Node>) {
        let live = Arc::downgrade(self);
        node.watch_config(
            SHARED_EXPORTS,
            Box::new(move |text| {
                let Some(live) = live.upgrade() else { return };
                let result = parse_exports(text).and_then(|specs| {
                    let mut cur = live.current.lock();
                    live.replace_locked(&mut cur, specs, Reach::Saved)
                        .map_err(|e| e.to_string())
                });
                match result {
                    Ok(()) => tracing::info!("serving the exports another node changed"),
                    Err(e) => tracing::error!(error = %e, "cannot serve the exports another node changed; serving the previous ones"),
                }
            }),
        );
        let _ = self.cluster.set(node);
    }

    pub fn exports(&self) -> &Arc<Exports> {
        &self.exports
    }

    /// The descriptions served now.
    pub fn specs(&self) -> Vec<ExportSpec> {
        self.current.lock().iter().map(|(s, _)| s.clone()).collect()
    }

    /// Serve `specs` instead of what is served: checked whole, persisted if `persist`,
    /// then swapped in.
    pub fn replace(&self, specs: Vec<ExportSpec>, persist: bool) -> Result<(), ExportError> {
        let mut cur = self.current.lock();
        let reach = if persist {
            Reach::Everywhere
        } else {
            Reach::Here
        };
        self.replace_locked(&mut cur, specs, reach)
    }

    fn replace_locked(
        &self,
        cur: &mut Served,
        specs: Vec<ExportSpec>,
        reach: Reach,
    ) -> Result<(), ExportError> {
        let (set, built) =
            build(&specs, &self.defaults, self.key, cur).map_err(ExportError::Invalid)?;
        // Shared first: a change the cluster did not take is made nowhere.
        if reach == Reach::Everywhere
            && let Some(node) = self.cluster.get()
        {
            let text = exports_text(&specs).map_err(ExportError::Persist)?;
            node.publish_config(SHARED_EXPORTS, text.as_bytes())
                .map_err(|e| {
                    ExportError::Persist(format!(
                        "cannot share the change with the cluster's other nodes, so it is not made: {e}"
                    ))
                })?;
        }
        if reach != Reach::Here
            && let Some(dir) = &self.state_dir
        {
            ExportsFile::save(dir, &specs).map_err(|e| {
                ExportError::Persist(format!("writing {}: {e}", dir.join(EXPORTS_FILE).display()))
            })?;
        }
        self.exports.replace(set);
        let old = std::mem::replace(cur, built);
        self.revoke_removed(&old, cur);
        Ok(())
    }

    /// Revoke the state of files only exports no longer served could reach: a file a
    /// kept export's backend also resolves (a local export of the same file system) keeps
    /// its state.
    fn revoke_removed(&self, old: &Served, now: &Served) {
        let Some(state) = &self.state else {
            return;
        };
        let kept: Vec<&Arc<dyn crate::fs::Backend>> = now.iter().map(|(_, e)| &e.backend).collect();
        let gone: Vec<&Arc<Export>> = old
            .iter()
            .map(|(_, e)| e)
            .filter(|e| !kept.iter().any(|k| Arc::ptr_eq(k, &e.backend)))
            .collect();
        if gone.is_empty() {
            return;
        }
        let n = state.files.revoke_files(|obj| {
            gone.iter().any(|e| e.backend.getattr(obj).is_ok())
                && !kept.iter().any(|k| k.getattr(obj).is_ok())
        });
        for e in &gone {
            tracing::info!(
                export = %e.pseudo_path(),
                "export no longer served: its handles are stale"
            );
        }
        if n > 0 {
            tracing::info!(
                stateids = n,
                "opens, locks and delegations of removed exports revoked"
            );
        }
    }

    fn view(spec: &ExportSpec, e: &Export) -> ExportView {
        let t = e.stats.totals();
        ExportView {
            id: e.id,
            export: spec.clone(),
            ops: t.ops,
            bytes_read: t.bytes_read,
            bytes_written: t.bytes_written,
        }
    }

    fn index(cur: &[(ExportSpec, Arc<Export>)], id: u32) -> Result<usize, ExportError> {
        cur.iter()
            .position(|(_, e)| e.id == id)
            .ok_or(ExportError::NotFound(id))
    }

    fn view_of(cur: &[(ExportSpec, Arc<Export>)], pseudo: &str) -> ExportView {
        let (s, e) = cur
            .iter()
            .find(|(s, _)| s.pseudo == pseudo)
            .expect("the export just built");
        Self::view(s, e)
    }
}

impl ExportAdmin for LiveExports {
    fn list(&self) -> Vec<ExportView> {
        let mut v: Vec<ExportView> = self
            .current
            .lock()
            .iter()
            .map(|(s, e)| Self::view(s, e))
            .collect();
        v.sort_by_key(|v| v.id);
        v
    }

    fn add(&self, spec: ExportSpec) -> Result<ExportView, ExportError> {
        let mut cur = self.current.lock();
        let mut specs: Vec<ExportSpec> = cur.iter().map(|(s, _)| s.clone()).collect();
        let pseudo = spec.pseudo.clone();
        specs.push(spec);
        self.replace_locked(&mut cur, specs, Reach::Everywhere)?;
        Ok(Self::view_of(&cur, &pseudo))
    }

    fn update(&self, id: u32, spec: ExportSpec) -> Result<ExportView, ExportError> {
        let mut cur = self.current.lock();
        let i = Self::index(&cur, id)?;
        let mut specs: Vec<ExportSpec> = cur.iter().map(|(s, _)| s.clone()).collect();
        let pseudo = spec.pseudo.clone();
        specs[i] = spec;
        self.replace_locked(&mut cur, specs, Reach::Everywhere)?;
        Ok(Self::view_of(&cur, &pseudo))
    }

    fn remove(&self, id: u32) -> Result<(), ExportError> {
        let mut cur = self.current.lock();
        let i = Self::index(&cur, id)?;
        if cur.len() == 1 {
            return Err(ExportError::Invalid(
                "the last export cannot be removed (add another first)".into(),
            ));
        }
        let mut specs: Vec<ExportSpec> = cur.iter().map(|(s, _)| s.clone()).collect();
        specs.remove(i);
        self.replace_locked(&mut cur, specs, Reach::Everywhere)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::exports::ClientSpec;

    fn defaults() -> ExportDefaults {
        ExportDefaults {
            backend: BackendKind::Memory,
            kerberos: false,
            options: ExportOptions::default(),
            locations: Vec::new(),
        }
    }

    fn spec(pseudo: &str) -> ExportSpec {
        ExportSpec {
            pseudo: pseudo.into(),
            ..ExportSpec::default()
        }
    }

    #[test]
    fn options_inherit_and_rules_resolve() {
        let mut s = spec("/data");
        s.read_only = Some(true);
        s.sec = Some(vec!["sys".into()]);
        s.clients = vec![
            ClientSpec {
                host: "127.0.0.2".into(),
                read_only: Some(false),
                root_squash: Some(false),
                ..ClientSpec::default()
            },
            ClientSpec {
                host: "*".into(),
                ..ClientSpec::default()
            },
        ];
        let o = export_options(&s, &defaults()).unwrap();
        assert!(o.read_only);
        let r0 = &o.rules[0].access;
        assert!(!r0.read_only && !r0.root_squash);
        assert_eq!(r0.flavors, vec![AUTH_SYS]);
        let r1 = &o.rules[1].access;
        assert!(r1.read_only && r1.root_squash);
    }

    #[test]
    fn bad_descriptions_say_why() {
        for (edit, says) in [
            (
                (|s: &mut ExportSpec| s.sec = Some(vec!["krb5".into()])) as fn(&mut ExportSpec),
                "--krb5-keytab",
            ),
            (|s| s.sec = Some(vec!["tls".into()]), "xprtsec"),
            (
                |s| s.xprtsec = Some(vec!["ssl".into()]),
                "not a transport security",
            ),
            (|s| s.io_mode = Some("fast".into()), "io_mode"),
            (|s| s.backend = Some("disk".into()), "backend"),
            (
                |s| {
                    s.clients = vec![ClientSpec {
                        host: "@lab".into(),
                        ..ClientSpec::default()
                    }]
                },
                "netgroups",
            ),
        ] {
            let mut s = spec("/x");
            edit(&mut s);
            let e = build(&[s], &defaults(), [0; 16], &[]).err().unwrap();
            assert!(e.contains(says), "{e}");
        }
    }

    /// A change refused for its places (here: two exports at /a) opens no backend, so it
    /// creates no directory.
    #[test]
    fn a_refused_change_creates_nothing() {
        let dir = std::env::temp_dir().join(format!(
            "ringnfs-exports-refused-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let mut local = spec("/a");
        local.backend = Some("local".into());
        local.path = Some(dir.display().to_string());
        let e = build(&[local, spec("/a")], &defaults(), [0; 16], &[])
            .err()
            .unwrap();
        assert!(e.contains("same pseudo path"), "{e}");
        assert!(!dir.exists(), "{} was created", dir.display());
    }

    #[test]
    fn live_changes_keep_unchanged_exports() {
        let dir = std::env::temp_dir().join(format!(
            "ringnfs-exports-unit-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let live = LiveExports::start(
            &[spec("/a"), spec("/b")],
            defaults(),
            [5; 16],
            Some(dir.clone()),
            None,
        )
        .unwrap();
        let id_a = id_for_path(&parse_pseudo_path("/a").unwrap());
        let a_before = live.exports().load().get(id_a).unwrap().clone();
        let mut b = spec("/b");
        b.read_only = Some(true);
        let id_b = id_for_path(&parse_pseudo_path("/b").unwrap());
        live.update(id_b, b).unwrap();
        let set = live.exports().load();
        let a_after = set.get(a_before.id).unwrap();
        assert!(Arc::ptr_eq(&a_before.backend, &a_after.backend));
        assert!(set.get(id_b).unwrap().opts.read_only);
        // A refused change changes nothing, persisted or served.
        let e = live.add(spec("/a")).unwrap_err();
        assert!(matches!(e, ExportError::Invalid(_)), "{e}");
        assert_eq!(live.list().len(), 2);
        live.add(spec("/c")).unwrap();
        live.remove(a_before.id).unwrap();
        assert!(live.exports().load().get(a_before.id).is_none());
        let saved = ExportsFile::load(&dir).unwrap().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let pseudos: Vec<&str> = saved.iter().map(|s| s.pseudo.as_str()).collect();
        assert_eq!(pseudos, ["/b", "/c"]);
        assert_eq!(
            live.remove(12345).unwrap_err(),
            ExportError::NotFound(12345)
        );
    }
}
