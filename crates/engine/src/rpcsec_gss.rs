//! RPCSEC_GSS version 1 (RFC 2203) with Kerberos V5 on the server: contexts made by the
//! NULL procedure's INIT and CONTINUE_INIT calls, DATA calls checked against them (the
//! verifier over the header, the sequence window, krb5i's checksum, krb5p's wrapping),
//! replies protected the same way, DESTROY.
//!
//! The contexts are a table shared by every core, keyed by the handle the server gave;
//! its lock is a leaf (nothing else is taken while it is held) and is held only to find,
//! add or remove a context, never across a GSS call. A context's own mechanism state
//! is behind a lock of its own (MIT's per-message calls on one context must not run at
//! once) and its sequence window behind another, each held for one call.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use ringnfs_gss::{AcceptState, AcceptStep, Acceptor, Gss, GssError, SecContext};
use ringnfs_proto::rpc::GssCaller;
use ringnfs_proto::rpc::auth::RPCSEC_GSS;
use ringnfs_proto::rpc::gss::{
    GssCred, GssInitRes, GssService, IntegData, RPCSEC_GSS_CREDPROBLEM, RPCSEC_GSS_CTXPROBLEM,
    SeqCheck, SeqWindow, split_seq,
};
use ringnfs_proto::xdr::{XdrDecoder, XdrEncoder};
use ringnfs_state::gss_stats::GssStats;

/// Sequence numbers a context keeps track of (RFC 2203 §5.3.3.1): calls may arrive this
/// far out of order (many slots, many connections) and still be taken.
pub const SEQ_WINDOW: u32 = 256;
/// Contexts held at once; past it, expired ones are dropped, then the oldest.
pub const MAX_CONTEXTS: usize = 16384;
/// Contexts whose establishment is half-way (between INIT and CONTINUE_INIT).
const MAX_PENDING: usize = 1024;
/// GSS_S_CONTINUE_NEEDED, in an INIT reply's gss_major.
const CONTINUE_NEEDED: u32 = 1;

/// What Kerberos on the server needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GssConfig {
    /// The keytab with the service principals (`nfs/<host>@REALM`); None: the default
    /// (`KRB5_KTNAME`, else /etc/krb5.keytab).
    pub keytab: Option<PathBuf>,
    /// Realms whose users are local users of the same name (`alice@REALM` → passwd
    /// `alice`); others map to the anonymous user.
    pub local_realms: Vec<String>,
}

/// One established context.
pub struct GssContext {
    sec: Mutex<SecContext>,
    window: Mutex<SeqWindow>,
    caller: GssCaller,
    /// When the ticket it was made with expires.
    expires: Instant,
    made: Instant,
}

/// The server's RPCSEC_GSS state.
pub struct RpcsecGss {
    acceptor: Acceptor,
    local_realms: Vec<String>,
    contexts: Mutex<Table>,
    next_handle: AtomicU64,
    /// Counters: contexts made and refused, calls refused by reason.
    stats: Arc<GssStats>,
}

#[derive(Default)]
struct Table {
    live: HashMap<Vec<u8>, Arc<GssContext>>,
    pending: HashMap<Vec<u8>, AcceptState>,
}

/// A call on an RPCSEC_GSS credential, as the program answers it.
pub enum GssCall<'a> {
    /// Answered here (INIT, CONTINUE_INIT, DESTROY) or to be refused: the reply is in
    /// `out`, or nothing is to be sent (a replay).
    Answered,
    /// A DATA call that checked out: run the procedure on `args` as `caller`, then
    /// protect the reply with `seal`.
    Data {
        caller: GssCaller,
        args: GssArgs<'a>,
        seal: GssReply,
    },
}

/// A DATA call's procedure arguments: in the record (krb5, krb5i), or unwrapped (krb5p).
pub enum GssArgs<'a> {
    InRecord(&'a [u8]),
    Unwrapped(Vec<u8>),
}

/// What a DATA call's reply needs: its verifier, and for krb5i and krb5p its results
/// checksummed or wrapped with the call's sequence number.
pub struct GssReply {
    ctx: Arc<GssContext>,
    seq: u32,
    service: GssService,
    xid: u32,
}

/// Why a call was refused before its procedure ran.
enum Refusal {
    /// MSG_DENIED / AUTH_ERROR with this auth_stat.
    Auth(u32),
    /// No reply at all (a replayed sequence number, RFC 2203 §5.3.3.1).
    Drop,
    /// GARBAGE_ARGS (a krb5i checksum or krb5p token that does not verify).
    Garbage,
}

