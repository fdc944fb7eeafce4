/*
 * bench_event_fd.c -- libevent on real descriptors: the event-active
 * target's workload ("event-active on real descriptors").
 *
 * Usage: bench_event_fd [N]   (default N = 500000)
 * A persistent read event on a pipe: its callback reads the byte, and
 * writes one back into the pipe, N times; each callback follows an
 * epoll_wait that found the pipe readable (two system calls a callback, as
 * a server's).
 * Prints exactly one line: ns_per_op=<float>  (ns per callback)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <event2/event.h>
#include "bench/bench.h"
#include <fcntl.h>
#include <unistd.h>

static unsigned long count, target;
static int fds[2];

static void on_readable(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  char c;
  if (read(fd, &c, 1) != 1)
    return;
  if (++count == target)
    event_del((struct event *)arg);
  else if (write(fds[1], "x", 1) != 1)
    event_del((struct event *)arg);
}

int main(int argc, char **argv) {
  target = bench_iterations(argc, argv, 500000UL);
  if (target == 0)
    return 2;
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
    return 1;
  struct event_base *base = event_base_new();
  struct event *ev = event_new(base, fds[0], EV_READ | EV_PERSIST, on_readable, event_self_cbarg());
  event_add(ev, NULL);
  if (write(fds[1], "x", 1) != 1)
    return 1;
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
