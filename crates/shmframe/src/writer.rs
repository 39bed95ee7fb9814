//! The writer: creates a channel, publishes frames without ever waiting for readers.

use crate::clock::{monotonic_ns, realtime_ns};
use crate::error::{CreateError, Errno, WriteError};
use crate::frame::{frame_len, DType, Dims, Element, Metadata, Schema};
use crate::layout::{off, Geometry, HeaderFixed, LAYOUT_VERSION, MAGIC, MAX_SLOTS, SCHEMA_OFFSET};
use crate::layout::{HEADER_REGION, PIN_ENTRIES, STATE_CLOSED, STATE_OPEN, STATE_SUPERSEDED};
use crate::mapped::{Channel, PinSource};
use crate::name::Name;
use crate::pins::Pins;
use crate::ring;
use crate::segment::{self, CreateFail, LoanMap, Segment};
use crate::socket::{RefusedPeer, Served};
use crate::wake;
use bytemuck::Zeroable;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// Default number of slots in a channel's ring.
pub const DEFAULT_SLOTS: u32 = 3;

/// How a writer creates its channel.
///
/// ```
/// let opts = shmframe::WriterOptions::new().slots(4).mode(0o640).capacity(640 * 480 * 3);
/// assert_eq!(opts.slot_count(), 4);
/// ```
#[derive(Clone, Debug)]
pub struct WriterOptions {
    slots: u32,
    mode: u32,
    capacity: usize,
    schema: Option<Schema>,
    keep: bool,
    socket: Option<std::path::PathBuf>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            slots: DEFAULT_SLOTS,
            mode: 0o600,
            capacity: 0,
            schema: None,
            keep: false,
            socket: None,
        }
    }
}

impl WriterOptions {
    /// Defaults: [`DEFAULT_SLOTS`] slots, mode 0600, capacity chosen by the first frame, no
    /// metadata, channel removed on close.
    pub fn new() -> Self {
        Self::default()
    }
    /// Slots in the ring (1..=64). More slots let zero-copy readers hold more views at once and
    /// let ordered readers fall further behind before missing frames.
    pub fn slots(mut self, n: u32) -> Self {
        self.slots = n;
        self
    }
    /// Permission bits of the shared-memory object (default 0600; 0640/0660 share with a group).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
    /// Payload bytes per slot reserved up front. A larger frame later grows the channel
    /// transparently; reserving avoids that one-time cost.
    pub fn capacity(mut self, bytes: usize) -> Self {
        self.capacity = bytes;
        self
    }
    /// Declares the metadata type carried with every frame.
    pub fn metadata<M: Metadata>(self) -> Self {
        self.schema(M::schema())
    }
    /// Declares the metadata schema directly (for bindings that build schemas at run time).
    pub fn schema(mut self, schema: Schema) -> Self {
        self.schema = Some(schema);
        self
    }
    /// Keep the channel in /dev/shm after the writer closes (readers can still attach and read the
    /// last frames).
    pub fn keep(mut self, keep: bool) -> Self {
        self.keep = keep;
        self
    }
    /// Serve the channel on a Unix socket at `path` instead of naming it in /dev/shm: its memory
    /// is an anonymous, sealed `memfd` that readers receive over the socket
    /// ([`crate::Reader::connect`]), so they need only a shared directory, not a shared IPC
    /// namespace, and nothing is left in /dev/shm whatever happens. The mode decides who may
    /// connect (the socket file's mode, and the writer checks each peer's credentials). A stale
    /// socket at `path` (its writer died) is replaced; a live one is
    /// [`CreateError::SocketInUse`].
    pub fn socket(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.socket = Some(path.into());
        self
    }
    /// The configured slot count.
    pub fn slot_count(&self) -> u32 {
        self.slots
    }

    /// Checks the options and computes the first ring's geometry.
    fn geometry(&self, name: &Name) -> Result<Geometry, CreateError> {
        let bad = |what: String| CreateError::BadOptions {
            name: name.to_string(),
            what,
        };
        if self.slots == 0 || self.slots > MAX_SLOTS {
            return Err(bad(format!("{} slots; use 1 to {MAX_SLOTS}", self.slots)));
        }
        if self.mode & !0o777 != 0 || self.mode & 0o600 != 0o600 {
            return Err(bad(format!(
                "mode {:o}: give permission bits that include owner read/write (e.g. 0o600, 0o640)",
                self.mode
            )));
        }
        if let Some(s) = &self.schema {
            s.validate().map_err(|e| bad(e.to_string()))?;
        }
        if self.keep && self.socket.is_some() {
            return Err(bad(
                "`keep` needs a name in /dev/shm; a socket-served channel lives only as long as its processes"
                    .into(),
            ));
        }
        let meta_size = self.schema.as_ref().map_or(0, |s| s.size);
        Geometry::new(self.slots, meta_size, self.capacity as u64, HEADER_REGION).ok_or_else(|| {
            bad(format!(
                "a capacity of {} bytes per slot is too large",
                self.capacity
            ))
        })
    }
}

