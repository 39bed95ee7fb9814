/* Reads a shmframe channel from C: prints each second the newest frame's shape, the rate, the
 * latency and the frames missed, until the writer closes the channel.
 *
 *   read NAME [FRAMES]            waits for the channel; stops after FRAMES frames if given
 *
 * Build: cc read.c $(pkg-config --cflags --libs shmframe) -o read   (or CMakeLists.txt here)
 */
#include <shmframe.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  const char *name = argc > 1 ? argv[1] : "abc";
  unsigned long long limit = argc > 2 ? strtoull(argv[2], NULL, 10) : 0;

  printf("waiting for channel '%s' ...\n", name);
  shmframe_reader *r = NULL;
  shmframe_status s = shmframe_reader_open(name, -1 /* wait forever */, &r);
  if (s != SHMFRAME_OK) {
    fprintf(stderr, "%s: %s\n", shmframe_status_name(s), shmframe_last_error());
    return 1;
  }
  char *schema = NULL;
  if (shmframe_reader_schema_json(r, &schema) == SHMFRAME_OK && schema != NULL) {
    printf("metadata schema: %s\n", schema);
    shmframe_string_free(schema); /* strings from the library are freed by the library */
  }

  unsigned long long n = 0, missed = 0, since_report = 0;
  uint64_t t0 = shmframe_monotonic_ns(), last_report = t0, latency_sum = 0;
  for (;;) {
    shmframe_view *v = NULL;
    s = shmframe_reader_next_view(r, -1, &v);
    if (s != SHMFRAME_OK) break;
    /* The pixels are in shared memory, read-only, until shmframe_view_release(v). */
    n++, since_report++;
    missed += shmframe_view_missed(v);
    uint64_t now = shmframe_monotonic_ns();
    latency_sum += now - shmframe_view_timestamp_ns(v);
    if (now - last_report >= 1000000000ull || n == limit) {
      const size_t *shape = shmframe_view_shape(v);
      printf("frame %llu: (", (unsigned long long)shmframe_view_index(v));
      for (size_t d = 0; d < shmframe_view_ndim(v); d++) printf(d ? ", %zu" : "%zu", shape[d]);
      printf(") %s, %zu metadata bytes, %.1f fps, latency %.0f us, missed %llu\n",
             shmframe_dtype_name(shmframe_view_dtype(v)), shmframe_view_meta_len(v),
             (double)since_report * 1e9 / (double)(now - last_report),
             (double)latency_sum / (double)since_report / 1000.0, missed);
      last_report = now, since_report = 0, latency_sum = 0;
    }
    shmframe_view_release(v);
    if (n == limit) break;
  }
  if (s == SHMFRAME_CLOSED)
    printf("the writer closed the channel\n");
  else if (s != SHMFRAME_OK)
    printf("%s: %s\n", shmframe_status_name(s), shmframe_last_error());
  printf("received %llu frames, missed %llu\n", n, missed);
  shmframe_reader_close(r);
  return s == SHMFRAME_OK || s == SHMFRAME_CLOSED ? 0 : 1;
}
