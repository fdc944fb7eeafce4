/*
 * demo.c -- the README demo: a tiny "server-like" program with two bugs
 * that loopsan finds.
 *
 *  1. handle_request (a timer callback) parses a large config synchronously,
 *     blocking the event loop for ~150 ms          -> slow-callback
 *     (uv_timer_t, callback handle_request, created in schedule_request)
 *  2. open_admin_socket() creates a uv_tcp_t listener on 127.0.0.1 (port 0)
 *     that is never closed                         -> unclosed-handle
 *     (uv_tcp_t, callback on_admin_connection, created in open_admin_socket)
 *
 * A shutdown timer (schedule_shutdown / on_shutdown) calls uv_stop after
 * ~300 ms; main prints "demo: done" and returns 0 without closing the
 * leaked listener (nor the loop: uv_default_loop is used).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* uv.h needs POSIX types under -std=c11 */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

static uv_timer_t request_timer;
static uv_timer_t shutdown_timer;
static uv_tcp_t admin_socket;
static unsigned long config_checksum;

/* Pretend to parse a big configuration file, synchronously. */
static void parse_config_synchronously(void) {
  uint64_t deadline = uv_hrtime() + 150 * 1000000ULL;
  unsigned long h = 5381;
  while (uv_hrtime() < deadline)
    for (int i = 0; i < 1000; i++)
      h = h * 33 + (unsigned long)i;
  config_checksum = h;
}

static void handle_request(uv_timer_t *timer) {
  /* BUG: blocks the whole event loop while it parses the config. */
  parse_config_synchronously();
  uv_close((uv_handle_t *)timer, NULL);
}

static void on_admin_connection(uv_stream_t *server, int status) {
  (void)server;
  (void)status; /* nobody connects in the demo */
}

static void open_admin_socket(uv_loop_t *loop) {
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  if (uv_tcp_init(loop, &admin_socket) != 0 ||
      uv_tcp_bind(&admin_socket, (const struct sockaddr *)&addr, 0) != 0 ||
      uv_listen((uv_stream_t *)&admin_socket, 16, on_admin_connection) != 0)
    abort();
  /* BUG: never uv_close'd. */
}

static void schedule_request(uv_loop_t *loop) {
  uv_timer_init(loop, &request_timer);
  uv_timer_start(&request_timer, handle_request, 20, 0);
}

static void on_shutdown(uv_timer_t *timer) {
  uv_close((uv_handle_t *)timer, NULL);
  uv_stop(timer->loop);
}

static void schedule_shutdown(uv_loop_t *loop) {
  uv_timer_init(loop, &shutdown_timer);
  uv_timer_start(&shutdown_timer, on_shutdown, 300, 0);
}

int main(void) {
  uv_loop_t *loop = uv_default_loop();
  open_admin_socket(loop);
  schedule_request(loop);
  schedule_shutdown(loop);
  uv_run(loop, UV_RUN_DEFAULT);
  printf("demo: done\n");
  return 0;
}
