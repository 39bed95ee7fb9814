/* shmframe: named shared-memory channels for camera frames and N-d arrays.
 *
 * Generated from crates/shmframe-c/src by cbindgen; do not edit. Regenerate with
 *   SHMFRAME_BLESS=1 cargo test -p shmframe-c --test header
 * Guide: docs/c.md. C++: shmframe.hpp. */

#ifndef SHMFRAME_H
#define SHMFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * Most dimensions a frame can have.
 */
#define SHMFRAME_MAX_DIMS 8

/**
 * What a call did. `SHMFRAME_OK` is 0; every other value is a failure whose text
 * `shmframe_last_error()` returns.
 */
typedef enum {
  /**
   * Success.
   */
  SHMFRAME_OK = 0,
  /**
   * No frame arrived within the timeout (the writer is alive but not publishing).
   */
  SHMFRAME_TIMEOUT = 1,
  /**
   * No channel of that name exists (or it did not appear within the open timeout); for a
   * socket-served channel, no writer serves the socket (none there, a stale one, or none
   * within the timeout).
   */
  SHMFRAME_NOT_FOUND = 2,
  /**
   * The writer died without closing the channel. The reader stays usable: its next call
   * attaches to a new writer of the same name if one has started.
   */
  SHMFRAME_WRITER_GONE = 3,
  /**
   * The writer closed the channel (a clean end of stream). The reader stays usable, as above.
   */
  SHMFRAME_CLOSED = 4,
  /**
   * A live writer already holds this channel name (or serves on this socket path).
   */
  SHMFRAME_BUSY = 5,
  /**
   * The shared-memory file system (/dev/shm) has no room for the channel.
   */
  SHMFRAME_NO_SPACE = 6,
  /**
   * The channel belongs to another user and its mode does not let us use it (for a
   * socket-served channel: the socket's mode, or the writer refused our credentials).
   */
  SHMFRAME_PERMISSION = 7,
  /**
   * The object is not a shmframe channel (or the socket not a shmframe writer's), or a header
   * or frame in it is corrupt.
   */
  SHMFRAME_CORRUPT = 8,
  /**
   * A NULL pointer, an invalid name or option, a dtype outside the enum, or a data length
   * that does not match dtype x shape.
   */
  SHMFRAME_INVALID_ARGUMENT = 9,
  /**
   * A system call failed.
   */
  SHMFRAME_IO = 10,
  /**
   * The channel uses another layout version than this library (mixed shmframe versions).
   */
  SHMFRAME_VERSION_MISMATCH = 11,
  /**
   * Every slot is pinned by zero-copy readers; the frame was dropped (the writer never waits
   * for readers). Create the channel with more slots than views held at once.
   */
  SHMFRAME_SLOTS_PINNED = 12,
  /**
   * A bug in shmframe (a Rust panic, caught at the boundary). Please report the message.
   */
  SHMFRAME_INTERNAL = 13,
  /**
   * This kernel or this thread does not offer what was asked (`shmframe_prefer_low_latency`:
   * no per-thread time slices before Linux 6.12, or a thread that is not SCHED_OTHER).
   */
  SHMFRAME_UNSUPPORTED = 14,
} shmframe_status;

/**
 * Element type of a frame. The values are this header's, not the channel's wire codes.
 */
typedef enum {
  /**
   * `uint8_t`
   */
  SHMFRAME_U8 = 0,
  /**
   * `int8_t`
   */
  SHMFRAME_I8 = 1,
  /**
   * `uint16_t`
   */
  SHMFRAME_U16 = 2,
  /**
   * `int16_t`
   */
  SHMFRAME_I16 = 3,
  /**
   * `uint32_t`
   */
  SHMFRAME_U32 = 4,
  /**
   * `int32_t`
   */
  SHMFRAME_I32 = 5,
  /**
   * `uint64_t`
   */
  SHMFRAME_U64 = 6,
  /**
   * `int64_t`
   */
  SHMFRAME_I64 = 7,
  /**
   * `float`
   */
  SHMFRAME_F32 = 8,
  /**
   * `double`
   */
  SHMFRAME_F64 = 9,
  /**
   * `bool` (one byte, 0 or 1)
   */
  SHMFRAME_BOOL = 10,
} shmframe_dtype;

