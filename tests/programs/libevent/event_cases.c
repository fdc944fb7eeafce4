/* libevent programs, one per mode (the .expect files name the mode):
 *   clean       a persistent read event on a pipe, a timer, an assigned
 *               event, a bufferevent on a socket pair: all deleted or
 *               freed, the base freed. No finding.
 *   slow        a timer callback (on_slow_timer, made in arm_slow_timer)
 *               sleeps 200 ms: slow-callback.
 *   crash       a timer callback (on_bad_timer, made in arm_bad_timer)
 *               reads through NULL in read_config: crash (SIGSEGV).
 *   not-set-up  event_add of zeroed memory (add_unset, never event_new'd
 *               nor assigned): misuse; libevent refuses it (-1).
 *   assign-added  a read event added, then assigned again while added
 *               (reassign_added): misuse; the program exits right after.
 *   blocking-fd an event on a pipe left in blocking mode (watch_blocking):
 *               misuse, naming the fd.
 *   add-freed   event_add of an event event_free'd before (drop_event):
 *               misuse, with where it was freed; exits right after.
 *   never-added an event made (make_unused_event) but never added, then
 *               freed: never-started.
 *   pending     a 60 s timer (on_deadline, arm_deadline) still added when
 *               the program ends: pending-at-exit, also never freed.
 *   leak-base   a base (make_base) never freed: unclosed-loop.
 *   slow-once   a one-shot event (event_base_once in schedule_slow_once)
 *               whose callback on_slow_once sleeps 200 ms: slow-callback.
 *   leak-listener  a listener (make_listener, callback on_accept) never
 *               freed: unclosed-handle.
 *   wrong-thread  while the main thread runs the base, another thread
 *               adds an event of it (add_from_worker; the event made in
 *               make_foreign_event): wrong-thread naming event_add.
 *   evthread    the same after evthread_use_pthreads(): thread-safe, no
 *               finding.
 *   blind-bev   a bufferevent with a read callback and no event callback
 *               (open_blind), whose peer closes: the end of file nobody
 *               sees is an unobserved-error.
 * clean also runs an event_base_once callback and a listener accepting a
 * connection, and checks that event_get_assignment and bufferevent_getcb
 * give back the program's own callbacks. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0)
    ;
}

/* ---- clean ---- */
static int pipe_fds[2], pairs[2], reads, got_echo;
static struct event *reader, *ticker;
static struct event assigned;
static struct bufferevent *bev_a, *bev_b;

static void on_pipe(evutil_socket_t fd, short what, void *arg) {
  (void)what, (void)arg;
  char c;
  if (read(fd, &c, 1) == 1 && ++reads == 2)
    event_del(reader);
}

static void on_tick(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what, (void)arg;
  if (write(pipe_fds[1], "xy", 2) != 2)
    perror("write");
}

static void on_assigned(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what, (void)arg;
}

static void on_bev_read(struct bufferevent *bev, void *ctx) {
  (void)ctx;
  char buf[16];
  size_t n = bufferevent_read(bev, buf, sizeof buf);
  if (bev == bev_b)
    bufferevent_write(bev, buf, n); /* echo */
  else
    got_echo = 1;
}

static void on_bev_event(struct bufferevent *bev, short what, void *ctx) {
  (void)bev, (void)what, (void)ctx;
}

static int once_ran, accepted;

static void on_once(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what, (void)arg;
  once_ran++;
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *ptr) {
  (void)lev, (void)sa, (void)socklen, (void)ptr;
  accepted++;
  close(fd);
}

static struct evconnlistener *make_listener(struct event_base *base, int *port) {
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct evconnlistener *lev =
      evconnlistener_new_bind(base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 8,
                              (struct sockaddr *)&sin, sizeof sin);
  socklen_t len = sizeof sin;
  if (lev && getsockname(evconnlistener_get_fd(lev), (struct sockaddr *)&sin, &len) == 0)
    *port = ntohs(sin.sin_port);
  return lev;
}

