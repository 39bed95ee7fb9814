//! A mapped, validated channel (`Channel`): the header checked once, the current ring, and the slot
//! operations readers and the writer share (one home for the slot description on both sides).

use crate::error::{Errno, OpenError};
use crate::frame::{frame_len, DType, Dims, Schema};
use crate::layout::{
    off, Geometry, HeaderFixed, RingFixed, SlotDesc, DESC_FIRST_LINE, FIRST_LINE_DIMS,
    HEADER_REGION, LAYOUT_VERSION, MAGIC, MAX_DIMS, PIN_ENTRIES, RING_HEADER_REGION, SCHEMA_OFFSET,
    STATE_CLOSED, STATE_OPEN, STATE_SUPERSEDED,
};
use crate::name::Name;
use crate::pins::{Pins, PinsFail};
use crate::segment::{Identity, Segment};
use crate::socket::Link;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// Slots [`Channel::prefetch_slots`] covers (rings that small are the common case).
const PREFETCH_SLOTS: u32 = 8;

/// A frame's validated description, decoded from its [`SlotDesc`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FrameDesc {
    pub timestamp_ns: u64,
    pub dtype: DType,
    pub shape: Dims,
    pub payload_len: usize,
    pub meta_len: usize,
}

/// An opened channel: its header (validated once), its current ring, its pin table.
pub(crate) struct Channel {
    pub name: Name,
    /// A mapping that covers the header and the current ring.
    pub seg: Arc<Segment>,
    pub hf: HeaderFixed,
    pub geom: Geometry,
    /// Rings before the current one.
    pub generation: u32,
    /// Shared with every view of the channel (no copy per frame).
    pub schema: Option<Arc<Schema>>,
    pub identity: Identity,
    pub pins: Arc<Pins>,
    /// The connection to the writer of a socket-served channel (its hang-up is the writer's
    /// death); `None` for a channel named in /dev/shm.
    pub link: Option<Arc<Link>>,
}

/// Where a channel's pin table comes from.
pub(crate) enum PinSource {
    /// The object named after the channel and its lineage in /dev/shm.
    ByName,
    /// A descriptor received from a socket-serving writer.
    Fd(rustix::fd::OwnedFd),
    /// The table the writer just created.
    Have(Arc<Pins>),
}

/// What is wrong with a channel header, found by [`validate`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    NotOurs,
    Initialising,
    Version(u32),
    Corrupt(String),
}

/// Checks a copy of the fixed header fields (a pure function, for fuzzing and miri). `version` is
/// the atomically loaded version word.
pub(crate) fn validate(hf: &HeaderFixed, version: u32) -> Result<(), HeaderProblem> {
    if hf.magic != MAGIC {
        return Err(HeaderProblem::NotOurs);
    }
    match version {
        0 => return Err(HeaderProblem::Initialising),
        LAYOUT_VERSION => {}
        v => return Err(HeaderProblem::Version(v)),
    }
    let bad = |what: String| Err(HeaderProblem::Corrupt(what));
    if hf.header_size as u64 != HEADER_REGION {
        return bad(format!("header size {}", hf.header_size));
    }
    if hf.pin_entries != PIN_ENTRIES {
        return bad(format!("{} pin entries", hf.pin_entries));
    }
    if hf.meta_size > crate::layout::MAX_META {
        return bad(format!("{} bytes of metadata", hf.meta_size));
    }
    if hf.schema_len != 0
        && (hf.schema_offset != SCHEMA_OFFSET
            || hf.schema_len as u64 > HEADER_REGION - SCHEMA_OFFSET as u64)
    {
        return bad("schema out of bounds".into());
    }
    if hf.schema_len == 0 && hf.meta_size != 0 {
        return bad("metadata without a schema".into());
    }
    Ok(())
}

fn corrupt(name: &Name, what: impl Into<String>) -> OpenError {
    OpenError::Corrupt {
        name: name.to_string(),
        what: what.into(),
    }
}

