/*
 * bench_event_active.c -- per-callback overhead on libevent, the hardest
 * case: an event whose callback makes it active again, about 20 ns a
 * callback without loopsan (no system call in between).
 *
 * Usage: bench_event_active [N]   (default N = 3000000)
 * Prints exactly one line: ns_per_op=<float>  (ns per callback)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <event2/event.h>
#include "bench/bench.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static unsigned long count, target;
static struct event *ev;

static void on_active(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what, (void)arg;
  if (++count < target)
    event_active(ev, EV_READ, 0);
}

int main(int argc, char **argv) {
  target = bench_iterations(argc, argv, 3000000UL);
  if (target == 0)
    return 2;
  struct event_base *base = event_base_new();
  if (!base)
    return 1;
  ev = event_new(base, -1, 0, on_active, NULL);
  event_active(ev, EV_READ, 0);

  double t0 = bench_now_ns();
  event_base_dispatch(base);
  double t1 = bench_now_ns();

  event_free(ev);
  event_base_free(base);
  if (count != target)
    return 1;
  printf("ns_per_op=%.3f\n", (t1 - t0) / (double)target);
  return 0;
}
