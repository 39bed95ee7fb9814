//! The reader: attaches by name, receives frames verified against the slot stamps, waits on the
//! shared futex, notices a dead writer, and follows the channel when it grows or is taken over.

use crate::error::MetaError;
use crate::error::{OpenError, ReadError};
use crate::frame::{decode_meta, DType, Dims, Element, Frame, Metadata, Schema};
use crate::layout::PIN_ENTRIES;
use crate::mapped::Channel;
use crate::name::Name;
use crate::pins::Entry;
use crate::readiness::Registration;
use crate::ring;
use crate::segment::Segment;
use crate::wake;
use rustix::fd::BorrowedFd;
use std::path::Path;
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
    entry: Arc<Entry>,
    last: Option<u64>,
    /// The slot of the frame received last (a spinning reader watches its stamp).
    last_slot: u32,
    /// Set after `WriterGone`/`Closed` was reported: the next call re-attaches by name first.
    detached: bool,
    spin: Duration,
    latest_only: bool,
    /// When a timeout last tested the writer's liveness (a lock probe, one `fcntl`).
    probed: Option<Instant>,
    readiness: Option<Arc<Registration>>,
    #[cfg(feature = "tokio")]
    pub(crate) aio: Option<(tokio::runtime::Id, crate::aio::AsyncReadiness)>,
}