/// Publishes frames to a named channel. Created with [`Writer::create`]; removes the channel when
/// dropped or closed (unless [`WriterOptions::keep`]).
///
/// ```
/// # let name = format!("doc-writer-{}", std::process::id());
/// let mut w = shmframe::Writer::create(&name, shmframe::WriterOptions::new())?;
/// let pixels = vec![7u8; 4 * 6 * 3];
/// let index = w.write(shmframe::DType::U8, &[4, 6, 3], &pixels)?;
/// assert_eq!(index, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Writer {
    ch: Channel,
    opts: WriterOptions,
    next_index: u64,
    last_slot: u32,
    fps_ewma: f64,
    last_ts: u64,
    /// When `fps_milli` and `last_timestamp_ns` were last stored.
    info_ts: u64,
    closed: bool,
    /// The open loan: its slot, its id, and for an owned loan ([`Writer::loan_raw`]) a handle
    /// that tells whether the loan still exists.
    loaned: Option<(u32, u64, Option<Weak<()>>)>,
    /// When each pin entry was last found alive (monotonic ns), so that a live reader's pin in
    /// the way costs a lock test at most every [`ALIVE_RECHECK_NS`].
    alive_checked: [u64; PIN_ENTRIES as usize],
    /// Each lagging entry's cursor when last looked at, and since when it has not moved.
    cursor_seen: [(u64, u64); PIN_ENTRIES as usize],
    /// Since when each slot of the current ring has been found pinned at every claim (0: it was
    /// not, or has been claimed since).
    pinned_since: [u64; MAX_SLOTS as usize],
    /// Consecutive `FUTEX_WAKE`s that woke nobody (a sleeper count left by a dead reader).
    idle_wakes: u32,
    born: u64,
    /// The socket a socket-served channel is handed out on.
    served: Option<Served>,
}

const ALIVE_RECHECK_NS: u64 = 100_000_000;

/// How often at most the writer updates the header's `fps_milli` and `last_timestamp_ns`.
const INFO_INTERVAL_NS: u64 = 1_000_000;
/// Ids of loans, unique in the process: a loan is published only by the writer that made it.
static NEXT_LOAN: AtomicU64 = AtomicU64::new(0);

/// Passes over the ring before a frame is dropped as "all slots pinned".
const CLAIM_PASSES: u32 = 4;

fn create_err(name: &Name, op: &'static str, e: Errno) -> CreateError {
    match e {
        Errno::ACCESS | Errno::PERM => CreateError::PermissionDenied {
            name: name.to_string(),
            path: name.file_path().display().to_string(),
        },
        _ => CreateError::Io {
            name: name.to_string(),
            op,
            source: e,
        },
    }
}

fn fail_err(name: &Name, f: CreateFail) -> CreateError {
    match f {
        CreateFail::Errno(op, e) => create_err(name, op, e),
        CreateFail::NoSpace { needed, available } => CreateError::NoSpace {
            name: name.to_string(),
            needed,
            available,
            dir: crate::name::SHM_DIR.into(),
        },
    }
}

