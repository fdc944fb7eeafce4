/*
 * pending_work.c -- provokes: a threadpool work request pending at exit.
 *
 * submit_work() calls uv_queue_work on uv_default_loop() with work callback
 * do_work (sleeps 1 s in the threadpool) and after-work callback after_work.
 * main runs the loop once with UV_RUN_NOWAIT and returns 0 immediately, so
 * after_work never runs (the loop is never run again).  Note: the process
 * takes ~1 s to exit because libuv's own destructor (uv_library_shutdown)
 * joins the threadpool, waiting for do_work to finish; after_work still
 * never runs.
 *
 * A test should assert:
 *   kind = pending-at-exit, type = uv_work_t, callback = after_work,
 *          created = submit_work
 * and no slow-callback.  (The default loop is also left unclosed; whether
 * that is reported is up to the tool's default-loop policy.)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* uv.h needs POSIX types under -std=c11 */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

static uv_work_t work_req;

static void do_work(uv_work_t *req) {
  (void)req;
  uv_sleep(1000);
}

static void after_work(uv_work_t *req, int status) {
  (void)req;
  (void)status;
  fprintf(stderr, "pending_work: after_work ran (unexpected)\n");
}

static void submit_work(uv_loop_t *loop) {
  if (uv_queue_work(loop, &work_req, do_work, after_work) != 0)
    abort();
}

int main(void) {
  submit_work(uv_default_loop());
  uv_run(uv_default_loop(), UV_RUN_NOWAIT);
  return 0; /* BUG: exits with the work pending */
}
