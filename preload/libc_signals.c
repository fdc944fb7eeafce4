/* Crashes inside callbacks: the fatal signals (SIGSEGV, SIGBUS, SIGFPE,
 * SIGILL, SIGABRT) go to a handler of the shim's, which records where the
 * signal came from and in which callback (a CRASH record), writes the
 * trace out, and lets the signal do what it would have done without
 * loopsan.
 *
 * The program keeps its signals. For these five, sigaction() and signal()
 * are interposed: what the program installs is kept here as the program's
 * action and reported back to it as its own, while the kernel keeps the
 * shim's handler with the program's mask and flags. A signal the program
 * handles goes straight to its handler, with the same arguments, and is no
 * crash: a JIT or a garbage collector that handles SIGSEGV runs as before.
 * Only a signal the program would die of is recorded; then the default
 * action is put back in the kernel and the signal raised again (one sent
 * by kill, raise or abort) or its instruction re-executed (a fault), so
 * the process dies of it as it would have, core dump included.
 *
 * A crash the handler never sees (a stack overflow leaves it no stack,
 * SIGKILL has no handler) is still known: the dispatch in progress is in
 * the thread's spill header, which the analyzer reads after the death. */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload/shim.h"

#ifndef SA_RESTORER /* the kernel's (asm/signal.h), which glibc's headers do not give */
#define SA_RESTORER 0x04000000
#endif

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
typedef __sighandler_t (*signal_fn)(int, __sighandler_t);
static sigaction_fn real_sigaction;
static signal_fn real_signal, real_bsd_signal, real_sysv_signal;

#define FATAL_SIGNALS(X) X(SIGSEGV) X(SIGBUS) X(SIGFPE) X(SIGILL) X(SIGABRT)

static int fatal(int sig) {
#define IS(s) sig == s ||
  return FATAL_SIGNALS(IS) 0;
#undef IS
}

/* What the program installed for each fatal signal (SIG_DFL until it
 * does). Written by sigaction calls, read by the handler: a program that
 * changes a handler while the signal arrives on another thread gets one or
 * the other, as with the kernel. */
static struct sigaction program_action[NSIG];
/* The shim's handler is in the kernel for that signal. */
static volatile sig_atomic_t ours[NSIG];

static LOOPSAN_TLS int crashing; /* a second fault while recording: let it be */

static void crash_handler(int sig, siginfo_t *si, void *uc);

/* Put the shim's handler in the kernel with ACT's mask and flags (the
 * program's). SA_RESETHAND is done here, so that the handler stays. */
static int install(int sig, const struct sigaction *act) {
  struct sigaction k;
  memset(&k, 0, sizeof k);
  k.sa_sigaction = crash_handler;
  k.sa_mask = act->sa_mask;
  k.sa_flags = (act->sa_flags & ~SA_RESETHAND) | SA_SIGINFO;
  return real_sigaction(sig, &k, NULL);
}

static void record_crash(int sig, const siginfo_t *si, void *uc) {
  const struct loopsan_spill_header *h = loopsan__hot.region;
  struct loopsan_rec_crash r = {.h.aux = (uint32_t)sig,
                                .ts = loopsan__now(),
                                .addr = (uint64_t)(uintptr_t)si->si_addr,
                                .code = si->si_code,
                                .tid = loopsan__tid()};
  uint32_t depth = h ? h->depth : 0;
  if (depth && depth <= LOOPSAN_INFLIGHT_MAX) {
    const struct loopsan_inflight *in = &h->inflight[depth - 1];
    r.obj = in->obj;
    r.cb = LOOPSAN_IS_ITERATION(in->slot) ? 0 : in->cb;
    r.dispatch_ts = in->t0;
    r.library = (uint16_t)in->library;
    r.slot = (uint16_t)in->slot;
  }
  r.stack = loopsan__stack_capture_signal(uc);
  loopsan__emit(LOOPSAN_REC_CRASH, &r, sizeof r);
  loopsan__emit_counts(); /* what was observed, up to now */
  /* The records are in shared mappings already (spill files the analyzer
   * reads after a death); writing them out also covers a thread whose
   * spill file could not be made. Not from inside the writer itself. */
  if (!loopsan__writer_busy())
    loopsan__flush_all();
}

