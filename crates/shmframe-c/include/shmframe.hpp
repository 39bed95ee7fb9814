// shmframe.hpp: C++17 RAII layer over the C API in shmframe.h (header-only).
//
//   shmframe::Writer w("camera0");
//   w.write(mat);                                   // any cv::Mat: depth, channels, ROI
//   shmframe::Reader r("camera0", std::chrono::seconds(5));
//   shmframe::View v = r.next_view();               // zero-copy, pinned while `v` lives
//   cv::imshow("camera0", v.mat());                 // a header over shared memory
//
// Socket-served channels: WriterOptions().socket(path) on the writer's side,
// Reader::connect(path, timeout) on the reader's.
//
// Every failure throws shmframe::Error (or a subclass: Timeout, NotFound, WriterGone, Closed)
// carrying the C status and the library's message. cv::Mat support is compiled in when OpenCV's
// headers are reachable (pkg-config --cflags opencv4) or already included; define
// SHMFRAME_NO_OPENCV to leave it out. Guide: docs/c.md.
#ifndef SHMFRAME_HPP
#define SHMFRAME_HPP

#include <shmframe.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if !defined(SHMFRAME_NO_OPENCV)
#if defined(CV_VERSION_MAJOR) || defined(SHMFRAME_WITH_OPENCV)
#define SHMFRAME_HAS_OPENCV 1
#elif defined(__has_include)
#if __has_include(<opencv2/core.hpp>)
#define SHMFRAME_HAS_OPENCV 1
#endif
#endif
#endif

#if defined(SHMFRAME_HAS_OPENCV)
#include <opencv2/core.hpp>
#endif

namespace shmframe {

/// A failed call: `status()` is the C status, `what()` the library's message.
class Error : public std::runtime_error {
 public:
  Error(shmframe_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  shmframe_status status() const noexcept { return status_; }
  /// "SHMFRAME_TIMEOUT", …
  const char* status_name() const noexcept { return shmframe_status_name(status_); }

 private:
  shmframe_status status_;
};

/// No frame arrived within the timeout.
class Timeout : public Error {
  using Error::Error;
};
/// No such channel (or it did not appear within the open timeout).
class NotFound : public Error {
  using Error::Error;
};
/// The writer died without closing the channel. The reader stays usable.
class WriterGone : public Error {
  using Error::Error;
};
/// The writer closed the channel (a clean end of stream; a WriterGone).
class Closed : public WriterGone {
  using WriterGone::WriterGone;
};

namespace detail {
[[noreturn]] inline void raise(shmframe_status s, const std::string& message) {
  switch (s) {
    case SHMFRAME_TIMEOUT:
      throw Timeout(s, message);
    case SHMFRAME_NOT_FOUND:
      throw NotFound(s, message);
    case SHMFRAME_WRITER_GONE:
      throw WriterGone(s, message);
    case SHMFRAME_CLOSED:
      throw Closed(s, message);
    default:
      throw Error(s, message);
  }
}

inline void check(shmframe_status s) {
  if (s != SHMFRAME_OK) raise(s, shmframe_last_error());
}

inline int64_t to_ms(std::optional<std::chrono::milliseconds> t) {
  if (!t) return -1;
  return t->count() < 0 ? 0 : static_cast<int64_t>(t->count());
}

/// Takes ownership of a string the C library allocated.
inline std::optional<std::string> take_string(char* s) {
  if (s == nullptr) return std::nullopt;
  std::string out(s);
  shmframe_string_free(s);
  return out;
}
}  // namespace detail

/// The library's version ("0.1.0").
inline std::string version() { return shmframe_version(); }

/// Asks the scheduler to run the calling thread as soon as a frame wakes it (a 0.1 ms time
/// slice; Linux 6.12 and later); see shmframe_prefer_low_latency. Throws Error
/// (SHMFRAME_UNSUPPORTED on older kernels; the thread is then left as it was).
inline void prefer_low_latency() { detail::check(shmframe_prefer_low_latency()); }

/// The dtype of a C++ element type: dtype_of<uint8_t>() == SHMFRAME_U8, …
template <class T>
constexpr shmframe_dtype dtype_of() {
  if constexpr (std::is_same_v<T, bool>) return SHMFRAME_BOOL;
  else if constexpr (std::is_floating_point_v<T> && sizeof(T) == 4) return SHMFRAME_F32;
  else if constexpr (std::is_floating_point_v<T> && sizeof(T) == 8) return SHMFRAME_F64;
  else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T> && sizeof(T) == 1) return SHMFRAME_U8;
  else if constexpr (std::is_integral_v<T> && std::is_signed_v<T> && sizeof(T) == 1) return SHMFRAME_I8;
  else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T> && sizeof(T) == 2) return SHMFRAME_U16;
  else if constexpr (std::is_integral_v<T> && std::is_signed_v<T> && sizeof(T) == 2) return SHMFRAME_I16;
  else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T> && sizeof(T) == 4) return SHMFRAME_U32;
  else if constexpr (std::is_integral_v<T> && std::is_signed_v<T> && sizeof(T) == 4) return SHMFRAME_I32;
  else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T> && sizeof(T) == 8) return SHMFRAME_U64;
  else if constexpr (std::is_integral_v<T> && std::is_signed_v<T> && sizeof(T) == 8) return SHMFRAME_I64;
  else static_assert(sizeof(T) == 0, "no shmframe dtype for this type");
}

