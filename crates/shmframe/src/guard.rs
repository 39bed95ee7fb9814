//! Guarded mappings: truncating a shared-memory object under us sets a flag instead of killing
//! the process with `SIGBUS`.
//!
//! Why: anyone with write access to `/dev/shm/X` can truncate it, and touching a `MAP_SHARED`
//! mapping past the new end of the file raises `SIGBUS`, whose default action kills the process.
//!
//! How: [`register`] records a mapping in a fixed static table and, once per process, installs a
//! `SIGBUS` handler (`SA_SIGINFO | SA_ONSTACK | SA_RESTART`) that keeps the previous disposition.
//! On a fault inside a registered mapping the handler maps private anonymous zero pages over the
//! mapping from the faulting page up to its end (or up to where it already did so), sets the
//! entry's `faulted` flag and returns: the faulting instruction runs again and now reads zeros or
//! writes to private memory. Bytes before the faulting page stay shared. Any other `SIGBUS` goes
//! to the previous disposition: its handler, or death as if we had never been there.
//!
//! The handler must be async-signal-safe: the table is a static array of atomics, with no
//! allocation and no lock, and each entry has a state word with a generation (a seqlock) so the
//! handler never acts on a half-written or reused entry. What it cannot exclude is a mapping
//! unmapped (and its addresses reused) while another thread still touches it: that is a
//! use-after-unmap the owner must exclude anyway. Hence [`register`] is `unsafe`, and a [`Guard`]
//! is dropped *before* `munmap`, so every registered range is a live mapping of its owner and a
//! fault inside it comes from an access to that live mapping.
//!
//! Limits: at most [`CAPACITY`] mappings at a time; a fault inside a system call (say `write(2)`
//! from the mapping) is `EFAULT`, not a signal, and is not seen here; a chained handler runs with
//! our mask and flags, not its own `sa_mask`/`SA_RESETHAND`; a handler that someone installs over
//! ours later turns the guard off.
//!
//! In `shmframe` the module is `pub(crate) mod guard;`, so its `pub` items stay crate-private.
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::ffi::{c_int, c_void};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{fence, AtomicBool, AtomicUsize};
use std::sync::{Once, OnceLock};
use std::{fmt, mem, ptr};

/// How many mappings can be guarded at the same time.
pub const CAPACITY: usize = 1024;

// An entry's state word: `generation << 2 | tag`. A new registration bumps the generation, so a
// handler that read the word before and after reading the fields knows they belong together.
const TAG: usize = 0b11;
const FREE: usize = 0;
/// Claimed by `register`, fields being written.
const BUSY: usize = 1;
const LIVE: usize = 2;

struct Entry {
    state: AtomicUsize,
    start: AtomicUsize,
    /// End of the mapping, rounded up to whole pages (the kernel maps whole pages).
    end: AtomicUsize,
    /// Where the handler's zero pages begin (`end` while there are none).
    zeroed_from: AtomicUsize,
    faulted: AtomicBool,
}

static TABLE: [Entry; CAPACITY] = [const {
    Entry {
        state: AtomicUsize::new(FREE),
        start: AtomicUsize::new(0),
        end: AtomicUsize::new(0),
        zeroed_from: AtomicUsize::new(0),
        faulted: AtomicBool::new(false),
    }
}; CAPACITY];

/// Set, and never cleared, when the handler first marks a mapping faulted. Until then (as good
/// as always) [`any_faulted`] answers for every mapping with one load of one static line, where
/// a mapping's own flag is reached through its owner's structures and the table: cache lines and
/// pages that a large frame's copy has evicted by the time the writer publishes it.
static ANY_FAULTED: AtomicBool = AtomicBool::new(false);

/// Page size, set before the handler is installed.
static PAGE: AtomicUsize = AtomicUsize::new(0);
/// The `SIGBUS` disposition before ours, set before the handler is installed.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// The table of guarded mappings is full ([`CAPACITY`] entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

impl fmt::Display for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "more than {CAPACITY} guarded shared-memory mappings")
    }
}

impl std::error::Error for Full {}

/// A registered mapping. Dropping it unregisters the mapping: drop it *before* `munmap`.
#[derive(Debug)]
#[must_use = "dropping the Guard unregisters the mapping at once"]
pub struct Guard {
    index: usize,
}