/**
 * A frame received by copy (opaque), reusable: `shmframe_reader_next` refills it without
 * allocating once its buffers are large enough.
 */
typedef struct shmframe_frame shmframe_frame;

/**
 * A slot borrowed for zero-copy writing (opaque): fill `shmframe_loan_data`, then
 * `shmframe_loan_publish` or `shmframe_loan_discard`.
 */
typedef struct shmframe_loan shmframe_loan;

/**
 * A channel's reader (opaque). Calls on one reader from several threads are serialised by an
 * internal lock (a thread blocked in `shmframe_reader_next_view` makes the others wait); use
 * one reader per thread to read in parallel.
 */
typedef struct shmframe_reader shmframe_reader;

/**
 * A zero-copy frame in shared memory (opaque), pinned while it lives: the writer skips its
 * slot, so the bytes cannot change. Release it with `shmframe_view_release`.
 */
typedef struct shmframe_view shmframe_view;

/**
 * A channel's writer (opaque). Calls on one writer from several threads are serialised by an
 * internal lock.
 */
typedef struct shmframe_writer shmframe_writer;

/**
 * How a writer creates its channel (opaque). Defaults: 3 slots, mode 0600, capacity chosen
 * by the first frame, no metadata, channel named in /dev/shm and removed on close.
 */
typedef struct shmframe_writer_options shmframe_writer_options;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * The library's version, e.g. "0.1.0" (static storage; never NULL).
 *
 * Thread safety: any thread.
 */
const char *shmframe_version(void);

/**
 * The text of this thread's last failure: the library's error message, which says what went
 * wrong and what to do about it. "" if no call on this thread has failed. Never NULL. Valid
 * until the next failing shmframe call on this thread (copy it to keep it).
 *
 * Thread safety: any thread; each thread has its own.
 */
const char *shmframe_last_error(void);

/**
 * The name of a status, e.g. "SHMFRAME_TIMEOUT" (static storage; never NULL;
 * "SHMFRAME_UNKNOWN_STATUS" for a value outside the enum).
 *
 * Thread safety: any thread.
 */
const char *shmframe_status_name(shmframe_status status);

/**
 * Bytes per element of `dtype` (1, 2, 4 or 8); 0 for a value outside the enum.
 *
 * Thread safety: any thread.
 */
size_t shmframe_dtype_size(shmframe_dtype dtype);

/**
 * NumPy's name of `dtype` ("uint8", "float32", …; static storage); NULL for a value outside
 * the enum.
 *
 * Thread safety: any thread.
 */
const char *shmframe_dtype_name(shmframe_dtype dtype);

/**
 * CLOCK_MONOTONIC now, in nanoseconds: the clock of `shmframe_view_timestamp_ns`, so
 * `shmframe_monotonic_ns() - shmframe_view_timestamp_ns(v)` is a frame's age.
 *
 * Thread safety: any thread.
 */
uint64_t shmframe_monotonic_ns(void);

/**
 * Asks the scheduler to run the calling thread as soon as a frame wakes it: a 0.1 ms time
 * slice instead of the default few ms (Linux 6.12 and later; no privilege needed; the thread's
 * policy and nice value are kept). A woken reader then preempts the thread that woke it
 * (often the writer, on the same core) instead of waiting for it to sleep. Call it in the
 * thread that reads.
 *
 * Returns SHMFRAME_UNSUPPORTED (the thread is left as it was; readers work the same) on older
 * kernels or for a thread that is not SCHED_OTHER, SHMFRAME_PERMISSION where the system forbids
 * the call.
 *
 * Thread safety: any thread; it changes only the calling one.
 */
shmframe_status shmframe_prefer_low_latency(void);

/**
 * Frees a string this library allocated (`shmframe_reader_schema_json`,
 * `shmframe_writer_schema_json`). NULL is ignored.
 *
 * Thread safety: any thread; each string once.
 *
 * # Safety
 * `s` is NULL or a string returned by this library and not freed yet.
 */
