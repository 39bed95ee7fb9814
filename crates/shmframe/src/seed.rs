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
#![allow(unsafe_code)]

use crate::error::NameError;
use crate::name::{Name, SHM_DIR};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{FlockOperation, Mode};
use rustix::io::Errno;
use rustix::shm;
use std::ffi::CString;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

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

/// What went wrong with a seed-protocol channel. Each message names the objects and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeedError {
    /// The name is invalid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The channel's objects do not exist.
    #[error("seed channel `{name}` does not exist (no {missing}): start its writer first, or wait for it (SeedReader::open_wait)")]
    NotFound {
        /// The channel.
        name: String,
        /// The missing object, e.g. `/dev/shm/NAME-meta`.
        missing: String,
    },
    /// Waiting for the channel to appear ran out of time.
    #[error("seed channel `{name}` did not appear within {waited:.1?} ({missing} is missing): is its writer running, under this name, in this IPC namespace?")]
    OpenTimeout {
        /// The channel.
        name: String,
        /// How long we waited.
        waited: Duration,
        /// The object still missing.
        missing: String,
    },
    /// No new frame arrived in time.
    #[error("no new frame on seed channel `{name}` within {waited:.1?} (last count {last}): the writer is not publishing")]
    Timeout {
        /// The channel.
        name: String,
        /// How long we waited.
        waited: Duration,
        /// The last count received (0: none yet).
        last: i64,
    },
    /// The semaphore stayed taken for too long: its holder died while holding it.
    #[error("the semaphore of seed channel `{name}` (/dev/shm/sem.{name}) has been taken for {held_for:.1?}: the writer probably died holding it (the protocol cannot tell); restart the writer (it replaces the semaphore, and this reader follows), or, if none will come back, remove the leftovers: rm /dev/shm/{name} /dev/shm/{name}-meta /dev/shm/sem.{name}")]
    SemaphoreStuck {
        /// The channel.
        name: String,
        /// How long we waited for it.
        held_for: Duration,
    },
    /// The writer removed the channel's objects.
    #[error("the writer of seed channel `{name}` closed it (its objects were removed); this reader resumes by itself if a writer starts under that name again")]
    Closed {
        /// The channel.
        name: String,
    },
    /// Another shmframe writer publishes under this name.
    #[error("seed channel `{name}` already has a live shmframe writer: stop that process or pick another name")]
    Busy {
        /// The channel.
        name: String,
    },
    /// The frame given to [`SeedWriter::write`] is invalid.
    #[error("invalid frame for seed channel `{name}`: {what}")]
    BadFrame {
        /// The channel.
        name: String,
        /// What is wrong.
        what: String,
    },
    /// The metadata object is smaller than the 32-byte struct.
    #[error("/dev/shm/{name}-meta is {size} bytes, smaller than the 32-byte metadata struct: it is not a seed channel, or it is broken; remove it and restart the writer")]
    MetaTooSmall {
        /// The channel.
        name: String,
        /// The object's size.
        size: u64,
    },
    /// The frame object is smaller than the metadata says.
    #[error("/dev/shm/{name} is {size} bytes but the metadata announces a {needed}-byte frame: the writer is broken, or another program truncated the object; restart the writer")]
    DataTooSmall {
        /// The channel.
        name: String,
        /// The object's size.
        size: u64,
        /// The frame size announced.
        needed: u64,
    },
    /// The metadata is impossible.
    #[error("seed channel `{name}` is corrupt ({what}): the writer is broken or not speaking this protocol; remove /dev/shm/{name}-meta and restart the writer")]
    Corrupt {
        /// The channel.
        name: String,
        /// What is inconsistent.
        what: String,
    },
    /// An object belongs to someone else.
    #[error("no permission to open {path}: it belongs to another user; run as that user, or remove it as that user")]
    PermissionDenied {
        /// The channel.
        name: String,
        /// The object.
        path: String,
    },
    /// The frame would not fit in /dev/shm.
    #[error("seed channel `{name}` needs {needed} bytes for its frame but {SHM_DIR} is full: use smaller frames, free /dev/shm, or give the container a larger one (docker run --shm-size=…)")]
    NoSpace {
        /// The channel.
        name: String,
        /// Bytes needed.
        needed: u64,
    },
    /// Another system call failed.
    #[error("seed channel `{name}`: {op} failed: {source}")]
    Io {
        /// The channel.
        name: String,
        /// The failing operation.
        op: &'static str,
        /// The error number.
        #[source]
        source: Errno,
    },
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

