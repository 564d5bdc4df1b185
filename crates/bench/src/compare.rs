//! `ringnfs bench compare`: ringnfs and nfs-ganesha on the same machine, identical
//! workloads against each in the same run, alternating, several rounds; a ratio table
//! (median and range over rounds), a Markdown report, JSON with every run, SVG plots.
//!
//! Pairs: ringnfs `--backend local` vs ganesha's VFS FSAL (both on a local directory),
//! and ringnfs `--backend memory` vs ganesha's MEM FSAL. Both export without root
//! squash; the bench uses AUTH_SYS as root, ganesha's pseudo path `/export`.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use super::error::{BenchError, EXIT_ERRORS, EXIT_SETUP};
use super::report::plural;
use super::{BenchOptions, BenchReport, Workload, run, setup};

/// Debian packages that provide nfs-ganesha and the two FSALs used.
pub const GANESHA_PACKAGES: [&str; 3] = ["nfs-ganesha", "nfs-ganesha-vfs", "nfs-ganesha-mem"];
const GANESHA_BIN: &str = "ganesha.nfsd";

/// Backend pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pair {
    /// ringnfs --backend local vs ganesha FSAL VFS, both on a local directory.
    Local,
    /// ringnfs --backend memory vs ganesha FSAL MEM.
    Memory,
}

impl Pair {
    pub fn name(self) -> &'static str {
        match self {
            Pair::Local => "local",
            Pair::Memory => "memory",
        }
    }
    fn describe(self) -> &'static str {
        match self {
            Pair::Local => "ringnfs --backend local vs ganesha FSAL VFS (local directory)",
            Pair::Memory => "ringnfs --backend memory vs ganesha FSAL MEM",
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// Directory for the report, plots, JSON, server logs and exports.
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,
    /// Rounds; in each, every workload runs against both servers (order alternates).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Warm-up seconds per run.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Workloads of the ratio table.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = DEFAULT_WORKLOADS)]
    pub workloads: Vec<Workload>,
    /// Backend pairs.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Pair::Local, Pair::Memory])]
    pub pairs: Vec<Pair>,
    /// Connections (trunked into one session) for the ratio table.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Queue depth per connection for the ratio table.
    #[arg(long, default_value_t = 8)]
    pub depth: usize,
    /// File size for I/O workloads, MiB.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub file_size_mib: u64,
    /// Workloads swept over connection counts and queue depths for the plots (every
    /// pair); empty: no sweep.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Workload::Getattr, Workload::Randread])]
    pub sweep: Vec<Workload>,
    /// No sweeps (no plots).
    #[arg(long)]
    pub no_sweep: bool,
    /// Without the extra row sets of other shapes (`EXTRA_ROWS`: sequential I/O at
    /// depth 1, small batches on 16 connections); `--short` leaves them out too.
    #[arg(long)]
    pub no_extra_rows: bool,
    /// Do not check READ data (by default every READ is verified against the pattern
    /// the bench wrote, on both servers).
    #[arg(long)]
    pub no_verify: bool,
    /// CI mode: 1 round, at most 2 s runs, 32 MiB file, one swept workload with two
    /// points each way.
    #[arg(long)]
    pub short: bool,
    /// Do not apt-get install nfs-ganesha when it is missing.
    #[arg(long)]
    pub no_install: bool,
    /// The ringnfs binary to start (default: `ringnfs` in the directory of this
    /// executable, where `cargo build --release` puts both).
    #[arg(long)]
    pub ringnfs_bin: Option<PathBuf>,
    /// First TCP port: ringnfs uses it, ganesha the next one.
    #[arg(long, default_value_t = 20480)]
    pub port: u16,
    /// Extra arguments for `ringnfs serve` (e.g. "--threads 1"), split on spaces.
    #[arg(long, default_value = "")]
    pub ringnfs_args: String,
}

pub const DEFAULT_WORKLOADS: [Workload; 8] = [
    Workload::Getattr,
    Workload::Lookup,
    Workload::Create,
    Workload::Randread,
    Workload::Randwrite,
    Workload::Read,
    Workload::Write,
    Workload::Mixed,
];

/// Row sets of the ratio table at other shapes than `--connections` × `--depth`, each
/// (workloads, connections, depth): sequential 1 MiB I/O with one request outstanding
/// (latency-bound), and small requests in small batches on 16 connections (what a
/// Linux `nconnect=16` mount sends; 16 × 4 stays within ganesha's 64 slots).
pub const EXTRA_ROWS: [(&[Workload], usize, usize); 2] = [
    (&[Workload::Read, Workload::Write], 1, 1),
    (&[Workload::Getattr, Workload::Sequence], 16, 4),
];

/// Connection counts and queue depths of the sweeps.
const SWEEP_CONNS: [usize; 5] = [1, 2, 4, 8, 16];
const SWEEP_DEPTHS: [usize; 6] = [1, 2, 4, 8, 16, 32];
/// Depth per connection in the connection sweep; connections in the depth sweep. Both
/// keep connections x depth within the 64 slots nfs-ganesha grants a session.
const SWEEP_CONN_DEPTH: usize = 4;
const SWEEP_DEPTH_CONNS: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    Ringnfs,
    Ganesha,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Ringnfs => "ringnfs",
            ServerKind::Ganesha => "ganesha",
        }
    }
}

