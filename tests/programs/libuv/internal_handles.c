/*
 * internal_handles.c -- a clean program that makes libuv create its own
 * internal handles/requests: the child (SIGCHLD) watcher and signal pipe
 * (uv_spawn, uv_signal_start), the fs-poll internal timer and stat requests
 * (uv_fs_poll_start), and the threadpool wakeup async (uv_queue_work x2).
 *
 * uv_spawn runs /bin/true (exit callback on_child_exit closes the process
 * handle); SIGUSR1 is watched (on_sigusr1), raised with uv_kill, then the
 * watcher is stopped and closed; a uv_fs_poll_t watches a temp file for
 * ~60 ms (the file is appended to once) and is then stopped and closed by
 * on_finish; two uv_queue_work requests complete.  Everything is closed,
 * uv_loop_close must return 0, the temp file is removed.  Exit status 0.
 *
 * It must produce NO finding: libuv's internal handles must never be
 * reported (as unclosed, never-started, pending or slow).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* uv.h needs POSIX types under -std=c11 */
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

static uv_loop_t loop;
static uv_process_t child;
static uv_signal_t sigusr1;
static uv_fs_poll_t poller;
static uv_timer_t touch_timer, finish_timer;
static uv_work_t work[2];
static char path[64];
static int child_status = -1, got_signal, works_done;

static void on_child_exit(uv_process_t *proc, int64_t exit_status, int term_signal) {
  (void)term_signal;
  child_status = (int)exit_status;
  uv_close((uv_handle_t *)proc, NULL);
}

static void on_sigusr1(uv_signal_t *sig, int signum) {
  got_signal = signum;
  uv_signal_stop(sig);
  uv_close((uv_handle_t *)sig, NULL);
}

static void on_file_change(uv_fs_poll_t *h, int status, const uv_stat_t *prev,
                           const uv_stat_t *curr) {
  (void)h;
  (void)status;
  (void)prev;
  (void)curr;
}

static void on_touch(uv_timer_t *t) {
  uv_fs_t req;
  int fd = uv_fs_open(NULL, &req, path, UV_FS_O_WRONLY | UV_FS_O_APPEND, 0, NULL);
  uv_fs_req_cleanup(&req);
  if (fd >= 0) {
    uv_buf_t b = uv_buf_init("x", 1);
    uv_fs_write(NULL, &req, fd, &b, 1, -1, NULL);
    uv_fs_req_cleanup(&req);
    uv_fs_close(NULL, &req, fd, NULL);
    uv_fs_req_cleanup(&req);
  }
  uv_close((uv_handle_t *)t, NULL);
}

static void on_finish(uv_timer_t *t) {
  uv_fs_poll_stop(&poller);
  uv_close((uv_handle_t *)&poller, NULL);
  uv_close((uv_handle_t *)t, NULL);
}

static void do_work(uv_work_t *req) { (void)req; }
static void after_work(uv_work_t *req, int status) {
  (void)req;
  if (!status)
    works_done++;
}

int main(void) {
  uv_fs_t req;
  if (uv_loop_init(&loop) != 0)
    abort();
  snprintf(path, sizeof path, "/tmp/loopsan_internal_%d.tmp", (int)uv_os_getpid());
  int fd = uv_fs_open(NULL, &req, path, UV_FS_O_CREAT | UV_FS_O_WRONLY | UV_FS_O_TRUNC, 0600, NULL);
  uv_fs_req_cleanup(&req);
  if (fd < 0)
    abort();
  uv_fs_close(NULL, &req, fd, NULL);
  uv_fs_req_cleanup(&req);

  char *args[] = {"true", NULL};
  uv_process_options_t opts = {.file = "/bin/true", .args = args, .exit_cb = on_child_exit};
  if (uv_spawn(&loop, &child, &opts) != 0)
    abort();

  uv_signal_init(&loop, &sigusr1);
  if (uv_signal_start(&sigusr1, on_sigusr1, SIGUSR1) != 0)
    abort();
  uv_kill(uv_os_getpid(), SIGUSR1);

  uv_fs_poll_init(&loop, &poller);
  if (uv_fs_poll_start(&poller, on_file_change, path, 10) != 0)
    abort();
  uv_timer_init(&loop, &touch_timer);
  uv_timer_start(&touch_timer, on_touch, 20, 0);
  uv_timer_init(&loop, &finish_timer);
  uv_timer_start(&finish_timer, on_finish, 60, 0);

  for (int i = 0; i < 2; i++)
    if (uv_queue_work(&loop, &work[i], do_work, after_work) != 0)
      abort();

  uv_run(&loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&loop);
  uv_fs_unlink(NULL, &req, path, NULL);
  uv_fs_req_cleanup(&req);
  if (rc != 0 || child_status != 0 || got_signal != SIGUSR1 || works_done != 2) {
    fprintf(stderr, "internal_handles: rc=%s child=%d sig=%d works=%d\n",
            rc ? uv_err_name(rc) : "0", child_status, got_signal, works_done);
    return 1;
  }
  return 0;
}
