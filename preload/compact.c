/* Keeping the trace bounded in record mode "findings": when a buffer is
 * written out, the records of objects whose whole life lies inside it and
 * ended well (started or used, then closed or completed, no slow dispatch,
 * no failed call) are left out. Nothing could ever be said about them, and
 * a server handling a request a millisecond would otherwise write a
 * hundred bytes per request for as long as it runs. Objects that live
 * across write-outs, or end badly, keep every record. Stacks are always
 * kept: they are shared by id with other objects.
 *
 * Runs at write-out only (every 64 KiB or second), never per record. */
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "preload/compact.h"
#include "preload/shim.h"

#define SET_SIZE 8192u /* > records in a buffer (64 KiB / 24 B) */

enum { SEEN_NEW = 1, SEEN_USE = 2, SEEN_END = 4, SEEN_BAD = 8 };

struct obj_mark {
  uint64_t obj;
  uint32_t gen; /* valid only in the pass with this number: no clearing */
  uint8_t marks;
};

static pthread_mutex_t compact_lock = PTHREAD_MUTEX_INITIALIZER;
static struct obj_mark *set;
static unsigned char *out_buf;
static size_t out_cap;
static uint32_t gen;

static struct obj_mark *mark_of(uint64_t obj) {
  uint32_t i = (uint32_t)((obj * 0x9E3779B97F4A7C15u) >> 51) & (SET_SIZE - 1);
  for (uint32_t n = 0; n < SET_SIZE; n++, i = (i + 1) & (SET_SIZE - 1)) {
    if (set[i].gen != gen) {
      set[i].obj = obj;
      set[i].gen = gen;
      set[i].marks = 0;
      return &set[i];
    }
    if (set[i].obj == obj)
      return &set[i];
  }
  return NULL;
}

/* The object a record is about, and what it says of it. */
static uint64_t record_object(const struct loopsan_record_header *h, uint8_t *mark) {
  switch (h->type) {
  case LOOPSAN_REC_OBJ_NEW:
    *mark = SEEN_NEW;
    return ((const struct loopsan_rec_obj_new *)(const void *)h)->obj;
  case LOOPSAN_REC_OBJ_OP: {
    uint32_t op = LOOPSAN_OP_OF(h->aux);
    *mark = op == LOOPSAN_OP_CLOSED || op == LOOPSAN_OP_COMPLETE ? SEEN_END
            : op == LOOPSAN_OP_CLOSE                             ? 0
                                                                 : SEEN_USE;
    /* A request completing with an error may be worth a finding later. */
    if (op == LOOPSAN_OP_COMPLETE && LOOPSAN_ARG_OF(h->aux) < 0)
      *mark |= SEEN_BAD;
    return ((const struct loopsan_rec_obj_op *)(const void *)h)->obj;
  }
  case LOOPSAN_REC_DISPATCH:
    *mark = SEEN_BAD;
    return ((const struct loopsan_rec_dispatch *)(const void *)h)->obj;
  case LOOPSAN_REC_API_ERROR:
    *mark = SEEN_BAD;
    return ((const struct loopsan_rec_api_error *)(const void *)h)->obj;
  default: return 0;
  }
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

static int droppable(uint8_t m) {
  return (m & (SEEN_NEW | SEEN_END)) == (SEEN_NEW | SEEN_END) && (m & SEEN_USE) && !(m & SEEN_BAD);
}

size_t loopsan__compact(const unsigned char *in, size_t len, const unsigned char **out) {
  *out = in;
  if (loopsan__state.record_all || len == 0)
    return len;
  pthread_mutex_lock(&compact_lock);
  if (!set) {
    void *m = mmap(NULL, SET_SIZE * sizeof *set, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    set = m == MAP_FAILED ? NULL : m;
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
  const struct loopsan_record_header *h;
  for (size_t off = 0; (h = next_record(in, len, &off)) != NULL;) {
    uint8_t mark = 0;
    uint64_t obj = record_object(h, &mark);
    struct obj_mark *m = obj ? mark_of(obj) : NULL;
    if (m) {
      m->marks |= mark;
      any |= droppable(m->marks);
    } else if (obj) {
      pthread_mutex_unlock(&compact_lock); /* set full: keep everything */
      return len;
    }
  }
  if (!any) {
    pthread_mutex_unlock(&compact_lock);
    return len;
  }
  size_t n = 0;
  for (size_t off = 0; (h = next_record(in, len, &off)) != NULL;) {
    uint8_t mark = 0;
    uint64_t obj = record_object(h, &mark);
    if (!obj || !droppable(mark_of(obj)->marks)) {
      memcpy(out_buf + n, h, h->size);
      n += h->size;
    }
  }
  *out = out_buf;
  return n; /* the caller writes it, then calls loopsan__compact_done() */
}

void loopsan__compact_done(const unsigned char *out) {
  if (out == out_buf)
    pthread_mutex_unlock(&compact_lock);
}

void loopsan__compact_atfork_child(void) { pthread_mutex_init(&compact_lock, NULL); }
