//! `ringnfs ctl ...`: the REST API from the command line. Tables for people by default,
//! `--json` for scripts (the API's JSON, pretty-printed; `metrics --json` turns the
//! Prometheus text into JSON). The options go before or after the subcommand. Ids print
//! as everywhere else: client ids `0x` and 16 hex digits, session ids 32 hex digits,
//! connection ids in decimal (client and connection ids are taken in either form); times
//! in RFC 3339. Exit codes: 0 done, 1 the server refused (bad token, value out of range,
//! unknown id: its message is printed), 2 usage error, 3 the control plane could not be
//! reached.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::Value;

use super::client::{ClientError, HttpClient, Response};
use super::{DEFAULT_CONTROL_ADDR, DEFAULT_STATE_DIR, TOKEN_FILE};
use ringnfs_state::settings::{LEASE_TIME_RANGE, MAX_CONNECTIONS_PER_SESSION_RANGE, SETTING_KEYS};

#[derive(clap::Args, Debug)]
pub struct CtlArgs {
    /// Address of the control plane (or HOST:PORT).
    #[arg(long, global = true, value_name = "ADDR:PORT", default_value = DEFAULT_CONTROL_ADDR,
          value_parser = ringnfs_proto::addr::resolve_addr)]
    pub addr: SocketAddr,
    #[arg(long, global = true, value_name = "FILE",
          help = format!("Bearer token file [default: STATE_DIR/{TOKEN_FILE} when it exists]"))]
    pub token_file: Option<PathBuf>,
    /// The server's state directory (where the token file is by default).
    #[arg(long, global = true, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Print JSON instead of tables (the API's JSON; for `metrics`, the samples).
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
        /// Client id: 0x and hex digits (as printed), or decimal.
        #[arg(value_name = "ID")]
        id: String,
    },
    /// List sessions.
    Sessions {
        /// Only this client's sessions (0x hex or decimal).
        #[arg(long, value_name = "ID")]
        client: Option<String>,
    },
    /// One session with its connections.
    Session {
        /// Session id (32 hex digits).
        #[arg(value_name = "ID")]
        id: String,
    },
    /// List open connections.
    Connections,
    /// Drain a connection (flush and close it).
    Drain {
        /// Connection id: decimal (as printed) or 0x hex.
        #[arg(value_name = "CONN")]
        conn: String,
    },
    /// Destroy a session (the client gets NFS4ERR_BADSESSION).
    DestroySession {
        /// Session id (32 hex digits).
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Show or change live settings.
    Settings {
        #[command(subcommand)]
        action: Option<SettingsAction>,
    },
    /// Print the Prometheus metrics (with --json: an array of metric families, each
    /// with its samples).
    Metrics,
    /// List the exports, or add, change or remove one: live (other exports' clients
    /// notice nothing) and persisted in the server's state directory.
    Exports {
        #[command(subcommand)]
        action: Option<ExportsAction>,
    },
    /// Show the RPC-with-TLS certificate, key and client CA files, or read them again
    /// (`reload`: new handshakes use them; a file that cannot be used changes nothing).
    Tls {
        #[command(subcommand)]
        action: Option<TlsAction>,
    },
    /// This node's view of its cluster: membership, the grace period, live nodes,
    /// recovery records.
    Cluster,
}

#[derive(clap::Subcommand, Debug)]
pub enum TlsAction {
    /// The files in use (the default).
    Show,
    /// Read the files again.
    Reload,
}

#[derive(clap::Subcommand, Debug)]
pub enum ExportsAction {
    /// List the exports with their counters (the default).
    List,
    /// Add an export.
    Add {
        #[command(flatten)]
        export: ExportFlags,
    },
    /// Replace export ID's description (options alone: its clients keep their state; a
    /// new --path, --backend, --pseudo or --fsid: a new export there, the old one's
    /// handles go stale).
    Update {
        /// The export's id (ID in `ringnfs ctl exports`).
        #[arg(value_name = "ID")]
        id: u32,
        #[command(flatten)]
        export: ExportFlags,
    },
    /// Stop serving export ID (its handles answer NFS4ERR_STALE from then on).
    Remove {
        #[arg(value_name = "ID")]
        id: u32,
    },
}

