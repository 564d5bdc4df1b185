//! Why a bench could not run, in words: an NFS status by name plus what to do about it,
//! and the exit status each cause gives (documented in `ringnfs bench --help`).

use std::net::SocketAddr;

use ringnfs_proto::nfs4::consts::{NfsStatus, op, status, status_name};
use ringnfs_proto::rpc::AcceptStat;
use ringnfs_proto::rpc::message::ReplyFailure;

/// Exit status of a run that finished with errors or connection failures.
pub const EXIT_ERRORS: u8 = 1;
/// Exit status when the run could not be set up (bad arguments, a setup step refused).
pub const EXIT_SETUP: u8 = 2;
/// Exit status when no NFS server could be reached.
pub const EXIT_CONNECT: u8 = 3;

/// The exit statuses, for `ringnfs bench --help`.
pub const EXIT_STATUS_HELP: &str = "Exit status:
  0    every measured reply succeeded (and, with --verify, held the written data)
  1    the run finished with errors or connection failures (shown on its last line)
  2    setup failed: bad arguments, or the server refused a setup step
  3    could not connect: nothing listens, or the address is not an NFS server
  130  interrupted (Ctrl-C): the results so far are printed, the session destroyed
`bench compare`: 0 every row has a ratio, 1 a row has none (errors or connection
failures on either server), 2 a server could not be installed or started, 130 Ctrl-C.";

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Arguments that cannot work, found before connecting.
    #[error("{0}")]
    Usage(String),
    /// The TCP connection could not be made.
    #[error("could not connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// RPC-with-TLS could not start on a connection.
    #[error("{addr}: TLS: {why}")]
    Tls { addr: SocketAddr, why: String },
    /// Something answered that does not speak ONC RPC / NFSv4.
    #[error("{addr}: not an NFS server ({detail})")]
    NotNfs { addr: SocketAddr, detail: String },
    /// The connection failed during a setup step (closed, reset, no reply in time).
    #[error("{step}: {detail}")]
    Connection { step: String, detail: String },
    /// The RPC layer refused a setup call (authentication, arguments).
    #[error("{step}: {detail}")]
    Rpc { step: String, detail: String },
    /// A setup operation failed: the operation (and its argument), the status, a hint.
    #[error("{step}: {}{}", status_text(*.status), hint_text(.hint))]
    Nfs {
        step: String,
        status: NfsStatus,
        hint: Option<String>,
    },
    /// The server's limits do not allow the run asked for.
    #[error("{0}")]
    Limits(String),
    /// Ctrl-C before the load started.
    #[error("interrupted during setup: nothing was measured")]
    Interrupted,
    /// A local failure (thread, histogram).
    #[error("{0}")]
    Local(String),
}

impl BenchError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            BenchError::Connect { .. } | BenchError::NotNfs { .. } | BenchError::Tls { .. } => {
                EXIT_CONNECT
            }
            BenchError::Connection { .. } => EXIT_CONNECT,
            BenchError::Interrupted => super::interrupt::EXIT_INTERRUPTED,
            BenchError::Usage(_)
            | BenchError::Rpc { .. }
            | BenchError::Nfs { .. }
            | BenchError::Limits(_)
            | BenchError::Local(_) => EXIT_SETUP,
        }
    }

    /// A failed setup operation, with the hint known for it.
    pub fn nfs(
        step: impl Into<String>,
        opnum: u32,
        status: NfsStatus,
        lease_secs: Option<u32>,
    ) -> Self {
        BenchError::Nfs {
            step: step.into(),
            status,
            hint: hint(opnum, status, lease_secs),
        }
    }

    /// An RPC-level refusal of a setup call to `addr`.
    pub fn rpc(addr: SocketAddr, step: &str, f: &ReplyFailure) -> Self {
        let step = step.to_string();
        match f {
            ReplyFailure::Accepted(AcceptStat::ProgUnavail) => BenchError::NotNfs {
                addr,
                detail: "the RPC program NFS (100003) is unavailable".into(),
            },
            ReplyFailure::Accepted(AcceptStat::ProgMismatch(lo, hi)) => BenchError::NotNfs {
                addr,
                detail: format!("NFS version 4 is unavailable; it offers versions {lo}..={hi}"),
            },
            ReplyFailure::RpcMismatch(lo, hi) => BenchError::NotNfs {
                addr,
                detail: format!("RPC version 2 is unavailable; it offers {lo}..={hi}"),
            },
            ReplyFailure::Accepted(a) => BenchError::Rpc {
                step,
                detail: format!("the server did not run the call: {}", accept_name(*a)),
            },
            ReplyFailure::AuthError(s) => BenchError::Rpc {
                step,
                detail: format!(
                    "RPC authentication refused: {} (try --auth-sys, or --auth-sys UID:GID)",
                    auth_stat_name(*s)
                ),
            },
        }
    }
}

fn status_text(s: NfsStatus) -> String {
    match status_name(s) {
        Some(n) => n.to_string(),
        None => format!("NFS status {s}"),
    }
}