impl RpcsecGss {
    /// Load MIT Kerberos and the acceptor credentials of the keytab.
    pub fn new(cfg: &GssConfig, stats: Arc<GssStats>) -> Result<RpcsecGss, GssError> {
        let gss = Gss::load()?;
        let acceptor = Acceptor::new(&gss, cfg.keytab.as_deref())?;
        Ok(RpcsecGss {
            acceptor,
            local_realms: cfg.local_realms.clone(),
            contexts: Mutex::new(Table::default()),
            next_handle: AtomicU64::new(rand::random::<u64>() >> 16),
            stats,
        })
    }

    /// Contexts established now.
    pub fn context_count(&self) -> usize {
        self.contexts.lock().live.len()
    }

    fn new_handle(&self) -> Vec<u8> {
        self.next_handle
            .fetch_add(1, Ordering::Relaxed)
            .to_be_bytes()
            .to_vec()
    }

    /// A call whose credential is RPCSEC_GSS: `proc_` its procedure, `header` the bytes
    /// its verifier checksums, `args` its (protected) arguments. INIT, CONTINUE_INIT
    /// and DESTROY are answered into `out`; a DATA call that checks out comes back to
    /// be run.
    #[allow(clippy::too_many_arguments)]
    pub fn call<'a>(
        &self,
        xid: u32,
        proc_: u32,
        cred_body: &[u8],
        (verf_flavor, verf): (u32, &[u8]),
        header: &[u8],
        args: &'a [u8],
        out: &mut Vec<u8>,
    ) -> GssCall<'a> {
        use ringnfs_proto::rpc::gss::GssProc;
        let Ok(cred) = GssCred::decode(cred_body) else {
            GssStats::add(&self.stats.bad_credential);
            reject(
                out,
                xid,
                ringnfs_proto::rpc::auth::AuthError::BadCred.auth_stat(),
            );
            return GssCall::Answered;
        };
        match cred.proc_ {
            GssProc::Init | GssProc::ContinueInit => {
                if proc_ != 0 {
                    reject(
                        out,
                        xid,
                        ringnfs_proto::rpc::auth::AuthError::BadCred.auth_stat(),
                    );
                } else {
                    self.init(xid, &cred, args, out);
                }
                GssCall::Answered
            }
            GssProc::Destroy => {
                match self.check(&cred, (verf_flavor, verf), header) {
                    Ok(ctx) => {
                        self.remove(&cred.handle);
                        GssStats::add(&self.stats.contexts_destroyed);
                        tracing::debug!(principal = %ctx.caller.principal, "GSS context destroyed");
                        let reply = GssReply {
                            ctx,
                            seq: cred.seq_num,
                            service: GssService::None,
                            xid,
                        };
                        reply.header(out);
                    }
                    Err(r) => self.refuse(out, xid, r),
                }
                GssCall::Answered
            }
            GssProc::Data => {
                let ctx = match self.check(&cred, (verf_flavor, verf), header) {
                    Ok(c) => c,
                    Err(r) => {
                        self.refuse(out, xid, r);
                        return GssCall::Answered;
                    }
                };
                let args = match body(&ctx, &cred, args) {
                    Ok(a) => a,
                    Err(r) => {
                        self.refuse(out, xid, r);
                        return GssCall::Answered;
                    }
                };
                GssCall::Data {
                    caller: GssCaller {
                        service: cred.service,
                        ..ctx.caller.clone()
                    },
                    args,
                    seal: GssReply {
                        ctx,
                        seq: cred.seq_num,
                        service: cred.service,
                        xid,
                    },
                }
            }
        }
    }

    fn refuse(&self, out: &mut Vec<u8>, xid: u32, r: Refusal) {
        match r {
            Refusal::Auth(stat) => {
                GssStats::add(if stat == RPCSEC_GSS_CTXPROBLEM {
                    &self.stats.context_problem
                } else {
                    &self.stats.bad_credential
                });
                reject(out, xid, stat);
            }
            Refusal::Drop => GssStats::add(&self.stats.replays_dropped),
            Refusal::Garbage => {
                GssStats::add(&self.stats.bad_body);
                ringnfs_proto::rpc::encode_accepted(
                    out,
                    xid,
                    ringnfs_proto::rpc::AcceptStat::GarbageArgs,
                );
            }
        }
    }

    /// The context of a DATA or DESTROY call whose verifier checks out and whose
    /// sequence number is new (RFC 2203 §5.3.3.1: the checksum first, so a forged call
    /// cannot move the window).
    fn check(
        &self,
        cred: &GssCred,
        (verf_flavor, verf): (u32, &[u8]),
        header: &[u8],
    ) -> Result<Arc<GssContext>, Refusal> {
        let ctx = self
            .contexts
            .lock()
            .live
            .get(&cred.handle)
            .cloned()
            .ok_or(Refusal::Auth(RPCSEC_GSS_CREDPROBLEM))?;
        if Instant::now() >= ctx.expires {
            self.remove(&cred.handle);
            return Err(Refusal::Auth(RPCSEC_GSS_CTXPROBLEM));
        }
        if verf_flavor != RPCSEC_GSS || ctx.sec.lock().verify_mic(header, verf).is_err() {
            return Err(Refusal::Auth(RPCSEC_GSS_CREDPROBLEM));
        }
        let seen = ctx.window.lock().check(cred.seq_num);
        match seen {
            SeqCheck::Fresh => Ok(ctx),
            SeqCheck::Drop => Err(Refusal::Drop),
            SeqCheck::Exhausted => Err(Refusal::Auth(RPCSEC_GSS_CTXPROBLEM)),
        }
    }

    /// INIT or CONTINUE_INIT: one step of the acceptor; the reply carries
    /// rpc_gss_init_res, and once the context is made, a verifier over the window size.
    fn init(&self, xid: u32, cred: &GssCred, args: &[u8], out: &mut Vec<u8>) {
        use ringnfs_proto::rpc::gss::{GssProc, decode_init_arg};
        let Ok(token) = decode_init_arg(args) else {
            GssStats::add(&self.stats.contexts_refused);
            ringnfs_proto::rpc::encode_accepted(
                out,
                xid,
                ringnfs_proto::rpc::AcceptStat::GarbageArgs,
            );
            return;
        };
        let (mut state, handle) = match cred.proc_ {
            GssProc::ContinueInit => match self.contexts.lock().pending.remove(&cred.handle) {
                Some(s) => (s, cred.handle.clone()),
                None => {
                    GssStats::add(&self.stats.bad_credential);
                    reject(out, xid, RPCSEC_GSS_CREDPROBLEM);
                    return;
                }
            },
            _ => (AcceptState::new(), self.new_handle()),
        };
        let step = self.acceptor.step(&mut state, token);
        // The verifier: AUTH_NONE until the context is made, then the checksum of the
        // window (RFC 2203 §5.2.3.1).
        let (res, verf) = match step {
            Ok(AcceptStep::Continue { token }) => {
                let mut t = self.contexts.lock();
                if t.pending.len() >= MAX_PENDING {
                    // Half-made contexts of clients that went away: start over.
                    t.pending.clear();
                }
                t.pending.insert(handle.clone(), state);
                let res = GssInitRes {
                    handle,
                    major: CONTINUE_NEEDED,
                    minor: 0,
                    seq_window: SEQ_WINDOW,
                    token,
                };
                (res, None)
            }
            Ok(AcceptStep::Complete {
                context,
                token,
                initiator,
            }) => {
                let ids = map_ids(&initiator, &self.local_realms);
                tracing::debug!(principal = %initiator, ?ids, "GSS context made");
                let verf = match context.get_mic(&SEQ_WINDOW.to_be_bytes()) {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::info!("GSS context for {initiator} unusable: {e}");
                        GssStats::add(&self.stats.contexts_refused);
                        reject(out, xid, RPCSEC_GSS_CTXPROBLEM);
                        return;
                    }
                };
                let now = Instant::now();
                let ctx = Arc::new(GssContext {
                    expires: now + context.lifetime(),
                    sec: Mutex::new(context),
                    window: Mutex::new(SeqWindow::new(SEQ_WINDOW)),
                    caller: GssCaller {
                        service: cred.service,
                        principal: initiator,
                        ids,
                    },
                    made: now,
                });
                self.insert(handle.clone(), ctx);
                GssStats::add(&self.stats.contexts_made);
                let res = GssInitRes {
                    handle,
                    major: 0,
                    minor: 0,
                    seq_window: SEQ_WINDOW,
                    token: token.unwrap_or_default(),
                };
                (res, Some(verf))
            }
            Err(e) => {
                GssStats::add(&self.stats.contexts_refused);
                tracing::info!("GSS context refused: {}", e.error);
                let res = GssInitRes {
                    handle: Vec::new(),
                    major: e.error.major().unwrap_or(ringnfs_gss::status::FAILURE),
                    minor: e.error.minor().unwrap_or(0),
                    seq_window: 0,
                    token: e.token.unwrap_or_default(),
                };
                (res, None)
            }
        };
        let (flavor, body) = match &verf {
            Some(mic) => (RPCSEC_GSS, &mic[..]),
            None => (ringnfs_proto::rpc::auth::AUTH_NONE, &[][..]),
        };
        let success = ringnfs_proto::rpc::AcceptStat::Success;
        ringnfs_proto::rpc::message::encode_accepted_verf(out, xid, flavor, body, success);
        res.encode(out);
    }

    fn insert(&self, handle: Vec<u8>, ctx: Arc<GssContext>) {
        let mut t = self.contexts.lock();
        if t.live.len() >= MAX_CONTEXTS {
            let now = Instant::now();
            t.live.retain(|_, c| c.expires > now);
            if t.live.len() >= MAX_CONTEXTS
                && let Some(oldest) = t
                    .live
                    .iter()
                    .min_by_key(|(_, c)| c.made)
                    .map(|(h, _)| h.clone())
            {
                t.live.remove(&oldest);
            }
        }
        t.live.insert(handle, ctx);
        GssStats::set(&self.stats.contexts, t.live.len() as u64);
    }

    fn remove(&self, handle: &[u8]) {
        let mut t = self.contexts.lock();
        t.live.remove(handle);
        GssStats::set(&self.stats.contexts, t.live.len() as u64);
    }
}

