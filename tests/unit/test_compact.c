/* Compaction never removes what a finding needs (common/evidence.h): for
 * every kind, a buffer whose objects live and end inside it is compacted as
 * the shim does at write-out, and the analyzer's replay of what is left
 * must find exactly what it finds in the whole buffer. Compaction must also
 * still drop what says nothing (else it would keep every trace unbounded). */
#include <check.h>

#include "tests/unit/unit.h"
#include <stdio.h>
#include <string.h>

#include "analyzer/replay.h"
#include "common/evidence.h"
#include "preload/compact.h"
#include "preload/shim.h"

#define MS 1000000ull /* timestamps in nanoseconds: ticks_per_sec 1e9 */

struct buf {
  unsigned char data[8192];
  size_t len;
};

static void put(struct buf *b, uint16_t type, uint32_t aux, const void *rec, size_t size,
                const void *tail, size_t tail_len) {
  size_t total = (size + tail_len + 7u) & ~(size_t)7u;
  ck_assert_uint_le(b->len + total, sizeof b->data);
  memcpy(b->data + b->len, rec, size);
  if (tail_len)
    memcpy(b->data + b->len + size, tail, tail_len);
  memset(b->data + b->len + size + tail_len, 0, total - size - tail_len);
  struct loopsan_record_header *h = (void *)(b->data + b->len);
  h->type = type;
  h->size = (uint16_t)total;
  h->aux = aux;
  b->len += total;
}

static void type_rec(struct buf *b, uint16_t type, uint16_t kind, const char *name) {
  struct loopsan_rec_type r = {
      .library = LOOPSAN_LIB_UV, .type = type, .kind = kind, .name_len = (uint16_t)strlen(name)};
  put(b, LOOPSAN_REC_TYPE, 0, &r, sizeof r, name, r.name_len);
}

static void obj_new_on(struct buf *b, uint64_t obj, uint16_t type, uint64_t ts, uint64_t loop,
                       uint32_t flags) {
  struct loopsan_rec_obj_new r = {.ts = ts,
                                  .obj = obj,
                                  .loop = loop,
                                  .address = 0x1000 * obj,
                                  .library = LOOPSAN_LIB_UV,
                                  .type = type};
  put(b, LOOPSAN_REC_OBJ_NEW, flags, &r, sizeof r, NULL, 0);
}

static void obj_new(struct buf *b, uint64_t obj, uint16_t type, uint64_t ts) {
  obj_new_on(b, obj, type, ts, 0, 0);
}

static void op(struct buf *b, uint64_t obj, uint32_t code, int32_t arg, uint64_t ts) {
  struct loopsan_rec_obj_op r = {.ts = ts, .obj = obj, .cb = 0xc0de};
  put(b, LOOPSAN_REC_OBJ_OP, LOOPSAN_OP_AUX(code, (uint32_t)arg), &r, 32, NULL, 0);
}

static void dispatch(struct buf *b, uint64_t obj, uint64_t ts, uint64_t duration) {
  struct loopsan_rec_dispatch r = {.ts = ts, .duration = duration, .obj = obj, .cb = 0xc0de};
  put(b, LOOPSAN_REC_DISPATCH, 0, &r, sizeof r, NULL, 0);
}

static void api_error(struct buf *b, uint64_t obj, uint64_t ts) {
  struct loopsan_rec_api_error r = {
      .ts = ts, .obj = obj, .result = -2, .library = LOOPSAN_LIB_UV, .name_len = 8};
  put(b, LOOPSAN_REC_API_ERROR, 0, &r, sizeof r, "uv_spawn", 8);
}

static void unfinished(struct buf *b, uint64_t obj, uint64_t ts, uint64_t end_ts) {
  struct loopsan_rec_unfinished r = {.ts = ts,
                                     .end_ts = end_ts,
                                     .obj = obj,
                                     .cb = 0xc0de,
                                     .library = LOOPSAN_LIB_UV,
                                     .how = LOOPSAN_END_EXIT};
  put(b, LOOPSAN_REC_UNFINISHED, 0, &r, sizeof r, NULL, 0);
}

