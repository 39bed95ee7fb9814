//! [`SeedError`]: what can go wrong with a seed-protocol channel.

use crate::error::NameError;
use crate::name::SHM_DIR;
use rustix::io::Errno;
use std::time::Duration;

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
    /// The frame given to [`SeedWriter::write`](super::SeedWriter::write) is invalid.
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
