//! Replays every fuzz corpus file and committed crash reproducer through the same entry
//! points the cargo-fuzz targets use (`ringnfs-fuzzing`), on stable Rust, so fixed
//! crashes stay fixed without nightly or libFuzzer:
//! `fuzz/corpus/<target>/*` and `fuzz/artifacts/<target>/*`.
//!
//! `capture_seed_corpus` (ignored; run with `cargo test --release --test fuzz_corpus --
//! --ignored`) regenerates the seed files `fuzz/corpus/*/seed-*` from real traffic: the
//! in-repo client runs a file workload against a server whose service records every
//! RPC record it receives.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use ringnfs_fuzzing as fuzzing;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 7] = [
    ("record_marking", fuzzing::record_marking),
    ("rpc_call", fuzzing::rpc_call),
    ("compound", fuzzing::compound),
    ("pipeline", fuzzing::pipeline),
    ("rest_json", fuzzing::rest_json),
    ("gss_wire", fuzzing::gss_wire),
    ("tls_probe", fuzzing::tls_probe),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn replay_corpus_and_crash_reproducers() {
    let mut total = 0;
    let mut failed = Vec::new();
    for (name, f) in TARGETS {
        let mut files = files_under(&fuzz_dir().join("corpus").join(name));
        let seeds = files.len();
        files.extend(files_under(&fuzz_dir().join("artifacts").join(name)));
        assert!(seeds > 0, "no corpus for {name}");
        for path in files {
            let data = std::fs::read(&path).unwrap();
            total += 1;
            let t = std::time::Instant::now();
            if std::panic::catch_unwind(|| f(&data)).is_err() {
                failed.push(path.display().to_string());
            }
            // A hang detector, not a performance claim: inputs take microseconds.
            if t.elapsed() > std::time::Duration::from_secs(10) {
                failed.push(format!("{} (took {:?})", path.display(), t.elapsed()));
            }
        }
    }
    assert!(failed.is_empty(), "inputs that fail: {failed:#?}");
    println!("replayed {total} inputs");
}

#[test]
fn the_harness_session_works() {
    // The placeholders reach a real session: SEQUENCE + PUTROOTFH succeeds.
    use ringnfs::client::{Op, SequenceArgs};
    let h = fuzzing::Harness::new();
    let mut sid = ringnfs::client::SessionId([0; 16]);
    sid.0.copy_from_slice(fuzzing::SESSION_PLACEHOLDER);
    let args = fuzzing::compound_args(&[
        Op::Sequence(SequenceArgs {
            sessionid: sid,
            sequenceid: 1,
            slotid: 0,
            highest_slotid: 0,
            cachethis: false,
        }),
        Op::PutRootFh,
    ]);
    let r = h.call_compound(&h.substitute(&args));
    assert_eq!(r.status.code(), 0, "{r:?}");
}

// ---- capture ------------------------------------------------------------------------------

/// Wraps the NFS service and keeps a copy of every record it receives.
struct Capture {
    inner: Arc<ringnfs::nfs4::program::NfsService>,
    records: Mutex<Vec<Vec<u8>>>,
}

impl ringnfs::service::Service for Capture {
    fn on_accept(&self, c: &ringnfs::service::ConnMeta) {
        self.inner.on_accept(c)
    }
    fn on_record(
        &self,
        c: &ringnfs::service::ConnMeta,
        rec: &[u8],
        out: &mut Vec<u8>,
    ) -> ringnfs::service::Outcome {
        self.records.lock().push(rec.to_vec());
        self.inner.on_record(c, rec, out)
    }
    fn on_close(&self, c: &ringnfs::service::ConnMeta) {
        self.inner.on_close(c)
    }
}

