//! The `ringnfs` command: `serve` runs the server, `ctl` talks to its control plane,
//! `bench` execs the load generator, `ringnfs-bench`, found next to this executable.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use ringnfs::options::{ServeOptions, StartOptions};
use ringnfs::server::{BackendKind, Server};
use ringnfs::state::settings::{SETTING_KEYS, SETTINGS_FILE, Source};

#[derive(Parser)]
#[command(
    name = "ringnfs",
    version,
    about = "NFSv4.1 server on io_uring with session trunking"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the NFS server.
    Serve(Box<ServeArgs>),
    /// Load generator against any NFSv4.1 server (runs `ringnfs-bench`, next to this
    /// executable; `ringnfs bench --help` for its options).
    Bench(BenchArgs),
    /// Talk to a running server's control plane (clients, sessions, drain, settings).
    Ctl(Box<ringnfs::control::cli::CtlArgs>),
    /// Print a shell completion script for ringnfs (e.g. `ringnfs completions bash >
    /// /etc/bash_completion.d/ringnfs`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Work with export lists (`import`: exports(5) into the config file's `[[export]]`
    /// tables).
    Exports {
        #[command(subcommand)]
        action: ExportsCommand,
    },
    /// Write the man pages (ringnfs.1, ringnfs-serve.1, ringnfs-ctl.1, ...) into DIR.
    #[command(hide = true)]
    Manpages { dir: PathBuf },
}

#[derive(Subcommand)]
enum ExportsCommand {
    /// Print FILE (exports(5) syntax, default /etc/exports) as `[[export]]` tables for
    /// --config, and name on stderr every option, client or line that has no
    /// equivalent (netgroups, wildcard host names, sec=krb5*, sync/async, ...).
    Import {
        #[arg(value_name = "FILE", default_value = "/etc/exports")]
        file: PathBuf,
    },
}

/// `ringnfs exports import FILE`: the tables on stdout, what was left out on stderr.
fn import_exports(file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
    let r = ringnfs::control::exports::exports5::import(&text);
    for n in &r.notes {
        eprintln!("ringnfs exports import: {}: {n}", file.display());
    }
    if r.exports.is_empty() {
        anyhow::bail!("{} has no exports", file.display());
    }
    let tables = ringnfs::exports::ExportsFile { export: r.exports };
    let text = toml::to_string(&tables).map_err(|e| anyhow::anyhow!("writing TOML: {e}"))?;
    println!(
        "# [[export]] tables from {} (ringnfs exports import); add them to the file\n\
         # `ringnfs serve --config` reads.\n\n{text}",
        file.display()
    );
    Ok(())
}

/// What `serve --help` says after the options.
fn serve_after_help() -> String {
    let keys: Vec<String> = SETTING_KEYS.iter().map(|k| k.replace('_', "-")).collect();
    format!(
        "\
Settings changed while the server runs (`ringnfs ctl settings set`:
{}) are saved in
STATE_DIR/{SETTINGS_FILE} and used at the next start, except a setting given at that start on
the command line, in --config or (log level) in RUST_LOG: that value wins, and a warning
names the key and both values. `ringnfs ctl settings reset [KEY]` drops saved values.
--config FILE takes these options as TOML keys with underscores (`pin = false` for --no-pin,
`root_squash = false` for --no-root-squash, `sqpoll_idle_ms` for --sqpoll).",
        keys.join(", ")
    )
}

/// Everything after `bench`, for `ringnfs-bench` (which parses it, `--help` too).
#[derive(clap::Args)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct BenchArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    args: Vec<OsString>,
}

/// The executable `ringnfs bench` runs, in the directory of this one.
const BENCH_EXE: &str = "ringnfs-bench";
/// Exit status when `ringnfs-bench` cannot be run (2, as for a usage error).
const EXIT_NO_BENCH: u8 = 2;

