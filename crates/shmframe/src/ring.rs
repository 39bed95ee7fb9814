//! The lock-free core: a seqlock per slot and the choice of slots, with no system calls, so that
//! it can be model-checked with loom (`RUSTFLAGS="--cfg shmframe_loom" cargo test -p shmframe --lib ring`)
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
//! The writer brackets every write with [`begin_write`]/[`end_write`]. A reader never trusts a
//! slot it has not pinned: it sets the slot's bit in its own pin word ([`pin`]), re-checks the
//! stamp ([`verify_pinned`]) and from then on the bytes cannot change until [`unpin`], because
//! the writer's [`claim`] refuses a pinned slot — a hazard-pointer handshake in shared memory,
//! no system call on either side. Views and copies both read pinned slots, so a copy is never
//! thrown away. [`read_begin`]/[`read_validate`] remain for snapshots of slots nobody pins
//! (`shmframe info`): crossbeam's `SeqLock` (`optimistic_read`/`validate_read`) with the frame
//! index folded into the stamp. Such a copy is a data race in the language's abstract model,
//! contained the way crossbeam contains it: the bytes are not trusted until validation succeeds.
//!
//! Wake-ups cost a system call only when a reader sleeps: the writer bumps `wake` and reads the
//! sleeper count with a read-modify-write ([`bump_wake`]); a reader counts itself in before its
//! last look at `wake` ([`announce_sleep`]). Sleepers wait on a second word, the bell, which the
//! writer rings ([`ring_bell`]) before each `FUTEX_WAKE`: it lies in the pin table, which readers
//! map read-write (a futex wait on a read-only mapping costs the kernel more).

pub(crate) mod primitive {
    pub(crate) use core::sync::atomic::Ordering;
    #[cfg(not(shmframe_loom))]
    pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64};
    #[cfg(shmframe_loom)]
    pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64};
}

// `AtomicU64`/`AtomicU32` are the test models' words (loom's under `cfg(shmframe_loom)`).
#[allow(unused_imports)]
use primitive::{AtomicU32, AtomicU64, Ordering};

use crate::layout::MAX_SLOTS;

/// A 64-bit word in shared memory: a slot's stamp or a reader's pin word. The library passes the
/// `std` atomic that lives in the mapping; the loom model checks pass loom's, so that the very
/// functions below are what loom explores (the rest of the library keeps `std` atomics, which are
/// what a mapping holds, under `cfg(shmframe_loom)` too).
pub trait Word {
    /// Atomic load.
    fn load(&self, order: Ordering) -> u64;
    /// Atomic store.
    fn store(&self, value: u64, order: Ordering);
    /// Atomic `|=`, returning the previous value.
    fn fetch_or(&self, value: u64, order: Ordering) -> u64;
    /// Atomic `&=`, returning the previous value.
    fn fetch_and(&self, value: u64, order: Ordering) -> u64;
    /// A memory fence of the same world as the word (the hardware's, or loom's model).
    fn fence(order: Ordering);
}

/// A 32-bit word in shared memory: `wake`, the `sleepers` count or the bell.
pub trait Word32 {
    /// Atomic load.
    fn load(&self, order: Ordering) -> u32;
    /// Atomic store.
    fn store(&self, value: u32, order: Ordering);
    /// Atomic `+=`, returning the previous value.
    fn fetch_add(&self, value: u32, order: Ordering) -> u32;
    /// Atomic `-=`, returning the previous value.
    fn fetch_sub(&self, value: u32, order: Ordering) -> u32;
}

macro_rules! impl_words {
    ($a64:ty, $a32:ty, $fence:path) => {
        impl Word for $a64 {
            #[inline]
            fn load(&self, order: Ordering) -> u64 {
                <$a64>::load(self, order)
            }
            #[inline]
            fn store(&self, value: u64, order: Ordering) {
                <$a64>::store(self, value, order)
            }
            #[inline]
            fn fetch_or(&self, value: u64, order: Ordering) -> u64 {
                <$a64>::fetch_or(self, value, order)
            }
            #[inline]
            fn fetch_and(&self, value: u64, order: Ordering) -> u64 {
                <$a64>::fetch_and(self, value, order)
            }
            #[inline]
            fn fence(order: Ordering) {
                $fence(order)
            }
        }
        impl Word32 for $a32 {
            #[inline]
            fn load(&self, order: Ordering) -> u32 {
                <$a32>::load(self, order)
            }
            #[inline]
            fn store(&self, value: u32, order: Ordering) {
                <$a32>::store(self, value, order)
            }
            #[inline]
            fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
                <$a32>::fetch_add(self, value, order)
            }
            #[inline]
            fn fetch_sub(&self, value: u32, order: Ordering) -> u32 {
                <$a32>::fetch_sub(self, value, order)
            }
        }
    };
}

