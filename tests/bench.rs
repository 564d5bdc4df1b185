//! The load generator's workloads against a real in-process server: every request
//! succeeds, the counts add up, and with `--verify` every READ returned the bytes the
//! bench wrote (no timing is asserted).

pub mod common;

use std::time::Duration;

use common::TestServer;
use ringnfs_bench::{BenchOptions, Workload, run};

fn opts(srv: &TestServer, workload: Workload) -> BenchOptions {
    BenchOptions {
        connections: 2,
        sessions: 2,
        depth: 4,
        duration: Duration::from_secs(1),
        ops: Some(400),
        warmup: Duration::ZERO,
        file_size: 4 << 20,
        ..BenchOptions::new(srv.addr(), workload)
    }
}

fn check(w: Workload, r: &ringnfs_bench::BenchReport, ops: u64) {
    assert_eq!(r.error_total, 0, "{w:?}: {:?}", r.errors);
    assert!(
        r.connection_failures.is_empty(),
        "{w:?}: {:?}",
        r.connection_failures
    );
    assert_eq!(r.ops, ops, "{w:?}");
}

#[test]
fn file_workloads_run_without_errors() {
    let srv = TestServer::start();
    for w in [
        Workload::Write,
        Workload::Read,
        Workload::Randwrite,
        Workload::Randread,
        Workload::Getattr,
    ] {
        let r = run(opts(&srv, w)).unwrap_or_else(|e| panic!("{w:?}: {e:#}"));
        check(w, &r, 400);
        if w.io_size() > 0 {
            assert!(r.mib_per_sec > 0.0);
        }
    }
    // The prepared file holds what the read workloads read: 4 MiB.
    let m = srv.state().metrics_snapshot();
    assert!(m.op_count("READ") >= 800 && m.op_count("WRITE") >= 800);
}

#[test]
fn reads_verify_against_the_written_pattern() {
    let srv = TestServer::start();
    for w in [
        Workload::Write,
        Workload::Randwrite,
        Workload::Read,
        Workload::Randread,
    ] {
        let r = run(BenchOptions {
            verify: true,
            ..opts(&srv, w)
        })
        .unwrap_or_else(|e| panic!("{w:?}: {e:#}"));
        check(w, &r, 400);
        if matches!(w, Workload::Read | Workload::Randread) {
            // Every byte read was checked: 400 reads of the workload's I/O size.
            assert_eq!(r.verified_bytes, 400 * r.io_size, "{w:?}");
        } else {
            assert_eq!(r.verified_bytes, 0);
        }
    }
}

#[test]
fn lookup_workload() {
    let srv = TestServer::start();
    let r = run(opts(&srv, Workload::Lookup)).unwrap();
    check(Workload::Lookup, &r, 400);
    assert!(srv.state().metrics_snapshot().op_count("LOOKUP") >= 400);
}

#[test]
fn create_workload_makes_unique_files_and_can_remove_them() {
    let srv = TestServer::start();
    let r = run(opts(&srv, Workload::Create)).unwrap();
    check(Workload::Create, &r, 400);
    let m = srv.state().metrics_snapshot();
    assert!(m.op_count("OPEN") >= 400 && m.op_count("CLOSE") >= 400);
    // A second run (new names) with REMOVE in each COMPOUND.
    let r = run(BenchOptions {
        remove: true,
        ..opts(&srv, Workload::Create)
    })
    .unwrap();
    check(Workload::Create, &r, 400);
    assert!(srv.state().metrics_snapshot().op_count("REMOVE") >= 400);
}

#[test]
fn mixed_workload_verifies_its_reads() {
    let srv = TestServer::start();
    let r = run(BenchOptions {
        verify: true,
        ops: Some(2000),
        ..opts(&srv, Workload::Mixed)
    })
    .unwrap();
    check(Workload::Mixed, &r, 2000);
    assert!(r.verified_bytes > 0 && r.verified_bytes.is_multiple_of(4096));
    assert!(r.mib_per_sec > 0.0);
    let m = srv.state().metrics_snapshot();
    for op in ["GETATTR", "LOOKUP", "READ", "WRITE"] {
        assert!(m.op_count(op) > 0, "{op}");
    }
}

#[test]
fn local_backend_with_export_path_lookup() {
    // The bench resolves its directory from the root by LOOKUPs (as on ganesha's
    // pseudo file system): a subdirectory of the export works the same way.
    let dir = std::env::temp_dir().join(format!("ringnfs-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("sub"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let srv = TestServer::with(|c| {
        c.backend = ringnfs::server::BackendKind::Local;
        c.export_path = dir.clone();
    });
    let r = run(BenchOptions {
        verify: true,
        export_path: vec![b"sub".to_vec()],
        ..opts(&srv, Workload::Mixed)
    })
    .unwrap();
    check(Workload::Mixed, &r, 400);
    assert!(dir.join("sub").join("ringnfs-bench.dat").exists());
    drop(srv);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn failed_setup_destroys_what_it_created() {
    let srv = TestServer::start();
    // The export path does not exist: the preparing client's LOOKUP fails.
    let e = run(BenchOptions {
        export_path: vec![b"nope".to_vec()],
        ..opts(&srv, Workload::Getattr)
    })
    .unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("LOOKUP /nope: NFS4ERR_NOENT"), "{msg}");
    assert_eq!(
        srv.state().session_count(),
        0,
        "{:?}",
        srv.state().sessions()
    );
    assert_eq!(srv.state().client_count(), 0, "{:?}", srv.state().clients());

    // One slot per session cannot serve two connections: the first session is created,
    // then the run gives up; that session and its client are destroyed.
    let srv = TestServer::with(|c| c.max_fore_slots = 1);
    let e = run(opts(&srv, Workload::Sequence)).unwrap_err();
    assert!(format!("{e:#}").contains("slots"), "{e:#}");
    assert_eq!(
        srv.state().session_count(),
        0,
        "{:?}",
        srv.state().sessions()
    );
    assert_eq!(srv.state().client_count(), 0, "{:?}", srv.state().clients());
}
