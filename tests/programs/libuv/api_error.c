/* Loop API calls that return an error, one mode each:
 *   misuse  uv_timer_start on a timer being closed (restart_closing:
 *           UV_EINVAL), uv_read_start on a pipe already reading
 *           (read_twice: UV_EALREADY) and uv_tcp_bind of a handle already
 *           bound (bind_twice: UV_EINVAL): three api-error findings.
 *   world   errors the world causes, part of normal operation: uv_spawn
 *           of a program that does not exist (UV_ENOENT), a bind to a
 *           port already bound (UV_EADDRINUSE), uv_accept with no
 *           connection waiting (UV_EAGAIN). No finding. */
#include <stdio.h>
#include <string.h>
#include <uv.h>

static uv_loop_t loop;
static uv_timer_t timer;
static uv_pipe_t pipe_h;
static int fds[2];

static void on_timer(uv_timer_t *t) { (void)t; }
static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  static char mem[64];
  (void)h, (void)size;
  *buf = uv_buf_init(mem, sizeof mem);
}
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) { (void)s, (void)n, (void)buf; }

static int restart_closing(void) {
  uv_timer_init(&loop, &timer);
  uv_close((uv_handle_t *)&timer, NULL);
  return uv_timer_start(&timer, on_timer, 10, 0);
}

static int read_twice(void) {
  uv_pipe(fds, 0, 0);
  uv_pipe_init(&loop, &pipe_h, 0);
  uv_pipe_open(&pipe_h, fds[0]);
  uv_read_start((uv_stream_t *)&pipe_h, on_alloc, on_read);
  int rc = uv_read_start((uv_stream_t *)&pipe_h, on_alloc, on_read);
  uv_close((uv_handle_t *)&pipe_h, NULL);
  return rc;
}

static int bind_twice(void) {
  static uv_tcp_t t;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  uv_tcp_init(&loop, &t);
  uv_tcp_bind(&t, (const struct sockaddr *)&addr, 0);
  int rc = uv_tcp_bind(&t, (const struct sockaddr *)&addr, 0); /* bound already */
  uv_close((uv_handle_t *)&t, NULL);
  return rc;
}

static int world(void) {
  static uv_process_t proc;
  char *args[] = {"/nonexistent/loopsan-test", NULL};
  uv_process_options_t opts = {.file = args[0], .args = args};
  int spawn = uv_spawn(&loop, &proc, &opts);
  if (spawn != 0)
    uv_close((uv_handle_t *)&proc, NULL);
  static uv_tcp_t a, b;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  uv_tcp_init(&loop, &a);
  uv_tcp_bind(&a, (const struct sockaddr *)&addr, 0);
  uv_listen((uv_stream_t *)&a, 1, NULL);
  struct sockaddr_storage bound;
  int len = sizeof bound;
  uv_tcp_getsockname(&a, (struct sockaddr *)&bound, &len);
  uv_tcp_init(&loop, &b);
  uv_tcp_bind(&b, (const struct sockaddr *)&bound, 0);
  int listen_rc = uv_listen((uv_stream_t *)&b, 1, NULL);
  static uv_tcp_t c;
  uv_tcp_init(&loop, &c);
  int accept_rc = uv_accept((uv_stream_t *)&a, (uv_stream_t *)&c); /* nobody waiting */
  uv_close((uv_handle_t *)&c, NULL);
  uv_close((uv_handle_t *)&a, NULL);
  uv_close((uv_handle_t *)&b, NULL);
  printf("spawn %s, second listen %s, accept %s\n", uv_err_name(spawn), uv_err_name(listen_rc),
         uv_err_name(accept_rc));
  return spawn == UV_ENOENT && listen_rc == UV_EADDRINUSE && accept_rc == UV_EAGAIN ? 0 : 1;
}

int main(int argc, char **argv) {
  uv_loop_init(&loop);
  int rc = 0;
  if (argc > 1 && strcmp(argv[1], "world") == 0) {
    rc = world();
  } else {
    int a = restart_closing(), b = read_twice(), c = bind_twice();
    printf("%s %s %s\n", uv_err_name(a), uv_err_name(b), uv_err_name(c));
    rc = a == UV_EINVAL && b == UV_EALREADY && c == UV_EINVAL ? 0 : 1;
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  return uv_loop_close(&loop) != 0 || rc;
}