impl_words!(
    core::sync::atomic::AtomicU64,
    core::sync::atomic::AtomicU32,
    core::sync::atomic::fence
);
#[cfg(shmframe_loom)]
impl_words!(
    loom::sync::atomic::AtomicU64,
    loom::sync::atomic::AtomicU32,
    loom::sync::atomic::fence
);

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
pub fn begin_write<S: Word>(stamp: &S, index: u64) {
    stamp.store(2 * index + 1, Ordering::Relaxed);
    // SYNC POINT: a reader that observes any of the data stores that follow, and then issues its
    // acquire fence in `read_validate`, also observes the odd stamp and rejects its copy.
    S::fence(Ordering::Release);
}

/// Marks frame `index` complete.
#[inline]
pub fn end_write<S: Word>(stamp: &S, index: u64) {
    // SYNC POINT: release, so a reader whose `read_begin` acquires this value sees all data
    // stores of the frame.
    stamp.store(stable_stamp(index), Ordering::Release);
}

/// Abandons a write started with [`begin_write`]: the slot is empty afterwards.
#[inline]
pub fn abandon_write<S: Word>(stamp: &S) {
    stamp.store(0, Ordering::Release);
}

/// Starts an optimistic read. Returns the stamp if the slot holds a complete frame.
#[inline]
pub fn read_begin<S: Word>(stamp: &S) -> Option<u64> {
    // SYNC POINT: a relaxed load and an acquire fence (readers map the channel read-only, where
    // only relaxed atomic loads are defined): pairs with the release store in `end_write`.
    let s = stamp.load(Ordering::Relaxed);
    S::fence(Ordering::Acquire);
    stable_index(s).map(|_| s)
}

/// Ends an optimistic read: `true` if nothing was written to the slot since `read_begin`
/// returned `begun`, so the copy made in between is the frame whole.
#[inline]
pub fn read_validate<S: Word>(stamp: &S, begun: u64) -> bool {
    // SYNC POINT: the acquire fence orders the data loads before the stamp reload; pairs with the
    // release fence in `begin_write`.
    S::fence(Ordering::Acquire);
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

/// The order in which the writer tries slots for its next frame (pinned ones are skipped by the
/// caller). `stamps` yields every slot's stamp, `last` is the slot of the newest frame, and every
/// attached reader has taken or passed over every frame below `taken`.
///
/// 1. Slots whose frame every attached reader is done with, the most recently written first —
///    the newest frame's own slot too, once every attached reader has taken it. A writer whose
///    readers keep up between frames then writes one slot again and again, and while a reader
///    still holds the newest frame it alternates between two: slots whose bytes are still in the
///    caches, instead of a sweep of the whole ring through memory.
/// 2. Empty slots (never written, or a write was abandoned).
/// 3. Frames some reader has yet to take, the oldest first: a reader that lags keeps the most
///    frames it can.
/// 4. The newest frame, last, while some reader has yet to take it or no reader is attached: a
///    reader attaching now wants it.
pub fn write_order(last: u32, stamps: impl Iterator<Item = u64>, taken: u64) -> WriteOrder {
    let mut stamp = [0u64; MAX_SLOTS as usize];
    let mut count = 0;
    for (slot, s) in stamp.iter_mut().zip(stamps) {
        *slot = s;
        count += 1;
    }
    WriteOrder {
        last,
        count,
        stamp,
        taken,
        after: None,
    }
}

/// One step of [`write_order`] without a list: the first slot of `count` (slot `s` holding
/// `stamp(s)`) that comes after the slot whose key is `after` (`None`: the first slot), with its
/// key to pass as `after` for the next. Each step reads every stamp again, so a writer that
/// finds its first choice free (the usual case) reads each stamp once and sorts nothing.
#[inline]
pub fn next_in_write_order(
    last: u32,
    count: u32,
    stamp: impl Fn(u32) -> u64,
    taken: u64,
    after: Option<u128>,
) -> Option<(u32, u128)> {
    (0..count.min(MAX_SLOTS))
        .map(|slot| order_key(last, slot, stamp(slot), taken))
        .filter(|&k| after.is_none_or(|a| k > a))
        .min()
        .map(|k| (k as u32, k))
}

/// Where `slot`, holding `stamp`, comes in [`write_order`]: the class in bits 96.., the rank
/// within the class in bits 32..96, the slot in bits 0..32, so that keys are distinct and the
/// smaller is tried first.
#[inline]
fn order_key(last: u32, slot: u32, stamp: u64, taken: u64) -> u128 {
    let key = |class: u128, rank: u64| class << 96 | (rank as u128) << 32 | slot as u128;
    match stable_index(stamp) {
        // With no reader attached (`taken` is `u64::MAX`) the newest frame is kept for one that
        // attaches; once every attached reader has taken it, its slot is reused first.
        Some(i) if i < taken && (slot != last || taken != u64::MAX) => key(0, u64::MAX - i),
        _ if slot == last => key(3, 0),
        Some(i) => key(2, i),
        None => key(1, 0),
    }
}

/// The slots of [`write_order`], in order.
pub struct WriteOrder {
    last: u32,
    count: u32,
    stamp: [u64; MAX_SLOTS as usize],
    taken: u64,
    after: Option<u128>,
}

impl Iterator for WriteOrder {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let stamp = &self.stamp;
        let (slot, key) = next_in_write_order(
            self.last,
            self.count,
            |s| stamp[s as usize],
            self.taken,
            self.after,
        )?;
        self.after = Some(key);
        Some(slot)
    }
}