enum { T_LOOP, T_TIMER, T_PROCESS, T_WRITE, T_FS, T_WATCHER };

static void preamble(struct buf *b) {
  b->len = 0;
  type_rec(b, T_LOOP, LOOPSAN_OBJ_LOOP, "uv_loop_t");
  type_rec(b, T_TIMER, LOOPSAN_OBJ_HANDLE, "uv_timer_t");
  type_rec(b, T_PROCESS, LOOPSAN_OBJ_HANDLE, "uv_process_t");
  type_rec(b, T_WRITE, LOOPSAN_OBJ_REQUEST, "uv_write_t");
  type_rec(b, T_FS, LOOPSAN_OBJ_REQUEST, "uv_fs_t");
  type_rec(b, T_WATCHER, LOOPSAN_OBJ_WATCHER, "ev_io");
}

static void end(struct buf *b) {
  struct loopsan_rec_end r = {.ts = 9000 * MS, .how = LOOPSAN_END_EXIT, .status = 0};
  put(b, LOOPSAN_REC_END, 0, &r, sizeof r, NULL, 0);
}

/* Findings per kind (counts) from replaying LEN bytes of records. */
static void replay(const unsigned char *p, size_t len, unsigned counts[LOOPSAN_KIND_COUNT]) {
  struct loopsan_replay r;
  loopsan_replay_init(&r, 100 * MS);
  for (size_t off = 0; off < len;) {
    const struct loopsan_record_header *h = (const void *)(p + off);
    loopsan_replay_record(&r, h, 1);
    off += h->size;
  }
  loopsan_replay_finish(&r);
  memset(counts, 0, sizeof(unsigned) * LOOPSAN_KIND_COUNT);
  for (size_t i = 0; i < r.cap_findings; i++)
    if (r.findings[i].count)
      counts[r.findings[i].kind] += r.findings[i].count;
  loopsan_replay_free(&r);
}

/* Compact B as the shim would; the kinds found before and after must be
 * the same, and KIND (if any) among them. Returns the compacted length. */
static size_t check_kept(struct buf *b, int kind) {
  unsigned whole[LOOPSAN_KIND_COUNT], kept[LOOPSAN_KIND_COUNT];
  replay(b->data, b->len, whole);
  const unsigned char *out;
  size_t n = loopsan__compact(b->data, b->len, &out);
  unsigned char copy[sizeof b->data];
  memcpy(copy, out, n);
  loopsan__compact_done(out);
  replay(copy, n, kept);
  for (int k = 0; k < LOOPSAN_KIND_COUNT; k++)
    ck_assert_msg(whole[k] == kept[k], "%s: %u finding(s) in the whole buffer, %u once compacted",
                  loopsan_kind_name(k), whole[k], kept[k]);
  if (kind >= 0)
    ck_assert_msg(kept[kind] > 0, "no %s finding", loopsan_kind_name(kind));
  return n;
}

START_TEST(slow_callback_kept) {
  struct buf b;
  preamble(&b);
  obj_new(&b, 1, T_TIMER, 1 * MS);
  op(&b, 1, LOOPSAN_OP_START, LOOPSAN_START_SCHEDULED, 1 * MS);
  op(&b, 1, LOOPSAN_OP_FIRED, 0, 2 * MS);
  dispatch(&b, 1, 2 * MS, 150 * MS);
  op(&b, 1, LOOPSAN_OP_CLOSE, 0, 200 * MS);
  op(&b, 1, LOOPSAN_OP_CLOSED, 0, 201 * MS);
  end(&b);
  check_kept(&b, LOOPSAN_KIND_SLOW_CALLBACK);
}
END_TEST

START_TEST(never_started_kept) {
  struct buf b;
  preamble(&b);
  obj_new(&b, 1, T_TIMER, 1 * MS);
  op(&b, 1, LOOPSAN_OP_CLOSE, 0, 2 * MS);
  op(&b, 1, LOOPSAN_OP_CLOSED, 0, 3 * MS);
  end(&b);
  check_kept(&b, LOOPSAN_KIND_NEVER_STARTED);
}
END_TEST

