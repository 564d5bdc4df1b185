//! RPCSEC_GSS version 1 (RFC 2203) with Kerberos V5 for the client: krb5 (the caller
//! authenticated), krb5i (arguments and results checksummed) and krb5p (encrypted).
//!
//! Each connection makes a context of its own when it is set up ([`RpcConn::start_gss`]):
//! NULL calls with an INIT, then CONTINUE_INIT, credential carry the initiator's tokens,
//! and the reply that completes the context carries the server's checksum of its sequence
//! window, verified with the new context. Every later call is a DATA call: the credential
//! names the context and a fresh sequence number, the verifier checksums the call header,
//! and the arguments and results are protected as the service says
//! (`Context::seal_call`, `Context::open_reply`). A context the server refuses
//! (RPCSEC_GSS_CREDPROBLEM or CTXPROBLEM: it forgot it, or it expired), or one that
//! expired with its ticket or used up its sequence numbers before a call went out, is
//! replaced once and the call sent again (it was not executed). Shutting the connection
//! down, or dropping it, sends DESTROY. Calls from the server (NFSv4.1 callbacks) are not
//! RPCSEC_GSS: the reader answers them as on any connection.
//!
//! Sequence numbers are taken right before a call's record is built, not in the order
//! records reach the socket: the server's window (`seq_window` of the context) absorbs the
//! reordering of concurrent callers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use ringnfs_gss::{Gss, GssError, InitStep, Initiator, SecContext, status};
use ringnfs_proto::nfs4::consts::{NFS4_PROGRAM, NFS4_VERSION, PROC_NULL};
use ringnfs_proto::rpc::auth::{AUTH_NONE, RPCSEC_GSS};
use ringnfs_proto::rpc::gss::{
    GssCred, GssInitRes, GssProc, GssService, IntegData, MAXSEQ, RPCSEC_GSS_CREDPROBLEM,
    RPCSEC_GSS_CTXPROBLEM, split_seq,
};
use ringnfs_proto::rpc::message::{ReplyFailure, ReplyHeader, encode_call_raw};
use ringnfs_proto::rpc::{AcceptStat, RpcMessage, decode_message};
use ringnfs_proto::xdr::{XdrDecoder, XdrEncoder, pad4};

use super::conn::{MAX_RECORD, ReplyBody, RpcConn, reply_failure_error};
use super::error::ClientError;

/// How long a dropped connection waits for the answer to DESTROY.
pub const DESTROY_WAIT: Duration = Duration::from_millis(500);
/// Round trips allowed to make a context (Kerberos takes one).
const MAX_INIT_ROUNDS: usize = 8;

/// RPCSEC_GSS for every call of a client's connections (`ClientOptions::gss`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientGss {
    /// krb5 ([`GssService::None`]), krb5i (`Integrity`) or krb5p (`Privacy`).
    pub service: GssService,
    /// The server's host-based service name: `nfs@server.example.com`.
    pub target: String,
    /// The credentials cache with the user's tickets (`FILE:/tmp/krb5cc_1000`); the
    /// default one (`KRB5CCNAME`, else MIT's default) when None.
    pub ccache: Option<String>,
}

impl ClientGss {
    /// `service` with `target` ("nfs@server"), from the default credentials cache.
    pub fn new(service: GssService, target: impl Into<String>) -> ClientGss {
        ClientGss {
            service,
            target: target.into(),
            ccache: None,
        }
    }

    /// The same, with the tickets of `ccache`.
    pub fn with_ccache(mut self, ccache: impl Into<String>) -> ClientGss {
        self.ccache = Some(ccache.into());
        self
    }

    /// The security flavor's usual name: krb5, krb5i or krb5p.
    pub fn flavor_name(&self) -> &'static str {
        match self.service {
            GssService::None => "krb5",
            GssService::Integrity => "krb5i",
            GssService::Privacy => "krb5p",
        }
    }
}

/// Why a call did not go through.
pub(crate) enum Failure {
    /// The context cannot carry the call: the server refused it, or it expired or used up
    /// its sequence numbers before the call went out. The call was not executed; a new
    /// context may carry it.
    Stale(String),
    Error(ClientError),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        Failure::Error(e)
    }
}

fn gss_error(text: String) -> Failure {
    Failure::Error(ClientError::Gss(text))
}