void shmframe_string_free(char *s);

/**
 * Removes channel `name` from /dev/shm (as `shmframe rm NAME`): its writer, if alive, goes on
 * publishing to readers already attached; new readers no longer find it.
 *
 * Returns SHMFRAME_NOT_FOUND if there is no such channel.
 *
 * Thread safety: any thread.
 *
 * # Safety
 * `name` is NULL or a NUL-terminated string.
 */
shmframe_status shmframe_channel_remove(const char *name);

/**
 * A new set of writer options with the defaults; free it with `shmframe_writer_options_free`
 * (`shmframe_writer_create` copies what it needs). NULL only if allocation fails.
 *
 * Thread safety: any thread.
 */
shmframe_writer_options *shmframe_writer_options_new(void);

/**
 * Frees writer options. NULL is ignored.
 *
 * Thread safety: not with other calls on the same options.
 *
 * # Safety
 * `opts` is NULL or from `shmframe_writer_options_new`, not freed yet.
 */
void shmframe_writer_options_free(shmframe_writer_options *opts);

/**
 * Slots in the ring, 1 to 64 (default 3). Each zero-copy view a reader holds pins one slot,
 * and the writer skips pinned slots: use more slots than views held at once.
 *
 * Thread safety: not with other calls on the same options.
 *
 * # Safety
 * `opts` is NULL or live options.
 */
shmframe_status shmframe_writer_options_set_slots(shmframe_writer_options *opts, uint32_t slots);

/**
 * Permission bits of the shared-memory object (default 0600; 0640 or 0660 share it with the
 * group). They must include owner read and write.
 *
 * Thread safety: not with other calls on the same options.
 *
 * # Safety
 * `opts` is NULL or live options.
 */
shmframe_status shmframe_writer_options_set_mode(shmframe_writer_options *opts, uint32_t mode);

/**
 * Payload bytes per slot reserved up front (default 0: the first frame decides). A larger
 * frame later grows the channel by itself; reserving avoids that one-time cost.
 *
 * Thread safety: not with other calls on the same options.
 *
 * # Safety
 * `opts` is NULL or live options.
 */
shmframe_status shmframe_writer_options_set_capacity(shmframe_writer_options *opts, size_t bytes);

/**
 * Keep the channel in /dev/shm after the writer closes (readers can still attach and read the
 * last frames); by default it is removed. `shmframe_channel_remove` removes it later.
 *
 * Thread safety: not with other calls on the same options.
 *
 * # Safety
 * `opts` is NULL or live options.
 */
shmframe_status shmframe_writer_options_set_keep(shmframe_writer_options *opts, bool keep);

/**
 * Declares the metadata every frame carries, as JSON (NULL: none). The schema travels with
 * the channel, so readers in any language decode the metadata without this program's source:
 *
 *     {"type_name": "MD", "size": 32, "align": 8, "fields": [
 *       {"name": "shape_0", "dtype": "int32", "offset": 0},
 *       {"name": "size", "dtype": "int64", "offset": 16},
 *       {"name": "flags", "dtype": "uint8", "count": 4, "offset": 24}]}
 *
 * `dtype`: a NumPy name (uint8 … float64, bool); `count` (default 1): elements of a
 * fixed-size array; `size` and `offset`: as `sizeof` and `offsetof` of your struct say;
 * `align` (default: the largest field's element size) and `type_name` (default "Meta") are
 * optional. Returns SHMFRAME_INVALID_ARGUMENT, with the reason, for malformed JSON or a
 * schema whose fields do not fit.
 *
 * Thread safety: not with other calls on the same options.
 *
 * # Safety
 * `opts` is NULL or live options; `json` is NULL or a NUL-terminated string.
 */
shmframe_status shmframe_writer_options_set_schema_json(shmframe_writer_options *opts, const char *json);

