//! The pin table: a second object per channel, `shmframe-pins.NAME.LINEAGE`, that readers map
//! read-write while the channel itself stays read-only to them. Each attached reader owns one
//! [`PinEntry`](crate::layout::PinEntry): a pin word per ring parity (bit `s`: slot `s` pinned),
//! a sleeping flag and a cursor (the frames it is done with, which tells the writer which slots
//! to reuse first). A reader owns its entry through an exclusive lock on the entry's first
//! byte, taken once when it attaches; the writer tests that lock only when a slot has stayed
//! pinned for 100 ms (or every slot is pinned), so the pins of a `kill -9`ed reader are reclaimed
//! soon after they get in the way, and a live reader's brief pins cost no system call. Pinning
//! and unpinning are read-modify-writes in shared memory, no system call (see `ring::claim`).
//!
//! A process that may read the channel may also write this table: at worst it pins slots (the
//! writer then drops frames and says so) or clears other readers' pins (their zero-copy views may
//! then see a newer frame; copies are made from pinned slots too). Give read access only to peers
//! you trust that far.

use crate::layout::{off, pin_entry_offset, LAYOUT_VERSION, PINS_MAGIC, PINS_SIZE, PIN_ENTRIES};
use crate::name::Name;
use crate::ring;
use crate::segment::{CreateFail, Segment};
use crate::wake;
use rustix::io::Errno;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A mapped pin table.
pub(crate) struct Pins {
    seg: Segment,
}

/// Why a pin table could not be opened.
#[derive(Debug)]
pub(crate) enum PinsFail {
    /// A system call failed (`NOENT`: the table is gone, the channel with it).
    Errno(Errno),
    /// The object is not the table of this lineage.
    Invalid(&'static str),
}

/// The pin table's mode for a channel of mode `mode`: whoever may read the channel may write
/// the table (pinning is writing), nobody else.
pub(crate) fn pins_mode(mode: u32) -> u32 {
    mode | (mode & 0o044) >> 1
}

impl Pins {
    /// Creates the table of lineage `lineage` (writer).
    pub fn create(name: &Name, lineage: u64, mode: u32) -> Result<Pins, CreateFail> {
        let seg =
            Segment::create_exclusive(&name.pins_object_name(lineage), PINS_SIZE, pins_mode(mode))?;
        Ok(Pins::init(seg, lineage))
    }

    /// Creates the table of lineage `lineage` as an anonymous object (a socket-served channel):
    /// sealed at its size, readable and writable by its owner only (each reader receives a
    /// read-write descriptor of its own).
    pub fn create_memfd(lineage: u64) -> Result<Pins, CreateFail> {
        use rustix::fs::SealFlags;
        let seals = SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL;
        let seg = Segment::memfd("shmframe-pins", PINS_SIZE, 0o600, seals)?;
        Ok(Pins::init(seg, lineage))
    }

    fn init(seg: Segment, lineage: u64) -> Pins {
        let mut head = [0u8; 24];
        head[..8].copy_from_slice(&PINS_MAGIC);
        head[12..16].copy_from_slice(&PIN_ENTRIES.to_ne_bytes());
        head[16..24].copy_from_slice(&lineage.to_ne_bytes());
        seg.copy_in(0, &head);
        // SYNC POINT: the version is stored last, with release (the channel's init handshake).
        seg.atomic_u32(off::P_VERSION)
            .store(LAYOUT_VERSION, Ordering::Release);
        Pins { seg }
    }

    /// Opens the table of lineage `lineage` (reader).
    pub fn open(name: &Name, lineage: u64) -> Result<Pins, PinsFail> {
        let seg = Segment::open(&name.pins_object_name(lineage), true, PINS_SIZE)
            .map_err(PinsFail::Errno)?;
        Pins::check(seg, lineage)
    }

    /// The table of lineage `lineage` received as a read-write descriptor (a socket-served
    /// channel's reader).
    pub fn from_fd(fd: rustix::fd::OwnedFd, lineage: u64) -> Result<Pins, PinsFail> {
        let seg = Segment::from_fd(fd, true, PINS_SIZE).map_err(PinsFail::Errno)?;
        Pins::check(seg, lineage)
    }

    fn check(seg: Segment, lineage: u64) -> Result<Pins, PinsFail> {
        if (seg.len() as u64) < PINS_SIZE {
            return Err(PinsFail::Invalid("the pin table is truncated"));
        }
        let head: [u8; 24] = seg.read(0);
        let version = seg.atomic_u32(off::P_VERSION).load(Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Acquire);
        if head[..8] != PINS_MAGIC
            || version != LAYOUT_VERSION
            || head[12..16] != PIN_ENTRIES.to_ne_bytes()
            || head[16..24] != lineage.to_ne_bytes()
        {
            return Err(PinsFail::Invalid(
                "the pin table does not belong to this channel",
            ));
        }
        Ok(Pins { seg })
    }

