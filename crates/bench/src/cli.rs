//! The `ringnfs bench` command line: arguments, the report on stdout, and the exit
//! status (see [`EXIT_STATUS_HELP`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::error::{BenchError, EXIT_ERRORS, EXIT_STATUS_HELP};
use super::{BenchOptions, Workload, compare, interrupt, run, setup};
use ringnfs_proto::rpc::Credential;

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
    /// Measure this many replies instead of a duration (failed replies count here,
    /// not as ops).
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
    /// Use AUTH_SYS instead of AUTH_NONE: as root (uid 0, gid 0; what ganesha's
    /// `SecType = sys` needs), or as UID[:GID] (GID defaults to UID).
    #[arg(long, value_name = "UID[:GID]", num_args = 0..=1, default_missing_value = "0:0",
          value_parser = parse_ids)]
    pub auth_sys: Option<(u32, u32)>,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Size of the file I/O workloads use, MiB (created and filled before the run).
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
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
    /// open-read-close: ask for no delegation (OPEN4_SHARE_ACCESS_WANT_NO_DELEG), to
    /// compare with a run that takes the one the server grants.
    #[arg(long)]
    pub no_delegations: bool,
    /// RPC-with-TLS (RFC 9289) on every connection, trusting the CA certificates in
    /// this PEM file.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// The name the server's certificate must carry (default: the --server address).
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    pub tls_name: Option<String>,
    /// Show this client certificate (PEM; with --tls-client-key) for mutual TLS.
    #[arg(long, value_name = "FILE", requires_all = ["tls_ca", "tls_client_key"])]
    pub tls_client_cert: Option<PathBuf>,
    /// The key of --tls-client-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_client_cert")]
    pub tls_client_key: Option<PathBuf>,
}

/// `UID` or `UID:GID` of `--auth-sys`.
fn parse_ids(s: &str) -> Result<(u32, u32), String> {
    let id = |v: &str| {
        v.parse::<u32>()
            .map_err(|_| format!("{v:?} is not a numeric id (UID or UID:GID)"))
    };
    match s.split_once(':') {
        Some((u, g)) => Ok((id(u)?, id(g)?)),
        None => id(s).map(|u| (u, u)),
    }
}

impl BenchOptions {
    pub fn from_args(a: &BenchArgs) -> Result<Self, BenchError> {
        let usage = |m: &str| Err(BenchError::Usage(m.to_string()));
        let server = ringnfs_proto::addr::resolve_addr(&a.server).map_err(BenchError::Usage)?;
        let valid = a.duration.is_finite() && a.duration > 0.0;
        if !valid || !a.warmup.is_finite() || a.warmup < 0.0 {
            return usage("--duration must be > 0 and --warmup >= 0");
        }
        if a.connections == 0 || a.sessions == 0 || a.depth == 0 {
            return usage("--connections, --sessions and --depth must be at least 1");
        }
        if a.ops == Some(0) {
            return usage("--ops must be at least 1");
        }
        let cred = match a.auth_sys {
            Some((uid, gid)) => Self::sys_cred(uid, gid),
            None => Credential::None,
        };
        let tls = match &a.tls_ca {
            Some(ca) => {
                let name = a
                    .tls_name
                    .clone()
                    .unwrap_or_else(|| server.ip().to_string());
                let client = a
                    .tls_client_cert
                    .as_deref()
                    .zip(a.tls_client_key.as_deref());
                Some(
                    ringnfs_client::ClientTls::new(ca, &name, client)
                        .map_err(|e| BenchError::Usage(e.to_string()))?,
                )
            }
            None => None,
        };
        Ok(BenchOptions {
            tls,
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
            file_size: a.file_size_mib << 20,
            verify: a.verify,
            export_path: setup::path_components(&a.export_path),
            remove: a.remove,
            no_delegations: a.no_delegations,
        })
    }
}

/// `ringnfs bench [OPTIONS]` runs one load; `ringnfs bench compare` runs the
/// side-by-side comparison with nfs-ganesha. The command line of the `ringnfs-bench`
/// executable, which `ringnfs bench` runs.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "ringnfs-bench",
    version,
    about = "Load generator against any NFSv4.1 server (`ringnfs bench`)",
    args_conflicts_with_subcommands = true,
    after_help = EXIT_STATUS_HELP
)]
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
    /// Write or read one file as a second client (a test tool: the kernel harness's host
    /// writes a file its Linux guest holds a delegation of); NFS4ERR_DELAY is retried
    /// and the time it took is printed.
    File(super::file::FileArgs),
    /// Write the man pages (ringnfs-bench.1, ringnfs-bench-compare.1, ...) into DIR.
    #[command(hide = true)]
    Manpages { dir: PathBuf },
}

/// `manpages DIR`: one page per command, from the command line's own definitions.
fn write_manpages(dir: &Path) -> std::io::Result<()> {
    fn tree(cmd: &clap::Command, dir: &Path) -> std::io::Result<()> {
        if cmd.is_hide_set() || cmd.get_name() == "help" {
            return Ok(());
        }
        let name = cmd.get_display_name().unwrap_or_else(|| cmd.get_name());
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
        std::fs::write(dir.join(format!("{name}.1")), out)?;
        cmd.get_subcommands().try_for_each(|sub| tree(sub, dir))
    }
    std::fs::create_dir_all(dir)?;
    let mut cmd = <BenchCli as clap::CommandFactory>::command();
    cmd.build();
    tree(&cmd, dir)
}

/// The `ringnfs-bench` executable (`ringnfs bench ...` execs it): parse the command
/// line, log warnings to stderr (`RUST_LOG` changes the level), run; the exit status.
pub fn main() -> ExitCode {
    let cli = <BenchCli as clap::Parser>::parse();
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|s| tracing_subscriber::EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    run_bench_cli(&cli)
}

/// `ringnfs bench ...`: the process exit status.
pub fn run_bench_cli(cli: &BenchCli) -> ExitCode {
    interrupt::install();
    ExitCode::from(match &cli.command {
        Some(BenchCommand::Compare(a)) => compare::run_compare_cli(a),
        Some(BenchCommand::File(a)) => super::file::run_file_cli(a),
        Some(BenchCommand::Manpages { dir }) => match write_manpages(dir) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("ringnfs-bench manpages: {}: {e}", dir.display());
                EXIT_ERRORS
            }
        },
        None => run_cli(&cli.args),
    })
}

/// `ringnfs bench`: run, print the summary on stdout (its last line says whether the
/// run was clean), write JSON if asked; returns the exit status.
pub fn run_cli(args: &BenchArgs) -> u8 {
    let result = BenchOptions::from_args(args).and_then(run);
    match result {
        Ok(report) => {
            print!("{}", report.summary());
            let code = report.exit_code();
            match &args.json {
                Some(path) => write_json(path, &report).map_or(EXIT_ERRORS.max(code), |_| code),
                None => code,
            }
        }
        Err(e) => {
            eprintln!("ringnfs bench: {e}");
            if let Some(path) = &args.json {
                // --json keeps everything: a run that never started says why.
                let v =
                    serde_json::json!({ "setup_error": e.to_string(), "exit_code": e.exit_code() });
                let _ = write_json(path, &v);
            }
            e.exit_code()
        }
    }
}

fn write_json(path: &Path, v: &impl serde::Serialize) -> Result<(), ()> {
    let r = serde_json::to_vec_pretty(v)
        .map_err(|e| e.to_string())
        .and_then(|b| std::fs::write(path, b).map_err(|e| e.to_string()));
    r.map_err(|e| eprintln!("ringnfs bench: writing {}: {e}", path.display()))
}
