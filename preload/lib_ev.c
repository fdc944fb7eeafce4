/* The libev adapter: loops and the start/stop of every watcher type.
 *
 * libev's watchers are initialised by macros (ev_io_init sets fields, no
 * call): loopsan first sees a watcher when it is started, so that is where
 * it is "created" (its creation stack is the start's), and a watcher is
 * never "never started". libev calls every callback through w->cb: at
 * start the program's callback is kept in the object table and w->cb is
 * set to a trampoline that looks it up, times it and calls it. A restart
 * finds the trampoline already there and keeps the callback it has; a
 * watcher re-initialised (ev_TYPE_init, ev_set_cb: w->cb is the program's
 * again) and started is a new watcher. Watchers are never closed: a
 * watcher still active at the end was never stopped, and a timer still
 * armed never fired (NOTES.md: libev, gevent).
 *
 * libev calls its own exported functions through the PLT (ev_timer_again
 * -> ev_timer_start, ev_loop_destroy stopping its internal watchers, the
 * default loop's signal and child watchers): those pass straight through. */
#include <ev.h>

#include "preload/adapter.h"

#define EV_OBJECT_TYPES(X)            \
  X(LOOP, "ev_loop", LOOP)            \
  X(IO, "ev_io", WATCHER)             \
  X(TIMER, "ev_timer", WATCHER)       \
  X(PERIODIC, "ev_periodic", WATCHER) \
  X(SIGNAL, "ev_signal", WATCHER)     \
  X(CHILD, "ev_child", WATCHER)       \
  X(STAT, "ev_stat", WATCHER)         \
  X(IDLE, "ev_idle", WATCHER)         \
  X(PREPARE, "ev_prepare", WATCHER)   \
  X(CHECK, "ev_check", WATCHER)       \
  X(FORK, "ev_fork", WATCHER)         \
  X(CLEANUP, "ev_cleanup", WATCHER)   \
  X(ASYNC, "ev_async", WATCHER)       \
  X(EMBED, "ev_embed", WATCHER)

enum ev_object_type { EV_OBJECT_TYPES(LOOPSAN_TYPE_ENUM) };

LOOPSAN_DEFINE_ADAPTER(loopsan__ev_adapter, LOOPSAN_LIB_EV, EV_OBJECT_TYPES);

static struct loopsan_library_ref ev_lib = {.soname_prefix = "libev.so"};
#define RESOLVE(fn) RESOLVE_IN(&ev_lib, fn)
#define from_program(ra) loopsan__from_program(&ev_lib, ra)

typedef void (*ev_cb_t)(struct ev_loop *, ev_watcher *, int);

/* ---- the trampoline: one for every watcher type (same signature) ---- */

TRAMPOLINE static void tr_watcher(struct ev_loop *loop, ev_watcher *w, int revents) {
  struct loopsan_obj_cb o;
  void *ref = loopsan__obj_dispatch(w, LOOPSAN_SLOT_MAIN, &o);
  if (LOOPSAN_UNLIKELY(!ref || !o.cb))
    return;
  if (LOOPSAN_UNLIKELY(!(o.state & LOOPSAN_STATE_FIRED))) {
    loopsan__obj_state_set(ref, LOOPSAN_STATE_FIRED);
    loopsan__record_op(o.id, LOOPSAN_OP_FIRED, o.cb, 0, 0);
  }
  LOOPSAN_TIMED_CALL_FOUND(o, LOOPSAN_SLOT_MAIN, LOOPSAN_LIB_EV, ((ev_cb_t)o.cb)(loop, w, revents));
}

/* ---- loops ---- */

DECLARE_REAL(ev_default_loop);
DECLARE_REAL(ev_loop_new);
DECLARE_REAL(ev_loop_destroy);
DECLARE_REAL(ev_run);

LOOPSAN_INTERPOSE struct ev_loop *ev_default_loop(unsigned int flags) {
  if (!RESOLVE(ev_default_loop))
    return NULL;
  struct ev_loop *loop = REAL(ev_default_loop)(flags);
  struct loopsan_obj o;
  if (loop && from_program(CALLER) && !loopsan__obj_get(loop, &o))
    loopsan__loop_new(loop, LOOPSAN_LIB_EV, T_LOOP, LOOPSAN_OBJF_DEFAULT_LOOP);
  return loop;
}

