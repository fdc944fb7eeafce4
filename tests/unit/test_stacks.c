/* Stack capture and deduplication (preload/stacks.c). */
#include <check.h>

#include "tests/unit/unit.h"
#include <pthread.h>
#include <ucontext.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/reader.h"
#include "preload/shim.h"
#include "tests/unit/shim_harness.h"

#define NOINLINE __attribute__((noinline))
#define NO_TAIL_CALL() __asm__ volatile("" ::: "memory")

/* The shim is entered through the PLT, never by a direct call to a local
 * function (which the capture would take for a tail call, see stacks.c):
 * call it through a pointer, as the PLT does. */
static uint32_t (*volatile capture)(void) = loopsan__stack_capture;

static NOINLINE uint32_t capture_from_a(void) {
  uint32_t id = capture();
  NO_TAIL_CALL();
  return id;
}

static NOINLINE uint32_t capture_from_b(void) {
  uint32_t id = capture();
  NO_TAIL_CALL();
  return id;
}

static NOINLINE uint32_t capture_deep(int n) {
  uint32_t id = n ? capture_deep(n - 1) : capture();
  NO_TAIL_CALL();
  return id;
}

/* Two callers of one function, alike in all but their return addresses:
 * called from one place, the capture inside runs at one stack pointer. */
static uintptr_t middle_frame;
static NOINLINE uint32_t middle(void) {
  middle_frame = (uintptr_t)__builtin_frame_address(0);
  uint32_t id = capture();
  NO_TAIL_CALL();
  return id;
}
static NOINLINE uint32_t via_x(void) {
  uint32_t id = middle();
  NO_TAIL_CALL();
  return id;
}
static NOINLINE uint32_t via_y(void) {
  uint32_t id = middle();
  NO_TAIL_CALL();
  return id;
}
static uint32_t (*volatile via[2])(void) = {via_x, via_y};

struct stacks_seen {
  unsigned n;
  uint32_t ids[64];
  uint32_t nframes[64];
  uint64_t first_frame[64];
};

static int collect_stacks(void *ctx, const struct loopsan_record_header *rec, uint32_t tid) {
  struct stacks_seen *s = ctx;
  (void)tid;
  if (rec->type != LOOPSAN_REC_STACK || s->n >= 64)
    return 0;
  const struct loopsan_rec_stack *r = (const void *)rec;
  s->ids[s->n] = r->id;
  s->nframes[s->n] = r->nframes;
  memcpy(&s->first_frame[s->n], r + 1, sizeof(uint64_t));
  s->n++;
  return 0;
}

static void read_stacks(struct stacks_seen *s) {
  loopsan__writer_close(LOOPSAN_END_EXIT, 0);
  struct loopsan_read_stats st;
  char err[256];
  memset(s, 0, sizeof *s);
  ck_assert_int_eq(
      loopsan_read_trace(harness_trace_path(), collect_stacks, s, &st, err, sizeof err), 0);
}

static int in_function(uint64_t addr, void *fn) {
  return addr > (uint64_t)(uintptr_t)fn && addr < (uint64_t)(uintptr_t)fn + 256;
}

START_TEST(dedupe_by_call_site) {
  harness_start(32);
  uint32_t a[2], b;
  for (volatile int i = 0; i < 2; i++) /* one call site, so one stack */
    a[i] = capture_from_a();
  b = capture_from_b();
  uint32_t a1 = a[0], a2 = a[1];
  ck_assert_uint_ne(a1, 0);
  ck_assert_uint_eq(a1, a2);
  ck_assert_uint_ne(a1, b);
  struct stacks_seen s;
  read_stacks(&s);
  ck_assert_uint_eq(s.n, 2); /* each unique stack written once */
  ck_assert_uint_eq(s.ids[0], a1);
  ck_assert_uint_eq(s.ids[1], b);
  /* The shim's own frame is gone: the innermost frame is the caller. */
  ck_assert(in_function(s.first_frame[0], (void *)capture_from_a));
  ck_assert(in_function(s.first_frame[1], (void *)capture_from_b));
  harness_cleanup();
}
END_TEST