/// Creates and fully initialises a channel object under a temporary name, with the version stored
/// last, and takes the writer's lock on it. Returns it with its temporary name.
fn build_segment(
    name: &Name,
    geom: &Geometry,
    schema: Option<&Schema>,
    mode: u32,
    lineage: u64,
) -> Result<(Segment, String), CreateError> {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let pid = std::process::id();
    loop {
        let tmp = format!(
            "{}.tmp-{pid}-{}",
            name.object_name(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let seg = match Segment::create_exclusive(&tmp, geom.ring_end(), mode) {
            Err(CreateFail::Errno(_, Errno::EXIST)) => continue,
            other => other.map_err(|f| fail_err(name, f))?,
        };
        if !init_channel(name, &seg, geom, schema, lineage)? {
            let _ = segment::unlink(&tmp);
            continue;
        }
        return Ok((seg, tmp));
    }
}

/// Takes the writer's lock on a new channel object and initialises it, storing the version last.
/// `false` if another process holds the lock (a stray temporary object of the same name).
fn init_channel(
    name: &Name,
    seg: &Segment,
    geom: &Geometry,
    schema: Option<&Schema>,
    lineage: u64,
) -> Result<bool, CreateError> {
    if !seg
        .try_lock_byte(0)
        .map_err(|e| create_err(name, "fcntl(F_OFD_SETLK)", e))?
    {
        return Ok(false);
    }
    let schema = schema.map(Schema::encode).unwrap_or_default();
    let hf = HeaderFixed {
        magic: MAGIC,
        version: 0,
        header_size: HEADER_REGION as u32,
        lineage,
        created_realtime_ns: realtime_ns(),
        writer_pid: std::process::id(),
        meta_size: geom.meta_size,
        schema_offset: SCHEMA_OFFSET,
        schema_len: schema.len() as u32,
        pin_entries: PIN_ENTRIES,
        _reserved0: [0; 76],
    };
    seg.write(0, &hf);
    seg.copy_in(SCHEMA_OFFSET as usize, &schema);
    seg.write(geom.ring_offset as usize, &geom.ring_fixed(0));
    seg.atomic_u64(off::RING)
        .store(geom.ring_offset, Ordering::Relaxed);
    // SYNC POINT: the version is stored last, with release: an opener that acquires a non-zero
    // version sees every byte written above (iceoryx2's init handshake).
    seg.atomic_u32(off::VERSION)
        .store(LAYOUT_VERSION, Ordering::Release);
    Ok(true)
}

fn new_lineage() -> u64 {
    let t = realtime_ns() ^ monotonic_ns().rotate_left(17);
    t ^ ((std::process::id() as u64) << 40) | 1
}

/// What stands under a channel's name when a new writer wants it.
enum Occupant {
    /// A live writer holds it.
    Live(u32),
    /// Its writer is gone; we marked it superseded (its readers move on) or it is not ours to mark.
    Stale,
    /// Another new writer is taking it over right now.
    Contended,
    /// The name vanished meanwhile.
    Gone,
}

/// Rings the bell of `pins` (`ring::ring_bell`) and wakes the readers sleeping on it; returns
/// how many were woken.
fn ring_bell(pins: &Pins) -> usize {
    ring::ring_bell(pins.bell());
    wake::wake_all(pins.bell())
}

/// Looks at the object under `object` for a takeover. Writes into it only if it is a shmframe
/// channel of our own uid whose writer is dead: then it is marked superseded (compare-and-swap, so
/// of two new writers only one wins), its readers woken and its pin table's name removed.
fn occupant(name: &Name, object: &str) -> Result<Occupant, CreateError> {
    let old = match Segment::open(object, true, HEADER_REGION) {
        Ok(s) => s,
        Err(Errno::NOENT) => return Ok(Occupant::Gone),
        // A symbolic link, FIFO, directory…: never opened, just replaced by the rename.
        Err(Errno::LOOP) | Err(Errno::NOTSUP) => return Ok(Occupant::Stale),
        Err(e) => return Err(create_err(name, "shm_open", e)),
    };
    let ours = old.len() as u64 >= HEADER_REGION && old.read::<[u8; 8]>(0) == MAGIC;
    let hf: HeaderFixed = if ours {
        old.read(0)
    } else {
        Zeroable::zeroed()
    };
    if old
        .writer_alive()
        .map_err(|e| create_err(name, "fcntl(F_OFD_GETLK)", e))?
    {
        return Ok(Occupant::Live(hf.writer_pid));
    }
    if !ours || !old.owned_by_us() {
        return Ok(Occupant::Stale);
    }
    let state = old.atomic_u32(off::STATE);
    let cur = state.load(Ordering::Acquire);
    if cur == STATE_SUPERSEDED
        || state
            .compare_exchange(cur, STATE_SUPERSEDED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
    {
        return Ok(Occupant::Contended);
    }
    old.atomic_u32(off::WAKE).fetch_add(1, Ordering::Release);
    // Its sleeping readers wait on its pin table's bell; a table that cannot be opened has no
    // sleeper to wake (they look at the channel every `LIVENESS_INTERVAL` in any case).
    if let Ok(pins) = Pins::open(name, hf.lineage) {
        ring_bell(&pins);
    }
    Pins::unlink(name, hf.lineage);
    Ok(Occupant::Stale)
}

/// The error for a new channel that does not read back as valid (a bug or a hostile process).
fn reread_err(name: &Name, e: crate::OpenError) -> CreateError {
    CreateError::Io {
        name: name.to_string(),
        op: "re-reading the new channel",
        source: match e {
            crate::OpenError::Io { source, .. } => source,
            _ => Errno::IO,
        },
    }
}

/// Puts the object `tmp` under the channel's name, taking over a stale channel.
fn install(name: &Name, tmp: &str) -> Result<(), CreateError> {
    let object = name.object_name();
    for _ in 0..50 {
        match segment::rename(tmp, &object, false) {
            Ok(()) => return Ok(()),
            Err(Errno::EXIST) => {}
            Err(e) => return Err(create_err(name, "rename", e)),
        }
        match occupant(name, &object)? {
            Occupant::Live(pid) => {
                return Err(CreateError::Busy {
                    name: name.to_string(),
                    pid,
                })
            }
            Occupant::Stale => {
                return segment::rename(tmp, &object, true)
                    .map_err(|e| create_err(name, "rename", e))
            }
            Occupant::Contended => std::thread::sleep(std::time::Duration::from_millis(10)),
            Occupant::Gone => {}
        }
    }
    Err(CreateError::Busy {
        name: name.to_string(),
        pid: 0,
    })
}

impl Writer {
    /// Creates channel `name`. Fails with [`CreateError::Busy`] if a live writer holds the name;
    /// takes over a stale channel whose writer died (its readers follow to the new one). With
    /// [`WriterOptions::socket`] the channel is served on that socket instead of named in
    /// /dev/shm.
    pub fn create(name: &str, opts: WriterOptions) -> Result<Writer, CreateError> {
        let name = Name::new(name)?;
        let geom = opts.geometry(&name)?;
        let (ch, served) = match opts.socket.clone() {
            Some(path) => Writer::serve(&name, &opts, &geom, &path)?,
            None => (Writer::install_named(&name, &opts, &geom)?, None),
        };
        Ok(Writer {
            ch,
            opts,
            next_index: 0,
            last_slot: geom.slot_count - 1,
            fps_ewma: 0.0,
            last_ts: 0,
            info_ts: 0,
            closed: false,
            loaned: None,
            alive_checked: [0; PIN_ENTRIES as usize],
            cursor_seen: [(u64::MAX, 0); PIN_ENTRIES as usize],
            pinned_since: [0; MAX_SLOTS as usize],
            idle_wakes: 0,
            born: crate::fork::generation(),
            served,
        })
    }

    /// A new channel object and pin table named in /dev/shm.
    fn install_named(
        name: &Name,
        opts: &WriterOptions,
        geom: &Geometry,
    ) -> Result<Channel, CreateError> {
        let mut lineage = new_lineage();
        let pins = loop {
            match Pins::create(name, lineage, opts.mode) {
                Err(CreateFail::Errno(_, Errno::EXIST)) => lineage = lineage.wrapping_add(2),
                other => break other.map_err(|f| fail_err(name, f))?,
            }
        };
        let unlink_pins = |e: CreateError| {
            Pins::unlink(name, lineage);
            e
        };
        let (seg, tmp) = build_segment(name, geom, opts.schema.as_ref(), opts.mode, lineage)
            .map_err(unlink_pins)?;
        if let Err(e) = install(name, &tmp) {
            let _ = segment::unlink(&tmp);
            return Err(unlink_pins(e));
        }
        let ch = Channel::from_segment(name.clone(), seg, PinSource::Have(Arc::new(pins)), None);
        ch.map_err(|e| unlink_pins(reread_err(name, e)))
    }

    /// A new channel in anonymous memory, served on the socket at `path`.
    fn serve(
        name: &Name,
        opts: &WriterOptions,
        geom: &Geometry,
        path: &std::path::Path,
    ) -> Result<(Channel, Option<Served>), CreateError> {
        use rustix::fs::SealFlags;
        let listener = crate::socket::listen(name, path, opts.mode)?;
        let lineage = new_lineage();
        let pins = Arc::new(Pins::create_memfd(lineage).map_err(|f| fail_err(name, f))?);
        // Readers map the channel read-only; 0400 keeps a peer of another uid from re-opening
        // its descriptor for writing. It may grow (a new ring), never shrink.
        let seals = SealFlags::SHRINK | SealFlags::SEAL;
        let label = name.object_name();
        let seg =
            Segment::memfd(&label, geom.ring_end(), 0o400, seals).map_err(|f| fail_err(name, f))?;
        if !init_channel(name, &seg, geom, opts.schema.as_ref(), lineage)? {
            return Err(create_err(name, "fcntl(F_OFD_SETLK)", Errno::AGAIN));
        }
        let ch = Channel::from_segment(name.clone(), seg, PinSource::Have(pins.clone()), None)
            .map_err(|e| reread_err(name, e))?;
        let served = listener.serve(name, ch.seg.clone(), pins)?;
        Ok((ch, Some(served)))
    }

    /// The channel's name.
    pub fn name(&self) -> &Name {
        &self.ch.name
    }

    /// The socket a socket-served channel is served on ([`WriterOptions::socket`]).
    pub fn socket_path(&self) -> Option<&std::path::Path> {
        self.served.as_ref().map(Served::path)
    }

    /// Readers of a socket-served channel that were refused since the last call (their
    /// credentials do not match the channel's mode), for the caller to log.
    pub fn refused_peers(&self) -> Vec<RefusedPeer> {
        self.served
            .as_ref()
            .map_or_else(Vec::new, Served::take_refused)
    }

    /// Frames published so far (the next frame's index).
    pub fn frames_published(&self) -> u64 {
        self.next_index
    }

    /// Payload bytes each slot holds now (grows when a larger frame is written).
    pub fn capacity(&self) -> usize {
        self.ch.geom.slot_capacity as usize
    }

    /// The metadata schema declared at creation.
    pub fn schema(&self) -> Option<&Schema> {
        self.ch.schema.as_deref()
    }

    /// Keep (or not) the channel in /dev/shm after close.
    pub fn set_keep(&mut self, keep: bool) {
        self.opts.keep = keep;
    }

    /// Appends a ring of `cap`-byte slots to the object and makes it current; readers follow it
    /// through their own mapping of the object, so no frame is lost even if the name goes.
    fn append_ring(&mut self, cap: u64) -> Result<(), CreateError> {
        let name = self.ch.name.clone();
        let at = self.ch.geom.ring_end();
        let geom = Geometry::new(self.ch.geom.slot_count, self.ch.geom.meta_size, cap, at)
            .ok_or_else(|| CreateError::BadOptions {
                name: name.to_string(),
                what: format!("{cap}-byte frames are too large"),
            })?;
        self.ch
            .seg
            .grow_to(geom.ring_end())
            .map_err(|f| fail_err(&name, f))?;
        let seg = self
            .ch
            .seg
            .remap(geom.ring_end())
            .map_err(|e| create_err(&name, "mmap", e))?;
        let generation = self.ch.generation + 1;
        seg.write(at as usize, &geom.ring_fixed(generation));
        // SYNC POINT: release stores after the new ring header: a reader that acquires either
        // link sees the ring initialised (its slots are zero: empty).
        self.ch.ring_next().store(at, Ordering::Release);
        seg.atomic_u64(off::RING).store(at, Ordering::Release);
        self.ch = Channel {
            seg: Arc::new(seg),
            geom,
            generation,
            name,
            hf: self.ch.hf,
            schema: self.ch.schema.clone(),
            identity: self.ch.identity,
            pins: self.ch.pins.clone(),
            link: None,
        };
        self.ch.wake().fetch_add(1, Ordering::Release);
        ring_bell(&self.ch.pins);
        self.last_slot = geom.slot_count - 1;
        self.pinned_since = [0; MAX_SLOTS as usize];
        Ok(())
    }

    /// Grows the ring for `needed`-byte frames.
    fn grow(&mut self, needed: usize) -> Result<(), WriteError> {
        let old_cap = self.ch.geom.slot_capacity as usize;
        let cap = if old_cap == 0 {
            needed
        } else {
            needed.max(old_cap.saturating_add(old_cap / 2))
        };
        self.append_ring(cap as u64)
            .map_err(|source| WriteError::Grow {
                name: self.ch.name.to_string(),
                needed,
                source,
            })
    }

    /// Recreates the channel after its object was truncated under us: a new object under the
    /// same name (readers re-open it), frame indices continuing.
    fn recover_truncated(&mut self) -> WriteError {
        let name = self.ch.name.to_string();
        let keep = self.opts.keep;
        self.opts.keep = false;
        self.loaned = None;
        // Superseded, not closed: readers re-open the name and find the new channel.
        let _ = self.retire(STATE_SUPERSEDED);
        match Writer::create(&name, self.opts.clone()) {
            Ok(mut fresh) => {
                fresh.opts.keep = keep;
                fresh.ch.head().store(self.next_index, Ordering::Release);
                fresh.next_index = self.next_index;
                std::mem::swap(self, &mut fresh);
                // `fresh` is the old, closed writer now.
            }
            Err(_) => self.opts.keep = keep,
        }
        WriteError::Truncated { name }
    }

    fn check_usable(&mut self) -> Result<(), WriteError> {
        if crate::fork::generation() != self.born {
            return Err(WriteError::Forked {
                name: self.ch.name.to_string(),
            });
        }
        if self.ch.faulted() {
            return Err(self.recover_truncated());
        }
        Ok(())
    }

    /// Claims a slot for frame `self.next_index`: the oldest one no reader pins.
    fn claim(&mut self, needed: usize) -> Result<u32, WriteError> {
        self.check_usable()?;
        if let Some((slot, _, token)) = &self.loaned {
            if token.as_ref().is_some_and(|t| t.strong_count() > 0) {
                return Err(WriteError::LoanOpen {
                    name: self.ch.name.to_string(),
                });
            }
            // A loan was dropped (a raw one) or forgotten without being finished: discard it.
            let slot = *slot;
            self.abandon(slot);
        }
        if needed > self.ch.geom.slot_capacity as usize {
            self.grow(needed)?;
        }
        // A reader pins a slot for a moment before it checks the slot still holds the frame it
        // wants, so one pass can find every slot pinned although no reader holds more than one
        // view. Only a slot pinned in every pass counts as truly pinned.
        for pass in 0..CLAIM_PASSES {
            if let Some(slot) = self.claim_pass(pass > 0) {
                return Ok(slot);
            }
            if pass > 0 {
                std::thread::yield_now();
            }
        }
        Err(WriteError::AllSlotsPinned {
            name: self.ch.name.to_string(),
            slots: self.ch.geom.slot_count,
        })
    }

    /// One look at every slot, in [`ring::write_order`]; reclaims the pins of dead readers in the
    /// way. With `stuck` (an earlier pass found every slot pinned), pinning readers are tested for
    /// liveness at once rather than after [`ALIVE_RECHECK_NS`] of pinning.
    fn claim_pass(&mut self, stuck: bool) -> Option<u32> {
        let count = self.ch.geom.slot_count;
        let (mut taken, lagging) = self
            .ch
            .pins
            .taken(self.next_index.saturating_sub(count as u64));
        if lagging != 0 && self.reclaim_stalled(lagging) {
            taken = self.ch.pins.taken(0).0;
        }
        let mut pinned = 0u64;
        let mut found = None;
        let mut after = None;
        // The slots in `ring::write_order`, one step at a time: the stamps are read again at each
        // step (only this writer writes them, and a refused claim puts its slot's stamp back).
        while let Some((slot, key)) = ring::next_in_write_order(
            self.last_slot,
            count,
            |s| self.ch.stamp(s).load(Ordering::Relaxed),
            taken,
            after,
        ) {
            after = Some(key);
            let claimed = match self.try_claim(slot) {
                Err(p) if (self.pinned_long(slot) || stuck) && self.reclaim(p.entries) => {
                    self.try_claim(slot)
                }
                other => other,
            };
            if claimed.is_ok() {
                found = Some(slot);
                break;
            }
            pinned |= 1 << slot;
        }
        // A slot not found pinned this time starts afresh (slots past the ring's are always 0).
        for (slot, since) in self.pinned_since[..count as usize].iter_mut().enumerate() {
            if pinned & (1 << slot) == 0 {
                *since = 0;
            }
        }
        found
    }

    /// [`ring::claim`] of `slot` for the next frame, against every reader's pin word.
    fn try_claim(&self, slot: u32) -> Result<(), ring::Pinned> {
        let words = self.ch.pins.words(self.ch.parity());
        ring::claim(self.ch.stamp(slot), self.next_index, 1 << slot, words)
    }

    /// `true` once `slot` has been found pinned at every claim for [`ALIVE_RECHECK_NS`] (at every
    /// pass that tried it; see `claim_pass`): only then are its pinning readers tested for
    /// liveness. A reader holding its newest view for a moment, as a spinning reader always
    /// does, costs the writer no system call.
    fn pinned_long(&mut self, slot: u32) -> bool {
        let now = monotonic_ns();
        let since = &mut self.pinned_since[slot as usize];
        if *since == 0 {
            *since = now;
        }
        now.saturating_sub(*since) >= ALIVE_RECHECK_NS
    }

    /// Of the entries in `lagging` (a whole ring behind), tests the liveness of those whose
    /// cursor has not moved for [`ALIVE_RECHECK_NS`]: a reader that exited without clearing its
    /// entry, or one that takes no frame for that long. A reader that keeps taking frames, however
    /// far behind, costs no system call. `true` if any entry was reclaimed.
    fn reclaim_stalled(&mut self, lagging: u64) -> bool {
        let now = monotonic_ns();
        let mut due = 0u64;
        for e in (0..PIN_ENTRIES).filter(|e| lagging & (1 << e) != 0) {
            let (cursor, i) = (self.ch.pins.cursor(e), e as usize);
            if cursor != self.cursor_seen[i].0 {
                self.cursor_seen[i] = (cursor, now);
            } else if now.saturating_sub(self.cursor_seen[i].1) >= ALIVE_RECHECK_NS {
                due |= 1 << e;
            }
        }
        due != 0 && self.reclaim(due)
    }

    /// Tests the liveness of the pin entries in `entries` (not more often than every
    /// [`ALIVE_RECHECK_NS`] each: a live reader in the way costs one `fcntl` per interval) and
    /// reclaims the dead ones. `true` if any was reclaimed.
    fn reclaim(&mut self, entries: u64) -> bool {
        let now = monotonic_ns();
        let mut due = 0u64;
        for e in 0..PIN_ENTRIES as usize {
            if entries & (1 << e) != 0
                && now.saturating_sub(self.alive_checked[e]) >= ALIVE_RECHECK_NS
            {
                self.alive_checked[e] = now;
                due |= 1 << e;
            }
        }
        due != 0 && self.ch.pins.reclaim(due)
    }

    fn check_meta(&self, meta: &[u8]) -> Result<(), WriteError> {
        if meta.is_empty() {
            return Ok(());
        }
        let expected = self.ch.geom.meta_size as usize;
        if meta.len() == expected {
            return Ok(());
        }
        Err(WriteError::MetaMismatch {
            name: self.ch.name.to_string(),
            schema: self
                .ch
                .schema
                .as_ref()
                .map_or("(none declared)".into(), |s| s.type_name.clone()),
            expected,
            got: meta.len(),
        })
    }

    fn frame_len(&self, dtype: DType, shape: &[usize]) -> Result<usize, WriteError> {
        frame_len(dtype, shape).map_err(|what| WriteError::BadFrame {
            name: self.ch.name.to_string(),
            what,
        })
    }

    /// Writes the frame's description (and metadata) into its claimed slot. Called right after
    /// the claim, while the slot's header is in cache: after the payload, which for a large frame
    /// evicts that header, it would cost a miss between the data and the publish.
    fn describe(&self, slot: u32, dtype: DType, shape: &[usize], len: usize, meta: &[u8]) {
        self.ch.write_desc(slot, dtype, shape, len, meta.len());
        if !meta.is_empty() {
            self.ch.seg.copy_in(self.ch.meta_offset(slot), meta);
        }
    }

    /// Completes the frame in `slot`: stamps it, advances `head`, wakes sleeping readers.
    #[inline]
    fn commit(&mut self, slot: u32) -> Result<u64, WriteError> {
        if self.ch.faulted() {
            return Err(self.recover_truncated());
        }
        let index = self.next_index;
        let ts = monotonic_ns();
        self.ch
            .seg
            .atomic_u64(self.ch.slot_offset(slot) + off::S_TIMESTAMP)
            .store(ts, Ordering::Relaxed);
        if ring::publish(
            self.ch.stamp(slot),
            index,
            self.ch.head(),
            self.ch.wake(),
            || self.ch.pins.sleepers(),
        ) {
            self.wake_sleepers();
        }
        self.last_slot = slot;
        self.next_index += 1;
        self.note_rate(ts);
        Ok(index)
    }

    /// Keeps the frame-rate estimate, and stores it with the publish time in the header for
    /// `shmframe info`: after the publish, and at most every [`INFO_INTERVAL_NS`], since spinning
    /// readers watch the cache line these words share with `head` and `wake`.
    fn note_rate(&mut self, ts: u64) {
        if self.last_ts != 0 && ts > self.last_ts {
            let inst = 1e9 / (ts - self.last_ts) as f64;
            self.fps_ewma = if self.fps_ewma == 0.0 {
                inst
            } else {
                0.9 * self.fps_ewma + 0.1 * inst
            };
        }
        self.last_ts = ts;
        if ts.saturating_sub(self.info_ts) < INFO_INTERVAL_NS {
            return;
        }
        self.info_ts = ts;
        self.store_info();
    }

    fn store_info(&self) {
        let seg = &self.ch.seg;
        seg.atomic_u64(off::LAST_TIMESTAMP)
            .store(self.last_ts, Ordering::Relaxed);
        seg.atomic_u32(off::FPS_MILLI).store(
            (self.fps_ewma * 1000.0).min(u32::MAX as f64) as u32,
            Ordering::Relaxed,
        );
    }

    /// Rings the bell and wakes the sleepers; after many wake-ups that woke nobody, clears the
    /// sleeping flags of dead readers, which would otherwise cost a system call per frame forever.
    fn wake_sleepers(&mut self) {
        if ring_bell(&self.ch.pins) > 0 {
            self.idle_wakes = 0;
            return;
        }
        self.idle_wakes += 1;
        if self.idle_wakes >= 256 {
            self.idle_wakes = 0;
            self.ch.pins.reclaim_sleepers();
        }
    }

    /// Publishes a frame by copying `data` (C-contiguous bytes of `shape` × `dtype`) into the
    /// ring. Never waits for readers. Returns the frame's index.
    pub fn write(&mut self, dtype: DType, shape: &[usize], data: &[u8]) -> Result<u64, WriteError> {
        self.write_with_meta(dtype, shape, data, &[])
    }

    /// As [`Writer::write`], with metadata bytes laid out as the channel's schema says.
    pub fn write_with_meta(
        &mut self,
        dtype: DType,
        shape: &[usize],
        data: &[u8],
        meta: &[u8],
    ) -> Result<u64, WriteError> {
        let len = self.frame_len(dtype, shape)?;
        if data.len() != len {
            return Err(WriteError::BadFrame {
                name: self.ch.name.to_string(),
                what: format!(
                    "{} data bytes for shape {shape:?} of {dtype}, which needs {len}",
                    data.len()
                ),
            });
        }
        self.check_meta(meta)?;
        let slot = self.claim(len)?;
        self.describe(slot, dtype, shape, len, meta);
        self.ch.seg.copy_in(self.ch.payload_offset(slot), data);
        self.commit(slot)
    }

    /// Typed convenience: elements of `T`, with optional typed metadata `M` (which must be the
    /// type the channel was created with).
    pub fn write_typed<T: Element, M: Metadata>(
        &mut self,
        shape: &[usize],
        data: &[T],
        meta: Option<&M>,
    ) -> Result<u64, WriteError> {
        if let (Some(_), Some(s)) = (meta, self.ch.schema.as_ref()) {
            if **s != M::schema() {
                return Err(WriteError::MetaMismatch {
                    name: self.ch.name.to_string(),
                    schema: s.type_name.clone(),
                    expected: s.size as usize,
                    got: std::mem::size_of::<M>(),
                });
            }
        }
        let meta = meta.map(bytemuck::bytes_of).unwrap_or(&[]);
        self.write_with_meta(T::DTYPE, shape, bytemuck::cast_slice(data), meta)
    }

    /// Borrows a slot to fill in place (zero-copy): fill [`Loan::data_mut`], then
    /// [`Loan::publish`]. Dropping the loan unpublished discards the frame.
    ///
    /// ```
    /// # let name = format!("doc-loan-{}", std::process::id());
    /// let mut w = shmframe::Writer::create(&name, shmframe::WriterOptions::new())?;
    /// let mut loan = w.loan(shmframe::DType::U16, &[2, 3])?;
    /// loan.data_mut().fill(1);
    /// assert_eq!(loan.publish(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn loan(&mut self, dtype: DType, shape: &[usize]) -> Result<Loan<'_>, WriteError> {
        let raw = self.open_loan(dtype, shape, false)?;
        Ok(Loan {
            writer: self,
            raw: Some(raw),
            meta: Vec::new(),
        })
    }

    /// Closes the channel: readers get [`crate::ReadError::Closed`] once they have read every
    /// frame published before; the object is removed unless the writer was created with `keep`.
    pub fn close(mut self) -> Result<(), WriteError> {
        self.close_inner()
    }

    fn close_inner(&mut self) -> Result<(), WriteError> {
        self.retire(STATE_CLOSED)
    }

    /// Ends this writer's channel with `state` (closed, or superseded by a re-created one): wakes
    /// readers, lets go of the writer's lock and, unless kept, removes the names.
    fn retire(&mut self, state: u32) -> Result<(), WriteError> {
        if self.closed || crate::fork::generation() != self.born {
            return Ok(());
        }
        self.closed = true;
        self.store_info();
        let sleepers = self.ch.pins.sleepers();
        if ring::set_state(self.ch.state_word(), state, self.ch.wake(), sleepers) {
            ring_bell(&self.ch.pins);
        }
        // Readers see the writer gone from now on, and a new writer may take the name.
        self.ch.seg.unlock_byte(0);
        if let Some(mut served) = self.served.take() {
            // Nothing is named in /dev/shm: the memory goes with the last descriptor.
            served.stop();
            return Ok(());
        }
        if self.opts.keep {
            return Ok(());
        }
        // The pin table's name carries our lineage: always ours. The channel's name only while
        // it still refers to our object (not a successor's).
        Pins::unlink(&self.ch.name, self.ch.hf.lineage);
        let object = self.ch.name.object_name();
        let ours = Segment::open(&object, false, 0)
            .ok()
            .and_then(|s| s.identity().ok())
            == Some(self.ch.identity);
        if !ours {
            return Ok(());
        }
        match segment::unlink(&object) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(WriteError::Io {
                name: self.ch.name.to_string(),
                op: "shm_unlink",
                source: e,
            }),
        }
    }

    /// Borrows a slot like [`Writer::loan`], as an owned value that does not borrow the writer,
    /// for bindings that must hand the buffer to a garbage-collected runtime. The loan has its own
    /// mapping of the slot; once the loan is published or discarded that mapping is replaced by
    /// private memory, so a pointer the runtime kept can never change a published frame. While it
    /// is open, other writes fail; finish it with [`Writer::publish_raw`] or
    /// [`Writer::discard_raw`] (dropping it unfinished discards the frame at the next write).
    pub fn loan_raw(&mut self, dtype: DType, shape: &[usize]) -> Result<RawLoan, WriteError> {
        self.open_loan(dtype, shape, true)
    }

    fn open_loan(
        &mut self,
        dtype: DType,
        shape: &[usize],
        own: bool,
    ) -> Result<RawLoan, WriteError> {
        let len = self.frame_len(dtype, shape)?;
        let slot = self.claim(len)?;
        // Metadata set later describes the slot again (its length is part of the description).
        self.describe(slot, dtype, shape, len, &[]);
        let mem = if own {
            let at = self.ch.slot_offset(slot);
            let skip = self.ch.geom.payload_offset as usize;
            match self.ch.seg.map_loan(at as u64, skip + len) {
                Ok(map) => LoanMem::Own(Arc::new(map), skip),
                Err(e) => {
                    self.abandon(slot);
                    return Err(WriteError::Io {
                        name: self.ch.name.to_string(),
                        op: "mmap",
                        source: e,
                    });
                }
            }
        } else {
            LoanMem::Channel(self.ch.seg.clone(), self.ch.payload_offset(slot))
        };
        // A borrowing loan ([`Writer::loan`]) needs no token: the writer cannot be used while it
        // lives.
        let token = own.then(|| Arc::new(()));
        let id = NEXT_LOAN.fetch_add(1, Ordering::Relaxed);
        self.loaned = Some((slot, id, token.as_ref().map(Arc::downgrade)));
        Ok(RawLoan {
            _token: token,
            id,
            mem,
            slot,
            dtype,
            shape: Dims::new(shape.iter().copied()),
            len,
        })
    }

    fn owns(&self, loan: &RawLoan) -> bool {
        self.loaned
            .as_ref()
            .is_some_and(|&(slot, id, _)| slot == loan.slot && id == loan.id)
    }

    /// Publishes a raw loan with optional metadata; returns the frame's index.
    #[inline]
    pub fn publish_raw(&mut self, loan: RawLoan, meta: &[u8]) -> Result<u64, WriteError> {
        loan.retire();
        if !self.owns(&loan) {
            return Err(WriteError::BadFrame {
                name: self.ch.name.to_string(),
                what: "this loan does not belong to the writer's open loan".into(),
            });
        }
        if let Err(e) = self.check_meta(meta) {
            self.discard_raw(loan);
            return Err(e);
        }
        self.loaned = None;
        if !meta.is_empty() {
            self.describe(loan.slot, loan.dtype, loan.shape(), loan.len, meta);
        }
        self.commit(loan.slot)
    }

    /// Discards a raw loan: the slot is left empty.
    pub fn discard_raw(&mut self, loan: RawLoan) {
        loan.retire();
        if self.owns(&loan) {
            self.abandon(loan.slot);
        }
    }

    fn abandon(&mut self, slot: u32) {
        self.loaned = None;
        ring::abandon_write(self.ch.stamp(slot));
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.close_inner();
    }
}

/// A slot borrowed for zero-copy writing; see [`Writer::loan`].
pub struct Loan<'w> {
    writer: &'w mut Writer,
    raw: Option<RawLoan>,
    meta: Vec<u8>,
}

