/* Daemon-style: after using libuv once, the program closes every fd from 3
 * up, opens its own data files (it expects fd 3 for the first one, as
 * daemons do), then keeps creating timers from code built without unwind
 * tables (daemon_fds_nocfi.c), where libunwind falls back to validating
 * memory through a pipe of its own. The shim must keep every descriptor
 * of its own (trace file, libunwind's pipe) out of the program's way: the
 * program checks that its files are untouched and exits 1 if not.
 * Expected: exit 0 and one finding, unclosed-handle for the uv_timer_t
 * created in make_timer_nocfi (a leak planted at the end). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

uv_timer_t *make_timer_nocfi(uv_loop_t *loop);
static void on_never(uv_timer_t *t) { (void)t; }
static void free_handle(uv_handle_t *h) { free(h); }

int main(void) {
  uv_loop_t *loop = uv_default_loop();
  free_handle((uv_handle_t *)make_timer_nocfi(NULL)); /* warm up: NULL loop fails */
  static uv_timer_t first;
  uv_timer_init(loop, &first);
  uv_timer_start(&first, on_never, 1000, 0);
  uv_close((uv_handle_t *)&first, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  for (int fd = 3; fd < 1024; fd++)
    close(fd);
  char path[64];
  int fds[8];
  for (int i = 0; i < 8; i++) {
    snprintf(path, sizeof path, "/tmp/loopsan-daemon-fds.%d.%d", (int)getpid(), i);
    int w = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if ((i == 0 && w != 3) || write(w, "0123456789\n", 11) != 11) {
      printf("daemon_fds: open gave fd %d, not 3\n", w);
      return 1; /* a daemon gets fd 3 here: the shim must not hold it */
    }
    close(w);
    fds[i] = open(path, O_RDWR);
    unlink(path);
  }
  uv_loop_t own;
  if (uv_loop_init(&own) != 0)
    return 1;
  for (int i = 0; i < 200; i++) {
    uv_timer_t *t = make_timer_nocfi(&own);
    uv_timer_start(t, on_never, 1000, 0);
    uv_close((uv_handle_t *)t, free_handle);
  }
  uv_run(&own, UV_RUN_DEFAULT);
  int bad = 0;
  for (int i = 0; i < 8; i++) {
    char b[16];
    bad += lseek(fds[i], 0, SEEK_CUR) != 0 || pread(fds[i], b, sizeof b, 0) != 11 ||
           memcmp(b, "0123456789\n", 11) != 0;
  }
  if (uv_loop_close(&own) != 0 || bad) {
    printf("daemon_fds: %d file(s) touched\n", bad);
    return 1;
  }
  make_timer_nocfi(loop); /* planted: initialised, started, never closed */
  return 0;
}
