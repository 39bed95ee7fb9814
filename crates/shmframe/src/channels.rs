//! Listing, inspecting and removing channels (what `shmframe ls/info/rm` show).

use crate::clock::monotonic_ns;
use crate::error::{Errno, OpenError, RemoveError};
use crate::frame::{DType, Schema};
use crate::layout::{
    off, HeaderFixed, HEADER_REGION, LAYOUT_VERSION, MAGIC, STATE_CLOSED, STATE_OPEN,
};
pub use crate::mapped::non_regular;
use crate::mapped::Channel;
use crate::name::{Name, OBJECT_PREFIX, PINS_PREFIX, SHM_DIR};
use crate::ring;
use crate::segment::{self, Segment};
use std::path::Path;
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
    /// The socket a socket-served channel was reached through (`None`: named in /dev/shm).
    pub socket: Option<String>,
}

/// A `/dev/shm` entry with our prefix that is not a usable channel.
#[derive(Clone, Debug)]
pub struct BrokenChannel {
    /// The entry's file name in /dev/shm (escaped: see [`list`]).
    pub object: String,
    /// Why it is not usable.
    pub error: String,
}

fn status(ch: &Channel) -> ChannelStatus {
    let seg = &ch.seg;
    let (uid, mode, bytes) = seg.stat().unwrap_or((u32::MAX, 0, seg.len() as u64));
    let newest = ring::newest_after(ch.stamps(), None);
    let newest = newest.and_then(|(slot, index)| Some((index, ch.read_desc(slot).ok()?)));
    // The header's copy of the publish time lags by up to a millisecond; the newest slot's is
    // exact.
    let last_ts = newest.as_ref().map_or_else(
        || seg.atomic_u64(off::LAST_TIMESTAMP).load(Ordering::Relaxed),
        |(_, d)| d.timestamp_ns,
    );
    let last_frame = newest.map(|(index, d)| (index, d.dtype, d.shape.as_slice().to_vec()));
    let now = monotonic_ns();
    ChannelStatus {
        name: ch.name.to_string(),
        bytes,
        uid,
        mode,
        writer_pid: ch.hf.writer_pid,
        writer_alive: ch.writer_alive(),
        state: match ch.state() {
            STATE_OPEN => "open",
            STATE_CLOSED => "closed",
            _ => "superseded",
        },
        version: LAYOUT_VERSION,
        slots: ch.geom.slot_count,
        slot_capacity: ch.geom.slot_capacity,
        schema: ch.schema.as_deref().cloned(),
        frames: ch.head().load(Ordering::Acquire),
        last_frame,
        fps: seg.atomic_u32(off::FPS_MILLI).load(Ordering::Relaxed) as f64 / 1000.0,
        age_s: (last_ts != 0).then(|| now.saturating_sub(last_ts) as f64 / 1e9),
        generation: ch.generation,
        slot_frames: ch.stamps().map(ring::stable_index).collect(),
        socket: ch.link.as_ref().map(|l| l.path().display().to_string()),
    }
}

/// Describes channel `name`. An entry of that name that is not a regular file (a FIFO, a
/// directory, a link…) is refused without being opened, as [`OpenError::NotAFile`].
pub fn inspect(name: &str) -> Result<ChannelStatus, OpenError> {
    let name = Name::new(name)?;
    if let Ok(md) = std::fs::symlink_metadata(name.file_path()) {
        if let Some(kind) = non_regular(md.file_type()) {
            return Err(OpenError::NotAFile {
                path: name.file_path().display().to_string(),
                kind,
            });
        }
    }
    let ch = Channel::open(&name, false)?;
    Ok(status(&ch))
}

/// Describes the channel served on the socket at `path` (connecting as a reader would, without
/// attaching to it).
pub fn inspect_socket(path: impl AsRef<Path>) -> Result<ChannelStatus, OpenError> {
    Ok(status(&Channel::connect(path.as_ref())?))
}

/// Every channel in /dev/shm, and the entries with our prefix that are not usable channels.
///
/// Each entry is examined with `lstat` first: directories, FIFOs, sockets, devices and symbolic
/// links are reported as such and never opened. A name that is not UTF-8 is shown escaped
/// (`\xHH`); [`remove`] accepts the escaped form.
pub fn list() -> (Vec<ChannelStatus>, Vec<BrokenChannel>) {
    use std::os::unix::ffi::OsStrExt;
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for raw in prefixed_entries() {
        let object = escape(raw.as_bytes());
        let error = match std::fs::symlink_metadata(Path::new(SHM_DIR).join(&raw)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // removed meanwhile
            Err(e) => format!("cannot examine it: {e}"),
            Ok(md) => match (non_regular(md.file_type()), raw.to_str()) {
                (Some(kind), _) => format!(
                    "{kind}, not a shared-memory object: another program owns this name (not opened)"
                ),
                (None, None) => "its name is not UTF-8, so it is not a shmframe channel (channel \
                                 names are ASCII): another program owns it"
                    .into(),
                (None, Some(name)) => match Name::from_object_name(name) {
                    Some(name) => match Channel::open(&name, false) {
                        Ok(ch) => {
                            good.push(status(&ch));
                            continue;
                        }
                        Err(e) => e.to_string(),
                    },
                    None if is_temp_object(name) => "temporary object of a writer that is \
                                                     creating (or died creating) a channel"
                        .into(),
                    None => "not a valid channel name, so shmframe did not create it: another \
                             program owns it"
                        .into(),
                },
            },
        };
        bad.push(BrokenChannel { object, error });
    }
    (good, bad)
}

