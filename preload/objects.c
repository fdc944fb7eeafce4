/* The object table: the address of a handle, request or loop -> what the
 * shim knows of it (its id, its original callbacks). Every wrapped callback
 * looks its object up here, so lookups take no lock and no malloc:
 * open addressing over one lazily-touched mapping, each slot guarded by a
 * sequence counter (a seqlock) that readers check instead of locking.
 * Writers for one address are the thread that owns the object (event loops
 * are single-threaded); claiming a free slot is a CAS. */
#include <string.h>
#include <sys/mman.h>

#include "preload/shim.h"

#define OBJ_TABLE_BITS 21 /* 2M slots x 64 B, touched only where used */
#define OBJ_TABLE_SIZE (1u << OBJ_TABLE_BITS)
#define OBJ_MAX_PROBES 128
#define KEY_EMPTY ((uintptr_t)0)
#define KEY_BUSY ((uintptr_t)1)
#define KEY_TOMB ((uintptr_t)2)

static struct loopsan_obj_slot *table;
const struct loopsan_obj_slot loopsan__obj_no_slot = {.seq = 1}; /* (shim.h) */
static _Atomic uint64_t next_id = 1;

uint64_t loopsan__obj_new_id(void) {
  return atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
}

/* Nearly the identity: objects next to each other in memory (an array of
 * timers, a connection struct with its handles, a malloc arena) land in
 * neighbouring slots, so the table is walked the way the program walks its
 * memory instead of missing the cache on every lookup. 64-byte granules:
 * every libuv handle or request is larger, so two never share a home; the
 * higher bits are folded in so that distant regions do not stack up. */
static inline uint32_t home(uintptr_t key) {
  uint64_t k = (uint64_t)key >> 6;
  return (uint32_t)((k ^ (k >> OBJ_TABLE_BITS) * 0x9E37u) & (OBJ_TABLE_SIZE - 1));
}

static inline __attribute__((always_inline)) struct loopsan_obj_slot *
find(struct loopsan_obj_slot *t, uintptr_t addr) {
  if (LOOPSAN_UNLIKELY(addr <= KEY_TOMB)) /* (NULL: would find an empty slot) */
    return NULL;
  uint32_t i = home(addr);
  for (int p = 0; p < OBJ_MAX_PROBES; p++, i = (i + 1) & (OBJ_TABLE_SIZE - 1)) {
    uintptr_t k = atomic_load_explicit(&t[i].key, memory_order_acquire);
    if (LOOPSAN_LIKELY(k == addr))
      return &t[i];
    if (k == KEY_EMPTY)
      return NULL;
  }
  return NULL;
}

static int table_init(void) {
  static _Atomic int failed;
  if (atomic_load(&failed))
    return -1;
  void *mem = mmap(NULL, sizeof(struct loopsan_obj_slot) * OBJ_TABLE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) {
    atomic_store(&failed, 1);
    return -1;
  }
  void *expected = NULL;
  if (!__atomic_compare_exchange_n((void **)&table, &expected, mem, 0, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE))
    munmap(mem, sizeof(struct loopsan_obj_slot) * OBJ_TABLE_SIZE);
  return 0;
}

static inline struct loopsan_obj_slot *get_table(void) {
  struct loopsan_obj_slot *t = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
  if (LOOPSAN_UNLIKELY(!t)) {
    if (table_init() != 0)
      return NULL;
    t = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
  }
  return t;
}

static void slot_write(struct loopsan_obj_slot *s, const struct loopsan_obj *o) {
  uint32_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
  atomic_store_explicit(&s->seq, seq + 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  atomic_store_explicit(&s->id, o->id, memory_order_relaxed);
  atomic_store_explicit(&s->loop, o->loop, memory_order_relaxed);
  for (int i = 0; i < LOOPSAN_SLOTS; i++)
    atomic_store_explicit(&s->cb[i], o->cb[i], memory_order_relaxed);
  s->library = o->library;
  s->type = o->type;
  atomic_store_explicit(&s->state, o->state, memory_order_relaxed);
  atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
}

/* Copy a slot whose key was ADDR; 0 if it changed under us. */
static int slot_read(struct loopsan_obj_slot *s, uintptr_t addr, struct loopsan_obj *out) {
  for (int tries = 0; tries < 1000; tries++) {
    uint32_t s1 = atomic_load_explicit(&s->seq, memory_order_acquire);
    if (s1 & 1u)
      continue;
    out->id = atomic_load_explicit(&s->id, memory_order_relaxed);
    out->loop = atomic_load_explicit(&s->loop, memory_order_relaxed);
    for (int i = 0; i < LOOPSAN_SLOTS; i++)
      out->cb[i] = atomic_load_explicit(&s->cb[i], memory_order_relaxed);
    out->library = s->library;
    out->type = s->type;
    out->state = atomic_load_explicit(&s->state, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&s->seq, memory_order_relaxed) == s1)
      return atomic_load_explicit(&s->key, memory_order_relaxed) == addr;
  }
  return 0;
}

