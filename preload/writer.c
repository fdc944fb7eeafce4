/* The trace writer: per-thread record buffers, written out as CRC-checked
 * chunks.
 *
 * A thread appends records to its own buffer without any lock: it copies the
 * record, then publishes the new end with a release store. Each buffer is a
 * shared mapping of a spill file (common/trace_format.h), so records are in
 * the kernel's hands the moment they are published: a process killed with
 * SIGKILL, even one stuck in a callback, loses nothing but a record being
 * copied. Buffers are written out to the trace file (one writev per chunk)
 * when one fills up, at most once a second when its thread is about to
 * block in the kernel (loopsan__before_wait, from the interposed
 * epoll_wait/poll), at thread exit, and at exit, _exit and exec. A
 * per-buffer mutex is taken only for those write-outs, never per record.
 * There is no helper thread: a second thread alone makes every epoll_wait of
 * the program slower (the kernel's files table is then shared).
 *
 * The spill header also holds what its thread is doing: the dispatches in
 * progress and how many it has made (shim.h, loopsan__dispatch_begin). At
 * exit, _exit and exec they become UNFINISHED records and the COUNTS
 * record; after SIGKILL the analyzer reads them from the spill file. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "preload/compact.h"
#include "preload/shim.h"
#include "preload/tracefile.h"

#define PAGE 4096u
#define REGION_SIZE (64u * 1024u + PAGE) /* spill header + record data */
#define TBUF_CAPACITY (REGION_SIZE - LOOPSAN_SPILL_DATA_OFFSET)
/* A buffer's mapping: the struct tbuf (a page), the thread's stack-reuse
 * cache (stacks.c), then the region (which a spill file may replace). */
#define TBUF_HEAD (PAGE + LOOPSAN_STACK_REUSE_BYTES)

struct tbuf {
  pthread_mutex_t lock; /* taken only to write the buffer out */
  _Atomic int in_use;   /* owned by a live thread */
  int attached;         /* 1: region maps a spill file; -1: never (scratch, or failed) */
  uint32_t tid;
  uint64_t last_check; /* owner's clock at its last periodic write-out */
  uint64_t first_new;  /* id of the first object created in the unwritten part */
  int may_compact;     /* an object created there also ended there */
  struct tbuf *next;   /* registry list, push-only */
  /* Short DISPATCH records (trace_format.h): write-outs so far, and what
   * the thread's dispatch records of the current chunk set (stamps are
   * chunk + 1, so that zeroed memory is no chunk's) */
  _Atomic uint64_t chunk;
  uint64_t disp_ts, disp_stamp;
  struct {
    uint64_t obj, cb, stamp;
    uint32_t slot;
  } pairs[LOOPSAN_DISPATCH_PAIRS];
  struct loopsan_spill_header *hdr; /* the region: header, then data */
  unsigned char *data;
};

static struct {
  pthread_mutex_t open_lock;
  _Atomic(struct tbuf *) buffers;
  struct tbuf *scratch; /* the preamble of a new trace file is built here */
  _Atomic uint64_t lost;
  _Atomic uint64_t last_periodic;
  pthread_key_t key;
  int key_ok;
  int closed;        /* after exit's final write-out */
  int pending_open;  /* a forked child opens its trace when it first records */
  _Atomic int ready; /* the trace file exists and starts with its preamble */
} W = {.open_lock = PTHREAD_MUTEX_INITIALIZER};

static LOOPSAN_TLS struct tbuf *my_buf;
/* (shim.h; an empty histogram cache entry points at a slot nothing
 * matches, histograms.c) */
#define NO_SITE (&loopsan__hist_no_site)
/* (and an entry of the lookup cache never filled has a slot whose counter
 * no entry's matches: shim.h) */
#define NO_SLOT {.slot = (struct loopsan_obj_slot *)&loopsan__obj_no_slot}
LOOPSAN_TLS struct loopsan_thread_hot loopsan__hot = {
    .obj_seen = {NO_SLOT, NO_SLOT, NO_SLOT, NO_SLOT, NO_SLOT, NO_SLOT, NO_SLOT, NO_SLOT},
    .hist_cache = {NO_SITE, NO_SITE, NO_SITE, NO_SITE, NO_SITE, NO_SITE, NO_SITE, NO_SITE}};