/// A failed GSS-API call on our side of an established context.
fn local(what: &str, e: GssError) -> Failure {
    if e.routine_error() == Some(status::CONTEXT_EXPIRED) {
        Failure::Stale(format!(
            "the context expired (it ends with the Kerberos ticket it was made with): {e}"
        ))
    } else {
        gss_error(format!("{what}: {e}"))
    }
}

/// An established context of one connection.
pub(crate) struct Context {
    sec: Mutex<SecContext>,
    handle: Vec<u8>,
    service: GssService,
    /// The next sequence number; MAXSEQ once they are used up.
    next_seq: AtomicU32,
    /// The server's sequence window.
    window: u32,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("service", &self.service)
            .field("next_seq", &self.next_seq.load(Ordering::Relaxed))
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl Context {
    fn take_seq(&self) -> Result<u32, Failure> {
        self.next_seq
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < MAXSEQ).then_some(n + 1)
            })
            .map_err(|_| {
                Failure::Stale(format!(
                    "the context has used up its sequence numbers (all {} of them)",
                    MAXSEQ - 1
                ))
            })
    }

    /// Appends the call (header, RPCSEC_GSS credential and verifier, arguments protected
    /// as the service says) to `rec`; returns its sequence number. DESTROY carries no
    /// arguments and is not wrapped (as Linux sends it).
    pub(crate) fn seal_call(
        &self,
        rec: &mut Vec<u8>,
        xid: u32,
        call: (u32, u32, u32),
        proc_: GssProc,
        args: &[u8],
    ) -> Result<u32, Failure> {
        let seq = self.take_seq()?;
        let mut cred = Vec::with_capacity(24 + self.handle.len());
        GssCred {
            proc_,
            seq_num: seq,
            service: self.service,
            handle: self.handle.clone(),
        }
        .encode(&mut cred);
        let sec = self.sec.lock();
        let mut failed = None;
        encode_call_raw(rec, xid, call, (RPCSEC_GSS, &cred), |header| {
            match sec.get_mic(header) {
                Ok(mic) => (RPCSEC_GSS, mic),
                Err(e) => {
                    failed = Some(e);
                    (RPCSEC_GSS, Vec::new())
                }
            }
        });
        if let Some(e) = failed {
            return Err(local("checksumming the call header", e));
        }
        if proc_ != GssProc::Data {
            return Ok(seq);
        }
        match self.service {
            GssService::None => rec.extend_from_slice(args),
            GssService::Integrity => {
                // rpc_gss_integ_data built in place: opaque databody_integ (the sequence
                // number, then the arguments), then the checksum over it.
                let at = rec.len();
                rec.put_u32(0);
                rec.put_u32(seq);
                rec.extend_from_slice(args);
                let len = rec.len() - at - 4;
                rec[at..at + 4].copy_from_slice(&(len as u32).to_be_bytes());
                let mic = sec
                    .get_mic(&rec[at + 4..])
                    .map_err(|e| local("checksumming the arguments", e))?;
                rec.resize(at + 4 + pad4(len), 0);
                rec.put_opaque(&mic);
            }
            GssService::Privacy => {
                let mut body = Vec::with_capacity(4 + args.len());
                body.put_u32(seq);
                body.extend_from_slice(args);
                let token = sec
                    .wrap(&body, true)
                    .map_err(|e| local("encrypting the arguments", e))?;
                rec.put_opaque(&token);
            }
        }
        Ok(seq)
    }

    /// The results of the reply to call `seq`, its verifier checked and its protection
    /// taken off.
    pub(crate) fn open_reply(&self, seq: u32, r: &ReplyHeader<'_>) -> Result<Vec<u8>, Failure> {
        let data = match r.body {
            Ok(data) => data,
            Err(ReplyFailure::AuthError(s @ (RPCSEC_GSS_CREDPROBLEM | RPCSEC_GSS_CTXPROBLEM))) => {
                return Err(Failure::Stale(format!(
                    "the server refused the context with {}",
                    auth_stat_text(s)
                )));
            }
            Err(f) => return Err(Failure::Error(reply_failure_error(f))),
        };
        if r.verf_flavor != RPCSEC_GSS {
            return Err(gss_error(format!(
                "the reply to call {seq} has a verifier of flavor {}, not RPCSEC_GSS ({RPCSEC_GSS})",
                r.verf_flavor
            )));
        }
        let sec = self.sec.lock();
        sec.verify_mic(&seq.to_be_bytes(), r.verf).map_err(|e| {
            gss_error(format!(
                "the reply's verifier (the server's checksum of sequence number {seq}) does \
                 not verify: {e}"
            ))
        })?;
        match self.service {
            GssService::None => Ok(data.to_vec()),
            GssService::Integrity => {
                let integ = IntegData::decode(data, MAX_RECORD).map_err(|e| {
                    gss_error(format!(
                        "the reply's rpc_gss_integ_data does not decode: {e}"
                    ))
                })?;
                sec.verify_mic(integ.body, integ.checksum).map_err(|e| {
                    gss_error(format!(
                        "the reply's integrity checksum does not verify (the results were \
                         changed on the way): {e}"
                    ))
                })?;
                let results = split_seq(integ.body, seq).map_err(|_| {
                    gss_error(format!(
                        "the reply's checksummed results are not those of call {seq} (they \
                         carry another sequence number)"
                    ))
                })?;
                Ok(results.to_vec())
            }
            GssService::Privacy => {
                let token = XdrDecoder::new(data).opaque(MAX_RECORD).map_err(|e| {
                    gss_error(format!(
                        "the reply's rpc_gss_priv_data does not decode: {e}"
                    ))
                })?;
                let unwrapped = sec.unwrap(token).map_err(|e| {
                    gss_error(format!("the reply's encrypted results do not unwrap: {e}"))
                })?;
                if !unwrapped.confidential {
                    return Err(gss_error(
                        "the reply's results were only checksummed, not encrypted, under krb5p"
                            .into(),
                    ));
                }
                let mut message = unwrapped.message;
                if split_seq(&message, seq).is_err() {
                    return Err(gss_error(format!(
                        "the reply's encrypted results are not those of call {seq} (they carry \
                         another sequence number)"
                    )));
                }
                message.drain(..4);
                Ok(message)
            }
        }
    }
}

