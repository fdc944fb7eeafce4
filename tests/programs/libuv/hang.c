/* Never exits by itself: a repeating timer created in start_ticker() with
 * callback on_tick keeps the default loop alive, and every 100 ms it opens
 * and closes a short-lived timer, so the trace keeps growing (one chunk a
 * second). tests/cli.test kills it with SIGKILL and checks that the trace
 * written so far still shows the ticker as left open, and that a trace cut
 * in its last chunk keeps what came before. With the argument "busy" the
 * first tick never returns: the loop never reaches a wait again, and what
 * it recorded survives only in its spill file. With "fork" the same happens
 * in a forked child (no exec), which the parent kills after a second. With
 * "orphan" the parent exits at once and leaves the child, stuck in its
 * first tick, to be killed by its own SIGALRM 300 ms later: loopsan run
 * reaps it (as subreaper) and knows when it died. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

static uv_timer_t ticker;
static unsigned long ticks;
static int busy; /* "hang busy": the first tick never returns */

static void on_churn_closed(uv_handle_t *h) { free(h); }

static void on_tick(uv_timer_t *t) {
  while (busy)
    ticks++; /* stuck in a callback: the loop never waits again */
  if (++ticks % 10 == 0) {
    uv_timer_t *churn = malloc(sizeof *churn);
    if (churn && uv_timer_init(t->loop, churn) == 0)
      uv_close((uv_handle_t *)churn, on_churn_closed);
  }
}

static void start_ticker(uv_loop_t *loop) {
  uv_timer_init(loop, &ticker);
  uv_timer_start(&ticker, on_tick, 10, 10);
}

int main(int argc, char **argv) {
  if (argc > 1 && argv[1][0] == 'f') {
    /* "fork": a forked child (no exec) gets stuck in a callback and its
     * parent kills it with SIGKILL, then exits normally. */
    pid_t child = fork();
    if (child == 0) {
      busy = 1;
    } else {
      struct timespec pause = {1, 0};
      nanosleep(&pause, NULL);
      kill(child, SIGKILL);
      waitpid(child, NULL, 0);
      return 0;
    }
  }
  if (argc > 1 && argv[1][0] == 'o') {
    if (fork() != 0)
      return 0;
    busy = 1;
    struct itimerval in_300ms = {{0, 0}, {0, 300000}};
    setitimer(ITIMER_REAL, &in_300ms, NULL);
  }
  busy |= argc > 1 && argv[1][0] == 'b';
  uv_loop_t *loop = uv_default_loop();
  start_ticker(loop);
  printf("hang: running\n");
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}