/**
 * Serves the channel on a Unix socket at `path` instead of naming it in /dev/shm (NULL: back
 * to the default, a name in /dev/shm). The channel's memory is then anonymous (a memfd) and
 * the writer hands it to each reader that connects to the socket (`shmframe_reader_connect`):
 * reader and writer need only see the same directory (in containers: a shared volume), not
 * share an IPC namespace, and nothing is left in /dev/shm whatever happens. The mode
 * (`shmframe_writer_options_set_mode`) decides who may connect. Closing the writer removes
 * the socket; a stale socket left by a writer that died is replaced by the next one.
 *
 * `path`: any file path (bytes, as `open` takes), at most 108 bytes, in a directory that
 * exists and that this user may write to. The channel name given to
 * `shmframe_writer_create` still names the channel (readers see it), but nothing else.
 * Cannot be combined with `shmframe_writer_options_set_keep` (`shmframe_writer_create` then
 * returns SHMFRAME_INVALID_ARGUMENT).
 *
 * Errors: SHMFRAME_INVALID_ARGUMENT (NULL `opts`, an empty or too long `path`).
 *
 * Thread safety: not with other calls on the same options.
 *
 * # Safety
 * `opts` is NULL or live options; `path` is NULL or a NUL-terminated string.
 */
shmframe_status shmframe_writer_options_set_socket(shmframe_writer_options *opts, const char *path);

/**
 * Creates channel `name` (letters, digits, `.`, `_`, `-`; at most 200 bytes; the object is
 * /dev/shm/shmframe.NAME) and stores its writer in `*out`. `opts` NULL: the defaults.
 * Takes over a stale channel whose writer died (its readers follow). With
 * `shmframe_writer_options_set_socket` the channel is served on that socket instead, and
 * nothing is named in /dev/shm.
 *
 * Errors: SHMFRAME_BUSY (a live writer holds the name, or serves on the socket path),
 * SHMFRAME_PERMISSION, SHMFRAME_NO_SPACE, SHMFRAME_INVALID_ARGUMENT (name, options),
 * SHMFRAME_IO (something other than a socket is at the socket path, or its directory is
 * missing or not writable). On failure `*out` is NULL.
 *
 * Thread safety: any thread.
 *
 * # Safety
 * `name` is NULL or a NUL-terminated string; `opts` is NULL or live options; `out` is NULL
 * or writable.
 */
shmframe_status shmframe_writer_create(const char *name, const shmframe_writer_options *opts, shmframe_writer **out);

/**
 * Publishes a frame by copying `len` bytes from `data`: a C-contiguous array of `ndim`
 * dimensions `shape[0] x … x shape[ndim-1]` (at most 8; `shape` may be NULL when ndim is 0) of
 * `dtype`. `len` must equal the element size times the product of the shape. Never waits for
 * readers.
 *
 * Errors: SHMFRAME_INVALID_ARGUMENT (NULL pointers, dtype, shape, `len`, or a loan still
 * open), SHMFRAME_SLOTS_PINNED, SHMFRAME_NO_SPACE (the channel had to grow for a larger frame).
 *
 * Thread safety: any thread; calls on one writer take turns.
 *
 * # Safety
 * `w` is NULL or a live writer; `shape` points to `ndim` values; `data` to `len` bytes.
 */
shmframe_status shmframe_writer_write(shmframe_writer *w, shmframe_dtype dtype, size_t ndim, const size_t *shape, const void *data, size_t len);

/**
 * As `shmframe_writer_write`, with `meta_len` bytes of metadata laid out as the channel's
 * schema declares (`meta_len` 0: none; otherwise exactly the schema's size), and the frame's
 * index stored in `*index` unless `index` is NULL.
 *
 * Thread safety: any thread; calls on one writer take turns.
 *
 * # Safety
 * As `shmframe_writer_write`; `meta` points to `meta_len` bytes; `index` is NULL or writable.
 */
shmframe_status shmframe_writer_write_meta(shmframe_writer *w, shmframe_dtype dtype, size_t ndim, const size_t *shape, const void *data, size_t len, const void *meta, size_t meta_len, uint64_t *index);

