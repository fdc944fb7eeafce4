/* Fatal signals and the program's own handlers.
 *
 * crash segv     a timer callback (on_tick, armed in arm_ticker) reads
 *                through a NULL pointer in parse_header(): crash,
 *                SIGSEGV; the process dies of it (139).
 * crash fpe      a callback (on_tick) divides by zero in average():
 *                crash, SIGFPE (136).
 * crash handled  the program handles SIGSEGV itself, as a JIT or a GC
 *                does: its handler (recover) is the one sigaction reports
 *                back, it runs on a fault inside a callback and jumps out;
 *                the program goes on and exits 0. No finding.
 * crash reraise  the program's handler (report_and_die) prints a line,
 *                puts back SIG_DFL and raises the signal again: crash in
 *                on_tick, the process dies of SIGSEGV (139), the line
 *                printed.
 * crash outside  SIGSEGV in main before the loop runs: no finding (a note
 *                says where), the process dies of it (139).
 * crash overflow on_tick recurses without end (descend): the stack
 *                overflows, and no handler can run without a stack; the
 *                process dies of SIGSEGV all the same, and the dispatch in
 *                progress (in the spill header) still names on_tick. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

static const char *mode;
static uv_timer_t ticker;
static volatile int zero;
static const char *volatile nowhere;

static __attribute__((noipa)) int parse_header(const char *p) { return p[3] == ':'; }

static __attribute__((noipa)) int average(int sum, int n) { return sum / n; }

static volatile int bottom = -1; /* never reached: -1 as unsigned */

static __attribute__((noinline)) int descend(int n) {
  volatile char frame[512];
  frame[0] = (char)n;
  if ((unsigned)n == (unsigned)bottom)
    return frame[0];
  return descend(n + 1) + frame[0];
}

static sigjmp_buf probe;
static volatile int recovered;

static void recover(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)si;
  (void)uc;
  recovered++;
  siglongjmp(probe, 1);
}

static void report_and_die(int sig) {
  static const char line[] = "report_and_die: fatal signal\n";
  if (write(2, line, sizeof line - 1) < 0)
    _exit(99);
  signal(sig, SIG_DFL);
  raise(sig);
}

static void on_tick(uv_timer_t *t) {
  if (strcmp(mode, "fpe") == 0) {
    printf("%d\n", average(10, zero));
  } else if (strcmp(mode, "overflow") == 0) {
    printf("%d\n", descend(0));
  } else if (strcmp(mode, "handled") == 0) {
    if (sigsetjmp(probe, 1) == 0)
      printf("%d\n", parse_header(nowhere)); /* faults, recovered */
  } else {
    printf("%d\n", parse_header(nowhere));
  }
  uv_close((uv_handle_t *)t, NULL);
}

static void arm_ticker(uv_loop_t *loop) {
  uv_timer_init(loop, &ticker);
  uv_timer_start(&ticker, on_tick, 1, 0);
}

int main(int argc, char **argv) {
  mode = argc > 1 ? argv[1] : "segv";
  setvbuf(stdout, NULL, _IONBF, 0);
  if (strcmp(mode, "handled") == 0) {
    struct sigaction sa, back;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = recover;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    /* Read back as the kernel keeps it (glibc adds SA_RESTORER). */
    if (sigaction(SIGSEGV, &sa, NULL) != 0 || sigaction(SIGSEGV, NULL, &back) != 0 ||
        back.sa_sigaction != recover || !(back.sa_flags & 0x04000000) || !back.sa_restorer) {
      puts("sigaction does not report the program's own handler");
      return 3;
    }
  } else if (strcmp(mode, "reraise") == 0) {
    if (signal(SIGSEGV, report_and_die) != SIG_DFL) {
      puts("signal() did not report SIG_DFL before");
      return 3;
    }
  } else if (strcmp(mode, "outside") == 0) {
    printf("%d\n", parse_header(nowhere));
  }
  uv_loop_t *loop = uv_default_loop();
  arm_ticker(loop);
  uv_run(loop, UV_RUN_DEFAULT);
  printf("recovered %d\n", recovered);
  return uv_loop_close(loop) != 0;
}
