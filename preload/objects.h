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
  /* Found in the thread's cache, which is filled only when the clock is
   * the TSC: the dispatch need not ask (LOOPSAN_TIMED_CALL_FOUND). */
  uint8_t tsc;
};

/* The entry for ADDR's 64-byte granule, its offset taken from the address
 * as it is (a stream's read and allocation callbacks take neighbouring
 * entries). */
static inline __attribute__((always_inline)) struct loopsan_obj_seen *
loopsan__obj_seen_entry(uintptr_t addr, int cb_slot) {
  return (struct loopsan_obj_seen *)((char *)loopsan__hot.obj_seen +
                                     ((addr + ((uintptr_t)cb_slot << 6)) & LOOPSAN_OBJ_SEEN_MASK));
}

/* The lookup proper (objects.c), on a miss: fills ADDR's entry, and OUT,
 * and returns the slot, or NULL. (An object without that callback is not
 * kept, nor any when the clock is not the TSC: a hit says it is.) */
struct loopsan_obj_slot *loopsan__obj_seen_fill(uintptr_t addr, int cb_slot,
                                                struct loopsan_obj_cb *out);

/* The key is read last, after a compiler barrier: a signal handler that
 * filled the entry for another object between the reads changed it (its
 * fill ran whole, before this code went on), and this is a miss. */
static inline __attribute__((always_inline)) void *
loopsan__obj_dispatch(const void *ptr, int cb_slot, struct loopsan_obj_cb *out) {
  uintptr_t addr = (uintptr_t)ptr;
  struct loopsan_obj_seen *seen = loopsan__obj_seen_entry(addr, cb_slot);
  struct loopsan_obj_slot *s = seen->slot;
  uint32_t seq = seen->seq;
  uint64_t id = seen->id;
  void *cb = seen->cb;
  atomic_signal_fence(memory_order_seq_cst);
  if (LOOPSAN_LIKELY(seen->key == LOOPSAN_OBJ_SEEN_KEY(addr, cb_slot) &&
                     atomic_load_explicit(&s->seq, memory_order_acquire) == seq)) {
    if (!s || !cb)
      __builtin_unreachable(); /* (a kept entry has its slot and a callback) */
    *out = (struct loopsan_obj_cb){id, cb, atomic_load_explicit(&s->state, memory_order_relaxed),
                                   1};
    return s;
  }
  /* (A copy, so that OUT never escapes and stays in registers.) */
  struct loopsan_obj_cb found;
  s = loopsan__obj_seen_fill(addr, cb_slot, &found);
  *out = found;
  return s;
}

#endif
