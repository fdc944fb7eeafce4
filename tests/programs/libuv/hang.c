/* Never exits by itself: a repeating timer created in start_ticker() with
 * callback on_tick keeps the default loop alive. tests/cli.test kills it
 * with SIGKILL and checks that the trace written so far (flushed every
 * second) still shows the timer as left open. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <uv.h>

static uv_timer_t ticker;
static unsigned long ticks;

static void on_tick(uv_timer_t *t) {
  (void)t;
  ticks++;
}

static void start_ticker(uv_loop_t *loop) {
  uv_timer_init(loop, &ticker);
  uv_timer_start(&ticker, on_tick, 10, 10);
}

int main(void) {
  uv_loop_t *loop = uv_default_loop();
  start_ticker(loop);
  printf("hang: running\n");
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}