_Static_assert(LOOPSAN_HIST_CACHE == 8 && LOOPSAN_OBJ_SEEN == 8, "one NO_SITE, NO_SLOT an entry");
#undef NO_SITE
#undef NO_SLOT
static LOOPSAN_TLS int in_writer; /* our own write(2) must not re-enter */
static LOOPSAN_TLS int emitting;  /* a record half written (a signal handler must wait) */

int loopsan__writer_busy(void) { return in_writer || emitting; }

static inline uint32_t buf_end(const struct tbuf *b) {
  return __atomic_load_n(&b->hdr->end, __ATOMIC_ACQUIRE);
}
static inline uint32_t buf_written(const struct tbuf *b) {
  return __atomic_load_n(&b->hdr->written, __ATOMIC_RELAXED);
}

static void region_init(struct tbuf *b, uint32_t tid) {
  memcpy(b->hdr->magic, LOOPSAN_SPILL_MAGIC, 8);
  b->hdr->version = LOOPSAN_TRACE_VERSION;
  b->hdr->capacity = TBUF_CAPACITY;
  b->hdr->tid = tid;
  /* A recycled buffer keeps its dispatch counts (they are the process's);
   * what its last thread was inside of is not the new thread's. */
  memset(b->hdr->inflight, 0, sizeof b->hdr->inflight);
  __atomic_store_n(&b->hdr->depth, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&b->hdr->written, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&b->hdr->end, 0, __ATOMIC_RELEASE);
}

/* Put a fresh region of KIND (a spill file's shared mapping, or anonymous
 * memory) in place of B's, atomically (mremap), with the current contents:
 * at no moment is the buffer unmapped. */
static int region_replace(struct tbuf *b, int fd) {
  void *m = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE,
                 fd >= 0 ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS, fd, 0);
  if (m == MAP_FAILED)
    return -1;
  memcpy(m, b->hdr, REGION_SIZE);
  if (mremap(m, REGION_SIZE, REGION_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, b->hdr) == MAP_FAILED) {
    munmap(m, REGION_SIZE);
    return -1;
  }
  return 0;
}

static void tbuf_attach(struct tbuf *b) {
  unsigned index;
  int fd = loopsan__spill_create(REGION_SIZE, &index);
  pthread_mutex_lock(&b->lock);
  b->attached = fd >= 0 && region_replace(b, fd) == 0 ? 1 : -1;
  pthread_mutex_unlock(&b->lock);
  if (fd >= 0)
    close(fd);
}

/* --- writing out ------------------------------------------------------------ */

static void write_preamble(void);

/* Chunks may go to the file only once its preamble is there: until then
 * other threads wait here while one creates it. */
static int ensure_open(void) {
  if (LOOPSAN_LIKELY(atomic_load_explicit(&W.ready, memory_order_acquire)))
    return 0;
  if (!W.pending_open)
    return -1;
  pthread_mutex_lock(&W.open_lock);
  if (W.pending_open && loopsan__trace_create() == 0) {
    W.pending_open = 0;
    write_preamble();
    atomic_store_explicit(&W.ready, 1, memory_order_release);
  }
  pthread_mutex_unlock(&W.open_lock);
  return atomic_load(&W.ready) ? 0 : -1;
}

/* Write out [written, end) of B. OWNER: the calling thread owns B and may
 * rewind it; others only advance `written`. */
