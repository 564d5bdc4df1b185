//! The `ringnfs` command: `serve` runs the server, `bench` the load generator.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::TypedValueParser;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use ringnfs::control::ControlAddr;
use ringnfs::nfs4::export::{DEFAULT_ANON_ID, ExportOptions};
use ringnfs::server::{BackendKind, DEFAULT_EXPORT, Server, ServerConfig};
use ringnfs::state::settings::{OverLimit, SettingSources, Source};
use ringnfs::transport::TransportTuning;

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

/// `--control ADDR:PORT` or `--control off`.
fn parse_control(s: &str) -> Result<ControlAddr, String> {
    s.parse()
}

/// What `serve --help` says after the options.
const SERVE_AFTER_HELP: &str = "\
Settings changed while the server runs (`ringnfs ctl settings set`: max-connections-per-session,
exclusive-binding, lease-time, log-level) are saved in STATE_DIR/settings.toml and used at the
next start, except a setting given at that start on the command line, in --config or (log
level) in RUST_LOG: that value wins, and a warning names the key and both values.
`ringnfs ctl settings reset [KEY]` drops saved values.";

/// `--listen ADDR:PORT`: an address or a host name (the first address it resolves to,
/// like `bench --server`).
fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    ringnfs::config::resolve_addr(s)
}