static int connect_to(int port) {
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int run_clean(void) {
  struct event_base *base = event_base_new();
  if (!base || pipe(pipe_fds) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, pairs) != 0)
    return 1;
  evutil_make_socket_nonblocking(pipe_fds[0]); /* as libevent wants it */
  reader = event_new(base, pipe_fds[0], EV_READ | EV_PERSIST, on_pipe, NULL);
  event_add(reader, NULL);
  ticker = event_new(base, -1, 0, on_tick, NULL);
  struct timeval ten_ms = {0, 10000};
  event_add(ticker, &ten_ms);
  event_assign(&assigned, base, -1, 0, on_assigned, NULL);
  event_add(&assigned, &ten_ms);
  evutil_make_socket_nonblocking(pairs[0]);
  evutil_make_socket_nonblocking(pairs[1]);
  bev_a = bufferevent_socket_new(base, pairs[0], 0);
  bev_b = bufferevent_socket_new(base, pairs[1], 0);
  bufferevent_setcb(bev_a, on_bev_read, NULL, on_bev_event, NULL);
  bufferevent_setcb(bev_b, on_bev_read, NULL, on_bev_event, NULL);
  bufferevent_enable(bev_a, EV_READ);
  bufferevent_enable(bev_b, EV_READ);
  bufferevent_write(bev_a, "ping", 4);
  struct timeval five_ms = {0, 5000};
  event_base_once(base, -1, EV_TIMEOUT, on_once, NULL, &five_ms);
  int port = 0;
  struct evconnlistener *lev = make_listener(base, &port);
  int client = lev ? connect_to(port) : -1;
  /* The program's own callbacks come back. */
  bufferevent_data_cb rcb = NULL;
  bufferevent_event_cb ecb = NULL;
  bufferevent_getcb(bev_a, &rcb, NULL, &ecb, NULL);
  event_callback_fn acb = NULL;
  event_get_assignment(&assigned, NULL, NULL, NULL, &acb, NULL);
  int own = rcb == on_bev_read && ecb == on_bev_event && acb == on_assigned &&
            event_get_callback(reader) == on_pipe;
  struct timeval limit = {0, 300000};
  event_base_loopexit(base, &limit);
  event_base_dispatch(base);
  event_free(reader);
  event_free(ticker);
  event_del(&assigned);
  if (lev)
    evconnlistener_free(lev);
  if (client >= 0)
    close(client);
  bufferevent_free(bev_a);
  bufferevent_free(bev_b);
  event_base_free(base);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  printf("reads %d echo %d once %d accepted %d own callbacks %d\n", reads, got_echo, once_ran,
         accepted, own);
  return reads == 2 && got_echo && once_ran == 1 && accepted == 1 && own ? 0 : 1;
}

/* ---- planted problems ---- */
static void on_slow_timer(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what, (void)arg;
  sleep_ms(200);
}

static struct event *arm_slow_timer(struct event_base *base) {
  struct event *ev = event_new(base, -1, 0, on_slow_timer, NULL);
  struct timeval ten_ms = {0, 10000};
  event_add(ev, &ten_ms);
  return ev;
}

/* crash: a NULL read in a timer callback (on_bad_timer, via read_config) */
static const char *volatile no_config;

static __attribute__((noipa)) int read_config(const char *p) { return p[0]; }

static void on_bad_timer(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what, (void)arg;
  printf("%d\n", read_config(no_config));
}

static __attribute__((noinline)) struct event *arm_bad_timer(struct event_base *base) {
  struct event *ev = event_new(base, -1, 0, on_bad_timer, NULL);
  struct timeval ten_ms = {0, 10000};
  event_add(ev, &ten_ms);
  return ev;
}

/* misuse */
static __attribute__((noinline)) int add_unset(void) {
  struct event *ev = calloc(1, event_get_struct_event_size());
  int rc = event_add(ev, NULL); /* never set up */
  free(ev);
  return rc;
}

static void on_readable(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what, (void)arg;
}

static struct event assigned;

static __attribute__((noinline)) void reassign_added(struct event_base *base, int fd) {
  event_assign(&assigned, base, fd, EV_READ | EV_PERSIST, on_readable, NULL);
  event_add(&assigned, NULL);
  event_assign(&assigned, base, fd, EV_READ, on_readable, NULL); /* still added */
}

static __attribute__((noinline)) struct event *watch_blocking(struct event_base *base, int fd) {
  struct event *ev = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, NULL);
  event_add(ev, NULL);
  return ev;
}

static __attribute__((noinline)) void drop_event(struct event *ev) {
  event_free(ev);
  printf("%s\n", "freed");
}

static void on_unused(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what, (void)arg;
}

static struct event *make_unused_event(struct event_base *base) {
  return event_new(base, -1, 0, on_unused, NULL);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what, (void)arg;
}

static void arm_deadline(struct event_base *base) {
  struct event *ev = event_new(base, -1, 0, on_deadline, NULL);
  struct timeval minute = {60, 0};
  event_add(ev, &minute);
}

static struct event_base *make_base(void) { return event_base_new(); }

static void on_blind_read(struct bufferevent *bev, void *ctx) {
  (void)ctx;
  char buf[16];
  (void)bufferevent_read(bev, buf, sizeof buf);
}