/// Why [`claim`] did not give the writer its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pinned {
    /// Bit `e` set: pin entry `e` pins the slot.
    pub entries: u64,
}

/// The writer's claim on a slot for frame `index`, against the readers' pins (a hazard-pointer
/// handshake, no system call). `bit` is the slot's bit in a pin word and `pins` yields every
/// reader's pin word for the slot's ring, in entry order.
///
/// First a cheap look (relaxed loads) skips a slot that is visibly pinned. Otherwise the slot is
/// marked (odd stamp, [`begin_write`]) and every pin word is read with a read-modify-write; if
/// one pins the slot the stamp is put back (the data was not touched) and the slot is refused.
///
/// Why this cannot miss a reader that is pinning the slot at the same moment ([`pin`] then
/// [`verify_pinned`]): the writer's read-modify-write of the reader's pin word and the reader's
/// own one are ordered one way or the other in that word's modification order. If the reader's
/// came first, the writer sees the pin. If the writer's came first, the reader's acquire reads
/// from it (release sequence), so the odd stamp stored before it is visible to the reader's
/// re-check, which then fails. The same argument as Dekker's with two `SeqCst` fences, phrased
/// with read-modify-writes, whose order loom models exactly.
pub fn claim<'a, S: Word + 'a>(
    stamp: &S,
    index: u64,
    bit: u64,
    pins: impl Iterator<Item = &'a S> + Clone,
) -> Result<(), Pinned> {
    let visible = pinning(pins.clone(), bit, false);
    if visible != 0 {
        return Err(Pinned { entries: visible });
    }
    let old = stamp.load(Ordering::Relaxed);
    begin_write(stamp, index);
    let entries = pinning(pins, bit, true);
    if entries != 0 {
        // The data is untouched: putting the old stamp back makes the slot what it was.
        stamp.store(old, Ordering::Release);
        return Err(Pinned { entries });
    }
    Ok(())
}

/// The entries (bit `e` for entry `e`) whose pin word has `bit` set; with `rmw`, read with
/// read-modify-writes.
fn pinning<'a, S: Word + 'a>(pins: impl Iterator<Item = &'a S>, bit: u64, rmw: bool) -> u64 {
    let mut entries = 0u64;
    for (e, w) in pins.enumerate() {
        let v = if rmw {
            // SYNC POINT: AcqRel read-modify-write: the release half publishes the odd stamp to a
            // reader whose pin follows in the word's order; the acquire half makes a reader's
            // unpin (release) happen before our writes to the slot.
            w.fetch_or(0, Ordering::AcqRel)
        } else {
            w.load(Ordering::Relaxed)
        };
        if v & bit != 0 {
            entries |= 1 << (e & 63);
        }
    }
    entries
}

