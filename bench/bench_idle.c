/*
 * bench_idle.c -- per-callback overhead of the event loop.
 *
 * Usage: bench_idle [N]   (default N = 3000000)
 * A uv_idle_t whose callback only counts is stopped (and closed) after N
 * callbacks.  Only uv_run is timed (CLOCK_MONOTONIC).
 * Prints exactly one line: ns_per_op=<float>  (ns per idle callback)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench/bench.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <uv.h>

static unsigned long count, target;

static void on_bench_idle(uv_idle_t *idle) {
  if (++count == target) {
    uv_idle_stop(idle);
    uv_close((uv_handle_t *)idle, NULL);
  }
}

int main(int argc, char **argv) {
  target = bench_iterations(argc, argv, 3000000UL);
  if (target == 0)
    return 2;
  uv_loop_t loop;
  uv_idle_t idle;
  if (uv_loop_init(&loop) != 0 || uv_idle_init(&loop, &idle) != 0)
    return 1;
  uv_idle_start(&idle, on_bench_idle);

  double t0 = bench_now_ns();
  uv_run(&loop, UV_RUN_DEFAULT);
  double t1 = bench_now_ns();

  if (count != target || uv_loop_close(&loop) != 0)
    return 1;
  printf("ns_per_op=%.3f\n", (t1 - t0) / (double)target);
  return 0;
}