// Placeholders: N (a count), SECS, MS, BYTES, KIB, FILE, DIR, ADDR:PORT, CIDR, or the
// choices (`local|memory`); ranges are written in the help as (LO–HI).
#[derive(clap::Args)]
#[command(after_help = SERVE_AFTER_HELP)]
struct ServeArgs {
    /// TOML file with any of these options (command-line options win).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on, or HOST:PORT (repeatable: e.g. 127.0.0.1:2049 and
    /// 127.0.0.2:2049).
    #[arg(long = "listen", value_name = "ADDR:PORT", value_parser = parse_listen,
          default_values_t = [SocketAddr::from(([127, 0, 0, 1], 2049))])]
    listen: Vec<SocketAddr>,
    /// Worker threads, one io_uring ring each [default: one per CPU].
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    threads: usize,
    /// Do not pin workers to CPUs.
    #[arg(long)]
    no_pin: bool,
    /// Directory for the server's persistent identity, token and saved settings.
    #[arg(long, value_name = "DIR", default_value = "ringnfs-state")]
    state_dir: PathBuf,
    /// Connections one session may bind (0–1024, 0 = unlimited).
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(0..=1024))]
    max_connections_per_session: u32,
    /// Binding a connection to a session unbinds it from its other sessions (pre-RFC 8881).
    #[arg(long)]
    exclusive_binding: bool,
    /// A SEQUENCE on a connection its session has no room for (over
    /// --max-connections-per-session): `serve` runs it without binding the connection,
    /// `delay` answers NFS4ERR_DELAY. The bind is refused either way.
    #[arg(long, value_name = "serve|delay", value_enum, default_value_t = OverLimit::Serve)]
    over_limit: OverLimit,
    /// Lease time in seconds (1–3600).
    #[arg(long, value_name = "SECS", default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=3600))]
    lease_time: u32,
    /// Fore-channel slots offered per session (1–1024).
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    max_slots: u32,
    /// Directory to export (local backend only); created with mode 1777 if missing.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_EXPORT)]
    export: PathBuf,
    /// Where files live: real files under --export, or RAM. The local backend needs root
    /// (it reopens files by handle).
    #[arg(long, value_name = "local|memory", value_enum, default_value_t = BackendKind::Local)]
    backend: BackendKind,
    /// Refuse every change (NFS4ERR_ROFS).
    #[arg(long)]
    read_only: bool,
    /// Do not map uid/gid 0 to the anonymous ids.
    #[arg(long)]
    no_root_squash: bool,
    /// Anonymous uid (squashed root and AUTH_NONE callers).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ANON_ID)]
    anon_uid: u32,
    /// Anonymous gid.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ANON_ID)]
    anon_gid: u32,
    /// Grace period after start in which clients reclaim opens and locks, seconds
    /// (0–3600, 0 = none).
    #[arg(long, value_name = "SECS", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=3600))]
    grace: u32,
    /// Client network allowed to use the export (repeatable) [default: all].
    #[arg(long = "allow", value_name = "CIDR")]
    allow: Vec<ipnet::IpNet>,
    /// Control plane (HTTP API, metrics) address, or "off". If the address is taken the
    /// server does not start. Changes need the bearer token; on a non-loopback address
    /// every request does.
    #[arg(long, value_name = "ADDR:PORT|off", default_value = ringnfs::control::DEFAULT_CONTROL_ADDR, value_parser = parse_control)]
    control: ControlAddr,
    /// Control-plane bearer token file, created with mode 0600 and a random token if
    /// missing [default: STATE_DIR/control-token].
    #[arg(long, value_name = "FILE")]
    control_token_file: Option<PathBuf>,
    /// Submission queue entries of each worker's io_uring (32–32768; the completion
    /// queue gets 4×). More lets one loop iteration submit more sends and receives at
    /// once.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(32..=32768))]
    ring_entries: u32,
    /// Provided receive buffers per worker (8–32768, rounded up to a power of two). A
    /// connection with data waiting holds buffers until its record is reassembled; when
    /// all are held, receives pause (ENOBUFS) and are re-armed.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u16).range(8..=32768))]
    recv_buffers: u16,
    /// Size of each provided receive buffer, KiB (4–1024; memory per worker: buffers ×
    /// size, at most 1 GiB). Larger buffers mean fewer completions per 1 MiB WRITE.
    #[arg(long, value_name = "KIB", default_value_t = 64, value_parser = clap::value_parser!(u32).range(4..=1024))]
    recv_buffer_kib: u32,
    /// SQPOLL: give each worker's ring a kernel thread that polls its submission queue
    /// and sleeps after this many idle milliseconds (1–10000). Off by default; the
    /// ring then uses SINGLE_ISSUER|DEFER_TASKRUN, which SQPOLL excludes. Each polling
    /// thread spins a CPU while busy: on a machine with few cores it competes with
    /// the workers.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    sqpoll: Option<u32>,
    /// Open connections allowed in total (0 = unlimited); more are closed at accept.
    #[arg(long, value_name = "N", default_value_t = ringnfs::server::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Open connections allowed per client IP address (0 = unlimited).
    #[arg(long, value_name = "N", default_value_t = ringnfs::server::DEFAULT_MAX_CONNECTIONS_PER_PEER)]
    max_connections_per_peer: usize,
    /// Close a connection bound to no session that completed no request for this many
    /// seconds (0 = never).
    #[arg(long, value_name = "SECS", default_value_t = ringnfs::server::DEFAULT_IDLE_TIMEOUT_SECS)]
    idle_timeout: u32,
    /// The same for a connection that had a session and is bound to none now, e.g. after
    /// its client's lease expired (0 = never).
    #[arg(long, value_name = "SECS", default_value_t = ringnfs::server::DEFAULT_SESSION_IDLE_TIMEOUT_SECS)]
    session_idle_timeout: u32,
    /// Largest RPC record, bytes (4096–1073741824); a larger one closes the connection.
    #[arg(long, value_name = "BYTES", default_value_t = ringnfs::server::DEFAULT_MAX_RECORD_SIZE,
          value_parser = TypedValueParser::map(clap::value_parser!(u64).range(ringnfs::server::MIN_RECORD_SIZE as u64..=(1 << 30)), |v| v as usize))]
    max_record_size: usize,
    /// Reply bytes queued per connection before the server stops reading it
    /// (1–1073741824).
    #[arg(long, value_name = "BYTES", default_value_t = ringnfs::server::DEFAULT_MAX_REPLY_QUEUE,
          value_parser = TypedValueParser::map(clap::value_parser!(u64).range(1..=(1 << 30)), |v| v as usize))]
    max_reply_queue: usize,
    /// Sessions one client may hold (0 = unlimited); CREATE_SESSION over it gets
    /// NFS4ERR_NOSPC.
    #[arg(long, value_name = "N", default_value_t = ringnfs::state::DEFAULT_MAX_SESSIONS_PER_CLIENT)]
    max_sessions_per_client: u32,
    /// `--export` was given (command line or config file).
    #[arg(skip)]
    export_given: bool,
    /// Where the live settings' start values came from (filled by `merge_config`).
    #[arg(skip)]
    setting_sources: SettingSources,
}

