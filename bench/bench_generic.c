/*
 * bench_generic.c -- a loop loopsan has no adapter for: a plain epoll loop
 * that loopsan times through its generic layer (its epoll_wait).
 *
 * Usage: bench_generic [N]   (default N = 1000000)
 * Each iteration writes to an eventfd, waits for it with epoll_wait and
 * reads it back: one loop iteration, three syscalls (syscall-bound, like a
 * real server's loop).
 * Prints exactly one line: ns_per_op=<float>  (ns per iteration)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench/bench.h"
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

int main(int argc, char **argv) {
  unsigned long target = bench_iterations(argc, argv, 1000000UL);
  if (target == 0)
    return 2;
  int ep = epoll_create1(EPOLL_CLOEXEC), efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = efd};
  if (ep < 0 || efd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) != 0)
    return 1;
  uint64_t one = 1, got;
  unsigned long done = 0;
  double t0 = bench_now_ns();
  while (done < target) {
    if (write(efd, &one, sizeof one) != sizeof one)
      return 1;
    struct epoll_event out[4];
    int n = epoll_wait(ep, out, 4, -1);
    for (int i = 0; i < n; i++)
      if (read(out[i].data.fd, &got, sizeof got) == sizeof got)
        done++;
  }
  double t1 = bench_now_ns();
  close(efd);
  close(ep);
  printf("ns_per_op=%.3f\n", (t1 - t0) / (double)target);
  return 0;
}
