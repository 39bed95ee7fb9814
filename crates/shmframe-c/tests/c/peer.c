/* The C side of the cross-language tests (scripts/test.d/65-c.sh), compiled against the
 * installed header with `pkg-config --cflags --libs shmframe` and -Wall -Wextra -Werror.
 *
 *   peer write NAME N GO [SOCKET]
 *                             create NAME, publish test frame 0, wait for the file GO, publish
 *                             frames 1 to N-1 (copies and loans, two dtypes, metadata), wait for
 *                             GO.done, close; with SOCKET, serve the channel on that Unix socket
 *   peer read NAME N GO [SOCKET]
 *                             open NAME (with SOCKET: connect to it, and check that nothing of
 *                             NAME is in /dev/shm), receive frame 0, touch GO, receive the other
 *                             frames (views and copies), touch GO.done, expect SHMFRAME_CLOSED;
 *                             check every byte, the metadata and the schema
 *
 * Frame 0 is the largest, so the channel has its final size before GO: a reader that has
 * received it is attached to the segment that carries the rest (see docs/c.md on growth). The
 * writer closes only once the reader has every frame: a reader that finds no frame and then sees
 * the channel closed reports SHMFRAME_CLOSED even if the writer published its last frames in
 * between (a race of the library's reader, reported; a burst followed by close hits it).
 *   peer read-cli NAME N      receive `shmframe write NAME --frames N` frames until the channel
 *                             closes; check shapes and the index/missed accounting
 *   peer bad DIR              bad input through every entry point: statuses and messages, no crash
 *                             (socket-served channels in the existing directory DIR, left empty)
 *
 * The test frames (the same in peer.py and peer.cpp): frame k is uint8 {12, 16, 3} with element i
 * = (7k + i) % 251 when k is even, float32 {5, 7} with element i = k + i / 4 when k is odd; its
 * metadata is TestMeta {index = k, value = k / 2, tag = "sf" k 0}.
 */
#define _POSIX_C_SOURCE 200809L
#include <shmframe.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  uint32_t index;
  int32_t pad;
  double value;
  uint8_t tag[4];
  uint8_t pad2[4];
} test_meta;

static const char *SCHEMA =
    "{\"type_name\": \"TestMeta\", \"size\": 24, \"align\": 8, \"fields\": ["
    "{\"name\": \"index\", \"dtype\": \"uint32\", \"offset\": 0},"
    "{\"name\": \"pad\", \"dtype\": \"int32\", \"offset\": 4},"
    "{\"name\": \"value\", \"dtype\": \"float64\", \"offset\": 8},"
    "{\"name\": \"tag\", \"dtype\": \"uint8\", \"count\": 4, \"offset\": 16}]}";

static int failures = 0;

