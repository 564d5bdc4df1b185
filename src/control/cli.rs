//! `ringnfs ctl ...`: the REST API from the command line. Tables for people by default,
//! `--json` for scripts (the API's JSON, pretty-printed). Exit codes: 0 done, 1 the
//! server refused (bad token, value out of range, unknown id: its message is printed),
//! 2 usage error, 3 the control plane could not be reached.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::Value;

use super::client::{ClientError, HttpClient, Response};
use super::{DEFAULT_CONTROL_ADDR, TOKEN_FILE};

#[derive(clap::Args, Debug)]
pub struct CtlArgs {
    /// Address of the control plane.
    #[arg(long, value_name = "ADDR:PORT", default_value = DEFAULT_CONTROL_ADDR)]
    pub addr: SocketAddr,
    /// Bearer token file (default: STATE_DIR/control-token when it exists).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The server's state directory (where the token file is by default).
    #[arg(long, default_value = "ringnfs-state")]
    pub state_dir: PathBuf,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum CtlCommand {
    /// List clients.
    Clients,
    /// One client with its sessions.
    Client {
        /// Client id (decimal or 0x hex).
        id: String,
    },
    /// List sessions.
    Sessions {
        /// Only this client's sessions.
        #[arg(long)]
        client: Option<String>,
    },
    /// One session with its connections.
    Session {
        /// Session id (32 hex digits).
        id: String,
    },
    /// List open connections.
    Connections,
    /// Drain a connection (flush and close it).
    Drain {
        /// Connection id.
        conn: u64,
    },
    /// Destroy a session (the client gets NFS4ERR_BADSESSION).
    DestroySession {
        /// Session id (32 hex digits).
        id: String,
    },
    /// Show or change live settings.
    Settings {
        #[command(subcommand)]
        action: Option<SettingsAction>,
    },
    /// Print the Prometheus metrics.
    Metrics,
}

#[derive(clap::Subcommand, Debug)]
pub enum SettingsAction {
    /// Show the settings (the default).
    Get,
    /// Change settings (applied at once and persisted in the server's state directory;
    /// at the next start a setting given on the command line or in --config wins).
    Set {
        /// Connections one session may bind (0 = unlimited, at most 1024).
        #[arg(long)]
        max_connections_per_session: Option<u64>,
        /// Binding a connection unbinds it from its other sessions.
        #[arg(long)]
        exclusive_binding: Option<bool>,
        /// Lease time in seconds (1-3600).
        #[arg(long)]
        lease_time: Option<u64>,
        /// Log filter, e.g. info, debug, "info,ringnfs::state=trace".
        #[arg(long)]
        log_level: Option<String>,
    },
    /// Drop persisted settings (all, or KEY) and go back to the start values (command
    /// line, config file or default).
    Reset {
        /// max-connections-per-session, exclusive-binding, lease-time or log-level
        /// (or with underscores); all of them when absent.
        key: Option<String>,
    },
}

enum Failure {
    Refused(u16, String),
    Unreachable(String),
    Other(String),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Connect { .. } => Failure::Unreachable(e.to_string()),
            _ => Failure::Other(e.to_string()),
        }
    }
}

fn token(args: &CtlArgs) -> Result<Option<String>, Failure> {
    let (path, required) = match &args.token_file {
        Some(p) => (p.clone(), true),
        None => (args.state_dir.join(TOKEN_FILE), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok(Some(t.trim().to_string())),
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::Other(format!(
            "reading the token file {}: {e}",
            path.display()
        ))),
    }
}

fn call(
    c: &HttpClient,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Response, Failure> {
    let body = body.map(|b| b.to_string().into_bytes());
    let r = c.request(method, path, body.as_deref())?;
    if r.status >= 400 {
        let mut msg = r.error_message();
        if r.status == 401 && c.token.is_none() {
            msg.push_str(" (no token file found: use --token-file or --state-dir)");
        }
        return Err(Failure::Refused(r.status, msg));
    }
    Ok(r)
}

/// Run one `ringnfs ctl` command.
pub fn run(args: &CtlArgs) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Refused(status, msg)) => {
            eprintln!("ringnfs ctl: refused (HTTP {status}): {msg}");
            ExitCode::from(1)
        }
        Err(Failure::Unreachable(msg)) => {
            eprintln!("ringnfs ctl: {msg}");
            ExitCode::from(3)
        }
        Err(Failure::Other(msg)) => {
            eprintln!("ringnfs ctl: {msg}");
            ExitCode::from(1)
        }
    }
}