LOOPSAN_INTERPOSE struct ev_loop *ev_loop_new(unsigned int flags) {
  if (!RESOLVE(ev_loop_new))
    return NULL;
  struct ev_loop *loop = REAL(ev_loop_new)(flags);
  if (loop && from_program(CALLER))
    loopsan__loop_new(loop, LOOPSAN_LIB_EV, T_LOOP, 0);
  return loop;
}

LOOPSAN_INTERPOSE void ev_loop_destroy(struct ev_loop *loop) {
  if (!RESOLVE(ev_loop_destroy))
    return;
  loopsan__loop_closed(loop, from_program(CALLER));
  REAL(ev_loop_destroy)(loop);
}

LOOPSAN_INTERPOSE int ev_run(struct ev_loop *loop, int flags) {
  if (!RESOLVE(ev_run))
    return 0;
  if (from_program(CALLER))
    loopsan__loop_run(loop, flags);
  LOOPSAN_LOOP_RUN(run, loop);
  int rc = REAL(ev_run)(loop, flags);
  LOOPSAN_LOOP_DONE(run);
  return rc;
}

/* ---- watchers ---- */

/* W is about to be started on LOOP by the program: make sure it is a
 * tracked watcher of TYPE with the program's callback kept, and give libev
 * the trampoline. Returns its reference, or NULL (left untouched). */
static void *watcher_arm(struct ev_loop *loop, ev_watcher *w, uint8_t type) {
  struct loopsan_obj o;
  void *ref = loopsan__obj_get(w, &o);
  void *cb = (void *)w->cb;
  if (cb == (void *)tr_watcher) {
    if (!ref) /* ours, but lost (the table was full): nothing to restore */
      return NULL;
  } else {
    /* First start, or re-initialised (ev_TYPE_init, ev_set_cb: w->cb is
     * the program's again): a new watcher, made here. One known at this
     * address is gone: ended, so that a program making a watcher per
     * wait (gevent's sleep) leaves a bounded trace (compaction drops
     * whole lives). */
    if (ref && loopsan__obj_take(w, &o) == 0)
      loopsan__record_end(&o, LOOPSAN_OP_CLOSED, NULL, 0, 0);
    loopsan__handle_new(w, LOOPSAN_LIB_EV, type, loop);
  }
  ref = loopsan__handle_arm(w, LOOPSAN_SLOT_MAIN, cb, (void *)tr_watcher);
  if (ref && cb && cb != (void *)tr_watcher)
    w->cb = (ev_cb_t)tr_watcher;
  return ref;
}

static void watcher_started(void *ref, const void *w, uint32_t flags) {
  struct loopsan_obj o;
  if (loopsan__obj_read(ref, w, &o))
    loopsan__record_op(o.id, LOOPSAN_OP_START, o.cb[LOOPSAN_SLOT_MAIN], flags, 0);
}

static void watcher_stopped(const void *w) {
  struct loopsan_obj o;
  if (loopsan__obj_get(w, &o))
    loopsan__record_op(o.id, LOOPSAN_OP_STOP, NULL, 0, 0);
}

/* ---- misuse ---- */

/* Starting W, which is active: libev does nothing (ev_start returns for an
 * active watcher). On another loop than its own, that start is lost. */
static void check_other_loop(struct ev_loop *loop, const void *w, const char *fn) {
  struct loopsan_obj o;
  if (!loopsan__obj_get(w, &o) || !o.loop || o.loop == loopsan__loop_id(loop))
    return;
  struct loopsan_misuse_detail d = {.type = o.type, .address = w};
  loopsan__record_misuse_ex(o.id, LOOPSAN_LIB_EV, LOOPSAN_MISUSE_START_OTHER_LOOP, fn, &d);
}

/* An ev_io keeps the fd it was started with (+1, in its AUX slot): libev
 * finds an active watcher by it, so ev_io_set() on an active one (the
 * macro makes no call) breaks its stop. Checked when it is stopped. */
static void io_started(void *ref, const ev_io *w) {
  loopsan__obj_set_cb(ref, LOOPSAN_SLOT_AUX, (void *)(intptr_t)(w->fd + 1));
}

static void check_io_fd(const ev_io *w, const char *fn) {
  struct loopsan_obj o;
  if (!loopsan__obj_get(w, &o) || !o.cb[LOOPSAN_SLOT_AUX])
    return;
  int started = (int)(intptr_t)o.cb[LOOPSAN_SLOT_AUX] - 1;
  if (started == w->fd)
    return;
  struct loopsan_misuse_detail d = {.type = o.type, .arg = started, .arg2 = w->fd, .address = w};
  loopsan__record_misuse_ex(o.id, LOOPSAN_LIB_EV, LOOPSAN_MISUSE_FD_CHANGED, fn, &d);
}

