/*
 * slow_timer.c -- provokes: one slow callback.
 *
 * A one-shot timer created in start_slow_timer() fires once; its callback
 * on_slow_tick busy-waits (spinning on uv_hrtime, no sleep) for ~250 ms,
 * then closes the timer.  The loop is closed properly (uv_loop_close == 0 is
 * asserted).  Exit status 0.
 *
 * A test should assert exactly one finding:
 *   kind      = slow-callback   (duration >= ~250 ms)
 *   type      = uv_timer_t
 *   callback  = on_slow_tick
 *   created   = start_slow_timer
 * and no unclosed-handle / unclosed-loop / pending-at-exit findings.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* uv.h needs POSIX types under -std=c11 */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

static uv_timer_t slow_timer;

static void busy_wait_ms(uint64_t ms) {
  uint64_t end = uv_hrtime() + ms * 1000000ULL;
  while (uv_hrtime() < end) {
    /* spin */
  }
}

static void on_slow_timer_closed(uv_handle_t *handle) { (void)handle; }

static void on_slow_tick(uv_timer_t *timer) {
  busy_wait_ms(250);
  uv_close((uv_handle_t *)timer, on_slow_timer_closed);
}

static void start_slow_timer(uv_loop_t *loop) {
  if (uv_timer_init(loop, &slow_timer) != 0)
    abort();
  if (uv_timer_start(&slow_timer, on_slow_tick, 10, 0) != 0)
    abort();
}

int main(void) {
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0)
    abort();
  start_slow_timer(&loop);
  uv_run(&loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&loop);
  if (rc != 0) {
    fprintf(stderr, "slow_timer: uv_loop_close failed: %s\n", uv_strerror(rc));
    return 1;
  }
  return 0;
}