static void tbuf_write_out(struct tbuf *b, int owner) {
  int saved = errno;
  in_writer++;
  int open = b == W.scratch || ensure_open() == 0; /* the preamble itself goes straight out */
  pthread_mutex_lock(&b->lock);
  uint32_t end = buf_end(b), written = buf_written(b);
  if (end > written) {
    const unsigned char *out = b->data + written;
    size_t len = end - written;
    if (b->may_compact) /* else nothing could be left out: skip the scan */
      len = loopsan__compact(b->data + written, len, &out);
    if (!open || (len && loopsan__trace_write_chunk(b->tid, out, (uint32_t)len) != 0))
      atomic_fetch_add(&W.lost, 1);
    loopsan__compact_done(out);
    __atomic_store_n(&b->hdr->written, end, __ATOMIC_RELEASE);
    atomic_fetch_add_explicit(&b->chunk, 1, memory_order_relaxed); /* a chunk ends here */
  }
  b->first_new = 0;
  b->may_compact = 0;
  if (owner) {
    /* end first: [written, end) never looks like unwritten records. */
    __atomic_store_n(&b->hdr->end, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&b->hdr->written, 0, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&b->lock);
  in_writer--;
  errno = saved;
}

/* --- buffers ---------------------------------------------------------------- */

static void tbuf_release(void *arg) {
  struct tbuf *b = arg;
  loopsan__hist_thread_exit(); /* its callback durations, before its last write-out */
  tbuf_write_out(b, 1);
  my_buf = NULL;
  loopsan__hot.region = NULL;
  atomic_store(&b->in_use, 0);
}

static struct tbuf *tbuf_new(void) {
  unsigned char *mem = mmap(NULL, TBUF_HEAD + REGION_SIZE, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED)
    return NULL;
  struct tbuf *b = (struct tbuf *)(void *)mem;
  pthread_mutex_init(&b->lock, NULL);
  b->hdr = (struct loopsan_spill_header *)(void *)(mem + TBUF_HEAD);
  b->data = mem + TBUF_HEAD + LOOPSAN_SPILL_DATA_OFFSET;
  return b;
}

static struct tbuf *tbuf_acquire(void) {
  struct tbuf *b;
  for (b = atomic_load(&W.buffers); b; b = b->next) {
    int expected = 0;
    if (atomic_compare_exchange_strong(&b->in_use, &expected, 1))
      break;
  }
  if (!b) {
    if (!(b = tbuf_new()))
      return NULL;
    atomic_store(&b->in_use, 1);
    struct tbuf *head = atomic_load(&W.buffers);
    do
      b->next = head;
    while (!atomic_compare_exchange_weak(&W.buffers, &head, b));
  }
  if (b->tid) /* a dead thread's: its stack addresses mean nothing here */
    memset((unsigned char *)b + PAGE, 0, LOOPSAN_STACK_REUSE_BYTES);
  b->tid = loopsan__tid();
  region_init(b, b->tid);
  atomic_fetch_add(&b->chunk, 1); /* (another thread's dispatch records are not its) */
  b->last_check = loopsan__now();
  loopsan__wait_seen_end = 0;
  loopsan__wait_due = b->last_check + loopsan__clock_ticks_per_sec();
  my_buf = b;
  loopsan__hot.region = b->hdr;
  if (W.key_ok)
    pthread_setspecific(W.key, b); /* write out and recycle at thread exit */
  return b;
}

/* Name the thread in the trace (for reports of multi-threaded programs). */
static void emit_thread_record(void) {
  char name[16] = {0};
  prctl(PR_GET_NAME, name, 0, 0, 0);
  struct loopsan_rec_thread r = {.tid = loopsan__tid(), .name_len = (uint32_t)strnlen(name, 16)};
  loopsan__emit_tail(LOOPSAN_REC_THREAD, &r, sizeof r, name, r.name_len, NULL, 0);
}

void loopsan__note_lost(uint32_t reason, uint64_t count) {
  struct loopsan_rec_lost r = {.h.aux = reason, .records = count};
  loopsan__emit(LOOPSAN_REC_LOST, &r, sizeof r);
}

void loopsan__emit_dispatch(struct loopsan_rec_dispatch *r) {
  struct tbuf *b = my_buf;
  uint32_t slot = r->h.aux;
  uint32_t i = loopsan_dispatch_pair_index(r->obj, r->cb, slot);
  if (loopsan__state.record_all && b && !in_writer && !emitting) {
    uint64_t stamp = atomic_load_explicit(&b->chunk, memory_order_relaxed) + 1;
    uint64_t delta = r->ts - b->disp_ts;
    if (b->disp_stamp == stamp && b->pairs[i].stamp == stamp && b->pairs[i].obj == r->obj &&
        b->pairs[i].cb == r->cb && b->pairs[i].slot == slot && slot <= 0xffu &&
        r->ts >= b->disp_ts && delta <= UINT32_MAX && r->duration <= UINT32_MAX &&
        __atomic_load_n(&b->hdr->end, __ATOMIC_RELAXED) +
                sizeof(struct loopsan_rec_dispatch_short) <=
            TBUF_CAPACITY) { /* (so that it lands in this chunk) */
      struct loopsan_rec_dispatch_short sr = {
          .h.aux = slot | i << 8, .ts_delta = (uint32_t)delta, .duration = (uint32_t)r->duration};
      loopsan__emit(LOOPSAN_REC_DISPATCH_SHORT, &sr, sizeof sr);
      b->disp_ts = r->ts;
      return;
    }
  }
  loopsan__emit(LOOPSAN_REC_DISPATCH, r, sizeof *r);
  b = my_buf; /* (the first record of a thread gives it its buffer) */
  if (b && !in_writer && !emitting) {
    uint64_t stamp = atomic_load_explicit(&b->chunk, memory_order_relaxed) + 1;
    b->pairs[i].obj = r->obj;
    b->pairs[i].cb = r->cb;
    b->pairs[i].slot = slot;
    b->pairs[i].stamp = stamp;
    b->disp_ts = r->ts;
    b->disp_stamp = stamp;
  }
}

/* Object ids only grow: an object that ends with an id at or above the
 * first one made in B's unwritten records may have lived entirely inside
 * them (compaction's cue). H's type and size are set. */
static inline void note_for_compaction(struct tbuf *b, const struct loopsan_record_header *h) {
  if (h->type == LOOPSAN_REC_OBJ_NEW) {
    if (!b->first_new)
      b->first_new = ((const struct loopsan_rec_obj_new *)(const void *)h)->obj;
  } else if (h->type == LOOPSAN_REC_OBJ_OP && b->first_new) {
    uint32_t op = LOOPSAN_OP_OF(h->aux);
    if ((op == LOOPSAN_OP_CLOSED || op == LOOPSAN_OP_COMPLETE) &&
        ((const struct loopsan_rec_obj_op *)(const void *)h)->obj >= b->first_new)
      b->may_compact = 1;
  }
}

void loopsan__emit_tail(uint16_t type, void *rec, size_t size, const void *tail1, size_t len1,
                        const void *tail2, size_t len2) {
  size_t total = (size + len1 + len2 + 7u) & ~(size_t)7u;
  if (in_writer || emitting) /* a crash handler's record inside the writer's */
    return;
  if (total > LOOPSAN_RECORD_MAX_SIZE || total > TBUF_CAPACITY) {
    loopsan__note_lost(LOOPSAN_LOST_RECORD_TOO_BIG, 1);
    return;
  }
  struct tbuf *b = my_buf;
  if (LOOPSAN_UNLIKELY(!b || b->attached == 0)) { /* (errno kept: callers rely on it) */
    int saved = errno;
    if (!b) {
      b = tbuf_acquire();
      if (b)
        emit_thread_record();
    }
    if (b && b->attached == 0) {
      /* A forked child's first record: its trace and spill files are made
       * now, so that from here on a SIGKILL loses nothing either. */
      if (W.pending_open)
        ensure_open();
      if (atomic_load_explicit(&W.ready, memory_order_acquire))
        tbuf_attach(b);
    }
    errno = saved;
    if (!b)
      return;
  }
  emitting = 1;
  uint32_t pos = __atomic_load_n(&b->hdr->end, __ATOMIC_RELAXED);
  if (pos + total > TBUF_CAPACITY) {
    tbuf_write_out(b, 1);
    pos = 0;
  }
  struct loopsan_record_header *h = rec;
  h->type = type;
  h->size = (uint16_t)total; /* h->aux is the caller's */
  note_for_compaction(b, h);
  unsigned char *dst = b->data + pos;
  memcpy(dst, rec, size);
  if (len1)
    memcpy(dst + size, tail1, len1);
  if (len2)
    memcpy(dst + size + len1, tail2, len2);
  size_t pad = total - size - len1 - len2;
  if (pad) /* (most records have none: no call for them) */
    memset(dst + size + len1 + len2, 0, pad);
  __atomic_store_n(&b->hdr->end, pos + (uint32_t)total, __ATOMIC_RELEASE);
  emitting = 0;
  if (LOOPSAN_UNLIKELY(W.closed))
    tbuf_write_out(b, 1); /* after exit's final write-out nothing else will */
}

/* The common case, with nothing to decide: a thread with its buffer
 * attached, room in it, a record of whole words. A frame that saves no
 * registers, where emit_tail's rare cases cost every record 20 more. */
void loopsan__emit(uint16_t type, void *rec, size_t size) {
  struct tbuf *b = my_buf;
  if (LOOPSAN_LIKELY(b && !in_writer && !emitting && b->attached != 0 && !(size & 7u) &&
                     !W.closed)) {
    emitting = 1; /* before reading the end: a signal handler's record waits */
    atomic_signal_fence(memory_order_seq_cst);
    uint32_t pos = __atomic_load_n(&b->hdr->end, __ATOMIC_RELAXED);
    if (LOOPSAN_LIKELY(pos + size <= TBUF_CAPACITY)) {
      struct loopsan_record_header *h = rec;
      h->type = type;
      h->size = (uint16_t)size;
      note_for_compaction(b, h);
      memcpy(b->data + pos, rec, size);
      __atomic_store_n(&b->hdr->end, pos + (uint32_t)size, __ATOMIC_RELEASE);
      atomic_signal_fence(memory_order_seq_cst);
      emitting = 0;
      return;
    }
    atomic_signal_fence(memory_order_seq_cst);
    emitting = 0;
  }
  loopsan__emit_tail(type, rec, size, NULL, 0, NULL, 0);
}

void *loopsan__stack_reuse_area(void) {
  struct tbuf *b = my_buf;
  return b ? (unsigned char *)b + PAGE : NULL;
}

struct loopsan_spill_header *loopsan__region_for_thread(void) {
  if (!my_buf && !in_writer && tbuf_acquire())
    emit_thread_record();
  return my_buf ? my_buf->hdr : NULL;
}

struct loopsan_spill_header *loopsan__region_or_scratch(void) {
  static LOOPSAN_TLS struct loopsan_spill_header scratch;
  struct loopsan_spill_header *h = loopsan__region_for_thread();
  return h ? h : &scratch;
}

void loopsan__writer_dispatch_totals(uint64_t totals[LOOPSAN_LIBRARY_SLOTS]) {
  memset(totals, 0, LOOPSAN_LIBRARY_SLOTS * sizeof totals[0]);
  for (struct tbuf *b = atomic_load(&W.buffers); b; b = b->next)
    for (unsigned l = 0; l < LOOPSAN_LIBRARY_SLOTS; l++)
      totals[l] += __atomic_load_n(&b->hdr->dispatches[l], __ATOMIC_RELAXED);
}

/* Callbacks still running as the process ends (one called exit(), or the
 * main thread exits while a loop thread is stuck): say so, each with the
 * thread that runs it, since nothing else will. */
static void emit_unfinished(uint32_t how) {
  uint64_t now = loopsan__now();
  for (struct tbuf *b = atomic_load(&W.buffers); b; b = b->next) {
    if (!atomic_load(&b->in_use))
      continue;
    uint32_t depth = __atomic_load_n(&b->hdr->depth, __ATOMIC_ACQUIRE);
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    for (uint32_t i = 0; i < depth && i < LOOPSAN_INFLIGHT_MAX; i++) {
      struct loopsan_inflight f = b->hdr->inflight[i];
      if (!f.obj)
        continue;
      /* On the exiting thread, a dispatch whose frame is not below us is
       * not what is running: a greenlet (gevent) switched away from inside
       * that callback, and the program ended elsewhere. */
      if (b == my_buf && loopsan__hot.dispatch_frame[i] && loopsan__hot.dispatch_frame[i] < here)
        continue;
      struct loopsan_rec_unfinished r = {.h.aux = f.slot,
                                         .ts = f.t0,
                                         .end_ts = now,
                                         .obj = f.obj,
                                         .cb = f.cb,
                                         .tid = b->tid,
                                         .library = (uint16_t)f.library,
                                         .how = (uint16_t)how};
      loopsan__emit(LOOPSAN_REC_UNFINISHED, &r, sizeof r);
    }
  }
}

LOOPSAN_TLS uint32_t loopsan__waits_unchecked, loopsan__wait_budget_ms;
LOOPSAN_TLS uint64_t loopsan__wait_seen_end, loopsan__wait_due;

void loopsan__before_wait(int timeout_ms) {
  struct tbuf *b = my_buf;
  loopsan__wait_budget_ms = 0;
  if (LOOPSAN_LIKELY(!b) || in_writer || emitting ||
      (buf_end(b) == buf_written(b) && !loopsan__hist_dirty()))
    return; /* nothing of ours is waiting (or a signal handler's wait inside a record) */
  (void)timeout_ms;
  /* the end of the dispatch just before, else (none since) the clock */
  uint64_t now = loopsan__hot.last_end;
  if (now == loopsan__wait_seen_end)
    now = loopsan__now();
  loopsan__wait_seen_end = loopsan__hot.last_end;
  uint64_t second = loopsan__clock_ticks_per_sec();
  if (now - b->last_check < second)
    return;
  b->last_check = now;
  loopsan__wait_due = now + second;
  int saved = errno;
  /* Once a second for the whole process: a fresh clock calibration, and
   * the module map if dlopen changed it. */
  uint64_t last = atomic_load(&W.last_periodic);
  if (now - last >= second && atomic_compare_exchange_strong(&W.last_periodic, &last, now)) {
    loopsan__clock_emit();
    loopsan__modules_emit_if_changed(0);
    loopsan__emit_counts();
  }
  loopsan__hist_flush_mine();
  tbuf_write_out(b, 1);
  errno = saved;
}

void loopsan__flush_all(void) {
  for (struct tbuf *b = atomic_load(&W.buffers); b; b = b->next) {
    if (b == my_buf)
      tbuf_write_out(b, 1);
    else if (atomic_load(&b->in_use))
      tbuf_write_out(b, 0);
  }
  uint64_t lost = atomic_exchange(&W.lost, 0);
  if (lost) {
    /* Say so in the trace; if the file itself is failing this is lost too. */
    loopsan__note_lost(LOOPSAN_LOST_WRITE_FAILED, lost);
    if (my_buf)
      tbuf_write_out(my_buf, 1);
  }
}

/* --- the process's trace file ---------------------------------------------- */

static void emit_process_record(void) {
  static char exe[LOOPSAN_PATH_MAX];
  static char args[32768];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = '\0';
  size_t args_len = 0;
  uint32_t argc = 0;
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t r;
    while (args_len < sizeof args && (r = read(fd, args + args_len, sizeof args - args_len)) > 0)
      args_len += (size_t)r;
    close(fd);
  }
  for (size_t i = 0; i < args_len; i++)
    argc += args[i] == '\0';
  struct loopsan_rec_process r = {
      .format_version = LOOPSAN_TRACE_VERSION,
      .pid = (uint32_t)getpid(),
      .ppid = (uint32_t)getppid(),
      .record_mode = (uint32_t)loopsan__state.opts.record_mode,
      .slow_ns = (uint64_t)loopsan__state.opts.slow_ms * 1000000u,
      .blocking_ns = (uint64_t)loopsan__state.opts.blocking_ms * 1000000u,
      .stack_depth = loopsan__state.opts.stack_depth,
      .exe_len = (uint32_t)strlen(exe),
      .argv_len = (uint32_t)args_len,
      .argc = argc,
  };
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  r.realtime_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  /* Keep the record within the 64 KiB record limit. */
  if (sizeof r + r.exe_len + r.argv_len > LOOPSAN_RECORD_MAX_SIZE)
    r.argv_len = (uint32_t)(LOOPSAN_RECORD_MAX_SIZE - sizeof r - r.exe_len);
  loopsan__emit_tail(LOOPSAN_REC_PROCESS, &r, sizeof r, exe, r.exe_len, args, r.argv_len);
}

