//! The article's protocol ("seed protocol"): interoperate with the `write.py`/`read.py` pair that
//! shares OpenCV frames through `posix_ipc`.
//!
//! A channel `NAME` of this protocol is three POSIX objects, with no prefix on their names:
//!
//! | object | file | content |
//! |---|---|---|
//! | shared memory `NAME-meta` | `/dev/shm/NAME-meta` | the 32-byte [`SeedMeta`] struct (ctypes `MD`) |
//! | shared memory `NAME` | `/dev/shm/NAME` | the current frame, H×W×C `uint8`, row-major |
//! | named semaphore `NAME` | `/dev/shm/sem.NAME` | glibc `sem_t`; 1 = free, 0 = someone updates or reads |
//!
//! There is one frame, not a ring, and nothing wakes a reader: readers poll `count`.
//!
//! [`SeedWriter`] publishes exactly as the article's writer does, and also handles a frame of
//! another size (it enlarges `NAME` under the semaphore and never shrinks it), a stuck semaphore
//! (after [`SEM_STUCK_AFTER`] it replaces it, as the article's writer does at start), and a second
//! shmframe writer on the same name ([`SeedError::Busy`] instead of truncating the object under
//! the first one).
//!
//! [`SeedReader`] copies the metadata and the frame while holding the semaphore, so it never
//! returns a torn frame; polls `count` every [`POLL_INTERVAL`] (the protocol has no wake-up);
//! reports a semaphore held for longer than [`SEM_STUCK_AFTER`] as [`SeedError::SemaphoreStuck`]
//! instead of hanging; follows size changes and restarted writers; and validates everything it
//! reads. It reads with `pread` rather than through a mapping, so an object truncated by another
//! process yields an error, never `SIGBUS`.
//!
//! ```
//! use std::time::Duration;
//! use shmframe::seed::{SeedReader, SeedWriter};
//! # let name = format!("doc-seed-{}", std::process::id());
//! let mut w = SeedWriter::create(&name)?;
//! w.write([2, 2, 3], &[7; 12])?;
//! let mut r = SeedReader::open_wait(&name, Duration::from_secs(1))?;
//! let f = r.next(Some(Duration::from_secs(1)))?;
//! assert_eq!((f.count, f.shape, f.data[0]), (1, [2, 2, 3], 7));
//! w.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The code is split by role: [`SeedWriter`] in `writer.rs`, [`SeedReader`] in `reader.rs`,
//! [`SeedError`] in `error.rs`, and the named semaphore in `sem.rs`, which holds all of this
//! protocol's FFI and `unsafe` code.

mod error;
mod reader;
mod sem;
mod writer;

pub use error::SeedError;
pub use reader::SeedReader;
pub use writer::SeedWriter;

use crate::error::NameError;
use crate::name::{Name, SHM_DIR};
use rustix::fd::AsFd;
use rustix::io::Errno;
use std::ffi::CString;
use std::time::Duration;

/// A semaphore held for longer than this is considered stuck: its holder died while holding it
/// (the protocol has no other way to say so). Copying even a 4K frame takes milliseconds.
pub const SEM_STUCK_AFTER: Duration = Duration::from_secs(2);

/// How long [`SeedReader::next`] sleeps between two looks at `count`. The protocol has no
/// wake-up, so readers poll; a look is one 32-byte `pread`, without the semaphore.
pub const POLL_INTERVAL: Duration = Duration::from_micros(500);

/// How often a waiting reader takes the semaphore even though `count` did not change (to notice
/// a stuck semaphore) and checks whether the writer removed or replaced the objects.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// Largest frame accepted from the metadata (4 GiB); a larger `size` is reported as corrupt
/// rather than allocated.
pub const MAX_FRAME_BYTES: u64 = 1 << 32;

/// Size of the metadata struct.
pub const META_SIZE: usize = 32;

/// The article's `MD` ctypes struct as it lies in `NAME-meta`: native byte order, C layout.
///
/// | offset | type | field |
/// |---|---|---|
/// | 0 | i32 | `shape_0` (height) |
/// | 4 | i32 | `shape_1` (width) |
/// | 8 | i32 | `shape_2` (channels) |
/// | 12 | 4 bytes | padding (ctypes aligns the next i64) |
/// | 16 | i64 | `size` (bytes of the frame) |
/// | 24 | i64 | `count` (frames written, the first is 1) |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct SeedMeta {
    /// `shape_0`, `shape_1`, `shape_2`: height, width, channels.
    pub shape: [i32; 3],
    /// Padding, written as zero.
    pub pad: u32,
    /// Bytes of the frame (`shape_0 * shape_1 * shape_2`).
    pub size: i64,
    /// Frames written so far; 0 before the first one.
    pub count: i64,
}

