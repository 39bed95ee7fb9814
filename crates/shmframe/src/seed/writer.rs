//! [`SeedWriter`]: publishes frames under the article's protocol.

use super::sem::{self, NamedSem};
use super::{
    write_all_at, Names, SeedError, SeedMeta, MAX_FRAME_BYTES, META_SIZE, SEM_STUCK_AFTER,
};
use rustix::fd::OwnedFd;
use rustix::fs::{FlockOperation, Mode};
use rustix::io::Errno;
use rustix::shm;
use std::time::Instant;

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

    /// Publishes one H×W×C `uint8` frame (`data.len()` must be the product of `shape`) and
    /// returns its count. A frame larger than any before enlarges the frame object.
    pub fn write(&mut self, shape: [usize; 3], data: &[u8]) -> Result<i64, SeedError> {
        let size = self.frame_size(shape, data)?;
        self.recreate_removed()?;
        self.open_data()?;
        self.lock()?;
        let _held = self.sem.held();
        let names = &self.names;
        let fd = self.data.as_ref().expect("opened by open_data");
        if (size as u64) > self.data_len {
            grow(names, fd, size as u64)?;
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
        self.count = count;
        Ok(count)
    }

    /// Checks a frame given to [`SeedWriter::write`]; returns its size in bytes.
    fn frame_size(&self, shape: [usize; 3], data: &[u8]) -> Result<usize, SeedError> {
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
        Ok(size)
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

    /// Opens (creating it) the frame object `NAME` if we have none yet, and learns its size.
    fn open_data(&mut self) -> Result<(), SeedError> {
        if self.data.is_some() {
            return Ok(());
        }
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
            sem::unlink(&self.names)
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

impl Drop for SeedWriter {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// Enlarges the frame object to `size` bytes, under the semaphore and before the metadata
/// announces the new size. Reserves the pages: on a full tmpfs a later write would fail half-way.
fn grow(names: &Names, fd: &OwnedFd, size: u64) -> Result<(), SeedError> {
    rustix::fs::ftruncate(fd, size).map_err(names.io("ftruncate data"))?;
    match rustix::fs::fallocate(fd, rustix::fs::FallocateFlags::empty(), 0, size) {
        Ok(()) | Err(Errno::OPNOTSUPP) | Err(Errno::NOSYS) => Ok(()),
        Err(Errno::NOSPC) => Err(SeedError::NoSpace {
            name: names.name.clone(),
            needed: size,
        }),
        Err(e) => Err(names.io("fallocate")(e)),
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
