//! `ringnfs bench` as a user sees it: a run with errors says so and exits 1, setup
//! failures are named in words (NFS status by name plus a hint) and exit 2, an address
//! that is not an NFS server exits 3, Ctrl-C prints what was measured, destroys the
//! session and client and exits 130, and `create` says how many files it left.

pub mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{TempDir, TestServer, WAIT, wait_until};
use ringnfs::server::BackendKind;

const BIN: &str = env!("CARGO_BIN_EXE_ringnfs");

/// `ringnfs bench --server ADDR --quiet ARGS...`, to completion.
fn bench(addr: SocketAddr, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["bench", "--quiet", "--server", &addr.to_string()])
        .args(args)
        .output()
        .expect("run ringnfs bench")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The last non-empty line of stdout.
fn last_line(o: &Output) -> String {
    text(&o.stdout)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .to_string()
}

fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "exit status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
}

/// A local-backend server on a fresh directory with the given mode.
fn local_server(dir: &TempDir, mode: u32) -> TestServer {
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(mode)).unwrap();
    let path = dir.0.clone();
    TestServer::with(|c| {
        c.backend = BackendKind::Local;
        c.export_path = path;
    })
}

#[test]
fn errors_are_not_ops_and_the_run_exits_1() {
    // A read-only export answers every OPEN of the create workload NFS4ERR_ROFS.
    let srv = TestServer::with(|c| c.export.read_only = true);
    let dir = TempDir::new("bench-cli-errors");
    let json = dir.0.join("r.json");
    let o = bench(
        srv.addr(),
        &[
            "--workload",
            "create",
            "--ops",
            "200",
            "--warmup",
            "0",
            "--connections",
            "1",
            "--depth",
            "4",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert_exit(&o, 1);
    let out = text(&o.stdout);
    assert!(out.contains("NFS4ERR_ROFS 200"), "{out}");
    assert!(
        out.contains("NFS4ERR_ROFS: the export is read-only"),
        "{out}"
    );
    let last = last_line(&o);
    assert!(
        last.contains("FAILED") && last.contains("200 error"),
        "last line: {last}"
    );
    // --json keeps everything: no ops, 200 errors by name.
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(r["ops"], 0, "{r}");
    assert_eq!(r["ops_per_sec"], 0.0, "{r}");
    assert_eq!(r["error_total"], 200, "{r}");
    assert_eq!(r["errors"]["NFS4ERR_ROFS"], 200, "{r}");
}

#[test]
fn a_clean_run_exits_0_and_says_so() {
    let srv = TestServer::start();
    let o = bench(
        srv.addr(),
        &["--workload", "getattr", "--ops", "300", "--warmup", "0.2"],
    );
    assert_exit(&o, 0);
    let out = text(&o.stdout);
    assert!(out.contains("300 ops in "), "{out}");
    // The warm-up is part of the summary line.
    assert!(out.contains("after a 0.2 s warm-up"), "{out}");
    assert!(last_line(&o).starts_with("ok"), "{out}");
}

#[test]
fn missing_export_path_is_named_in_words_and_exits_2() {
    let srv = TestServer::start();
    let o = bench(
        srv.addr(),
        &["--workload", "getattr", "--export-path", "/export"],
    );
    assert_exit(&o, 2);
    let err = text(&o.stderr);
    assert!(
        err.contains(
            "LOOKUP /export: NFS4ERR_NOENT (export path not found; ganesha exports at /export"
        ),
        "{err}"
    );
    assert!(!err.contains("Some(("), "{err}");
}

#[test]
fn unwritable_export_root_names_access_and_the_way_out() {
    // Root is squashed (the default) and the directory is 0755 root's: OPEN(create) of
    // the bench file is refused.
    let dir = TempDir::new("bench-cli-access");
    let srv = local_server(&dir, 0o755);
    let o = bench(
        srv.addr(),
        &["--workload", "read", "--auth-sys", "--file-size-mib", "1"],
    );
    assert_exit(&o, 2);
    let err = text(&o.stderr);
    assert!(
        err.contains(
            "OPEN: NFS4ERR_ACCESS (the export root is not writable by the bench's user: \
             use --auth-sys with a uid that may write, or export with --no-root-squash)"
        ),
        "{err}"
    );
    // The hint's way out works: a uid that owns the directory may write.
    std::os::unix::fs::chown(&dir.0, Some(1000), Some(1000)).unwrap();
    let o = bench(
        srv.addr(),
        &[
            "--workload",
            "read",
            "--auth-sys",
            "1000:1000",
            "--file-size-mib",
            "1",
            "--ops",
            "50",
            "--warmup",
            "0",
        ],
    );
    assert_exit(&o, 0);
}

#[test]
fn grace_period_is_named_with_how_long_to_wait() {
    let srv = TestServer::with(|c| c.grace_secs = 60);
    let o = bench(srv.addr(), &["--workload", "read", "--file-size-mib", "1"]);
    assert_exit(&o, 2);
    let err = text(&o.stderr);
    assert!(
        err.contains("OPEN: NFS4ERR_GRACE (the server is in its grace period: wait "),
        "{err}"
    );
    // The lease time the server reports (ringnfs's default, 90 s) is the wait named.
    assert!(err.contains("90 s"), "{err}");
}

#[test]
fn not_an_nfs_server_exits_3() {
    // Something that answers every connection with an HTTP error.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf);
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
                // Keep the connection open: the bench must not wait for more.
                std::thread::sleep(Duration::from_secs(30));
            });
        }
    });
    let o = bench(addr, &["--workload", "getattr"]);
    assert_exit(&o, 3);
    let err = text(&o.stderr);
    assert!(
        err.contains("not an NFS server (reply was not an RPC record)"),
        "{err}"
    );
}