/// A connection's RPCSEC_GSS: the options, and the context its calls use.
pub(crate) struct GssConn {
    opts: ClientGss,
    gss: Arc<Gss>,
    /// None once destroyed.
    current: Mutex<Option<Arc<Context>>>,
    /// Held while a replacement is made: callers that all find the context refused make
    /// one new context, not one each.
    renewing: Mutex<()>,
}

impl std::fmt::Debug for GssConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GssConn")
            .field("opts", &self.opts)
            .field("context", &*self.current.lock())
            .finish()
    }
}

impl GssConn {
    /// Loads the GSS-API library and makes the connection's first context.
    pub(crate) fn start(conn: &RpcConn, opts: &ClientGss) -> Result<GssConn, ClientError> {
        let gss = Gss::load().map_err(|e| ClientError::Gss(e.to_string()))?;
        let g = GssConn {
            opts: opts.clone(),
            gss,
            current: Mutex::new(None),
            renewing: Mutex::new(()),
        };
        let ctx = g.establish(conn)?;
        *g.current.lock() = Some(Arc::new(ctx));
        Ok(g)
    }

    pub(crate) fn options(&self) -> &ClientGss {
        &self.opts
    }

    pub(crate) fn lifetime(&self) -> Option<Duration> {
        let ctx = self.current.lock().clone()?;
        let left = ctx.sec.lock().lifetime();
        Some(left)
    }

    #[cfg(any(test, feature = "mock"))]
    pub(crate) fn set_next_seq(&self, next: u32) {
        if let Some(ctx) = &*self.current.lock() {
            ctx.next_seq.store(next, Ordering::Relaxed);
        }
    }

    /// One DATA call; a refused, expired or used-up context is replaced once.
    pub(crate) fn call(
        &self,
        conn: &RpcConn,
        call: (u32, u32, u32),
        args: &[u8],
    ) -> Result<ReplyBody, ClientError> {
        let ctx = self.current.lock().clone().ok_or_else(|| {
            ClientError::Gss("the connection's context was destroyed (it is shut down)".into())
        })?;
        let why = match self.call_with(conn, &ctx, call, args) {
            Ok(r) => return Ok(r),
            Err(Failure::Error(e)) => return Err(e),
            Err(Failure::Stale(why)) => why,
        };
        tracing::debug!(peer = %conn.peer_addr(), reason = %why, "replacing the RPCSEC_GSS context");
        // The connection failing meanwhile is reported as it is (the call was not sent).
        let fresh = self.renew(conn, &ctx).map_err(|e| match e {
            ClientError::Gss(text) => {
                ClientError::GssContext(format!("{why}; making a new context failed: {text}"))
            }
            other => other,
        })?;
        match self.call_with(conn, &fresh, call, args) {
            Ok(r) => Ok(r),
            Err(Failure::Error(e)) => Err(e),
            Err(Failure::Stale(again)) => Err(ClientError::GssContext(format!(
                "{why}; and the new context: {again}"
            ))),
        }
    }

