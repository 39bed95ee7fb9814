//! `shmframe._shmframe`: the compiled half of the Python package `shmframe`.
//!
//! This module is deliberately thin: it moves bytes and NumPy arrays in and out of the Rust
//! library and maps its typed errors to Python exceptions. The friendly API (metadata as ctypes
//! structures or structured dtypes, context managers, iteration) lives in `python/shmframe`.
//!
//! Memory safety across the language boundary rests on one rule, the one rust-numpy follows: an
//! ndarray that points into shared memory has a base object that owns the mapping. Arrays over a
//! zero-copy view own the `FrameView` (mapping and slot pin); arrays over a writer's loan own a
//! handle on the mapping. Python may keep such an array as long as it likes; it never dangles.
//!
//! Blocking calls detach from the interpreter (other Python threads run) and wait in slices of at
//! most `SLICE`, checking for signals between slices, so Ctrl-C interrupts them promptly.

use numpy::npyffi::{self, npy_intp, PY_ARRAY_API};
use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyOSError, PyPermissionError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyBytes, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};
use shmframe::{
    CreateError, DType, Field, Frame, FrameView, OpenError, RawLoan, ReadError, Reader, Schema,
    WriteError, Writer, WriterOptions,
};
use std::any::Any;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The longest a blocking call waits without checking for signals (Ctrl-C).
const SLICE: Duration = Duration::from_millis(50);

pyo3::import_exception!(shmframe._errors, Error);
pyo3::import_exception!(shmframe._errors, ChannelNotFound);
pyo3::import_exception!(shmframe._errors, WriterGone);
pyo3::import_exception!(shmframe._errors, ChannelClosed);
pyo3::import_exception!(shmframe._errors, Timeout);
pyo3::import_exception!(shmframe._errors, LayoutMismatch);
pyo3::import_exception!(shmframe._errors, ChannelBusy);
pyo3::import_exception!(shmframe._errors, PermissionDenied);

fn create_err(e: CreateError) -> PyErr {
    use shmframe::error::Errno;
    let msg = e.to_string();
    match e {
        CreateError::Name(_) | CreateError::BadOptions { .. } => PyValueError::new_err(msg),
        CreateError::Busy { .. } | CreateError::SocketInUse { .. } => ChannelBusy::new_err(msg),
        CreateError::PermissionDenied { .. } => PermissionDenied::new_err(msg),
        CreateError::Socket {
            source: Errno::ACCESS | Errno::PERM,
            ..
        } => PermissionDenied::new_err(msg),
        // Something that is not ours at the path, as a FIFO under a channel's name is.
        CreateError::NotASocket { .. } => LayoutMismatch::new_err(msg),
        _ => Error::new_err(msg),
    }
}

fn open_err(e: OpenError) -> PyErr {
    let msg = e.to_string();
    match e {
        OpenError::Name(_) => PyValueError::new_err(msg),
        // A stale socket is "no channel yet" too: waiting readers wait through it.
        OpenError::NotFound { .. }
        | OpenError::Timeout { .. }
        | OpenError::NoSocket { .. }
        | OpenError::StaleSocket { .. }
        | OpenError::SocketTimeout { .. } => ChannelNotFound::new_err(msg),
        OpenError::PermissionDenied { .. }
        | OpenError::SocketDenied { .. }
        | OpenError::SocketRefused { .. } => PermissionDenied::new_err(msg),
        OpenError::NotOurs { .. }
        | OpenError::VersionMismatch { .. }
        | OpenError::Truncated { .. }
        | OpenError::Corrupt { .. }
        | OpenError::NotShmframeSocket { .. } => LayoutMismatch::new_err(msg),
        _ => Error::new_err(msg),
    }
}

fn read_err(e: ReadError) -> PyErr {
    let msg = e.to_string();
    match e {
        ReadError::Timeout { .. } => Timeout::new_err(msg),
        ReadError::WriterGone { .. } => WriterGone::new_err(msg),
        ReadError::Closed { .. } => ChannelClosed::new_err(msg),
        ReadError::CorruptFrame { .. } => LayoutMismatch::new_err(msg),
        ReadError::Reopen(e) => open_err(e),
        _ => Error::new_err(msg),
    }
}

fn write_err(e: WriteError) -> PyErr {
    let msg = e.to_string();
    match e {
        WriteError::BadFrame { .. }
        | WriteError::MetaMismatch { .. }
        | WriteError::LoanOpen { .. } => PyValueError::new_err(msg),
        _ => Error::new_err(msg),
    }
}

/// A timeout argument in seconds as an optional deadline. `None`, `math.inf` and any timeout
/// too long for the clock (beyond about 584 years) wait forever; NaN and negative numbers are a
/// `ValueError`. No value panics.
fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    let Some(t) = timeout else {
        return Ok(None);
    };
    if t.is_nan() || t < 0.0 {
        return Err(PyValueError::new_err(format!(
            "timeout must be a number of seconds ≥ 0, or None to wait forever, not {t}"
        )));
    }
    Ok(Duration::try_from_secs_f64(t)
        .ok()
        .and_then(|d| Instant::now().checked_add(d)))
}

