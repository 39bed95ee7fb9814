//! The reader: attaches by name, receives frames verified against the slot stamps, waits on the
//! shared futex, notices a dead writer, and follows the channel when it grows or is taken over.

use crate::channel::Channel;
use crate::error::MetaError;
use crate::error::{OpenError, ReadError};
use crate::frame::{decode_meta, DType, Element, Frame, Metadata, Schema};
use crate::name::Name;
use crate::ring;
use crate::segment::Segment;
use crate::wake::{self, DirWatch};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a reader that receives nothing checks whether its writer is still alive. A writer
/// killed with `kill -9` is reported within this interval (plus one futex round).
pub const LIVENESS_INTERVAL: Duration = Duration::from_millis(200);

/// Receives frames from a named channel. The mapping is read-only: a reader cannot disturb the
/// writer or other readers.
///
/// ```no_run
/// use std::time::Duration;
/// let mut r = shmframe::Reader::open_wait("camera0", Duration::from_secs(5))?;
/// let frame = r.next(Some(Duration::from_secs(1)))?;
/// println!("frame {} {:?} {} missed={}", frame.index, frame.shape, frame.dtype, frame.missed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Reader {
    ch: Channel,
    last: Option<u64>,
    detached: Option<ReadError>,
    spin: Duration,
    latest_only: bool,
}

fn start_position(ch: &Channel) -> Option<u64> {
    ch.head().load(Ordering::Acquire).checked_sub(2)
}

impl Reader {
    /// Opens channel `name`, which must exist.
    pub fn open(name: &str) -> Result<Reader, OpenError> {
        let name = Name::new(name)?;
        let ch = Channel::open(&name, false)?;
        Ok(Reader::attached(ch))
    }

    /// Opens channel `name`, waiting up to `timeout` for it to appear (the reader may start before
    /// its writer). Waits on inotify events in /dev/shm, not by polling.
    pub fn open_wait(name: &str, timeout: Duration) -> Result<Reader, OpenError> {
        let name = Name::new(name)?;
        let deadline = Instant::now() + timeout;
        let ch = open_until(&name, Some(deadline), timeout)?;
        Ok(Reader::attached(ch))
    }

    fn attached(ch: Channel) -> Reader {
        Reader {
            last: start_position(&ch),
            ch,
            detached: None,
            spin: Duration::ZERO,
            latest_only: false,
        }
    }

    /// Spin (busy-wait) up to `spin` before sleeping on the futex: lower latency for a core.
    pub fn set_spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    /// `true`: [`Reader::next`] skips to the newest frame (counting the skipped ones as missed),
    /// as a display wants. `false` (default): frames in order while the ring still holds them.
    pub fn set_latest_only(&mut self, latest_only: bool) {
        self.latest_only = latest_only;
    }

    /// The channel's name.
    pub fn name(&self) -> &Name {
        &self.ch.name
    }

    /// The channel's metadata schema, if it declares one.
    pub fn schema(&self) -> Option<&Schema> {
        self.ch.schema.as_ref()
    }

    /// The writer's process id.
    pub fn writer_pid(&self) -> u32 {
        self.ch.hs.writer_pid
    }

    /// Slots in the ring.
    pub fn slot_count(&self) -> u32 {
        self.ch.geom.slot_count
    }

    /// Payload bytes per slot.
    pub fn capacity(&self) -> usize {
        self.ch.geom.slot_capacity as usize
    }

    /// Frames the writer has published.
    pub fn frames_published(&self) -> u64 {
        self.ch.head().load(Ordering::Acquire)
    }

    /// `true` while the writer process holds the channel (checked with its `flock`).
    pub fn writer_alive(&self) -> bool {
        self.ch.seg.writer_alive().unwrap_or(false)
    }

    /// Waits up to `timeout` (`None`: forever) for the next frame and returns a verified copy.
    pub fn next(&mut self, timeout: Option<Duration>) -> Result<Frame, ReadError> {
        let mut f = Frame::default();
        self.next_into(&mut f, timeout)?;
        Ok(f)
    }

