//! Counters of the RPCSEC_GSS layer (Kerberos): kept here with the server's other
//! counters so the control plane can show them; written by the engine's GSS layer from
//! every core (plain relaxed atomics: contexts are made rarely, calls refused rarely).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct GssStats {
    /// Contexts established (INIT completed).
    pub contexts_made: AtomicU64,
    /// Context establishments refused (a bad token, an unknown service principal, an
    /// expired ticket).
    pub contexts_refused: AtomicU64,
    /// Contexts ended by the client (DESTROY).
    pub contexts_destroyed: AtomicU64,
    /// Contexts held now.
    pub contexts: AtomicU64,
    /// Calls refused with RPCSEC_GSS_CREDPROBLEM: no such context, or a verifier that
    /// does not verify.
    pub bad_credential: AtomicU64,
    /// Calls refused with RPCSEC_GSS_CTXPROBLEM: the context expired or its sequence
    /// numbers ran out.
    pub context_problem: AtomicU64,
    /// Calls dropped unanswered: a sequence number seen before or below the window.
    pub replays_dropped: AtomicU64,
    /// Calls whose krb5i checksum or krb5p wrapping did not verify (GARBAGE_ARGS).
    pub bad_body: AtomicU64,
}

impl GssStats {
    pub fn add(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set(c: &AtomicU64, v: u64) {
        c.store(v, Ordering::Relaxed);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}