    fn call_with(
        &self,
        conn: &RpcConn,
        ctx: &Context,
        call: (u32, u32, u32),
        args: &[u8],
    ) -> Result<ReplyBody, Failure> {
        let mut seq = 0;
        let (xid, reply) = conn.exchange(conn.timeout(), args.len() + 256, |xid, rec| {
            seq = ctx.seal_call(rec, xid, call, GssProc::Data, args)?;
            Ok::<(), Failure>(())
        })?;
        match decode_message(&reply) {
            Ok(RpcMessage::Reply(r)) => ctx.open_reply(seq, &r).map(|data| ReplyBody { xid, data }),
            _ => Err(ClientError::BadReply("undecodable RPC reply".into()).into()),
        }
    }

    /// The context that replaces `stale`: made now, unless another caller already did.
    fn renew(&self, conn: &RpcConn, stale: &Arc<Context>) -> Result<Arc<Context>, ClientError> {
        let _renewing = self.renewing.lock();
        match &*self.current.lock() {
            Some(c) if !Arc::ptr_eq(c, stale) => return Ok(c.clone()),
            Some(_) => {}
            None => {
                return Err(ClientError::Gss(
                    "the connection's context was destroyed (it is shut down)".into(),
                ));
            }
        }
        let fresh = Arc::new(self.establish(conn)?);
        *self.current.lock() = Some(fresh.clone());
        Ok(fresh)
    }

    /// DESTROY, best effort: waits at most [`DESTROY_WAIT`] for the answer.
    pub(crate) fn destroy(&self, conn: &RpcConn) {
        let Some(ctx) = self.current.lock().take() else {
            return;
        };
        let r = conn.exchange(DESTROY_WAIT, 256, |xid, rec| {
            ctx.seal_call(
                rec,
                xid,
                (NFS4_PROGRAM, NFS4_VERSION, PROC_NULL),
                GssProc::Destroy,
                &[],
            )
            .map(|_| ())
        });
        match r {
            Ok(_) => tracing::debug!(peer = %conn.peer_addr(), "RPCSEC_GSS context destroyed"),
            Err(Failure::Stale(why)) => {
                tracing::debug!(peer = %conn.peer_addr(), reason = %why, "no DESTROY sent")
            }
            Err(Failure::Error(e)) => {
                tracing::debug!(peer = %conn.peer_addr(), error = %e, "DESTROY failed")
            }
        }
    }