    /// As [`Reader::next`], reusing `frame`'s buffers (no allocation once they are large enough).
    pub fn next_into(
        &mut self,
        frame: &mut Frame,
        timeout: Option<Duration>,
    ) -> Result<(), ReadError> {
        self.wait_for(timeout, |r| r.try_copy(frame, r.latest_only))
    }

    /// The newest frame not yet received, without waiting; `None` if there is none.
    pub fn latest(&mut self) -> Result<Option<Frame>, ReadError> {
        if self.detached.is_some() || self.ch.is_superseded() {
            match self.reattach(Some(Instant::now())) {
                Ok(()) => {}
                Err(ReadError::WriterGone { .. }) | Err(ReadError::Closed { .. }) => {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            }
        }
        let mut f = Frame::default();
        Ok(self.try_copy(&mut f, true)?.map(|()| f))
    }

    /// Waits for the next frame and returns a zero-copy view of it in shared memory. While the
    /// view lives its slot is pinned (a byte-range lock the writer respects), so the bytes cannot
    /// change under it; the writer skips pinned slots. If this process dies the kernel drops the
    /// pin.
    pub fn next_view(&mut self, timeout: Option<Duration>) -> Result<FrameView, ReadError> {
        self.wait_for(timeout, |r| r.try_view(r.latest_only))
    }

    fn find(&self, newest: bool) -> Option<(u32, u64)> {
        if newest {
            ring::newest_after(self.ch.stamps(), self.last)
        } else {
            ring::oldest_after(self.ch.stamps(), self.last)
        }
    }

    fn missed(&self, index: u64) -> u64 {
        self.last.map_or(0, |l| index.saturating_sub(l + 1))
    }

    fn corrupt(&self, what: String) -> ReadError {
        ReadError::CorruptFrame {
            name: self.ch.name.to_string(),
            what,
        }
    }

    fn try_copy(&mut self, out: &mut Frame, newest: bool) -> Result<Option<()>, ReadError> {
        for _ in 0..64 {
            let Some((slot, index)) = self.find(newest) else {
                return Ok(None);
            };
            let Some(begun) = ring::read_begin(self.ch.stamp(slot)) else {
                continue;
            };
            if ring::stable_index(begun) != Some(index) {
                continue;
            }
            match self.ch.copy_frame(slot, begun, out) {
                Ok(true) => {
                    out.missed = self.missed(index);
                    self.last = Some(index);
                    return Ok(Some(()));
                }
                Ok(false) => continue,
                Err(what) => return Err(self.corrupt(what)),
            }
        }
        // The writer laps the ring faster than we can copy; wait for the next wake-up.
        Ok(None)
    }

    fn try_view(&mut self, newest: bool) -> Result<Option<FrameView>, ReadError> {
        for _ in 0..64 {
            let Some((slot, index)) = self.find(newest) else {
                return Ok(None);
            };
            let lock_at = self.ch.geom.slot_offset(slot);
            match self.ch.seg.pin(slot, lock_at) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    return Err(ReadError::Io {
                        name: self.ch.name.to_string(),
                        op: "fcntl(F_OFD_SETLK)",
                        source: e,
                    })
                }
            }
            let unpin = || self.ch.seg.unpin(slot, lock_at);
            if ring::read_begin(self.ch.stamp(slot)) != Some(ring::stable_stamp(index)) {
                unpin();
                continue;
            }
            let desc = match self.ch.slot_desc(slot) {
                Ok(d) => d,
                Err(what) => {
                    unpin();
                    return Err(self.corrupt(what));
                }
            };
            let mut meta = vec![0u8; desc.meta_len];
            self.ch.seg.copy_out(self.ch.meta_offset(slot), &mut meta);
            let missed = self.missed(index);
            self.last = Some(index);
            return Ok(Some(FrameView {
                seg: self.ch.seg.clone(),
                schema: self.ch.schema.clone(),
                slot,
                lock_at,
                data_at: self.ch.payload_offset(slot),
                len: desc.payload_len,
                index,
                timestamp_ns: desc.timestamp_ns,
                missed,
                dtype: desc.dtype,
                shape: desc.shape,
                meta,
            }));
        }
        Ok(None)
    }

    fn gone_error(&self) -> ReadError {
        if self.ch.is_closed() {
            ReadError::Closed {
                name: self.ch.name.to_string(),
                pid: self.ch.hs.writer_pid,
            }
        } else {
            ReadError::WriterGone {
                name: self.ch.name.to_string(),
                pid: self.ch.hs.writer_pid,
            }
        }
    }

    /// Re-attaches to whatever segment now stands under the name: the grown segment of the same
    /// writer (frame indices continue) or a new writer's (indices restart). Waits up to `deadline`
    /// for a live one.
    fn reattach(&mut self, deadline: Option<Instant>) -> Result<(), ReadError> {
        let watch = DirWatch::new().ok();
        loop {
            match Channel::open(&self.ch.name, false) {
                Ok(ch) if ch.identity != self.ch.identity && !ch.is_superseded() => {
                    let alive = ch.seg.writer_alive().unwrap_or(false);
                    // Following a segment that was superseded (not waiting for a new writer after
                    // reporting the old one gone), take the successor even if its writer has died
                    // since: it may hold frames we have not read, and the caller's liveness check
                    // then reports the death within a second. Waiting here for a live successor
                    // would hide the death until the caller's deadline (forever without one).
                    let following = self.detached.is_none();
                    if alive || !ch.is_open() || following {
                        if ch.hs.lineage != self.ch.hs.lineage {
                            self.last = start_position(&ch);
                        }
                        let closed = ch.is_closed();
                        self.ch = ch;
                        self.detached = None;
                        if !closed || self.frame_available() {
                            return Ok(());
                        }
                        self.detached = Some(self.gone_error());
                    }
                }
                Ok(_) | Err(OpenError::NotFound { .. }) | Err(OpenError::Initialising { .. }) => {}
                Err(e) => return Err(ReadError::Reopen(e)),
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                let e = self.detached.take().unwrap_or_else(|| self.gone_error());
                self.detached = Some(clone_gone(&e));
                return Err(e);
            }
            let until = deadline
                .unwrap_or(now + Duration::from_secs(1))
                .min(now + Duration::from_secs(1));
            match &watch {
                Some(w) => {
                    w.wait_until(until);
                }
                None => std::thread::sleep(Duration::from_millis(50).min(until - now)),
            }
        }
    }

    fn frame_available(&self) -> bool {
        self.find(false).is_some()
    }

    fn wait_for<T>(
        &mut self,
        timeout: Option<Duration>,
        mut attempt: impl FnMut(&mut Self) -> Result<Option<T>, ReadError>,
    ) -> Result<T, ReadError> {
        let start = Instant::now();
        let deadline = timeout.map(|t| start + t);
        if self.detached.is_some() {
            self.reattach(deadline)?;
        }
        let mut quiet_since = start;
        loop {
            if self.ch.is_superseded() {
                // The writer moved to a grown segment. In order mode, first hand out the frames
                // still unread in this one (it no longer changes), then follow.
                if !self.latest_only {
                    if let Some(v) = attempt(self)? {
                        return Ok(v);
                    }
                }
                self.reattach(deadline)?;
                continue;
            }
            // SYNC POINT: load the futex word before looking for frames; a publish after the
            // look changes the word, so the futex wait below returns at once (no lost wake-up).
            let w = self.ch.wake().load(Ordering::SeqCst);
            if let Some(v) = attempt(self)? {
                return Ok(v);
            }
            if self.ch.is_closed() {
                let e = self.gone_error();
                self.detached = Some(clone_gone(&e));
                return Err(e);
            }
            if !self.spin.is_zero() {
                let until = Instant::now() + self.spin;
                while self.ch.wake().load(Ordering::Acquire) == w && Instant::now() < until {
                    std::hint::spin_loop();
                }
                if self.ch.wake().load(Ordering::Acquire) != w {
                    continue;
                }
            }
            let now = Instant::now();
            if let Some(d) = deadline {
                if now >= d {
                    if !self.ch.seg.writer_alive().unwrap_or(true) {
                        let e = self.gone_error();
                        self.detached = Some(clone_gone(&e));
                        return Err(e);
                    }
                    return Err(ReadError::Timeout {
                        name: self.ch.name.to_string(),
                        waited: now - start,
                        pid: self.ch.hs.writer_pid,
                    });
                }
            }
            let slice = deadline.map_or(LIVENESS_INTERVAL, |d| (d - now).min(LIVENESS_INTERVAL));
            wake::wait(self.ch.wake(), w, slice);
            if self.ch.wake().load(Ordering::Acquire) != w {
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() >= LIVENESS_INTERVAL {
                quiet_since = Instant::now();
                if !self.ch.seg.writer_alive().unwrap_or(true) {
                    let e = self.gone_error();
                    self.detached = Some(clone_gone(&e));
                    return Err(e);
                }
            }
        }
    }
}