fn last_errno() -> Errno {
    Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// `(dev, ino)` of a file.
type Ident = (u64, u64);

fn ident_of_path(path: &str) -> Result<Ident, Errno> {
    let st = rustix::fs::stat(path)?;
    Ok((st.st_dev, st.st_ino))
}

/// A glibc named semaphore opened with `sem_open`.
struct NamedSem {
    sem: NonNull<libc::sem_t>,
    /// The identity of `/dev/shm/sem.NAME` we opened: a writer that restarts replaces the file.
    ident: Ident,
}

// SAFETY: a named semaphore lives in a shared mapping and its operations are thread-safe; the
// pointer is only passed to the `sem_*` functions, never dereferenced here.
unsafe impl Send for NamedSem {}

impl NamedSem {
    /// Opens the existing semaphore `names.sem`.
    fn open(names: &Names) -> Result<NamedSem, Errno> {
        let path = names.sem_path();
        for _ in 0..10 {
            let before = ident_of_path(&path)?;
            // SAFETY: `sem` is a valid NUL-terminated string that lives for the call; without
            // O_CREAT, sem_open reads no variadic argument.
            let p = unsafe { libc::sem_open(names.sem.as_ptr(), 0) };
            let sem = NonNull::new(p).ok_or_else(last_errno)?;
            // The file may have been replaced between the stat and sem_open: keep the identity
            // only if it did not change across the call.
            let s = NamedSem { sem, ident: before };
            if ident_of_path(&path)? == before {
                return Ok(s);
            }
        }
        Err(Errno::AGAIN)
    }

    /// Creates semaphore `names.sem` with value `value`, replacing any existing one (as the
    /// article's writer does: an existing one may be stuck at 0 by a dead holder).
    fn replace(names: &Names, mode: u32, value: u32) -> Result<NamedSem, Errno> {
        loop {
            // SAFETY: valid NUL-terminated string for the call.
            let _ = unsafe { libc::sem_unlink(names.sem.as_ptr()) };
            // SAFETY: as above; with O_CREAT sem_open reads two variadic arguments, a mode_t
            // (promoted to c_uint) and an unsigned int value, which we pass.
            let p = unsafe {
                libc::sem_open(
                    names.sem.as_ptr(),
                    libc::O_CREAT | libc::O_EXCL,
                    mode as libc::c_uint,
                    value as libc::c_uint,
                )
            };
            match NonNull::new(p) {
                Some(sem) => {
                    // The umask may have narrowed the mode; readers of other users need it exact.
                    let path = names.sem_path();
                    let _ = rustix::fs::chmod(path.as_str(), Mode::from_raw_mode(mode));
                    let ident = ident_of_path(&path)?;
                    return Ok(NamedSem { sem, ident });
                }
                None => match last_errno() {
                    Errno::EXIST => continue,
                    e => return Err(e),
                },
            }
        }
    }

    /// `true` if `/dev/shm/sem.NAME` is still the semaphore we opened.
    fn is_current(&self, names: &Names) -> bool {
        ident_of_path(&names.sem_path()) == Ok(self.ident)
    }

    /// Waits for the semaphore until `until` (measured on the monotonic clock). `Ok(false)` at
    /// `until`.
    fn wait_until(&self, until: Instant) -> Result<bool, Errno> {
        loop {
            // SAFETY: `sem` came from a successful sem_open and is not closed before drop.
            if unsafe { libc::sem_trywait(self.sem.as_ptr()) } == 0 {
                return Ok(true);
            }
            match last_errno() {
                Errno::AGAIN | Errno::INTR => {}
                e => return Err(e),
            }
            let now = Instant::now();
            if now >= until {
                return Ok(false);
            }
            // sem_timedwait takes a CLOCK_REALTIME deadline: wait in rounds of at most 100 ms so
            // that a jump of the wall clock cannot stretch the wait by more than one round.
            let round = (until - now).min(Duration::from_millis(100));
            let t = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
            let total = t.tv_nsec as u64 + round.subsec_nanos() as u64;
            let ts = libc::timespec {
                tv_sec: (t.tv_sec + round.as_secs() as i64 + (total / 1_000_000_000) as i64)
                    as libc::time_t,
                tv_nsec: (total % 1_000_000_000) as libc::c_long,
            };
            // SAFETY: `sem` is valid (see above); `ts` is a valid timespec living for the call.
            if unsafe { libc::sem_timedwait(self.sem.as_ptr(), &ts) } == 0 {
                return Ok(true);
            }
            match last_errno() {
                Errno::TIMEDOUT | Errno::INTR | Errno::AGAIN => {}
                e => return Err(e),
            }
        }
    }

    fn post(&self) {
        // SAFETY: `sem` is valid; we post only a semaphore we acquired.
        let _ = unsafe { libc::sem_post(self.sem.as_ptr()) };
    }
}

impl Drop for NamedSem {
    fn drop(&mut self) {
        // SAFETY: `sem` came from sem_open and is closed exactly once, here.
        let _ = unsafe { libc::sem_close(self.sem.as_ptr()) };
    }
}

/// Holds the semaphore; posts it on drop.
struct Held<'a>(&'a NamedSem);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.post();
    }
}

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

