//! For the project's own tests. A test that cannot run on this machine (a tool is not
//! installed, mounting is not allowed) says so where `cargo test` shows it, and fails
//! when `CI` is set: CI installs every tool and runs as root, so a skip there hides a
//! broken setup.

use std::io::Write;

/// Report that `test` is skipped because of `reason`; panics under CI.
pub fn skip(test: &str, reason: &str) {
    let line = format!("SKIPPED {test}: {reason}");
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{line} (CI is set, and CI installs everything the tests need)");
    }
    // Straight to the process's stderr: the test harness captures eprintln!, so a
    // skipped test would look like a passed one.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