/// A `LayoutMismatch` if `/dev/shm/shmframe.NAME` exists but is not a regular file (a FIFO, a
/// directory, a link…): another program owns the name, and opening a FIFO would block.
fn refuse_non_regular(name: &str) -> PyResult<()> {
    let Ok(name) = shmframe::Name::new(name) else {
        return Ok(()); // the library reports the bad name
    };
    let path = name.file_path();
    match std::fs::symlink_metadata(&path) {
        Ok(md) => match shmframe::channels::non_regular(md.file_type()) {
            Some(kind) => Err(LayoutMismatch::new_err(format!(
                "{} is {kind}, not a shmframe channel: another program owns this name; pick another name",
                path.display()
            ))),
            None => Ok(()),
        },
        Err(_) => Ok(()),
    }
}

/// Runs `step` with the interpreter detached, in slices of at most [`SLICE`] until `deadline`,
/// checking for signals between slices. `step` returns `Ok(Some(v))` when done, `Ok(None)` when
/// its slice ran out.
fn sliced<T, E>(
    py: Python<'_>,
    deadline: Option<Instant>,
    mut step: impl FnMut(Duration) -> Result<Option<T>, E> + Send,
) -> PyResult<Result<Option<T>, E>>
where
    T: Send,
    E: Send,
{
    // A first look without giving up the interpreter: when a frame is already there, this saves
    // a release and re-acquisition of the GIL.
    match step(Duration::ZERO) {
        Ok(None) => {}
        other => return Ok(other),
    }
    loop {
        let now = Instant::now();
        let slice = deadline.map_or(SLICE, |d| d.saturating_duration_since(now).min(SLICE));
        let last = deadline.is_some_and(|d| now + slice >= d);
        match py.detach(|| step(slice)) {
            Ok(None) if !last => py.check_signals()?,
            other => return Ok(other),
        }
    }
}

/// NumPy's descriptor of `dtype`, looked up by type (cached by NumPy), not parsed from a name:
/// this is on every frame's path.
fn descr_of(py: Python<'_>, of: DType) -> PyResult<Bound<'_, PyArrayDescr>> {
    use numpy::dtype;
    Ok(match of {
        DType::U8 => dtype::<u8>(py),
        DType::I8 => dtype::<i8>(py),
        DType::U16 => dtype::<u16>(py),
        DType::I16 => dtype::<i16>(py),
        DType::U32 => dtype::<u32>(py),
        DType::I32 => dtype::<i32>(py),
        DType::U64 => dtype::<u64>(py),
        DType::I64 => dtype::<i64>(py),
        DType::F32 => dtype::<f32>(py),
        DType::F64 => dtype::<f64>(py),
        DType::Bool => dtype::<bool>(py),
        other => PyArrayDescr::new(py, other.name())?,
    })
}

fn dtype_of(descr: &Bound<'_, PyArrayDescr>) -> PyResult<DType> {
    let unsupported = || {
        PyTypeError::new_err(format!(
            "arrays of dtype {} cannot be sent: use bool, uint8, int8, uint16, int16, uint32, \
             int32, uint64, int64, float32 or float64 (convert with array.astype(...))",
            descr
        ))
    };
    if descr.has_fields() || descr.has_subarray() {
        return Err(unsupported());
    }
    if descr.is_native_byteorder() == Some(false) {
        return Err(PyTypeError::new_err(format!(
            "array has non-native byte order ({descr}): convert with array.astype(array.dtype.newbyteorder('='))"
        )));
    }
    Ok(match (descr.kind(), descr.itemsize()) {
        (b'b', 1) => DType::Bool,
        (b'u', 1) => DType::U8,
        (b'i', 1) => DType::I8,
        (b'u', 2) => DType::U16,
        (b'i', 2) => DType::I16,
        (b'u', 4) => DType::U32,
        (b'i', 4) => DType::I32,
        (b'u', 8) => DType::U64,
        (b'i', 8) => DType::I64,
        (b'f', 4) => DType::F32,
        (b'f', 8) => DType::F64,
        _ => return Err(unsupported()),
    })
}

fn parse_dtype(name: &str) -> PyResult<DType> {
    DType::parse(name).ok_or_else(|| {
        PyTypeError::new_err(format!(
            "dtype {name:?} is not supported: use bool, uint8, int8, uint16, int16, uint32, int32, \
             uint64, int64, float32 or float64"
        ))
    })
}

fn dims(shape: &[usize]) -> PyResult<Vec<npy_intp>> {
    shape
        .iter()
        .map(|&d| npy_intp::try_from(d).map_err(|_| PyValueError::new_err("dimension too large")))
        .collect()
}

/// A new C-contiguous ndarray of `dtype` and `shape`. With `data`, the array points at `data`
/// and `base` becomes its base object; without, NumPy allocates (and `base` is ignored).
///
/// # Safety
/// If `data` is given it must point to `shape`×`dtype` bytes (aligned for `dtype` or not, NumPy
/// checks) that stay mapped as long as `base` lives, and, if `writable`, that nothing else writes
/// while the array is meant to be filled.
unsafe fn new_array<'py>(
    py: Python<'py>,
    dtype: DType,
    shape: &[usize],
    data: Option<*mut u8>,
    writable: bool,
    base: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let descr = descr_of(py, dtype)?;
    let mut dims = dims(shape)?;
    // With a data pointer, `flags` are the array's flags; without, any non-zero value asks NumPy
    // for Fortran order, so pass 0 (C order).
    let flags = match (data, writable) {
        (None, _) => 0,
        (Some(_), true) => npyffi::NPY_ARRAY_C_CONTIGUOUS | npyffi::NPY_ARRAY_WRITEABLE,
        (Some(_), false) => npyffi::NPY_ARRAY_C_CONTIGUOUS,
    };
    // SAFETY: the type object and descriptor come from NumPy's own API; `dims` has `shape.len()`
    // entries (≤ 8) and outlives the call; strides NULL means C order; `data` is NULL (NumPy
    // allocates) or valid as the caller guarantees. The descriptor reference is stolen.
    let ptr = unsafe {
        PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type),
            descr.into_dtype_ptr(),
            dims.len() as std::ffi::c_int,
            dims.as_mut_ptr(),
            std::ptr::null_mut(),
            data.map_or(std::ptr::null_mut(), |p| p.cast()),
            flags,
            std::ptr::null_mut(),
        )
    };
    // SAFETY: `ptr` is a new reference or NULL with an exception set.
    let array = unsafe { Bound::from_owned_ptr_or_err(py, ptr)? };
    if let (Some(_), Some(base)) = (data, base) {
        // SAFETY: `array` is a fresh ndarray without a base; SetBaseObject steals the reference
        // we pass (`into_ptr`) even on failure.
        let rc = unsafe {
            PY_ARRAY_API.PyArray_SetBaseObject(
                py,
                array.as_ptr().cast::<npyffi::PyArrayObject>(),
                base.into_ptr(),
            )
        };
        if rc != 0 {
            return Err(PyErr::fetch(py));
        }
    }
    Ok(array)
}

