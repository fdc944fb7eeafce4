/* The libc calls an event loop blocks in (epoll_wait, poll, ...). For now
 * they only give the shim a moment to write out buffered records before the
 * thread sleeps (loopsan__before_wait); the generic layer for loops loopsan
 * has no adapter for will time the gaps between them. A call costs one
 * thread-local load when the thread has nothing buffered. */
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <time.h>

#include "preload/shim.h"

static int timespec_ms(const struct timespec *ts) {
  if (!ts)
    return -1;
  if (ts->tv_sec >= 1000)
    return 1000000;
  return (int)(ts->tv_sec * 1000 + ts->tv_nsec / 1000000);
}

/* (name, return type, parameters, arguments, timeout in ms as an expression) */
#define LIBC_WAITS(X)                                                                             \
  X(epoll_wait, int, (int epfd, struct epoll_event *ev, int max, int timeout),                    \
    (epfd, ev, max, timeout), timeout)                                                            \
  X(epoll_pwait, int,                                                                             \
    (int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *mask),               \
    (epfd, ev, max, timeout, mask), timeout)                                                      \
  X(epoll_pwait2, int,                                                                            \
    (int epfd, struct epoll_event *ev, int max, const struct timespec *ts, const sigset_t *mask), \
    (epfd, ev, max, ts, mask), timespec_ms(ts))                                                   \
  X(poll, int, (struct pollfd * fds, nfds_t n, int timeout), (fds, n, timeout), timeout)          \
  X(ppoll, int, (struct pollfd * fds, nfds_t n, const struct timespec *ts, const sigset_t *mask), \
    (fds, n, ts, mask), timespec_ms(ts))

#define WAIT_WRAPPER(name, ret, params, args, timeout_expr) \
  LOOPSAN_INTERPOSE ret name params {                       \
    static ret(*real) params;                               \
    if (LOOPSAN_UNLIKELY(!real)) {                          \
      int saved = errno;                                    \
      real = (ret(*) params)dlsym(RTLD_NEXT, #name);        \
      errno = saved;                                        \
      if (!real) {                                          \
        errno = ENOSYS;                                     \
        return -1;                                          \
      }                                                     \
    }                                                       \
    if (loopsan__state.active)                              \
      loopsan__before_wait_maybe(timeout_expr);             \
    return real args;                                       \
  }

LIBC_WAITS(WAIT_WRAPPER)
