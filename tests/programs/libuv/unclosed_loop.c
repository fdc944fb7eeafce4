/*
 * unclosed_loop.c -- provokes: a loop that is never closed.
 *
 * create_worker_loop() mallocs a loop and uv_loop_init's it.  A one-shot
 * timer (created in start_worker_timer, callback on_worker_timer) runs on it
 * and is closed properly; uv_run returns by itself.  uv_loop_close is never
 * called (nor is the loop freed).  Exit status 0.
 *
 * A test should assert exactly one finding:
 *   kind = unclosed-loop, type = uv_loop_t, created = create_worker_loop
 * (no unclosed-handle: the timer was closed; no slow-callback.)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* uv.h needs POSIX types under -std=c11 */
#endif
#include <stdlib.h>
#include <uv.h>

static uv_timer_t worker_timer;
static int fired;

static void on_worker_timer(uv_timer_t *timer) {
  fired = 1;
  uv_close((uv_handle_t *)timer, NULL);
}

static uv_loop_t *create_worker_loop(void) {
  uv_loop_t *loop = malloc(sizeof *loop);
  if (!loop || uv_loop_init(loop) != 0)
    abort();
  return loop;
}

static void start_worker_timer(uv_loop_t *loop) {
  if (uv_timer_init(loop, &worker_timer) != 0 ||
      uv_timer_start(&worker_timer, on_worker_timer, 5, 0) != 0)
    abort();
}

int main(void) {
  uv_loop_t *loop = create_worker_loop();
  start_worker_timer(loop);
  uv_run(loop, UV_RUN_DEFAULT);
  return fired ? 0 : 1; /* BUG: no uv_loop_close(loop) */
}
