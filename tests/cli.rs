//! The `ringnfs` binary: `serve` starts, answers, and exits 0 on SIGTERM; bad arguments
//! give a message and a non-zero exit; `bench` runs against it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringnfs::client::RpcConn;
use ringnfs::rpc::Credential;

const BIN: &str = env!("CARGO_BIN_EXE_ringnfs");

/// Start `ringnfs serve` on an ephemeral port; returns the child and its address.
fn serve(dir: &std::path::Path) -> (Child, SocketAddr) {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "2",
            "--no-pin",
            "--control",
            "127.0.0.1:0",
            "--state-dir",
        ])
        .arg(dir)
        .arg("--export")
        .arg(dir.join("export"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringnfs serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("addrs=[") {
                let rest = &line[i + 7..];
                let end = rest.find([']', ',']).unwrap_or(rest.len());
                let _ = tx.send(rest[..end].to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("server logs its address");
    (child, addr.parse().expect("address parses"))
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

#[test]
fn serve_answers_and_stops_cleanly_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("ringnfs-cli-{}", std::process::id()));
    let (mut child, addr) = serve(&dir);
    let conn = RpcConn::connect(addr, Credential::None).unwrap();
    conn.null().unwrap();
    assert!(
        dir.join("handle-key").exists(),
        "handle key persisted in the state dir"
    );
    assert!(dir.join("export").is_dir(), "export directory created");
    assert!(
        dir.join("server-owner").exists(),
        "identity persisted in the state dir"
    );

    // The load generator runs against it and reports no errors.
    let out = Command::new(BIN)
        .args([
            "bench",
            "--server",
            &addr.to_string(),
            "--workload",
            "sequence",
            "--ops",
            "2000",
        ])
        .args([
            "--connections",
            "2",
            "--depth",
            "4",
            "--warmup",
            "0",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ops/s"), "bench summary: {stdout}");

    // SIGTERM with a connection still open: clean exit 0, and the connection sees EOF.
    let rc = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(rc.success());
    let status =
        wait_exit(&mut child, Duration::from_secs(20)).expect("server exits after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    let end = Instant::now() + Duration::from_secs(10);
    while !conn.is_closed() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(conn.is_closed());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let out = Command::new(BIN)
        .args(["serve", "--max-connections-per-session", "2000"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max-connections-per-session"));

    // A port another server holds is refused, not shared.
    let dir = std::env::temp_dir().join(format!("ringnfs-cli2-{}", std::process::id()));
    let (mut first, addr) = serve(&dir);
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &addr.to_string(),
            "--no-pin",
            "--backend",
            "memory",
            "--state-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use"), "stderr: {err}");
    let _ = first.kill();
    let _ = first.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Write `text` to `dir/name`, run `ringnfs serve --config` on it, check that it is
/// refused, and return its stderr.
fn refused_config(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{name} accepted");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn config_file_sets_options_and_bad_values_are_refused() {
    let dir = std::env::temp_dir().join(format!("ringnfs-cli3-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = refused_config(&dir, "bad.toml", "max_connections_per_session = 5000\n");
    assert!(
        err.contains("max_connections_per_session must be between 0 and 1024"),
        "stderr: {err}"
    );
    let err = refused_config(&dir, "unknown.toml", "max_conections = 5\n");
    assert!(err.contains("unknown field"), "stderr: {err}");

    // A valid file: its listen address and backend are used.
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        format!(
            "listen = [\"127.0.0.1:0\"]\nbackend = \"memory\"\nthreads = 1\npin = false\n\
             control = \"off\"\nstate_dir = {:?}\n",
            dir.join("state")
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&good)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let line = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("addrs=["))
        .expect("server starts from the config file");
    assert!(line.contains("threads=1"), "{line}");
    let _ = child.kill();
    let _ = child.wait();
    assert!(dir.join("state").join("server-owner").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn transport_knobs_are_validated_and_a_server_with_small_ones_serves_io() {
    for (flag, value) in [
        ("--ring-entries", "16"),
        ("--recv-buffers", "4"),
        ("--recv-buffer-kib", "2048"),
        ("--max-reply-queue", "0"),
    ] {
        let out = Command::new(BIN)
            .args(["serve", flag, value])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flag} {value} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&flag[2..]), "{flag}: {err}");
    }
    let dir = std::env::temp_dir().join(format!("ringnfs-cli4-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = refused_config(&dir, "bad.toml", "recv_buffer_kib = 2048\n");
    assert!(
        err.contains("recv_buffer_kib must be between 4 and 1024"),
        "stderr: {err}"
    );

    // The smallest ring, few 4 KiB receive buffers (a 1 MiB WRITE spans hundreds of
    // them) and a 1 MiB output bound (a 1 MiB READ reply exceeds it): I/O still
    // completes and reads verify.
    let good = dir.join("small.toml");
    std::fs::write(
        &good,
        format!(
            "listen = [\"127.0.0.1:0\"]\nbackend = \"memory\"\nthreads = 1\npin = false\n\
             state_dir = {:?}\ncontrol = \"off\"\nring_entries = 32\nrecv_buffers = 8\n\
             recv_buffer_kib = 4\nmax_reply_queue = 1048576\n",
            dir.join("state")
        ),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--config"]).arg(&good);
    let (mut child, addr) = spawn_and_wait_addr(cmd).expect("server starts with the small knobs");
    bench_io_verified(&addr, &dir);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Spawn a `serve` command; its address once it logs one, or its stderr if it exits.
fn spawn_and_wait_addr(mut cmd: Command) -> Result<(Child, String), String> {
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    for l in BufReader::new(stderr).lines().map_while(Result::ok) {
        if let Some(i) = l.find("addrs=[") {
            let rest = &l[i + 7..];
            let addr = rest[..rest.find([']', ',']).unwrap()].to_string();
            return Ok((child, addr));
        }
        seen.push_str(&l);
        seen.push('\n');
    }
    let _ = child.wait();
    Err(seen)
}

/// WRITE, verified READ and GETATTR through `ringnfs bench`: ops happen, no errors.
fn bench_io_verified(addr: &str, dir: &std::path::Path) {
    for workload in ["write", "read", "getattr"] {
        let json = dir.join(format!("{workload}.json"));
        let out = Command::new(BIN)
            .args(["bench", "--server", addr, "--workload", workload])
            .args(["--ops", "64", "--connections", "2", "--depth", "4"])
            .args([
                "--warmup",
                "0",
                "--quiet",
                "--verify",
                "--file-size-mib",
                "8",
            ])
            .arg("--json")
            .arg(&json)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "bench {workload} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(report["error_total"], 0, "{workload}: {report}");
        assert!(
            report["ops"].as_u64().unwrap_or(0) >= 64,
            "{workload}: {report}"
        );
        if workload == "read" {
            assert!(
                report["verified_bytes"].as_u64().unwrap_or(0) > 0,
                "{report}"
            );
        }
    }
}

#[test]
fn serves_with_sqpoll() {
    let dir = std::env::temp_dir().join(format!("ringnfs-cli5-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--sqpoll", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "--sqpoll 0 accepted");
    let mut cmd = Command::new(BIN);
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "2",
        "--no-pin",
    ])
    .args(["--backend", "memory", "--control", "off", "--sqpoll", "10"])
    .arg("--state-dir")
    .arg(dir.join("state"));
    match spawn_and_wait_addr(cmd) {
        Ok((mut child, addr)) => {
            bench_io_verified(&addr, &dir);
            let _ = child.kill();
            let _ = child.wait();
        }
        // A kernel or sandbox without SQPOLL: the start fails and says why.
        Err(stderr) => assert!(stderr.contains("SQPOLL refused"), "stderr: {stderr}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Spawn `serve` with `args`; the child and its "ringnfs serving" line, or its stderr if
/// it exits first.
fn serving_line(args: &[&str]) -> Result<(Child, String), String> {
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    for l in BufReader::new(stderr).lines().map_while(Result::ok) {
        if l.contains("ringnfs serving") {
            return Ok((child, l));
        }
        seen.push_str(&l);
        seen.push('\n');
    }
    let _ = child.wait();
    Err(seen)
}

#[test]
fn a_taken_default_control_address_stops_the_start() {
    // Taken by this test, or already by another server on the machine: taken either way.
    let _held = std::net::TcpListener::bind(ringnfs::control::DEFAULT_CONTROL_ADDR);
    let dir = std::env::temp_dir().join(format!("ringnfs-cli6-{}", std::process::id()));
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--backend",
        "memory",
        "--threads",
        "1",
        "--no-pin",
        "--state-dir",
        dir.to_str().unwrap(),
    ];
    match serving_line(&args) {
        Ok((mut child, line)) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve ran although its control address was taken: {line}");
        }
        Err(stderr) => {
            assert!(
                stderr.contains("ringnfs: "),
                "an error, not a panic: {stderr}"
            );
            assert!(
                stderr.contains(ringnfs::control::DEFAULT_CONTROL_ADDR),
                "names the address: {stderr}"
            );
            assert!(
                stderr.contains("--control off"),
                "says what to do: {stderr}"
            );
        }
    }
    // `--control off` runs without one.
    let mut off = args.to_vec();
    off.extend(["--control", "off"]);
    let (mut child, line) = serving_line(&off).expect("serves with --control off");
    assert!(line.contains("control=off"), "{line}");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_start_up_log_names_export_backend_state_dir_grace_and_control() {
    let dir = std::env::temp_dir().join(format!("ringnfs-cli7-{}", std::process::id()));
    let (state, export) = (dir.join("state"), dir.join("export"));
    let (mut child, line) = serving_line(&[
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "1",
        "--no-pin",
        "--control",
        "127.0.0.1:0",
        "--grace",
        "7",
        "--state-dir",
        state.to_str().unwrap(),
        "--export",
        export.to_str().unwrap(),
    ])
    .expect("serves");
    let _ = child.kill();
    let _ = child.wait();
    for want in [
        format!("exports=/={}", export.display()),
        "backend=local".to_string(),
        format!("state_dir={}", state.display()),
        "grace_secs=7".to_string(),
        "control=127.0.0.1:".to_string(),
    ] {
        assert!(line.contains(&want), "{want} missing in {line}");
    }
    assert!(
        !line.contains("control=127.0.0.1:0 "),
        "the bound port: {line}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Run `ringnfs ARGS` (it must exit on its own): its exit status and stderr. A refusal
/// is a sentence, never a panic or a Rust debug value.
fn run_refused(args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(20)).expect("exits");
    assert!(!status.success(), "{args:?} accepted: {stderr}");
    for bad in ["panicked", "Os {", "kind: "] {
        assert!(!stderr.contains(bad), "{args:?}: {stderr}");
    }
    (status, stderr)
}

#[test]
fn a_state_dir_that_is_a_file_is_named_as_such() {
    let dir = std::env::temp_dir().join(format!("ringnfs-cli8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let f = file.to_str().unwrap();
    let (_, err) = run_refused(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--backend",
        "memory",
        "--control",
        "off",
        "--state-dir",
        f,
    ]);
    assert!(
        err.contains(&format!("{f} is a file, not a directory")),
        "{err}"
    );
    let (status, err) = run_refused(&["ctl", "--state-dir", f, "settings"]);
    assert_eq!(status.code(), Some(1));
    assert!(
        err.contains(&format!("{f} is a file, not a directory")),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn export_with_the_memory_backend_is_warned_about() {
    let dir = std::env::temp_dir().join(format!("ringnfs-cli9-{}", std::process::id()));
    let export = dir.join("export");
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--backend", "memory"])
        .args([
            "--control",
            "off",
            "--threads",
            "1",
            "--no-pin",
            "--state-dir",
        ])
        .arg(dir.join("state"))
        .arg("--export")
        .arg(&export)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines: Vec<String> = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .take_while(|l| !l.contains("ringnfs serving"))
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines.iter().any(|l| l.contains("WARN")
            && l.contains("--export is ignored with --backend memory")
            && l.contains(export.to_str().unwrap())),
        "{lines:?}"
    );
    assert!(!export.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn file_size_mib_zero_is_refused() {
    for args in [
        &["bench", "--server", "127.0.0.1:1", "--workload", "read"][..],
        &["bench", "compare"][..],
    ] {
        let mut all = args.to_vec();
        all.extend(["--file-size-mib", "0"]);
        let (status, err) = run_refused(&all);
        assert_eq!(status.code(), Some(2), "{err}");
        assert!(err.contains("--file-size-mib"), "{err}");
    }
}

#[test]
fn listen_and_control_take_host_names_and_bad_ports_say_so() {
    use std::net::ToSocketAddrs;
    // Host names resolve as `bench --server` resolves them (the first address).
    let want = ("localhost", 0)
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap()
        .ip();
    let dir = std::env::temp_dir().join(format!("ringnfs-cli10-{}", std::process::id()));
    let (mut child, line) = serving_line(&[
        "--listen",
        "localhost:0",
        "--control",
        "localhost:0",
        "--backend",
        "memory",
        "--threads",
        "1",
        "--no-pin",
        "--state-dir",
        dir.to_str().unwrap(),
    ])
    .expect("serves on localhost");
    let _ = child.kill();
    let _ = child.wait();
    let at = line.find("addrs=[").unwrap() + 7;
    let nfs: SocketAddr = line[at..at + line[at..].find(']').unwrap()]
        .parse()
        .unwrap();
    assert_eq!(nfs.ip(), want, "{line}");
    let control = line.split("control=").nth(1).unwrap().trim();
    let control: SocketAddr = control.parse().unwrap();
    assert_eq!(control.ip(), want, "{line}");
    let _ = std::fs::remove_dir_all(&dir);

    // A port above 65535 is named as such, wherever an address is taken.
    for args in [
        &["serve", "--listen", "127.0.0.1:99999"][..],
        &["serve", "--control", "127.0.0.1:99999"][..],
        &["ctl", "--addr", "127.0.0.1:99999", "settings"][..],
        &["serve", "--listen", "localhost:70000"][..],
    ] {
        let (status, err) = run_refused(args);
        assert_eq!(status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("port out of range"), "{args:?}: {err}");
    }
}

#[test]
fn without_root_the_local_backend_says_to_use_memory_or_run_as_root() {
    use std::os::unix::process::CommandExt;
    let dir = std::env::temp_dir().join(format!("ringnfs-cli11-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--control", "off"])
        .args(["--threads", "1", "--no-pin", "--state-dir"])
        .arg(dir.join("state"))
        .arg("--export")
        .arg(dir.join("export"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // As root: run the server as nobody, in a directory nobody may write.
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        cmd.uid(65534).gid(65534);
    }
    let mut child = cmd.spawn().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(20)).expect("exits");
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("run as root, or use --backend memory"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `ringnfs ARGS --help`: each option's placeholder and its help text.
fn options_in_help(args: &[&str]) -> Vec<(String, Option<String>, String)> {
    let out = Command::new(BIN).args(args).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut opts: Vec<(String, Option<String>, String)> = Vec::new();
    let mut in_args = false;
    for line in help.lines() {
        let t = line.trim_start();
        if line.starts_with("Arguments:") || line.starts_with("Options:") {
            in_args = true;
            continue;
        }
        let indent = line.len() - t.len();
        let is_item = in_args
            && (2..=6).contains(&indent)
            && (t.starts_with('-') || t.starts_with('<') || t.starts_with('['));
        if is_item {
            // "--flag <PLACEHOLDER>  text", "-h, --help  text" or "<ARG>  text".
            let (head, rest) = t.split_once("  ").unwrap_or((t, ""));
            let name = head
                .split([' ', ','])
                .find(|w| w.starts_with("--") || w.starts_with('<') || w.starts_with('['))
                .unwrap()
                .to_string();
            let placeholder = head
                .find(['<', '['])
                .map(|i| head[i + 1..i + head[i..].find(['>', ']']).unwrap()].to_string());
            opts.push((name, placeholder, format!("{} ", rest.trim())));
        } else if let Some(last) = opts.last_mut()
            && in_args
        {
            last.2.push_str(t);
            last.2.push(' ');
        }
    }
    assert!(!opts.is_empty(), "{help}");
    opts
}

#[test]
fn help_placeholders_are_uniform_and_ranges_are_shown() {
    let uniform = |p: &str| {
        [
            "N",
            "SECS",
            "MS",
            "BYTES",
            "KIB",
            "FILE",
            "DIR",
            "ADDR:PORT",
            "CIDR",
            "ID",
            "CONN",
            "KEY",
            "FILTER",
            "REALM",
            "NAME",
            "etcd=URLS",
        ]
        .contains(&p)
            || p == "ADDR:PORT|off"
            || (p.contains('|')
                && p.split('|')
                    .all(|c| !c.is_empty() && c.chars().all(|c| c.is_ascii_lowercase())))
    };
    let serve = options_in_help(&["serve"]);
    let mut seen = Vec::new();
    for cmd in [
        &["serve"][..],
        &["ctl"][..],
        &["ctl", "client"][..],
        &["ctl", "sessions"][..],
        &["ctl", "drain"][..],
        &["ctl", "settings", "set"][..],
        &["ctl", "settings", "reset"][..],
    ] {
        for (name, placeholder, _) in options_in_help(cmd) {
            if let Some(p) = placeholder {
                assert!(uniform(&p), "{cmd:?} {name} <{p}>");
                seen.push(p);
            }
        }
    }
    assert!(seen.len() > 20, "{seen:?}");
    let text = |opts: &[(String, Option<String>, String)], flag: &str| {
        opts.iter()
            .find(|(n, _, _)| n == flag)
            .unwrap_or_else(|| panic!("no {flag}"))
            .2
            .clone()
    };
    for (flag, range) in [
        ("--lease-time", "1–3600"),
        ("--max-slots", "1–1024"),
        ("--max-connections-per-session", "0–1024"),
        ("--grace", "0–3600"),
        ("--ring-entries", "32–32768"),
        ("--recv-buffers", "8–32768"),
        ("--recv-buffer-kib", "4–1024"),
        ("--sqpoll", "1–10000"),
        ("--max-record-size", "4096–1073741824"),
        ("--max-reply-queue", "1–1073741824"),
    ] {
        let t = text(&serve, flag);
        assert!(t.contains(range), "{flag}: {t}");
    }
    // Every range of the option table, where it is written.
    for spec in ringnfs::options::ServeOptions::specs() {
        if let Some(range) = spec.range {
            let t = text(&serve, &format!("--{}", spec.flag));
            assert!(t.contains(&format!("({range}")), "--{}: {t}", spec.flag);
        }
    }
    // `ctl settings set` words the live settings' ranges as `serve` does.
    use ringnfs::state::settings::{LEASE_TIME_RANGE, MAX_CONNECTIONS_PER_SESSION_RANGE};
    let set = options_in_help(&["ctl", "settings", "set"]);
    assert!(text(&set, "--lease-time").contains("1–3600"));
    assert!(text(&set, "--max-connections-per-session").contains("0–1024"));
    for (flag, range) in [
        ("--lease-time", LEASE_TIME_RANGE),
        (
            "--max-connections-per-session",
            MAX_CONNECTIONS_PER_SESSION_RANGE,
        ),
    ] {
        assert!(text(&set, flag).contains(&format!("({range})")), "{flag}");
        assert!(text(&serve, flag).contains(&format!("({range})")), "{flag}");
    }
    // One default line for --threads.
    let threads = text(&serve, "--threads");
    assert_eq!(threads.matches("default").count(), 1, "{threads}");
}

/// The `ringnfs serve` usage in docs/operator-guide.md: each `[--flag PLACEHOLDER]` (or `[--flag]`).
fn serve_usage_in_readme() -> std::collections::BTreeMap<String, Option<String>> {
    let readme = include_str!("../docs/operator-guide.md");
    let usage = readme
        .lines()
        .skip_while(|l| !l.starts_with("ringnfs serve "))
        .enumerate()
        .take_while(|(i, l)| *i == 0 || l.starts_with("  "))
        .map(|(_, l)| l)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        !usage.is_empty(),
        "no `ringnfs serve` usage in docs/operator-guide.md"
    );
    usage
        .split('[')
        .skip(1)
        .filter_map(|item| {
            let mut words = item.split(']').next().unwrap().split_whitespace();
            let flag = words.next().filter(|f| f.starts_with("--"))?;
            Some((flag.to_string(), words.next().map(str::to_string)))
        })
        .collect()
}

#[test]
fn the_readme_usage_of_serve_has_every_option_of_serve_help() {
    let help: std::collections::BTreeMap<String, Option<String>> = options_in_help(&["serve"])
        .into_iter()
        .filter(|(name, _, _)| name != "--help")
        .map(|(name, placeholder, _)| (name, placeholder))
        .collect();
    assert_eq!(serve_usage_in_readme(), help);
}