#if defined(SHMFRAME_HAS_OPENCV)
/// The OpenCV depth (CV_8U, …) of a dtype; -1 if OpenCV has none (uint32, uint64, int64).
inline int cv_depth(shmframe_dtype d) {
  switch (d) {
    case SHMFRAME_U8:
    case SHMFRAME_BOOL:
      return CV_8U;
    case SHMFRAME_I8:
      return CV_8S;
    case SHMFRAME_U16:
      return CV_16U;
    case SHMFRAME_I16:
      return CV_16S;
    case SHMFRAME_I32:
      return CV_32S;
    case SHMFRAME_F32:
      return CV_32F;
    case SHMFRAME_F64:
      return CV_64F;
    default:
      return -1;
  }
}

/// The dtype of an OpenCV depth; throws Error(SHMFRAME_INVALID_ARGUMENT) for CV_16F and others.
inline shmframe_dtype dtype_of_depth(int depth) {
  switch (depth) {
    case CV_8U:
      return SHMFRAME_U8;
    case CV_8S:
      return SHMFRAME_I8;
    case CV_16U:
      return SHMFRAME_U16;
    case CV_16S:
      return SHMFRAME_I16;
    case CV_32S:
      return SHMFRAME_I32;
    case CV_32F:
      return SHMFRAME_F32;
    case CV_64F:
      return SHMFRAME_F64;
    default:
      throw Error(SHMFRAME_INVALID_ARGUMENT,
                  "cv::Mat depth " + std::to_string(depth) +
                      " has no shmframe dtype: convert it (mat.convertTo) to 8U, 8S, 16U, 16S, 32S, "
                      "32F or 64F");
  }
}

/// The shape a cv::Mat travels as: {rows, cols} for one channel, {rows, cols, channels}
/// otherwise (an image of height x width x channels, as NumPy sees it); N-d mats likewise.
inline std::vector<size_t> shape_of(const cv::Mat& m) {
  std::vector<size_t> shape;
  for (int i = 0; i < m.dims; i++) shape.push_back(static_cast<size_t>(m.size[i]));
  if (m.channels() > 1) shape.push_back(static_cast<size_t>(m.channels()));
  return shape;
}

namespace detail {
/// A cv::Mat header over `data` for a frame of `dtype` and `shape`: the last dimension becomes
/// the channels when there are 3 or more dimensions and it is at most 4 (an image); a 1-d frame is
/// a column. Throws for dtypes OpenCV lacks.
inline cv::Mat mat_over(shmframe_dtype dtype, size_t ndim, const size_t* shape, void* data) {
  int depth = cv_depth(dtype);
  if (depth < 0) {
    throw Error(SHMFRAME_INVALID_ARGUMENT,
                std::string("frames of ") + shmframe_dtype_name(dtype) +
                    " have no cv::Mat depth: read them with data() instead");
  }
  std::vector<int> sizes;
  for (size_t i = 0; i < ndim; i++) {
    if (shape[i] > static_cast<size_t>(INT32_MAX)) {
      throw Error(SHMFRAME_INVALID_ARGUMENT, "frame dimension too large for a cv::Mat");
    }
    sizes.push_back(static_cast<int>(shape[i]));
  }
  int channels = 1;
  if (sizes.size() >= 3 && sizes.back() >= 1 && sizes.back() <= 4) {
    channels = sizes.back();
    sizes.pop_back();
  }
  if (sizes.empty()) sizes = {1, 1};
  if (sizes.size() == 1) sizes.push_back(1);
  return cv::Mat(static_cast<int>(sizes.size()), sizes.data(), CV_MAKETYPE(depth, channels), data);
}
}  // namespace detail
#endif