void *loopsan__obj_put(const void *ptr, const struct loopsan_obj *obj, int keep_callbacks,
                       struct loopsan_obj *replaced) {
  uintptr_t addr = (uintptr_t)ptr;
  struct loopsan_obj_slot *t = get_table();
  if (replaced)
    replaced->id = 0;
  if (!t || addr <= KEY_TOMB)
    return NULL;
  struct loopsan_obj_slot *s = find(t, addr);
  if (s) {
    struct loopsan_obj merged = *obj;
    struct loopsan_obj old;
    if ((keep_callbacks || replaced) && slot_read(s, addr, &old)) {
      if (keep_callbacks)
        memcpy(merged.cb, old.cb, sizeof merged.cb);
      if (replaced)
        *replaced = old;
    }
    slot_write(s, &merged);
    return s;
  }
  for (int attempt = 0; attempt < 8; attempt++) {
    uint32_t h = home(addr), i = h;
    for (int p = 0; p < OBJ_MAX_PROBES; p++, i = (i + 1) & (OBJ_TABLE_SIZE - 1)) {
      uintptr_t k = atomic_load_explicit(&t[i].key, memory_order_acquire);
      if (k != KEY_EMPTY && k != KEY_TOMB)
        continue;
      if (!atomic_compare_exchange_strong(&t[i].key, &k, KEY_BUSY))
        continue;
      /* A concurrent take() may have emptied a slot before ours, cutting
       * the chain from our home: then start over (see loopsan__obj_take). */
      int cut = 0;
      for (uint32_t j = h; j != i && !cut; j = (j + 1) & (OBJ_TABLE_SIZE - 1))
        cut = atomic_load(&t[j].key) == KEY_EMPTY;
      if (cut) {
        atomic_store(&t[i].key, KEY_TOMB);
        break;
      }
      slot_write(&t[i], obj);
      atomic_store_explicit(&t[i].key, addr, memory_order_release);
      return &t[i];
    }
  }
  return NULL;
}

