//! `libshmframe`: the C ABI of shmframe channels, for C and C++ programs (OpenCV, GStreamer, ROS
//! nodes). The header `include/shmframe.h` is generated from this file by cbindgen and checked in
//! (`tests/header.rs` fails when it is stale; `SHMFRAME_BLESS=1 cargo test -p shmframe-c --test
//! header` rewrites it). `include/shmframe.hpp` is the C++17 layer on top, with `cv::Mat`.
//!
//! Rules every entry point follows:
//! - handles are opaque pointers created and freed by this library;
//! - a Rust panic never crosses the boundary: each call runs under `catch_unwind`, and a panic
//!   becomes `SHMFRAME_INTERNAL` with its message in `shmframe_last_error()`;
//! - NULL pointers, invalid names, dtypes outside the enum, shapes and lengths that do not agree
//!   give `SHMFRAME_INVALID_ARGUMENT` with a message, never undefined behaviour on our side;
//! - failures store the library's error text in a thread-local string (`shmframe_last_error`).
//!
//! The documentation comments below become the header's comments: they are written for C readers.
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(non_camel_case_types)]
#![warn(missing_docs)]

use sf::{CreateError, DType, Frame, FrameView, OpenError, ReadError, WriteError};
use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

mod schema;

/// Most dimensions a frame can have.
pub const SHMFRAME_MAX_DIMS: usize = 8;
const _: () = assert!(SHMFRAME_MAX_DIMS == sf::layout::MAX_DIMS);

/// What a call did. `SHMFRAME_OK` is 0; every other value is a failure whose text
/// `shmframe_last_error()` returns.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum shmframe_status {
    /// Success.
    SHMFRAME_OK = 0,
    /// No frame arrived within the timeout (the writer is alive but not publishing).
    SHMFRAME_TIMEOUT = 1,
    /// No channel of that name exists (or it did not appear within the open timeout); for a
    /// socket-served channel, no writer serves the socket (none there, a stale one, or none
    /// within the timeout).
    SHMFRAME_NOT_FOUND = 2,
    /// The writer died without closing the channel. The reader stays usable: its next call
    /// attaches to a new writer of the same name if one has started.
    SHMFRAME_WRITER_GONE = 3,
    /// The writer closed the channel (a clean end of stream). The reader stays usable, as above.
    SHMFRAME_CLOSED = 4,
    /// A live writer already holds this channel name (or serves on this socket path).
    SHMFRAME_BUSY = 5,
    /// The shared-memory file system (/dev/shm) has no room for the channel.
    SHMFRAME_NO_SPACE = 6,
    /// The channel belongs to another user and its mode does not let us use it (for a
    /// socket-served channel: the socket's mode, or the writer refused our credentials).
    SHMFRAME_PERMISSION = 7,
    /// The object is not a shmframe channel (or the socket not a shmframe writer's), or a header
    /// or frame in it is corrupt.
    SHMFRAME_CORRUPT = 8,
    /// A NULL pointer, an invalid name or option, a dtype outside the enum, or a data length
    /// that does not match dtype x shape.
    SHMFRAME_INVALID_ARGUMENT = 9,
    /// A system call failed.
    SHMFRAME_IO = 10,
    /// The channel uses another layout version than this library (mixed shmframe versions).
    SHMFRAME_VERSION_MISMATCH = 11,
    /// Every slot is pinned by zero-copy readers; the frame was dropped (the writer never waits
    /// for readers). Create the channel with more slots than views held at once.
    SHMFRAME_SLOTS_PINNED = 12,
    /// A bug in shmframe (a Rust panic, caught at the boundary). Please report the message.
    SHMFRAME_INTERNAL = 13,
    /// This kernel or this thread does not offer what was asked (`shmframe_prefer_low_latency`:
    /// no per-thread time slices before Linux 6.12, or a thread that is not SCHED_OTHER).
    SHMFRAME_UNSUPPORTED = 14,
}

use shmframe_status::*;

/// Element type of a frame. The values are this header's, not the channel's wire codes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum shmframe_dtype {
    /// `uint8_t`
    SHMFRAME_U8 = 0,
    /// `int8_t`
    SHMFRAME_I8 = 1,
    /// `uint16_t`
    SHMFRAME_U16 = 2,
    /// `int16_t`
    SHMFRAME_I16 = 3,
    /// `uint32_t`
    SHMFRAME_U32 = 4,
    /// `int32_t`
    SHMFRAME_I32 = 5,
    /// `uint64_t`
    SHMFRAME_U64 = 6,
    /// `int64_t`
    SHMFRAME_I64 = 7,
    /// `float`
    SHMFRAME_F32 = 8,
    /// `double`
    SHMFRAME_F64 = 9,
    /// `bool` (one byte, 0 or 1)
    SHMFRAME_BOOL = 10,
}

/// A `shmframe_dtype` as received from C. C may pass any integer in an enum parameter, which
/// would be undefined behaviour in a Rust enum; this wrapper is named `shmframe_dtype` in the
/// header (cbindgen.toml renames it and does not emit it) and checked by `dtype_arg`.
#[repr(transparent)]
#[derive(Clone, Copy, Debug)]
pub struct shmframe_dtype_arg(pub u32);

/// A `shmframe_status` received from C; see [`shmframe_dtype_arg`].
#[repr(transparent)]
#[derive(Clone, Copy, Debug)]
pub struct shmframe_status_arg(pub u32);

const DTYPES: [(shmframe_dtype, DType); 11] = [
    (shmframe_dtype::SHMFRAME_U8, DType::U8),
    (shmframe_dtype::SHMFRAME_I8, DType::I8),
    (shmframe_dtype::SHMFRAME_U16, DType::U16),
    (shmframe_dtype::SHMFRAME_I16, DType::I16),
    (shmframe_dtype::SHMFRAME_U32, DType::U32),
    (shmframe_dtype::SHMFRAME_I32, DType::I32),
    (shmframe_dtype::SHMFRAME_U64, DType::U64),
    (shmframe_dtype::SHMFRAME_I64, DType::I64),
    (shmframe_dtype::SHMFRAME_F32, DType::F32),
    (shmframe_dtype::SHMFRAME_F64, DType::F64),
    (shmframe_dtype::SHMFRAME_BOOL, DType::Bool),
];

fn dtype_arg(d: shmframe_dtype_arg) -> R<DType> {
    DTYPES
        .iter()
        .find(|(c, _)| *c as u32 == d.0)
        .map(|&(_, r)| r)
        .ok_or_else(|| {
            invalid(format!(
                "dtype {} is not a shmframe_dtype (SHMFRAME_U8 = 0 … SHMFRAME_BOOL = 10)",
                d.0
            ))
        })
}

fn dtype_c(d: DType) -> shmframe_dtype {
    DTYPES
        .iter()
        .find(|(_, r)| *r == d)
        .map_or(shmframe_dtype::SHMFRAME_U8, |&(c, _)| c)
}

// ---- errors ---------------------------------------------------------------------------------

/// A failed call: its status and the text `shmframe_last_error` returns.
struct Failure {
    status: shmframe_status,
    message: String,
}

type R<T> = Result<T, Failure>;

fn invalid(message: impl Into<String>) -> Failure {
    Failure {
        status: SHMFRAME_INVALID_ARGUMENT,
        message: message.into(),
    }
}

fn create_status(e: &CreateError) -> shmframe_status {
    match e {
        CreateError::Name(_) | CreateError::BadOptions { .. } => SHMFRAME_INVALID_ARGUMENT,
        CreateError::Busy { .. } | CreateError::SocketInUse { .. } => SHMFRAME_BUSY,
        CreateError::PermissionDenied { .. } => SHMFRAME_PERMISSION,
        CreateError::NoSpace { .. } => SHMFRAME_NO_SPACE,
        // Something else at the socket path is left alone, as a reader treats a FIFO under a
        // channel's name (`OpenError::NotAFile`); `Socket` is `Io` on the socket's path.
        CreateError::NotASocket { .. } | CreateError::Socket { .. } => SHMFRAME_IO,
        _ => SHMFRAME_IO,
    }
}