/// A reader pins `bit` in its pin word, before [`verify_pinned`].
#[inline]
pub fn pin<S: Word>(word: &S, bit: u64) {
    // SYNC POINT: AcqRel read-modify-write, see `claim`.
    word.fetch_or(bit, Ordering::AcqRel);
}

/// After [`pin`]: `true` if the slot still holds frame `index`, which then cannot change until
/// [`unpin`]. On `false` the caller unpins and looks again.
#[inline]
pub fn verify_pinned<S: Word>(stamp: &S, index: u64) -> bool {
    let s = stamp.load(Ordering::Relaxed);
    // SYNC POINT: acquire fence after the relaxed load (read-only mapping): pairs with the release
    // store of `end_write`, so the frame's bytes are visible.
    S::fence(Ordering::Acquire);
    s == stable_stamp(index)
}

/// Releases a pin taken with [`pin`].
#[inline]
pub fn unpin<S: Word>(word: &S, bit: u64) {
    // SYNC POINT: release: the reader's reads of the slot happen before a writer's claim that
    // sees the bit clear (its read-modify-write acquires).
    word.fetch_and(!bit, Ordering::AcqRel);
}

/// The writer, after storing `head` for a new frame: bumps `wake` and says whether any reader
/// sleeps (or is about to), i.e. whether to ring the bell ([`ring_bell`]) and call `FUTEX_WAKE`.
/// No system call otherwise.
#[inline]
pub fn bump_wake<W: Word32>(wake: &W, sleepers: &W) -> bool {
    wake.fetch_add(1, Ordering::Release);
    // SYNC POINT: a read-modify-write of `sleepers`, ordered against the reader's in
    // `announce_sleep`: either we see its count, or it sees our bump of `wake` (see `claim` for the
    // argument).
    sleepers.fetch_add(0, Ordering::AcqRel) != 0
}

/// A reader about to sleep, which loaded `wake` as `seen` before looking for frames: counts
/// itself in `sleepers`; if `wake` did not move, returns the bell's value to sleep on
/// (`FUTEX_WAIT(bell, value)`), else `None` (look again). The caller calls [`end_sleep`]
/// afterwards either way.
#[inline]
pub fn announce_sleep<W: Word32>(wake: &W, sleepers: &W, bell: &W, seen: u32) -> Option<u32> {
    // The bell is read before counting in. A writer that sees our count rings it afterwards: its
    // read-modify-write of `sleepers` comes after ours, so this load happens before its ring and
    // cannot return the rung value; the wait then returns at once or is woken.
    let rung = bell.load(Ordering::Relaxed);
    // SYNC POINT: see `bump_wake`.
    sleepers.fetch_add(1, Ordering::AcqRel);
    (wake.load(Ordering::Relaxed) == seen).then_some(rung)
}

/// The writer, when [`publish`], [`set_state`] or any other bump of `wake` said that a reader
/// sleeps: rings the bell the sleepers wait on. `FUTEX_WAKE(bell)` follows.
#[inline]
pub fn ring_bell<W: Word32>(bell: &W) {
    bell.fetch_add(1, Ordering::Release);
}

/// Undoes [`announce_sleep`].
#[inline]
pub fn end_sleep<W: Word32>(sleepers: &W) {
    sleepers.fetch_sub(1, Ordering::Release);
}

/// The writer's last step of a publish: frame `index` is complete in the slot of `stamp`; store
/// `head` and bump `wake`. Returns `true` if the bell is to be rung (someone sleeps).
///
/// `sleepers` is looked up after the stores that make the frame visible: finding the word may
/// take loads that miss (after a large frame's copy, every structure on the way is cold), and a
/// store does not leave the core before the loads ahead of it are done.
#[inline]
pub fn publish<'w, S: Word, W: Word32 + 'w>(
    stamp: &S,
    index: u64,
    head: &S,
    wake: &W,
    sleepers: impl FnOnce() -> &'w W,
) -> bool {
    end_write(stamp, index);
    // SYNC POINT: release, after the slot's stamp is even: a reader that sees head > index finds
    // frame `index` complete (or already overwritten by a newer one).
    head.store(index + 1, Ordering::Release);
    bump_wake(wake, sleepers())
}

