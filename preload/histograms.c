/* How long callbacks take, per callback site, in every record mode: each
 * thread counts its dispatches per callback function in a table of its
 * own (log2 buckets of the duration in clock ticks, the total and the
 * maximum), and writes what it counted as HISTOGRAM records at its
 * periodic write-out, at thread exit and at the process's end. No record
 * per dispatch, no lock, no atomic: a lookup and three additions. */
#include <string.h>
#include <sys/mman.h>

#include "preload/shim.h"

#define HIST_SLOTS 256u
#define HIST_PROBES 8

#define hist_slot loopsan_hist_slot

struct hist_table {
  struct hist_table *next; /* registry, push-only */
  _Atomic int in_use;      /* owned by a live thread */
  int dirty;               /* counted something since its last records */
  struct hist_slot s[HIST_SLOTS];
};

static _Atomic(struct hist_table *) tables;
static LOOPSAN_TLS struct hist_table *my_hist;
/* The sites counted last (shim.h's inline fast path): a loop dispatches
 * the same few callbacks over and over, so most dispatches find theirs at
 * one compare. Emptied after the table's counts were written (the next
 * count, through loopsan__hist_add_slow, marks it dirty again). */
/* No callback is at UINT64_MAX (nor is any descriptor or call site the
 * generic layer passes as its key). Writable all the same: a match could
 * only count into it. */
struct hist_slot loopsan__hist_no_site = {.cb = UINT64_MAX};
#define NO_SITE (&loopsan__hist_no_site)
static inline void forget_recent(void) {
  for (unsigned i = 0; i < LOOPSAN_HIST_CACHE; i++)
    loopsan__hot.hist_cache[i] = NO_SITE;
}
static LOOPSAN_TLS int no_table; /* mmap failed once: this thread counts nothing */

static struct hist_table *acquire(void) {
  struct hist_table *t;
  for (t = atomic_load(&tables); t; t = t->next) {
    int expected = 0;
    if (atomic_compare_exchange_strong(&t->in_use, &expected, 1))
      return t;
  }
  void *mem = mmap(NULL, sizeof *t, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED)
    return NULL;
  t = mem;
  atomic_store(&t->in_use, 1);
  struct hist_table *head = atomic_load(&tables);
  do
    t->next = head;
  while (!atomic_compare_exchange_weak(&tables, &head, t));
  return t;
}

static struct hist_slot *find_slot(const void *cb, uint32_t slot, uint32_t library,
                                   const struct loopsan_spill_header *h, uint64_t t0) {
  if (LOOPSAN_IS_ITERATION(slot) || !cb)
    return NULL; /* a whole loop iteration (generic layer): no callback site */
  struct hist_table *t = my_hist;
  if (!t) {
    if (no_table || !(t = my_hist = acquire())) {
      no_table = 1;
      return NULL;
    }
  }
  uint64_t key = (uint64_t)(uintptr_t)cb;
  unsigned i = (unsigned)(((key >> 4) * 0x9E3779B97F4A7C15ull) >> 56);
  for (int n = 0; n < HIST_PROBES; n++, i = (i + 1) & (HIST_SLOTS - 1)) {
    struct hist_slot *s = &t->s[i];
    if (s->cb == key) /* (a callback belongs to one library) */
      return s;
    if (!s->cb) {
      s->cb = key;
      s->library = (uint16_t)library;
      s->slot = (uint16_t)slot;
      /* A new site: where its objects are made is this one's creation
       * stack (kept by compaction: the SITE op is evidence). */
      uint64_t obj = loopsan__dispatch_obj(h, t0, cb);
      if (obj)
        loopsan__record_op(obj, LOOPSAN_OP_SITE, cb, 0, 0);
      return s;
    }
  }
  return NULL; /* crowded: this site is not counted */
}

void loopsan__hist_add_slow(const void *cb, uint32_t slot, uint32_t library, uint64_t dt,
                            const struct loopsan_spill_header *h, uint64_t t0) {
  struct hist_slot *s = find_slot(cb, slot, library, h, t0);
  if (!s)
    return;
  loopsan__hot.hist_cache[loopsan__hist_cache_index(cb)] = s;
  my_hist->dirty = 1;
  loopsan__hist_count(s, dt);
}

/* T's counts as records (into the calling thread's buffer), then zeroed. */
static void emit_table(struct hist_table *t) {
  if (!t->dirty)
    return;
  t->dirty = 0;
  for (unsigned i = 0; i < HIST_SLOTS; i++) {
    struct hist_slot *s = &t->s[i];
    if (!s->cb)
      continue;
    struct loopsan_rec_histogram r = {
        .h.aux = s->slot, .cb = s->cb, .total = s->total, .max = s->max, .library = s->library};
    for (unsigned b = 0; b < LOOPSAN_HIST_LOG2_BUCKETS; b++) {
      r.count += s->buckets[b];
      /* (the record's last bucket: everything above) */
      r.buckets[b < LOOPSAN_HIST_BUCKETS ? b : LOOPSAN_HIST_BUCKETS - 1] += s->buckets[b];
    }
    if (!r.count)
      continue;
    loopsan__emit(LOOPSAN_REC_HISTOGRAM, &r, sizeof r);
    s->total = s->max = 0;
    memset(s->buckets, 0, sizeof s->buckets);
  }
}

void loopsan__hist_flush_mine(void) {
  if (my_hist && my_hist->dirty) {
    emit_table(my_hist);
    forget_recent();
  }
}

int loopsan__hist_dirty(void) { return my_hist && my_hist->dirty; }

void loopsan__hist_thread_exit(void) {
  struct hist_table *t = my_hist;
  if (!t)
    return;
  emit_table(t);
  memset(t->s, 0, sizeof t->s);
  my_hist = NULL;
  forget_recent();
  atomic_store(&t->in_use, 0);
}

void loopsan__hist_flush_all(void) {
  for (struct hist_table *t = atomic_load(&tables); t; t = t->next)
    if (atomic_load(&t->in_use))
      emit_table(t);
  forget_recent(); /* (this thread's: its next count marks its table dirty again) */
}

void loopsan__hist_atfork_child(void) {
  /* The child counts its own dispatches; other threads' tables are free. */
  for (struct hist_table *t = atomic_load(&tables); t; t = t->next) {
    memset(t->s, 0, sizeof t->s);
    t->dirty = 0;
    if (t != my_hist)
      atomic_store(&t->in_use, 0);
  }
  forget_recent();
}
