/* The ways processes begin and end, each image leaking one timer made in a
 * function named after its path, so that the report must show each:
 *   parent_leak      the first process; it exits by returning from main
 *                    after starting the others and waiting for them;
 *   quick_leak       a child started with posix_spawn, ending in
 *                    quick_exit();
 *   underscore_leak  a child started with vfork + execv, ending in _exit();
 *   daemon_leak      a double-forked daemon (its middle process _exits at
 *                    once), outliving its parent, ending in exit().
 * None may look killed; each leak is its own process's. Exit status 0. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

extern char **environ;

static void on_leaked_tick(uv_timer_t *t) { (void)t; }

/* (each path's own timer, and for the daemon a loop of its own: a forked
 * child inherits its parent's open timer and loop, and initialising them
 * again would be a misuse of its own) */
static uv_timer_t timers[4];
static uv_loop_t daemon_loop;

static __attribute__((noinline)) void leak_timer(uv_loop_t *loop, int path) {
  uv_timer_init(loop, &timers[path]);
  timers[path].data = &timers[path];
  uv_timer_start(&timers[path], on_leaked_tick, 3600000, 0);
  uv_run(loop, UV_RUN_NOWAIT);
}

/* (distinct bodies: identical functions would be folded into one; and no
 * tail calls, which would leave their frames out of the stack) */
#define NO_TAIL_CALL() __asm__ volatile("" ::: "memory")
static __attribute__((noinline)) void parent_leak(void) {
  leak_timer(uv_default_loop(), 0);
  NO_TAIL_CALL();
}
static __attribute__((noinline)) void quick_leak(void) {
  leak_timer(uv_default_loop(), 1);
  NO_TAIL_CALL();
}
static __attribute__((noinline)) void underscore_leak(void) {
  leak_timer(uv_default_loop(), 2);
  NO_TAIL_CALL();
}
static __attribute__((noinline)) void daemon_leak(void) {
  uv_loop_init(&daemon_loop);
  leak_timer(&daemon_loop, 3);
  NO_TAIL_CALL();
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "quick") == 0) {
    quick_leak();
    quick_exit(0);
  }
  if (argc > 1 && strcmp(argv[1], "underscore") == 0) {
    underscore_leak();
    _exit(0);
  }
  parent_leak();
  pid_t spawned;
  char *quick_argv[] = {argv[0], "quick", NULL};
  if (posix_spawn(&spawned, argv[0], NULL, NULL, quick_argv, environ) != 0)
    return 1;
  pid_t vforked = vfork();
  if (vforked == 0) {
    char *args[] = {argv[0], "underscore", NULL};
    execv(argv[0], args);
    _exit(127);
  }
  pid_t middle = fork();
  if (middle == 0) {
    if (fork() != 0)
      _exit(0); /* the middle process: its child is the daemon */
    setsid();
    usleep(200000); /* outlives the first process */
    daemon_leak();
    exit(0);
  }
  int st, ok = 1;
  ok &= waitpid(spawned, &st, 0) == spawned && WIFEXITED(st) && WEXITSTATUS(st) == 0;
  ok &= waitpid(vforked, &st, 0) == vforked && WIFEXITED(st) && WEXITSTATUS(st) == 0;
  ok &= waitpid(middle, &st, 0) == middle && WIFEXITED(st) && WEXITSTATUS(st) == 0;
  return ok ? 0 : 1;
}
