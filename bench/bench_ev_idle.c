/*
 * bench_ev_idle.c -- per-callback overhead on libev.
 *
 * Usage: bench_ev_idle [N]   (default N = 3000000)
 * An ev_idle watcher whose callback only counts is stopped after N
 * callbacks.  Only ev_run is timed (CLOCK_MONOTONIC).
 * Prints exactly one line: ns_per_op=<float>  (ns per idle callback)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ev.h>
#include "bench/bench.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static unsigned long count, target;

static void on_bench_idle(struct ev_loop *loop, ev_idle *w, int revents) {
  (void)revents;
  if (++count == target)
    ev_idle_stop(loop, w);
}

int main(int argc, char **argv) {
  target = bench_iterations(argc, argv, 3000000UL);
  if (target == 0)
    return 2;
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  ev_idle idle;
  if (!loop)
    return 1;
  ev_idle_init(&idle, on_bench_idle);
  ev_idle_start(loop, &idle);

  double t0 = bench_now_ns();
  ev_run(loop, 0);
  double t1 = bench_now_ns();

  ev_loop_destroy(loop);
  if (count != target)
    return 1;
  printf("ns_per_op=%.3f\n", (t1 - t0) / (double)target);
  return 0;
}