fn run_inner(args: &CtlArgs) -> Result<(), Failure> {
    let c = HttpClient::new(args.addr, token(args)?);
    let json = |r: &Response| -> Result<Value, Failure> {
        r.json()
            .map_err(|e| Failure::Other(format!("the server's answer is not JSON: {e}")))
    };
    let out = |v: &Value, table: &dyn Fn(&Value) -> String| {
        if args.json {
            println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        } else {
            print!("{}", table(v));
        }
    };
    match &args.command {
        CtlCommand::Clients => {
            let v = json(&call(&c, "GET", "/api/v1/clients", None)?)?;
            out(&v, &clients_table);
        }
        CtlCommand::Client { id } => {
            let v = json(&call(
                &c,
                "GET",
                &format!("/api/v1/clients/{}", enc(id)),
                None,
            )?)?;
            out(&v, &|v| {
                let mut s = kv(
                    v,
                    &[
                        "id",
                        "owner",
                        "confirmed",
                        "state_protection",
                        "impl_name",
                        "lease_remaining_ms",
                    ],
                );
                s.push('\n');
                s.push_str(&sessions_table(&v["session_details"]));
                s
            });
        }
        CtlCommand::Sessions { client } => {
            let path = match client {
                Some(cl) => format!("/api/v1/sessions?client={}", enc(cl)),
                None => "/api/v1/sessions".to_string(),
            };
            let v = json(&call(&c, "GET", &path, None)?)?;
            out(&v, &sessions_table);
        }
        CtlCommand::Session { id } => {
            let v = json(&call(
                &c,
                "GET",
                &format!("/api/v1/sessions/{}", enc(id)),
                None,
            )?)?;
            out(&v, &session_detail);
        }
        CtlCommand::Connections => {
            let v = json(&call(&c, "GET", "/api/v1/connections", None)?)?;
            out(&v, &connections_table);
        }
        CtlCommand::Drain { conn } => {
            let v = json(&call(
                &c,
                "POST",
                &format!("/api/v1/connections/{conn}/drain"),
                None,
            )?)?;
            out(&v, &|_| format!("connection {conn} draining\n"));
        }
        CtlCommand::DestroySession { id } => {
            let v = json(&call(
                &c,
                "DELETE",
                &format!("/api/v1/sessions/{}", enc(id)),
                None,
            )?)?;
            out(&v, &|v| format!("session {} destroyed\n", s(&v["target"])));
        }
        CtlCommand::Settings { action } => {
            let r = match action {
                None | Some(SettingsAction::Get) => call(&c, "GET", "/api/v1/settings", None)?,
                Some(SettingsAction::Set {
                    max_connections_per_session,
                    exclusive_binding,
                    lease_time,
                    log_level,
                }) => {
                    let mut body = serde_json::Map::new();
                    if let Some(n) = max_connections_per_session {
                        body.insert("max_connections_per_session".into(), (*n).into());
                    }
                    if let Some(b) = exclusive_binding {
                        body.insert("exclusive_binding".into(), (*b).into());
                    }
                    if let Some(l) = lease_time {
                        body.insert("lease_time".into(), (*l).into());
                    }
                    if let Some(l) = log_level {
                        body.insert("log_level".into(), l.clone().into());
                    }
                    if body.is_empty() {
                        return Err(Failure::Other(
                            "settings set: give at least one of --max-connections-per-session, --exclusive-binding, --lease-time, --log-level".into(),
                        ));
                    }
                    call(&c, "PATCH", "/api/v1/settings", Some(Value::Object(body)))?
                }
                Some(SettingsAction::Reset { key: None }) => {
                    call(&c, "DELETE", "/api/v1/settings/persisted", None)?
                }
                Some(SettingsAction::Reset { key: Some(k) }) => call(
                    &c,
                    "DELETE",
                    &format!("/api/v1/settings/persisted/{}", enc(&k.replace('-', "_"))),
                    None,
                )?,
            };
            let v = json(&r)?;
            out(&v, &|v| {
                kv(
                    v,
                    &[
                        "max_connections_per_session",
                        "exclusive_binding",
                        "lease_time",
                        "log_level",
                    ],
                )
            });
        }
        CtlCommand::Metrics => {
            let r = call(&c, "GET", "/metrics", None)?;
            print!("{}", r.text());
        }
    }
    Ok(())
}