/// An export's description (`[[export]]` in the config file); left out: the server's
/// default.
#[derive(clap::Args, Debug)]
pub struct ExportFlags {
    /// Where clients find it in the pseudo file system, e.g. /home.
    #[arg(long, value_name = "PATH")]
    pseudo: String,
    /// The exported directory (local backend).
    #[arg(long, value_name = "DIR")]
    path: Option<String>,
    #[arg(long, value_name = "local|memory")]
    backend: Option<String>,
    /// Its number: in its file handles and as its fsid (default: from the pseudo path).
    #[arg(long, value_name = "N")]
    fsid: Option<u32>,
    #[arg(long, value_name = "true|false")]
    read_only: Option<bool>,
    #[arg(long, value_name = "true|false")]
    root_squash: Option<bool>,
    #[arg(long, value_name = "true|false")]
    all_squash: Option<bool>,
    #[arg(long, value_name = "N")]
    anon_uid: Option<u32>,
    #[arg(long, value_name = "N")]
    anon_gid: Option<u32>,
    /// Security flavors admitted, in order: sys, none.
    #[arg(long, value_name = "FLAVOR,...", value_delimiter = ',')]
    sec: Option<Vec<String>>,
    /// Transport security admitted: none (plain TCP), tls, mtls (a verified client
    /// certificate).
    #[arg(long, value_name = "MODE,...", value_delimiter = ',')]
    xprtsec: Option<Vec<String>>,
    #[arg(long, value_name = "buffered|dontcache|direct")]
    io_mode: Option<String>,
    /// A client rule in exports(5) form, e.g. '10.0.0.0/8(rw,no_root_squash)' or
    /// '*(ro)' (repeatable; first match wins; a client none matches may not use it).
    #[arg(long = "client", value_name = "HOST(OPTIONS)")]
    clients: Vec<String>,
}

impl ExportFlags {
    /// The description as the API takes it.
    fn spec(&self) -> Result<crate::exports::ExportSpec, Failure> {
        let mut clients = Vec::new();
        for c in &self.clients {
            clients.push(
                crate::exports::exports5::client(c)
                    .map_err(|e| Failure::Other(format!("--client {c:?}: {e}")))?,
            );
        }
        Ok(crate::exports::ExportSpec {
            pseudo: self.pseudo.clone(),
            path: self.path.clone(),
            backend: self.backend.clone(),
            fsid: self.fsid,
            read_only: self.read_only,
            root_squash: self.root_squash,
            all_squash: self.all_squash,
            anon_uid: self.anon_uid,
            anon_gid: self.anon_gid,
            sec: self.sec.clone(),
            xprtsec: self.xprtsec.clone(),
            io_mode: self.io_mode.clone(),
            clients,
        })
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum SettingsAction {
    /// Show the settings (the default).
    Get,
    /// Change settings (applied at once and persisted in the server's state directory;
    /// at the next start a setting given on the command line or in --config wins).
    Set {
        #[arg(long, value_name = "N", help = format!(
            "Connections one session may bind ({MAX_CONNECTIONS_PER_SESSION_RANGE})"))]
        max_connections_per_session: Option<u64>,
        /// Binding a connection unbinds it from its other sessions.
        #[arg(long, value_name = "true|false")]
        exclusive_binding: Option<bool>,
        #[arg(long, value_name = "SECS", help = format!("Lease time in seconds ({LEASE_TIME_RANGE})"))]
        lease_time: Option<u64>,
        /// Log filter, e.g. info, debug, "info,ringnfs_state=trace".
        #[arg(long, value_name = "FILTER")]
        log_level: Option<String>,
        /// OPEN grants delegations (off: no new ones; those held stay until returned).
        #[arg(long, value_name = "true|false")]
        delegations: Option<bool>,
    },
    /// Drop persisted settings (all, or KEY) and go back to the start values (command
    /// line, config file or default).
    Reset {
        #[arg(value_name = "KEY", help = reset_key_help())]
        key: Option<String>,
    },
}