#define CHECK(cond, ...)                                      \
  do {                                                        \
    if (!(cond)) {                                            \
      fprintf(stderr, "peer.c:%d: %s: ", __LINE__, #cond);    \
      fprintf(stderr, __VA_ARGS__);                           \
      fprintf(stderr, "\n");                                  \
      failures++;                                             \
    }                                                         \
  } while (0)

#define MUST(call)                                                                       \
  do {                                                                                   \
    shmframe_status s_ = (call);                                                         \
    if (s_ != SHMFRAME_OK) {                                                             \
      fprintf(stderr, "peer.c:%d: %s: %s: %s\n", __LINE__, #call, shmframe_status_name(s_), \
              shmframe_last_error());                                                    \
      exit(1);                                                                           \
    }                                                                                    \
  } while (0)

static void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

static int wait_file(const char *path, long timeout_ms) {
  for (long waited = 0; waited < timeout_ms; waited += 10) {
    if (access(path, F_OK) == 0) return 1;
    sleep_ms(10);
  }
  return 0;
}

static void touch(const char *path) {
  int fd = open(path, O_CREAT | O_WRONLY, 0644);
  if (fd >= 0) close(fd);
}

/* The first object in /dev/shm whose name contains `name` (into `found`), or 0 if none. */
static int in_dev_shm(const char *name, char *found, size_t size) {
  DIR *d = opendir("/dev/shm");
  if (!d) return 0;
  struct dirent *e;
  int hit = 0;
  while (!hit && (e = readdir(d)) != NULL) {
    if (strstr(e->d_name, name)) {
      snprintf(found, size, "%s", e->d_name);
      hit = 1;
    }
  }
  closedir(d);
  return hit;
}

/* The test frame k: its dtype, shape, and element values. */
static shmframe_dtype frame_dtype(uint64_t k) { return k % 2 == 0 ? SHMFRAME_U8 : SHMFRAME_F32; }

static size_t frame_shape(uint64_t k, size_t shape[3]) {
  if (k % 2 == 0) {
    shape[0] = 12, shape[1] = 16, shape[2] = 3;
    return 3;
  }
  shape[0] = 5, shape[1] = 7;
  return 2;
}

static size_t frame_elements(uint64_t k) { return k % 2 == 0 ? 12 * 16 * 3 : 5 * 7; }

static void fill_frame(uint64_t k, void *data) {
  size_t n = frame_elements(k);
  for (size_t i = 0; i < n; i++) {
    if (k % 2 == 0)
      ((uint8_t *)data)[i] = (uint8_t)((7 * k + i) % 251);
    else
      ((float *)data)[i] = (float)k + (float)i / 4.0f;
  }
}

static test_meta frame_meta(uint64_t k) {
  test_meta m;
  memset(&m, 0, sizeof m);
  m.index = (uint32_t)k;
  m.value = (double)k / 2.0;
  m.tag[0] = 's', m.tag[1] = 'f', m.tag[2] = (uint8_t)k;
  return m;
}

static void check_frame(uint64_t k, shmframe_dtype dtype, size_t ndim, const size_t *shape,
                        const void *data, size_t len, const void *meta, size_t meta_len) {
  size_t want_shape[3];
  size_t want_ndim = frame_shape(k, want_shape);
  CHECK(dtype == frame_dtype(k), "frame %llu: dtype %d", (unsigned long long)k, (int)dtype);
  CHECK(ndim == want_ndim, "frame %llu: ndim %zu", (unsigned long long)k, ndim);
  for (size_t d = 0; d < ndim && d < want_ndim; d++)
    CHECK(shape[d] == want_shape[d], "frame %llu: shape[%zu] = %zu", (unsigned long long)k, d,
          shape[d]);
  size_t n = frame_elements(k);
  size_t esize = shmframe_dtype_size(frame_dtype(k));
  CHECK(len == n * esize, "frame %llu: %zu bytes", (unsigned long long)k, len);
  if (len == n * esize) {
    void *want = malloc(len);
    fill_frame(k, want);
    CHECK(memcmp(want, data, len) == 0, "frame %llu: pixels differ", (unsigned long long)k);
    free(want);
  }
  test_meta m = frame_meta(k), got;
  CHECK(meta_len == sizeof got, "frame %llu: %zu metadata bytes", (unsigned long long)k, meta_len);
  if (meta_len == sizeof got) {
    memcpy(&got, meta, sizeof got);
    CHECK(got.index == m.index && got.value == m.value && memcmp(got.tag, m.tag, 4) == 0,
          "frame %llu: metadata index=%u value=%g", (unsigned long long)k, got.index, got.value);
  }
}

static int role_write(const char *name, uint64_t n, const char *go, const char *sock) {
  shmframe_writer_options *o = shmframe_writer_options_new();
  if (sock) MUST(shmframe_writer_options_set_socket(o, sock));
  MUST(shmframe_writer_options_set_slots(o, 32));
  MUST(shmframe_writer_options_set_schema_json(o, SCHEMA));
  MUST(shmframe_writer_options_set_capacity(o, 12 * 16 * 3));
  shmframe_writer *w = NULL;
  MUST(shmframe_writer_create(name, o, &w));
  shmframe_writer_options_free(o);
  uint8_t buf[12 * 16 * 3 * 4];
  for (uint64_t k = 0; k < n; k++) {
    if (k == 1 && !wait_file(go, 30000)) {
      fprintf(stderr, "peer write: no reader within 30 s\n");
      shmframe_writer_close(w);
      return 1;
    }
    size_t shape[3];
    size_t ndim = frame_shape(k, shape);
    test_meta m = frame_meta(k);
    uint64_t index = 99;
    if (k % 3 == 0) { /* zero-copy: fill a loan in place */
      shmframe_loan *l = NULL;
      MUST(shmframe_writer_loan(w, frame_dtype(k), ndim, shape, &l));
      CHECK(shmframe_loan_len(l) == frame_elements(k) * shmframe_dtype_size(frame_dtype(k)),
            "loan length %zu", shmframe_loan_len(l));
      fill_frame(k, shmframe_loan_data(l));
      MUST(shmframe_loan_publish(l, &m, sizeof m, &index));
    } else {
      fill_frame(k, buf);
      size_t len = frame_elements(k) * shmframe_dtype_size(frame_dtype(k));
      MUST(shmframe_writer_write_meta(w, frame_dtype(k), ndim, shape, buf, len, &m, sizeof m,
                                      &index));
    }
    CHECK(index == k, "published frame %llu as %llu", (unsigned long long)k,
          (unsigned long long)index);
  }
  CHECK(shmframe_writer_frames_published(w) == n, "frames published");
  char done[4096];
  snprintf(done, sizeof done, "%s.done", go);
  if (!wait_file(done, 30000)) fprintf(stderr, "peer write: the reader did not finish in 30 s\n");
  shmframe_writer_close(w);
  return failures ? 1 : 0;
}

/* The kernel's version as major * 1000 + minor. */
static int kernel_version(void) {
  struct utsname u;
  int major = 0, minor = 0;
  if (uname(&u) == 0) sscanf(u.release, "%d.%d", &major, &minor);
  return major * 1000 + minor;
}

/* shmframe_prefer_low_latency gives this thread the 0.1 ms slice (the kernel's own account, in
 * /proc/thread-self/sched) from Linux 6.12 on, and says SHMFRAME_UNSUPPORTED before. */
static void check_low_latency(void) {
  shmframe_status s = shmframe_prefer_low_latency();
  if (kernel_version() < 6012) {
    CHECK(s == SHMFRAME_UNSUPPORTED && strstr(shmframe_last_error(), "6.12"), "status %s: %s",
          shmframe_status_name(s), shmframe_last_error());
    return;
  }
  CHECK(s == SHMFRAME_OK, "status %s: %s", shmframe_status_name(s), shmframe_last_error());
  FILE *f = fopen("/proc/thread-self/sched", "r");
  char line[256];
  unsigned long long slice = 0;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "se.slice", 8) == 0) sscanf(strchr(line, ':') + 1, "%llu", &slice);
  if (f) fclose(f);
  CHECK(slice == 100000, "the thread's slice is %llu ns", slice);
}

