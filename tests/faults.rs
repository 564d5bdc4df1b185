//! Faults: a full disk on the local backend (a tiny tmpfs, when we may mount one),
//! a client that disconnects in the middle of a large WRITE, and SIGTERM during a write
//! load (the server as a child process: it exits 0 and every acknowledged stable or
//! committed write is there after a restart).

pub mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{TempDir, TestServer};
use parking_lot::Mutex;
use ringnfs::client::{Client, ClientOptions, Files, Op};
use ringnfs::fs::FsError;
use ringnfs::nfs4::consts::status;
use ringnfs::server::BackendKind;

const WAIT: Duration = Duration::from_secs(20);
const FILE_SYNC: u32 = 2;
const UNSTABLE: u32 = 0;

fn files(addr: SocketAddr) -> Files {
    let (_, s) = Client::connect(
        &[addr],
        ClientOptions {
            timeout: WAIT,
            back_channel: false,
            ..ClientOptions::default()
        },
    )
    .expect("session");
    Files::new(s)
}

#[test]
fn os_errors_map_to_their_nfs_statuses() {
    assert_eq!(
        FsError::from_errno(libc::ENOSPC).status(),
        status::NFS4ERR_NOSPC
    );
    assert_eq!(
        FsError::from_errno(libc::EDQUOT).status(),
        status::NFS4ERR_DQUOT
    );
    assert_eq!(FsError::from_errno(libc::EIO).status(), status::NFS4ERR_IO);
    assert_eq!(
        FsError::from_errno(libc::EROFS).status(),
        status::NFS4ERR_ROFS
    );
    // Anything unexpected is an I/O error, never a panic or success.
    assert_eq!(FsError::from_errno(9999).status(), status::NFS4ERR_IO);
}

