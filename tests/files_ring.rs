//! On the local backend, READ, WRITE (with its fsync for stable writes) and COMMIT run
//! on the worker's io_uring ring, and the data round-trips; on the memory backend they
//! do not touch the ring.

mod common;
mod files_common;

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
        let back = f.read_all(&file).unwrap();
        assert_eq!(back.len(), (1 << 20) + 4096);
        assert!(back[..1 << 20] == data[..], "data read back intact");
        let (tail, eof) = f.read(&file, (1 << 20) + 4000, 1000).unwrap();
        assert_eq!((tail.len(), eof), (96, true));
        let ops = env.server.transport_stats().file_ops - before;
        if env.is_local() {
            // write, write + fsync, commit's fsync, and at least two reads.
            assert!(ops >= 6, "file operations on the ring: {ops}");
        } else {
            assert_eq!(ops, 0, "the memory backend does its I/O in place");
        }
        f.close(file).unwrap();
    });
}
