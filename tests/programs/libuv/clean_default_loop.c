/*
 * clean_default_loop.c -- a typical small, correct program on
 * uv_default_loop(): a repeating timer (created in start_ticker, callback
 * on_tick) fires 3 times and is closed; uv_run returns by itself; then
 * uv_loop_close(uv_default_loop()) is called and must return 0.
 * Exit status 0.  It must produce NO finding.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* uv.h needs POSIX types under -std=c11 */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

static uv_timer_t ticker;
static int ticks;

static void on_tick(uv_timer_t *timer) {
  if (++ticks == 3)
    uv_close((uv_handle_t *)timer, NULL);
}

static void start_ticker(uv_loop_t *loop) {
  if (uv_timer_init(loop, &ticker) != 0 || uv_timer_start(&ticker, on_tick, 2, 2) != 0)
    abort();
}

int main(void) {
  start_ticker(uv_default_loop());
  uv_run(uv_default_loop(), UV_RUN_DEFAULT);
  int rc = uv_loop_close(uv_default_loop());
  if (rc != 0 || ticks != 3) {
    fprintf(stderr, "clean_default_loop: uv_loop_close: %s\n", uv_strerror(rc));
    return 1;
  }
  return 0;
}
