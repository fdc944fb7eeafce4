/* Blocking libc calls made inside a loop callback (blocking-call): while a
 * callback sleeps, fsyncs, resolves a name or waits for a lock, nothing
 * else on its loop runs (asyncio's "Running blocking code"). Each call of
 * the table is interposed; outside a callback it costs the thread-local
 * check of loopsan__in_callback() and nothing else. Inside one it is
 * timed, and one lasting --blocking-ms or more is recorded with its stack
 * and the callback it was in (the innermost dispatch the thread's spill
 * header publishes). Results and errno are the call's own.
 *
 * read, write, recv, send, connect and accept are timed whatever the
 * descriptor's mode: on a non-blocking descriptor they return at once, so
 * only a call that really blocked can reach the threshold. The wait family
 * is in libc_wait_children.c, pthread_mutex_lock only counts when the lock
 * was taken (a trylock first). */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "preload/shim.h"

/* This thread is recording a blocking call: the calls the recording makes
 * (libunwind's, the writer's) are not timed. */
static LOOPSAN_TLS int recording;

/* A call on descriptor FD (-1: none; -2: one it did not wait on) that
 * began at T0. A long call on a non-blocking descriptor did not block: its
 * thread was only descheduled (a loaded machine), not a finding. */
static void blocked_on(const char *name, uint64_t t0, uintptr_t ra, const void *real, int fd) {
  uint64_t dt = loopsan__now() - t0;
  if (LOOPSAN_LIKELY(dt < loopsan__state.blocking_ticks) || recording || !loopsan__state.active ||
      fd == -2 || loopsan__is_self(ra))
    return;
  if (fd >= 0) {
    int saved = errno;
    long fl = syscall(SYS_fcntl, fd, F_GETFL);
    errno = saved;
    if (fl >= 0 && (fl & O_NONBLOCK))
      return;
  }
  const struct loopsan_spill_header *h = loopsan__hot.region;
  uint32_t depth = h ? h->depth : 0;
  if (!depth)
    return;
  /* A loop without an adapter reads a descriptor after its own poll said
   * it was ready (CMake's process loop): a read that took long there was
   * descheduled, not blocked. Its sleeps, syncs and locks still count. */
  if (fd >= 0 && depth <= LOOPSAN_INFLIGHT_MAX && LOOPSAN_IS_ITERATION(h->inflight[depth - 1].slot))
    return;
  int saved = errno;
  recording = 1;
  struct loopsan_rec_blocking r = {.ts = t0, .duration = dt, .name_len = (uint16_t)strlen(name)};
  if (depth <= LOOPSAN_INFLIGHT_MAX) {
    const struct loopsan_inflight *in = &h->inflight[depth - 1];
    r.obj = in->obj;
    r.cb = LOOPSAN_IS_ITERATION(in->slot) ? 0 : in->cb; /* there: the loop's fd or site */
    r.dispatch_ts = in->t0;
    r.library = (uint16_t)in->library;
  }
  r.stack = real ? loopsan__stack_capture_in(real) : loopsan__stack_capture();
  if (depth <= LOOPSAN_INFLIGHT_MAX && LOOPSAN_IS_ITERATION(h->inflight[depth - 1].slot)) {
    /* In a loop loopsan has no adapter for, only the next wait says that
     * this was an iteration, not work after the loop ended: held till then. */
    loopsan__generic_hold(&r, name);
    recording = 0;
    errno = saved;
    return;
  }
  loopsan__emit_tail(LOOPSAN_REC_BLOCKING, &r, sizeof r, name, r.name_len, NULL, 0);
  recording = 0;
  errno = saved;
}

void loopsan__blocked(const char *name, uint64_t t0, uintptr_t ra, const void *real) {
  blocked_on(name, t0, ra, real, -1);
}

/* (name, return type, parameters, arguments, value when the real call is
 * missing) */