START_TEST(reuse_only_unchanged_stacks) {
  harness_start(32);
  /* x x x y y y x y x y ...: a stack is reused from its third capture at
   * one place; when the caller changes, the slots say so */
  static const int order[] = {0, 0, 0, 1, 1, 1, 0, 1, 0, 1, 1, 0, 0, 0, 1, 1, 1};
  uint32_t ids[2] = {0, 0};
  uintptr_t frame = 0;
  uint64_t reused = loopsan__stack_reuses;
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
    uint32_t id = via[order[i]]();
    ck_assert_uint_ne(id, 0);
    if (!ids[order[i]])
      ids[order[i]] = id;
    ck_assert_uint_eq(id, ids[order[i]]);
    if (i == 0)
      frame = middle_frame;
    ck_assert_uint_eq(middle_frame, frame); /* (one stack pointer, or this proves nothing) */
  }
  ck_assert_uint_ne(ids[0], ids[1]);
  ck_assert_uint_ge(loopsan__stack_reuses - reused,
                    10); /* all but the first 2 of each, and the first */
  struct stacks_seen s;
  read_stacks(&s);
  ck_assert_uint_eq(s.n, 2);
  harness_cleanup();
}
END_TEST

/* On a stack of its own (a fiber: ucontext, boost.context), which may be
 * unmapped and replaced while the thread lives, the cache is not used:
 * every capture unwinds, and gets the right id. */
static ucontext_t fiber_ctx, main_ctx;
static uint32_t fiber_ids[6];
static uint64_t fiber_reused;
static void fiber_body(void) {
  uint64_t before = loopsan__stack_reuses;
  for (int i = 0; i < 6; i++)
    fiber_ids[i] = via[0]();
  fiber_reused = loopsan__stack_reuses - before;
}

static NOINLINE uint64_t captures_at_home(int n) {
  uint64_t before = loopsan__stack_reuses;
  for (int i = 0; i < n; i++)
    via[0]();
  NO_TAIL_CALL();
  return loopsan__stack_reuses - before;
}
static volatile int home_rounds = 2;

START_TEST(no_reuse_on_a_fiber_stack) {
  harness_start(32);
  static char stack[256 * 1024];
  uint64_t reused_home[2] = {0, 0};
  for (int round = 0; round < home_rounds && round < 2; round++) {
    /* the thread's own stack: learnt in round 0, reused in round 1 */
    reused_home[round] = captures_at_home(round ? 2 : 4);
    if (round)
      continue;
    ck_assert_int_eq(getcontext(&fiber_ctx), 0);
    fiber_ctx.uc_stack.ss_sp = stack;
    fiber_ctx.uc_stack.ss_size = sizeof stack;
    fiber_ctx.uc_link = &main_ctx;
    makecontext(&fiber_ctx, fiber_body, 0);
    ck_assert_int_eq(swapcontext(&main_ctx, &fiber_ctx), 0);
  }
  ck_assert_uint_eq(fiber_reused, 0);
  for (int i = 0; i < 6; i++) {
    ck_assert_uint_ne(fiber_ids[i], 0);
    ck_assert_uint_eq(fiber_ids[i], fiber_ids[0]);
  }
  ck_assert_uint_ge(reused_home[0], 1);
  ck_assert_uint_eq(reused_home[1], 2); /* (the fiber's captures evicted nothing) */
  harness_cleanup();
}
END_TEST

START_TEST(depth_limit) {
  harness_start(3);
  uint32_t id = capture_deep(10);
  ck_assert_uint_ne(id, 0);
  struct stacks_seen s;
  read_stacks(&s);
  ck_assert_uint_eq(s.n, 1);
  ck_assert_uint_eq(s.nframes[0], 3);
  ck_assert(in_function(s.first_frame[0], (void *)capture_deep));
  harness_cleanup();
}
END_TEST

static void *thread_capture(void *arg) {
  uint32_t *out = arg;
  for (int i = 0; i < 1000; i++)
    out[i] = capture_from_a();
  return NULL;
}

START_TEST(threads_share_ids) {
  harness_start(32);
  static uint32_t ids[2][1000];
  pthread_t t1, t2;
  pthread_create(&t1, NULL, thread_capture, ids[0]);
  pthread_create(&t2, NULL, thread_capture, ids[1]);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  /* Same function, but called from thread_capture in two threads whose
   * outer frames (start_thread) are the same too: one stack. */
  for (int i = 0; i < 1000; i++) {
    ck_assert_uint_ne(ids[0][i], 0);
    ck_assert_uint_eq(ids[0][i], ids[0][0]);
    ck_assert_uint_eq(ids[1][i], ids[0][0]);
  }
  struct stacks_seen s;
  read_stacks(&s);
  ck_assert_uint_eq(s.n, 1);
  harness_cleanup();
}
END_TEST