/// Publishes frames under the article's protocol.
///
/// Like the article's writer it creates (or reuses) `NAME-meta`, replaces the semaphore, creates
/// `NAME` at the first frame, and holds the semaphore while it updates both. Unlike it, it accepts
/// frames of any size: a larger frame enlarges `NAME` (under the semaphore, before writing);
/// `NAME` never shrinks, so a reader mapping the old size never faults. It writes with `pwrite`,
/// so another program truncating the objects cannot crash it with `SIGBUS`.
///
/// It holds an exclusive `flock` on `NAME-meta` while it lives, so a second shmframe writer gets
/// [`SeedError::Busy`]. The article's `write.py` takes no such lock: running it on the same name
/// at the same time is not detected.
pub struct SeedWriter {
    names: Names,
    meta: OwnedFd,
    data: Option<OwnedFd>,
    data_len: u64,
    sem: NamedSem,
    count: i64,
    mode: u32,
    recoveries: u64,
    closed: bool,
}

impl SeedWriter {
    /// Creates (or takes over) seed channel `name` with mode 0o600, as the article's writer does.
    pub fn create(name: &str) -> Result<SeedWriter, SeedError> {
        SeedWriter::create_with_mode(name, 0o600)
    }

    /// As [`SeedWriter::create`], with the permission bits of the three objects (e.g. 0o660 for
    /// readers of the same group). The umask does not narrow them.
    pub fn create_with_mode(name: &str, mode: u32) -> Result<SeedWriter, SeedError> {
        let names = Names::new(name)?;
        if mode & !0o777 != 0 || mode & 0o600 != 0o600 {
            return Err(SeedError::BadFrame {
                name: names.name.clone(),
                what: format!("mode {mode:o}: give permission bits that include owner read/write (e.g. 0o600, 0o660)"),
            });
        }
        let meta = open_meta(&names, mode)?;
        // Created at 0 and raised to 1 only once the metadata is reset, as the article does.
        let sem = NamedSem::replace(&names, mode, 0).map_err(names.io("sem_open"))?;
        // A previous writer's count and shape would be taken for a current frame.
        let reset = write_all_at(&meta, &[0; META_SIZE], 0).map_err(names.io("pwrite meta"));
        sem.post();
        reset?;
        Ok(SeedWriter {
            names,
            meta,
            data: None,
            data_len: 0,
            sem,
            count: 0,
            mode,
            recoveries: 0,
            closed: false,
        })
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.names.name
    }