/// How a writer creates its channel (slots, mode, capacity, keep, metadata schema, socket).
class WriterOptions {
 public:
  WriterOptions() : o_(shmframe_writer_options_new()) {
    if (!o_) throw Error(SHMFRAME_INTERNAL, "out of memory");
  }
  WriterOptions(const WriterOptions&) = delete;
  WriterOptions& operator=(const WriterOptions&) = delete;
  WriterOptions(WriterOptions&& o) noexcept : o_(std::exchange(o.o_, nullptr)) {}
  WriterOptions& operator=(WriterOptions&& o) noexcept {
    std::swap(o_, o.o_);
    return *this;
  }
  ~WriterOptions() { shmframe_writer_options_free(o_); }

  /// Slots in the ring, 1..64 (default 3): more than the views readers hold at once.
  WriterOptions& slots(uint32_t n) {
    detail::check(shmframe_writer_options_set_slots(o_, n));
    return *this;
  }
  /// Permission bits (default 0600; 0640 shares with the group).
  WriterOptions& mode(uint32_t mode) {
    detail::check(shmframe_writer_options_set_mode(o_, mode));
    return *this;
  }
  /// Payload bytes per slot reserved up front.
  WriterOptions& capacity(size_t bytes) {
    detail::check(shmframe_writer_options_set_capacity(o_, bytes));
    return *this;
  }
  /// Keep the channel in /dev/shm after close.
  WriterOptions& keep(bool keep = true) {
    detail::check(shmframe_writer_options_set_keep(o_, keep));
    return *this;
  }
  /// The metadata schema as JSON (see shmframe_writer_options_set_schema_json).
  WriterOptions& schema_json(const std::string& json) {
    detail::check(shmframe_writer_options_set_schema_json(o_, json.c_str()));
    return *this;
  }
  /// Serve the channel on a Unix socket at `path` instead of naming it in /dev/shm (see
  /// shmframe_writer_options_set_socket); readers use Reader::connect(path).
  WriterOptions& socket(const std::string& path) {
    detail::check(shmframe_writer_options_set_socket(o_, path.c_str()));
    return *this;
  }
  const shmframe_writer_options* get() const noexcept { return o_; }

 private:
  shmframe_writer_options* o_;
};

/// A slot borrowed for zero-copy writing: fill data() (or mat()), then publish(). Destroying
/// an unpublished loan discards it.
class Loan {
 public:
  Loan(Loan&& o) noexcept
      : l_(std::exchange(o.l_, nullptr)), dtype_(o.dtype_), shape_(std::move(o.shape_)) {}
  Loan& operator=(Loan&& o) noexcept {
    std::swap(l_, o.l_);
    dtype_ = o.dtype_;
    std::swap(shape_, o.shape_);
    return *this;
  }
  Loan(const Loan&) = delete;
  Loan& operator=(const Loan&) = delete;
  ~Loan() { shmframe_loan_discard(l_); }

  void* data() noexcept { return shmframe_loan_data(l_); }
  size_t size() const noexcept { return shmframe_loan_len(l_); }
  shmframe_dtype dtype() const noexcept { return dtype_; }
  const std::vector<size_t>& shape() const noexcept { return shape_; }

#if defined(SHMFRAME_HAS_OPENCV)
  /// A writable cv::Mat header over the loan's shared memory (OpenCV can decode into it:
  /// cap.read(m) writes in place when the size and type match — check m.data == data()).
  cv::Mat mat() { return detail::mat_over(dtype_, shape_.size(), shape_.data(), data()); }
#endif