/// `settings reset KEY`: the keys, from the state's list.
fn reset_key_help() -> String {
    let keys: Vec<String> = SETTING_KEYS.iter().map(|k| k.replace('_', "-")).collect();
    let (last, rest) = keys.split_last().expect("settings");
    format!(
        "{} or {last} (or with underscores); all of them when absent",
        rest.join(", ")
    )
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

/// The bearer token and the file it came from (or would have).
struct Token {
    value: Option<String>,
    path: PathBuf,
}

fn token(args: &CtlArgs) -> Result<Token, Failure> {
    let (path, required) = match &args.token_file {
        Some(p) => (p.clone(), true),
        None => {
            let dir = &args.state_dir;
            if dir.exists() && !dir.is_dir() {
                return Err(Failure::Other(format!(
                    "--state-dir {} is a file, not a directory (give the server's state directory, or --token-file)",
                    dir.display()
                )));
            }
            (dir.join(TOKEN_FILE), false)
        }
    };
    if path.is_dir() {
        return Err(Failure::Other(format!(
            "the token file {} is a directory",
            path.display()
        )));
    }
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok(Token {
            value: Some(t.trim().to_string()),
            path,
        }),
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            Ok(Token { value: None, path })
        }
        Err(e) => Err(Failure::Other(format!(
            "reading the token file {}: {e}",
            path.display()
        ))),
    }
}

