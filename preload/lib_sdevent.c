/* The sd-event adapter (libsystemd): event loops and their sources.
 *
 * Every sd-event callback gets its source first, whatever its shape (io,
 * time, signal, child, inotify, defer/post/exit), and only integer or
 * pointer arguments: one trampoline, called with the source and three more
 * argument registers, looks the source up, times the program's callback
 * and calls it with the same registers (x86-64: a callee reads the
 * arguments it has and ignores the rest). userdata is never touched.
 *
 * Loops and sources are reference-counted and their counts are private:
 * loopsan counts the references the program takes and gives back (the
 * add, sd_*_ref, sd_*_unref; libsystemd's calls to itself go through its
 * PLT and are its own). A source ends when the program gave back the last
 * one it held; a loop is closed likewise. A source added without a place
 * for its reference (s == NULL) is floating, owned by the loop: it lives
 * as long as the loop (LOOPSAN_OBJF_LIVES_WITH_LOOP). loopsan adds it with
 * a reference of its own, then makes it floating and drops that reference
 * (sd_event_source_set_floating): the same source as without loopsan. */
#include <errno.h>
#include <systemd/sd-event.h>

#include "preload/adapter.h"

#define SDEVENT_OBJECT_TYPES(X)                   \
  X(LOOP, "sd_event", LOOP)                       \
  X(IO, "sd_event_source (io)", HANDLE)           \
  X(TIME, "sd_event_source (time)", HANDLE)       \
  X(SIGNAL, "sd_event_source (signal)", HANDLE)   \
  X(CHILD, "sd_event_source (child)", HANDLE)     \
  X(INOTIFY, "sd_event_source (inotify)", HANDLE) \
  X(DEFER, "sd_event_source (defer)", HANDLE)     \
  X(POST, "sd_event_source (post)", HANDLE)       \
  X(EXIT, "sd_event_source (exit)", HANDLE)

enum sdevent_object_type { SDEVENT_OBJECT_TYPES(LOOPSAN_TYPE_ENUM) };

LOOPSAN_DEFINE_ADAPTER(loopsan__sdevent_adapter, LOOPSAN_LIB_SDEVENT, SDEVENT_OBJECT_TYPES);

static struct loopsan_library_ref systemd_lib = {.soname_prefix = "libsystemd.so"};
#define RESOLVE(fn) RESOLVE_IN(&systemd_lib, fn)
#define from_program(ra) loopsan__from_program(&systemd_lib, ra)

/* The program's references to an object are counted in a callback slot
 * (sd-event loops are single-threaded, the owner thread writes). */
#define SLOT_REFS LOOPSAN_SLOT_AUX

typedef int (*any_cb_t)(sd_event_source *, uintptr_t, uintptr_t, uintptr_t);

TRAMPOLINE static int tr_source(sd_event_source *s, uintptr_t a, uintptr_t b, uintptr_t c) {
  struct loopsan_obj_cb o;
  void *ref = loopsan__obj_dispatch(s, LOOPSAN_SLOT_MAIN, &o);
  if (LOOPSAN_UNLIKELY(!ref || !o.cb))
    return 0; /* cannot happen: the source is recorded before its loop runs */
  if (LOOPSAN_UNLIKELY(!(o.state & LOOPSAN_STATE_FIRED))) {
    loopsan__obj_state_set(ref, LOOPSAN_STATE_FIRED);
    loopsan__record_op(o.id, LOOPSAN_OP_FIRED, o.cb, 0, 0);
  }
  int rc;
  LOOPSAN_TIMED_CALL_FOUND(o, LOOPSAN_SLOT_MAIN, LOOPSAN_LIB_SDEVENT,
                           rc = ((any_cb_t)o.cb)(s, a, b, c));
  return rc;
}

static intptr_t refs_add(void *ref, const void *addr, intptr_t delta) {
  struct loopsan_obj o;
  if (!loopsan__obj_read(ref, addr, &o))
    return -1;
  intptr_t n = (intptr_t)o.cb[SLOT_REFS] + delta;
  loopsan__obj_set_cb(ref, SLOT_REFS, (void *)n);
  return n;
}

/* ---- loops ---- */

