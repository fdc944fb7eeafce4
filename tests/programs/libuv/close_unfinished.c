/* uv_close() is called on a timer (created in start_poll_timer, callback
 * on_poll), but the loop never runs again before uv_loop_close(), which
 * therefore fails with UV_EBUSY. Expected: unclosed-handle for the timer
 * (the unfinished close is why the loop could not close) and unclosed-loop
 * for the loop created in main. With the argument "lenient" the program
 * just returns after uv_close() without closing the loop (like asyncio's
 * transport.close() at the very end): no finding at all. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static uv_timer_t poll_timer;

static void on_poll(uv_timer_t *t) { (void)t; }

static __attribute__((noinline)) void start_poll_timer(uv_loop_t *loop) {
  uv_timer_init(loop, &poll_timer);
  uv_timer_start(&poll_timer, on_poll, 1, 0);
  __asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv) {
  uv_loop_t *loop = malloc(sizeof *loop);
  if (!loop || uv_loop_init(loop) != 0)
    return 1;
  start_poll_timer(loop);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&poll_timer, NULL);
  if (argc > 1 && strcmp(argv[1], "lenient") == 0)
    return 0; /* the loop itself is leaked too, but see close_lenient.expect */
  printf("close_unfinished: uv_loop_close = %s\n", uv_err_name(uv_loop_close(loop)));
  return 0;
}
