//! Kerberos V5 for RPCSEC_GSS (RFC 2203): establishing security contexts (the server's
//! acceptor, the client's initiator), the per-message checksums and wrapping of krb5i and
//! krb5p, and the mapping of a Kerberos principal to a local user.
//!
//! The mechanism is MIT Kerberos's GSS-API, `libgssapi_krb5.so.2` (Debian package
//! `libgssapi-krb5-2`, installed by default), opened at run time: building needs no
//! Kerberos headers and no libclang, and a server without Kerberos configured never
//! loads it. The RPCSEC_GSS wire types and the sequence window are in
//! `ringnfs_proto::rpc::gss`; this crate knows nothing of RPC.
//!
//! MIT reads its configuration (`KRB5_CONFIG`, default `/etc/krb5.conf`), the default
//! keytab (`KRB5_KTNAME`) and credentials cache (`KRB5CCNAME`) from the environment of
//! the process; set them before the first call, not while other threads run.

mod ffi;
mod idmap;

use std::ffi::CString;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use idmap::{Identity, map_principal};

/// The file name `Gss::load` opens.
pub const LIBRARY: &str = "libgssapi_krb5.so.2";
/// The Debian package that has it.
pub const DEBIAN_PACKAGE: &str = "libgssapi-krb5-2";

/// GSS major status values (RFC 2744 §3.9.1): the routine-error field of
/// [`GssError::major`] (`major & ROUTINE_ERROR_MASK`), for the caller that must tell an
/// expired context (RPCSEC_GSS_CTXPROBLEM) from a bad checksum.
pub mod status {
    pub const ROUTINE_ERROR_MASK: u32 = 0x00ff_0000;
    pub const COMPLETE: u32 = 0;
    pub const CONTINUE_NEEDED: u32 = 1;
    pub const BAD_MECH: u32 = 1 << 16;
    pub const BAD_NAME: u32 = 2 << 16;
    pub const BAD_SIG: u32 = 6 << 16;
    pub const NO_CRED: u32 = 7 << 16;
    pub const NO_CONTEXT: u32 = 8 << 16;
    pub const DEFECTIVE_TOKEN: u32 = 9 << 16;
    pub const DEFECTIVE_CREDENTIAL: u32 = 10 << 16;
    pub const CREDENTIALS_EXPIRED: u32 = 11 << 16;
    pub const CONTEXT_EXPIRED: u32 = 12 << 16;
    pub const FAILURE: u32 = 13 << 16;
}

/// What went wrong, in words a person can act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GssError {
    /// The library could not be opened.
    #[error(
        "cannot load the Kerberos GSS-API library {library}: {reason} (MIT Kerberos's is \
         {LIBRARY}, in the Debian package {DEBIAN_PACKAGE}: apt-get install {DEBIAN_PACKAGE})"
    )]
    Load { library: String, reason: String },
    /// The library lacks a function (not MIT Kerberos, or older than 1.11).
    #[error(
        "the GSS-API library {library} has no function {symbol} ({reason}); ringnfs needs \
         MIT Kerberos 1.11 or later ({LIBRARY}, Debian package {DEBIAN_PACKAGE})"
    )]
    Symbol {
        library: String,
        symbol: &'static str,
        reason: String,
    },
    /// A GSS-API call failed: the library's text for its major and minor status.
    #[error("{call}: {message} (GSS major status 0x{major:08x}, minor status {minor})")]
    Status {
        call: &'static str,
        major: u32,
        minor: u32,
        message: String,
    },
    /// A wrong use of this crate (a name with a NUL byte, a step after completion).
    #[error("{0}")]
    Usage(String),
}

impl GssError {
    /// The GSS major status, for a failed call.
    pub fn major(&self) -> Option<u32> {
        match self {
            GssError::Status { major, .. } => Some(*major),
            _ => None,
        }
    }

    /// The mechanism's minor status, for a failed call.
    pub fn minor(&self) -> Option<u32> {
        match self {
            GssError::Status { minor, .. } => Some(*minor),
            _ => None,
        }
    }

    /// The routine error of a failed call (one of the [`status`] values).
    pub fn routine_error(&self) -> Option<u32> {
        self.major().map(|m| m & status::ROUTINE_ERROR_MASK)
    }
}

