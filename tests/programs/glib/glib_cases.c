/* GLib main-loop programs, one per mode (the .expect files name the mode):
 *   clean        sources found and removed by their data and functions
 *                table (as without loopsan); every public way to add a
 *                source (idle, timeout, seconds,
 *                once, unix fd, io watch, child watch, unix signal, a
 *                custom source, invoke on another thread's context),
 *                removed, finished or left attached to the default
 *                context; a context of its own, freed. No finding.
 *   slow         a timeout callback (on_slow_timeout, added in
 *                add_slow_timeout) spins 200 ms: slow-callback.
 *   never-attached  a timeout source made (make_unattached) with a
 *                callback, never attached, unreffed: never-started.
 *   pending      a 60 s timeout (on_deadline, add_deadline) still
 *                attached at exit: pending-at-exit.
 *   leak-context a context made (make_context) and never unreffed:
 *                unclosed-loop.
 *   freed-with-source  an fd source (on_fd, watch_fd) still attached when
 *                its context is freed: unclosed-handle.
 *   wrong-thread a worker thread (pump_from_worker) calls
 *                g_main_context_iteration on the default context while
 *                the main thread runs it (GLib does nothing then), then
 *                reaches the loop the thread-safe way (g_idle_add,
 *                g_main_context_wakeup): one wrong-thread.
 *   attach-twice a timeout source attached (attach_tick) and attached
 *                again to another context (attach_again): misuse (GLib
 *                refuses it with a critical warning).
 *   use-after-unref  a timeout source freed by its last unref (drop_source)
 *                is destroyed after that (destroy_again): misuse, with
 *                where it was freed (GLib warns and does nothing here).
 *   task-error   a GTask made with no callback (start_lookup) returns an
 *                error: unobserved-error.
 *   task-clean   a GTask with a callback returns an error, which the
 *                callback retrieves; one with no callback returns a value:
 *                nothing to say.
 *   crash        a timeout callback (on_bad_timeout, added in
 *                add_bad_timeout) reads through NULL in read_config:
 *                crash, and the process dies of SIGSEGV. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <gio/gio.h>
#include <glib-unix.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void spin_ms(long ms) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do
    clock_gettime(CLOCK_MONOTONIC, &t);
  while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

static GMainLoop *loop;

static gboolean quit_soon(gpointer data) {
  (void)data;
  g_main_loop_quit(loop);
  return G_SOURCE_REMOVE;
}

/* ---- clean ---- */
static int idles, ticks, fd_reads, io_reads, custom_runs, invoked, signalled, once_ran;
static int pipe_fds[2], io_fds[2];
static gboolean child_done;

