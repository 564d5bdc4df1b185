//! `ringnfs bench`: an NFSv4.1 load generator with trunked connections.
//!
//! Each connection is driven by one thread that keeps `depth` requests in flight on a
//! raw socket, patching pre-encoded request templates in place (xid, slot, sequence id),
//! writing in batches and parsing replies in bulk. Sequenced workloads give every
//! in-flight request its own slot of the connection's session.

pub mod compare;
mod pattern;
mod plot;
mod report;
mod setup;
mod template;
mod worker;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;

pub use report::{BenchReport, Latency, parse_cpu_ticks, process_cpu_us};
pub use template::Template;

use crate::client::Op;
use crate::rpc::{AuthSys, Credential};
use crate::state::stateid::Stateid;
use worker::{IoPattern, WorkerConfig, WorkerResult, run_worker};

/// What each request does. New workloads add a variant and a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// RPC NULL procedure (no session).
    Null,
    /// COMPOUND { SEQUENCE }.
    Sequence,
    /// COMPOUND { SEQUENCE, PUTFH(export dir), GETATTR(type, change, size, fileid) }.
    Getattr,
    /// COMPOUND { SEQUENCE, PUTFH(export dir), LOOKUP(bench file), GETFH }.
    Lookup,
    /// COMPOUND { SEQUENCE, PUTFH(dir), OPEN(create, unique name), CLOSE } (with
    /// `--remove`: then PUTFH(dir), REMOVE(name) in the same COMPOUND).
    Create,
    /// Sequential 1 MiB READs through a prepared file.
    Read,
    /// Sequential 1 MiB UNSTABLE WRITEs through a prepared file.
    Write,
    /// 4 KiB READs at random aligned offsets.
    Randread,
    /// 4 KiB UNSTABLE WRITEs at random aligned offsets.
    Randwrite,
    /// Per request, at random: 35% GETATTR, 35% LOOKUP, 20% 4 KiB READ, 10% 4 KiB
    /// WRITE (random offsets in the prepared file); see [`MIX`].
    Mixed,
}

/// The `mixed` profile: (request kind, percent).
pub const MIX: [(&str, u8); 4] = [("getattr", 35), ("lookup", 35), ("read", 20), ("write", 10)];

impl Workload {
    pub const ALL: [Workload; 10] = [
        Workload::Null,
        Workload::Sequence,
        Workload::Getattr,
        Workload::Lookup,
        Workload::Create,
        Workload::Read,
        Workload::Write,
        Workload::Randread,
        Workload::Randwrite,
        Workload::Mixed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Null => "null",
            Workload::Sequence => "sequence",
            Workload::Getattr => "getattr",
            Workload::Lookup => "lookup",
            Workload::Create => "create",
            Workload::Read => "read",
            Workload::Write => "write",
            Workload::Randread => "randread",
            Workload::Randwrite => "randwrite",
            Workload::Mixed => "mixed",
        }
    }

    /// Bytes one READ/WRITE moves (0 for metadata workloads; 4 KiB for `mixed`).
    pub fn io_size(self) -> u64 {
        match self {
            Workload::Read | Workload::Write => 1 << 20,
            Workload::Randread | Workload::Randwrite | Workload::Mixed => 4096,
            _ => 0,
        }
    }

    fn random_io(self) -> bool {
        matches!(
            self,
            Workload::Randread | Workload::Randwrite | Workload::Mixed
        )
    }

    fn is_write(self) -> bool {
        matches!(self, Workload::Write | Workload::Randwrite)
    }

    fn needs_session(self) -> bool {
        !matches!(self, Workload::Null)
    }

    /// Whether the workload reads or looks up the prepared file.
    fn needs_file(self) -> bool {
        self.io_size() > 0 || self == Workload::Lookup
    }
}

