/* The process's trace file and its spill files: creating them safely,
 * appending chunks, surviving a program that closes or reuses our fd.
 *
 * Trace files are named loopsan.PID.trace (loopsan.PID.N.trace for the
 * images that follow an exec, which keeps the pid); they and their spill
 * files are created with O_EXCL|O_NOFOLLOW, mode 0600: an existing file or
 * a planted symlink is never opened, followed or overwritten. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/crc32.h"
#include "preload/shim.h"
#include "preload/tracefile.h"

static struct {
  pthread_mutex_t file_lock;  /* open/reopen of the file */
  pthread_mutex_t write_lock; /* one chunk at a time into the file */
  int fd;
  dev_t dev;
  ino_t ino;
  char path[LOOPSAN_PATH_MAX + 64];
  _Atomic uint64_t seq;
  _Atomic unsigned spills; /* spill file names used (tried) */
  /* which of them this process created: only those are removed at exit (a
   * file already there under such a name is someone else's) */
#define SPILL_KNOWN 1024
  _Atomic uint64_t spill_created[SPILL_KNOWN / 64];
  /* A full file system: the file's blocks are reserved ahead of its end
   * (fallocate, KEEP_SIZE) with room kept for the process's last records;
   * when no more can be reserved, recording stops there, and only the last
   * records (END, counts) still go, into the room kept. */
  uint64_t size;         /* bytes written (under write_lock) */
  uint64_t reserved_end; /* blocks reserved up to here */
  int cannot_reserve;    /* the file system has no fallocate */
  _Atomic int full;      /* recording stopped: no room */
  int final;             /* the process's last records are being written */
} T = {.file_lock = PTHREAD_MUTEX_INITIALIZER, .write_lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

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

int loopsan__fd_move_high(int fd) {
  int high = fcntl(fd, F_DUPFD_CLOEXEC, LOOPSAN_HIGH_FD_MIN);
  if (high < 0 && errno == EINVAL) {
    /* A descriptor limit of 1000 or less: as high as it allows, leaving
     * a few at the very top (the shim keeps at most three open). */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 16 &&
        rl.rlim_cur <= LOOPSAN_HIGH_FD_MIN)
      high = fcntl(fd, F_DUPFD_CLOEXEC, (int)rl.rlim_cur - (rl.rlim_cur > 64 ? 16 : 4));
  }
  if (high < 0)
    return fd;
  close(fd);
  return high;
}

int loopsan__trace_create(void) {
  const char *dir = loopsan__state.opts.trace_dir;
  unsigned pid = (unsigned)getpid();
  int fd = -1;
  mkdir(dir, 0700); /* may exist already: that is fine */
  for (unsigned i = 0; i < 1000 && fd < 0; i++) {
    if (i == 0)
      snprintf(T.path, sizeof T.path, "%s/loopsan.%u.trace", dir, pid);
    else
      snprintf(T.path, sizeof T.path, "%s/loopsan.%u.%u.trace", dir, pid, i);
    fd = open(T.path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST)
      break;
  }
  if (fd < 0)
    goto fail;
  fd = loopsan__fd_move_high(fd);
  struct stat st;
  struct loopsan_file_header fh = {.version = LOOPSAN_TRACE_VERSION, .header_size = sizeof fh};
  memcpy(fh.magic, LOOPSAN_TRACE_MAGIC, sizeof fh.magic);
  struct iovec iov = {&fh, sizeof fh};
  if (fstat(fd, &st) != 0 || write_all_fd(fd, &iov, 1) != 0) {
    close(fd);
    goto fail;
  }
  T.dev = st.st_dev;
  T.ino = st.st_ino;
  T.fd = fd;
  T.size = sizeof fh;
  T.reserved_end = 0;
  T.cannot_reserve = 0;
  atomic_store(&T.full, 0);
  T.final = 0;
  atomic_store(&T.seq, 0);
  atomic_store(&T.spills, 0);
  for (size_t i = 0; i < SPILL_KNOWN / 64; i++)
    atomic_store(&T.spill_created[i], 0);
  return 0;
fail:
  T.path[0] = '\0';
  T.fd = -1;
  return -1;
}

int loopsan__trace_is_open(void) { return T.path[0] != '\0'; }

/* The program may have closed our descriptor (daemons close every fd) and
 * reused its number: check before each chunk, reopen our own file by path,
 * and never write into the program's. */