fn open_status(e: &OpenError) -> shmframe_status {
    match e {
        OpenError::Name(_) => SHMFRAME_INVALID_ARGUMENT,
        // As in Python (ChannelNotFound): a channel that did not appear in time was not found.
        OpenError::NotFound { .. } | OpenError::Timeout { .. } => SHMFRAME_NOT_FOUND,
        // Being created this very moment: not there yet; retrying (or a timeout) finds it.
        OpenError::Initialising { .. } => SHMFRAME_NOT_FOUND,
        // Socket-served channels: no writer serves the path (yet), as a missing name. A stale
        // socket is one whose writer died; a waiting reader treats it as not there yet.
        OpenError::NoSocket { .. }
        | OpenError::StaleSocket { .. }
        | OpenError::SocketTimeout { .. } => SHMFRAME_NOT_FOUND,
        OpenError::PermissionDenied { .. }
        | OpenError::SocketDenied { .. }
        | OpenError::SocketRefused { .. } => SHMFRAME_PERMISSION,
        OpenError::VersionMismatch { .. } => SHMFRAME_VERSION_MISMATCH,
        OpenError::NotOurs { .. }
        | OpenError::Truncated { .. }
        | OpenError::Corrupt { .. }
        | OpenError::NotShmframeSocket { .. } => SHMFRAME_CORRUPT,
        _ => SHMFRAME_IO,
    }
}

impl From<CreateError> for Failure {
    fn from(e: CreateError) -> Failure {
        Failure {
            status: create_status(&e),
            message: e.to_string(),
        }
    }
}

impl From<OpenError> for Failure {
    fn from(e: OpenError) -> Failure {
        Failure {
            status: open_status(&e),
            message: e.to_string(),
        }
    }
}

impl From<WriteError> for Failure {
    fn from(e: WriteError) -> Failure {
        let status = match &e {
            WriteError::BadFrame { .. }
            | WriteError::MetaMismatch { .. }
            | WriteError::LoanOpen { .. } => SHMFRAME_INVALID_ARGUMENT,
            WriteError::AllSlotsPinned { .. } => SHMFRAME_SLOTS_PINNED,
            WriteError::Grow { source, .. } => create_status(source),
            _ => SHMFRAME_IO,
        };
        Failure {
            status,
            message: e.to_string(),
        }
    }
}

impl From<ReadError> for Failure {
    fn from(e: ReadError) -> Failure {
        let status = match &e {
            ReadError::Timeout { .. } => SHMFRAME_TIMEOUT,
            ReadError::WriterGone { .. } => SHMFRAME_WRITER_GONE,
            ReadError::Closed { .. } => SHMFRAME_CLOSED,
            ReadError::CorruptFrame { .. } => SHMFRAME_CORRUPT,
            ReadError::Reopen(o) => open_status(o),
            _ => SHMFRAME_IO,
        };
        Failure {
            status,
            message: e.to_string(),
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // `try_with`: during thread teardown the slot may be gone; the status still tells.
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = text);
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    format!("internal error in shmframe (please report it): {what}")
}

/// Runs one entry point: catches panics, records the failure's text, returns its status.
fn guard(f: impl FnOnce() -> R<()>) -> shmframe_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => SHMFRAME_OK,
        Ok(Err(e)) => {
            set_last_error(&e.message);
            e.status
        }
        Err(payload) => {
            set_last_error(&panic_message(payload.as_ref()));
            SHMFRAME_INTERNAL
        }
    }
}

/// As [`guard`], for entry points that return a value instead of a status: `fallback` on failure.
fn guard_value<T>(fallback: T, f: impl FnOnce() -> R<T>) -> T {
    let mut out = None;
    guard(|| {
        out = Some(f()?);
        Ok(())
    });
    out.unwrap_or(fallback)
}

// ---- pointer checks -------------------------------------------------------------------------

/// # Safety
/// `p` is NULL or points to a live `T` that is not mutated during `'a`.
unsafe fn handle<'a, T>(p: *const T, what: &str) -> R<&'a T> {
    // SAFETY: NULL is checked; otherwise the caller guarantees a live `T`.
    unsafe { p.as_ref() }.ok_or_else(|| invalid(format!("{what} is NULL")))
}

/// # Safety
/// `p` is NULL or points to a live, unaliased `T` during `'a`.
unsafe fn handle_mut<'a, T>(p: *mut T, what: &str) -> R<&'a mut T> {
    // SAFETY: NULL is checked; otherwise the caller guarantees a live, unaliased `T`.
    unsafe { p.as_mut() }.ok_or_else(|| invalid(format!("{what} is NULL")))
}

/// # Safety
/// `p` is NULL or a NUL-terminated string that lives during `'a`.
unsafe fn c_str<'a>(p: *const c_char, what: &str) -> R<&'a str> {
    if p.is_null() {
        return Err(invalid(format!("{what} is NULL")));
    }
    // SAFETY: not NULL; the caller guarantees a NUL-terminated string.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map_err(|_| invalid(format!("{what} is not valid UTF-8")))
}

/// Bytes a Unix socket's path may have (`sun_path` of `struct sockaddr_un` on Linux).
const SOCKET_PATH_MAX: usize = 108;

/// A socket path from C: any bytes but NUL, as `open(2)` takes (not necessarily UTF-8), not
/// empty and short enough for a Unix socket.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string that lives during `'a`.
unsafe fn path_arg<'a>(p: *const c_char, what: &str) -> R<&'a Path> {
    if p.is_null() {
        return Err(invalid(format!("{what} is NULL")));
    }
    // SAFETY: not NULL; the caller guarantees a NUL-terminated string.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    let path = Path::new(OsStr::from_bytes(bytes));
    if bytes.is_empty() {
        return Err(invalid(format!(
            "{what} is empty: give the socket's file path (e.g. /run/user/1000/camera0.sock)"
        )));
    }
    if bytes.len() > SOCKET_PATH_MAX {
        return Err(invalid(format!(
            "{what} `{}` is {} bytes long; a Unix socket's path holds at most {SOCKET_PATH_MAX}: \
             use a shorter one (a directory nearer the root, or a relative path)",
            path.display(),
            bytes.len()
        )));
    }
    Ok(path)
}

/// # Safety
/// `shape` is NULL or points to `ndim` readable `size_t`s.
unsafe fn shape_arg<'a>(ndim: usize, shape: *const usize) -> R<&'a [usize]> {
    if ndim > SHMFRAME_MAX_DIMS {
        return Err(invalid(format!(
            "{ndim} dimensions; the limit is {SHMFRAME_MAX_DIMS}"
        )));
    }
    if ndim == 0 {
        return Ok(&[]);
    }
    if shape.is_null() {
        return Err(invalid(format!("shape is NULL but ndim is {ndim}")));
    }
    // SAFETY: not NULL, ndim <= 8 elements, which the caller guarantees are readable.
    Ok(unsafe { std::slice::from_raw_parts(shape, ndim) })
}

/// Bytes of a frame of `dtype` and `shape`.
fn frame_bytes(dtype: DType, shape: &[usize]) -> R<usize> {
    shape
        .iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= isize::MAX as usize)
        .ok_or_else(|| invalid(format!("shape {shape:?} of {dtype} is too large")))
}

/// # Safety
/// `p` is NULL or points to `len` readable bytes that live during `'a`.
unsafe fn bytes_arg<'a>(p: *const c_void, len: usize, what: &str) -> R<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(invalid(format!("{what} is NULL but its length is {len}")));
    }
    if len > isize::MAX as usize {
        return Err(invalid(format!("{what}: length {len} is too large")));
    }
    // SAFETY: not NULL, len <= isize::MAX, and the caller guarantees `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) })
}

/// # Safety
/// `out` is NULL or points to a writable `*mut T`.
unsafe fn put<T>(out: *mut *mut T, value: T) -> R<()> {
    // SAFETY: NULL is checked by `handle_mut`; the caller guarantees it is writable.
    let slot = unsafe { handle_mut(out, "out") }?;
    *slot = Box::into_raw(Box::new(value));
    Ok(())
}

/// # Safety
/// `out` is NULL or points to a writable `*mut T`.
unsafe fn clear_out<T>(out: *mut *mut T) {
    if !out.is_null() {
        // SAFETY: not NULL; the caller guarantees it is writable.
        unsafe { *out = std::ptr::null_mut() };
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while locked was caught and reported; the state behind the lock is still
    // memory-safe, so carry on rather than fail every later call.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn timeout(ms: i64) -> Option<Duration> {
    u64::try_from(ms).ok().map(Duration::from_millis)
}

// ---- library --------------------------------------------------------------------------------

/// The library's version, e.g. "0.1.0" (static storage; never NULL).
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn shmframe_version() -> *const c_char {
    static VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(s) => s,
            Err(_) => panic!("the version holds a NUL byte"),
        };
    VERSION.as_ptr()
}

/// The text of this thread's last failure: the library's error message, which says what went
/// wrong and what to do about it. "" if no call on this thread has failed. Never NULL. Valid
/// until the next failing shmframe call on this thread (copy it to keep it).
///
/// Thread safety: any thread; each thread has its own.
#[no_mangle]
pub extern "C" fn shmframe_last_error() -> *const c_char {
    static EMPTY: &CStr = c"";
    LAST_ERROR
        .try_with(|e| e.borrow().as_ptr())
        .unwrap_or(EMPTY.as_ptr())
}

