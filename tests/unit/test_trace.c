/* The trace writer and reader: a round trip through a real file, then the
 * same file truncated and corrupted. Each test forks so that it has a
 * writer (and trace file) of its own. */
#include <check.h>

#include "tests/unit/unit.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analyzer/reader.h"
#include "common/crc32.h"
#include "preload/shim.h"
#include "tests/unit/shim_harness.h"

struct tally {
  unsigned counts[LOOPSAN_REC_TYPE_COUNT];
  uint64_t last_obj;
  int first_type;
  uint32_t version;
  char exe[256];
  int ops_in_order;
};

static int count_record(void *ctx, const struct loopsan_record_header *rec, uint32_t tid) {
  struct tally *t = ctx;
  (void)tid;
  if (!t->first_type)
    t->first_type = rec->type;
  if (rec->type < LOOPSAN_REC_TYPE_COUNT)
    t->counts[rec->type]++;
  if (rec->type == LOOPSAN_REC_PROCESS) {
    const struct loopsan_rec_process *p = (const void *)rec;
    t->version = p->format_version;
    size_t n = p->exe_len < sizeof t->exe - 1 ? p->exe_len : sizeof t->exe - 1;
    memcpy(t->exe, p + 1, n);
  }
  if (rec->type == LOOPSAN_REC_OBJ_OP) {
    const struct loopsan_rec_obj_op *op = (const void *)rec;
    if (op->obj == t->last_obj + 1)
      t->ops_in_order++;
    t->last_obj = op->obj;
  }
  return 0;
}

/* Write N object operations (obj = 1..N) and end the trace. */
static void write_trace(unsigned n) {
  harness_start(16);
  for (unsigned i = 1; i <= n; i++) {
    struct loopsan_rec_obj_op r = {.h.aux = LOOPSAN_OP_AUX(LOOPSAN_OP_USE, 0), .obj = i, .ts = i};
    loopsan__emit(LOOPSAN_REC_OBJ_OP, &r, LOOPSAN_OBJ_OP_SIZE_MIN);
  }
  loopsan__writer_close(LOOPSAN_END_EXIT, 7);
}

static off_t file_size(const char *p) {
  struct stat st;
  ck_assert_int_eq(stat(p, &st), 0);
  return st.st_size;
}

START_TEST(crc32c_check_value) {
  /* The standard check value of CRC-32C, and continuation over pieces. */
  ck_assert_uint_eq(loopsan_crc32c(0, "123456789", 9), 0xE3069283u);
  ck_assert_uint_eq(loopsan_crc32c(loopsan_crc32c(0, "12345", 5), "6789", 4), 0xE3069283u);
  static char big[1000];
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (char)(i * 7);
  uint32_t whole = loopsan_crc32c(0, big, sizeof big), split = 0;
  for (size_t i = 0; i < sizeof big; i += 13)
    split = loopsan_crc32c(split, big + i, sizeof big - i < 13 ? sizeof big - i : 13);
  ck_assert_uint_eq(whole, split);
}
END_TEST

START_TEST(round_trip) {
  write_trace(20000); /* several 64 KiB buffers' worth: many chunks */
  struct tally t = {0};
  struct loopsan_read_stats st;
  char err[256];
  ck_assert_int_eq(loopsan_read_trace(harness_trace_path(), count_record, &t, &st, err, sizeof err),
                   0);
  ck_assert_int_eq(t.first_type, LOOPSAN_REC_PROCESS);
  ck_assert_uint_eq(t.version, LOOPSAN_TRACE_VERSION);
  ck_assert_uint_eq(t.counts[LOOPSAN_REC_OBJ_OP], 20000);
  ck_assert_uint_eq(t.ops_in_order, 20000);
  ck_assert_uint_eq(t.counts[LOOPSAN_REC_END], 1);
  ck_assert_uint_ge(t.counts[LOOPSAN_REC_CLOCK], 1);
  ck_assert_ptr_nonnull(strstr(t.exe, "test_trace"));
  ck_assert_uint_gt(st.chunks, 5);
  ck_assert_uint_eq(st.bad_chunks, 0);
  ck_assert_uint_eq(st.truncated_bytes, 0);
  ck_assert_uint_eq(st.bad_records, 0);
  ck_assert_uint_eq(st.seq_gaps, 0);
  /* Mode 0600, as SPEC.md promises. */
  struct stat sb;
  ck_assert_int_eq(stat(harness_trace_path(), &sb), 0);
  ck_assert_int_eq(sb.st_mode & 0777, 0600);
  harness_cleanup();
}
END_TEST