/// The writer closes (or gives up) the channel: stores `state` and bumps `wake`. Returns `true`
/// if the bell is to be rung (someone sleeps).
#[inline]
pub fn set_state<W: Word32>(state: &W, value: u32, wake: &W, sleepers: &W) -> bool {
    state.store(value, Ordering::Release);
    bump_wake(wake, sleepers)
}

#[cfg(all(test, not(shmframe_loom)))]
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
        let order = |last, taken| write_order(last, st.iter().copied(), taken).collect::<Vec<_>>();
        // Nobody is done with anything: empty slots, then the oldest frames; the newest last.
        assert_eq!(order(0, 0), vec![2, 3, 1, 4, 0]);
        // Every reader took frames 5 and 6: the most recent of those first.
        assert_eq!(order(0, 7), vec![4, 1, 2, 3, 0]);
        // Every reader took the newest frame too: its slot is written again first.
        assert_eq!(order(0, 8), vec![0, 4, 1, 2, 3]);
        // No reader at all (`taken` = u64::MAX): the slot of the newest frame still comes last.
        assert_eq!(order(0, u64::MAX), vec![4, 1, 2, 3, 0]);
        // Two slots: always the other one first.
        let two = [stable_stamp(3), stable_stamp(4)];
        assert_eq!(write_order(1, two.iter().copied(), 0).next(), Some(0));
        assert_eq!(write_order(0, two.iter().copied(), 9).next(), Some(1));
        // Every slot exactly once, whatever the stamps (equal frames, torn and empty slots too).
        let odd = [
            stable_stamp(4),
            0,
            stable_stamp(4),
            2 * 3 + 1,
            stable_stamp(2),
            0,
        ];
        for last in 0..odd.len() as u32 {
            for taken in [0, 3, 5, u64::MAX] {
                let mut seen = write_order(last, odd.iter().copied(), taken).collect::<Vec<_>>();
                seen.sort_unstable();
                assert_eq!(seen, (0..odd.len() as u32).collect::<Vec<_>>());
            }
        }
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
                    let k = write_order(last, [0, 0].into_iter(), 0).next().unwrap();
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

