/* Start-up, fork, exec and exit.
 *
 * There is no helper thread: records are written out by the threads that
 * make them (writer.c, loopsan__before_wait). The shim stays passive (every interposed function a
 * plain pass-through) in setuid/setgid programs, when LOOPSAN_OPTIONS is wrong, or when the trace
 * file cannot be created: when in doubt it stops observing, never the
 * program. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload/adapter.h"
#include "preload/shim.h"
#include "preload/tracefile.h"

struct loopsan_shim_state loopsan__state;

static LOOPSAN_TLS uint32_t cached_tid;
static _Atomic int exit_status_known;
static int exit_status = -1;

uint32_t loopsan__tid(void) {
  if (LOOPSAN_UNLIKELY(!cached_tid))
    cached_tid = (uint32_t)syscall(SYS_gettid);
  return cached_tid;
}

static void atfork_child(void) {
  if (!loopsan__state.active)
    return;
  cached_tid = 0;
  atomic_store(&exit_status_known, 0);
  loopsan__state.pid = (uint32_t)getpid();
  loopsan__writer_atfork_child(); /* the child's trace opens when it first has records */
  loopsan__stacks_atfork_child();
  loopsan__events_atfork_child();
}

__attribute__((constructor)) static void loopsan_init(void) {
  int saved = errno;
  char err[256];
  loopsan__blocking_init(); /* pass-through needs them even when not observing */
  loopsan__signals_resolve();
  if (getauxval(AT_SECURE))
    goto out; /* setuid/setgid: do nothing at all */
  loopsan_options_default(&loopsan__state.opts);
  const char *spec = getenv("LOOPSAN_OPTIONS");
  if (spec && loopsan_options_parse(&loopsan__state.opts, spec, err, sizeof err) != 0) {
    fprintf(stderr, "loopsan: LOOPSAN_OPTIONS: %s; not observing this process\n", err);
    goto out;
  }
  loopsan__clock_init();
  loopsan__state.slow_ticks = (uint64_t)((double)loopsan__state.opts.slow_ms *
                                         (double)loopsan__clock_ticks_per_sec() / 1000.0);
  loopsan__state.blocking_ticks = (uint64_t)((double)loopsan__state.opts.blocking_ms *
                                             (double)loopsan__clock_ticks_per_sec() / 1000.0);
  loopsan__state.record_all = loopsan__state.opts.record_mode == LOOPSAN_RECORD_ALL;
  if (loopsan__state.record_all)
    loopsan__state.slow_ticks = 0; /* every dispatch is written */
  loopsan__state.pid = (uint32_t)getpid();
  loopsan__adapters_register();
  if (loopsan__writer_open() != 0) {
    fprintf(stderr, "loopsan: cannot create a trace file in '%s': %s; not observing this process\n",
            loopsan__state.opts.trace_dir, strerror(errno));
    goto out;
  }
  pthread_atfork(NULL, NULL, atfork_child);
  loopsan__state.active = 1;
  loopsan__signals_init();
out:
  errno = saved;
}

__attribute__((destructor)) static void loopsan_fini(void) {
  if (!loopsan__state.active || (uint32_t)getpid() != loopsan__state.pid)
    return;
  int saved = errno;
  loopsan__writer_close(LOOPSAN_END_EXIT, atomic_load(&exit_status_known) ? exit_status : -1);
  errno = saved;
}

/* ---- exit, _exit and exec: end the trace before the image goes away ---- */

typedef void (*noreturn_fn)(int) __attribute__((noreturn));

static void *real_fn(const char *name) {
  void *fn = dlsym(RTLD_NEXT, name);
  return fn;
}

LOOPSAN_INTERPOSE void exit(int status) {
  static noreturn_fn real_exit;
  if (!real_exit)
    real_exit = (noreturn_fn)real_fn("exit");
  exit_status = status;
  atomic_store(&exit_status_known, 1);
  real_exit(status);
}

static void end_now(uint32_t how, int status) {
  if (loopsan__state.active && (uint32_t)getpid() == loopsan__state.pid) {
    int saved = errno;
    loopsan__writer_close(how, status);
    errno = saved;
  }
}

/* The ways out that run no destructors (ours included): the trace ends
 * before the real call. */