START_TEST(truncated_file) {
  write_trace(20000);
  const char *path = harness_trace_path();
  off_t size = file_size(path);
  ck_assert_int_eq(truncate(path, size - 1000), 0);
  struct tally t = {0};
  struct loopsan_read_stats st;
  char err[256];
  ck_assert_int_eq(loopsan_read_trace(path, count_record, &t, &st, err, sizeof err), 0);
  /* Everything before the torn last chunk is read and the loss is told. */
  ck_assert_uint_gt(st.truncated_bytes, 0);
  ck_assert_uint_eq(st.bad_chunks, 0);
  ck_assert_uint_lt(t.counts[LOOPSAN_REC_OBJ_OP], 20000);
  ck_assert_uint_gt(t.counts[LOOPSAN_REC_OBJ_OP], 15000);
  ck_assert_uint_eq(t.ops_in_order, t.counts[LOOPSAN_REC_OBJ_OP]);
  ck_assert_uint_eq(t.counts[LOOPSAN_REC_END], 0);
  harness_cleanup();
}
END_TEST

START_TEST(corrupt_chunk) {
  write_trace(20000);
  const char *path = harness_trace_path();
  off_t size = file_size(path);
  int fd = open(path, O_RDWR);
  ck_assert_int_ge(fd, 0);
  /* Flip bytes in the middle of the file: one chunk goes bad. */
  char junk[64];
  memset(junk, 0x5a, sizeof junk);
  ck_assert_int_eq(pwrite(fd, junk, sizeof junk, size / 2), (ssize_t)sizeof junk);
  close(fd);
  struct tally t = {0};
  struct loopsan_read_stats st;
  char err[256];
  ck_assert_int_eq(loopsan_read_trace(path, count_record, &t, &st, err, sizeof err), 0);
  ck_assert_uint_eq(st.bad_chunks, 1);
  ck_assert_uint_gt(st.skipped_bytes, 0);
  ck_assert_uint_eq(st.truncated_bytes, 0);
  /* Only that chunk's records are lost; the reader resynchronised and read
   * the END record after it. */
  ck_assert_uint_lt(t.counts[LOOPSAN_REC_OBJ_OP], 20000);
  ck_assert_uint_gt(t.counts[LOOPSAN_REC_OBJ_OP], 20000 - 8192);
  ck_assert_uint_eq(t.counts[LOOPSAN_REC_END], 1);
  ck_assert_uint_ge(st.seq_gaps, 1);
  harness_cleanup();
}
END_TEST

START_TEST(not_a_trace) {
  char path[] = "/tmp/loopsan-unit-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, "hello, this is not a trace file at all", 38), 38);
  close(fd);
  struct tally t = {0};
  struct loopsan_read_stats st;
  char err[256] = "";
  ck_assert_int_eq(loopsan_read_trace(path, count_record, &t, &st, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "not a loopsan trace"));
  /* A newer format is refused with a message that says so. */
  struct loopsan_file_header fh = {.version = LOOPSAN_TRACE_VERSION + 1, .header_size = sizeof fh};
  memcpy(fh.magic, LOOPSAN_TRACE_MAGIC, 8);
  fd = open(path, O_WRONLY | O_TRUNC);
  ck_assert_int_eq(write(fd, &fh, sizeof fh), (ssize_t)sizeof fh);
  close(fd);
  ck_assert_int_eq(loopsan_read_trace(path, count_record, &t, &st, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "newer"));
  unlink(path);
}
END_TEST

START_TEST(never_overwrites) {
  /* A file already at the trace's path (an attacker's symlink, or an
   * earlier image of an exec'ed process) is never opened: the next name is. */
  const char *dir = harness_start(8);
  char victim[600], link_path[600], next[600];
  snprintf(victim, sizeof victim, "%s/victim", dir);
  FILE *f = fopen(victim, "w");
  fputs("precious", f);
  fclose(f);
  loopsan__writer_close(LOOPSAN_END_EXEC, -1);
  snprintf(link_path, sizeof link_path, "%s/loopsan.%d.1.trace", dir, (int)getpid());
  ck_assert_int_eq(symlink(victim, link_path), 0);
  ck_assert_int_eq(loopsan__writer_open(), 0);
  loopsan__writer_close(LOOPSAN_END_EXIT, 0);
  snprintf(next, sizeof next, "%s/loopsan.%d.2.trace", dir, (int)getpid());
  ck_assert_int_eq(access(next, F_OK), 0);
  f = fopen(victim, "r");
  char buf[32] = "";
  ck_assert_ptr_nonnull(fgets(buf, sizeof buf, f));
  fclose(f);
  ck_assert_str_eq(buf, "precious");
  harness_cleanup();
}
END_TEST

/* Every duration lands in the record: the shim counts in 64 log2 buckets
 * and no count of its own; the record has 40 (the last: everything above)
 * and the count, both folded from those when written. */
struct site_tally {
  unsigned records, iterations;
  uint64_t count, total, max;
  uint64_t buckets[LOOPSAN_HIST_BUCKETS];
};