fn workload(addr: std::net::SocketAddr) -> (ringnfs::client::SessionId, u64) {
    use ringnfs::client::{Client, ClientOptions, Files, Op};
    let (ids, session) = Client::connect(
        &[addr],
        ClientOptions {
            cred: fuzzing::caller(),
            back_channel: false,
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let f = Files::new(session.clone());
    let root = f.root_fh().unwrap();
    let dir = f.mkdir(&root, b"d", 0o755).unwrap();
    let (fh, file) = f.create(&dir, b"file", 0o644).unwrap();
    f.write(&file, 0, b"hello fuzz", 2).unwrap();
    f.write(&file, 4096, &[7u8; 300], 0).unwrap();
    f.commit(&fh, 0, 0).unwrap();
    f.read(&file, 0, 64).unwrap();
    f.getattr(&fh).unwrap();
    f.access(&fh, 0x3f).unwrap();
    let lock = f.lock_new(&file, b"lo", 2, 0, 10).unwrap().unwrap();
    let _ = f.lockt(&fh, b"other", 2, 0, 100);
    let _ = f.locku(&fh, lock, 2, 0, 10);
    f.link(&fh, &dir, b"file2").unwrap();
    f.rename(&dir, b"file2", &root, b"moved").unwrap();
    f.readdir_all(&dir).unwrap();
    f.symlink(&dir, b"sl", b"../moved").unwrap();
    let sl = f.lookup(&dir, b"sl").unwrap();
    f.readlink(&sl).unwrap();
    f.lookupp(&dir).unwrap();
    f.close(file).unwrap();
    f.remove(&root, b"moved").unwrap();
    let _ = session.call(0, &[Op::PutRootFh, Op::SecinfoNoName(0)], false);
    let _ = session.call(0, &[Op::PutRootFh, Op::Secinfo(b"d".to_vec())], false);
    let _ = session.call(0, &[Op::ReclaimComplete { one_fs: false }], false);
    let _ = session.bind_conn(0, 3);
    let sid = session.sessionid();
    session.destroy().unwrap();
    let _ = session.destroy_clientid();
    (sid, ids.clientid)
}

#[test]
#[ignore = "regenerates fuzz/corpus/*/seed-*; run by hand"]
fn capture_seed_corpus() {
    use ringnfs::transport::{self, TransportConfig};
    let state = fuzzing::state();
    let export = Arc::new(fuzzing::memory_export());
    let cap = Arc::new(Capture {
        inner: ringnfs::nfs4::program::NfsService::new(state, export),
        records: Mutex::new(Vec::new()),
    });
    let t = transport::start(
        TransportConfig {
            threads: 1,
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            pin_cores: false,
            ..TransportConfig::default()
        },
        cap.clone(),
    )
    .unwrap();
    let (sid, clientid) = workload(t.local_addrs()[0]);
    t.shutdown();
    t.join().unwrap();
    let records = std::mem::take(&mut *cap.records.lock());
    let write = |target: &str, name: String, data: &[u8]| {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
    };
    let mut stream = Vec::new();
    for (i, rec) in records.iter().enumerate() {
        let mut rec = rec.clone();
        fuzzing::placeholders_for(&mut rec, &sid.0, clientid);
        write("rpc_call", format!("{i:03}"), &rec);
        if let Ok(ringnfs::rpc::RpcMessage::Call(c)) = ringnfs::rpc::decode_message(&rec) {
            let at = c.args.as_ptr() as usize - rec.as_ptr() as usize;
            write("compound", format!("{i:03}"), &rec[at..]);
        }
        stream.extend_from_slice(&ringnfs::rpc::record::frame(&rec));
        // The pipeline gets the traffic so far, so later calls find their state (a
        // few checkpoints keep the committed corpus small).
        if i % 7 == 6 || i + 1 == records.len() {
            write("pipeline", format!("{i:03}"), &stream);
        }
    }
    // Record marking: the whole stream under a few size limits and split patterns,
    // and a multi-fragment version of a few records.
    for (k, (max, seed)) in [(255u8, 0u8), (40, 7), (3, 12)].into_iter().enumerate() {
        let mut d = vec![max, seed];
        d.extend_from_slice(&stream[..stream.len().min(4096)]);
        write("record_marking", format!("{k}"), &d);
    }
    let mut frag = vec![255u8, 3];
    for rec in records.iter().take(4) {
        let (a, b) = rec.split_at(rec.len() / 2);
        frag.extend_from_slice(&(a.len() as u32).to_be_bytes());
        frag.extend_from_slice(a);
        frag.extend_from_slice(&(b.len() as u32 | 0x8000_0000).to_be_bytes());
        frag.extend_from_slice(b);
    }
    write("record_marking", "fragments".into(), &frag);
    for (i, body) in [
        r#"{"max_connections_per_session": 8}"#,
        r#"{"max_connections_per_session": 5000, "lease_time": 0}"#,
        r#"{"exclusive_binding": true, "lease_time": 120, "log_level": "info,ringnfs=debug"}"#,
        r#"{"log_level": "[{x=1}]"}"#,
        r#"{"unknown": 1}"#,
        "0x1234abcd",
        "6b0707780035eb1d52788528493e1e98",
    ]
    .iter()
    .enumerate()
    {
        write("rest_json", format!("{i}"), body.as_bytes());
    }
    println!("captured {} records", records.len());
}
