/* Keeping the trace bounded in record mode "findings": when a buffer is
 * written out, the records of objects whose whole life lies inside it and
 * ended well (started or used, then closed or completed, no slow dispatch,
 * no failed call) are left out, and of an object's START, STOP, FIRED,
 * USE and CALLBACK records only the last of each (the rules read no
 * other). Nothing could ever be said about them, and
 * a server handling a request a millisecond would otherwise write a
 * hundred bytes per request for as long as it runs. Objects that live
 * across write-outs, or end badly, keep every record. Stacks are always
 * kept: they are shared by id with other objects. What a record says of
 * its object, and so what may go, is declared in common/evidence.h, which
 * the analyzer's rules rely on.
 *
 * Runs at write-out only (every 64 KiB or second), never per record. */
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "common/evidence.h"
#include "preload/compact.h"
#include "preload/shim.h"

#define SET_SIZE 8192u /* > records in a buffer (64 KiB / 24 B) */

struct obj_mark {
  uint64_t obj;
  uint32_t gen; /* valid only in the pass with this number: no clearing */
  uint8_t marks;
  uint16_t left[LOOPSAN_SUPERSEDE_KINDS]; /* records of each kind not yet passed */
  uint64_t parent; /* OBJ_NEW's: the object whose callback made it */
};

static pthread_mutex_t compact_lock = PTHREAD_MUTEX_INITIALIZER;
static struct obj_mark *set;
/* This pass's marks, in the order first seen (the async-chain walk visits
 * them, not the whole set), and each record's mark (the second pass reads
 * it instead of hashing again). */
static uint32_t *used;
static uint32_t n_used;
static struct obj_mark **rec_mark;
static unsigned char *out_buf;
static size_t out_cap;
static uint32_t gen;

/* Objects other threads found evidence on (a wrong-thread call): their
 * records are kept by whichever buffer holds them. Rare, so a small set. */
#define KEEP_MAX 1024
static _Atomic uint64_t keep_ids[KEEP_MAX];
static _Atomic unsigned n_keep;

void loopsan__compact_keep(uint64_t obj) {
  unsigned i = atomic_fetch_add(&n_keep, 1);
  if (i < KEEP_MAX)
    atomic_store(&keep_ids[i], obj);
}

static int must_keep(uint64_t obj) {
  unsigned n = atomic_load(&n_keep);
  for (unsigned i = 0; i < n && i < KEEP_MAX; i++)
    if (atomic_load(&keep_ids[i]) == obj)
      return 1;
  return 0;
}

static struct obj_mark *mark_of(uint64_t obj) {
  uint32_t i = (uint32_t)((obj * 0x9E3779B97F4A7C15u) >> 51) & (SET_SIZE - 1);
  for (uint32_t n = 0; n < SET_SIZE; n++, i = (i + 1) & (SET_SIZE - 1)) {
    if (set[i].gen != gen) {
      set[i].obj = obj;
      set[i].gen = gen;
      set[i].marks = 0;
      set[i].parent = 0;
      memset(set[i].left, 0, sizeof set[i].left);
      used[n_used++] = i; /* (at most SET_SIZE: one per slot) */
      return &set[i];
    }
    if (set[i].obj == obj)
      return &set[i];
  }
  return NULL;
}

/* OBJ's mark in this pass, or NULL (never adds one). */
static struct obj_mark *find_mark(uint64_t obj) {
  uint32_t i = (uint32_t)((obj * 0x9E3779B97F4A7C15u) >> 51) & (SET_SIZE - 1);
  for (uint32_t n = 0; n < SET_SIZE; n++, i = (i + 1) & (SET_SIZE - 1)) {
    if (set[i].gen != gen)
      return NULL;
    if (set[i].obj == obj)
      return &set[i];
  }
  return NULL;
}

/* The record at *OFF of the LEN bytes at IN, advancing *OFF past it; NULL
 * at the end (the writer's own records are always well formed). */
static const struct loopsan_record_header *next_record(const unsigned char *in, size_t len,
                                                       size_t *off) {
  if (*off + sizeof(struct loopsan_record_header) > len)
    return NULL;
  const struct loopsan_record_header *h = (const void *)(in + *off);
  if (h->size < sizeof *h || *off + h->size > len)
    return NULL;
  *off += h->size;
  return h;
}