static struct bufferevent *open_blind(struct event_base *base, int fd) {
  struct bufferevent *bev = bufferevent_socket_new(base, fd, 0);
  bufferevent_setcb(bev, on_blind_read, NULL, NULL, NULL);
  bufferevent_enable(bev, EV_READ);
  return bev;
}

static void on_foreign(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what, (void)arg;
}

static struct event *make_foreign_event(struct event_base *base) {
  return event_new(base, -1, 0, on_foreign, NULL);
}

static void add_from_worker(struct event *ev) {
  struct timeval ten_ms = {0, 10000};
  event_add(ev, &ten_ms);
}

static void *foreign_thread(void *arg) {
  sleep_ms(50);
  add_from_worker(arg);
  return NULL;
}

static void on_slow_once(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what, (void)arg;
  sleep_ms(200);
}

static void schedule_slow_once(struct event_base *base) {
  struct timeval ten_ms = {0, 10000};
  event_base_once(base, -1, EV_TIMEOUT, on_slow_once, NULL, &ten_ms);
}

/* Events freed by tail calls from their own callbacks: each callback makes
 * the next event, then jumps to event_free (optimised here, whatever the
 * file's flags: a tail call returns to whoever called the callback).
 * Every event is freed: nothing to report. */
#define TAIL_CALLS __attribute__((noinline, optimize("O2", "optimize-sibling-calls")))
static int chain_left = 50;
static void on_free_self(evutil_socket_t fd, short what, void *arg);
static TAIL_CALLS void make_self_freeing(struct event_base *base) {
  static const struct timeval now = {0, 0};
  struct event *ev = event_new(base, -1, 0, on_free_self, event_self_cbarg());
  event_add(ev, &now);
}
static TAIL_CALLS void on_free_self(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  if (--chain_left > 0)
    make_self_freeing(event_get_base(arg));
  event_free(arg); /* (a jmp: see TAIL_CALLS) */
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "clean";
  if (strcmp(mode, "clean") == 0)
    return run_clean();
  if (strcmp(mode, "evthread") == 0)
    evthread_use_pthreads();
  struct event_base *base = strcmp(mode, "leak-base") == 0 ? make_base() : event_base_new();
  struct event *ev = NULL;
  if (strcmp(mode, "slow") == 0)
    ev = arm_slow_timer(base);
  else if (strcmp(mode, "crash") == 0)
    ev = arm_bad_timer(base);
  else if (strcmp(mode, "add-freed") == 0) {
    struct event *gone = event_new(base, -1, 0, on_readable, NULL);
    drop_event(gone);
    printf("add: %d\n", event_add(gone, NULL)); /* freed: a use after free */
    exit(0);
  } else if (strcmp(mode, "not-set-up") == 0)
    printf("add: %d\n", add_unset());
  else if (strcmp(mode, "assign-added") == 0 || strcmp(mode, "blocking-fd") == 0) {
    int p[2];
    if (pipe(p) != 0)
      return 1;
    if (strcmp(mode, "blocking-fd") == 0) {
      ev = watch_blocking(base, p[0]);
    } else {
      evutil_make_socket_nonblocking(p[0]);
      reassign_added(base, p[0]);
      puts("reassigned");
      exit(0);
    }
  } else if (strcmp(mode, "never-added") == 0)
    ev = make_unused_event(base);
  else if (strcmp(mode, "pending") == 0)
    arm_deadline(base);
  else if (strcmp(mode, "slow-once") == 0)
    schedule_slow_once(base);
  else if (strcmp(mode, "free-in-callback") == 0)
    make_self_freeing(base);
  int port = 0;
  if (strcmp(mode, "leak-listener") == 0 && !make_listener(base, &port))
    return 1;
  struct bufferevent *blind = NULL;
  if (strcmp(mode, "blind-bev") == 0) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
      return 1;
    evutil_make_socket_nonblocking(sv[0]);
    blind = open_blind(base, sv[0]);
    close(sv[1]); /* the peer goes: an end of file */
  }
  pthread_t t;
  int threaded = 0;
  if (strcmp(mode, "wrong-thread") == 0 || strcmp(mode, "evthread") == 0) {
    ev = make_foreign_event(base);
    threaded = pthread_create(&t, NULL, foreign_thread, ev) == 0;
  }
  struct timeval limit = {0, 300000};
  event_base_loopexit(base, &limit);
  event_base_dispatch(base);
  if (threaded)
    pthread_join(t, NULL);
  if (blind)
    bufferevent_free(blind);
  if (ev)
    event_free(ev);
  if (strcmp(mode, "pending") != 0 && strcmp(mode, "leak-base") != 0)
    event_base_free(base);
  return 0;
}