impl Loan<'_> {
    fn raw(&mut self) -> &mut RawLoan {
        self.raw.as_mut().expect("loan already finished")
    }

    /// The frame's bytes, in shared memory. Readers cannot see them until [`Loan::publish`].
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.raw().as_mut_slice()
    }

    /// The frame's elements as `T` (`None` if `T` is not the loan's dtype).
    pub fn as_mut_slice<T: Element>(&mut self) -> Option<&mut [T]> {
        if T::DTYPE != self.raw().dtype {
            return None;
        }
        bytemuck::try_cast_slice_mut(self.data_mut()).ok()
    }

    /// Sets the frame's metadata bytes (laid out as the channel's schema).
    pub fn set_meta(&mut self, meta: &[u8]) -> Result<(), WriteError> {
        self.writer.check_meta(meta)?;
        self.meta = meta.to_vec();
        Ok(())
    }

    /// Sets typed metadata.
    pub fn set_meta_typed<M: Metadata>(&mut self, meta: &M) -> Result<(), WriteError> {
        self.set_meta(bytemuck::bytes_of(meta))
    }

    /// Publishes the frame; returns its index.
    #[inline]
    pub fn publish(mut self) -> u64 {
        let raw = self.raw.take().expect("loan already finished");
        let meta = std::mem::take(&mut self.meta);
        // Metadata was checked by `set_meta` and the loan is the writer's open one, so this
        // cannot fail.
        self.writer
            .publish_raw(raw, &meta)
            .expect("publishing a checked loan")
    }
}

