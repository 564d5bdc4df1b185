//! What would splicing page-cache pages into the socket save a 1 MiB READ here? The
//! server copies READ data twice today (page cache → reply buffer by `preadv2`, reply →
//! socket by the send); knfsd instead hands the page-cache pages to TCP (splice). This
//! measures both on loopback with a cached file: `pread` + `send` against
//! `splice(file → pipe)` + `splice(pipe → socket)`, 1 MiB at a time, a second thread
//! receiving, and prints each side's CPU per MiB (the sender's includes the loopback
//! delivery it runs in its own context).
//!
//! Run: `cargo run --release -p ringnfs-transport --example splice_read [SECONDS]`

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

#[path = "common/cpu.rs"]
mod cpu;
use cpu::thread_cpu;

const CHUNK: usize = 1 << 20;
const FILE: usize = 64 << 20;

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 returns.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: two new descriptors nothing else owns.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // A pipe that holds a whole chunk (the default holds 64 KiB).
    // SAFETY: fcntl on a descriptor we own.
    let got = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, CHUNK as libc::c_int) };
    assert!(got >= CHUNK as i32, "F_SETPIPE_SZ: {got}");
    (r, w)
}

fn splice(from: i32, off: Option<&mut i64>, to: i32, len: usize) -> usize {
    let off = off.map_or(std::ptr::null_mut(), |o| o as *mut i64);
    // SAFETY: valid descriptors; `off` is null or points to a live i64.
    let n = unsafe {
        libc::splice(
            from,
            off,
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE,
        )
    };
    assert!(n > 0, "splice: {}", std::io::Error::last_os_error());
    n as usize
}

/// Send the file over and over for `secs`; returns (bytes, sender CPU, receiver CPU).
fn run(file: &std::fs::File, spliced: bool, secs: f64) -> (u64, Duration, Duration) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let rx = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = vec![0u8; CHUNK];
        let start = thread_cpu();
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        thread_cpu() - start
    });
    let mut tx = TcpStream::connect(addr).unwrap();
    let (pr, pw) = pipe();
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0u64;
    let mut off = 0usize;
    let cpu0 = thread_cpu();
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        if spliced {
            let mut o = off as i64;
            let mut n = splice(file.as_raw_fd(), Some(&mut o), pw.as_raw_fd(), CHUNK);
            while n > 0 {
                n -= splice(pr.as_raw_fd(), None, tx.as_raw_fd(), n);
            }
        } else {
            file.read_exact_at(&mut buf, off as u64).unwrap();
            tx.write_all(&buf).unwrap();
        }
        sent += CHUNK as u64;
        off = (off + CHUNK) % FILE;
    }
    let tx_cpu = thread_cpu() - cpu0;
    drop(tx);
    (sent, tx_cpu, rx.join().unwrap())
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let path = std::env::temp_dir().join(format!("ringnfs-splice-{}", std::process::id()));
    std::fs::write(&path, vec![7u8; FILE]).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    // Read once so the whole file is in the page cache.
    let mut warm = vec![0u8; FILE];
    file.read_exact_at(&mut warm, 0).unwrap();
    println!("| path | MiB/s | sender CPU µs/MiB | receiver CPU µs/MiB |");
    println!("|---|---|---|---|");
    for spliced in [false, true, false, true] {
        let (bytes, tx, rx) = run(&file, spliced, secs);
        let mib = bytes as f64 / (1 << 20) as f64;
        let per = |d: Duration| d.as_secs_f64() * 1e6 / mib;
        println!(
            "| {} | {:.0} | {:.0} | {:.0} |",
            if spliced { "splice" } else { "pread + send" },
            mib / secs,
            per(tx),
            per(rx)
        );
    }
    let _ = std::fs::remove_file(&path);
}
