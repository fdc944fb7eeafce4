/*
 * bench_pingpong.c -- a syscall-bound workload, like a real server's.
 *
 * Usage: bench_pingpong [N]   (default N = 100000)
 * A libuv TCP server and client in one loop on 127.0.0.1: the client sends
 * 64 bytes, the server echoes them, the client sends again on each reply,
 * N round trips. Each round trip dispatches four callbacks (two reads, two
 * allocations) and two write completions.
 * Prints exactly one line: ns_per_op=<float>  (ns per round trip)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench/bench.h"
#include <string.h>
#include <uv.h>

static uv_loop_t loop;
static uv_tcp_t server, client, accepted;
static uv_connect_t connect_req;
static unsigned long trips, target;
static char payload[64], server_buf[4096], client_buf[4096];
static uv_buf_t out = {.base = payload, .len = sizeof payload};

static void alloc_server(uv_handle_t *h, size_t n, uv_buf_t *b) {
  (void)h, (void)n;
  *b = uv_buf_init(server_buf, sizeof server_buf);
}
static void alloc_client(uv_handle_t *h, size_t n, uv_buf_t *b) {
  (void)h, (void)n;
  *b = uv_buf_init(client_buf, sizeof client_buf);
}

static void on_written(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

static void send_on(uv_tcp_t *t, const char *data, size_t len) {
  uv_write_t *w = malloc(sizeof *w);
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  uv_write(w, (uv_stream_t *)t, &b, 1, on_written);
}

static void on_server_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  if (n > 0)
    send_on((uv_tcp_t *)s, b->base, (size_t)n); /* echo */
  else if (n < 0)
    uv_close((uv_handle_t *)s, NULL);
}

static void on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  if (n <= 0)
    return;
  if (++trips == target) {
    uv_close((uv_handle_t *)s, NULL);
    uv_close((uv_handle_t *)&server, NULL);
    return;
  }
  send_on(&client, out.base, out.len);
}

static void on_connection(uv_stream_t *srv, int status) {
  if (status != 0)
    return;
  uv_tcp_init(&loop, &accepted);
  if (uv_accept(srv, (uv_stream_t *)&accepted) == 0)
    uv_read_start((uv_stream_t *)&accepted, alloc_server, on_server_read);
}

static void on_connected(uv_connect_t *c, int status) {
  if (status != 0)
    return;
  uv_read_start(c->handle, alloc_client, on_client_read);
  send_on(&client, out.base, out.len);
}

int main(int argc, char **argv) {
  target = bench_iterations(argc, argv, 100000UL);
  if (target == 0)
    return 2;
  memset(payload, 'x', sizeof payload);
  struct sockaddr_in addr;
  uv_loop_init(&loop);
  uv_tcp_init(&loop, &server);
  uv_ip4_addr("127.0.0.1", 0, &addr);
  if (uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0) != 0 ||
      uv_listen((uv_stream_t *)&server, 16, on_connection) != 0)
    return 1;
  int len = sizeof addr;
  uv_tcp_getsockname(&server, (struct sockaddr *)&addr, &len);
  uv_tcp_init(&loop, &client);
  uv_tcp_nodelay(&client, 1);
  double t0 = bench_now_ns();
  uv_tcp_connect(&connect_req, &client, (const struct sockaddr *)&addr, on_connected);
  uv_run(&loop, UV_RUN_DEFAULT);
  double t1 = bench_now_ns();
  if (trips != target) /* (the server's side closed itself at the client's EOF) */
    return 1;
  uv_loop_close(&loop);
  printf("ns_per_op=%.3f\n", (t1 - t0) / (double)target);
  return 0;
}