fn main() -> ExitCode {
    init_logging();
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Serve(args) => {
            let sub = matches.subcommand_matches("serve").expect("serve matched");
            merge_config(args, sub).and_then(serve)
        }
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

/// Fill options not given on the command line from the `--config` file, and note where
/// the live settings' start values came from.
fn merge_config(mut a: ServeArgs, m: &ArgMatches) -> anyhow::Result<ServeArgs> {
    let f = match &a.config {
        Some(path) => Some(ringnfs::config::load(path)?),
        None => None,
    };
    let source = |id: &str, in_file: bool| {
        if m.value_source(id) == Some(ValueSource::CommandLine) {
            Source::CommandLine
        } else if in_file {
            Source::ConfigFile(a.config.clone().unwrap_or_default())
        } else {
            Source::Default
        }
    };
    let file = f.as_ref();
    a.setting_sources = SettingSources {
        max_connections_per_session: source(
            "max_connections_per_session",
            file.is_some_and(|f| f.max_connections_per_session.is_some()),
        ),
        exclusive_binding: source(
            "exclusive_binding",
            file.is_some_and(|f| f.exclusive_binding.is_some()),
        ),
        lease_time: source("lease_time", file.is_some_and(|f| f.lease_time.is_some())),
        log_level: match env_log_level() {
            Some(_) => Source::Environment("RUST_LOG".into()),
            None => Source::Default,
        },
    };
    a.export_given = source("export", file.is_some_and(|f| f.export.is_some())).is_explicit();
    let (Some(path), Some(f)) = (a.config.clone(), f) else {
        return Ok(a);
    };
    let from_file = |id: &str| m.value_source(id) != Some(ValueSource::CommandLine);
    macro_rules! take {
        ($field:ident, $id:literal) => {
            if let Some(v) = f.$field.clone()
                && from_file($id)
            {
                a.$field = v;
            }
        };
    }
    take!(listen, "listen");
    take!(threads, "threads");
    take!(export, "export");
    take!(read_only, "read_only");
    take!(anon_uid, "anon_uid");
    take!(anon_gid, "anon_gid");
    take!(allow, "allow");
    take!(exclusive_binding, "exclusive_binding");
    take!(over_limit, "over_limit");
    take!(state_dir, "state_dir");
    take!(control, "control");
    if let Some(t) = f.control_token_file.clone()
        && from_file("control_token_file")
    {
        a.control_token_file = Some(t);
    }
    take!(max_connections, "max_connections");
    take!(max_connections_per_peer, "max_connections_per_peer");
    take!(idle_timeout, "idle_timeout");
    take!(session_idle_timeout, "session_idle_timeout");
    take!(max_sessions_per_client, "max_sessions_per_client");
    let min_record = ringnfs::server::MIN_RECORD_SIZE;
    for (v, id, cur) in [
        (f.max_record_size, "max_record_size", &mut a.max_record_size),
        (f.max_reply_queue, "max_reply_queue", &mut a.max_reply_queue),
    ] {
        if let Some(v) = v
            && from_file(id)
        {
            let lo = if id == "max_record_size" {
                min_record
            } else {
                1
            };
            if !(lo..=1 << 30).contains(&v) {
                anyhow::bail!(
                    "{}: {id} must be between {lo} and {}, got {v}",
                    path.display(),
                    1 << 30
                );
            }
            *cur = v;
        }
    }
    if let Some(p) = f.pin
        && from_file("no_pin")
    {
        a.no_pin = !p;
    }
    if let Some(rs) = f.root_squash
        && from_file("no_root_squash")
    {
        a.no_root_squash = !rs;
    }
    if let Some(b) = &f.backend
        && from_file("backend")
    {
        a.backend = BackendKind::from_str(b, true).map_err(|_| {
            anyhow::anyhow!(
                "{}: backend must be \"memory\" or \"local\", got {b:?}",
                path.display()
            )
        })?;
    }
    let ranged = |v: Option<u32>, id: &str, lo: u32, hi: u32, cur: u32| -> anyhow::Result<u32> {
        match v {
            Some(v) if from_file(id) => {
                if !(lo..=hi).contains(&v) {
                    anyhow::bail!(
                        "{}: {id} must be between {lo} and {hi}, got {v}",
                        path.display()
                    );
                }
                Ok(v)
            }
            _ => Ok(cur),
        }
    };
    a.max_connections_per_session = ranged(
        f.max_connections_per_session,
        "max_connections_per_session",
        0,
        1024,
        a.max_connections_per_session,
    )?;
    a.lease_time = ranged(f.lease_time, "lease_time", 1, 3600, a.lease_time)?;
    a.max_slots = ranged(f.max_slots, "max_slots", 1, 1024, a.max_slots)?;
    a.grace = ranged(f.grace, "grace", 0, 3600, a.grace)?;
    a.ring_entries = ranged(f.ring_entries, "ring_entries", 32, 32768, a.ring_entries)?;
    a.recv_buffers = ranged(
        f.recv_buffers.map(u32::from),
        "recv_buffers",
        8,
        32768,
        u32::from(a.recv_buffers),
    )? as u16;
    a.recv_buffer_kib = ranged(
        f.recv_buffer_kib,
        "recv_buffer_kib",
        4,
        1024,
        a.recv_buffer_kib,
    )?;
    if let Some(ms) = f.sqpoll_idle_ms
        && from_file("sqpoll")
    {
        if !(1..=10_000).contains(&ms) {
            anyhow::bail!(
                "{}: sqpoll_idle_ms must be between 1 and 10000, got {ms}",
                path.display()
            );
        }
        a.sqpoll = Some(ms);
    }
    Ok(a)
}

/// Run the server until SIGINT or SIGTERM. The control address, the default one too,
/// must be free (or `--control off`): `ctl` must never talk to another server.
fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if args.backend == BackendKind::Memory && args.export_given {
        tracing::warn!(
            export = %args.export.display(),
            "--export is ignored with --backend memory (files live in RAM); use --backend local to export a directory"
        );
    }
    let server = Server::start(ServerConfig {
        listen: args.listen,
        threads: args.threads,
        pin_cores: !args.no_pin,
        state_dir: Some(args.state_dir),
        lease_secs: args.lease_time,
        max_connections_per_session: args.max_connections_per_session,
        exclusive_binding: args.exclusive_binding,
        setting_sources: args.setting_sources,
        over_limit: args.over_limit,
        max_fore_slots: args.max_slots,
        backend: args.backend,
        export_path: args.export,
        export: ExportOptions {
            read_only: args.read_only,
            root_squash: !args.no_root_squash,
            anon_uid: args.anon_uid,
            anon_gid: args.anon_gid,
            allowed: args.allow,
        },
        grace_secs: args.grace,
        control: args.control.0,
        control_token_file: args.control_token_file,
        limits: ringnfs::server::Limits {
            max_connections: args.max_connections,
            max_connections_per_peer: args.max_connections_per_peer,
            idle_timeout_secs: args.idle_timeout,
            session_idle_timeout_secs: args.session_idle_timeout,
            max_record_size: args.max_record_size,
            max_reply_queue: args.max_reply_queue,
            max_sessions_per_client: args.max_sessions_per_client,
        },
        tuning: TransportTuning {
            ring_entries: args.ring_entries,
            recv_buf_count: args.recv_buffers,
            recv_buf_size: args.recv_buffer_kib * 1024,
            sqpoll_idle_ms: args.sqpoll,
        },
    })?;
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
