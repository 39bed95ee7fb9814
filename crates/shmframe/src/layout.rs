//! The on-memory layout of a channel, version [`LAYOUT_VERSION`]. `docs/protocol.md` describes the
//! same bytes for implementers in other languages; the `const` asserts below keep the two in step.
//!
//! ```text
//! 0      Header (256 bytes)             static fields written once before `version` is stored,
//!                                       then the live fields (head, wake, state, …)
//! 256    Schema (48 + 48*fields bytes)  metadata type: name, size, fields
//! 4096   slot 0  [SlotHeader 128][meta area][payload]   every slot `slot_stride` bytes
//! …      slot K-1
//! ```
//! All integers are native-endian (every process on one host shares it). Multi-byte fields that
//! change after initialisation are atomics; everything else is written once, before the release
//! store of `version`.

use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU32, AtomicU64};

/// First eight bytes of every channel.
pub const MAGIC: [u8; 8] = *b"SHMFRAME";
/// Layout version this library reads and writes.
pub const LAYOUT_VERSION: u32 = 1;
/// Bytes before the first slot: header plus schema, one page.
pub const HEADER_REGION: u64 = 4096;
/// Offset of the schema within the header region.
pub const SCHEMA_OFFSET: u32 = 256;
/// Most slots a channel may have.
pub const MAX_SLOTS: u32 = 64;
/// Most array dimensions.
pub const MAX_DIMS: usize = 8;
/// Most metadata fields.
pub const MAX_FIELDS: usize = 64;
/// Largest metadata value in bytes.
pub const MAX_META: u32 = 64 * 1024;
/// Alignment of the meta area and the payload within a slot.
pub const PAYLOAD_ALIGN: u64 = 64;
/// Alignment of every slot.
pub const SLOT_ALIGN: u64 = 4096;

/// `Header::state`: the writer is publishing.
pub const STATE_OPEN: u32 = 0;
/// `Header::state`: the writer closed the channel.
pub const STATE_CLOSED: u32 = 1;
/// `Header::state`: a newer segment now stands under this name (the channel grew, or a new writer
/// took it over); readers re-open the name.
pub const STATE_SUPERSEDED: u32 = 2;

/// The channel header at offset 0.
#[repr(C)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`LAYOUT_VERSION`], stored last during initialisation (release); 0 until then.
    pub version: AtomicU32,
    /// [`HEADER_REGION`].
    pub header_size: u32,
    /// Total bytes of the segment.
    pub segment_size: u64,
    /// Number of slots, 1..=[`MAX_SLOTS`].
    pub slot_count: u32,
    /// Bytes of metadata per frame (0: the channel has no metadata).
    pub meta_size: u32,
    /// Bytes from one slot to the next.
    pub slot_stride: u64,
    /// Payload bytes each slot can hold.
    pub slot_capacity: u64,
    /// The writer's process id (informational; liveness is the writer's `flock`).
    pub writer_pid: u32,
    /// [`STATE_OPEN`], [`STATE_CLOSED`] or [`STATE_SUPERSEDED`].
    pub state: AtomicU32,
    /// CLOCK_REALTIME of creation, ns.
    pub created_realtime_ns: u64,
    /// Offset of the schema ([`SCHEMA_OFFSET`]).
    pub schema_offset: u32,
    /// Bytes of schema (0: none).
    pub schema_len: u32,
    /// Identifies a writer's stream across the segments it replaces when growing; a new writer
    /// taking a name over starts a new lineage (and frame indices restart).
    pub lineage: u64,
    /// How many times this lineage replaced its segment.
    pub generation: u32,
    /// Payload offset within a slot.
    pub payload_offset: u32,
    /// Meta area offset within a slot.
    pub meta_offset: u32,
    _reserved0: [u8; 36],
    /// Frames published so far; the newest frame has index `head - 1`. Stored (release) after the
    /// frame's slot stamp is even.
    pub head: AtomicU64,
    /// Futex word: bumped after every publish and state change; readers `FUTEX_WAIT` on it.
    pub wake: AtomicU32,
    /// Writer's estimate of frames per second × 1000 (informational).
    pub fps_milli: AtomicU32,
    /// CLOCK_MONOTONIC of the newest frame, ns (informational).
    pub last_timestamp_ns: AtomicU64,
    _reserved1: [u8; 104],
}

