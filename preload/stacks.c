/* Creation stacks: captured with libunwind's unw_backtrace (a cached-CFI
 * fast path, ~10 ns a frame; never an unw_step loop, which costs two
 * sigprocmask calls a step), the shim's own frames removed, deduplicated by
 * a 64-bit hash in a lock-free table. A stack is written to the trace once,
 * by the thread that saw it first, before the record that refers to it. */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <string.h>
#include <sys/mman.h>

#include "preload/shim.h"

#define STACK_TABLE_BITS 18
#define STACK_TABLE_SIZE (1u << STACK_TABLE_BITS)
#define STACK_MAX_PROBES 64
#define SELF_FRAMES_MAX 8 /* at most this many shim frames sit on top */

struct stack_slot {
  _Atomic uint64_t hash;
  _Atomic uint32_t id;
  uint32_t pad;
};

static struct stack_slot *table;
static _Atomic uint32_t next_id = 1;

static int stacks_init(void) {
  void *mem = mmap(NULL, sizeof(struct stack_slot) * STACK_TABLE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED)
    return -1;
  table = mem;
  return 0;
}

void loopsan__stacks_atfork_child(void) {
  /* The child writes a trace of its own: ids restart and every stack is
   * written again when first used. */
  if (table)
    madvise(table, sizeof(struct stack_slot) * STACK_TABLE_SIZE, MADV_DONTNEED);
  atomic_store(&next_id, 1);
}

static uint64_t hash_frames(void *const *frames, int n) {
  uint64_t h = 0xcbf29ce484222325u ^ (uint64_t)n;
  for (int i = 0; i < n; i++) {
    h ^= (uint64_t)(uintptr_t)frames[i];
    h *= 0x100000001b3u;
    h ^= h >> 29;
  }
  return h ? h : 1;
}

uint32_t loopsan__stack_capture(void) {
  if (LOOPSAN_UNLIKELY(!table) && stacks_init() != 0)
    return 0;
  void *buf[LOOPSAN_STACK_MAX_FRAMES + SELF_FRAMES_MAX];
  unsigned depth = loopsan__state.opts.stack_depth;
  if (depth > LOOPSAN_STACK_MAX_FRAMES)
    depth = LOOPSAN_STACK_MAX_FRAMES;
  int got = unw_backtrace(buf, (int)(depth + SELF_FRAMES_MAX));
  /* Drop the shim's frames: the capture itself on top, and trampolines in
   * the middle (an object created inside a wrapped callback). */
  int n = 0;
  for (int i = 0; i < got && (unsigned)n < depth; i++)
    if (!loopsan__is_self((uintptr_t)buf[i]))
      buf[n++] = buf[i];
  if (n <= 0)
    return 0;
  void **frames = buf;
  uint64_t h = hash_frames(frames, n);
  uint32_t i = (uint32_t)(h >> (64 - STACK_TABLE_BITS));
  for (int probe = 0; probe < STACK_MAX_PROBES; probe++, i = (i + 1) & (STACK_TABLE_SIZE - 1)) {
    struct stack_slot *s = &table[i];
    uint64_t cur = atomic_load_explicit(&s->hash, memory_order_acquire);
    if (cur == 0) {
      /* The id is taken before the slot is claimed and published right
       * after, so a thread that finds the slot waits a few instructions at
       * most; the STACK record may then reach the file after a record
       * that uses the id (readers resolve stacks at the end). */
      uint32_t id = atomic_fetch_add(&next_id, 1);
      uint64_t expected = 0;
      if (!atomic_compare_exchange_strong(&s->hash, &expected, h)) {
        cur = expected; /* lost the race: that id stays unused */
      } else {
        atomic_store_explicit(&s->id, id, memory_order_release);
        struct loopsan_rec_stack r = {.id = id, .nframes = (uint32_t)n};
        loopsan__emit_tail(LOOPSAN_REC_STACK, &r, sizeof r, frames, sizeof(void *) * (size_t)n,
                           NULL, 0);
        return id;
      }
    }
    if (cur == h) {
      uint32_t id;
      for (int spin = 0; (id = atomic_load_explicit(&s->id, memory_order_acquire)) == 0; spin++)
        if (spin > 1000000)
          return 0; /* the claiming thread was descheduled for long: no stack */
      return id;
    }
  }
  loopsan__note_lost(LOOPSAN_LOST_STACK_TABLE_FULL, 1);
  return 0;
}
