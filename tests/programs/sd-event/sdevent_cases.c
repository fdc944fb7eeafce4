/* sd-event programs, one per mode (the .expect files name the mode):
 *   clean       an io source on a pipe, a time source re-armed three
 *               times, a defer source, a floating post source, a signal
 *               source and a child source: every one unreferenced, the
 *               loop unreferenced. No finding.
 *   slow        a time source's callback (on_slow_timer, added in
 *               add_slow_timer) sleeps 200 ms: slow-callback.
 *   leak-source an io source (on_readable, watch_pipe) the program never
 *               unreferences: unclosed-handle.
 *   pending     a floating 60 s time source (on_deadline, add_deadline)
 *               on the default loop, not due at exit: pending-at-exit.
 *   leak-loop   a loop (make_loop) never unreferenced: unclosed-loop.
 *   crash       a time source's callback (on_bad_timer, added in
 *               add_bad_timer) reads through NULL in read_config: crash,
 *               and the process dies of SIGSEGV.
 * sd-event sources are enabled when added: there is no "never started". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0)
    ;
}

static uint64_t now_usec(sd_event *e) {
  uint64_t t = 0;
  sd_event_now(e, CLOCK_MONOTONIC, &t);
  return t;
}

/* ---- clean ---- */
static int pipe_fds[2], reads, ticks, deferred, posted, signalled, child_done;

static int on_pipe(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
  (void)s, (void)revents, (void)userdata;
  char c;
  if (read(fd, &c, 1) == 1)
    reads++;
  return 0;
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
  (void)userdata;
  if (++ticks == 1 && write(pipe_fds[1], "x", 1) != 1)
    perror("write");
  if (ticks == 2)
    kill(getpid(), SIGUSR1);
  /* Until everything happened (under load, the signal or the child can
   * come a few ticks late), at most a second. */
  int done = ticks >= 3 && reads == 1 && signalled == 1 && child_done == 1;
  if (!done && ticks < 500) {
    sd_event_source_set_time(s, usec + 2000);
    sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
  } else {
    sd_event_exit(sd_event_source_get_event(s), 0);
  }
  return 0;
}

static int on_defer(sd_event_source *s, void *userdata) {
  (void)s, (void)userdata;
  deferred++;
  return 0;
}

static int on_post(sd_event_source *s, void *userdata) {
  (void)s, (void)userdata;
  posted++;
  return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
  (void)s, (void)si, (void)userdata;
  signalled++;
  return 0;
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
  (void)s, (void)si, (void)userdata;
  child_done++;
  return 0;
}

static int clean(void) {
  sd_event *e = NULL;
  sd_event_source *io = NULL, *timer = NULL, *defer = NULL, *sig = NULL, *child = NULL;
  if (pipe(pipe_fds) != 0 || sd_event_new(&e) < 0)
    return 1;
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  sd_event_add_io(e, &io, pipe_fds[0], EPOLLIN, on_pipe, NULL);
  sd_event_add_time(e, &timer, CLOCK_MONOTONIC, now_usec(e) + 2000, 0, on_tick, NULL);
  sd_event_add_defer(e, &defer, on_defer, NULL);
  sd_event_add_post(e, NULL, on_post, NULL);
  sd_event_add_signal(e, &sig, SIGUSR1, on_signal, NULL);
  pid_t pid = fork();
  if (pid == 0)
    _exit(0);
  sd_event_add_child(e, &child, pid, WEXITED, on_child, NULL);
  int rc = sd_event_loop(e);
  sd_event_source_unref(io);
  sd_event_source_unref(timer);
  sd_event_source_unref(defer);
  sd_event_source_unref(sig);
  sd_event_source_unref(child);
  sd_event_unref(e);
  printf("rc=%d reads=%d ticks>=3 %d deferred=%d posted>=1 %d signalled=%d child=%d\n", rc, reads,
         ticks >= 3, deferred, posted >= 1, signalled, child_done);
  return !(rc == 0 && reads == 1 && ticks >= 3 && deferred == 1 && posted >= 1 && signalled == 1 &&
           child_done == 1);
}

/* ---- slow ---- */
static int on_slow_timer(sd_event_source *s, uint64_t usec, void *userdata) {
  (void)usec, (void)userdata;
  sleep_ms(200);
  return sd_event_exit(sd_event_source_get_event(s), 0);
}

static sd_event_source *add_slow_timer(sd_event *e) {
  sd_event_source *s = NULL;
  sd_event_add_time_relative(e, &s, CLOCK_MONOTONIC, 1000, 0, on_slow_timer, NULL);
  return s;
}

static int slow(void) {
  sd_event *e = NULL;
  if (sd_event_new(&e) < 0)
    return 1;
  sd_event_source *s = add_slow_timer(e);
  int rc = sd_event_loop(e);
  sd_event_source_unref(s);
  sd_event_unref(e);
  return rc;
}

/* ---- crash ---- */
static const char *volatile no_config;

static __attribute__((noipa)) int read_config(const char *p) { return p[0]; }

static int on_bad_timer(sd_event_source *s, uint64_t usec, void *userdata) {
  (void)s, (void)usec, (void)userdata;
  return read_config(no_config);
}

static __attribute__((noinline)) sd_event_source *add_bad_timer(sd_event *e) {
  sd_event_source *s = NULL;
  sd_event_add_time_relative(e, &s, CLOCK_MONOTONIC, 1000, 0, on_bad_timer, NULL);
  return s;
}

static int crash(void) {
  sd_event *e = NULL;
  if (sd_event_new(&e) < 0)
    return 1;
  add_bad_timer(e);
  return sd_event_loop(e);
}

/* ---- leak-source ---- */
static int on_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
  (void)s, (void)fd, (void)revents, (void)userdata;
  return 0;
}

static sd_event_source *watch_pipe(sd_event *e) {
  sd_event_source *s = NULL;
  sd_event_add_io(e, &s, pipe_fds[0], EPOLLIN, on_readable, NULL);
  return s;
}

static int leak_source(void) {
  sd_event *e = NULL;
  if (pipe(pipe_fds) != 0 || sd_event_new(&e) < 0)
    return 1;
  watch_pipe(e); /* its reference is lost */
  sd_event_run(e, 0);
  sd_event_unref(e);
  return 0;
}

/* ---- pending ---- */
static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
  (void)s, (void)usec, (void)userdata;
  return 0;
}

static void add_deadline(sd_event *e) {
  sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC, 60 * 1000000ULL, 0, on_deadline, NULL);
}

static int pending(void) {
  sd_event *e = NULL;
  if (sd_event_default(&e) < 0)
    return 1;
  add_deadline(e);
  sd_event_run(e, 1000);
  return 0;
}

/* ---- leak-loop ---- */
static sd_event *make_loop(void) {
  sd_event *e = NULL;
  sd_event_new(&e);
  return e;
}

static int leak_loop(void) {
  sd_event *e = make_loop();
  return e ? sd_event_run(e, 0) < 0 : 1;
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    int (*run)(void);
  } modes[] = {{"clean", clean},     {"slow", slow},           {"leak-source", leak_source},
               {"pending", pending}, {"leak-loop", leak_loop}, {"crash", crash}};
  for (size_t i = 0; argc > 1 && i < sizeof modes / sizeof *modes; i++)
    if (strcmp(argv[1], modes[i].name) == 0)
      return modes[i].run();
  fprintf(stderr, "usage: sdevent_cases clean|slow|leak-source|pending|leak-loop|crash\n");
  return 2;
}
