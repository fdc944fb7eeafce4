/* A write without a callback that fails: the peer of a socket pair has
 * closed, so the write (queue_blind_write, on a pipe opened in
 * open_stream) ends with UV_EPIPE, and nothing can see it:
 * unobserved-error. A second write with a callback that fails the same way
 * is seen by that callback: no finding. */
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

static uv_loop_t loop;
static uv_pipe_t stream;
static uv_write_t blind, seen;
static int seen_status = 1;

static void open_stream(int fd) {
  uv_pipe_init(&loop, &stream, 0);
  uv_pipe_open(&stream, fd);
}

static void queue_blind_write(void) {
  static char data[] = "lost";
  uv_buf_t buf = uv_buf_init(data, sizeof data - 1);
  uv_write(&blind, (uv_stream_t *)&stream, &buf, 1, NULL);
}

static void on_written(uv_write_t *req, int status) {
  (void)req;
  seen_status = status;
  uv_close((uv_handle_t *)&stream, NULL);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
    return 1;
  close(sv[1]); /* the peer is gone */
  uv_loop_init(&loop);
  open_stream(sv[0]);
  queue_blind_write();
  static char more[] = "more";
  uv_buf_t buf = uv_buf_init(more, sizeof more - 1);
  uv_write(&seen, (uv_stream_t *)&stream, &buf, 1, on_written);
  uv_run(&loop, UV_RUN_DEFAULT);
  printf("seen write: %s\n", uv_err_name(seen_status));
  return uv_loop_close(&loop) != 0 || seen_status >= 0;
}