#define END_WRAPPER(name)                   \
  LOOPSAN_INTERPOSE void name(int status) { \
    static noreturn_fn real;                \
    if (!real)                              \
      real = (noreturn_fn)real_fn(#name);   \
    end_now(LOOPSAN_END__EXIT, status);     \
    real(status);                           \
  }
END_WRAPPER(_exit)
END_WRAPPER(_Exit)
END_WRAPPER(quick_exit)

/* daemon(): glibc's ends the parent with an _exit made inside libc, which
 * no interposer sees, so the parent's trace would look killed (its
 * objects unjudged). The same steps, made of public calls, as glibc's. */
LOOPSAN_INTERPOSE int daemon(int nochdir, int noclose) {
  switch (fork()) {
  case -1: return -1;
  case 0: break;
  default: _exit(0); /* (ours: the trace ends with status 0) */
  }
  if (setsid() == -1)
    return -1;
  if (!nochdir)
    (void)!chdir("/");
  if (!noclose) {
    struct stat st;
    int fd = open("/dev/null", O_RDWR);
    if (fd == -1)
      return -1;
    if (fstat(fd, &st) != 0) {
      close(fd);
      return -1;
    }
    if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) {
      close(fd);
      errno = ENODEV;
      return -1;
    }
    (void)dup2(fd, STDIN_FILENO);
    (void)dup2(fd, STDOUT_FILENO);
    (void)dup2(fd, STDERR_FILENO);
    if (fd > 2)
      close(fd);
  }
  return 0;
}

/* A library about to be unloaded is recorded first, so that frames and
 * callbacks inside it can still be named (the map is otherwise re-read at
 * most once a second). dlclose, unlike dlopen, resolves no $ORIGIN for its
 * caller, so interposing it changes nothing for the program. */
LOOPSAN_INTERPOSE int dlclose(void *handle) {
  static int (*real)(void *);
  if (!real)
    real = (int (*)(void *))real_fn("dlclose");
  if (!real)
    return -1;
  if (loopsan__state.active && loopsan__trace_is_open()) { /* not in a silent forked child */
    int saved = errno;
    loopsan__modules_emit_if_changed(0);
    errno = saved;
  }
  return real(handle);
}

/* exec: the trace is ended (how=exec) and written out first; if exec fails
 * the process goes on and a later END supersedes it. In a vfork child the
 * pid differs from ours: nothing is touched. */
#define EXEC_WRAPPER(name, params, args)    \
  LOOPSAN_INTERPOSE int name params {       \
    static int(*real) params;               \
    if (!real)                              \
      real = (int(*) params)real_fn(#name); \
    if (!real) {                            \
      errno = ENOSYS;                       \
      return -1;                            \
    }                                       \
    end_now(LOOPSAN_END_EXEC, -1);          \
    return real args;                       \
  }

EXEC_WRAPPER(execve, (const char *path, char *const argv[], char *const envp[]), (path, argv, envp))
EXEC_WRAPPER(execv, (const char *path, char *const argv[]), (path, argv))
EXEC_WRAPPER(execvp, (const char *file, char *const argv[]), (file, argv))
EXEC_WRAPPER(execvpe, (const char *file, char *const argv[], char *const envp[]),
             (file, argv, envp))
EXEC_WRAPPER(fexecve, (int fd, char *const argv[], char *const envp[]), (fd, argv, envp))

/* execl, execlp and execle take their arguments as varargs and reach
 * execve inside libc, where no interposer sees them: they are rebuilt here
 * on top of the wrappers above (an array on the stack, no malloc). */
#define COLLECT_ARGS(first, ap, argv)  \
  size_t n_args = 1;                   \
  va_start(ap, first);                 \
  while (va_arg(ap, char *) != NULL)   \
    n_args++;                          \
  va_end(ap);                          \
  char *argv[n_args + 1];              \
  argv[0] = (char *)(first);           \
  va_start(ap, first);                 \
  for (size_t i = 1; i <= n_args; i++) \
    argv[i] = va_arg(ap, char *);

LOOPSAN_INTERPOSE int execl(const char *path, const char *arg, ...) {
  va_list ap;
  COLLECT_ARGS(arg, ap, argv);
  va_end(ap);
  return execv(path, argv);
}

LOOPSAN_INTERPOSE int execlp(const char *file, const char *arg, ...) {
  va_list ap;
  COLLECT_ARGS(arg, ap, argv);
  va_end(ap);
  return execvp(file, argv);
}

LOOPSAN_INTERPOSE int execle(const char *path, const char *arg, ...) {
  va_list ap;
  COLLECT_ARGS(arg, ap, argv);
  char *const *envp = va_arg(ap, char *const *);
  va_end(ap);
  return execve(path, argv, envp);
}
