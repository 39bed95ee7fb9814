//! The on-memory layout of a channel, version [`LAYOUT_VERSION`]. `docs/protocol.md` describes the
//! same bytes for implementers in other languages; the `const` asserts below keep the two in step.
//!
//! Two objects make a channel:
//!
//! ```text
//! shmframe.NAME (readers map it read-only)
//! 0      Header (256 bytes)              fixed fields written once before `version` is stored,
//!                                        then the live fields (head, wake, state, ring, …)
//! 256    Schema (48 + 48*fields bytes)   metadata type: name, size, fields
//! 4096   ring 0: RingHeader page, then slot 0 … slot K-1   [SlotHeader 128][meta][payload]
//! …      ring 1 (appended when the channel grew), ring 2, …  only `Header::ring` is written to
//!
//! shmframe-pins.NAME.LINEAGE (readers map it read-write)
//! 0      PinsHeader (128 bytes)          magic, version, entry count, lineage; `used`, `sleepers`
//! 128    PinEntry × 64 (64 bytes each)   one per attached reader: the slots it pins, sleeping?
//! ```
//! All integers are native-endian (every process on one host shares it). Fields that change after
//! initialisation are atomics; everything else is written once, before the release store of
//! `version`.

use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU32, AtomicU64};

#[cfg(any(not(target_has_atomic = "64"), target_arch = "x86"))]
compile_error!(
    "shmframe needs 64-bit atomic loads that work on read-only memory (not available on 32-bit x86)"
);

/// First eight bytes of every channel.
pub const MAGIC: [u8; 8] = *b"SHMFRAME";
/// First eight bytes of every ring.
pub const RING_MAGIC: [u8; 8] = *b"SHMFRING";
/// First eight bytes of every pin table.
pub const PINS_MAGIC: [u8; 8] = *b"SHMFPINS";
/// Layout version this library reads and writes.
pub const LAYOUT_VERSION: u32 = 3;
/// Bytes before the first ring: header plus schema, one page.
pub const HEADER_REGION: u64 = 4096;
/// Bytes of a ring before its first slot: the ring header, one page.
pub const RING_HEADER_REGION: u64 = 4096;
/// Offset of the schema within the header region.
pub const SCHEMA_OFFSET: u32 = 256;
/// Most slots a ring may have.
pub const MAX_SLOTS: u32 = 64;
/// Most array dimensions.
pub const MAX_DIMS: usize = 8;
/// Most metadata fields.
pub const MAX_FIELDS: usize = 64;
/// Largest metadata value in bytes.
pub const MAX_META: u32 = 64 * 1024;
/// Alignment of the meta area and the payload within a slot.
pub const PAYLOAD_ALIGN: u64 = 64;
/// Alignment of every slot and ring.
pub const SLOT_ALIGN: u64 = 4096;
/// Readers that can be attached to one channel at once (entries of the pin table).
pub const PIN_ENTRIES: u32 = 64;
/// Bytes of a pin table object.
pub const PINS_SIZE: u64 = 8192;

/// `Header::state`: the writer is publishing.
pub const STATE_OPEN: u32 = 0;
/// `Header::state`: the writer closed the channel.
pub const STATE_CLOSED: u32 = 1;
/// `Header::state`: a new writer took the name over (this writer had died); readers re-open the
/// name.
pub const STATE_SUPERSEDED: u32 = 2;

/// The fields of the channel header written once, before `version` (offset 0, 128 bytes). Readers
/// copy these bytes out of the mapping once and validate the copy, so a writer changing them later
/// cannot make a reader trust a size it did not check.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct HeaderFixed {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`LAYOUT_VERSION`], stored last during initialisation (atomically, release); 0 until then.
    pub version: u32,
    /// [`HEADER_REGION`].
    pub header_size: u32,
    /// Identifies the writer that created the object; a new writer taking a name over starts a
    /// new lineage (and frame indices restart). Also names the pin table.
    pub lineage: u64,
    /// CLOCK_REALTIME of creation, ns.
    pub created_realtime_ns: u64,
    /// The writer's process id (informational; liveness is the writer's lock).
    pub writer_pid: u32,
    /// Bytes of metadata per frame (0: the channel has no metadata).
    pub meta_size: u32,
    /// Offset of the schema ([`SCHEMA_OFFSET`]).
    pub schema_offset: u32,
    /// Bytes of schema (0: none).
    pub schema_len: u32,
    /// Entries of the pin table ([`PIN_ENTRIES`]).
    pub pin_entries: u32,
    /// Zero.
    pub _reserved0: [u8; 76],
}

