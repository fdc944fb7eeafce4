/* Clean: the main thread creates a loop and a timer, a worker thread runs
 * the loop, closes the timer and the loop, and exits; main joins it. The
 * worker's records reach the trace before the main thread's (its buffer is
 * written out when it exits; main's only at exit), so the analyzer sees
 * the timer used and closed "before" it was created. Must report nothing. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

static uv_loop_t loop;
static uv_timer_t timer;

static void on_handoff_tick(uv_timer_t *t) { uv_close((uv_handle_t *)t, NULL); }

static void *worker(void *arg) {
  (void)arg;
  uv_timer_start(&timer, on_handoff_tick, 5, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0)
    abort();
  return NULL;
}

int main(void) {
  pthread_t t;
  if (uv_loop_init(&loop) != 0 || uv_timer_init(&loop, &timer) != 0)
    return 1;
  if (pthread_create(&t, NULL, worker, NULL) != 0 || pthread_join(t, NULL) != 0)
    return 1;
  puts("thread_handoff: done");
  return 0;
}