    /// Frames written so far (the `count` of the last one).
    pub fn count(&self) -> i64 {
        self.count
    }

    /// How many times the semaphore was found stuck (held for more than [`SEM_STUCK_AFTER`],
    /// e.g. by a reader killed while copying) and replaced.
    pub fn stuck_recoveries(&self) -> u64 {
        self.recoveries
    }

    /// Re-creates objects that another program removed while we publish (e.g. a Python process
    /// that attached with `multiprocessing.shared_memory`, whose resource tracker unlinks what it
    /// attached to when it exits). Readers see the replaced objects and follow them.
    fn recreate_removed(&mut self) -> Result<(), SeedError> {
        let gone = |fd: &OwnedFd| rustix::fs::fstat(fd).is_ok_and(|st| st.st_nlink == 0);
        if gone(&self.meta) {
            self.meta = open_meta(&self.names, self.mode)?;
        }
        if self.data.as_ref().is_some_and(gone) {
            self.data = None;
            self.data_len = 0;
        }
        if !self.sem.is_current(&self.names) {
            self.sem =
                NamedSem::replace(&self.names, self.mode, 1).map_err(self.names.io("sem_open"))?;
        }
        Ok(())
    }

    /// Takes the semaphore; if it stays taken for [`SEM_STUCK_AFTER`], its holder died holding
    /// it: replace it (readers follow the new one) and take that.
    fn lock(&mut self) -> Result<(), SeedError> {
        let io = |e| SeedError::Io {
            name: self.names.name.clone(),
            op: "sem_timedwait",
            source: e,
        };
        if self
            .sem
            .wait_until(Instant::now() + SEM_STUCK_AFTER)
            .map_err(io)?
        {
            return Ok(());
        }
        self.recoveries += 1;
        self.sem =
            NamedSem::replace(&self.names, self.mode, 0).map_err(self.names.io("sem_open"))?;
        Ok(())
    }

    /// Publishes one H×W×C `uint8` frame (`data.len()` must be the product of `shape`) and
    /// returns its count. A frame larger than any before enlarges the frame object.
    pub fn write(&mut self, shape: [usize; 3], data: &[u8]) -> Result<i64, SeedError> {
        let bad = |what: String| SeedError::BadFrame {
            name: self.names.name.clone(),
            what,
        };
        if let Some(d) = shape.iter().find(|&&d| d == 0 || d > i32::MAX as usize) {
            return Err(bad(format!(
                "shape {shape:?} has a dimension of {d}: each must be 1 to {} (the protocol stores int32, and the article's reader cannot map an empty frame)",
                i32::MAX
            )));
        }
        let size = shape
            .iter()
            .try_fold(1usize, |p, &d| p.checked_mul(d))
            .filter(|&s| s as u64 <= MAX_FRAME_BYTES)
            .ok_or_else(|| {
                bad(format!(
                    "shape {shape:?} is larger than {MAX_FRAME_BYTES} bytes"
                ))
            })?;
        if size != data.len() {
            return Err(bad(format!(
                "shape {shape:?} needs {size} bytes, got {}",
                data.len()
            )));
        }
        self.recreate_removed()?;
        if self.data.is_none() {
            let fd = shm::open(
                self.names.data.as_str(),
                shm::OFlags::CREATE | shm::OFlags::RDWR,
                Mode::from_raw_mode(self.mode),
            )
            .map_err(self.names.io("shm_open data"))?;
            let _ = rustix::fs::fchmod(&fd, Mode::from_raw_mode(self.mode));
            self.data_len = rustix::fs::fstat(&fd)
                .map_err(self.names.io("fstat data"))?
                .st_size as u64;
            self.data = Some(fd);
        }
        self.lock()?;
        let held = Held(&self.sem);
        let names = &self.names;
        let fd = self.data.as_ref().expect("opened above");
        if (size as u64) > self.data_len {
            // Grow under the semaphore, before the metadata announces the new size. Reserve the
            // pages: on a full tmpfs a later write would fail half-way.
            rustix::fs::ftruncate(fd, size as u64).map_err(names.io("ftruncate data"))?;
            match rustix::fs::fallocate(fd, rustix::fs::FallocateFlags::empty(), 0, size as u64) {
                Ok(()) | Err(Errno::OPNOTSUPP) | Err(Errno::NOSYS) => {}
                Err(Errno::NOSPC) => {
                    return Err(SeedError::NoSpace {
                        name: names.name.clone(),
                        needed: size as u64,
                    })
                }
                Err(e) => return Err(names.io("fallocate")(e)),
            }
            self.data_len = size as u64;
        }
        let count = self.count + 1;
        let md = SeedMeta {
            shape: shape.map(|d| d as i32),
            pad: 0,
            size: size as i64,
            count,
        };
        write_all_at(&self.meta, bytemuck::bytes_of(&md), 0).map_err(names.io("pwrite meta"))?;
        write_all_at(fd, data, 0).map_err(|e| match e {
            Errno::NOSPC => SeedError::NoSpace {
                name: names.name.clone(),
                needed: size as u64,
            },
            e => names.io("pwrite data")(e),
        })?;
        drop(held);
        self.count = count;
        Ok(count)
    }