/// The live fields of the channel header (offset 128).
#[repr(C)]
pub struct HeaderLive {
    /// Frames published so far; the newest frame has index `head - 1`. Stored (release) after the
    /// frame's slot stamp is even.
    pub head: AtomicU64,
    /// Bumped after every publish, growth and state change: spinning readers watch it, sleeping
    /// ones look at it before and after counting themselves in (they wait on `PinsHeader::bell`).
    pub wake: AtomicU32,
    /// [`STATE_OPEN`], [`STATE_CLOSED`] or [`STATE_SUPERSEDED`].
    pub state: AtomicU32,
    /// Offset of the current ring (release, after the ring is initialised).
    pub ring: AtomicU64,
    /// Writer's estimate of frames per second × 1000 (informational).
    pub fps_milli: AtomicU32,
    _pad: u32,
    /// CLOCK_MONOTONIC of the newest frame, ns (informational).
    pub last_timestamp_ns: AtomicU64,
    _reserved1: [u8; 88],
}

/// The channel header at offset 0: one declaration of all 256 bytes.
#[repr(C)]
pub struct Header {
    /// Written once.
    pub fixed: HeaderFixed,
    /// Changed while the channel lives.
    pub live: HeaderLive,
}

/// The fields of a ring header written once, before the ring is linked in (64 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct RingFixed {
    /// [`RING_MAGIC`].
    pub magic: [u8; 8],
    /// Number of slots, 1..=[`MAX_SLOTS`].
    pub slot_count: u32,
    /// Bytes of metadata per frame (equal to the channel's).
    pub meta_size: u32,
    /// Bytes from one slot to the next.
    pub slot_stride: u64,
    /// Payload bytes each slot can hold.
    pub slot_capacity: u64,
    /// Payload offset within a slot.
    pub payload_offset: u32,
    /// Meta area offset within a slot.
    pub meta_offset: u32,
    /// Bytes of the ring: [`RING_HEADER_REGION`] + slots.
    pub ring_size: u64,
    /// How many rings came before this one.
    pub generation: u32,
    /// Zero.
    pub _reserved: [u8; 12],
}

/// The header at the start of every ring.
#[repr(C)]
pub struct RingHeader {
    /// Written once.
    pub fixed: RingFixed,
    /// 0 while this ring is current; then the offset of the ring that replaced it (release,
    /// after that ring is initialised).
    pub next: AtomicU64,
    _reserved: [u8; 56],
}

/// Byte offsets of the live fields, for atomic access through the mapping.
pub mod off {
    use super::*;
    const LIVE: usize = offset_of!(Header, live);
    /// `HeaderFixed::version`.
    pub const VERSION: usize = offset_of!(HeaderFixed, version);
    /// `HeaderLive::head`.
    pub const HEAD: usize = LIVE + offset_of!(HeaderLive, head);
    /// `HeaderLive::wake`.
    pub const WAKE: usize = LIVE + offset_of!(HeaderLive, wake);
    /// `HeaderLive::state`.
    pub const STATE: usize = LIVE + offset_of!(HeaderLive, state);
    /// `HeaderLive::ring`.
    pub const RING: usize = LIVE + offset_of!(HeaderLive, ring);
    /// `HeaderLive::fps_milli`.
    pub const FPS_MILLI: usize = LIVE + offset_of!(HeaderLive, fps_milli);
    /// `HeaderLive::last_timestamp_ns`.
    pub const LAST_TIMESTAMP: usize = LIVE + offset_of!(HeaderLive, last_timestamp_ns);
    /// `RingHeader::next`, from the ring's start.
    pub const R_NEXT: usize = offset_of!(RingHeader, next);
    /// `SlotHeader::stamp`.
    pub const S_STAMP: usize = offset_of!(SlotHeader, stamp);
    /// `SlotHeader::timestamp_ns`.
    pub const S_TIMESTAMP: usize = offset_of!(SlotHeader, timestamp_ns);
    const DESC: usize = offset_of!(SlotHeader, desc);
    /// `SlotDesc::payload_len`, from the slot's start.
    pub const S_PAYLOAD_LEN: usize = DESC + offset_of!(SlotDesc, payload_len);
    /// `SlotDesc::dtype`, from the slot's start.
    pub const S_DTYPE: usize = DESC + offset_of!(SlotDesc, dtype);
    /// `SlotDesc::ndim`, from the slot's start.
    pub const S_NDIM: usize = DESC + offset_of!(SlotDesc, ndim);
    /// `SlotDesc::shape`, from the slot's start.
    pub const S_SHAPE: usize = DESC + offset_of!(SlotDesc, shape);
    /// `SlotDesc::meta_len`, from the slot's start.
    pub const S_META_LEN: usize = DESC + offset_of!(SlotDesc, meta_len);
    /// `PinsHeader::version`.
    pub const P_VERSION: usize = offset_of!(PinsHeader, version);
    /// `PinsHeader::used`.
    pub const P_USED: usize = offset_of!(PinsHeader, used);
    /// `PinsHeader::sleepers`.
    pub const P_SLEEPERS: usize = offset_of!(PinsHeader, sleepers);
    /// `PinsHeader::bell`.
    pub const P_BELL: usize = offset_of!(PinsHeader, bell);
    /// `PinEntry::pins`, from the entry's start.
    pub const E_PINS: usize = offset_of!(PinEntry, pins);
    /// `PinEntry::sleeping`, from the entry's start.
    pub const E_SLEEPING: usize = offset_of!(PinEntry, sleeping);
    /// `PinEntry::pid`, from the entry's start.
    pub const E_PID: usize = offset_of!(PinEntry, pid);
    /// `PinEntry::cursor`, from the entry's start.
    pub const E_CURSOR: usize = offset_of!(PinEntry, cursor);
}