fn clone_gone(e: &ReadError) -> ReadError {
    match e {
        ReadError::Closed { name, pid } => ReadError::Closed {
            name: name.clone(),
            pid: *pid,
        },
        ReadError::WriterGone { name, pid } => ReadError::WriterGone {
            name: name.clone(),
            pid: *pid,
        },
        other => ReadError::CorruptFrame {
            name: String::new(),
            what: other.to_string(),
        },
    }
}

fn open_until(
    name: &Name,
    deadline: Option<Instant>,
    timeout: Duration,
) -> Result<Channel, OpenError> {
    let watch = DirWatch::new().ok();
    let start = Instant::now();
    loop {
        match Channel::open(name, false) {
            Ok(ch) if !ch.is_superseded() => return Ok(ch),
            Ok(_) | Err(OpenError::NotFound { .. }) | Err(OpenError::Initialising { .. }) => {}
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Err(OpenError::Timeout {
                name: name.to_string(),
                waited: now - start,
            });
        }
        // Wake on any change in /dev/shm; re-check at least every 250 ms in case a half-initialised
        // object finishes without a directory event.
        let until = deadline
            .unwrap_or(now + timeout)
            .min(now + Duration::from_millis(250));
        match &watch {
            Some(w) => {
                w.wait_until(until);
            }
            None => std::thread::sleep(until.saturating_duration_since(now)),
        }
    }
}

