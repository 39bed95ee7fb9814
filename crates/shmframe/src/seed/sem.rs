//! The channel's named POSIX semaphore (`/dev/shm/sem.NAME`, glibc's `sem_*` functions): the only
//! FFI and the only `unsafe` code of the seed protocol.
//!
//! # Safety
//!
//! Every `unsafe` block below relies on two invariants of this module:
//!
//! - a [`NamedSem`] holds a pointer returned by a successful `sem_open`, which stays valid until
//!   its `Drop` calls `sem_close`, exactly once; the pointer is only handed to the `sem_*`
//!   functions, never dereferenced here;
//! - the names passed to `sem_open`/`sem_unlink` are [`CString`](std::ffi::CString)s of
//!   [`Names`], NUL-terminated and alive for the duration of the call.
//!
//! The semaphore itself lives in a shared mapping that other processes write; its functions are
//! safe to call concurrently from any thread or process, whatever its value.
#![allow(unsafe_code)]

use super::{ident_of_path, Ident, Names};
use rustix::fs::Mode;
use rustix::io::Errno;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

/// The `errno` of the last failed libc call.
fn last_errno() -> Errno {
    Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// A glibc named semaphore opened with `sem_open`.
pub(super) struct NamedSem {
    sem: NonNull<libc::sem_t>,
    /// The identity of `/dev/shm/sem.NAME` we opened: a writer that restarts replaces the file.
    ident: Ident,
}

// SAFETY: a named semaphore lives in a shared mapping and its operations are thread-safe; the
// pointer is only passed to the `sem_*` functions, never dereferenced here (module invariants).
unsafe impl Send for NamedSem {}

impl NamedSem {
    /// Opens the existing semaphore `names.sem`.
    pub(super) fn open(names: &Names) -> Result<NamedSem, Errno> {
        let path = names.sem_path();
        for _ in 0..10 {
            let before = ident_of_path(&path)?;
            // SAFETY: `names.sem` is a valid NUL-terminated string that lives for the call;
            // without O_CREAT, sem_open reads no variadic argument.
            let p = unsafe { libc::sem_open(names.sem.as_ptr(), 0) };
            let sem = NonNull::new(p).ok_or_else(last_errno)?;
            // The file may have been replaced between the stat and sem_open: keep the identity
            // only if it did not change across the call.
            let s = NamedSem { sem, ident: before };
            if ident_of_path(&path)? == before {
                return Ok(s);
            }
        }
        Err(Errno::AGAIN)
    }

    /// Creates semaphore `names.sem` with value `value`, replacing any existing one (as the
    /// article's writer does: an existing one may be stuck at 0 by a dead holder).
    pub(super) fn replace(names: &Names, mode: u32, value: u32) -> Result<NamedSem, Errno> {
        loop {
            let _ = unlink(names);
            // SAFETY: `names.sem` is a valid NUL-terminated string for the call; with O_CREAT
            // sem_open reads two variadic arguments, a mode_t (promoted to c_uint) and an
            // unsigned int value, which we pass.
            let p = unsafe {
                libc::sem_open(
                    names.sem.as_ptr(),
                    libc::O_CREAT | libc::O_EXCL,
                    mode as libc::c_uint,
                    value as libc::c_uint,
                )
            };
            match NonNull::new(p) {
                Some(sem) => {
                    // The umask may have narrowed the mode; readers of other users need it exact.
                    let path = names.sem_path();
                    let _ = rustix::fs::chmod(path.as_str(), Mode::from_raw_mode(mode));
                    let ident = ident_of_path(&path)?;
                    return Ok(NamedSem { sem, ident });
                }
                None => match last_errno() {
                    Errno::EXIST => continue,
                    e => return Err(e),
                },
            }
        }
    }

    /// `true` if `/dev/shm/sem.NAME` is still the semaphore we opened.
    pub(super) fn is_current(&self, names: &Names) -> bool {
        ident_of_path(&names.sem_path()) == Ok(self.ident)
    }

    /// Waits for the semaphore until `until` (measured on the monotonic clock). `Ok(false)` at
    /// `until`.
    pub(super) fn wait_until(&self, until: Instant) -> Result<bool, Errno> {
        loop {
            // SAFETY: `sem` came from a successful sem_open and is not closed before drop.
            if unsafe { libc::sem_trywait(self.sem.as_ptr()) } == 0 {
                return Ok(true);
            }
            match last_errno() {
                Errno::AGAIN | Errno::INTR => {}
                e => return Err(e),
            }
            let now = Instant::now();
            if now >= until {
                return Ok(false);
            }
            // sem_timedwait takes a CLOCK_REALTIME deadline: wait in rounds of at most 100 ms so
            // that a jump of the wall clock cannot stretch the wait by more than one round.
            let ts = realtime_in((until - now).min(Duration::from_millis(100)));
            // SAFETY: `sem` is valid (see above); `ts` is a valid timespec living for the call.
            if unsafe { libc::sem_timedwait(self.sem.as_ptr(), &ts) } == 0 {
                return Ok(true);
            }
            match last_errno() {
                Errno::TIMEDOUT | Errno::INTR | Errno::AGAIN => {}
                e => return Err(e),
            }
        }
    }

    /// Marks the semaphore, which the caller has just acquired ([`NamedSem::wait_until`] gave
    /// `Ok(true)`), as held: the guard posts it when dropped.
    pub(super) fn held(&self) -> Held<'_> {
        Held(self)
    }

    /// Releases the semaphore; only for a semaphore the caller acquired.
    pub(super) fn post(&self) {
        // SAFETY: `sem` came from a successful sem_open and is not closed before drop.
        let _ = unsafe { libc::sem_post(self.sem.as_ptr()) };
    }
}

impl Drop for NamedSem {
    fn drop(&mut self) {
        // SAFETY: `sem` came from sem_open and is closed exactly once, here.
        let _ = unsafe { libc::sem_close(self.sem.as_ptr()) };
    }
}

/// Holds the semaphore; posts it on drop.
pub(super) struct Held<'a>(&'a NamedSem);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.post();
    }
}

/// Removes the name `names.sem` (processes that opened the semaphore keep it).
pub(super) fn unlink(names: &Names) -> Result<(), Errno> {
    // SAFETY: `names.sem` is a valid NUL-terminated string that lives for the call.
    match unsafe { libc::sem_unlink(names.sem.as_ptr()) } {
        0 => Ok(()),
        _ => Err(last_errno()),
    }
}

/// The CLOCK_REALTIME time `d` from now, as `sem_timedwait` takes it.
fn realtime_in(d: Duration) -> libc::timespec {
    let at = crate::clock::realtime_ns().saturating_add(d.as_nanos().min(u64::MAX as u128) as u64);
    libc::timespec {
        tv_sec: (at / 1_000_000_000) as libc::time_t,
        tv_nsec: (at % 1_000_000_000) as libc::c_long,
    }
}
