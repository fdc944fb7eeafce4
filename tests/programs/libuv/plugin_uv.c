/* The plugin of plugin_local.c: links libuv, is loaded with RTLD_LOCAL. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <uv.h>

int plugin_run(void);

static void plugin_slow_tick(uv_timer_t *t) {
  uint64_t end = uv_hrtime() + 150 * 1000000ull;
  while (uv_hrtime() < end)
    ;
  uv_close((uv_handle_t *)t, NULL);
}

static void plugin_idle(uv_idle_t *h) { uv_idle_stop(h); }

static __attribute__((noinline)) void plugin_start_timer(uv_loop_t *loop, uv_timer_t *t) {
  uv_timer_init(loop, t);
  uv_timer_start(t, plugin_slow_tick, 1, 0);
}

static __attribute__((noinline)) void plugin_open_leak(uv_loop_t *loop, uv_idle_t *h) {
  uv_idle_init(loop, h);
  uv_idle_start(h, plugin_idle);
}

int plugin_run(void) {
  static uv_timer_t timer;
  static uv_idle_t idle;
  uv_loop_t *loop = malloc(sizeof *loop);
  if (!loop || uv_loop_init(loop) != 0)
    return 1;
  plugin_start_timer(loop, &timer);
  plugin_open_leak(loop, &idle);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0; /* the idle handle and the loop are never closed */
}