/// The name of a status, e.g. "SHMFRAME_TIMEOUT" (static storage; never NULL;
/// "SHMFRAME_UNKNOWN_STATUS" for a value outside the enum).
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn shmframe_status_name(status: shmframe_status_arg) -> *const c_char {
    let name: &'static CStr = match status.0 {
        0 => c"SHMFRAME_OK",
        1 => c"SHMFRAME_TIMEOUT",
        2 => c"SHMFRAME_NOT_FOUND",
        3 => c"SHMFRAME_WRITER_GONE",
        4 => c"SHMFRAME_CLOSED",
        5 => c"SHMFRAME_BUSY",
        6 => c"SHMFRAME_NO_SPACE",
        7 => c"SHMFRAME_PERMISSION",
        8 => c"SHMFRAME_CORRUPT",
        9 => c"SHMFRAME_INVALID_ARGUMENT",
        10 => c"SHMFRAME_IO",
        11 => c"SHMFRAME_VERSION_MISMATCH",
        12 => c"SHMFRAME_SLOTS_PINNED",
        13 => c"SHMFRAME_INTERNAL",
        14 => c"SHMFRAME_UNSUPPORTED",
        _ => c"SHMFRAME_UNKNOWN_STATUS",
    };
    name.as_ptr()
}

/// Bytes per element of `dtype` (1, 2, 4 or 8); 0 for a value outside the enum.
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn shmframe_dtype_size(dtype: shmframe_dtype_arg) -> usize {
    dtype_arg(dtype).map_or(0, DType::size)
}

/// NumPy's name of `dtype` ("uint8", "float32", …; static storage); NULL for a value outside
/// the enum.
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn shmframe_dtype_name(dtype: shmframe_dtype_arg) -> *const c_char {
    let name: &'static CStr = match dtype_arg(dtype) {
        Ok(DType::U8) => c"uint8",
        Ok(DType::I8) => c"int8",
        Ok(DType::U16) => c"uint16",
        Ok(DType::I16) => c"int16",
        Ok(DType::U32) => c"uint32",
        Ok(DType::I32) => c"int32",
        Ok(DType::U64) => c"uint64",
        Ok(DType::I64) => c"int64",
        Ok(DType::F32) => c"float32",
        Ok(DType::F64) => c"float64",
        Ok(DType::Bool) => c"bool",
        _ => return std::ptr::null(),
    };
    name.as_ptr()
}

/// CLOCK_MONOTONIC now, in nanoseconds: the clock of `shmframe_view_timestamp_ns`, so
/// `shmframe_monotonic_ns() - shmframe_view_timestamp_ns(v)` is a frame's age.
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn shmframe_monotonic_ns() -> u64 {
    guard_value(0, || Ok(sf::monotonic_ns()))
}

/// Asks the scheduler to run the calling thread as soon as a frame wakes it: a 0.1 ms time
/// slice instead of the default few ms (Linux 6.12 and later; no privilege needed; the thread's
/// policy and nice value are kept). A woken reader then preempts the thread that woke it
/// (often the writer, on the same core) instead of waiting for it to sleep. Call it in the
/// thread that reads.
///
/// Returns SHMFRAME_UNSUPPORTED (the thread is left as it was; readers work the same) on older
/// kernels or for a thread that is not SCHED_OTHER, SHMFRAME_PERMISSION where the system forbids
/// the call.
///
/// Thread safety: any thread; it changes only the calling one.
#[no_mangle]
pub extern "C" fn shmframe_prefer_low_latency() -> shmframe_status {
    guard(|| {
        sf::prefer_low_latency().map(drop).map_err(|e| {
            let status = match &e {
                sf::SchedError::Io { source, .. } if *source == sf::error::Errno::PERM => {
                    SHMFRAME_PERMISSION
                }
                sf::SchedError::Io { .. } => SHMFRAME_IO,
                _ => SHMFRAME_UNSUPPORTED,
            };
            Failure {
                status,
                message: e.to_string(),
            }
        })
    })
}

/// Frees a string this library allocated (`shmframe_reader_schema_json`,
/// `shmframe_writer_schema_json`). NULL is ignored.
///
/// Thread safety: any thread; each string once.
///
/// # Safety
/// `s` is NULL or a string returned by this library and not freed yet.
#[no_mangle]
pub unsafe extern "C" fn shmframe_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    guard(|| {
        // SAFETY: the caller guarantees `s` came from `CString::into_raw` in this library and
        // is freed once.
        drop(unsafe { CString::from_raw(s) });
        Ok(())
    });
}

/// Removes channel `name` from /dev/shm (as `shmframe rm NAME`): its writer, if alive, goes on
/// publishing to readers already attached; new readers no longer find it.
///
/// Returns SHMFRAME_NOT_FOUND if there is no such channel.
///
/// Thread safety: any thread.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn shmframe_channel_remove(name: *const c_char) -> shmframe_status {
    guard(|| {
        // SAFETY: the caller guarantees NULL or a NUL-terminated string.
        let name = unsafe { c_str(name, "name") }?;
        sf::channels::remove(name).map_err(|e| {
            let status = match &e {
                sf::RemoveError::Name(_) => SHMFRAME_INVALID_ARGUMENT,
                sf::RemoveError::NotFound { .. } => SHMFRAME_NOT_FOUND,
                sf::RemoveError::PermissionDenied { .. } => SHMFRAME_PERMISSION,
                _ => SHMFRAME_IO,
            };
            Failure {
                status,
                message: e.to_string(),
            }
        })
    })
}

// ---- writer options -------------------------------------------------------------------------

/// How a writer creates its channel (opaque). Defaults: 3 slots, mode 0600, capacity chosen
/// by the first frame, no metadata, channel named in /dev/shm and removed on close.
#[derive(Clone)]
pub struct shmframe_writer_options {
    slots: u32,
    mode: u32,
    capacity: usize,
    keep: bool,
    schema: Option<sf::Schema>,
    socket: Option<PathBuf>,
}

impl Default for shmframe_writer_options {
    fn default() -> Self {
        shmframe_writer_options {
            slots: sf::DEFAULT_SLOTS,
            mode: 0o600,
            capacity: 0,
            keep: false,
            schema: None,
            socket: None,
        }
    }
}

impl shmframe_writer_options {
    fn build(&self) -> sf::WriterOptions {
        let mut o = sf::WriterOptions::new()
            .slots(self.slots)
            .mode(self.mode)
            .capacity(self.capacity)
            .keep(self.keep);
        if let Some(s) = &self.schema {
            o = o.schema(s.clone());
        }
        if let Some(p) = &self.socket {
            o = o.socket(p.clone());
        }
        o
    }
}

/// A new set of writer options with the defaults; free it with `shmframe_writer_options_free`
/// (`shmframe_writer_create` copies what it needs). NULL only if allocation fails.
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn shmframe_writer_options_new() -> *mut shmframe_writer_options {
    guard_value(std::ptr::null_mut(), || {
        Ok(Box::into_raw(Box::new(shmframe_writer_options::default())))
    })
}

/// Frees writer options. NULL is ignored.
///
/// Thread safety: not with other calls on the same options.
///
/// # Safety
/// `opts` is NULL or from `shmframe_writer_options_new`, not freed yet.
#[no_mangle]
pub unsafe extern "C" fn shmframe_writer_options_free(opts: *mut shmframe_writer_options) {
    if opts.is_null() {
        return;
    }
    guard(|| {
        // SAFETY: the caller guarantees it came from `Box::into_raw` here and is freed once.
        drop(unsafe { Box::from_raw(opts) });
        Ok(())
    });
}

/// # Safety
/// `opts` is NULL or live options, not used by another thread during the call.
unsafe fn with_opts(
    opts: *mut shmframe_writer_options,
    f: impl FnOnce(&mut shmframe_writer_options) -> R<()>,
) -> shmframe_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        f(unsafe { handle_mut(opts, "opts") }?)
    })
}

/// Slots in the ring, 1 to 64 (default 3). Each zero-copy view a reader holds pins one slot,
/// and the writer skips pinned slots: use more slots than views held at once.
///
/// Thread safety: not with other calls on the same options.
///
/// # Safety
/// `opts` is NULL or live options.
#[no_mangle]
pub unsafe extern "C" fn shmframe_writer_options_set_slots(
    opts: *mut shmframe_writer_options,
    slots: u32,
) -> shmframe_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        with_opts(opts, |o| {
            if slots == 0 || slots > sf::layout::MAX_SLOTS {
                return Err(invalid(format!(
                    "{slots} slots; use 1 to {}",
                    sf::layout::MAX_SLOTS
                )));
            }
            o.slots = slots;
            Ok(())
        })
    }
}

