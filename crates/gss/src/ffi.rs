//! Every `unsafe` block of the crate: MIT Kerberos's GSS-API (the C binding of RFC 2744,
//! as MIT's `gssapi/gssapi.h` and `gssapi/gssapi_ext.h` declare it for Linux), opened at
//! run time with `dlopen`, and the C library's passwd and group look-ups. Above this
//! module everything is safe: the handles here release what they own when dropped, and
//! each call's failure comes back as a [`GssError`] carrying the library's own words.
//!
//! What the C side requires of us, once for all the calls below:
//! - the declarations match the library's (types and functions copied from MIT's headers
//!   of release 1.20; these parts have not changed since 1.11, and `gss_acquire_cred_from`
//!   is the newest function used);
//! - input buffers point at live Rust memory for the duration of the call only; MIT does
//!   not write through them nor keep them (it copies names, OIDs and tokens);
//! - output buffers are the library's and go back with `gss_release_buffer`, names with
//!   `gss_release_name`, credentials with `gss_release_cred`, contexts with
//!   `gss_delete_sec_context`, each exactly once;
//! - a handle is used by one thread at a time (MIT's contexts and credentials carry
//!   sequence numbers and caches without locks of ours): the handle types are `Send` and
//!   not `Sync`, and whoever shares one puts it behind a lock;
//! - the text of a failure (`gss_display_status`) is read on the thread that failed, right
//!   away: MIT keeps the detailed message of the last minor status per thread.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::Arc;

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};

use crate::GssError;

/// gss_OID_desc. The `#pragma pack(2)` in gssapi.h applies to old Apple targets only.
#[repr(C)]
struct OidDesc {
    length: u32,
    elements: *mut c_void,
}

/// gss_OID_set_desc.
#[repr(C)]
struct OidSetDesc {
    count: usize,
    elements: *mut OidDesc,
}

/// gss_buffer_desc.
#[repr(C)]
struct BufferDesc {
    length: usize,
    value: *mut c_void,
}

impl BufferDesc {
    fn empty() -> BufferDesc {
        BufferDesc {
            length: 0,
            value: ptr::null_mut(),
        }
    }

    /// An input buffer over `bytes`, valid while `bytes` is.
    fn over(bytes: &[u8]) -> BufferDesc {
        BufferDesc {
            length: bytes.len(),
            value: bytes.as_ptr() as *mut c_void,
        }
    }
}

/// gss_key_value_element_desc and gss_key_value_set_desc (gssapi_ext.h): the credential
/// store of `gss_acquire_cred_from` ("keytab", "ccache", ...).
#[repr(C)]
struct KeyValueElement {
    key: *const c_char,
    value: *const c_char,
}

#[repr(C)]
struct KeyValueSet {
    count: u32,
    elements: *const KeyValueElement,
}

/// gss_name_t, gss_cred_id_t, gss_ctx_id_t: pointers to structures the library owns.
type RawName = *mut c_void;
type RawCred = *mut c_void;
type RawCtx = *mut c_void;

type AcquireCredFrom = unsafe extern "C" fn(
    minor: *mut u32,
    desired_name: RawName,
    time_req: u32,
    desired_mechs: *mut OidSetDesc,
    cred_usage: c_int,
    cred_store: *const KeyValueSet,
    output_cred: *mut RawCred,
    actual_mechs: *mut *mut OidSetDesc,
    time_rec: *mut u32,
) -> u32;
type ReleaseCred = unsafe extern "C" fn(minor: *mut u32, cred: *mut RawCred) -> u32;
type InitSecContext = unsafe extern "C" fn(
    minor: *mut u32,
    claimant_cred: RawCred,
    context: *mut RawCtx,
    target_name: RawName,
    mech_type: *mut OidDesc,
    req_flags: u32,
    time_req: u32,
    bindings: *mut c_void,
    input_token: *mut BufferDesc,
    actual_mech: *mut *mut OidDesc,
    output_token: *mut BufferDesc,
    ret_flags: *mut u32,
    time_rec: *mut u32,
) -> u32;
type AcceptSecContext = unsafe extern "C" fn(
    minor: *mut u32,
    context: *mut RawCtx,
    acceptor_cred: RawCred,
    input_token: *mut BufferDesc,
    bindings: *mut c_void,
    src_name: *mut RawName,
    mech_type: *mut *mut OidDesc,
    output_token: *mut BufferDesc,
    ret_flags: *mut u32,
    time_rec: *mut u32,
    delegated_cred: *mut RawCred,
) -> u32;
type DeleteSecContext =
    unsafe extern "C" fn(minor: *mut u32, context: *mut RawCtx, output: *mut BufferDesc) -> u32;