    /// Removes the channel: `NAME-meta`, `NAME` and the semaphore (the article's writer leaves the
    /// semaphore behind). Readers see [`SeedError::Closed`]. Dropping the writer does the same.
    pub fn close(mut self) -> Result<(), SeedError> {
        self.remove()
    }

    fn remove(&mut self) -> Result<(), SeedError> {
        if std::mem::replace(&mut self.closed, true) {
            return Ok(());
        }
        // Under the semaphore, like the article's writer, so no reader is half-way through a copy;
        // a stuck semaphore is no reason to leave the objects behind.
        let got = self
            .sem
            .wait_until(Instant::now() + SEM_STUCK_AFTER)
            .unwrap_or(false);
        let meta = shm::unlink(self.names.meta.as_str());
        let data = match self.data {
            Some(_) => shm::unlink(self.names.data.as_str()),
            None => Ok(()),
        };
        if got {
            self.sem.post();
        }
        // Remove the semaphore only if it is still ours.
        let sem = if self.sem.is_current(&self.names) {
            // SAFETY: valid NUL-terminated string for the call.
            match unsafe { libc::sem_unlink(self.names.sem.as_ptr()) } {
                0 => Ok(()),
                _ => Err(last_errno()),
            }
        } else {
            Ok(())
        };
        let ok = |r: Result<(), Errno>| match r {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e),
        };
        ok(meta).map_err(self.names.io("shm_unlink meta"))?;
        ok(data).map_err(self.names.io("shm_unlink data"))?;
        ok(sem).map_err(self.names.io("sem_unlink"))?;
        Ok(())
    }
}

/// Opens (creating it if needed) `NAME-meta` for writing, takes the writer's `flock` on it and
/// sizes it for the metadata struct.
fn open_meta(names: &Names, mode: u32) -> Result<OwnedFd, SeedError> {
    let meta = shm::open(
        names.meta.as_str(),
        shm::OFlags::CREATE | shm::OFlags::RDWR,
        Mode::from_raw_mode(mode),
    )
    .map_err(names.io("shm_open meta"))?;
    match rustix::fs::flock(&meta, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(Errno::WOULDBLOCK) => {
            return Err(SeedError::Busy {
                name: names.name.clone(),
            })
        }
        Err(e) => return Err(names.io("flock")(e)),
    }
    let _ = rustix::fs::fchmod(&meta, Mode::from_raw_mode(mode));
    rustix::fs::ftruncate(&meta, META_SIZE as u64).map_err(names.io("ftruncate meta"))?;
    Ok(meta)
}