/// MIT Kerberos's GSS-API, opened. Shared by everything made through it.
pub struct Gss {
    lib: Arc<ffi::Lib>,
}

impl std::fmt::Debug for Gss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gss")
            .field("library", &self.lib.name())
            .finish()
    }
}

impl Gss {
    /// Opens [`LIBRARY`] once per process; later calls return the same (or the same error).
    pub fn load() -> Result<Arc<Gss>, GssError> {
        static LOADED: OnceLock<Result<Arc<Gss>, GssError>> = OnceLock::new();
        LOADED.get_or_init(|| Gss::load_from(LIBRARY)).clone()
    }

    /// Opens the GSS-API library `name` (a file name the dynamic linker looks up, or a
    /// path), uncached.
    pub fn load_from(name: &str) -> Result<Arc<Gss>, GssError> {
        Ok(Arc::new(Gss {
            lib: ffi::Lib::open(name)?,
        }))
    }
}

fn c_string(what: &str, s: &str) -> Result<CString, GssError> {
    CString::new(s).map_err(|_| GssError::Usage(format!("{what} {s:?} contains a NUL byte")))
}

/// The server's side: credentials for every service principal of a keytab.
pub struct Acceptor {
    // The credential is used by one establishment at a time (MIT's is not ours to share
    // unlocked); establishing is rare next to the per-message calls, which do not lock.
    cred: Mutex<ffi::CredHandle>,
    lib: Arc<ffi::Lib>,
}

/// A context being established by an [`Acceptor`]: what is left between RPCSEC_GSS's
/// INIT and CONTINUE_INIT calls. Dropping it deletes the half-made context.
pub struct AcceptState {
    ctx: Option<ffi::CtxHandle>,
}

impl AcceptState {
    pub fn new() -> AcceptState {
        AcceptState { ctx: None }
    }
}

impl Default for AcceptState {
    fn default() -> AcceptState {
        AcceptState::new()
    }
}

/// The outcome of one acceptor step.
#[derive(Debug)]
pub enum AcceptStep {
    /// Send `token` to the client and wait for its next one (CONTINUE_INIT).
    Continue { token: Vec<u8> },
    /// Established. `token`, if any, goes to the client (Kerberos's mutual-authentication
    /// reply); `initiator` is the client's principal, `alice@RINGNFS.TEST`.
    Complete {
        context: SecContext,
        token: Option<Vec<u8>>,
        initiator: String,
    },
}

/// An acceptor step that failed, with the token the mechanism made for the client (a
/// Kerberos KRB-ERROR), which RPCSEC_GSS returns in `gss_token` beside the statuses.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error}")]
pub struct AcceptError {
    pub error: GssError,
    pub token: Option<Vec<u8>>,
}

impl From<AcceptError> for GssError {
    fn from(e: AcceptError) -> GssError {
        e.error
    }
}

fn non_empty(token: Vec<u8>) -> Option<Vec<u8>> {
    (!token.is_empty()).then_some(token)
}

impl Acceptor {
    /// Acceptor credentials for any service principal in `keytab` (GSS_C_NO_NAME: a
    /// client may ask for `nfs/<host>@REALM` under any of the host's names the keytab
    /// holds), or in the default keytab (`KRB5_KTNAME`, else `/etc/krb5.keytab`) when
    /// None. Fails when the keytab is missing or empty.
    pub fn new(gss: &Gss, keytab: Option<&Path>) -> Result<Acceptor, GssError> {
        let key = c"keytab";
        let path = match keytab {
            Some(p) => Some(c_string(
                "the keytab path",
                p.to_str().ok_or_else(|| {
                    GssError::Usage(format!("the keytab path {} is not UTF-8", p.display()))
                })?,
            )?),
            None => None,
        };
        let store: Vec<(&std::ffi::CStr, &std::ffi::CStr)> =
            path.iter().map(|p| (key, p.as_c_str())).collect();
        let cred = gss.lib.acquire_cred(ffi::Usage::Accept, &store)?;
        Ok(Acceptor {
            cred: Mutex::new(cred),
            lib: gss.lib.clone(),
        })
    }