static gboolean on_idle(gpointer data) {
  (void)data;
  return ++idles < 3 ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static gboolean on_tick(gpointer data) {
  (void)data;
  if (++ticks == 1 && write(pipe_fds[1], "x", 1) != 1)
    perror("write");
  if (ticks == 2 && write(io_fds[1], "y", 1) != 1)
    perror("write");
  if (ticks == 3)
    kill(getpid(), SIGUSR1);
  return ticks < 5 ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static void on_once(gpointer data) {
  (void)data;
  once_ran++;
}

static gboolean on_fd(gint fd, GIOCondition cond, gpointer data) {
  (void)cond, (void)data;
  char c;
  if (read(fd, &c, 1) == 1)
    fd_reads++;
  return G_SOURCE_REMOVE;
}

static gboolean on_io(GIOChannel *ch, GIOCondition cond, gpointer data) {
  (void)cond, (void)data;
  char c;
  if (read(g_io_channel_unix_get_fd(ch), &c, 1) == 1)
    io_reads++;
  return G_SOURCE_REMOVE;
}

static void on_child(GPid pid, gint status, gpointer data) {
  (void)pid, (void)status, (void)data;
  child_done = TRUE;
  g_spawn_close_pid(pid);
}

static gboolean on_signal(gpointer data) {
  (void)data;
  signalled++;
  return G_SOURCE_CONTINUE; /* left attached to the default context */
}

static gboolean custom_prepare(GSource *s, gint *timeout) {
  (void)s;
  *timeout = -1;
  return custom_runs < 2;
}
static gboolean custom_check(GSource *s) {
  (void)s;
  return custom_runs < 2;
}
static gboolean custom_dispatch(GSource *s, GSourceFunc cb, gpointer data) {
  (void)s;
  return cb(data);
}
static GSourceFuncs custom_funcs = {custom_prepare, custom_check, custom_dispatch,
                                    NULL,           NULL,         NULL};
static gboolean on_custom(gpointer data) {
  (void)data;
  custom_runs++;
  return G_SOURCE_CONTINUE;
}

static gboolean on_invoked(gpointer data) {
  g_main_loop_quit((GMainLoop *)data);
  invoked++;
  return G_SOURCE_REMOVE;
}

/* A context of its own run by another thread, asked by this one to run a
 * function there (g_main_context_invoke makes an idle source on it). */
static GMainLoop *worker_loop;

static gpointer worker(gpointer data) {
  GMainContext *ctx = data;
  g_main_context_push_thread_default(ctx);
  g_main_loop_run(worker_loop);
  g_main_context_pop_thread_default(ctx);
  return NULL;
}

/* Must never run: their sources are removed by their data first. */
static int never_ran = 1;
static gboolean on_never(gpointer data) {
  (void)data;
  never_ran = 0;
  return G_SOURCE_REMOVE;
}

/* GLib finds sources by their user data and functions table: what it
 * finds must be what it finds without loopsan. */
static int removed_by_data(void) {
  static int marker_a, marker_b, marker_c;
  g_idle_add(on_never, &marker_a);
  g_timeout_add(1000, on_never, &marker_b);
  GSource *custom = g_source_new(&custom_funcs, sizeof(GSource));
  g_source_set_callback(custom, on_never, &marker_c, NULL);
  g_source_attach(custom, NULL);
  g_source_unref(custom);
  int ok =
      g_main_context_find_source_by_user_data(NULL, &marker_b) != NULL &&
      g_idle_remove_by_data(&marker_a) && !g_idle_remove_by_data(&marker_a) &&
      g_source_remove_by_user_data(&marker_b) &&
      g_main_context_find_source_by_user_data(NULL, &marker_b) == NULL &&
      g_main_context_find_source_by_funcs_user_data(NULL, &custom_funcs, &marker_c) == custom &&
      g_source_remove_by_funcs_user_data(&custom_funcs, &marker_c) &&
      !g_source_remove_by_funcs_user_data(&custom_funcs, &marker_c);
  if (!ok)
    fprintf(stderr, "sources found by their data differ\n");
  return ok;
}

static int all_ran(void) {
  return idles == 3 && ticks == 5 && once_ran == 2 && fd_reads == 1 && io_reads == 1 &&
         custom_runs == 2 && child_done && signalled == 1;
}

/* Quits once everything ran (under load the child or the signal can come
 * late), or after 3 s. */
static gboolean quit_when_done(gpointer data) {
  (void)data;
  static int checks;
  if (!all_ran() && ++checks < 300)
    return G_SOURCE_CONTINUE;
  g_main_loop_quit(loop);
  return G_SOURCE_REMOVE;
}

static int clean(void) {
  if (pipe(pipe_fds) != 0 || pipe(io_fds) != 0)
    return 1;
  loop = g_main_loop_new(NULL, FALSE);
  int found_ok = removed_by_data();
  g_idle_add(on_idle, NULL);
  g_timeout_add(10, on_tick, NULL);
  g_timeout_add_once(5, on_once, NULL);
  g_idle_add_once(on_once, NULL);
  guint never_due = g_timeout_add_seconds(3600, on_tick, NULL);
  g_unix_fd_add(pipe_fds[0], G_IO_IN, on_fd, NULL);
  GIOChannel *ch = g_io_channel_unix_new(io_fds[0]);
  g_io_add_watch(ch, G_IO_IN, on_io, NULL);
  g_io_channel_unref(ch);
  g_unix_signal_add(SIGUSR1, on_signal, NULL);
  GSource *custom = g_source_new(&custom_funcs, sizeof(GSource));
  g_source_set_callback(custom, on_custom, NULL, NULL);
  g_source_attach(custom, NULL);
  char *argv[] = {"/bin/true", NULL};
  GPid pid;
  if (g_spawn_async(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid, NULL))
    g_child_watch_add(pid, on_child, NULL);
  g_timeout_add(10, quit_when_done, NULL);
  g_main_loop_run(loop);
  g_source_remove(never_due);
  g_source_destroy(custom);
  g_source_unref(custom);

  GMainContext *ctx = g_main_context_new();
  worker_loop = g_main_loop_new(ctx, FALSE);
  GThread *t = g_thread_new("worker", worker, ctx);
  g_main_context_invoke(ctx, on_invoked, worker_loop);
  g_thread_join(t);
  g_main_loop_unref(worker_loop);
  g_main_context_unref(ctx);
  g_main_loop_unref(loop);
  printf("idles=%d ticks=%d once=%d fd=%d io=%d custom=%d child=%d signal=%d invoked=%d\n", idles,
         ticks, once_ran, fd_reads, io_reads, custom_runs, child_done, signalled, invoked);
  return !(all_ran() && invoked == 1 && found_ok && never_ran);
}

/* ---- slow ---- */
static gboolean on_slow_timeout(gpointer data) {
  (void)data;
  spin_ms(200);
  g_main_loop_quit(loop);
  return G_SOURCE_REMOVE;
}

static void add_slow_timeout(void) { g_timeout_add(1, on_slow_timeout, NULL); }

static int slow(void) {
  loop = g_main_loop_new(NULL, FALSE);
  add_slow_timeout();
  g_main_loop_run(loop);
  g_main_loop_unref(loop);
  return 0;
}

/* ---- never-attached ---- */
static gboolean on_unattached(gpointer data) {
  (void)data;
  return G_SOURCE_REMOVE;
}

static GSource *make_unattached(void) {
  GSource *s = g_timeout_source_new(10);
  g_source_set_callback(s, on_unattached, NULL, NULL);
  return s;
}

static int never_attached(void) {
  GSource *s = make_unattached();
  g_source_unref(s);
  return 0;
}

/* ---- pending ---- */
static gboolean on_deadline(gpointer data) {
  (void)data;
  return G_SOURCE_REMOVE;
}

static void add_deadline(void) { g_timeout_add_seconds(60, on_deadline, NULL); }

static int pending(void) {
  loop = g_main_loop_new(NULL, FALSE);
  add_deadline();
  g_timeout_add(20, quit_soon, NULL);
  g_main_loop_run(loop);
  g_main_loop_unref(loop);
  return 0;
}

/* ---- leak-context ---- */
static GMainContext *make_context(void) { return g_main_context_new(); }

static int leak_context(void) {
  GMainContext *ctx = make_context();
  g_main_context_iteration(ctx, FALSE);
  return 0;
}

/* ---- freed-with-source ---- */
static gboolean on_fd_forgotten(gint fd, GIOCondition cond, gpointer data) {
  (void)fd, (void)cond, (void)data;
  return G_SOURCE_CONTINUE;
}

static void watch_fd(GMainContext *ctx, int fd) {
  GSource *s = g_unix_fd_source_new(fd, G_IO_IN);
  g_source_set_callback(s, G_SOURCE_FUNC(on_fd_forgotten), NULL, NULL);
  g_source_attach(s, ctx);
  g_source_unref(s);
}

static int freed_with_source(void) {
  if (pipe(pipe_fds) != 0)
    return 1;
  GMainContext *ctx = g_main_context_new();
  watch_fd(ctx, pipe_fds[0]);
  g_main_context_iteration(ctx, FALSE);
  g_main_context_unref(ctx);
  return 0;
}

/* ---- crash ---- */
static const char *volatile no_config;

static __attribute__((noipa)) int read_config(const char *p) { return p[0]; }

static gboolean on_bad_timeout(gpointer data) {
  (void)data;
  printf("%d\n", read_config(no_config));
  return G_SOURCE_REMOVE;
}

static __attribute__((noinline)) void add_bad_timeout(void) {
  g_timeout_add(1, on_bad_timeout, NULL);
}

static int crash(void) {
  loop = g_main_loop_new(NULL, FALSE);
  add_bad_timeout();
  g_main_loop_run(loop);
  return 0;
}

/* ---- attach-twice ---- */
static gboolean on_attached_tick(gpointer data) {
  (void)data;
  return G_SOURCE_CONTINUE;
}

static __attribute__((noinline)) GSource *attach_tick(GMainContext *ctx) {
  GSource *s = g_timeout_source_new(10);
  g_source_set_callback(s, on_attached_tick, NULL, NULL);
  g_source_attach(s, ctx);
  return s;
}

static __attribute__((noinline)) guint attach_again(GSource *s, GMainContext *ctx) {
  return g_source_attach(s, ctx);
}

static int attach_twice(void) {
  GMainContext *a = g_main_context_new(), *b = g_main_context_new();
  GSource *s = attach_tick(a);
  guint again = attach_again(s, b);
  g_source_destroy(s);
  g_source_unref(s);
  g_main_context_unref(b);
  g_main_context_unref(a);
  printf("again=%u\n", again);
  return 0;
}

/* ---- use-after-unref ---- */
static __attribute__((noinline)) GSource *make_timeout(void) {
  GSource *s = g_timeout_source_new(10);
  g_source_set_callback(s, on_attached_tick, NULL, NULL);
  return s;
}

static __attribute__((noinline)) void drop_source(GSource *s) {
  g_source_unref(s); /* the last reference: freed */
}

static __attribute__((noinline)) void destroy_again(GSource *s) {
  g_source_destroy(s); /* freed: a use after free */
}

static int use_after_unref(void) {
  GSource *s = make_timeout();
  drop_source(s);
  destroy_again(s);
  return 0;
}

/* ---- tasks ---- */
static __attribute__((noinline)) GTask *start_lookup(void) {
  return g_task_new(NULL, NULL, NULL, NULL); /* no callback: fire and forget */
}

static int task_error(void) {
  GTask *t = start_lookup();
  g_task_return_new_error(t, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no such %s", "host");
  g_object_unref(t);
  while (g_main_context_iteration(NULL, FALSE))
    ;
  return 0;
}

static int task_done;

static void on_task_done(GObject *source, GAsyncResult *res, gpointer data) {
  (void)source, (void)data;
  GError *error = NULL;
  if (!g_task_propagate_boolean(G_TASK(res), &error))
    g_error_free(error);
  task_done = 1;
}

static int task_clean(void) {
  GTask *t = g_task_new(NULL, NULL, on_task_done, NULL);
  g_task_return_new_error(t, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no such %s", "host");
  g_object_unref(t);
  GTask *quiet = g_task_new(NULL, NULL, NULL, NULL);
  g_task_return_boolean(quiet, TRUE);
  g_object_unref(quiet);
  while (!task_done)
    g_main_context_iteration(NULL, TRUE);
  return 0;
}

/* ---- wrong-thread ---- */
static GThread *pump_thread;
static gboolean pumped = TRUE;

static gboolean quit_idle(gpointer data) {
  (void)data;
  g_main_loop_quit(loop);
  return G_SOURCE_REMOVE;
}

static gpointer pump_from_worker(gpointer data) {
  (void)data;
  pumped = g_main_context_iteration(NULL, FALSE); /* the main thread owns it */
  g_idle_add(quit_idle, NULL);
  g_main_context_wakeup(NULL);
  return NULL;
}

static gboolean start_pump(gpointer data) {
  (void)data;
  pump_thread = g_thread_new("pump", pump_from_worker, NULL);
  return G_SOURCE_REMOVE;
}

static int wrong_thread(void) {
  loop = g_main_loop_new(NULL, FALSE);
  g_idle_add(start_pump, NULL);
  g_main_loop_run(loop);
  g_thread_join(pump_thread);
  g_main_loop_unref(loop);
  printf("pumped=%d\n", pumped);
  return pumped; /* GLib's iteration from a thread that does not own it: FALSE */
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    int (*run)(void);
  } modes[] = {{"clean", clean},
               {"slow", slow},
               {"never-attached", never_attached},
               {"pending", pending},
               {"leak-context", leak_context},
               {"freed-with-source", freed_with_source},
               {"wrong-thread", wrong_thread},
               {"attach-twice", attach_twice},
               {"use-after-unref", use_after_unref},
               {"task-error", task_error},
               {"task-clean", task_clean},
               {"crash", crash}};
  for (size_t i = 0; argc > 1 && i < sizeof modes / sizeof *modes; i++)
    if (strcmp(argv[1], modes[i].name) == 0)
      return modes[i].run();
  fprintf(
      stderr,
      "usage: glib_cases clean|slow|never-attached|pending|leak-context|"
      "freed-with-source|wrong-thread|attach-twice|use-after-unref|task-error|task-clean|crash\n");
  return 2;
}