impl Drop for SeedWriter {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// Receives frames published under the article's protocol (by its `write.py`, a
/// [`SeedWriter`], or anything else speaking it).
///
/// See the [module documentation](self) for what it does beyond the article's reader.
pub struct SeedReader {
    names: Names,
    att: Option<Attachment>,
    last: Option<i64>,
    blocked_since: Option<Instant>,
    stuck_after: Duration,
}

struct Attachment {
    meta: OwnedFd,
    data: Option<OwnedFd>,
    sem: NamedSem,
}

/// Why an attachment attempt did not succeed yet.
enum Absent {
    Missing(String),
    Failed(SeedError),
}

impl SeedReader {
    /// Opens seed channel `name`, which must exist (`NAME-meta` and the semaphore).
    pub fn open(name: &str) -> Result<SeedReader, SeedError> {
        let names = Names::new(name)?;
        match attach(&names) {
            Ok(att) => Ok(SeedReader::with(names, att)),
            Err(Absent::Missing(missing)) => Err(SeedError::NotFound {
                name: names.name.clone(),
                missing,
            }),
            Err(Absent::Failed(e)) => Err(e),
        }
    }

    /// Opens seed channel `name`, waiting up to `timeout` for its writer to create it. Waits on
    /// inotify events in /dev/shm (with a 50 ms fallback round), not by sleeping a second as the
    /// article's reader does.
    pub fn open_wait(name: &str, timeout: Duration) -> Result<SeedReader, SeedError> {
        let names = Names::new(name)?;
        let deadline = Instant::now().checked_add(timeout);
        let att = attach_until(&names, deadline, timeout)?;
        Ok(SeedReader::with(names, att))
    }

    fn with(names: Names, att: Attachment) -> SeedReader {
        SeedReader {
            names,
            att: Some(att),
            last: None,
            blocked_since: None,
            stuck_after: SEM_STUCK_AFTER,
        }
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.names.name
    }

    /// Changes how long the semaphore may stay taken before [`SeedError::SemaphoreStuck`]
    /// (default [`SEM_STUCK_AFTER`]).
    pub fn set_stuck_after(&mut self, d: Duration) {
        self.stuck_after = d;
    }

    /// Waits up to `timeout` (`None`: forever) for a frame whose count differs from the last one
    /// returned (the first call returns the current frame, if any) and returns a copy taken while
    /// holding the semaphore. Frames written between two calls are skipped: the protocol keeps
    /// only the latest.
    pub fn next(&mut self, timeout: Option<Duration>) -> Result<SeedFrame, SeedError> {
        let mut f = SeedFrame::default();
        self.next_into(&mut f, timeout)?;
        Ok(f)
    }

