//! Listing, inspecting and removing channels (what `shmframe ls/info/rm` show).

use crate::error::{Errno, OpenError, RemoveError};
use crate::frame::{DType, Schema};
use crate::layout::{off, STATE_CLOSED, STATE_OPEN};
use crate::mapped::Channel;
use crate::name::{Name, OBJECT_PREFIX, SHM_DIR};
use crate::ring;
use crate::segment::{self, Segment};
use crate::wake::monotonic_ns;
use std::sync::atomic::Ordering;

/// What one channel looks like right now.
#[derive(Clone, Debug)]
pub struct ChannelStatus {
    /// Channel name.
    pub name: String,
    /// Object size in bytes.
    pub bytes: u64,
    /// Owner uid and mode bits of the object.
    pub uid: u32,
    /// Mode bits.
    pub mode: u32,
    /// Writer pid (as recorded by the writer).
    pub writer_pid: u32,
    /// Whether the writer still holds the channel.
    pub writer_alive: bool,
    /// `open`, `closed` or `superseded`.
    pub state: &'static str,
    /// Layout version.
    pub version: u32,
    /// Slots.
    pub slots: u32,
    /// Payload bytes per slot.
    pub slot_capacity: u64,
    /// Metadata schema.
    pub schema: Option<Schema>,
    /// Frames published.
    pub frames: u64,
    /// Newest frame: index, dtype, shape.
    pub last_frame: Option<(u64, DType, Vec<usize>)>,
    /// Writer's frames-per-second estimate.
    pub fps: f64,
    /// Seconds since the newest frame.
    pub age_s: Option<f64>,
    /// Segment generation (times it grew).
    pub generation: u32,
    /// Per slot: the frame it holds (`None` if empty or being written).
    pub slot_frames: Vec<Option<u64>>,
}

/// A `/dev/shm` object with our prefix that could not be opened as a channel.
#[derive(Clone, Debug)]
pub struct BrokenChannel {
    /// The object's file name in /dev/shm.
    pub object: String,
    /// Why it is not usable.
    pub error: String,
}

fn status(ch: &Channel) -> ChannelStatus {
    let seg = &ch.seg;
    let (uid, mode, bytes) = seg.stat().unwrap_or((u32::MAX, 0, seg.len() as u64));
    let newest = ring::newest_after(ch.stamps(), None);
    let last_frame = newest.and_then(|(slot, index)| {
        let d = ch.read_desc(slot).ok()?;
        Some((index, d.dtype, d.shape))
    });
    let last_ts = seg.atomic_u64(off::LAST_TIMESTAMP).load(Ordering::Relaxed);
    let now = monotonic_ns();
    ChannelStatus {
        name: ch.name.to_string(),
        bytes,
        uid,
        mode,
        writer_pid: ch.hf.writer_pid,
        writer_alive: seg.writer_alive().unwrap_or(false),
        state: match ch.state() {
            STATE_OPEN => "open",
            STATE_CLOSED => "closed",
            _ => "superseded",
        },
        version: crate::layout::LAYOUT_VERSION,
        slots: ch.geom.slot_count,
        slot_capacity: ch.geom.slot_capacity,
        schema: ch.schema.clone(),
        frames: ch.head().load(Ordering::Acquire),
        last_frame,
        fps: seg.atomic_u32(off::FPS_MILLI).load(Ordering::Relaxed) as f64 / 1000.0,
        age_s: (last_ts != 0).then(|| now.saturating_sub(last_ts) as f64 / 1e9),
        generation: ch.generation,
        slot_frames: ch.stamps().map(ring::stable_index).collect(),
    }
}

/// Describes channel `name`.
pub fn inspect(name: &str) -> Result<ChannelStatus, OpenError> {
    let name = Name::new(name)?;
    let ch = Channel::open(&name, false)?;
    Ok(status(&ch))
}

/// Every channel in /dev/shm, and the objects with our prefix that are not usable channels.
pub fn list() -> (Vec<ChannelStatus>, Vec<BrokenChannel>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let Ok(dir) = std::fs::read_dir(SHM_DIR) else {
        return (good, bad);
    };
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(OBJECT_PREFIX))
        .collect();
    names.sort();
    for object in names {
        match Name::from_object_name(&object) {
            Some(name) => match Channel::open(&name, false) {
                Ok(ch) => good.push(status(&ch)),
                Err(e) => bad.push(BrokenChannel {
                    object,
                    error: e.to_string(),
                }),
            },
            None => bad.push(BrokenChannel {
                error: "temporary object of a writer that is creating (or died creating) a channel"
                    .into(),
                object,
            }),
        }
    }
    (good, bad)
}

/// Removes channel `name` from /dev/shm. Processes that have it open keep their mapping; a live
/// writer goes on publishing to readers already attached, but nobody new can attach.
pub fn remove(name: &str) -> Result<(), RemoveError> {
    let name = Name::new(name)?;
    segment::unlink(&name.object_name()).map_err(|e| match e {
        Errno::NOENT => RemoveError::NotFound {
            name: name.to_string(),
        },
        Errno::ACCESS | Errno::PERM => RemoveError::PermissionDenied {
            name: name.to_string(),
        },
        e => RemoveError::Io {
            name: name.to_string(),
            source: e,
        },
    })
}

/// Removes every object with our prefix whose writer is gone (it died, or closed with `keep`),
/// including temporary objects of writers that died while creating a channel. Returns the object
/// names removed. Objects we may not open (another user's) are left alone.
pub fn remove_stale() -> Vec<String> {
    let mut removed = Vec::new();
    let Ok(dir) = std::fs::read_dir(SHM_DIR) else {
        return removed;
    };
    for e in dir.flatten() {
        let Ok(object) = e.file_name().into_string() else {
            continue;
        };
        if !object.starts_with(OBJECT_PREFIX) {
            continue;
        }
        let Ok(seg) = Segment::open(&object, false, 0) else {
            continue;
        };
        if seg.writer_alive() == Ok(false) && segment::unlink(&object).is_ok() {
            removed.push(object);
        }
    }
    removed.sort();
    removed
}
