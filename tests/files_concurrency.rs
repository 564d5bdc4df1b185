//! Two clients on one file at the same time: concurrent writes to disjoint regions land
//! intact, a write lock excludes the other client exactly over its range while both keep
//! writing, and share reservations hold. On both backends.

pub mod common;
pub mod files_common;

use std::sync::{Arc, Barrier};

use files_common::for_each_backend;
use ringnfs::client::ops::{locktype, share, stable};
use ringnfs::nfs4::consts::status;

const REGION: usize = 256 * 1024;
const ROUNDS: usize = 8;

#[test]
fn two_clients_write_and_lock_one_file() {
    for_each_backend(|env| {
        let a = env.trunked_files(2);
        let b = env.trunked_files(2);
        let root = a.root_fh().unwrap();
        let (fh, fa) = a.create(&root, b"shared", 0o666).unwrap();
        let fb = b
            .open(&root, b"shared", share::ACCESS_BOTH, share::DENY_NONE)
            .unwrap();
        assert_eq!(fb.fh, fh);

        // Both write their own half, chunk by chunk, at the same time.
        let barrier = Arc::new(Barrier::new(2));
        let writer = |files: ringnfs::client::files::Files,
                      f: ringnfs::client::files::OpenFile,
                      half: usize,
                      byte: u8,
                      barrier: Arc<Barrier>| {
            std::thread::spawn(move || {
                barrier.wait();
                for r in 0..ROUNDS {
                    let chunk = REGION / ROUNDS;
                    let off = (half * REGION + r * chunk) as u64;
                    let (n, _) = files
                        .write(&f, off, &vec![byte; chunk], stable::UNSTABLE)
                        .unwrap();
                    assert_eq!(n as usize, chunk);
                }
                (files, f)
            })
        };
        let ta = writer(a, fa, 0, 0xaa, barrier.clone());
        let tb = writer(b, fb, 1, 0xbb, barrier);
        let (a, fa) = ta.join().unwrap();
        let (b, fb) = tb.join().unwrap();
        let data = b.read_all(&fb).unwrap();
        assert_eq!(data.len(), 2 * REGION);
        assert!(
            data[..REGION].iter().all(|&x| x == 0xaa),
            "client A's half intact"
        );
        assert!(
            data[REGION..].iter().all(|&x| x == 0xbb),
            "client B's half intact"
        );

        // A write-locks its half; B is refused exactly there and gets its own half.
        let la = a
            .lock_new(&fa, b"lock-a", locktype::WRITE, 0, REGION as u64)
            .unwrap()
            .expect("A locks");
        let denied = b
            .lock_new(&fb, b"lock-b", locktype::WRITE, REGION as u64 - 1, 2)
            .unwrap()
            .unwrap_err();
        assert_eq!((denied.offset, denied.length), (0, REGION as u64));
        let lb = b
            .lock_new(
                &fb,
                b"lock-b",
                locktype::WRITE,
                REGION as u64,
                REGION as u64,
            )
            .unwrap()
            .expect("B locks its half");
        assert!(
            a.lockt(&fh, b"lock-a", locktype::READ, REGION as u64, 1)
                .unwrap()
                .is_some()
        );
        // Locks are advisory: both still write (and read) their regions meanwhile.
        a.write(&fa, 0, &[1; 16], stable::FILE_SYNC).unwrap();
        b.write(&fb, REGION as u64, &[2; 16], stable::FILE_SYNC)
            .unwrap();
        // CLOSE with a lock held is refused; after unlocking, B can take A's old range.
        assert_eq!(
            a.close(fa.clone()).unwrap_err().nfs_status(),
            Some(status::NFS4ERR_LOCKS_HELD)
        );
        a.locku(&fh, la, locktype::WRITE, 0, REGION as u64).unwrap();
        let lb2 = b
            .lock_existing(&fh, lb, locktype::WRITE, 0, 16)
            .unwrap()
            .expect("B takes A's range");
        b.locku(&fh, lb2, locktype::WRITE, 0, u64::MAX).unwrap();
        a.close(fa).unwrap();

        // Share reservations: B denies writers; A can still read but not open for write.
        b.close(fb).unwrap();
        let fb = b
            .open(&root, b"shared", share::ACCESS_READ, share::DENY_WRITE)
            .unwrap();
        let err = a
            .open(&root, b"shared", share::ACCESS_WRITE, share::DENY_NONE)
            .unwrap_err();
        assert_eq!(err.nfs_status(), Some(status::NFS4ERR_SHARE_DENIED));
        let fa = a
            .open(&root, b"shared", share::ACCESS_READ, share::DENY_NONE)
            .unwrap();
        let head = a.read(&fa, 0, 16).unwrap().0;
        assert_eq!(head, vec![1; 16]);
        a.close(fa).unwrap();
        b.close(fb).unwrap();
    });
}