/// Permission bits of the shared-memory object (default 0600; 0640 or 0660 share it with the
/// group). They must include owner read and write.
///
/// Thread safety: not with other calls on the same options.
///
/// # Safety
/// `opts` is NULL or live options.
#[no_mangle]
pub unsafe extern "C" fn shmframe_writer_options_set_mode(
    opts: *mut shmframe_writer_options,
    mode: u32,
) -> shmframe_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        with_opts(opts, |o| {
            if mode & !0o777 != 0 || mode & 0o600 != 0o600 {
                return Err(invalid(format!(
                    "mode {mode:o}: give permission bits that include owner read/write (e.g. 0600, 0640)"
                )));
            }
            o.mode = mode;
            Ok(())
        })
    }
}

/// Payload bytes per slot reserved up front (default 0: the first frame decides). A larger
/// frame later grows the channel by itself; reserving avoids that one-time cost.
///
/// Thread safety: not with other calls on the same options.
///
/// # Safety
/// `opts` is NULL or live options.
#[no_mangle]
pub unsafe extern "C" fn shmframe_writer_options_set_capacity(
    opts: *mut shmframe_writer_options,
    bytes: usize,
) -> shmframe_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        with_opts(opts, |o| {
            o.capacity = bytes;
            Ok(())
        })
    }
}

/// Keep the channel in /dev/shm after the writer closes (readers can still attach and read the
/// last frames); by default it is removed. `shmframe_channel_remove` removes it later.
///
/// Thread safety: not with other calls on the same options.
///
/// # Safety
/// `opts` is NULL or live options.
#[no_mangle]
pub unsafe extern "C" fn shmframe_writer_options_set_keep(
    opts: *mut shmframe_writer_options,
    keep: bool,
) -> shmframe_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        with_opts(opts, |o| {
            o.keep = keep;
            Ok(())
        })
    }
}

/// Declares the metadata every frame carries, as JSON (NULL: none). The schema travels with
/// the channel, so readers in any language decode the metadata without this program's source:
///
///     {"type_name": "MD", "size": 32, "align": 8, "fields": [
///       {"name": "shape_0", "dtype": "int32", "offset": 0},
///       {"name": "size", "dtype": "int64", "offset": 16},
///       {"name": "flags", "dtype": "uint8", "count": 4, "offset": 24}]}
///
/// `dtype`: a NumPy name (uint8 … float64, bool); `count` (default 1): elements of a
/// fixed-size array; `size` and `offset`: as `sizeof` and `offsetof` of your struct say;
/// `align` (default: the largest field's element size) and `type_name` (default "Meta") are
/// optional. Returns SHMFRAME_INVALID_ARGUMENT, with the reason, for malformed JSON or a
/// schema whose fields do not fit.
///
/// Thread safety: not with other calls on the same options.
///
/// # Safety
/// `opts` is NULL or live options; `json` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn shmframe_writer_options_set_schema_json(
    opts: *mut shmframe_writer_options,
    json: *const c_char,
) -> shmframe_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        with_opts(opts, |o| {
            o.schema = if json.is_null() {
                None
            } else {
                // SAFETY: not NULL; the caller guarantees a NUL-terminated string.
                Some(schema::from_json(c_str(json, "json")?)?)
            };
            Ok(())
        })
    }
}

/// Serves the channel on a Unix socket at `path` instead of naming it in /dev/shm (NULL: back
/// to the default, a name in /dev/shm). The channel's memory is then anonymous (a memfd) and
/// the writer hands it to each reader that connects to the socket (`shmframe_reader_connect`):
/// reader and writer need only see the same directory (in containers: a shared volume), not
/// share an IPC namespace, and nothing is left in /dev/shm whatever happens. The mode
/// (`shmframe_writer_options_set_mode`) decides who may connect. Closing the writer removes
/// the socket; a stale socket left by a writer that died is replaced by the next one.
///
/// `path`: any file path (bytes, as `open` takes), at most 108 bytes, in a directory that
/// exists and that this user may write to. The channel name given to
/// `shmframe_writer_create` still names the channel (readers see it), but nothing else.
/// Cannot be combined with `shmframe_writer_options_set_keep` (`shmframe_writer_create` then
/// returns SHMFRAME_INVALID_ARGUMENT).
///
/// Errors: SHMFRAME_INVALID_ARGUMENT (NULL `opts`, an empty or too long `path`).
///
/// Thread safety: not with other calls on the same options.
///
/// # Safety
/// `opts` is NULL or live options; `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn shmframe_writer_options_set_socket(
    opts: *mut shmframe_writer_options,
    path: *const c_char,
) -> shmframe_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        with_opts(opts, |o| {
            o.socket = if path.is_null() {
                None
            } else {
                // SAFETY: not NULL; the caller guarantees a NUL-terminated string.
                Some(path_arg(path, "path")?.to_owned())
            };
            Ok(())
        })
    }
}

// ---- writer ---------------------------------------------------------------------------------

type SharedWriter = Arc<Mutex<Option<sf::Writer>>>;

/// A channel's writer (opaque). Calls on one writer from several threads are serialised by an
/// internal lock.
pub struct shmframe_writer {
    inner: SharedWriter,
}

fn closed_writer() -> Failure {
    Failure {
        status: SHMFRAME_CLOSED,
        message: "the writer of this loan was closed: the loan can only be discarded".into(),
    }
}

/// Creates channel `name` (letters, digits, `.`, `_`, `-`; at most 200 bytes; the object is
/// /dev/shm/shmframe.NAME) and stores its writer in `*out`. `opts` NULL: the defaults.
/// Takes over a stale channel whose writer died (its readers follow). With
/// `shmframe_writer_options_set_socket` the channel is served on that socket instead, and
/// nothing is named in /dev/shm.
///
/// Errors: SHMFRAME_BUSY (a live writer holds the name, or serves on the socket path),
/// SHMFRAME_PERMISSION, SHMFRAME_NO_SPACE, SHMFRAME_INVALID_ARGUMENT (name, options),
/// SHMFRAME_IO (something other than a socket is at the socket path, or its directory is
/// missing or not writable). On failure `*out` is NULL.
///
/// Thread safety: any thread.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `opts` is NULL or live options; `out` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn shmframe_writer_create(
    name: *const c_char,
    opts: *const shmframe_writer_options,
    out: *mut *mut shmframe_writer,
) -> shmframe_status {
    // SAFETY: forwarded from the caller.
    unsafe { clear_out(out) };
    guard(|| {
        // SAFETY: the caller guarantees these pointers are NULL or valid.
        let (name, opts) = unsafe {
            if out.is_null() {
                return Err(invalid("out is NULL"));
            }
            let name = c_str(name, "name")?;
            let opts = opts.as_ref().map(|o| o.build()).unwrap_or_default();
            (name, opts)
        };
        let w = sf::Writer::create(name, opts)?;
        let handle = shmframe_writer {
            inner: Arc::new(Mutex::new(Some(w))),
        };
        // SAFETY: checked non-NULL above; the caller guarantees it is writable.
        unsafe { put(out, handle) }
    })
}

/// # Safety
/// `w` is NULL or a live writer.
unsafe fn with_writer<T>(
    w: *const shmframe_writer,
    f: impl FnOnce(&mut sf::Writer) -> R<T>,
) -> R<T> {
    // SAFETY: forwarded from the caller.
    let h = unsafe { handle(w, "writer") }?;
    let mut g = lock(&h.inner);
    let w = g.as_mut().ok_or_else(closed_writer)?;
    f(w)
}

/// Publishes a frame by copying `len` bytes from `data`: a C-contiguous array of `ndim`
/// dimensions `shape[0] x … x shape[ndim-1]` (at most 8; `shape` may be NULL when ndim is 0) of
/// `dtype`. `len` must equal the element size times the product of the shape. Never waits for
/// readers.
///
/// Errors: SHMFRAME_INVALID_ARGUMENT (NULL pointers, dtype, shape, `len`, or a loan still
/// open), SHMFRAME_SLOTS_PINNED, SHMFRAME_NO_SPACE (the channel had to grow for a larger frame).
///
/// Thread safety: any thread; calls on one writer take turns.
///
/// # Safety
/// `w` is NULL or a live writer; `shape` points to `ndim` values; `data` to `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn shmframe_writer_write(
    w: *mut shmframe_writer,
    dtype: shmframe_dtype_arg,
    ndim: usize,
    shape: *const usize,
    data: *const c_void,
    len: usize,
) -> shmframe_status {
    // SAFETY: forwarded from the caller.
    unsafe {
        shmframe_writer_write_meta(
            w,
            dtype,
            ndim,
            shape,
            data,
            len,
            std::ptr::null(),
            0,
            std::ptr::null_mut(),
        )
    }
}