static int tally_site(void *ctx, const struct loopsan_record_header *rec, uint32_t tid) {
  struct site_tally *t = ctx;
  (void)tid;
  if (rec->type != LOOPSAN_REC_HISTOGRAM)
    return 0;
  const struct loopsan_rec_histogram *h = (const void *)rec;
  t->iterations += h->cb == 1;
  if (h->cb != 0x1000)
    return 0;
  t->records++;
  t->count += h->count;
  t->total += h->total;
  if (h->max > t->max)
    t->max = h->max;
  for (unsigned i = 0; i < LOOPSAN_HIST_BUCKETS; i++)
    t->buckets[i] += h->buckets[i];
  return 0;
}

START_TEST(histogram_counts_every_duration) {
  harness_start(16);
  static struct loopsan_spill_header none; /* (publishes no dispatch: no object) */
  const uint64_t dts[] = {0, 1, 1000, 1000, 1ull << 39, 1ull << 45, UINT64_MAX / 2};
  uint64_t total = 0;
  for (unsigned i = 0; i < sizeof dts / sizeof dts[0]; i++) {
    /* the generic layer's iterations: keyed by a descriptor (1 here),
     * counted nowhere, and never taken for an empty cache entry (first:
     * its entry, 0, is empty then) */
    loopsan__hist_add((const void *)1, LOOPSAN_DISPATCH_ITERATION, LOOPSAN_LIB_GENERIC, 5, &none,
                      0);
    /* two sites in two cache entries: each counted inline after its first */
    loopsan__hist_add((const void *)0x1000, LOOPSAN_SLOT_MAIN, LOOPSAN_LIB_UV, dts[i], &none, 0);
    loopsan__hist_add((const void *)0x2010, LOOPSAN_SLOT_MAIN, LOOPSAN_LIB_UV, 5, &none, 0);
    total += dts[i];
    if (i == 3) /* a write-out in between: later counts make records again */
      loopsan__hist_flush_all();
  }
  loopsan__hist_flush_all();
  loopsan__writer_close(LOOPSAN_END_EXIT, 0);
  struct site_tally t = {0};
  struct loopsan_read_stats st;
  char err[256];
  ck_assert_int_eq(loopsan_read_trace(harness_trace_path(), tally_site, &t, &st, err, sizeof err),
                   0);
  ck_assert_uint_eq(t.records, 2);
  ck_assert_uint_eq(t.iterations, 0);
  ck_assert_uint_eq(t.count, 7);
  ck_assert_uint_eq(t.total, total);
  ck_assert_uint_eq(t.max, UINT64_MAX / 2);
  ck_assert_uint_eq(t.buckets[0], 2);                        /* 0 and 1 */
  ck_assert_uint_eq(t.buckets[9], 2);                        /* 1000: [512, 1024) */
  ck_assert_uint_eq(t.buckets[LOOPSAN_HIST_BUCKETS - 1], 3); /* 2^39 and above */
  uint64_t sum = 0;
  for (unsigned i = 0; i < LOOPSAN_HIST_BUCKETS; i++)
    sum += t.buckets[i];
  ck_assert_uint_eq(sum, 7);
  harness_cleanup();
}
END_TEST

/* The host program's errno survives every record: the first of a thread
 * (its buffer is made), write-outs (a buffer full), stacks. */
static void *record_with_errno_set(void *arg) {
  int *bad = arg;
  static char objects[64];
  for (unsigned i = 1; i <= 20000; i++) {
    errno = EXDEV;
    if (i % 1000 == 1)
      loopsan__record_new(&objects[i % 64], LOOPSAN_LIB_UV, 1, 0, 0, NULL);
    else
      loopsan__record_op(i, LOOPSAN_OP_USE, NULL, 0, i % 100 == 0);
    if (errno != EXDEV)
      (*bad)++;
  }
  return NULL;
}

START_TEST(errno_kept) {
  harness_start(16);
  int bad = 0;
  pthread_t t; /* a thread of its own: its first record makes its buffer */
  ck_assert_int_eq(pthread_create(&t, NULL, record_with_errno_set, &bad), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  ck_assert_int_eq(bad, 0);
  loopsan__writer_close(LOOPSAN_END_EXIT, 0);
  struct tally tl = {0};
  struct loopsan_read_stats st;
  char err[256];
  ck_assert_int_eq(
      loopsan_read_trace(harness_trace_path(), count_record, &tl, &st, err, sizeof err), 0);
  ck_assert_uint_eq(tl.counts[LOOPSAN_REC_OBJ_OP], 20000 - 20);
  harness_cleanup();
}
END_TEST

int main(void) {
  Suite *s = suite_create("trace");
  TCase *tc = tcase_create("writer+reader");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, crc32c_check_value);
  tcase_add_test(tc, round_trip);
  tcase_add_test(tc, truncated_file);
  tcase_add_test(tc, corrupt_chunk);
  tcase_add_test(tc, not_a_trace);
  tcase_add_test(tc, never_overwrites);
  tcase_add_test(tc, errno_kept);
  tcase_add_test(tc, histogram_counts_every_duration);
  suite_add_tcase(s, tc);
  return loopsan_unit_run(s);
}