/**
 * Frames published so far (the next frame's index); 0 if `w` is NULL.
 *
 * Thread safety: any thread.
 *
 * # Safety
 * `w` is NULL or a live writer.
 */
uint64_t shmframe_writer_frames_published(const shmframe_writer *w);

/**
 * The channel's metadata schema as JSON (see `shmframe_writer_options_set_schema_json`), in
 * `*out`, to be freed with `shmframe_string_free`; `*out` is NULL if the channel declares none.
 *
 * Thread safety: any thread.
 *
 * # Safety
 * `w` is NULL or a live writer; `out` is NULL or writable.
 */
shmframe_status shmframe_writer_schema_json(const shmframe_writer *w, char **out);

/**
 * Closes the channel and frees the writer: readers get SHMFRAME_CLOSED once they have read
 * the frames still in the ring; the object is removed from /dev/shm unless the options said
 * keep (a socket-served channel's socket is removed). NULL is ignored. A loan still open can
 * afterwards only be discarded (its memory stays valid until then).
 *
 * Thread safety: not while another thread uses the same writer.
 *
 * # Safety
 * `w` is NULL or a live writer, not used again after this call.
 */
void shmframe_writer_close(shmframe_writer *w);

/**
 * Borrows a slot of the ring to fill in place (zero-copy): write the frame's `dtype` x `shape`
 * bytes at `shmframe_loan_data(*out)`, then publish or discard the loan. Until then other
 * writes on this writer fail (one loan at a time). Readers cannot see the bytes before
 * publication.
 *
 * Thread safety: any thread; calls on one writer take turns.
 *
 * # Safety
 * `w` is NULL or a live writer; `shape` points to `ndim` values; `out` is NULL or writable.
 */
shmframe_status shmframe_writer_loan(shmframe_writer *w, shmframe_dtype dtype, size_t ndim, const size_t *shape, shmframe_loan **out);

/**
 * The loan's bytes in shared memory, `shmframe_loan_len` of them, for this thread to fill;
 * valid until the loan is published or discarded. NULL if `l` is NULL.
 *
 * Thread safety: one thread at a time per loan.
 *
 * # Safety
 * `l` is NULL or a live loan.
 */
void *shmframe_loan_data(shmframe_loan *l);

/**
 * Bytes in the loan (element size x product of the shape); 0 if `l` is NULL.
 *
 * Thread safety: any thread.
 *
 * # Safety
 * `l` is NULL or a live loan.
 */
size_t shmframe_loan_len(const shmframe_loan *l);

/**
 * Publishes the loan's frame with `meta_len` bytes of metadata (0: none), stores its index in
 * `*index` unless `index` is NULL, and frees the loan — also on failure (then the frame is
 * discarded). Errors: SHMFRAME_INVALID_ARGUMENT (metadata size), SHMFRAME_CLOSED (the writer
 * was closed first).
 *
 * Thread safety: any thread; calls on one writer take turns.
 *
 * # Safety
 * `l` is NULL or a live loan, not used after this call; `meta` points to `meta_len` bytes;
 * `index` is NULL or writable.
 */
shmframe_status shmframe_loan_publish(shmframe_loan *l, const void *meta, size_t meta_len, uint64_t *index);

/**
 * Discards the loan (the slot is left empty; nothing is published) and frees it. NULL is
 * ignored.
 *
 * Thread safety: any thread; calls on one writer take turns.
 *
 * # Safety
 * `l` is NULL or a live loan, not used after this call.
 */
void shmframe_loan_discard(shmframe_loan *l);

/**
 * Opens channel `name` and stores its reader in `*out`. `timeout_ms`: 0, the channel must
 * exist; > 0, wait up to that long for it to appear (the reader may start before its
 * writer; this waits on inotify, not by polling); < 0, wait forever. The reader starts at the
 * newest frame.
 *
 * Errors: SHMFRAME_NOT_FOUND (no such channel, or none within the timeout),
 * SHMFRAME_PERMISSION, SHMFRAME_CORRUPT, SHMFRAME_VERSION_MISMATCH, SHMFRAME_INVALID_ARGUMENT.
 * On failure `*out` is NULL.
 *
 * Thread safety: any thread.
 *
 * # Safety
 * `name` is NULL or a NUL-terminated string; `out` is NULL or writable.
 */
