//! At the default log level the server's log holds no file contents, no file names a
//! client wrote, and no credentials (the control-plane token, bad tokens presented to
//! it, AUTH_SYS machine names), whatever the clients do, malformed input included.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ringnfs::client::{Client, ClientOptions, Files};
use ringnfs::rpc::{AuthSys, Credential};

const WAIT: Duration = Duration::from_secs(20);

fn http(addr: SocketAddr, req: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn default_level_logs_carry_no_file_contents_or_credentials() {
    let dir = std::env::temp_dir().join(format!("ringnfs-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringnfs"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--control",
            "127.0.0.1:0",
        ])
        .args(["--threads", "2", "--no-pin"])
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--export")
        .arg(dir.join("export"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = Vec::new();
        let mut control = None;
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(at) = line.find("addr=") {
                control = Some(line[at + 5..].trim().to_string());
            }
            if line.contains("ringnfs serving")
                && let Some(tx) = tx.take()
            {
                let at = line.find("addrs=[").unwrap() + 7;
                let end = line[at..].find(']').unwrap() + at;
                let _ = tx.send((line[at..end].to_string(), control.clone().unwrap()));
            }
            lines.push(line);
        }
        lines
    });
    let (nfs, control) = rx.recv_timeout(WAIT).expect("server started");
    let nfs: SocketAddr = nfs.parse().unwrap();
    let control: SocketAddr = control.parse().unwrap();
    let token = std::fs::read_to_string(dir.join("state").join("control-token"))
        .unwrap()
        .trim()
        .to_string();

    // File traffic with a recognisable content, name and machine name.
    let cred = Credential::Sys(AuthSys {
        stamp: 1,
        machine_name: b"host-MACHINE-SECRET".to_vec(),
        uid: 1000,
        gid: 1000,
        gids: vec![],
    });
    let (_, s) = Client::connect(
        &[nfs],
        ClientOptions {
            cred,
            timeout: WAIT,
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let f = Files::new(s);
    let root = f.root_fh().unwrap();
    let (_, file) = f.create(&root, b"NAME-SECRET", 0o644).unwrap();
    f.write(&file, 0, b"CONTENT-SECRET-0123456789", 2).unwrap();
    f.read(&file, 0, 100).unwrap();
    // Malformed traffic too.
    let mut raw = TcpStream::connect(nfs).unwrap();
    raw.write_all(&[0x80, 0, 0, 16]).unwrap();
    raw.write_all(b"CONTENT-SECRET-x").unwrap();
    drop(raw);
    // Control plane: a change with the right token, requests with a wrong one.
    let body = r#"{"max_connections_per_session": 8}"#;
    let ok = http(
        control,
        &format!(
            "PATCH /api/v1/settings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let bad = http(
        control,
        "DELETE /api/v1/sessions/00 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer WRONG-TOKEN-SECRET\r\nConnection: close\r\n\r\n",
    );
    assert!(bad.starts_with("HTTP/1.1 401"), "{bad}");

    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let end = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < end, "server stops");
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = reader.join().unwrap().join("\n");
    assert!(!log.is_empty());
    for secret in [
        token.as_str(),
        "WRONG-TOKEN-SECRET",
        "CONTENT-SECRET",
        "NAME-SECRET",
        "MACHINE-SECRET",
    ] {
        assert!(!log.contains(secret), "log contains {secret:?}:\n{log}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