START_TEST(leaks_kept) {
  /* Objects that never end: pending, unclosed handle, unclosed loop. */
  struct buf b;
  preamble(&b);
  obj_new(&b, 1, T_LOOP, 1 * MS);
  obj_new(&b, 2, T_TIMER, 1 * MS);
  op(&b, 2, LOOPSAN_OP_START, LOOPSAN_START_SCHEDULED, 1 * MS);
  obj_new(&b, 3, T_TIMER, 1 * MS);
  op(&b, 3, LOOPSAN_OP_START, 0, 1 * MS);
  end(&b);
  check_kept(&b, LOOPSAN_KIND_PENDING_AT_EXIT);
  check_kept(&b, LOOPSAN_KIND_UNCLOSED_HANDLE);
  check_kept(&b, LOOPSAN_KIND_UNCLOSED_LOOP);
}
END_TEST

START_TEST(watcher_on_destroyed_loop_kept) {
  /* The loop ends well inside the buffer, its watcher is still active:
   * the loop's records decide the watcher's verdict. */
  struct buf b;
  preamble(&b);
  obj_new_on(&b, 1, T_LOOP, 1 * MS, 0, LOOPSAN_OBJF_LOOP);
  op(&b, 1, LOOPSAN_OP_RUN, 0, 1 * MS);
  obj_new_on(&b, 2, T_WATCHER, 2 * MS, 1, 0);
  op(&b, 2, LOOPSAN_OP_START, 0, 2 * MS);
  op(&b, 1, LOOPSAN_OP_CLOSED, 0, 3 * MS);
  end(&b);
  check_kept(&b, LOOPSAN_KIND_UNCLOSED_HANDLE);
}
END_TEST

START_TEST(failures_kept) {
  /* A failed start (it makes a never-started handle "tried"), a request
   * that failed, and a callback that never returned: all kept. */
  struct buf b;
  preamble(&b);
  obj_new(&b, 1, T_PROCESS, 1 * MS);
  api_error(&b, 1, 1 * MS);
  op(&b, 1, LOOPSAN_OP_CLOSE, 0, 2 * MS);
  op(&b, 1, LOOPSAN_OP_CLOSED, 0, 3 * MS);
  obj_new(&b, 2, T_WRITE, 4 * MS);
  op(&b, 2, LOOPSAN_OP_START, LOOPSAN_START_ONESHOT | LOOPSAN_START_SCHEDULED, 4 * MS);
  op(&b, 2, LOOPSAN_OP_COMPLETE, -104, 5 * MS);
  obj_new(&b, 3, T_FS, 6 * MS);
  op(&b, 3, LOOPSAN_OP_START, LOOPSAN_START_ONESHOT | LOOPSAN_START_SCHEDULED, 6 * MS);
  unfinished(&b, 3, 7 * MS, 300 * MS);
  end(&b);
  size_t before = b.len;
  ck_assert_uint_eq(check_kept(&b, LOOPSAN_KIND_SLOW_CALLBACK), before);
}
END_TEST

START_TEST(the_uneventful_go) {
  /* Made, started, fired and closed, nothing slow: dropped. */
  struct buf b;
  preamble(&b);
  size_t types_only = b.len;
  obj_new(&b, 1, T_TIMER, 1 * MS);
  op(&b, 1, LOOPSAN_OP_START, LOOPSAN_START_SCHEDULED, 1 * MS);
  op(&b, 1, LOOPSAN_OP_FIRED, 0, 2 * MS);
  op(&b, 1, LOOPSAN_OP_CLOSE, 0, 3 * MS);
  op(&b, 1, LOOPSAN_OP_CLOSED, 0, 4 * MS);
  ck_assert_uint_eq(check_kept(&b, -1), types_only);
}
END_TEST