static void loop_made(sd_event *e, uint32_t flags) {
  void *ref;
  struct loopsan_obj o;
  if (!loopsan__loop_id(e)) {
    loopsan__loop_new(e, LOOPSAN_LIB_SDEVENT, T_LOOP, flags);
    if ((ref = loopsan__obj_get(e, &o)))
      loopsan__obj_set_cb(ref, SLOT_REFS, (void *)(intptr_t)1);
  } else if ((ref = loopsan__obj_get(e, &o))) { /* sd_event_default again: one more reference */
    refs_add(ref, e, 1);
  }
}

#define LOOP_NEW(fn, flags)                         \
  DECLARE_REAL(fn);                                 \
  LOOPSAN_INTERPOSE int fn(sd_event **e) {          \
    if (!RESOLVE(fn))                               \
      return -ENOSYS;                               \
    int rc = REAL(fn)(e);                           \
    if (rc >= 0 && e && *e && from_program(CALLER)) \
      loop_made(*e, flags);                         \
    return rc;                                      \
  }
LOOP_NEW(sd_event_new, 0)
/* The calling thread's default loop: library-owned, like libuv's. */
LOOP_NEW(sd_event_default, LOOPSAN_OBJF_DEFAULT_LOOP)

DECLARE_REAL(sd_event_ref);
LOOPSAN_INTERPOSE sd_event *sd_event_ref(sd_event *e) {
  if (!RESOLVE(sd_event_ref))
    return NULL;
  struct loopsan_obj o;
  void *ref;
  if (e && from_program(CALLER) && (ref = loopsan__obj_get(e, &o)))
    refs_add(ref, e, 1);
  return REAL(sd_event_ref)(e);
}

DECLARE_REAL(sd_event_unref);
LOOPSAN_INTERPOSE sd_event *sd_event_unref(sd_event *e) {
  if (!RESOLVE(sd_event_unref))
    return NULL;
  struct loopsan_obj o;
  void *ref;
  if (e && from_program(CALLER) && (ref = loopsan__obj_get(e, &o)) && refs_add(ref, e, -1) == 0)
    loopsan__loop_closed(e, 1);
  return REAL(sd_event_unref)(e);
}

#define LOOP_RUN(fn, params, args)  \
  DECLARE_REAL(fn);                 \
  LOOPSAN_INTERPOSE int fn params { \
    if (!RESOLVE(fn))               \
      return -ENOSYS;               \
    if (e && from_program(CALLER))  \
      loopsan__loop_run(e, 0);      \
    LOOPSAN_LOOP_RUN(run, e);       \
    int rc = REAL(fn) args;         \
    LOOPSAN_LOOP_DONE(run);         \
    return rc;                      \
  }
LOOP_RUN(sd_event_loop, (sd_event * e), (e))
LOOP_RUN(sd_event_run, (sd_event * e, uint64_t usec), (e, usec))

/* ---- sources ---- */

DECLARE_REAL(sd_event_source_set_floating);
DECLARE_REAL(sd_event_source_unref);

/* What starting each type means (LOOPSAN_START_*): sd-event's time,
 * defer and exit sources fire once (SD_EVENT_ONESHOT) and are work
 * scheduled to run. */
static uint32_t start_flags(uint8_t type) {
  switch (type) {
  case T_TIME:
  case T_DEFER: return LOOPSAN_START_SCHEDULED | LOOPSAN_START_ONESHOT;
  case T_EXIT: return LOOPSAN_START_ONESHOT;
  default: return 0;
  }
}

/* S (of TYPE, on E, calling CB) was added by the program; FLOATING: owned
 * by the loop, not by the program. */
static void source_added(sd_event_source *s, uint8_t type, sd_event *e, void *cb, int floating) {
  struct loopsan_obj o;
  void *ref = NULL;
  if (loopsan__obj_take(s, &o) == 0) /* S reuses a freed source's memory */
    loopsan__record_end(&o, LOOPSAN_OP_CLOSED, NULL, 0, 0);
  uint64_t id = loopsan__record_new(s, LOOPSAN_LIB_SDEVENT, type, loopsan__loop_id(e),
                                    floating ? LOOPSAN_OBJF_LIVES_WITH_LOOP : 0, &ref);
  if (!id || !ref)
    return;
  loopsan__obj_set_cb(ref, LOOPSAN_SLOT_MAIN, cb);
  loopsan__obj_set_cb(ref, SLOT_REFS, (void *)(intptr_t)(floating ? 0 : 1));
  loopsan__obj_state_set(ref, LOOPSAN_STATE_USED);
  loopsan__record_op(id, LOOPSAN_OP_START, cb, start_flags(type), 0);
}