static int role_read(const char *name, uint64_t n, const char *go, const char *sock) {
  check_low_latency();
  shmframe_reader *r = NULL;
  if (sock)
    MUST(shmframe_reader_connect(sock, 30000, &r));
  else
    MUST(shmframe_reader_open(name, 30000, &r));
  char *schema = NULL;
  MUST(shmframe_reader_schema_json(r, &schema));
  CHECK(schema && strstr(schema, "\"type_name\":\"TestMeta\"") &&
            strstr(schema, "{\"name\":\"tag\",\"dtype\":\"uint8\",\"count\":4,\"offset\":16}"),
        "schema %s", schema ? schema : "(none)");
  shmframe_string_free(schema);
  shmframe_frame *f = shmframe_frame_new();
  uint64_t got = 0;
  shmframe_status end;
  for (;;) {
    shmframe_status s;
    uint64_t index, missed;
    if (got % 2 == 0) {
      shmframe_view *v = NULL;
      s = shmframe_reader_next_view(r, 10000, &v);
      if ((end = s) != SHMFRAME_OK) break;
      index = shmframe_view_index(v), missed = shmframe_view_missed(v);
      check_frame(index, shmframe_view_dtype(v), shmframe_view_ndim(v), shmframe_view_shape(v),
                  shmframe_view_data(v), shmframe_view_len(v), shmframe_view_meta(v),
                  shmframe_view_meta_len(v));
      CHECK(shmframe_monotonic_ns() >= shmframe_view_timestamp_ns(v), "timestamp in the future");
      shmframe_view_release(v);
    } else {
      s = shmframe_reader_next(r, 10000, f);
      if ((end = s) != SHMFRAME_OK) break;
      index = shmframe_frame_index(f), missed = shmframe_frame_missed(f);
      check_frame(index, shmframe_frame_dtype(f), shmframe_frame_ndim(f), shmframe_frame_shape(f),
                  shmframe_frame_data(f), shmframe_frame_len(f), shmframe_frame_meta(f),
                  shmframe_frame_meta_len(f));
    }
    CHECK(index == got && missed == 0, "frame %llu arrived as index %llu, missed %llu",
          (unsigned long long)got, (unsigned long long)index, (unsigned long long)missed);
    char shm[256];
    if (sock && got == 0)
      CHECK(!in_dev_shm(name, shm, sizeof shm), "socket-served channel in /dev/shm: %s", shm);
    if (++got == 1) touch(go);
    if (got == n) {
      char done[4096];
      snprintf(done, sizeof done, "%s.done", go);
      touch(done);
    }
  }
  CHECK(end == SHMFRAME_CLOSED, "the stream ended with %s", shmframe_status_name(end));
  shmframe_status s = shmframe_reader_next_view(r, 0, &(shmframe_view *){NULL});
  CHECK(s == SHMFRAME_CLOSED, "after the last frame: %s (%s)", shmframe_status_name(s),
        shmframe_last_error());
  CHECK(got == n, "received %llu of %llu frames", (unsigned long long)got, (unsigned long long)n);
  shmframe_frame_free(f);
  shmframe_reader_close(r);
  printf("peer read: %llu frames from %s checked%s%s\n", (unsigned long long)got, name,
         sock ? " through " : "", sock ? sock : "");
  return failures ? 1 : 0;
}

