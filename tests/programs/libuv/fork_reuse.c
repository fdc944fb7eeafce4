/* A stack the shim reuses (its return addresses unchanged since it was
 * last captured at that stack pointer, see preload/stacks.c) must not be
 * reused across a fork: a child's trace numbers its stacks anew. The parent
 * makes and closes timers at one place until that stack is reused, then
 * forks; the child makes one more there (same stack pointer, same frames)
 * and leaks it. Its finding must name that stack, written in the child's
 * own trace: site make_timer, created in main.
 * Exit status: 0. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#define KEEP_FRAME() __asm__ volatile("" ::: "memory")

static void on_tick(uv_timer_t *t) { (void)t; }

static __attribute__((noinline)) void make_timer(uv_loop_t *loop, uv_timer_t *t) {
  uv_timer_init(loop, t);
  uv_timer_start(t, on_tick, 60000, 0);
  KEEP_FRAME();
}

/* volatile: the compiler must not peel the last round into a call
 * instruction of its own (the child's stack would differ anyway) */
static volatile int rounds = 6, fork_round = 5;

int main(void) {
  uv_loop_t *loop = uv_default_loop();
  static uv_timer_t timers[6];
  pid_t pid = -1;
  for (int i = 0; i < rounds && i < 6; i++) {
    if (i == fork_round) {
      fflush(stdout);
      if ((pid = fork()) != 0)
        break; /* the parent (or a failed fork) */
    }
    make_timer(loop, &timers[i]); /* one call site, one stack pointer */
    if (i < fork_round) {
      uv_close((uv_handle_t *)&timers[i], NULL);
      uv_run(loop, UV_RUN_NOWAIT); /* the close completes */
    }
  }
  if (pid == 0) { /* the child: its timer is left open */
    uv_run(loop, UV_RUN_NOWAIT);
    exit(0);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return 1;
  return 0;
}