type GetMic = unsafe extern "C" fn(
    minor: *mut u32,
    context: RawCtx,
    qop: u32,
    message: *mut BufferDesc,
    token: *mut BufferDesc,
) -> u32;
type VerifyMic = unsafe extern "C" fn(
    minor: *mut u32,
    context: RawCtx,
    message: *mut BufferDesc,
    token: *mut BufferDesc,
    qop_state: *mut u32,
) -> u32;
type Wrap = unsafe extern "C" fn(
    minor: *mut u32,
    context: RawCtx,
    conf_req: c_int,
    qop: u32,
    input: *mut BufferDesc,
    conf_state: *mut c_int,
    output: *mut BufferDesc,
) -> u32;
type Unwrap = unsafe extern "C" fn(
    minor: *mut u32,
    context: RawCtx,
    input: *mut BufferDesc,
    output: *mut BufferDesc,
    conf_state: *mut c_int,
    qop_state: *mut u32,
) -> u32;
type DisplayStatus = unsafe extern "C" fn(
    minor: *mut u32,
    status: u32,
    status_type: c_int,
    mech_type: *mut OidDesc,
    message_context: *mut u32,
    status_string: *mut BufferDesc,
) -> u32;
type DisplayName = unsafe extern "C" fn(
    minor: *mut u32,
    name: RawName,
    output: *mut BufferDesc,
    name_type: *mut *mut OidDesc,
) -> u32;
type ImportName = unsafe extern "C" fn(
    minor: *mut u32,
    input: *mut BufferDesc,
    name_type: *mut OidDesc,
    output: *mut RawName,
) -> u32;
type ReleaseName = unsafe extern "C" fn(minor: *mut u32, name: *mut RawName) -> u32;
type ReleaseBuffer = unsafe extern "C" fn(minor: *mut u32, buffer: *mut BufferDesc) -> u32;

/// An OID that lives as long as the program.
struct StaticOid(OidDesc);

// SAFETY: the descriptor points at a `static` byte string and nothing ever writes through
// it (MIT's functions take `gss_OID` without `const` for history's sake and only read).
unsafe impl Sync for StaticOid {}

/// The Kerberos V5 mechanism, 1.2.840.113554.1.2.2 (RFC 1964).
static KRB5_MECH: StaticOid = StaticOid(OidDesc {
    length: 9,
    elements: b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02".as_ptr() as *mut c_void,
});
/// GSS_C_NT_HOSTBASED_SERVICE, 1.2.840.113554.1.2.1.4 (RFC 2743 §4.1): "service@host".
static NT_HOSTBASED_SERVICE: StaticOid = StaticOid(OidDesc {
    length: 10,
    elements: b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x04".as_ptr() as *mut c_void,
});

impl StaticOid {
    fn ptr(&'static self) -> *mut OidDesc {
        &self.0 as *const OidDesc as *mut OidDesc
    }
}

/// GSS_C_GSS_CODE and GSS_C_MECH_CODE.
const GSS_CODE: c_int = 1;
const MECH_CODE: c_int = 2;
/// GSS_C_INITIATE, GSS_C_ACCEPT.
#[derive(Clone, Copy)]
pub(crate) enum Usage {
    Initiate = 1,
    Accept = 2,
}

/// GSS_ERROR(): a calling or routine error; the low 16 bits are supplementary information.
pub(crate) fn is_error(major: u32) -> bool {
    major & 0xffff_0000 != 0
}

