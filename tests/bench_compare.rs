//! `ringnfs bench compare --short` end to end: starts ringnfs and nfs-ganesha, runs every
//! workload against both, writes the report, JSON and plots. Needs nfs-ganesha with its
//! VFS and MEM FSALs (`.ci/run` installs them); without them the test is skipped with a
//! message on stderr, and fails when `CI` is set. Fails when either server had errors,
//! connection failures or a run that could not be set up; asserts that the comparison
//! ran and every READ's data verified, never a speed.

use std::path::Path;
use std::process::Command;

fn ganesha_present() -> bool {
    let fsal =
        |n: &str| Path::new(&format!("/usr/lib/x86_64-linux-gnu/ganesha/libfsal{n}.so")).exists();
    Path::new("/usr/bin/ganesha.nfsd").exists() && fsal("vfs") && fsal("mem")
}

#[test]
fn short_compare_produces_report_and_plots() {
    if !ganesha_present() {
        ringnfs_testkit::skip(
            "short_compare_produces_report_and_plots",
            "nfs-ganesha is not installed (apt-get install nfs-ganesha nfs-ganesha-vfs \
             nfs-ganesha-mem, as .ci/run does)",
        );
        return;
    }
    let out = std::env::temp_dir().join(format!("ringnfs-compare-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let o = Command::new(env!("CARGO_BIN_EXE_ringnfs"))
        .args([
            "bench",
            "compare",
            "--short",
            "--no-install",
            "--port",
            "20580",
            // ganesha's MEM FSAL has crashed under the randread/randwrite runs here (its
            // process exits; every later run is refused) and does not keep file data
            // (its READs fail verification), so CI compares the local pair, whose peer
            // is ganesha's production FSAL (VFS).
            "--pairs",
            "local",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run ringnfs bench compare");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    // Exit 0 only when no row was refused a ratio (errors, connection failures).
    assert!(
        o.status.success(),
        "bench compare failed: {}\n{stdout}\n{stderr}",
        o.status
    );
    assert!(!stdout.contains("no ratio"), "{stdout}");

    let report = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    for w in ringnfs_bench::compare::DEFAULT_WORKLOADS {
        assert!(
            report.contains(&format!("| local | {} |", w.name())),
            "local {} row in\n{report}",
            w.name()
        );
    }
    assert!(report.contains("## Goals") && report.contains("GETATTR ops/s"));
    assert!(
        report.contains("Runs and sweep points alternate"),
        "{report}"
    );
    for axis in ["connections", "depth"] {
        let svg = std::fs::read_to_string(out.join(format!("sweep-local-getattr-{axis}.svg")))
            .expect("plot written");
        assert!(svg.starts_with("<svg") && svg.contains("ganesha") && svg.contains("ringnfs"));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(
        runs.len(),
        2 * ringnfs_bench::compare::DEFAULT_WORKLOADS.len()
    );
    let sweeps = json["sweeps"].as_array().unwrap();
    assert_eq!(sweeps.len(), 2 * 4, "two points each way, both servers");
    // Both servers, every run: set up, no errors, no connection failures, real work.
    for r in runs.iter().chain(sweeps) {
        let rep = &r["report"];
        assert!(r["setup_error"].is_null(), "{r}");
        assert_eq!(rep["error_total"], 0, "{r}");
        assert_eq!(
            rep["connection_failures"].as_array().unwrap().len(),
            0,
            "{r}"
        );
        assert!(rep["ops"].as_u64().unwrap() > 0, "{r}");
        assert!(rep["server_cpu_us_per_op"].as_f64().is_some(), "{r}");
    }
    for r in runs {
        let rep = &r["report"];
        if ["read", "randread", "mixed"].contains(&rep["workload"].as_str().unwrap()) {
            assert!(rep["verified_bytes"].as_u64().unwrap() > 0, "{r}");
        }
    }
    // The sweep alternates which server goes first.
    let firsts: Vec<&str> = sweeps
        .chunks(2)
        .map(|p| p[0]["server"].as_str().unwrap())
        .collect();
    assert!(
        firsts.windows(2).all(|w| w[0] != w[1]),
        "sweep order {firsts:?}"
    );
    // The servers' work directories are gone; their logs stay.
    assert!(!out.join(".work-local-ringnfs").exists());
    assert!(out.join("local-ganesha.log").exists());
    let _ = std::fs::remove_dir_all(&out);
}