/// A plain copy of the header's first 128 bytes (the fields written once at initialisation, plus
/// `version` and `state` as plain numbers). Readers copy these bytes out of the mapping once and
/// validate the copy, so a writer changing them later cannot make a reader trust a size it did not
/// check.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct HeaderStatic {
    /// See [`Header::magic`].
    pub magic: [u8; 8],
    /// See [`Header::version`].
    pub version: u32,
    /// See [`Header::header_size`].
    pub header_size: u32,
    /// See [`Header::segment_size`].
    pub segment_size: u64,
    /// See [`Header::slot_count`].
    pub slot_count: u32,
    /// See [`Header::meta_size`].
    pub meta_size: u32,
    /// See [`Header::slot_stride`].
    pub slot_stride: u64,
    /// See [`Header::slot_capacity`].
    pub slot_capacity: u64,
    /// See [`Header::writer_pid`].
    pub writer_pid: u32,
    /// See [`Header::state`].
    pub state: u32,
    /// See [`Header::created_realtime_ns`].
    pub created_realtime_ns: u64,
    /// See [`Header::schema_offset`].
    pub schema_offset: u32,
    /// See [`Header::schema_len`].
    pub schema_len: u32,
    /// See [`Header::lineage`].
    pub lineage: u64,
    /// See [`Header::generation`].
    pub generation: u32,
    /// See [`Header::payload_offset`].
    pub payload_offset: u32,
    /// See [`Header::meta_offset`].
    pub meta_offset: u32,
    /// Zero.
    pub _reserved0: [u8; 36],
}

/// Byte offsets of the live header fields, for atomic access through the mapping.
pub mod off {
    use super::*;
    /// `Header::version`.
    pub const VERSION: usize = offset_of!(Header, version);
    /// `Header::state`.
    pub const STATE: usize = offset_of!(Header, state);
    /// `Header::head`.
    pub const HEAD: usize = offset_of!(Header, head);
    /// `Header::wake`.
    pub const WAKE: usize = offset_of!(Header, wake);
    /// `Header::fps_milli`.
    pub const FPS_MILLI: usize = offset_of!(Header, fps_milli);
    /// `Header::last_timestamp_ns`.
    pub const LAST_TIMESTAMP: usize = offset_of!(Header, last_timestamp_ns);
    /// `SlotHeader::stamp`.
    pub const S_STAMP: usize = offset_of!(SlotHeader, stamp);
    /// `SlotHeader::timestamp_ns`.
    pub const S_TIMESTAMP: usize = offset_of!(SlotHeader, timestamp_ns);
    /// `SlotHeader::payload_len`.
    pub const S_PAYLOAD_LEN: usize = offset_of!(SlotHeader, payload_len);
    /// `SlotHeader::dtype`.
    pub const S_DTYPE: usize = offset_of!(SlotHeader, dtype);
    /// `SlotHeader::ndim`.
    pub const S_NDIM: usize = offset_of!(SlotHeader, ndim);
    /// `SlotHeader::shape`.
    pub const S_SHAPE: usize = offset_of!(SlotHeader, shape);
    /// `SlotHeader::meta_len`.
    pub const S_META_LEN: usize = offset_of!(SlotHeader, meta_len);
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

/// The header at the start of every slot.
#[repr(C)]
pub struct SlotHeader {
    /// Seqlock stamp: 0 never written, `2*i + 1` while frame `i` is written, `2*i + 2` once it is
    /// complete.
    pub stamp: AtomicU64,
    /// CLOCK_MONOTONIC at publish, ns.
    pub timestamp_ns: AtomicU64,
    /// Payload bytes.
    pub payload_len: AtomicU64,
    /// [`crate::DType`] code.
    pub dtype: AtomicU32,
    /// Number of dimensions, 0..=[`MAX_DIMS`].
    pub ndim: AtomicU32,
    /// Shape; entries past `ndim` are 0.
    pub shape: [AtomicU64; MAX_DIMS],
    /// Metadata bytes in this frame (0 or `Header::meta_size`).
    pub meta_len: AtomicU32,
    /// Reserved flags (0).
    pub flags: AtomicU32,
    _reserved: [u8; 24],
}

const _: () = {
    assert!(size_of::<Header>() == 256);
    assert!(offset_of!(Header, magic) == 0);
    assert!(offset_of!(Header, version) == 8);
    assert!(offset_of!(Header, header_size) == 12);
    assert!(offset_of!(Header, segment_size) == 16);
    assert!(offset_of!(Header, slot_count) == 24);
    assert!(offset_of!(Header, meta_size) == 28);
    assert!(offset_of!(Header, slot_stride) == 32);
    assert!(offset_of!(Header, slot_capacity) == 40);
    assert!(offset_of!(Header, writer_pid) == 48);
    assert!(offset_of!(Header, state) == 52);
    assert!(offset_of!(Header, created_realtime_ns) == 56);
    assert!(offset_of!(Header, schema_offset) == 64);
    assert!(offset_of!(Header, schema_len) == 68);
    assert!(offset_of!(Header, lineage) == 72);
    assert!(offset_of!(Header, generation) == 80);
    assert!(offset_of!(Header, payload_offset) == 84);
    assert!(offset_of!(Header, meta_offset) == 88);
    assert!(offset_of!(Header, head) == 128);
    assert!(offset_of!(Header, wake) == 136);
    assert!(offset_of!(Header, fps_milli) == 140);
    assert!(offset_of!(Header, last_timestamp_ns) == 144);
    assert!(size_of::<HeaderStatic>() == 128);
    assert!(offset_of!(HeaderStatic, version) == offset_of!(Header, version));
    assert!(offset_of!(HeaderStatic, state) == offset_of!(Header, state));
    assert!(offset_of!(HeaderStatic, lineage) == offset_of!(Header, lineage));
    assert!(offset_of!(HeaderStatic, meta_offset) == offset_of!(Header, meta_offset));
    assert!(offset_of!(HeaderStatic, _reserved0) == offset_of!(Header, _reserved0));
    assert!(size_of::<SchemaHeader>() == 48);
    assert!(size_of::<FieldEntry>() == 48);
    assert!(offset_of!(FieldEntry, dtype) == 32);
    assert!(offset_of!(FieldEntry, offset) == 40);
    assert!(SCHEMA_OFFSET as usize + 48 + 48 * MAX_FIELDS <= HEADER_REGION as usize);
    assert!(size_of::<SlotHeader>() == 128);
    assert!(offset_of!(SlotHeader, stamp) == 0);
    assert!(offset_of!(SlotHeader, timestamp_ns) == 8);
    assert!(offset_of!(SlotHeader, payload_len) == 16);
    assert!(offset_of!(SlotHeader, dtype) == 24);
    assert!(offset_of!(SlotHeader, ndim) == 28);
    assert!(offset_of!(SlotHeader, shape) == 32);
    assert!(offset_of!(SlotHeader, meta_len) == 96);
    assert!(offset_of!(SlotHeader, flags) == 100);
    assert!(core::mem::align_of::<Header>() == 8);
    assert!(core::mem::align_of::<SlotHeader>() == 8);
};

/// Geometry of a segment, computed by the writer and re-checked by every reader.
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
    /// Total bytes.
    pub segment_size: u64,
}

