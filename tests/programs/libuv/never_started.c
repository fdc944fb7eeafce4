/*
 * never_started.c -- provokes: a handle that is initialised but never started.
 *
 * prepare_idle() uv_idle_init's an idle handle but never calls
 * uv_idle_start on it.  A timer (created in start_done_timer, callback
 * on_done_timer) runs normally; from it both the idle handle (close callback
 * on_idle_closed) and the timer are uv_close'd.  The loop is closed cleanly
 * (uv_loop_close == 0 asserted).  Exit status 0.
 *
 * A test should assert exactly one finding:
 *   kind = never-started, type = uv_idle_t, created = prepare_idle
 * (no callback: it was never started; nothing else is reported.)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* uv.h needs POSIX types under -std=c11 */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

static uv_idle_t idle;
static uv_timer_t done_timer;
static int idle_closed;

static void on_idle_closed(uv_handle_t *handle) {
  (void)handle;
  idle_closed = 1;
}

static void prepare_idle(uv_loop_t *loop) {
  if (uv_idle_init(loop, &idle) != 0)
    abort();
  /* BUG: uv_idle_start(&idle, ...) is never called */
}

static void on_done_timer(uv_timer_t *timer) {
  uv_close((uv_handle_t *)&idle, on_idle_closed);
  uv_close((uv_handle_t *)timer, NULL);
}

static void start_done_timer(uv_loop_t *loop) {
  if (uv_timer_init(loop, &done_timer) != 0 ||
      uv_timer_start(&done_timer, on_done_timer, 5, 0) != 0)
    abort();
}

int main(void) {
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0)
    abort();
  prepare_idle(&loop);
  start_done_timer(&loop);
  uv_run(&loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&loop);
  if (rc != 0 || !idle_closed) {
    fprintf(stderr, "never_started: uv_loop_close: %s\n", uv_strerror(rc));
    return 1;
  }
  return 0;
}
