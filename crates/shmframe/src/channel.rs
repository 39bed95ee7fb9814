//! An opened, validated segment and the slot operations readers and the writer share.

use crate::error::{Errno, OpenError};
use crate::frame::{frame_len, DType, Frame, Schema};
use crate::layout::{
    off, Geometry, HeaderStatic, HEADER_REGION, LAYOUT_VERSION, MAGIC, MAX_DIMS, SCHEMA_OFFSET,
    STATE_CLOSED, STATE_OPEN, STATE_SUPERSEDED,
};
use crate::name::Name;
use crate::ring;
use crate::segment::{Identity, Segment};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// A frame's description as read from its slot header.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SlotDesc {
    pub timestamp_ns: u64,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub payload_len: usize,
    pub meta_len: usize,
}

/// An opened channel segment whose header has been validated.
pub(crate) struct Channel {
    pub name: Name,
    pub seg: Arc<Segment>,
    pub hs: HeaderStatic,
    pub geom: Geometry,
    pub schema: Option<Schema>,
    pub identity: Identity,
}

fn corrupt(name: &Name, what: impl Into<String>) -> OpenError {
    OpenError::Corrupt {
        name: name.to_string(),
        what: what.into(),
    }
}

impl Channel {
    /// Opens and validates the channel's segment (read-only unless `writable`).
    pub fn open(name: &Name, writable: bool) -> Result<Channel, OpenError> {
        let seg = match Segment::open(&name.object_name(), writable) {
            Ok(s) => s,
            Err(Errno::NOENT) => {
                return Err(OpenError::NotFound {
                    name: name.to_string(),
                })
            }
            Err(Errno::ACCESS) | Err(Errno::PERM) => {
                let md = std::fs::metadata(name.file_path()).ok();
                use std::os::unix::fs::MetadataExt;
                return Err(OpenError::PermissionDenied {
                    name: name.to_string(),
                    path: name.file_path().display().to_string(),
                    mode: md.as_ref().map_or(0, |m| m.mode() & 0o7777),
                    uid: md.as_ref().map_or(u32::MAX, |m| m.uid()),
                });
            }
            Err(e) => {
                return Err(OpenError::Io {
                    name: name.to_string(),
                    op: "shm_open/mmap",
                    source: e,
                })
            }
        };
        Channel::from_segment(name.clone(), seg)
    }

    /// Validates an opened segment.
    pub fn from_segment(name: Name, seg: Segment) -> Result<Channel, OpenError> {
        let len = seg.len() as u64;
        if len < HEADER_REGION {
            if len >= 8 {
                let mut magic = [0u8; 8];
                seg.copy_out(0, &mut magic);
                if magic != MAGIC {
                    return Err(OpenError::NotOurs {
                        path: name.file_path().display().to_string(),
                    });
                }
            }
            return Err(OpenError::Truncated {
                name: name.to_string(),
                size: len,
                needed: HEADER_REGION,
            });
        }
        let hs = seg.header_static();
        if hs.magic != MAGIC {
            return Err(OpenError::NotOurs {
                path: name.file_path().display().to_string(),
            });
        }
        // SYNC POINT: acquire pairs with the writer's release store of `version`, the last store
        // of initialisation; the static copy above is re-read after it so it is complete.
        let version = seg.atomic_u32(off::VERSION).load(Ordering::Acquire);
        if version == 0 {
            return Err(OpenError::Initialising {
                name: name.to_string(),
            });
        }
        if version != LAYOUT_VERSION {
            return Err(OpenError::VersionMismatch {
                name: name.to_string(),
                found: version,
                expected: LAYOUT_VERSION,
            });
        }
        let hs = seg.header_static();
        if hs.header_size as u64 != HEADER_REGION {
            return Err(corrupt(&name, format!("header size {}", hs.header_size)));
        }
        let geom =
            Geometry::new(hs.slot_count, hs.meta_size, hs.slot_capacity).ok_or_else(|| {
                corrupt(
                    &name,
                    format!(
                        "impossible geometry: {} slots of {} bytes with {} bytes of metadata",
                        hs.slot_count, hs.slot_capacity, hs.meta_size
                    ),
                )
            })?;
        if geom.slot_stride != hs.slot_stride
            || geom.payload_offset != hs.payload_offset as u64
            || geom.meta_offset != hs.meta_offset as u64
            || geom.segment_size != hs.segment_size
        {
            return Err(corrupt(&name, "slot offsets disagree with the slot sizes"));
        }
        if hs.segment_size > len {
            return Err(OpenError::Truncated {
                name: name.to_string(),
                size: len,
                needed: hs.segment_size,
            });
        }
        if hs.state > STATE_SUPERSEDED {
            return Err(corrupt(&name, format!("state {}", hs.state)));
        }
        let schema = if hs.schema_len == 0 {
            None
        } else {
            if hs.schema_offset != SCHEMA_OFFSET
                || hs.schema_len as u64 > HEADER_REGION - SCHEMA_OFFSET as u64
            {
                return Err(corrupt(&name, "schema out of bounds"));
            }
            let mut b = vec![0u8; hs.schema_len as usize];
            seg.copy_out(SCHEMA_OFFSET as usize, &mut b);
            Some(Schema::decode(&b).ok_or_else(|| corrupt(&name, "malformed metadata schema"))?)
        };
        match &schema {
            Some(s) if s.size != hs.meta_size => {
                return Err(corrupt(&name, "schema size differs from the metadata size"))
            }
            None if hs.meta_size != 0 => return Err(corrupt(&name, "metadata without a schema")),
            _ => {}
        }
        let identity = seg.identity().map_err(|e| OpenError::Io {
            name: name.to_string(),
            op: "fstat",
            source: e,
        })?;
        Ok(Channel {
            name,
            seg: Arc::new(seg),
            hs,
            geom,
            schema,
            identity,
        })
    }