#define LIBC_BLOCKING(X)                                                                          \
  X(sleep, unsigned, (unsigned s), (s), s, -1)                                                    \
  X(usleep, int, (useconds_t us), (us), -1, -1)                                                   \
  X(nanosleep, int, (const struct timespec *req, struct timespec *rem), (req, rem), -1, -1)       \
  X(clock_nanosleep, int,                                                                         \
    (clockid_t clk, int flags, const struct timespec *req, struct timespec *rem),                 \
    (clk, flags, req, rem), ENOSYS, -1)                                                           \
  X(fsync, int, (int fd), (fd), -1, -1)                                                           \
  X(fdatasync, int, (int fd), (fd), -1, -1)                                                       \
  X(syncfs, int, (int fd), (fd), -1, -1)                                                          \
  X(msync, int, (void *addr, size_t len, int flags), (addr, len, flags), -1, -1)                  \
  X(getaddrinfo, int,                                                                             \
    (const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res), \
    (node, service, hints, res), EAI_SYSTEM, -1)                                                  \
  X(gethostbyname, struct hostent *, (const char *name), (name), NULL, -1)                        \
  X(gethostbyname2, struct hostent *, (const char *name, int af), (name, af), NULL, -1)           \
  X(gethostbyname_r, int,                                                                         \
    (const char *name, struct hostent *ret, char *buf, size_t len, struct hostent **result,       \
     int *h_errnop),                                                                              \
    (name, ret, buf, len, result, h_errnop), ENOSYS, -1)                                          \
  X(system, int, (const char *command), (command), -1, -1)                                        \
  X(flock, int, (int fd, int op), (fd, op), -1, -1)                                               \
  X(pthread_join, int, (pthread_t t, void **ret), (t, ret), ENOSYS, -1)                           \
  X(sem_wait, int, (sem_t * sem), (sem), -1, -1)                                                  \
  X(read, ssize_t, (int fd, void *buf, size_t n), (fd, buf, n), -1, fd)                           \
  X(write, ssize_t, (int fd, const void *buf, size_t n), (fd, buf, n), -1, fd)                    \
  X(recv, ssize_t, (int fd, void *buf, size_t n, int flags), (fd, buf, n, flags), -1,             \
    (flags & MSG_DONTWAIT) ? -2 : fd)                                                             \
  X(send, ssize_t, (int fd, const void *buf, size_t n, int flags), (fd, buf, n, flags), -1,       \
    (flags & MSG_DONTWAIT) ? -2 : fd)                                                             \
  X(connect, int, (int fd, const struct sockaddr *addr, socklen_t len), (fd, addr, len), -1, fd)  \
  X(accept, int, (int fd, struct sockaddr *addr, socklen_t *len), (fd, addr, len), -1, fd)

/* The others (sync, fcntl, fcntl64, pthread_mutex_lock): their real
 * functions, resolved up front too (loopsan__blocking_init). */
static void (*real_sync)(void);
static int (*real_fcntl)(int, int, ...);
static int (*real_fcntl64)(int, int, ...);
static int (*real_pthread_mutex_lock)(pthread_mutex_t *);
static int (*real_pthread_mutex_trylock)(pthread_mutex_t *);

/* REAL (a variable) holds NAME's real function, resolved if need be, or
 * the caller returns FAIL. */
#define RESOLVE_INTO(real, name, ret, params, fail)              \
  if (LOOPSAN_UNLIKELY(!real)) {                                 \
    int saved_ = errno;                                          \
    real = real_##name = (ret(*) params)dlsym(RTLD_NEXT, #name); \
    errno = saved_;                                              \
    if (!real) {                                                 \
      errno = ENOSYS;                                            \
      return fail;                                               \
    }                                                            \
  }
#define RESOLVED(name, ret, params, fail) \
  ret(*real) params = real_##name;        \
  RESOLVE_INTO(real, name, ret, params, fail)

/* The real functions, resolved when the shim is loaded (dlsym is not
 * async-signal-safe: a program's first write() may be in a signal
 * handler); a call that comes before that resolves its own. */
