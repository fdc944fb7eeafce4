/* libev programs, one per mode (the .expect files name the mode):
 *   clean      io on a pipe, a repeating timer restarted with
 *              ev_timer_again, idle, prepare, check, async from a thread,
 *              a periodic: all stopped, the loop destroyed. No finding.
 *   slow       a timer callback (on_slow_tick, started in
 *              arm_slow_timer) sleeps 200 ms: slow-callback.
 *   crash      a timer callback (on_bad_tick, started in arm_bad_timer)
 *              reads through NULL in read_config: crash (SIGSEGV).
 *   other-loop a timer active on the default loop is started on a loop of
 *              its own (start_elsewhere): misuse, libev ignores it.
 *   fd-changed an io watcher's fd changed with ev_io_set while active
 *              (move_watcher), then stopped: misuse naming both fds; the
 *              program exits right after.
 *   unstopped  an io watcher (on_readable, watch_input) on a loop of its
 *              own, still active when that loop is destroyed:
 *              unclosed-handle ("never stopped"). (Watchers of the default
 *              loop, which lives as long as the process, are not leaks.)
 *   pending    a 60 s timer (on_timeout, arm_timeout) still armed at the
 *              end: pending-at-exit.
 *   leak-loop  a loop from ev_loop_new (make_worker_loop) never destroyed:
 *              unclosed-loop.
 *   wrong-thread  while the main thread runs the default loop, another
 *              thread starts a timer on it (start_from_worker, the timer
 *              made there too): wrong-thread naming ev_timer_start. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ev.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0)
    ;
}

/* ---- clean ---- */
static ev_io pipe_reader;
static ev_timer ticker;
static ev_idle idler;
static ev_prepare preparer;
static ev_check checker;
static ev_async waker;
static ev_periodic periodic;
static int pipe_fds[2], ticks, idles;

static void on_pipe(struct ev_loop *loop, ev_io *w, int revents) {
  (void)revents;
  char c;
  if (read(w->fd, &c, 1) == 1)
    ev_io_stop(loop, w);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)revents;
  if (++ticks == 3) {
    ev_timer_stop(loop, w);
    ev_async_send(loop, &waker);
  } else {
    ev_timer_again(loop, w);
  }
}

static void on_idle(struct ev_loop *loop, ev_idle *w, int revents) {
  (void)revents;
  if (++idles == 5)
    ev_idle_stop(loop, w);
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents) {
  (void)loop, (void)w, (void)revents;
}

static void on_check(struct ev_loop *loop, ev_check *w, int revents) {
  (void)loop, (void)w, (void)revents;
}

static void on_periodic(struct ev_loop *loop, ev_periodic *w, int revents) {
  (void)revents;
  ev_periodic_stop(loop, w);
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents) {
  (void)revents;
  ev_async_stop(loop, w);
  ev_prepare_stop(loop, &preparer);
  ev_check_stop(loop, &checker);
  ev_periodic_stop(loop, &periodic);
}

static void *write_later(void *arg) {
  (void)arg;
  sleep_ms(10);
  if (write(pipe_fds[1], "x", 1) != 1)
    perror("write");
  return NULL;
}

static int run_clean(void) {
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  if (pipe(pipe_fds) != 0)
    return 1;
  ev_io_init(&pipe_reader, on_pipe, pipe_fds[0], EV_READ);
  ev_io_start(loop, &pipe_reader);
  ev_timer_init(&ticker, on_tick, 0.005, 0.005);
  ev_timer_start(loop, &ticker);
  ev_idle_init(&idler, on_idle);
  ev_idle_start(loop, &idler);
  ev_prepare_init(&preparer, on_prepare);
  ev_prepare_start(loop, &preparer);
  ev_check_init(&checker, on_check);
  ev_check_start(loop, &checker);
  ev_async_init(&waker, on_wake);
  ev_async_start(loop, &waker);
  ev_periodic_init(&periodic, on_periodic, 0., 0.01, 0);
  ev_periodic_start(loop, &periodic);
  pthread_t t;
  pthread_create(&t, NULL, write_later, NULL);
  ev_run(loop, 0);
  pthread_join(t, NULL);
  ev_loop_destroy(loop);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  printf("ticks %d idles %d\n", ticks, idles);
  return 0;
}

/* ---- planted problems ---- */
static ev_timer slow_timer, timeout, stopper;
static ev_io input;

static void on_slow_tick(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)w, (void)revents;
  sleep_ms(200);
}