fn hint_text(h: &Option<String>) -> String {
    h.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
}

fn accept_name(a: AcceptStat) -> &'static str {
    match a {
        AcceptStat::Success => "SUCCESS",
        AcceptStat::ProgUnavail => "PROG_UNAVAIL",
        AcceptStat::ProgMismatch(..) => "PROG_MISMATCH",
        AcceptStat::ProcUnavail => "PROC_UNAVAIL",
        AcceptStat::GarbageArgs => "GARBAGE_ARGS",
        AcceptStat::SystemErr => "SYSTEM_ERR",
    }
}

/// auth_stat names (RFC 5531 §9; RPCSEC_GSS's from RFC 2203 §5.3.3.3).
fn auth_stat_name(s: u32) -> String {
    let n = match s {
        1 => "AUTH_BADCRED",
        2 => "AUTH_REJECTEDCRED",
        3 => "AUTH_BADVERF",
        4 => "AUTH_REJECTEDVERF",
        5 => "AUTH_TOOWEAK",
        6 => "AUTH_INVALIDRESP",
        7 => "AUTH_FAILED",
        13 => "RPCSEC_GSS_CREDPROBLEM",
        14 => "RPCSEC_GSS_CTXPROBLEM",
        _ => return format!("auth_stat {s}"),
    };
    n.to_string()
}

/// What to do about a setup operation that failed with `status`. `lease_secs` is the
/// server's lease time when known (how long a grace period usually lasts).
pub fn hint(opnum: u32, st: NfsStatus, lease_secs: Option<u32>) -> Option<String> {
    let h = match (opnum, st) {
        (op::LOOKUP, status::NFS4ERR_NOENT | status::NFS4ERR_NOTDIR) => {
            "export path not found; ganesha exports at /export, ringnfs at /".to_string()
        }
        (op::OPEN, status::NFS4ERR_ACCESS | status::NFS4ERR_PERM) => {
            "the export root is not writable by the bench's user: use --auth-sys with a \
             uid that may write, or export with --no-root-squash"
                .to_string()
        }
        (_, status::NFS4ERR_ACCESS | status::NFS4ERR_PERM | status::NFS4ERR_WRONGSEC) => {
            "the server refuses this client or credential: check the export's allowed \
             networks, or try --auth-sys"
                .to_string()
        }
        (_, status::NFS4ERR_GRACE) => {
            // RFC 8881 §8.4.2.1: the grace period lasts at least a lease period.
            let wait = match lease_secs {
                Some(s) => format!("wait {s} s (the server's lease time)"),
                None => "wait a lease time".to_string(),
            };
            format!(
                "the server is in its grace period: {wait} and retry, or start it without \
                 one (ringnfs serve --grace 0; ganesha Graceless = true)"
            )
        }
        (_, status::NFS4ERR_ROFS) => {
            "the export is read-only: create, write and preparing the I/O workloads' file \
             need to write"
                .to_string()
        }
        (_, status::NFS4ERR_NOSPC | status::NFS4ERR_DQUOT) if opnum != op::CREATE_SESSION => {
            "the export is full; try a smaller --file-size-mib".to_string()
        }
        (op::CREATE_SESSION, status::NFS4ERR_NOSPC | status::NFS4ERR_DELAY) => {
            "the server has no room for another session; try fewer --sessions".to_string()
        }
        (_, status::NFS4ERR_MINOR_VERS_MISMATCH) => "the server does not speak NFSv4.1".to_string(),
        _ => return None,
    };
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_errors_read_as_words() {
        let e = BenchError::nfs("LOOKUP /export", op::LOOKUP, status::NFS4ERR_NOENT, None);
        assert_eq!(
            e.to_string(),
            "LOOKUP /export: NFS4ERR_NOENT (export path not found; ganesha exports at \
             /export, ringnfs at /)"
        );
        assert_eq!(e.exit_code(), EXIT_SETUP);
        let e = BenchError::nfs("OPEN", op::OPEN, status::NFS4ERR_GRACE, Some(90));
        assert!(
            e.to_string()
                .starts_with("OPEN: NFS4ERR_GRACE (the server is in its grace period: wait 90 s"),
            "{e}"
        );
        // Unknown statuses still read as a status, never as a tuple.
        let e = BenchError::nfs("GETATTR", op::GETATTR, NfsStatus::from_code(99999), None);
        assert_eq!(e.to_string(), "GETATTR: NFS status 99999");
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let e = BenchError::rpc(addr, "EXCHANGE_ID", &ReplyFailure::AuthError(5));
        assert!(e.to_string().contains("AUTH_TOOWEAK"), "{e}");
        let e = BenchError::rpc(
            addr,
            "EXCHANGE_ID",
            &ReplyFailure::Accepted(AcceptStat::ProgUnavail),
        );
        assert_eq!(e.exit_code(), EXIT_CONNECT);
        assert!(e.to_string().contains("not an NFS server"), "{e}");
    }
}