/// A channel found, or `None` if there is none yet (no object or socket, one still initialising,
/// one superseded, a stale socket).
fn not_yet(found: Result<Channel, OpenError>) -> Result<Option<Channel>, OpenError> {
    match found {
        Ok(ch) if !ch.is_superseded() => Ok(Some(ch)),
        Ok(_)
        | Err(OpenError::NotFound { .. })
        | Err(OpenError::Initialising { .. })
        | Err(OpenError::NoSocket { .. })
        | Err(OpenError::StaleSocket { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The directory of a socket path, watched while waiting for the socket.
fn socket_dir(path: &Path) -> std::path::PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => ".".into(),
    }
}

fn start_position(ch: &Channel) -> Option<u64> {
    ch.head_acquire().checked_sub(2)
}

/// Claims a pin-table entry for a reader of `ch` whose last frame was `last`.
fn attach(ch: &Channel, last: Option<u64>) -> Result<Arc<Entry>, OpenError> {
    match ch.pins.clone().attach(last.map_or(0, |l| l + 1)) {
        Ok(Some(e)) => Ok(Arc::new(e)),
        Ok(None) => Err(OpenError::TooManyReaders {
            name: ch.name.to_string(),
            max: PIN_ENTRIES,
        }),
        Err(e) => Err(OpenError::Io {
            name: ch.name.to_string(),
            op: "fcntl(F_OFD_SETLK) on the pin table",
            source: e,
        }),
    }
}

impl Reader {
    /// Opens channel `name`, which must exist.
    pub fn open(name: &str) -> Result<Reader, OpenError> {
        let name = Name::new(name)?;
        Reader::attached(Channel::open(&name, false)?)
    }

    /// Opens channel `name`, waiting up to `timeout` for it to appear (the reader may start before
    /// its writer). Waits on inotify events in /dev/shm, not by polling.
    pub fn open_wait(name: &str, timeout: Duration) -> Result<Reader, OpenError> {
        let name = Name::new(name)?;
        let start = Instant::now();
        let deadline = start.checked_add(timeout);
        let ch = wake::until_named(deadline, Duration::from_millis(250), || {
            not_yet(Channel::open(&name, false))
        })?;
        let ch = ch.ok_or_else(|| OpenError::Timeout {
            name: name.to_string(),
            waited: start.elapsed(),
        })?;
        Reader::attached(ch)
    }

    /// Connects to the writer serving a channel on the Unix socket at `path`
    /// ([`crate::WriterOptions::socket`]), which must be there. From then on the reader works
    /// exactly as one opened by name.
    pub fn connect(path: impl AsRef<Path>) -> Result<Reader, OpenError> {
        Reader::attached(Channel::connect(path.as_ref())?)
    }

    /// Connects to the writer serving the socket at `path`, waiting up to `timeout` for it to
    /// appear (the reader may start first). Waits on inotify events in the socket's directory.
    pub fn connect_wait(path: impl AsRef<Path>, timeout: Duration) -> Result<Reader, OpenError> {
        let path = path.as_ref();
        let start = Instant::now();
        let ch = wake::until_in(
            &socket_dir(path),
            start.checked_add(timeout),
            Duration::from_millis(250),
            || not_yet(Channel::connect(path)),
        )?;
        let ch = ch.ok_or_else(|| OpenError::SocketTimeout {
            path: path.display().to_string(),
            waited: start.elapsed(),
        })?;
        Reader::attached(ch)
    }

    /// The socket a socket-served channel was reached through.
    pub fn socket_path(&self) -> Option<&Path> {
        self.ch.link.as_ref().map(|l| l.path())
    }

    fn attached(ch: Channel) -> Result<Reader, OpenError> {
        let last = start_position(&ch);
        Ok(Reader {
            entry: attach(&ch, last)?,
            last,
            last_slot: 0,
            ch,
            detached: false,
            spin: Duration::ZERO,
            latest_only: false,
            probed: None,
            readiness: None,
            #[cfg(feature = "tokio")]
            aio: None,
        })
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
        self.ch.schema.as_deref()
    }

    /// The writer's process id.
    pub fn writer_pid(&self) -> u32 {
        self.ch.hf.writer_pid
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
        self.ch.head_acquire()
    }

    /// `true` while the writer process holds the channel (checked with its lock).
    pub fn writer_alive(&self) -> bool {
        self.ch.writer_alive()
    }

    /// Waits up to `timeout` (`None`: forever) for the next frame and returns a verified copy.
    pub fn next(&mut self, timeout: Option<Duration>) -> Result<Frame, ReadError> {
        let mut f = Frame::default();
        self.next_into(&mut f, timeout)?;
        Ok(f)
    }

    /// As [`Reader::next`], reusing `frame`'s buffers (no allocation once they are large enough).
    /// The copy is made from a pinned slot (see [`Reader::next_view`]), so it is never torn and
    /// never wasted; the writer skips the slot for as long as the copy takes.
    pub fn next_into(
        &mut self,
        frame: &mut Frame,
        timeout: Option<Duration>,
    ) -> Result<(), ReadError> {
        self.wait_for(timeout, |r| r.try_copy(frame, r.latest_only))
    }

    /// The newest frame not yet received, without waiting; `None` if there is none (also when
    /// the writer is gone or closed the channel: [`Reader::next`] says which).
    pub fn latest(&mut self) -> Result<Option<Frame>, ReadError> {
        self.check_process()?;
        if self.detached || self.ch.is_superseded() {
            match self.reattach(Some(Instant::now())) {
                Ok(()) => {}
                Err(ReadError::WriterGone { .. }) | Err(ReadError::Closed { .. }) => {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            }
        }
        while let Some(next) = self.ch.next_ring()? {
            self.ch = next;
        }
        let mut f = Frame::default();
        Ok(self.try_copy(&mut f, true)?.map(|()| f))
    }

    /// Waits for the next frame and returns a zero-copy view of it in shared memory. While the
    /// view lives its slot is pinned (a bit in this reader's entry of the pin table, which the
    /// writer respects), so the bytes cannot change under it; the writer skips pinned slots. If
    /// this process dies the writer reclaims the pin. A view allocates nothing on the heap (but a
    /// copy of the frame's metadata, when it has some).
    pub fn next_view(&mut self, timeout: Option<Duration>) -> Result<FrameView, ReadError> {
        self.wait_for(timeout, |r| r.try_view(r.latest_only))
    }

    /// The slot of the oldest (or newest) frame not received yet. Stamps claiming frames the
    /// writer has not published (a forged stamp) are ignored.
    fn find(&self, newest: bool) -> Option<(u32, u64)> {
        // The pin word this reader writes next and the new frame's first bytes then travel from
        // the writer's core together with the stamps read below, not one after another.
        self.entry.prefetch(self.ch.parity());
        self.ch.prefetch_slots();
        self.scan(newest, self.last)
    }

    /// The slot of the oldest (or newest) complete frame with an index greater than `after`.
    fn scan(&self, newest: bool, after: Option<u64>) -> Option<(u32, u64)> {
        let head = self.ch.head_acquire();
        let stamps = self.ch.stamps().map(|s| match ring::stable_index(s) {
            Some(i) if i < head => s,
            _ => 0,
        });
        if newest {
            ring::newest_after(stamps, after)
        } else {
            ring::oldest_after(stamps, after)
        }
    }

    /// A spinning reader's look at the channel that changes nothing, between polls of the futex
    /// word: it runs what taking a frame runs and loads what it loads (the stamps, the newest
    /// frame's description, this reader's pin word), so that this code, the reader's structures
    /// and the pages and lines of the slot headers and the pin table stay in this core's caches
    /// and TLB. A loop over one word lets them go cold, and a frame then waits for each of them
    /// in turn. Loads only: nothing the writer writes is taken from it for a write.
    fn keep_warm(&self) {
        if let Some((slot, _)) = self.scan(true, None) {
            let _ = std::hint::black_box(self.ch.read_desc(slot));
        }
        std::hint::black_box(self.entry.pin_word(self.ch.parity()));
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
        let Some(v) = self.try_view(newest)? else {
            return Ok(None);
        };
        out.data.clear();
        out.data.extend_from_slice(v.data());
        out.meta.clone_from(&v.meta);
        out.index = v.index;
        out.timestamp_ns = v.timestamp_ns;
        out.missed = v.missed;
        out.dtype = v.dtype;
        out.shape.clear();
        out.shape.extend_from_slice(v.shape());
        drop(v);
        if self.ch.faulted() {
            return Err(self.truncated());
        }
        Ok(Some(()))
    }

    fn try_view(&mut self, newest: bool) -> Result<Option<FrameView>, ReadError> {
        for _ in 0..64 {
            let Some((slot, index)) = self.find(newest) else {
                return Ok(None);
            };
            let parity = self.ch.parity();
            if !self.entry.pin(parity, slot, self.ch.stamp(slot), index) {
                continue;
            }
            let mut view = FrameView {
                seg: self.ch.seg.clone(),
                entry: self.entry.clone(),
                parity,
                schema: self.ch.schema.clone(),
                slot,
                data_at: self.ch.payload_offset(slot),
                len: 0,
                index,
                timestamp_ns: 0,
                missed: self.missed(index),
                dtype: DType::U8,
                shape: Dims::default(),
                meta: Vec::new(),
            };
            let desc = self.ch.read_desc(slot).map_err(|what| self.corrupt(what))?;
            view.meta = vec![0u8; desc.meta_len];
            self.ch
                .seg
                .copy_out(self.ch.meta_offset(slot), &mut view.meta);
            (view.len, view.timestamp_ns, view.dtype, view.shape) =
                (desc.payload_len, desc.timestamp_ns, desc.dtype, desc.shape);
            if self.ch.faulted() {
                return Err(self.truncated());
            }
            self.last = Some(index);
            self.last_slot = slot;
            self.entry.set_taken(index + 1);
            return Ok(Some(view));
        }
        // The writer laps the ring faster than we can pin; wait for the next wake-up.
        Ok(None)
    }

    fn truncated(&mut self) -> ReadError {
        self.detached = true;
        ReadError::Truncated {
            name: self.ch.name.to_string(),
        }
    }

    fn gone_error(&self) -> ReadError {
        let (name, pid) = (self.ch.name.to_string(), self.ch.hf.writer_pid);
        if self.ch.is_closed() {
            ReadError::Closed { name, pid }
        } else {
            let resumes = match &self.ch.link {
                Some(l) => format!(
                    "this reader resumes by itself when a new writer serves {} again",
                    l.path().display()
                ),
                None => "this reader resumes by itself when a new writer takes the name over (if \
                         the writer's container owned this IPC namespace, restart the readers too)"
                    .into(),
            };
            ReadError::WriterGone { name, pid, resumes }
        }
    }

    /// Reports the writer gone (or the channel closed); the next call re-attaches by name.
    fn detach(&mut self) -> ReadError {
        self.detached = true;
        self.gone_error()
    }

    fn check_process(&self) -> Result<(), ReadError> {
        if self.entry.forked() {
            return Err(ReadError::Forked {
                name: self.ch.name.to_string(),
            });
        }
        Ok(())
    }

    /// A channel under our name other than ours that we may move to: a live writer's, a closed
    /// one, or (when following a takeover rather than waiting after reporting the writer gone)
    /// any, since it may hold frames not read yet.
    fn successor(&self) -> Result<Option<Channel>, ReadError> {
        let found = match &self.ch.link {
            Some(link) => not_yet(Channel::connect(link.path())),
            None => not_yet(Channel::open(&self.ch.name, false)),
        };
        match found.map_err(ReadError::Reopen)? {
            Some(ch) if ch.identity != self.ch.identity && !ch.is_superseded() => {
                let alive = ch.writer_alive();
                Ok((alive || !ch.is_open() || !self.detached).then_some(ch))
            }
            _ => Ok(None),
        }
    }

    /// Re-attaches to whatever channel now stands under the name: a new writer's (indices
    /// restart). Waits up to `deadline` for one.
    fn reattach(&mut self, deadline: Option<Instant>) -> Result<(), ReadError> {
        loop {
            let found = match &self.ch.link {
                Some(l) => wake::until_in(
                    &socket_dir(l.path()),
                    deadline,
                    Duration::from_secs(1),
                    || self.successor(),
                )?,
                None => wake::until_named(deadline, Duration::from_secs(1), || self.successor())?,
            };
            let Some(ch) = found else {
                return Err(self.detach());
            };
            if ch.hf.lineage != self.ch.hf.lineage {
                self.last = start_position(&ch);
            }
            self.entry = attach(&ch, self.last)?;
            self.ch = ch;
            self.detached = false;
            if !self.ch.is_closed() || self.find(false).is_some() {
                return Ok(());
            }
            self.detached = true;
        }
    }

    /// One look: follows a grown ring or a new writer, tries `attempt`, reports a close.
    /// `Empty` carries `wake`'s value loaded before the look.
    fn step<T>(
        &mut self,
        deadline: Option<Instant>,
        attempt: &mut impl FnMut(&mut Self) -> Result<Option<T>, ReadError>,
    ) -> Result<Step<T>, ReadError> {
        loop {
            if self.ch.faulted() {
                return Err(self.truncated());
            }
            if let Some(next) = self.ch.next_ring()? {
                // The writer moved to a larger ring in the same object. In order mode, first hand
                // out the frames still unread in this one (it no longer changes), then follow.
                if !self.latest_only {
                    if let Some(v) = attempt(self)? {
                        return Ok(Step::Ready(v));
                    }
                }
                self.ch = next;
                continue;
            }
            if self.ch.is_superseded() {
                // A new writer took the name over from a dead one.
                if !self.latest_only {
                    if let Some(v) = attempt(self)? {
                        return Ok(Step::Ready(v));
                    }
                }
                self.reattach(deadline)?;
                continue;
            }
            // SYNC POINT: load `wake` before looking for frames; a publish after the
            // look changes the word, so a sleep on it returns at once (no lost wake-up).
            let seen = self.ch.wake().load(Ordering::Relaxed);
            std::sync::atomic::fence(Ordering::Acquire);
            if let Some(v) = attempt(self)? {
                return Ok(Step::Ready(v));
            }
            if !self.ch.is_closed() {
                return Ok(Step::Empty { seen });
            }
            // Every frame published before the close is visible now: one last look (and a last
            // ring to follow) before reporting the close.
            if self.ch.ring_next().load(Ordering::Relaxed) != 0 {
                continue;
            }
            if let Some(v) = attempt(self)? {
                return Ok(Step::Ready(v));
            }
            if self.ch.faulted() {
                return Err(self.truncated());
            }
            return Err(self.detach());
        }
    }

    fn wait_for<T>(
        &mut self,
        timeout: Option<Duration>,
        mut attempt: impl FnMut(&mut Self) -> Result<Option<T>, ReadError>,
    ) -> Result<T, ReadError> {
        self.check_process()?;
        let start = Instant::now();
        let deadline = timeout.and_then(|t| start.checked_add(t));
        if self.detached {
            self.reattach(deadline)?;
        }
        let mut quiet_since = start;
        let mut woken = false;
        loop {
            // `wake` moved since `step` last looked at the channel's state: most often a
            // new frame, taken at once. A grown ring, a new writer or a close found since are
            // followed by the `step` after this look, which in order mode reads this ring's
            // frames first too (a latest-only reader goes to `step` at once).
            if woken && !self.latest_only {
                if let Some(v) = attempt(self)? {
                    return Ok(v);
                }
            }
            let seen = match self.step(deadline, &mut attempt)? {
                Step::Ready(v) => return Ok(v),
                Step::Empty { seen } => seen,
            };
            if !self.spin.is_zero() {
                // Besides `wake`, the stamp of the slot of the frame received last: while
                // the readers keep up, the writer writes the next frame into that slot again
                // (`ring::write_order`), and a reader that sees its stamp move finds the frame in
                // the cache line it just fetched, instead of fetching `wake`'s line first
                // and the stamp's after it. Any move of either word only means: look again.
                let watched = (self.last_slot < self.ch.geom.slot_count).then(|| {
                    let w = self.ch.stamp(self.last_slot);
                    (w, w.load(Ordering::Relaxed))
                });
                let moved = |r: &Self| {
                    r.ch.wake().load(Ordering::Relaxed) != seen
                        || watched.is_some_and(|(w, v)| w.load(Ordering::Relaxed) != v)
                };
                let until = Instant::now() + self.spin;
                'spin: loop {
                    for _ in 0..256 {
                        if moved(self) {
                            break 'spin;
                        }
                        std::hint::spin_loop();
                    }
                    self.keep_warm();
                    if Instant::now() >= until {
                        break;
                    }
                }
                woken = moved(self);
                if woken {
                    continue;
                }
            }
            let now = Instant::now();
            if let Some(d) = deadline {
                if now >= d {
                    if self.probe_due(now) && !self.ch.writer_alive() {
                        return Err(self.detach());
                    }
                    return Err(ReadError::Timeout {
                        name: self.ch.name.to_string(),
                        waited: now - start,
                        pid: self.ch.hf.writer_pid,
                    });
                }
            }
            let slice = deadline.map_or(LIVENESS_INTERVAL, |d| (d - now).min(LIVENESS_INTERVAL));
            let slept = match &self.ch.link {
                // A socket-served channel: the writer's hang-up ends the sleep too.
                Some(l) => l.sleep(&self.entry, self.ch.wake(), seen, slice),
                None => self.entry.sleep(self.ch.wake(), seen, slice),
            };
            slept.map_err(|e| ReadError::Io {
                name: self.ch.name.to_string(),
                op: "futex(FUTEX_WAIT)",
                source: e,
            })?;
            let hung_up = self.ch.link.as_ref().is_some_and(|l| l.saw_hangup());
            woken = self.ch.wake().load(Ordering::Relaxed) != seen;
            if woken {
                quiet_since = Instant::now();
            } else if hung_up || quiet_since.elapsed() >= LIVENESS_INTERVAL {
                quiet_since = Instant::now();
                if !self.ch.writer_alive() {
                    return Err(self.detach());
                }
            }
        }
    }

    /// Whether a timeout should test the writer's liveness now: at most every
    /// [`LIVENESS_INTERVAL`], so that a caller polling with short timeouts (as the Python binding
    /// does before it lets go of the interpreter) pays no system call per look, and still hears
    /// of a dead writer within that interval.
    fn probe_due(&mut self, now: Instant) -> bool {
        if self
            .probed
            .is_some_and(|t| now.duration_since(t) < LIVENESS_INTERVAL)
        {
            return false;
        }
        self.probed = Some(now);
        true
    }

    /// One look without waiting, for event loops: `Ok(None)` if nothing is ready, and then the
    /// readiness descriptor ([`Reader::readiness_fd`]) is armed to become readable when something
    /// is (a frame, a close, a dead writer).
    fn poll_with<T>(
        &mut self,
        mut attempt: impl FnMut(&mut Self) -> Result<Option<T>, ReadError>,
    ) -> Result<Option<T>, ReadError> {
        self.check_process()?;
        let reg = self.registration()?;
        if self.detached {
            self.reattach(Some(Instant::now()))?;
        }
        // A dead writer is reported once its last frames are taken (as a blocking reader does):
        // until a look finds nothing, the news is kept for the next look.
        let gone = reg.take_writer_gone();
        match self.step(Some(Instant::now()), &mut attempt)? {
            Step::Ready(v) => {
                if gone {
                    reg.keep_writer_gone();
                }
                Ok(Some(v))
            }
            Step::Empty { seen } => {
                // Only a look that finds nothing empties the descriptor, so a frame costs no
                // system call. A wake-up emptied here came after `seen` was loaded: arming
                // compares the word with `seen` and fires at once.
                reg.clear();
                if (gone || reg.take_writer_gone()) && !self.ch.writer_alive() {
                    return Err(self.detach());
                }
                let hangup = self.ch.link.as_ref().map(|l| l.sock().clone());
                reg.arm(
                    &self.ch.seg,
                    crate::layout::off::WAKE,
                    &self.ch.pins,
                    seen,
                    hangup,
                );
                Ok(None)
            }
        }
    }

    fn registration(&mut self) -> Result<Arc<Registration>, ReadError> {
        if let Some(r) = &self.readiness {
            return Ok(r.clone());
        }
        let r = Registration::new().map_err(|e| ReadError::Io {
            name: self.ch.name.to_string(),
            op: "eventfd",
            source: e,
        })?;
        self.readiness = Some(r.clone());
        Ok(r)
    }

    /// A file descriptor that becomes readable when this reader may have something to do: after
    /// [`Reader::try_next`] or [`Reader::try_next_view`] returned `Ok(None)`, it turns readable
    /// when a frame arrives, the writer closes the channel or dies, or the channel grows. Register
    /// it with epoll, mio, tokio's `AsyncFd` or asyncio's `add_reader` (for readability only);
    /// call `try_next*` again when it is readable, until one returns `Ok(None)`: a look that
    /// finds nothing empties it and arms it again. Where the kernel offers io_uring futex waits
    /// (Linux ≥ 6.7) the writer's wake-up reaches the descriptor directly; elsewhere one thread
    /// per process waits for all readers' channels at once (`futex_waitv`), not one per reader.
    pub fn readiness_fd(&mut self) -> Result<BorrowedFd<'_>, ReadError> {
        self.registration()?;
        Ok(self.readiness.as_ref().expect("registered above").fd())
    }

    /// The next frame (a verified copy) if one is ready now; otherwise `Ok(None)` and the
    /// readiness descriptor is armed. Never waits. Errors as [`Reader::next`].
    pub fn try_next(&mut self) -> Result<Option<Frame>, ReadError> {
        let mut f = Frame::default();
        Ok(self
            .poll_with(|r| r.try_copy(&mut f, r.latest_only))?
            .map(|()| f))
    }

    /// As [`Reader::try_next`], as a zero-copy view.
    pub fn try_next_view(&mut self) -> Result<Option<FrameView>, ReadError> {
        self.poll_with(|r| r.try_view(r.latest_only))
    }
}

/// What one look found.
enum Step<T> {
    Ready(T),
    Empty { seen: u32 },
}

/// A zero-copy frame in shared memory, pinned while it lives; see [`Reader::next_view`].
pub struct FrameView {
    seg: Arc<Segment>,
    entry: Arc<Entry>,
    parity: u32,
    schema: Option<Arc<Schema>>,
    slot: u32,
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
    /// Kept inline: a view allocates nothing (but metadata, when the frame has some).
    shape: Dims,
    /// Metadata bytes (copied; small).
    pub meta: Vec<u8>,
}

impl FrameView {
    /// The shape (e.g. height, width, channels).
    pub fn shape(&self) -> &[usize] {
        self.shape.as_slice()
    }

    /// The frame's bytes, in shared memory.
    #[allow(unsafe_code)]
    pub fn data(&self) -> &[u8] {
        // SAFETY: the slot is pinned by this view (its bit in our pin-table entry) and its stamp
        // was verified after pinning; the writer never claims a pinned slot (`ring::claim`), so
        // the bytes do not change while `self` lives. The mapping lives as long as `self.seg`.
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
        decode_meta(&self.meta, self.schema.as_deref())
    }

    /// A copy as an owned [`Frame`].
    pub fn to_frame(&self) -> Frame {
        Frame {
            index: self.index,
            timestamp_ns: self.timestamp_ns,
            missed: self.missed,
            dtype: self.dtype,
            shape: self.shape().to_vec(),
            data: self.data().to_vec(),
            meta: self.meta.clone(),
        }
    }
}

impl Drop for FrameView {
    fn drop(&mut self) {
        self.entry.unpin(self.parity, self.slot);
    }
}

impl Reader {
    /// Decodes a copied frame's metadata as `M`, checked against this channel's schema.
    pub fn meta_of<M: Metadata>(&self, frame: &Frame) -> Result<M, MetaError> {
        frame.meta_as(self.schema())
    }
}
