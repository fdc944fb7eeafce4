/* Clean: a TCP client and server in one loop exchange 20,000 messages,
 * each a uv_write_t request that completes well. Must report nothing, and
 * (tests/cli.test) its trace must stay small: requests that live and end
 * well between two write-outs leave no records (preload/compact.c). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <uv.h>
#include <stdlib.h>
#include <string.h>
static uv_tcp_t server, client, conn;
static int rounds;
static char buf[64];
static void alloc_cb(uv_handle_t *h, size_t s, uv_buf_t *b) {
  (void)h;
  (void)s;
  b->base = buf;
  b->len = sizeof buf;
}
static void on_write(uv_write_t *w, int st) {
  (void)st;
  free(w);
}
static void send_msg(uv_stream_t *s) {
  uv_write_t *w = malloc(sizeof *w);
  uv_buf_t b = uv_buf_init("ping", 4);
  uv_write(w, s, &b, 1, on_write);
}
static void on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  if (n <= 0)
    return;
  if (++rounds < 20000)
    send_msg(s);
  else {
    uv_close((uv_handle_t *)&client, NULL);
    uv_close((uv_handle_t *)&conn, NULL);
    uv_close((uv_handle_t *)&server, NULL);
  }
}
static void on_server_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  if (n > 0)
    send_msg(s);
}
static void on_conn(uv_stream_t *srv, int st) {
  (void)st;
  uv_tcp_init(srv->loop, &conn);
  uv_accept(srv, (uv_stream_t *)&conn);
  uv_read_start((uv_stream_t *)&conn, alloc_cb, on_server_read);
}
static void on_connect(uv_connect_t *c, int st) {
  (void)st;
  uv_read_start(c->handle, alloc_cb, on_client_read);
  send_msg(c->handle);
  free(c);
}
int main(void) {
  uv_loop_t *loop = uv_default_loop();
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_init(loop, &server);
  uv_tcp_bind(&server, (struct sockaddr *)&a, 0);
  uv_listen((uv_stream_t *)&server, 8, on_conn);
  int len = sizeof a;
  uv_tcp_getsockname(&server, (struct sockaddr *)&a, &len);
  uv_tcp_init(loop, &client);
  uv_connect_t *c = malloc(sizeof *c);
  uv_tcp_connect(c, &client, (struct sockaddr *)&a, on_connect);
  uv_run(loop, UV_RUN_DEFAULT);
  return uv_loop_close(loop);
}