/// As `shmframe_writer_write`, with `meta_len` bytes of metadata laid out as the channel's
/// schema declares (`meta_len` 0: none; otherwise exactly the schema's size), and the frame's
/// index stored in `*index` unless `index` is NULL.
///
/// Thread safety: any thread; calls on one writer take turns.
///
/// # Safety
/// As `shmframe_writer_write`; `meta` points to `meta_len` bytes; `index` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmframe_writer_write_meta(
    w: *mut shmframe_writer,
    dtype: shmframe_dtype_arg,
    ndim: usize,
    shape: *const usize,
    data: *const c_void,
    len: usize,
    meta: *const c_void,
    meta_len: usize,
    index: *mut u64,
) -> shmframe_status {
    guard(|| {
        let dtype = dtype_arg(dtype)?;
        // SAFETY: the caller guarantees `shape` holds `ndim` values.
        let shape = unsafe { shape_arg(ndim, shape) }?;
        let need = frame_bytes(dtype, shape)?;
        if len != need {
            return Err(invalid(format!(
                "{len} data bytes for shape {shape:?} of {dtype}, which needs {need}"
            )));
        }
        // SAFETY: the caller guarantees `len` readable bytes at `data`, `meta_len` at `meta`.
        let (data, meta) = unsafe {
            (
                bytes_arg(data, len, "data")?,
                bytes_arg(meta, meta_len, "meta")?,
            )
        };
        // SAFETY: the caller guarantees a live writer.
        let i = unsafe { with_writer(w, |w| Ok(w.write_with_meta(dtype, shape, data, meta)?)) }?;
        if !index.is_null() {
            // SAFETY: not NULL; the caller guarantees it is writable.
            unsafe { *index = i };
        }
        Ok(())
    })
}

/// Frames published so far (the next frame's index); 0 if `w` is NULL.
///
/// Thread safety: any thread.
///
/// # Safety
/// `w` is NULL or a live writer.
#[no_mangle]
pub unsafe extern "C" fn shmframe_writer_frames_published(w: *const shmframe_writer) -> u64 {
    // SAFETY: forwarded from the caller.
    guard_value(0, || unsafe {
        with_writer(w, |w| Ok(w.frames_published()))
    })
}

/// The channel's metadata schema as JSON (see `shmframe_writer_options_set_schema_json`), in
/// `*out`, to be freed with `shmframe_string_free`; `*out` is NULL if the channel declares none.
///
/// Thread safety: any thread.
///
/// # Safety
/// `w` is NULL or a live writer; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmframe_writer_schema_json(
    w: *const shmframe_writer,
    out: *mut *mut c_char,
) -> shmframe_status {
    // SAFETY: forwarded from the caller.
    unsafe { clear_out(out) };
    guard(|| {
        // SAFETY: the caller guarantees a live writer.
        let json = unsafe { with_writer(w, |w| Ok(w.schema().map(schema::to_json))) }?;
        // SAFETY: the caller guarantees `out` is NULL or writable.
        unsafe { put_string(out, json) }
    })
}

/// # Safety
/// `out` is NULL or writable.
unsafe fn put_string(out: *mut *mut c_char, s: Option<String>) -> R<()> {
    // SAFETY: forwarded from the caller.
    let slot = unsafe { handle_mut(out, "out") }?;
    *slot = match s {
        Some(s) => CString::new(s)
            .map_err(|_| invalid("string holds a NUL byte"))?
            .into_raw(),
        None => std::ptr::null_mut(),
    };
    Ok(())
}

/// Closes the channel and frees the writer: readers get SHMFRAME_CLOSED once they have read
/// the frames still in the ring; the object is removed from /dev/shm unless the options said
/// keep (a socket-served channel's socket is removed). NULL is ignored. A loan still open can
/// afterwards only be discarded (its memory stays valid until then).
///
/// Thread safety: not while another thread uses the same writer.
///
/// # Safety
/// `w` is NULL or a live writer, not used again after this call.
#[no_mangle]
pub unsafe extern "C" fn shmframe_writer_close(w: *mut shmframe_writer) {
    if w.is_null() {
        return;
    }
    guard(|| {
        // SAFETY: the caller guarantees it came from `shmframe_writer_create`, freed once.
        let h = unsafe { Box::from_raw(w) };
        let writer = lock(&h.inner).take();
        match writer {
            Some(writer) => Ok(writer.close()?),
            None => Ok(()),
        }
    });
}

// ---- loans ----------------------------------------------------------------------------------

/// A slot borrowed for zero-copy writing (opaque): fill `shmframe_loan_data`, then
/// `shmframe_loan_publish` or `shmframe_loan_discard`.
pub struct shmframe_loan {
    writer: SharedWriter,
    raw: sf::RawLoan,
}

/// Borrows a slot of the ring to fill in place (zero-copy): write the frame's `dtype` x `shape`
/// bytes at `shmframe_loan_data(*out)`, then publish or discard the loan. Until then other
/// writes on this writer fail (one loan at a time). Readers cannot see the bytes before
/// publication.
///
/// Thread safety: any thread; calls on one writer take turns.
///
/// # Safety
/// `w` is NULL or a live writer; `shape` points to `ndim` values; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmframe_writer_loan(
    w: *mut shmframe_writer,
    dtype: shmframe_dtype_arg,
    ndim: usize,
    shape: *const usize,
    out: *mut *mut shmframe_loan,
) -> shmframe_status {
    // SAFETY: forwarded from the caller.
    unsafe { clear_out(out) };
    guard(|| {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        let dtype = dtype_arg(dtype)?;
        // SAFETY: the caller guarantees `shape` holds `ndim` values.
        let shape = unsafe { shape_arg(ndim, shape) }?;
        frame_bytes(dtype, shape)?;
        // SAFETY: the caller guarantees a live writer.
        let h = unsafe { handle(w, "writer") }?;
        let raw = {
            let mut g = lock(&h.inner);
            let writer = g.as_mut().ok_or_else(closed_writer)?;
            writer.loan_raw(dtype, shape)?
        };
        let loan = shmframe_loan {
            writer: h.inner.clone(),
            raw,
        };
        // SAFETY: checked non-NULL above; the caller guarantees it is writable.
        unsafe { put(out, loan) }
    })
}

/// The loan's bytes in shared memory, `shmframe_loan_len` of them, for this thread to fill;
/// valid until the loan is published or discarded. NULL if `l` is NULL.
///
/// Thread safety: one thread at a time per loan.
///
/// # Safety
/// `l` is NULL or a live loan.
#[no_mangle]
pub unsafe extern "C" fn shmframe_loan_data(l: *mut shmframe_loan) -> *mut c_void {
    guard_value(std::ptr::null_mut(), || {
        // SAFETY: the caller guarantees a live loan used by one thread.
        let l = unsafe { handle_mut(l, "loan") }?;
        Ok(l.raw.as_mut_slice().as_mut_ptr().cast())
    })
}

/// Bytes in the loan (element size x product of the shape); 0 if `l` is NULL.
///
/// Thread safety: any thread.
///
/// # Safety
/// `l` is NULL or a live loan.
#[no_mangle]
pub unsafe extern "C" fn shmframe_loan_len(l: *const shmframe_loan) -> usize {
    // SAFETY: the caller guarantees a live loan.
    guard_value(0, || Ok(unsafe { handle(l, "loan") }?.raw.len()))
}

/// Publishes the loan's frame with `meta_len` bytes of metadata (0: none), stores its index in
/// `*index` unless `index` is NULL, and frees the loan — also on failure (then the frame is
/// discarded). Errors: SHMFRAME_INVALID_ARGUMENT (metadata size), SHMFRAME_CLOSED (the writer
/// was closed first).
///
/// Thread safety: any thread; calls on one writer take turns.
///
/// # Safety
/// `l` is NULL or a live loan, not used after this call; `meta` points to `meta_len` bytes;
/// `index` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmframe_loan_publish(
    l: *mut shmframe_loan,
    meta: *const c_void,
    meta_len: usize,
    index: *mut u64,
) -> shmframe_status {
    guard(|| {
        if l.is_null() {
            return Err(invalid("loan is NULL"));
        }
        // SAFETY: the caller guarantees it came from `shmframe_writer_loan`, freed once.
        let loan = unsafe { Box::from_raw(l) };
        let shmframe_loan { writer, raw } = *loan;
        let mut g = lock(&writer);
        let w = g.as_mut().ok_or_else(closed_writer)?;
        // SAFETY: the caller guarantees `meta_len` readable bytes at `meta`.
        let meta = match unsafe { bytes_arg(meta, meta_len, "meta") } {
            Ok(m) => m,
            Err(e) => {
                w.discard_raw(raw);
                return Err(e);
            }
        };
        let i = w.publish_raw(raw, meta)?;
        if !index.is_null() {
            // SAFETY: not NULL; the caller guarantees it is writable.
            unsafe { *index = i };
        }
        Ok(())
    })
}

