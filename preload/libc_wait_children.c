/* Children that end: the wait family is interposed so that a parent's trace
 * says when each child it reaped died, and how. A child killed while stuck
 * in a callback (a test runner's helper, a worker a supervisor killed) has
 * no END record of its own; its parent's record is what tells the analyzer
 * how long that callback ran. Results, errno and the caller's view are
 * untouched; only reaped children (exited or killed) are recorded. A wait
 * that may block (no WNOHANG) inside a loop callback is a blocking call
 * (libc_blocking.c). */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "preload/shim.h"
#include "preload/tracefile.h"

static void child_ended(pid_t pid, int wstatus) {
  /* A forked child that has recorded nothing keeps no trace for this. */
  if (pid <= 0 || !loopsan__state.active || !loopsan__trace_is_open() ||
      !(WIFEXITED(wstatus) || WIFSIGNALED(wstatus)))
    return;
  int saved = errno;
  struct loopsan_rec_child_exit r = {.ts = loopsan__now(), .pid = (uint32_t)pid, .status = wstatus};
  loopsan__emit(LOOPSAN_REC_CHILD_EXIT, &r, sizeof r);
  errno = saved;
}

#define REAL_OR_ENOSYS(fn, fail)                   \
  static __typeof__(&fn) real;                     \
  if (LOOPSAN_UNLIKELY(!real)) {                   \
    int saved_ = errno;                            \
    real = (__typeof__(&fn))dlsym(RTLD_NEXT, #fn); \
    errno = saved_;                                \
    if (!real) {                                   \
      errno = ENOSYS;                              \
      return fail;                                 \
    }                                              \
  }

LOOPSAN_INTERPOSE pid_t waitpid(pid_t pid, int *wstatus, int options) {
  REAL_OR_ENOSYS(waitpid, -1);
  int st = 0;
  uint64_t t0 = !(options & WNOHANG) && loopsan__in_callback() ? loopsan__now() : 0;
  pid_t rc = real(pid, wstatus ? wstatus : &st, options);
  if (t0)
    loopsan__blocked("waitpid", t0, (uintptr_t)__builtin_return_address(0), (const void *)real);
  if (rc > 0)
    child_ended(rc, wstatus ? *wstatus : st);
  return rc;
}

LOOPSAN_INTERPOSE pid_t wait(int *wstatus) {
  REAL_OR_ENOSYS(wait, -1);
  int st = 0;
  uint64_t t0 = loopsan__in_callback() ? loopsan__now() : 0;
  pid_t rc = real(wstatus ? wstatus : &st);
  if (t0)
    loopsan__blocked("wait", t0, (uintptr_t)__builtin_return_address(0), (const void *)real);
  if (rc > 0)
    child_ended(rc, wstatus ? *wstatus : st);
  return rc;
}

LOOPSAN_INTERPOSE pid_t wait3(int *wstatus, int options, struct rusage *ru) {
  REAL_OR_ENOSYS(wait3, -1);
  int st = 0;
  uint64_t t0 = !(options & WNOHANG) && loopsan__in_callback() ? loopsan__now() : 0;
  pid_t rc = real(wstatus ? wstatus : &st, options, ru);
  if (t0)
    loopsan__blocked("wait3", t0, (uintptr_t)__builtin_return_address(0), (const void *)real);
  if (rc > 0)
    child_ended(rc, wstatus ? *wstatus : st);
  return rc;
}

LOOPSAN_INTERPOSE pid_t wait4(pid_t pid, int *wstatus, int options, struct rusage *ru) {
  REAL_OR_ENOSYS(wait4, -1);
  int st = 0;
  uint64_t t0 = !(options & WNOHANG) && loopsan__in_callback() ? loopsan__now() : 0;
  pid_t rc = real(pid, wstatus ? wstatus : &st, options, ru);
  if (t0)
    loopsan__blocked("wait4", t0, (uintptr_t)__builtin_return_address(0), (const void *)real);
  if (rc > 0)
    child_ended(rc, wstatus ? *wstatus : st);
  return rc;
}

LOOPSAN_INTERPOSE int waitid(idtype_t idtype, id_t id, siginfo_t *info, int options) {
  REAL_OR_ENOSYS(waitid, -1);
  uint64_t t0 = !(options & WNOHANG) && loopsan__in_callback() ? loopsan__now() : 0;
  int rc = real(idtype, id, info, options);
  if (t0)
    loopsan__blocked("waitid", t0, (uintptr_t)__builtin_return_address(0), (const void *)real);
  if (rc == 0 && info && info->si_pid > 0 && !(options & WNOWAIT)) { /* WNOWAIT: not reaped yet */
    if (info->si_code == CLD_EXITED)
      child_ended(info->si_pid, W_EXITCODE(info->si_status, 0));
    else if (info->si_code == CLD_KILLED || info->si_code == CLD_DUMPED)
      child_ended(info->si_pid, W_EXITCODE(0, info->si_status));
  }
  return rc;
}