  /// Publishes the frame (with optional metadata bytes); returns its index.
  uint64_t publish(const void* meta = nullptr, size_t meta_len = 0) {
    uint64_t index = 0;
    shmframe_status s = shmframe_loan_publish(std::exchange(l_, nullptr), meta, meta_len, &index);
    detail::check(s);
    return index;
  }
  /// Publishes with a metadata struct laid out as the channel's schema.
  template <class M>
  uint64_t publish_meta(const M& meta) {
    static_assert(std::is_trivially_copyable_v<M>, "metadata must be plain old data");
    return publish(&meta, sizeof meta);
  }
  /// Discards the frame.
  void discard() noexcept { shmframe_loan_discard(std::exchange(l_, nullptr)); }

 private:
  friend class Writer;
  Loan(shmframe_loan* l, shmframe_dtype d, std::vector<size_t> shape)
      : l_(l), dtype_(d), shape_(std::move(shape)) {}
  shmframe_loan* l_;
  shmframe_dtype dtype_;
  std::vector<size_t> shape_;
};

/// Publishes frames to a named channel; closes (and removes) it when destroyed.
class Writer {
 public:
  explicit Writer(const std::string& name, const WriterOptions& opts = WriterOptions()) {
    detail::check(shmframe_writer_create(name.c_str(), opts.get(), &w_));
  }
  Writer(Writer&& o) noexcept : w_(std::exchange(o.w_, nullptr)) {}
  Writer& operator=(Writer&& o) noexcept {
    std::swap(w_, o.w_);
    return *this;
  }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  ~Writer() { close(); }

  /// Copies a C-contiguous array of `shape` x `dtype` (len bytes) into the channel.
  uint64_t write(shmframe_dtype dtype, const std::vector<size_t>& shape, const void* data,
                 size_t len, const void* meta = nullptr, size_t meta_len = 0) {
    uint64_t index = 0;
    detail::check(shmframe_writer_write_meta(w_, dtype, shape.size(), shape.data(), data, len,
                                             meta, meta_len, &index));
    return index;
  }
  /// Typed: `data` holds the product of `shape` elements of T.
  template <class T>
  uint64_t write(const std::vector<size_t>& shape, const T* data) {
    size_t n = 1;
    for (size_t d : shape) n *= d;
    return write(dtype_of<T>(), shape, data, n * sizeof(T));
  }
  /// With a metadata struct laid out as the channel's schema.
  template <class T, class M>
  uint64_t write(const std::vector<size_t>& shape, const T* data, const M& meta) {
    static_assert(std::is_trivially_copyable_v<M>, "metadata must be plain old data");
    size_t n = 1;
    for (size_t d : shape) n *= d;
    return write(dtype_of<T>(), shape, data, n * sizeof(T), &meta, sizeof meta);
  }

  /// Borrows a slot to fill in place (zero-copy).
  Loan loan(shmframe_dtype dtype, const std::vector<size_t>& shape) {
    shmframe_loan* l = nullptr;
    detail::check(shmframe_writer_loan(w_, dtype, shape.size(), shape.data(), &l));
    return Loan(l, dtype, shape);
  }

#if defined(SHMFRAME_HAS_OPENCV)
  /// Publishes a cv::Mat of any depth OpenCV and shmframe share and any channel count, as
  /// {rows, cols} or {rows, cols, channels} (see shape_of). A continuous mat is copied once;
  /// an ROI or other non-continuous mat is copied row by row straight into shared memory.
  uint64_t write(const cv::Mat& m, const void* meta = nullptr, size_t meta_len = 0) {
    if (m.empty()) throw Error(SHMFRAME_INVALID_ARGUMENT, "cv::Mat is empty");
    shmframe_dtype dtype = dtype_of_depth(m.depth());
    std::vector<size_t> shape = shape_of(m);
    if (m.isContinuous()) {
      return write(dtype, shape, m.data, m.total() * m.elemSize(), meta, meta_len);
    }
    Loan l = loan(dtype, shape);
    cv::Mat dst(m.dims, m.size.p, m.type(), l.data());
    m.copyTo(dst);
    if (dst.data != l.data()) throw Error(SHMFRAME_INTERNAL, "cv::Mat copy did not stay in place");
    return l.publish(meta, meta_len);
  }
  /// With a metadata struct laid out as the channel's schema.
  template <class M>
  uint64_t write(const cv::Mat& m, const M& meta) {
    static_assert(std::is_trivially_copyable_v<M>, "metadata must be plain old data");
    return write(m, &meta, sizeof meta);
  }
#endif