/// Discards the loan (the slot is left empty; nothing is published) and frees it. NULL is
/// ignored.
///
/// Thread safety: any thread; calls on one writer take turns.
///
/// # Safety
/// `l` is NULL or a live loan, not used after this call.
#[no_mangle]
pub unsafe extern "C" fn shmframe_loan_discard(l: *mut shmframe_loan) {
    if l.is_null() {
        return;
    }
    guard(|| {
        // SAFETY: the caller guarantees it came from `shmframe_writer_loan`, freed once.
        let loan = unsafe { Box::from_raw(l) };
        let shmframe_loan { writer, raw } = *loan;
        if let Some(w) = lock(&writer).as_mut() {
            w.discard_raw(raw);
        }
        Ok(())
    });
}

// ---- reader ---------------------------------------------------------------------------------

/// A channel's reader (opaque). Calls on one reader from several threads are serialised by an
/// internal lock (a thread blocked in `shmframe_reader_next_view` makes the others wait); use
/// one reader per thread to read in parallel.
pub struct shmframe_reader {
    inner: Mutex<sf::Reader>,
}

/// A reader from `attempt(None)` (no waiting) or `attempt(Some(t))` (waiting up to `t`) as
/// `timeout_ms` says (< 0: forever, in hour-long waits).
fn wait_reader(
    timeout_ms: i64,
    attempt: impl Fn(Option<Duration>) -> Result<sf::Reader, OpenError>,
) -> Result<sf::Reader, OpenError> {
    match timeout(timeout_ms) {
        Some(Duration::ZERO) => attempt(None),
        Some(t) => attempt(Some(t)),
        None => loop {
            match attempt(Some(Duration::from_secs(3600))) {
                Err(OpenError::Timeout { .. } | OpenError::SocketTimeout { .. }) => continue,
                other => break other,
            }
        },
    }
}

fn open_reader(name: &str, timeout_ms: i64) -> Result<sf::Reader, OpenError> {
    wait_reader(timeout_ms, |t| match t {
        None => sf::Reader::open(name),
        Some(t) => sf::Reader::open_wait(name, t),
    })
}

/// Opens channel `name` and stores its reader in `*out`. `timeout_ms`: 0, the channel must
/// exist; > 0, wait up to that long for it to appear (the reader may start before its
/// writer; this waits on inotify, not by polling); < 0, wait forever. The reader starts at the
/// newest frame.
///
/// Errors: SHMFRAME_NOT_FOUND (no such channel, or none within the timeout),
/// SHMFRAME_PERMISSION, SHMFRAME_CORRUPT, SHMFRAME_VERSION_MISMATCH, SHMFRAME_INVALID_ARGUMENT.
/// On failure `*out` is NULL.
///
/// Thread safety: any thread.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmframe_reader_open(
    name: *const c_char,
    timeout_ms: i64,
    out: *mut *mut shmframe_reader,
) -> shmframe_status {
    // SAFETY: forwarded from the caller.
    unsafe { clear_out(out) };
    guard(|| {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        // SAFETY: the caller guarantees NULL or a NUL-terminated string.
        let name = unsafe { c_str(name, "name") }?;
        let r = open_reader(name, timeout_ms)?;
        let handle = shmframe_reader {
            inner: Mutex::new(r),
        };
        // SAFETY: checked non-NULL above; the caller guarantees it is writable.
        unsafe { put(out, handle) }
    })
}

fn connect_reader(path: &Path, timeout_ms: i64) -> Result<sf::Reader, OpenError> {
    wait_reader(timeout_ms, |t| match t {
        None => sf::Reader::connect(path),
        Some(t) => sf::Reader::connect_wait(path, t),
    })
}

/// Connects to the writer serving a channel on the Unix socket at `path`
/// (`shmframe_writer_options_set_socket`) and stores its reader in `*out`; from then on it
/// is a reader like one from `shmframe_reader_open`. `timeout_ms`: 0, the writer must be
/// serving; > 0, wait up to that long for it (the reader may start before its writer; this
/// waits on inotify in the socket's directory, not by polling); < 0, wait forever. `path`:
/// any file path (bytes, as `open` takes), at most 108 bytes. The reader starts at the newest
/// frame; after SHMFRAME_WRITER_GONE or SHMFRAME_CLOSED it follows a new writer on the same
/// socket.
///
/// Errors: SHMFRAME_NOT_FOUND (no socket at `path`, a stale one whose writer died, or none
/// served within the timeout), SHMFRAME_PERMISSION (the socket's mode, or the writer refused
/// this user), SHMFRAME_CORRUPT (not a shmframe writer's socket: another program's, or a
/// file that is no socket), SHMFRAME_VERSION_MISMATCH, SHMFRAME_INVALID_ARGUMENT (NULL, empty
/// or too long `path`, NULL `out`). On failure `*out` is NULL.
///
/// Thread safety: any thread.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmframe_reader_connect(
    path: *const c_char,
    timeout_ms: i64,
    out: *mut *mut shmframe_reader,
) -> shmframe_status {
    // SAFETY: forwarded from the caller.
    unsafe { clear_out(out) };
    guard(|| {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        // SAFETY: the caller guarantees NULL or a NUL-terminated string.
        let path = unsafe { path_arg(path, "path") }?;
        let r = connect_reader(path, timeout_ms)?;
        let handle = shmframe_reader {
            inner: Mutex::new(r),
        };
        // SAFETY: checked non-NULL above; the caller guarantees it is writable.
        unsafe { put(out, handle) }
    })
}

/// # Safety
/// `r` is NULL or a live reader.
unsafe fn with_reader<T>(
    r: *const shmframe_reader,
    f: impl FnOnce(&mut sf::Reader) -> R<T>,
) -> R<T> {
    // SAFETY: forwarded from the caller.
    let h = unsafe { handle(r, "reader") }?;
    f(&mut lock(&h.inner))
}

/// A zero-copy frame in shared memory (opaque), pinned while it lives: the writer skips its
/// slot, so the bytes cannot change. Release it with `shmframe_view_release`.
pub struct shmframe_view {
    view: FrameView,
}

/// Waits up to `timeout_ms` (< 0: forever; 0: do not wait) for the next frame and stores a
/// zero-copy view of it in `*out`. Frames come in order while the ring still holds them (see
/// `shmframe_view_missed`), or the newest one after `shmframe_reader_set_latest_only`.
///
/// Errors: SHMFRAME_TIMEOUT; SHMFRAME_CLOSED (the writer closed the channel and every frame
/// has been read); SHMFRAME_WRITER_GONE (the writer died; noticed within a second); after either,
/// the next call follows a new writer of the same name (or on the same socket). On failure
/// `*out` is NULL.
///
/// Each view pins one slot of the ring until released: a reader holding more views than the
/// channel has slots starves the writer (SHMFRAME_SLOTS_PINNED on its side).
///
/// Thread safety: any thread; calls on one reader take turns.
///
/// # Safety
/// `r` is NULL or a live reader; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmframe_reader_next_view(
    r: *mut shmframe_reader,
    timeout_ms: i64,
    out: *mut *mut shmframe_view,
) -> shmframe_status {
    // SAFETY: forwarded from the caller.
    unsafe { clear_out(out) };
    guard(|| {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        // SAFETY: the caller guarantees a live reader.
        let view = unsafe { with_reader(r, |r| Ok(r.next_view(timeout(timeout_ms))?)) }?;
        // SAFETY: checked non-NULL above; the caller guarantees it is writable.
        unsafe { put(out, shmframe_view { view }) }
    })
}

/// A frame received by copy (opaque), reusable: `shmframe_reader_next` refills it without
/// allocating once its buffers are large enough.
pub struct shmframe_frame {
    frame: Frame,
}

/// As `shmframe_reader_next_view`, but copies the frame into `frame` (created with
/// `shmframe_frame_new`, reused from call to call) after verifying that the writer did not
/// touch it meanwhile. Pins nothing. On failure `frame` keeps its previous contents.
///
/// Thread safety: any thread; calls on one reader take turns.
///
/// # Safety
/// `r` is NULL or a live reader; `frame` is NULL or a live frame no other thread uses.
#[no_mangle]
pub unsafe extern "C" fn shmframe_reader_next(
    r: *mut shmframe_reader,
    timeout_ms: i64,
    frame: *mut shmframe_frame,
) -> shmframe_status {
    guard(|| {
        // SAFETY: the caller guarantees a live frame used by one thread.
        let f = unsafe { handle_mut(frame, "frame") }?;
        // SAFETY: the caller guarantees a live reader.
        unsafe { with_reader(r, |r| Ok(r.next_into(&mut f.frame, timeout(timeout_ms))?)) }
    })
}