shmframe_status shmframe_reader_open(const char *name, int64_t timeout_ms, shmframe_reader **out);

/**
 * Connects to the writer serving a channel on the Unix socket at `path`
 * (`shmframe_writer_options_set_socket`) and stores its reader in `*out`; from then on it
 * is a reader like one from `shmframe_reader_open`. `timeout_ms`: 0, the writer must be
 * serving; > 0, wait up to that long for it (the reader may start before its writer; this
 * waits on inotify in the socket's directory, not by polling); < 0, wait forever. `path`:
 * any file path (bytes, as `open` takes), at most 108 bytes. The reader starts at the newest
 * frame; after SHMFRAME_WRITER_GONE or SHMFRAME_CLOSED it follows a new writer on the same
 * socket.
 *
 * Errors: SHMFRAME_NOT_FOUND (no socket at `path`, a stale one whose writer died, or none
 * served within the timeout), SHMFRAME_PERMISSION (the socket's mode, or the writer refused
 * this user), SHMFRAME_CORRUPT (not a shmframe writer's socket: another program's, or a
 * file that is no socket), SHMFRAME_VERSION_MISMATCH, SHMFRAME_INVALID_ARGUMENT (NULL, empty
 * or too long `path`, NULL `out`). On failure `*out` is NULL.
 *
 * Thread safety: any thread.
 *
 * # Safety
 * `path` is NULL or a NUL-terminated string; `out` is NULL or writable.
 */
shmframe_status shmframe_reader_connect(const char *path, int64_t timeout_ms, shmframe_reader **out);

/**
 * Waits up to `timeout_ms` (< 0: forever; 0: do not wait) for the next frame and stores a
 * zero-copy view of it in `*out`. Frames come in order while the ring still holds them (see
 * `shmframe_view_missed`), or the newest one after `shmframe_reader_set_latest_only`.
 *
 * Errors: SHMFRAME_TIMEOUT; SHMFRAME_CLOSED (the writer closed the channel and every frame
 * has been read); SHMFRAME_WRITER_GONE (the writer died; noticed within a second); after either,
 * the next call follows a new writer of the same name (or on the same socket). On failure
 * `*out` is NULL.
 *
 * Each view pins one slot of the ring until released: a reader holding more views than the
 * channel has slots starves the writer (SHMFRAME_SLOTS_PINNED on its side).
 *
 * Thread safety: any thread; calls on one reader take turns.
 *
 * # Safety
 * `r` is NULL or a live reader; `out` is NULL or writable.
 */
shmframe_status shmframe_reader_next_view(shmframe_reader *r, int64_t timeout_ms, shmframe_view **out);

/**
 * As `shmframe_reader_next_view`, but copies the frame into `frame` (created with
 * `shmframe_frame_new`, reused from call to call) after verifying that the writer did not
 * touch it meanwhile. Pins nothing. On failure `frame` keeps its previous contents.
 *
 * Thread safety: any thread; calls on one reader take turns.
 *
 * # Safety
 * `r` is NULL or a live reader; `frame` is NULL or a live frame no other thread uses.
 */
shmframe_status shmframe_reader_next(shmframe_reader *r, int64_t timeout_ms, shmframe_frame *frame);

/**
 * `true`: the next call skips to the newest frame (counting skipped ones as missed), as a
 * display wants; `false` (default): every frame in order while the ring still holds it.
 *
 * Thread safety: any thread; calls on one reader take turns.
 *
 * # Safety
 * `r` is NULL or a live reader.
 */
shmframe_status shmframe_reader_set_latest_only(shmframe_reader *r, bool latest_only);

/**
 * The channel's metadata schema as JSON (the format of
 * `shmframe_writer_options_set_schema_json`, every key present), in `*out`, to be freed with
 * `shmframe_string_free`; `*out` is NULL if the channel declares no metadata.
 *
 * Thread safety: any thread; calls on one reader take turns.
 *
 * # Safety
 * `r` is NULL or a live reader; `out` is NULL or writable.
 */