/// The library's entry points. `Arc`-shared by every handle made through it.
pub(crate) struct Lib {
    name: String,
    // Kept so the library stays open; RTLD_NODELETE keeps it mapped even after.
    _library: Library,
    acquire_cred_from: AcquireCredFrom,
    release_cred: ReleaseCred,
    init_sec_context: InitSecContext,
    accept_sec_context: AcceptSecContext,
    delete_sec_context: DeleteSecContext,
    get_mic: GetMic,
    verify_mic: VerifyMic,
    wrap: Wrap,
    unwrap: Unwrap,
    display_status: DisplayStatus,
    display_name: DisplayName,
    import_name: ImportName,
    release_name: ReleaseName,
    release_buffer: ReleaseBuffer,
}

/// libloading's error with its cause (its own text is only "dlopen failed").
fn dl_reason(e: &libloading::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => cause.to_string(),
        None => e.to_string(),
    }
}

impl Lib {
    pub(crate) fn open(name: &str) -> Result<Arc<Lib>, GssError> {
        // SAFETY: dlopen runs the library's initialisers. MIT's libgssapi_krb5 and the
        // krb5 libraries it pulls in only set up their own state (mutexes, error tables,
        // the mechanism list); they start no threads and touch nothing of ours.
        // RTLD_NODELETE keeps the library mapped for the rest of the process, so no
        // finaliser runs under a function pointer taken below, and MIT's thread-specific
        // data destructors stay valid for threads that outlive this `Lib`.
        let library =
            unsafe { Library::open(Some(name), RTLD_NOW | RTLD_LOCAL | libc::RTLD_NODELETE) }
                .map_err(|e| GssError::Load {
                    library: name.to_string(),
                    reason: dl_reason(&e),
                })?;
        macro_rules! sym {
            ($symbol:literal) => {
                // SAFETY: the type given for each symbol is its C prototype in MIT's
                // gssapi.h or gssapi_ext.h (written out as the type aliases above), and
                // the function pointer stays valid because the library is never unloaded.
                *unsafe { library.get(concat!($symbol, "\0").as_bytes()) }.map_err(|e| {
                    GssError::Symbol {
                        library: name.to_string(),
                        symbol: $symbol,
                        reason: dl_reason(&e),
                    }
                })?
            };
        }
        Ok(Arc::new(Lib {
            name: name.to_string(),
            acquire_cred_from: sym!("gss_acquire_cred_from"),
            release_cred: sym!("gss_release_cred"),
            init_sec_context: sym!("gss_init_sec_context"),
            accept_sec_context: sym!("gss_accept_sec_context"),
            delete_sec_context: sym!("gss_delete_sec_context"),
            get_mic: sym!("gss_get_mic"),
            verify_mic: sym!("gss_verify_mic"),
            wrap: sym!("gss_wrap"),
            unwrap: sym!("gss_unwrap"),
            display_status: sym!("gss_display_status"),
            display_name: sym!("gss_display_name"),
            import_name: sym!("gss_import_name"),
            release_name: sym!("gss_release_name"),
            release_buffer: sym!("gss_release_buffer"),
            _library: library,
        }))
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The bytes of an output buffer, which goes back to the library.
    fn take(&self, buf: &mut BufferDesc) -> Vec<u8> {
        let bytes = if buf.value.is_null() || buf.length == 0 {
            Vec::new()
        } else {
            // SAFETY: the library filled `buf` as an output buffer: `length` readable
            // bytes at `value`, valid until the gss_release_buffer below.
            unsafe { std::slice::from_raw_parts(buf.value as *const u8, buf.length) }.to_vec()
        };
        let mut minor = 0;
        // SAFETY: `buf` is the library's output buffer (or empty, which it ignores),
        // released once here; the call resets it to empty.
        unsafe { (self.release_buffer)(&mut minor, buf) };
        bytes
    }

    /// All the messages gss_display_status has for one status value.
    fn status_text(&self, value: u32, kind: c_int) -> String {
        let mut parts = Vec::new();
        let mut message_context = 0u32;
        loop {
            let mut minor = 0;
            let mut buf = BufferDesc::empty();
            // SAFETY: plain values in, an output buffer and the message context out;
            // GSS_C_NO_OID selects the mechanism that produced the (mapped) minor code.
            let major = unsafe {
                (self.display_status)(
                    &mut minor,
                    value,
                    kind,
                    ptr::null_mut(),
                    &mut message_context,
                    &mut buf,
                )
            };
            if is_error(major) {
                break;
            }
            let text = self.take(&mut buf);
            let text = String::from_utf8_lossy(&text);
            let text = text.trim();
            if !text.is_empty() {
                parts.push(text.to_string());
            }
            // Bounded: a library that never clears the message context must not hang us.
            if message_context == 0 || parts.len() >= 8 {
                break;
            }
        }
        parts.join("; ")
    }

    /// The failure of `call`, in the library's words for both status codes.
    fn error(&self, call: &'static str, major: u32, minor: u32) -> GssError {
        let mut message = self.status_text(major, GSS_CODE);
        if minor != 0 {
            let detail = self.status_text(minor, MECH_CODE);
            if !detail.is_empty() {
                message = if message.is_empty() {
                    detail
                } else {
                    format!("{message}: {detail}")
                };
            }
        }
        if message.is_empty() {
            message = "the library gave no description".to_string();
        }
        GssError::Status {
            call,
            major,
            minor,
            message,
        }
    }

    /// Kerberos credentials (only the krb5 mechanism) for initiating or accepting, from
    /// the given credential store (MIT's keys: "keytab", "ccache", "client_keytab",
    /// "rcache"), or the defaults when it is empty.
    pub(crate) fn acquire_cred(
        self: &Arc<Lib>,
        usage: Usage,
        store: &[(&CStr, &CStr)],
    ) -> Result<CredHandle, GssError> {
        let elements: Vec<KeyValueElement> = store
            .iter()
            .map(|(key, value)| KeyValueElement {
                key: key.as_ptr(),
                value: value.as_ptr(),
            })
            .collect();
        let set = KeyValueSet {
            count: elements.len() as u32,
            elements: elements.as_ptr(),
        };
        let store_ptr: *const KeyValueSet = if store.is_empty() { ptr::null() } else { &set };
        let mut mechs = OidSetDesc {
            count: 1,
            elements: KRB5_MECH.ptr(),
        };
        let mut minor = 0;
        let mut cred: RawCred = ptr::null_mut();
        // SAFETY: GSS_C_NO_NAME (any principal the store has), a one-element mechanism
        // set and a credential store that point at memory living across the call (the
        // C strings are the caller's, `elements` and `set` are locals); the credential
        // comes back in `cred`, owned by the handle made below. No actual_mechs or
        // time_rec wanted.
        let major = unsafe {
            (self.acquire_cred_from)(
                &mut minor,
                ptr::null_mut(),
                0,
                &mut mechs,
                usage as c_int,
                store_ptr,
                &mut cred,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if is_error(major) {
            return Err(self.error("gss_acquire_cred_from", major, minor));
        }
        Ok(CredHandle {
            lib: self.clone(),
            raw: cred,
        })
    }

    /// A host-based service name, "service@host".
    pub(crate) fn import_hostbased(self: &Arc<Lib>, service: &str) -> Result<NameHandle, GssError> {
        let mut input = BufferDesc::over(service.as_bytes());
        let mut minor = 0;
        let mut name: RawName = ptr::null_mut();
        // SAFETY: the input buffer covers `service`, alive across the call (MIT copies
        // it); the name type is a static OID; the new name is owned by the handle below.
        let major = unsafe {
            (self.import_name)(
                &mut minor,
                &mut input,
                NT_HOSTBASED_SERVICE.ptr(),
                &mut name,
            )
        };
        if is_error(major) {
            return Err(self.error("gss_import_name", major, minor));
        }
        Ok(NameHandle {
            lib: self.clone(),
            raw: name,
        })
    }

    /// The text form of a name the library gave us ("alice@RINGNFS.TEST").
    fn display_name(&self, name: RawName) -> Result<String, GssError> {
        let mut minor = 0;
        let mut buf = BufferDesc::empty();
        // SAFETY: `name` is a live name from the library; the output buffer is released
        // by `take`; no name type wanted.
        let major = unsafe { (self.display_name)(&mut minor, name, &mut buf, ptr::null_mut()) };
        if is_error(major) {
            return Err(self.error("gss_display_name", major, minor));
        }
        Ok(String::from_utf8_lossy(&self.take(&mut buf)).into_owned())
    }

    fn release_name(&self, name: &mut RawName) {
        if !name.is_null() {
            let mut minor = 0;
            // SAFETY: a name the library gave us, released once; the call nulls it.
            unsafe { (self.release_name)(&mut minor, name) };
            *name = ptr::null_mut();
        }
    }
}

/// Credentials (gss_cred_id_t), released on drop.
pub(crate) struct CredHandle {
    lib: Arc<Lib>,
    raw: RawCred,
}

// SAFETY: MIT's credential is heap memory with no tie to the thread that acquired it;
// moving it to another thread is fine. It is not `Sync`: whoever shares one locks it.
unsafe impl Send for CredHandle {}

impl Drop for CredHandle {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            let mut minor = 0;
            // SAFETY: a credential the library gave us, released once.
            unsafe { (self.lib.release_cred)(&mut minor, &mut self.raw) };
        }
    }
}

/// A name (gss_name_t), released on drop.
pub(crate) struct NameHandle {
    lib: Arc<Lib>,
    raw: RawName,
}

// SAFETY: as for credentials: heap memory, used by one thread at a time (not `Sync`).
unsafe impl Send for NameHandle {}

impl Drop for NameHandle {
    fn drop(&mut self) {
        self.lib.release_name(&mut self.raw);
    }
}

/// What one step of context establishment gave.
pub(crate) struct Progress {
    /// GSS_S_COMPLETE rather than GSS_S_CONTINUE_NEEDED.
    pub(crate) complete: bool,
    /// The token for the peer (empty: none).
    pub(crate) token: Vec<u8>,
    /// The initiator's principal (acceptor side, once complete).
    pub(crate) source: Option<String>,
    /// Seconds the context will be valid, once complete (time_rec; u32::MAX: forever).
    pub(crate) lifetime: u32,
}

/// A security context (gss_ctx_id_t), being established or established; deleted on drop.
pub(crate) struct CtxHandle {
    lib: Arc<Lib>,
    raw: RawCtx,
}

// SAFETY: an MIT security context is heap memory (keys, sequence numbers, its own
// krb5_context) with no tie to the thread that made it, so it may move between threads.
// Its calls change it (sequence numbers), so it is not `Sync`; the methods that change it
// in Rust's terms take `&mut self`, and per-message calls on `&self` cannot overlap
// because the handle is not shared between threads.
unsafe impl Send for CtxHandle {}

impl CtxHandle {
    pub(crate) fn new(lib: &Arc<Lib>) -> CtxHandle {
        CtxHandle {
            lib: lib.clone(),
            raw: ptr::null_mut(),
        }
    }