/// Removes channel `name` from /dev/shm. Processes that have it open keep their mapping; a live
/// writer goes on publishing to readers already attached, but nobody new can attach.
///
/// `name` may also be an entry as [`list`] shows it in [`BrokenChannel::object`] (optionally
/// with `/dev/shm/` in front), for objects whose names are no channel names: not UTF-8
/// (escaped), reserved, or with other characters. Directories are not removed.
pub fn remove(name: &str) -> Result<(), RemoveError> {
    let name = match Name::new(name) {
        Ok(n) => n,
        Err(e) => return remove_shown(name).unwrap_or(Err(e.into())),
    };
    segment::unlink(&name.object_name()).map_err(|e| remove_err(name.as_str(), e))?;
    remove_pin_tables(name.as_str());
    Ok(())
}

fn remove_err(name: &str, e: Errno) -> RemoveError {
    let name = name.to_string();
    match e {
        Errno::NOENT => RemoveError::NotFound { name },
        Errno::ACCESS | Errno::PERM => RemoveError::PermissionDenied { name },
        e => RemoveError::Io { name, source: e },
    }
}

/// Removes the entry of /dev/shm that [`list`] shows as `shown`; `None` if there is none.
fn remove_shown(shown: &str) -> Option<Result<(), RemoveError>> {
    use std::os::unix::ffi::OsStrExt;
    let shown = shown
        .strip_prefix(SHM_DIR)
        .and_then(|s| s.strip_prefix('/'))
        .unwrap_or(shown);
    if !shown.starts_with(OBJECT_PREFIX) {
        return None;
    }
    let raw = prefixed_entries()
        .into_iter()
        .find(|raw| escape(raw.as_bytes()) == shown)?;
    let path = Path::new(SHM_DIR).join(raw);
    let errno = |e: std::io::Error| Errno::from_raw_os_error(e.raw_os_error().unwrap_or(0));
    Some(match std::fs::symlink_metadata(&path) {
        Ok(md) if md.is_dir() => Err(remove_err(shown, Errno::ISDIR)),
        // A link itself is removed, never what it points to.
        Ok(_) => std::fs::remove_file(&path).map_err(|e| remove_err(shown, errno(e))),
        Err(e) => Err(remove_err(shown, errno(e))),
    })
}

/// Removes every channel whose writer is gone (it died, or closed with `keep`), including
/// temporary objects of writers that died while creating a channel. Returns the object names
/// removed.
///
/// Only objects proven to be ours are removed: a regular file (never a link, FIFO or directory)
/// under a channel's or a temporary object's name, that starts with the channel magic and a
/// layout version this library knows (or, for a temporary object, is still all zeros: its writer
/// died before writing the header), and whose writer lock nobody holds. Anything else under our
/// prefix (another program's object, a random file, another user's channel we may not open) is
/// left alone; `list` reports it.
///
/// The pin tables (`shmframe-pins.NAME.LINEAGE`) of the channels removed go with them, and so do
/// pin tables older than a few seconds whose channel is gone.
pub fn remove_stale() -> Vec<String> {
    let mut removed: Vec<String> = prefixed_entries()
        .into_iter()
        .filter_map(|raw| raw.into_string().ok())
        .filter_map(|object| {
            let lineage = provably_stale(&object)?;
            segment::unlink(&object).ok()?;
            if let (Some(name), Some(lineage)) = (Name::from_object_name(&object), lineage) {
                let pins = name.pins_object_name(lineage);
                if segment::unlink(&pins).is_ok() {
                    return Some(vec![object, pins]);
                }
            }
            Some(vec![object])
        })
        .flatten()
        .collect();
    removed.extend(remove_orphan_pin_tables());
    removed
}

/// See [`remove_stale`]: `Some(the channel's lineage, if it has a header)` if `object` is ours
/// and dead.
fn provably_stale(object: &str) -> Option<Option<u64>> {
    provably_dead(object).then(|| {
        Segment::open(object, false, HEADER_REGION)
            .ok()
            .filter(|s| s.len() as u64 >= HEADER_REGION)
            .map(|s| s.read::<HeaderFixed>(0).lineage)
    })
}