/// The schema header at [`SCHEMA_OFFSET`], followed by `field_count` [`FieldEntry`]s.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SchemaHeader {
    /// Type name, UTF-8, NUL padded.
    pub type_name: [u8; 32],
    /// `size_of` the metadata type.
    pub size: u32,
    /// `align_of` the metadata type.
    pub align: u32,
    /// Number of fields.
    pub field_count: u32,
    /// Zero.
    pub _pad: u32,
}

/// One metadata field.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct FieldEntry {
    /// Field name, UTF-8, NUL padded.
    pub name: [u8; 32],
    /// [`crate::DType`] code.
    pub dtype: u32,
    /// Elements (1 for a scalar, N for `[T; N]`).
    pub count: u32,
    /// Byte offset within the metadata value.
    pub offset: u32,
    /// Zero.
    pub _pad: u32,
}

/// The header at the start of every slot. `stamp` is the seqlock word; the rest describes the
/// frame and is written by the writer while the stamp is odd (see [`SlotDesc`]).
#[repr(C)]
pub struct SlotHeader {
    /// Seqlock stamp: 0 never written, `2*i + 1` while frame `i` is written, `2*i + 2` once it is
    /// complete.
    pub stamp: AtomicU64,
    /// CLOCK_MONOTONIC at publish, ns.
    pub timestamp_ns: AtomicU64,
    /// The frame's description.
    pub desc: SlotDesc,
}

/// Bytes of a [`SlotDesc`] in its slot header's first cache line (the stamp's): the length, dtype,
/// dimension count and the first [`FIRST_LINE_DIMS`] dimensions.
pub const DESC_FIRST_LINE: usize = 48;
/// Dimensions of a [`SlotDesc`] in its slot header's first cache line.
pub const FIRST_LINE_DIMS: usize = 4;

/// A frame's description in its slot header (offset 16, 112 bytes): one home for both sides, the
/// writer stores it with [`bytemuck::bytes_of`] and a reader copies it out and validates it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SlotDesc {
    /// Payload bytes.
    pub payload_len: u64,
    /// [`crate::DType`] code.
    pub dtype: u32,
    /// Number of dimensions, 0..=[`MAX_DIMS`].
    pub ndim: u32,
    /// Shape; entries past `ndim` are 0.
    pub shape: [u64; MAX_DIMS],
    /// Metadata bytes in this frame (0 or `meta_size`).
    pub meta_len: u32,
    /// Reserved flags (0).
    pub flags: u32,
    /// Zero.
    pub _reserved: [u8; 24],
}

