/* The generic operations adapters call: an object is created, changes
 * state, a call failed, a dispatch was slow. Adapters say *what* happened in
 * their library's terms; this turns it into trace records. */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "preload/shim.h"

#define MAX_TYPES 128
#define TYPES_PER_LIBRARY 64
static struct loopsan_type_desc types[MAX_TYPES];
static size_t n_types;

/* What the program created and ended, per (library, type): kept as
 * counters because compaction drops the records of objects that ended
 * well, and a clean run must still say what was observed. */
static _Atomic uint64_t created[LOOPSAN_LIBRARY_SLOTS][TYPES_PER_LIBRARY];
static _Atomic uint64_t ended[LOOPSAN_LIBRARY_SLOTS][TYPES_PER_LIBRARY];

static inline void count(_Atomic uint64_t (*table)[TYPES_PER_LIBRARY], unsigned library,
                         unsigned type) {
  if (library < LOOPSAN_LIBRARY_SLOTS && type < TYPES_PER_LIBRARY)
    atomic_fetch_add_explicit(&table[library][type], 1, memory_order_relaxed);
}

void loopsan__register_types(uint8_t library, const struct loopsan_type_desc *t, size_t n) {
  for (size_t i = 0; i < n && n_types < MAX_TYPES; i++) {
    types[n_types] = t[i];
    types[n_types++].library = library;
  }
}

void loopsan__emit_types(void) {
  for (size_t i = 0; i < n_types; i++) {
    struct loopsan_rec_type r = {.library = types[i].library,
                                 .type = types[i].type,
                                 .kind = types[i].kind,
                                 .name_len = (uint16_t)strlen(types[i].name)};
    loopsan__emit_tail(LOOPSAN_REC_TYPE, &r, sizeof r, types[i].name, r.name_len, NULL, 0);
  }
}

uint64_t loopsan__record_new_replacing(const void *addr, uint8_t library, uint8_t type,
                                       uint64_t loop, uint32_t flags, void **ref_out,
                                       struct loopsan_obj *replaced) {
  int saved = errno;
  struct loopsan_obj o = {
      .id = loopsan__obj_new_id(), .loop = loop, .library = library, .type = type};
  void *ref = loopsan__obj_put(addr, &o, 1, replaced);
  if (!ref) {
    loopsan__note_lost(LOOPSAN_LOST_OBJECT_TABLE_FULL, 1);
    errno = saved;
    return 0;
  }
  /* Made inside a callback: that callback's object is its parent. */
  const struct loopsan_spill_header *h = loopsan__hot.region;
  uint32_t depth = h ? h->depth : 0;
  uint64_t parent = depth && depth <= LOOPSAN_INFLIGHT_MAX ? h->inflight[depth - 1].obj : 0;
  struct loopsan_rec_obj_new r = {
      .parent = parent,
      .h.aux = flags,
      .ts = loopsan__now(),
      .obj = o.id,
      .loop = loop,
      .address = (uint64_t)(uintptr_t)addr,
      .stack = loopsan__stack_capture(),
      .library = library,
      .type = type,
  };
  loopsan__emit(LOOPSAN_REC_OBJ_NEW, &r, sizeof r);
  count(created, library, type);
  if (ref_out)
    *ref_out = ref;
  errno = saved;
  return o.id;
}

void loopsan__record_op(uint64_t obj, uint32_t op, const void *cb, uint32_t arg, int with_stack) {
  /* errno: kept by the writer (a write-out saves it); only unwinding may
   * change it here */
  struct loopsan_rec_obj_op r = {
      .h.aux = LOOPSAN_OP_AUX(op, arg),
      .ts = loopsan__now(),
      .obj = obj,
      .cb = (uint64_t)(uintptr_t)cb,
  };
  size_t size = LOOPSAN_OBJ_OP_SIZE_MIN;
  if (with_stack > 1) { /* the call site only (loopsan__stack_of_caller) */
    r.stack = (uint32_t)with_stack;
    size = sizeof r;
  } else if (with_stack) {
    int saved = errno;
    r.stack = loopsan__stack_capture();
    errno = saved;
    size = sizeof r;
  } else if (cb) {
    size = offsetof(struct loopsan_rec_obj_op, stack);
  }
  loopsan__emit(LOOPSAN_REC_OBJ_OP, &r, size);
}

void loopsan__record_end(const struct loopsan_obj *o, uint32_t op, const void *cb, int32_t arg,
                         int with_stack) {
  count(ended, o->library, o->type);
  loopsan__record_op(o->id, op, cb, (uint32_t)arg, with_stack);
}