/// One bench run in the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub pair: Pair,
    pub server: ServerKind,
    pub round: usize,
    /// Its row of the ratio table: the workload, with the shape for an extra row set
    /// ("read 1×1").
    pub row: String,
    /// What was measured (empty when the run could not be set up).
    pub report: BenchReport,
    /// Why the run could not be set up (connect, LOOKUP, OPEN ...), in words.
    pub setup_error: Option<String>,
}

/// One point of a sweep.
#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    pub pair: Pair,
    pub workload: Workload,
    /// "connections" or "depth".
    pub axis: &'static str,
    pub x: usize,
    pub server: ServerKind,
    pub report: BenchReport,
    pub setup_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompareResult {
    pub command: String,
    pub ganesha_version: String,
    pub runs: Vec<Run>,
    pub sweeps: Vec<SweepPoint>,
}

/// A server process we started; stopped (SIGTERM, then SIGKILL) when dropped.
struct Proc {
    child: Child,
    /// The process whose CPU time counts (ganesha.nfsd runs in the foreground: itself).
    pid: u32,
    addr: SocketAddr,
    export_path: &'static str,
    kind: ServerKind,
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of our own child, which we have not reaped yet.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_listening(addr: SocketAddr, child: &mut Child, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(st) = child.try_wait()? {
            bail!(
                "server exited ({st}) before listening on {addr}; see {}",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "nothing listens on {addr} after 30 s; see {}",
        log.display()
    )
}

fn ganesha_installed() -> bool {
    let fsal = |n: &str| {
        [
            "/usr/lib/x86_64-linux-gnu/ganesha",
            "/usr/lib/ganesha",
            "/usr/lib64/ganesha",
        ]
        .iter()
        .any(|d| Path::new(d).join(format!("libfsal{n}.so")).exists())
    };
    which(GANESHA_BIN).is_some() && fsal("vfs") && fsal("mem")
}

fn which(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// Install nfs-ganesha with apt-get (update once) if it is missing.
pub fn ensure_ganesha(install: bool) -> anyhow::Result<()> {
    if ganesha_installed() {
        return Ok(());
    }
    if !install {
        bail!(
            "nfs-ganesha is not installed (apt-get install {})",
            GANESHA_PACKAGES.join(" ")
        );
    }
    eprintln!(
        "installing {} with apt-get (needs root)",
        GANESHA_PACKAGES.join(" ")
    );
    let ok = |c: &mut Command| -> anyhow::Result<()> {
        let st = c
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .with_context(|| format!("running {c:?}"))?;
        if !st.success() {
            bail!("{c:?} failed: {st}");
        }
        Ok(())
    };
    ok(Command::new("apt-get").args(["update", "-qq"]))?;
    ok(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(GANESHA_PACKAGES))?;
    if !ganesha_installed() {
        bail!("nfs-ganesha still missing after apt-get install");
    }
    Ok(())
}

fn ganesha_version() -> String {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "nfs-ganesha"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// The ganesha configuration used: NFSv4.1 only on one loopback port, no NLM, RQUOTA,
/// UDP or grace; numeric owners; one export at the pseudo path /export, no root squash.
pub fn ganesha_config(port: u16, dir: &Path, pair: Pair) -> String {
    let export = dir.join("export");
    let (path, fsal) = match pair {
        Pair::Local => (export.display().to_string(), "VFS"),
        Pair::Memory => ("/mem".to_string(), "MEM"),
    };
    format!(
        r#"NFS_CORE_PARAM {{
    Protocols = 4;
    Bind_addr = 127.0.0.1;
    NFS_Port = {port};
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Enable_UDP = false;
}}
NFSv4 {{
    Minor_Versions = 1;
    Graceless = true;
    Only_Numeric_Owners = true;
    RecoveryRoot = "{recovery}";
}}
EXPORT {{
    Export_Id = 1;
    Path = "{path}";
    Pseudo = /export;
    Access_Type = RW;
    Squash = No_Root_Squash;
    SecType = sys;
    FSAL {{ Name = {fsal}; }}
}}
"#,
        recovery = dir.join("recovery").display()
    )
}

fn start_ganesha(dir: &Path, port: u16, pair: Pair) -> anyhow::Result<Proc> {
    std::fs::create_dir_all(dir.join("export"))?;
    std::fs::create_dir_all(dir.join("recovery"))?;
    let conf = dir.join("ganesha.conf");
    std::fs::write(&conf, ganesha_config(port, dir, pair))?;
    let log = dir.join("ganesha.log");
    let bin = which(GANESHA_BIN).context("ganesha.nfsd not found")?;
    // -F: stay in the foreground (our child, so its pid is the server's); -L: its log
    // (it warns about dbus, rpcbind and kerberos here: harmless for NFSv4 on a port).
    let mut child = Command::new(bin)
        .arg("-F")
        .arg("-f")
        .arg(&conf)
        .arg("-L")
        .arg(&log)
        .arg("-p")
        .arg(dir.join("ganesha.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("ganesha.stderr"))?)
        .spawn()
        .context("starting ganesha.nfsd")?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_listening(addr, &mut child, &log)?;
    Ok(Proc {
        pid: child.id(),
        child,
        addr,
        export_path: "/export",
        kind: ServerKind::Ganesha,
    })
}

fn start_ringnfs(
    bin: &Path,
    dir: &Path,
    port: u16,
    pair: Pair,
    extra: &str,
) -> anyhow::Result<Proc> {
    let log = dir.join("ringnfs.log");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut child = Command::new(bin)
        .arg("serve")
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--backend")
        .arg(pair.name())
        .arg("--export")
        .arg(dir.join("export"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(["--no-root-squash", "--control", "off", "--max-slots", "256"])
        .args(extra.split_whitespace())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("starting ringnfs serve")?;
    wait_listening(addr, &mut child, &log)?;
    Ok(Proc {
        pid: child.id(),
        child,
        addr,
        export_path: "/",
        kind: ServerKind::Ringnfs,
    })
}

/// What a step of the comparison measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A run of the ratio table.
    Round(usize),
    /// A run of one of the [`EXTRA_ROWS`] sets, in that round.
    Extra(usize),
    /// A sweep point: connections or depth = x.
    Sweep { axis: &'static str, x: usize },
}

/// One step: a workload run against both servers of a pair, in `order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub workload: Workload,
    pub phase: Phase,
    pub connections: usize,
    pub depth: usize,
    pub order: [ServerKind; 2],
}

/// The servers in the order a step runs them: who goes first alternates.
fn order(first_ringnfs: bool) -> [ServerKind; 2] {
    if first_ringnfs {
        [ServerKind::Ringnfs, ServerKind::Ganesha]
    } else {
        [ServerKind::Ganesha, ServerKind::Ringnfs]
    }
}

/// The steps for one pair (after `--short` and `--no-sweep` were applied): the rounds,
/// then the sweeps. Every step alternates which server goes first, so neither always
/// runs on a machine the other just warmed (page cache, CPU frequency) or loaded.
pub fn schedule(a: &CompareArgs) -> Vec<Step> {
    let mut steps = Vec::new();
    for round in 0..a.rounds {
        for &w in &a.workloads {
            steps.push(Step {
                workload: w,
                phase: Phase::Round(round),
                connections: a.connections,
                depth: a.depth,
                order: order((round + w as usize).is_multiple_of(2)),
            });
        }
        if a.short || a.no_extra_rows {
            continue;
        }
        for (ws, connections, depth) in EXTRA_ROWS {
            for &w in ws {
                steps.push(Step {
                    workload: w,
                    phase: Phase::Extra(round),
                    connections,
                    depth,
                    order: order((round + w as usize + connections).is_multiple_of(2)),
                });
            }
        }
    }
    let (conns, depths): (Vec<usize>, Vec<usize>) = if a.short {
        (vec![1, 4], vec![1, 8])
    } else {
        (SWEEP_CONNS.to_vec(), SWEEP_DEPTHS.to_vec())
    };
    let mut point = 0usize;
    for &w in &a.sweep {
        for (axis, xs) in [("connections", &conns), ("depth", &depths)] {
            for &x in xs {
                let (c, d) = if axis == "connections" {
                    (x, SWEEP_CONN_DEPTH)
                } else {
                    (SWEEP_DEPTH_CONNS, x)
                };
                steps.push(Step {
                    workload: w,
                    phase: Phase::Sweep { axis, x },
                    connections: c,
                    depth: d,
                    order: order(point.is_multiple_of(2)),
                });
                point += 1;
            }
        }
    }
    steps
}

struct Plan {
    duration: Duration,
    warmup: Duration,
    file_size: u64,
    verify: bool,
}

fn bench_one(
    p: &Proc,
    plan: &Plan,
    w: Workload,
    conns: usize,
    depth: usize,
) -> Result<BenchReport, BenchError> {
    let o = BenchOptions {
        connections: conns,
        depth,
        duration: plan.duration,
        warmup: plan.warmup,
        server_pid: Some(p.pid),
        cred: BenchOptions::root_cred(),
        file_size: plan.file_size,
        verify: plan.verify,
        export_path: setup::path_components(p.export_path),
        // Created files are removed in the same COMPOUND: directories stay the same size
        // over rounds, for both servers.
        remove: true,
        ..BenchOptions::new(p.addr, w)
    };
    run(o)
}

/// `--short` and `--no-sweep` applied, arguments checked.
fn normalized(a: &CompareArgs) -> anyhow::Result<CompareArgs> {
    let mut a = a.clone();
    if a.short {
        a.rounds = 1;
        a.duration = a.duration.min(2.0);
        a.warmup = a.warmup.min(0.5);
        a.file_size_mib = a.file_size_mib.min(32);
        a.sweep.truncate(1);
    }
    if a.no_sweep {
        a.sweep.clear();
    }
    if a.rounds == 0 || a.workloads.is_empty() || a.pairs.is_empty() {
        bail!("--rounds, --workloads and --pairs must not be empty");
    }
    if !(a.duration > 0.0 && a.warmup >= 0.0) {
        bail!("--duration must be > 0 and --warmup >= 0");
    }
    Ok(a)
}

/// One line per measured run on stderr, errors and connection failures included.
fn progress_line(pair: Pair, label: &str, kind: ServerKind, r: &Result<BenchReport, BenchError>) {
    let what = match r {
        Ok(r) => {
            let mut t = format!(
                "{:>9.0} ops/s {:>8.1} MiB/s p99 {:>8.1} us cpu {:>7.2} us/op",
                r.ops_per_sec,
                r.mib_per_sec,
                r.latency_us.p99,
                r.server_cpu_us_per_op.unwrap_or(f64::NAN),
            );
            if r.error_total > 0 {
                let _ = write!(t, " errors {} ({})", r.error_total, r.errors_by_name());
            }
            for f in &r.connection_failures {
                let _ = write!(t, " connection failure: {f}");
            }
            t
        }
        Err(e) => format!("setup failed: {e}"),
    };
    eprintln!("{} {label} {:>7}: {what}", pair.name(), kind.name());
}

/// `ringnfs bench compare` as a command: the exit status (see `ringnfs bench --help`).
pub fn run_compare_cli(a: &CompareArgs) -> u8 {
    match run_compare(a) {
        Ok(res) => {
            let rows = rows(&res);
            let refused = rows.iter().filter(|r| r.refused.is_some()).count();
            if refused == 0 {
                println!("ok: {} rows, every run without errors", rows.len());
                0
            } else {
                println!(
                    "FAILED: {refused} of {} rows have no ratio (errors above {} of replies, \
                     connection failures or failed setups; see the table)",
                    rows.len(),
                    threshold_text()
                );
                EXIT_ERRORS
            }
        }
        Err(e) => {
            eprintln!("ringnfs bench compare: {e:#}");
            match e.downcast_ref::<BenchError>() {
                Some(b) => b.exit_code(),
                None => EXIT_SETUP,
            }
        }
    }
}

/// The server `compare` starts without `--ringnfs-bin`: `ringnfs` next to this
/// executable (`ringnfs-bench`).
fn default_ringnfs_bin() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("finding this executable")?;
    let bin = me.with_file_name("ringnfs");
    if !bin.is_file() {
        bail!(
            "no ringnfs server binary at {} (build it with `cargo build --release`, or name \
             one with --ringnfs-bin PATH)",
            bin.display()
        );
    }
    Ok(bin)
}

/// `ringnfs bench compare`.
pub fn run_compare(a: &CompareArgs) -> anyhow::Result<CompareResult> {
    let a = normalized(a)?;
    ensure_ganesha(!a.no_install)?;
    let bin = match &a.ringnfs_bin {
        Some(b) => b.clone(),
        None => default_ringnfs_bin()?,
    };
    std::fs::create_dir_all(&a.out)?;
    let out = a.out.canonicalize()?;
    let plan = Plan {
        duration: Duration::from_secs_f64(a.duration),
        warmup: Duration::from_secs_f64(a.warmup),
        file_size: a.file_size_mib.max(1) << 20,
        verify: !a.no_verify,
    };
    let mut result = CompareResult {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        ganesha_version: ganesha_version(),
        runs: Vec::new(),
        sweeps: Vec::new(),
    };
    for &pair in &a.pairs {
        // Exports, state and logs live in work directories removed after the pair (the
        // logs are kept next to the report).
        let rdir = out.join(format!(".work-{}-ringnfs", pair.name()));
        let gdir = out.join(format!(".work-{}-ganesha", pair.name()));
        for d in [&rdir, &gdir] {
            let _ = std::fs::remove_dir_all(d);
            std::fs::create_dir_all(d)?;
        }
        let servers = [
            start_ringnfs(&bin, &rdir, a.port, pair, &a.ringnfs_args)?,
            start_ganesha(&gdir, a.port + 1, pair)?,
        ];
        for step in schedule(&a) {
            for kind in step.order {
                let s = servers
                    .iter()
                    .find(|s| s.kind == kind)
                    .expect("both servers");
                let r = bench_one(s, &plan, step.workload, step.connections, step.depth);
                // Ctrl-C ends the comparison (the servers stop when dropped).
                if matches!(&r, Err(BenchError::Interrupted))
                    || r.as_ref().is_ok_and(|r| r.interrupted)
                {
                    return Err(BenchError::Interrupted.into());
                }
                let label = match step.phase {
                    Phase::Round(round) => {
                        format!("round {} {:>9}", round + 1, step.workload.name())
                    }
                    Phase::Extra(round) => format!(
                        "round {} {:>9} {}×{}",
                        round + 1,
                        step.workload.name(),
                        step.connections,
                        step.depth
                    ),
                    Phase::Sweep { axis, x } => {
                        format!("sweep {} {axis}={x}", step.workload.name())
                    }
                };
                progress_line(pair, &label, kind, &r);
                let (report, setup_error) = match r {
                    Ok(r) => (r, None),
                    Err(e) => (
                        BenchReport {
                            workload: step.workload.name().to_string(),
                            server: s.addr.to_string(),
                            ..BenchReport::default()
                        },
                        Some(e.to_string()),
                    ),
                };
                match step.phase {
                    Phase::Round(round) => result.runs.push(Run {
                        pair,
                        server: kind,
                        round,
                        row: step.workload.name().to_string(),
                        report,
                        setup_error,
                    }),
                    Phase::Extra(round) => result.runs.push(Run {
                        pair,
                        server: kind,
                        round,
                        row: format!(
                            "{} {}×{}",
                            step.workload.name(),
                            step.connections,
                            step.depth
                        ),
                        report,
                        setup_error,
                    }),
                    Phase::Sweep { axis, x } => result.sweeps.push(SweepPoint {
                        pair,
                        workload: step.workload,
                        axis,
                        x,
                        server: kind,
                        report,
                        setup_error,
                    }),
                }
            }
        }
        drop(servers);
        for (d, logs) in [
            (&rdir, &["ringnfs.log"][..]),
            (
                &gdir,
                &["ganesha.log", "ganesha.stderr", "ganesha.conf"][..],
            ),
        ] {
            for l in logs {
                let _ = std::fs::rename(d.join(l), out.join(format!("{}-{l}", pair.name())));
            }
            let _ = std::fs::remove_dir_all(d);
        }
    }
    std::fs::write(
        out.join("results.json"),
        serde_json::to_vec_pretty(&result)?,
    )?;
    let plots = super::plot::write_plots(&out, &result.sweeps)?;
    let md = markdown(&result, &a, &plots);
    std::fs::write(out.join("report.md"), &md)?;
    print!("{}", ratio_table(&result));
    println!("report: {}", out.join("report.md").display());
    Ok(result)
}

/// min, median, max.
pub fn spread(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((v[0], med, v[n - 1]))
}

/// The metrics of the ratio table: name, value of a report, whether higher is better.
type Metric = (&'static str, fn(&BenchReport) -> Option<f64>, bool);
const METRICS: [Metric; 4] = [
    ("ops/s", |r| Some(r.ops_per_sec), true),
    (
        "MiB/s",
        |r| (r.mib_per_sec > 0.0).then_some(r.mib_per_sec),
        true,
    ),
    ("p99", |r| Some(r.latency_us.p99), false),
    ("CPU us/op", |r| r.server_cpu_us_per_op, false),
];

/// ringnfs median, ganesha median, ratio (min, median, max).
pub type Cell = (f64, f64, (f64, f64, f64));

/// A pair's ratio is refused when either side's errors exceed this fraction of its
/// replies (over all rounds): a server that fails requests does less work per "op".
pub const MAX_ERROR_FRACTION: f64 = 0.001;

fn threshold_text() -> String {
    format!("{}%", MAX_ERROR_FRACTION * 100.0)
}

/// Per pair and workload: ringnfs ÷ ganesha of each metric in each round.
pub struct Row {
    pub pair: Pair,
    pub workload: String,
    /// Per metric: (ringnfs median, ganesha median, ratio min/median/max); all None
    /// when the ratio is refused.
    pub cells: Vec<Option<Cell>>,
    /// Errors (incl. verify mismatches) in all rounds, per server (ringnfs, ganesha).
    pub errors: [u64; 2],
    /// Connection failures in all rounds, per server.
    pub connection_failures: [u64; 2],
    /// Runs that could not be set up, per server.
    pub setup_failures: [u64; 2],
    /// Why there is no ratio: errors above [`MAX_ERROR_FRACTION`], connection
    /// failures or failed setups, by server.
    pub refused: Option<String>,
}

/// Why the runs of one server make a ratio meaningless, if they do.
fn refusal(kind: ServerKind, runs: &[&Run]) -> Option<String> {
    let mine: Vec<&&Run> = runs.iter().filter(|r| r.server == kind).collect();
    let errors: u64 = mine.iter().map(|r| r.report.error_total).sum();
    let replies: u64 = mine
        .iter()
        .map(|r| r.report.replies.max(r.report.ops + r.report.error_total))
        .sum();
    let failures: u64 = mine
        .iter()
        .map(|r| r.report.connection_failures.len() as u64)
        .sum();
    let setups = mine.iter().filter(|r| r.setup_error.is_some()).count() as u64;
    let mut why = Vec::new();
    if errors > 0 && errors as f64 > MAX_ERROR_FRACTION * replies as f64 {
        why.push(plural(errors, "error", "errors"));
    }
    if failures > 0 {
        why.push(plural(
            failures,
            "connection failure",
            "connection failures",
        ));
    }
    if setups > 0 {
        why.push(format!("{} not set up", plural(setups, "run", "runs")));
    }
    (!why.is_empty()).then(|| format!("{} {}", kind.name(), why.join(", ")))
}

pub fn rows(res: &CompareResult) -> Vec<Row> {
    let mut out = Vec::new();
    let mut keys: Vec<(Pair, String)> = Vec::new();
    for r in &res.runs {
        let k = (r.pair, r.row.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    for (pair, w) in keys {
        let runs: Vec<&Run> = res
            .runs
            .iter()
            .filter(|r| r.pair == pair && r.row == w)
            .collect();
        let rounds = runs.iter().map(|r| r.round).max().unwrap_or(0) + 1;
        let get = |k: ServerKind, round: usize| {
            runs.iter()
                .find(|r| r.server == k && r.round == round)
                .map(|r| &r.report)
        };
        let mut cells = Vec::new();
        for (_, f, _) in METRICS {
            let mut ratios = Vec::new();
            let (mut rv, mut gv) = (Vec::new(), Vec::new());
            for round in 0..rounds {
                if let (Some(r), Some(g)) = (
                    get(ServerKind::Ringnfs, round),
                    get(ServerKind::Ganesha, round),
                ) && let (Some(x), Some(y)) = (f(r), f(g))
                {
                    rv.push(x);
                    gv.push(y);
                    if y > 0.0 {
                        ratios.push(x / y);
                    }
                }
            }
            cells.push(match (spread(rv), spread(gv), spread(ratios)) {
                (Some(r), Some(g), Some(q)) => Some((r.1, g.1, q)),
                _ => None,
            });
        }
        let per_server = |f: &dyn Fn(&Run) -> u64| {
            [ServerKind::Ringnfs, ServerKind::Ganesha].map(|k| {
                runs.iter()
                    .filter(|r| r.server == k)
                    .map(|r| f(r))
                    .sum::<u64>()
            })
        };
        let why: Vec<String> = [ServerKind::Ringnfs, ServerKind::Ganesha]
            .into_iter()
            .filter_map(|k| refusal(k, &runs))
            .collect();
        let refused = (!why.is_empty()).then(|| why.join("; "));
        if refused.is_some() {
            cells = vec![None; METRICS.len()];
        }
        out.push(Row {
            pair,
            workload: w,
            cells,
            errors: per_server(&|r| r.report.error_total),
            connection_failures: per_server(&|r| r.report.connection_failures.len() as u64),
            setup_failures: per_server(&|r| u64::from(r.setup_error.is_some())),
            refused,
        });
    }
    out
}

fn fmt_val(v: f64) -> String {
    if v >= 1000.0 {
        let s = format!("{v:.0}");
        let mut o = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                o.push(',');
            }
            o.push(c);
        }
        o
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The ratio table (Markdown): per metric ringnfs ÷ ganesha, median [min–max] over
/// rounds, with both servers' medians.
pub fn ratio_table(res: &CompareResult) -> String {
    let mut s = String::new();
    s += "| pair | workload | ops/s ringnfs / ganesha | ratio | MiB/s ratio | p99 us ringnfs / ganesha | p99 ratio | CPU us/op ringnfs / ganesha | CPU ratio | errors r/g | connection (setup) failures r/g |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|---|\n";
    let ratio = |c: &Option<Cell>| match c {
        Some((_, _, (lo, med, hi))) => format!("**{med:.2}×** [{lo:.2}–{hi:.2}]"),
        None => "-".into(),
    };
    let vals = |c: &Option<Cell>| match c {
        Some((r, g, _)) => format!("{} / {}", fmt_val(*r), fmt_val(*g)),
        None => "-".into(),
    };
    for r in rows(res) {
        let ops_ratio = match &r.refused {
            Some(why) => format!("no ratio: {why}"),
            None => ratio(&r.cells[0]),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} ({}) / {} ({}) |",
            r.pair.name(),
            r.workload,
            vals(&r.cells[0]),
            ops_ratio,
            ratio(&r.cells[1]),
            vals(&r.cells[2]),
            ratio(&r.cells[2]),
            vals(&r.cells[3]),
            ratio(&r.cells[3]),
            r.errors[0],
            r.errors[1],
            r.connection_failures[0],
            r.setup_failures[0],
            r.connection_failures[1],
            r.setup_failures[1],
        );
    }
    s
}

/// The issue's goals, checked on the medians of the ratio table.
pub fn goals(res: &CompareResult) -> String {
    let rows = rows(res);
    let mut s = String::new();
    let med = |pair: Pair, w: &str, m: usize| {
        rows.iter()
            .find(|r| r.pair == pair && r.workload == w)
            .and_then(|r| r.cells[m])
            .map(|c| c.2.1)
    };
    let pairs: Vec<Pair> = {
        let mut p: Vec<Pair> = rows.iter().map(|r| r.pair).collect();
        p.dedup();
        p
    };
    for pair in pairs {
        let _ = writeln!(s, "\n{} pair:\n", pair.name());
        let mut goal = |name: &str, v: Option<f64>, target: f64, higher: bool| {
            let line = match v {
                None => format!("- {name}: not measured"),
                Some(v) => {
                    let met = if higher { v >= target } else { v < target };
                    format!(
                        "- {name}: {v:.2}× (goal {} {target}×): **{}**",
                        if higher { "≥" } else { "<" },
                        if met { "met" } else { "missed" }
                    )
                }
            };
            let _ = writeln!(s, "{line}");
        };
        goal("GETATTR ops/s", med(pair, "getattr", 0), 3.0, true);
        goal(
            "4 KiB random read IOPS",
            med(pair, "randread", 0),
            2.0,
            true,
        );
        goal("sequential read MiB/s", med(pair, "read", 1), 1.5, true);
        goal("sequential write MiB/s", med(pair, "write", 1), 1.5, true);
        for r in rows.iter().filter(|r| r.pair == pair) {
            goal(
                &format!("{} p99 (ringnfs ÷ ganesha)", r.workload),
                r.cells[2].map(|c| c.2.1),
                1.0,
                false,
            );
            goal(
                &format!("{} server CPU us/op (ringnfs ÷ ganesha)", r.workload),
                r.cells[3].map(|c| c.2.1),
                1.0,
                false,
            );
        }
    }
    s
}

fn markdown(res: &CompareResult, a: &CompareArgs, plots: &[PathBuf]) -> String {
    let mut s = String::new();
    s += "# ringnfs vs nfs-ganesha: same-run comparison\n\n";
    let _ = writeln!(s, "Command: `{}`\n", res.command);
    let _ = writeln!(
        s,
        "nfs-ganesha {}; {} round(s), {} s measured after {} s warm-up per run, {} connection(s) \
         trunked into one session x depth {}, AUTH_SYS root, file {} MiB, READ data {}; \
         create = OPEN(create)+CLOSE+REMOVE in one COMPOUND; mixed = {}. Server CPU from \
         /proc/PID/stat of each server process. Runs and sweep points alternate which server \
         goes first. The load generator shares the machine's CPUs with the server under test. \
         Rows named with a shape (\"read 1×1\") ran at that many connections × depth.\n",
        res.ganesha_version,
        a.rounds,
        a.duration,
        a.warmup,
        a.connections,
        a.depth,
        a.file_size_mib,
        if a.no_verify {
            "not verified"
        } else {
            "verified against the written pattern"
        },
        super::MIX
            .iter()
            .map(|(k, p)| format!("{p}% {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        s,
        "Ratios are ringnfs ÷ ganesha, median [min–max] over rounds (each round's runs \
         paired); for p99 and CPU us/op lower is better. Only successful replies count as \
         ops (with verification, only READs that returned the written data); errors are \
         counted beside by status name and include READ data that did not match. A row has \
         no ratio when either server's errors exceed {} of its replies, or it had a \
         connection failure or a run that could not be set up.\n",
        threshold_text()
    );
    for p in &a.pairs {
        let _ = writeln!(s, "- `{}`: {}", p.name(), p.describe());
    }
    s += "\n";
    s += &ratio_table(res);
    s += "\n## Goals\n";
    s += &goals(res);
    if !plots.is_empty() {
        s += "\n## Plots\n\n";
        for p in plots {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            let _ = writeln!(s, "![{name}]({name})\n");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Latency;

    #[test]
    fn spread_and_median() {
        assert_eq!(spread(vec![]), None);
        assert_eq!(spread(vec![3.0]), Some((3.0, 3.0, 3.0)));
        assert_eq!(spread(vec![5.0, 1.0, 3.0]), Some((1.0, 3.0, 5.0)));
        assert_eq!(spread(vec![4.0, 1.0, 2.0, 3.0]), Some((1.0, 2.5, 4.0)));
        assert_eq!(spread(vec![f64::NAN, 2.0]), Some((2.0, 2.0, 2.0)));
    }

    fn report(w: &str, ops: f64, p99: f64, cpu: f64) -> BenchReport {
        BenchReport {
            workload: w.into(),
            sessions: 1,
            connections_per_session: 1,
            depth: 1,
            elapsed_s: 1.0,
            ops: ops as u64,
            replies: ops as u64,
            ops_per_sec: ops,
            latency_us: Latency {
                p99,
                ..Latency::default()
            },
            server_cpu_us_per_op: Some(cpu),
            ..BenchReport::default()
        }
    }

    #[test]
    fn ratios_pair_rounds() {
        let mut runs = Vec::new();
        for (round, (r, g)) in [(300.0, 100.0), (400.0, 100.0), (100.0, 100.0)]
            .into_iter()
            .enumerate()
        {
            runs.push(Run {
                pair: Pair::Local,
                server: ServerKind::Ringnfs,
                round,
                row: "getattr".into(),
                report: report("getattr", r, 10.0, 2.0),
                setup_error: None,
            });
            runs.push(Run {
                pair: Pair::Local,
                server: ServerKind::Ganesha,
                round,
                row: "getattr".into(),
                report: report("getattr", g, 20.0, 8.0),
                setup_error: None,
            });
        }
        let res = CompareResult {
            command: "x".into(),
            ganesha_version: "4.3".into(),
            runs,
            sweeps: vec![],
        };
        let rows = rows(&res);
        assert_eq!(rows.len(), 1);
        let ops = rows[0].cells[0].unwrap();
        assert_eq!(ops.2, (1.0, 3.0, 4.0));
        assert_eq!((ops.0, ops.1), (300.0, 100.0));
        assert!(rows[0].cells[1].is_none(), "no MiB/s for getattr");
        assert_eq!(rows[0].cells[2].unwrap().2.1, 0.5);
        assert_eq!(rows[0].cells[3].unwrap().2.1, 0.25);
        let t = ratio_table(&res);
        assert!(t.contains("**3.00×** [1.00–4.00]"), "{t}");
        let g = goals(&res);
        assert!(
            g.contains("GETATTR ops/s: 3.00× (goal ≥ 3×): **met**"),
            "{g}"
        );
        assert!(g.contains("4 KiB random read IOPS: not measured"), "{g}");
        assert!(
            g.contains("getattr p99 (ringnfs ÷ ganesha): 0.50× (goal < 1×): **met**"),
            "{g}"
        );
    }

    fn local_runs(ringnfs: BenchReport, ganesha: BenchReport) -> CompareResult {
        CompareResult {
            command: "x".into(),
            ganesha_version: "4.3".into(),
            runs: vec![
                Run {
                    pair: Pair::Local,
                    server: ServerKind::Ringnfs,
                    round: 0,
                    row: ringnfs.workload.clone(),
                    report: ringnfs,
                    setup_error: None,
                },
                Run {
                    pair: Pair::Local,
                    server: ServerKind::Ganesha,
                    round: 0,
                    row: ganesha.workload.clone(),
                    report: ganesha,
                    setup_error: None,
                },
            ],
            sweeps: vec![],
        }
    }

    #[test]
    fn no_ratio_for_a_pair_with_errors_or_connection_failures() {
        // ganesha answered 1000 READs with the wrong data: its "ops" are not comparable.
        let mut g = report("randread", 1000.0, 20.0, 8.0);
        g.errors.insert("verify_mismatch".into(), 1000);
        g.error_total = 1000;
        let res = local_runs(report("randread", 3000.0, 10.0, 2.0), g);
        let t = ratio_table(&res);
        assert!(!t.contains('×'), "{t}");
        assert!(
            t.contains("no ratio") && t.contains("ganesha 1000 errors"),
            "{t}"
        );
        assert!(goals(&res).contains("4 KiB random read IOPS: not measured"));

        // A connection failure on ringnfs's side is shown and refuses the ratio too.
        let mut r = report("getattr", 3000.0, 10.0, 2.0);
        r.connection_failures
            .push("127.0.0.1:5000: server closed the connection".into());
        let t = ratio_table(&local_runs(r, report("getattr", 1000.0, 20.0, 8.0)));
        assert!(!t.contains('×'), "{t}");
        assert!(t.contains("ringnfs 1 connection failure"), "{t}");

        // One error in a million replies is below the threshold: the ratio stands, the
        // error is shown.
        let mut g = report("getattr", 1_000_000.0, 20.0, 8.0);
        g.errors.insert("NFS4ERR_DELAY".into(), 1);
        g.error_total = 1;
        g.replies += 1;
        let t = ratio_table(&local_runs(report("getattr", 3_000_000.0, 10.0, 2.0), g));
        assert!(t.contains("**3.00×**") && t.contains("0 / 1"), "{t}");
    }

    fn args(extra: &[&str]) -> CompareArgs {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            a: CompareArgs,
        }
        let mut v = vec!["compare"];
        v.extend_from_slice(extra);
        normalized(&<Cli as clap::Parser>::try_parse_from(v).unwrap().a).unwrap()
    }

    #[test]
    fn sweeps_alternate_the_servers_and_cover_every_pair() {
        let a = args(&["--pairs", "local,memory", "--rounds", "2"]);
        // Every pair runs these steps (the sweeps used to be the first pair's only).
        let steps = schedule(&a);
        let sweep: Vec<&Step> = steps
            .iter()
            .filter(|s| matches!(s.phase, Phase::Sweep { .. }))
            .collect();
        // Every swept workload, both axes, every point.
        let points = SWEEP_CONNS.len() + SWEEP_DEPTHS.len();
        assert_eq!(sweep.len(), a.sweep.len() * points);
        // Consecutive points swap who goes first, like the rounds do.
        for w in sweep.windows(2) {
            assert_ne!(w[0].order[0], w[1].order[0], "{w:?}");
        }
        for s in &steps {
            assert_ne!(s.order[0], s.order[1]);
        }
        let rounds: Vec<&Step> = steps
            .iter()
            .filter(|s| matches!(s.phase, Phase::Round(_)))
            .collect();
        assert_eq!(rounds.len(), 2 * a.workloads.len());
        let ringnfs_first = rounds
            .iter()
            .filter(|s| s.order[0] == ServerKind::Ringnfs)
            .count();
        assert_eq!(ringnfs_first * 2, rounds.len());
        // --short: two points each way, one swept workload; --no-sweep: none.
        let short = args(&["--short"]);
        assert_eq!(
            schedule(&short)
                .iter()
                .filter(|s| matches!(s.phase, Phase::Sweep { .. }))
                .count(),
            4
        );
        // The extra row sets: every round, every set, every workload of it, with its
        // own shape; not with --short or --no-extra-rows.
        let extra: Vec<&Step> = steps
            .iter()
            .filter(|s| matches!(s.phase, Phase::Extra(_)))
            .collect();
        let per_round: usize = EXTRA_ROWS.iter().map(|(ws, _, _)| ws.len()).sum();
        assert_eq!(extra.len(), 2 * per_round);
        for (ws, c, d) in EXTRA_ROWS {
            for w in ws {
                assert_eq!(
                    extra
                        .iter()
                        .filter(|s| s.workload == *w && (s.connections, s.depth) == (c, d))
                        .count(),
                    2
                );
            }
        }
        for quiet in [args(&["--short"]), args(&["--no-extra-rows"])] {
            assert!(
                !schedule(&quiet)
                    .iter()
                    .any(|s| matches!(s.phase, Phase::Extra(_)))
            );
        }
        let none = args(&["--no-sweep"]);
        assert!(
            schedule(&none)
                .iter()
                .all(|s| matches!(s.phase, Phase::Round(_) | Phase::Extra(_)))
        );
    }

    #[test]
    fn ganesha_config_has_the_equivalent_export() {
        let c = ganesha_config(20491, Path::new("/tmp/x"), Pair::Local);
        for want in [
            "NFS_Port = 20491;",
            "Minor_Versions = 1;",
            "Graceless = true;",
            "Path = \"/tmp/x/export\";",
            "Pseudo = /export;",
            "Squash = No_Root_Squash;",
            "Name = VFS;",
            "RecoveryRoot = \"/tmp/x/recovery\";",
        ] {
            assert!(c.contains(want), "{want} in {c}");
        }
        assert!(ganesha_config(1, Path::new("/y"), Pair::Memory).contains("Name = MEM;"));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(fmt_val(1234567.0), "1,234,567");
        assert_eq!(fmt_val(123.45), "123.5");
        assert_eq!(fmt_val(1.234), "1.23");
    }
}
