//! Hand-run measurement of RPC-with-TLS against plain TCP, same server, same run,
//! alternating rounds (numbers, not assertions: these machines are noisy): 1 MiB
//! sequential WRITE and READ, and 4 KiB random READ, through the in-repo client with
//! several threads on one session of several connections each way. The server is the
//! `ringnfs` binary in a process of its own, so its CPU time per GiB moved (from
//! /proc) shows what TLS costs the server apart from what it costs the client, which
//! shares the machine's two cores here.
//!
//! Run: `cargo test --release --test tls_measure -- --ignored --nocapture`
//! Knobs (environment): `TLS_MEASURE_SECS` per round (default 3), `TLS_MEASURE_ROUNDS`
//! (default 3), `TLS_MEASURE_THREADS` (default 4).

pub mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::TempDir;
use ringnfs::client::ops::stable;
use ringnfs::client::{Client, ClientOptions, ClientTls, Files, OpenFile};
use ringnfs::rpc::{AuthSys, Credential};
use ringnfs_testkit::pki::{Role, TestCa};

const MIB: usize = 1 << 20;
const FILE_MIB: u64 = 64;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The server: `ringnfs serve` with TLS on the memory backend, its address and pid.
struct Served {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl Served {
    fn start(cert: &std::path::Path, key: &std::path::Path, state: &std::path::Path) -> Served {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_ringnfs"))
            .args([
                "serve",
                "--backend",
                "memory",
                "--no-root-squash",
                "--control",
                "off",
            ])
            .args(["--listen", &addr.to_string()])
            .arg("--state-dir")
            .arg(state)
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("ringnfs serve");
        let end = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < end, "the server did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        Served { child, addr }
    }

    /// The server's CPU seconds so far (user + system).
    fn cpu(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = after.split(' ').collect();
        let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
        ticks as f64 / 100.0
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn session(srv: &Served, tls: Option<ClientTls>, conns: usize) -> Files {
    let (_, s) = Client::connect(
        &[srv.addr],
        ClientOptions {
            cred: Credential::Sys(AuthSys::default()),
            connections: conns,
            slots: 64,
            tls,
            timeout: Duration::from_secs(60),
            ..ClientOptions::default()
        },
    )
    .expect("session");
    Files::new(s)
}

#[derive(Clone, Copy, Debug)]
enum Load {
    SeqWrite,
    SeqRead,
    RandRead4k,
}

impl Load {
    fn name(self) -> &'static str {
        match self {
            Load::SeqWrite => "1 MiB sequential WRITE",
            Load::SeqRead => "1 MiB sequential READ",
            Load::RandRead4k => "4 KiB random READ",
        }
    }
}

/// Each thread works on its own file: MiB moved per second, and the server's CPU
/// milliseconds per GiB moved.
fn run(
    srv: &Served,
    f: &Arc<Files>,
    files: &Arc<Vec<OpenFile>>,
    load: Load,
    secs: u64,
) -> (f64, f64) {
    let cpu0 = srv.cpu();
    let stop = Arc::new(AtomicBool::new(false));
    let bytes = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..files.len())
        .map(|t| {
            let (f, files, stop, bytes) = (f.clone(), files.clone(), stop.clone(), bytes.clone());
            std::thread::spawn(move || {
                let file = &files[t];
                let data = vec![t as u8; MIB];
                let mut off = 0u64;
                let mut x = 0x9e37_79b9u64 + t as u64;
                while !stop.load(Ordering::Relaxed) {
                    let n = match load {
                        Load::SeqWrite => {
                            f.write(file, off, &data, stable::UNSTABLE)
                                .expect("WRITE")
                                .0 as u64
                        }
                        Load::SeqRead => {
                            f.read(file, off, MIB as u32).expect("READ").0.len() as u64
                        }
                        Load::RandRead4k => {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            let at = (x % (FILE_MIB * 256)) * 4096;
                            f.read(file, at, 4096).expect("READ").0.len() as u64
                        }
                    };
                    bytes.fetch_add(n, Ordering::Relaxed);
                    off = (off + MIB as u64) % (FILE_MIB << 20);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let mib = bytes.load(Ordering::Relaxed) as f64 / MIB as f64;
    let cpu = srv.cpu() - cpu0;
    (
        mib / start.elapsed().as_secs_f64(),
        cpu * 1000.0 / (mib / 1024.0),
    )
}

/// A session's files, filled with FILE_MIB MiB each.
fn prepare(f: &Files, tag: &str, n: usize) -> Vec<OpenFile> {
    let root = f.root_fh().unwrap();
    let data = vec![7u8; MIB];
    (0..n)
        .map(|i| {
            let name = format!("{tag}-{i}");
            let (_, file) = f.create(&root, name.as_bytes(), 0o644).unwrap();
            for m in 0..FILE_MIB {
                f.write(&file, m << 20, &data, stable::UNSTABLE).unwrap();
            }
            file
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[test]
#[ignore = "hand-run measurement: cargo test --release --test tls_measure -- --ignored --nocapture"]
fn tls_against_plain_tcp() {
    let (secs, rounds, threads) = (
        env("TLS_MEASURE_SECS", 3),
        env("TLS_MEASURE_ROUNDS", 3),
        env("TLS_MEASURE_THREADS", 4) as usize,
    );
    let dir = TempDir::new("tls-measure");
    let ca = TestCa::new(&dir.0, "measure");
    let cert = ca.issue("server", &["127.0.0.1"], Role::Server, false);
    let srv = Served::start(&cert.cert, &cert.key, &dir.0.join("state"));
    let tls = ClientTls::new(&ca.cert, "127.0.0.1", None).unwrap();
    let plain = Arc::new(session(&srv, None, threads));
    let secure = Arc::new(session(&srv, Some(tls), threads));
    let plain_files = Arc::new(prepare(&plain, "plain", threads));
    let secure_files = Arc::new(prepare(&secure, "tls", threads));
    println!(
        "{threads} threads, {threads} connections per session, {secs} s rounds, {rounds} rounds each, memory backend"
    );
    println!(
        "| load | plain MiB/s | TLS MiB/s | TLS / plain | server CPU ms/GiB plain | TLS | TLS / plain |"
    );
    println!("|---|---|---|---|---|---|---|");
    for load in [Load::SeqWrite, Load::SeqRead, Load::RandRead4k] {
        let (mut p, mut t, mut pc, mut tc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let (rate, cpu) = run(&srv, &plain, &plain_files, load, secs);
            p.push(rate);
            pc.push(cpu);
            let (rate, cpu) = run(&srv, &secure, &secure_files, load, secs);
            t.push(rate);
            tc.push(cpu);
        }
        let (p, t, pc, tc) = (median(p), median(t), median(pc), median(tc));
        println!(
            "| {} | {p:.0} | {t:.0} | {:.2} | {pc:.0} | {tc:.0} | {:.2} |",
            load.name(),
            t / p,
            tc / pc
        );
    }
}
