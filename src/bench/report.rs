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

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub workload: String,
    pub server: String,
    pub sessions: usize,
    pub connections_per_session: usize,
    /// Requests in flight per connection (after clamping to the negotiated slots).
    pub depth: usize,
    /// Length of the measured window, seconds.
    pub elapsed_s: f64,
    pub ops: u64,
    pub ops_per_sec: f64,
    /// Data moved per second (READ/WRITE workloads), MiB/s.
    pub mib_per_sec: f64,
    /// Bytes per READ/WRITE (after the server's limits; 0 for metadata workloads).
    pub io_size: u64,
    /// READ data was checked against the written pattern.
    pub verify: bool,
    /// READ bytes that matched the pattern (mismatches are errors `verify_mismatch`).
    pub verified_bytes: u64,
    pub latency_us: Latency,
    pub errors: BTreeMap<String, u64>,
    pub error_total: u64,
    pub server_cpu_us_per_op: Option<f64>,
    pub client_cpu_us_per_op: Option<f64>,
    /// Connections that failed (reset, closed, protocol error), with the reason.
    pub connection_failures: Vec<String>,
}

impl BenchReport {
    /// A few lines for people.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "workload {} against {}: {} session(s) x {} connection(s) x depth {}\n",
            self.workload, self.server, self.sessions, self.connections_per_session, self.depth
        );
        s += &format!(
            "{} ops in {:.2} s = {:.0} ops/s\n",
            self.ops, self.elapsed_s, self.ops_per_sec
        );
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
        s += &format!(
            "latency us: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  mean {:.1}\n",
            l.p50, l.p90, l.p99, l.p999, l.max, l.mean
        );
        if let Some(c) = self.server_cpu_us_per_op {
            s += &format!("server CPU {c:.2} us/op\n");
        }
        if let Some(c) = self.client_cpu_us_per_op {
            s += &format!("client CPU {c:.2} us/op\n");
        }
        if self.error_total > 0 {
            let by: Vec<String> = self
                .errors
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            s += &format!("errors: {} ({})\n", self.error_total, by.join(", "));
        }
        for f in &self.connection_failures {
            s += &format!("connection failure: {f}\n");
        }
        s
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