/// Model checks: `RUSTFLAGS="--cfg shmframe_loom" cargo test -p shmframe --lib --release ring::loom_tests`.
#[cfg(all(test, shmframe_loom))]
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
                        let s = write_order(last, [0, 0].into_iter(), 0).next().unwrap();
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
        lock: loom::sync::Mutex<()>,
        cv: loom::sync::Condvar,
    }

    impl Futex {
        fn wait(&self, word: &AtomicU32, expected: u32) {
            let g = self.lock.lock().unwrap();
            if word.load(Ordering::SeqCst) == expected {
                drop(self.cv.wait(g).unwrap());
            }
        }
        fn wake_all(&self) {
            drop(self.lock.lock().unwrap());
            self.cv.notify_all();
        }
    }

    /// One slot, `head`, `wake`, the sleeper count, the bell and the state: what `Writer::commit`,
    /// `Writer::close` and `Reader::wait_for` touch, driven through the library's functions.
    struct Channel {
        slot: Slot,
        head: AtomicU64,
        wake: AtomicU32,
        sleepers: AtomicU32,
        bell: AtomicU32,
        state: AtomicU32,
        futex: Futex,
    }

    impl Channel {
        fn new() -> Self {
            Channel {
                slot: Slot::new(),
                head: AtomicU64::new(0),
                wake: AtomicU32::new(0),
                sleepers: AtomicU32::new(0),
                bell: AtomicU32::new(0),
                state: AtomicU32::new(0),
                futex: Futex {
                    lock: loom::sync::Mutex::new(()),
                    cv: loom::sync::Condvar::new(),
                },
            }
        }
        /// `Writer::write`: claim, fill, `publish`, and `FUTEX_WAKE` only if asked to.
        /// `check_sleepers == false` is the broken writer that never looks at `sleepers` and
        /// never wakes.
        fn publish(&self, index: u64, check_sleepers: bool) {
            let no_pins: [AtomicU64; 0] = [];
            claim(&self.slot.stamp, index, 1, no_pins.iter()).unwrap();
            for d in &self.slot.data {
                d.store(index + 1, Ordering::Relaxed);
            }
            let wake = publish(&self.slot.stamp, index, &self.head, &self.wake, || {
                &self.sleepers
            });
            if wake && check_sleepers {
                self.ring();
            }
        }
        /// `Writer::close`.
        fn close(&self) {
            if set_state(&self.state, 1, &self.wake, &self.sleepers) {
                self.ring();
            }
        }
        /// `Writer::ring_bell`: the bell, then `FUTEX_WAKE` on it.
        fn ring(&self) {
            ring_bell(&self.bell);
            self.futex.wake_all();
        }
        /// `Reader::wait_for`: load the word, look for a frame, check the state, announce the
        /// sleep, sleep. `Err(())` when the channel closed with nothing left to read.
        fn receive(&self) -> Result<u64, ()> {
            self.receive_with(|ch, seen| announce_sleep(&ch.wake, &ch.sleepers, &ch.bell, seen))
        }
        /// As `receive`, counting in with `announce`, which returns the bell's value to sleep on.
        fn receive_with(&self, announce: impl Fn(&Self, u32) -> Option<u32>) -> Result<u64, ()> {
            loop {
                let seen = self.wake.load(Ordering::Relaxed);
                AtomicU64::fence(Ordering::Acquire);
                if let Some(i) = self.slot.read() {
                    return Ok(i);
                }
                if self.state.load(Ordering::Relaxed) == 1 {
                    AtomicU64::fence(Ordering::Acquire);
                    // Frames published before the close are complete by now: one last look.
                    return self.slot.read().ok_or(());
                }
                if let Some(rung) = announce(self, seen) {
                    self.futex.wait(&self.bell, rung);
                }
                end_sleep(&self.sleepers);
            }
        }
    }

    /// A fresh channel, one reader thread running `receive` on it while this thread runs `write`;
    /// the reader's result.
    fn race(
        receive: impl FnOnce(&Channel) -> Result<u64, ()> + Send + 'static,
        write: impl FnOnce(&Channel),
    ) -> Result<u64, ()> {
        let ch = Arc::new(Channel::new());
        let r = {
            let ch = ch.clone();
            thread::spawn(move || receive(&ch))
        };
        write(&ch);
        r.join().unwrap()
    }

    /// No lost wake-up: a reader that finds no frame and goes to sleep is always woken by the
    /// publish it raced with, although the writer skips `FUTEX_WAKE` when nobody sleeps (loom
    /// reports a deadlock otherwise).
    #[test]
    fn no_lost_wakeup() {
        loom::model(|| {
            assert_eq!(race(Channel::receive, |ch| ch.publish(0, true)), Ok(0));
        });
    }

    /// A frame published right before `close` reaches a waiting reader, then the close does.
    #[test]
    fn close_after_publish_loses_nothing() {
        loom::model(|| {
            let write = |ch: &Channel| {
                ch.publish(0, true);
                ch.close();
            };
            assert_eq!(race(Channel::receive, write), Ok(0));
        });
    }

    /// The model is strong enough to catch the bug it guards against: a writer that skips the
    /// wake-up leaves a sleeping reader asleep. Loom reports that as a deadlock and aborts the
    /// process (it cannot be caught with `should_panic`), so this one is run by hand:
    /// `… ring::loom_tests -- --ignored` must fail.
    #[test]
    #[ignore = "demonstrates a bug; loom must abort with a deadlock"]
    fn lost_wakeup_is_caught_when_the_writer_ignores_sleepers() {
        loom::model(|| {
            race(Channel::receive, |ch| ch.publish(0, false)).unwrap();
        });
    }

    /// The same for the reader's side: one that reads the bell after counting itself in (instead
    /// of before, as `announce_sleep` does) may read the value the writer has just rung and
    /// sleep on it, after the `FUTEX_WAKE`. Run by hand like the test above; it must fail.
    #[test]
    #[ignore = "demonstrates a bug; loom must abort with a deadlock"]
    fn lost_wakeup_is_caught_when_the_reader_reads_the_bell_late() {
        fn late(ch: &Channel, seen: u32) -> Option<u32> {
            ch.sleepers.fetch_add(1, Ordering::AcqRel);
            (ch.wake.load(Ordering::Relaxed) == seen).then(|| ch.bell.load(Ordering::Relaxed))
        }
        loom::model(|| {
            race(|ch| ch.receive_with(late), |ch| ch.publish(0, true)).unwrap();
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
                    ch.publish(0, true);
                    ch.publish(1, true);
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

    /// Zero-copy views through the pin table: a reader takes the newest frame, then a newer one,
    /// each by pinning its slot with `pin` and checking it with `verify_pinned`; then the bytes
    /// do not change until `unpin`, while the writer keeps publishing with `claim` into whatever
    /// slot is free (it never waits, and never writes a pinned slot). `rmw == false` is the
    /// broken writer that reads the pin words with plain loads only.
    fn pinned_view_model(rmw: bool) {
        // Counted across executions (outside the model): proof that the search reached the
        // executions that matter, so that a model that explores nothing fails.
        let seen = std::sync::Arc::new(Explored::default());
        let counts = seen.clone();
        loom::model(move || {
            counts.runs.fetch_add(1, Ordering::Relaxed);
            let slots = Arc::new([Slot::new(), Slot::new()]);
            let pins = Arc::new([AtomicU64::new(0)]);
            let done = Arc::new(AtomicU32::new(0));
            let w = {
                let (slots, pins, done) = (slots.clone(), pins.clone(), done.clone());
                let counts = counts.clone();
                thread::spawn(move || {
                    let mut last = 1;
                    let mut published = 0;
                    for i in 0..3u64 {
                        let Some(s) = write_order(last, [0, 0].into_iter(), 0).find(|&s| {
                            let stamp = &slots[s as usize].stamp;
                            if rmw {
                                let claimed = claim(stamp, i, 1 << s, pins.iter());
                                if claimed.is_err() {
                                    counts.refused.fetch_add(1, Ordering::Relaxed);
                                }
                                claimed.is_ok()
                            } else {
                                let free = pins[0].load(Ordering::Relaxed) & 1 << s == 0;
                                if free {
                                    begin_write(stamp, i);
                                }
                                free
                            }
                        }) else {
                            continue; // all pinned: the frame is dropped, the writer goes on
                        };
                        for d in &slots[s as usize].data {
                            d.store(i + 1, Ordering::Relaxed);
                        }
                        end_write(&slots[s as usize].stamp, i);
                        last = s;
                        published += 1;
                    }
                    done.store(1, Ordering::Release);
                    assert!(
                        published >= 2,
                        "one pinned slot of two must leave the other"
                    );
                })
            };
            let newest =
                |after| newest_after(slots.iter().map(|s| s.stamp.load(Ordering::Acquire)), after);
            // A view of frame `index` in slot `s`: whole, and unchanged while it is pinned.
            let view = |s: u32, index: u64| {
                pin(&pins[0], 1 << s);
                if verify_pinned(&slots[s as usize].stamp, index) {
                    let read = || -> Vec<u64> {
                        let slot = &slots[s as usize];
                        slot.data
                            .iter()
                            .map(|d| d.load(Ordering::Relaxed))
                            .collect()
                    };
                    let a = read();
                    thread::yield_now();
                    assert_eq!(a, vec![index + 1; 2], "view of frame {index} is whole");
                    assert_eq!(a, read(), "a pinned slot changed");
                }
                unpin(&pins[0], 1 << s);
            };
            // The reader waits for a frame, and for a newer one while the writer may still
            // publish it: loom searches onwards from the executions it has run, so a reader that
            // gave up on finding nothing would leave the ones that matter unexplored (as an
            // earlier version of this model did: one execution).
            let look = |after| loop {
                let found = newest(after);
                if found.is_some() || after.is_some() && done.load(Ordering::Acquire) == 1 {
                    return found;
                }
                thread::yield_now();
            };
            let (s, index) = look(None).expect("the writer publishes");
            view(s, index);
            if let Some((s, index)) = look(Some(index)) {
                view(s, index);
            }
            w.join().unwrap();
        });
        let [runs, refused] = [&seen.runs, &seen.refused].map(|c| c.load(Ordering::Relaxed));
        assert!(runs >= 100, "only {runs} executions explored");
        assert!(
            refused > 0,
            "no execution had the writer refuse a pinned slot"
        );
    }

    /// Executions of a model, counted outside loom.
    #[derive(Default)]
    struct Explored {
        runs: std::sync::atomic::AtomicUsize,
        refused: std::sync::atomic::AtomicUsize,
    }

    #[test]
    fn pinned_view_is_never_overwritten() {
        pinned_view_model(true);
    }

    /// The broken writer (plain loads of the pin words, no read-modify-write) must be caught.
    #[test]
    #[should_panic]
    fn pinned_view_is_overwritten_without_the_handshake() {
        pinned_view_model(false);
    }
}