/// `true`: the next call skips to the newest frame (counting skipped ones as missed), as a
/// display wants; `false` (default): every frame in order while the ring still holds it.
///
/// Thread safety: any thread; calls on one reader take turns.
///
/// # Safety
/// `r` is NULL or a live reader.
#[no_mangle]
pub unsafe extern "C" fn shmframe_reader_set_latest_only(
    r: *mut shmframe_reader,
    latest_only: bool,
) -> shmframe_status {
    // SAFETY: the caller guarantees a live reader.
    guard(|| unsafe {
        with_reader(r, |r| {
            r.set_latest_only(latest_only);
            Ok(())
        })
    })
}

/// The channel's metadata schema as JSON (the format of
/// `shmframe_writer_options_set_schema_json`, every key present), in `*out`, to be freed with
/// `shmframe_string_free`; `*out` is NULL if the channel declares no metadata.
///
/// Thread safety: any thread; calls on one reader take turns.
///
/// # Safety
/// `r` is NULL or a live reader; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmframe_reader_schema_json(
    r: *const shmframe_reader,
    out: *mut *mut c_char,
) -> shmframe_status {
    // SAFETY: forwarded from the caller.
    unsafe { clear_out(out) };
    guard(|| {
        // SAFETY: the caller guarantees a live reader.
        let json = unsafe { with_reader(r, |r| Ok(r.schema().map(schema::to_json))) }?;
        // SAFETY: the caller guarantees `out` is NULL or writable.
        unsafe { put_string(out, json) }
    })
}

/// `true` while the writer process holds the channel (checked with the lock the kernel drops
/// when it dies); `false` if it is gone or `r` is NULL.
///
/// Thread safety: any thread; calls on one reader take turns.
///
/// # Safety
/// `r` is NULL or a live reader.
#[no_mangle]
pub unsafe extern "C" fn shmframe_reader_writer_alive(r: *const shmframe_reader) -> bool {
    // SAFETY: the caller guarantees a live reader.
    guard_value(false, || unsafe {
        with_reader(r, |r| Ok(r.writer_alive()))
    })
}

/// Frees the reader. NULL is ignored. Views and frames it handed out stay valid until they
/// are released / freed.
///
/// Thread safety: not while another thread uses the same reader.
///
/// # Safety
/// `r` is NULL or a live reader, not used after this call.
#[no_mangle]
pub unsafe extern "C" fn shmframe_reader_close(r: *mut shmframe_reader) {
    if r.is_null() {
        return;
    }
    guard(|| {
        // SAFETY: the caller guarantees it came from `shmframe_reader_open` or
        // `shmframe_reader_connect`, freed once.
        drop(unsafe { Box::from_raw(r) });
        Ok(())
    });
}

// ---- views ----------------------------------------------------------------------------------

/// # Safety
/// `v` is NULL or a live view.
unsafe fn view_get<T>(v: *const shmframe_view, fallback: T, f: impl FnOnce(&FrameView) -> T) -> T {
    // SAFETY: forwarded from the caller.
    guard_value(fallback, || Ok(f(&unsafe { handle(v, "view") }?.view)))
}

/// The frame's bytes in shared memory (C order), `shmframe_view_len` of them, read-only.
/// Valid until `shmframe_view_release(v)` — also after the reader is closed, the writer is
/// gone or the channel grows; never write through it. NULL if `v` is NULL.
///
/// Thread safety: any thread, concurrently with the other view accessors (all read-only).
///
/// # Safety
/// `v` is NULL or a live view.
#[no_mangle]
pub unsafe extern "C" fn shmframe_view_data(v: *const shmframe_view) -> *const c_void {
    // SAFETY: forwarded from the caller.
    unsafe { view_get(v, std::ptr::null(), |v| v.data().as_ptr().cast()) }
}

/// Bytes of the frame: element size x product of the shape. 0 if `v` is NULL.
///
/// Thread safety: any thread, concurrently with the other view accessors.
///
/// # Safety
/// `v` is NULL or a live view.
#[no_mangle]
pub unsafe extern "C" fn shmframe_view_len(v: *const shmframe_view) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { view_get(v, 0, |v| v.data().len()) }
}

/// The element type (SHMFRAME_U8 if `v` is NULL).
///
/// Thread safety: any thread, concurrently with the other view accessors.
///
/// # Safety
/// `v` is NULL or a live view.
#[no_mangle]
pub unsafe extern "C" fn shmframe_view_dtype(v: *const shmframe_view) -> shmframe_dtype {
    // SAFETY: forwarded from the caller.
    unsafe { view_get(v, shmframe_dtype::SHMFRAME_U8, |v| dtype_c(v.dtype)) }
}

/// Number of dimensions (0 to 8; 0 if `v` is NULL).
///
/// Thread safety: any thread, concurrently with the other view accessors.
///
/// # Safety
/// `v` is NULL or a live view.
#[no_mangle]
pub unsafe extern "C" fn shmframe_view_ndim(v: *const shmframe_view) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { view_get(v, 0, |v| v.shape().len()) }
}

/// The shape, `shmframe_view_ndim` values (e.g. height, width, channels), valid as long as
/// the view. NULL if `v` is NULL.
///
/// Thread safety: any thread, concurrently with the other view accessors.
///
/// # Safety
/// `v` is NULL or a live view.
#[no_mangle]
pub unsafe extern "C" fn shmframe_view_shape(v: *const shmframe_view) -> *const usize {
    // SAFETY: forwarded from the caller.
    unsafe { view_get(v, std::ptr::null(), |v| v.shape().as_ptr()) }
}

/// The writer's frame index (0, 1, 2, … for one writer's stream).
///
/// Thread safety: any thread, concurrently with the other view accessors.
///
/// # Safety
/// `v` is NULL or a live view.
#[no_mangle]
pub unsafe extern "C" fn shmframe_view_index(v: *const shmframe_view) -> u64 {
    // SAFETY: forwarded from the caller.
    unsafe { view_get(v, 0, |v| v.index) }
}

/// Frames published between the previous frame this reader received and this one.
///
/// Thread safety: any thread, concurrently with the other view accessors.
///
/// # Safety
/// `v` is NULL or a live view.
#[no_mangle]
pub unsafe extern "C" fn shmframe_view_missed(v: *const shmframe_view) -> u64 {
    // SAFETY: forwarded from the caller.
    unsafe { view_get(v, 0, |v| v.missed) }
}

/// The writer's CLOCK_MONOTONIC at publication, in ns (see `shmframe_monotonic_ns`).
///
/// Thread safety: any thread, concurrently with the other view accessors.
///
/// # Safety
/// `v` is NULL or a live view.
#[no_mangle]
pub unsafe extern "C" fn shmframe_view_timestamp_ns(v: *const shmframe_view) -> u64 {
    // SAFETY: forwarded from the caller.
    unsafe { view_get(v, 0, |v| v.timestamp_ns) }
}

/// The frame's metadata bytes (a copy held by the view), laid out as the channel's schema
/// says; `shmframe_view_meta_len` of them, 0 if the frame carries none. Valid as long as the
/// view.
///
/// Thread safety: any thread, concurrently with the other view accessors.
///
/// # Safety
/// `v` is NULL or a live view.
#[no_mangle]
pub unsafe extern "C" fn shmframe_view_meta(v: *const shmframe_view) -> *const c_void {
    // SAFETY: forwarded from the caller.
    unsafe { view_get(v, std::ptr::null(), |v| v.meta.as_ptr().cast()) }
}

/// Bytes of metadata (the schema's size, or 0).
///
/// Thread safety: any thread, concurrently with the other view accessors.
///
/// # Safety
/// `v` is NULL or a live view.
#[no_mangle]
pub unsafe extern "C" fn shmframe_view_meta_len(v: *const shmframe_view) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { view_get(v, 0, |v| v.meta.len()) }
}

/// Releases the view: unpins its slot for the writer and frees it. Pointers obtained from it
/// are invalid afterwards. NULL is ignored.
///
/// Thread safety: any thread, once, when no other thread uses the view.
///
/// # Safety
/// `v` is NULL or a live view, not used after this call.
#[no_mangle]
pub unsafe extern "C" fn shmframe_view_release(v: *mut shmframe_view) {
    if v.is_null() {
        return;
    }
    guard(|| {
        // SAFETY: the caller guarantees it came from `shmframe_reader_next_view`, freed once.
        drop(unsafe { Box::from_raw(v) });
        Ok(())
    });
}

// ---- copied frames --------------------------------------------------------------------------