    /// One gss_init_sec_context step: `input` is None on the first call.
    pub(crate) fn init_step(
        &mut self,
        cred: Option<&CredHandle>,
        target: &NameHandle,
        flags: u32,
        input: Option<&[u8]>,
    ) -> Result<Progress, GssError> {
        let lib = &*self.lib;
        let mut input_buf = input.map(BufferDesc::over);
        let input_ptr = input_buf
            .as_mut()
            .map_or(ptr::null_mut(), |b| b as *mut BufferDesc);
        let cred = cred.map_or(ptr::null_mut(), |c| c.raw);
        let mut out = BufferDesc::empty();
        let mut lifetime = 0;
        let mut minor = 0;
        // SAFETY: the context handle is ours (GSS_C_NO_CONTEXT at first, then what the
        // library put there); credential (or GSS_C_NO_CREDENTIAL, the default ccache) and
        // target name are live handles; the mechanism is a static OID; the input buffer,
        // if any, covers the caller's slice for the call; no channel bindings; the output
        // token is released by `take`, the lifetime is a local; no actual mechanism or
        // flags wanted.
        let major = unsafe {
            (lib.init_sec_context)(
                &mut minor,
                cred,
                &mut self.raw,
                target.raw,
                KRB5_MECH.ptr(),
                flags,
                0,
                ptr::null_mut(),
                input_ptr,
                ptr::null_mut(),
                &mut out,
                ptr::null_mut(),
                &mut lifetime,
            )
        };
        // The failure's text first: MIT keeps the detail only until the next call.
        let failure = is_error(major).then(|| lib.error("gss_init_sec_context", major, minor));
        let token = lib.take(&mut out);
        if let Some(failure) = failure {
            return Err(failure);
        }
        Ok(Progress {
            complete: major & 1 == 0, // GSS_S_CONTINUE_NEEDED is bit 0
            token,
            source: None,
            lifetime,
        })
    }