/// What a session's templates are built from.
struct TemplateInput<'a> {
    prep: &'a setup::Prepared,
    io_size: u32,
    clientid: u64,
    /// Unique per run: created names never collide with an earlier run's.
    nonce: u32,
    remove: bool,
}

/// Request kinds of a workload (operations after SEQUENCE) and the pick table: each
/// request uses kind `pick[r % pick.len()]`. I/O uses the anonymous stateid (the file
/// is mode 0666), so no session needs an OPEN.
fn workload_ops(w: Workload, t: &TemplateInput<'_>) -> (Vec<Vec<Op>>, Vec<u8>) {
    let dir = &t.prep.dir_fh;
    let file = &t.prep.file_fh;
    // FATTR4_TYPE (1), CHANGE (3), SIZE (4), FILEID (20).
    let getattr = || {
        vec![
            Op::PutFh(dir.clone()),
            Op::GetAttr(vec![(1 << 1) | (1 << 3) | (1 << 4) | (1 << 20)]),
        ]
    };
    let lookup = || {
        vec![
            Op::PutFh(dir.clone()),
            Op::Lookup(setup::BENCH_FILE.to_vec()),
            Op::GetFh,
        ]
    };
    let read = |count: u32| {
        vec![
            Op::PutFh(file.clone()),
            Op::Read {
                stateid: Stateid::ANONYMOUS,
                offset: 0,
                count,
            },
        ]
    };
    let write = |count: u32| {
        let mut data = vec![0u8; count as usize];
        pattern::generate(0, &mut data);
        vec![
            Op::PutFh(file.clone()),
            Op::Write {
                stateid: Stateid::ANONYMOUS,
                offset: 0,
                stable: 0,
                data,
            },
        ]
    };
    let one = |ops| (vec![ops], vec![0]);
    match w {
        Workload::Null | Workload::Sequence => one(Vec::new()),
        Workload::Getattr => one(getattr()),
        Workload::Lookup => one(lookup()),
        Workload::Create => {
            let mut name = format!("rb-{:08x}-", t.nonce).into_bytes();
            name.extend_from_slice(template::NAME_COUNTER);
            let mut ops = vec![
                Op::PutFh(dir.clone()),
                Op::Open(crate::client::OpenArgs {
                    seqid: 0,
                    share_access: 2,
                    share_deny: 0,
                    clientid: t.clientid,
                    owner: b"ringnfs-bench-create".to_vec(),
                    how: crate::client::OpenHow::Unchecked(crate::client::Fattr::new().mode(0o666)),
                    claim: crate::client::OpenClaim::Null(name.clone()),
                }),
                Op::Close {
                    seqid: 0,
                    stateid: Stateid::CURRENT,
                },
            ];
            if t.remove {
                ops.push(Op::PutFh(dir.clone()));
                ops.push(Op::Remove(name));
            }
            one(ops)
        }
        Workload::Read | Workload::Randread => one(read(t.io_size)),
        Workload::Write | Workload::Randwrite => one(write(t.io_size)),
        Workload::Mixed => {
            let kinds = vec![getattr(), lookup(), read(t.io_size), write(t.io_size)];
            let mut pick = Vec::with_capacity(100);
            for (i, (_, pct)) in MIX.iter().enumerate() {
                pick.extend(std::iter::repeat_n(i as u8, *pct as usize));
            }
            (kinds, pick)
        }
    }
}