/// Percent-encode a path segment or query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn kv(v: &Value, keys: &[&str]) -> String {
    let w = keys.iter().map(|k| k.len()).max().unwrap_or(0);
    keys.iter()
        .map(|k| format!("{k:<w$}  {}\n", s(&v[*k])))
        .collect()
}

/// A left-aligned table with a header row.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut w: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |cells: Vec<String>| {
        let mut l = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
            .collect::<Vec<_>>()
            .join("  ");
        l.truncate(l.trim_end().len());
        l.push('\n');
        l
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

fn rows(v: &Value, f: impl Fn(&Value) -> Vec<String>) -> Vec<Vec<String>> {
    v.as_array()
        .map(|a| a.iter().map(f).collect())
        .unwrap_or_default()
}

fn clients_table(v: &Value) -> String {
    table(
        &[
            "ID",
            "OWNER",
            "CONFIRMED",
            "SESSIONS",
            "LEASE_LEFT_MS",
            "IMPL",
        ],
        rows(v, |c| {
            vec![
                s(&c["id"]),
                s(&c["owner"]),
                s(&c["confirmed"]),
                c["sessions"].as_array().map_or(0, Vec::len).to_string(),
                s(&c["lease_remaining_ms"]),
                s(&c["impl_name"]),
            ]
        }),
    )
}

fn sessions_table(v: &Value) -> String {
    table(
        &["SESSION", "CLIENT", "FORE", "BACK", "BOTH", "TOTAL"],
        rows(v, |x| {
            let sm = &x["summary"];
            vec![
                s(&x["id"]),
                s(&x["clientid"]),
                s(&sm["fore"]),
                s(&sm["back"]),
                s(&sm["both"]),
                s(&sm["total"]),
            ]
        }),
    )
}

fn session_detail(v: &Value) -> String {
    let sm = &v["summary"];
    let mut out = kv(
        v,
        &["id", "clientid", "created_at_ms", "back_channel_requested"],
    );
    out.push_str(&format!(
        "summary                 fore {} back {} both {} total {}\n\n",
        s(&sm["fore"]),
        s(&sm["back"]),
        s(&sm["both"]),
        s(&sm["total"])
    ));
    out.push_str(&table(
        &[
            "CONN",
            "PEER",
            "CORE",
            "DIRECTION",
            "BOUND_AT_MS",
            "DRAINING",
            "REQUESTS",
        ],
        rows(&v["connections"], |c| {
            vec![
                s(&c["id"]),
                s(&c["peer"]),
                s(&c["core"]),
                s(&c["direction"]),
                s(&c["bound_at_ms"]),
                s(&c["draining"]),
                s(&c["requests"]),
            ]
        }),
    ));
    out
}

fn connections_table(v: &Value) -> String {
    table(
        &[
            "CONN", "PEER", "LOCAL", "CORE", "DRAINING", "REQUESTS", "SESSIONS",
        ],
        rows(v, |c| {
            vec![
                s(&c["id"]),
                s(&c["peer"]),
                s(&c["local"]),
                s(&c["core"]),
                s(&c["draining"]),
                s(&c["requests"]),
                c["sessions"]
                    .as_array()
                    .map(|a| a.iter().map(s).collect::<Vec<_>>().join(","))
                    .unwrap_or_default(),
            ]
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_encode() {
        let t = table(&["A", "BB"], vec![vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "A    BB\nxxx  y\n");
        assert_eq!(enc("0x1f a"), "0x1f%20a");
    }
}