/// Mount a tmpfs of `size` at `dir`; false when not allowed (not root, no mount).
fn mount_tmpfs(dir: &Path, size: &str) -> bool {
    Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=1777"),
            "tmpfs",
        ])
        .arg(dir)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_nfs4err_nospc_and_the_server_goes_on() {
    let dir = TempDir::new("faults-enospc");
    let export = dir.0.join("export");
    std::fs::create_dir_all(&export).unwrap();
    if !mount_tmpfs(&export, "256k") {
        ringnfs_testkit::skip(
            "a_full_disk_is_nfs4err_nospc_and_the_server_goes_on",
            "cannot mount a tmpfs here (needs root)",
        );
        return;
    }
    let _unmount = Unmount(export.clone());
    let srv = TestServer::with(|c| {
        c.backend = BackendKind::Local;
        c.export_path = export.clone();
    });
    let f = files(srv.addr());
    let root = f.root_fh().unwrap();
    let (_fh, file) = f.create(&root, b"big", 0o644).unwrap();
    let chunk = vec![0xabu8; 64 << 10];
    let mut failure = None;
    for i in 0..16u64 {
        for how in [UNSTABLE, FILE_SYNC] {
            match f.write(&file, i * chunk.len() as u64, &chunk, how) {
                Ok(_) => {}
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if failure.is_some() {
            break;
        }
    }
    let e = failure.expect("a 256 KiB file system fills up");
    assert_eq!(e.nfs_status(), Some(status::NFS4ERR_NOSPC), "{e:?}");
    // The server keeps serving, and once space is freed, writes succeed again.
    let r = f.call(&[Op::PutRootFh, Op::GetFh]).unwrap();
    assert_eq!(r.status, status::NFS4_OK);
    f.close(file).unwrap();
    f.remove(&root, b"big").unwrap();
    let (_, again) = f.create(&root, b"small", 0o644).unwrap();
    f.write(&again, 0, b"fits now", FILE_SYNC).unwrap();
}

#[test]
fn a_client_gone_in_the_middle_of_a_large_write_leaves_nothing_behind() {
    let dir = TempDir::new("faults-midwrite");
    let export = dir.0.join("export");
    let srv = TestServer::with(|c| {
        c.backend = BackendKind::Local;
        c.export_path = export.clone();
    });
    let f = files(srv.addr());
    let root = f.root_fh().unwrap();
    let (fh, file) = f.create(&root, b"target", 0o644).unwrap();
    // Encode the WRITE ourselves and send only part of the 1 MiB record.
    let (_, s) = Client::connect(&[srv.addr()], ClientOptions::default()).unwrap();
    let mut args = Vec::new();
    let sid = s.sessionid();
    ringnfs::client::ops::encode_compound(
        &mut args,
        1,
        b"",
        &[
            Op::Sequence(ringnfs::client::SequenceArgs {
                sessionid: sid,
                sequenceid: 1,
                slotid: 0,
                highest_slotid: 0,
                cachethis: false,
            }),
            Op::PutFh(fh.clone()),
            Op::Write {
                stateid: file.stateid,
                offset: 0,
                stable: FILE_SYNC,
                data: vec![0x77; 1 << 20],
            },
        ],
    );
    let mut rec = Vec::new();
    ringnfs::rpc::encode_call(
        &mut rec,
        0x1234,
        ringnfs::nfs4::consts::NFS4_PROGRAM,
        ringnfs::nfs4::consts::NFS4_VERSION,
        ringnfs::nfs4::consts::PROC_COMPOUND,
        &ringnfs::rpc::Credential::None,
    );
    rec.extend_from_slice(&args);
    let framed = ringnfs::rpc::record::frame(&rec);
    let before = srv.state().connection_count();
    let mut raw = std::net::TcpStream::connect(srv.addr()).unwrap();
    raw.write_all(&framed[..framed.len() / 2]).unwrap();
    assert!(common::wait_until(WAIT, || {
        srv.state().connection_count() == before + 1
    }));
    std::thread::sleep(Duration::from_millis(200));
    drop(raw);
    assert!(
        common::wait_until(WAIT, || srv.state().connection_count() == before),
        "the half-sent request's connection is cleaned up"
    );
    // Nothing was written, and the file is as it was.
    assert_eq!(f.getattr(&fh).unwrap().size, Some(0));
    let (data, _) = f.read(&file, 0, 16).unwrap();
    assert!(data.is_empty());
    assert_eq!(std::fs::metadata(export.join("target")).unwrap().len(), 0);
    // The slot the half-sent request named was never used: the session works.
    let r = s.call(0, &[Op::PutRootFh], false).unwrap();
    assert_eq!(r.status, status::NFS4_OK);
}

// ---- SIGTERM under load ---------------------------------------------------------------

fn spawn_server(dir: &Path, port: u16) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringnfs"))
        .args(["serve", "--threads", "2", "--no-pin", "--control", "off"])
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--export")
        .arg(dir.join("export"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringnfs");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("ringnfs serving")
                && let Some(tx) = tx.take()
            {
                let at = line.find("addrs=[").unwrap() + 7;
                let end = line[at..].find(']').unwrap() + at;
                let _ = tx.send(line[at..end].to_string());
            }
        }
    });
    let addr = rx.recv_timeout(WAIT).expect("server started");
    (child, addr.parse().unwrap())
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let end = Instant::now() + WAIT;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(Instant::now() < end, "server did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_under_write_load_exits_0_and_keeps_every_acknowledged_write() {
    let dir = TempDir::new("faults-sigterm");
    let (mut child, addr) = spawn_server(&dir.0, 0);
    // Acknowledged (file, offset, byte) triples: FILE_SYNC replies, or UNSTABLE writes
    // followed by a successful COMMIT.
    let acked: Arc<Mutex<Vec<(String, u64, u8)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4u8 {
        let (acked, stop) = (acked.clone(), stop.clone());
        writers.push(std::thread::spawn(move || {
            let f = files(addr);
            let root = f.root_fh().unwrap();
            let name = format!("w{w}");
            let (fh, file) = f.create(&root, name.as_bytes(), 0o644).unwrap();
            let mut pending = Vec::new();
            for i in 0u64.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let byte = (i % 251) as u8 + 1;
                let how = if w % 2 == 0 { FILE_SYNC } else { UNSTABLE };
                if f.write(&file, i * 4096, &[byte; 4096], how).is_err() {
                    break; // the server is going away
                }
                if how == FILE_SYNC {
                    acked.lock().push((name.clone(), i * 4096, byte));
                } else {
                    pending.push((name.clone(), i * 4096, byte));
                    if i % 8 == 7 {
                        if f.commit(&fh, 0, 0).is_err() {
                            break;
                        }
                        acked.lock().append(&mut pending);
                    }
                }
            }
        }));
    }
    // Let the load run, then SIGTERM in the middle of it.
    let t = Instant::now();
    while acked.lock().len() < 200 && t.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = wait_exit(&mut child);
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }
    assert!(st.success(), "exit status after SIGTERM: {st}");
    // It no longer accepts connections.
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still accepting"
    );
    let acked = std::mem::take(&mut *acked.lock());
    assert!(
        acked.len() >= 200,
        "load ran ({} writes acknowledged)",
        acked.len()
    );
    // Restart on the same directories: every acknowledged write is there (checked both
    // through NFS, with the same file handles' key, and on disk).
    let (mut child, addr) = spawn_server(&dir.0, 0);
    let f = files(addr);
    let root = f.root_fh().unwrap();
    for (name, off, byte) in &acked {
        let on_disk = std::fs::read(dir.0.join("export").join(name)).unwrap();
        assert_eq!(
            on_disk.get(*off as usize..*off as usize + 4096),
            Some(&[*byte; 4096][..]),
            "{name} @ {off}"
        );
    }
    let file = f.open(&root, b"w0", 1, 0).unwrap();
    let (data, _) = f.read(&file, 0, 4096).unwrap();
    assert_eq!(data, vec![1u8; 4096]);
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(wait_exit(&mut child).success());
    println!("{} acknowledged writes checked after restart", acked.len());
}