    /// A read-write descriptor of the table with an open file description of its own, for one
    /// reader of a socket-served channel (its entry's lock must be its own, not shared).
    pub fn reopen_for_reader(&self) -> Result<rustix::fd::OwnedFd, Errno> {
        self.seg.reopen(true)
    }

    /// Removes the table's name (the writer, when its channel goes).
    pub fn unlink(name: &Name, lineage: u64) {
        let _ = crate::segment::unlink(&name.pins_object_name(lineage));
    }

    fn entry_word(&self, e: u32, parity: u32) -> &AtomicU64 {
        let at = pin_entry_offset(e) as usize + off::E_PINS + 8 * (parity as usize & 1);
        self.seg.atomic_u64(at)
    }

    fn entry_sleeping(&self, e: u32) -> &AtomicU32 {
        self.seg
            .atomic_u32(pin_entry_offset(e) as usize + off::E_SLEEPING)
    }

    fn entry_cursor(&self, e: u32) -> &AtomicU64 {
        self.seg
            .atomic_u64(pin_entry_offset(e) as usize + off::E_CURSOR)
    }

    /// Every attached reader has taken or passed over every frame below the index returned
    /// (`u64::MAX` with no reader): the writer's hint for which slots it may reuse first. Also
    /// the entries (bit `e`: entry `e`) whose reader has yet to take a frame below `behind`: a
    /// reader that lags that far, or a dead one that left its entry as it was.
    pub fn taken(&self, behind: u64) -> (u64, u64) {
        let (mut taken, mut lagging) = (u64::MAX, 0u64);
        for e in 0..self.used() {
            let cursor = self.entry_cursor(e).load(Ordering::Relaxed);
            taken = taken.min(cursor);
            if cursor < behind {
                lagging |= 1 << e;
            }
        }
        (taken, lagging)
    }

    /// Entry `e`'s cursor.
    pub fn cursor(&self, e: u32) -> u64 {
        self.entry_cursor(e).load(Ordering::Relaxed)
    }

    /// The count of sleeping readers.
    pub fn sleepers(&self) -> &AtomicU32 {
        self.seg.atomic_u32(off::P_SLEEPERS)
    }

    /// The futex word sleeping readers wait on (see `ring::ring_bell`).
    pub fn bell(&self) -> &AtomicU32 {
        self.seg.atomic_u32(off::P_BELL)
    }

    fn used(&self) -> u32 {
        // A hostile reader may store anything here: never trust more than the table holds.
        self.seg
            .atomic_u32(off::P_USED)
            .load(Ordering::Relaxed)
            .min(PIN_ENTRIES)
    }

    /// Every claimed entry's pin word for rings of `parity`, in entry order.
    pub fn words(&self, parity: u32) -> impl Iterator<Item = &AtomicU64> + Clone {
        (0..self.used()).map(move |e| self.entry_word(e, parity))
    }

    /// `true` once a fault showed that the table was truncated under us.
    pub fn faulted(&self) -> bool {
        self.seg.faulted()
    }

    /// The writer's check of the entries in `entries` (bit `e`: entry `e`) that pin a slot it
    /// wants: an entry whose lock it can take has no live reader; its pins and sleeping flag are
    /// cleared. Returns `true` if any entry was reclaimed.
    pub fn reclaim(&self, entries: u64) -> bool {
        let mut any = false;
        for e in (0..PIN_ENTRIES).filter(|e| entries & (1 << e) != 0) {
            let lock = pin_entry_offset(e);
            if self.seg.try_lock_byte(lock) != Ok(true) {
                continue;
            }
            self.clear_entry(e);
            self.seg.unlock_byte(lock);
            any = true;
        }
        any
    }

    /// Reclaims the sleeping flags of dead readers (the writer, when it keeps waking nobody).
    pub fn reclaim_sleepers(&self) {
        let sleeping: u64 = (0..self.used())
            .filter(|&e| self.entry_sleeping(e).load(Ordering::Relaxed) != 0)
            .fold(0, |acc, e| acc | 1 << e);
        self.reclaim(sleeping);
    }