/// Command-line arguments of `ringnfs bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:2049")]
    pub server: String,
    #[arg(long, value_enum, default_value_t = Workload::Sequence)]
    pub workload: Workload,
    /// Connections per session (trunked into it).
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Sessions (each with its own client id and connections).
    #[arg(long, default_value_t = 1)]
    pub sessions: usize,
    /// Outstanding requests per connection.
    #[arg(long, default_value_t = 8)]
    pub depth: usize,
    /// Measured seconds (ignored with --ops).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Measure this many operations instead of a duration.
    #[arg(long)]
    pub ops: Option<u64>,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Server process id: report its CPU time per operation.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Use AUTH_SYS (uid 0, gid 0) instead of AUTH_NONE.
    #[arg(long)]
    pub auth_sys: bool,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Size of the file I/O workloads use, MiB (created and filled before the run).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub file_size_mib: u64,
    /// Check every READ's data against the pattern the bench writes; a mismatch counts
    /// as an error (`verify_mismatch`).
    #[arg(long)]
    pub verify: bool,
    /// Directory to work in, from the root of the server's namespace (e.g. "/export" on
    /// nfs-ganesha with `Pseudo = /export`; ringnfs exports its directory at "/").
    #[arg(long, default_value = "/")]
    pub export_path: String,
    /// create: also REMOVE each created file in the same COMPOUND.
    #[arg(long)]
    pub remove: bool,
}

/// Everything `run` needs.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub server: SocketAddr,
    pub workload: Workload,
    pub connections: usize,
    pub sessions: usize,
    pub depth: usize,
    pub duration: Duration,
    pub ops: Option<u64>,
    pub warmup: Duration,
    pub server_pid: Option<u32>,
    pub cred: Credential,
    pub progress: bool,
    pub file_size: u64,
    pub verify: bool,
    /// LOOKUP components from the root filehandle to the export directory.
    pub export_path: Vec<Vec<u8>>,
    pub remove: bool,
}

impl BenchOptions {
    /// Defaults for `workload` against `server` (what the command line gives).
    pub fn new(server: SocketAddr, workload: Workload) -> Self {
        BenchOptions {
            server,
            workload,
            connections: 4,
            sessions: 1,
            depth: 8,
            duration: Duration::from_secs(10),
            ops: None,
            warmup: Duration::from_secs(1),
            server_pid: None,
            cred: Credential::None,
            progress: false,
            file_size: 256 << 20,
            verify: false,
            export_path: Vec::new(),
            remove: false,
        }
    }

    /// AUTH_SYS as root (uid 0, gid 0), which nfs-ganesha's `SecType = sys` needs.
    pub fn root_cred() -> Credential {
        Credential::Sys(AuthSys {
            stamp: 0,
            machine_name: b"ringnfs-bench".to_vec(),
            uid: 0,
            gid: 0,
            gids: vec![],
        })
    }

    pub fn from_args(a: &BenchArgs) -> anyhow::Result<Self> {
        let server = a
            .server
            .to_socket_addrs()
            .with_context(|| format!("resolving {}", a.server))?
            .next()
            .with_context(|| format!("no address for {}", a.server))?;
        let valid = a.duration.is_finite() && a.duration > 0.0;
        if !valid || !a.warmup.is_finite() || a.warmup < 0.0 {
            bail!("--duration must be > 0 and --warmup >= 0");
        }
        if a.connections == 0 || a.sessions == 0 || a.depth == 0 {
            bail!("--connections, --sessions and --depth must be at least 1");
        }
        if a.ops == Some(0) {
            bail!("--ops must be at least 1");
        }
        let cred = if a.auth_sys {
            Self::root_cred()
        } else {
            Credential::None
        };
        Ok(BenchOptions {
            server,
            workload: a.workload,
            connections: a.connections,
            sessions: a.sessions,
            depth: a.depth,
            duration: Duration::from_secs_f64(a.duration),
            ops: a.ops,
            warmup: Duration::from_secs_f64(a.warmup),
            server_pid: a.server_pid,
            cred,
            progress: !a.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
            file_size: a.file_size_mib.max(1) << 20,
            verify: a.verify,
            export_path: setup::path_components(&a.export_path),
            remove: a.remove,
        })
    }
}

/// `ringnfs bench [OPTIONS]` runs one load; `ringnfs bench compare` runs the
/// side-by-side comparison with nfs-ganesha.
#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchCli {
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    #[command(flatten)]
    pub args: BenchArgs,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum BenchCommand {
    /// Start ringnfs and nfs-ganesha side by side (installing ganesha with apt-get if
    /// missing), run identical workloads against both, alternating, several rounds;
    /// print the ratio table and write a Markdown report, JSON and SVG plots.
    Compare(compare::CompareArgs),
}

