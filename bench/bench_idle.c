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

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  target = argc > 1 ? strtoul(argv[1], NULL, 10) : 3000000UL;
  if (target == 0) {
    fprintf(stderr, "usage: %s [iterations>0]\n", argv[0]);
    return 2;
  }
  uv_loop_t loop;
  uv_idle_t idle;
  if (uv_loop_init(&loop) != 0 || uv_idle_init(&loop, &idle) != 0)
    return 1;
  uv_idle_start(&idle, on_bench_idle);

  double t0 = now_ns();
  uv_run(&loop, UV_RUN_DEFAULT);
  double t1 = now_ns();

  if (count != target || uv_loop_close(&loop) != 0)
    return 1;
  printf("ns_per_op=%.3f\n", (t1 - t0) / (double)target);
  return 0;
}