/* The first chunk of a trace: the process, the thread, a clock pair, the
 * type names and the module map. Built in a buffer of its own, so that it
 * comes first even when a forked child opens its trace lazily with records
 * already buffered. Called with the file just created. */
static void write_preamble(void) {
  if (!W.scratch && !(W.scratch = tbuf_new()))
    return;
  struct tbuf *saved = my_buf;
  int saved_in_writer = in_writer;
  struct tbuf *b = W.scratch;
  b->attached = -1; /* never a spill file */
  b->tid = loopsan__tid();
  region_init(b, b->tid);
  my_buf = b;
  in_writer = 0;
  emit_process_record();
  emit_thread_record();
  loopsan__clock_emit();
  loopsan__emit_types();
  loopsan__modules_emit_if_changed(1);
  tbuf_write_out(b, 1);
  my_buf = saved;
  in_writer = saved_in_writer;
}

int loopsan__writer_open(void) {
  if (!W.key_ok && pthread_key_create(&W.key, tbuf_release) == 0)
    W.key_ok = 1;
  if (loopsan__trace_create() != 0)
    return -1;
  W.pending_open = 0;
  W.closed = 0;
  write_preamble();
  atomic_store_explicit(&W.ready, 1, memory_order_release);
  return 0;
}

void loopsan__writer_close(uint32_t how, int status) {
  if (!atomic_load(&W.ready)) {
    /* A forked child that recorded nothing leaves no trace at all. */
    int any = 0;
    for (struct tbuf *b = atomic_load(&W.buffers); b && !any; b = b->next)
      any = atomic_load(&b->in_use) && buf_end(b) > buf_written(b);
    if (!W.pending_open || !any)
      return;
  }
  /* What is pending goes first: should the file system be full, the last
   * records below still fit in the room the trace file keeps for them. */
  loopsan__flush_all();
  loopsan__trace_final();
  emit_unfinished(how);
  loopsan__hist_flush_all();
  struct loopsan_rec_end r = {.ts = loopsan__now(), .how = how, .status = status};
  loopsan__clock_emit();
  loopsan__modules_emit_if_changed(0);
  loopsan__emit_counts();
  loopsan__emit(LOOPSAN_REC_END, &r, sizeof r);
  loopsan__flush_all();
  /* Everything is in the trace file now. After exec the mappings go; if
   * exec fails they stay valid, only no longer named. */
  loopsan__spill_remove_all();
  if (how != LOOPSAN_END_EXEC)
    W.closed = 1;
}

