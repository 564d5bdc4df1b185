//! The load generator is its own executable, `ringnfs-bench`: the `ringnfs` server binary
//! contains none of it (no plotters, no nfs-ganesha installer), and `ringnfs bench ARGS`
//! execs `ringnfs-bench ARGS` from its own directory, or says in one line how to build it
//! and exits 2.

use std::process::{Command, Output};

const SERVER: &str = env!("CARGO_BIN_EXE_ringnfs");
const BENCH: &str = env!("CARGO_BIN_EXE_ringnfs-bench");

/// Byte strings that are in a binary only when it links the bench: plotters' source
/// paths (panic locations), the bench crate's own source paths (panic locations and
/// tracing events), and a message of the nfs-ganesha installer (`bench compare`).
const BENCH_ONLY: [&str; 3] = [
    "plotters-0.",
    "crates/bench/src/",
    "nfs-ganesha still missing after apt-get install",
];

fn count(haystack: &[u8], needle: &str) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle.as_bytes())
        .count()
}

#[test]
fn the_server_binary_links_no_bench_code() {
    let server = std::fs::read(SERVER).expect("read the ringnfs binary");
    let bench = std::fs::read(BENCH).expect("read the ringnfs-bench binary");
    for needle in BENCH_ONLY {
        // Each needle does show a linked bench: the bench binary has it (otherwise this
        // test would pass for nothing; update the needle).
        assert!(
            count(&bench, needle) > 0,
            "{needle:?} is not in {BENCH}: choose another string that only the bench links"
        );
        assert_eq!(
            count(&server, needle),
            0,
            "{SERVER} contains {needle:?}: the server binary links bench code (plotters \
             or the installer); src/main.rs and src/lib.rs must not use ringnfs_bench"
        );
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run(bin: &str, args: &[&str]) -> Output {
    // A binary this process just copied can be "busy" for a moment: another test thread
    // that forked while the copy's write descriptor was open holds it until its exec
    // (ETXTBSY). That is the test's own race, not the program's, so wait it out.
    for _ in 0..100 {
        match Command::new(bin).args(args).output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            r => return r.expect("run"),
        }
    }
    panic!("{bin} stayed busy (ETXTBSY) for 2 s");
}

#[test]
fn server_help_lists_bench() {
    let o = run(SERVER, &["--help"]);
    assert!(o.status.success());
    let h = text(&o.stdout);
    assert!(
        h.lines().any(|l| l.trim_start().starts_with("bench ")),
        "{h}"
    );
}

#[test]
fn ringnfs_bench_passes_every_argument_on() {
    // --help and --version go to ringnfs-bench, which names the command as typed.
    let o = run(SERVER, &["bench", "--help"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let h = text(&o.stdout);
    assert!(h.contains("Usage: ringnfs bench [OPTIONS]"), "{h}");
    assert!(h.contains("--workload") && h.contains("compare"), "{h}");
    let o = run(SERVER, &["bench", "compare", "--help"]);
    assert!(
        text(&o.stdout).contains("--ringnfs-bin"),
        "{}",
        text(&o.stdout)
    );
    // Run on its own, it is `ringnfs-bench`.
    let o = run(BENCH, &["--help"]);
    assert!(text(&o.stdout).contains("Usage: ringnfs-bench [OPTIONS]"));
    // Its exit status comes back: 2 for a usage error (`ringnfs bench --help`).
    let o = run(
        SERVER,
        &["bench", "--connections", "0", "--server", "127.0.0.1:1"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("--connections"),
        "{}",
        text(&o.stderr)
    );
    let o = run(SERVER, &["bench", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("--no-such-flag"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_missing_bench_binary_is_one_line_and_exit_2() {
    // A copy of the server binary alone in a directory (current_exe is the copy).
    let dir = std::env::temp_dir().join(format!("ringnfs-nobench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("ringnfs");
    std::fs::copy(SERVER, &copy).unwrap();
    for args in [&["bench"][..], &["bench", "--help"], &["bench", "compare"]] {
        let o = run(copy.to_str().unwrap(), args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{}", text(&o.stdout));
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(
            err.contains(&dir.join("ringnfs-bench").display().to_string()),
            "{err}"
        );
        assert!(
            err.contains("cargo build --release --bin ringnfs-bench"),
            "{err}"
        );
        assert!(!err.contains("panicked") && !err.contains("Os {"), "{err}");
    }
    // The server's own commands do not need it.
    assert!(run(copy.to_str().unwrap(), &["--help"]).status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