static int trace_fd(void) {
  struct stat st;
  int fd = T.fd;
  if (fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == T.dev && st.st_ino == T.ino)
    return fd;
  pthread_mutex_lock(&T.file_lock);
  fd = T.fd;
  if (!(fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == T.dev && st.st_ino == T.ino)) {
    fd = -1;
    if (T.path[0]) {
      int nfd = open(T.path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
      if (nfd >= 0 && fstat(nfd, &st) == 0 && st.st_dev == T.dev && st.st_ino == T.ino)
        fd = loopsan__fd_move_high(nfd);
      else if (nfd >= 0)
        close(nfd);
    }
    T.fd = fd;
  }
  pthread_mutex_unlock(&T.file_lock);
  return fd;
}

#define FINAL_ROOM (16u << 10) /* kept for the last records: END, counts, histograms */
#define RESERVE_STEP (1u << 20)

/* Said once, on standard error: the program goes on, unobserved. */
static void stop_recording(int err) {
  if (atomic_exchange(&T.full, 1))
    return;
  char msg[LOOPSAN_PATH_MAX + 200];
  int n = snprintf(msg, sizeof msg,
                   "loopsan: %s: %s: recording stopped here; the program goes on (pid %u)\n",
                   T.path, strerror(err), (unsigned)getpid());
  if (n > 0)
    (void)!write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
}

/* Blocks for NEED more bytes and the final room, reserved ahead (a step at
 * a time, or just what is needed when the step does not fit): -1 when the
 * file system has no room left, and recording stops. Under write_lock. */
static int reserve(int fd, uint64_t need) {
  if (T.cannot_reserve || T.size + need + FINAL_ROOM <= T.reserved_end)
    return 0;
  uint64_t from = T.reserved_end > T.size ? T.reserved_end : T.size;
  uint64_t want = T.size + need + FINAL_ROOM;
  for (int step = 1; step >= 0; step--) {
    uint64_t to = want + (step ? RESERVE_STEP : 0);
    if (fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)from, (off_t)(to - from)) == 0) {
      T.reserved_end = to;
      return 0;
    }
    if (errno != ENOSPC && errno != EDQUOT && errno != EFBIG) {
      T.cannot_reserve = 1; /* (no fallocate here: writes find out) */
      return 0;
    }
  }
  stop_recording(errno);
  return -1;
}

int loopsan__trace_write_chunk(uint32_t tid, const void *payload, uint32_t len) {
  struct loopsan_chunk_header ch = {
      .magic = LOOPSAN_CHUNK_MAGIC,
      .size = len,
      .crc = loopsan_crc32c(0, payload, len),
      .tid = tid,
      .seq = atomic_fetch_add(&T.seq, 1),
  };
  struct iovec iov[2] = {{&ch, sizeof ch}, {(void *)payload, len}};
  int fd = trace_fd();
  if (fd < 0)
    return -1;
  /* One writev is one append; should it come back short, the rest must
   * follow before any other thread's chunk. */
  pthread_mutex_lock(&T.write_lock);
  uint64_t need = sizeof ch + len;
  int rc = -1;
  if ((atomic_load(&T.full) && !T.final) || (!T.final && reserve(fd, need) != 0))
    goto out;
  rc = write_all_fd(fd, iov, 2);
  if (rc == 0) {
    T.size += need;
  } else {
    int e = errno;
    /* No torn chunk left behind (it would read as a process killed while
     * writing): the file is cut back to its last whole chunk. */
    if (ftruncate(fd, (off_t)T.size) != 0) { /* (nothing more to do) */
    }
    if (e == ENOSPC || e == EDQUOT || e == EFBIG)
      stop_recording(e);
  }
out:
  pthread_mutex_unlock(&T.write_lock);
  return rc;
}

void loopsan__trace_final(void) {
  pthread_mutex_lock(&T.write_lock);
  T.final = 1;
  pthread_mutex_unlock(&T.write_lock);
}

int loopsan__trace_stopped(void) { return atomic_load(&T.full); }

int loopsan__spill_create(size_t size, unsigned *index) {
  char path[sizeof T.path + 32];
  if (!T.path[0])
    return -1;
  unsigned n;
  int fd = -1;
  for (int tries = 0; fd < 0 && tries < 8; tries++) { /* a name taken: the next one */
    n = atomic_fetch_add(&T.spills, 1);
    snprintf(path, sizeof path, "%s.spill.%u", T.path, n);
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST && errno != ELOOP)
      return -1;
  }
  if (fd < 0)
    return -1;
  /* Blocks reserved now: a shared mapping of a sparse file on a full disk
   * would fault with SIGBUS in the program instead. */
  if (posix_fallocate(fd, 0, (off_t)size) != 0) {
    close(fd);
    unlink(path);
    return -1;
  }
  if (n < SPILL_KNOWN)
    atomic_fetch_or(&T.spill_created[n / 64], 1ull << (n % 64));
  *index = n;
  return loopsan__fd_move_high(fd);
}

void loopsan__spill_remove_all(void) {
  char path[sizeof T.path + 32];
  unsigned n = atomic_load(&T.spills);
  for (unsigned i = 0; i < n && i < SPILL_KNOWN && T.path[0]; i++) {
    if (!(atomic_load(&T.spill_created[i / 64]) & (1ull << (i % 64))))
      continue;
    snprintf(path, sizeof path, "%s.spill.%u", T.path, i);
    unlink(path);
  }
}

void loopsan__trace_atfork_child(void) {
  pthread_mutex_init(&T.file_lock, NULL);
  pthread_mutex_init(&T.write_lock, NULL);
  if (T.fd >= 0)
    close(T.fd); /* the parent's file */
  T.fd = -1;
  T.path[0] = '\0';
  atomic_store(&T.seq, 0);
  atomic_store(&T.spills, 0);
  for (size_t i = 0; i < SPILL_KNOWN / 64; i++)
    atomic_store(&T.spill_created[i], 0);
}
