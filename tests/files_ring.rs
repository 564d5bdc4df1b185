//! On the local backend, WRITE (with its fsync for stable writes) and COMMIT run on the
//! worker's io_uring ring (READs too, unless the page cache can answer at once), and the
//! data round-trips; on the memory backend they do not touch the ring.

pub mod common;
pub mod files_common;

use files_common::for_each_backend;
use ringnfs::client::ops::stable;

#[test]
fn data_ops_go_through_the_ring_on_real_files() {
    for_each_backend(|env| {
        let f = env.files();
        let root = f.root_fh().unwrap();
        let (_, file) = f.create(&root, b"ring", 0o644).unwrap();
        let before = env.server.transport_stats().file_ops;
        let data: Vec<u8> = (0..(1 << 20)).map(|i| (i * 7 % 251) as u8).collect();
        let (n, v1) = f.write(&file, 0, &data, stable::UNSTABLE).unwrap();
        assert_eq!(n as usize, data.len());
        let (n, v2) = f
            .write(&file, 1 << 20, &data[..4096], stable::FILE_SYNC)
            .unwrap();
        assert_eq!(n, 4096);
        assert_eq!(v1, v2, "one write verifier per server run");
        assert_eq!(f.commit(&file.fh, 0, 0).unwrap(), v1);
        if let Some(export) = env.export_path() {
            // Evict the (synced) file from the page cache so the READs below must wait
            // for the disk, i.e. go through the ring.
            use std::os::fd::AsRawFd;
            let local = std::fs::File::open(export.join("ring")).unwrap();
            // SAFETY: a plain advisory call on a descriptor we own.
            let r =
                unsafe { libc::posix_fadvise(local.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            assert_eq!(r, 0);
        }
        let before_reads = env.server.transport_stats().file_ops;
        let back = f.read_all(&file).unwrap();
        if env.is_local() && !on_tmpfs(&env.export_path().unwrap()) {
            let reads = env.server.transport_stats().file_ops - before_reads;
            assert!(reads >= 1, "uncached READs went through the ring ({reads})");
        }
        assert_eq!(back.len(), (1 << 20) + 4096);
        assert!(back[..1 << 20] == data[..], "data read back intact");
        let (tail, eof) = f.read(&file, (1 << 20) + 4000, 1000).unwrap();
        assert_eq!((tail.len(), eof), (96, true));
        let ops = env.server.transport_stats().file_ops - before;
        if env.is_local() {
            // write, write + fsync, commit's fsync (cached reads are served in place).
            assert!(ops >= 4, "file operations on the ring: {ops}");
        } else {
            assert_eq!(ops, 0, "the memory backend does its I/O in place");
        }
        f.close(file).unwrap();
    });
}

/// tmpfs keeps file data in the page cache itself: nothing can be evicted there.
fn on_tmpfs(path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: statfs fills the zeroed struct we own from a NUL-terminated path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    r == 0 && st.f_type == libc::TMPFS_MAGIC
}

#[test]
fn a_write_whose_connection_closes_still_completes_for_the_retry() {
    use ringnfs::client::Op;
    use ringnfs::nfs4::consts::status;
    use ringnfs::state::stateid::Stateid;
    for_each_backend(|env| {
        if !env.is_local() {
            return;
        }
        let f = env.files();
        let root = f.root_fh().unwrap();
        let (fh, file) = f.create(&root, b"orphan", 0o666).unwrap();
        f.close(file).unwrap();
        let s = env.server.trunked_session(2);
        let ops = vec![
            Op::PutFh(fh.clone()),
            Op::Write {
                stateid: Stateid::ANONYMOUS,
                offset: 0,
                stable: stable::FILE_SYNC,
                data: vec![9; 1 << 20],
            },
        ];
        // Send on connection 0 and close it at once: the WRITE (and its fsync) may still
        // be on the ring when the connection goes.
        let (s0, ops0) = (s.clone(), ops.clone());
        let t = std::thread::spawn(move || s0.call_on_slot(0, 5, 1, &ops0, true));
        std::thread::sleep(std::time::Duration::from_millis(5));
        s.connection(0).unwrap().shutdown();
        let _ = t.join().unwrap();
        // The retry of the same slot/seqid on connection 1 must get the answer (the
        // cached reply, or a fresh execution if the first never arrived), never DELAY
        // forever.
        let mut last = ringnfs::nfs4::consts::NfsStatus::default();
        for _ in 0..500 {
            let r = s.call_on_slot(1, 5, 1, &ops, true).unwrap();
            last = r.status;
            if r.status != status::NFS4ERR_DELAY {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(last, status::NFS4_OK);
    });
}
