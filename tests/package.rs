//! The Debian package (`packaging/build-deb.sh`): built from this build's binaries,
//! unpacked into a scratch root with `dpkg-deb -x`, its files checked (binaries, unit,
//! default config as a conffile, man pages, completions), the default config parsed as
//! `ringnfs serve --config` would, and the unit verified with `systemd-analyze verify`.
//! Also the SIGHUP reload of a running server's live settings (what `ExecReload` sends).

pub mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Kills a server the test started if the test fails before stopping it.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: a signal to our own child process (gone already: ESRCH, ignored).
        unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().expect("runs");
    assert!(
        o.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_debian_package_installs_into_a_scratch_root_and_its_unit_verifies() {
    for tool in ["dpkg-deb", "systemd-analyze"] {
        if !have(tool) {
            ringnfs_testkit::skip(
                "the_debian_package_installs_into_a_scratch_root_and_its_unit_verifies",
                &format!("{tool} is missing (apt-get install dpkg systemd, as .ci/run does)"),
            );
            return;
        }
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_ringnfs")).parent().unwrap();
    let dir = common::TempDir::new("package");
    let out = dir.0.join("out");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let deb = run(Command::new("bash")
        .arg(repo.join("packaging/build-deb.sh"))
        .arg("--bin")
        .arg(bin)
        .arg("--out")
        .arg(&out));
    let deb = PathBuf::from(deb.trim());
    assert!(deb.is_file(), "{}", deb.display());

    // Control fields and the conffile.
    let fields = run(Command::new("dpkg-deb")
        .arg("-f")
        .arg(&deb)
        .args(["Package", "Depends"]));
    assert!(fields.contains("Package: ringnfs"), "{fields}");
    let control = dir.0.join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    assert_eq!(conffiles.trim(), "/etc/ringnfs/ringnfs.toml");
    for script in ["postinst", "prerm", "postrm"] {
        assert!(control.join(script).is_file(), "{script}");
    }

    // The files, in a scratch root.
    let root = dir.0.join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    for f in [
        "usr/bin/ringnfs",
        "usr/bin/ringnfs-bench",
        "lib/systemd/system/ringnfs.service",
        "etc/ringnfs/ringnfs.toml",
        "usr/share/man/man1/ringnfs.1.gz",
        "usr/share/man/man1/ringnfs-serve.1.gz",
        "usr/share/man/man1/ringnfs-ctl-settings-set.1.gz",
        "usr/share/man/man1/ringnfs-bench.1.gz",
        "usr/share/man/man1/ringnfs-bench-compare.1.gz",
        "usr/share/bash-completion/completions/ringnfs",
        "usr/share/zsh/vendor-completions/_ringnfs",
        "usr/share/fish/vendor_completions.d/ringnfs.fish",
        "usr/share/doc/ringnfs/copyright",
    ] {
        assert!(root.join(f).is_file(), "{f} is missing from the package");
    }
    // The man page of serve is generated from its options: every flag is in it.
    let page = run(Command::new("sh").arg("-c").arg(format!(
        "gzip -dc {}",
        root.join("usr/share/man/man1/ringnfs-serve.1.gz").display()
    )));
    for flag in [
        "delegations",
        "max\\-delegations\\-per\\-client",
        "io\\-mode",
        "lease\\-time",
    ] {
        assert!(page.contains(flag), "ringnfs-serve.1 lacks {flag}");
    }
    let bash = std::fs::read_to_string(root.join("usr/share/bash-completion/completions/ringnfs"))
        .unwrap();
    assert!(
        bash.contains("--max-delegations"),
        "bash completion of serve's flags"
    );

    // The default config is one `ringnfs serve --config` takes.
    let cfg = ringnfs::config::load(&root.join("etc/ringnfs/ringnfs.toml")).expect("parses");
    let start = ringnfs::options::StartOptions::new(
        ringnfs::options::ServeOptions::default(),
        Some((root.join("etc/ringnfs/ringnfs.toml"), cfg)),
    )
    .server_config(ringnfs::state::settings::Source::Default);
    assert_eq!(start.export_path, Path::new("/srv/ringnfs"));
    assert_eq!(
        start.state_dir.as_deref(),
        Some(Path::new("/var/lib/ringnfs"))
    );
    assert_eq!(start.listen, vec!["0.0.0.0:2049".parse().unwrap()]);

    // The unit: systemd's own checks (directives, sandboxing, executables). Its
    // ExecStart names the installed path; verify the copy in the scratch root instead.
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/ringnfs.service")).unwrap();
    assert!(unit.contains("Type=notify") && unit.contains("ExecReload="));
    let scratch_unit = dir.0.join("ringnfs.service");
    std::fs::write(
        &scratch_unit,
        unit.replace(
            "/usr/bin/ringnfs",
            &root.join("usr/bin/ringnfs").to_string_lossy(),
        ),
    )
    .unwrap();
    run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&scratch_unit));
}

