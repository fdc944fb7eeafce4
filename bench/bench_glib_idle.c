/*
 * bench_glib_idle.c -- per-callback overhead on GLib's main loop.
 *
 * Usage: bench_glib_idle [N]   (default N = 3000000)
 * An idle source (g_idle_add) whose callback only counts returns
 * G_SOURCE_CONTINUE until the Nth call. Only the loop is timed
 * (CLOCK_MONOTONIC): each iteration of g_main_context_iteration
 * dispatches the one idle source.
 * Prints exactly one line: ns_per_op=<float>  (ns per idle callback)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <glib.h>
#include <stdio.h>

#include "bench/bench.h"

static unsigned long count, target;

static gboolean on_bench_idle(gpointer data) {
  (void)data;
  return ++count < target ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

int main(int argc, char **argv) {
  target = bench_iterations(argc, argv, 3000000UL);
  if (target == 0)
    return 2;
  g_idle_add(on_bench_idle, NULL);

  double t0 = bench_now_ns();
  while (count < target)
    g_main_context_iteration(NULL, FALSE);
  double t1 = bench_now_ns();

  printf("ns_per_op=%.3f\n", (t1 - t0) / (double)target);
  return 0;
}