START_TEST(object_table) {
  int objs[3] = {0, 0, 0};
  struct loopsan_obj o = {.id = 42, .loop = 7, .library = 1, .type = 3}, got;
  o.cb[0] = (void *)&objs[2];
  void *ref = loopsan__obj_put(&objs[0], &o, 0, NULL);
  ck_assert_ptr_nonnull(ref);
  ck_assert_ptr_eq(loopsan__obj_get(&objs[0], &got), ref);
  ck_assert_uint_eq(got.id, 42);
  ck_assert_ptr_eq(got.cb[0], &objs[2]);
  ck_assert_ptr_null(loopsan__obj_get(&objs[1], &got));
  loopsan__obj_set_cb(ref, LOOPSAN_SLOT_CLOSE, &objs[1]);
  ck_assert_uint_eq(loopsan__obj_state_set(ref, LOOPSAN_STATE_FIRED), 0);
  ck_assert_uint_eq(loopsan__obj_state_set(ref, LOOPSAN_STATE_FIRED), LOOPSAN_STATE_FIRED);
  ck_assert_int_eq(loopsan__obj_take(&objs[0], &got), 0);
  ck_assert_ptr_eq(got.cb[LOOPSAN_SLOT_CLOSE], &objs[1]);
  ck_assert_ptr_null(loopsan__obj_get(&objs[0], &got));
  ck_assert_int_eq(loopsan__obj_take(&objs[0], &got), -1);
  /* Many objects with churn: every live one stays findable. Objects are
   * spaced like real handles (the smallest libuv handle is 120 bytes; 80
   * puts two in some 64-byte granules). */
  enum { N = 100000, STRIDE = 80 };
  char *block = malloc((size_t)N * STRIDE);
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < N; i++) {
      o.id = (uint64_t)i + 1;
      ck_assert_ptr_nonnull(loopsan__obj_put(block + (size_t)i * STRIDE, &o, 0, NULL));
    }
    for (int i = 0; i < N; i += 2)
      ck_assert_int_eq(loopsan__obj_take(block + (size_t)i * STRIDE, &got), 0);
    for (int i = 1; i < N; i += 2) {
      ck_assert_ptr_nonnull(loopsan__obj_get(block + (size_t)i * STRIDE, &got));
      ck_assert_uint_eq(got.id, (uint64_t)i + 1);
    }
    for (int i = 1; i < N; i += 2)
      ck_assert_int_eq(loopsan__obj_take(block + (size_t)i * STRIDE, &got), 0);
  }
  free(block);
}
END_TEST

/* The trampolines' lookup goes through the thread's cache of objects
 * dispatched last (objects.h): an entry must never outlive a change to
 * its object. Each step looks twice, the second time from the cache. */
static void dispatch_twice(const void *addr, int slot, uint64_t id, const void *cb) {
  for (int i = 0; i < 2; i++) {
    struct loopsan_obj_cb got;
    void *ref = loopsan__obj_dispatch(addr, slot, &got);
    if (!id) {
      ck_assert_ptr_null(ref);
      continue;
    }
    ck_assert_ptr_nonnull(ref);
    ck_assert_uint_eq(got.id, id);
    ck_assert_ptr_eq(got.cb, cb);
    /* kept: the second look is the cache's */
    ck_assert_uint_eq(loopsan__obj_seen_entry((uintptr_t)addr, slot)->key,
                      LOOPSAN_OBJ_SEEN_KEY((uintptr_t)addr, slot));
  }
}

static void *take_elsewhere(void *addr) {
  struct loopsan_obj got;
  return (void *)(intptr_t)loopsan__obj_take(addr, &got);
}