/// `false` if no `SIGBUS` has hit any guarded mapping of this process: then no [`Guard`] is
/// faulted. (`true` says nothing about a given mapping; ask its guard.)
#[inline]
pub fn any_faulted() -> bool {
    ANY_FAULTED.load(Acquire)
}

impl Guard {
    /// Whether a `SIGBUS` hit this mapping (its file was truncated): from the faulting page on, the
    /// mapping is now private zero-filled memory, no longer the shared object.
    #[inline]
    pub fn faulted(&self) -> bool {
        any_faulted() && TABLE[self.index].faulted.load(Acquire)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let state = &TABLE[self.index].state;
        // Only this guard changes a LIVE entry; FREE keeps the generation for the next claim.
        state.store(state.load(Relaxed) & !TAG, Release);
    }
}

/// Registers `[ptr, ptr + len)` as a guarded mapping; installs the `SIGBUS` handler on first use.
///
/// # Safety
///
/// `[ptr, ptr + len)` must be a mapping that the caller made with `mmap` (so `ptr` is page
/// aligned) and owns until the returned [`Guard`] is dropped: the caller drops the guard before it
/// unmaps or remaps any part of the range. While registered, a `SIGBUS` inside the range replaces
/// the mapping from the faulting page to its end with private zero pages.
pub unsafe fn register(ptr: *mut u8, len: usize) -> Result<Guard, Full> {
    let page = install();
    let start = ptr as usize;
    assert!(start % page == 0, "a mapping starts on a page boundary");
    let end = start
        .checked_add(len)
        .and_then(|end| end.checked_next_multiple_of(page))
        .expect("a mapping lies inside the address space");
    for (index, entry) in TABLE.iter().enumerate() {
        let state = entry.state.load(Relaxed);
        if state & TAG != FREE {
            continue;
        }
        let generation = (state | TAG).wrapping_add(1);
        if entry
            .state
            .compare_exchange(state, generation | BUSY, Relaxed, Relaxed)
            .is_err()
        {
            continue;
        }
        // Seqlock write side: a handler that sees any field below also sees BUSY or later.
        fence(Release);
        entry.start.store(start, Relaxed);
        entry.end.store(end, Relaxed);
        entry.zeroed_from.store(end, Relaxed);
        entry.faulted.store(false, Relaxed);
        entry.state.store(generation | LIVE, Release);
        return Ok(Guard { index });
    }
    Err(Full)
}

/// Installs the handler once per process, after recording the page size and the previous
/// disposition; returns the page size.
fn install() -> usize {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        PAGE.store(usize::try_from(page).expect("a page size"), Relaxed);
        // SAFETY: all zeros is a valid `sigaction` (SIG_DFL, empty mask, no flags).
        let mut previous: libc::sigaction = unsafe { mem::zeroed() };
        // SAFETY: a null new action only queries; `previous` is a valid place for the old one.
        let rc = unsafe { libc::sigaction(libc::SIGBUS, ptr::null(), &mut previous) };
        assert_eq!(rc, 0, "query the SIGBUS disposition");
        // In a Rust program this is std's stack-overflow handler (SA_ONSTACK keeps it working
        // when we run first); in a host such as Python, SIG_DFL or the host's handler.
        let first = PREVIOUS.set(previous).is_ok();
        assert!(first, "PREVIOUS is set only here");

        let handler: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) = on_sigbus;
        // SAFETY: as above.
        let mut action: libc::sigaction = unsafe { mem::zeroed() };
        action.sa_sigaction = handler as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
        // SAFETY: `on_sigbus` has the SA_SIGINFO signature and is async-signal-safe; `action` is
        // fully initialised (zeroed mask = empty), and a null old action is allowed.
        let rc = unsafe { libc::sigaction(libc::SIGBUS, &action, ptr::null_mut()) };
        assert_eq!(rc, 0, "install the SIGBUS handler");
    });
    PAGE.load(Relaxed)
}

