//! [`SeedReader`]: receives frames published under the article's protocol.
//!
//! One [`SeedReader::next_into`] call is a polling loop: attach if needed, now and then check
//! that the writer has not removed or replaced the objects, and when `count` changes (or at such
//! a check) take the semaphore and copy the frame (`try_copy`).

use super::sem::NamedSem;
use super::{
    ident_of_path, read_exact_at, Names, SeedError, SeedFrame, SeedMeta, META_SIZE, POLL_INTERVAL,
    PROBE_INTERVAL, SEM_STUCK_AFTER,
};
use rustix::fd::OwnedFd;
use rustix::fs::Mode;
use rustix::io::Errno;
use rustix::shm;
use std::time::{Duration, Instant};

/// Receives frames published under the article's protocol (by its `write.py`, a
/// [`SeedWriter`](super::SeedWriter), or anything else speaking it).
///
/// See the [module documentation](super) for what it does beyond the article's reader.
pub struct SeedReader {
    names: Names,
    att: Option<Attachment>,
    last: Option<i64>,
    blocked_since: Option<Instant>,
    stuck_after: Duration,
}

/// The objects of the writer we are attached to.
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

/// The time budget of one [`SeedReader::next_into`] call.
struct Budget {
    start: Instant,
    deadline: Option<Instant>,
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
        let budget = Budget {
            start,
            deadline: timeout.and_then(|t| start.checked_add(t)),
        };
        // When the objects were last checked (`None`: at once, e.g. right after attaching).
        let mut probed: Option<Instant> = None;
        loop {
            if self.att.is_none() {
                let waited = timeout.unwrap_or(Duration::MAX);
                self.att = Some(attach_until(&self.names, budget.deadline, waited)?);
                self.last = None;
                probed = None;
            }
            let probe = probed.is_none_or(|t| t.elapsed() >= PROBE_INTERVAL);
            if probe {
                probed = Some(Instant::now());
                if !self.check_replaced()? {
                    continue; // a new writer: attach to its objects
                }
            }
            if (self.count_changed()? || probe) && self.try_copy(frame, &budget)? {
                return Ok(());
            }
            if budget.deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(self.timeout(&budget));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// `true` if the metadata announces a frame other than the last one returned (read without
    /// the semaphore: a hint, the copy reads it again under the semaphore).
    fn count_changed(&self) -> Result<bool, SeedError> {
        let att = self.att.as_ref().expect("attached");
        let md = read_meta(&self.names, &att.meta)?;
        Ok(md.count != 0 && Some(md.count) != self.last)
    }

    /// [`SeedError::Timeout`] for this call.
    fn timeout(&self, budget: &Budget) -> SeedError {
        SeedError::Timeout {
            name: self.names.name.clone(),
            waited: budget.start.elapsed(),
            last: self.last.unwrap_or(0),
        }
    }

    /// Checks the objects we are attached to. `Ok(false)`: the writer replaced `NAME-meta` (a
    /// restarted writer), so we detached to attach to the new objects. [`SeedError::Closed`]:
    /// the writer removed it. A replaced semaphore alone is followed in place.
    fn check_replaced(&mut self) -> Result<bool, SeedError> {
        let att = self.att.as_ref().expect("attached");
        let st = rustix::fs::fstat(&att.meta).map_err(self.names.io("fstat meta"))?;
        let here = ident_of_path(&self.names.path(&self.names.meta));
        if st.st_nlink == 0 || here != Ok((st.st_dev, st.st_ino)) {
            self.att = None;
            return match here {
                Err(Errno::NOENT) => Err(SeedError::Closed {
                    name: self.names.name.clone(),
                }),
                _ => Ok(false),
            };
        }
        if self.follow_new_semaphore() {
            self.blocked_since = None;
        }
        Ok(true)
    }

    /// If a restarted writer replaced the semaphore, opens the new one in place of ours; `true`
    /// if it did.
    fn follow_new_semaphore(&mut self) -> bool {
        let att = self.att.as_mut().expect("attached");
        if att.sem.is_current(&self.names) {
            return false;
        }
        match NamedSem::open(&self.names) {
            Ok(sem) => {
                att.sem = sem;
                true
            }
            Err(_) => false,
        }
    }

    /// Takes the semaphore and, if the metadata announces a new frame, copies it into `frame`.
    /// `Ok(false)`: no new frame.
    fn try_copy(&mut self, frame: &mut SeedFrame, budget: &Budget) -> Result<bool, SeedError> {
        self.acquire(budget)?;
        let att = self.att.as_mut().expect("attached");
        let _held = att.sem.held();
        let copied = copy_frame(&self.names, &att.meta, &mut att.data, self.last, frame)?;
        if copied {
            self.last = Some(frame.count);
        }
        Ok(copied)
    }

    /// Waits for the semaphore until the call's deadline ([`SeedError::Timeout`]) or until it
    /// has been taken for `stuck_after` in all ([`SeedError::SemaphoreStuck`]; short timeouts add
    /// up). A semaphore that a restarted writer replaced meanwhile is followed, with a new clock.
    fn acquire(&mut self, budget: &Budget) -> Result<(), SeedError> {
        loop {
            let since = *self.blocked_since.get_or_insert_with(Instant::now);
            let stuck_at = since + self.stuck_after;
            let until = budget.deadline.map_or(stuck_at, |d| d.min(stuck_at));
            let att = self.att.as_ref().expect("attached");
            let taken = att
                .sem
                .wait_until(until)
                .map_err(self.names.io("sem_timedwait"))?;
            if taken {
                self.blocked_since = None;
                return Ok(());
            }
            let now = Instant::now();
            if now < stuck_at {
                // The caller's deadline; keep `blocked_since` so that short timeouts add up.
                return Err(self.timeout(budget));
            }
            if !self.follow_new_semaphore() {
                self.blocked_since = None;
                return Err(SeedError::SemaphoreStuck {
                    name: self.names.name.clone(),
                    held_for: now - since,
                });
            }
            self.blocked_since = Some(Instant::now());
        }
    }
}

/// Reads the metadata struct from `NAME-meta`.
fn read_meta(names: &Names, meta: &OwnedFd) -> Result<SeedMeta, SeedError> {
    let mut md = SeedMeta::default();
    let got =
        read_exact_at(meta, bytemuck::bytes_of_mut(&mut md), 0).map_err(names.io("pread meta"))?;
    if got < META_SIZE {
        return Err(SeedError::MetaTooSmall {
            name: names.name.clone(),
            size: got as u64,
        });
    }
    Ok(md)
}

/// With the semaphore held: copies the frame the metadata announces into `frame`, unless there is
/// none yet or it is the one last returned (`Ok(false)`).
fn copy_frame(
    names: &Names,
    meta: &OwnedFd,
    data: &mut Option<OwnedFd>,
    last: Option<i64>,
    frame: &mut SeedFrame,
) -> Result<bool, SeedError> {
    let md = read_meta(names, meta)?;
    if md.count == 0 || Some(md.count) == last {
        return Ok(false);
    }
    let (shape, size) = md.validate().map_err(|what| SeedError::Corrupt {
        name: names.name.clone(),
        what: format!("metadata of frame {}: {what}", md.count),
    })?;
    let fd = data_object(names, data, md.count)?;
    read_frame(names, fd, size, md.count, &mut frame.data)?;
    frame.count = md.count;
    frame.shape = shape;
    Ok(true)
}

/// The frame object `NAME`, (re)opened if we have none or the writer replaced it. `count` is the
/// frame the metadata announces (for the error if the object is missing).
fn data_object<'a>(
    names: &Names,
    data: &'a mut Option<OwnedFd>,
    count: i64,
) -> Result<&'a OwnedFd, SeedError> {
    let here = ident_of_path(&names.path(&names.data));
    let current = match (&*data, here) {
        (Some(fd), Ok(id)) => rustix::fs::fstat(fd)
            .map(|st| (st.st_dev, st.st_ino) == id)
            .unwrap_or(false),
        _ => false,
    };
    if !current {
        *data = None;
        match shm::open(names.data.as_str(), shm::OFlags::RDONLY, Mode::empty()) {
            Ok(fd) => *data = Some(fd),
            Err(Errno::NOENT) => {
                return Err(SeedError::Corrupt {
                    name: names.name.clone(),
                    what: format!(
                        "the metadata announces frame {count} but /dev/shm/{} does not exist",
                        names.name
                    ),
                })
            }
            Err(e) => return Err(names.io("shm_open data")(e)),
        }
    }
    Ok(data.as_ref().expect("opened above"))
}