/// The pin table's header (offset 0 of the pins object).
#[repr(C)]
pub struct PinsHeader {
    /// [`PINS_MAGIC`].
    pub magic: [u8; 8],
    /// [`LAYOUT_VERSION`], stored last (release).
    pub version: AtomicU32,
    /// [`PIN_ENTRIES`].
    pub entries: u32,
    /// The channel's lineage.
    pub lineage: u64,
    _reserved0: [u8; 40],
    /// Entries claimed at least once (a high-water mark the writer scans up to).
    pub used: AtomicU32,
    /// Readers sleeping on the futex (or about to): the writer calls `FUTEX_WAKE` only when this
    /// is not 0.
    pub sleepers: AtomicU32,
    /// The futex word readers sleep on: the writer adds 1 before each `FUTEX_WAKE`. It lives here,
    /// in an object readers map read-write, because a futex wait on a read-only mapping costs the
    /// kernel a failed attempt to take the page for writing before it takes it for reading.
    pub bell: AtomicU32,
    _reserved1: [u8; 52],
}

/// One reader's entry in the pin table (64 bytes, a cache line of its own).
#[repr(C)]
pub struct PinEntry {
    /// Bit `s` of word `g % 2`: slot `s` of the ring of generation `g` is pinned by this reader.
    pub pins: [AtomicU64; 2],
    /// 1 while the reader counts itself in `PinsHeader::sleepers`.
    pub sleeping: AtomicU32,
    /// The reader's process id (informational; liveness is the entry's lock).
    pub pid: AtomicU32,
    /// One more than the index of the last frame the reader took: it has taken or passed over
    /// every frame below (0: it may still want any; `u64::MAX`: the entry is free). A hint for the
    /// writer's choice of slot, never for safety.
    pub cursor: AtomicU64,
    _reserved: [u8; 32],
}

/// First bytes of the handshake message a socket-serving writer sends each connecting reader.
pub const HELLO_MAGIC: [u8; 8] = *b"SHMFSOCK";
/// Version of the socket handshake (independent of [`LAYOUT_VERSION`], which the channel's own
/// header carries).
pub const SOCKET_VERSION: u32 = 1;
/// [`Hello::status`]: admitted; the message carries two descriptors (channel, pin table).
pub const HELLO_ADMITTED: u32 = 0;
/// [`Hello::status`]: refused; the text says why, no descriptor follows.
pub const HELLO_REFUSED: u32 = 1;
/// Longest text after a [`Hello`] (a channel name or a refusal).
pub const MAX_HELLO_TEXT: usize = 1024;

/// The fixed part of the one message a socket-serving writer sends a reader after `accept`
/// (native byte order: both ends run on one host). `text_len` bytes of UTF-8 follow it in the same
/// message: the channel's name when admitted, the reason when refused.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Hello {
    /// [`HELLO_MAGIC`].
    pub magic: [u8; 8],
    /// [`SOCKET_VERSION`].
    pub version: u32,
    /// [`HELLO_ADMITTED`] or [`HELLO_REFUSED`].
    pub status: u32,
    /// The writer's process id (in its own PID namespace).
    pub writer_pid: u32,
    /// Bytes of text after this record.
    pub text_len: u32,
}

/// Offset of pin entry `e` in the pins object.
pub const fn pin_entry_offset(e: u32) -> u64 {
    size_of::<PinsHeader>() as u64 + e as u64 * size_of::<PinEntry>() as u64
}

