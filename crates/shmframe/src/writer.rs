//! The writer: creates a channel, publishes frames without ever waiting for readers.

use crate::channel::Channel;
use crate::error::{CreateError, Errno, WriteError};
use crate::frame::{frame_len, DType, Element, Metadata, Schema};
use crate::layout::{off, Geometry, HeaderStatic, LAYOUT_VERSION, MAGIC, MAX_SLOTS, SCHEMA_OFFSET};
use crate::layout::{HEADER_REGION, STATE_CLOSED, STATE_OPEN, STATE_SUPERSEDED};
use crate::name::Name;
use crate::ring;
use crate::segment::{self, CreateFail, Segment};
use crate::wake::{self, monotonic_ns, realtime_ns};
use std::sync::atomic::Ordering;
use std::sync::Arc;

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
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            slots: DEFAULT_SLOTS,
            mode: 0o600,
            capacity: 0,
            schema: None,
            keep: false,
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
    /// The configured slot count.
    pub fn slot_count(&self) -> u32 {
        self.slots
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
    lineage: u64,
    generation: u32,
    fps_ewma: f64,
    last_ts: u64,
    closed: bool,
    loaned: Option<(u32, std::sync::Weak<()>)>,
}

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

struct Spec<'a> {
    geom: Geometry,
    schema: Option<&'a Schema>,
    mode: u32,
    lineage: u64,
    generation: u32,
    head: u64,
}

