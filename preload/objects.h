/* The object table's layout (objects.c), here so that the lookup on every
 * callback's path is inlined into the trampolines: a call, a loop and an
 * out-parameter in memory cost more than the lookup itself. */
#ifndef LOOPSAN_PRELOAD_OBJECTS_H
#define LOOPSAN_PRELOAD_OBJECTS_H

/* (Included by shim.h, whose types and hidden visibility it shares.) */

#define LOOPSAN_OBJ_TABLE_BITS 21 /* 2M slots x 64 B, touched only where used */
#define LOOPSAN_OBJ_TABLE_SIZE (1u << LOOPSAN_OBJ_TABLE_BITS)
#define LOOPSAN_OBJ_MAX_PROBES 128
#define LOOPSAN_OBJ_KEY_EMPTY ((uintptr_t)0)

struct loopsan_obj_slot {
  _Atomic uintptr_t key;
  _Atomic uint32_t seq;
  _Atomic uint16_t state;
  uint8_t library;
  uint8_t type;
  _Atomic uint64_t id;
  _Atomic uint64_t loop;
  _Atomic(void *) cb[LOOPSAN_SLOTS];
};
_Static_assert(sizeof(struct loopsan_obj_slot) == 64, "one cache line per slot");

extern struct loopsan_obj_slot *loopsan__obj_table;

/* Nearly the identity: objects next to each other in memory (an array of
 * timers, a connection struct with its handles, a malloc arena) land in
 * neighbouring slots, so the table is walked the way the program walks its
 * memory instead of missing the cache on every lookup. 64-byte granules:
 * every libuv handle or request is larger, so two never share a home; the
 * higher bits are folded in so that distant regions do not stack up. */
static inline uint32_t loopsan__obj_home(uintptr_t key) {
  uint64_t k = (uint64_t)key >> 6;
  return (uint32_t)((k ^ (k >> LOOPSAN_OBJ_TABLE_BITS) * 0x9E37u) & (LOOPSAN_OBJ_TABLE_SIZE - 1));
}

static inline __attribute__((always_inline)) struct loopsan_obj_slot *
loopsan__obj_find(struct loopsan_obj_slot *t, uintptr_t addr) {
  uint32_t i = loopsan__obj_home(addr);
  for (int p = 0; p < LOOPSAN_OBJ_MAX_PROBES; p++, i = (i + 1) & (LOOPSAN_OBJ_TABLE_SIZE - 1)) {
    uintptr_t k = atomic_load_explicit(&t[i].key, memory_order_acquire);
    if (LOOPSAN_LIKELY(k == addr))
      return &t[i];
    if (k == LOOPSAN_OBJ_KEY_EMPTY)
      return NULL;
  }
  return NULL;
}

/* The trampolines' lookup: only what a dispatch needs (the id, callback
 * SLOT, the state), read under the slot's sequence counter; the slot, or
 * NULL. A slot being written (another thread freeing the object, say)
 * goes the long way, retrying. */
struct loopsan_obj_cb {
  uint64_t id;
  void *cb;
  uint16_t state;
};
void *loopsan__obj_dispatch_retry(void *slot, uintptr_t addr, int cb_slot, struct loopsan_obj_cb *out);
static inline __attribute__((always_inline)) void *
loopsan__obj_dispatch(const void *ptr, int cb_slot, struct loopsan_obj_cb *out) {
  uintptr_t addr = (uintptr_t)ptr;
  struct loopsan_obj_slot *t = __atomic_load_n(&loopsan__obj_table, __ATOMIC_RELAXED);
  if (LOOPSAN_UNLIKELY(!t))
    return NULL;
  struct loopsan_obj_slot *s = loopsan__obj_find(t, addr);
  if (LOOPSAN_UNLIKELY(!s))
    return NULL;
  uint32_t s1 = atomic_load_explicit(&s->seq, memory_order_acquire);
  uint64_t id = atomic_load_explicit(&s->id, memory_order_relaxed);
  void *cb = atomic_load_explicit(&s->cb[cb_slot], memory_order_relaxed);
  uint16_t state = atomic_load_explicit(&s->state, memory_order_relaxed);
  atomic_thread_fence(memory_order_acquire);
  if (LOOPSAN_LIKELY(!(s1 & 1u) && atomic_load_explicit(&s->seq, memory_order_relaxed) == s1)) {
    *out = (struct loopsan_obj_cb){id, cb, state};
    return atomic_load_explicit(&s->key, memory_order_relaxed) == addr ? s : NULL;
  }
  /* (A copy, so that OUT never escapes and stays in registers.) */
  struct loopsan_obj_cb again;
  void *r = loopsan__obj_dispatch_retry(s, addr, cb_slot, &again);
  *out = again;
  return r;
}

#endif
