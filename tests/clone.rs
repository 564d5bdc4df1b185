//! CLONE (RFC 7862 §15.13) and file-system limits over real sockets: the memory backend
//! (chunk-aligned clones), the local backend on ext4 (no reflinks: NFS4ERR_NOTSUPP), on
//! an XFS file system made with `reflink=1` on a loop device (real reflinks), and
//! ALLOCATE on a tiny tmpfs (NFS4ERR_NOSPC). The mounts need root and xfsprogs, which
//! `.ci/run` installs.

pub mod common;
pub mod files_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use files_common::{Env, TempDir, status_of};
use ringnfs::client::{ClientError, CloneArgs, Files, Op, SpaceArgs, Stateid};
use ringnfs::nfs4::attrs::attr;
use ringnfs::nfs4::consts::status;
use ringnfs::server::BackendKind;

/// A file system mounted for one test, unmounted when dropped.
struct Mount {
    at: PathBuf,
    _dir: TempDir,
}

impl Mount {
    /// `mount -t fstype [-o opts] source` on a fresh directory.
    fn new(fstype: &str, source: &Path, opts: &str) -> Result<Mount, String> {
        let dir = TempDir::new("mnt");
        let at = dir.path().join("fs");
        std::fs::create_dir_all(&at).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("mount");
        cmd.args(["-t", fstype]);
        if !opts.is_empty() {
            cmd.args(["-o", opts]);
        }
        run(cmd.arg(source).arg(&at))?;
        Ok(Mount { at, _dir: dir })
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A local-backend server exporting `dir`.
fn serve(dir: &Path) -> Env {
    let export = dir.to_path_buf();
    Env::start(BackendKind::Local, move |cfg| {
        cfg.export_path = export.clone()
    })
}

fn clone(
    f: &Files,
    src: &[u8],
    dst: &[u8],
    (src_offset, dst_offset, count): (u64, u64, u64),
) -> Result<(), ClientError> {
    f.call(&[
        Op::PutFh(src.to_vec()),
        Op::SaveFh,
        Op::PutFh(dst.to_vec()),
        Op::Clone(CloneArgs {
            src_stateid: Stateid::ANONYMOUS,
            dst_stateid: Stateid::ANONYMOUS,
            src_offset,
            dst_offset,
            count,
        }),
    ])
    .map(drop)
}

fn clone_blksize(f: &Files, fh: &[u8]) -> u32 {
    // A 4.2 attribute: asked in a 4.2 COMPOUND.
    f.session().use_minor_version(2);
    let bit = 1u32 << (attr::CLONE_BLKSIZE - 64);
    let r = f
        .call(&[Op::PutFh(fh.to_vec()), Op::GetAttr(vec![0, 0, bit])])
        .unwrap();
    let (mask, vals) = r.getattr().unwrap();
    assert_eq!(mask.get(2).copied().unwrap_or(0) & bit, bit);
    u32::from_be_bytes(vals[..4].try_into().unwrap())
}

/// Source and destination files with distinct content; returns their handles and the
/// source's bytes.
fn two_files(f: &Files, len: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let root = f.root_fh().unwrap();
    let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8 + 1).collect();
    let src = f.write_file(&root, b"src", &data).unwrap();
    let dst = f.write_file(&root, b"dst", &vec![0xAA; 4096]).unwrap();
    (src, dst, data)
}

fn read_all(f: &Files, name: &[u8]) -> Vec<u8> {
    f.read_file(&f.root_fh().unwrap(), name).unwrap()
}

#[test]
fn memory_backend_clones_whole_chunks() {
    let env = Env::start(BackendKind::Memory, |_| {});
    let f = env.files();
    let (src, dst, data) = two_files(&f, 300_000);
    let blk = clone_blksize(&f, &src);
    assert_eq!(blk, 65536);
    let b = u64::from(blk);
    // Two whole chunks into the destination at its second chunk.
    clone(&f, &src, &dst, (b, b, 2 * b)).unwrap();
    let got = read_all(&f, b"dst");
    assert_eq!(got.len() as u64, 3 * b);
    assert!(got[..4096].iter().all(|x| *x == 0xAA));
    assert!(
        got[4096..b as usize].iter().all(|x| *x == 0),
        "the gap reads as zeros"
    );
    assert!(got[b as usize..] == data[b as usize..3 * b as usize]);
    // To the end of the source (count 0), its last chunk partial.
    clone(&f, &src, &dst, (0, 0, 0)).unwrap();
    assert!(read_all(&f, b"dst")[..data.len()] == data[..]);
    // Misaligned offsets or count, ranges past the end, overlap within one file.
    let inval = |r| assert_eq!(status_of(r), status::NFS4ERR_INVAL);
    inval(clone(&f, &src, &dst, (1, 0, b)));
    inval(clone(&f, &src, &dst, (0, 7, b)));
    inval(clone(&f, &src, &dst, (0, 0, b + 1)));
    inval(clone(&f, &src, &dst, (4 * b, 0, b)));
    inval(clone(&f, &src, &src, (0, b, 2 * b)));
    clone(&f, &src, &src, (0, 4 * b + b, b)).unwrap();
    // Not between directories; the source is the saved filehandle.
    let root = f.root_fh().unwrap();
    assert_eq!(
        status_of(clone(&f, &root, &dst, (0, 0, 0))),
        status::NFS4ERR_ISDIR
    );
    let r = f
        .call_raw(&[
            Op::PutFh(dst.clone()),
            Op::Clone(CloneArgs {
                src_stateid: Stateid::ANONYMOUS,
                dst_stateid: Stateid::ANONYMOUS,
                src_offset: 0,
                dst_offset: 0,
                count: 0,
            }),
        ])
        .unwrap();
    assert_eq!(r.status, status::NFS4ERR_NOFILEHANDLE);
}

#[test]
fn ext4_has_no_reflinks() {
    let dir = TempDir::new("ext4");
    let env = serve(&dir.path().join("export"));
    let f = env.files();
    let (src, dst, _) = two_files(&f, 8192);
    assert_eq!(
        status_of(clone(&f, &src, &dst, (0, 0, 0))),
        status::NFS4ERR_NOTSUPP,
        "the temp dir's file system ({}) shares no blocks",
        dir.path().display()
    );
}

#[test]
fn xfs_with_reflink_clones_and_tmpfs_runs_out_of_space() {
    if Command::new("mkfs.xfs").arg("-V").output().is_err() {
        ringnfs_testkit::skip(
            "xfs_with_reflink_clones_and_tmpfs_runs_out_of_space",
            "mkfs.xfs is not installed (Debian: apt-get install xfsprogs; .ci/run does this)",
        );
        return;
    }
    let img_dir = TempDir::new("xfsimg");
    let img = img_dir.path().join("xfs.img");
    run(Command::new("truncate").args(["-s", "300M"]).arg(&img)).unwrap();
    run(Command::new("mkfs.xfs")
        .args(["-q", "-m", "reflink=1"])
        .arg(&img))
    .unwrap();
    let xfs = Mount::new("xfs", &img, "loop").expect("mounting the XFS image (needs root)");
    let export = xfs.at.join("export");
    {
        let env = serve(&export);
        let f = env.files();
        let (src, dst, data) = two_files(&f, 3 << 20);
        assert_eq!(clone_blksize(&f, &src), 4096);
        clone(&f, &src, &dst, (0, 0, 0)).unwrap();
        assert!(
            read_all(&f, b"dst") == data,
            "the clone reads as the source"
        );
        // Real reflinks: the source and the copy share their extents.
        let shared = Command::new("xfs_io")
            .args(["-r", "-c", "fiemap -v"])
            .arg(export.join("dst"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&shared.stdout);
        assert!(
            text.contains("0x2000") || text.contains("0x2001"),
            "FIEMAP shows shared extents: {text}"
        );
        // A block-misaligned clone is the file system's EINVAL.
        assert_eq!(
            status_of(clone(&f, &src, &dst, (1, 0, 4096))),
            status::NFS4ERR_INVAL
        );
    }
    // ALLOCATE beyond a 1 MiB tmpfs: NFS4ERR_NOSPC.
    let tmpfs = Mount::new("tmpfs", Path::new("tmpfs"), "size=1m").expect("mounting a tmpfs");
    let env = serve(&tmpfs.at.join("export"));
    let f = env.files();
    let root = f.root_fh().unwrap();
    let fh = f.write_file(&root, b"f", b"x").unwrap();
    let r = f.call(&[
        Op::PutFh(fh),
        Op::Allocate(SpaceArgs {
            stateid: Stateid::ANONYMOUS,
            offset: 0,
            length: 4 << 20,
        }),
    ]);
    assert_eq!(status_of(r), status::NFS4ERR_NOSPC);
}
