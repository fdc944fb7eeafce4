/* The object table's slots (objects.c), here so that the lookup on every
 * callback's path is inlined into the trampolines, through a small cache
 * of the thread's own: a call, a probe loop and a seqlock cost more than
 * the callback's own dispatch by the loop. */
#ifndef LOOPSAN_PRELOAD_OBJECTS_H
#define LOOPSAN_PRELOAD_OBJECTS_H

/* (Included by shim.h, whose types and hidden visibility it shares.) */

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

/* The trampolines' lookup: only what a dispatch needs (the id, callback
 * SLOT, the state), read under the slot's sequence counter; the slot, or
 * NULL. A slot being written (another thread freeing the object, say)
 * goes the long way, retrying. */
struct loopsan_obj_cb {
  uint64_t id;
  void *cb;
  uint16_t state;
};

/* The objects the thread dispatched last, by address: a loop dispatches
 * the same few handles over and over, and an entry still holds while its
 * slot's sequence counter is unchanged, since every change to a slot
 * (put, take, a new callback) moves it on. That is one compare and one
 * load of the slot against the lookup's hash, probe and seqlock. (The
 * state is read from the slot: its bits change without the counter.) A
 * counter that went round 2^31 times while its entry stayed is not
 * guarded against. */
struct loopsan_obj_seen {
  uintptr_t key; /* address | callback slot (objects are 8-byte aligned) */
  struct loopsan_obj_slot *slot;
  uint64_t id;
  void *cb;
  uint32_t seq;
  uint32_t pad[7];
};
#define LOOPSAN_OBJ_SEEN 8u
extern LOOPSAN_TLS struct loopsan_obj_seen loopsan__obj_seen[LOOPSAN_OBJ_SEEN];

/* The lookup proper (objects.c), on a miss: fills SEEN and returns the
 * slot, or NULL. (An object without that callback is not kept: its
 * entry's key stays 0.) */
struct loopsan_obj_slot *loopsan__obj_seen_fill(uintptr_t addr, int cb_slot,
                                                struct loopsan_obj_seen *seen);

static inline __attribute__((always_inline)) void *
loopsan__obj_dispatch(const void *ptr, int cb_slot, struct loopsan_obj_cb *out) {
  uintptr_t addr = (uintptr_t)ptr;
  /* (A stream's read and allocation callbacks take neighbouring entries.) */
  struct loopsan_obj_seen *seen =
      &loopsan__obj_seen[((addr >> 6) + (unsigned)cb_slot) & (LOOPSAN_OBJ_SEEN - 1)];
  struct loopsan_obj_slot *s = seen->slot;
  if (LOOPSAN_LIKELY(seen->key == (addr | (unsigned)cb_slot) &&
                     atomic_load_explicit(&s->seq, memory_order_acquire) == seen->seq)) {
    if (!s || !seen->cb)
      __builtin_unreachable(); /* (a matching key has its slot and a callback) */
    *out = (struct loopsan_obj_cb){seen->id, seen->cb,
                                   atomic_load_explicit(&s->state, memory_order_relaxed)};
    return s;
  }
  s = loopsan__obj_seen_fill(addr, cb_slot, seen);
  if (LOOPSAN_UNLIKELY(!s))
    return NULL;
  *out = (struct loopsan_obj_cb){seen->id, seen->cb,
                                 atomic_load_explicit(&s->state, memory_order_relaxed)};
  return s;
}

#endif