/// Creates and fully initialises a segment under a temporary name, with the version stored last.
fn build_segment(name: &Name, spec: &Spec<'_>) -> Result<(Segment, String), CreateError> {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let pid = std::process::id();
    loop {
        let tmp = format!(
            "{}.tmp-{pid}-{}",
            name.object_name(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let seg = match Segment::create_exclusive(&tmp, spec.geom.segment_size, spec.mode) {
            Ok(s) => s,
            Err(CreateFail::Errno(_, Errno::EXIST)) => continue,
            Err(CreateFail::Errno(op, e)) => return Err(create_err(name, op, e)),
            Err(CreateFail::NoSpace { needed, available }) => {
                return Err(CreateError::NoSpace {
                    name: name.to_string(),
                    needed,
                    available,
                    dir: crate::name::SHM_DIR.into(),
                })
            }
        };
        let schema = spec.schema.map(Schema::encode).unwrap_or_default();
        let hs = HeaderStatic {
            magic: MAGIC,
            version: 0,
            header_size: HEADER_REGION as u32,
            segment_size: spec.geom.segment_size,
            slot_count: spec.geom.slot_count,
            meta_size: spec.geom.meta_size,
            slot_stride: spec.geom.slot_stride,
            slot_capacity: spec.geom.slot_capacity,
            writer_pid: pid,
            state: STATE_OPEN,
            created_realtime_ns: realtime_ns(),
            schema_offset: SCHEMA_OFFSET,
            schema_len: schema.len() as u32,
            lineage: spec.lineage,
            generation: spec.generation,
            payload_offset: spec.geom.payload_offset as u32,
            meta_offset: spec.geom.meta_offset as u32,
            _reserved0: [0; 36],
        };
        seg.copy_in(0, bytemuck::bytes_of(&hs));
        seg.copy_in(SCHEMA_OFFSET as usize, &schema);
        seg.atomic_u64(off::HEAD)
            .store(spec.head, Ordering::Relaxed);
        // SYNC POINT: the version is stored last, with release: an opener that acquires a
        // non-zero version sees every byte written above (iceoryx2's init handshake).
        seg.atomic_u32(off::VERSION)
            .store(LAYOUT_VERSION, Ordering::Release);
        return Ok((seg, tmp));
    }
}

fn mark_superseded(seg: &Segment) {
    seg.atomic_u32(off::STATE)
        .store(STATE_SUPERSEDED, Ordering::Release);
    seg.atomic_u32(off::WAKE).fetch_add(1, Ordering::SeqCst);
    wake::wake_all(seg.atomic_u32(off::WAKE));
}

fn new_lineage() -> u64 {
    let t = realtime_ns() ^ monotonic_ns().rotate_left(17);
    t ^ ((std::process::id() as u64) << 40) | 1
}

impl Writer {
    /// Creates channel `name`. Fails with [`CreateError::Busy`] if a live writer holds the name;
    /// takes over a stale channel whose writer died (its readers follow to the new one).
    pub fn create(name: &str, opts: WriterOptions) -> Result<Writer, CreateError> {
        let name = Name::new(name)?;
        let bad = |what: String| CreateError::BadOptions {
            name: name.to_string(),
            what,
        };
        if opts.slots == 0 || opts.slots > MAX_SLOTS {
            return Err(bad(format!("{} slots; use 1 to {MAX_SLOTS}", opts.slots)));
        }
        if opts.mode & !0o777 != 0 || opts.mode & 0o600 != 0o600 {
            return Err(bad(format!(
                "mode {:o}: give permission bits that include owner read/write (e.g. 0o600, 0o640)",
                opts.mode
            )));
        }
        if let Some(s) = &opts.schema {
            s.validate().map_err(|e| bad(e.to_string()))?;
        }
        let meta_size = opts.schema.as_ref().map_or(0, |s| s.size);
        let geom = Geometry::new(opts.slots, meta_size, opts.capacity as u64).ok_or_else(|| {
            bad(format!(
                "a capacity of {} bytes per slot is too large",
                opts.capacity
            ))
        })?;
        let lineage = new_lineage();
        let spec = Spec {
            geom,
            schema: opts.schema.as_ref(),
            mode: opts.mode,
            lineage,
            generation: 0,
            head: 0,
        };
        let (seg, tmp) = build_segment(&name, &spec)?;
        let object = name.object_name();
        let discard = |e: CreateError| {
            let _ = segment::unlink(&tmp);
            e
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            match segment::rename(&tmp, &object, false) {
                Ok(()) => break,
                Err(Errno::EXIST) => {}
                Err(e) => return Err(discard(create_err(&name, "rename", e))),
            }
            // The name is taken: is its writer alive?
            let old = match Segment::open(&object, true) {
                Ok(s) => s,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(discard(create_err(&name, "shm_open", e))),
            };
            if old
                .try_lock_writer()
                .map_err(|e| discard(create_err(&name, "flock", e)))?
            {
                // Stale: its writer died. Tell its readers, and put ours in its place while we hold
                // its lock (so no other new writer can take it over at the same time).
                if old.len() as u64 >= HEADER_REGION && old.header_static().magic == MAGIC {
                    mark_superseded(&old);
                }
                segment::rename(&tmp, &object, true)
                    .map_err(|e| discard(create_err(&name, "rename", e)))?;
                break;
            }
            // Locked: either a live writer, or a reader probing liveness this very moment.
            if attempts >= 5 {
                let pid = if old.len() as u64 >= HEADER_REGION {
                    old.header_static().writer_pid
                } else {
                    0
                };
                return Err(discard(CreateError::Busy {
                    name: name.to_string(),
                    pid,
                }));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let ch = Channel::from_segment(name.clone(), seg).map_err(|e| CreateError::BadOptions {
            name: name.to_string(),
            what: format!("internal: fresh segment failed validation: {e}"),
        })?;
        Ok(Writer {
            ch,
            opts,
            next_index: 0,
            last_slot: geom.slot_count - 1,
            lineage,
            generation: 0,
            fps_ewma: 0.0,
            last_ts: 0,
            closed: false,
            loaned: None,
        })
    }

    /// The channel's name.
    pub fn name(&self) -> &Name {
        &self.ch.name
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
        self.ch.schema.as_ref()
    }

    /// Keep (or not) the channel in /dev/shm after close.
    pub fn set_keep(&mut self, keep: bool) {
        self.opts.keep = keep;
    }

    /// Replaces the segment by a larger one; readers follow (they see `SUPERSEDED` and re-open).
    fn grow(&mut self, needed: usize) -> Result<(), WriteError> {
        let old_cap = self.ch.geom.slot_capacity as usize;
        let cap = if old_cap == 0 {
            needed
        } else {
            needed.max(old_cap.saturating_add(old_cap / 2))
        };
        let name = self.ch.name.clone();
        let grow_err = |source: CreateError| WriteError::Grow {
            name: name.to_string(),
            needed,
            source,
        };
        let geom = Geometry::new(self.ch.geom.slot_count, self.ch.geom.meta_size, cap as u64)
            .ok_or_else(|| {
                grow_err(CreateError::BadOptions {
                    name: name.to_string(),
                    what: format!("{needed}-byte frames are too large"),
                })
            })?;
        let spec = Spec {
            geom,
            schema: self.ch.schema.as_ref(),
            mode: self.opts.mode,
            lineage: self.lineage,
            generation: self.generation + 1,
            head: self.next_index,
        };
        let (seg, tmp) = build_segment(&name, &spec).map_err(grow_err)?;
        // Put the grown segment under the name only while the name still stands for our current
        // segment. If the channel was removed (`channels::remove`) or the name reused by a new
        // writer since, replacing it would clobber that writer's channel; the grown segment then
        // stays unnamed, as the old one was: attached readers are told to re-open the name (they
        // find the new owner, or nothing). A removal racing with this check can still lose; it
        // needs an administrator removing a live channel at the very moment it grows.
        let object = name.object_name();
        let still_ours = Segment::open(&object, false)
            .ok()
            .and_then(|s| s.identity().ok())
            == Some(self.ch.identity);
        if !still_ours {
            let _ = segment::unlink(&tmp);
        } else if let Err(e) = segment::rename(&tmp, &object, true) {
            let _ = segment::unlink(&tmp);
            return Err(grow_err(create_err(&name, "rename", e)));
        }
        let ch = Channel::from_segment(name.clone(), seg).map_err(|e| {
            grow_err(CreateError::BadOptions {
                name: name.to_string(),
                what: format!("internal: grown segment failed validation: {e}"),
            })
        })?;
        mark_superseded(&self.ch.seg);
        self.ch = ch;
        self.generation += 1;
        self.last_slot = geom.slot_count - 1;
        Ok(())
    }

    /// Claims a slot for frame `self.next_index`: the oldest one no reader pins.
    fn claim(&mut self, needed: usize) -> Result<u32, WriteError> {
        if let Some((slot, token)) = &self.loaned {
            if token.strong_count() > 0 {
                return Err(WriteError::BadFrame {
                    name: self.ch.name.to_string(),
                    what: "a loan is still open: publish or discard it before writing again".into(),
                });
            }
            // A raw loan was dropped without being finished: discard it.
            let slot = *slot;
            self.abandon(slot);
        }
        if needed > self.ch.geom.slot_capacity as usize {
            self.grow(needed)?;
        }
        let n = self.ch.geom.slot_count;
        for slot in ring::write_order(self.last_slot, n) {
            let at = self.ch.geom.slot_offset(slot);
            match self.ch.seg.try_lock_slot_write(at) {
                Ok(true) => {
                    ring::begin_write(self.ch.stamp(slot), self.next_index);
                    return Ok(slot);
                }
                Ok(false) => continue,
                Err(e) => {
                    return Err(WriteError::Io {
                        name: self.ch.name.to_string(),
                        op: "fcntl(F_OFD_SETLK)",
                        source: e,
                    })
                }
            }
        }
        Err(WriteError::AllSlotsPinned {
            name: self.ch.name.to_string(),
            slots: n,
        })
    }

    fn check_meta(&self, meta: &[u8]) -> Result<(), WriteError> {
        let expected = self.ch.geom.meta_size as usize;
        if meta.is_empty() || meta.len() == expected {
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

    fn describe(&self, slot: u32, dtype: DType, shape: &[usize], len: usize, meta: &[u8]) {
        let base = self.ch.slot_offset(slot);
        let seg = &self.ch.seg;
        seg.atomic_u32(base + off::S_DTYPE)
            .store(dtype.code(), Ordering::Relaxed);
        seg.atomic_u32(base + off::S_NDIM)
            .store(shape.len() as u32, Ordering::Relaxed);
        for d in 0..crate::layout::MAX_DIMS {
            let v = shape.get(d).copied().unwrap_or(0) as u64;
            seg.atomic_u64(base + off::S_SHAPE + 8 * d)
                .store(v, Ordering::Relaxed);
        }
        seg.atomic_u64(base + off::S_PAYLOAD_LEN)
            .store(len as u64, Ordering::Relaxed);
        seg.atomic_u32(base + off::S_META_LEN)
            .store(meta.len() as u32, Ordering::Relaxed);
        if !meta.is_empty() {
            seg.copy_in(self.ch.meta_offset(slot), meta);
        }
    }

    /// Completes the frame in `slot`: stamps it, advances `head`, wakes readers.
    fn commit(&mut self, slot: u32) -> u64 {
        let index = self.next_index;
        let ts = monotonic_ns();
        let base = self.ch.slot_offset(slot);
        self.ch
            .seg
            .atomic_u64(base + off::S_TIMESTAMP)
            .store(ts, Ordering::Relaxed);
        ring::end_write(self.ch.stamp(slot), index);
        self.ch
            .seg
            .unlock_slot_write(self.ch.geom.slot_offset(slot));
        // SYNC POINT: release, after the slot's stamp is even: a reader that sees head > index
        // finds frame `index` complete (or already overwritten by a newer one).
        self.ch.head().store(index + 1, Ordering::Release);
        if self.last_ts != 0 && ts > self.last_ts {
            let inst = 1e9 / (ts - self.last_ts) as f64;
            self.fps_ewma = if self.fps_ewma == 0.0 {
                inst
            } else {
                0.9 * self.fps_ewma + 0.1 * inst
            };
            let seg = &self.ch.seg;
            seg.atomic_u32(off::FPS_MILLI).store(
                (self.fps_ewma * 1000.0).min(u32::MAX as f64) as u32,
                Ordering::Relaxed,
            );
        }
        self.last_ts = ts;
        self.ch
            .seg
            .atomic_u64(off::LAST_TIMESTAMP)
            .store(ts, Ordering::Relaxed);
        // SYNC POINT: SeqCst so the bump is ordered after the head store for readers that load
        // `wake` and then re-check `head` before sleeping on it (no lost wake-up).
        self.ch.wake().fetch_add(1, Ordering::SeqCst);
        wake::wake_all(self.ch.wake());
        self.last_slot = slot;
        self.next_index += 1;
        index
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
        self.ch.seg.copy_in(self.ch.payload_offset(slot), data);
        self.describe(slot, dtype, shape, len, meta);
        Ok(self.commit(slot))
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
            if *s != M::schema() {
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
        let raw = self.loan_raw(dtype, shape)?;
        Ok(Loan {
            writer: self,
            raw: Some(raw),
            meta: Vec::new(),
        })
    }

    /// Closes the channel: readers get [`crate::ReadError::Closed`]; the object is removed unless
    /// the writer was created with `keep`.
    pub fn close(mut self) -> Result<(), WriteError> {
        self.close_inner()
    }

    fn close_inner(&mut self) -> Result<(), WriteError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        self.ch
            .seg
            .atomic_u32(off::STATE)
            .store(STATE_CLOSED, Ordering::Release);
        self.ch.wake().fetch_add(1, Ordering::SeqCst);
        wake::wake_all(self.ch.wake());
        if !self.opts.keep {
            // Remove the name only if it is still ours (not a successor's).
            if let Ok(cur) = Segment::open(&self.ch.name.object_name(), false) {
                if cur.identity().ok() == Some(self.ch.identity) {
                    match segment::unlink(&self.ch.name.object_name()) {
                        Ok(()) | Err(Errno::NOENT) => {}
                        Err(e) => {
                            return Err(WriteError::Io {
                                name: self.ch.name.to_string(),
                                op: "shm_unlink",
                                source: e,
                            })
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Borrows a slot like [`Writer::loan`], as an owned value that does not borrow the writer,
    /// for bindings that must hand the buffer to a garbage-collected runtime. While it is open,
    /// other writes fail; finish it with [`Writer::publish_raw`] or [`Writer::discard_raw`]
    /// (dropping it unfinished discards the frame at the next write).
    pub fn loan_raw(&mut self, dtype: DType, shape: &[usize]) -> Result<RawLoan, WriteError> {
        let len = self.frame_len(dtype, shape)?;
        let slot = self.claim(len)?;
        let token = Arc::new(());
        self.loaned = Some((slot, Arc::downgrade(&token)));
        Ok(RawLoan {
            _token: token,
            seg: self.ch.seg.clone(),
            offset: self.ch.payload_offset(slot),
            slot,
            dtype,
            shape: shape.to_vec(),
            len,
        })
    }

    /// Publishes a raw loan with optional metadata; returns the frame's index.
    pub fn publish_raw(&mut self, loan: RawLoan, meta: &[u8]) -> Result<u64, WriteError> {
        if self.loaned.as_ref().map(|l| l.0) != Some(loan.slot)
            || !Arc::ptr_eq(&loan.seg, &self.ch.seg)
        {
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
        self.describe(loan.slot, loan.dtype, &loan.shape, loan.len, meta);
        Ok(self.commit(loan.slot))
    }

    /// Discards a raw loan: the slot is left empty.
    pub fn discard_raw(&mut self, loan: RawLoan) {
        if self.loaned.as_ref().map(|l| l.0) == Some(loan.slot)
            && Arc::ptr_eq(&loan.seg, &self.ch.seg)
        {
            self.abandon(loan.slot);
        }
    }

    fn abandon(&mut self, slot: u32) {
        self.loaned = None;
        ring::abandon_write(self.ch.stamp(slot));
        self.ch
            .seg
            .unlock_slot_write(self.ch.geom.slot_offset(slot));
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

/// An owned slot loan; see [`Writer::loan_raw`]. Keeps the mapping alive while it exists.
pub struct RawLoan {
    _token: Arc<()>,
    seg: Arc<Segment>,
    offset: usize,
    slot: u32,
    dtype: DType,
    shape: Vec<usize>,
    len: usize,
}

impl RawLoan {
    /// The frame's bytes in shared memory.
    #[allow(unsafe_code)]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the slot is claimed for this loan (odd stamp, write lock held) until it is
        // published or discarded, which consumes the loan; the mapping lives as long as `seg`;
        // the slice borrows `self` mutably so it is the only view of the bytes in this process.
        unsafe { self.seg.slice_mut(self.offset, self.len) }
    }
    /// A handle that keeps the loan's mapping mapped after the loan is published or discarded
    /// (and after the writer grows its channel or closes), for bindings whose runtime may hold on
    /// to the buffer longer than the loan: a stale buffer then points at memory of the channel,
    /// never at an unmapped page.
    pub fn mapping(&self) -> Arc<dyn std::any::Any + Send + Sync> {
        self.seg.clone()
    }
    /// The loan's dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// The loan's shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
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