/// Copies the first `size` bytes of the frame object into `buf` (frame `count`), which must be
/// that large: [`SeedError::DataTooSmall`] otherwise, also if another process truncates it
/// between the size check and the copy.
fn read_frame(
    names: &Names,
    fd: &OwnedFd,
    size: usize,
    count: i64,
    buf: &mut Vec<u8>,
) -> Result<(), SeedError> {
    let too_small = |have: u64| SeedError::DataTooSmall {
        name: names.name.clone(),
        size: have,
        needed: size as u64,
    };
    let have = rustix::fs::fstat(fd)
        .map_err(names.io("fstat data"))?
        .st_size as u64;
    if have < size as u64 {
        return Err(too_small(have));
    }
    buf.clear();
    buf.try_reserve_exact(size)
        .map_err(|_| SeedError::Corrupt {
            name: names.name.clone(),
            what: format!("cannot allocate {size} bytes for frame {count}"),
        })?;
    buf.resize(size, 0);
    let got = read_exact_at(fd, buf, 0).map_err(names.io("pread data"))?;
    if got < size {
        return Err(too_small(got as u64));
    }
    Ok(())
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

/// Attaches, waiting until `deadline` (`None`: forever) for the objects to appear;
/// [`SeedError::OpenTimeout`] says it `waited` and what is missing.
fn attach_until(
    names: &Names,
    deadline: Option<Instant>,
    waited: Duration,
) -> Result<Attachment, SeedError> {
    let mut missing = String::new();
    // inotify wakes the wait on creations; 50 ms rounds cover what it does not report (a
    // metadata object being sized by ftruncate).
    let round = Duration::from_millis(50);
    let attached = crate::wake::until_named(deadline, round, || match attach(names) {
        Ok(att) => Ok(Some(att)),
        Err(Absent::Failed(e)) => Err(e),
        Err(Absent::Missing(m)) => {
            missing = m;
            Ok(None)
        }
    })?;
    attached.ok_or_else(|| SeedError::OpenTimeout {
        name: names.name.clone(),
        waited,
        missing,
    })
}
