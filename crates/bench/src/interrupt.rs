//! Ctrl-C (SIGINT) during a bench: the first one asks the run to stop (workers stop
//! sending, the results so far are reported, the session and client are destroyed); a
//! second one exits at once with 130. Without [`install`] (library use, tests) nothing
//! is ever requested and SIGINT keeps its default action.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// Exit status after Ctrl-C: 128 + SIGINT, what shells report for it.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Catch SIGINT for the rest of the process.
pub fn install() {
    INSTALL.call_once(|| {
        // The conditional exit goes first: it only fires once the flag is already set,
        // i.e. on the second Ctrl-C.
        let r = signal_hook::flag::register_conditional_shutdown(
            signal_hook::consts::SIGINT,
            i32::from(EXIT_INTERRUPTED),
            &REQUESTED,
        )
        .and_then(|_| signal_hook::flag::register(signal_hook::consts::SIGINT, &REQUESTED));
        if let Err(e) = r {
            tracing::warn!(error = %e, "cannot catch Ctrl-C: it will end the bench without a report");
        }
    });
}

/// Whether Ctrl-C was pressed since [`install`].
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
