/* The libc calls an event loop blocks in (epoll_wait, poll, ...). They give
 * the shim a moment to write out buffered records before the thread sleeps
 * (loopsan__before_wait), and they are the generic layer for loops loopsan
 * has no adapter for (Node.js's built-in libuv, Python's asyncio, any
 * epoll, poll or select loop): on a thread not running an adapter's loop,
 * the time from a wait's return to the thread's next wait on the same
 * epoll descriptor (or from the same poll/select call site) is one
 * iteration of its loop, timed like a callback (a pseudo-dispatch of
 * library "generic", slot LOOPSAN_DISPATCH_ITERATION[_POLL]): one over --slow-ms
 * is a blocked-loop, and blocking calls inside it are seen as inside a
 * callback. A thread running an adapter's loop (uv_run, ev_run, ...) is
 * left to its adapter, which times its callbacks. */
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>

#include "preload/shim.h"

static int timespec_ms(const struct timespec *ts) {
  if (!ts)
    return -1;
  if (ts->tv_sec >= 1000)
    return 1000000;
  return (int)(ts->tv_sec * 1000 + ts->tv_nsec / 1000000);
}

static int timeval_ms(const struct timeval *tv) {
  if (!tv)
    return -1;
  if (tv->tv_sec >= 1000)
    return 1000000;
  return (int)(tv->tv_sec * 1000 + tv->tv_usec / 1000);
}

LOOPSAN_TLS unsigned loopsan__adapter_loops;

/* What a generic loop waits on: an epoll descriptor, or for a loop built
 * on poll/select (which has no descriptor of its own) the place it waits
 * from, the return address of the call. */
enum wait_kind { WAIT_EPOLL, WAIT_POLL };

/* The iteration in progress on this thread, if any. */
static LOOPSAN_TLS struct {
  uintptr_t key;       /* the epoll descriptor, or the poll/select call site */
  uintptr_t poll_site; /* the last poll/select call site that waited */
  uint8_t kind;        /* enum wait_kind of KEY */
  uint8_t open;        /* an iteration is being timed */
  struct loopsan_dispatch d;
} generic;

/* Blocking calls of the iteration in progress (loopsan__generic_hold): the
 * longest few. */
#define HELD_MAX 4
static LOOPSAN_TLS struct {
  struct loopsan_rec_blocking r;
  char name[24];
} held[HELD_MAX];
static LOOPSAN_TLS unsigned n_held;

void loopsan__generic_hold(const struct loopsan_rec_blocking *r, const char *name) {
  unsigned at = n_held;
  if (at == HELD_MAX) { /* full: in place of the shortest, if this is longer */
    at = 0;
    for (unsigned i = 1; i < HELD_MAX; i++)
      if (held[i].r.duration < held[at].r.duration)
        at = i;
    if (held[at].r.duration >= r->duration)
      return;
  } else {
    n_held++;
  }
  held[at].r = *r;
  size_t len = strlen(name);
  if (len >= sizeof held[at].name)
    len = sizeof held[at].name - 1;
  memcpy(held[at].name, name, len);
  held[at].name[len] = 0;
  held[at].r.name_len = (uint16_t)len;
}

/* Before the iteration's DISPATCH (the analyzer holds a dispatch's
 * blocking calls until it knows whether the dispatch was slow). */
static void held_write(void) {
  for (unsigned i = 0; i < n_held; i++)
    loopsan__emit_tail(LOOPSAN_REC_BLOCKING, &held[i].r, sizeof held[i].r, held[i].name,
                       held[i].r.name_len, NULL, 0);
  n_held = 0;
}

static inline void iteration_drop(void) {
  generic.open = 0;
  n_held = 0;
  if (generic.d.region) {
    struct loopsan_spill_header *h = generic.d.region;
    __atomic_store_n(&h->depth, h->depth - 1, __ATOMIC_RELEASE);
  }
}

