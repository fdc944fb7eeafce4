/* The generic half of every adapter: whose call it is, and the object
 * operations adapters express their library's API in (adapter.h). */
#include <errno.h>

#include "preload/adapter.h"
#include "preload/compact.h"

int loopsan__calls_itself(const struct loopsan_library_ref *lib, uintptr_t ra) {
#if defined(__x86_64__)
  /* The library's own calls are `call rel32` to its PLT or code, or
   * `call *GOT(%rip)` when built with -fno-plt. */
  uintptr_t start = atomic_load_explicit(&lib->start, memory_order_relaxed);
  if (ra - start < 6)
    return 1;
  const unsigned char *p = (const unsigned char *)ra;
  if (p[-5] == 0xe8) { /* call rel32 */
    int32_t rel;
    memcpy(&rel, p - 4, sizeof rel);
    if (loopsan__in_range(lib, ra + (uintptr_t)(intptr_t)rel))
      return 1;
  }
  if (p[-6] == 0xff && p[-5] == 0x15) { /* call *disp32(%rip) */
    int32_t disp;
    memcpy(&disp, p - 4, sizeof disp);
    if (loopsan__in_range(lib, ra + (uintptr_t)(intptr_t)disp))
      return 1;
  }
  return 0;
#else
  (void)lib;
  (void)ra;
  return 1;
#endif
}

static LOOPSAN_TLS const void *last_loop;
static LOOPSAN_TLS uint64_t last_loop_id;

uint64_t loopsan__loop_id(const void *loop) {
  struct loopsan_obj o;
  if (loop == last_loop && loop)
    return last_loop_id;
  uint64_t id = loop && loopsan__obj_get(loop, &o) ? o.id : 0;
  last_loop = id ? loop : NULL;
  last_loop_id = id;
  return id;
}

void loopsan__loop_forget(const void *loop) {
  if (last_loop == loop)
    last_loop = NULL;
}

void loopsan__loop_new(const void *loop, uint8_t library, uint8_t type, uint32_t flags) {
  loopsan__loop_forget(loop);
  loopsan__record_new(loop, library, type, 0, flags | LOOPSAN_OBJF_LOOP, NULL);
}

void loopsan__loop_closed(const void *loop, int from_program) {
  struct loopsan_obj o;
  loopsan__loop_forget(loop);
  if (from_program && loopsan__obj_take(loop, &o) == 0)
    loopsan__record_end(&o, LOOPSAN_OP_CLOSED, NULL, 0, 1);
}

void loopsan__loop_run(const void *loop, int mode) {
  struct loopsan_obj o;
  void *ref = loopsan__obj_get(loop, &o);
  if (ref && !loopsan__obj_state_set(ref, LOOPSAN_STATE_RAN))
    loopsan__record_op(o.id, LOOPSAN_OP_RUN, NULL, (uint32_t)mode, 0);
}

void loopsan__handle_new(const void *h, uint8_t library, uint8_t type, const void *loop) {
  loopsan__record_new(h, library, type, loopsan__loop_id(loop), 0, NULL);
}

uint64_t loopsan__handle_used_loop(const void *h) {
  struct loopsan_obj o;
  void *ref = loopsan__obj_get(h, &o);
  if (!ref)
    return 0;
  if (!loopsan__obj_state_set(ref, LOOPSAN_STATE_USED))
    loopsan__record_op(o.id, LOOPSAN_OP_USE, NULL, 0, 0);
  return o.loop;
}

void loopsan__handle_used(const void *h) { (void)loopsan__handle_used_loop(h); }

/* The object this thread armed (a handle's start) or began (a request)
 * last: the START that follows needs its id and main callback, known then
 * without reading its slot back. */
static LOOPSAN_TLS struct {
  void *ref, *cb;
  uint64_t id;
} last_armed;

static inline void remember_armed(void *ref, void *cb, uint64_t id) {
  last_armed.ref = ref;
  last_armed.cb = cb;
  last_armed.id = id;
}

/* Is REF (for ADDR) the object armed last, still (another thread may have
 * ended it and reused its slot since)? */
static inline int is_armed_last(void *ref, const void *addr) {
  return last_armed.ref == ref && loopsan__obj_is(ref, addr, last_armed.id);
}

void *loopsan__handle_arm(const void *h, int slot, void *cb, void *tramp) {
  /* (The trampolines' lookup: the id and that one callback, no copy.) */
  struct loopsan_obj_cb o;
  void *ref = loopsan__obj_dispatch(h, slot, &o);
  if (!ref)
    return NULL;
  if (cb != tramp && cb != o.cb) /* (a new callback moves the slot's counter on) */
    loopsan__obj_set_cb(ref, slot, cb);
  remember_armed(slot == LOOPSAN_SLOT_MAIN ? ref : NULL, cb != tramp ? cb : o.cb, o.id);
  loopsan__obj_state_change(ref, LOOPSAN_STATE_USED,
                            slot == LOOPSAN_SLOT_MAIN ? LOOPSAN_STATE_FIRED : 0);
  return ref;
}

void loopsan__handle_started(void *ref, const void *h, int rc, const char *fn, uint32_t flags) {
  struct loopsan_obj o;
  if (rc == 0 && is_armed_last(ref, h)) {
    loopsan__record_op(last_armed.id, LOOPSAN_OP_START, last_armed.cb, flags, 0);
    return;
  }
  if (!loopsan__obj_read(ref, h, &o))
    return;
  if (rc == 0)
    loopsan__record_op(o.id, LOOPSAN_OP_START, o.cb[LOOPSAN_SLOT_MAIN], flags, 0);
  else
    loopsan__record_api_error(o.id, o.library, fn, rc, 0);
}