    /// As [`SeedReader::next`], reusing `frame`'s buffer.
    pub fn next_into(
        &mut self,
        frame: &mut SeedFrame,
        timeout: Option<Duration>,
    ) -> Result<(), SeedError> {
        let start = Instant::now();
        let deadline = timeout.and_then(|t| start.checked_add(t));
        let mut last_probe = start;
        let mut first = true;
        loop {
            if self.att.is_none() {
                let waited = timeout.unwrap_or(Duration::MAX);
                self.att = Some(attach_until(&self.names, deadline, waited)?);
                self.last = None;
                first = true;
            }
            let now = Instant::now();
            let probe = first || now.duration_since(last_probe) >= PROBE_INTERVAL;
            if probe {
                last_probe = now;
                self.check_replaced()?;
            }
            let att = self.att.as_ref().expect("attached above");
            let mut md = SeedMeta::default();
            let got = read_exact_at(&att.meta, bytemuck::bytes_of_mut(&mut md), 0)
                .map_err(self.names.io("pread meta"))?;
            if got < META_SIZE {
                return Err(SeedError::MetaTooSmall {
                    name: self.names.name.clone(),
                    size: got as u64,
                });
            }
            let new = md.count != 0 && Some(md.count) != self.last;
            if (new || probe) && self.try_copy(frame, deadline, start)? {
                return Ok(());
            }
            first = false;
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(SeedError::Timeout {
                    name: self.names.name.clone(),
                    waited: now - start,
                    last: self.last.unwrap_or(0),
                });
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Detaches if the writer removed `NAME-meta` (then [`SeedError::Closed`]) or replaced an
    /// object (a restarted writer: attach to the new ones).
    fn check_replaced(&mut self) -> Result<(), SeedError> {
        let Some(att) = &self.att else { return Ok(()) };
        let st = rustix::fs::fstat(&att.meta).map_err(self.names.io("fstat meta"))?;
        let here = ident_of_path(&self.names.path(&self.names.meta));
        if st.st_nlink == 0 || here != Ok((st.st_dev, st.st_ino)) {
            self.att = None;
            return match here {
                Err(Errno::NOENT) => Err(SeedError::Closed {
                    name: self.names.name.clone(),
                }),
                _ => Ok(()), // a new writer: attach to its objects on the next round
            };
        }
        if !att.sem.is_current(&self.names) {
            if let Ok(sem) = NamedSem::open(&self.names) {
                self.att.as_mut().expect("checked").sem = sem;
                self.blocked_since = None;
            }
        }
        Ok(())
    }

    /// Takes the semaphore (or reports it stuck / the deadline), copies the metadata and, if it
    /// announces a new frame, the frame. `Ok(false)`: no new frame.
    fn try_copy(
        &mut self,
        frame: &mut SeedFrame,
        deadline: Option<Instant>,
        start: Instant,
    ) -> Result<bool, SeedError> {
        let since = *self.blocked_since.get_or_insert_with(Instant::now);
        let stuck_at = since + self.stuck_after;
        let until = deadline.map_or(stuck_at, |d| d.min(stuck_at));
        let att = self.att.as_ref().expect("attached");
        let ok = att
            .sem
            .wait_until(until)
            .map_err(self.names.io("sem_timedwait"))?;
        if !ok {
            let now = Instant::now();
            if now < stuck_at {
                // The caller's deadline; keep `blocked_since` so that short timeouts add up.
                return Err(SeedError::Timeout {
                    name: self.names.name.clone(),
                    waited: now - start,
                    last: self.last.unwrap_or(0),
                });
            }
            // Stuck. A restarted writer replaces the semaphore: follow it rather than report.
            if !att.sem.is_current(&self.names) {
                if let Ok(sem) = NamedSem::open(&self.names) {
                    self.att.as_mut().expect("attached").sem = sem;
                    self.blocked_since = Some(Instant::now());
                    return self.try_copy(frame, deadline, start);
                }
            }
            self.blocked_since = None;
            return Err(SeedError::SemaphoreStuck {
                name: self.names.name.clone(),
                held_for: now - since,
            });
        }
        self.blocked_since = None;
        let att = self.att.as_mut().expect("attached");
        let held = Held(&att.sem);
        let names = &self.names;
        let mut md = SeedMeta::default();
        let got = read_exact_at(&att.meta, bytemuck::bytes_of_mut(&mut md), 0)
            .map_err(names.io("pread meta"))?;
        if got < META_SIZE {
            return Err(SeedError::MetaTooSmall {
                name: names.name.clone(),
                size: got as u64,
            });
        }
        if md.count == 0 || Some(md.count) == self.last {
            return Ok(false);
        }
        let (shape, size) = md.validate().map_err(|what| SeedError::Corrupt {
            name: names.name.clone(),
            what: format!("metadata of frame {}: {what}", md.count),
        })?;
        // The frame object: (re)open it if we have none or the writer replaced it.
        let here = ident_of_path(&names.path(&names.data));
        let current = match (&att.data, here) {
            (Some(fd), Ok(id)) => rustix::fs::fstat(fd)
                .map(|st| (st.st_dev, st.st_ino) == id)
                .unwrap_or(false),
            _ => false,
        };
        if !current {
            att.data = None;
            match shm::open(names.data.as_str(), shm::OFlags::RDONLY, Mode::empty()) {
                Ok(fd) => att.data = Some(fd),
                Err(Errno::NOENT) => {
                    return Err(SeedError::Corrupt {
                        name: names.name.clone(),
                        what: format!(
                            "the metadata announces frame {} but /dev/shm/{} does not exist",
                            md.count, names.name
                        ),
                    })
                }
                Err(e) => return Err(names.io("shm_open data")(e)),
            }
        }
        let fd = att.data.as_ref().expect("opened above");
        let have = rustix::fs::fstat(fd)
            .map_err(names.io("fstat data"))?
            .st_size as u64;
        if have < size as u64 {
            return Err(SeedError::DataTooSmall {
                name: names.name.clone(),
                size: have,
                needed: size as u64,
            });
        }
        frame.data.clear();
        frame
            .data
            .try_reserve_exact(size)
            .map_err(|_| SeedError::Corrupt {
                name: names.name.clone(),
                what: format!("cannot allocate {size} bytes for frame {}", md.count),
            })?;
        frame.data.resize(size, 0);
        let got = read_exact_at(fd, &mut frame.data, 0).map_err(names.io("pread data"))?;
        drop(held);
        if got < size {
            // Truncated by another process between fstat and pread.
            return Err(SeedError::DataTooSmall {
                name: self.names.name.clone(),
                size: got as u64,
                needed: size as u64,
            });
        }
        frame.count = md.count;
        frame.shape = shape;
        self.last = Some(md.count);
        Ok(true)
    }
}

/// Opens `NAME-meta` and the semaphore. The writer creates the metadata object first (empty until
/// it sets its size), then the semaphore.
fn attach(names: &Names) -> Result<Attachment, Absent> {
    let meta = match shm::open(names.meta.as_str(), shm::OFlags::RDONLY, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Err(Absent::Missing(names.path(&names.meta))),
        Err(e) => return Err(Absent::Failed(names.io("shm_open meta")(e))),
    };
    let size = rustix::fs::fstat(&meta)
        .map_err(|e| Absent::Failed(names.io("fstat meta")(e)))?
        .st_size as u64;
    if size == 0 {
        // Created, not yet sized by its writer.
        return Err(Absent::Missing(format!(
            "{} (empty)",
            names.path(&names.meta)
        )));
    }
    if size < META_SIZE as u64 {
        return Err(Absent::Failed(SeedError::MetaTooSmall {
            name: names.name.clone(),
            size,
        }));
    }
    let sem = match NamedSem::open(names) {
        Ok(s) => s,
        Err(Errno::NOENT) | Err(Errno::AGAIN) => return Err(Absent::Missing(names.sem_path())),
        Err(e) => return Err(Absent::Failed(names.io("sem_open")(e))),
    };
    Ok(Attachment {
        meta,
        data: None,
        sem,
    })
}

fn attach_until(
    names: &Names,
    deadline: Option<Instant>,
    waited: Duration,
) -> Result<Attachment, SeedError> {
    // Watch before the first attempt, so a creation between the attempt and the wait is seen.
    let watch = crate::wake::DirWatch::new().ok();
    loop {
        let missing = match attach(names) {
            Ok(att) => return Ok(att),
            Err(Absent::Failed(e)) => return Err(e),
            Err(Absent::Missing(m)) => m,
        };
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Err(SeedError::OpenTimeout {
                name: names.name.clone(),
                waited,
                missing,
            });
        }
        // inotify wakes us on creations; the 50 ms cap covers events it does not report (a
        // metadata object being sized by ftruncate).
        let round = now + Duration::from_millis(50);
        let until = deadline.map_or(round, |d| d.min(round));
        match &watch {
            Some(w) => {
                w.wait_until(until);
            }
            None => std::thread::sleep(until.saturating_duration_since(now)),
        }
    }
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