impl Drop for Loan<'_> {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            self.writer.discard_raw(raw);
        }
    }
}

/// Where a loan's bytes are: the writer's own mapping of the channel ([`Writer::loan`], whose
/// borrow ends with the loan) or a mapping of the loan's own ([`Writer::loan_raw`]).
enum LoanMem {
    Channel(Arc<Segment>, usize),
    Own(Arc<LoanMap>, usize),
}

/// An owned slot loan; see [`Writer::loan_raw`].
pub struct RawLoan {
    /// For an owned loan: alive as long as the loan (see `Writer::loaned`).
    _token: Option<Arc<()>>,
    id: u64,
    mem: LoanMem,
    slot: u32,
    dtype: DType,
    shape: Dims,
    len: usize,
}

impl RawLoan {
    /// The frame's bytes in shared memory.
    #[allow(unsafe_code)]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        match &self.mem {
            // SAFETY: the slot is claimed for this loan (odd stamp, no pin) until it is published
            // or discarded, which consumes the loan; the mapping lives as long as the `Arc`; the
            // slice borrows `self` mutably so it is the only Rust view of the bytes.
            LoanMem::Channel(seg, at) => unsafe { seg.slice_mut(*at, self.len) },
            // SAFETY: as above, through the loan's own mapping, which covers `skip + len` bytes and
            // is retired only when the loan is consumed.
            LoanMem::Own(map, skip) => unsafe {
                std::slice::from_raw_parts_mut(map.ptr().add(*skip), self.len)
            },
        }
    }
    /// A handle that keeps the loan's memory mapped after the loan is published or discarded
    /// (and after the writer grows its channel or closes), for bindings whose runtime may hold on
    /// to the buffer longer than the loan. Past the loan, the memory is private: writes through a
    /// stale pointer land there and never reach a reader.
    pub fn mapping(&self) -> Arc<dyn std::any::Any + Send + Sync> {
        match &self.mem {
            LoanMem::Channel(seg, _) => seg.clone(),
            LoanMem::Own(map, _) => map.clone(),
        }
    }
    fn retire(&self) {
        if let LoanMem::Own(map, _) = &self.mem {
            map.retire();
        }
    }
    /// The loan's dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// The loan's shape.
    pub fn shape(&self) -> &[usize] {
        self.shape.as_slice()
    }
    /// Bytes in the loan.
    pub fn len(&self) -> usize {
        self.len
    }
    /// `true` for a zero-sized frame.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

const _: () = assert!(STATE_OPEN == 0);
