/* Loops loopsan has no adapter for, built on poll and select (the generic
 * layer), and programs that wait once outside any loop.
 *
 * generic_cases poll-slow    a poll loop whose handler spins 250 ms in
 *                            spin_helper(): blocked-loop in run_poll_loop
 * generic_cases select-clean a select loop of 30 short iterations: nothing
 * generic_cases pselect-slow a pselect loop whose handler sleeps 200 ms
 * generic_cases after-loop   a short poll loop, then, once it has ended,
 *                            usleep(60 ms) in shutdown_cleanup(): no
 *                            iteration, so no finding
 * generic_cases poll-once    waits at one place, computes 300 ms, waits at
 *                            another, computes, waits there once more:
 *                            no loop, nothing to say */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static volatile unsigned long sink;

static __attribute__((noinline)) void spin_helper(double ms) {
  double end = now_ms() + ms;
  while (now_ms() < end)
    sink++;
}

static int fds[2];

static void feed(void) {
  if (write(fds[1], "x", 1) != 1)
    exit(3);
}

static void drain(void) {
  char c;
  if (read(fds[0], &c, 1) != 1)
    exit(3);
}

/* One event per iteration, N in all; the 6th makes the handler slow. */
static __attribute__((noinline)) void handle_event(int i, int n, int slow_kind) {
  drain();
  if (i == 5 && slow_kind == 1)
    spin_helper(250);
  if (i == 5 && slow_kind == 2)
    usleep(200 * 1000);
  if (i + 1 < n)
    feed();
}

/* SLOW: its 6th event spins 250 ms. */
static __attribute__((noinline)) void run_poll_loop(int slow) {
  feed();
  for (int i = 0; i < 12; i++) {
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    if (poll(&p, 1, 1000) != 1)
      exit(4);
    handle_event(i, 12, slow);
  }
}

static __attribute__((noinline)) void shutdown_cleanup(void) { usleep(60 * 1000); }

static __attribute__((noinline)) void run_select_loop(int slow) {
  feed();
  int n = slow ? 12 : 30;
  for (int i = 0; i < n; i++) {
    fd_set r;
    FD_ZERO(&r);
    FD_SET(fds[0], &r);
    struct timeval tv = {1, 0};
    struct timespec ts = {1, 0};
    int ready = slow ? pselect(fds[0] + 1, &r, NULL, NULL, &ts, NULL)
                     : select(fds[0] + 1, &r, NULL, NULL, &tv);
    if (ready != 1)
      exit(4);
    handle_event(i, n, slow ? 2 : 0);
    /* what a select loop does between waits: a look with no wait */
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    poll(&p, 1, 0);
  }
}

static __attribute__((noinline)) int wait_readable(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll(&p, 1, 1000);
}

static __attribute__((noinline)) int wait_writable(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLOUT};
  return poll(&p, 1, 1000);
}

/* A program with no loop: it waits for its input, works, waits for room
 * to write, works, waits for room again. */
static void run_once(void) {
  feed();
  if (wait_readable(fds[0]) != 1)
    exit(4);
  spin_helper(300);
  if (wait_writable(fds[1]) != 1)
    exit(4);
  spin_helper(300);
  if (wait_writable(fds[1]) != 1)
    exit(4);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (pipe(fds) != 0)
    return 1;
  if (strcmp(mode, "poll-slow") == 0)
    run_poll_loop(1);
  else if (strcmp(mode, "select-clean") == 0)
    run_select_loop(0);
  else if (strcmp(mode, "pselect-slow") == 0)
    run_select_loop(1);
  else if (strcmp(mode, "after-loop") == 0) {
    run_poll_loop(0);
    shutdown_cleanup();
  } else if (strcmp(mode, "poll-once") == 0)
    run_once();
  else
    return 2;
  puts("done");
  return 0;
}