    pub fn head(&self) -> &AtomicU64 {
        self.seg.atomic_u64(off::HEAD)
    }
    pub fn wake(&self) -> &AtomicU32 {
        self.seg.atomic_u32(off::WAKE)
    }
    pub fn state(&self) -> u32 {
        self.seg.atomic_u32(off::STATE).load(Ordering::Acquire)
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

    pub fn slot_offset(&self, slot: u32) -> usize {
        self.geom.slot_offset(slot) as usize
    }
    pub fn stamp(&self, slot: u32) -> &AtomicU64 {
        self.seg.atomic_u64(self.slot_offset(slot) + off::S_STAMP)
    }
    pub fn stamps(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.geom.slot_count).map(|s| self.stamp(s).load(Ordering::Acquire))
    }
    pub fn meta_offset(&self, slot: u32) -> usize {
        self.slot_offset(slot) + self.geom.meta_offset as usize
    }
    pub fn payload_offset(&self, slot: u32) -> usize {
        self.slot_offset(slot) + self.geom.payload_offset as usize
    }

    /// Reads a slot's description. `Err` says what is impossible about it; the caller decides
    /// whether that is a torn read (stamp moved) or a corrupt frame (stamp stable).
    pub fn slot_desc(&self, slot: u32) -> Result<SlotDesc, String> {
        let base = self.slot_offset(slot);
        let r32 = |o: usize| self.seg.atomic_u32(base + o).load(Ordering::Relaxed);
        let r64 = |o: usize| self.seg.atomic_u64(base + o).load(Ordering::Relaxed);
        let code = r32(off::S_DTYPE);
        let dtype = DType::from_code(code).ok_or_else(|| format!("unknown dtype code {code}"))?;
        let ndim = r32(off::S_NDIM) as usize;
        if ndim > MAX_DIMS {
            return Err(format!("{ndim} dimensions"));
        }
        let shape: Vec<usize> = (0..ndim)
            .map(|d| r64(off::S_SHAPE + 8 * d).try_into().unwrap_or(usize::MAX))
            .collect();
        let len = frame_len(dtype, &shape)?;
        let payload_len = r64(off::S_PAYLOAD_LEN);
        if payload_len != len as u64 || payload_len > self.geom.slot_capacity {
            return Err(format!(
                "payload of {payload_len} bytes for shape {shape:?} of {dtype} in a slot of {}",
                self.geom.slot_capacity
            ));
        }
        let meta_len = r32(off::S_META_LEN);
        if meta_len != 0 && meta_len != self.geom.meta_size {
            return Err(format!(
                "{meta_len} bytes of metadata, the channel declares {}",
                self.geom.meta_size
            ));
        }
        Ok(SlotDesc {
            timestamp_ns: r64(off::S_TIMESTAMP),
            dtype,
            shape,
            payload_len: len,
            meta_len: meta_len as usize,
        })
    }

    /// Copies the frame in `slot`, expected to carry stamp `begun`, into `out`. `Ok(false)` if the
    /// writer overwrote the slot meanwhile (the copy is discarded).
    pub fn copy_frame(&self, slot: u32, begun: u64, out: &mut Frame) -> Result<bool, String> {
        let stamp = self.stamp(slot);
        let desc = match self.slot_desc(slot) {
            Ok(d) => d,
            Err(what) => {
                return if ring::read_validate(stamp, begun) {
                    Err(what)
                } else {
                    Ok(false)
                }
            }
        };
        out.data.resize(desc.payload_len, 0);
        self.seg.copy_out(self.payload_offset(slot), &mut out.data);
        out.meta.resize(desc.meta_len, 0);
        self.seg.copy_out(self.meta_offset(slot), &mut out.meta);
        if !ring::read_validate(stamp, begun) {
            return Ok(false);
        }
        out.index = ring::stable_index(begun).unwrap_or(0);
        out.timestamp_ns = desc.timestamp_ns;
        out.dtype = desc.dtype;
        out.shape = desc.shape;
        Ok(true)
    }
}
