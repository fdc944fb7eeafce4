/*
 * clean.c -- a well-behaved program exercising most libuv features.
 * It must produce NO finding at all (no slow-callback, unclosed-handle,
 * unclosed-loop, never-started, pending-at-exit).
 *
 * Malloc'ed loop (uv_loop_init); one-shot timer; repeating timer closed after
 * 5 ticks; idle handle run 1000 times then closed; prepare + check handles
 * closed once everything else is done; async handle signalled from a second
 * thread; TCP server + client on 127.0.0.1 exchanging "ping"/"pong" with
 * uv_write/uv_read_start/uv_shutdown; uv_fs_open/write/close/unlink chain on
 * a temp file; uv_queue_work; uv_getaddrinfo("localhost").  uv_run ends by
 * itself, uv_loop_close must return 0 (abort otherwise), the loop is freed.
 * Every callback is short (well under 20 ms).  Exit status 0.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* uv.h needs POSIX types under -std=c11 */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static uv_loop_t *loop;
static uv_timer_t oneshot, repeat;
static uv_idle_t idle;
static uv_prepare_t prep;
static uv_check_t check;
static uv_async_t async;
static uv_thread_t thread;
static uv_tcp_t server, client, conn;
static uv_connect_t conn_req;
static uv_write_t cli_wreq, srv_wreq;
static uv_shutdown_t shut_req;
static uv_fs_t fs_req;
static uv_work_t work_req;
static uv_getaddrinfo_t gai_req;
static char tmp_path[64], rbuf[256];
static int remaining = 9, ticks, idles, fd;
static char ping[] = "ping", pong[] = "pong";

static void done_one(void) {
  if (--remaining == 0) {
    uv_close((uv_handle_t *)&prep, NULL);
    uv_close((uv_handle_t *)&check, NULL);
  }
}
static void on_closed_done(uv_handle_t *h) {
  (void)h;
  done_one();
}
static void on_prepare(uv_prepare_t *h) { (void)h; }
static void on_check(uv_check_t *h) { (void)h; }
static void on_oneshot(uv_timer_t *t) { uv_close((uv_handle_t *)t, on_closed_done); }
static void on_repeat(uv_timer_t *t) {
  if (++ticks == 5) {
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, on_closed_done);
  }
}
static void on_idle(uv_idle_t *h) {
  if (++idles == 1000) {
    uv_idle_stop(h);
    uv_close((uv_handle_t *)h, on_closed_done);
  }
}
static void on_async(uv_async_t *a) { uv_close((uv_handle_t *)a, on_closed_done); }
static void signaller_thread(void *arg) { uv_async_send(arg); }
static void do_work(uv_work_t *r) { (void)r; }
static void after_work(uv_work_t *r, int status) {
  (void)r;
  if (status)
    abort();
  done_one();
}
static void on_resolved(uv_getaddrinfo_t *r, int status, struct addrinfo *res) {
  (void)r;
  (void)status; /* resolution may fail in a sandbox: fine */
  uv_freeaddrinfo(res);
  done_one();
}
/* ---- fs chain: open -> write -> close -> unlink ---- */
static void on_fs_unlinked(uv_fs_t *r) {
  uv_fs_req_cleanup(r);
  done_one();
}
static void on_fs_closed(uv_fs_t *r) {
  uv_fs_req_cleanup(r);
  uv_fs_unlink(loop, &fs_req, tmp_path, on_fs_unlinked);
}
static void on_fs_written(uv_fs_t *r) {
  if (r->result < 0)
    abort();
  uv_fs_req_cleanup(r);
  uv_fs_close(loop, &fs_req, fd, on_fs_closed);
}
static void on_fs_opened(uv_fs_t *r) {
  if (r->result < 0)
    abort();
  fd = (int)r->result;
  uv_fs_req_cleanup(r);
  uv_buf_t b = uv_buf_init(ping, 4);
  uv_fs_write(loop, &fs_req, fd, &b, 1, 0, on_fs_written);
}
/* ---- TCP ping/pong ---- */
static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  (void)h;
  (void)s;
  *b = uv_buf_init(rbuf, sizeof rbuf);
}
static void on_written(uv_write_t *r, int status) {
  (void)r;
  if (status)
    abort();
}
static void on_server_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  if (n > 0 && memcmp(b->base, "ping", 4) == 0) {
    uv_buf_t out = uv_buf_init(pong, 4);
    uv_write(&srv_wreq, s, &out, 1, on_written);
  } else if (n < 0) { /* EOF after the client's shutdown */
    uv_close((uv_handle_t *)s, NULL);
    uv_close((uv_handle_t *)&server, on_closed_done);
  }
}
static void on_shutdown(uv_shutdown_t *r, int status) {
  (void)status;
  uv_close((uv_handle_t *)r->handle, on_closed_done);
}
static void on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  if (n > 0 && memcmp(b->base, "pong", 4) == 0) {
    uv_read_stop(s);
    uv_shutdown(&shut_req, s, on_shutdown);
  } else if (n < 0)
    abort();
}
static void on_connection(uv_stream_t *l, int status) {
  if (status < 0 || uv_tcp_init(loop, &conn) || uv_accept(l, (uv_stream_t *)&conn))
    abort();
  uv_read_start((uv_stream_t *)&conn, on_alloc, on_server_read);
}
static void on_connected(uv_connect_t *r, int status) {
  if (status < 0)
    abort();
  uv_buf_t out = uv_buf_init(ping, 4);
  uv_write(&cli_wreq, r->handle, &out, 1, on_written);
  uv_read_start(r->handle, on_alloc, on_client_read);
}
static void start_tcp(void) {
  struct sockaddr_in a;
  struct sockaddr_storage bound;
  int len = sizeof bound;
  uv_ip4_addr("127.0.0.1", 0, &a);
  if (uv_tcp_init(loop, &server) || uv_tcp_bind(&server, (struct sockaddr *)&a, 0) ||
      uv_listen((uv_stream_t *)&server, 8, on_connection) ||
      uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &len) || uv_tcp_init(loop, &client) ||
      uv_tcp_connect(&conn_req, &client, (struct sockaddr *)&bound, on_connected))
    abort();
}

int main(void) {
  loop = malloc(sizeof *loop);
  if (!loop || uv_loop_init(loop))
    abort();
  uv_timer_init(loop, &oneshot);
  uv_timer_start(&oneshot, on_oneshot, 5, 0);
  uv_timer_init(loop, &repeat);
  uv_timer_start(&repeat, on_repeat, 1, 1);
  uv_idle_init(loop, &idle);
  uv_idle_start(&idle, on_idle);
  uv_prepare_init(loop, &prep);
  uv_prepare_start(&prep, on_prepare);
  uv_check_init(loop, &check);
  uv_check_start(&check, on_check);
  uv_async_init(loop, &async, on_async);
  uv_thread_create(&thread, signaller_thread, &async);
  start_tcp();
  snprintf(tmp_path, sizeof tmp_path, "/tmp/loopsan_clean_%d.tmp", (int)uv_os_getpid());
  uv_fs_open(loop, &fs_req, tmp_path, UV_FS_O_CREAT | UV_FS_O_WRONLY | UV_FS_O_TRUNC, 0600,
             on_fs_opened);
  uv_queue_work(loop, &work_req, do_work, after_work);
  uv_getaddrinfo(loop, &gai_req, on_resolved, "localhost", NULL, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_thread_join(&thread);
  if (remaining != 0 || uv_loop_close(loop) != 0)
    abort();
  free(loop);
  return 0;
}