START_TEST(restarts_collapse) {
  /* A watcher restarted forty times in one write-out (a gevent timer),
   * still active at exit on a loop that was destroyed, and a timer
   * restarted as often that never fired: the same findings from the last
   * START, STOP and FIRED of each, and a buffer of a few records. */
  struct buf b;
  preamble(&b);
  obj_new_on(&b, 1, T_LOOP, 1 * MS, 0, LOOPSAN_OBJF_LOOP);
  obj_new_on(&b, 2, T_WATCHER, 1 * MS, 1, 0);
  obj_new(&b, 3, T_TIMER, 1 * MS);
  for (int i = 0; i < 40; i++) {
    op(&b, 2, LOOPSAN_OP_START, 0, (2 + 2 * (uint64_t)i) * MS);
    op(&b, 2, LOOPSAN_OP_FIRED, 0, (2 + 2 * (uint64_t)i) * MS);
    if (i < 39)
      op(&b, 2, LOOPSAN_OP_STOP, 0, (3 + 2 * (uint64_t)i) * MS);
    op(&b, 3, LOOPSAN_OP_START, LOOPSAN_START_SCHEDULED, (2 + 2 * (uint64_t)i) * MS);
    op(&b, 3, LOOPSAN_OP_STOP, 0, (3 + 2 * (uint64_t)i) * MS);
  }
  op(&b, 3, LOOPSAN_OP_START, LOOPSAN_START_SCHEDULED, 300 * MS);
  op(&b, 1, LOOPSAN_OP_CLOSED, 0, 400 * MS);
  end(&b);
  size_t before = b.len;
  size_t after = check_kept(&b, LOOPSAN_KIND_UNCLOSED_HANDLE);
  check_kept(&b, LOOPSAN_KIND_PENDING_AT_EXIT);
  ck_assert_uint_lt(after, before / 10);
}
END_TEST

/* Does the LEN bytes at P hold OBJ's OBJ_NEW? */
static int has_obj_new(const unsigned char *p, size_t len, uint64_t obj) {
  for (size_t off = 0; off < len;) {
    const struct loopsan_record_header *h = (const void *)(p + off);
    if (h->type == LOOPSAN_REC_OBJ_NEW &&
        ((const struct loopsan_rec_obj_new *)(const void *)h)->obj == obj)
      return 1;
    off += h->size;
  }
  return 0;
}

START_TEST(async_chain_kept) {
  /* A timer made, run and closed, all in one buffer, whose callback made
   * a timer still pending at exit: the first is that finding's async
   * chain, kept with it; one that made nothing kept goes. */
  struct buf b;
  preamble(&b);
  obj_new(&b, 1, T_TIMER, 1 * MS);
  op(&b, 1, LOOPSAN_OP_START, LOOPSAN_START_SCHEDULED, 1 * MS);
  op(&b, 1, LOOPSAN_OP_FIRED, 0, 2 * MS);
  struct loopsan_rec_obj_new child = {.ts = 2 * MS,
                                      .obj = 2,
                                      .address = 0x2000,
                                      .library = LOOPSAN_LIB_UV,
                                      .type = T_TIMER,
                                      .parent = 1};
  put(&b, LOOPSAN_REC_OBJ_NEW, 0, &child, sizeof child, NULL, 0);
  op(&b, 2, LOOPSAN_OP_START, LOOPSAN_START_SCHEDULED, 2 * MS);
  op(&b, 1, LOOPSAN_OP_CLOSE, 0, 3 * MS);
  op(&b, 1, LOOPSAN_OP_CLOSED, 0, 4 * MS);
  obj_new(&b, 3, T_TIMER, 5 * MS); /* an unrelated uneventful one */
  op(&b, 3, LOOPSAN_OP_START, LOOPSAN_START_SCHEDULED, 5 * MS);
  op(&b, 3, LOOPSAN_OP_FIRED, 0, 6 * MS);
  op(&b, 3, LOOPSAN_OP_CLOSED, 0, 7 * MS);
  end(&b);
  check_kept(&b, LOOPSAN_KIND_PENDING_AT_EXIT);
  const unsigned char *out;
  size_t n = loopsan__compact(b.data, b.len, &out);
  int parent_kept = has_obj_new(out, n, 1), other_kept = has_obj_new(out, n, 3);
  loopsan__compact_done(out);
  ck_assert_msg(parent_kept, "the pending timer's parent was dropped");
  ck_assert_msg(!other_kept, "an uneventful timer was kept");
}
END_TEST

