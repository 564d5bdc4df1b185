//! No file-level import cycles in the server's protocol and transport code: inside each
//! server crate, the files that use each other's items form a DAG, so a newcomer can read
//! a crate bottom-up (ARCHITECTURE.md lists the order). Crate-level cycles cannot exist
//! (Cargo refuses them); this checks the finer level the compiler allows.
//!
//! An edge A → B is a `use` of, or a path through, module B written in file A
//! (`crate::b::...`, `super::b::...`, `self::b::...`, or a child module named directly).
//! `pub use` re-exports are a facade, not a dependency, and are not edges; neither are
//! `mod` declarations, nor test-only modules (`tests.rs`, `proptests.rs`, and anything
//! after a `#[cfg(test)]` line in a file).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates whose files must not import each other in circles.
const CRATES: &[&str] = &["proto", "service", "fs", "transport", "state", "engine"];

const TEST_FILES: &[&str] = &["tests.rs", "proptests.rs"];

type Module = Vec<String>;

fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("lib" | "mod" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's text before its first `#[cfg(test)]`, without comments.
fn production_text(text: &str) -> String {
    let mut kept = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        kept.push_str(line.split(" //").next().unwrap_or(""));
        kept.push('\n');
    }
    kept
}

/// `use` statements (without `pub use` / `pub(crate) use`, which re-export) as paths,
/// and every `crate::` / `super::` / `self::` path written in code outside `use`.
fn paths_in(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut code = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("use ") {
        let before = &rest[..at];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let prefix = before[line_start..].trim();
        let word_start = at == 0 || {
            let c = rest.as_bytes()[at - 1];
            !(c.is_ascii_alphanumeric() || c == b'_')
        };
        let is_use = word_start && (prefix.is_empty() || prefix.starts_with("pub"));
        if !is_use {
            code.push_str(&rest[..at + 4]);
            rest = &rest[at + 4..];
            continue;
        }
        let after = &rest[at + 4..];
        let end = after.find(';').unwrap_or(after.len());
        code.push_str(&rest[..line_start]);
        if prefix.is_empty() {
            let tree: String = after[..end]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            expand(&tree, "", &mut paths);
        }
        rest = &after[end..];
    }
    code.push_str(rest);
    for root in ["crate::", "super::", "self::"] {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(root) {
            let ok = at == 0 || {
                let c = rest.as_bytes()[at - 1];
                !(c.is_ascii_alphanumeric() || c == b'_' || c == b':')
            };
            let tail: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            if ok {
                paths.push(tail.trim_end_matches(':').to_string());
            }
            rest = &rest[at + root.len()..];
        }
    }
    paths
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim().trim_matches(',').trim();
    if tree.is_empty() {
        return;
    }
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or(tree).trim();
        out.push(format!("{prefix}{path}"));
        return;
    };
    let head = tree[..open].trim();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&inner[start..i], &format!("{prefix}{head}"), out);
                start = i + 1;
            }
            _ => {}
        }
    }
    expand(&inner[start..], &format!("{prefix}{head}"), out);
}

/// The longest known module `path` names, seen from module `from`.
fn resolve(path: &str, from: &Module, modules: &BTreeSet<Module>) -> Option<Module> {
    let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let (mut base, rest): (Module, &[&str]) = match segs.first()? {
        &"crate" => (Vec::new(), &segs[1..]),
        &"self" => (from.clone(), &segs[1..]),
        &"super" => {
            // In `foo.rs` or `foo/mod.rs` (module foo), super is foo's parent.
            let mut b = from.clone();
            let mut i = 0;
            while segs.get(i) == Some(&"super") {
                b.pop();
                i += 1;
            }
            (b, &segs[i..])
        }
        first => {
            // A child module named directly (uniform paths).
            let mut child = from.clone();
            child.push(first.to_string());
            if !modules.contains(&child) {
                return None;
            }
            (from.clone(), &segs[..])
        }
    };
    let mut best = base.clone();
    for s in rest {
        base.push(s.to_string());
        if modules.contains(&base) {
            best = base.clone();
        } else {
            break;
        }
    }
    Some(best)
}

fn cycles_in(krate: &str) -> Vec<Vec<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates")
        .join(krate)
        .join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.retain(|f| {
        let name = f.file_name().unwrap().to_string_lossy();
        !TEST_FILES.contains(&name.as_ref())
    });
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for f in &files {
        let from = module_of(&src, f);
        let text = production_text(&std::fs::read_to_string(f).unwrap());
        let out = edges.entry(from.clone()).or_default();
        for p in paths_in(&text) {
            if let Some(to) = resolve(&p, &from, &modules) {
                // A file may use its own ancestors' items declared in lib.rs/mod.rs only
                // through real imports; a module is never its own dependency.
                if to != from {
                    out.insert(to);
                }
            }
        }
    }
    strongly_connected(&edges)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            c.into_iter()
                .map(|m| {
                    if m.is_empty() {
                        "lib".into()
                    } else {
                        m.join("::")
                    }
                })
                .collect()
        })
        .collect()
}

/// Tarjan's algorithm.
fn strongly_connected(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct T<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<Module, usize>,
        low: BTreeMap<Module, usize>,
        stack: Vec<Module>,
        on: BTreeSet<Module>,
        next: usize,
        out: Vec<Vec<Module>>,
    }
    fn visit(t: &mut T<'_>, v: &Module) {
        t.index.insert(v.clone(), t.next);
        t.low.insert(v.clone(), t.next);
        t.next += 1;
        t.stack.push(v.clone());
        t.on.insert(v.clone());
        let succ: Vec<Module> = t.edges.get(v).into_iter().flatten().cloned().collect();
        for w in succ {
            if !t.index.contains_key(&w) {
                visit(t, &w);
                let l = t.low[v].min(t.low[&w]);
                t.low.insert(v.clone(), l);
            } else if t.on.contains(&w) {
                let l = t.low[v].min(t.index[&w]);
                t.low.insert(v.clone(), l);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(&w);
                let done = &w == v;
                comp.push(w);
                if done {
                    break;
                }
            }
            comp.sort();
            t.out.push(comp);
        }
    }
    let mut t = T {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    let nodes: Vec<Module> = edges.keys().cloned().collect();
    for v in &nodes {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn server_crates_have_no_file_level_import_cycles() {
    let mut found = Vec::new();
    for krate in CRATES {
        for cycle in cycles_in(krate) {
            found.push(format!("crates/{krate}: {}", cycle.join(" ↔ ")));
        }
    }
    assert!(
        found.is_empty(),
        "files that import each other in a circle:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checker_sees_a_cycle() {
    let mut edges = BTreeMap::new();
    let a: Module = vec!["a".into()];
    let b: Module = vec!["b".into()];
    let c: Module = vec!["c".into()];
    edges.insert(a.clone(), BTreeSet::from([b.clone()]));
    edges.insert(b.clone(), BTreeSet::from([a.clone(), c.clone()]));
    edges.insert(c.clone(), BTreeSet::new());
    let sccs: Vec<_> = strongly_connected(&edges)
        .into_iter()
        .filter(|s| s.len() > 1)
        .collect();
    assert_eq!(sccs, vec![vec![a, b]]);
}

#[test]
fn use_trees_and_paths_are_read() {
    let text =
        "use crate::{a::X, b::{c::Y, Z}};\npub use crate::d::W;\nfn f() { super::e::g(); }\n";
    let mut p = paths_in(text);
    p.sort();
    assert_eq!(
        p,
        vec![
            "crate::a::X",
            "crate::b::Z",
            "crate::b::c::Y",
            "super::e::g",
        ]
    );
}