  uint64_t frames_published() const noexcept { return shmframe_writer_frames_published(w_); }
  /// The metadata schema as JSON, if the channel declares one.
  std::optional<std::string> schema_json() const {
    char* s = nullptr;
    detail::check(shmframe_writer_schema_json(w_, &s));
    return detail::take_string(s);
  }

  /// Closes the channel (readers get Closed after the last frame). Idempotent.
  void close() noexcept {
    shmframe_writer_close(w_);
    w_ = nullptr;
  }
  shmframe_writer* get() noexcept { return w_; }

 private:
  shmframe_writer* w_ = nullptr;
};

/// A zero-copy frame in shared memory, pinned while it lives (the writer skips its slot).
/// Move-only; pointers and cv::Mat headers taken from it are valid as long as it lives.
class View {
 public:
  View(View&& o) noexcept : v_(std::exchange(o.v_, nullptr)) {}
  View& operator=(View&& o) noexcept {
    std::swap(v_, o.v_);
    return *this;
  }
  View(const View&) = delete;
  View& operator=(const View&) = delete;
  ~View() { shmframe_view_release(v_); }

  const void* data() const noexcept { return shmframe_view_data(v_); }
  size_t size() const noexcept { return shmframe_view_len(v_); }
  shmframe_dtype dtype() const noexcept { return shmframe_view_dtype(v_); }
  std::vector<size_t> shape() const {
    const size_t* s = shmframe_view_shape(v_);
    return std::vector<size_t>(s, s + shmframe_view_ndim(v_));
  }
  uint64_t index() const noexcept { return shmframe_view_index(v_); }
  uint64_t missed() const noexcept { return shmframe_view_missed(v_); }
  uint64_t timestamp_ns() const noexcept { return shmframe_view_timestamp_ns(v_); }
  const void* meta_data() const noexcept { return shmframe_view_meta(v_); }
  size_t meta_size() const noexcept { return shmframe_view_meta_len(v_); }
  /// The metadata as M; std::nullopt if the frame carries none or its size differs.
  template <class M>
  std::optional<M> meta() const {
    static_assert(std::is_trivially_copyable_v<M>, "metadata must be plain old data");
    if (meta_size() != sizeof(M)) return std::nullopt;
    M m;
    std::memcpy(&m, meta_data(), sizeof m);
    return m;
  }
  /// The elements as T (throws if T is not the frame's dtype).
  template <class T>
  const T* as() const {
    if (dtype_of<T>() != dtype()) throw Error(SHMFRAME_INVALID_ARGUMENT, "dtype mismatch");
    return static_cast<const T*>(data());
  }

#if defined(SHMFRAME_HAS_OPENCV)
  /// A cv::Mat header over the frame in shared memory (no copy): {h, w} gray, {h, w, c} with
  /// c <= 4 as c channels. Valid while this View lives; read-only (do not write to it; clone()
  /// to keep or modify).
  cv::Mat mat() const {
    return detail::mat_over(dtype(), shmframe_view_ndim(v_), shmframe_view_shape(v_),
                            const_cast<void*>(data()));
  }
#endif
  shmframe_view* get() noexcept { return v_; }

 private:
  friend class Reader;
  explicit View(shmframe_view* v) : v_(v) {}
  shmframe_view* v_;
};

/// A frame received by copy, owning its buffers; reuse one with Reader::next(frame, …).
class Frame {
 public:
  Frame() : f_(shmframe_frame_new()) {
    if (!f_) throw Error(SHMFRAME_INTERNAL, "out of memory");
  }
  Frame(Frame&& o) noexcept : f_(std::exchange(o.f_, nullptr)) {}
  Frame& operator=(Frame&& o) noexcept {
    std::swap(f_, o.f_);
    return *this;
  }
  Frame(const Frame&) = delete;
  Frame& operator=(const Frame&) = delete;
  ~Frame() { shmframe_frame_free(f_); }

