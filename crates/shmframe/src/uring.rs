//! An event loop's wait for a channel's futex word with no thread in between: an io_uring
//! `FUTEX_WAIT` (Linux ≥ 6.7) on the word, on a ring whose completions signal the reader's
//! readiness eventfd (`IORING_REGISTER_EVENTFD`). The writer's `FUTEX_WAKE` completes the request
//! in the kernel, which writes the eventfd, which wakes the event loop: one wake-up instead of two
//! (writer → waker thread → eventfd → event loop). Where the kernel lacks io_uring futex waits, or
//! io_uring is disabled, [`FutexRing::new`] says so and the waker thread (`readiness.rs`) waits
//! instead.
//!
//! For a socket-served channel the same ring also watches the connection to the writer for a
//! hang-up (a one-shot `POLL_ADD`), so the writer's death ends a wait at once, and a blocking
//! reader of such a channel sleeps in `io_uring_enter` on both (`FutexRing::block`).
#![allow(unsafe_code)]

use crate::pins::Pins;
use io_uring::{opcode, types, IoUring};
use rustix::fd::{AsRawFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::Duration;

/// `futex2` flags: a 32-bit word, shared between processes (no `FUTEX2_PRIVATE`).
const FUTEX2_SIZE_U32: u32 = 0x02;
/// Wake on any `FUTEX_WAKE` of the word.
const FUTEX_BITSET_MATCH_ANY: u64 = 0xffff_ffff;
/// `user_data` of the futex wait.
const WAIT: u64 = 1;
/// `user_data` of the hang-up watch.
const HANGUP: u64 = 2;

/// One reader's ring.
pub(crate) struct FutexRing {
    ring: IoUring,
    /// The pin table whose bell a submitted wait is queued on, until its completion is reaped: a
    /// queued wait must never outlive the pages it names.
    pending: Option<Arc<Pins>>,
    /// The connection watched for a hang-up (kept open while the watch is queued).
    watched: Option<Arc<OwnedFd>>,
    /// The watched connection hung up.
    hung_up: bool,
    /// A ring whose completions are *deferred* (`IORING_SETUP_DEFER_TASKRUN`), usable only from
    /// the thread that made it: this one.
    deferred: Option<ThreadId>,
}

impl Drop for FutexRing {
    fn drop(&mut self) {
        // Closing the ring cancels what is queued; those completions, posted later by the
        // kernel, must not signal the eventfd, which the reader goes on using with another ring
        // (it moved to another thread) or no longer watches.
        self.ring.completion().disable_eventfd();
    }
}

impl FutexRing {
    /// A ring whose completions signal `efd`; `None` if this kernel offers no io_uring futex wait
    /// (or io_uring is disabled, or `SHMFRAME_NO_IO_URING` is set in the environment).
    ///
    /// With `efd`, the ring defers its completions to the thread that makes it
    /// (`IORING_SETUP_DEFER_TASKRUN`): the writer's `FUTEX_WAKE` then signals `efd` at once, in
    /// the writer's system call, instead of interrupting this thread (wherever it sleeps, e.g. in
    /// `epoll_wait`) to post the completion first. The completion is posted when this thread
    /// next enters the ring ([`FutexRing::reap`]); other threads must make their own ring
    /// ([`FutexRing::usable_here`]).
    pub fn new(efd: Option<BorrowedFd<'_>>) -> Option<FutexRing> {
        if std::env::var_os("SHMFRAME_NO_IO_URING").is_some() {
            return None;
        }
        let deferred = efd.and_then(|_| {
            IoUring::builder()
                .setup_single_issuer()
                .setup_defer_taskrun()
                .setup_taskrun_flag()
                .build(4)
                .ok()
        });
        let (ring, deferred) = match deferred {
            Some(r) => (r, Some(std::thread::current().id())),
            None => (IoUring::new(4).ok()?, None),
        };
        let mut probe = io_uring::Probe::new();
        ring.submitter().register_probe(&mut probe).ok()?;
        if !probe.is_supported(opcode::FutexWait::CODE)
            || !probe.is_supported(opcode::PollAdd::CODE)
        {
            return None;
        }
        if let Some(efd) = efd {
            ring.submitter().register_eventfd(efd.as_raw_fd()).ok()?;
        }
        Some(FutexRing {
            ring,
            pending: None,
            watched: None,
            hung_up: false,
            deferred,
        })
    }

    /// `false` if this ring defers its completions to another thread (see [`FutexRing::new`]).
    pub fn usable_here(&self) -> bool {
        self.deferred
            .is_none_or(|t| t == std::thread::current().id())
    }

    /// Watches connection `sock` for a hang-up (once; a later call for another connection
    /// replaces the watch). Its completion signals the eventfd and ends [`FutexRing::block`].
    pub fn watch_hangup(&mut self, sock: &Arc<OwnedFd>) {
        if self.watched.as_ref().is_some_and(|w| Arc::ptr_eq(w, sock)) {
            return;
        }
        if self.watched.is_some() {
            // The old watch is cancelled; its completion (-ECANCELED) is not a hang-up.
            let cancel = opcode::AsyncCancel::new(HANGUP).build().user_data(0);
            // SAFETY: a cancel request names no memory, only the `user_data` to cancel.
            let _ = unsafe { self.ring.submission().push(&cancel) };
        }
        self.hung_up = false;
        let events = (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) as u32;
        let sqe = opcode::PollAdd::new(types::Fd(sock.as_raw_fd()), events)
            .build()
            .user_data(HANGUP);
        // SAFETY: the request names descriptor `sock`, which `self.watched` keeps open until the
        // ring is dropped (the ring field is dropped first, cancelling the request) or the watch
        // is replaced (after the cancel above).
        if unsafe { self.ring.submission().push(&sqe) }.is_ok() && self.ring.submit().is_ok() {
            self.watched = Some(sock.clone());
        }
    }

    /// `true` once the watched connection hung up (after [`FutexRing::reap`] saw it).
    pub fn hung_up(&self) -> bool {
        self.hung_up
    }

    /// Sleeps until a completion arrives (the queued wait, or a hang-up) or `timeout` passes.
    pub fn block(&mut self, timeout: Duration) -> Result<(), Errno> {
        if self.hung_up {
            return Ok(());
        }
        let ts = types::Timespec::new()
            .sec(timeout.as_secs())
            .nsec(timeout.subsec_nanos());
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => Ok(()),
            Err(e) => match Errno::from_io_error(&e) {
                Some(Errno::TIME) | Some(Errno::INTR) | Some(Errno::BUSY) => Ok(()),
                Some(e) => Err(e),
                None => Err(Errno::IO),
            },
        }
    }

    /// Queues a wait on the bell of `pins` (at `rung`), unless one is queued already: any
    /// `FUTEX_WAKE` of the bell completes that one too. Its completion signals the eventfd;
    /// `Err` if the kernel refused the submission (the caller then falls back to the waker thread).
    pub fn wait(&mut self, pins: &Arc<Pins>, rung: u32) -> Result<(), ()> {
        if self.pending.is_some() {
            // A deferred completion signals the eventfd before it is posted: one that came after
            // the caller last reaped may have been emptied with the eventfd since. Post it now,
            // so that a wait that is over is never taken for one still queued.
            self.reap();
        }
        if self.pending.is_some() {
            return Ok(());
        }
        let sqe = opcode::FutexWait::new(
            pins.bell().as_ptr().cast_const(),
            rung as u64,
            FUTEX_BITSET_MATCH_ANY,
            FUTEX2_SIZE_U32,
        )
        .build()
        .user_data(WAIT);
        // SAFETY: the entry names the futex word by address; the word lies in the mapping of
        // `pins`, which `self.pending` keeps alive until the wait's completion is reaped (`reap`)
        // or the ring is closed (`Drop` order: the ring field is dropped first, cancelling the
        // request).
        // The submission queue has room: at most one wait is queued at a time.
        unsafe { self.ring.submission().push(&sqe) }.map_err(|_| ())?;
        self.ring.submit().map_err(|_| ())?;
        self.pending = Some(pins.clone());
        Ok(())
    }

    /// Takes every completion; `true` if the queued wait completed (woken, or the word had moved)
    /// or the watched connection hung up.
    pub fn reap(&mut self) -> bool {
        if self.ring.submission().taskrun() && self.usable_here() {
            // Completions are waiting to be posted (only a deferred ring raises the flag): one
            // enter with GETEVENTS posts them.
            let _ = self.ring.submit();
        }
        let mut done = false;
        for cqe in self.ring.completion() {
            match cqe.user_data() {
                WAIT => {
                    done = true;
                    self.pending = None;
                }
                // A poll's result is the events that occurred; a cancelled one is negative.
                HANGUP if cqe.result() > 0 => {
                    done = true;
                    self.hung_up = true;
                }
                _ => {}
            }
        }
        done
    }
}
