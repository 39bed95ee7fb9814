//! The clocks, read with the C library's `clock_gettime`. rustix's raw backend finds
//! `clock_gettime` by parsing the vDSO itself, which valgrind does not map: a program using
//! shmframe under valgrind crashed at its first timestamp. The C library's call goes through the
//! same vDSO where there is one, and to the system call where there is not.
#![allow(unsafe_code)]

/// The time of `clock`, in ns.
fn now_ns(clock: libc::clockid_t) -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable `timespec` for the duration of the call, which writes
    // nothing else. The two clocks used here exist on every Linux kernel, so the call does not
    // fail (if it did, `t` would stay 0).
    unsafe { libc::clock_gettime(clock, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// CLOCK_MONOTONIC in nanoseconds, the clock of frame timestamps (shared by all processes on one
/// host).
pub fn monotonic_ns() -> u64 {
    now_ns(libc::CLOCK_MONOTONIC)
}

/// CLOCK_REALTIME in nanoseconds since the Unix epoch.
pub(crate) fn realtime_ns() -> u64 {
    now_ns(libc::CLOCK_REALTIME)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same clocks as the standard library's (which also reads them through libc).
    #[test]
    fn clocks_agree_with_std() {
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        assert!(realtime_ns().abs_diff(real) < 1_000_000_000);
        // a ≤ i ≤ b on one clock; then `later`, read after `e`, is at least `e` past `a`.
        let (a, i, b) = (monotonic_ns(), std::time::Instant::now(), monotonic_ns());
        assert!(a <= b);
        let e = i.elapsed().as_nanos() as u64;
        let later = monotonic_ns();
        assert!(later - a >= e, "{later} - {a} < {e}");
    }
}