/// A copy of `bytes` as a new ndarray.
fn array_copy<'py>(
    py: Python<'py>,
    dtype: DType,
    shape: &[usize],
    bytes: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: no data pointer: NumPy allocates the array.
    let array = unsafe { new_array(py, dtype, shape, None, true, None)? };
    // SAFETY: `array` is a fresh C-contiguous ndarray of `shape` × `dtype`, which is exactly
    // `bytes.len()` bytes (the library checked the frame's length against its shape).
    unsafe {
        let data = (*array.as_ptr().cast::<npyffi::PyArrayObject>())
            .fields
            .data;
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), data.cast::<u8>(), bytes.len());
    }
    Ok(array)
}

/// A schema as Python passes it: (type name, size, align, [(field, dtype name, count, offset)]).
type SchemaArg = (String, u32, u32, Vec<(String, String, u32, u32)>);

fn schema_from_tuple((type_name, size, align, fields): SchemaArg) -> PyResult<Schema> {
    let fields = fields
        .into_iter()
        .map(|(name, dtype, count, offset)| {
            Ok(Field {
                name,
                dtype: parse_dtype(&dtype)?,
                count,
                offset,
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    let schema = Schema {
        type_name,
        size,
        align,
        fields,
    };
    schema
        .validate()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(schema)
}

type SchemaTuple = (String, u32, u32, Vec<(String, &'static str, u32, u32)>);

fn schema_to_tuple(s: &Schema) -> SchemaTuple {
    (
        s.type_name.clone(),
        s.size,
        s.align,
        s.fields
            .iter()
            .map(|f| (f.name.clone(), f.dtype.name(), f.count, f.offset))
            .collect(),
    )
}

/// Keeps a writer's mapping alive for an ndarray over a loaned slot.
#[pyclass(frozen, module = "shmframe._shmframe")]
struct LoanMapping {
    _mapping: Arc<dyn Any + Send + Sync>,
}

struct WriterState {
    writer: Option<Writer>,
    loan: Option<RawLoan>,
}

/// Low-level writer; use `shmframe.Writer`.
#[pyclass(module = "shmframe._shmframe", name = "_Writer")]
struct PyWriter {
    state: Mutex<WriterState>,
    name: String,
    /// The socket a socket-served channel is served on (kept after `close`).
    socket: Option<PathBuf>,
}

fn lock<'a, T>(m: &'a Mutex<T>, py: Python<'_>) -> MutexGuard<'a, T> {
    // A panic while holding the lock cannot leave the state half-updated in a way that matters
    // to memory safety (the library keeps its own invariants), so recover from poisoning.
    m.lock_py_attached(py)
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn closed_err(what: &str, name: &str) -> PyErr {
    PyValueError::new_err(format!("{what} of channel `{name}` is closed"))
}

#[pymethods]
impl PyWriter {
    #[new]
    #[pyo3(signature = (name, slots, mode, keep, schema=None, socket=None))]
    fn new(
        name: &str,
        slots: u32,
        mode: u32,
        keep: bool,
        schema: Option<SchemaArg>,
        socket: Option<PathBuf>,
    ) -> PyResult<Self> {
        let mut opts = WriterOptions::new().slots(slots).mode(mode).keep(keep);
        if let Some(schema) = schema {
            opts = opts.schema(schema_from_tuple(schema)?);
        }
        if let Some(path) = &socket {
            opts = opts.socket(path.clone());
        }
        let writer = Writer::create(name, opts).map_err(create_err)?;
        Ok(PyWriter {
            state: Mutex::new(WriterState {
                writer: Some(writer),
                loan: None,
            }),
            name: name.to_string(),
            socket,
        })
    }

    /// The socket path the channel is served on, or None for a channel named in /dev/shm.
    #[getter]
    fn socket(&self) -> Option<OsString> {
        self.socket.as_ref().map(|p| p.clone().into_os_string())
    }

    /// Readers the writer turned away since the last call (their credentials do not match the
    /// channel's mode), as (pid, uid, gid, reason); always empty for a named channel.
    fn refused_peers(&self, py: Python<'_>) -> Vec<(u32, u32, u32, String)> {
        lock(&self.state, py)
            .writer
            .as_ref()
            .map_or_else(Vec::new, |w| {
                w.refused_peers()
                    .into_iter()
                    .map(|p| (p.pid, p.uid, p.gid, p.reason))
                    .collect()
            })
    }

    /// Publishes a copy of a C-contiguous array; returns the frame's index.
    #[pyo3(signature = (array, meta=None))]
    fn write(
        &self,
        py: Python<'_>,
        array: &Bound<'_, PyUntypedArray>,
        meta: Option<&[u8]>,
    ) -> PyResult<u64> {
        let dtype = dtype_of(&array.dtype())?;
        if !array.is_c_contiguous() {
            return Err(PyValueError::new_err(
                "array is not C-contiguous: pass numpy.ascontiguousarray(array)",
            ));
        }
        let shape = array.shape().to_vec();
        let len = shape.iter().product::<usize>() * dtype.size();
        let mut st = lock(&self.state, py);
        let w = st
            .writer
            .as_mut()
            .ok_or_else(|| closed_err("writer", &self.name))?;
        let bytes: &[u8] = if len == 0 {
            &[]
        } else {
            // SAFETY: the array is C-contiguous with `len` bytes at its data pointer, and we hold
            // a reference to it (and the interpreter) for the whole copy, so it cannot be freed or
            // resized meanwhile.
            unsafe {
                std::slice::from_raw_parts((*array.as_array_ptr()).fields.data.cast::<u8>(), len)
            }
        };
        w.write_with_meta(dtype, &shape, bytes, meta.unwrap_or(&[]))
            .map_err(write_err)
    }

    /// Loans a slot: returns a writable ndarray over it. Finish with `publish` or `discard`.
    fn loan<'py>(
        &self,
        py: Python<'py>,
        shape: Vec<usize>,
        dtype: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let dtype = parse_dtype(dtype)?;
        // Before taking the slot: a shape NumPy cannot describe must not leave a loan open.
        dims(&shape)?;
        let mut st = lock(&self.state, py);
        if st.loan.is_some() {
            return Err(PyValueError::new_err(format!(
                "a loan on channel `{}` is already open: finish it (leave its `with` block) first",
                self.name
            )));
        }
        let w = st
            .writer
            .as_mut()
            .ok_or_else(|| closed_err("writer", &self.name))?;
        let mut loan = w.loan_raw(dtype, &shape).map_err(write_err)?;
        let data = loan.as_mut_slice().as_mut_ptr();
        let base = Bound::new(
            py,
            LoanMapping {
                _mapping: loan.mapping(),
            },
        )?
        .into_any();
        st.loan = Some(loan);
        // SAFETY: `data` points at the loan's `shape` × `dtype` bytes in the writer's mapping,
        // which `base` keeps mapped for as long as the array lives; the slot is claimed for this
        // loan (readers do not read it) until `publish`/`discard`.
        unsafe { new_array(py, dtype, &shape, Some(data), true, Some(base)) }
    }

    /// Publishes the open loan with optional metadata bytes; returns its index.
    #[pyo3(signature = (meta=None))]
    fn publish(&self, py: Python<'_>, meta: Option<&[u8]>) -> PyResult<u64> {
        let mut st = lock(&self.state, py);
        let st = &mut *st;
        let loan = st.loan.take().ok_or_else(|| {
            PyValueError::new_err(format!("no loan is open on channel `{}`", self.name))
        })?;
        let w = st
            .writer
            .as_mut()
            .ok_or_else(|| closed_err("writer", &self.name))?;
        w.publish_raw(loan, meta.unwrap_or(&[])).map_err(write_err)
    }

    /// Discards the open loan (if any).
    fn discard(&self, py: Python<'_>) {
        let mut st = lock(&self.state, py);
        let st = &mut *st;
        if let (Some(loan), Some(w)) = (st.loan.take(), st.writer.as_mut()) {
            w.discard_raw(loan);
        }
    }

    /// Closes the channel (removing it unless the writer keeps it). Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let mut st = lock(&self.state, py);
        if let (Some(loan), Some(w)) = (st.loan.take(), st.writer.as_mut()) {
            w.discard_raw(loan);
        }
        match st.writer.take() {
            Some(w) => w.close().map_err(write_err),
            None => Ok(()),
        }
    }

    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        lock(&self.state, py).writer.is_none()
    }

    #[getter]
    fn frames_published(&self, py: Python<'_>) -> u64 {
        lock(&self.state, py)
            .writer
            .as_ref()
            .map_or(0, |w| w.frames_published())
    }

    #[getter]
    fn capacity(&self, py: Python<'_>) -> usize {
        lock(&self.state, py)
            .writer
            .as_ref()
            .map_or(0, |w| w.capacity())
    }

    #[getter]
    fn schema(&self, py: Python<'_>) -> Option<SchemaTuple> {
        lock(&self.state, py)
            .writer
            .as_ref()
            .and_then(|w| w.schema().map(schema_to_tuple))
    }
}

/// Owns a zero-copy `FrameView` (mapping + slot pin) for the ndarrays over it.
#[pyclass(frozen, module = "shmframe._shmframe")]
struct ViewOwner {
    view: FrameView,
}

struct ReaderState {
    reader: Option<Reader>,
}

/// Low-level reader; use `shmframe.Reader`.
#[pyclass(module = "shmframe._shmframe", name = "_Reader")]
struct PyReader {
    /// Blocking calls hold the lock for one slice at a time, so `close` from another thread
    /// gets it within a slice.
    state: Mutex<ReaderState>,
    /// Set by `close` before it takes the lock: a blocking call stops at its next slice.
    closing: AtomicBool,
    name: String,
    /// The socket a socket-served channel was reached through (kept after `close`).
    socket: Option<PathBuf>,
}

/// Why a blocking reader call stopped early.
enum Stopped {
    /// The library's error.
    Read(ReadError),
    /// `close` was called (maybe from another thread).
    Closed,
}

/// A received frame (a copy, yours to keep).
///
/// :ivar array: the frame's ndarray.
/// :ivar meta: its metadata as a ctypes Structure rebuilt from the channel's schema, or None.
/// :ivar index: the writer's frame index (0, 1, 2, … for one writer).
/// :ivar timestamp_ns: the writer's ``CLOCK_MONOTONIC`` at publish (compare with
///     :func:`monotonic_ns` or ``time.monotonic_ns()``).
/// :ivar missed: frames published between the previous frame this reader received and this one.
//
// A native class, not a Python one: building it is on every frame's path, and a Python
// `__init__` there cost more than the rest of the frame's trip from the wake-up on.
#[pyclass(module = "shmframe", name = "Frame", get_all, set_all)]
struct PyFrame {
    array: Py<PyAny>,
    meta: Py<PyAny>,
    index: u64,
    timestamp_ns: u64,
    missed: u64,
}

/// `Frame(array, meta, index, timestamp_ns, missed)`'s arguments.
type FrameArgs = (Py<PyAny>, Py<PyAny>, u64, u64, u64);

#[pymethods]
impl PyFrame {
    #[new]
    fn new(array: Py<PyAny>, meta: Py<PyAny>, index: u64, timestamp_ns: u64, missed: u64) -> Self {
        PyFrame {
            array,
            meta,
            index,
            timestamp_ns,
            missed,
        }
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> (Bound<'py, PyType>, FrameArgs) {
        let py = slf.py();
        let f = slf.borrow();
        (
            slf.get_type(),
            (
                f.array.clone_ref(py),
                f.meta.clone_ref(py),
                f.index,
                f.timestamp_ns,
                f.missed,
            ),
        )
    }

    // The garbage collector's view: a frame may end up in a cycle (its metadata or a list
    // holding it), which must be collectable like a Python object's.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.array)?;
        visit.call(&self.meta)
    }

    fn __clear__(&mut self) {
        Python::attach(|py| {
            self.array = py.None();
            self.meta = py.None();
        });
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let a = self.array.bind(py);
        Ok(format!(
            "<shmframe.Frame index={} shape={} dtype={} missed={}>",
            self.index,
            a.getattr("shape")?.str()?,
            a.getattr("dtype")?.str()?,
            self.missed
        ))
    }
}

/// A frame read in place (zero-copy); see :meth:`Reader.view`.
///
/// Inside its ``with`` block, :attr:`array` is a read-only ndarray over the frame in shared
/// memory, and it cannot change or tear: the slot is pinned, so the writer skips it. After the
/// block, :attr:`array` raises :class:`Error`. An array you took out of the block stays valid
/// memory (it owns the pin, which is released when the array is garbage-collected), but it pins
/// a slot until then: copy what you need (``array.copy()``) instead of keeping it.
///
/// :ivar meta: the frame's metadata (a ctypes Structure) or None.
/// :ivar index: the writer's frame index.
/// :ivar timestamp_ns: the writer's ``CLOCK_MONOTONIC`` at publish.
/// :ivar missed: frames published between the previous frame this reader received and this one.
#[pyclass(module = "shmframe", name = "FrameView")]
struct PyFrameView {
    array: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    meta: Py<PyAny>,
    #[pyo3(get, set)]
    index: u64,
    #[pyo3(get, set)]
    timestamp_ns: u64,
    #[pyo3(get, set)]
    missed: u64,
}

#[pymethods]
impl PyFrameView {
    #[new]
    fn new(array: Py<PyAny>, meta: Py<PyAny>, index: u64, timestamp_ns: u64, missed: u64) -> Self {
        PyFrameView {
            array: Some(array),
            meta,
            index,
            timestamp_ns,
            missed,
        }
    }

    /// The read-only zero-copy array; raises :class:`Error` after the ``with`` block.
    #[getter]
    fn array(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match &self.array {
            Some(a) => Ok(a.clone_ref(py)),
            None => Err(Error::new_err(format!(
                "frame {} was released when its `with` block ended: use the array inside the \
                 block, or copy it there (frame.array.copy())",
                self.index
            ))),
        }
    }

    /// Drops this object's reference to the array (what leaving the ``with`` block does).
    fn release(&mut self) {
        self.array = None;
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&mut self, _exc: &Bound<'_, PyTuple>) {
        self.release();
    }

    // As `Frame`'s; for a view it matters more: a view kept in a cycle would pin its slot.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(self.array.as_ref())?;
        visit.call(&self.meta)
    }

    fn __clear__(&mut self) {
        self.array = None;
        self.meta = Python::attach(|py| py.None());
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let state = match &self.array {
            Some(a) => format!("shape={}", a.bind(py).getattr("shape")?.str()?),
            None => "released".to_string(),
        };
        Ok(format!("<shmframe.FrameView index={} {state}>", self.index))
    }
}

/// A frame's metadata for Python: None without any; else `decode(bytes)` (the package turns
/// them into its ctypes Structure), or the bytes themselves without `decode`.
fn meta_of(py: Python<'_>, meta: &[u8], decode: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
    if meta.is_empty() {
        return Ok(py.None());
    }
    let raw = PyBytes::new(py, meta);
    Ok(match decode {
        Some(f) => f.call1((raw,))?.unbind(),
        None => raw.into_any().unbind(),
    })
}

/// A copied `Frame` (what `latest()` returns).
fn frame_of(py: Python<'_>, f: &Frame, decode: Option<&Bound<'_, PyAny>>) -> PyResult<PyFrame> {
    Ok(PyFrame {
        array: array_copy(py, f.dtype, &f.shape, &f.data)?.unbind(),
        meta: meta_of(py, &f.meta, decode)?,
        index: f.index,
        timestamp_ns: f.timestamp_ns,
        missed: f.missed,
    })
}

impl PyReader {
    fn attached(reader: Reader) -> PyReader {
        PyReader {
            name: reader.name().to_string(),
            socket: reader.socket_path().map(|p| p.to_owned()),
            state: Mutex::new(ReaderState {
                reader: Some(reader),
            }),
            closing: AtomicBool::new(false),
        }
    }

    /// Opens a reader with `open(slice)` (a library call that waits up to `slice`) in slices
    /// until `deadline`, so that Ctrl-C interrupts the wait. `open` returning the library's
    /// timeout ends its slice; `timed_out(waited)` is the error when the deadline passes.
    fn open_waiting(
        py: Python<'_>,
        deadline: Option<Instant>,
        mut open: impl FnMut(Duration) -> PyResult<Result<Reader, OpenError>> + Send,
        timed_out: impl FnOnce(Duration) -> OpenError,
    ) -> PyResult<Reader> {
        let start = Instant::now();
        let out = sliced(py, deadline, |slice| match open(slice) {
            Err(e) => Err(Err(e)),
            Ok(Ok(r)) => Ok(Some(r)),
            Ok(Err(OpenError::Timeout { .. } | OpenError::SocketTimeout { .. })) => Ok(None),
            Ok(Err(e)) => Err(Ok(e)),
        })?;
        match out {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(open_err(timed_out(start.elapsed()))),
            Err(Ok(e)) => Err(open_err(e)),
            Err(Err(e)) => Err(e),
        }
    }

    /// Runs a blocking reader call in slices until `timeout` (seconds, `None`: forever),
    /// holding the reader's lock only during each slice. A `close` meanwhile (from another
    /// thread) ends the call with the "reader closed" error at the next slice.
    fn blocking<T: Send>(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        mut call: impl FnMut(&mut Reader, Duration) -> Result<T, ReadError> + Send,
    ) -> PyResult<T> {
        let deadline = deadline(timeout)?;
        let start = Instant::now();
        let mut pid = 0;
        let out = sliced(py, deadline, |slice| {
            if self.closing.load(Ordering::SeqCst) {
                return Err(Stopped::Closed);
            }
            let mut st = self
                .state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let r = st.reader.as_mut().ok_or(Stopped::Closed)?;
            match call(r, slice) {
                Ok(v) => Ok(Some(v)),
                Err(ReadError::Timeout { pid: p, .. }) => {
                    pid = p;
                    Ok(None)
                }
                Err(e) => Err(Stopped::Read(e)),
            }
        })?;
        match out {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(read_err(ReadError::Timeout {
                name: self.name.clone(),
                waited: start.elapsed(),
                pid,
            })),
            Err(Stopped::Read(e)) => Err(read_err(e)),
            Err(Stopped::Closed) => Err(closed_err("reader", &self.name)),
        }
    }
}

#[pymethods]
impl PyReader {
    /// Opens channel `name`, or connects to the writer serving the Unix socket at `socket`
    /// (exactly one of the two), waiting up to `timeout` seconds for it to appear.
    #[new]
    #[pyo3(signature = (name=None, timeout=None, socket=None))]
    fn new(
        py: Python<'_>,
        name: Option<&str>,
        timeout: Option<f64>,
        socket: Option<PathBuf>,
    ) -> PyResult<Self> {
        let deadline = deadline(timeout)?;
        let reader =
            match (name, socket) {
                (Some(_), Some(_)) => {
                    return Err(PyTypeError::new_err(
                        "Reader() takes a channel name or socket=PATH, not both: a socket-served \
                     channel is reached through its socket only",
                    ))
                }
                (None, None) => return Err(PyTypeError::new_err(
                    "Reader() needs a channel name (Reader(\"camera0\")) or the socket a writer \
                     serves the channel on (Reader(socket=\"/run/cams/camera0.sock\"))",
                )),
                (Some(name), None) if timeout == Some(0.0) => {
                    // No waiting: the channel must exist now (and the error says so).
                    refuse_non_regular(name)?;
                    Reader::open(name).map_err(open_err)?
                }
                (Some(name), None) => Self::open_waiting(
                    py,
                    deadline,
                    |slice| {
                        // Checked before every slice: a FIFO put under the name would block the open.
                        refuse_non_regular(name)?;
                        Ok(Reader::open_wait(name, slice))
                    },
                    |waited| OpenError::Timeout {
                        name: name.to_string(),
                        waited,
                    },
                )?,
                // No waiting: a writer must serve the socket now.
                (None, Some(path)) if timeout == Some(0.0) => {
                    Reader::connect(&path).map_err(open_err)?
                }
                (None, Some(path)) => Self::open_waiting(
                    py,
                    deadline,
                    |slice| Ok(Reader::connect_wait(&path, slice)),
                    |waited| OpenError::SocketTimeout {
                        path: path.display().to_string(),
                        waited,
                    },
                )?,
            };
        Ok(PyReader::attached(reader))
    }

    /// The channel's name (for a socket-served channel, the name its writer gave it).
    #[getter]
    fn name(&self, py: Python<'_>) -> String {
        match &lock(&self.state, py).reader {
            Some(r) => r.name().to_string(),
            None => self.name.clone(),
        }
    }

    /// The socket path the channel was reached through, or None for a channel opened by name.
    #[getter]
    fn socket(&self) -> Option<OsString> {
        self.socket.as_ref().map(|p| p.clone().into_os_string())
    }

    /// Waits for the next frame and returns a copy (a `Frame`); its metadata goes through
    /// `decode` (see `meta_of`).
    #[pyo3(signature = (timeout=None, decode=None))]
    fn read(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        decode: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyFrame> {
        // Pin the frame in place, copy it once straight into a new ndarray, unpin.
        let view = self.blocking(py, timeout, |r, slice| r.next_view(Some(slice)))?;
        copied_frame(py, view, decode)
    }

    /// Waits for the next frame and returns it in place (a `FrameView`).
    #[pyo3(signature = (timeout=None, decode=None))]
    fn view(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        decode: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyFrameView> {
        let view = self.blocking(py, timeout, |r, slice| r.next_view(Some(slice)))?;
        zero_copy_view(py, view, decode)
    }

    /// The newest frame not yet received (a copy), or None; never waits.
    #[pyo3(signature = (decode=None))]
    fn latest(
        &self,
        py: Python<'_>,
        decode: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<PyFrame>> {
        let mut st = lock(&self.state, py);
        let r = st
            .reader
            .as_mut()
            .ok_or_else(|| closed_err("reader", &self.name))?;
        match r.latest().map_err(read_err)? {
            Some(f) => Ok(Some(frame_of(py, &f, decode)?)),
            None => Ok(None),
        }
    }

    /// Closes the reader. Idempotent. A `read`/`view` waiting in another thread raises the
    /// "reader closed" error within one slice; this call waits no longer than that.
    fn close(&self, py: Python<'_>) {
        self.closing.store(true, Ordering::SeqCst);
        let reader = lock(&self.state, py).reader.take();
        drop(reader);
    }

    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        lock(&self.state, py).reader.is_none()
    }

    #[getter]
    fn schema(&self, py: Python<'_>) -> PyResult<Option<SchemaTuple>> {
        let st = lock(&self.state, py);
        let r = st
            .reader
            .as_ref()
            .ok_or_else(|| closed_err("reader", &self.name))?;
        Ok(r.schema().map(schema_to_tuple))
    }

    #[getter]
    fn writer_pid(&self, py: Python<'_>) -> PyResult<u32> {
        let st = lock(&self.state, py);
        let r = st
            .reader
            .as_ref()
            .ok_or_else(|| closed_err("reader", &self.name))?;
        Ok(r.writer_pid())
    }

    #[getter]
    fn writer_alive(&self, py: Python<'_>) -> PyResult<bool> {
        let st = lock(&self.state, py);
        let r = st
            .reader
            .as_ref()
            .ok_or_else(|| closed_err("reader", &self.name))?;
        Ok(r.writer_alive())
    }

    /// `True`: `read`/`view` skip to the newest frame (counting skipped ones as missed).
    fn set_latest_only(&self, py: Python<'_>, latest_only: bool) -> PyResult<()> {
        let mut st = lock(&self.state, py);
        let r = st
            .reader
            .as_mut()
            .ok_or_else(|| closed_err("reader", &self.name))?;
        r.set_latest_only(latest_only);
        Ok(())
    }

    /// The readiness descriptor (an eventfd) for event loops: it turns readable when
    /// `_try_read`/`_try_view` may find something after they returned None. It belongs to the
    /// reader and stays open (the same number) until the reader is closed.
    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        use std::os::fd::AsRawFd;
        let mut st = lock(&self.state, py);
        let r = st
            .reader
            .as_mut()
            .ok_or_else(|| closed_err("reader", &self.name))?;
        Ok(r.readiness_fd().map_err(read_err)?.as_raw_fd())
    }

    /// As `read()` if a frame is ready now, else None (and the descriptor is armed); never waits.
    #[pyo3(signature = (decode=None))]
    fn _try_read(
        &self,
        py: Python<'_>,
        decode: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<PyFrame>> {
        match self.try_view_now(py)? {
            Some(view) => Ok(Some(copied_frame(py, view, decode)?)),
            None => Ok(None),
        }
    }

    /// As `view()` if a frame is ready now, else None (and the descriptor is armed); never waits.
    #[pyo3(signature = (decode=None))]
    fn _try_view(
        &self,
        py: Python<'_>,
        decode: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<PyFrameView>> {
        match self.try_view_now(py)? {
            Some(view) => Ok(Some(zero_copy_view(py, view, decode)?)),
            None => Ok(None),
        }
    }
}

impl PyReader {
    /// `try_next_view` on the open reader.
    fn try_view_now(&self, py: Python<'_>) -> PyResult<Option<FrameView>> {
        let mut st = lock(&self.state, py);
        let r = st
            .reader
            .as_mut()
            .ok_or_else(|| closed_err("reader", &self.name))?;
        r.try_next_view().map_err(read_err)
    }
}

/// Copies shorter than this are made without letting go of the interpreter: detaching and
/// re-attaching costs more than copying a small frame, and a small copy blocks nobody.
const DETACHED_COPY_MIN: usize = 64 * 1024;

/// A view copied once into a new ndarray, then unpinned (what `read()` returns).
fn copied_frame(
    py: Python<'_>,
    view: FrameView,
    decode: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyFrame> {
    // SAFETY: no data pointer: NumPy allocates the array.
    let array = unsafe { new_array(py, view.dtype, view.shape(), None, true, None)? };
    let len = view.data().len();
    // SAFETY: `array` is a fresh C-contiguous ndarray of the view's shape and dtype, exactly
    // `len` bytes, that nothing else references yet.
    let dst = unsafe {
        (*array.as_ptr().cast::<npyffi::PyArrayObject>())
            .fields
            .data
    } as usize;
    let copy = || {
        let src = view.data();
        // SAFETY: `dst` is valid for `len` bytes (above) and does not overlap shared memory.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, len) };
    };
    if len < DETACHED_COPY_MIN {
        copy();
    } else {
        py.detach(copy);
    }
    Ok(PyFrame {
        array: array.unbind(),
        meta: meta_of(py, &view.meta, decode)?,
        index: view.index,
        timestamp_ns: view.timestamp_ns,
        missed: view.missed,
    })
}

/// A `FrameView` whose read-only zero-copy ndarray is over `view`, which becomes the array's
/// base (what `view()` returns).
fn zero_copy_view(
    py: Python<'_>,
    view: FrameView,
    decode: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyFrameView> {
    let meta = meta_of(py, &view.meta, decode)?;
    let owner = Bound::new(py, ViewOwner { view })?;
    let v = &owner.get().view;
    let (dtype, data) = (v.dtype, v.data().as_ptr().cast_mut());
    let mut dims = [0usize; shmframe::layout::MAX_DIMS];
    let shape = &mut dims[..v.shape().len()];
    shape.copy_from_slice(v.shape());
    let (index, timestamp_ns, missed) = (v.index, v.timestamp_ns, v.missed);
    // SAFETY: `data` points at the view's bytes, which stay mapped and unchanged (the slot is
    // pinned) while `owner` lives; `owner` becomes the array's base; the array is read-only.
    let array = unsafe { new_array(py, dtype, shape, Some(data), false, Some(owner.into_any()))? };
    Ok(PyFrameView {
        array: Some(array.unbind()),
        meta,
        index,
        timestamp_ns,
        missed,
    })
}

/// CLOCK_MONOTONIC in nanoseconds, the clock of `Frame.timestamp_ns` (same as
/// `time.monotonic_ns()` on Linux).
#[pyfunction]
fn monotonic_ns() -> u64 {
    shmframe::monotonic_ns()
}

/// Asks the scheduler to run the calling thread as soon as a frame wakes it (a 0.1 ms time
/// slice, Linux 6.12 and later; policy and nice value kept). Returns the slice in seconds.
#[pyfunction]
fn prefer_low_latency() -> PyResult<f64> {
    use shmframe::SchedError;
    match shmframe::prefer_low_latency() {
        Ok(slice) => Ok(slice.as_secs_f64()),
        Err(e @ SchedError::Io { source, .. }) if source == shmframe::error::Errno::PERM => {
            Err(PermissionDenied::new_err(e.to_string()))
        }
        Err(e) => Err(Error::new_err(e.to_string())),
    }
}

/// Removes channel `name` (and its pin tables) from /dev/shm, as `shmframe rm NAME` does:
/// processes that have it open keep their mapping, nobody new can attach. For channels written
/// with `keep=True`, which outlive their writer.
#[pyfunction]
fn remove(name: &str) -> PyResult<()> {
    use shmframe::RemoveError;
    shmframe::channels::remove(name).map_err(|e| match e {
        RemoveError::Name(_) => PyValueError::new_err(e.to_string()),
        RemoveError::NotFound { .. } => ChannelNotFound::new_err(e.to_string()),
        RemoveError::PermissionDenied { .. } => PyPermissionError::new_err(e.to_string()),
        _ => PyOSError::new_err(e.to_string()),
    })
}

/// The compiled core of `shmframe`; import `shmframe` instead.
#[pymodule]
fn _shmframe(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyWriter>()?;
    m.add_class::<PyReader>()?;
    m.add_class::<LoanMapping>()?;
    m.add_class::<ViewOwner>()?;
    m.add_class::<PyFrame>()?;
    m.add_class::<PyFrameView>()?;
    m.add_function(wrap_pyfunction!(monotonic_ns, m)?)?;
    m.add_function(wrap_pyfunction!(remove, m)?)?;
    m.add_function(wrap_pyfunction!(prefer_low_latency, m)?)?;
    m.add("MAX_DIMS", shmframe::layout::MAX_DIMS)?;
    Ok(())
}
