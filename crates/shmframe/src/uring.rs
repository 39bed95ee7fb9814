//! An event loop's wait for a channel's futex word with no thread in between: an io_uring
//! `FUTEX_WAIT` (Linux ≥ 6.7) on the word, on a ring whose completions signal the reader's
//! readiness eventfd (`IORING_REGISTER_EVENTFD`). The writer's `FUTEX_WAKE` completes the request
//! in the kernel, which writes the eventfd, which wakes the event loop: one wake-up instead of two
//! (writer → waker thread → eventfd → event loop). Where the kernel lacks io_uring futex waits, or
//! io_uring is disabled, [`FutexRing::new`] says so and the waker thread (`readiness.rs`) waits
//! instead.
#![allow(unsafe_code)]

use crate::segment::Segment;
use io_uring::{opcode, IoUring};
use rustix::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

/// `futex2` flags: a 32-bit word, shared between processes (no `FUTEX2_PRIVATE`).
const FUTEX2_SIZE_U32: u32 = 0x02;
/// Wake on any `FUTEX_WAKE` of the word.
const FUTEX_BITSET_MATCH_ANY: u64 = 0xffff_ffff;
/// `user_data` of the futex wait.
const WAIT: u64 = 1;

/// One reader's ring.
pub(crate) struct FutexRing {
    ring: IoUring,
    /// The mapping of the word a submitted wait is queued on, until its completion is reaped: a
    /// queued wait must never outlive the pages it names.
    pending: Option<Arc<Segment>>,
}

impl FutexRing {
    /// A ring whose completions signal `efd`; `None` if this kernel offers no io_uring futex wait
    /// (or io_uring is disabled, or `SHMFRAME_NO_IO_URING` is set in the environment).
    pub fn new(efd: BorrowedFd<'_>) -> Option<FutexRing> {
        if std::env::var_os("SHMFRAME_NO_IO_URING").is_some() {
            return None;
        }
        let ring = IoUring::new(4).ok()?;
        let mut probe = io_uring::Probe::new();
        ring.submitter().register_probe(&mut probe).ok()?;
        if !probe.is_supported(opcode::FutexWait::CODE) {
            return None;
        }
        ring.submitter().register_eventfd(efd.as_raw_fd()).ok()?;
        Some(FutexRing {
            ring,
            pending: None,
        })
    }

    /// Queues a wait on `word` (at `seen`) in `seg`, unless one is queued already: any
    /// `FUTEX_WAKE` of the word completes that one too. Its completion signals the eventfd;
    /// `Err` if the kernel refused the submission (the caller then falls back to the waker thread).
    pub fn wait(&mut self, seg: &Arc<Segment>, word: &AtomicU32, seen: u32) -> Result<(), ()> {
        if self.pending.is_some() {
            return Ok(());
        }
        let sqe = opcode::FutexWait::new(
            word.as_ptr().cast_const(),
            seen as u64,
            FUTEX_BITSET_MATCH_ANY,
            FUTEX2_SIZE_U32,
        )
        .build()
        .user_data(WAIT);
        // SAFETY: the entry names the futex word by address; the word lies in `seg`'s mapping,
        // which `self.pending` keeps alive until the wait's completion is reaped (`reap`) or the
        // ring is closed (`Drop` order: the ring field is dropped first, cancelling the request).
        // The submission queue has room: at most one wait is queued at a time.
        unsafe { self.ring.submission().push(&sqe) }.map_err(|_| ())?;
        self.ring.submit().map_err(|_| ())?;
        self.pending = Some(seg.clone());
        Ok(())
    }

    /// Takes every completion; `true` if the queued wait completed (woken, or the word had moved).
    pub fn reap(&mut self) -> bool {
        let mut done = false;
        for cqe in self.ring.completion() {
            if cqe.user_data() == WAIT {
                done = true;
            }
        }
        if done {
            self.pending = None;
        }
        done
    }
}