void loopsan__emit_counts(void) {
  struct {
    struct loopsan_rec_counts r;
    uint64_t dispatches[LOOPSAN_LIBRARY_SLOTS];
  } head = {.r = {.n_libraries = LOOPSAN_LIBRARY_SLOTS}};
  struct loopsan_count entries[MAX_TYPES];
  uint16_t n = 0;
  for (size_t i = 0; i < n_types; i++) {
    unsigned lib = types[i].library, type = types[i].type;
    if (lib >= LOOPSAN_LIBRARY_SLOTS || type >= TYPES_PER_LIBRARY)
      continue;
    uint64_t c = atomic_load_explicit(&created[lib][type], memory_order_relaxed);
    if (c)
      entries[n++] = (struct loopsan_count){
          .library = (uint16_t)lib,
          .type = (uint16_t)type,
          .created = c,
          .ended = atomic_load_explicit(&ended[lib][type], memory_order_relaxed)};
  }
  loopsan__writer_dispatch_totals(head.dispatches);
  head.r.n_types = n;
  loopsan__emit_tail(LOOPSAN_REC_COUNTS, &head, sizeof head, entries, n * sizeof entries[0], NULL,
                     0);
}

void loopsan__events_atfork_child(void) {
  /* The child's report counts what the child does. */
  for (unsigned l = 0; l < LOOPSAN_LIBRARY_SLOTS; l++)
    for (unsigned t = 0; t < TYPES_PER_LIBRARY; t++) {
      atomic_store_explicit(&created[l][t], 0, memory_order_relaxed);
      atomic_store_explicit(&ended[l][t], 0, memory_order_relaxed);
    }
}

void loopsan__record_api_error(uint64_t obj, uint8_t library, const char *function, int result,
                               uint32_t flags) {
  int saved = errno;
  struct loopsan_rec_api_error r = {
      .h.aux = flags,
      .ts = loopsan__now(),
      .obj = obj,
      .result = result,
      .stack = loopsan__stack_capture(),
      .library = library,
      .name_len = (uint16_t)strlen(function),
  };
  loopsan__emit_tail(LOOPSAN_REC_API_ERROR, &r, sizeof r, function, r.name_len, NULL, 0);
  errno = saved;
}

void loopsan__record_misuse(uint64_t obj, uint8_t library, uint32_t what, const char *fn) {
  struct loopsan_misuse_detail d = {.type = LOOPSAN_TYPE_UNKNOWN};
  loopsan__record_misuse_ex(obj, library, what, fn, &d);
}

void loopsan__record_misuse_ex(uint64_t obj, uint8_t library, uint32_t what, const char *fn,
                               const struct loopsan_misuse_detail *d) {
  int saved = errno;
  struct loopsan_rec_misuse r = {.h.aux = what,
                                 .ts = loopsan__now(),
                                 .obj = obj,
                                 .stack = loopsan__stack_capture(),
                                 .library = library,
                                 .name_len = (uint16_t)strlen(fn),
                                 .cause = d->cause,
                                 .type = d->type,
                                 .arg = d->arg,
                                 .arg2 = d->arg2,
                                 .address = (uint64_t)(uintptr_t)d->address};
  loopsan__emit_tail(LOOPSAN_REC_MISUSE, &r, sizeof r, fn, r.name_len, NULL, 0);
  loopsan__flush_all();
  errno = saved;
}

/* (shim.h, LOOPSAN_TIMED_CALL) The dispatch whose trampoline's frame is
 * FRAME, and those published above it. (Nothing, if it began on a scratch
 * header.) */
void loopsan__dispatch_unwound(uintptr_t frame) {
  struct loopsan_spill_header *h = loopsan__hot.region;
  uint32_t depth = h ? h->depth : 0;
  if (!depth)
    return;
  if (depth > LOOPSAN_INFLIGHT_MAX) { /* not published: the innermost */
    __atomic_store_n(&h->depth, depth - 1, __ATOMIC_RELEASE);
    return;
  }
  for (uint32_t i = depth; i-- > 0;) {
    if (loopsan__hot.dispatch_frame[i] != frame)
      continue;
    struct loopsan_inflight e = h->inflight[i];
    __atomic_store_n(&h->depth, i + 1, __ATOMIC_RELEASE);
    loopsan__dispatch_leave(h, e.t0, (const void *)(uintptr_t)e.cb, e.slot, e.library);
    return;
  }
}

uint64_t loopsan__dispatch_obj(const struct loopsan_spill_header *h, uint64_t t0, const void *cb) {
  /* (its entry is the first above the depth it left: scanned whole in
   * case a greenlet's dispatches interleaved) */
  for (uint32_t i = 0; i < LOOPSAN_INFLIGHT_MAX; i++)
    if (h->inflight[i].t0 == t0 && h->inflight[i].cb == (uint64_t)(uintptr_t)cb)
      return h->inflight[i].obj;
  return 0; /* nested too deep to be published */
}

void loopsan__dispatch_slow(const struct loopsan_spill_header *h, uint64_t t0, const void *cb,
                            uint32_t slot, uint64_t duration) {
  int saved = errno;
  struct loopsan_rec_dispatch r = {
      .h.aux = slot,
      .ts = t0,
      .duration = duration,
      .obj = loopsan__dispatch_obj(h, t0, cb),
      .cb = (uint64_t)(uintptr_t)cb,
  };
  loopsan__emit_dispatch(&r); /* (16 bytes when it can, with --record=all) */
  errno = saved;
}
