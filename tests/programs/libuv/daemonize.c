/* A daemon made with daemon(3): the parent leaks a timer
 * (make_parent_timer) and calls daemon(), whose parent side ends in an
 * _exit inside libc; the daemon child runs a clean loop of its own and
 * exits. The parent must be seen to exit (status 0, its leak judged), not
 * taken for a killed process; the child is observed too, with no finding. */
#include <stdio.h>
#include <unistd.h>
#include <uv.h>

static void on_parent_tick(uv_timer_t *t) { (void)t; }

static __attribute__((noinline)) void make_parent_timer(uv_loop_t *loop) {
  static uv_timer_t t;
  uv_timer_init(loop, &t);
  uv_timer_start(&t, on_parent_tick, 1, 0);
}

static void on_child_tick(uv_timer_t *t) { uv_close((uv_handle_t *)t, NULL); }

int main(void) {
  uv_loop_t *loop = uv_default_loop();
  make_parent_timer(loop);
  uv_run(loop, UV_RUN_DEFAULT);
  if (daemon(1, 0) != 0) {
    perror("daemon");
    return 1;
  }
  /* the daemon: a loop of its own (libuv's after fork) */
  static uv_loop_t child_loop;
  uv_loop_init(&child_loop);
  uv_timer_t t;
  uv_timer_init(&child_loop, &t);
  uv_timer_start(&t, on_child_tick, 1, 0);
  uv_run(&child_loop, UV_RUN_DEFAULT);
  return uv_loop_close(&child_loop) == 0 ? 0 : 1;
}
