//! Errors seen by client callers.

use ringnfs_proto::nfs4::consts::{NfsStatus, op_name};
use ringnfs_proto::rpc::AcceptStat;
use ringnfs_proto::xdr::XdrError;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A socket operation failed (connect, write, ...).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The connection closed (or was shut down) before the reply arrived.
    #[error("connection closed before the reply arrived")]
    Disconnected,
    /// No reply within the call timeout.
    #[error("no reply within the timeout")]
    Timeout,
    /// The server accepted the call but did not execute it (accept_stat != SUCCESS).
    #[error("RPC call accepted with failure status {0:?}")]
    RpcAccepted(AcceptStat),
    /// MSG_DENIED / RPC_MISMATCH (supported low, high).
    #[error("RPC version mismatch (server supports {0}..={1})")]
    RpcMismatch(u32, u32),
    /// MSG_DENIED / AUTH_ERROR with this auth_stat.
    #[error("RPC authentication error, auth_stat {0}")]
    AuthError(u32),
    /// The reply did not decode.
    #[error("undecodable reply: {0}")]
    BadReply(String),
    /// RPC-with-TLS could not start: the server offers no TLS, or the handshake failed
    /// (the reason in words).
    #[error("TLS: {0}")]
    Tls(String),
    /// RPCSEC_GSS (Kerberos) failed, in words: the server does not offer it, the context
    /// could not be made, a reply's checksum does not verify.
    #[error("RPCSEC_GSS: {0}")]
    Gss(String),
    /// The server refused the call's RPCSEC_GSS context (RPCSEC_GSS_CREDPROBLEM or
    /// RPCSEC_GSS_CTXPROBLEM: it no longer knows it, or it expired), and refused the new
    /// one made for the retry too. The call was not executed.
    #[error("RPCSEC_GSS: {0}")]
    GssContext(String),
    /// An NFS operation failed: (opnum, nfsstat4).
    #[error("{} failed with NFS status {status}", op_name(*.opnum))]
    Nfs { opnum: u32, status: NfsStatus },
}

impl From<XdrError> for ClientError {
    fn from(e: XdrError) -> Self {
        ClientError::BadReply(e.to_string())
    }
}

impl ClientError {
    /// The nfsstat4 of an `Nfs` error.
    pub fn nfs_status(&self) -> Option<NfsStatus> {
        match self {
            ClientError::Nfs { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when the request may or may not have reached the server (the reply was lost).
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            ClientError::Disconnected | ClientError::Timeout | ClientError::Io(_)
        )
    }
}