  void* data() noexcept { return shmframe_frame_data(f_); }
  size_t size() const noexcept { return shmframe_frame_len(f_); }
  shmframe_dtype dtype() const noexcept { return shmframe_frame_dtype(f_); }
  std::vector<size_t> shape() const {
    const size_t* s = shmframe_frame_shape(f_);
    return std::vector<size_t>(s, s + shmframe_frame_ndim(f_));
  }
  uint64_t index() const noexcept { return shmframe_frame_index(f_); }
  uint64_t missed() const noexcept { return shmframe_frame_missed(f_); }
  uint64_t timestamp_ns() const noexcept { return shmframe_frame_timestamp_ns(f_); }
  const void* meta_data() const noexcept { return shmframe_frame_meta(f_); }
  size_t meta_size() const noexcept { return shmframe_frame_meta_len(f_); }
  template <class M>
  std::optional<M> meta() const {
    static_assert(std::is_trivially_copyable_v<M>, "metadata must be plain old data");
    if (meta_size() != sizeof(M)) return std::nullopt;
    M m;
    std::memcpy(&m, meta_data(), sizeof m);
    return m;
  }
#if defined(SHMFRAME_HAS_OPENCV)
  /// A cv::Mat header over the frame's own buffer, valid until the next read into it.
  cv::Mat mat() {
    return detail::mat_over(dtype(), shmframe_frame_ndim(f_), shmframe_frame_shape(f_), data());
  }
#endif
  shmframe_frame* get() noexcept { return f_; }

 private:
  shmframe_frame* f_;
};

/// Receives frames from a named channel, or from a socket-served one (Reader::connect).
class Reader {
 public:
  /// Opens `name`; `timeout`: how long to wait for it to appear (std::nullopt: forever; 0: it
  /// must exist). Throws NotFound.
  explicit Reader(const std::string& name,
                  std::optional<std::chrono::milliseconds> timeout = std::chrono::milliseconds(0)) {
    detail::check(shmframe_reader_open(name.c_str(), detail::to_ms(timeout), &r_));
  }
  /// Connects to the writer serving a channel on the Unix socket at `path`
  /// (WriterOptions::socket); `timeout`: how long to wait for it (std::nullopt: forever; 0: it
  /// must be serving). Throws NotFound (no writer serves the path), Error (SHMFRAME_PERMISSION,
  /// SHMFRAME_CORRUPT, …).
  static Reader connect(const std::string& path,
                        std::optional<std::chrono::milliseconds> timeout = std::chrono::milliseconds(0)) {
    shmframe_reader* r = nullptr;
    detail::check(shmframe_reader_connect(path.c_str(), detail::to_ms(timeout), &r));
    return Reader(r);
  }
  Reader(Reader&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  Reader& operator=(Reader&& o) noexcept {
    std::swap(r_, o.r_);
    return *this;
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  ~Reader() { shmframe_reader_close(r_); }

  /// The next frame, zero-copy (std::nullopt timeout: wait forever). Throws Timeout, Closed,
  /// WriterGone.
  View next_view(std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    shmframe_view* v = nullptr;
    detail::check(shmframe_reader_next_view(r_, detail::to_ms(timeout), &v));
    return View(v);
  }
  /// As next_view, but std::nullopt instead of throwing Timeout.
  std::optional<View> try_next_view(std::chrono::milliseconds timeout) {
    shmframe_view* v = nullptr;
    shmframe_status s = shmframe_reader_next_view(r_, detail::to_ms(timeout), &v);
    if (s == SHMFRAME_TIMEOUT) return std::nullopt;
    detail::check(s);
    return View(v);
  }
  /// The next frame, copied and verified, into `frame` (its buffers are reused).
  void next(Frame& frame, std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    detail::check(shmframe_reader_next(r_, detail::to_ms(timeout), frame.get()));
  }
  Frame next(std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    Frame f;
    next(f, timeout);
    return f;
  }
  /// Skip to the newest frame on each call (a display), or every frame in order (default).
  void set_latest_only(bool latest_only) {
    detail::check(shmframe_reader_set_latest_only(r_, latest_only));
  }
  /// The channel's metadata schema as JSON, if it declares one.
  std::optional<std::string> schema_json() const {
    char* s = nullptr;
    detail::check(shmframe_reader_schema_json(r_, &s));
    return detail::take_string(s);
  }
  bool writer_alive() const noexcept { return shmframe_reader_writer_alive(r_); }
  shmframe_reader* get() noexcept { return r_; }

 private:
  explicit Reader(shmframe_reader* r) noexcept : r_(r) {}
  shmframe_reader* r_ = nullptr;
};

}  // namespace shmframe

#endif  // SHMFRAME_HPP
