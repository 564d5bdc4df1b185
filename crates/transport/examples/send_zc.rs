//! Does io_uring `SEND_ZC` pay over plain `SEND` here, and from what size? (Issue 14
//! asks for zero-copy sends "above a measured threshold".)
//!
//! One TCP connection on loopback: this thread sends `SIZE`-byte messages through an
//! io_uring ring (plain `SEND`, or `SEND_ZC` with its buffer kept until the kernel's
//! notification), `DEPTH` in flight; a second thread receives and discards them. Prints,
//! per size and mode, the throughput and the CPU time of each side per MiB (the sender's
//! thread CPU includes the loopback delivery it runs in its own context).
//!
//! Run: `cargo run --release -p ringnfs-transport --example send_zc [SECONDS]`

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

#[path = "common/cpu.rs"]
mod cpu;
use cpu::thread_cpu;

use io_uring::{IoUring, cqueue, opcode, types};

const DEPTH: usize = 4;

/// Send `size`-byte messages for `secs`; returns (bytes, sender CPU, receiver CPU).
fn run(size: usize, zc: bool, secs: f64) -> (u64, Duration, Duration) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let rx = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let start = thread_cpu();
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        thread_cpu() - start
    });
    let tx = TcpStream::connect(addr).unwrap();
    tx.set_nodelay(true).unwrap();
    let fd = types::Fd(tx.as_raw_fd());
    let mut ring = IoUring::new(64).unwrap();
    let bufs: Vec<Vec<u8>> = (0..DEPTH).map(|i| vec![i as u8; size]).collect();
    // Per buffer: a send in flight, and (zero-copy) its notification still to come.
    let mut busy = [0u8; DEPTH];
    let mut sent = 0u64;
    let cpu0 = thread_cpu();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(secs);
    let mut stopping = false;
    loop {
        if !stopping {
            for (i, b) in bufs.iter().enumerate() {
                if busy[i] != 0 {
                    continue;
                }
                let e = if zc {
                    busy[i] = 2;
                    opcode::SendZc::new(fd, b.as_ptr(), b.len() as u32).build()
                } else {
                    busy[i] = 1;
                    opcode::Send::new(fd, b.as_ptr(), b.len() as u32).build()
                };
                // SAFETY: the buffer lives in `bufs` until the end and is not reused
                // until its completions (and notification) came back.
                unsafe { ring.submission().push(&e.user_data(i as u64)).unwrap() };
            }
        }
        ring.submit_and_wait(1).unwrap();
        for c in ring.completion() {
            let i = c.user_data() as usize;
            if cqueue::notif(c.flags()) {
                busy[i] -= 1;
                continue;
            }
            assert!(c.result() >= 0, "send failed: {}", c.result());
            sent += c.result() as u64;
            busy[i] -= if cqueue::more(c.flags()) { 1 } else { busy[i] };
        }
        if Instant::now() >= end {
            stopping = true;
        }
        if stopping && busy.iter().all(|b| *b == 0) {
            break;
        }
    }
    let tx_cpu = thread_cpu() - cpu0;
    drop(ring);
    drop(tx);
    let rx_cpu = rx.join().unwrap();
    (sent, tx_cpu, rx_cpu)
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    println!("| size | mode | MiB/s | sender CPU µs/MiB | receiver CPU µs/MiB | both µs/MiB |");
    println!("|---|---|---|---|---|---|");
    for size in [4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20] {
        for zc in [false, true] {
            let (bytes, tx, rx) = run(size, zc, secs);
            let mib = bytes as f64 / (1 << 20) as f64;
            let per = |d: Duration| d.as_secs_f64() * 1e6 / mib;
            println!(
                "| {} KiB | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
                size >> 10,
                if zc { "SEND_ZC" } else { "SEND" },
                mib / secs,
                per(tx),
                per(rx),
                per(tx) + per(rx),
            );
        }
    }
}
