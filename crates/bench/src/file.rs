//! `ringnfs bench file put|get`: write or read one file on any NFSv4.1 server through
//! the in-repo client, as a second client beside another one (the kernel harness's
//! host writes a file a Linux guest holds a delegation of). An access that conflicts
//! with another client's delegation gets NFS4ERR_DELAY until the holder returns it:
//! the command retries for up to `--wait` seconds and prints how long it waited, which
//! is how long the recall took.

use std::io::Write;
use std::time::{Duration, Instant};

use ringnfs_client::ops::share;
use ringnfs_client::{Client, ClientError, ClientOptions, Files};
use ringnfs_proto::nfs4::consts::status;

use super::BenchOptions;
use super::error::{EXIT_CONNECT, EXIT_ERRORS, EXIT_SETUP};

#[derive(Debug, Clone, clap::Args)]
pub struct FileArgs {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:2049")]
    pub server: String,
    /// Seconds to keep retrying while the server answers NFS4ERR_DELAY.
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
    #[command(subcommand)]
    pub action: FileAction,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum FileAction {
    /// Replace the contents of PATH (from the root of the server's namespace; created
    /// if missing) with DATA.
    Put { path: String, data: String },
    /// Print the contents of PATH on stdout.
    Get { path: String },
    /// Print the size and change attribute of PATH (GETATTR only: no OPEN).
    Stat { path: String },
}

/// Run `file put|get`; the exit status.
pub fn run_file_cli(a: &FileArgs) -> u8 {
    let server = match ringnfs_proto::addr::resolve_addr(&a.server) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ringnfs bench file: {e}");
            return EXIT_SETUP;
        }
    };
    // No back channel: a one-shot tool takes no delegations (it could not answer a
    // recall once it has exited).
    let opts = ClientOptions {
        cred: BenchOptions::root_cred(),
        back_channel: false,
        ..ClientOptions::default()
    };
    let (files, session) = match Client::connect(&[server], opts) {
        Ok((_, session)) => (Files::new(session.clone()), session),
        Err(e) => {
            eprintln!("ringnfs bench file: connecting to {server}: {e}");
            return EXIT_CONNECT;
        }
    };
    let wait = Duration::from_secs(a.wait);
    let outcome = match &a.action {
        FileAction::Put { path, data } => retrying(wait, || put(&files, path, data.as_bytes()))
            .map(|(n, waited, delays)| {
                println!(
                    "wrote {n} bytes to {path}; waited {} ms ({delays} NFS4ERR_DELAY)",
                    waited.as_millis()
                )
            }),
        FileAction::Get { path } => {
            retrying(wait, || get(&files, path)).map(|(data, waited, delays)| {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&data);
                let _ = out.flush();
                eprintln!(
                    "read {} bytes of {path}; waited {} ms ({delays} NFS4ERR_DELAY)",
                    data.len(),
                    waited.as_millis()
                );
            })
        }
        FileAction::Stat { path } => {
            retrying(wait, || stat(&files, path)).map(|((size, change), waited, delays)| {
                println!(
                    "{path}: size {size} change {change}; waited {} ms ({delays} NFS4ERR_DELAY)",
                    waited.as_millis()
                )
            })
        }
    };
    // Leave no client behind (a harness checks the server is idle afterwards).
    if let Err(e) = session.destroy().and_then(|()| session.destroy_clientid()) {
        tracing::warn!(error = %e, "destroying the session and client");
    }
    match outcome {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ringnfs bench file: {e}");
            EXIT_ERRORS
        }
    }
}

/// `f` again while it fails with NFS4ERR_DELAY, for up to `wait`; its value, the time
/// waited and the number of DELAYs.
fn retrying<T>(
    wait: Duration,
    mut f: impl FnMut() -> Result<T, ClientError>,
) -> Result<(T, Duration, u32), ClientError> {
    let start = Instant::now();
    let mut delays = 0;
    loop {
        match f() {
            Err(ClientError::Nfs { status: st, .. })
                if st == status::NFS4ERR_DELAY && start.elapsed() < wait =>
            {
                delays += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
            Ok(v) => return Ok((v, start.elapsed(), delays)),
        }
    }
}

/// The directory and the name of `path`.
fn split(files: &Files, path: &str) -> Result<(Vec<u8>, Vec<u8>), ClientError> {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    if name.is_empty() {
        return Err(ClientError::BadReply(format!("{path:?} names no file")));
    }
    Ok((files.lookup_path(dir)?, name.as_bytes().to_vec()))
}

fn put(files: &Files, path: &str, data: &[u8]) -> Result<usize, ClientError> {
    let (dir, name) = split(files, path)?;
    files.write_file(&dir, &name, data)?;
    Ok(data.len())
}

fn stat(files: &Files, path: &str) -> Result<(u64, u64), ClientError> {
    let a = files.getattr(&files.lookup_path(path)?)?;
    Ok((a.size.unwrap_or(0), a.change.unwrap_or(0)))
}

fn get(files: &Files, path: &str) -> Result<Vec<u8>, ClientError> {
    let (dir, name) = split(files, path)?;
    let f = files.open(&dir, &name, share::ACCESS_READ, share::DENY_NONE)?;
    let data = files.read_all(&f)?;
    files.close(f)?;
    Ok(data)
}