static void arm_slow_timer(struct ev_loop *loop) {
  ev_timer_init(&slow_timer, on_slow_tick, 0.01, 0.);
  ev_timer_start(loop, &slow_timer);
}

/* crash: a NULL read in a timer callback (on_bad_tick, via read_config) */
static ev_timer bad_timer;
static const char *volatile no_config;

static __attribute__((noipa)) int read_config(const char *p) { return p[0]; }

static void on_bad_tick(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)w, (void)revents;
  printf("%d\n", read_config(no_config));
}

static __attribute__((noinline)) void arm_bad_timer(struct ev_loop *loop) {
  ev_timer_init(&bad_timer, on_bad_tick, 0.01, 0.);
  ev_timer_start(loop, &bad_timer);
}

/* misuse */
static ev_timer twice;
static ev_io moving;

static void on_twice(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)w, (void)revents;
}

static __attribute__((noinline)) struct ev_loop *start_elsewhere(struct ev_loop *loop) {
  ev_timer_init(&twice, on_twice, 0.05, 0.);
  ev_timer_start(loop, &twice);
  struct ev_loop *other = ev_loop_new(EVFLAG_AUTO);
  ev_timer_start(other, &twice); /* active on the default loop: ignored */
  return other;
}

static void on_moving(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop, (void)w, (void)revents;
}

static __attribute__((noinline)) void move_watcher(struct ev_loop *loop, int a, int b) {
  ev_io_init(&moving, on_moving, a, EV_READ);
  ev_io_start(loop, &moving);
  ev_io_set(&moving, b, EV_READ); /* while active */
  ev_io_stop(loop, &moving);
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop, (void)w, (void)revents;
}

static void watch_input(struct ev_loop *loop) {
  if (pipe(pipe_fds) != 0)
    return;
  ev_io_init(&input, on_readable, pipe_fds[0], EV_READ);
  ev_io_start(loop, &input);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)w, (void)revents;
}

static void arm_timeout(struct ev_loop *loop) {
  ev_timer_init(&timeout, on_timeout, 60., 0.);
  ev_timer_start(loop, &timeout);
}

static void on_stop(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)w, (void)revents;
  ev_break(loop, EVBREAK_ALL);
}

static struct ev_loop *make_worker_loop(void) { return ev_loop_new(EVFLAG_AUTO); }

static ev_timer foreign;
static void on_foreign(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)w, (void)revents;
}
static void start_from_worker(struct ev_loop *loop) {
  /* The loop thread waits in epoll_wait: in practice no race, but the
   * call is not the loop thread's to make. */
  ev_timer_init(&foreign, on_foreign, 0.01, 0.);
  ev_timer_start(loop, &foreign);
}
static void *foreign_thread(void *arg) {
  struct timespec ts = {0, 50000000};
  nanosleep(&ts, NULL);
  start_from_worker(arg);
  return NULL;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "clean";
  if (strcmp(mode, "clean") == 0)
    return run_clean();
  struct ev_loop *loop = ev_default_loop(0);
  if (strcmp(mode, "slow") == 0)
    arm_slow_timer(loop);
  else if (strcmp(mode, "crash") == 0)
    arm_bad_timer(loop);
  else if (strcmp(mode, "other-loop") == 0) {
    struct ev_loop *other = start_elsewhere(loop);
    ev_run(loop, 0);
    ev_loop_destroy(other);
    return 0;
  } else if (strcmp(mode, "fd-changed") == 0) {
    int p[2], q[2];
    if (pipe(p) != 0 || pipe(q) != 0)
      return 1;
    move_watcher(loop, p[0], q[0]);
    puts("moved");
    return 0;
  } else if (strcmp(mode, "unstopped") == 0) {
    struct ev_loop *own = ev_loop_new(EVFLAG_AUTO);
    watch_input(own);
    ev_run(own, EVRUN_NOWAIT);
    ev_loop_destroy(own);
  } else if (strcmp(mode, "pending") == 0)
    arm_timeout(loop);
  else if (strcmp(mode, "leak-loop") == 0)
    ev_run(make_worker_loop(), EVRUN_NOWAIT);
  pthread_t t;
  int threaded =
      strcmp(mode, "wrong-thread") == 0 && pthread_create(&t, NULL, foreign_thread, loop) == 0;
  ev_timer_init(&stopper, on_stop, 0.3, 0.);
  ev_timer_start(loop, &stopper);
  ev_run(loop, 0);
  if (threaded)
    pthread_join(t, NULL);
  return 0;
}