void *loopsan__request_begin(const void *req, uint8_t library, uint8_t type, uint64_t loop,
                             void *cb) {
  void *ref = NULL;
  uint64_t id = loopsan__record_new(req, library, type, loop, 0, &ref);
  if (!id || !ref)
    return NULL;
  loopsan__obj_set_cb(ref, LOOPSAN_SLOT_MAIN, cb);
  remember_armed(ref, cb, id);
  return ref;
}

void loopsan__request_submitted(void *ref, const void *req, int rc, const char *fn) {
  struct loopsan_obj o;
  if (rc == 0) {
    if (is_armed_last(ref, req))
      loopsan__record_op(last_armed.id, LOOPSAN_OP_START, last_armed.cb,
                         LOOPSAN_START_ONESHOT | LOOPSAN_START_SCHEDULED, 0);
    else if (loopsan__obj_read(ref, req, &o))
      loopsan__record_op(o.id, LOOPSAN_OP_START, o.cb[LOOPSAN_SLOT_MAIN],
                         LOOPSAN_START_ONESHOT | LOOPSAN_START_SCHEDULED, 0);
    return;
  }
  /* Refused: the request never existed for the library. */
  if (loopsan__obj_take(req, &o) == 0) {
    loopsan__record_api_error(o.id, o.library, fn, rc, 0);
    loopsan__record_end(&o, LOOPSAN_OP_CLOSED, NULL, 0, 0);
  }
}

/* ---- which thread runs which loop (wrong-thread) ---- */

#define RUNNING_MAX 64
static struct {
  _Atomic(const void *) loop;
  _Atomic uint32_t tid;
  uint32_t depth; /* nested runs of the same loop (the owner thread's) */
} running[RUNNING_MAX];
_Atomic unsigned loopsan__running_loops;
#define running_count loopsan__running_loops
static _Atomic unsigned running_hwm; /* slots past this one were never used */
LOOPSAN_TLS const void *loopsan__my_loop;
#define my_loop loopsan__my_loop

void loopsan__loop_enter(const void *loop, const void **saved) {
  loopsan__adapter_loop_entered(); /* its waits are this adapter's, not the generic layer's */
  *saved = my_loop;
  my_loop = loop;
  uint32_t tid = loopsan__tid();
  unsigned hwm = atomic_load(&running_hwm);
  for (unsigned i = 0; i < hwm; i++) /* run again, nested, on this thread */
    if (atomic_load(&running[i].loop) == loop && atomic_load(&running[i].tid) == tid) {
      running[i].depth++;
      return;
    }
  for (unsigned i = 0; i < RUNNING_MAX; i++) {
    const void *expected = NULL;
    if (atomic_compare_exchange_strong(&running[i].loop, &expected, loop)) {
      atomic_store(&running[i].tid, tid);
      running[i].depth = 1;
      atomic_fetch_add(&running_count, 1);
      unsigned seen = atomic_load(&running_hwm);
      while (seen < i + 1 && !atomic_compare_exchange_weak(&running_hwm, &seen, i + 1))
        ;
      return;
    }
  }
}

void loopsan__loop_leave(const void *loop, const void *saved) {
  loopsan__adapter_loop_left();
  my_loop = saved;
  uint32_t tid = loopsan__tid();
  unsigned hwm = atomic_load(&running_hwm);
  for (unsigned i = 0; i < hwm; i++)
    if (atomic_load(&running[i].loop) == loop && atomic_load(&running[i].tid) == tid) {
      if (--running[i].depth == 0) {
        atomic_store(&running[i].tid, 0);
        atomic_store(&running[i].loop, NULL);
        atomic_fetch_sub(&running_count, 1);
      }
      return;
    }
}

/* The thread running LOOP, if it is not this one; else 0. */
static uint32_t other_owner(const void *loop) {
  if (!loop || loop == my_loop || !atomic_load_explicit(&running_count, memory_order_relaxed))
    return 0;
  unsigned hwm = atomic_load(&running_hwm);
  for (unsigned i = 0; i < hwm; i++) {
    if (atomic_load_explicit(&running[i].loop, memory_order_acquire) != loop)
      continue;
    uint32_t owner = atomic_load(&running[i].tid);
    return owner == loopsan__tid() ? 0 : owner;
  }
  return 0;
}

int loopsan__loop_running_elsewhere(const void *loop) { return other_owner(loop) != 0; }

int loopsan__check_thread_slow(const void *loop, const void *h, uint8_t library, const char *fn) {
  uint32_t owner = other_owner(loop);
  if (LOOPSAN_LIKELY(!owner))
    return 0;
  int saved = errno;
  struct loopsan_obj o;
  struct loopsan_rec_wrong_thread r = {.ts = loopsan__now(),
                                       .obj = h && loopsan__obj_get(h, &o) ? o.id : 0,
                                       .loop = loopsan__loop_id(loop),
                                       .owner_tid = owner,
                                       .stack = loopsan__stack_capture(),
                                       .library = library,
                                       .name_len = (uint16_t)strlen(fn)};
  loopsan__emit_tail(LOOPSAN_REC_WRONG_THREAD, &r, sizeof r, fn, r.name_len, NULL, 0);
  /* The object's own records are in the loop thread's buffer, where its
   * compaction cannot see this one. */
  if (r.obj)
    loopsan__compact_keep(r.obj);
  errno = saved;
  return 1;
}
