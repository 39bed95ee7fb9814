//! One error type per operation, each variant saying what went wrong and what to do about it.

use std::time::Duration;

pub use rustix::io::Errno;

/// A channel name was rejected.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("channel name is empty: give a name such as `camera0`")]
    Empty,
    /// The name is longer than the limit.
    #[error("channel name `{name}` is {len} bytes long; the limit is {max}")]
    TooLong {
        /// The first characters of the name.
        name: String,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The name holds a character outside `[A-Za-z0-9._-]`.
    #[error("channel name `{name}` contains {ch:?}: use only letters, digits, `.`, `_` and `-`")]
    BadChar {
        /// The name.
        name: String,
        /// The first offending character.
        ch: char,
    },
    /// The name starts with `.` or `-`.
    #[error("channel name `{name}` must not start with `.` or `-`")]
    BadStart {
        /// The name.
        name: String,
    },
    /// The name contains `.tmp-`, which marks objects still being initialised.
    #[error("channel name `{name}` contains `.tmp-`, which shmframe reserves for itself")]
    Reserved {
        /// The name.
        name: String,
    },
}

/// Creating a channel ([`crate::Writer::create`]) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// The name is invalid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A live writer already holds this channel.
    #[error("channel `{name}` already has a live writer (pid {pid}): stop that process, or pick another name")]
    Busy {
        /// The channel.
        name: String,
        /// The process id recorded by the live writer.
        pid: u32,
    },
    /// The object exists and we may not open it.
    #[error("no permission to create or take over channel `{name}` ({path}): it belongs to another user; remove it as that user or pick another name")]
    PermissionDenied {
        /// The channel.
        name: String,
        /// The file under /dev/shm.
        path: String,
    },
    /// The segment would not fit in the shared-memory file system.
    #[error("channel `{name}` needs {needed} bytes but {dir} has only {available} free: use fewer slots, smaller frames, or give the container a larger /dev/shm (docker run --shm-size=…)")]
    NoSpace {
        /// The channel.
        name: String,
        /// Bytes the segment needs.
        needed: u64,
        /// Bytes free in /dev/shm.
        available: u64,
        /// The directory checked.
        dir: String,
    },
    /// Options out of range.
    #[error("invalid options for channel `{name}`: {what}")]
    BadOptions {
        /// The channel.
        name: String,
        /// What is wrong.
        what: String,
    },
    /// A live writer serves a channel on this socket path.
    #[error("`{path}` is the socket of a live writer (pid {pid}): stop that process, or serve on another path")]
    SocketInUse {
        /// The socket's path.
        path: String,
        /// The live writer's process id (0 if the kernel did not say).
        pid: u32,
    },
    /// Something other than a socket is at the socket path.
    #[error("`{path}` exists and is {kind}, not a socket: remove it, or serve on another path")]
    NotASocket {
        /// The path.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// Serving on the socket path failed.
    #[error("serving channel `{name}` on `{path}` failed in {op}: {source}; check that the directory exists and this user may create files in it")]
    Socket {
        /// The channel.
        name: String,
        /// The socket's path.
        path: String,
        /// The failing operation.
        op: &'static str,
        /// The error number.
        #[source]
        source: Errno,
    },
    /// Another system call failed.
    #[error("creating channel `{name}` failed in {op}: {source}")]
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

/// Opening a channel ([`crate::Reader::open`]) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The name is invalid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// No such channel.
    #[error("channel `{name}` does not exist: start its writer first, or wait for it (Reader::open_wait / --timeout); if the writer runs in a container, share its IPC namespace (--ipc container:NAME)")]
    NotFound {
        /// The channel.
        name: String,
    },
    /// We may not read the object.
    #[error("no permission to read channel `{name}` ({path}, mode {mode:o}, owner uid {uid}): run as that user, or have the writer create it with a group mode (e.g. 0o640: `shmframe write --mode 0o640`) and join its group")]
    PermissionDenied {
        /// The channel.
        name: String,
        /// The file under /dev/shm.
        path: String,
        /// The object's mode bits, if they could be read.
        mode: u32,
        /// The object's owner, if it could be read.
        uid: u32,
    },
    /// Waiting for the channel ran out of time.
    #[error("channel `{name}` did not appear within {waited:?} (no such channel in this IPC namespace): is its writer running, under this name, in this IPC namespace (same host or `--ipc container:…`)?")]
    Timeout {
        /// The channel.
        name: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The object is not a shmframe channel.
    #[error("`{path}` is not a shmframe channel (bad magic): another program owns this name; pick another name")]
    NotOurs {
        /// The file under /dev/shm.
        path: String,
    },
    /// The channel uses another layout version.
    #[error("channel `{name}` uses layout version {found}, this library speaks version {expected}: use the same shmframe version on both sides")]
    VersionMismatch {
        /// The channel.
        name: String,
        /// The version found.
        found: u32,
        /// The version we speak.
        expected: u32,
    },
    /// The object is smaller than its header says.
    #[error("channel `{name}` is truncated: {size} bytes, the header needs {needed}; remove it (shmframe rm {name}) and restart the writer")]
    Truncated {
        /// The channel.
        name: String,
        /// The object's size.
        size: u64,
        /// The size needed.
        needed: u64,
    },
    /// The header is inconsistent.
    #[error("channel `{name}` is corrupt ({what}); remove it (shmframe rm {name}) and restart the writer")]
    Corrupt {
        /// The channel.
        name: String,
        /// What is inconsistent.
        what: String,
    },
    /// The writer has created the object but has not finished initialising it (or died doing so).
    #[error("channel `{name}` is initialising (or abandoned: its writer died while creating it; `shmframe rm --stale` removes it)")]
    Initialising {
        /// The channel.
        name: String,
    },
    /// Every entry of the channel's pin table is held by an attached reader.
    #[error("channel `{name}` already has {max} readers attached, the most one channel serves: close a reader first")]
    TooManyReaders {
        /// The channel.
        name: String,
        /// The limit.
        max: u32,
    },
    /// The object under the name is not a regular file (a FIFO, a directory, a symbolic link…).
    #[error(
        "`{path}` is {kind}, not a shmframe channel: remove it (as its owner) or pick another name"
    )]
    NotAFile {
        /// The file under /dev/shm.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// Nothing is at the socket path.
    #[error("no writer serves a channel at `{path}` (no such socket): start the writer with `--socket {path}` first, or wait for it (Reader::connect_wait / --timeout); both sides must see the same directory (in containers: mount it into both)")]
    NoSocket {
        /// The socket's path.
        path: String,
    },
    /// A socket is at the path but nobody listens on it: its writer died.
    #[error("nobody serves `{path}` any more (a stale socket: its writer died): restart the writer, which replaces it; or wait for it (--timeout)")]
    StaleSocket {
        /// The socket's path.
        path: String,
    },
    /// The socket's mode does not let us connect.
    #[error("no permission to connect to `{path}` (mode {mode:o}, owner uid {uid}): run as that user, or have the writer serve with a group mode (e.g. `shmframe write --socket … --mode 0o660`) and join its group")]
    SocketDenied {
        /// The socket's path.
        path: String,
        /// The socket file's mode bits, if they could be read.
        mode: u32,
        /// The socket file's owner, if it could be read.
        uid: u32,
    },
    /// The writer refused this process (its credentials do not match the channel's mode).
    #[error("the writer serving `{path}` refused this process: {reason}")]
    SocketRefused {
        /// The socket's path.
        path: String,
        /// The writer's reason.
        reason: String,
    },
    /// The peer at the socket path does not speak shmframe's handshake.
    #[error("`{path}` is not the socket of a shmframe writer ({what})")]
    NotShmframeSocket {
        /// The socket's path.
        path: String,
        /// What was wrong.
        what: String,
    },
    /// Waiting for a writer to serve the socket path ran out of time.
    #[error("no writer served `{path}` within {waited:?}: is the writer running with `--socket {path}`, and do both sides see the same directory (in containers: the same mounted volume)?")]
    SocketTimeout {
        /// The socket's path.
        path: String,
        /// How long we waited.
        waited: Duration,
    },
    /// Another system call failed.
    #[error("opening channel `{name}` failed in {op}: {source}")]
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

/// Publishing a frame ([`crate::Writer::write`], [`crate::Writer::loan`]) failed. The writer is
/// still usable afterwards.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The frame's description is invalid.
    #[error("invalid frame for channel `{name}`: {what}")]
    BadFrame {
        /// The channel.
        name: String,
        /// What is wrong.
        what: String,
    },
    /// Metadata does not match the channel's declared schema.
    #[error("metadata for channel `{name}` is {got} bytes, the channel's schema `{schema}` declares {expected}: pass the type the writer was created with")]
    MetaMismatch {
        /// The channel.
        name: String,
        /// The schema's type name.
        schema: String,
        /// Bytes expected.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// Every slot is pinned by a zero-copy reader; the writer does not wait for readers.
    #[error("all {slots} slots of channel `{name}` are pinned by zero-copy readers; the frame was dropped: create the channel with more slots than readers hold views at once")]
    AllSlotsPinned {
        /// The channel.
        name: String,
        /// The number of slots.
        slots: u32,
    },
    /// A loan is still open.
    #[error(
        "a loan on channel `{name}` is still open: publish or discard it before writing again"
    )]
    LoanOpen {
        /// The channel.
        name: String,
    },
    /// Someone truncated the channel's object under the writer. The writer has re-created its
    /// channel (readers follow); this frame was lost.
    #[error("the object of channel `{name}` was truncated by another process while this frame was written; the writer re-created the channel, write the frame again")]
    Truncated {
        /// The channel.
        name: String,
    },
    /// The writer was created before a `fork()` and used in the child.
    #[error("the writer of channel `{name}` was created in another process (before fork()); create a new Writer in this process")]
    Forked {
        /// The channel.
        name: String,
    },
    /// The frame needed a larger segment and making one failed.
    #[error("channel `{name}` had to grow for a {needed}-byte frame and could not: {source}")]
    Grow {
        /// The channel.
        name: String,
        /// The frame's size.
        needed: usize,
        /// Why growing failed.
        #[source]
        source: CreateError,
    },
    /// Another system call failed.
    #[error("writing to channel `{name}` failed in {op}: {source}")]
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

