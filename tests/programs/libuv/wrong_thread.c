/* Calls on a running libuv loop from another thread, one mode each:
 *   restart  while the main thread runs the loop (waiting in it), a second
 *            thread restarts a timer of that loop (restart_from_worker:
 *            uv_timer_start on the timer made in make_idle_timer):
 *            wrong-thread, naming uv_timer_start and both threads.
 *   clean    eight threads wake the loop with uv_async_send (thread-safe),
 *            the loop thread does the rest. No finding. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

static uv_loop_t loop;
static uv_timer_t keepalive, idle_timer;
static uv_async_t wake;
static int woken;

static void on_idle_timer(uv_timer_t *t) { (void)t; }
static void on_keepalive(uv_timer_t *t) { (void)t; }

static void on_wake(uv_async_t *a) {
  (void)a;
  if (++woken >= 1) {
    uv_close((uv_handle_t *)&wake, NULL);
    uv_close((uv_handle_t *)&keepalive, NULL);
    if (idle_timer.loop)
      uv_close((uv_handle_t *)&idle_timer, NULL);
  }
}

static void make_idle_timer(void) {
  uv_timer_init(&loop, &idle_timer);
}

static void restart_from_worker(void) {
  /* The loop thread is waiting in epoll_wait: the call does not race it
   * in practice, but it is still a call from the wrong thread. */
  uv_timer_start(&idle_timer, on_idle_timer, 60000, 0);
}

static void *worker(void *arg) {
  (void)arg;
  usleep(50000);
  restart_from_worker();
  uv_async_send(&wake);
  return NULL;
}

static void *waker(void *arg) {
  (void)arg;
  usleep(20000);
  uv_async_send(&wake);
  return NULL;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "clean";
  uv_loop_init(&loop);
  uv_async_init(&loop, &wake, on_wake);
  uv_timer_init(&loop, &keepalive);
  uv_timer_start(&keepalive, on_keepalive, 10000, 10000);
  int n = strcmp(mode, "restart") == 0 ? 1 : 8;
  if (n == 1)
    make_idle_timer();
  pthread_t threads[8];
  for (int i = 0; i < n; i++)
    pthread_create(&threads[i], NULL, n == 1 ? worker : waker, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  for (int i = 0; i < n; i++)
    pthread_join(threads[i], NULL);
  int rc = uv_loop_close(&loop);
  printf("%s: woken %d, loop close %d\n", mode, woken, rc);
  return rc != 0;
}
