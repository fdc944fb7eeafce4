/* The trace writer: per-thread buffers, written out as CRC-checked chunks.
 *
 * A thread appends records to its own buffer without any lock: it copies the
 * record, then publishes the new end with a release store. Buffers are
 * written out (one writev per chunk, on an O_APPEND file, so chunks of
 * different threads never interleave) when one fills up, and when a thread
 * is about to block in the kernel with records a second old or for long
 * (loopsan__before_wait, called from the interposed epoll_wait/poll): then
 * every thread's buffer goes out, so a process killed with SIGKILL loses at
 * most about the last second. A per-buffer mutex is taken only for those
 * write-outs, never per record. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/crc32.h"
#include "preload/shim.h"

#define TBUF_CAPACITY (64u * 1024u)
#define TRACE_FD_MIN 1000 /* keep clear of the fd numbers programs expect */

struct tbuf {
  pthread_mutex_t lock;     /* taken only to write the buffer out */
  _Atomic uint32_t end;     /* published end of records (owner stores) */
  uint32_t written;         /* up to here already in the file (under lock) */
  _Atomic int in_use;       /* owned by a live thread */
  uint32_t tid;
  uint64_t last_out;        /* owner's clock when it last wrote everything out */
  struct tbuf *next;        /* registry list, push-only */
  unsigned char data[TBUF_CAPACITY];
};

static struct {
  pthread_mutex_t file_lock; /* open/reopen of the file */
  pthread_mutex_t write_lock; /* one chunk at a time into the file */
  int fd;
  dev_t dev;
  ino_t ino;
  char path[LOOPSAN_PATH_MAX + 64];
  _Atomic uint64_t seq;
  _Atomic(struct tbuf *) buffers;
  _Atomic uint64_t lost;
  _Atomic uint64_t last_periodic; /* clock of the last periodic write-out */
  pthread_key_t key;
  int key_ok;
  int closed;
} W = {.file_lock = PTHREAD_MUTEX_INITIALIZER, .write_lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

static LOOPSAN_TLS struct tbuf *my_buf;
static LOOPSAN_TLS int in_writer; /* our own write(2) must not re-enter */

/* --- the file ------------------------------------------------------------ */

static int write_all_fd(int fd, struct iovec *iov, int iovcnt) {
  while (iovcnt > 0) {
    ssize_t n = writev(fd, iov, iovcnt);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
      n -= (ssize_t)iov->iov_len;
      iov++;
      iovcnt--;
    }
    if (iovcnt > 0) {
      iov->iov_base = (char *)iov->iov_base + n;
      iov->iov_len -= (size_t)n;
    }
  }
  return 0;
}

/* The program may have closed our descriptor (daemons close every fd) and
 * reused its number: check before each chunk, reopen our own file by path,
 * and never write into the program's. */