fn call(
    c: &HttpClient,
    tok: &Token,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Response, Failure> {
    let body = body.map(|b| b.to_string().into_bytes());
    let r = c.request(method, path, body.as_deref())?;
    if r.status >= 400 {
        let mut msg = r.error_message();
        if r.status == 401 {
            msg.push_str(&match tok.value {
                Some(_) => format!(
                    " (the token from {} was refused: is it this server's token file?)",
                    tok.path.display()
                ),
                None => format!(
                    " (no token file at {}: use --token-file or --state-dir)",
                    tok.path.display()
                ),
            });
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
    let tok = token(args)?;
    let c = HttpClient::new(args.addr, tok.value.clone());
    let call = |method: &str, path: &str, body: Option<Value>| call(&c, &tok, method, path, body);
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
            let v = json(&call("GET", "/api/v1/clients", None)?)?;
            out(&v, &clients_table);
        }
        CtlCommand::Client { id } => {
            let v = json(&call("GET", &format!("/api/v1/clients/{}", enc(id)), None)?)?;
            out(&v, &|v| {
                let mut s = kv(
                    v,
                    &[
                        ("id", "id_str"),
                        ("owner", "owner"),
                        ("confirmed", "confirmed"),
                        ("state_protection", "state_protection"),
                        ("impl_name", "impl_name"),
                        ("created_at", "created_at"),
                        ("lease_remaining_ms", "lease_remaining_ms"),
                    ],
                );
                s.push('\n');
                s.push_str(&sessions_table(&v["session_details"]));
                if v["delegation_details"]
                    .as_array()
                    .is_some_and(|d| !d.is_empty())
                {
                    s.push('\n');
                    s.push_str(&delegations_table(&v["delegation_details"]));
                }
                s
            });
        }
        CtlCommand::Sessions { client } => {
            let path = match client {
                Some(cl) => format!("/api/v1/sessions?client={}", enc(cl)),
                None => "/api/v1/sessions".to_string(),
            };
            let v = json(&call("GET", &path, None)?)?;
            out(&v, &sessions_table);
        }
        CtlCommand::Session { id } => {
            let v = json(&call(
                "GET",
                &format!("/api/v1/sessions/{}", enc(id)),
                None,
            )?)?;
            out(&v, &session_detail);
        }
        CtlCommand::Connections => {
            let v = json(&call("GET", "/api/v1/connections", None)?)?;
            out(&v, &connections_table);
        }
        CtlCommand::Drain { conn } => {
            let v = json(&call(
                "POST",
                &format!("/api/v1/connections/{}/drain", enc(conn)),
                None,
            )?)?;
            out(&v, &|v| {
                format!("connection {} draining\n", s(&v["target"]))
            });
        }
        CtlCommand::DestroySession { id } => {
            let v = json(&call(
                "DELETE",
                &format!("/api/v1/sessions/{}", enc(id)),
                None,
            )?)?;
            out(&v, &|v| format!("session {} destroyed\n", s(&v["target"])));
        }
        CtlCommand::Settings { action } => {
            let r = match action {
                None | Some(SettingsAction::Get) => call("GET", "/api/v1/settings", None)?,
                Some(SettingsAction::Set {
                    max_connections_per_session,
                    exclusive_binding,
                    lease_time,
                    log_level,
                    delegations,
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
                    if let Some(b) = delegations {
                        body.insert("delegations".into(), (*b).into());
                    }
                    if body.is_empty() {
                        return Err(Failure::Other(
                            "settings set: give at least one of --max-connections-per-session, --exclusive-binding, --lease-time, --log-level, --delegations".into(),
                        ));
                    }
                    call("PATCH", "/api/v1/settings", Some(Value::Object(body)))?
                }
                Some(SettingsAction::Reset { key: None }) => {
                    call("DELETE", "/api/v1/settings/persisted", None)?
                }
                Some(SettingsAction::Reset { key: Some(k) }) => call(
                    "DELETE",
                    &format!("/api/v1/settings/persisted/{}", enc(&k.replace('-', "_"))),
                    None,
                )?,
            };
            let v = json(&r)?;
            out(&v, &|v| {
                let keys = ringnfs_state::settings::SETTING_KEYS.map(|k| (k, k));
                kv(v, &keys)
            });
        }
        CtlCommand::Cluster => {
            let v = json(&call("GET", "/api/v1/cluster", None)?)?;
            out(&v, &|v| {
                kv(
                    v,
                    &[
                        ("cluster", "cluster"),
                        ("node", "node_id"),
                        ("granting", "granting"),
                        ("fenced", "fenced"),
                        ("grace epoch", "grace_epoch"),
                        ("in grace", "in_grace"),
                        ("reclaiming nodes", "reclaiming_nodes"),
                        ("grace deadline (ms)", "grace_deadline_ms"),
                        ("pending reclaims", "pending_reclaims"),
                        ("nodes", "nodes"),
                        ("records", "records"),
                    ],
                )
            });
        }
        CtlCommand::Tls { action } => {
            let v = match action {
                None | Some(TlsAction::Show) => json(&call("GET", "/api/v1/tls", None)?)?,
                Some(TlsAction::Reload) => json(&call("POST", "/api/v1/tls/reload", None)?)?,
            };
            let reloaded = matches!(action, Some(TlsAction::Reload));
            out(&v, &|v| {
                let mut t = kv(
                    v,
                    &[("cert", "cert"), ("key", "key"), ("client_ca", "client_ca")],
                );
                if reloaded {
                    t.push_str("reloaded: new handshakes use these files\n");
                }
                t
            });
        }
        CtlCommand::Exports { action } => match action {
            None | Some(ExportsAction::List) => {
                let v = json(&call("GET", "/api/v1/exports", None)?)?;
                out(&v, &exports_table);
            }
            Some(ExportsAction::Add { export }) => {
                let body = serde_json::to_value(export.spec()?).unwrap_or_default();
                let v = json(&call("POST", "/api/v1/exports", Some(body))?)?;
                out(&v, &|v| {
                    format!(
                        "export {} added, id {}\n",
                        s(&v["export"]["pseudo"]),
                        s(&v["id"])
                    )
                });
            }
            Some(ExportsAction::Update { id, export }) => {
                let body = serde_json::to_value(export.spec()?).unwrap_or_default();
                let v = json(&call("PUT", &format!("/api/v1/exports/{id}"), Some(body))?)?;
                out(&v, &|v| {
                    format!(
                        "export {} changed, id {}\n",
                        s(&v["export"]["pseudo"]),
                        s(&v["id"])
                    )
                });
            }
            Some(ExportsAction::Remove { id }) => {
                call("DELETE", &format!("/api/v1/exports/{id}"), None)?;
                if args.json {
                    println!("{{}}");
                } else {
                    println!("export {id} removed");
                }
            }
        },
        CtlCommand::Metrics => {
            let text = call("GET", "/metrics", None)?.text();
            if args.json {
                let v = metrics_json(&text).map_err(|e| {
                    Failure::Other(format!("the server's metrics could not be read: {e}"))
                })?;
                out(&v, &|_| String::new());
            } else {
                print!("{text}");
            }
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

/// `label  value` lines: (label, JSON key) pairs.
fn kv(v: &Value, keys: &[(&str, &str)]) -> String {
    let w = keys.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    keys.iter()
        .map(|(label, key)| format!("{label:<w$}  {}\n", s(&v[*key])))
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
            "DELEGATIONS",
            "OPS",
            "BYTES_IN",
            "BYTES_OUT",
            "IMPL",
        ],
        rows(v, |c| {
            vec![
                s(&c["id_str"]),
                s(&c["owner"]),
                s(&c["confirmed"]),
                c["sessions"].as_array().map_or(0, Vec::len).to_string(),
                s(&c["lease_remaining_ms"]),
                s(&c["delegations"]),
                s(&c["ops"]),
                s(&c["bytes_in"]),
                s(&c["bytes_out"]),
                s(&c["impl_name"]),
            ]
        }),
    )
}

fn exports_table(v: &Value) -> String {
    table(
        &[
            "ID",
            "PSEUDO",
            "PATH",
            "BACKEND",
            "READ_ONLY",
            "CLIENTS",
            "OPS",
            "READ",
            "WRITTEN",
        ],
        rows(v, |e| {
            let x = &e["export"];
            let clients: Vec<String> = x["clients"]
                .as_array()
                .map(|c| c.iter().map(|c| s(&c["host"])).collect())
                .unwrap_or_default();
            vec![
                s(&e["id"]),
                s(&x["pseudo"]),
                s(&x["path"]),
                s(&x["backend"]),
                s(&x["read_only"]),
                if clients.is_empty() {
                    "-".into()
                } else {
                    clients.join(",")
                },
                s(&e["ops"]),
                s(&e["bytes_read"]),
                s(&e["bytes_written"]),
            ]
        }),
    )
}

fn delegations_table(v: &Value) -> String {
    table(
        &["DELEGATION", "TYPE", "STATE", "FILE"],
        rows(v, |d| {
            let state = if d["revoked"].as_bool() == Some(true) {
                "revoked".to_string()
            } else if let Some(ms) = d["recalled_ms_ago"].as_u64() {
                format!("recalled {ms} ms ago")
            } else {
                "held".to_string()
            };
            vec![s(&d["stateid"]), s(&d["kind"]), state, s(&d["file"])]
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
                s(&x["clientid_str"]),
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
        &[
            ("id", "id"),
            ("clientid", "clientid_str"),
            ("created_at", "created_at"),
            ("back_channel_requested", "back_channel_requested"),
        ],
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
            "BOUND_AT",
            "DRAINING",
            "REQUESTS",
            "XPRTSEC",
        ],
        rows(&v["connections"], |c| {
            vec![
                s(&c["id_str"]),
                s(&c["peer"]),
                s(&c["core"]),
                s(&c["direction"]),
                s(&c["bound_at"]),
                s(&c["draining"]),
                s(&c["requests"]),
                s(&c["xprtsec"]),
            ]
        }),
    ));
    out
}

fn connections_table(v: &Value) -> String {
    table(
        &[
            "CONN",
            "PEER",
            "LOCAL",
            "CORE",
            "ACCEPTED_AT",
            "DRAINING",
            "REQUESTS",
            "XPRTSEC",
            "SESSIONS",
        ],
        rows(v, |c| {
            vec![
                s(&c["id_str"]),
                s(&c["peer"]),
                s(&c["local"]),
                s(&c["core"]),
                s(&c["accepted_at"]),
                s(&c["draining"]),
                s(&c["requests"]),
                s(&c["xprtsec"]),
                c["sessions"]
                    .as_array()
                    .map(|a| a.iter().map(s).collect::<Vec<_>>().join(","))
                    .unwrap_or_default(),
            ]
        }),
    )
}

/// The Prometheus/OpenMetrics text of `/metrics` as JSON: an array of families in the
/// scrape's order, `{"name", "type", "help", "samples": [{"name", "labels": {..},
/// "value"}]}`, values as JSON numbers.
pub fn metrics_json(text: &str) -> Result<Value, String> {
    let mut families: Vec<serde_json::Map<String, Value>> = Vec::new();
    let family = |families: &mut Vec<serde_json::Map<String, Value>>, name: &str| {
        if families.last().is_none_or(|f| f["name"] != name) {
            let mut f = serde_json::Map::new();
            f.insert("name".into(), name.into());
            f.insert("type".into(), Value::Null);
            f.insert("help".into(), Value::Null);
            f.insert("samples".into(), Value::Array(Vec::new()));
            families.push(f);
        }
        families.len() - 1
    };
    for (n, line) in text.lines().enumerate() {
        let bad = |what: &str| format!("line {}: {what}: {line:?}", n + 1);
        if line.is_empty() || line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let (kind, rest) = rest.split_once(' ').ok_or_else(|| bad("comment"))?;
            let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
            let i = family(&mut families, name);
            match kind {
                "HELP" | "TYPE" | "UNIT" => {
                    families[i].insert(kind.to_ascii_lowercase(), value.into());
                }
                _ => return Err(bad("unknown comment")),
            }
            continue;
        }
        let (name_labels, value) = line.rsplit_once(' ').ok_or_else(|| bad("no value"))?;
        let (name, labels) = match name_labels.split_once('{') {
            Some((name, rest)) => (
                name,
                parse_labels(rest.strip_suffix('}').ok_or_else(|| bad("labels"))?)
                    .map_err(|e| bad(&e))?,
            ),
            None => (name_labels, serde_json::Map::new()),
        };
        let value: Value = if let Ok(u) = value.parse::<u64>() {
            u.into()
        } else if let Ok(i) = value.parse::<i64>() {
            i.into()
        } else {
            let f: f64 = value.parse().map_err(|_| bad("value"))?;
            serde_json::Number::from_f64(f).map_or(Value::String(value.into()), Value::Number)
        };
        // A sample belongs to the family its name starts with (e.g. `x_total` to `x`).
        let i = match families.last() {
            Some(f) if f["name"].as_str().is_some_and(|fam| name.starts_with(fam)) => {
                families.len() - 1
            }
            _ => family(&mut families, name),
        };
        let mut sample = serde_json::Map::new();
        sample.insert("name".into(), name.into());
        sample.insert("labels".into(), Value::Object(labels));
        sample.insert("value".into(), value);
        if let Some(Value::Array(a)) = families[i].get_mut("samples") {
            a.push(Value::Object(sample));
        }
    }
    Ok(Value::Array(
        families.into_iter().map(Value::Object).collect(),
    ))
}

/// `a="x",b="y\"z"` (OpenMetrics escapes: `\\`, `\"`, `\n`).
fn parse_labels(s: &str) -> Result<serde_json::Map<String, Value>, String> {
    let mut out = serde_json::Map::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").ok_or("label without a value")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated label value".into()),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        out.insert(key.trim().to_string(), value.into());
        rest = after[end + 1..].trim_start_matches(',');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_text_to_json() {
        let text = "# HELP ringnfs_binds Binds.\n# TYPE ringnfs_binds counter\n\
                    ringnfs_binds_total{direction=\"fore\",x=\"a\\\"b\"} 3\n\
                    # HELP ringnfs_sessions Sessions.\n# TYPE ringnfs_sessions gauge\n\
                    ringnfs_sessions 1\n# EOF\n";
        let v = metrics_json(text).unwrap();
        assert_eq!(
            v,
            serde_json::json!([
                {"name": "ringnfs_binds", "type": "counter", "help": "Binds.",
                 "samples": [{"name": "ringnfs_binds_total",
                              "labels": {"direction": "fore", "x": "a\"b"}, "value": 3}]},
                {"name": "ringnfs_sessions", "type": "gauge", "help": "Sessions.",
                 "samples": [{"name": "ringnfs_sessions", "labels": {}, "value": 1}]}
            ])
        );
        assert!(metrics_json("x{a=\"1} 2\n").is_err());
        assert!(metrics_json("novalue\n").is_err());
    }

    /// The help of `ctl` takes ranges, keys and defaults from the constants the server
    /// uses (a change there shows here, never a second hand-written copy).
    #[test]
    fn help_comes_from_the_server_constants() {
        use clap::CommandFactory;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            ctl: CtlArgs,
        }
        let cmd = Cli::command();
        let arg_help = |cmd: &clap::Command, id: &str| {
            let a = cmd.get_arguments().find(|a| a.get_id() == id).unwrap();
            a.get_help().unwrap().to_string()
        };
        let state_dir = cmd.get_arguments().find(|a| a.get_id() == "state_dir");
        assert_eq!(
            state_dir.unwrap().get_default_values(),
            [std::ffi::OsStr::new(DEFAULT_STATE_DIR)]
        );
        assert!(arg_help(&cmd, "token_file").contains(&format!("STATE_DIR/{TOKEN_FILE}")));
        let settings = cmd.find_subcommand("settings").unwrap();
        let set = settings.find_subcommand("set").unwrap();
        for (id, range) in [
            (
                "max_connections_per_session",
                MAX_CONNECTIONS_PER_SESSION_RANGE,
            ),
            ("lease_time", LEASE_TIME_RANGE),
        ] {
            let h = arg_help(set, id);
            assert!(h.ends_with(&format!("({range})")), "{id}: {h}");
        }
        let reset = arg_help(settings.find_subcommand("reset").unwrap(), "key");
        for k in SETTING_KEYS {
            assert!(reset.contains(&k.replace('_', "-")), "{k}: {reset}");
        }
    }

    #[test]
    fn tables_align_and_encode() {
        let t = table(&["A", "BB"], vec![vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "A    BB\nxxx  y\n");
        assert_eq!(enc("0x1f a"), "0x1f%20a");
    }
}
