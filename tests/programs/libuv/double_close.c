/* A timer closed twice (close_again, after close_timer): libuv aborts on
 * its assertion; loopsan reports the misuse first, with where the timer was
 * closed the first time. The program dies of SIGABRT, as without loopsan. */
#include <stdio.h>
#include <uv.h>

static uv_loop_t loop;
static uv_timer_t timer;

static void close_timer(void) { uv_close((uv_handle_t *)&timer, NULL); }
static void close_again(void) { uv_close((uv_handle_t *)&timer, NULL); }

static void make_timer(void) { uv_timer_init(&loop, &timer); }

int main(void) {
  uv_loop_init(&loop);
  make_timer();
  close_timer();
  close_again();
  uv_run(&loop, UV_RUN_DEFAULT);
  printf("not reached\n");
  return 0;
}
