/* Built with -fno-asynchronous-unwind-tables -fno-unwind-tables: frames of
 * this file have no CFI, so libunwind unwinds them by its frame-chain
 * heuristics, validating memory through a pipe. (daemon_fds.c) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <uv.h>

uv_timer_t *make_timer_nocfi(uv_loop_t *loop);

static void on_leaked(uv_timer_t *t) { (void)t; }

uv_timer_t *make_timer_nocfi(uv_loop_t *loop) {
  uv_timer_t *t = malloc(sizeof *t);
  if (!t || !loop)
    return t;
  uv_timer_init(loop, t);
  uv_timer_start(t, on_leaked, 60000, 0);
  return t;
}
