//! The `ringnfs` command: `serve` runs the server, `bench` the load generator.

use std::path::PathBuf;
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
    Serve(ServeArgs),
    /// Load generator against any NFSv4.1 server.
    Bench(ringnfs::bench::BenchCli),
    /// Talk to a running server's control plane (clients, sessions, drain, settings).
    Ctl(ringnfs::control::cli::CtlArgs),
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
        Command::Serve(args) => serve(args),
        // The bench reports its own outcome and exit status (`ringnfs bench --help`).
        Command::Bench(cli) => return ringnfs::bench::run_bench_cli(&cli),
        Command::Ctl(args) => return ringnfs::control::cli::run(&args),
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

/// Run the server until SIGINT or SIGTERM. The control address, the default one too,
/// must be free (or `--control off`): `ctl` must never talk to another server.
fn serve(args: ServeArgs) -> anyhow::Result<()> {
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
    ])?;
    if let Some(sig) = signals.forever().next() {
        tracing::info!(signal = sig, "shutting down");
    }
    server.shutdown();
    server.join()
}
