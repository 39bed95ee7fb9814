//! Ctrl-C and `kill` (SIGINT, SIGTERM) ask every loop to finish its frame and exit cleanly, so a
//! writer closes (and removes) its channel instead of leaving it behind.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

/// Installs the handler for SIGINT and SIGTERM (once, from `main`).
pub fn install() {
    // Failing to install leaves the default action (the process dies and the writer's channel
    // stays behind until `shmframe rm --stale`): worth a warning, not a refusal to run.
    if let Err(e) = ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst)) {
        eprintln!("warning: cannot handle Ctrl-C ({e}); a killed writer leaves its channel behind");
    }
}

/// `true` once SIGINT or SIGTERM arrived.
pub fn requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// The flag itself, for library calls that take `&AtomicBool`.
#[cfg_attr(not(feature = "zenoh"), allow(dead_code))]
pub fn flag() -> &'static AtomicBool {
    &STOP
}