const _: () = {
    assert!(size_of::<Header>() == 256);
    assert!(size_of::<HeaderFixed>() == 128);
    assert!(offset_of!(HeaderFixed, magic) == 0);
    assert!(offset_of!(HeaderFixed, version) == 8);
    assert!(offset_of!(HeaderFixed, header_size) == 12);
    assert!(offset_of!(HeaderFixed, lineage) == 16);
    assert!(offset_of!(HeaderFixed, created_realtime_ns) == 24);
    assert!(offset_of!(HeaderFixed, writer_pid) == 32);
    assert!(offset_of!(HeaderFixed, meta_size) == 36);
    assert!(offset_of!(HeaderFixed, schema_offset) == 40);
    assert!(offset_of!(HeaderFixed, schema_len) == 44);
    assert!(offset_of!(HeaderFixed, pin_entries) == 48);
    assert!(offset_of!(Header, live) == 128);
    assert!(off::HEAD == 128);
    assert!(off::WAKE == 136);
    assert!(off::STATE == 140);
    assert!(off::RING == 144);
    assert!(off::FPS_MILLI == 152);
    assert!(off::LAST_TIMESTAMP == 160);
    assert!(size_of::<RingHeader>() == 128);
    assert!(size_of::<RingFixed>() == 64);
    assert!(offset_of!(RingFixed, slot_count) == 8);
    assert!(offset_of!(RingFixed, meta_size) == 12);
    assert!(offset_of!(RingFixed, slot_stride) == 16);
    assert!(offset_of!(RingFixed, slot_capacity) == 24);
    assert!(offset_of!(RingFixed, payload_offset) == 32);
    assert!(offset_of!(RingFixed, meta_offset) == 36);
    assert!(offset_of!(RingFixed, ring_size) == 40);
    assert!(offset_of!(RingFixed, generation) == 48);
    assert!(off::R_NEXT == 64);
    assert!(size_of::<SchemaHeader>() == 48);
    assert!(size_of::<FieldEntry>() == 48);
    assert!(offset_of!(FieldEntry, dtype) == 32);
    assert!(offset_of!(FieldEntry, offset) == 40);
    assert!(SCHEMA_OFFSET as usize + 48 + 48 * MAX_FIELDS <= HEADER_REGION as usize);
    assert!(size_of::<SlotHeader>() == 128);
    assert!(offset_of!(SlotHeader, stamp) == 0);
    assert!(offset_of!(SlotHeader, timestamp_ns) == 8);
    assert!(offset_of!(SlotHeader, desc) == 16);
    assert!(size_of::<SlotDesc>() == 112);
    assert!(offset_of!(SlotDesc, payload_len) == 0);
    assert!(offset_of!(SlotDesc, dtype) == 8);
    assert!(offset_of!(SlotDesc, ndim) == 12);
    assert!(offset_of!(SlotDesc, shape) == 16);
    assert!(offset_of!(SlotDesc, meta_len) == 80);
    assert!(off::S_PAYLOAD_LEN + DESC_FIRST_LINE == 64);
    assert!(offset_of!(SlotDesc, shape) + 8 * FIRST_LINE_DIMS == DESC_FIRST_LINE);
    assert!(SLOT_ALIGN % 64 == 0);
    assert!(offset_of!(SlotDesc, flags) == 84);
    assert!(size_of::<PinsHeader>() == 128);
    assert!(offset_of!(PinsHeader, version) == 8);
    assert!(offset_of!(PinsHeader, entries) == 12);
    assert!(offset_of!(PinsHeader, lineage) == 16);
    assert!(offset_of!(PinsHeader, used) == 64);
    assert!(offset_of!(PinsHeader, sleepers) == 68);
    assert!(offset_of!(PinsHeader, bell) == 72);
    assert!(size_of::<PinEntry>() == 64);
    assert!(offset_of!(PinEntry, sleeping) == 16);
    assert!(offset_of!(PinEntry, pid) == 20);
    assert!(offset_of!(PinEntry, cursor) == 24);
    assert!(pin_entry_offset(PIN_ENTRIES) <= PINS_SIZE);
    assert!(size_of::<Hello>() == 24);
    assert!(offset_of!(Hello, version) == 8);
    assert!(offset_of!(Hello, status) == 12);
    assert!(offset_of!(Hello, writer_pid) == 16);
    assert!(offset_of!(Hello, text_len) == 20);
    assert!(MAX_SLOTS <= 64, "a pin word has one bit per slot");
    assert!(core::mem::align_of::<Header>() == 8);
    assert!(core::mem::align_of::<SlotHeader>() == 8);
};

/// Geometry of a ring, computed by the writer and re-checked by every reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Slots.
    pub slot_count: u32,
    /// Metadata bytes per frame.
    pub meta_size: u32,
    /// Payload bytes per slot.
    pub slot_capacity: u64,
    /// Offset of the meta area within a slot.
    pub meta_offset: u64,
    /// Offset of the payload within a slot.
    pub payload_offset: u64,
    /// Bytes from slot to slot.
    pub slot_stride: u64,
    /// Bytes of the ring, header page included.
    pub ring_size: u64,
    /// Offset of the ring in the object.
    pub ring_offset: u64,
}

/// Rounds `v` up to a multiple of `to` (a power of two), `None` on overflow.
pub const fn round_up(v: u64, to: u64) -> Option<u64> {
    match v.checked_add(to - 1) {
        Some(x) => Some(x & !(to - 1)),
        None => None,
    }
}

