//! The NFS program on an RPC connection: implements the transport's [`Service`] by
//! decoding RPC calls, answering RPC-level errors, dispatching NULL and COMPOUND, and
//! handing replies to our callbacks back to whoever waits for them. A COMPOUND that
//! waits for file I/O is returned to the transport as an [`Outcome::Suspend`] whose
//! continuation owns it: no table of waiting COMPOUNDs is kept here.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ringnfs_proto::rpc::auth::{AUTH_NONE, AUTH_TLS, AuthError, STARTTLS_VERIFIER};
use ringnfs_proto::rpc::message::{RPC_VERSION, ReplyFailure, encode_accepted_verf};
use ringnfs_proto::rpc::{
    AcceptStat, MsgError, RpcMessage, decode_message, encode_accepted, encode_rejected_auth,
    encode_rpc_mismatch,
};
use ringnfs_service::{Bytes, ConnMeta, Continuation, FileIoDone, Outcome, Service};
use ringnfs_state::StateManager;

use super::compound::{Flow, Nfs4Engine, Suspended};
use super::consts::{NFS4_PROGRAM, NFS4_VERSION, PROC_COMPOUND, PROC_NULL};
use super::ctx::Source;
use super::export::{Export, ExportSet, Exports};
use super::rpcsec_gss::{GssArgs, GssCall, GssReply, RpcsecGss};
use ringnfs_proto::rpc::Credential;
use ringnfs_proto::rpc::auth::RPCSEC_GSS;

pub struct NfsService {
    engine: Arc<Nfs4Engine>,
    /// Kerberos (RPCSEC_GSS), when the server has it.
    gss: Option<Arc<RpcsecGss>>,
}

impl NfsService {
    /// Serve one export, at the pseudo root "/".
    pub fn new(state: Arc<StateManager>, export: Arc<Export>) -> Arc<Self> {
        Self::with_exports(state, Arc::new(Exports::new(ExportSet::single(export))))
    }

    /// Serve `exports` (which a live change may replace).
    pub fn with_exports(state: Arc<StateManager>, exports: Arc<Exports>) -> Arc<Self> {
        Self::with_gss(state, exports, None)
    }

    /// Serve `exports`, with Kerberos when `gss` is given.
    pub fn with_gss(
        state: Arc<StateManager>,
        exports: Arc<Exports>,
        gss: Option<Arc<RpcsecGss>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            engine: Arc::new(Nfs4Engine::new(state, exports)),
            gss,
        })
    }

    /// Kerberos, when the server has it.
    pub fn gss(&self) -> Option<&Arc<RpcsecGss>> {
        self.gss.as_ref()
    }

    pub fn state(&self) -> &Arc<StateManager> {
        &self.engine.state
    }

    /// The export PUTROOTFH gives now (the one export, when there is one).
    pub fn export(&self) -> Arc<Export> {
        self.engine.exports.load().root().clone()
    }

    pub fn exports(&self) -> &Arc<Exports> {
        &self.engine.exports
    }

    /// Recall this node's delegations of `file` for another cluster node.
    pub fn recall_for_cluster(&self, file: &ringnfs_fs::ObjHandle) {
        self.engine.recall_for_cluster(file);
    }
}

/// A COMPOUND waiting for its file operation, as handed to the transport: it resumes on
/// the connection's core when the operation completed (even if the connection closed
/// meanwhile: the slot still caches the reply, for the client's retry on another
/// connection).
struct ResumeCompound {
    engine: Arc<Nfs4Engine>,
    s: Box<Suspended>,
    /// An RPCSEC_GSS krb5i or krb5p call: its results are protected once complete.
    seal: Option<Box<GssReply>>,
}

/// Return a suspended COMPOUND's file operation with its continuation. The reply so far
/// must already be in `s.partial` (a large READ takes it along, to read in place).
fn suspend(
    engine: &Arc<Nfs4Engine>,
    mut s: Box<Suspended>,
    seal: Option<Box<GssReply>>,
) -> Outcome {
    // Protected results are copied into their checksum or wrapping anyway: no reading
    // a large READ's data into the reply in place.
    if seal.is_none() {
        s.reply_into_read();
    }
    let Some(io) = s.io.take() else {
        // Cannot happen: every suspension carries its operation. Nothing is sent; the
        // client retries (and the slot answers NFS4ERR_DELAY until its lease ends).
        tracing::error!(
            conn = s.conn.id,
            "suspended COMPOUND without a file operation"
        );
        return Outcome::Done;
    };
    Outcome::suspend(
        io,
        Box::new(ResumeCompound {
            engine: engine.clone(),
            s,
            seal,
        }),
    )
}

