/* The libc calls an event loop blocks in (epoll_wait, poll, ...). They give
 * the shim a moment to write out buffered records before the thread sleeps
 * (loopsan__before_wait), and they are the generic layer for loops loopsan
 * has no adapter for (Node.js's built-in libuv, Python's asyncio, any
 * epoll loop): on a thread not running an adapter's loop, the time from
 * an epoll wait's return to the thread's next wait is one iteration of
 * its loop, timed like a callback (a pseudo-dispatch of
 * library "generic", slot LOOPSAN_DISPATCH_ITERATION): one over --slow-ms
 * is a blocked-loop, and blocking calls inside it are seen as inside a
 * callback. A thread running an adapter's loop (uv_run, ev_run, ...) is
 * left to its adapter, which times its callbacks. */
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
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

/* The iteration in progress on this thread, if any. */
static LOOPSAN_TLS struct {
  int epfd; /* the descriptor its waits are on */
  int open; /* an iteration is being timed */
  struct loopsan_dispatch d;
} generic;

/* Before a wait on EPFD: the iteration that ends here. A poll or select
 * (EPFD -1) is something the iteration does, not its end; a wait on
 * another epoll descriptor is another loop's, and what came before it is
 * no iteration of either (a thread that waited once for something else):
 * dropped untimed. */
static inline void iteration_end(int epfd) {
  if (LOOPSAN_LIKELY(!generic.open) || epfd < 0)
    return;
  generic.open = 0;
  if (LOOPSAN_LIKELY(epfd == generic.epfd)) {
    loopsan__dispatch_end(&generic.d);
  } else if (generic.d.region) {
    struct loopsan_spill_header *h = generic.d.region;
    __atomic_store_n(&h->depth, h->depth - 1, __ATOMIC_RELEASE);
  }
}

/* After a wait on EPFD (-1: not an epoll wait): what follows, up to the
 * thread's next wait, is an iteration of the loop waiting on EPFD. From
 * the first wait on: asyncio.run() runs the first step of its coroutine
 * between the loop's first and second waits. (A thread that waits once
 * and never again has no iteration that ends: nothing is said of it.) */
static inline void iteration_begin(int epfd) {
  if (epfd < 0 || loopsan__adapter_loops || !loopsan__state.active)
    return;
  generic.epfd = epfd;
  generic.open = 1;
  loopsan__dispatch_begin(&generic.d, 0, (const void *)(uintptr_t)(unsigned)epfd,
                          LOOPSAN_DISPATCH_ITERATION, LOOPSAN_LIB_GENERIC);
}

/* (name, return type, parameters, arguments, timeout in ms as an
 * expression, the epoll descriptor or -1) */
#define LIBC_WAITS(X)                                                                             \
  X(epoll_wait, int, (int epfd, struct epoll_event *ev, int max, int timeout),                    \
    (epfd, ev, max, timeout), timeout, epfd)                                                      \
  X(epoll_pwait, int,                                                                             \
    (int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *mask),               \
    (epfd, ev, max, timeout, mask), timeout, epfd)                                                \
  X(epoll_pwait2, int,                                                                            \
    (int epfd, struct epoll_event *ev, int max, const struct timespec *ts, const sigset_t *mask), \
    (epfd, ev, max, ts, mask), timespec_ms(ts), epfd)                                             \
  X(poll, int, (struct pollfd * fds, nfds_t n, int timeout), (fds, n, timeout), timeout, -1)      \
  X(ppoll, int, (struct pollfd * fds, nfds_t n, const struct timespec *ts, const sigset_t *mask), \
    (fds, n, ts, mask), timespec_ms(ts), -1)                                                      \
  X(select, int, (int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv), (n, r, w, e, tv),  \
    timeval_ms(tv), -1)

#define WAIT_WRAPPER(name, ret, params, args, timeout_expr, epfd_expr) \
  LOOPSAN_INTERPOSE ret name params {                                  \
    static ret(*real) params;                                          \
    if (LOOPSAN_UNLIKELY(!real)) {                                     \
      int saved = errno;                                               \
      real = (ret(*) params)dlsym(RTLD_NEXT, #name);                   \
      errno = saved;                                                   \
      if (!real) {                                                     \
        errno = ENOSYS;                                                \
        return -1;                                                     \
      }                                                                \
    }                                                                  \
    if (!loopsan__state.active)                                        \
      return real args;                                                \
    iteration_end(epfd_expr);                                          \
    loopsan__before_wait_maybe(timeout_expr);                          \
    ret rc = real args;                                                \
    int saved_errno = errno;                                           \
    iteration_begin(epfd_expr);                                        \
    errno = saved_errno;                                               \
    return rc;                                                         \
  }

LIBC_WAITS(WAIT_WRAPPER)