/* A timer with a repeat interval fires more than once. */
static uint32_t timer_flags(const ev_timer *w) {
  return LOOPSAN_START_SCHEDULED | (w->repeat > 0. ? 0u : LOOPSAN_START_ONESHOT);
}
static uint32_t periodic_flags(const ev_periodic *w) {
  return LOOPSAN_START_SCHEDULED |
         (w->interval > 0. || w->reschedule_cb ? 0u : LOOPSAN_START_ONESHOT);
}
static uint32_t no_flags(const void *w) {
  (void)w;
  return 0;
}

#define WATCHER(kind, TYPE, flags_of)                                            \
  DECLARE_REAL(ev_##kind##_start);                                               \
  DECLARE_REAL(ev_##kind##_stop);                                                \
  LOOPSAN_INTERPOSE void ev_##kind##_start(struct ev_loop *loop, ev_##kind *w) { \
    if (!RESOLVE(ev_##kind##_start))                                             \
      return;                                                                    \
    int prog = from_program(CALLER);                                             \
    if (prog && ev_is_active(w))                                                 \
      check_other_loop(loop, w, "ev_" #kind "_start");                           \
    void *ref = prog ? watcher_arm(loop, (ev_watcher *)w, TYPE) : NULL;          \
    if (prog && TYPE != T_ASYNC) /* ev_async_send is the thread-safe call */     \
      loopsan__check_thread(loop, w, LOOPSAN_LIB_EV, "ev_" #kind "_start");      \
    if (!ref) {                                                                  \
      REAL(ev_##kind##_start)(loop, w);                                          \
      return;                                                                    \
    }                                                                            \
    int was_active = ev_is_active(w);                                            \
    REAL(ev_##kind##_start)(loop, w);                                            \
    if (!was_active) { /* starting an active watcher does nothing */             \
      if (TYPE == T_IO)                                                          \
        io_started(ref, (const ev_io *)(const void *)w);                         \
      watcher_started(ref, w, flags_of(w));                                      \
    }                                                                            \
  }                                                                              \
  LOOPSAN_INTERPOSE void ev_##kind##_stop(struct ev_loop *loop, ev_##kind *w) {  \
    if (!RESOLVE(ev_##kind##_stop))                                              \
      return;                                                                    \
    int was_active = ev_is_active(w);                                            \
    int prog = from_program(CALLER);                                             \
    if (prog)                                                                    \
      loopsan__check_thread(loop, w, LOOPSAN_LIB_EV, "ev_" #kind "_stop");       \
    if (prog && was_active && TYPE == T_IO)                                      \
      check_io_fd((const ev_io *)(const void *)w, "ev_" #kind "_stop");          \
    REAL(ev_##kind##_stop)(loop, w);                                             \
    if (was_active && prog)                                                      \
      watcher_stopped(w);                                                        \
  }

WATCHER(io, T_IO, no_flags)
WATCHER(timer, T_TIMER, timer_flags)
WATCHER(periodic, T_PERIODIC, periodic_flags)
WATCHER(signal, T_SIGNAL, no_flags)
WATCHER(child, T_CHILD, no_flags)
WATCHER(stat, T_STAT, no_flags)
WATCHER(idle, T_IDLE, no_flags)
WATCHER(prepare, T_PREPARE, no_flags)
WATCHER(check, T_CHECK, no_flags)
WATCHER(fork, T_FORK, no_flags)
WATCHER(cleanup, T_CLEANUP, no_flags)
WATCHER(async, T_ASYNC, no_flags)
WATCHER(embed, T_EMBED, no_flags)

/* ev_timer_again re-arms a repeating timer (through libev's own
 * ev_timer_start, which passes through) or stops it when repeat is 0. */
DECLARE_REAL(ev_timer_again);
LOOPSAN_INTERPOSE void ev_timer_again(struct ev_loop *loop, ev_timer *w) {
  if (!RESOLVE(ev_timer_again))
    return;
  void *ref;
  if (!from_program(CALLER) || !(ref = watcher_arm(loop, (ev_watcher *)w, T_TIMER))) {
    REAL(ev_timer_again)(loop, w);
    return;
  }
  int was_active = ev_is_active(w);
  REAL(ev_timer_again)(loop, w);
  if (ev_is_active(w))
    watcher_started(ref, w, LOOPSAN_START_SCHEDULED);
  else if (was_active)
    watcher_stopped(w);
}
