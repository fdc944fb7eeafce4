/* 16 threads, each running a libuv loop of its own: a repeating 1 ms timer
 * (on_worker_tick, 200 ticks), an idle handle and an async handle the main
 * thread pokes. Thread 7 leaks a timer (make_worker_leak) and its loop, and
 * exits early, before the others are done; the rest close everything. The
 * program must run as without loopsan; every callback is counted
 * (observed), and the leak is found, with the code that made it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>
#include <unistd.h>

#define THREADS 16
#define TICKS 200
#define LEAKER 7

struct worker {
  int index;
  uv_loop_t loop;
  uv_timer_t tick;
  uv_idle_t idle;
  uv_async_t poke;
  int ticks, idles, pokes;
};

static struct worker workers[THREADS];

static void on_worker_closed(uv_handle_t *h) { (void)h; }

static void on_worker_tick(uv_timer_t *t) {
  struct worker *w = t->data;
  if (++w->ticks < TICKS)
    return;
  uv_close((uv_handle_t *)&w->tick, on_worker_closed);
  uv_close((uv_handle_t *)&w->idle, on_worker_closed);
  uv_close((uv_handle_t *)&w->poke, on_worker_closed);
}

static void on_worker_idle(uv_idle_t *h) {
  struct worker *w = h->data;
  w->idles++;
  uv_idle_stop(h); /* once: an idle spinning would load the machine */
}

static void on_worker_poke(uv_async_t *a) { ((struct worker *)a->data)->pokes++; }

static void on_leaked_tick(uv_timer_t *t) { (void)t; }

static __attribute__((noinline)) void make_worker_leak(uv_loop_t *loop) {
  static uv_timer_t leaked;
  uv_timer_init(loop, &leaked);
  uv_timer_start(&leaked, on_leaked_tick, 3600000, 0);
}

static void *run_worker(void *arg) {
  struct worker *w = arg;
  /* The leaker's one iteration must find its 1 ms timer due (it fired:
   * an unclosed handle, not one pending at exit), however soon the
   * thread starts. */
  if (w->index == LEAKER)
    usleep(5000);
  uv_run(&w->loop, w->index == LEAKER ? UV_RUN_NOWAIT : UV_RUN_DEFAULT);
  if (w->index == LEAKER) {
    make_worker_leak(&w->loop);
    return NULL; /* exits early, its loop and timer left open */
  }
  uv_loop_close(&w->loop);
  return NULL;
}

int main(void) {
  pthread_t threads[THREADS];
  for (int i = 0; i < THREADS; i++) {
    struct worker *w = &workers[i];
    w->index = i;
    uv_loop_init(&w->loop);
    uv_timer_init(&w->loop, &w->tick);
    uv_idle_init(&w->loop, &w->idle);
    uv_async_init(&w->loop, &w->poke, on_worker_poke);
    w->tick.data = w->idle.data = w->poke.data = w;
    uv_timer_start(&w->tick, on_worker_tick, 1, 1);
    uv_idle_start(&w->idle, on_worker_idle);
  }
  for (int i = 0; i < THREADS; i++)
    pthread_create(&threads[i], NULL, run_worker, &workers[i]);
  for (int i = 0; i < THREADS; i++)
    if (i != LEAKER)
      uv_async_send(&workers[i].poke);
  int ticks = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(threads[i], NULL);
    if (i != LEAKER)
      ticks += workers[i].ticks;
  }
  printf("many_loops: %d ticks\n", ticks);
  return ticks == (THREADS - 1) * TICKS ? 0 : 1;
}