    /// Feeds one token from the client (INIT, then CONTINUE_INIT's) into `state`.
    pub fn step(&self, state: &mut AcceptState, token: &[u8]) -> Result<AcceptStep, AcceptError> {
        let ctx = state
            .ctx
            .get_or_insert_with(|| ffi::CtxHandle::new(&self.lib));
        let progress = {
            let cred = self.cred.lock().unwrap_or_else(|p| p.into_inner());
            ctx.accept_step(&cred, token)
        };
        let progress = match progress {
            Ok(p) => p,
            Err((error, token)) => {
                state.ctx = None;
                return Err(AcceptError {
                    error,
                    token: non_empty(token),
                });
            }
        };
        if !progress.complete {
            return Ok(AcceptStep::Continue {
                token: progress.token,
            });
        }
        let ctx = state.ctx.take().expect("made above");
        let initiator = progress.source.ok_or_else(|| AcceptError {
            error: GssError::Usage(
                "gss_accept_sec_context completed without naming the initiator".to_string(),
            ),
            token: None,
        })?;
        Ok(AcceptStep::Complete {
            context: SecContext::new(ctx, progress.lifetime),
            token: non_empty(progress.token),
            initiator,
        })
    }
}

/// GSS_C_MUTUAL_FLAG | GSS_C_CONF_FLAG | GSS_C_INTEG_FLAG. Not GSS_C_REPLAY_FLAG nor
/// GSS_C_SEQUENCE_FLAG: RPCSEC_GSS keeps its own sequence window (RFC 2203 §5.3.3.1),
/// and the mechanism's would reject a retransmitted call's checksum.
const INIT_FLAGS: u32 = 2 | 16 | 32;

/// The client's side: establishes a context with one service.
pub struct Initiator {
    cred: Option<ffi::CredHandle>,
    target: ffi::NameHandle,
    ctx: Option<ffi::CtxHandle>,
    done: bool,
    lib: Arc<ffi::Lib>,
}

/// The outcome of one initiator step.
#[derive(Debug)]
pub enum InitStep {
    /// Send `token` to the server (INIT, or CONTINUE_INIT) and feed its reply token in.
    Continue { token: Vec<u8> },
    /// Established; `token`, if any, still goes to the server.
    Complete {
        context: SecContext,
        token: Option<Vec<u8>>,
    },
}

impl Initiator {
    /// For the host-based service `target_service` ("nfs@server.example.com"), with the
    /// default credentials cache (`KRB5CCNAME`).
    pub fn new(gss: &Gss, target_service: &str) -> Result<Initiator, GssError> {
        Initiator::make(gss, target_service, None)
    }

    /// As [`Initiator::new`], with the tickets of the credentials cache `ccache`
    /// ("FILE:/tmp/krb5cc_1000", or any type MIT knows).
    pub fn with_ccache(
        gss: &Gss,
        target_service: &str,
        ccache: &str,
    ) -> Result<Initiator, GssError> {
        Initiator::make(gss, target_service, Some(ccache))
    }

    fn make(gss: &Gss, target: &str, ccache: Option<&str>) -> Result<Initiator, GssError> {
        c_string("the service name", target)?;
        let target = gss.lib.import_hostbased(target)?;
        let cred = match ccache {
            Some(cc) => {
                let cc = c_string("the credentials cache", cc)?;
                Some(
                    gss.lib
                        .acquire_cred(ffi::Usage::Initiate, &[(c"ccache", cc.as_c_str())])?,
                )
            }
            None => None,
        };
        Ok(Initiator {
            cred,
            target,
            ctx: None,
            done: false,
            lib: gss.lib.clone(),
        })
    }

    /// The first call takes None and gives the INIT token; later ones take the server's
    /// reply token.
    pub fn step(&mut self, input: Option<&[u8]>) -> Result<InitStep, GssError> {
        if self.done {
            return Err(GssError::Usage(
                "the initiator's context is already established (or failed)".to_string(),
            ));
        }
        let ctx = self
            .ctx
            .get_or_insert_with(|| ffi::CtxHandle::new(&self.lib));
        let progress = ctx.init_step(self.cred.as_ref(), &self.target, INIT_FLAGS, input);
        let progress = match progress {
            Ok(p) => p,
            Err(e) => {
                self.done = true;
                self.ctx = None;
                return Err(e);
            }
        };
        if !progress.complete {
            return Ok(InitStep::Continue {
                token: progress.token,
            });
        }
        self.done = true;
        Ok(InitStep::Complete {
            context: SecContext::new(self.ctx.take().expect("made above"), progress.lifetime),
            token: non_empty(progress.token),
        })
    }
}