/* Before a wait of KIND on KEY (TIMEOUT in ms, -1 forever): the iteration
 * that ends here.
 * - Inside an epoll loop's iteration, a poll or select is something the
 *   iteration does, not its end.
 * - A poll or select that does not wait (timeout 0) only asks what is
 *   ready: it neither ends nor begins an iteration.
 * - A wait somewhere else (another epoll descriptor, another call site)
 *   belongs to another loop, and what came before it is no iteration of
 *   either (a thread that waited once for something else): dropped
 *   untimed. */
static inline __attribute__((always_inline)) void iteration_end(enum wait_kind kind, uintptr_t key,
                                                                int timeout) {
  if (LOOPSAN_LIKELY(!generic.open))
    return;
  if (kind == WAIT_POLL && (generic.kind == WAIT_EPOLL || timeout == 0))
    return;
  if (LOOPSAN_LIKELY(kind == generic.kind && key == generic.key)) {
    generic.open = 0;
    if (LOOPSAN_UNLIKELY(n_held))
      held_write();
    loopsan__dispatch_end(&generic.d);
  } else {
    iteration_drop();
  }
}

/* After a wait of KIND on KEY: what follows, up to the thread's next wait
 * there, is an iteration of that loop.
 * - An epoll loop is timed from its first wait on: asyncio.run() runs the
 *   first step of its coroutine between the loop's first and second waits.
 * - A poll or select is taken for a loop only when the same call site
 *   waits a second time in a row (many programs poll once, for a connect
 *   or a child, outside any loop), and is timed from then on.
 * (A thread that waits once and never again has no iteration that ends:
 * nothing is said of it.) */
static inline __attribute__((always_inline)) void iteration_begin(enum wait_kind kind, uintptr_t key,
                                                                  int timeout) {
  if (loopsan__adapter_loops || !loopsan__state.active || generic.open)
    return;
  if (kind == WAIT_POLL) {
    if (timeout == 0)
      return;
    if (key != generic.poll_site) {
      generic.poll_site = key;
      return;
    }
  }
  generic.kind = (uint8_t)kind;
  generic.key = key;
  generic.open = 1;
  /* (none out of adapter loops, nor once the generic layer saw one: shim.h) */
  loopsan__hot.wait_credit = loopsan__hot.credit_aside = 0;
  loopsan__dispatch_begin(&generic.d, 0, (const void *)key,
                          kind == WAIT_EPOLL ? LOOPSAN_DISPATCH_ITERATION
                                             : LOOPSAN_DISPATCH_ITERATION_POLL,
                          LOOPSAN_LIB_GENERIC);
}

/* The wait of an adapter's loop (uv_run, g_main_loop_run, ...), outside
 * any generic iteration: nothing to end or begin, only the write-out
 * check. The common case, kept to two thread-local loads (an idle libuv
 * loop waits once per callback). */
static inline int adapter_wait(void) {
  return loopsan__adapter_loops && !generic.open;
}

/* (name, return type, parameters, arguments, timeout in ms as an
 * expression, what it waits on: WAIT_EPOLL and the descriptor, or
 * WAIT_POLL and the call site) */
/* A timeout behind a pointer is read only when the shim is active: an
 * inactive one (setuid, bad options) passes the call on untouched, a bad
 * pointer and all. */
#define IF_ACTIVE(ms) (loopsan__state.active ? (ms) : -1)
#define LIBC_WAITS(X)                                                                              \
  X(epoll_wait, int, (int epfd, struct epoll_event *ev, int max, int timeout),                     \
    (epfd, ev, max, timeout), timeout, WAIT_EPOLL, (uintptr_t)epfd)                                \
  X(epoll_pwait, int,                                                                              \
    (int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *mask),                \
    (epfd, ev, max, timeout, mask), timeout, WAIT_EPOLL, (uintptr_t)epfd)                          \
  X(epoll_pwait2, int,                                                                             \
    (int epfd, struct epoll_event *ev, int max, const struct timespec *ts, const sigset_t *mask),  \
    (epfd, ev, max, ts, mask), IF_ACTIVE(timespec_ms(ts)), WAIT_EPOLL, (uintptr_t)epfd)            \
  X(poll, int, (struct pollfd * fds, nfds_t n, int timeout), (fds, n, timeout), timeout,           \
    WAIT_POLL, SITE)                                                                               \
  X(ppoll, int, (struct pollfd * fds, nfds_t n, const struct timespec *ts, const sigset_t *mask),  \
    (fds, n, ts, mask), IF_ACTIVE(timespec_ms(ts)), WAIT_POLL, SITE)                               \
  X(select, int, (int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv), (n, r, w, e, tv),   \
    IF_ACTIVE(timeval_ms(tv)), WAIT_POLL, SITE)                                                    \
  X(pselect, int,                                                                                  \
    (int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts, const sigset_t *mask),     \
    (n, r, w, e, ts, mask), IF_ACTIVE(timespec_ms(ts)), WAIT_POLL, SITE)