/// Receiving a frame ([`crate::Reader::next`] and friends) failed. The reader is still usable:
/// after `WriterGone` or `Closed`, the next call attaches to a new writer of the same name if one
/// has appeared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No frame arrived in time.
    #[error("no frame on channel `{name}` within {waited:?} (writer pid {pid} is alive but not publishing)")]
    Timeout {
        /// The channel.
        name: String,
        /// How long we waited.
        waited: Duration,
        /// The writer's pid.
        pid: u32,
    },
    /// The writer died without closing the channel.
    #[error("the writer of channel `{name}` (pid {pid}) is gone (it died without closing the channel); restart it — {resumes}")]
    WriterGone {
        /// The channel.
        name: String,
        /// The dead writer's pid.
        pid: u32,
        /// How this reader carries on: by name (a new writer takes the name over), or on the
        /// socket it connected to (a new writer serves it again).
        resumes: String,
    },
    /// The writer closed the channel.
    #[error("the writer of channel `{name}` (pid {pid}) closed it; this reader resumes by itself if a new writer starts under that name")]
    Closed {
        /// The channel.
        name: String,
        /// The writer's pid.
        pid: u32,
    },
    /// A published frame's description is impossible (a hostile or broken writer).
    #[error("frame on channel `{name}` is corrupt ({what}): the writer is broken or not a shmframe writer")]
    CorruptFrame {
        /// The channel.
        name: String,
        /// What is wrong.
        what: String,
    },
    /// Someone truncated the channel's object under this reader.
    #[error("the object of channel `{name}` was truncated by another process; this reader re-attaches by itself when the writer re-creates the channel")]
    Truncated {
        /// The channel.
        name: String,
    },
    /// The reader was opened before a `fork()` and used in the child.
    #[error("the reader of channel `{name}` was opened in another process (before fork()); open a new Reader in this process")]
    Forked {
        /// The channel.
        name: String,
    },
    /// Re-attaching to the channel (after it grew or was taken over) failed.
    #[error(transparent)]
    Reopen(#[from] OpenError),
    /// Another system call failed.
    #[error("reading channel `{name}` failed in {op}: {source}")]
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

/// Decoding a frame's metadata as a Rust type failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetaError {
    /// The frame carries no metadata.
    #[error("the frame carries no metadata")]
    Missing,
    /// The channel's schema differs from the type asked for.
    #[error("the channel's metadata schema is {found}, not {expected}: read it with the matching type, or use the schema to decode it field by field")]
    SchemaMismatch {
        /// The requested type's schema.
        expected: String,
        /// The channel's schema.
        found: String,
    },
}