struct loopsan_obj_slot *loopsan__obj_seen_fill(uintptr_t addr, int cb_slot,
                                                struct loopsan_obj_cb *out) {
  struct loopsan_obj_slot *t = __atomic_load_n(&table, __ATOMIC_RELAXED);
  if (LOOPSAN_UNLIKELY(!t))
    return NULL;
  struct loopsan_obj_slot *s = find(t, addr);
  if (LOOPSAN_UNLIKELY(!s))
    return NULL;
  for (int tries = 0; tries < 1000; tries++) {
    uint32_t s1 = atomic_load_explicit(&s->seq, memory_order_acquire);
    uint64_t id = atomic_load_explicit(&s->id, memory_order_relaxed);
    void *cb = atomic_load_explicit(&s->cb[cb_slot], memory_order_relaxed);
    uint16_t state = atomic_load_explicit(&s->state, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (!(s1 & 1u) && atomic_load_explicit(&s->seq, memory_order_relaxed) == s1) {
      if (atomic_load_explicit(&s->key, memory_order_relaxed) != addr)
        return NULL;
      *out = (struct loopsan_obj_cb){id, cb, state, 0};
      if (cb && !loopsan__hot.seen_filling && loopsan__clock_use_tsc) {
        /* Emptied first and keyed last, each behind a compiler barrier:
         * a signal handler that runs in between finds no entry, and its
         * own lookups do not fill one (seen_filling). */
        struct loopsan_obj_seen *seen = loopsan__obj_seen_entry(addr, cb_slot);
        loopsan__hot.seen_filling = 1;
        seen->key = LOOPSAN_OBJ_SEEN_FILLING;
        atomic_signal_fence(memory_order_seq_cst);
        seen->slot = s;
        seen->id = id;
        seen->cb = cb;
        seen->seq = s1;
        atomic_signal_fence(memory_order_seq_cst);
        seen->key = LOOPSAN_OBJ_SEEN_KEY(addr, cb_slot);
        atomic_signal_fence(memory_order_seq_cst);
        loopsan__hot.seen_filling = 0;
      }
      return s;
    }
  }
  return NULL;
}

int loopsan__obj_read(void *ref, const void *ptr, struct loopsan_obj *out) {
  return ref && slot_read(ref, (uintptr_t)ptr, out);
}

void *loopsan__obj_get(const void *ptr, struct loopsan_obj *out) {
  uintptr_t addr = (uintptr_t)ptr;
  struct loopsan_obj_slot *t = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
  if (!t)
    return NULL;
  struct loopsan_obj_slot *s = find(t, addr);
  if (!s || !slot_read(s, addr, out))
    return NULL;
  return s;
}

int loopsan__obj_take(const void *ptr, struct loopsan_obj *out) {
  uintptr_t addr = (uintptr_t)ptr;
  struct loopsan_obj_slot *t = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
  if (!t)
    return -1;
  struct loopsan_obj_slot *s = find(t, addr);
  if (!s || !slot_read(s, addr, out))
    return -1;
  uintptr_t expected = addr;
  if (!atomic_compare_exchange_strong(&s->key, &expected, KEY_BUSY))
    return -1;
  /* (Moves the counter on, for the threads' loopsan__hot.obj_seen entries.) */
  atomic_fetch_add_explicit(&s->seq, 2, memory_order_release);
  /* A slot followed by an empty one ends every probe chain through it: it
   * can become empty again instead of a tombstone. */
  uint32_t next = (uint32_t)(s - t + 1) & (OBJ_TABLE_SIZE - 1);
  if (atomic_load(&t[next].key) != KEY_EMPTY) {
    atomic_store(&s->key, KEY_TOMB);
    return 0;
  }
  /* Sequentially consistent store-then-load against put()'s claim-then-
   * check: either we see its claim of the next slot and leave a tombstone,
   * or it sees our empty slot and inserts again. */
  atomic_store(&s->key, KEY_EMPTY);
  if (atomic_load(&t[next].key) != KEY_EMPTY) {
    uintptr_t e = KEY_EMPTY;
    atomic_compare_exchange_strong(&s->key, &e, KEY_TOMB);
  }
  return 0;
}

int loopsan__obj_is(void *ref, const void *addr, uint64_t id) {
  struct loopsan_obj_slot *s = ref;
  return ref && atomic_load_explicit(&s->key, memory_order_acquire) == (uintptr_t)addr &&
         atomic_load_explicit(&s->id, memory_order_relaxed) == id;
}

void loopsan__obj_set_cb(void *ref, int slot, void *cb) {
  struct loopsan_obj_slot *s = ref;
  uint32_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
  atomic_store_explicit(&s->seq, seq + 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  atomic_store_explicit(&s->cb[slot], cb, memory_order_relaxed);
  atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
}

/* State bits change only on the thread that runs the object's loop: plain
 * stores, no locked read-modify-write. */
uint16_t loopsan__obj_state_set(void *ref, uint16_t bits) {
  struct loopsan_obj_slot *s = ref;
  uint16_t old = atomic_load_explicit(&s->state, memory_order_relaxed);
  if ((old & bits) != bits)
    atomic_store_explicit(&s->state, (uint16_t)(old | bits), memory_order_relaxed);
  return old & bits;
}

void loopsan__obj_state_change(void *ref, uint16_t set, uint16_t clear) {
  struct loopsan_obj_slot *s = ref;
  uint16_t old = atomic_load_explicit(&s->state, memory_order_relaxed);
  uint16_t now = (uint16_t)((old & ~clear) | set);
  if (now != old)
    atomic_store_explicit(&s->state, now, memory_order_relaxed);
}

void loopsan__obj_state_clear(void *ref, uint16_t bits) {
  struct loopsan_obj_slot *s = ref;
  uint16_t old = atomic_load_explicit(&s->state, memory_order_relaxed);
  if (old & bits)
    atomic_store_explicit(&s->state, (uint16_t)(old & ~bits), memory_order_relaxed);
}
