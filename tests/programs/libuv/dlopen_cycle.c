/* A program that links no libuv: it dlopen()s libuv.so.1 (RTLD_GLOBAL),
 * finds its functions by name in the global scope (so the calls go
 * through loopsan), runs a loop with a timer, closes everything and
 * dlclose()s the library, 20 times; the last time it leaks the timer
 * (make_last_timer): unclosed-handle. Without the shim pinning libuv, the
 * second dlopen would map it elsewhere while the shim still called into
 * the first: a crash in uv_loop_init. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#define ROUNDS 20

struct uv_api {
  int (*loop_init)(uv_loop_t *);
  int (*loop_close)(uv_loop_t *);
  int (*timer_init)(uv_loop_t *, uv_timer_t *);
  int (*timer_start)(uv_timer_t *, uv_timer_cb, uint64_t, uint64_t);
  int (*run)(uv_loop_t *, uv_run_mode);
  void (*close)(uv_handle_t *, uv_close_cb);
};

static int fired;
static void on_round(uv_timer_t *t) {
  (void)t;
  fired++;
}

static int lookup(struct uv_api *api) {
  *(void **)&api->loop_init = dlsym(RTLD_DEFAULT, "uv_loop_init");
  *(void **)&api->loop_close = dlsym(RTLD_DEFAULT, "uv_loop_close");
  *(void **)&api->timer_init = dlsym(RTLD_DEFAULT, "uv_timer_init");
  *(void **)&api->timer_start = dlsym(RTLD_DEFAULT, "uv_timer_start");
  *(void **)&api->run = dlsym(RTLD_DEFAULT, "uv_run");
  *(void **)&api->close = dlsym(RTLD_DEFAULT, "uv_close");
  return api->loop_init && api->loop_close && api->timer_init && api->timer_start && api->run &&
                 api->close
             ? 0
             : -1;
}

static __attribute__((noinline)) uv_timer_t *make_last_timer(const struct uv_api *api,
                                                             uv_loop_t *loop) {
  static uv_timer_t t;
  api->timer_init(loop, &t);
  api->timer_start(&t, on_round, 60000, 0);
  return &t;
}

int main(void) {
  static uv_loop_t loop;
  static uv_timer_t timer;
  for (int i = 0; i < ROUNDS; i++) {
    void *h = dlopen("libuv.so.1", RTLD_NOW | RTLD_GLOBAL);
    struct uv_api api;
    if (!h || lookup(&api) != 0) {
      fprintf(stderr, "dlopen_cycle: %s\n", dlerror());
      return 1;
    }
    if (api.loop_init(&loop) != 0)
      return 1;
    api.timer_init(&loop, &timer);
    api.timer_start(&timer, on_round, 1, 0);
    api.run(&loop, UV_RUN_DEFAULT);
    if (i == ROUNDS - 1) {
      make_last_timer(&api, &loop);
      api.run(&loop, UV_RUN_NOWAIT);
      break; /* the loop and its last timer are left open */
    }
    api.close((uv_handle_t *)&timer, NULL);
    api.run(&loop, UV_RUN_DEFAULT);
    if (api.loop_close(&loop) != 0)
      return 1;
    dlclose(h);
  }
  printf("dlopen_cycle: %d timers fired\n", fired);
  return fired == ROUNDS ? 0 : 1;
}