/// A metadata schema is invalid.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaError {
    /// A field is invalid.
    #[error("schema `{schema}`: {what}")]
    Invalid {
        /// The schema's type name.
        schema: String,
        /// What is wrong.
        what: String,
    },
}

/// Removing a channel failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoveError {
    /// The name is invalid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// No such channel.
    #[error("channel `{name}` does not exist (see `shmframe ls`)")]
    NotFound {
        /// The channel.
        name: String,
    },
    /// Not allowed.
    #[error("no permission to remove channel `{name}`: it belongs to another user; remove it as that user")]
    PermissionDenied {
        /// The channel.
        name: String,
    },
    /// Another system call failed.
    #[error("removing channel `{name}` failed: {source}")]
    Io {
        /// The channel.
        name: String,
        /// The error number.
        #[source]
        source: Errno,
    },
}

/// [`crate::prefer_low_latency`] left the thread's time slice as it was.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchedError {
    /// The kernel keeps one time slice for every normal thread (custom slices came in Linux 6.12).
    #[error("this kernel has no per-thread time slice for normal threads (Linux 6.12 and later have): the thread keeps the default one, and readers still work, only waking later")]
    Unsupported,
    /// The thread is not a normal (`SCHED_OTHER`) thread.
    #[error("the calling thread's scheduling policy is {policy}, not SCHED_OTHER (0): left unchanged (a real-time thread already preempts normal ones)")]
    Policy {
        /// Its policy number (`SCHED_FIFO` 1, `SCHED_RR` 2, `SCHED_BATCH` 3, `SCHED_IDLE` 5…).
        policy: u32,
    },
    /// A system call failed (`EPERM`: a seccomp profile or a security module forbids it).
    #[error("{op} on the calling thread failed: {source}")]
    Io {
        /// The call.
        op: &'static str,
        /// The error number.
        #[source]
        source: Errno,
    },
}
