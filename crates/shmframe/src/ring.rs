//! The lock-free core: a seqlock per slot and the choice of slots, with no system calls, so that
//! it can be model-checked with loom (`RUSTFLAGS="--cfg loom" cargo test -p shmframe --lib ring`)
//! and run under miri.
//!
//! A slot's stamp encodes which frame it holds:
//!
//! | stamp        | meaning                               |
//! |--------------|---------------------------------------|
//! | `0`          | never written (or a loan discarded)   |
//! | `2*i + 1`    | frame `i` is being written            |
//! | `2*i + 2`    | frame `i` is complete                 |
//!
//! The writer brackets every write with [`begin_write`]/[`end_write`]; a reader takes
//! [`read_begin`], copies, and keeps the copy only if [`read_validate`] says the stamp did not
//! move. This is crossbeam's `SeqLock` (`optimistic_read`/`validate_read`) with the frame index
//! folded into the stamp, so that a reader also learns *which* frame it copied.
//!
//! The copy a reader makes while a writer may be writing is a data race in the language's
//! abstract model. It is contained the way crossbeam contains it: the bytes are copied into a
//! buffer that is not trusted (never interpreted) until validation succeeds, and a failed
//! validation throws the copy away. Across processes the "other thread" is outside the abstract
//! machine anyway; the orderings below are what make the validation sound on real hardware.

pub(crate) mod primitive {
    pub(crate) use core::sync::atomic::Ordering;
    #[cfg(not(loom))]
    pub(crate) use core::sync::atomic::{fence, AtomicU64};
    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::{fence, AtomicU64};
}

use primitive::{fence, AtomicU64, Ordering};

/// The stamp of a complete frame `index`.
#[inline]
pub const fn stable_stamp(index: u64) -> u64 {
    2 * index + 2
}

/// The frame a stamp says is complete in its slot, or `None` if the slot is empty or being written.
#[inline]
pub const fn stable_index(stamp: u64) -> Option<u64> {
    if stamp == 0 || stamp % 2 == 1 {
        None
    } else {
        Some(stamp / 2 - 1)
    }
}

/// Marks the slot as being written with frame `index`. Every later store to the slot's data is
/// ordered after this one.
#[inline]
pub fn begin_write(stamp: &AtomicU64, index: u64) {
    stamp.store(2 * index + 1, Ordering::Relaxed);
    // SYNC POINT: a reader that observes any of the data stores that follow, and then issues its
    // acquire fence in `read_validate`, also observes the odd stamp and rejects its copy.
    fence(Ordering::Release);
}

/// Marks frame `index` complete.
#[inline]
pub fn end_write(stamp: &AtomicU64, index: u64) {
    // SYNC POINT: release, so a reader whose `read_begin` acquires this value sees all data
    // stores of the frame.
    stamp.store(stable_stamp(index), Ordering::Release);
}

/// Abandons a write started with [`begin_write`]: the slot is empty afterwards.
#[inline]
pub fn abandon_write(stamp: &AtomicU64) {
    stamp.store(0, Ordering::Release);
}

/// Starts an optimistic read. Returns the stamp if the slot holds a complete frame.
#[inline]
pub fn read_begin(stamp: &AtomicU64) -> Option<u64> {
    // SYNC POINT: acquire pairs with the release store in `end_write`.
    let s = stamp.load(Ordering::Acquire);
    stable_index(s).map(|_| s)
}

/// Ends an optimistic read: `true` if nothing was written to the slot since `read_begin`
/// returned `begun`, so the copy made in between is the frame whole.
#[inline]
pub fn read_validate(stamp: &AtomicU64, begun: u64) -> bool {
    // SYNC POINT: the acquire fence orders the data loads before the stamp reload; pairs with the
    // release fence in `begin_write`.
    fence(Ordering::Acquire);
    stamp.load(Ordering::Relaxed) == begun
}

/// The slot holding the oldest complete frame with index greater than `after` (or any, for
/// `None`), as `(slot, index)`. `stamps` yields each slot's stamp.
pub fn oldest_after(stamps: impl Iterator<Item = u64>, after: Option<u64>) -> Option<(u32, u64)> {
    let mut best: Option<(u32, u64)> = None;
    for (slot, s) in stamps.enumerate() {
        if let Some(i) = stable_index(s) {
            if after.is_some_and(|a| i <= a) {
                continue;
            }
            if best.is_none_or(|(_, b)| i < b) {
                best = Some((slot as u32, i));
            }
        }
    }
    best
}

/// The slot holding the newest complete frame with index greater than `after`.
pub fn newest_after(stamps: impl Iterator<Item = u64>, after: Option<u64>) -> Option<(u32, u64)> {
    let mut best: Option<(u32, u64)> = None;
    for (slot, s) in stamps.enumerate() {
        if let Some(i) = stable_index(s) {
            if after.is_some_and(|a| i <= a) {
                continue;
            }
            if best.is_none_or(|(_, b)| i > b) {
                best = Some((slot as u32, i));
            }
        }
    }
    best
}

