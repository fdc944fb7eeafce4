/*
 * slow_read.c -- provokes: a slow read callback on an accepted TCP stream.
 *
 * One process, one loop: a TCP server (listener created in start_server(),
 * bound to 127.0.0.1 port 0) and a client (created in start_client()) that
 * connects, starts reading (on_client_read), writes "hello" and closes.
 * The server's accepted connection (uv_tcp_init'ed in on_new_connection)
 * reads with on_server_read, which busy-waits (spinning on uv_hrtime) for
 * 200 ms on its first read.  On EOF everything is closed;
 * uv_loop_close == 0 is asserted.  Exit status 0.
 *
 * A test should assert exactly one finding:
 *   kind      = slow-callback   (duration >= ~200 ms)
 *   type      = uv_tcp_t
 *   callback  = on_server_read
 *   created   = on_new_connection
 * and no unclosed-handle / unclosed-loop / pending-at-exit findings.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* uv.h needs POSIX types under -std=c11 */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

static uv_tcp_t server;
static uv_tcp_t client;
static uv_connect_t connect_req;
static uv_write_t write_req;
static char read_buf[4096];
static int first_read_done;

static void busy_wait_ms(uint64_t ms) {
  uint64_t end = uv_hrtime() + ms * 1000000ULL;
  while (uv_hrtime() < end) {
    /* spin */
  }
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)handle;
  (void)suggested;
  *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_conn_closed(uv_handle_t *handle) { free(handle); }

static void on_server_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  if (nread > 0 && !first_read_done) {
    first_read_done = 1;
    busy_wait_ms(200);    /* simulated synchronous request parsing */
  } else if (nread < 0) { /* UV_EOF (or error): done */
    uv_close((uv_handle_t *)stream, on_conn_closed);
    uv_close((uv_handle_t *)&server, NULL);
  }
}

static void on_new_connection(uv_stream_t *listener, int status) {
  if (status < 0)
    abort();
  uv_tcp_t *conn = malloc(sizeof *conn);
  if (!conn || uv_tcp_init(listener->loop, conn) != 0)
    abort();
  if (uv_accept(listener, (uv_stream_t *)conn) != 0)
    abort();
  uv_read_start((uv_stream_t *)conn, on_alloc, on_server_read);
}

static void on_client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  (void)stream;
  (void)nread;
  (void)buf; /* the server never writes back */
}

static void on_client_written(uv_write_t *req, int status) {
  (void)status;
  uv_close((uv_handle_t *)req->handle, NULL); /* sends FIN */
}

static void on_client_connected(uv_connect_t *req, int status) {
  if (status < 0)
    abort();
  static char msg[] = "hello";
  uv_buf_t b = uv_buf_init(msg, sizeof msg - 1);
  uv_write(&write_req, req->handle, &b, 1, on_client_written);
  uv_read_start(req->handle, on_alloc, on_client_read); /* gets nothing */
}

static int start_server(uv_loop_t *loop) {
  struct sockaddr_in addr;
  struct sockaddr_storage bound;
  int len = sizeof bound;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  if (uv_tcp_init(loop, &server) != 0 ||
      uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0) != 0 ||
      uv_listen((uv_stream_t *)&server, 16, on_new_connection) != 0 ||
      uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &len) != 0)
    abort();
  return ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void start_client(uv_loop_t *loop, int port) {
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", port, &addr);
  if (uv_tcp_init(loop, &client) != 0 ||
      uv_tcp_connect(&connect_req, &client, (const struct sockaddr *)&addr, on_client_connected) !=
          0)
    abort();
}

int main(void) {
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0)
    abort();
  start_client(&loop, start_server(&loop));
  uv_run(&loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&loop);
  if (rc != 0 || !first_read_done) {
    fprintf(stderr, "slow_read: uv_loop_close: %s\n", uv_strerror(rc));
    return 1;
  }
  return 0;
}
