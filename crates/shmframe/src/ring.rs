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
    #[cfg(not(loom))]
    pub(crate) use core::sync::atomic::AtomicU64;
    pub(crate) use core::sync::atomic::Ordering;
    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::AtomicU64;
}

// `AtomicU64` is the test models' slot word (loom's under `cfg(loom)`).
#[allow(unused_imports)]
use primitive::{AtomicU64, Ordering};

/// A slot's stamp word. The library passes the `std` atomic that lives in shared memory; the loom
/// model checks pass loom's, so that the very functions below are what loom explores (the rest of
/// the library keeps `std` atomics, which are what a mapping holds, under `cfg(loom)` too).
pub trait StampWord {
    /// Atomic load.
    fn load_stamp(&self, order: Ordering) -> u64;
    /// Atomic store.
    fn store_stamp(&self, value: u64, order: Ordering);
    /// A memory fence of the same world as the word (the hardware's, or loom's model).
    fn fence(order: Ordering);
}

impl StampWord for core::sync::atomic::AtomicU64 {
    #[inline]
    fn load_stamp(&self, order: Ordering) -> u64 {
        self.load(order)
    }
    #[inline]
    fn store_stamp(&self, value: u64, order: Ordering) {
        self.store(value, order)
    }
    #[inline]
    fn fence(order: Ordering) {
        core::sync::atomic::fence(order)
    }
}

#[cfg(loom)]
impl StampWord for loom::sync::atomic::AtomicU64 {
    fn load_stamp(&self, order: Ordering) -> u64 {
        self.load(order)
    }
    fn store_stamp(&self, value: u64, order: Ordering) {
        self.store(value, order)
    }
    fn fence(order: Ordering) {
        loom::sync::atomic::fence(order)
    }
}

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
pub fn begin_write<S: StampWord>(stamp: &S, index: u64) {
    stamp.store_stamp(2 * index + 1, Ordering::Relaxed);
    // SYNC POINT: a reader that observes any of the data stores that follow, and then issues its
    // acquire fence in `read_validate`, also observes the odd stamp and rejects its copy.
    S::fence(Ordering::Release);
}

/// Marks frame `index` complete.
#[inline]
pub fn end_write<S: StampWord>(stamp: &S, index: u64) {
    // SYNC POINT: release, so a reader whose `read_begin` acquires this value sees all data
    // stores of the frame.
    stamp.store_stamp(stable_stamp(index), Ordering::Release);
}

/// Abandons a write started with [`begin_write`]: the slot is empty afterwards.
#[inline]
pub fn abandon_write<S: StampWord>(stamp: &S) {
    stamp.store_stamp(0, Ordering::Release);
}

/// Starts an optimistic read. Returns the stamp if the slot holds a complete frame.
#[inline]
pub fn read_begin<S: StampWord>(stamp: &S) -> Option<u64> {
    // SYNC POINT: acquire pairs with the release store in `end_write`.
    let s = stamp.load_stamp(Ordering::Acquire);
    stable_index(s).map(|_| s)
}

