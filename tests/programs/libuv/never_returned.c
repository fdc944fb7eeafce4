/* Callbacks that never return. With "exit": a uv_fs_open callback sleeps
 * 250 ms and calls exit(5) while a work request is still in flight.
 * Expected: slow-callback (on_opened, uv_fs_t created in open_config,
 * "exit() was called"), pending-at-exit for the uv_work_t (submit_slow_work)
 * whose callback never ran, and nothing pending for the uv_fs_t, whose
 * callback did run. Exit status 5.
 * With "kill": a timer callback (on_stuck, created in arm_stuck_timer)
 * forks a helper that kills the process with SIGKILL after 400 ms, and
 * sleeps 6 s. Expected: slow-callback running until the kill (about 400
 * ms, far from 6 s), and no leak finding: a killed process never got to
 * clean up.
 * Exit status 137.
 * With "exit-timer": a timer callback (on_last_tick, created in
 * arm_last_tick) sleeps 250 ms and calls exit(4), leaving its timer open:
 * one finding, the slow callback, with "also": unclosed-handle.
 * With "abort": a timer callback (on_broken) aborts after 5 ms: a crash
 * finding (too short for a slow callback), and the report's notes say it
 * crashed inside on_broken. Exit status 134. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

static uv_fs_t open_req;
static uv_work_t work_req;
static uv_timer_t stuck_timer;

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0)
    ;
}

static void on_opened(uv_fs_t *req) {
  (void)req;
  sleep_ms(250);
  exit(5);
}

static void slow_work(uv_work_t *w) {
  (void)w;
  sleep_ms(2000);
}

static void after_slow_work(uv_work_t *w, int status) {
  (void)w;
  (void)status;
}

static void submit_slow_work(uv_loop_t *loop) {
  uv_queue_work(loop, &work_req, slow_work, after_slow_work);
}

static void open_config(uv_loop_t *loop) {
  uv_fs_open(loop, &open_req, "/dev/null", O_RDONLY, 0, on_opened);
}

static void on_stuck(uv_timer_t *t) {
  (void)t;
  pid_t parent = getpid();
  if (fork() == 0) { /* from here: however late the timer fired on a loaded machine */
    sleep_ms(400);
    kill(parent, SIGKILL);
    _exit(0);
  }
  sleep_ms(6000);
}

static void on_last_tick(uv_timer_t *t) {
  (void)t;
  sleep_ms(250);
  exit(4);
}

static void arm_last_tick(uv_loop_t *loop) {
  uv_timer_init(loop, &stuck_timer);
  uv_timer_start(&stuck_timer, on_last_tick, 10, 0);
}

static void on_broken(uv_timer_t *t) {
  (void)t;
  struct timespec t0, now; /* 5 ms of work (no sleep: a blocking call of its own under load) */
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do
    clock_gettime(CLOCK_MONOTONIC, &now);
  while ((now.tv_sec - t0.tv_sec) * 1000000000L + (now.tv_nsec - t0.tv_nsec) < 5000000L);
  abort();
}

static void arm_broken_timer(uv_loop_t *loop) {
  uv_timer_init(loop, &stuck_timer);
  uv_timer_start(&stuck_timer, on_broken, 10, 0);
}

static void arm_stuck_timer(uv_loop_t *loop) {
  uv_timer_init(loop, &stuck_timer);
  uv_timer_start(&stuck_timer, on_stuck, 10, 0);
}

int main(int argc, char **argv) {
  uv_loop_t *loop = uv_default_loop();
  if (argc > 1 && strcmp(argv[1], "kill") == 0) {
    arm_stuck_timer(loop);
  } else if (argc > 1 && strcmp(argv[1], "abort") == 0) {
    arm_broken_timer(loop);
  } else if (argc > 1 && strcmp(argv[1], "exit-timer") == 0) {
    arm_last_tick(loop);
  } else {
    submit_slow_work(loop);
    open_config(loop);
  }
  return uv_run(loop, UV_RUN_DEFAULT);
}