/// The local user a principal maps to: a user of a local realm by name, else a numeric
/// name (`1000@REALM`) as that uid, else None (the anonymous user).
fn map_ids(principal: &str, realms: &[String]) -> Option<(u32, u32, Vec<u32>)> {
    if let Some(i) = ringnfs_gss::map_principal(principal, realms) {
        return Some((i.uid, i.gid, i.groups));
    }
    let (name, realm) = principal.rsplit_once('@')?;
    if !realms.iter().any(|r| r == realm) {
        return None;
    }
    let uid: u32 = name.parse().ok()?;
    Some((uid, uid, Vec::new()))
}

/// A DATA call's procedure arguments, checked as its service says (RFC 2203 §5.3.2.2).
fn body<'a>(ctx: &GssContext, cred: &GssCred, args: &'a [u8]) -> Result<GssArgs<'a>, Refusal> {
    match cred.service {
        GssService::None => Ok(GssArgs::InRecord(args)),
        GssService::Integrity => {
            let integ = IntegData::decode(args, args.len()).map_err(|_| Refusal::Garbage)?;
            ctx.sec
                .lock()
                .verify_mic(integ.body, integ.checksum)
                .map_err(|_| Refusal::Garbage)?;
            let inner = split_seq(integ.body, cred.seq_num).map_err(|_| Refusal::Garbage)?;
            Ok(GssArgs::InRecord(inner))
        }
        GssService::Privacy => {
            let mut d = XdrDecoder::new(args);
            let token = d.opaque(args.len()).map_err(|_| Refusal::Garbage)?;
            let plain = ctx.sec.lock().unwrap(token).map_err(|_| Refusal::Garbage)?;
            let inner = split_seq(&plain.message, cred.seq_num).map_err(|_| Refusal::Garbage)?;
            let at = plain.message.len() - inner.len();
            let mut v = plain.message;
            v.drain(..at);
            Ok(GssArgs::Unwrapped(v))
        }
    }
}

