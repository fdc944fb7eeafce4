/* What every micro-benchmark shares: its iteration count from argv, and
 * the clock it times the loop with. Each prints one line, ns_per_op=<n>. */
#ifndef LOOPSAN_BENCH_H
#define LOOPSAN_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* argv[1], else DEFAULT_N; 0 (after a usage message) when it is no count. */
static inline unsigned long bench_iterations(int argc, char **argv, unsigned long default_n) {
  unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : default_n;
  if (n == 0)
    fprintf(stderr, "usage: %s [iterations>0]\n", argv[0]);
  return n;
}

#endif