shmframe_status shmframe_reader_schema_json(const shmframe_reader *r, char **out);

/**
 * `true` while the writer process holds the channel (checked with the lock the kernel drops
 * when it dies); `false` if it is gone or `r` is NULL.
 *
 * Thread safety: any thread; calls on one reader take turns.
 *
 * # Safety
 * `r` is NULL or a live reader.
 */
bool shmframe_reader_writer_alive(const shmframe_reader *r);

/**
 * Frees the reader. NULL is ignored. Views and frames it handed out stay valid until they
 * are released / freed.
 *
 * Thread safety: not while another thread uses the same reader.
 *
 * # Safety
 * `r` is NULL or a live reader, not used after this call.
 */
void shmframe_reader_close(shmframe_reader *r);

/**
 * The frame's bytes in shared memory (C order), `shmframe_view_len` of them, read-only.
 * Valid until `shmframe_view_release(v)` — also after the reader is closed, the writer is
 * gone or the channel grows; never write through it. NULL if `v` is NULL.
 *
 * Thread safety: any thread, concurrently with the other view accessors (all read-only).
 *
 * # Safety
 * `v` is NULL or a live view.
 */
const void *shmframe_view_data(const shmframe_view *v);

/**
 * Bytes of the frame: element size x product of the shape. 0 if `v` is NULL.
 *
 * Thread safety: any thread, concurrently with the other view accessors.
 *
 * # Safety
 * `v` is NULL or a live view.
 */
size_t shmframe_view_len(const shmframe_view *v);

/**
 * The element type (SHMFRAME_U8 if `v` is NULL).
 *
 * Thread safety: any thread, concurrently with the other view accessors.
 *
 * # Safety
 * `v` is NULL or a live view.
 */
shmframe_dtype shmframe_view_dtype(const shmframe_view *v);

/**
 * Number of dimensions (0 to 8; 0 if `v` is NULL).
 *
 * Thread safety: any thread, concurrently with the other view accessors.
 *
 * # Safety
 * `v` is NULL or a live view.
 */
size_t shmframe_view_ndim(const shmframe_view *v);

/**
 * The shape, `shmframe_view_ndim` values (e.g. height, width, channels), valid as long as
 * the view. NULL if `v` is NULL.
 *
 * Thread safety: any thread, concurrently with the other view accessors.
 *
 * # Safety
 * `v` is NULL or a live view.
 */
const size_t *shmframe_view_shape(const shmframe_view *v);

/**
 * The writer's frame index (0, 1, 2, … for one writer's stream).
 *
 * Thread safety: any thread, concurrently with the other view accessors.
 *
 * # Safety
 * `v` is NULL or a live view.
 */
uint64_t shmframe_view_index(const shmframe_view *v);

/**
 * Frames published between the previous frame this reader received and this one.
 *
 * Thread safety: any thread, concurrently with the other view accessors.
 *
 * # Safety
 * `v` is NULL or a live view.
 */
uint64_t shmframe_view_missed(const shmframe_view *v);

/**
 * The writer's CLOCK_MONOTONIC at publication, in ns (see `shmframe_monotonic_ns`).
 *
 * Thread safety: any thread, concurrently with the other view accessors.
 *
 * # Safety
 * `v` is NULL or a live view.
 */
uint64_t shmframe_view_timestamp_ns(const shmframe_view *v);

/**
 * The frame's metadata bytes (a copy held by the view), laid out as the channel's schema
 * says; `shmframe_view_meta_len` of them, 0 if the frame carries none. Valid as long as the
 * view.
 *
 * Thread safety: any thread, concurrently with the other view accessors.
 *
 * # Safety
 * `v` is NULL or a live view.
 */
const void *shmframe_view_meta(const shmframe_view *v);

/**
 * Bytes of metadata (the schema's size, or 0).
 *
 * Thread safety: any thread, concurrently with the other view accessors.
 *
 * # Safety
 * `v` is NULL or a live view.
 */