fn reject(out: &mut Vec<u8>, xid: u32, stat: u32) {
    ringnfs_proto::rpc::encode_rejected_auth(out, xid, stat);
}

impl GssReply {
    /// The accepted reply's header with the verifier: the checksum of the call's
    /// sequence number (RFC 2203 §5.3.3.2), SUCCESS.
    pub fn header(&self, out: &mut Vec<u8>) -> bool {
        match self.ctx.sec.lock().get_mic(&self.seq.to_be_bytes()) {
            Ok(mic) => {
                ringnfs_proto::rpc::message::encode_accepted_verf(
                    out,
                    self.xid,
                    RPCSEC_GSS,
                    &mic,
                    ringnfs_proto::rpc::AcceptStat::Success,
                );
                true
            }
            Err(e) => {
                tracing::info!("GSS reply verifier: {e}");
                reject(out, self.xid, RPCSEC_GSS_CTXPROBLEM);
                false
            }
        }
    }

    /// Protect the results in `out[body..]` (after the header that starts at `rpc`):
    /// krb5i puts them in rpc_gss_integ_data with the sequence number and a checksum,
    /// krb5p wraps the same. If the context can no longer do it, the reply becomes
    /// AUTH_ERROR / RPCSEC_GSS_CTXPROBLEM (the client makes a new context and retries;
    /// an NFSv4.1 slot has cached the results).
    pub fn seal(&self, out: &mut Vec<u8>, rpc: usize, body: usize) {
        if self.service == GssService::None {
            return;
        }
        let mut data = Vec::with_capacity(4 + out.len() - body);
        data.put_u32(self.seq);
        data.extend_from_slice(&out[body..]);
        let sec = self.ctx.sec.lock();
        let r = match self.service {
            GssService::Integrity => sec.get_mic(&data).map(|mic| {
                out.truncate(body);
                IntegData::encode(&data, &mic, out);
            }),
            _ => sec.wrap(&data, true).map(|token| {
                out.truncate(body);
                out.put_opaque(&token);
            }),
        };
        if let Err(e) = r {
            tracing::info!("GSS reply protection: {e}");
            out.truncate(rpc);
            reject(out, self.xid, RPCSEC_GSS_CTXPROBLEM);
        }
    }

    /// The reply needs more than the verifier (krb5i, krb5p).
    pub fn protects_body(&self) -> bool {
        self.service != GssService::None
    }
}