/// The order in which the writer tries slots for its next frame: starting after the slot it used
/// last, so that the oldest frame is overwritten first; pinned slots are skipped by the caller.
pub fn write_order(last: u32, slot_count: u32) -> impl Iterator<Item = u32> {
    (1..=slot_count).map(move |k| (last + k) % slot_count)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn stamps() {
        assert_eq!(stable_index(0), None);
        assert_eq!(stable_index(1), None);
        assert_eq!(stable_index(2), Some(0));
        assert_eq!(stable_index(stable_stamp(41)), Some(41));
        let s = AtomicU64::new(0);
        assert_eq!(read_begin(&s), None);
        begin_write(&s, 5);
        assert_eq!(read_begin(&s), None);
        end_write(&s, 5);
        let b = read_begin(&s).unwrap();
        assert!(read_validate(&s, b));
        begin_write(&s, 6);
        assert!(!read_validate(&s, b));
        abandon_write(&s);
        assert_eq!(read_begin(&s), None);
    }

    #[test]
    fn choosing_slots() {
        let st = [
            stable_stamp(7),
            stable_stamp(5),
            0,
            2 * 9 + 1,
            stable_stamp(6),
        ];
        assert_eq!(oldest_after(st.iter().copied(), None), Some((1, 5)));
        assert_eq!(oldest_after(st.iter().copied(), Some(5)), Some((4, 6)));
        assert_eq!(oldest_after(st.iter().copied(), Some(7)), None);
        assert_eq!(newest_after(st.iter().copied(), Some(5)), Some((0, 7)));
        assert_eq!(newest_after(st.iter().copied(), Some(7)), None);
        assert_eq!(write_order(1, 3).collect::<Vec<_>>(), vec![2, 0, 1]);
        assert_eq!(write_order(2, 3).collect::<Vec<_>>(), vec![0, 1, 2]);
    }
}

/// Model checks: `RUSTFLAGS="--cfg loom" cargo test -p shmframe --lib --release ring::loom_tests`.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// A slot of two words of "payload" that the writer fills with the frame index; written with
    /// relaxed stores like the bytes of a memcpy.
    struct Slot {
        stamp: AtomicU64,
        data: [AtomicU64; 2],
    }

    impl Slot {
        fn new() -> Self {
            Slot {
                stamp: AtomicU64::new(0),
                data: [AtomicU64::new(0), AtomicU64::new(0)],
            }
        }
        fn write(&self, index: u64) {
            begin_write(&self.stamp, index);
            for d in &self.data {
                d.store(index + 1, Ordering::Relaxed);
            }
            end_write(&self.stamp, index);
        }
        /// Returns the frame index read, if the read validated, after checking the copy is whole.
        fn read(&self) -> Option<u64> {
            let b = read_begin(&self.stamp)?;
            let copy: Vec<u64> = self
                .data
                .iter()
                .map(|d| d.load(Ordering::Relaxed))
                .collect();
            if !read_validate(&self.stamp, b) {
                return None;
            }
            let index = stable_index(b).unwrap();
            assert!(
                copy.iter().all(|&v| v == index + 1),
                "torn read: {copy:?} for frame {index}"
            );
            Some(index)
        }
    }

    #[test]
    fn overwrite_during_read_is_detected() {
        loom::model(|| {
            let slot = Arc::new(Slot::new());
            let w = {
                let slot = slot.clone();
                thread::spawn(move || {
                    slot.write(0);
                    slot.write(1);
                })
            };
            let r = {
                let slot = slot.clone();
                thread::spawn(move || slot.read())
            };
            let _ = slot.read();
            w.join().unwrap();
            let _ = r.join().unwrap();
            assert_eq!(slot.read(), Some(1));
        });
    }

    #[test]
    fn two_readers_wraparound() {
        loom::model(|| {
            // Two slots, three frames: frame 2 wraps onto slot 0 while readers read.
            let slots = Arc::new([Slot::new(), Slot::new()]);
            let w = {
                let slots = slots.clone();
                thread::spawn(move || {
                    let mut last = 1;
                    for i in 0..3u64 {
                        let s = write_order(last, 2).next().unwrap();
                        slots[s as usize].write(i);
                        last = s;
                    }
                })
            };
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let slots = slots.clone();
                    thread::spawn(move || {
                        let stamps = slots.iter().map(|s| s.stamp.load(Ordering::Acquire));
                        if let Some((slot, want)) = newest_after(stamps, None) {
                            if let Some(got) = slots[slot as usize].read() {
                                assert!(got >= want);
                            }
                        }
                    })
                })
                .collect();
            w.join().unwrap();
            for r in readers {
                r.join().unwrap();
            }
        });
    }
}
