/* The race of a SIGKILL with a stall sample, made certain: the main thread
 * spins in a timer callback (stuck); a watcher thread sends the process
 * SIGKILL the moment a tracer (loopsan run's stall sampler) attaches to the
 * main thread, or after a second without one. The sampler's wait then
 * reaps the program; loopsan run must still know it was killed (exit 137
 * passed on, not 0) and when, so that the stuck callback is a slow-callback
 * timed up to its death. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

static pid_t main_tid;

static int traced(void) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)main_tid);
  FILE *f = fopen(path, "r");
  int yes = 0;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "TracerPid:", 10) == 0 && atoi(line + 10) != 0)
      yes = 1;
  if (f)
    fclose(f);
  return yes;
}

static void *watch(void *arg) {
  (void)arg;
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (traced() || t.tv_sec - t0.tv_sec > 1)
      kill(getpid(), SIGKILL);
  }
  return NULL;
}

static void stuck(uv_timer_t *t) {
  (void)t;
  pthread_t th;
  pthread_create(&th, NULL, watch, NULL);
  for (volatile unsigned long x = 0;; x++)
    ;
}

int main(void) {
  main_tid = gettid();
  uv_timer_t t;
  uv_timer_init(uv_default_loop(), &t);
  uv_timer_start(&t, stuck, 10, 0);
  uv_run(uv_default_loop(), UV_RUN_DEFAULT);
  return 0;
}