static int role_read_cli(const char *name, uint64_t n) {
  shmframe_reader *r = NULL;
  MUST(shmframe_reader_open(name, 30000, &r));
  uint64_t got = 0, last = 0;
  int first = 1;
  shmframe_status s;
  for (;;) {
    shmframe_view *v = NULL;
    s = shmframe_reader_next_view(r, 10000, &v);
    if (s != SHMFRAME_OK) break;
    uint64_t index = shmframe_view_index(v), missed = shmframe_view_missed(v);
    const size_t *shape = shmframe_view_shape(v);
    CHECK(shmframe_view_dtype(v) == SHMFRAME_U8 && shmframe_view_ndim(v) == 3 && shape[0] == 48 &&
              shape[1] == 64 && shape[2] == 3,
          "frame %llu: not a 64x48 bgr8 image", (unsigned long long)index);
    CHECK(first || index == last + missed + 1, "index %llu after %llu with %llu missed",
          (unsigned long long)index, (unsigned long long)last, (unsigned long long)missed);
    const uint8_t *px = shmframe_view_data(v);
    size_t nonzero = 0;
    for (size_t i = 0; i < shmframe_view_len(v); i++) nonzero += px[i] != 0;
    CHECK(nonzero > 0, "frame %llu is black", (unsigned long long)index);
    first = 0, last = index, got++;
    shmframe_view_release(v);
  }
  CHECK(s == SHMFRAME_CLOSED, "stream ended with %s: %s", shmframe_status_name(s),
        shmframe_last_error());
  CHECK(got > 0 && last == n - 1, "received %llu frames, the last one %llu",
        (unsigned long long)got, (unsigned long long)last);
  shmframe_reader_close(r);
  printf("peer read-cli: %llu frames from the shmframe command, last index %llu\n",
         (unsigned long long)got, (unsigned long long)last);
  return failures ? 1 : 0;
}

/* Expects `call` to fail with `want` and a message that contains `text`. */
#define BAD(want, text, call)                                                               \
  do {                                                                                      \
    shmframe_status s_ = (call);                                                            \
    const char *m_ = shmframe_last_error();                                                 \
    CHECK(s_ == (want) && m_ != NULL && strstr(m_, (text)) != NULL, "%s: %s (%s)", #call,   \
          shmframe_status_name(s_), m_ ? m_ : "NULL");                                      \
    checks++;                                                                               \
  } while (0)

/* A Unix socket of `type` bound at `path`, listening unless `type` is SOCK_DGRAM; -1 on failure. */
static int bound_socket(const char *path, int type) {
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  int fd = socket(AF_UNIX, type, 0);
  if (fd < 0) return -1;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || (type != SOCK_DGRAM && listen(fd, 4) != 0)) {
    close(fd);
    return -1;
  }
  return fd;
}