#define DECLARE_BLOCKING_REAL(name, ret, params, args, fail, fd_expr) \
  static ret(*real_##name) params;
LIBC_BLOCKING(DECLARE_BLOCKING_REAL)
#define RESOLVE_BLOCKING_REAL(name, ret, params, args, fail, fd_expr) \
  if (!real_##name)                                                   \
    real_##name = (ret(*) params)dlsym(RTLD_NEXT, #name);

void loopsan__blocking_init(void) {
  int saved = errno;
  LIBC_BLOCKING(RESOLVE_BLOCKING_REAL)
  real_sync = (void (*)(void))dlsym(RTLD_NEXT, "sync");
  real_fcntl = (int (*)(int, int, ...))dlsym(RTLD_NEXT, "fcntl");
  real_fcntl64 = (int (*)(int, int, ...))dlsym(RTLD_NEXT, "fcntl64");
  real_pthread_mutex_lock = (int (*)(pthread_mutex_t *))dlsym(RTLD_NEXT, "pthread_mutex_lock");
  real_pthread_mutex_trylock =
      (int (*)(pthread_mutex_t *))dlsym(RTLD_NEXT, "pthread_mutex_trylock");
  errno = saved;
}

/* Each is two functions, as the waits are (libc_wait.c): the interposed
 * one is only the common case, a call outside any callback (or a
 * descriptor call in a generic-layer iteration, see blocked_on), and
 * jumps to libc with no frame of its own: a read() or write() of the
 * library's own, between callbacks, costs a dozen instructions. The timed
 * call gets the program's return address and the real function (NULL:
 * not resolved yet) as arguments. */
#define SPREAD(...) __VA_ARGS__
#define BLOCKING_WRAPPER(name, ret, params, args, fail, fd_expr)                    \
  static __attribute__((noinline))                                                  \
  ret timed_##name(uintptr_t ra, ret(*real) params, SPREAD params) {                \
    if (LOOPSAN_UNLIKELY(!real)) {                                                  \
      RESOLVE_INTO(real, name, ret, params, fail)                                   \
      if (!loopsan__in_callback() || ((fd_expr) != -1 && loopsan__in_iteration()))  \
        return real args;                                                           \
    }                                                                               \
    uint64_t t0 = loopsan__now();                                                   \
    ret rc = real args;                                                             \
    if (loopsan__blocked_long(t0))                                                  \
      blocked_on(#name, t0, ra, (const void *)real, fd_expr);                       \
    return rc;                                                                      \
  }                                                                                 \
  LOOPSAN_INTERPOSE ret name params {                                               \
    ret(*real) params = real_##name;                                                \
    if (LOOPSAN_LIKELY(real) &&                                                     \
        (LOOPSAN_LIKELY(!loopsan__in_callback()) ||                                 \
         ((fd_expr) != -1 && loopsan__in_iteration()))) /* (see blocked_on) */      \
      return real args;                                                             \
    return timed_##name((uintptr_t)__builtin_return_address(0), real, SPREAD args); \
  }
LIBC_BLOCKING(BLOCKING_WRAPPER)

LOOPSAN_INTERPOSE void sync(void) {
  RESOLVED(sync, void, (void), )
  LOOPSAN_BLOCKING_BEGIN();
  real();
  LOOPSAN_BLOCKING_END("sync", real);
}

/* Only the lock waits block (F_SETLKW, F_OFD_SETLKW). fcntl's third
 * argument is read as a pointer whatever it is, as glibc's own fcntl does
 * (every argument is an integer register on x86-64). */
#define FCNTL_WRAPPER(name)                                                                  \
  LOOPSAN_INTERPOSE int name(int fd, int cmd, ...) {                                         \
    va_list ap;                                                                              \
    va_start(ap, cmd);                                                                       \
    void *arg = va_arg(ap, void *);                                                          \
    va_end(ap);                                                                              \
    RESOLVED(name, int, (int, int, ...), -1)                                                 \
    if (LOOPSAN_LIKELY(!loopsan__in_callback()) || (cmd != F_SETLKW && cmd != F_OFD_SETLKW)) \
      return real(fd, cmd, arg);                                                             \
    LOOPSAN_BLOCKING_BEGIN();                                                                \
    int rc = real(fd, cmd, arg);                                                             \
    LOOPSAN_BLOCKING_END("fcntl(F_SETLKW)", real);                                           \
    return rc;                                                                               \
  }
FCNTL_WRAPPER(fcntl)
FCNTL_WRAPPER(fcntl64)

/* A mutex counts only when it had to wait: tried first. */
LOOPSAN_INTERPOSE int pthread_mutex_lock(pthread_mutex_t *m) {
  RESOLVED(pthread_mutex_lock, int, (pthread_mutex_t *), EINVAL)
  if (LOOPSAN_LIKELY(!loopsan__in_callback()))
    return real(m);
  int (*try_lock)(pthread_mutex_t *) = real_pthread_mutex_trylock;
  if (!try_lock || try_lock(m) == 0)
    return try_lock ? 0 : real(m);
  LOOPSAN_BLOCKING_BEGIN();
  int rc = real(m);
  LOOPSAN_BLOCKING_END("pthread_mutex_lock", real);
  return rc;
}
