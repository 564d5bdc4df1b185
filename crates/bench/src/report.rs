//! Benchmark results: JSON report, human summary, CPU accounting from /proc.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    pub fn from_hist(h: &Histogram<u64>) -> Self {
        let us = |ns: u64| ns as f64 / 1000.0;
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// Files the create workload left in the export directory (none with `--remove`,
/// unless a REMOVE failed).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FilesLeft {
    pub count: u64,
    /// The export directory, from the root of the server's namespace.
    pub directory: String,
    /// Their names (a shell pattern): unique per run.
    pub names: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BenchReport {
    pub workload: String,
    pub server: String,
    pub sessions: usize,
    pub connections_per_session: usize,
    /// Requests in flight per connection (after clamping to the negotiated slots).
    pub depth: usize,
    /// Seconds of load before the measured window.
    pub warmup_s: f64,
    /// Length of the measured window, seconds (it ends early on Ctrl-C).
    pub elapsed_s: f64,
    /// Successful replies in the measured window (with `verify`, READs whose data
    /// matched): the work done. Failed replies are in `errors`, never here.
    pub ops: u64,
    /// All replies in the measured window: `ops` + `error_total`.
    pub replies: u64,
    pub ops_per_sec: f64,
    /// Data moved per second by successful READs (bytes returned) and WRITEs (bytes
    /// the server acknowledged), MiB/s.
    pub mib_per_sec: f64,
    /// Bytes per READ/WRITE (after the server's limits; 0 for metadata workloads).
    pub io_size: u64,
    /// READ data was checked against the written pattern.
    pub verify: bool,
    /// READ bytes that matched the pattern (mismatches are errors `verify_mismatch`).
    pub verified_bytes: u64,
    /// Latency of the successful replies.
    pub latency_us: Latency,
    /// Failed replies by nfsstat4 name (or RPC failure, `verify_mismatch`).
    pub errors: BTreeMap<String, u64>,
    /// What to do about an error, by name, where one is known.
    pub error_hints: BTreeMap<String, String>,
    pub error_total: u64,
    /// Server CPU time per successful reply (None without `--server-pid` or ops).
    pub server_cpu_us_per_op: Option<f64>,
    pub client_cpu_us_per_op: Option<f64>,
    /// Connections that failed (reset, closed, protocol error), with the reason.
    pub connection_failures: Vec<String>,
    /// Ctrl-C ended the run: the figures are those measured until then.
    pub interrupted: bool,
    /// The create workload's files left behind (None for other workloads).
    pub files_left: Option<FilesLeft>,
    /// Sessions (and clients) the bench could not destroy at the end.
    pub teardown_errors: Vec<String>,
}

/// Seconds as people write them: "1", "0.5", "2.25".
fn secs(s: f64) -> String {
    let t = format!("{s:.3}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// "1 error", "2 errors".
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl BenchReport {
    /// The process exit status this run gives (see `ringnfs bench --help`).
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            super::interrupt::EXIT_INTERRUPTED
        } else if self.error_total > 0 || !self.connection_failures.is_empty() {
            super::error::EXIT_ERRORS
        } else {
            0
        }
    }

    /// Errors by name, "NFS4ERR_ACCESS 12, verify_mismatch 3".
    pub fn errors_by_name(&self) -> String {
        let by: Vec<String> = self
            .errors
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        by.join(", ")
    }

    /// A few lines for people; the last one says whether the run was clean.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "workload {} against {}: {} session(s) x {} connection(s) x depth {}\n",
            self.workload, self.server, self.sessions, self.connections_per_session, self.depth
        );
        s += &format!(
            "{} ops in {:.2} s after a {} s warm-up = {:.0} ops/s",
            self.ops,
            self.elapsed_s,
            secs(self.warmup_s),
            self.ops_per_sec
        );
        if self.error_total > 0 {
            s += &format!(
                "; {} ({})",
                plural(self.error_total, "error", "errors"),
                self.errors_by_name()
            );
        }
        s += "\n";
        for (name, hint) in &self.error_hints {
            s += &format!("{name}: {hint}\n");
        }
        if self.mib_per_sec > 0.0 {
            s += &format!(
                "throughput {:.1} MiB/s ({} KiB I/O)\n",
                self.mib_per_sec,
                self.io_size / 1024
            );
        }
        if self.verify && (self.verified_bytes > 0 || self.errors.contains_key("verify_mismatch")) {
            s += &format!(
                "verified {:.1} MiB of READ data, {} mismatch(es)\n",
                self.verified_bytes as f64 / (1 << 20) as f64,
                self.errors.get("verify_mismatch").copied().unwrap_or(0)
            );
        }
        let l = &self.latency_us;
        if self.ops > 0 {
            s += &format!(
                "latency us: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  mean {:.1}\n",
                l.p50, l.p90, l.p99, l.p999, l.max, l.mean
            );
        } else {
            s += "latency: no successful replies\n";
        }
        if let Some(c) = self.server_cpu_us_per_op {
            s += &format!("server CPU {c:.2} us/op\n");
        }
        if let Some(c) = self.client_cpu_us_per_op {
            s += &format!("client CPU {c:.2} us/op\n");
        }
        for f in &self.connection_failures {
            s += &format!("connection failure: {f}\n");
        }
        for t in &self.teardown_errors {
            s += &format!("teardown: {t}\n");
        }
        if let Some(f) = self.files_left.as_ref().filter(|f| f.count > 0) {
            s += &format!(
                "left {} named {} in {} (--remove deletes each in its own COMPOUND)\n",
                plural(f.count, "file", "files"),
                f.names,
                f.directory
            );
        }
        s += &self.verdict();
        s += "\n";
        s
    }

    /// The last line of [`summary`](Self::summary).
    fn verdict(&self) -> String {
        let failures = self.connection_failures.len() as u64;
        if self.interrupted {
            let cleanup = if self.teardown_errors.is_empty() {
                "nothing left on the server"
            } else {
                "see teardown above"
            };
            format!(
                "interrupted (Ctrl-C) after {:.2} s measured: the figures above are partial; \
                 {cleanup}",
                self.elapsed_s
            )
        } else if self.error_total > 0 || failures > 0 {
            format!(
                "FAILED: {} in {} replies, {}",
                plural(self.error_total, "error", "errors"),
                self.replies,
                plural(failures, "connection failure", "connection failures")
            )
        } else {
            format!("ok: {} replies, no errors", self.replies)
        }
    }
}

/// utime + stime of a process in microseconds, from /proc/<pid>/stat.
pub fn process_cpu_us(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat).map(|t| t * 1_000_000 / clock_ticks())
}

/// utime + stime (fields 14 and 15) in clock ticks. The command name (field 2) is in
/// parentheses and may contain spaces, so fields are counted after the last ')'.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14 → index 11.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// /proc reports times in USER_HZ, which the Linux ABI fixes at 100 on every
/// architecture this runs on.
fn clock_ticks() -> u64 {
    100
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat() {
        let s = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0";
        assert_eq!(parse_cpu_ticks(s), Some(300));
        assert!(process_cpu_us("self").is_some());
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn latency_from_histogram() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let l = Latency::from_hist(&h);
        assert!((l.p50 - 500.0).abs() < 2.0);
        assert!((l.max - 1000.0).abs() < 2.0);
    }
}
