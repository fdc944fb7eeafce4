/* libuv calls on handles in a state that forbids them.
 *
 * misuse use-after-close  a timer closed in close_ticker() (its close
 *                         callback has run) is started again from another
 *                         timer's callback (restart_later): misuse, with
 *                         the close's call site; libuv refuses the call
 *                         (UV_EINVAL) and the program goes on, exit 0.
 * misuse reinit           a timer started in arm_ticker() is initialised
 *                         again in reset_ticker() while active: misuse
 *                         (libuv's handle list would hold it twice); the
 *                         program then exits without running the loop.
 * misuse clean            a timer closed, its close callback run, then
 *                         initialised again and used: no misuse. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static uv_timer_t ticker, later;
static uv_timer_cb later_cb;
static int close_ran, restart_rc = 1;

static void on_tick(uv_timer_t *t) { (void)t; }

/* The later timer starts here, once the close has completed: started
 * before uv_run, it could fire first on a loaded machine (libuv runs due
 * timers before it completes closes), when the ticker is still closing. */
static void on_closed(uv_handle_t *h) {
  (void)h;
  close_ran = 1;
  uv_timer_start(&later, later_cb, 5, 0);
}

static __attribute__((noinline)) void arm_ticker(uv_loop_t *loop) {
  uv_timer_init(loop, &ticker);
  uv_timer_start(&ticker, on_tick, 1000, 0);
}

static __attribute__((noinline)) void close_ticker(void) {
  uv_close((uv_handle_t *)&ticker, on_closed);
}

static __attribute__((noinline)) void restart_later(uv_timer_t *t) {
  restart_rc = uv_timer_start(&ticker, on_tick, 1000, 0); /* closed: refused */
  uv_close((uv_handle_t *)t, NULL);
}

static __attribute__((noinline)) void reset_ticker(uv_loop_t *loop) {
  uv_timer_init(loop, &ticker); /* still active */
}

static void on_reused(uv_timer_t *t) { uv_close((uv_handle_t *)t, NULL); }

static void reuse(uv_timer_t *t) {
  (void)t;
  uv_timer_init(t->loop, &ticker); /* closed before: a new handle */
  uv_timer_start(&ticker, on_reused, 1, 0);
  uv_close((uv_handle_t *)t, NULL);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  uv_loop_t *loop = uv_default_loop();
  arm_ticker(loop);
  if (strcmp(mode, "reinit") == 0) {
    reset_ticker(loop);
    puts("reinitialised");
    exit(0);
  }
  close_ticker();
  uv_timer_init(loop, &later);
  later_cb = strcmp(mode, "clean") == 0 ? reuse : restart_later;
  uv_run(loop, UV_RUN_DEFAULT);
  printf("close ran %d, restart %s\n", close_ran, restart_rc == UV_EINVAL ? "refused" : "?");
  return uv_loop_close(loop) != 0;
}