static int role_bad(const char *dir) {
  int checks = 0;
  const shmframe_status INV = SHMFRAME_INVALID_ARGUMENT;
  char name[64];
  snprintf(name, sizeof name, "sft-c-bad-%d", (int)getpid());
  size_t shape[3] = {2, 3, 4};
  uint8_t data[24] = {0};

  CHECK(strlen(shmframe_version()) > 0, "version");
  CHECK(strcmp(shmframe_status_name(SHMFRAME_CLOSED), "SHMFRAME_CLOSED") == 0, "status name");
  CHECK(strcmp(shmframe_status_name(SHMFRAME_UNSUPPORTED), "SHMFRAME_UNSUPPORTED") == 0,
        "status name");
  CHECK(strcmp(shmframe_status_name((shmframe_status)77), "SHMFRAME_UNKNOWN_STATUS") == 0,
        "unknown status name");
  CHECK(shmframe_dtype_size((shmframe_dtype)99) == 0 && shmframe_dtype_name((shmframe_dtype)99) == NULL,
        "dtype 99");
  CHECK(strcmp(shmframe_dtype_name(SHMFRAME_F32), "float32") == 0, "dtype name");

  /* options */
  shmframe_writer_options *o = shmframe_writer_options_new();
  BAD(INV, "opts is NULL", shmframe_writer_options_set_slots(NULL, 3));
  BAD(INV, "0 slots", shmframe_writer_options_set_slots(o, 0));
  BAD(INV, "65 slots", shmframe_writer_options_set_slots(o, 65));
  BAD(INV, "mode 400", shmframe_writer_options_set_mode(o, 0400));
  BAD(INV, "opts is NULL", shmframe_writer_options_set_mode(NULL, 0600));
  BAD(INV, "opts is NULL", shmframe_writer_options_set_capacity(NULL, 1));
  BAD(INV, "opts is NULL", shmframe_writer_options_set_keep(NULL, true));
  BAD(INV, "JSON", shmframe_writer_options_set_schema_json(o, "{not json"));
  BAD(INV, "does not fit",
      shmframe_writer_options_set_schema_json(
          o, "{\"size\": 4, \"fields\": [{\"name\": \"x\", \"dtype\": \"float64\", \"offset\": 0}]}"));
  BAD(INV, "complex128",
      shmframe_writer_options_set_schema_json(
          o, "{\"size\": 16, \"fields\": [{\"name\": \"x\", \"dtype\": \"complex128\", \"offset\": 0}]}"));
  BAD(INV, "opts is NULL", shmframe_writer_options_set_schema_json(NULL, SCHEMA));
  MUST(shmframe_writer_options_set_schema_json(o, SCHEMA));
  MUST(shmframe_writer_options_set_schema_json(o, NULL)); /* no metadata after all */
  MUST(shmframe_writer_options_set_capacity(o, 24));
  shmframe_writer_options_free(NULL);

  /* writer creation */
  shmframe_writer *w = (shmframe_writer *)&checks; /* garbage that must be cleared */
  BAD(INV, "name is NULL", shmframe_writer_create(NULL, o, &w));
  CHECK(w == NULL, "*out not cleared on failure");
  BAD(INV, "out is NULL", shmframe_writer_create(name, o, NULL));
  BAD(INV, "contains '/'", shmframe_writer_create("bad/name", o, &w));
  BAD(INV, "empty", shmframe_writer_create("", o, &w));
  BAD(INV, "UTF-8", shmframe_writer_create("bad\xff", o, &w));
  MUST(shmframe_writer_create(name, o, &w));
  shmframe_writer *w2 = NULL;
  BAD(SHMFRAME_BUSY, "already has a live writer", shmframe_writer_create(name, NULL, &w2));
  CHECK(w2 == NULL, "busy writer handle");
  shmframe_writer_options_free(o);

  /* writes */
  MUST(shmframe_writer_write(w, SHMFRAME_U8, 3, shape, data, 24));
  BAD(INV, "writer is NULL", shmframe_writer_write(NULL, SHMFRAME_U8, 3, shape, data, 24));
  BAD(INV, "dtype 99", shmframe_writer_write(w, (shmframe_dtype)99, 3, shape, data, 24));
  BAD(INV, "23 data bytes", shmframe_writer_write(w, SHMFRAME_U8, 3, shape, data, 23));
  BAD(INV, "needs 96", shmframe_writer_write(w, SHMFRAME_F32, 3, shape, data, 24));
  BAD(INV, "shape is NULL", shmframe_writer_write(w, SHMFRAME_U8, 3, NULL, data, 24));
  BAD(INV, "data is NULL", shmframe_writer_write(w, SHMFRAME_U8, 3, shape, NULL, 24));
  BAD(INV, "9 dimensions", shmframe_writer_write(w, SHMFRAME_U8, 9, shape, data, 24));
  size_t huge[2] = {SIZE_MAX / 2, 4};
  BAD(INV, "too large", shmframe_writer_write(w, SHMFRAME_U8, 2, huge, data, 24));
  BAD(INV, "metadata", shmframe_writer_write_meta(w, SHMFRAME_U8, 3, shape, data, 24, data, 5, NULL));
  BAD(INV, "meta is NULL", shmframe_writer_write_meta(w, SHMFRAME_U8, 3, shape, data, 24, NULL, 5, NULL));
  MUST(shmframe_writer_write(w, SHMFRAME_F64, 0, NULL, data, 8)); /* a 0-d frame */
  CHECK(shmframe_writer_frames_published(NULL) == 0, "frames_published(NULL)");
  char *js = (char *)data;
  MUST(shmframe_writer_schema_json(w, &js));
  CHECK(js == NULL, "schema of a channel without metadata");
  BAD(INV, "out is NULL", shmframe_writer_schema_json(w, NULL));
  BAD(INV, "writer is NULL", shmframe_writer_schema_json(NULL, &js));

  /* loans */
  shmframe_loan *l = NULL;
  BAD(INV, "writer is NULL", shmframe_writer_loan(NULL, SHMFRAME_U8, 3, shape, &l));
  BAD(INV, "dtype 42", shmframe_writer_loan(w, (shmframe_dtype)42, 3, shape, &l));
  BAD(INV, "out is NULL", shmframe_writer_loan(w, SHMFRAME_U8, 3, shape, NULL));
  BAD(INV, "shape is NULL", shmframe_writer_loan(w, SHMFRAME_U8, 2, NULL, &l));
  MUST(shmframe_writer_loan(w, SHMFRAME_U8, 3, shape, &l));
  BAD(INV, "is still open: publish or discard it", shmframe_writer_write(w, SHMFRAME_U8, 3, shape, data, 24));
  shmframe_loan *l2 = NULL;
  BAD(INV, "is still open: publish or discard it", shmframe_writer_loan(w, SHMFRAME_U8, 3, shape, &l2));
  memset(shmframe_loan_data(l), 5, shmframe_loan_len(l));
  BAD(INV, "metadata", shmframe_loan_publish(l, data, 3, NULL)); /* frees the loan */
  MUST(shmframe_writer_loan(w, SHMFRAME_U8, 3, shape, &l));
  shmframe_loan_discard(l);
  MUST(shmframe_writer_loan(w, SHMFRAME_U8, 3, shape, &l));
  uint64_t index = 0;
  MUST(shmframe_loan_publish(l, NULL, 0, &index));
  CHECK(index == 2, "loan index %llu", (unsigned long long)index);
  BAD(INV, "loan is NULL", shmframe_loan_publish(NULL, NULL, 0, NULL));
  CHECK(shmframe_loan_data(NULL) == NULL && shmframe_loan_len(NULL) == 0, "loan accessors(NULL)");
  shmframe_loan_discard(NULL);
  /* a loan outliving its writer can only be discarded */
  MUST(shmframe_writer_loan(w, SHMFRAME_U8, 3, shape, &l));

  /* readers */
  shmframe_reader *r = (shmframe_reader *)&checks;
  BAD(INV, "name is NULL", shmframe_reader_open(NULL, 0, &r));
  CHECK(r == NULL, "*out not cleared on failure");
  BAD(INV, "out is NULL", shmframe_reader_open(name, 0, NULL));
  BAD(INV, "must not start", shmframe_reader_open("-x", 0, &r));
  BAD(SHMFRAME_NOT_FOUND, "does not exist", shmframe_reader_open("sft-c-no-such-channel", 0, &r));
  BAD(SHMFRAME_NOT_FOUND, "did not appear", shmframe_reader_open("sft-c-no-such-channel", 30, &r));
  MUST(shmframe_reader_open(name, 0, &r));
  shmframe_view *v = (shmframe_view *)&checks;
  BAD(INV, "reader is NULL", shmframe_reader_next_view(NULL, 0, &v));
  CHECK(v == NULL, "*out not cleared on failure");
  BAD(INV, "out is NULL", shmframe_reader_next_view(r, 0, NULL));
  MUST(shmframe_reader_next_view(r, 0, &v)); /* a new reader starts at the newest frame */
  CHECK(shmframe_view_index(v) == 2, "first frame of a new reader: %llu",
        (unsigned long long)shmframe_view_index(v));
  shmframe_view_release(v);
  BAD(SHMFRAME_TIMEOUT, "no frame", shmframe_reader_next_view(r, 0, &v));
  BAD(SHMFRAME_TIMEOUT, "no frame", shmframe_reader_next_view(r, 20, &v));
  shmframe_frame *f = shmframe_frame_new();
  BAD(INV, "frame is NULL", shmframe_reader_next(r, 0, NULL));
  BAD(INV, "reader is NULL", shmframe_reader_next(NULL, 0, f));
  BAD(SHMFRAME_TIMEOUT, "no frame", shmframe_reader_next(r, 0, f));
  BAD(INV, "reader is NULL", shmframe_reader_set_latest_only(NULL, true));
  BAD(INV, "reader is NULL", shmframe_reader_schema_json(NULL, &js));
  BAD(INV, "out is NULL", shmframe_reader_schema_json(r, NULL));
  CHECK(shmframe_reader_writer_alive(r) && !shmframe_reader_writer_alive(NULL), "writer_alive");

  /* accessors of NULL handles */
  CHECK(shmframe_view_data(NULL) == NULL && shmframe_view_len(NULL) == 0 &&
            shmframe_view_ndim(NULL) == 0 && shmframe_view_shape(NULL) == NULL &&
            shmframe_view_index(NULL) == 0 && shmframe_view_missed(NULL) == 0 &&
            shmframe_view_timestamp_ns(NULL) == 0 && shmframe_view_meta(NULL) == NULL &&
            shmframe_view_meta_len(NULL) == 0 && shmframe_view_dtype(NULL) == SHMFRAME_U8,
        "view accessors(NULL)");
  CHECK(strstr(shmframe_last_error(), "view is NULL") != NULL, "accessor message: %s",
        shmframe_last_error());
  CHECK(shmframe_frame_data(NULL) == NULL && shmframe_frame_len(NULL) == 0 &&
            shmframe_frame_ndim(NULL) == 0 && shmframe_frame_shape(NULL) == NULL &&
            shmframe_frame_index(NULL) == 0 && shmframe_frame_missed(NULL) == 0 &&
            shmframe_frame_timestamp_ns(NULL) == 0 && shmframe_frame_meta(NULL) == NULL &&
            shmframe_frame_meta_len(NULL) == 0 && shmframe_frame_dtype(NULL) == SHMFRAME_U8,
        "frame accessors(NULL)");

  /* a view outlives its reader; the writer skips its pinned slot */
  shmframe_loan_discard(l);
  data[0] = 42;
  MUST(shmframe_writer_write(w, SHMFRAME_U8, 3, shape, data, 24));
  MUST(shmframe_reader_next_view(r, 1000, &v));
  shmframe_reader_close(r);
  CHECK(((const uint8_t *)shmframe_view_data(v))[0] == 42 && shmframe_view_index(v) == 3,
        "view after its reader closed");

  /* a loan still open when its writer closes */
  MUST(shmframe_writer_loan(w, SHMFRAME_U8, 3, shape, &l));
  shmframe_writer_close(w);
  memset(shmframe_loan_data(l), 1, shmframe_loan_len(l)); /* still mapped */
  BAD(SHMFRAME_CLOSED, "closed", shmframe_loan_publish(l, NULL, 0, NULL));
  shmframe_view_release(v);
  shmframe_frame_free(f);

  /* removing channels */
  BAD(SHMFRAME_NOT_FOUND, "does not exist", shmframe_channel_remove(name));
  BAD(INV, "name is NULL", shmframe_channel_remove(NULL));
  o = shmframe_writer_options_new();
  MUST(shmframe_writer_options_set_keep(o, true));
  MUST(shmframe_writer_create(name, o, &w));
  shmframe_writer_options_free(o);
  shmframe_writer_close(w);
  MUST(shmframe_reader_open(name, 0, &r)); /* kept after close */
  BAD(SHMFRAME_CLOSED, "closed", shmframe_reader_next_view(r, 0, &v));
  shmframe_reader_close(r);
  MUST(shmframe_channel_remove(name));

  /* socket-served channels, in `dir` */
  char sock[1024], missing[1024], file[1024], longpath[200], shm[256], pid[32];
  snprintf(sock, sizeof sock, "%s/bad.sock", dir);
  snprintf(missing, sizeof missing, "%s/missing.sock", dir);
  snprintf(file, sizeof file, "%s/a-file", dir);
  memset(longpath, 'a', 150);
  longpath[0] = '/', longpath[150] = '\0';
  o = shmframe_writer_options_new();
  BAD(INV, "opts is NULL", shmframe_writer_options_set_socket(NULL, sock));
  BAD(INV, "path is empty", shmframe_writer_options_set_socket(o, ""));
  BAD(INV, "holds at most 108", shmframe_writer_options_set_socket(o, longpath));
  MUST(shmframe_writer_options_set_keep(o, true));
  MUST(shmframe_writer_options_set_socket(o, sock));
  BAD(INV, "`keep` needs a name in /dev/shm", shmframe_writer_create(name, o, &w));
  MUST(shmframe_writer_options_set_keep(o, false));
  r = (shmframe_reader *)&checks;
  BAD(INV, "path is NULL", shmframe_reader_connect(NULL, 0, &r));
  CHECK(r == NULL, "*out not cleared on failure");
  BAD(INV, "path is NULL", shmframe_reader_connect(NULL, 30, &r));
  BAD(INV, "out is NULL", shmframe_reader_connect(sock, 0, NULL));
  BAD(INV, "path is empty", shmframe_reader_connect("", 0, &r));
  BAD(INV, "holds at most 108", shmframe_reader_connect(longpath, 0, &r));
  BAD(SHMFRAME_NOT_FOUND, missing, shmframe_reader_connect(missing, 0, &r)); /* names the path */
  BAD(SHMFRAME_NOT_FOUND, "(no such socket)", shmframe_reader_connect(missing, 0, &r));
  BAD(SHMFRAME_NOT_FOUND, missing, shmframe_reader_connect(missing, 30, &r));
  BAD(SHMFRAME_NOT_FOUND, "within", shmframe_reader_connect(missing, 30, &r));
  CHECK(r == NULL, "*out after a failed connect");
  /* a regular file at the path: the writer leaves it alone, a reader is told what it is */
  touch(file);
  MUST(shmframe_writer_options_set_socket(o, file));
  BAD(SHMFRAME_IO, "not a socket", shmframe_writer_create(name, o, &w));
  BAD(SHMFRAME_CORRUPT, file, shmframe_reader_connect(file, 0, &r));
  BAD(SHMFRAME_CORRUPT, "a regular file, not a socket", shmframe_reader_connect(file, 0, &r));
  CHECK(access(file, F_OK) == 0, "the writer removed a regular file");
  unlink(file);
  /* another program's socket: not a shmframe writer's, and in use */
  int foreign = bound_socket(sock, SOCK_STREAM);
  CHECK(foreign >= 0, "binding a stream socket at %s: %s", sock, strerror(errno));
  BAD(SHMFRAME_CORRUPT, "not the socket of a shmframe writer", shmframe_reader_connect(sock, 0, &r));
  MUST(shmframe_writer_options_set_socket(o, sock));
  BAD(SHMFRAME_BUSY, "live writer", shmframe_writer_create(name, o, &w));
  close(foreign); /* a stale socket now: nobody listens */
  BAD(SHMFRAME_NOT_FOUND, "stale socket", shmframe_reader_connect(sock, 0, &r));
  /* a writer replaces the stale socket and serves on it; nothing of it is in /dev/shm */
  MUST(shmframe_writer_create(name, o, &w));
  CHECK(!in_dev_shm(name, shm, sizeof shm), "socket-served channel in /dev/shm: %s", shm);
  MUST(shmframe_reader_connect(sock, 0, &r));
  snprintf(pid, sizeof pid, "(pid %d)", (int)getpid()); /* the live writer's, in the message */
  BAD(SHMFRAME_BUSY, pid, shmframe_writer_create("sft-c-other", o, &w2));
  CHECK(w2 == NULL, "busy writer handle");
  shmframe_writer_options_free(o);
  for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(3 * i + 1);
  MUST(shmframe_writer_write(w, SHMFRAME_U8, 3, shape, data, 24));
  MUST(shmframe_reader_next_view(r, 1000, &v));
  CHECK(shmframe_view_len(v) == 24 && memcmp(shmframe_view_data(v), data, 24) == 0 &&
            shmframe_view_ndim(v) == 3 && shmframe_view_shape(v)[2] == 4,
        "a frame through the socket");
  shmframe_view_release(v);
  CHECK(shmframe_reader_writer_alive(r), "writer_alive through the socket");
  shmframe_writer_close(w); /* removes the socket; the reader sees the end of the stream */
  CHECK(access(sock, F_OK) != 0, "socket left after close");
  BAD(SHMFRAME_CLOSED, "closed", shmframe_reader_next_view(r, 1000, &v));
  shmframe_reader_close(r);
  BAD(SHMFRAME_NOT_FOUND, "(no such socket)", shmframe_reader_connect(sock, 0, &r));

  /* freeing NULL is a no-op everywhere */
  shmframe_writer_close(NULL);
  shmframe_reader_close(NULL);
  shmframe_view_release(NULL);
  shmframe_frame_free(NULL);
  shmframe_string_free(NULL);

  printf("peer bad: %d bad-input checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}

int main(int argc, char **argv) {
  const char *sock = argc >= 6 ? argv[5] : NULL;
  if (argc >= 5 && strcmp(argv[1], "write") == 0)
    return role_write(argv[2], strtoull(argv[3], NULL, 10), argv[4], sock);
  if (argc >= 5 && strcmp(argv[1], "read") == 0)
    return role_read(argv[2], strtoull(argv[3], NULL, 10), argv[4], sock);
  if (argc >= 4 && strcmp(argv[1], "read-cli") == 0)
    return role_read_cli(argv[2], strtoull(argv[3], NULL, 10));
  if (argc >= 3 && strcmp(argv[1], "bad") == 0) return role_bad(argv[2]);
  fprintf(stderr, "usage: peer write|read NAME N GO [SOCKET] | read-cli NAME N | bad DIR\n");
  return 2;
}