/// SIGHUP (`systemctl reload`) applies the config file's live settings to a running
/// server and leaves it serving; a config that does not parse changes nothing.
#[test]
fn sighup_reloads_live_settings_from_the_config_file() {
    use std::io::Read;
    let dir = common::TempDir::new("reload");
    let config = dir.0.join("ringnfs.toml");
    let state = dir.0.join("state");
    std::fs::write(&config, "lease_time = 60\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let control = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringnfs"))
        .args(["serve", "--backend", "memory", "--threads", "1", "--no-pin"])
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--control")
        .arg(control.to_string())
        .arg("--state-dir")
        .arg(&state)
        .arg("--config")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("server starts");
    let _kill = KillOnDrop(child.id());
    let settings = || -> Option<serde_json::Value> {
        let c = ringnfs::control::client::HttpClient::new(control, None);
        c.get("/api/v1/settings").ok()?.json().ok()
    };
    assert!(
        common::wait_until(std::time::Duration::from_secs(20), || settings().is_some()),
        "the control plane answers"
    );
    assert_eq!(settings().unwrap()["lease_time"], 60);
    let hup = |c: &std::process::Child| {
        // SAFETY: a signal to our own child process.
        assert_eq!(unsafe { libc::kill(c.id() as i32, libc::SIGHUP) }, 0);
    };
    std::fs::write(&config, "lease_time = 45\ndelegations = true\n").unwrap();
    hup(&child);
    assert!(
        common::wait_until(std::time::Duration::from_secs(10), || {
            settings().is_some_and(|s| s["lease_time"] == 45 && s["delegations"] == true)
        }),
        "SIGHUP applied the file: {:?}",
        settings()
    );
    std::fs::write(&config, "lease_time = [oops\n").unwrap();
    hup(&child);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        settings().unwrap()["lease_time"],
        45,
        "a broken file changes nothing"
    );
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(status.success(), "{log}");
    assert!(log.contains("SIGHUP: live settings applied"), "{log}");
    assert!(
        log.contains("SIGHUP:") && log.contains("nothing changed"),
        "{log}"
    );
}

/// Under systemd (`Type=notify`): READY=1 once serving, WATCHDOG=1 while the NFS port
/// answers (WatchdogSec's half), STOPPING=1 on SIGTERM — read from a datagram socket
/// given as NOTIFY_SOCKET, as systemd gives it.
#[test]
fn the_server_speaks_the_systemd_notify_protocol() {
    use std::os::unix::net::UnixDatagram;
    let dir = common::TempDir::new("notify");
    let sock_path = dir.0.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // systemd names the watched process (WATCHDOG_PID): the shell's pid is the
    // server's once it execs.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_ringnfs"))
        .args(["serve", "--backend", "memory", "--threads", "1", "--no-pin"])
        .args(["--control", "off"])
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--state-dir")
        .arg(dir.0.join("state"))
        .env("NOTIFY_SOCKET", &sock_path)
        // 400 ms: a ping every 200 ms.
        .env("WATCHDOG_USEC", "400000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("server starts");
    let _kill = KillOnDrop(child.id());
    let mut buf = [0u8; 256];
    let mut next = || {
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).trim().to_string()
    };
    assert_eq!(next(), "READY=1");
    assert_eq!(next(), "WATCHDOG=1", "the NFS port answered a NULL");
    assert_eq!(next(), "WATCHDOG=1");
    // SAFETY: a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut got = next();
    while got == "WATCHDOG=1" {
        got = next();
    }
    assert_eq!(got, "STOPPING=1");
    assert!(child.wait().unwrap().success());
}
