//! The load generator's file workloads against a real server: every request succeeds
//! and the counts add up (no timing is asserted).

mod common;

use std::time::Duration;

use common::TestServer;
use ringnfs::bench::{BenchOptions, Workload, run};
use ringnfs::rpc::Credential;

fn opts(srv: &TestServer, workload: Workload) -> BenchOptions {
    BenchOptions {
        server: srv.addr(),
        workload,
        connections: 2,
        sessions: 2,
        depth: 4,
        duration: Duration::from_secs(1),
        ops: Some(400),
        warmup: Duration::ZERO,
        server_pid: None,
        cred: Credential::None,
        progress: false,
        file_size: 4 << 20,
    }
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
        assert_eq!(r.error_total, 0, "{w:?}: {:?}", r.errors);
        assert!(
            r.connection_failures.is_empty(),
            "{w:?}: {:?}",
            r.connection_failures
        );
        assert_eq!(r.ops, 400, "{w:?}");
        if w.io_size() > 0 {
            assert!(r.mib_per_sec > 0.0);
        }
    }
    // The prepared file holds what the read workloads read: 4 MiB.
    let m = srv.state().metrics_snapshot();
    assert!(m.op_count("READ") >= 800 && m.op_count("WRITE") >= 800);
}