/// See [`remove_stale`].
fn provably_dead(object: &str) -> bool {
    use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
    let temp = is_temp_object(object);
    if !temp && Name::from_object_name(object).is_none() {
        return false;
    }
    let path = Path::new(SHM_DIR).join(object);
    let Ok(md) = std::fs::symlink_metadata(&path) else {
        return false;
    };
    if !md.is_file() {
        return false;
    }
    // Read the header through a descriptor that neither follows a link nor waits on a FIFO put
    // there since the check above, and make sure it is the file just examined.
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
    else {
        return false;
    };
    let same = |m: &std::fs::Metadata| (m.dev(), m.ino()) == (md.dev(), md.ino());
    match file.metadata() {
        Ok(m) if m.is_file() && same(&m) => {}
        _ => return false,
    }
    let mut head = vec![0u8; md.len().min(HEADER_REGION) as usize];
    if file.read_exact_at(&mut head, 0).is_err() {
        return false;
    }
    let version_at = off::VERSION..off::VERSION + 4;
    let ours = match (head.get(..MAGIC.len()), head.get(version_at)) {
        (Some(magic), Some(v)) if magic == MAGIC => {
            // Other versions keep their writers' liveness in ways this library cannot test.
            u32::from_ne_bytes(v.try_into().expect("4 bytes")) == LAYOUT_VERSION
        }
        _ => temp && head.iter().all(|&b| b == 0),
    };
    if !ours {
        return false;
    }
    let Ok(seg) = Segment::open(object, false, HEADER_REGION) else {
        return false;
    };
    if seg.writer_alive() != Ok(false) {
        return false;
    }
    // Still the same object under the name (a new writer may have taken it over meanwhile).
    std::fs::symlink_metadata(&path).is_ok_and(|m| same(&m))
}

/// A file name as `list` shows it: valid UTF-8 as is, except `\` (written `\\`), control
/// characters and bytes that are not UTF-8 (written `\xHH`). The escapes are unambiguous, so
/// [`remove`] accepts the shown form back.
fn escape(name: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(name.len());
    let hex = |out: &mut String, bytes: &[u8]| {
        for b in bytes {
            let _ = write!(out, "\\x{b:02x}");
        }
    };
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else if c.is_control() {
                hex(&mut out, c.encode_utf8(&mut [0; 4]).as_bytes());
            } else {
                out.push(c);
            }
        }
        hex(&mut out, chunk.invalid());
    }
    out
}

/// `true` for the name of a writer's temporary object (`shmframe.NAME.tmp-PID-N`), which holds a
/// channel while its writer initialises it.
fn is_temp_object(object: &str) -> bool {
    let Some((base, suffix)) = object.rsplit_once(".tmp-") else {
        return false;
    };
    Name::from_object_name(base).is_some()
        && !suffix.is_empty()
        && suffix.bytes().all(|b| b.is_ascii_digit() || b == b'-')
}

/// The entries of /dev/shm whose names start with our prefix, sorted by name.
fn prefixed_entries() -> Vec<std::ffi::OsString> {
    use std::os::unix::ffi::OsStrExt;
    let Ok(dir) = std::fs::read_dir(SHM_DIR) else {
        return Vec::new();
    };
    let mut names: Vec<_> = dir
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.as_bytes().starts_with(OBJECT_PREFIX.as_bytes()))
        .collect();
    names.sort();
    names
}

/// The pin tables in /dev/shm: (object name, channel name, lineage).
fn pin_tables() -> Vec<(String, String, u64)> {
    let Ok(dir) = std::fs::read_dir(SHM_DIR) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let object = e.file_name().into_string().ok()?;
            let rest = object.strip_prefix(PINS_PREFIX)?;
            let (name, lineage) = rest.rsplit_once('.')?;
            let lineage = u64::from_str_radix(lineage, 16).ok()?;
            Some((object.clone(), name.to_string(), lineage))
        })
        .collect()
}

/// Removes the pin tables of channel `name` (after its object was removed).
fn remove_pin_tables(name: &str) {
    for (object, n, _) in pin_tables() {
        if n == name {
            let _ = segment::unlink(&object);
        }
    }
}

/// Removes pin tables whose channel is gone (its writer was killed, then the channel removed or
/// taken over): no object under the channel's name carries their lineage. Tables younger than a
/// few seconds are left alone, since a writer creates its table just before its channel.
fn remove_orphan_pin_tables() -> Vec<String> {
    let mut removed = Vec::new();
    for (object, name, lineage) in pin_tables() {
        let path = Path::new(SHM_DIR).join(&object);
        let young = std::fs::symlink_metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age < std::time::Duration::from_secs(10));
        if young {
            continue;
        }
        let owner = Segment::open(&format!("{OBJECT_PREFIX}{name}"), false, HEADER_REGION)
            .ok()
            .filter(|s| s.len() as u64 >= HEADER_REGION && s.read::<[u8; 8]>(0) == MAGIC)
            .map(|s| s.read::<HeaderFixed>(0).lineage);
        if owner != Some(lineage) && segment::unlink(&object).is_ok() {
            removed.push(object);
        }
    }
    removed
}