impl Continuation for ResumeCompound {
    fn wants_fresh_reply(&self) -> bool {
        self.s.reply_in_io()
    }

    fn resume(self: Box<Self>, done: FileIoDone, out: &mut Vec<u8>) -> Outcome {
        let ResumeCompound { engine, s, seal } = *self;
        let rpc_start = out.len();
        let header = s.header;
        match engine.resume(s, done, out) {
            Flow::Done => {
                if let Some(g) = seal {
                    g.seal(out, rpc_start, rpc_start + header);
                }
                Outcome::Done
            }
            Flow::Suspend(mut again) => {
                again.partial = out.split_off(rpc_start);
                suspend(&engine, again, seal)
            }
        }
    }
}

impl Service for NfsService {
    fn on_accept(&self, conn: &ConnMeta) {
        tracing::debug!(conn = conn.id, peer = %conn.peer, core = conn.core, "connection accepted");
        self.engine.state.conn_opened(conn);
    }

    fn on_close(&self, conn: &ConnMeta) {
        tracing::debug!(conn = conn.id, peer = %conn.peer, "connection closed");
        self.engine.state.conn_closed(conn);
    }

    fn on_record(&self, conn: &ConnMeta, record: &[u8], out: &mut Vec<u8>) -> Outcome {
        self.call(conn, record, Source::Borrowed, out)
    }

    fn on_owned_record(&self, conn: &ConnMeta, record: Bytes, out: &mut Vec<u8>) -> Outcome {
        self.call(conn, &record, Source::Shared(&record), out)
    }
}

impl NfsService {
    /// One RPC record, decoded from `source`.
    fn call(
        &self,
        conn: &ConnMeta,
        record: &[u8],
        source: Source<'_>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let state = &self.engine.state;
        let msg = match decode_message(record) {
            Ok(m) => m,
            Err(MsgError::NoXid) => {
                state.metrics.rpc_garbage(conn.core);
                tracing::debug!(
                    conn = conn.id,
                    len = record.len(),
                    "record too short for an RPC header"
                );
                return Outcome::Done;
            }
            Err(MsgError::BadReply(xid)) => {
                state.metrics.rpc_garbage(conn.core);
                tracing::debug!(conn = conn.id, xid, "malformed RPC reply dropped");
                return Outcome::Done;
            }
            Err(MsgError::Garbage(xid)) => {
                state.metrics.rpc_garbage(conn.core);
                encode_accepted(out, xid, AcceptStat::GarbageArgs);
                return Outcome::Done;
            }
        };
        let call = match msg {
            RpcMessage::Reply(r) => {
                // A reply to a callback we sent on this connection.
                let result = r
                    .body
                    .map(|b| b.to_vec())
                    .map_err(|f: ReplyFailure| super::callback::reply_failure(f));
                if !state.callbacks.complete(conn.id, r.xid, result) {
                    tracing::debug!(conn = conn.id, xid = r.xid, "reply to no pending callback");
                }
                return Outcome::Done;
            }
            RpcMessage::Call(c) => c,
        };
        state.metrics.rpc_call(conn.core);
        conn.shared.requests.fetch_add(1, Ordering::Relaxed);
        if call.rpcvers != RPC_VERSION {
            encode_rpc_mismatch(out, call.xid);
            return Outcome::Done;
        }
        if call.cred_flavor == RPCSEC_GSS {
            return self.gss_call(conn, &call, record, source, out);
        }
        let cred = match call.cred {
            Ok(c) => c,
            Err(e) => {
                encode_rejected_auth(out, call.xid, e.auth_stat());
                return Outcome::Done;
            }
        };
        if call.prog != NFS4_PROGRAM {
            encode_accepted(out, call.xid, AcceptStat::ProgUnavail);
            return Outcome::Done;
        }
        if call.vers != NFS4_VERSION {
            encode_accepted(
                out,
                call.xid,
                AcceptStat::ProgMismatch(NFS4_VERSION, NFS4_VERSION),
            );
            return Outcome::Done;
        }
        if call.cred_flavor == AUTH_TLS {
            tls_probe(conn, call.xid, call.proc_, out);
            return Outcome::Done;
        }
        self.procedure(
            conn,
            &cred,
            (call.xid, call.proc_),
            (call.args, source),
            record.len(),
            None,
            out,
        )
    }

