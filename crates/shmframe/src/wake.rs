//! Cross-process wake-up: a shared (not process-private) futex on the header's `wake` word, and
//! inotify on /dev/shm for readers waiting for a channel to appear. No sleep-polling.

use crate::name::SHM_DIR;
use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::thread::futex;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

/// `d` as a `timespec` (a relative timeout, or, from a clock's zero, an absolute time).
pub(crate) fn timespec(d: Duration) -> rustix::time::Timespec {
    rustix::time::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: d.subsec_nanos() as _,
    }
}

/// Sleeps until `word` no longer holds `expected`, a wake-up arrives, or `timeout` passes.
/// Spurious returns are possible; callers re-check their condition. EINTR returns early (the caller
/// loops with its own deadline, so a signal never cuts a wait short by more than one round).
/// Another error (the kernel refusing the futex) is returned, not papered over.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) -> Result<(), Errno> {
    // Flags::empty(): a shared futex, keyed by the page of the object, so that processes mapping
    // the same object at different addresses wake each other. FUTEX_PRIVATE_FLAG would not.
    match futex::wait(
        word,
        futex::Flags::empty(),
        expected,
        Some(&timespec(timeout)),
    ) {
        Ok(()) | Err(Errno::AGAIN) | Err(Errno::TIMEDOUT) | Err(Errno::INTR) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Wakes every process sleeping in [`wait`] on `word`; returns how many were woken.
pub(crate) fn wake_all(word: &AtomicU32) -> usize {
    futex::wake(word, futex::Flags::empty(), i32::MAX as u32).unwrap_or(0)
}

/// Watches /dev/shm for objects being created or renamed into place.
pub(crate) struct DirWatch {
    fd: OwnedFd,
}

impl DirWatch {
    /// Watches directory `dir`.
    pub fn new(dir: &std::path::Path) -> Result<DirWatch, Errno> {
        use rustix::fs::inotify;
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        inotify::add_watch(
            &fd,
            dir,
            inotify::WatchFlags::CREATE
                | inotify::WatchFlags::MOVED_TO
                | inotify::WatchFlags::ATTRIB
                | inotify::WatchFlags::CLOSE_WRITE,
        )?;
        Ok(DirWatch { fd })
    }

    /// Waits until something happens in /dev/shm or `deadline` passes; drains pending events.
    /// Returns `false` at the deadline.
    pub fn wait_until(&self, deadline: Instant) -> bool {
        use rustix::event::{poll, PollFd, PollFlags};
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let left = deadline - now;
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        let r = poll(&mut fds, Some(&timespec(left)));
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = rustix::fs::inotify::Reader::new(&self.fd, &mut buf);
        while reader.next().is_ok() {}
        !matches!(r, Ok(0))
    }
}

/// Calls `look` until it returns `Some`, sleeping on /dev/shm events (at most `round` at a time,
/// for objects that finish initialising without an event) until `deadline` (`None`: forever).
/// `Ok(None)` at the deadline. The one way readers wait for a name to appear.
pub(crate) fn until_named<T, E>(
    deadline: Option<Instant>,
    round: Duration,
    look: impl FnMut() -> Result<Option<T>, E>,
) -> Result<Option<T>, E> {
    until_in(std::path::Path::new(SHM_DIR), deadline, round, look)
}

/// As [`until_named`], watching directory `dir` (where a socket-served channel's socket appears).
pub(crate) fn until_in<T, E>(
    dir: &std::path::Path,
    deadline: Option<Instant>,
    round: Duration,
    mut look: impl FnMut() -> Result<Option<T>, E>,
) -> Result<Option<T>, E> {
    let watch = DirWatch::new(dir).ok();
    loop {
        if let Some(v) = look()? {
            return Ok(Some(v));
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Ok(None);
        }
        let until = deadline.map_or(now + round, |d| d.min(now + round));
        match &watch {
            Some(w) => {
                w.wait_until(until);
            }
            None => std::thread::sleep(until.saturating_duration_since(now)),
        }
    }
}