    /// Makes a context with the server: INIT, CONTINUE_INIT while the mechanism wants,
    /// then the check of the server's checksum of the sequence window.
    fn establish(&self, conn: &RpcConn) -> Result<Context, ClientError> {
        let target = &self.opts.target;
        let peer = conn.peer_addr();
        let failed = |e: GssError| {
            ClientError::Gss(format!(
                "making a {} context with {target} at {peer}: {e}{}",
                self.opts.flavor_name(),
                tickets_hint(&e)
            ))
        };
        let mut initiator = match &self.opts.ccache {
            Some(cc) => Initiator::with_ccache(&self.gss, target, cc),
            None => Initiator::new(&self.gss, target),
        }
        .map_err(failed)?;
        // The token for the server, and the context once the initiator has finished.
        let (mut token, mut done) = match initiator.step(None).map_err(failed)? {
            InitStep::Continue { token } => (token, None),
            InitStep::Complete { context, token } => (token.unwrap_or_default(), Some(context)),
        };
        let mut handle = Vec::new();
        for round in 0..MAX_INIT_ROUNDS {
            let proc_ = if round == 0 {
                GssProc::Init
            } else {
                GssProc::ContinueInit
            };
            let mut cred = Vec::with_capacity(24 + handle.len());
            GssCred {
                proc_,
                seq_num: 0,
                service: self.opts.service,
                handle: handle.clone(),
            }
            .encode(&mut cred);
            let (_, reply) = conn.exchange(conn.timeout(), token.len() + 128, |xid, rec| {
                encode_call_raw(
                    rec,
                    xid,
                    (NFS4_PROGRAM, NFS4_VERSION, PROC_NULL),
                    (RPCSEC_GSS, &cred),
                    |_| (AUTH_NONE, Vec::new()),
                );
                rec.put_opaque(&token);
                Ok::<(), ClientError>(())
            })?;
            let r = match decode_message(&reply) {
                Ok(RpcMessage::Reply(r)) => r,
                _ => {
                    return Err(ClientError::BadReply(
                        "undecodable RPC reply to RPCSEC_GSS context creation".into(),
                    ));
                }
            };
            let data = r.body.map_err(|f| init_refused(peer, f))?;
            let res = GssInitRes::decode(data).map_err(|e| {
                ClientError::Gss(format!(
                    "the server at {peer} answered context creation with results that do \
                     not decode as rpc_gss_init_res: {e}"
                ))
            })?;
            handle = res.handle;
            match res.major {
                status::CONTINUE_NEEDED => {
                    if done.is_some() {
                        return Err(ClientError::Gss(format!(
                            "the server at {peer} wants another round of context creation \
                             after the client's side was complete"
                        )));
                    }
                    match initiator.step(Some(&res.token)).map_err(failed)? {
                        InitStep::Continue { token: t } => token = t,
                        InitStep::Complete { context, token: t } => {
                            done = Some(context);
                            token = t.unwrap_or_default();
                        }
                    }
                }
                status::COMPLETE => {
                    let sec = match done.take() {
                        Some(sec) if res.token.is_empty() => sec,
                        Some(_) => {
                            return Err(ClientError::Gss(format!(
                                "the server at {peer} sent a token with its completion of a \
                                 context the client had finished"
                            )));
                        }
                        None => match initiator.step(Some(&res.token)).map_err(failed)? {
                            InitStep::Complete {
                                context,
                                token: None,
                            } => context,
                            _ => {
                                return Err(ClientError::Gss(format!(
                                    "the server at {peer} completed the context before the \
                                     client's side had finished (Kerberos's mutual \
                                     authentication needs its reply)"
                                )));
                            }
                        },
                    };
                    if handle.is_empty() {
                        return Err(ClientError::Gss(format!(
                            "the server at {peer} completed the context without a handle"
                        )));
                    }
                    if sec.lifetime().is_zero() {
                        // MIT makes a context from a ticket that expired less than the
                        // clock skew ago, and the server accepts it; it ends at once.
                        return Err(ClientError::Gss(format!(
                            "the Kerberos tickets for {target} have expired: a context made \
                             with them ends at once (get new ones with kinit)"
                        )));
                    }
                    if r.verf_flavor != RPCSEC_GSS {
                        return Err(ClientError::Gss(format!(
                            "the server at {peer} completed the context with a verifier of \
                             flavor {}, not its RPCSEC_GSS checksum of the sequence window",
                            r.verf_flavor
                        )));
                    }
                    sec.verify_mic(&res.seq_window.to_be_bytes(), r.verf)
                        .map_err(|e| {
                            ClientError::Gss(format!(
                                "the server at {peer}'s checksum of the sequence window does \
                                 not verify (not the server the ticket is for?): {e}"
                            ))
                        })?;
                    tracing::debug!(
                        %peer,
                        flavor = self.opts.flavor_name(),
                        window = res.seq_window,
                        "RPCSEC_GSS context established"
                    );
                    return Ok(Context {
                        sec: Mutex::new(sec),
                        handle,
                        service: self.opts.service,
                        next_seq: AtomicU32::new(1),
                        window: res.seq_window,
                    });
                }
                major => {
                    // The server's token (a Kerberos KRB-ERROR) says why in the library's
                    // words.
                    let detail = match (done.is_none() && !res.token.is_empty())
                        .then(|| initiator.step(Some(&res.token)))
                    {
                        Some(Err(e)) => format!("; the client's library reads its token as: {e}"),
                        _ => String::new(),
                    };
                    return Err(ClientError::Gss(format!(
                        "the server at {peer} refused the {} context for {target}: {} (GSS \
                         major status 0x{major:08x}, minor status {}){detail}",
                        self.opts.flavor_name(),
                        routine_text(major),
                        res.minor
                    )));
                }
            }
        }
        Err(ClientError::Gss(format!(
            "no context with {target} at {peer} after {MAX_INIT_ROUNDS} round trips"
        )))
    }
}