/// Ends an optimistic read: `true` if nothing was written to the slot since `read_begin`
/// returned `begun`, so the copy made in between is the frame whole.
#[inline]
pub fn read_validate<S: StampWord>(stamp: &S, begun: u64) -> bool {
    // SYNC POINT: the acquire fence orders the data loads before the stamp reload; pairs with the
    // release fence in `begin_write`.
    S::fence(Ordering::Acquire);
    stamp.load_stamp(Ordering::Relaxed) == begun
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

    /// A writer thread laps a two-slot ring while two reader threads copy and validate. Every
    /// copy that validates must be whole. Data words are atomics (relaxed, like the bytes of a
    /// memcpy), so under miri (`cargo +nightly miri test -p shmframe --lib ring::`) the data-race
    /// detector checks the protocol's orderings, not just the assertion.
    #[test]
    fn threaded_seqlock_never_validates_a_torn_copy() {
        use std::sync::atomic::AtomicU64 as Word;
        const WORDS: usize = 8;
        let frames: u64 = if cfg!(miri) { 60 } else { 20_000 };
        struct Slot {
            stamp: AtomicU64,
            data: [Word; WORDS],
        }
        let slots: [Slot; 2] = std::array::from_fn(|_| Slot {
            stamp: AtomicU64::new(0),
            data: std::array::from_fn(|_| Word::new(0)),
        });
        let slots = &slots;
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let mut last = 1;
                for i in 0..frames {
                    let k = write_order(last, 2).next().unwrap();
                    let slot = &slots[k as usize];
                    begin_write(&slot.stamp, i);
                    for w in &slot.data {
                        w.store(i + 1, Ordering::Relaxed);
                    }
                    end_write(&slot.stamp, i);
                    last = k;
                }
            });
            for _ in 0..2 {
                scope.spawn(move || {
                    let mut validated = 0u64;
                    let mut last = None;
                    while last.is_none_or(|l| l + 1 < frames) {
                        let stamps = slots.iter().map(|s| s.stamp.load(Ordering::Acquire));
                        let Some((k, index)) = newest_after(stamps, last) else {
                            std::hint::spin_loop();
                            continue;
                        };
                        let slot = &slots[k as usize];
                        let Some(begun) = read_begin(&slot.stamp) else {
                            continue;
                        };
                        let copy: Vec<u64> = slot
                            .data
                            .iter()
                            .map(|w| w.load(Ordering::Relaxed))
                            .collect();
                        if !read_validate(&slot.stamp, begun) {
                            continue;
                        }
                        let got = stable_index(begun).unwrap();
                        assert!(got >= index);
                        assert!(
                            copy.iter().all(|&v| v == got + 1),
                            "torn copy {copy:?} of frame {got}"
                        );
                        validated += 1;
                        last = Some(got);
                    }
                    assert!(validated > 0);
                });
            }
        });
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

    /// A model of the shared futex: `wait` sleeps only if the word still holds `expected`, checked
    /// under the same lock `wake_all` takes (the kernel's hash-bucket lock), so a change made
    /// before `wake_all` is either seen by the check or followed by the wake-up.
    struct Futex {
        word: loom::sync::atomic::AtomicU32,
        lock: loom::sync::Mutex<()>,
        cv: loom::sync::Condvar,
    }

    impl Futex {
        fn new() -> Self {
            Futex {
                word: loom::sync::atomic::AtomicU32::new(0),
                lock: loom::sync::Mutex::new(()),
                cv: loom::sync::Condvar::new(),
            }
        }
        fn wait(&self, expected: u32) {
            let g = self.lock.lock().unwrap();
            if self.word.load(Ordering::SeqCst) == expected {
                drop(self.cv.wait(g).unwrap());
            }
        }
        fn wake_all(&self) {
            drop(self.lock.lock().unwrap());
            self.cv.notify_all();
        }
    }

    /// The writer's `commit` and the reader's `wait_for`, reduced to one slot and one frame.
    struct Channel {
        slot: Slot,
        head: AtomicU64,
        wake: Futex,
    }

    impl Channel {
        fn new() -> Self {
            Channel {
                slot: Slot::new(),
                head: AtomicU64::new(0),
                wake: Futex::new(),
            }
        }
        /// `Writer::write` + `commit`: stamp, head (release), bump the word (SeqCst), wake.
        fn publish(&self, index: u64) {
            self.slot.write(index);
            self.head.store(index + 1, Ordering::Release);
            self.wake.word.fetch_add(1, Ordering::SeqCst);
            self.wake.wake_all();
        }
        /// `Reader::wait_for`: load the word, look for a frame, sleep on the word if none.
        /// `load_word_first == false` is the broken order (look, then load the word).
        fn receive(&self, load_word_first: bool) -> u64 {
            loop {
                let mut w = if load_word_first {
                    self.wake.word.load(Ordering::SeqCst)
                } else {
                    0
                };
                if let Some(i) = self.slot.read() {
                    return i;
                }
                if !load_word_first {
                    w = self.wake.word.load(Ordering::SeqCst);
                    loom::thread::yield_now();
                }
                self.wake.wait(w);
            }
        }
    }

    /// No lost wake-up: a reader that finds no frame and goes to sleep is always woken by the
    /// publish it raced with (loom reports a deadlock otherwise).
    #[test]
    fn no_lost_wakeup() {
        loom::model(|| {
            let ch = Arc::new(Channel::new());
            let r = {
                let ch = ch.clone();
                thread::spawn(move || ch.receive(true))
            };
            ch.publish(0);
            assert_eq!(r.join().unwrap(), 0);
        });
    }

    /// The model is strong enough to catch the bug it guards against: loading the word *after*
    /// looking for frames loses the wake-up of a publish that lands in between. Loom reports that
    /// as a deadlock and aborts the process (it cannot be caught with `should_panic`), so this
    /// one is run by hand: `… ring::loom_tests -- --ignored` must fail.
    #[test]
    #[ignore = "demonstrates a bug; loom must abort with a deadlock"]
    fn lost_wakeup_is_caught_when_the_word_is_loaded_late() {
        loom::model(|| {
            let ch = Arc::new(Channel::new());
            let r = {
                let ch = ch.clone();
                thread::spawn(move || ch.receive(false))
            };
            ch.publish(0);
            r.join().unwrap();
        });
    }

    /// A reader that sees `head == n` (acquire) finds frame `n - 1` complete in its slot, or the
    /// slot already claimed by a newer frame — never an older frame or a torn one.
    #[test]
    fn head_implies_frame_visible() {
        loom::model(|| {
            let ch = Arc::new(Channel::new());
            let w = {
                let ch = ch.clone();
                thread::spawn(move || {
                    ch.publish(0);
                    ch.publish(1);
                })
            };
            let head = ch.head.load(Ordering::Acquire);
            if head > 0 {
                let stamp = ch.slot.stamp.load(Ordering::Acquire);
                let newest = if stamp % 2 == 1 {
                    stamp / 2
                } else {
                    stable_index(stamp).expect("a published slot is not empty")
                };
                assert!(newest + 1 >= head, "head {head}, slot stamp {stamp}");
                if let Some(i) = ch.slot.read() {
                    assert!(i + 1 >= head);
                }
            }
            w.join().unwrap();
        });
    }

    /// The byte-range locks that pin slots for zero-copy views, as one table: `pins[s]` readers
    /// hold slot `s`; `writing[s]` while the writer holds its write lock (F_WRLCK cannot be taken
    /// while any F_RDLCK is held, and the other way round).
    struct Locks {
        table: loom::sync::Mutex<([u32; 2], [bool; 2])>,
    }

    impl Locks {
        fn pin(&self, s: usize) -> bool {
            let mut t = self.table.lock().unwrap();
            if t.1[s] {
                return false;
            }
            t.0[s] += 1;
            true
        }
        fn unpin(&self, s: usize) {
            self.table.lock().unwrap().0[s] -= 1;
        }
        fn try_lock_write(&self, s: usize) -> bool {
            let mut t = self.table.lock().unwrap();
            if t.0[s] > 0 {
                return false;
            }
            t.1[s] = true;
            true
        }
        fn unlock_write(&self, s: usize) {
            self.table.lock().unwrap().1[s] = false;
        }
    }

    /// Zero-copy views: a reader pins the newest slot, re-checks its stamp, and then the bytes do
    /// not change until it unpins, while the writer keeps publishing into the other slot (it
    /// never waits, and never writes a pinned slot).
    #[test]
    fn pinned_view_is_never_overwritten() {
        loom::model(|| {
            let slots = Arc::new([Slot::new(), Slot::new()]);
            let locks = Arc::new(Locks {
                table: loom::sync::Mutex::new(([0; 2], [false; 2])),
            });
            let w = {
                let (slots, locks) = (slots.clone(), locks.clone());
                thread::spawn(move || {
                    let mut last = 1;
                    let mut published = 0;
                    for i in 0..3u64 {
                        let Some(s) =
                            write_order(last, 2).find(|&s| locks.try_lock_write(s as usize))
                        else {
                            continue; // all pinned: the frame is dropped, the writer goes on
                        };
                        slots[s as usize].write(i);
                        locks.unlock_write(s as usize);
                        last = s;
                        published += 1;
                    }
                    assert!(
                        published >= 2,
                        "one pinned slot of two must leave the other"
                    );
                })
            };
            let stamps = slots.iter().map(|s| s.stamp.load(Ordering::Acquire));
            if let Some((s, index)) = newest_after(stamps, None) {
                let s = s as usize;
                if locks.pin(s) {
                    if read_begin(&slots[s].stamp) == Some(stable_stamp(index)) {
                        let a: Vec<u64> = slots[s]
                            .data
                            .iter()
                            .map(|d| d.load(Ordering::Relaxed))
                            .collect();
                        thread::yield_now();
                        let b: Vec<u64> = slots[s]
                            .data
                            .iter()
                            .map(|d| d.load(Ordering::Relaxed))
                            .collect();
                        assert_eq!(a, vec![index + 1; 2], "view of frame {index} is whole");
                        assert_eq!(a, b, "a pinned slot changed");
                        assert_eq!(slots[s].stamp.load(Ordering::Acquire), stable_stamp(index));
                    }
                    locks.unpin(s);
                }
            }
            w.join().unwrap();
        });
    }
}