/* S was added by the program (RC from the add); hand it over as sd-event
 * would have: into *RET, or floating (the loop's) when RET is NULL. */
static int source_handed_over(int rc, sd_event_source *s, uint8_t type, sd_event *e, void *cb,
                              sd_event_source **ret) {
  if (rc < 0 || !s)
    return rc;
  source_added(s, type, e, cb, !ret);
  if (ret) {
    *ret = s;
  } else { /* floating: the loop's, as sd-event makes it for ret == NULL */
    REAL(sd_event_source_set_floating)(s, 1);
    REAL(sd_event_source_unref)(s);
  }
  return rc;
}

/* Add with the trampoline in place of CALLBACK (a NULL callback keeps
 * sd-event's default: exit the loop). ARGS(r, c) is the call's argument
 * list with r for the source pointer and c for the callback. */
#define ADD(fn, type, params, cb_type, ARGS)                                  \
  DECLARE_REAL(fn);                                                           \
  LOOPSAN_INTERPOSE int fn params {                                           \
    if (!RESOLVE(fn))                                                         \
      return -ENOSYS;                                                         \
    int prog = from_program(CALLER);                                          \
    if (prog) /* sd-event is not thread-safe at all */                        \
      loopsan__check_thread(e, NULL, LOOPSAN_LIB_SDEVENT, #fn);               \
    if (!e || !callback || !prog || !RESOLVE(sd_event_source_set_floating) || \
        !RESOLVE(sd_event_source_unref))                                      \
      return REAL(fn) ARGS(ret, callback);                                    \
    sd_event_source *s = NULL;                                                \
    int rc = REAL(fn) ARGS(&s, (cb_type)(void (*)(void))tr_source);           \
    return source_handed_over(rc, s, type, e, (void *)callback, ret);         \
  }

#define A_IO(r, c) (e, r, fd, events, c, userdata)
#define A_TIME(r, c) (e, r, clock, usec, accuracy, c, userdata)
#define A_SIGNAL(r, c) (e, r, sig, c, userdata)
#define A_CHILD(r, c) (e, r, pid, options, c, userdata)
#define A_CHILD_FD(r, c) (e, r, pidfd, options, c, userdata)
#define A_INOTIFY(r, c) (e, r, path, mask, c, userdata)
#define A_INOTIFY_FD(r, c) (e, r, fd, mask, c, userdata)
#define A_HANDLER(r, c) (e, r, c, userdata)
#define HANDLER_PARAMS \
  (sd_event * e, sd_event_source * *ret, sd_event_handler_t callback, void *userdata)

ADD(sd_event_add_io, T_IO,
    (sd_event * e, sd_event_source **ret, int fd, uint32_t events, sd_event_io_handler_t callback,
     void *userdata),
    sd_event_io_handler_t, A_IO)
ADD(sd_event_add_time, T_TIME,
    (sd_event * e, sd_event_source **ret, clockid_t clock, uint64_t usec, uint64_t accuracy,
     sd_event_time_handler_t callback, void *userdata),
    sd_event_time_handler_t, A_TIME)
ADD(sd_event_add_time_relative, T_TIME,
    (sd_event * e, sd_event_source **ret, clockid_t clock, uint64_t usec, uint64_t accuracy,
     sd_event_time_handler_t callback, void *userdata),
    sd_event_time_handler_t, A_TIME)
ADD(sd_event_add_signal, T_SIGNAL,
    (sd_event * e, sd_event_source **ret, int sig, sd_event_signal_handler_t callback,
     void *userdata),
    sd_event_signal_handler_t, A_SIGNAL)
ADD(sd_event_add_child, T_CHILD,
    (sd_event * e, sd_event_source **ret, pid_t pid, int options, sd_event_child_handler_t callback,
     void *userdata),
    sd_event_child_handler_t, A_CHILD)
ADD(sd_event_add_child_pidfd, T_CHILD,
    (sd_event * e, sd_event_source **ret, int pidfd, int options, sd_event_child_handler_t callback,
     void *userdata),
    sd_event_child_handler_t, A_CHILD_FD)
ADD(sd_event_add_inotify, T_INOTIFY,
    (sd_event * e, sd_event_source **ret, const char *path, uint32_t mask,
     sd_event_inotify_handler_t callback, void *userdata),
    sd_event_inotify_handler_t, A_INOTIFY)
ADD(sd_event_add_inotify_fd, T_INOTIFY,
    (sd_event * e, sd_event_source **ret, int fd, uint32_t mask,
     sd_event_inotify_handler_t callback, void *userdata),
    sd_event_inotify_handler_t, A_INOTIFY_FD)
ADD(sd_event_add_defer, T_DEFER, HANDLER_PARAMS, sd_event_handler_t, A_HANDLER)
ADD(sd_event_add_post, T_POST, HANDLER_PARAMS, sd_event_handler_t, A_HANDLER)
ADD(sd_event_add_exit, T_EXIT, HANDLER_PARAMS, sd_event_handler_t, A_HANDLER)

DECLARE_REAL(sd_event_source_ref);
LOOPSAN_INTERPOSE sd_event_source *sd_event_source_ref(sd_event_source *s) {
  if (!RESOLVE(sd_event_source_ref))
    return NULL;
  struct loopsan_obj o;
  void *ref;
  if (s && from_program(CALLER) && (ref = loopsan__obj_get(s, &o)))
    refs_add(ref, s, 1);
  return REAL(sd_event_source_ref)(s);
}

/* The program gave back a reference to S: its last, and S is done. */
static void source_released(sd_event_source *s) {
  struct loopsan_obj o;
  void *ref = loopsan__obj_get(s, &o);
  if (ref && refs_add(ref, s, -1) == 0 && loopsan__obj_take(s, &o) == 0)
    loopsan__record_end(&o, LOOPSAN_OP_CLOSED, NULL, 0, 0);
}

LOOPSAN_INTERPOSE sd_event_source *sd_event_source_unref(sd_event_source *s) {
  if (!RESOLVE(sd_event_source_unref))
    return NULL;
  if (s && from_program(CALLER))
    source_released(s);
  return REAL(sd_event_source_unref)(s);
}

DECLARE_REAL(sd_event_source_disable_unref);
LOOPSAN_INTERPOSE sd_event_source *sd_event_source_disable_unref(sd_event_source *s) {
  if (!RESOLVE(sd_event_source_disable_unref))
    return NULL;
  if (s && from_program(CALLER))
    source_released(s);
  return REAL(sd_event_source_disable_unref)(s);
}

/* A source the program makes floating is the loop's from then on: the
 * program let go of it. */
LOOPSAN_INTERPOSE int sd_event_source_set_floating(sd_event_source *s, int b) {
  if (!RESOLVE(sd_event_source_set_floating))
    return -ENOSYS;
  int rc = REAL(sd_event_source_set_floating)(s, b);
  struct loopsan_obj o;
  if (rc > 0 && b && from_program(CALLER) && loopsan__obj_take(s, &o) == 0)
    loopsan__record_end(&o, LOOPSAN_OP_CLOSED, NULL, 0, 0);
  return rc;
}

DECLARE_REAL(sd_event_source_set_enabled);
LOOPSAN_INTERPOSE int sd_event_source_set_enabled(sd_event_source *s, int enabled) {
  if (!RESOLVE(sd_event_source_set_enabled))
    return -ENOSYS;
  int rc = REAL(sd_event_source_set_enabled)(s, enabled);
  struct loopsan_obj o;
  void *ref;
  if (rc < 0 || !s || !from_program(CALLER) || !(ref = loopsan__obj_get(s, &o)))
    return rc;
  if (enabled == SD_EVENT_OFF) {
    loopsan__record_op(o.id, LOOPSAN_OP_STOP, NULL, 0, 0);
  } else {
    loopsan__obj_state_clear(ref, LOOPSAN_STATE_FIRED);
    uint32_t flags = start_flags(o.type);
    if (enabled == SD_EVENT_ONESHOT)
      flags |= LOOPSAN_START_ONESHOT;
    else
      flags &= ~(uint32_t)LOOPSAN_START_ONESHOT;
    loopsan__record_op(o.id, LOOPSAN_OP_START, o.cb[LOOPSAN_SLOT_MAIN], flags, 0);
  }
  return rc;
}