const _: () = assert!(std::mem::size_of::<SeedMeta>() == META_SIZE);
const _: () = assert!(std::mem::offset_of!(SeedMeta, size) == 16);
const _: () = assert!(std::mem::offset_of!(SeedMeta, count) == 24);

impl SeedMeta {
    /// Checks the metadata of a published frame: no negative value, `size` equal to the
    /// product of the shape, at most [`MAX_FRAME_BYTES`]. Returns the shape and size.
    pub fn validate(&self) -> Result<([usize; 3], usize), String> {
        if self.shape.iter().any(|&d| d < 0) {
            return Err(format!("negative shape {:?}", self.shape));
        }
        if self.size < 0 {
            return Err(format!("negative size {}", self.size));
        }
        let product = self
            .shape
            .iter()
            .try_fold(1u64, |p, &d| p.checked_mul(d as u64));
        if product != Some(self.size as u64) {
            return Err(format!(
                "size {} is not the product of shape {:?}",
                self.size, self.shape
            ));
        }
        if self.size as u64 > MAX_FRAME_BYTES {
            return Err(format!(
                "size {} exceeds the {MAX_FRAME_BYTES}-byte limit",
                self.size
            ));
        }
        let s = self.shape.map(|d| d as usize);
        Ok((s, self.size as usize))
    }
}

/// A frame received by [`SeedReader`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeedFrame {
    /// The writer's frame counter (`count` in the metadata; the first frame is 1).
    pub count: i64,
    /// Height, width, channels.
    pub shape: [usize; 3],
    /// `shape[0] * shape[1] * shape[2]` bytes, row-major, `uint8`.
    pub data: Vec<u8>,
}

/// The three objects of channel `name`.
struct Names {
    name: String,
    meta: String,
    data: String,
    sem: CString,
}

impl Names {
    fn new(name: &str) -> Result<Names, SeedError> {
        let n = Name::new(name)?;
        let name = n.as_str().to_owned();
        Ok(Names {
            meta: format!("/{name}-meta"),
            data: format!("/{name}"),
            sem: CString::new(format!("/{name}")).map_err(|_| NameError::Empty)?,
            name,
        })
    }

    fn sem_path(&self) -> String {
        format!("{SHM_DIR}/sem.{}", self.name)
    }

    fn path(&self, object: &str) -> String {
        format!("{SHM_DIR}{object}")
    }

    fn io(&self, op: &'static str) -> impl Fn(Errno) -> SeedError + '_ {
        move |source| match source {
            Errno::ACCESS | Errno::PERM => SeedError::PermissionDenied {
                name: self.name.clone(),
                path: match op {
                    "sem_open" => self.sem_path(),
                    "shm_open data" => self.path(&self.data),
                    _ => self.path(&self.meta),
                },
            },
            source => SeedError::Io {
                name: self.name.clone(),
                op,
                source,
            },
        }
    }
}

/// `(dev, ino)` of a file.
type Ident = (u64, u64);

/// The identity of the file at `path`: tells a replaced object from the one we opened.
fn ident_of_path(path: &str) -> Result<Ident, Errno> {
    let st = rustix::fs::stat(path)?;
    Ok((st.st_dev, st.st_ino))
}

/// Reads `buf.len()` bytes at `offset`, or fewer at the end of the file; returns how many.
fn read_exact_at(fd: impl AsFd, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pread(&fd, &mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Writes all of `buf` at `offset`.
fn write_all_at(fd: impl AsFd, buf: &[u8], offset: u64) -> Result<(), Errno> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pwrite(&fd, &buf[done..], offset + done as u64) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => done += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_layout_matches_the_ctypes_struct() {
        let md = SeedMeta {
            shape: [480, 640, 3],
            pad: 0,
            size: 921_600,
            count: 5,
        };
        let b = bytemuck::bytes_of(&md);
        assert_eq!(&b[0..4], &480i32.to_ne_bytes());
        assert_eq!(&b[8..12], &3i32.to_ne_bytes());
        assert_eq!(&b[16..24], &921_600i64.to_ne_bytes());
        assert_eq!(&b[24..32], &5i64.to_ne_bytes());
        assert_eq!(md.validate(), Ok(([480, 640, 3], 921_600)));
    }

    #[test]
    fn impossible_metadata_is_rejected() {
        let m = |shape: [i32; 3], size: i64| SeedMeta {
            shape,
            pad: 0,
            size,
            count: 1,
        };
        for (md, what) in [
            (m([-1, 2, 3], 6), "negative shape"),
            (m([1, 2, 3], -6), "negative size"),
            (m([2, 2, 3], 13), "not the product"),
            (
                m([i32::MAX, i32::MAX, i32::MAX], i64::MAX),
                "not the product",
            ),
            (m([65536, 65536, 3], 65536 * 65536 * 3), "exceeds"),
        ] {
            let e = md.validate().unwrap_err();
            assert!(e.contains(what), "{md:?}: {e}");
        }
    }
}
