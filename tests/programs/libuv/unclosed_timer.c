/*
 * unclosed_timer.c -- provokes: a handle that is stopped but never closed,
 * and therefore a loop that cannot be closed.
 *
 * main() mallocs a loop and uv_loop_init's it.  A repeating timer created in
 * make_heartbeat() with callback on_heartbeat ticks 3 times and is then
 * stopped with uv_timer_stop -- but never uv_close'd.  uv_run returns, main
 * calls uv_loop_close, which returns UV_EBUSY (printed as
 * "unclosed_timer: uv_loop_close = EBUSY"), and exits 0 without cleanup.
 *
 * A test should assert (and no slow-callback / pending-at-exit):
 *   kind = unclosed-handle, type = uv_timer_t, callback = on_heartbeat,
 *          created = make_heartbeat
 *   kind = unclosed-loop,   type = uv_loop_t,  created = main
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* uv.h needs POSIX types under -std=c11 */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

static int heartbeats;

static void on_heartbeat(uv_timer_t *timer) {
  if (++heartbeats == 3)
    uv_timer_stop(timer); /* BUG: stopped, but never uv_close'd */
}

static uv_timer_t *make_heartbeat(uv_loop_t *loop) {
  uv_timer_t *timer = malloc(sizeof *timer);
  if (!timer || uv_timer_init(loop, timer) != 0)
    abort();
  if (uv_timer_start(timer, on_heartbeat, 5, 5) != 0)
    abort();
  return timer;
}

int main(void) {
  uv_loop_t *loop = malloc(sizeof *loop);
  if (!loop || uv_loop_init(loop) != 0)
    abort();
  make_heartbeat(loop);
  uv_run(loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(loop);
  printf("unclosed_timer: uv_loop_close = %s\n", rc == 0 ? "0" : uv_err_name(rc));
  if (rc != UV_EBUSY || heartbeats != 3)
    return 1;
  return 0; /* leaks the loop and the timer */
}
