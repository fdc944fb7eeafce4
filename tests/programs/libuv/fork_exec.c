/* A process that forks and then execs itself: every image leaks one timer,
 * created in a function named after it, so the report must show three
 * processes' worth of unclosed-handle findings: parent_leak (the first
 * image, ended by exec), child_leak (the forked child) and exec_leak (the
 * image after exec). Nothing the parent created may be blamed on the child.
 * Exit status: 0. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

static void on_leaked_tick(uv_timer_t *t) { (void)t; }

static void leak_timer(uv_loop_t *loop, uv_timer_t *t) {
  uv_timer_init(loop, t);
  uv_timer_start(t, on_leaked_tick, 1, 0);
  uv_run(loop, UV_RUN_DEFAULT);
}

static uv_timer_t parent_timer, child_timer, exec_timer;

/* The empty asm keeps each call a real call (no tail call), so the
 * function stays on the creation stack. */
#define KEEP_FRAME() __asm__ volatile("" ::: "memory")
static __attribute__((noinline)) void parent_leak(uv_loop_t *loop) {
  leak_timer(loop, &parent_timer);
  KEEP_FRAME();
}
static __attribute__((noinline)) void child_leak(uv_loop_t *loop) {
  leak_timer(loop, &child_timer);
  KEEP_FRAME();
}
static __attribute__((noinline)) void exec_leak(uv_loop_t *loop) {
  leak_timer(loop, &exec_timer);
  KEEP_FRAME();
}

int main(int argc, char **argv) {
  uv_loop_t *loop = uv_default_loop();
  if (argc > 1 && strcmp(argv[1], "exec") == 0) {
    exec_leak(loop);
    return 0;
  }
  parent_leak(loop);
  pid_t pid = fork();
  if (pid == 0) {
    child_leak(loop);
    exit(0);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return 1;
  char *args[] = {argv[0], "exec", NULL};
  execv("/proc/self/exe", args);
  perror("execv");
  return 1;
}