/// A new, empty frame for `shmframe_reader_next`; free it with `shmframe_frame_free`. NULL
/// only if allocation fails.
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn shmframe_frame_new() -> *mut shmframe_frame {
    guard_value(std::ptr::null_mut(), || {
        Ok(Box::into_raw(Box::new(shmframe_frame {
            frame: Frame::default(),
        })))
    })
}

/// # Safety
/// `f` is NULL or a live frame.
unsafe fn frame_get<T>(f: *const shmframe_frame, fallback: T, g: impl FnOnce(&Frame) -> T) -> T {
    // SAFETY: forwarded from the caller.
    guard_value(fallback, || Ok(g(&unsafe { handle(f, "frame") }?.frame)))
}

/// The frame's bytes (C order), `shmframe_frame_len` of them, owned by the frame: valid until
/// the next `shmframe_reader_next` into it or `shmframe_frame_free`. The caller may write to
/// them. NULL if `f` is NULL.
///
/// Thread safety: the accessors of one frame may run concurrently, not with a
/// `shmframe_reader_next` into it.
///
/// # Safety
/// `f` is NULL or a live frame.
#[no_mangle]
pub unsafe extern "C" fn shmframe_frame_data(f: *mut shmframe_frame) -> *mut c_void {
    guard_value(std::ptr::null_mut(), || {
        // SAFETY: the caller guarantees a live frame.
        let f = unsafe { handle_mut(f, "frame") }?;
        Ok(f.frame.data.as_mut_ptr().cast())
    })
}

/// Bytes of the frame.
///
/// Thread safety: any thread, not during a `shmframe_reader_next` into the same frame.
///
/// # Safety
/// `f` is NULL or a live frame.
#[no_mangle]
pub unsafe extern "C" fn shmframe_frame_len(f: *const shmframe_frame) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { frame_get(f, 0, |f| f.data.len()) }
}

/// The element type.
///
/// Thread safety: any thread, not during a `shmframe_reader_next` into the same frame.
///
/// # Safety
/// `f` is NULL or a live frame.
#[no_mangle]
pub unsafe extern "C" fn shmframe_frame_dtype(f: *const shmframe_frame) -> shmframe_dtype {
    // SAFETY: forwarded from the caller.
    unsafe { frame_get(f, shmframe_dtype::SHMFRAME_U8, |f| dtype_c(f.dtype)) }
}

/// Number of dimensions.
///
/// Thread safety: any thread, not during a `shmframe_reader_next` into the same frame.
///
/// # Safety
/// `f` is NULL or a live frame.
#[no_mangle]
pub unsafe extern "C" fn shmframe_frame_ndim(f: *const shmframe_frame) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { frame_get(f, 0, |f| f.shape.len()) }
}

/// The shape, `shmframe_frame_ndim` values; valid until the next read into the frame.
///
/// Thread safety: any thread, not during a `shmframe_reader_next` into the same frame.
///
/// # Safety
/// `f` is NULL or a live frame.
#[no_mangle]
pub unsafe extern "C" fn shmframe_frame_shape(f: *const shmframe_frame) -> *const usize {
    // SAFETY: forwarded from the caller.
    unsafe { frame_get(f, std::ptr::null(), |f| f.shape.as_ptr()) }
}

/// The writer's frame index.
///
/// Thread safety: any thread, not during a `shmframe_reader_next` into the same frame.
///
/// # Safety
/// `f` is NULL or a live frame.
#[no_mangle]
pub unsafe extern "C" fn shmframe_frame_index(f: *const shmframe_frame) -> u64 {
    // SAFETY: forwarded from the caller.
    unsafe { frame_get(f, 0, |f| f.index) }
}

/// Frames missed between the previous frame this reader received and this one.
///
/// Thread safety: any thread, not during a `shmframe_reader_next` into the same frame.
///
/// # Safety
/// `f` is NULL or a live frame.
#[no_mangle]
pub unsafe extern "C" fn shmframe_frame_missed(f: *const shmframe_frame) -> u64 {
    // SAFETY: forwarded from the caller.
    unsafe { frame_get(f, 0, |f| f.missed) }
}

/// The writer's CLOCK_MONOTONIC at publication, in ns.
///
/// Thread safety: any thread, not during a `shmframe_reader_next` into the same frame.
///
/// # Safety
/// `f` is NULL or a live frame.
#[no_mangle]
pub unsafe extern "C" fn shmframe_frame_timestamp_ns(f: *const shmframe_frame) -> u64 {
    // SAFETY: forwarded from the caller.
    unsafe { frame_get(f, 0, |f| f.timestamp_ns) }
}

/// The frame's metadata bytes, `shmframe_frame_meta_len` of them (0: none).
///
/// Thread safety: any thread, not during a `shmframe_reader_next` into the same frame.
///
/// # Safety
/// `f` is NULL or a live frame.
#[no_mangle]
pub unsafe extern "C" fn shmframe_frame_meta(f: *const shmframe_frame) -> *const c_void {
    // SAFETY: forwarded from the caller.
    unsafe { frame_get(f, std::ptr::null(), |f| f.meta.as_ptr().cast()) }
}

/// Bytes of metadata.
///
/// Thread safety: any thread, not during a `shmframe_reader_next` into the same frame.
///
/// # Safety
/// `f` is NULL or a live frame.
#[no_mangle]
pub unsafe extern "C" fn shmframe_frame_meta_len(f: *const shmframe_frame) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { frame_get(f, 0, |f| f.meta.len()) }
}

/// Frees a frame. NULL is ignored.
///
/// Thread safety: once, when no other thread uses the frame.
///
/// # Safety
/// `f` is NULL or a live frame, not used after this call.
#[no_mangle]
pub unsafe extern "C" fn shmframe_frame_free(f: *mut shmframe_frame) {
    if f.is_null() {
        return;
    }
    guard(|| {
        // SAFETY: the caller guarantees it came from `shmframe_frame_new`, freed once.
        drop(unsafe { Box::from_raw(f) });
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_a_status_and_a_message() {
        let s = guard(|| panic!("boom"));
        assert_eq!(s, SHMFRAME_INTERNAL);
        // SAFETY: the last error is a NUL-terminated string of this thread.
        let msg = unsafe { CStr::from_ptr(shmframe_last_error()) }
            .to_str()
            .unwrap();
        assert!(msg.contains("boom"), "{msg}");
        assert_eq!(guard_value(7, || panic!("again")), 7);
    }

    #[test]
    fn socket_errors_map_like_their_named_counterparts() {
        let path = || "/tmp/x.sock".to_string();
        let open = [
            (OpenError::NoSocket { path: path() }, SHMFRAME_NOT_FOUND),
            (OpenError::StaleSocket { path: path() }, SHMFRAME_NOT_FOUND),
            (
                OpenError::SocketTimeout {
                    path: path(),
                    waited: Duration::from_millis(30),
                },
                SHMFRAME_NOT_FOUND,
            ),
            (
                OpenError::SocketDenied {
                    path: path(),
                    mode: 0o600,
                    uid: 0,
                },
                SHMFRAME_PERMISSION,
            ),
            (
                OpenError::SocketRefused {
                    path: path(),
                    reason: "uid 1000 is not allowed".into(),
                },
                SHMFRAME_PERMISSION,
            ),
            (
                OpenError::NotShmframeSocket {
                    path: path(),
                    what: "garbage".into(),
                },
                SHMFRAME_CORRUPT,
            ),
        ];
        for (e, want) in open {
            assert_eq!(open_status(&e), want, "{e:?}");
            let reopen = Failure::from(ReadError::Reopen(e));
            assert_eq!(reopen.status, want);
        }
        let create = [
            (
                CreateError::SocketInUse {
                    path: path(),
                    pid: 7,
                },
                SHMFRAME_BUSY,
            ),
            (
                CreateError::NotASocket {
                    path: path(),
                    kind: "a regular file",
                },
                SHMFRAME_IO,
            ),
            (
                CreateError::Socket {
                    name: "x".into(),
                    path: path(),
                    op: "bind",
                    source: sf::error::Errno::ADDRINUSE,
                },
                SHMFRAME_IO,
            ),
        ];
        for (e, want) in create {
            assert_eq!(create_status(&e), want, "{e:?}");
        }
    }

    #[test]
    fn dtypes_map_both_ways() {
        for (c, r) in DTYPES {
            assert_eq!(dtype_arg(shmframe_dtype_arg(c as u32)).ok(), Some(r));
            assert_eq!(dtype_c(r), c);
            assert_eq!(shmframe_dtype_size(shmframe_dtype_arg(c as u32)), r.size());
        }
        assert!(dtype_arg(shmframe_dtype_arg(11)).is_err());
        assert_eq!(DTYPES.len(), DType::ALL.len());
    }
}
