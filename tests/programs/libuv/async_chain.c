/* An async chain: a timer made in main (arm_first) whose callback makes a
 * second timer (arm_second, in on_first), whose callback makes a third
 * (leak_third, in on_second) that is never closed: unclosed-handle, with
 * the chain on_second (of the timer made in arm_second) then on_first (of
 * the timer made in arm_first). */
#include <stdio.h>
#include <uv.h>

static uv_loop_t loop;
static uv_timer_t first, second, third;

static void on_third(uv_timer_t *t) { (void)t; }

static void leak_third(void) {
  uv_timer_init(&loop, &third);
  uv_timer_start(&third, on_third, 60000, 0);
  uv_unref((uv_handle_t *)&third); /* the loop ends without it */
}

static void on_second(uv_timer_t *t) {
  leak_third();
  uv_close((uv_handle_t *)t, NULL);
}

static void arm_second(void) {
  uv_timer_init(&loop, &second);
  uv_timer_start(&second, on_second, 1, 0);
}

static void on_first(uv_timer_t *t) {
  arm_second();
  uv_close((uv_handle_t *)t, NULL);
}

static void arm_first(void) {
  uv_timer_init(&loop, &first);
  uv_timer_start(&first, on_first, 1, 0);
}

int main(void) {
  uv_loop_init(&loop);
  arm_first();
  uv_run(&loop, UV_RUN_DEFAULT);
  printf("done\n");
  return 0; /* the loop is left open too: its leak is the third timer's */
}