#[test]
fn nothing_listening_exits_3() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let o = bench(addr, &["--workload", "getattr"]);
    assert_exit(&o, 3);
    assert!(text(&o.stderr).contains("could not connect"), "{o:?}");
}

/// A server that answers `n` NULL calls on each connection, then closes it.
fn closes_after(n: usize) -> SocketAddr {
    use ringnfs::rpc::record::mark;
    use ringnfs::rpc::{AcceptStat, encode_accepted};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                for _ in 0..n {
                    let mut h = [0u8; 4];
                    if s.read_exact(&mut h).is_err() {
                        return;
                    }
                    let mut rec = vec![0; (u32::from_be_bytes(h) & 0x7fff_ffff) as usize];
                    if s.read_exact(&mut rec).is_err() {
                        return;
                    }
                    let xid = u32::from_be_bytes(rec[..4].try_into().unwrap());
                    let mut reply = Vec::new();
                    encode_accepted(&mut reply, xid, AcceptStat::Success);
                    let _ = s.write_all(&mark(reply.len()));
                    let _ = s.write_all(&reply);
                }
                // Dropping the stream closes the connection mid-run.
            });
        }
    });
    addr
}

#[test]
fn a_connection_failure_fails_the_run() {
    let o = bench(
        closes_after(100),
        &[
            "--workload",
            "null",
            "--ops",
            "100000",
            "--warmup",
            "0",
            "--connections",
            "1",
        ],
    );
    assert_exit(&o, 1);
    let out = text(&o.stdout);
    assert!(out.contains("connection failure: "), "{out}");
    let last = last_line(&o);
    assert!(
        last.contains("FAILED") && last.contains("1 connection failure"),
        "last line: {last}"
    );
}

#[test]
fn ctrl_c_prints_results_destroys_session_and_exits_130() {
    let srv = TestServer::start();
    let mut child = Command::new(BIN)
        .args(["bench", "--quiet", "--server", &srv.addr().to_string()])
        .args([
            "--workload",
            "getattr",
            "--duration",
            "120",
            "--warmup",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the load runs (its session exists and GETATTRs are answered).
    assert!(
        wait_until(WAIT, || srv.state().session_count() > 0
            && srv.state().metrics_snapshot().op_count("GETATTR") > 1000),
        "the bench did not start its load"
    );
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let exited = wait_until(WAIT, || child.try_wait().unwrap().is_some());
    if !exited {
        let _ = child.kill();
    }
    let o = child.wait_with_output().unwrap();
    assert!(exited, "bench did not exit after SIGINT");
    assert_exit(&o, 130);
    let out = text(&o.stdout);
    assert!(out.contains(" ops in "), "results so far: {out}");
    assert!(last_line(&o).contains("interrupted"), "{out}");
    // The session and the client are gone from the server.
    assert_eq!(
        srv.state().session_count(),
        0,
        "{:?}",
        srv.state().sessions()
    );
    assert_eq!(srv.state().client_count(), 0, "{:?}", srv.state().clients());
}

/// Files named like the create workload's in `dir`.
fn created_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("rb-")
        })
        .count()
}

#[test]
fn create_without_remove_says_how_many_files_it_left_and_where() {
    let dir = TempDir::new("bench-cli-create");
    let srv = local_server(&dir, 0o777);
    // A warm-up creates files too: they are counted.
    let args = [
        "--workload",
        "create",
        "--ops",
        "300",
        "--warmup",
        "0.3",
        "--connections",
        "2",
    ];
    let o = bench(srv.addr(), &args);
    assert_exit(&o, 0);
    let left = created_files(&dir.0);
    assert!(left >= 300, "{left}");
    let out = text(&o.stdout);
    assert!(
        out.contains(&format!("left {left} files named rb-")) && out.contains(" in /"),
        "{left} files on disk; summary:\n{out}"
    );
    // With --remove nothing is left and nothing is said.
    let mut with_remove = args.to_vec();
    with_remove.push("--remove");
    let o = bench(srv.addr(), &with_remove);
    assert_exit(&o, 0);
    assert_eq!(created_files(&dir.0), left);
    assert!(!text(&o.stdout).contains("left "), "{}", text(&o.stdout));
}

#[test]
fn help_documents_the_exit_codes() {
    let o = Command::new(BIN)
        .args(["bench", "--help"])
        .output()
        .unwrap();
    let h = text(&o.stdout);
    for want in ["Exit status", "130", "could not connect", "setup failed"] {
        assert!(h.contains(want), "{want} in\n{h}");
    }
}