size_t shmframe_view_meta_len(const shmframe_view *v);

/**
 * Releases the view: unpins its slot for the writer and frees it. Pointers obtained from it
 * are invalid afterwards. NULL is ignored.
 *
 * Thread safety: any thread, once, when no other thread uses the view.
 *
 * # Safety
 * `v` is NULL or a live view, not used after this call.
 */
void shmframe_view_release(shmframe_view *v);

/**
 * A new, empty frame for `shmframe_reader_next`; free it with `shmframe_frame_free`. NULL
 * only if allocation fails.
 *
 * Thread safety: any thread.
 */
shmframe_frame *shmframe_frame_new(void);

/**
 * The frame's bytes (C order), `shmframe_frame_len` of them, owned by the frame: valid until
 * the next `shmframe_reader_next` into it or `shmframe_frame_free`. The caller may write to
 * them. NULL if `f` is NULL.
 *
 * Thread safety: the accessors of one frame may run concurrently, not with a
 * `shmframe_reader_next` into it.
 *
 * # Safety
 * `f` is NULL or a live frame.
 */
void *shmframe_frame_data(shmframe_frame *f);

/**
 * Bytes of the frame.
 *
 * Thread safety: any thread, not during a `shmframe_reader_next` into the same frame.
 *
 * # Safety
 * `f` is NULL or a live frame.
 */
size_t shmframe_frame_len(const shmframe_frame *f);

/**
 * The element type.
 *
 * Thread safety: any thread, not during a `shmframe_reader_next` into the same frame.
 *
 * # Safety
 * `f` is NULL or a live frame.
 */
shmframe_dtype shmframe_frame_dtype(const shmframe_frame *f);

/**
 * Number of dimensions.
 *
 * Thread safety: any thread, not during a `shmframe_reader_next` into the same frame.
 *
 * # Safety
 * `f` is NULL or a live frame.
 */
size_t shmframe_frame_ndim(const shmframe_frame *f);

/**
 * The shape, `shmframe_frame_ndim` values; valid until the next read into the frame.
 *
 * Thread safety: any thread, not during a `shmframe_reader_next` into the same frame.
 *
 * # Safety
 * `f` is NULL or a live frame.
 */
const size_t *shmframe_frame_shape(const shmframe_frame *f);

/**
 * The writer's frame index.
 *
 * Thread safety: any thread, not during a `shmframe_reader_next` into the same frame.
 *
 * # Safety
 * `f` is NULL or a live frame.
 */
uint64_t shmframe_frame_index(const shmframe_frame *f);

/**
 * Frames missed between the previous frame this reader received and this one.
 *
 * Thread safety: any thread, not during a `shmframe_reader_next` into the same frame.
 *
 * # Safety
 * `f` is NULL or a live frame.
 */
uint64_t shmframe_frame_missed(const shmframe_frame *f);

/**
 * The writer's CLOCK_MONOTONIC at publication, in ns.
 *
 * Thread safety: any thread, not during a `shmframe_reader_next` into the same frame.
 *
 * # Safety
 * `f` is NULL or a live frame.
 */
uint64_t shmframe_frame_timestamp_ns(const shmframe_frame *f);

/**
 * The frame's metadata bytes, `shmframe_frame_meta_len` of them (0: none).
 *
 * Thread safety: any thread, not during a `shmframe_reader_next` into the same frame.
 *
 * # Safety
 * `f` is NULL or a live frame.
 */
const void *shmframe_frame_meta(const shmframe_frame *f);

/**
 * Bytes of metadata.
 *
 * Thread safety: any thread, not during a `shmframe_reader_next` into the same frame.
 *
 * # Safety
 * `f` is NULL or a live frame.
 */
size_t shmframe_frame_meta_len(const shmframe_frame *f);

/**
 * Frees a frame. NULL is ignored.
 *
 * Thread safety: once, when no other thread uses the frame.
 *
 * # Safety
 * `f` is NULL or a live frame, not used after this call.
 */
void shmframe_frame_free(shmframe_frame *f);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* SHMFRAME_H */
