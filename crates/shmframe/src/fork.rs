//! Telling a process from its `fork()`ed child: pins and the writer's lock belong to one process,
//! and a `Reader` or `Writer` copied into a child by `fork()` must refuse to work there instead of
//! releasing its parent's pins. A `pthread_atfork` child handler bumps a counter; each reader and
//! writer remembers the counter it was made under. Checking it is one atomic load.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn in_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// The process's fork generation: changes in a child after every `fork()`.
pub(crate) fn generation() -> u64 {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: `in_child` is async-signal-safe (one atomic add), as a child handler must be;
        // registering handlers has no other precondition.
        unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
    });
    GENERATION.load(Ordering::Relaxed)
}