/// The `SIGBUS` handler. Uses only atomics, `mmap`, `sigaction` and `raise`.
extern "C" fn on_sigbus(signal: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: `__errno_location` returns this thread's errno, always valid to read and write;
    // saving and restoring it keeps the interrupted code's errno intact.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: the kernel passes a valid `siginfo_t` to an SA_SIGINFO handler; `si_addr` is the
    // field filled for faults (`si_code > 0`); for a sent signal we never use it.
    let (fault, addr) = unsafe { ((*info).si_code > 0, (*info).si_addr() as usize) };
    if !(fault && zero_from(addr)) {
        // SAFETY: called from the handler, with the arguments the kernel passed to it.
        unsafe { chain(signal, info, context, fault) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// If `addr` lies in a registered mapping, maps zero pages over it from `addr`'s page up to the
/// zero pages already there (or the end), sets `faulted` and returns true. Returns false if the
/// address is not ours or `mmap` failed.
fn zero_from(addr: usize) -> bool {
    let page_start = addr & !(PAGE.load(Relaxed) - 1);
    for entry in &TABLE {
        let state = entry.state.load(Acquire);
        if state & TAG != LIVE {
            continue;
        }
        let (start, end) = (entry.start.load(Relaxed), entry.end.load(Relaxed));
        // Seqlock read side: the fields are this registration's if the word did not change.
        fence(Acquire);
        if entry.state.load(Relaxed) != state || !(start..end).contains(&addr) {
            continue;
        }
        let zeroed_from = entry.zeroed_from.load(Relaxed);
        if page_start < zeroed_from {
            // SAFETY: [page_start, zeroed_from) lies in a registered mapping, which by
            // `register`'s contract is a live mapping of its owner, not yet unmapped (a fault in
            // it comes from an access to it); replacing its pages is what registering allows.
            let mapped = unsafe {
                libc::mmap(
                    page_start as *mut c_void,
                    zeroed_from - page_start,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if mapped == libc::MAP_FAILED {
                return false;
            }
            // Two threads faulting at once may both map (the later one discards the other's
            // private writes): the region is garbage by then, and `faulted` says so.
            entry.zeroed_from.fetch_min(page_start, Relaxed);
        }
        entry.faulted.store(true, Release);
        ANY_FAULTED.store(true, Release);
        return true;
    }
    false
}

/// Hands a `SIGBUS` that is not ours to the previous disposition.
///
/// # Safety
///
/// Call only from the `SIGBUS` handler, with the arguments the kernel passed to it.
unsafe fn chain(signal: c_int, info: *mut libc::siginfo_t, context: *mut c_void, fault: bool) {
    let Some(previous) = PREVIOUS.get() else {
        return; // unreachable: PREVIOUS is set before the handler is installed
    };
    match previous.sa_sigaction {
        // An ignored SIGBUS sent by kill(2) stays ignored. (A fault cannot be ignored: the
        // kernel resets the disposition to default and the process dies.)
        libc::SIG_IGN if !fault => {}
        libc::SIG_DFL | libc::SIG_IGN => {
            // SAFETY: all zeros is a valid `sigaction`: SIG_DFL, empty mask, no flags.
            let default: libc::sigaction = unsafe { mem::zeroed() };
            // SAFETY: `default` is a valid action and a null old action is allowed.
            unsafe { libc::sigaction(libc::SIGBUS, &default, ptr::null_mut()) };
            if !fault {
                // A sent signal is not repeated by returning: send it again. SIGBUS is blocked
                // while we run, so it arrives, with the default action, once we return.
                // SAFETY: raise is async-signal-safe and has no preconditions.
                unsafe { libc::raise(libc::SIGBUS) };
            }
            // A fault repeats when we return, now with the default action: the process dies
            // of SIGBUS as it would have without us.
        }
        handler if previous.sa_flags & libc::SA_SIGINFO != 0 => {
            // SAFETY: with SA_SIGINFO, a disposition other than SIG_DFL/SIG_IGN is a
            // three-argument handler, which we call as the kernel would have.
            let handler = unsafe {
                mem::transmute::<
                    libc::sighandler_t,
                    extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void),
                >(handler)
            };
            handler(signal, info, context);
        }
        handler => {
            // SAFETY: without SA_SIGINFO, a disposition other than SIG_DFL/SIG_IGN is a
            // one-argument handler, which we call as the kernel would have.
            let handler =
                unsafe { mem::transmute::<libc::sighandler_t, extern "C" fn(c_int)>(handler) };
            handler(signal);
        }
    }
}