/// The error for an object that could not be opened or mapped.
pub(crate) fn open_err(name: &Name, object: &str, e: Errno) -> OpenError {
    let path = format!("{}/{object}", crate::name::SHM_DIR);
    match e {
        Errno::NOENT => OpenError::NotFound {
            name: name.to_string(),
        },
        Errno::ACCESS | Errno::PERM => {
            let md = std::fs::metadata(&path).ok();
            use std::os::unix::fs::MetadataExt;
            OpenError::PermissionDenied {
                name: name.to_string(),
                mode: md.as_ref().map_or(0, |m| m.mode() & 0o7777),
                uid: md.as_ref().map_or(u32::MAX, |m| m.uid()),
                path,
            }
        }
        Errno::LOOP => OpenError::NotAFile {
            path,
            kind: "a symbolic link",
        },
        Errno::NOTSUP => OpenError::NotAFile {
            kind: file_kind(&path),
            path,
        },
        e => OpenError::Io {
            name: name.to_string(),
            op: "shm_open/mmap",
            source: e,
        },
    }
}

/// What a non-regular file is, in words.
pub(crate) fn file_kind(path: &str) -> &'static str {
    std::fs::symlink_metadata(path)
        .ok()
        .and_then(|m| non_regular(m.file_type()))
        .unwrap_or("not a regular file")
}