    /// One gss_accept_sec_context step. On failure, the token the library made for the
    /// peer (a KRB-ERROR), if any, comes with the error.
    pub(crate) fn accept_step(
        &mut self,
        cred: &CredHandle,
        input: &[u8],
    ) -> Result<Progress, (GssError, Vec<u8>)> {
        let lib = &*self.lib;
        let mut input_buf = BufferDesc::over(input);
        let mut out = BufferDesc::empty();
        let mut src: RawName = ptr::null_mut();
        let mut lifetime = 0;
        let mut minor = 0;
        // SAFETY: the context handle is ours (GSS_C_NO_CONTEXT at first); the credential
        // is live; the input buffer covers the caller's slice for the call; no channel
        // bindings; the source name and output token come back ours (released below and
        // by `take`), the lifetime into a local; no mechanism, flags or delegated
        // credential wanted.
        let major = unsafe {
            (lib.accept_sec_context)(
                &mut minor,
                &mut self.raw,
                cred.raw,
                &mut input_buf,
                ptr::null_mut(),
                &mut src,
                ptr::null_mut(),
                &mut out,
                ptr::null_mut(),
                &mut lifetime,
                ptr::null_mut(),
            )
        };
        // The failure's text first: MIT keeps the detail only until the next call.
        let failure = is_error(major).then(|| lib.error("gss_accept_sec_context", major, minor));
        let token = lib.take(&mut out);
        let complete = major & 1 == 0;
        let source = if failure.is_none() && complete && !src.is_null() {
            Some(lib.display_name(src))
        } else {
            None
        };
        lib.release_name(&mut src);
        if let Some(failure) = failure {
            return Err((failure, token));
        }
        Ok(Progress {
            complete,
            token,
            source: source.transpose().map_err(|e| (e, Vec::new()))?,
            lifetime,
        })
    }

