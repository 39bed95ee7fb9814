//! A reader thread's request to run as soon as it is woken.
//!
//! A sleeping reader is woken by the writer's `FUTEX_WAKE`, very often onto the core the writer
//! is still running on. Linux's scheduler (EEVDF) lets the woken thread preempt the writer only
//! if its deadline comes first, and a thread's deadline is its time slice away: with the default
//! slice (about 3 ms) a reader that used some CPU for its last frame usually waits until the
//! writer sleeps. Since Linux 6.12 a normal thread may ask for a shorter slice (`sched_setattr`,
//! `sched_runtime`, no privilege needed); with the shortest (0.1 ms) a woken reader runs at once.
//! The thread gets shorter turns when it competes for a core, which a reader that mostly sleeps
//! does not mind. Nothing else changes: policy, nice value and the reset-on-fork flag are kept.
#![allow(unsafe_code)]

use crate::error::SchedError;
use rustix::io::Errno;
use std::time::Duration;

/// The slice [`prefer_low_latency`] asks for: the shortest the kernel grants.
pub const LOW_LATENCY_SLICE: Duration = Duration::from_micros(100);

const SCHED_OTHER: u32 = 0;
const SCHED_FLAG_RESET_ON_FORK: u64 = 0x01;

/// Asks the scheduler to run the calling thread as soon as it is woken: sets its time slice to
/// [`LOW_LATENCY_SLICE`] (see the module's documentation), keeping its policy and nice value.
/// Call it on the thread that waits for frames (for tokio, in the runtime's threads, e.g. from
/// `Builder::on_thread_start`). Returns the slice the kernel now reports for the thread.
///
/// On a kernel without per-thread slices, a thread that is not `SCHED_OTHER`, or where the call
/// is forbidden, the thread is left as it was and the error says why; readers work either way.
pub fn prefer_low_latency() -> Result<Duration, SchedError> {
    let mut attr = get()?;
    if attr.sched_policy != SCHED_OTHER {
        return Err(SchedError::Policy {
            policy: attr.sched_policy,
        });
    }
    attr.sched_flags &= SCHED_FLAG_RESET_ON_FORK;
    attr.sched_runtime = LOW_LATENCY_SLICE.as_nanos() as u64;
    set(&attr)?;
    // Kernels before 6.12 accept and ignore `sched_runtime` for normal threads, and report 0.
    match get()?.sched_runtime {
        0 => Err(SchedError::Unsupported),
        ns => Ok(Duration::from_nanos(ns)),
    }
}

/// The calling thread's scheduling attributes.
fn get() -> Result<libc::sched_attr, SchedError> {
    // SAFETY: `sched_attr` is plain integers, for which all zeroes is a valid value.
    let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::sched_attr>() as libc::c_uint;
    // SAFETY: `sched_getattr(0, attr, size, 0)` writes at most `size` bytes to `attr`, which is
    // that large and lives across the call.
    let rc = unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &mut attr, size, 0) };
    check(rc, "sched_getattr")?;
    Ok(attr)
}

/// Sets the calling thread's scheduling attributes.
fn set(attr: &libc::sched_attr) -> Result<(), SchedError> {
    let mut attr = *attr;
    attr.size = std::mem::size_of::<libc::sched_attr>() as u32;
    // SAFETY: `sched_setattr(0, attr, 0)` reads `attr.size` bytes from `attr`, a whole
    // `sched_attr` that lives across the call.
    let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr, 0) };
    check(rc, "sched_setattr")
}

fn check(rc: libc::c_long, op: &'static str) -> Result<(), SchedError> {
    if rc == 0 {
        return Ok(());
    }
    match Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)) {
        Errno::NOSYS => Err(SchedError::Unsupported),
        source => Err(SchedError::Io { op, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's version as (major, minor).
    fn kernel() -> (u32, u32) {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut parts = release.split(|c: char| !c.is_ascii_digit());
        let mut next = || parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        (next(), next())
    }

    #[test]
    fn the_slice_is_shortened_and_the_nice_value_kept() {
        // A thread of its own: the test harness's threads keep their slice.
        std::thread::spawn(|| {
            let tid = rustix::thread::gettid();
            rustix::process::setpriority_process(Some(tid), 3).unwrap();
            let before = get().unwrap();
            assert_eq!(before.sched_nice, 3);
            match prefer_low_latency() {
                Ok(slice) => {
                    assert_eq!(slice, LOW_LATENCY_SLICE);
                    let after = get().unwrap();
                    assert_eq!(after.sched_runtime, 100_000);
                    assert_eq!((after.sched_policy, after.sched_nice), (SCHED_OTHER, 3));
                }
                Err(SchedError::Unsupported) => {
                    assert!(
                        kernel() < (6, 12),
                        "custom slices exist since 6.12: {:?}",
                        kernel()
                    );
                    eprintln!("skipped: kernel {:?} has no per-thread slices", kernel());
                }
                Err(e) => panic!("{e}"),
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_thread_that_is_not_sched_other_is_left_alone() {
        std::thread::spawn(|| {
            let mut attr = get().unwrap();
            attr.sched_policy = 3; // SCHED_BATCH: allowed without privilege
            set(&attr).unwrap();
            assert_eq!(prefer_low_latency(), Err(SchedError::Policy { policy: 3 }));
            assert_eq!(get().unwrap().sched_policy, 3);
        })
        .join()
        .unwrap();
    }
}