/// `ringnfs bench ARGS...`: replace this process with `ringnfs-bench ARGS...` (git-style);
/// returns only if that fails, with a one-line error naming the command that builds it.
fn exec_bench(args: &BenchArgs) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let bench = match std::env::current_exe() {
        Ok(me) => me.with_file_name(BENCH_EXE),
        Err(e) => {
            eprintln!("ringnfs bench: cannot find this executable to look for {BENCH_EXE}: {e}");
            return ExitCode::from(EXIT_NO_BENCH);
        }
    };
    if !bench.is_file() {
        eprintln!("{}", missing_bench(&bench));
        return ExitCode::from(EXIT_NO_BENCH);
    }
    // argv[0] "ringnfs bench": its usage lines name the command the user typed.
    let e = std::process::Command::new(&bench)
        .arg0("ringnfs bench")
        .args(&args.args)
        .exec();
    eprintln!("ringnfs bench: cannot run {}: {e}", bench.display());
    ExitCode::from(EXIT_NO_BENCH)
}

/// What `ringnfs bench` says when `ringnfs-bench` is not at `path`.
fn missing_bench(path: &Path) -> String {
    format!(
        "ringnfs bench: the load generator {} is missing; build it with \
         `cargo build --release --bin {BENCH_EXE}` (`cargo build --release` builds both \
         binaries; `cargo run` builds only ringnfs, so its bench may be missing or stale)",
        path.display()
    )
}

#[derive(clap::Args)]
#[command(after_help = serve_after_help())]
struct ServeArgs {
    /// TOML file with any of these options (command-line options win).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The options, defined in `ringnfs::options`.
    #[command(flatten)]
    options: ServeOptions,
}

fn main() -> ExitCode {
    init_logging();
    let result = match Cli::parse().command {
        Command::Serve(args) => serve(*args),
        // The bench reports its own outcome and exit status (`ringnfs bench --help`).
        Command::Bench(args) => return exec_bench(&args),
        Command::Ctl(args) => return ringnfs::control::cli::run(&args),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "ringnfs", &mut std::io::stdout());
            Ok(())
        }
        Command::Exports {
            action: ExportsCommand::Import { file },
        } => import_exports(&file),
        Command::Manpages { dir } => {
            ringnfs::manpages::write_all(<Cli as clap::CommandFactory>::command(), &dir)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringnfs: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Log to stderr with a filter the control plane can change at run time.
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let start = env_log_level().unwrap_or_else(|| "info".to_string());
    let (filter, handle) = tracing_subscriber::reload::Layer::new(EnvFilter::new(&start));
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
    ringnfs::control::set_log_reloader(
        &start,
        Box::new(move |level| {
            let f = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
            handle.reload(f).map_err(|e| e.to_string())
        }),
    );
}

/// The log filter in `RUST_LOG`, when it is one.
fn env_log_level() -> Option<String> {
    std::env::var("RUST_LOG")
        .ok()
        .filter(|s| EnvFilter::try_new(s).is_ok())
}

/// Run the server until SIGINT or SIGTERM; SIGHUP re-reads --config and applies its
/// live settings. Under systemd (`Type=notify`) it says READY once serving, STOPPING on
/// the way out, and feeds the watchdog while the NFS port answers. The control address,
/// the default one too, must be free (or `--control off`): `ctl` must never talk to
/// another server.
fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config_path = args.config.clone();
    let file = match args.config {
        Some(path) => Some((path.clone(), ringnfs::config::load(&path)?)),
        None => None,
    };
    let start = StartOptions::new(args.options, file);
    let log_level = match env_log_level() {
        Some(_) => Source::Environment("RUST_LOG".into()),
        None => Source::Default,
    };
    let cfg = start.server_config(log_level);
    if cfg.backend == BackendKind::Memory && start.source(|o| o.export.is_some()).is_explicit() {
        tracing::warn!(
            export = %cfg.export_path.display(),
            "--export is ignored with --backend memory (files live in RAM); use --backend local to export a directory"
        );
    }
    let server = Server::start(cfg)?;
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])?;
    ringnfs::systemd::ready(&server);
    for sig in signals.forever() {
        if sig == signal_hook::consts::SIGHUP {
            ringnfs::systemd::reload(&server, config_path.as_deref());
            continue;
        }
        tracing::info!(signal = sig, "shutting down");
        break;
    }
    ringnfs::systemd::stopping();
    server.shutdown();
    server.join()
}
