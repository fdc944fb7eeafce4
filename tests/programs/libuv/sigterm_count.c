/* Counts the SIGTERMs it gets (a uv_signal_t), then shuts down cleanly
 * 300 ms after the first and prints how many came. Under `timeout 1
 * loopsan run -- sigterm_count` it must print 1, as without loopsan:
 * timeout signals both loopsan and its whole process group, and loopsan
 * must not hand the program a second copy (tests/cli.test). */
#include <stdio.h>
#include <uv.h>

static uv_signal_t sigterm;
static uv_timer_t idle_timer, grace;
static int count;

static void on_idle_timer(uv_timer_t *t) { (void)t; }

static void on_grace(uv_timer_t *t) {
  (void)t;
  uv_close((uv_handle_t *)&sigterm, NULL);
  uv_close((uv_handle_t *)&idle_timer, NULL);
  uv_close((uv_handle_t *)&grace, NULL);
}

static void on_sigterm(uv_signal_t *s, int signum) {
  (void)s;
  (void)signum;
  if (count++ == 0)
    uv_timer_start(&grace, on_grace, 300, 0);
}

int main(void) {
  uv_loop_t *loop = uv_default_loop();
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigterm, on_sigterm, SIGTERM);
  uv_timer_init(loop, &idle_timer);
  uv_timer_start(&idle_timer, on_idle_timer, 60000, 60000);
  uv_timer_init(loop, &grace);
  uv_run(loop, UV_RUN_DEFAULT);
  printf("SIGTERM x%d\n", count);
  return uv_loop_close(loop) == 0 ? 0 : 1;
}
