/* Where a stalled callback is stuck: `loopsan run` watches the dispatches
 * every traced thread publishes in its spill header (a shared mapping of a
 * file in the trace directory), and when one stays in flight for --slow-ms
 * it stops that one thread for a moment with ptrace, unwinds it with
 * elfutils' libdwfl, lets it go, and writes the sample next to the trace
 * (TRACE.stalls), where the analyzer finds it for the slow-callback or
 * blocked-loop finding of that dispatch. It samples again while the
 * dispatch goes on (further apart the longer it lasts, at most
 * LOOPSAN_STALL_SAMPLES_MAX times), and the analyzer merges the samples.
 *
 * Why from here and not in the program: the shim starts no thread (a
 * second thread makes every epoll_wait of a single-threaded program
 * dearer), and a signal handler in the program would make its nanosleep
 * return early and its epoll_wait fail with EINTR. PTRACE_SEIZE +
 * PTRACE_INTERRUPT restarts a thread's nanosleep, poll, select or read
 * transparently with its remaining time (ptrace(2)), but not epoll_wait:
 * a thread whose /proc/PID/task/TID/syscall says it is in an epoll wait is
 * never stopped (it is not running a callback then anyway). Yama's
 * ptrace_scope 1 lets a parent trace its descendants, which the program
 * and its children are. Where ptrace is refused (already traced, Yama 2
 * or 3), nothing is sampled and the finding says so. */
#include <dirent.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "analyzer/analyze.h"
#include "cli/stalls.h"
#include "common/trace_format.h"

#define WATCH_MAX 1024
#define SAMPLE_FRAMES 64
#define SAMPLE_GAP_MIN_NS 20000000u /* the tick */

struct watched {
  char path[PATH_MAX];
  unsigned pid;
  const struct loopsan_spill_header *h;
  uint64_t t0;       /* the innermost dispatch in flight when last looked at */
  uint64_t since_ns; /* since when (our clock) it has been in flight */
  uint64_t next_ns;  /* when to sample it next */
  unsigned samples;  /* samples of it taken (or tried) */
};

static struct {
  char dir[PATH_MAX];
  uint64_t slow_ns;
  struct watched w[WATCH_MAX];
  size_t n;
  uint64_t last_scan_ns;
  int refused; /* ptrace refused once: not tried again */
} S;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void loopsan_stalls_init(const char *trace_dir, unsigned slow_ms) {
  memset(&S, 0, sizeof S);
  snprintf(S.dir, sizeof S.dir, "%s", trace_dir);
  S.slow_ns = (uint64_t)slow_ms * 1000000u;
}

static int known(const char *path) {
  for (size_t i = 0; i < S.n; i++)
    if (strcmp(S.w[i].path, path) == 0)
      return 1;
  return 0;
}

/* New spill files (one per traced thread) are mapped as they appear. */
static void scan(void) {
  DIR *d = opendir(S.dir);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && S.n < WATCH_MAX) {
    unsigned pid;
    if (sscanf(e->d_name, "loopsan.%u.", &pid) != 1 || !strstr(e->d_name, ".trace.spill."))
      continue;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", S.dir, e->d_name) >= (int)sizeof path || known(path))
      continue;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
      continue;
    struct stat st;
    void *m = MAP_FAILED;
    /* The shim allocates the whole file before it maps it (never
     * truncated, only unlinked): the mapping stays readable. */
    if (fstat(fd, &st) == 0 && (size_t)st.st_size >= sizeof(struct loopsan_spill_header))
      m = mmap(NULL, sizeof(struct loopsan_spill_header), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
      continue;
    struct watched *w = &S.w[S.n++];
    memset(w, 0, sizeof *w);
    snprintf(w->path, sizeof w->path, "%s", path);
    w->pid = pid;
    w->h = m;
  }
  closedir(d);
}