/// An unwrapped message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwrapped {
    pub message: Vec<u8>,
    /// The message was encrypted (krb5p), not only checksummed.
    pub confidential: bool,
}

/// An established security context. Deleted on drop. `Send`, not `Sync`: one thread at
/// a time (each call moves its sequence numbers).
///
/// It ends with the Kerberos ticket it was made with (on the acceptor's side, plus the
/// clock skew Kerberos allows). MIT's per-message calls do not check that, so this does:
/// after the end, every call fails with GSS_S_CONTEXT_EXPIRED (RPCSEC_GSS's
/// RPCSEC_GSS_CTXPROBLEM, after which the client makes a new context).
pub struct SecContext {
    ctx: ffi::CtxHandle,
    /// None: no end (GSS_C_INDEFINITE).
    ends: Option<Instant>,
}

impl std::fmt::Debug for SecContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecContext")
            .field("lifetime", &self.lifetime())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AcceptState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceptState")
            .field("started", &self.ctx.is_some())
            .finish()
    }
}

impl std::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initiator")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl SecContext {
    fn new(ctx: ffi::CtxHandle, lifetime_secs: u32) -> SecContext {
        SecContext {
            ctx,
            ends: (lifetime_secs != u32::MAX)
                .then(|| Instant::now() + Duration::from_secs(lifetime_secs.into())),
        }
    }

    fn live(&self, call: &'static str) -> Result<(), GssError> {
        match self.ends {
            Some(end) if Instant::now() >= end => Err(self.ctx.expired(call)),
            _ => Ok(()),
        }
    }

    /// A checksum (MIC) over `message` (RPCSEC_GSS: a reply's verifier, krb5i bodies).
    pub fn get_mic(&self, message: &[u8]) -> Result<Vec<u8>, GssError> {
        self.live("gss_get_mic")?;
        self.ctx.get_mic(message)
    }

    /// Checks the peer's `token` over `message`: a changed message or token, or a token
    /// of another context, fail (GSS_S_BAD_SIG).
    pub fn verify_mic(&self, message: &[u8], token: &[u8]) -> Result<(), GssError> {
        self.live("gss_verify_mic")?;
        self.ctx.verify_mic(message, token)
    }

    /// `message` checksummed and, when `confidential`, encrypted (krb5p).
    pub fn wrap(&self, message: &[u8], confidential: bool) -> Result<Vec<u8>, GssError> {
        self.live("gss_wrap")?;
        self.ctx.wrap(message, confidential)
    }

    /// The message inside the peer's wrap token; fails on a changed token.
    pub fn unwrap(&self, token: &[u8]) -> Result<Unwrapped, GssError> {
        self.live("gss_unwrap")?;
        let (message, confidential) = self.ctx.unwrap(token)?;
        Ok(Unwrapped {
            message,
            confidential,
        })
    }

    /// How long the context stays valid: zero once expired, `Duration::MAX` for never.
    pub fn lifetime(&self) -> Duration {
        match self.ends {
            Some(end) => end.saturating_duration_since(Instant::now()),
            None => Duration::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_named_with_its_package() {
        let err = Gss::load_from("libgssapi_nonexistent.so.9").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, GssError::Load { .. }), "{err:?}");
        assert!(text.contains("libgssapi_nonexistent.so.9"), "{text}");
        assert!(text.contains("No such file"), "{text}");
        assert!(text.contains(LIBRARY), "{text}");
        assert!(text.contains("libgssapi-krb5-2"), "{text}");
    }

    #[test]
    fn a_library_without_the_functions_is_named() {
        // The C library is always there and has none of the GSS-API.
        let err = Gss::load_from("libc.so.6").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, GssError::Symbol { .. }), "{err:?}");
        assert!(text.contains("gss_acquire_cred_from"), "{text}");
        assert!(text.contains("MIT Kerberos 1.11"), "{text}");
    }

    #[test]
    fn send_and_sync_as_documented() {
        fn send<T: Send>() {}
        fn sync<T: Sync>() {}
        send::<SecContext>();
        send::<Initiator>();
        send::<AcceptState>();
        send::<Acceptor>();
        sync::<Acceptor>();
        sync::<Gss>();
    }
}