static int trace_fd(void) {
  struct stat st;
  int fd = W.fd;
  if (fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == W.dev && st.st_ino == W.ino)
    return fd;
  pthread_mutex_lock(&W.file_lock);
  fd = W.fd;
  if (!(fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == W.dev && st.st_ino == W.ino)) {
    fd = -1;
    if (W.path[0]) {
      int nfd = open(W.path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
      if (nfd >= 0 && fstat(nfd, &st) == 0 && st.st_dev == W.dev && st.st_ino == W.ino) {
        int high = fcntl(nfd, F_DUPFD_CLOEXEC, TRACE_FD_MIN);
        if (high >= 0) {
          close(nfd);
          nfd = high;
        }
        fd = nfd;
      } else if (nfd >= 0) {
        close(nfd);
      }
    }
    W.fd = fd;
  }
  pthread_mutex_unlock(&W.file_lock);
  return fd;
}

static void write_chunk(uint32_t tid, const void *payload, uint32_t len) {
  struct loopsan_chunk_header ch = {
      .magic = LOOPSAN_CHUNK_MAGIC,
      .size = len,
      .crc = loopsan_crc32c(0, payload, len),
      .tid = tid,
      .seq = atomic_fetch_add(&W.seq, 1),
  };
  struct iovec iov[2] = {{&ch, sizeof ch}, {(void *)payload, len}};
  int fd = trace_fd();
  /* One writev is one append; should it come back short (disk full), the
   * rest must follow before any other thread's chunk. */
  pthread_mutex_lock(&W.write_lock);
  int failed = fd < 0 || write_all_fd(fd, iov, 2) != 0;
  pthread_mutex_unlock(&W.write_lock);
  if (failed)
    atomic_fetch_add(&W.lost, 1);
}

/* Write out [written, end) of B. OWNER: the calling thread owns B and may
 * rewind it; others only advance `written`. */
static void tbuf_write_out(struct tbuf *b, int owner) {
  int saved = errno;
  in_writer++;
  pthread_mutex_lock(&b->lock);
  uint32_t end = atomic_load_explicit(&b->end, memory_order_acquire);
  if (end > b->written) {
    write_chunk(b->tid, b->data + b->written, end - b->written);
    b->written = end;
  }
  if (owner) {
    b->written = 0;
    atomic_store_explicit(&b->end, 0, memory_order_release);
  }
  pthread_mutex_unlock(&b->lock);
  in_writer--;
  errno = saved;
}

/* --- buffers ---------------------------------------------------------------- */

static void tbuf_release(void *arg) {
  struct tbuf *b = arg;
  tbuf_write_out(b, 1);
  my_buf = NULL;
  atomic_store(&b->in_use, 0);
}

static struct tbuf *tbuf_acquire(void) {
  struct tbuf *b;
  for (b = atomic_load(&W.buffers); b; b = b->next) {
    int expected = 0;
    if (atomic_compare_exchange_strong(&b->in_use, &expected, 1))
      break;
  }
  if (!b) {
    void *mem = mmap(NULL, sizeof *b, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
      return NULL;
    b = mem;
    pthread_mutex_init(&b->lock, NULL);
    atomic_store(&b->in_use, 1);
    struct tbuf *head = atomic_load(&W.buffers);
    do
      b->next = head;
    while (!atomic_compare_exchange_weak(&W.buffers, &head, b));
  }
  b->written = 0;
  atomic_store(&b->end, 0);
  b->tid = loopsan__tid();
  b->last_out = loopsan__now();
  my_buf = b;
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

void loopsan__emit_tail(uint16_t type, void *rec, size_t size, const void *tail1, size_t len1,
                        const void *tail2, size_t len2) {
  size_t total = (size + len1 + len2 + 7u) & ~(size_t)7u;
  if (in_writer)
    return;
  if (total > 0xfff8u || total > TBUF_CAPACITY) {
    loopsan__note_lost(LOOPSAN_LOST_RECORD_TOO_BIG, 1);
    return;
  }
  struct tbuf *b = my_buf;
  if (LOOPSAN_UNLIKELY(!b)) {
    b = tbuf_acquire();
    if (!b)
      return;
    emit_thread_record();
  }
  uint32_t pos = atomic_load_explicit(&b->end, memory_order_relaxed);
  if (pos + total > TBUF_CAPACITY) {
    tbuf_write_out(b, 1);
    pos = 0;
  }
  struct loopsan_record_header *h = rec;
  h->type = type;
  h->size = (uint16_t)total; /* h->aux is the caller's */
  unsigned char *dst = b->data + pos;
  memcpy(dst, rec, size);
  if (len1)
    memcpy(dst + size, tail1, len1);
  if (len2)
    memcpy(dst + size + len1, tail2, len2);
  memset(dst + size + len1 + len2, 0, total - size - len1 - len2);
  atomic_store_explicit(&b->end, pos + (uint32_t)total, memory_order_release);
  if (LOOPSAN_UNLIKELY(W.closed))
    tbuf_write_out(b, 1); /* after exit's final flush nothing else will */
}

void loopsan__emit(uint16_t type, void *rec, size_t size) {
  loopsan__emit_tail(type, rec, size, NULL, 0, NULL, 0);
}

static LOOPSAN_TLS uint32_t waits_unchecked, wait_budget_ms;

void loopsan__before_wait(int timeout_ms) {
  struct tbuf *b = my_buf;
  if (LOOPSAN_LIKELY(!b) || in_writer ||
      atomic_load_explicit(&b->end, memory_order_relaxed) == b->written)
    return; /* the common case: nothing of ours is waiting */
  /* A busy loop waits with short timeouts thousands of times a second:
   * look at the clock only every 64 waits or second of timeouts. */
  if (timeout_ms >= 0 && timeout_ms < 1000) {
    wait_budget_ms += (uint32_t)timeout_ms;
    if ((++waits_unchecked & 63u) && wait_budget_ms < 1000)
      return;
  }
  wait_budget_ms = 0;
  uint64_t now = loopsan__now(), second = loopsan__clock_ticks_per_sec();
  if (timeout_ms >= 0 && timeout_ms < 1000 && now - b->last_out < second)
    return;
  b->last_out = now;
  /* Once a second at most, write out every thread's records, with a fresh
   * clock calibration and the module map if dlopen changed it. */
  uint64_t last = atomic_load(&W.last_periodic);
  if (now - last >= second && atomic_compare_exchange_strong(&W.last_periodic, &last, now)) {
    int saved = errno;
    loopsan__clock_emit();
    loopsan__modules_emit_if_changed(0);
    loopsan__flush_all();
    errno = saved;
    return;
  }
  tbuf_write_out(b, 1);
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
    while (args_len < sizeof args &&
           (r = read(fd, args + args_len, sizeof args - args_len)) > 0)
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
  if (sizeof r + r.exe_len + r.argv_len > 0xfff0u)
    r.argv_len = (uint32_t)(0xfff0u - sizeof r - r.exe_len);
  loopsan__emit_tail(LOOPSAN_REC_PROCESS, &r, sizeof r, exe, r.exe_len, args, r.argv_len);
}

int loopsan__writer_open(void) {
  const char *dir = loopsan__state.opts.trace_dir;
  unsigned pid = (unsigned)getpid();
  int fd = -1;
  if (!W.key_ok && pthread_key_create(&W.key, tbuf_release) == 0)
    W.key_ok = 1;
  mkdir(dir, 0700); /* may exist already: that is fine */
  /* exec keeps the pid: the new image gets the next free suffix, and an
   * existing file is never opened, followed or overwritten (O_EXCL). */
  for (unsigned i = 0; i < 1000 && fd < 0; i++) {
    if (i == 0)
      snprintf(W.path, sizeof W.path, "%s/loopsan.%u.trace", dir, pid);
    else
      snprintf(W.path, sizeof W.path, "%s/loopsan.%u.%u.trace", dir, pid, i);
    fd = open(W.path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST)
      break;
  }
  if (fd < 0) {
    W.path[0] = '\0';
    return -1;
  }
  int high = fcntl(fd, F_DUPFD_CLOEXEC, TRACE_FD_MIN);
  if (high >= 0) {
    close(fd);
    fd = high;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return -1;
  }
  W.dev = st.st_dev;
  W.ino = st.st_ino;
  W.fd = fd;
  W.closed = 0;
  struct loopsan_file_header fh = {.version = LOOPSAN_TRACE_VERSION, .header_size = sizeof fh};
  memcpy(fh.magic, LOOPSAN_TRACE_MAGIC, sizeof fh.magic);
  struct iovec iov = {&fh, sizeof fh};
  if (write_all_fd(fd, &iov, 1) != 0) {
    close(fd);
    W.fd = -1;
    return -1;
  }
  /* The process record must open the first chunk: start from an empty
   * buffer (after fork it may hold the parent's unwritten records). */
  if (!my_buf && !tbuf_acquire())
    return -1;
  my_buf->written = 0;
  atomic_store(&my_buf->end, 0);
  emit_process_record();
  emit_thread_record();
  loopsan__clock_emit();
  /* Written at once: the file must open with the process record even if
   * another thread's chunk or an exec follows right away. */
  tbuf_write_out(my_buf, 1);
  return 0;
}

void loopsan__writer_close(uint32_t how, int status) {
  if (W.fd < 0 && !W.path[0])
    return;
  struct loopsan_rec_end r = {.ts = loopsan__now(), .how = how, .status = status};
  loopsan__clock_emit();
  loopsan__modules_emit_if_changed(0);
  loopsan__emit(LOOPSAN_REC_END, &r, sizeof r);
  loopsan__flush_all();
  if (how != LOOPSAN_END_EXEC)
    W.closed = 1;
}

void loopsan__writer_atfork_child(void) {
  /* Buffers of threads that do not exist in the child are recycled; their
   * records belong to the parent, which writes them itself. */
  for (struct tbuf *b = atomic_load(&W.buffers); b; b = b->next) {
    pthread_mutex_init(&b->lock, NULL);
    b->written = 0;
    atomic_store(&b->end, 0);
    if (b != my_buf)
      atomic_store(&b->in_use, 0);
  }
  pthread_mutex_init(&W.file_lock, NULL);
  pthread_mutex_init(&W.write_lock, NULL);
  if (W.fd >= 0)
    close(W.fd); /* the parent's file */
  W.fd = -1;
  W.path[0] = '\0';
  atomic_store(&W.seq, 0);
  atomic_store(&W.lost, 0);
  if (my_buf)
    my_buf->tid = loopsan__tid();
}