/* Each wait is two functions. The interposed one is the fast path: the
 * wait of an adapter's loop while its thread has credit (shim.h,
 * loopsan__wait_take_credit) jumps straight to libc, with no frame of its
 * own (an idle libuv loop waits once per callback); so does one right
 * after a callback, before the thread's write-out is due, which renews
 * the credit. Everything else is the slow path, which gets the program's
 * call site (SITE) and whether the wait is an adapter loop's (COUNTED:
 * its check is due; the slow path renews the credit). */
#define WITH_SITE_PARAM(...) (uintptr_t site, int counted, __VA_ARGS__)
#define WITH_SITE_COUNTED(...) ((uintptr_t)__builtin_return_address(0), 1, __VA_ARGS__)
#define WITH_SITE(...) ((uintptr_t)__builtin_return_address(0), 0, __VA_ARGS__)
#define WAIT_WRAPPER(name, ret, params, args, timeout_expr, kind, key)                 \
  static ret(*real_##name) params;                                                     \
  static __attribute__((noinline)) ret slow_##name WITH_SITE_PARAM params {            \
    ret(*real) params = real_##name;                                                   \
    (void)site; /* (the epoll waits' key is their descriptor) */                       \
    if (LOOPSAN_UNLIKELY(!real)) {                                                     \
      int saved = errno;                                                               \
      real = (ret(*) params)dlsym(RTLD_NEXT, #name);                                   \
      errno = saved;                                                                   \
      if (!real) {                                                                     \
        errno = ENOSYS;                                                                \
        return -1;                                                                     \
      }                                                                                \
      real_##name = real;                                                              \
    }                                                                                  \
    if (!loopsan__state.active)                                                        \
      return real args;                                                                \
    int timeout_ms = timeout_expr; /* select() rewrites its timeval */                 \
    iteration_end(kind, key, timeout_ms);                                              \
    if (counted) {                                                                     \
      loopsan__before_wait(timeout_ms);                                                \
      loopsan__hot.wait_credit = LOOPSAN_WAIT_CREDIT;                                      \
    } else                                                                             \
      loopsan__before_wait_maybe(timeout_ms);                                          \
    ret rc = real args;                                                                \
    int saved_errno = errno;                                                           \
    iteration_begin(kind, key, timeout_ms);                                            \
    errno = saved_errno;                                                               \
    return rc;                                                                         \
  }                                                                                    \
  LOOPSAN_INTERPOSE ret name params {                                                  \
    ret(*real) params = real_##name;                                                   \
    if (LOOPSAN_LIKELY(real && loopsan__wait_take_credit(timeout_expr)))               \
      return real args;                                                                \
    if (LOOPSAN_LIKELY(real && loopsan__state.active && adapter_wait())) {             \
      if (LOOPSAN_LIKELY(loopsan__wait_after_callback())) {                            \
        loopsan__hot.wait_credit = LOOPSAN_WAIT_CREDIT;                                    \
        return real args;                                                              \
      }                                                                                \
      return slow_##name WITH_SITE_COUNTED args;                                       \
    }                                                                                  \
    return slow_##name WITH_SITE args;                                                 \
  }

#define SITE site
LIBC_WAITS(WAIT_WRAPPER)