    /// GSS_S_CONTEXT_EXPIRED for `call`, in the library's words; for the caller that
    /// keeps the context's end (MIT's per-message calls do not check it).
    pub(crate) fn expired(&self, call: &'static str) -> GssError {
        self.lib.error(call, crate::status::CONTEXT_EXPIRED, 0)
    }

    pub(crate) fn get_mic(&self, message: &[u8]) -> Result<Vec<u8>, GssError> {
        let lib = &*self.lib;
        let mut msg = BufferDesc::over(message);
        let mut out = BufferDesc::empty();
        let mut minor = 0;
        // SAFETY: an established context (see the type), the default QOP, an input
        // buffer over the caller's slice, an output token released by `take`.
        let major = unsafe { (lib.get_mic)(&mut minor, self.raw, 0, &mut msg, &mut out) };
        let token = lib.take(&mut out);
        if is_error(major) {
            return Err(lib.error("gss_get_mic", major, minor));
        }
        Ok(token)
    }

    pub(crate) fn verify_mic(&self, message: &[u8], token: &[u8]) -> Result<(), GssError> {
        let lib = &*self.lib;
        let mut msg = BufferDesc::over(message);
        let mut tok = BufferDesc::over(token);
        let mut minor = 0;
        let mut qop = 0;
        // SAFETY: an established context, input buffers over the caller's slices, a
        // local for the QOP.
        let major = unsafe { (lib.verify_mic)(&mut minor, self.raw, &mut msg, &mut tok, &mut qop) };
        if is_error(major) {
            return Err(lib.error("gss_verify_mic", major, minor));
        }
        Ok(())
    }

