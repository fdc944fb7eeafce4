/* Two loops of different kinds in one process: a libevent base on the main
 * thread (a persistent timer, ev_slow_tick, slow once for 120 ms, then
 * deleted; the event and base never freed, made in make_event_leak), and
 * a hand-written epoll loop on another thread (poll_loop: a 10 ms timerfd,
 * one iteration busy for 150 ms), which loopsan has no adapter for and
 * times through its generic layer. Each finding must name its own library:
 * libevent's callback, and the generic loop's function. */
#include <event2/event.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static void spin_ms(long ms) {
  struct timespec t0, now;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do
    clock_gettime(CLOCK_MONOTONIC, &now);
  while ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

static int e_ticks, p_ticks;

static void ev_slow_tick(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  if (++e_ticks == 3)
    spin_ms(120);
  if (e_ticks == 20)
    event_del((struct event *)arg);
}

static __attribute__((noinline)) void *poll_loop(void *arg) {
  (void)arg;
  int ep = epoll_create1(0), tfd = timerfd_create(CLOCK_MONOTONIC, 0);
  struct itimerspec its = {{0, 10000000}, {0, 10000000}};
  timerfd_settime(tfd, 0, &its, NULL);
  struct epoll_event e = {.events = EPOLLIN, .data.fd = tfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &e);
  while (p_ticks < 30) {
    struct epoll_event out[4];
    int n = epoll_wait(ep, out, 4, 1000);
    for (int i = 0; i < n; i++) {
      uint64_t x;
      if (read(tfd, &x, sizeof x) == sizeof x && ++p_ticks == 5)
        spin_ms(150);
    }
  }
  close(tfd);
  close(ep);
  return NULL;
}

static __attribute__((noinline)) struct event *make_event_leak(struct event_base *base) {
  struct event *ev = event_new(base, -1, EV_PERSIST, ev_slow_tick, event_self_cbarg());
  struct timeval tv = {0, 10000};
  event_add(ev, &tv);
  return ev;
}

int main(void) {
  pthread_t th;
  pthread_create(&th, NULL, poll_loop, NULL);
  struct event_base *base = event_base_new();
  make_event_leak(base);
  event_base_dispatch(base);
  pthread_join(th, NULL);
  printf("libevent ticks %d, epoll ticks %d\n", e_ticks, p_ticks);
  return 0; /* the event and the base are never freed */
}