size_t loopsan__compact(const unsigned char *in, size_t len, const unsigned char **out) {
  *out = in;
  if (loopsan__state.record_all || len == 0)
    return len;
  pthread_mutex_lock(&compact_lock);
  if (!set) {
    size_t bytes = SET_SIZE * (sizeof *set + sizeof *used + sizeof *rec_mark);
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) {
      set = m;
      rec_mark = (struct obj_mark **)(void *)(set + SET_SIZE);
      used = (uint32_t *)(void *)(rec_mark + SET_SIZE);
    }
  }
  if (out_cap < len) {
    if (out_buf)
      munmap(out_buf, out_cap);
    out_cap = (len + 0xffffu) & ~(size_t)0xffffu;
    void *m = mmap(NULL, out_cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    out_buf = m == MAP_FAILED ? NULL : m;
    if (!out_buf)
      out_cap = 0;
  }
  if (!set || !out_buf) {
    pthread_mutex_unlock(&compact_lock);
    return len;
  }
  if (++gen == 0) { /* wrapped: every stale entry must look stale */
    memset(set, 0, SET_SIZE * sizeof *set);
    gen = 1;
  }
  int any = 0;
  n_used = 0;
  size_t nrec = 0; /* records seen; their marks in rec_mark while it has room */
  const struct loopsan_record_header *h;
  for (size_t off = 0; (h = next_record(in, len, &off)) != NULL;) {
    uint8_t mark = 0;
    uint64_t obj = loopsan_record_evidence(h, &mark);
    struct obj_mark *m = obj ? mark_of(obj) : NULL;
    if (nrec < SET_SIZE)
      rec_mark[nrec] = m;
    nrec++;
    if (m) {
      if (!m->marks && must_keep(obj)) /* first record of it in this buffer */
        m->marks = LOOPSAN_EV_KEEP;
      m->marks |= mark;
      any |= loopsan_evidence_droppable(m->marks);
      int k = loopsan_record_supersede_kind(h);
      if (k >= 0 && m->left[k] < UINT16_MAX && ++m->left[k] > 1)
        any = 1; /* a START superseded by a later one, ... */
      if (h->type == LOOPSAN_REC_OBJ_NEW && h->size >= sizeof(struct loopsan_rec_obj_new))
        m->parent = ((const struct loopsan_rec_obj_new *)(const void *)h)->parent;
    } else if (obj) {
      pthread_mutex_unlock(&compact_lock); /* set full: keep everything */
      return len;
    }
  }
  if (!any) {
    pthread_mutex_unlock(&compact_lock);
    return len;
  }
  /* An object kept has its async chain kept: the objects whose callbacks
   * made it, as far as this buffer holds them (its creation stack stops
   * at their callback; theirs continue it). */
  for (int level = 0; level < 4; level++) {
    int changed = 0;
    for (uint32_t u = n_used; u-- > 0;) { /* children first: one level climbs a chain */
      struct obj_mark *m = &set[used[u]];
      if (!m->parent || loopsan_evidence_droppable(m->marks))
        continue;
      struct obj_mark *p = find_mark(m->parent);
      if (p && !(p->marks & LOOPSAN_EV_KEEP)) {
        p->marks |= LOOPSAN_EV_KEEP;
        changed = 1;
      }
    }
    if (!changed)
      break;
  }
  size_t n = 0, j = 0;
  for (size_t off = 0; (h = next_record(in, len, &off)) != NULL; j++) {
    struct obj_mark *m;
    if (j < SET_SIZE) {
      m = rec_mark[j];
    } else {
      uint8_t mark = 0;
      uint64_t obj = loopsan_record_evidence(h, &mark);
      m = obj ? mark_of(obj) : NULL;
    }
    if (m && loopsan_evidence_droppable(m->marks))
      continue;
    int k = m ? loopsan_record_supersede_kind(h) : -1;
    if (k >= 0 && m->left[k]-- > 1)
      continue; /* not the last of its kind for this object */
    memcpy(out_buf + n, h, h->size);
    n += h->size;
  }
  *out = out_buf;
  return n; /* the caller writes it, then calls loopsan__compact_done() */
}

void loopsan__compact_done(const unsigned char *out) {
  if (out == out_buf)
    pthread_mutex_unlock(&compact_lock);
}

void loopsan__compact_atfork_child(void) { pthread_mutex_init(&compact_lock, NULL); }