void loopsan__writer_atfork_child(void) {
  /* The child must not write into the parent's spill files: every buffer
   * goes back to private memory. Buffers of threads that do not exist in
   * the child are recycled; their records are the parent's to write. */
  for (struct tbuf *b = atomic_load(&W.buffers); b; b = b->next) {
    pthread_mutex_init(&b->lock, NULL);
    atomic_fetch_add(&b->chunk, 1); /* the parent's dispatch records are not in the child's trace */
    if (b->attached == 1 && region_replace(b, -1) != 0) {
      /* Still the parent's file: this buffer is never used again. */
      atomic_store(&b->in_use, 1);
      if (b == my_buf)
        my_buf = NULL, loopsan__hot.region = NULL;
      continue;
    }
    b->attached = 0;
    /* The child counts its own dispatches; the callback that forked is the
     * parent's (its entries stay, to keep the depth balanced, but say
     * nothing). */
    memset(b->hdr->dispatches, 0, sizeof b->hdr->dispatches);
    for (unsigned i = 0; i < LOOPSAN_INFLIGHT_MAX; i++)
      b->hdr->inflight[i].obj = 0;
    if (b != my_buf)
      atomic_store(&b->in_use, 0);
  }
  if (my_buf) {
    my_buf->tid = loopsan__tid();
    region_init(my_buf, my_buf->tid);
  }
  pthread_mutex_init(&W.open_lock, NULL);
  loopsan__hist_atfork_child();
  loopsan__compact_atfork_child();
  loopsan__trace_atfork_child();
  atomic_store(&W.lost, 0);
  atomic_store(&W.last_periodic, 0);
  W.closed = 0;
  atomic_store(&W.ready, 0);
  W.pending_open = 1;
}
