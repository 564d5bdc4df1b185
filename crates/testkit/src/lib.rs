//! For the project's own tests. A test that cannot run on this machine (a tool is not
//! installed, mounting is not allowed) says so where `cargo test` shows it, and fails
//! when `CI` is set: CI installs every tool and runs as root, so a skip there hides a
//! broken setup.

pub mod pki;

use std::io::Write;

pub mod etcd;
pub mod kdc;

/// Report that `test` is skipped because of `reason`; panics under CI.
pub fn skip(test: &str, reason: &str) {
    if let Err(failure) = skip_under(std::env::var_os("CI").as_deref(), test, reason) {
        panic!("{failure}");
    }
}

/// The skip line written to the process's stderr, or the failure to raise when `ci` (the
/// value of `CI`) is set and not empty.
fn skip_under(ci: Option<&std::ffi::OsStr>, test: &str, reason: &str) -> Result<(), String> {
    let line = format!("SKIPPED {test}: {reason}");
    if ci.is_some_and(|v| !v.is_empty()) {
        return Err(format!(
            "{line} (CI is set, and CI installs everything the tests need)"
        ));
    }
    // Straight to the process's stderr: the test harness captures eprintln!, so a
    // skipped test would look like a passed one.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_is_a_failure_under_ci_only() {
        let ci = std::ffi::OsStr::new("1");
        let err = skip_under(Some(ci), "t", "no qemu").unwrap_err();
        assert!(err.starts_with("SKIPPED t: no qemu"), "{err}");
        assert!(skip_under(Some(std::ffi::OsStr::new("")), "t", "no qemu").is_ok());
        assert!(skip_under(None, "t", "no qemu").is_ok());
    }
}