START_TEST(dispatch_cache_follows_changes) {
  /* (entries are kept only when the clock is the TSC: see the end) */
  int tsc = loopsan__clock_use_tsc;
  loopsan__clock_use_tsc = 1;
  static _Alignas(64) char handle[256];
  void *cb1 = (void *)0x1110, *cb2 = (void *)0x2220, *cb3 = (void *)0x3330;
  struct loopsan_obj o = {.id = 1, .library = 1, .type = 3}, got;
  o.cb[LOOPSAN_SLOT_MAIN] = cb1;
  o.cb[LOOPSAN_SLOT_ALLOC] = cb2;
  void *ref = loopsan__obj_put(handle, &o, 0, NULL);
  ck_assert_ptr_nonnull(ref);
  dispatch_twice(handle, LOOPSAN_SLOT_MAIN, 1, cb1);
  dispatch_twice(handle, LOOPSAN_SLOT_ALLOC, 1, cb2); /* its own entry */
  dispatch_twice(handle, LOOPSAN_SLOT_MAIN, 1, cb1);
  /* a new callback */
  loopsan__obj_set_cb(ref, LOOPSAN_SLOT_MAIN, cb3);
  dispatch_twice(handle, LOOPSAN_SLOT_MAIN, 1, cb3);
  /* state bits, read from the object each time */
  struct loopsan_obj_cb seen;
  loopsan__obj_state_set(ref, LOOPSAN_STATE_FIRED);
  ck_assert_ptr_nonnull(loopsan__obj_dispatch(handle, LOOPSAN_SLOT_MAIN, &seen));
  ck_assert_uint_eq(seen.state & LOOPSAN_STATE_FIRED, LOOPSAN_STATE_FIRED);
  loopsan__obj_state_clear(ref, LOOPSAN_STATE_FIRED);
  ck_assert_ptr_nonnull(loopsan__obj_dispatch(handle, LOOPSAN_SLOT_MAIN, &seen));
  ck_assert_uint_eq(seen.state & LOOPSAN_STATE_FIRED, 0);
  /* gone: closed, freed */
  ck_assert_int_eq(loopsan__obj_take(handle, &got), 0);
  dispatch_twice(handle, LOOPSAN_SLOT_MAIN, 0, NULL);
  /* another object at the same address (in the same slot of the table) */
  o.id = 2;
  ck_assert_ptr_eq(loopsan__obj_put(handle, &o, 0, NULL), ref);
  dispatch_twice(handle, LOOPSAN_SLOT_MAIN, 2, cb1);
  /* replaced where it stands (the same address made anew) */
  o.id = 3;
  o.cb[LOOPSAN_SLOT_MAIN] = cb2;
  ck_assert_ptr_eq(loopsan__obj_put(handle, &o, 0, NULL), ref);
  dispatch_twice(handle, LOOPSAN_SLOT_MAIN, 3, cb2);
  /* no callback in a slot: found, nothing to call */
  ck_assert_ptr_nonnull(loopsan__obj_dispatch(handle, LOOPSAN_SLOT_CLOSE, &seen));
  ck_assert_ptr_null(seen.cb);
  /* taken by another thread while this one keeps its entry */
  pthread_t other;
  void *rc;
  ck_assert_int_eq(pthread_create(&other, NULL, take_elsewhere, handle), 0);
  pthread_join(other, &rc);
  ck_assert_ptr_null(rc);
  dispatch_twice(handle, LOOPSAN_SLOT_MAIN, 0, NULL);
  /* two objects sharing an entry (512 bytes apart) take it in turn */
  static _Alignas(64) char pair[1024];
  o.id = 4;
  ck_assert_ptr_nonnull(loopsan__obj_put(pair, &o, 0, NULL));
  o.id = 5;
  o.cb[LOOPSAN_SLOT_MAIN] = cb3;
  ck_assert_ptr_nonnull(loopsan__obj_put(pair + 512, &o, 0, NULL));
  for (int i = 0; i < 3; i++) {
    dispatch_twice(pair, LOOPSAN_SLOT_MAIN, 4, cb2);
    dispatch_twice(pair + 512, LOOPSAN_SLOT_MAIN, 5, cb3);
  }
  ck_assert_int_eq(loopsan__obj_take(pair, &got), 0);
  ck_assert_int_eq(loopsan__obj_take(pair + 512, &got), 0);
  /* address 0 (a program's NULL handle): nothing, and no crash */
  dispatch_twice(NULL, LOOPSAN_SLOT_MAIN, 0, NULL);
  /* a hit says the clock is the TSC: without it, nothing is kept */
  loopsan__clock_use_tsc = 0;
  o.id = 6;
  ck_assert_ptr_nonnull(loopsan__obj_put(pair, &o, 0, NULL));
  for (int i = 0; i < 2; i++) {
    ck_assert_ptr_nonnull(loopsan__obj_dispatch(pair, LOOPSAN_SLOT_MAIN, &seen));
    ck_assert_uint_eq(seen.id, 6);
    ck_assert_uint_eq(seen.tsc, 0);
  }
  loopsan__clock_use_tsc = 1;
  for (int i = 0; i < 2; i++) {
    ck_assert_ptr_nonnull(loopsan__obj_dispatch(pair, LOOPSAN_SLOT_MAIN, &seen));
    ck_assert_uint_eq(seen.tsc, (unsigned)i); /* kept by the first, found by the second */
  }
  loopsan__clock_use_tsc = tsc;
  ck_assert_int_eq(loopsan__obj_take(pair, &got), 0);
}
END_TEST