    /// Clears entry `e`, whose lock the caller holds, and marks it free.
    fn clear_entry(&self, e: u32) {
        self.entry_cursor(e).store(u64::MAX, Ordering::Relaxed);
        self.entry_word(e, 0).store(0, Ordering::Release);
        self.entry_word(e, 1).store(0, Ordering::Release);
        if self.entry_sleeping(e).swap(0, Ordering::AcqRel) != 0 {
            self.sleepers().fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Claims a free entry for a reader that wants the frames from index `taken` on: the first
    /// entry whose lock it can take. `None` if all are held.
    pub fn attach(self: Arc<Self>, taken: u64) -> Result<Option<Entry>, Errno> {
        for e in 0..PIN_ENTRIES {
            if !self.seg.try_lock_byte(pin_entry_offset(e))? {
                continue;
            }
            // A dead reader may have left pins and a sleeping flag behind.
            self.clear_entry(e);
            self.seg
                .atomic_u32(pin_entry_offset(e) as usize + off::E_PID)
                .store(std::process::id(), Ordering::Relaxed);
            self.entry_cursor(e).store(taken, Ordering::Relaxed);
            self.seg
                .atomic_u32(off::P_USED)
                .fetch_max(e + 1, Ordering::AcqRel);
            return Ok(Some(Entry {
                pins: self,
                index: e,
                counts: Mutex::new([0; 128]),
                born: crate::fork::generation(),
            }));
        }
        Ok(None)
    }
}

/// A reader's own entry in the pin table, held from attach until the reader and all its views are
/// gone.
pub(crate) struct Entry {
    pins: Arc<Pins>,
    index: u32,
    /// Views of this process per (ring parity, slot): the bit is set on 0→1 and cleared on 1→0.
    counts: Mutex<[u32; 128]>,
    /// The fork generation of the process that attached.
    born: u64,
}

impl Entry {
    /// Pins `slot` of a ring of `parity` for frame `index`, whose stamp word is `stamp`. `false`
    /// if the slot no longer holds that frame (nothing stays pinned then).
    pub fn pin(&self, parity: u32, slot: u32, stamp: &AtomicU64, index: u64) -> bool {
        let word = self.pins.entry_word(self.index, parity);
        let bit = 1u64 << slot;
        let k = (parity as usize & 1) * 64 + slot as usize;
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts[k] == 0 {
            ring::pin(word, bit);
        }
        counts[k] += 1;
        if ring::verify_pinned(stamp, index) {
            return true;
        }
        counts[k] -= 1;
        if counts[k] == 0 {
            ring::unpin(word, bit);
        }
        false
    }

    /// Starts fetching this entry's pin word for rings of `parity` for a write (see
    /// [`Segment::prefetch`](crate::segment::Segment::prefetch)).
    pub fn prefetch(&self, parity: u32) {
        let at = pin_entry_offset(self.index) as usize + off::E_PINS + 8 * (parity as usize & 1);
        self.pins.seg.prefetch(at, true);
    }

    /// This entry's pin word for rings of `parity` (a relaxed load; see `Reader::keep_warm`).
    pub fn pin_word(&self, parity: u32) -> u64 {
        self.pins
            .entry_word(self.index, parity)
            .load(Ordering::Relaxed)
    }

    /// Tells the writer that this reader has taken or passed over every frame below `taken`.
    pub fn set_taken(&self, taken: u64) {
        self.pins
            .entry_cursor(self.index)
            .store(taken, Ordering::Relaxed);
    }

    /// `true` in a `fork()`ed child of the process that attached: the entry (and its lock) is
    /// the parent's, and the child must leave it alone.
    pub fn forked(&self) -> bool {
        crate::fork::generation() != self.born
    }

    /// Releases a pin taken by [`Entry::pin`] (not in a forked child: the pin is the parent's).
    pub fn unpin(&self, parity: u32, slot: u32) {
        if self.forked() {
            return;
        }
        let k = (parity as usize & 1) * 64 + slot as usize;
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts[k] = counts[k].saturating_sub(1);
        if counts[k] == 0 {
            ring::unpin(self.pins.entry_word(self.index, parity), 1 << slot);
        }
    }

    /// Sleeps until the channel's `wake` moves from `seen` (its value before the caller last
    /// looked for frames), for at most `timeout`: counted among the sleepers, on the table's bell,
    /// which the writer rings for them.
    pub fn sleep(&self, wake: &AtomicU32, seen: u32, timeout: Duration) -> Result<(), Errno> {
        self.sleep_with(wake, seen, |pins, rung| {
            wake::wait(pins.bell(), rung, timeout)
        })
    }

    /// As [`Entry::sleep`], sleeping with `wait(pins, rung)`, which returns when the bell of
    /// `pins` moves from `rung`, or earlier.
    pub fn sleep_with(
        &self,
        wake: &AtomicU32,
        seen: u32,
        wait: impl FnOnce(&Arc<Pins>, u32) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let sleeping = self.pins.entry_sleeping(self.index);
        sleeping.store(1, Ordering::Relaxed);
        let pins = &self.pins;
        let r = match ring::announce_sleep(wake, pins.sleepers(), pins.bell(), seen) {
            Some(rung) => wait(pins, rung),
            None => Ok(()),
        };
        ring::end_sleep(self.pins.sleepers());
        sleeping.store(0, Ordering::Relaxed);
        r
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if self.forked() {
            return;
        }
        self.pins.clear_entry(self.index);
        self.pins.seg.unlock_byte(pin_entry_offset(self.index));
    }
}
