/*
 * bench_timers.c -- per-handle lifecycle overhead.
 *
 * Usage: bench_timers [N [in-callback]]   (default N = 300000)
 * N uv_timer_t in one malloc'ed array: uv_timer_init + uv_timer_start (1 h
 * timeout, one callback that never runs), then uv_close on each, then
 * uv_run(UV_RUN_DEFAULT) to complete the closes.  That whole sequence is
 * timed (CLOCK_MONOTONIC). With "in-callback", the timers are made and
 * closed inside a timer callback, as a server makes its objects (what a
 * creation stack captured there costs).
 * Prints exactly one line: ns_per_op=<float>  (ns per timer)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench/bench.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

static void on_bench_timer(uv_timer_t *timer) {
  (void)timer;
  abort(); /* 1 h timeout: must never fire */
}

static uv_timer_t *timers;
static unsigned long n;

static void make_and_close(uv_loop_t *loop) {
  for (unsigned long i = 0; i < n; i++) {
    uv_timer_init(loop, &timers[i]);
    uv_timer_start(&timers[i], on_bench_timer, 3600 * 1000, 0);
  }
  for (unsigned long i = 0; i < n; i++)
    uv_close((uv_handle_t *)&timers[i], NULL);
}

static void on_start(uv_timer_t *t) {
  make_and_close(t->loop);
  uv_close((uv_handle_t *)t, NULL);
}

int main(int argc, char **argv) {
  n = bench_iterations(argc, argv, 300000UL);
  if (n == 0)
    return 2;
  int in_callback = argc > 2 && strcmp(argv[2], "in-callback") == 0;
  uv_loop_t loop;
  uv_timer_t start;
  timers = malloc(n * sizeof *timers);
  if (!timers || uv_loop_init(&loop) != 0)
    return 1;

  double t0 = bench_now_ns();
  if (in_callback) {
    uv_timer_init(&loop, &start);
    uv_timer_start(&start, on_start, 0, 0);
  } else {
    make_and_close(&loop);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  double t1 = bench_now_ns();

  if (uv_loop_close(&loop) != 0)
    return 1;
  free(timers);
  printf("ns_per_op=%.3f\n", (t1 - t0) / (double)n);
  return 0;
}
