/* Blocking calls inside libuv callbacks, one mode each (the .expect files
 * name the mode):
 *   sleep      a timer callback (on_nap, armed in arm_nap) sleeps 40 ms
 *              with usleep: blocking-call naming usleep.
 *   read       a timer callback (on_wait_for_data, arm_reader) reads a
 *              pipe in blocking mode that another thread writes 40 ms
 *              later: blocking-call naming read.
 *   lock       a timer callback (on_contended, arm_locker) takes a mutex
 *              another thread holds for 40 ms: blocking-call naming
 *              pthread_mutex_lock.
 *   slow-sleep a timer callback (on_long_nap, arm_long_nap) sleeps 200 ms
 *              with nanosleep: one slow-callback, which says it was
 *              blocked in nanosleep and where.
 *   spin       a timer callback (on_busy, arm_busy) spins 300 ms in a
 *              helper (spin_helper): slow-callback, and the stall sample
 *              loopsan run takes puts spin_helper in its stack.
 *   clean      blocking calls made where they belong: on worker threads
 *              (uv_queue_work's work callback sleeps, reads, fsyncs) and
 *              before the loop runs; uv_async_send from four threads; in
 *              callbacks only short or non-blocking calls. No finding. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

static uv_loop_t loop;
static uv_timer_t timer;
static int pipe_fds[2];
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static int done;

static void close_all(void) {
  uv_close((uv_handle_t *)&timer, NULL);
}

/* ---- sleep ---- */
static void on_nap(uv_timer_t *t) {
  (void)t;
  usleep(40000);
  close_all();
}
static void arm_nap(void) {
  uv_timer_init(&loop, &timer);
  uv_timer_start(&timer, on_nap, 1, 0);
}

/* ---- read ---- */
static void *write_later(void *arg) {
  (void)arg;
  usleep(40000); /* on its own thread: no finding */
  if (write(pipe_fds[1], "x", 1) != 1)
    perror("write");
  return NULL;
}
static void on_wait_for_data(uv_timer_t *t) {
  (void)t;
  char c;
  if (read(pipe_fds[0], &c, 1) == 1)
    done = 1;
  close_all();
}
static void arm_reader(void) {
  uv_timer_init(&loop, &timer);
  uv_timer_start(&timer, on_wait_for_data, 1, 0);
}

/* ---- lock ---- */
static void *hold_lock(void *arg) {
  (void)arg;
  pthread_mutex_lock(&mutex);
  __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
  usleep(40000);
  pthread_mutex_unlock(&mutex);
  return NULL;
}
static void on_contended(uv_timer_t *t) {
  (void)t;
  while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE))
    ;
  pthread_mutex_lock(&mutex);
  pthread_mutex_unlock(&mutex);
  close_all();
}
static void arm_locker(void) {
  uv_timer_init(&loop, &timer);
  uv_timer_start(&timer, on_contended, 1, 0);
}

/* ---- slow-sleep ---- */
static void on_long_nap(uv_timer_t *t) {
  (void)t;
  struct timespec ts = {0, 200000000};
  nanosleep(&ts, NULL);
  close_all();
}
static void arm_long_nap(void) {
  uv_timer_init(&loop, &timer);
  uv_timer_start(&timer, on_long_nap, 1, 0);
}

/* ---- spin ---- */
static volatile unsigned long sink;
static void __attribute__((noinline)) spin_helper(long ms) {
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  do {
    for (int i = 0; i < 1000; i++)
      sink += (unsigned long)i;
    clock_gettime(CLOCK_MONOTONIC, &b);
  } while ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < ms);
}
static void on_busy(uv_timer_t *t) {
  (void)t;
  spin_helper(300);
  close_all();
}
static void arm_busy(void) {
  uv_timer_init(&loop, &timer);
  uv_timer_start(&timer, on_busy, 1, 0);
}

/* ---- clean ---- */
static uv_work_t works[3];
static uv_async_t async;
static int works_done, pokes;

static void blocking_work(uv_work_t *w) {
  (void)w;
  usleep(20000);
  char path[] = "/tmp/loopsan-blocking-XXXXXX";
  int fd = mkstemp(path);
  if (fd >= 0) {
    if (write(fd, "data", 4) != 4)
      perror("write");
    fsync(fd);
    close(fd);
    unlink(path);
  }
}
static void after_work(uv_work_t *w, int status) {
  (void)w, (void)status;
  if (++works_done == 3 && pokes >= 4)
    uv_close((uv_handle_t *)&async, NULL);
}
static void on_poke(uv_async_t *a) {
  (void)a;
  __atomic_store_n(&pokes, 4, __ATOMIC_RELAXED);
  if (works_done == 3)
    uv_close((uv_handle_t *)&async, NULL);
}
static void *poker(void *arg) {
  (void)arg;
  usleep(1000);
  uv_async_send(&async);
  return NULL;
}
static void on_tick(uv_timer_t *t) {
  char buf[8];
  (void)!read(pipe_fds[0], buf, sizeof buf); /* non-blocking: returns at once */
  usleep(1000);                              /* under the threshold */
  uv_close((uv_handle_t *)t, NULL);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "clean";
  if (pipe(pipe_fds) != 0 || uv_loop_init(&loop) != 0)
    return 1;
  pthread_t thread;
  int threaded = 0;
  if (strcmp(mode, "sleep") == 0) {
    arm_nap();
  } else if (strcmp(mode, "read") == 0) {
    arm_reader();
    threaded = pthread_create(&thread, NULL, write_later, NULL) == 0;
  } else if (strcmp(mode, "lock") == 0) {
    arm_locker();
    threaded = pthread_create(&thread, NULL, hold_lock, NULL) == 0;
  } else if (strcmp(mode, "slow-sleep") == 0) {
    arm_long_nap();
  } else if (strcmp(mode, "spin") == 0) {
    arm_busy();
  } else {
    usleep(20000); /* outside any callback: no finding */
    fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
    uv_async_init(&loop, &async, on_poke);
    for (int i = 0; i < 3; i++)
      uv_queue_work(&loop, &works[i], blocking_work, after_work);
    pthread_t pokers[4];
    for (int i = 0; i < 4; i++)
      pthread_create(&pokers[i], NULL, poker, NULL);
    uv_timer_init(&loop, &timer);
    uv_timer_start(&timer, on_tick, 1, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 4; i++)
      pthread_join(pokers[i], NULL);
    done = works_done == 3;
  }
  if (strcmp(mode, "clean") != 0)
    uv_run(&loop, UV_RUN_DEFAULT);
  if (threaded)
    pthread_join(thread, NULL);
  int rc = uv_loop_close(&loop);
  printf("mode %s: loop close %d\n", mode, rc);
  return rc != 0;
}