/// A zero-copy frame in shared memory, pinned while it lives; see [`Reader::next_view`].
pub struct FrameView {
    seg: Arc<Segment>,
    schema: Option<Schema>,
    slot: u32,
    lock_at: u64,
    data_at: usize,
    len: usize,
    /// The writer's frame index.
    pub index: u64,
    /// CLOCK_MONOTONIC at publish, ns.
    pub timestamp_ns: u64,
    /// Frames missed since the previous frame this reader received.
    pub missed: u64,
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<usize>,
    /// Metadata bytes (copied; small).
    pub meta: Vec<u8>,
}

impl FrameView {
    /// The frame's bytes, in shared memory.
    #[allow(unsafe_code)]
    pub fn data(&self) -> &[u8] {
        // SAFETY: the slot is pinned by this view (shared byte-range lock) and its stamp was
        // verified after pinning; the writer never writes a slot whose lock it cannot take, so the
        // bytes do not change while `self` lives. The mapping lives as long as `self.seg`.
        unsafe { self.seg.slice(self.data_at, self.len) }
    }

    /// The frame's elements as `T`; `None` if `T` is not its dtype (or misaligned).
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        if T::DTYPE != self.dtype {
            return None;
        }
        bytemuck::try_cast_slice(self.data()).ok()
    }

    /// The metadata as `M`, checked against the channel's schema.
    pub fn meta_as<M: Metadata>(&self) -> Result<M, MetaError> {
        decode_meta(&self.meta, self.schema.as_ref())
    }

    /// A copy as an owned [`Frame`].
    pub fn to_frame(&self) -> Frame {
        Frame {
            index: self.index,
            timestamp_ns: self.timestamp_ns,
            missed: self.missed,
            dtype: self.dtype,
            shape: self.shape.clone(),
            data: self.data().to_vec(),
            meta: self.meta.clone(),
        }
    }
}

impl Drop for FrameView {
    fn drop(&mut self) {
        self.seg.unpin(self.slot, self.lock_at);
    }
}

impl Reader {
    /// Decodes a copied frame's metadata as `M`, checked against this channel's schema.
    pub fn meta_of<M: Metadata>(&self, frame: &Frame) -> Result<M, MetaError> {
        frame.meta_as(self.schema())
    }
}
