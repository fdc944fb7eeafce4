/* The function that creates the handle ends with the libuv call, which an
 * optimising compiler turns into a jump: open_watchdog() leaves no frame
 * of its own. The creation stack must still name it. Planted: the idle
 * handle is initialised, never started and never closed. Expected:
 * never-started and unclosed-handle for the uv_idle_t, created in
 * open_watchdog; nothing else (the timer made by arm_timer, also by a
 * tail call, is used and closed). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <uv.h>

static uv_idle_t watchdog;
static uv_timer_t timer;

static void on_timer(uv_timer_t *t) { uv_close((uv_handle_t *)t, NULL); }

__attribute__((noinline)) static void open_watchdog(uv_loop_t *loop) {
  uv_idle_init(loop, &watchdog);
}

__attribute__((noinline)) static int arm_timer(uv_loop_t *loop) {
  uv_timer_init(loop, &timer);
  return uv_timer_start(&timer, on_timer, 1, 0);
}

int main(void) {
  uv_loop_t *loop = uv_default_loop();
  open_watchdog(loop);
  if (arm_timer(loop) != 0)
    return 1;
  return uv_run(loop, UV_RUN_DEFAULT) < 0;
}