/// `ringnfs bench ...`.
pub fn run_bench_cli(cli: &BenchCli) -> anyhow::Result<()> {
    match &cli.command {
        Some(BenchCommand::Compare(a)) => compare::run_compare(a).map(|_| ()),
        None => run_cli(&cli.args).map(|_| ()),
    }
}

/// `ringnfs bench`: run, print the summary on stdout, write JSON if asked.
pub fn run_cli(args: &BenchArgs) -> anyhow::Result<BenchReport> {
    let report = run(BenchOptions::from_args(args)?)?;
    print!("{}", report.summary());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

/// A session's setup connection and what teardown needs.
struct SessionInfo {
    clientid: u64,
    sessionid: [u8; 16],
}

/// Run one benchmark.
pub fn run(opts: BenchOptions) -> anyhow::Result<BenchReport> {
    if opts.connections == 0 || opts.sessions == 0 || opts.depth == 0 {
        bail!("--connections, --sessions and --depth must be at least 1");
    }
    if opts.depth > 0xffff {
        bail!("--depth must be below 65536");
    }
    let w = opts.workload;
    let mut depth = opts.depth;
    let mut io_size = w.io_size();
    let prep = if !matches!(w, Workload::Null | Workload::Sequence) {
        let file = w.needs_file().then(|| setup::FileSpec {
            size: if w.io_size() > 0 { opts.file_size } else { 0 },
            fill: w.io_size() > 0 && !w.is_write(),
        });
        setup::prepare(opts.server, &opts.cred, &opts.export_path, file)?
    } else {
        setup::Prepared::default()
    };
    if io_size > 0 {
        // Never assume our limits: the I/O size follows what the server granted.
        // 1 KiB leaves room for the RPC header, credential, SEQUENCE and PUTFH.
        let limit = u64::from(prep.max_request.min(prep.max_response)).saturating_sub(1024)
            / pattern::BLOCK as u64
            * pattern::BLOCK as u64;
        if limit == 0 {
            bail!("the server's maximum request/response size is too small");
        }
        if io_size > limit {
            tracing::warn!(io_size, limit, "server limits I/O size: lowering it");
            io_size = limit;
        }
        if opts.file_size < io_size {
            bail!("--file-size-mib is smaller than one I/O");
        }
    }
    let nonce: u32 = rand::random();
    // Per session: its connections (the first one created the session) and templates.
    type Plan = (Option<SessionInfo>, Vec<TcpStream>, Arc<Vec<Template>>);
    let mut plans: Vec<Plan> = Vec::new();
    let mut pick = Arc::new(vec![0u8]);
    for _ in 0..opts.sessions {
        let mut streams = Vec::with_capacity(opts.connections);
        for _ in 0..opts.connections {
            let s = TcpStream::connect(opts.server)
                .with_context(|| format!("connecting to {}", opts.server))?;
            s.set_nodelay(true)?;
            streams.push(s);
        }
        if w.needs_session() {
            let want = (opts.connections * depth) as u32;
            let (clientid, cs) = setup::create_session(&mut streams[0], &opts.cred, want)?;
            let got = cs.fore.maxrequests as usize;
            if got < opts.connections * depth {
                let d = got / opts.connections;
                if d == 0 {
                    bail!(
                        "server granted {got} slots, fewer than the {} connections per session",
                        opts.connections
                    );
                }
                tracing::warn!(
                    granted = got,
                    depth = d,
                    "server granted fewer slots: lowering depth"
                );
                depth = depth.min(d);
            }
            let highest = (got.max(1) - 1) as u32;
            let (kinds, p) = workload_ops(
                w,
                &TemplateInput {
                    prep: &prep,
                    io_size: io_size as u32,
                    clientid,
                    nonce,
                    remove: opts.remove,
                },
            );
            let mut tmpls = Vec::with_capacity(kinds.len());
            for ops in &kinds {
                if ops.len() + 1 > cs.fore.maxoperations as usize {
                    bail!(
                        "{} needs {} operations per COMPOUND; the server allows {}",
                        w.name(),
                        ops.len() + 1,
                        cs.fore.maxoperations
                    );
                }
                let t = Template::sequenced(&opts.cred, cs.sessionid, highest, ops);
                if t.bytes.len() - 4 > cs.fore.maxrequestsize as usize {
                    bail!(
                        "a {} request is {} bytes; the server accepts {}",
                        w.name(),
                        t.bytes.len() - 4,
                        cs.fore.maxrequestsize
                    );
                }
                tmpls.push(t);
            }
            pick = Arc::new(p);
            plans.push((
                Some(SessionInfo {
                    clientid,
                    sessionid: cs.sessionid,
                }),
                streams,
                Arc::new(tmpls),
            ));
        } else {
            plans.push((None, streams, Arc::new(vec![Template::null(&opts.cred)])));
        }
    }

    let start = Instant::now();
    let measure_start = start + opts.warmup;
    let measure_end = opts.ops.is_none().then(|| measure_start + opts.duration);
    let nworkers = opts.sessions * opts.connections;
    let quota = |i: usize| {
        opts.ops
            .map(|n| n / nworkers as u64 + u64::from((i as u64) < n % nworkers as u64))
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut progress = Vec::new();
    let mut handles = Vec::new();
    let mut infos = Vec::new();
    for (si, (info, streams, tmpls)) in plans.into_iter().enumerate() {
        infos.push(info);
        for (ci, s) in streams.into_iter().enumerate() {
            let p = Arc::new(AtomicU64::new(0));
            progress.push(p.clone());
            let worker = si * opts.connections + ci;
            let io = (io_size > 0).then(|| {
                let random = w.random_io();
                // Spread sequential streams over the file; seed random ones apart.
                let mut start = if random {
                    worker as u64 * 0x9e37_79b9 + 1
                } else {
                    opts.file_size / nworkers as u64 * worker as u64
                };
                if !random {
                    start %= opts.file_size.max(io_size);
                    start -= start % io_size;
                }
                IoPattern {
                    file_size: opts.file_size,
                    io_size,
                    random,
                    start,
                }
            });
            let cfg = WorkerConfig {
                templates: tmpls.clone(),
                pick: pick.clone(),
                verify: opts.verify,
                name_base: (worker as u64) << 40,
                io,
                depth,
                slot_base: (ci * depth) as u32,
                first_seqid: 1,
                measure_start,
                measure_end,
                quota: quota(worker),
                progress: p,
                stop: stop.clone(),
            };
            handles.push(
                std::thread::Builder::new()
                    .name(format!("bench-{si}-{ci}"))
                    .spawn(move || run_worker(s, cfg))?,
            );
        }
    }

    // Progress and CPU sampling on this thread.
    let pid = opts.server_pid.map(|p| p.to_string());
    let mut cpu_start = None;
    let mut last = (Instant::now(), 0u64);
    let bar = opts.progress.then(|| {
        let b = match measure_end {
            Some(_) => {
                indicatif::ProgressBar::new((opts.warmup + opts.duration).as_millis() as u64)
            }
            None => indicatif::ProgressBar::new(opts.ops.unwrap_or(0)),
        };
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {msg}",
            )
            .expect("progress template"),
        );
        b.set_prefix(w.name());
        b
    });
    while !handles.iter().all(|h| h.is_finished()) {
        let now = Instant::now();
        let nap = if cpu_start.is_none() && now < measure_start {
            (measure_start - now).min(Duration::from_millis(50))
        } else {
            Duration::from_millis(50)
        };
        std::thread::sleep(nap);
        let now = Instant::now();
        if cpu_start.is_none() && now >= measure_start {
            cpu_start = Some((
                pid.as_deref().and_then(process_cpu_us),
                process_cpu_us("self"),
            ));
        }
        if let Some(b) = &bar
            && now.duration_since(last.0) >= Duration::from_millis(500)
        {
            let total: u64 = progress.iter().map(|p| p.load(Ordering::Relaxed)).sum();
            let rate = (total - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
            let phase = if now < measure_start {
                "warm-up"
            } else {
                "measuring"
            };
            b.set_message(format!("{phase} {rate:.0} ops/s"));
            match measure_end {
                Some(_) => b.set_position(now.duration_since(start).as_millis() as u64),
                None => b.set_position(total),
            }
            last = (now, total);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let cpu_end = (
        pid.as_deref().and_then(process_cpu_us),
        process_cpu_us("self"),
    );

    let mut results: Vec<WorkerResult> = Vec::with_capacity(handles.len());
    for h in handles {
        results.push(
            h.join()
                .map_err(|_| anyhow::anyhow!("bench worker panicked"))?,
        );
    }

    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut ops = 0;
    let mut bytes = 0;
    let mut verified_bytes = 0;
    let mut errors = BTreeMap::new();
    let mut failures = Vec::new();
    let mut last_completion = None;
    for r in &results {
        hist.add(&r.hist)?;
        ops += r.ops;
        bytes += r.bytes;
        verified_bytes += r.verified_bytes;
        for (k, v) in &r.errors {
            *errors.entry(k.to_string()).or_insert(0) += v;
        }
        if let Some(f) = &r.failure {
            failures.push(format!(
                "{}: {f}",
                r.stream
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default()
            ));
        }
        last_completion = last_completion.max(r.last_completion);
    }
    let elapsed = match measure_end {
        Some(end) => end
            .min(Instant::now())
            .saturating_duration_since(measure_start),
        None => last_completion
            .map(|l| l.saturating_duration_since(measure_start))
            .unwrap_or_default(),
    }
    .as_secs_f64();

    // Teardown: the first connection of each session destroys it.
    let mut streams: Vec<TcpStream> = results.into_iter().map(|r| r.stream).collect();
    for (si, info) in infos.iter().enumerate() {
        if let Some(info) = info {
            let s = &mut streams[si * opts.connections];
            if let Err(e) = setup::destroy_session(s, &opts.cred, info.clientid, info.sessionid) {
                tracing::warn!(error = %e, "session teardown failed");
            }
        }
    }

    let per_op = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) if ops > 0 => Some(b.saturating_sub(a) as f64 / ops as f64),
        _ => None,
    };
    let (srv0, self0) = cpu_start.unwrap_or((None, None));
    let error_total = errors.values().sum();
    let ops_per_sec = if elapsed > 0.0 {
        ops as f64 / elapsed
    } else {
        0.0
    };
    Ok(BenchReport {
        workload: w.name().to_string(),
        server: opts.server.to_string(),
        sessions: opts.sessions,
        connections_per_session: opts.connections,
        depth,
        elapsed_s: elapsed,
        ops,
        ops_per_sec,
        mib_per_sec: if elapsed > 0.0 {
            bytes as f64 / elapsed / (1 << 20) as f64
        } else {
            0.0
        },
        io_size,
        verify: opts.verify,
        verified_bytes,
        latency_us: Latency::from_hist(&hist),
        errors,
        error_total,
        server_cpu_us_per_op: per_op(srv0, cpu_end.0),
        client_cpu_us_per_op: per_op(self0, cpu_end.1),
        connection_failures: failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::mock::MockServer;

    fn opts(server: SocketAddr, workload: Workload) -> BenchOptions {
        BenchOptions {
            connections: 2,
            depth: 4,
            duration: Duration::from_millis(300),
            warmup: Duration::from_millis(100),
            server_pid: Some(std::process::id()),
            file_size: 4 << 20,
            ..BenchOptions::new(server, workload)
        }
    }

    fn args(extra: &[&str]) -> anyhow::Result<BenchOptions> {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            a: BenchArgs,
        }
        let mut v = vec!["bench"];
        v.extend_from_slice(extra);
        let cli = <Cli as clap::Parser>::try_parse_from(v)?;
        BenchOptions::from_args(&cli.a)
    }

    #[test]
    fn argument_handling() {
        let o = args(&[]).unwrap();
        assert_eq!(o.workload, Workload::Sequence);
        assert_eq!((o.connections, o.sessions, o.depth), (4, 1, 8));
        assert_eq!(o.file_size, 256 << 20);
        assert!(o.export_path.is_empty() && !o.verify && !o.remove);
        assert_eq!(o.cred, Credential::None);
        let o = args(&[
            "--workload",
            "mixed",
            "--server",
            "127.0.0.1:20490",
            "--export-path",
            "/export/x",
            "--verify",
            "--auth-sys",
            "--file-size-mib",
            "0",
            "--ops",
            "10",
        ])
        .unwrap();
        assert_eq!(o.workload, Workload::Mixed);
        assert_eq!(o.server.port(), 20490);
        assert_eq!(o.export_path, vec![b"export".to_vec(), b"x".to_vec()]);
        assert!(o.verify && matches!(o.cred, Credential::Sys(_)));
        assert_eq!(o.file_size, 1 << 20, "at least 1 MiB");
        assert_eq!(o.ops, Some(10));
        for bad in [
            &["--connections", "0"][..],
            &["--depth", "0"],
            &["--duration", "0"],
            &["--warmup", "-1"],
            &["--ops", "0"],
            &["--workload", "nope"],
            &["--server", "no-such-host.invalid:1"],
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
        for w in Workload::ALL {
            assert_eq!(
                <Workload as clap::ValueEnum>::from_str(w.name(), false).unwrap(),
                w
            );
        }
        // The mixed profile adds up to 100 %.
        assert_eq!(MIX.iter().map(|m| m.1 as u32).sum::<u32>(), 100);
    }

    #[test]
    fn sequence_workload_against_mock() {
        let m = MockServer::start();
        let r = run(opts(m.addr, Workload::Sequence)).unwrap();
        assert!(r.ops > 0, "{r:?}");
        assert_eq!(r.error_total, 0, "{:?}", r.errors);
        assert!(
            r.connection_failures.is_empty(),
            "{:?}",
            r.connection_failures
        );
        assert!(r.latency_us.p50 > 0.0);
        assert!(r.server_cpu_us_per_op.is_some());
        // A duration run measures at least the asked time (never a speed claim).
        assert!(r.elapsed_s >= 0.29, "{}", r.elapsed_s);
        // Every executed request advanced its slot: no replays, no misordering.
        assert_eq!(m.state.replays.load(Ordering::Relaxed), 0);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"ops_per_sec\""));
    }

    #[test]
    fn null_workload_with_op_count_and_sessions() {
        let m = MockServer::start();
        let mut o = opts(m.addr, Workload::Null);
        o.ops = Some(1001);
        o.sessions = 2;
        let r = run(o).unwrap();
        assert_eq!(r.ops, 1001);
        assert_eq!(r.error_total, 0);
    }

    #[test]
    fn depth_is_clamped_to_granted_slots_and_errors_counted() {
        let m = MockServer::start();
        let mut o = opts(m.addr, Workload::Getattr);
        // The mock grants at most 128 slots: 2 x 100 does not fit.
        o.depth = 100;
        // A fixed op count, not a duration: the outcome must not depend on how busy the
        // machine is.
        o.ops = Some(500);
        let r = run(o).unwrap();
        assert_eq!(r.depth, 64);
        // The mock does not implement GETATTR: every op fails with OP_ILLEGAL.
        assert_eq!(r.ops, 500);
        assert_eq!(
            r.errors.get("NFS4ERR_OP_ILLEGAL").copied(),
            Some(r.ops),
            "{:?}",
            r.errors
        );
    }
}

/// Throughput of the load generator itself against a trivial in-process server that
/// answers every request with one pre-encoded SEQUENCE reply. Run with
/// `cargo test --release -- --ignored --nocapture generator_throughput`.
#[cfg(test)]
mod perf {
    use super::*;
    use crate::nfs4::consts::op;
    use crate::rpc::record::mark;
    use crate::rpc::{AcceptStat, encode_accepted};
    use crate::xdr::XdrEncoder;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn blast_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let mut rep = Vec::new();
        encode_accepted(&mut rep, 0, AcceptStat::Success);
        rep.put_u32(0);
        rep.put_opaque(b"");
        rep.put_u32(1);
        rep.put_u32(op::SEQUENCE);
        rep.put_u32(0);
        rep.put_fixed(&[0; 16]);
        for _ in 0..5 {
            rep.put_u32(0);
        }
        let mut framed = mark(rep.len()).to_vec();
        framed.extend_from_slice(&rep);
        std::thread::spawn(move || {
            for s in l.incoming() {
                let mut s = s.unwrap();
                let framed = framed.clone();
                std::thread::Builder::new()
                    .name("blast".into())
                    .spawn(move || {
                        s.set_nodelay(true).unwrap();
                        let mut buf = vec![0u8; 256 * 1024];
                        let mut have = 0;
                        let mut out = Vec::new();
                        loop {
                            let n = match s.read(&mut buf[have..]) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            have += n;
                            let mut p = 0;
                            while have - p >= 8 {
                                let len = (u32::from_be_bytes(buf[p..p + 4].try_into().unwrap())
                                    & 0x7fff_ffff)
                                    as usize;
                                if have - p < 4 + len {
                                    break;
                                }
                                let at = out.len();
                                out.extend_from_slice(&framed);
                                out[at + 4..at + 8].copy_from_slice(&buf[p + 4..p + 8]);
                                p += 4 + len;
                            }
                            buf.copy_within(p..have, 0);
                            have -= p;
                            if s.write_all(&out).is_err() {
                                return;
                            }
                            out.clear();
                        }
                    })
                    .unwrap();
            }
        });
        addr
    }

    #[test]
    #[ignore]
    fn generator_throughput() {
        let addr = blast_server();
        let r = run(BenchOptions {
            duration: Duration::from_secs(3),
            warmup: Duration::from_millis(500),
            ..BenchOptions::new(addr, Workload::Null)
        })
        .unwrap();
        print!("{}", r.summary());
        // SEQUENCE: drive workers directly (the blast server cannot create sessions).
        let tmpl = Arc::new(Template::sequenced(&Credential::None, [7; 16], 31, &[]));
        let start = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let hs: Vec<_> = (0..4)
            .map(|c| {
                let s = TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                let cfg = WorkerConfig {
                    templates: Arc::new(vec![(*tmpl).clone()]),
                    pick: Arc::new(vec![0]),
                    verify: false,
                    name_base: 0,
                    io: None,
                    depth: 8,
                    slot_base: c * 8,
                    first_seqid: 1,
                    measure_start: start + Duration::from_millis(500),
                    measure_end: Some(start + Duration::from_millis(3500)),
                    quota: None,
                    progress: Arc::new(AtomicU64::new(0)),
                    stop: stop.clone(),
                };
                std::thread::spawn(move || run_worker(s, cfg))
            })
            .collect();
        let mut ops = 0;
        for h in hs {
            let r = h.join().unwrap();
            assert!(r.errors.is_empty(), "{:?}", r.errors);
            ops += r.ops;
        }
        println!("sequence: {:.0} ops/s", ops as f64 / 3.0);
    }
}