/* put/take from several threads at once on objects that share probe
 * chains, while a reader looks them up: every live object stays findable
 * by its owner, a lookup never returns another object's record, and
 * nothing is left behind. Objects come in pairs 16 bytes apart (one home
 * slot, a chain of two), the two of a pair owned by different threads;
 * pairs 256 bytes apart keep the table's local load at a half. */
enum { RACE_THREADS = 4, RACE_PER_THREAD = 4096, RACE_ROUNDS = 40, RACE_STRIDE = 128 };
static char *race_block;
static _Atomic int race_writers_done;
static _Atomic unsigned long race_errors;

static void *race_addr(unsigned index) {
  return race_block + (size_t)(index / 2) * (2 * RACE_STRIDE) + (index % 2) * 16;
}

static void *race_writer(void *arg) {
  unsigned t = (unsigned)(uintptr_t)arg;
  struct loopsan_obj o, got;
  memset(&o, 0, sizeof o);
  for (unsigned round = 1; round <= RACE_ROUNDS; round++) {
    for (unsigned k = 0; k < RACE_PER_THREAD; k++) {
      unsigned index = k * RACE_THREADS + t;
      o.id = ((uint64_t)index << 20) | round;
      o.cb[0] = race_addr(index);
      if (!loopsan__obj_put(race_addr(index), &o, 0, NULL))
        race_errors++;
    }
    for (unsigned k = 0; k < RACE_PER_THREAD; k += 2)
      if (loopsan__obj_take(race_addr(k * RACE_THREADS + t), &got) != 0 ||
          got.id != ((((uint64_t)(k * RACE_THREADS + t)) << 20) | round))
        race_errors++;
    for (unsigned k = 1; k < RACE_PER_THREAD; k += 2) {
      unsigned index = k * RACE_THREADS + t;
      if (!loopsan__obj_get(race_addr(index), &got) || got.id != (((uint64_t)index << 20) | round))
        race_errors++;
      if (loopsan__obj_take(race_addr(index), &got) != 0)
        race_errors++;
    }
  }
  race_writers_done++;
  return NULL;
}

static void *race_reader(void *arg) {
  (void)arg;
  struct loopsan_obj_cb cb;
  unsigned index = 0;
  while (race_writers_done < RACE_THREADS) {
    index = (index * 1103515245u + 12345u) % (RACE_THREADS * RACE_PER_THREAD);
    if (loopsan__obj_dispatch(race_addr(index), 0, &cb) &&
        ((cb.id >> 20) != index || cb.cb != race_addr(index)))
      race_errors++; /* another object's record under this address */
  }
  return NULL;
}

START_TEST(object_table_race) {
  race_block = calloc(RACE_THREADS * RACE_PER_THREAD, RACE_STRIDE);
  pthread_t writers[RACE_THREADS], reader;
  ck_assert_int_eq(pthread_create(&reader, NULL, race_reader, NULL), 0);
  for (unsigned t = 0; t < RACE_THREADS; t++)
    ck_assert_int_eq(pthread_create(&writers[t], NULL, race_writer, (void *)(uintptr_t)t), 0);
  for (unsigned t = 0; t < RACE_THREADS; t++)
    pthread_join(writers[t], NULL);
  pthread_join(reader, NULL);
  ck_assert_uint_eq(race_errors, 0);
  struct loopsan_obj got;
  for (unsigned i = 0; i < RACE_THREADS * RACE_PER_THREAD; i++)
    ck_assert_ptr_null(loopsan__obj_get(race_addr(i), &got));
  free(race_block);
}
END_TEST

int main(void) {
  Suite *s = suite_create("stacks");
  TCase *tc = tcase_create("capture");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, dedupe_by_call_site);
  tcase_add_test(tc, depth_limit);
  tcase_add_test(tc, reuse_only_unchanged_stacks);
  tcase_add_test(tc, no_reuse_on_a_fiber_stack);
  tcase_add_test(tc, threads_share_ids);
  tcase_add_test(tc, object_table);
  tcase_add_test(tc, dispatch_cache_follows_changes);
  tcase_add_test(tc, object_table_race);
  suite_add_tcase(s, tc);
  return loopsan_unit_run(s);
}