impl Geometry {
    /// Computes the geometry of a ring at `ring_offset` with `slot_count` slots of
    /// `slot_capacity` payload bytes and `meta_size` bytes of metadata. `None` if out of range or
    /// overflowing.
    pub fn new(
        slot_count: u32,
        meta_size: u32,
        slot_capacity: u64,
        ring_offset: u64,
    ) -> Option<Geometry> {
        if slot_count == 0 || slot_count > MAX_SLOTS || meta_size > MAX_META {
            return None;
        }
        if ring_offset < HEADER_REGION || ring_offset % SLOT_ALIGN != 0 {
            return None;
        }
        let meta_offset = size_of::<SlotHeader>() as u64;
        let payload_offset = round_up(meta_offset + meta_size as u64, PAYLOAD_ALIGN)?;
        let slot_stride = round_up(payload_offset.checked_add(slot_capacity)?, SLOT_ALIGN)?;
        let ring_size = slot_stride
            .checked_mul(slot_count as u64)?
            .checked_add(RING_HEADER_REGION)?;
        // Keep every offset representable as isize on this platform.
        if ring_offset.checked_add(ring_size)? > isize::MAX as u64 / 2 {
            return None;
        }
        Some(Geometry {
            slot_count,
            meta_size,
            slot_capacity,
            meta_offset,
            payload_offset,
            slot_stride,
            ring_size,
            ring_offset,
        })
    }

    /// The geometry a ring header describes, if it is consistent with itself and `meta_size`.
    pub fn of_ring(r: &RingFixed, meta_size: u32, ring_offset: u64) -> Option<Geometry> {
        let g = Geometry::new(r.slot_count, r.meta_size, r.slot_capacity, ring_offset)?;
        let same = r.magic == RING_MAGIC
            && r.meta_size == meta_size
            && g.slot_stride == r.slot_stride
            && g.payload_offset == r.payload_offset as u64
            && g.meta_offset == r.meta_offset as u64
            && g.ring_size == r.ring_size;
        same.then_some(g)
    }

    /// The ring header that describes this geometry.
    pub fn ring_fixed(&self, generation: u32) -> RingFixed {
        RingFixed {
            magic: RING_MAGIC,
            slot_count: self.slot_count,
            meta_size: self.meta_size,
            slot_stride: self.slot_stride,
            slot_capacity: self.slot_capacity,
            payload_offset: self.payload_offset as u32,
            meta_offset: self.meta_offset as u32,
            ring_size: self.ring_size,
            generation,
            _reserved: [0; 12],
        }
    }

    /// Byte offset of slot `i` in the object.
    pub fn slot_offset(&self, i: u32) -> u64 {
        self.ring_offset + RING_HEADER_REGION + self.slot_stride * i as u64
    }

    /// Byte offset of the end of the ring in the object.
    pub fn ring_end(&self) -> u64 {
        self.ring_offset + self.ring_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry() {
        let g = Geometry::new(3, 0, 640 * 480 * 3, HEADER_REGION).unwrap();
        assert_eq!(g.payload_offset, 128);
        assert_eq!(g.slot_stride % SLOT_ALIGN, 0);
        assert!(g.slot_stride >= 128 + 640 * 480 * 3);
        assert_eq!(g.ring_size, RING_HEADER_REGION + 3 * g.slot_stride);
        assert_eq!(g.slot_offset(0), HEADER_REGION + RING_HEADER_REGION);
        assert_eq!(
            Geometry::of_ring(&g.ring_fixed(0), 0, HEADER_REGION),
            Some(g)
        );
        assert_eq!(Geometry::of_ring(&g.ring_fixed(0), 8, HEADER_REGION), None);
        let g = Geometry::new(2, 100, 0, HEADER_REGION).unwrap();
        assert_eq!(g.payload_offset, 256);
        assert!(Geometry::new(0, 0, 1, HEADER_REGION).is_none());
        assert!(Geometry::new(1, 0, 1, 100).is_none());
        assert!(Geometry::new(MAX_SLOTS + 1, 0, 1, HEADER_REGION).is_none());
        assert!(Geometry::new(2, 0, u64::MAX - 10, HEADER_REGION).is_none());
        assert!(Geometry::new(64, 0, u64::MAX / 64, HEADER_REGION).is_none());
    }

    #[test]
    fn default_1080p_ring_fits_docker_default_shm() {
        let g = Geometry::new(crate::DEFAULT_SLOTS, 0, 1920 * 1080 * 3, HEADER_REGION).unwrap();
        assert!(g.ring_end() < 64 << 20, "{}", g.ring_end());
    }
}