    pub(crate) fn wrap(&self, message: &[u8], confidential: bool) -> Result<Vec<u8>, GssError> {
        let lib = &*self.lib;
        let mut msg = BufferDesc::over(message);
        let mut out = BufferDesc::empty();
        let mut conf_state: c_int = 0;
        let mut minor = 0;
        // SAFETY: an established context, the default QOP, an input buffer over the
        // caller's slice, a local for the confidentiality state, an output token released
        // by `take`.
        let major = unsafe {
            (lib.wrap)(
                &mut minor,
                self.raw,
                c_int::from(confidential),
                0,
                &mut msg,
                &mut conf_state,
                &mut out,
            )
        };
        let token = lib.take(&mut out);
        if is_error(major) {
            return Err(lib.error("gss_wrap", major, minor));
        }
        if confidential && conf_state == 0 {
            return Err(GssError::Usage(
                "gss_wrap did not encrypt the message: the context offers no confidentiality"
                    .to_string(),
            ));
        }
        Ok(token)
    }

    /// The message and whether it was encrypted.
    pub(crate) fn unwrap(&self, token: &[u8]) -> Result<(Vec<u8>, bool), GssError> {
        let lib = &*self.lib;
        let mut tok = BufferDesc::over(token);
        let mut out = BufferDesc::empty();
        let mut conf_state: c_int = 0;
        let mut qop = 0;
        let mut minor = 0;
        // SAFETY: an established context, an input buffer over the caller's slice, an
        // output buffer released by `take`, locals for the states.
        let major = unsafe {
            (lib.unwrap)(
                &mut minor,
                self.raw,
                &mut tok,
                &mut out,
                &mut conf_state,
                &mut qop,
            )
        };
        let message = lib.take(&mut out);
        if is_error(major) {
            return Err(lib.error("gss_unwrap", major, minor));
        }
        Ok((message, conf_state != 0))
    }
}

impl Drop for CtxHandle {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            let mut minor = 0;
            // SAFETY: a context the library gave us (perhaps half established), deleted
            // once; no output token wanted (GSS_C_NO_BUFFER).
            unsafe { (self.lib.delete_sec_context)(&mut minor, &mut self.raw, ptr::null_mut()) };
        }
    }
}

/// The uid and gid of the local user `name` (getpwnam_r), or None when there is no such
/// user or the look-up failed.
pub(crate) fn passwd_ids(name: &CStr) -> Option<(u32, u32)> {
    let mut buf: Vec<c_char> = vec![0; 1024];
    loop {
        let mut pwd = MaybeUninit::<libc::passwd>::uninit();
        let mut result: *mut libc::passwd = ptr::null_mut();
        // SAFETY: `name` is NUL-terminated; `pwd`, `buf` (with its true length) and
        // `result` are ours and live across the call, which writes only into them.
        let rc = unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                pwd.as_mut_ptr(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || result.is_null() {
            return None;
        }
        // SAFETY: success with a non-null result means `pwd` was filled in (its string
        // fields point into `buf`, which we do not read).
        let pwd = unsafe { pwd.assume_init() };
        return Some((pwd.pw_uid, pwd.pw_gid));
    }
}

/// The groups of user `name` whose primary group is `gid` (getgrouplist: `gid` and every
/// group of the group database that lists the user).
pub(crate) fn group_list(name: &CStr, gid: u32) -> Vec<u32> {
    let mut room: c_int = 32;
    loop {
        let mut groups: Vec<libc::gid_t> = vec![0; room as usize];
        let mut count = room;
        // SAFETY: `name` is NUL-terminated; `groups` has room for `count` entries, and
        // the call writes at most that many, then the number it found into `count`.
        let rc = unsafe { libc::getgrouplist(name.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        if rc >= 0 {
            groups.truncate(count.max(0) as usize);
            return groups;
        }
        if room >= 65536 {
            return vec![gid];
        }
        // glibc says how many there are; others may not.
        room = if count > room { count } else { room * 2 };
    }
}
