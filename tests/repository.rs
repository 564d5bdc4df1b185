//! The repository's own hygiene, under `cargo test` as in CI: no committed merge-conflict
//! markers, no citation of a design file the repository does not hold
//! (`.ci/check-tree.sh`, which `.ci/run` also runs first), and the README's first lines
//! give the two commands a new user needs.

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn tree_has_no_conflict_markers_or_foreign_citations() {
    if !root().join(".git").exists() {
        ringnfs_testkit::skip(
            "tree_has_no_conflict_markers_or_foreign_citations",
            "not a git checkout (the check reads git's list of tracked files)",
        );
        return;
    }
    let out = Command::new("bash")
        .arg(root().join(".ci/check-tree.sh"))
        .output()
        .expect("run .ci/check-tree.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn readme_starts_with_the_serve_and_test_commands() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let head: Vec<&str> = readme.lines().take(5).collect();
    let head = head.join("\n");
    assert!(head.contains("cargo run --release -- serve"), "{head}");
    assert!(head.contains("cargo test --release"), "{head}");
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(
        ci.lines().any(|l| l.trim() == "cargo test --release"),
        ".ci/run runs the README's test command"
    );
}