    /// Run procedure `proc_` (NULL or COMPOUND) of an accepted call; `seal` protects
    /// the reply of an RPCSEC_GSS call (its verifier, and for krb5i and krb5p its
    /// results).
    #[allow(clippy::too_many_arguments)]
    fn procedure(
        &self,
        conn: &ConnMeta,
        cred: &Credential,
        (xid, proc_): (u32, u32),
        (args, source): (&[u8], Source<'_>),
        request_len: usize,
        seal: Option<Box<GssReply>>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let state = &self.engine.state;
        let start = out.len();
        let accepted = |out: &mut Vec<u8>, stat: AcceptStat| match &seal {
            Some(g) if stat == AcceptStat::Success => g.header(out),
            _ => {
                encode_accepted(out, xid, stat);
                true
            }
        };
        match proc_ {
            PROC_NULL => {
                if accepted(out, AcceptStat::Success)
                    && let Some(g) = &seal
                {
                    let header = out.len() - start;
                    g.seal(out, start, start + header);
                }
            }
            PROC_COMPOUND => {
                if !accepted(out, AcceptStat::Success) {
                    return Outcome::Done;
                }
                let header = out.len() - start;
                match self
                    .engine
                    .compound(conn, cred, (args, source), request_len, out)
                {
                    Ok(Flow::Done) => {
                        if let Some(g) = &seal {
                            g.seal(out, start, start + header);
                        }
                    }
                    Ok(Flow::Suspend(mut s)) => {
                        // The reply so far waits with the COMPOUND; nothing goes out now.
                        s.partial = out.split_off(start);
                        s.header = header;
                        return suspend(&self.engine, s, seal);
                    }
                    Err(_) => {
                        out.truncate(start);
                        state.metrics.rpc_garbage(conn.core);
                        encode_accepted(out, xid, AcceptStat::GarbageArgs);
                    }
                }
            }
            _ => {
                encode_accepted(out, xid, AcceptStat::ProcUnavail);
            }
        }
        Outcome::Done
    }

    /// A call with the RPCSEC_GSS credential: context creation and destruction are
    /// answered by the GSS layer; a DATA call runs as its principal, its reply
    /// protected as its service says. Without Kerberos configured, AUTH_TOOWEAK.
    fn gss_call(
        &self,
        conn: &ConnMeta,
        call: &ringnfs_proto::rpc::CallHeader<'_>,
        record: &[u8],
        source: Source<'_>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let Some(gss) = &self.gss else {
            encode_rejected_auth(out, call.xid, AuthError::TooWeak.auth_stat());
            return Outcome::Done;
        };
        if call.prog != NFS4_PROGRAM {
            encode_accepted(out, call.xid, AcceptStat::ProgUnavail);
            return Outcome::Done;
        }
        if call.vers != NFS4_VERSION {
            let v = AcceptStat::ProgMismatch(NFS4_VERSION, NFS4_VERSION);
            encode_accepted(out, call.xid, v);
            return Outcome::Done;
        }
        let r = gss.call(
            call.xid,
            call.proc_,
            call.cred_body,
            (call.verf_flavor, call.verf),
            call.header,
            call.args,
            out,
        );
        let GssCall::Data { caller, args, seal } = r else {
            return Outcome::Done;
        };
        let cred = Credential::Gss(caller);
        let seal = Some(Box::new(seal));
        let request = (call.xid, call.proc_);
        match args {
            // krb5 and krb5i: the arguments are a part of the record (a WRITE's data
            // can still go to the file straight from it).
            GssArgs::InRecord(a) => {
                self.procedure(conn, &cred, request, (a, source), record.len(), seal, out)
            }
            GssArgs::Unwrapped(v) => {
                let owned = Bytes::from(v);
                self.procedure(
                    conn,
                    &cred,
                    request,
                    (&owned, Source::Shared(&owned)),
                    record.len(),
                    seal,
                    out,
                )
            }
        }
    }
}

/// A call with the AUTH_TLS credential (RFC 9289 §4.1): only NULL may carry it (else
/// AUTH_BADCRED, as knfsd answers). When the transport can start TLS on the connection
/// the reply's verifier says "STARTTLS" and the client's TLS handshake follows on the
/// same connection; otherwise the reply has an empty AUTH_NONE verifier, which tells
/// the client at once that there is no TLS here.
fn tls_probe(conn: &ConnMeta, xid: u32, proc_: u32, out: &mut Vec<u8>) {
    if proc_ != PROC_NULL {
        encode_rejected_auth(out, xid, AuthError::BadCred.auth_stat());
        return;
    }
    if conn.shared.request_tls() {
        tracing::debug!(conn = conn.id, peer = %conn.peer, "AUTH_TLS probe: starting TLS");
        encode_accepted_verf(out, xid, AUTH_NONE, STARTTLS_VERIFIER, AcceptStat::Success);
    } else {
        tracing::debug!(conn = conn.id, peer = %conn.peer, "AUTH_TLS probe: no TLS on this connection");
        encode_accepted(out, xid, AcceptStat::Success);
    }
}