/* Is TID (of PID) in an epoll wait, which a ptrace stop would break? */
static int in_epoll_wait(unsigned pid, unsigned tid) {
  char path[64], buf[64];
  snprintf(path, sizeof path, "/proc/%u/task/%u/syscall", pid, tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 1; /* cannot tell: leave it alone */
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return 1;
  buf[n] = 0;
  long nr = strtol(buf, NULL, 10);
  return nr == SYS_epoll_wait || nr == SYS_epoll_pwait
#ifdef SYS_epoll_pwait2
         || nr == SYS_epoll_pwait2
#endif
      ;
}

struct frames {
  uint64_t pc[SAMPLE_FRAMES];
  int n;
};

static int frame_cb(Dwfl_Frame *state, void *arg) {
  struct frames *f = arg;
  Dwarf_Addr pc;
  bool activation;
  if (!dwfl_frame_pc(state, &pc, &activation))
    return DWARF_CB_ABORT;
  /* Stored as return addresses are: the innermost (the exact pc) + 1. */
  f->pc[f->n++] = activation ? pc + 1 : pc;
  return f->n < SAMPLE_FRAMES ? DWARF_CB_OK : DWARF_CB_ABORT;
}

/* Processes a sample's wait reaped (killed between the interrupt and the
 * wait: we are their parent): their ends, until run's reaper takes them. */
#define REAPED_MAX 64
static struct {
  pid_t pid;
  int status;
} reaped[REAPED_MAX];
static size_t n_reaped;

static void keep_reaped(pid_t pid, int status) {
  if (n_reaped < REAPED_MAX)
  {
    reaped[n_reaped].pid = pid;
    reaped[n_reaped++].status = status;
  }
}

int loopsan_stalls_take_reaped(pid_t *pid, int *status) {
  if (!n_reaped)
    return 0;
  *pid = reaped[--n_reaped].pid;
  *status = reaped[n_reaped].status;
  return 1;
}

/* Stop TID, unwind it, let it go. 0 with F filled, -1 if ptrace refused. */
static int sample(unsigned pid, unsigned tid, struct frames *f) {
  if (ptrace(PTRACE_SEIZE, (pid_t)tid, NULL, NULL) != 0)
    return -1;
  int rc = -1;
  if (ptrace(PTRACE_INTERRUPT, (pid_t)tid, NULL, NULL) == 0) {
    int status;
    pid_t w = waitpid((pid_t)tid, &status, __WALL);
    if (w == (pid_t)tid && (WIFEXITED(status) || WIFSIGNALED(status)) && tid == pid)
      keep_reaped(w, status); /* it died meanwhile: this wait reaped it, for run's reaper */
    if (w == (pid_t)tid && WIFSTOPPED(status)) {
      static const Dwfl_Callbacks cbs = {.find_elf = dwfl_linux_proc_find_elf,
                                         .find_debuginfo = dwfl_standard_find_debuginfo};
      Dwfl *dwfl = dwfl_begin(&cbs);
      if (dwfl) {
        if (dwfl_linux_proc_report(dwfl, (pid_t)pid) == 0 &&
            dwfl_report_end(dwfl, NULL, NULL) == 0 &&
            dwfl_linux_proc_attach(dwfl, (pid_t)pid, true) == 0) {
          f->n = 0;
          dwfl_getthread_frames(dwfl, (pid_t)tid, frame_cb, f);
          rc = f->n > 0 ? 0 : 1;
        }
        dwfl_end(dwfl);
      }
    }
  }
  ptrace(PTRACE_DETACH, (pid_t)tid, NULL, NULL);
  return rc < 0 ? 1 : rc; /* seized: not refused, even if unwinding failed */
}

static void save(const struct watched *w, unsigned tid, uint64_t t0, const struct frames *f) {
  /* TRACE.spill.N -> TRACE.stalls */
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s", w->path);
  char *spill = strstr(path, ".spill.");
  if (!spill)
    return;
  snprintf(spill, sizeof path - (size_t)(spill - path), ".stalls");
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600); /* as traces */
  FILE *out = fd >= 0 ? fdopen(fd, "a") : NULL;
  if (!out && fd >= 0)
    close(fd);
  if (!out)
    return;
  fprintf(out, "%u %" PRIu64 " %d", tid, t0, f->n);
  for (int i = 0; i < f->n; i++)
    fprintf(out, " %" PRIx64, f->pc[i]);
  fputc('\n', out);
  fclose(out);
}

void loopsan_stalls_tick(void) {
  uint64_t now = now_ns();
  if (now - S.last_scan_ns >= 100000000u) {
    S.last_scan_ns = now;
    scan();
  }
  for (size_t i = 0; i < S.n; i++) {
    struct watched *w = &S.w[i];
    const struct loopsan_spill_header *h = w->h;
    uint32_t depth = __atomic_load_n(&h->depth, __ATOMIC_ACQUIRE);
    if (depth == 0 || depth > LOOPSAN_INFLIGHT_MAX) {
      w->t0 = 0;
      continue;
    }
    uint64_t t0 = h->inflight[depth - 1].t0;
    if (t0 != w->t0) { /* another dispatch: watched from now */
      w->t0 = t0;
      w->since_ns = now;
      w->next_ns = now + S.slow_ns;
      w->samples = 0;
      continue;
    }
    if (w->samples >= LOOPSAN_STALL_SAMPLES_MAX || now < w->next_ns || S.refused)
      continue;
    /* Several samples say more than one (a callback that spins through
     * several helpers, or blocks in turn in several calls); each stops
     * the thread for a moment, so they grow further apart as the stall
     * goes on: at the threshold, then every quarter of the time so far
     * (a 300 ms callback gets about 6; 16 cover the first 40 threshold
     * lengths). A sample stops the thread for 0.4-0.7 ms here. */
    w->samples++;
    uint64_t gap = (now - w->since_ns) / 4;
    w->next_ns = now + (gap > SAMPLE_GAP_MIN_NS ? gap : SAMPLE_GAP_MIN_NS);
    unsigned tid = h->tid;
    if (in_epoll_wait(w->pid, tid))
      continue;
    struct frames f = {.n = 0};
    int rc = sample(w->pid, tid, &f);
    if (rc < 0) {
      int e = errno;
      S.refused = 1;
      char path[PATH_MAX + 64];
      snprintf(path, sizeof path, "%s/%s", S.dir, LOOPSAN_STALLS_REFUSED_FILE);
      FILE *out = fopen(path, "we");
      if (out) {
        fprintf(out, "ptrace(PTRACE_SEIZE) of thread %u: %s\n", tid, strerror(e));
        fclose(out);
      }
    } else if (rc == 0 && __atomic_load_n(&h->depth, __ATOMIC_ACQUIRE) >= depth &&
               h->inflight[depth - 1].t0 == t0) /* still in that dispatch */
      save(w, tid, t0, &f);
  }
}

void loopsan_stalls_done(void) {
  for (size_t i = 0; i < S.n; i++)
    munmap((void *)S.w[i].h, sizeof(struct loopsan_spill_header));
  S.n = 0;
}