/// The kind of a /dev/shm entry that is not a regular file (so no shared-memory object), as
/// `lstat` tells without opening it; `None` for a regular file. Such entries are never opened:
/// opening a FIFO blocks until a writer appears, and a symbolic link leads elsewhere.
pub fn non_regular(ft: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    Some(if ft.is_file() {
        return None;
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_socket() {
        "a Unix socket"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    })
}

impl Channel {
    /// Opens and validates channel `name` (read-only unless `writable`): maps the header first,
    /// checks it, then maps what the current ring needs, never more.
    pub fn open(name: &Name, writable: bool) -> Result<Channel, OpenError> {
        let object = name.object_name();
        let seg = Segment::open(&object, writable, HEADER_REGION)
            .map_err(|e| open_err(name, &object, e))?;
        Channel::from_segment(name.clone(), seg, PinSource::ByName, None)
    }

    /// Connects to the writer serving a channel on the socket at `path` and validates what it
    /// hands over: the channel's memory (which must be sealed against shrinking) and its pin
    /// table.
    pub fn connect(path: &std::path::Path) -> Result<Channel, OpenError> {
        let a = crate::socket::connect(path)?;
        let name = a.name;
        let io = |op, e| OpenError::Io {
            name: name.to_string(),
            op,
            source: e,
        };
        let seg = Segment::from_fd(a.channel, false, HEADER_REGION)
            .map_err(|e| io("mmap of the received channel", e))?;
        let sealed = seg
            .seals()
            .is_ok_and(|s| s.contains(rustix::fs::SealFlags::SHRINK));
        if !sealed {
            return Err(corrupt(
                &name,
                "the writer's memory is not sealed against shrinking",
            ));
        }
        Channel::from_segment(name, seg, PinSource::Fd(a.pins), Some(Arc::new(a.link)))
    }

    /// Validates an opened segment whose mapping covers at least its header, and opens its pin
    /// table.
    pub fn from_segment(
        name: Name,
        seg: Segment,
        pins: PinSource,
        link: Option<Arc<Link>>,
    ) -> Result<Channel, OpenError> {
        let size = seg
            .size()
            .map_err(|e| open_err(&name, &name.object_name(), e))?;
        let len = seg.len() as u64;
        let path = name.file_path().display().to_string();
        if len >= 8 && seg.read::<[u8; 8]>(0) != MAGIC {
            return Err(OpenError::NotOurs { path });
        }
        if len < HEADER_REGION {
            return Err(OpenError::Truncated {
                name: name.to_string(),
                size,
                needed: HEADER_REGION,
            });
        }
        // SYNC POINT: relaxed load and acquire fence (read-only mapping): pairs with the writer's
        // release store of `version`, the last store of initialisation; the fixed fields copied
        // after it are complete.
        let version = seg.atomic_u32(off::VERSION).load(Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Acquire);
        let hf: HeaderFixed = seg.read(0);
        validate(&hf, version).map_err(|p| match p {
            HeaderProblem::NotOurs => OpenError::NotOurs { path },
            HeaderProblem::Initialising => OpenError::Initialising {
                name: name.to_string(),
            },
            HeaderProblem::Version(found) => OpenError::VersionMismatch {
                name: name.to_string(),
                found,
                expected: LAYOUT_VERSION,
            },
            HeaderProblem::Corrupt(what) => corrupt(&name, what),
        })?;
        let schema = if hf.schema_len == 0 {
            None
        } else {
            let mut b = vec![0u8; hf.schema_len as usize];
            seg.copy_out(SCHEMA_OFFSET as usize, &mut b);
            let s =
                Schema::decode(&b).ok_or_else(|| corrupt(&name, "malformed metadata schema"))?;
            if s.size != hf.meta_size {
                return Err(corrupt(&name, "schema size differs from the metadata size"));
            }
            Some(Arc::new(s))
        };
        let identity = seg.identity().map_err(|e| OpenError::Io {
            name: name.to_string(),
            op: "fstat",
            source: e,
        })?;
        let state = seg.atomic_u32(off::STATE).load(Ordering::Relaxed);
        if state > STATE_SUPERSEDED {
            return Err(corrupt(&name, format!("state {state}")));
        }
        let ring_at = seg.atomic_u64(off::RING).load(Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Acquire);
        let (seg, geom, generation) = map_ring(&name, &seg, &hf, ring_at)?;
        let pins = match pins {
            PinSource::Have(p) => Ok(p),
            PinSource::ByName => Pins::open(&name, hf.lineage).map(Arc::new),
            PinSource::Fd(fd) => Pins::from_fd(fd, hf.lineage).map(Arc::new),
        };
        let pins = match pins {
            Ok(p) => p,
            // The writer removes the table when it closes its channel: the channel is going.
            Err(PinsFail::Errno(Errno::NOENT)) => {
                return Err(OpenError::NotFound {
                    name: name.to_string(),
                })
            }
            Err(PinsFail::Errno(e)) => {
                let object = name.pins_object_name(hf.lineage);
                return Err(open_err(&name, &object, e));
            }
            Err(PinsFail::Invalid(what)) => return Err(corrupt(&name, what)),
        };
        Ok(Channel {
            name,
            seg,
            hf,
            geom,
            generation,
            schema,
            identity,
            pins,
            link,
        })
    }

    /// The channel after its writer appended a new ring, if it did: a new mapping of the same
    /// object (no name is looked up, so this works after the name is gone).
    #[inline]
    pub fn next_ring(&self) -> Result<Option<Channel>, OpenError> {
        let at = self.ring_next().load(Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Acquire);
        if at == 0 {
            return Ok(None);
        }
        self.ring_at(at).map(Some)
    }

    /// The ring the writer appended at offset `at` (a rare event: kept out of every frame's path).
    #[cold]
    fn ring_at(&self, at: u64) -> Result<Channel, OpenError> {
        let (seg, geom, generation) = map_ring(&self.name, &self.seg, &self.hf, at)?;
        if generation <= self.generation {
            return Err(corrupt(&self.name, "a ring links back to an older one"));
        }
        Ok(Channel {
            name: self.name.clone(),
            seg,
            hf: self.hf,
            geom,
            generation,
            schema: self.schema.clone(),
            identity: self.identity,
            pins: self.pins.clone(),
            link: self.link.clone(),
        })
    }

    pub fn head(&self) -> &AtomicU64 {
        self.seg.atomic_u64(off::HEAD)
    }
    /// `head`, read as a reader may (relaxed load, acquire fence).
    pub fn head_acquire(&self) -> u64 {
        let h = self.head().load(Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Acquire);
        h
    }
    /// `true` while the writer holds the channel: its lock on the object, and for a socket-served
    /// channel also its end of the connection (a hang-up is the writer's death).
    pub fn writer_alive(&self) -> bool {
        self.seg.writer_alive().unwrap_or(true) && self.link.as_ref().is_none_or(|l| !l.hung_up())
    }
    pub fn wake(&self) -> &AtomicU32 {
        self.seg.atomic_u32(off::WAKE)
    }
    pub fn state_word(&self) -> &AtomicU32 {
        self.seg.atomic_u32(off::STATE)
    }
    pub fn state(&self) -> u32 {
        let s = self.state_word().load(Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Acquire);
        s
    }
    pub fn is_open(&self) -> bool {
        self.state() == STATE_OPEN
    }
    pub fn is_closed(&self) -> bool {
        self.state() == STATE_CLOSED
    }
    pub fn is_superseded(&self) -> bool {
        self.state() == STATE_SUPERSEDED
    }
    /// The current ring's link to its successor.
    pub fn ring_next(&self) -> &AtomicU64 {
        self.seg
            .atomic_u64(self.geom.ring_offset as usize + off::R_NEXT)
    }
    /// The pin-word parity of the current ring.
    pub fn parity(&self) -> u32 {
        self.generation & 1
    }
    /// `true` once a fault showed that the object or its pin table was truncated. While no
    /// mapping of this process has faulted, one static flag answers, without reaching the two
    /// mappings' guards (a publish calls this after a large copy, when they are cold).
    #[inline]
    pub fn faulted(&self) -> bool {
        crate::guard::any_faulted() && (self.seg.faulted() || self.pins.faulted())
    }

    pub fn slot_offset(&self, slot: u32) -> usize {
        self.geom.slot_offset(slot) as usize
    }
    pub fn stamp(&self, slot: u32) -> &AtomicU64 {
        self.seg.atomic_u64(self.slot_offset(slot) + off::S_STAMP)
    }
    /// Every slot's stamp (relaxed loads: used to choose a slot, which is then pinned and
    /// re-checked).
    pub fn stamps(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.geom.slot_count).map(|s| self.stamp(s).load(Ordering::Relaxed))
    }
    /// Starts fetching the first payload line of every slot (up to [`PREFETCH_SLOTS`]), ahead of
    /// a look for a new frame: the writer has just written one of them, whose bytes then cross
    /// from its core while the reader reads the stamps and pins the slot, not after.
    pub fn prefetch_slots(&self) {
        for slot in 0..self.geom.slot_count.min(PREFETCH_SLOTS) {
            self.seg.prefetch(self.payload_offset(slot), false);
        }
    }
    pub fn meta_offset(&self, slot: u32) -> usize {
        self.slot_offset(slot) + self.geom.meta_offset as usize
    }
    pub fn payload_offset(&self, slot: u32) -> usize {
        self.slot_offset(slot) + self.geom.payload_offset as usize
    }

    /// Writes a frame's description into its slot (writer, slot claimed).
    pub fn write_desc(
        &self,
        slot: u32,
        dtype: DType,
        shape: &[usize],
        len: usize,
        meta_len: usize,
    ) {
        let mut d = SlotDesc {
            payload_len: len as u64,
            dtype: dtype.code(),
            ndim: shape.len() as u32,
            meta_len: meta_len as u32,
            ..bytemuck::Zeroable::zeroed()
        };
        for (s, &v) in d.shape.iter_mut().zip(shape) {
            *s = v as u64;
        }
        // A description the slot already holds is not written again: readers keep their copy of
        // its cache lines instead of fetching them from the writer's core with every frame.
        let at = self.slot_offset(slot) + off::S_PAYLOAD_LEN;
        if self.seg.read::<SlotDesc>(at) != d {
            self.seg.write(at, &d);
        }
    }

    /// A slot's description as stored. The slot header's first cache line, which the reader has
    /// just fetched for the stamp, holds the description up to its fourth dimension; the second
    /// line is read only for more dimensions or a channel with metadata, so that a frame of a
    /// channel without metadata costs the reader no second line of the header.
    fn slot_desc(&self, slot: u32) -> SlotDesc {
        let at = self.slot_offset(slot) + off::S_PAYLOAD_LEN;
        let mut d: SlotDesc = bytemuck::Zeroable::zeroed();
        let first = &mut bytemuck::bytes_of_mut(&mut d)[..DESC_FIRST_LINE];
        self.seg.copy_out(at, first);
        if d.ndim as usize > FIRST_LINE_DIMS || self.geom.meta_size != 0 {
            let rest = &mut bytemuck::bytes_of_mut(&mut d)[DESC_FIRST_LINE..];
            self.seg.copy_out(at + DESC_FIRST_LINE, rest);
        }
        d
    }

    /// Reads and checks a slot's description. `Err` says what is impossible about it.
    pub fn read_desc(&self, slot: u32) -> Result<FrameDesc, String> {
        let d = self.slot_desc(slot);
        let dtype =
            DType::from_code(d.dtype).ok_or_else(|| format!("unknown dtype code {}", d.dtype))?;
        let ndim = d.ndim as usize;
        if ndim > MAX_DIMS {
            return Err(format!("{ndim} dimensions"));
        }
        let shape = Dims::new(
            d.shape[..ndim]
                .iter()
                .map(|&v| v.try_into().unwrap_or(usize::MAX)),
        );
        let len = frame_len(dtype, shape.as_slice())?;
        if d.payload_len != len as u64 || d.payload_len > self.geom.slot_capacity {
            return Err(format!(
                "payload of {} bytes for shape {:?} of {dtype} in a slot of {}",
                d.payload_len,
                shape.as_slice(),
                self.geom.slot_capacity
            ));
        }
        if d.meta_len != 0 && d.meta_len != self.geom.meta_size {
            return Err(format!(
                "{} bytes of metadata, the channel declares {}",
                d.meta_len, self.geom.meta_size
            ));
        }
        let ts = self
            .seg
            .atomic_u64(self.slot_offset(slot) + off::S_TIMESTAMP);
        Ok(FrameDesc {
            timestamp_ns: ts.load(Ordering::Relaxed),
            dtype,
            shape,
            payload_len: len,
            meta_len: d.meta_len as usize,
        })
    }
}

/// Maps `seg`'s object far enough for the ring at `at` and validates the ring's header.
fn map_ring(
    name: &Name,
    seg: &Segment,
    hf: &HeaderFixed,
    at: u64,
) -> Result<(Arc<Segment>, Geometry, u32), OpenError> {
    let bad_ring = || corrupt(name, format!("no valid ring at offset {at}"));
    if at < HEADER_REGION || at % crate::layout::SLOT_ALIGN != 0 || at > isize::MAX as u64 / 2 {
        return Err(bad_ring());
    }
    let remap = |len: u64| {
        seg.remap(len).map_err(|e| match e {
            Errno::RANGE => OpenError::Truncated {
                name: name.to_string(),
                size: seg.size().unwrap_or(0),
                needed: len,
            },
            e => open_err(name, &name.object_name(), e),
        })
    };
    let head = remap(at + RING_HEADER_REGION)?;
    let rf: RingFixed = head.read(at as usize);
    let geom = Geometry::of_ring(&rf, hf.meta_size, at).ok_or_else(bad_ring)?;
    Ok((Arc::new(remap(geom.ring_end())?), geom, rf.generation))
}