/// What to do about a failure of the client's library that is about the user's tickets.
fn tickets_hint(e: &GssError) -> &'static str {
    /// krb5's KRB5KRB_AP_ERR_TKT_EXPIRED, the minor status of an expired ticket.
    const TICKET_EXPIRED: u32 = 0x96c7_3a20;
    match (e.routine_error(), e.minor()) {
        (Some(status::CREDENTIALS_EXPIRED), _) | (_, Some(TICKET_EXPIRED)) => {
            " (the Kerberos tickets have expired: get new ones with kinit)"
        }
        (Some(status::NO_CRED), _) => " (no Kerberos tickets: get some with kinit)",
        _ => "",
    }
}

/// An auth_stat in words.
pub(crate) fn auth_stat_text(s: u32) -> String {
    let name = match s {
        1 => "AUTH_BADCRED (a bad credential)",
        2 => "AUTH_REJECTEDCRED (the client must begin a new session)",
        3 => "AUTH_BADVERF (a bad verifier)",
        4 => "AUTH_REJECTEDVERF (the verifier expired or was replayed)",
        5 => "AUTH_TOOWEAK (the security flavor is refused)",
        6 => "AUTH_INVALIDRESP",
        7 => "AUTH_FAILED",
        RPCSEC_GSS_CREDPROBLEM => "RPCSEC_GSS_CREDPROBLEM (it does not know the context)",
        RPCSEC_GSS_CTXPROBLEM => "RPCSEC_GSS_CTXPROBLEM (the context expired or is used up)",
        _ => return format!("auth_stat {s}"),
    };
    format!("{name}, auth_stat {s}")
}

fn accept_stat_text(s: AcceptStat) -> String {
    match s {
        AcceptStat::Success => "SUCCESS".into(),
        AcceptStat::ProgUnavail => "PROG_UNAVAIL (it does not serve NFS)".into(),
        AcceptStat::ProgMismatch(lo, hi) => {
            format!("PROG_MISMATCH (it serves NFS versions {lo} to {hi}, not 4)")
        }
        AcceptStat::ProcUnavail => "PROC_UNAVAIL".into(),
        AcceptStat::GarbageArgs => "GARBAGE_ARGS (it could not decode the token)".into(),
        AcceptStat::SystemErr => "SYSTEM_ERR".into(),
    }
}

/// A context-creation call the server did not accept.
fn init_refused(peer: SocketAddr, f: ReplyFailure) -> ClientError {
    ClientError::Gss(match f {
        ReplyFailure::AuthError(s) => format!(
            "the server at {peer} does not accept RPCSEC_GSS: it answered context creation \
             with {}",
            auth_stat_text(s)
        ),
        ReplyFailure::Accepted(s) => format!(
            "the server at {peer} did not create a context: {}",
            accept_stat_text(s)
        ),
        ReplyFailure::RpcMismatch(lo, hi) => {
            format!("the server at {peer} speaks RPC versions {lo} to {hi}, not 2")
        }
    })
}

/// The routine error of a GSS major status, named.
fn routine_text(major: u32) -> &'static str {
    match major & status::ROUTINE_ERROR_MASK {
        status::BAD_MECH => "GSS_S_BAD_MECH (the mechanism is not supported)",
        status::BAD_NAME => "GSS_S_BAD_NAME (the service name is not valid)",
        status::BAD_SIG => "GSS_S_BAD_SIG (a checksum did not verify)",
        status::NO_CRED => "GSS_S_NO_CRED (the server has no key for the service)",
        status::NO_CONTEXT => "GSS_S_NO_CONTEXT",
        status::DEFECTIVE_TOKEN => "GSS_S_DEFECTIVE_TOKEN (a token did not decode)",
        status::DEFECTIVE_CREDENTIAL => {
            "GSS_S_DEFECTIVE_CREDENTIAL (the ticket is not valid for the server)"
        }
        status::CREDENTIALS_EXPIRED => "GSS_S_CREDENTIALS_EXPIRED (the ticket expired)",
        status::CONTEXT_EXPIRED => "GSS_S_CONTEXT_EXPIRED",
        status::FAILURE => "GSS_S_FAILURE (the mechanism failed; the server's log may say why)",
        _ => "an error the GSS-API does not name",
    }
}
