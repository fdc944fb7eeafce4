/*
 * pending_timer.c -- provokes: an active timer still pending at exit.
 *
 * arm_timeout() initialises a timer on uv_default_loop() and starts it with
 * callback on_timeout and a 10 s timeout.  main runs the loop once with
 * UV_RUN_NOWAIT (the timer does not fire) and returns 0 without closing
 * anything (no uv_close, no uv_loop_close).  Runs in a few ms.
 *
 * A test should assert:
 *   kind = pending-at-exit, type = uv_timer_t, callback = on_timeout,
 *          created = arm_timeout
 *   kind = unclosed-handle, type = uv_timer_t, callback = on_timeout,
 *          created = arm_timeout
 * and no slow-callback.  (The default loop is also not closed; whether that
 * is reported as unclosed-loop is up to the tool's default-loop policy.)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* uv.h needs POSIX types under -std=c11 */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

static uv_timer_t timeout_timer;

static void on_timeout(uv_timer_t *timer) {
  (void)timer;
  fprintf(stderr, "pending_timer: timeout fired (unexpected)\n");
  exit(1);
}

static void arm_timeout(uv_loop_t *loop) {
  if (uv_timer_init(loop, &timeout_timer) != 0 ||
      uv_timer_start(&timeout_timer, on_timeout, 10000, 0) != 0)
    abort();
}

int main(void) {
  arm_timeout(uv_default_loop());
  uv_run(uv_default_loop(), UV_RUN_NOWAIT);
  return 0; /* BUG: exits with the timer armed */
}