static void crash_handler(int sig, siginfo_t *si, void *uc) {
  int saved = errno;
  struct sigaction prog = program_action[sig];
  if (prog.sa_handler != SIG_DFL && prog.sa_handler != SIG_IGN) {
    /* The program's own handler, as if the kernel had called it. */
    if (prog.sa_flags & SA_RESETHAND) {
      memset(&program_action[sig], 0, sizeof program_action[sig]);
      program_action[sig].sa_handler = SIG_DFL;
    }
    errno = saved;
    if (prog.sa_flags & SA_SIGINFO)
      prog.sa_sigaction(sig, si, uc);
    else
      prog.sa_handler(sig);
    return;
  }
  int sent = si->si_code <= 0;              /* by kill, raise, abort: not a fault */
  if (prog.sa_handler == SIG_IGN && sent) { /* ignored, as the kernel would */
    errno = saved;
    return;
  }
  /* (An ignored fault kills all the same: the kernel does that too.) */
  if (!crashing && loopsan__state.active) {
    crashing = 1;
    record_crash(sig, si, uc);
  }
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  real_sigaction(sig, &dfl, NULL);
  ours[sig] = 0;
  if (sent) /* pending until this handler returns, then the default action */
    syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), sig);
  errno = saved;
  /* A fault: returning re-executes the instruction, which faults again. */
}

void loopsan__signals_resolve(void) {
  real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
  real_signal = (signal_fn)dlsym(RTLD_NEXT, "signal");
  real_bsd_signal = (signal_fn)dlsym(RTLD_NEXT, "bsd_signal");
  real_sysv_signal = (signal_fn)dlsym(RTLD_NEXT, "sysv_signal");
}

void loopsan__signals_init(void) {
  if (!real_sigaction)
    return;
#define TAKE(s)                                                                    \
  {                                                                                \
    struct sigaction cur;                                                          \
    if (real_sigaction(s, NULL, &cur) == 0) {                                      \
      program_action[s] = cur; /* installed before the shim loaded (or SIG_DFL) */ \
      if (install(s, &cur) == 0)                                                   \
        ours[s] = 1;                                                               \
    }                                                                              \
  }
  FATAL_SIGNALS(TAKE)
#undef TAKE
}

LOOPSAN_INTERPOSE int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
  if (LOOPSAN_UNLIKELY(!real_sigaction)) {
    loopsan__signals_resolve();
    if (!real_sigaction) {
      errno = ENOSYS;
      return -1;
    }
  }
  if (!fatal(sig) || !ours[sig])
    return real_sigaction(sig, act, old);
  /* Through the kernel first: a bad mask or flag fails as it would. */
  if (act && install(sig, act) != 0)
    return -1;
  if (old)
    *old = program_action[sig];
  if (act) {
    /* As the kernel keeps it: glibc adds SA_RESTORER and its restorer,
     * and a program reading its action back sees them. */
    struct sigaction k, mine = *act;
    if (real_sigaction(sig, NULL, &k) == 0) {
      mine.sa_flags |= k.sa_flags & SA_RESTORER;
      mine.sa_restorer = k.sa_restorer;
    }
    program_action[sig] = mine;
  }
  return 0;
}

/* signal() is sigaction with BSD semantics in glibc (its own call to
 * sigaction is internal: it would not reach the interposer above). For
 * the fatal signals the shim handles, the same is done here; any other
 * goes to glibc's own (which keeps siginterrupt()'s state). */
static __sighandler_t set_handler(signal_fn real, int sig, __sighandler_t handler, int flags,
                                  int mask_self) {
  if (sig <= 0 || sig >= NSIG || !fatal(sig) || !ours[sig]) {
    if (real)
      return real(sig, handler);
    errno = ENOSYS;
    return SIG_ERR;
  }
  struct sigaction act, old;
  memset(&act, 0, sizeof act);
  act.sa_handler = handler;
  act.sa_flags = flags;
  sigemptyset(&act.sa_mask);
  if (mask_self)
    sigaddset(&act.sa_mask, sig);
  if (handler == SIG_ERR) {
    errno = EINVAL;
    return SIG_ERR;
  }
  return sigaction(sig, &act, &old) == 0 ? old.sa_handler : SIG_ERR;
}

LOOPSAN_INTERPOSE __sighandler_t signal(int sig, __sighandler_t handler) {
  if (LOOPSAN_UNLIKELY(!real_sigaction))
    loopsan__signals_resolve();
  return set_handler(real_signal, sig, handler, SA_RESTART, 1);
}

__sighandler_t bsd_signal(int sig, __sighandler_t handler); /* not in every header set */
LOOPSAN_INTERPOSE __sighandler_t bsd_signal(int sig, __sighandler_t handler) {
  if (LOOPSAN_UNLIKELY(!real_sigaction))
    loopsan__signals_resolve();
  return set_handler(real_bsd_signal, sig, handler, SA_RESTART, 1);
}

LOOPSAN_INTERPOSE __sighandler_t sysv_signal(int sig, __sighandler_t handler) {
  if (LOOPSAN_UNLIKELY(!real_sigaction))
    loopsan__signals_resolve();
  return set_handler(real_sysv_signal, sig, handler, SA_RESETHAND | SA_NODEFER, 0);
}