/* A call on a handle after its end (a misuse), and a crash in the
 * callback of an object that ended in it: the object's records stay, so
 * that the finding says what it was and where it was made. */
START_TEST(misuse_and_crash_after_end_kept) {
  for (int crash = 0; crash < 2; crash++) {
    struct buf b;
    preamble(&b);
    obj_new(&b, 1, T_TIMER, 1 * MS);
    op(&b, 1, LOOPSAN_OP_START, LOOPSAN_START_SCHEDULED, 1 * MS);
    op(&b, 1, LOOPSAN_OP_CLOSED, 0, 2 * MS);
    if (crash) {
      struct loopsan_rec_crash r = {.ts = 3 * MS, .obj = 1, .cb = 0xc0de, .code = 1};
      put(&b, LOOPSAN_REC_CRASH, 11, &r, sizeof r, NULL, 0);
    } else {
      struct loopsan_rec_misuse r = {.ts = 3 * MS,
                                     .obj = 1,
                                     .library = LOOPSAN_LIB_UV,
                                     .name_len = 14,
                                     .type = LOOPSAN_TYPE_UNKNOWN};
      put(&b, LOOPSAN_REC_MISUSE, LOOPSAN_MISUSE_USE_AFTER_CLOSE, &r, sizeof r, "uv_timer_start",
          14);
    }
    const unsigned char *out;
    size_t n = loopsan__compact(b.data, b.len, &out);
    int kept = has_obj_new(out, n, 1);
    loopsan__compact_done(out);
    ck_assert_msg(kept, "the object of a %s was dropped", crash ? "crash" : "misuse");
  }
}
END_TEST

/* Stall samples of one dispatch are merged by where they found it: the
 * callers (return addresses) decide, not the innermost pc, which moves in
 * a loop that spins. */
START_TEST(stall_samples_merged) {
  struct loopsan_replay r;
  loopsan_replay_init(&r, 100 * MS);
  const uint64_t spin_a[][3] = {
      {0x1000, 0x2000, 0x3000}, {0x1004, 0x2000, 0x3000}, {0x1010, 0x2000, 0x3000}};
  const uint64_t spin_b[][3] = {{0x5000, 0x2100, 0x3000}, {0x5008, 0x2100, 0x3000}};
  loopsan_replay_add_stall(&r, 7, 100, spin_b[0], 3); /* first, but the fewer */
  for (int i = 0; i < 3; i++)
    loopsan_replay_add_stall(&r, 7, 100, spin_a[i], 3);
  loopsan_replay_add_stall(&r, 7, 100, spin_b[1], 3);
  loopsan_replay_add_stall(&r, 8, 100, spin_b[0], 3); /* another thread's */
  uint32_t taken, here;
  uint32_t id = loopsan_replay_stall_stack(&r, 7, 100, &taken, &here);
  ck_assert_uint_eq(taken, 5);
  ck_assert_uint_eq(here, 3);
  const struct replay_stack *st = loopsan_replay_stack(&r, id);
  ck_assert_ptr_nonnull(st);
  ck_assert_uint_eq(st->frames[0], 0x1000); /* the first sample of the place most found */
  ck_assert_uint_eq(loopsan_replay_stall_stack(&r, 7, 200, &taken, &here), 0);
  ck_assert_uint_eq(taken, 0);
  loopsan_replay_free(&r);
}
END_TEST

int main(void) {
  loopsan__state.record_all = 0;
  Suite *s = suite_create("compact");
  TCase *tc = tcase_create("evidence");
  tcase_add_test(tc, slow_callback_kept);
  tcase_add_test(tc, never_started_kept);
  tcase_add_test(tc, leaks_kept);
  tcase_add_test(tc, watcher_on_destroyed_loop_kept);
  tcase_add_test(tc, failures_kept);
  tcase_add_test(tc, the_uneventful_go);
  tcase_add_test(tc, restarts_collapse);
  tcase_add_test(tc, async_chain_kept);
  tcase_add_test(tc, stall_samples_merged);
  tcase_add_test(tc, misuse_and_crash_after_end_kept);
  suite_add_tcase(s, tc);
  return loopsan_unit_run(s);
}