/// Rounds `v` up to a multiple of `to` (a power of two), `None` on overflow.
pub const fn round_up(v: u64, to: u64) -> Option<u64> {
    match v.checked_add(to - 1) {
        Some(x) => Some(x & !(to - 1)),
        None => None,
    }
}

impl Geometry {
    /// Computes the geometry for `slot_count` slots of `slot_capacity` payload bytes with
    /// `meta_size` bytes of metadata. `None` if out of range or overflowing.
    pub fn new(slot_count: u32, meta_size: u32, slot_capacity: u64) -> Option<Geometry> {
        if slot_count == 0 || slot_count > MAX_SLOTS || meta_size > MAX_META {
            return None;
        }
        let meta_offset = size_of::<SlotHeader>() as u64;
        let payload_offset = round_up(meta_offset + meta_size as u64, PAYLOAD_ALIGN)?;
        let slot_stride = round_up(payload_offset.checked_add(slot_capacity)?, SLOT_ALIGN)?;
        let segment_size = slot_stride
            .checked_mul(slot_count as u64)?
            .checked_add(HEADER_REGION)?;
        // Keep every offset representable as isize on this platform.
        if segment_size > isize::MAX as u64 / 2 {
            return None;
        }
        Some(Geometry {
            slot_count,
            meta_size,
            slot_capacity,
            meta_offset,
            payload_offset,
            slot_stride,
            segment_size,
        })
    }

    /// Byte offset of slot `i`.
    pub fn slot_offset(&self, i: u32) -> u64 {
        HEADER_REGION + self.slot_stride * i as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry() {
        let g = Geometry::new(3, 0, 640 * 480 * 3).unwrap();
        assert_eq!(g.payload_offset, 128);
        assert_eq!(g.slot_stride % SLOT_ALIGN, 0);
        assert!(g.slot_stride >= 128 + 640 * 480 * 3);
        assert_eq!(g.segment_size, HEADER_REGION + 3 * g.slot_stride);
        let g = Geometry::new(2, 100, 0).unwrap();
        assert_eq!(g.payload_offset, 256);
        assert!(Geometry::new(0, 0, 1).is_none());
        assert!(Geometry::new(MAX_SLOTS + 1, 0, 1).is_none());
        assert!(Geometry::new(2, 0, u64::MAX - 10).is_none());
        assert!(Geometry::new(64, 0, u64::MAX / 64).is_none());
    }

    #[test]
    fn default_1080p_ring_fits_docker_default_shm() {
        let g = Geometry::new(crate::DEFAULT_SLOTS, 0, 1920 * 1080 * 3).unwrap();
        assert!(g.segment_size < 64 << 20, "{}", g.segment_size);
    }
}
