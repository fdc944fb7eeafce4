/* Two loop libraries in one process: libuv on the main thread, GLib's main
 * loop on a thread of its own (its own GMainContext). Each has a slow
 * callback (u_slow_tick, 120 ms; g_slow_tick, 130 ms) and leaks: libuv a
 * timer and its loop (make_uv_leak), GLib a timeout source attached and
 * never destroyed (make_glib_leak), freed with its context. Every finding
 * must name its own library and callback. */
#include <glib.h>
#include <stdio.h>
#include <time.h>
#include <uv.h>

static void spin_ms(long ms) {
  struct timespec t0, now;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do
    clock_gettime(CLOCK_MONOTONIC, &now);
  while ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

static GMainLoop *glib_loop;
static int g_ticks, u_ticks;

static gboolean g_slow_tick(gpointer data) {
  (void)data;
  if (++g_ticks == 3)
    spin_ms(130);
  return G_SOURCE_CONTINUE;
}

static gboolean g_quit(gpointer data) {
  (void)data;
  g_main_loop_quit(glib_loop);
  return G_SOURCE_REMOVE;
}

static __attribute__((noinline)) void make_glib_leak(GMainContext *ctx) {
  GSource *s = g_timeout_source_new(10);
  g_source_set_callback(s, g_slow_tick, NULL, NULL);
  g_source_attach(s, ctx); /* never destroyed */
}

static gpointer glib_thread(gpointer data) {
  (void)data;
  GMainContext *ctx = g_main_context_new();
  g_main_context_push_thread_default(ctx);
  glib_loop = g_main_loop_new(ctx, FALSE);
  make_glib_leak(ctx);
  GSource *q = g_timeout_source_new(400);
  g_source_set_callback(q, g_quit, NULL, NULL);
  g_source_attach(q, ctx);
  g_source_unref(q);
  g_main_loop_run(glib_loop);
  g_main_loop_unref(glib_loop);
  g_main_context_pop_thread_default(ctx);
  g_main_context_unref(ctx);
  return NULL;
}

static void u_slow_tick(uv_timer_t *t) {
  if (++u_ticks == 3)
    spin_ms(120);
  if (u_ticks == 10)
    uv_timer_stop(t);
}

static __attribute__((noinline)) void make_uv_leak(uv_loop_t *loop) {
  static uv_timer_t leaked;
  uv_timer_init(loop, &leaked);
  uv_timer_start(&leaked, u_slow_tick, 10, 10);
}

int main(void) {
  GThread *th = g_thread_new("glib", glib_thread, NULL);
  static uv_loop_t loop;
  uv_loop_init(&loop);
  make_uv_leak(&loop);
  uv_run(&loop, UV_RUN_DEFAULT);
  g_thread_join(th);
  printf("uv ticks %d, glib ticks %d\n", u_ticks, g_ticks);
  return 0;
}
