/* The libevent 2.1 adapter (libevent and libevent_core): bases, events and
 * bufferevents.
 *
 * An event's callback gets (fd, what, arg), and arg must stay exactly what
 * the program gave: libevent hands it to its own finalizers (NOTES.md). So
 * a callback is wrapped by a stub from a fixed pool, one stub per distinct
 * callback function: the stub knows the function by its index, and finds
 * the event being run with event_base_get_running_event() on the base its
 * thread is running (noted by the interposed event_base_loop). No malloc,
 * no change to arg. A full pool leaves further callbacks unwrapped.
 *
 * Events made with event_new must be freed (event_free): a handle. Events
 * assigned into the program's own memory (event_assign, event_set) need no
 * freeing, only deleting: a watcher, done when no longer pending. A base
 * from event_init() is the process-wide default base.
 *
 * libevent calls its own exports through the PLT (event_new ->
 * event_assign, bufferevent_socket_new -> event_assign, event_free ->
 * event_del, event_base_dispatch -> event_base_loop): those are its own. */
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_compat.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "preload/adapter.h"

#define EVENT_OBJECT_TYPES(X)                    \
  X(BASE, "event_base", LOOP)                    \
  X(EVENT, "event", HANDLE)                      \
  X(EVENT_ASSIGNED, "event (assigned)", WATCHER) \
  X(BUFFEREVENT, "bufferevent", HANDLE)          \
  X(EVENT_ONCE, "event (once)", WATCHER)         \
  X(LISTENER, "evconnlistener", HANDLE)

enum event_object_type { EVENT_OBJECT_TYPES(LOOPSAN_TYPE_ENUM) };

LOOPSAN_DEFINE_ADAPTER(loopsan__event_adapter, LOOPSAN_LIB_EVENT, EVENT_OBJECT_TYPES);

static struct loopsan_library_ref event_lib = {.soname_prefix = "libevent"};
/* A program linked with libevent_core and libevent_extra: evdns's and
 * evhttp's events are libevent's own too. */
static struct loopsan_library_ref extra_lib = {.soname_prefix = "libevent_extra"};
static _Atomic int extra_probed;
static int from_extra(uintptr_t ra) {
  if (LOOPSAN_UNLIKELY(!atomic_load_explicit(&extra_probed, memory_order_relaxed))) {
    atomic_store(&extra_probed, 1);
    loopsan__resolve(&extra_lib, "evhttp_new"); /* learns its range, if it is loaded */
  }
  return loopsan__in_range(&extra_lib, ra);
}
#define RESOLVE(fn) RESOLVE_IN(&event_lib, fn)
#define from_program(ra) (loopsan__from_program(&event_lib, ra) && !from_extra(ra))

typedef void (*event_cb_t)(evutil_socket_t, short, void *);

/* ---- the base each thread is running ---- */

static LOOPSAN_TLS struct event_base *running_base;
/* Activating an event is a use of it. Programs activate the same event
 * over and over (a callback re-activating its own event): the last one
 * seen per thread is not looked up again. */
static LOOPSAN_TLS const struct event *last_activated;
/* The event libevent last assigned for itself on this thread
 * (event_base_once's). */
static LOOPSAN_TLS struct event *internal_assign;
DECLARE_REAL(event_base_get_running_event);

/* ---- the stub pool ---- */

#define STUBS 256
static _Atomic(event_cb_t) stub_cb[STUBS];

/* In the trampolines' section too: it calls the program's callback, and a
 * callback that ends in a tail call (`event_free(arg);` as its last
 * statement, optimised to a jump) makes that call return here: the call
 * is the program's (loopsan__from_program), not the shim's own. */
TRAMPOLINE static void stub_dispatch(unsigned k, evutil_socket_t fd, short what, void *arg) {
  event_cb_t cb = atomic_load_explicit(&stub_cb[k], memory_order_acquire);
  struct event *ev = running_base && RESOLVE(event_base_get_running_event)
                         ? REAL(event_base_get_running_event)(running_base)
                         : NULL;
  struct loopsan_obj_cb o = {0};
  void *ref = ev ? loopsan__obj_dispatch(ev, LOOPSAN_SLOT_MAIN, &o) : NULL;
  if (ref && LOOPSAN_UNLIKELY(!(o.state & LOOPSAN_STATE_FIRED))) {
    loopsan__obj_state_set(ref, LOOPSAN_STATE_FIRED);
    loopsan__record_op(o.id, LOOPSAN_OP_FIRED, (void *)cb, 0, 0);
  }
  LOOPSAN_TIMED_CALL(ref ? o.id : 0, (void *)cb, LOOPSAN_SLOT_MAIN, LOOPSAN_LIB_EVENT,
                     cb(fd, what, arg));
}

/* 256 stubs, named by their index in base 4 (stub_0000 to stub_3333). */
#define STUB(name, idx)                                                           \
  TRAMPOLINE static void stub_##name(evutil_socket_t fd, short what, void *arg) { \
    stub_dispatch(idx, fd, what, arg);                                            \
  }
#define STUB4(n, i) \
  STUB(n##0, (i)*4) STUB(n##1, (i)*4 + 1) STUB(n##2, (i)*4 + 2) STUB(n##3, (i)*4 + 3)
#define STUB16(n, i) \
  STUB4(n##0, (i)*4) STUB4(n##1, (i)*4 + 1) STUB4(n##2, (i)*4 + 2) STUB4(n##3, (i)*4 + 3)
#define STUB64(n, i) \
  STUB16(n##0, (i)*4) STUB16(n##1, (i)*4 + 1) STUB16(n##2, (i)*4 + 2) STUB16(n##3, (i)*4 + 3)
STUB64(0, 0)
STUB64(1, 1)
STUB64(2, 2)
STUB64(3, 3)

#define REF(name, idx) [idx] = stub_##name,
#define REF4(n, i) REF(n##0, (i)*4) REF(n##1, (i)*4 + 1) REF(n##2, (i)*4 + 2) REF(n##3, (i)*4 + 3)
#define REF16(n, i) \
  REF4(n##0, (i)*4) REF4(n##1, (i)*4 + 1) REF4(n##2, (i)*4 + 2) REF4(n##3, (i)*4 + 3)
#define REF64(n, i) \
  REF16(n##0, (i)*4) REF16(n##1, (i)*4 + 1) REF16(n##2, (i)*4 + 2) REF16(n##3, (i)*4 + 3)
static const event_cb_t stubs[STUBS] = {REF64(0, 0) REF64(1, 1) REF64(2, 2) REF64(3, 3)};

static int is_stub(event_cb_t cb) {
  return (uintptr_t)cb >= (uintptr_t)__start_loopsan_tramp &&
         (uintptr_t)cb < (uintptr_t)__stop_loopsan_tramp;
}

/* The stub that calls CB: found, or claimed (CB hashed to its home).
 * NULL when the pool is full: the callback then runs unwrapped. */
static event_cb_t stub_for(event_cb_t cb) {
  if (!cb || is_stub(cb))
    return cb;
  unsigned home = (unsigned)(((uintptr_t)cb >> 4) * 0x9E3779B1u >> 24) % STUBS;
  for (unsigned n = 0; n < STUBS; n++) {
    unsigned k = (home + n) % STUBS;
    event_cb_t have = atomic_load_explicit(&stub_cb[k], memory_order_acquire);
    if (have == cb)
      return stubs[k];
    if (!have) {
      event_cb_t expected = NULL;
      if (atomic_compare_exchange_strong(&stub_cb[k], &expected, cb) || expected == cb)
        return stubs[k];
    }
  }
  return NULL;
}

/* The program's callback behind CB (a stub, or itself). */
static void *callback_of(event_cb_t cb) {
  if (!is_stub(cb))
    return (void *)cb;
  for (unsigned k = 0; k < STUBS; k++)
    if (stubs[k] == cb)
      return (void *)atomic_load(&stub_cb[k]);
  return (void *)cb;
}

/* ---- bases ---- */

DECLARE_REAL(event_base_new);
DECLARE_REAL(event_base_new_with_config);
DECLARE_REAL(event_init);
DECLARE_REAL(event_base_free);
DECLARE_REAL(event_base_free_nofinalize);
DECLARE_REAL(event_base_loop);

#define BASE_NEW(fn, params, args, flags)                        \
  LOOPSAN_INTERPOSE struct event_base *fn params {               \
    if (!RESOLVE(fn))                                            \
      return NULL;                                               \
    struct event_base *base = REAL(fn) args;                     \
    if (base && from_program(CALLER))                            \
      loopsan__loop_new(base, LOOPSAN_LIB_EVENT, T_BASE, flags); \
    return base;                                                 \
  }
BASE_NEW(event_base_new, (void), (), 0)
BASE_NEW(event_base_new_with_config, (const struct event_config *cfg), (cfg), 0)
/* event_init's base is libevent's global current_base: the default one. */
BASE_NEW(event_init, (void), (), LOOPSAN_OBJF_DEFAULT_LOOP)

#define BASE_FREE(fn)                                  \
  LOOPSAN_INTERPOSE void fn(struct event_base *base) { \
    if (!RESOLVE(fn))                                  \
      return;                                          \
    loopsan__loop_closed(base, from_program(CALLER));  \
    REAL(fn)(base);                                    \
  }
BASE_FREE(event_base_free)
BASE_FREE(event_base_free_nofinalize)

/* Every loop runs through here (event_base_dispatch and event_dispatch
 * too, as libevent's own calls): the thread's running base is noted for
 * the stubs, whoever called. */
LOOPSAN_INTERPOSE int event_base_loop(struct event_base *base, int flags) {
  if (!RESOLVE(event_base_loop))
    return -1;
  if (from_program(CALLER))
    loopsan__loop_run(base, flags);
  struct event_base *outer = running_base;
  running_base = base;
  LOOPSAN_LOOP_RUN(run, base);
  int rc = REAL(event_base_loop)(base, flags);
  LOOPSAN_LOOP_DONE(run);
  running_base = outer;
  return rc;
}

/* libevent's event_base_loopexit ends with a tail call to
 * event_base_once, which would then return to the program as if it were
 * the program's call: passing through here makes it libevent's own. */
DECLARE_REAL(event_base_loopexit);
LOOPSAN_INTERPOSE int event_base_loopexit(struct event_base *base, const struct timeval *tv) {
  if (!RESOLVE(event_base_loopexit))
    return -1;
  int rc = REAL(event_base_loopexit)(base, tv);
  __asm__ __volatile__("" ::: "memory"); /* no tail call from here either */
  return rc;
}

/* ---- threads (wrong-thread) ---- */

/* libevent's calls are thread-safe once the program turned its locking on
 * (evthread_use_pthreads, or its own lock callbacks); before that, an
 * event of a base another thread is running is not to be touched. */
static _Atomic int evthreads;
static struct loopsan_library_ref evthread_lib = {.soname_prefix = "libevent_pthreads"};
typedef int (*evthread_use_fn)(void);

LOOPSAN_INTERPOSE int evthread_use_pthreads(void) {
  static evthread_use_fn real;
  if (!real)
    real = (evthread_use_fn)loopsan__resolve(&evthread_lib, "evthread_use_pthreads");
  int rc = real ? real() : -1;
  if (rc == 0)
    atomic_store(&evthreads, 1);
  return rc;
}

DECLARE_REAL(event_get_base);
static void check_event_thread(const struct event *ev, const char *fn) {
  if (atomic_load_explicit(&evthreads, memory_order_relaxed) || !ev || !RESOLVE(event_get_base))
    return;
  loopsan__check_thread(REAL(event_get_base)(ev), ev, LOOPSAN_LIB_EVENT, fn);
}

/* ---- events ---- */

/* An event the program made that is not in the table (its callback had no
 * stub: NULL, or the pool full): from then on, an event unknown to the
 * table may be one of those, and none is called never set up. */
static _Atomic int untracked_events;

/* ---- misuse: what libevent's debug mode would abort on ---- */

static void misuse(const void *ev, const struct loopsan_obj *o, uint32_t what, const char *fn,
                   int arg) {
  struct loopsan_misuse_detail d = {
      .type = o ? o->type : LOOPSAN_TYPE_UNKNOWN, .arg = arg, .address = ev};
  loopsan__record_misuse_ex(o ? o->id : 0, LOOPSAN_LIB_EVENT, what, fn, &d);
}

/* The last events the program freed, by address (direct-mapped; only read
 * when a call finds no event in the table): an event_add or event_del of
 * one is a use after free, with the event_free call site. */
static struct loopsan_gone freed_ring[256];

/* event_add or event_del of EV, which the program never set up (or freed):
 * libevent reads a base and flags from whatever the memory holds. Only
 * for a call from outside libevent (RA): a callback of libevent's own
 * that tail-calls event_add (bufferevents do) looks like the program's. */
static void check_set_up(const struct event *ev, const char *fn, uintptr_t ra) {
  struct loopsan_obj o;
  if (LOOPSAN_LIKELY(loopsan__obj_get(ev, &o) != NULL) || !ev ||
      atomic_load_explicit(&untracked_events, memory_order_relaxed) ||
      loopsan__in_range(&event_lib, ra))
    return;
  struct loopsan_gone *g = loopsan__gone_find(LOOPSAN_GONE_SLOT(freed_ring, ev), ev);
  if (g) { /* freed: said with where */
    loopsan__gone_misuse(g, ev, LOOPSAN_LIB_EVENT, LOOPSAN_MISUSE_EVENT_FREED, fn);
    return;
  }
  misuse(ev, NULL, LOOPSAN_MISUSE_EVENT_NOT_SETUP, fn, 0);
}

/* event_assign or event_set over EV while it is still added (libevent's
 * queues hold it): asked of libevent itself when the table says it was
 * added and not deleted since (so the memory is an event). */
DECLARE_REAL(event_pending);
static void check_not_added(const struct event *ev, const char *fn) {
  struct loopsan_obj o;
  if (LOOPSAN_LIKELY(!loopsan__obj_get(ev, &o)) || !(o.state & LOOPSAN_STATE_ADDED) ||
      !RESOLVE(event_pending) ||
      !REAL(event_pending)(ev, EV_TIMEOUT | EV_READ | EV_WRITE | EV_SIGNAL, NULL))
    return;
  misuse(ev, &o, LOOPSAN_MISUSE_ASSIGN_ADDED, fn, 0);
}

/* An event on descriptor FD in blocking mode: a read the loop woke up for
 * can still block the whole loop. */
static void check_nonblocking(const void *ev, evutil_socket_t fd, short what, const char *fn) {
  if (fd < 0 || (what & EV_SIGNAL) || !(what & (EV_READ | EV_WRITE)))
    return;
  int saved = errno;
  long fl = syscall(SYS_fcntl, fd, F_GETFL);
  errno = saved;
  struct loopsan_obj o;
  if (fl >= 0 && !(fl & O_NONBLOCK))
    misuse(ev, loopsan__obj_get(ev, &o) ? &o : NULL, LOOPSAN_MISUSE_FD_BLOCKING, fn, (int)fd);
}

/* EV is (re)made by the program: an earlier event at the same address is
 * done (assigning over a pending event is libevent misuse). */
/* Is the callback of object OBJ the one this thread is running? */
static int running_now(uint64_t obj) {
  const struct loopsan_spill_header *h = loopsan__hot.region;
  uint32_t depth = h ? h->depth : 0;
  return depth > 0 && depth <= LOOPSAN_INFLIGHT_MAX && h->inflight[depth - 1].obj == obj;
}

static void event_made(struct event *ev, uint8_t type, struct event_base *base, event_cb_t cb) {
  struct loopsan_obj o;
  last_activated = NULL;
  void *ref = loopsan__obj_get(ev, &o);
  if (ref && o.type == type && running_now(o.id)) {
    /* Set up again from its own callback (memcached's clock, re-armed
     * each second with evtimer_set): the same job going on, one object. */
    loopsan__obj_set_cb(ref, LOOPSAN_SLOT_MAIN, (void *)cb);
    return;
  }
  if (loopsan__obj_take(ev, &o) == 0)
    loopsan__record_end(&o, LOOPSAN_OP_CLOSED, NULL, 0, 0);
  loopsan__handle_new(ev, LOOPSAN_LIB_EVENT, type, base);
  ref = loopsan__obj_get(ev, &o);
  if (ref) {
    loopsan__obj_set_cb(ref, LOOPSAN_SLOT_MAIN, (void *)cb);
    loopsan__obj_state_clear(ref, LOOPSAN_STATE_USED);
    /* Named now: an event never added is still reported with it. */
    loopsan__record_op(o.id, LOOPSAN_OP_CALLBACK, (void *)cb, 0, 0);
  } else { /* (the object table is full: it is not tracked) */
    atomic_store(&untracked_events, 1);
  }
}

DECLARE_REAL(event_new);
LOOPSAN_INTERPOSE struct event *event_new(struct event_base *base, evutil_socket_t fd, short what,
                                          event_callback_fn cb, void *arg) {
  if (!RESOLVE(event_new))
    return NULL;
  int prog = from_program(CALLER);
  event_cb_t stub = prog ? stub_for(cb) : NULL;
  struct event *ev = REAL(event_new)(base, fd, what, stub ? stub : cb, arg);
  if (ev && stub)
    event_made(ev, T_EVENT, base, cb);
  else if (ev && prog)
    atomic_store(&untracked_events, 1);
  if (ev && prog)
    check_nonblocking(ev, fd, what, "event_new");
  return ev;
}

DECLARE_REAL(event_assign);
LOOPSAN_INTERPOSE int event_assign(struct event *ev, struct event_base *base, evutil_socket_t fd,
                                   short what, event_callback_fn cb, void *arg) {
  if (!RESOLVE(event_assign))
    return -1;
  if (!from_program(CALLER)) {
    internal_assign = ev;
    return REAL(event_assign)(ev, base, fd, what, cb, arg);
  }
  check_not_added(ev, "event_assign");
  event_cb_t stub = stub_for(cb);
  int rc = REAL(event_assign)(ev, base, fd, what, stub ? stub : cb, arg);
  if (rc == 0 && stub)
    event_made(ev, T_EVENT_ASSIGNED, base, cb);
  else if (rc == 0)
    atomic_store(&untracked_events, 1);
  if (rc == 0)
    check_nonblocking(ev, fd, what, "event_assign");
  return rc;
}

DECLARE_REAL(event_set);
DECLARE_REAL(event_get_events);
LOOPSAN_INTERPOSE void event_set(struct event *ev, evutil_socket_t fd, short what,
                                 event_callback_fn cb, void *arg) {
  if (!RESOLVE(event_set))
    return;
  int prog = from_program(CALLER);
  if (prog)
    check_not_added(ev, "event_set");
  event_cb_t stub = prog ? stub_for(cb) : NULL;
  REAL(event_set)(ev, fd, what, stub ? stub : cb, arg);
  if (stub)
    event_made(ev, T_EVENT_ASSIGNED, RESOLVE(event_get_base) ? REAL(event_get_base)(ev) : NULL, cb);
  else if (prog)
    atomic_store(&untracked_events, 1);
  if (prog)
    check_nonblocking(ev, fd, what, "event_set");
}

/* An event added with a timeout is scheduled work (a deadline: never
 * firing is "pending"); one that only waits for its fd is interest, done
 * when deleted. Without EV_PERSIST it fires once. */
DECLARE_REAL(event_add);
LOOPSAN_INTERPOSE int event_add(struct event *ev, const struct timeval *tv) {
  if (!RESOLVE(event_add))
    return -1;
  int prog = from_program(CALLER);
  if (prog) {
    check_set_up(ev, "event_add", CALLER);
    check_event_thread(ev, "event_add");
  }
  int rc = REAL(event_add)(ev, tv);
  struct loopsan_obj o;
  void *ref;
  if (!prog || !(ref = loopsan__obj_get(ev, &o)))
    return rc;
  if (rc != 0) {
    loopsan__record_api_error(o.id, LOOPSAN_LIB_EVENT, "event_add", rc, 0);
    return rc;
  }
  loopsan__obj_state_clear(ref, LOOPSAN_STATE_FIRED);
  loopsan__obj_state_set(ref, LOOPSAN_STATE_USED | LOOPSAN_STATE_ADDED);
  short what = RESOLVE(event_get_events) ? REAL(event_get_events)(ev) : 0;
  loopsan__record_op(
      o.id, LOOPSAN_OP_START, o.cb[LOOPSAN_SLOT_MAIN],
      (tv ? LOOPSAN_START_SCHEDULED : 0u) | (what & EV_PERSIST ? 0u : LOOPSAN_START_ONESHOT), 0);
  return rc;
}

DECLARE_REAL(event_del);
LOOPSAN_INTERPOSE int event_del(struct event *ev) {
  if (!RESOLVE(event_del))
    return -1;
  int prog = from_program(CALLER);
  if (prog) {
    check_set_up(ev, "event_del", CALLER);
    check_event_thread(ev, "event_del");
  }
  int rc = REAL(event_del)(ev);
  struct loopsan_obj o;
  void *ref;
  if (rc == 0 && prog && (ref = loopsan__obj_get(ev, &o))) {
    loopsan__obj_state_clear(ref, LOOPSAN_STATE_ADDED);
    loopsan__record_op(o.id, LOOPSAN_OP_STOP, NULL, 0, 0);
  }
  return rc;
}

DECLARE_REAL(event_active);
LOOPSAN_INTERPOSE void event_active(struct event *ev, int res, short ncalls) {
  if (!RESOLVE(event_active))
    return;
  if (ev != last_activated && from_program(CALLER)) {
    check_event_thread(ev, "event_active");
    loopsan__handle_used(ev);
    last_activated = ev;
  }
  REAL(event_active)(ev, res, ncalls);
}

DECLARE_REAL(event_free);
LOOPSAN_INTERPOSE void event_free(struct event *ev) {
  if (!RESOLVE(event_free))
    return;
  struct loopsan_obj o;
  if (last_activated == ev)
    last_activated = NULL;
  if (from_program(CALLER) && loopsan__obj_take(ev, &o) == 0) {
    loopsan__record_end(&o, LOOPSAN_OP_CLOSED, NULL, 0, 0);
    loopsan__gone_put(LOOPSAN_GONE_SLOT(freed_ring, ev), ev, &o, CALLER, 1);
  }
  REAL(event_free)(ev);
}

/* A one-shot event libevent makes, runs once and frees itself: seen
 * through the event_assign it makes for it. Scheduled work when it has a
 * timeout; never closed by the program. */
DECLARE_REAL(event_base_once);
LOOPSAN_INTERPOSE int event_base_once(struct event_base *base, evutil_socket_t fd, short what,
                                      event_callback_fn cb, void *arg, const struct timeval *tv) {
  if (!RESOLVE(event_base_once))
    return -1;
  event_cb_t stub = from_program(CALLER) ? stub_for(cb) : NULL;
  internal_assign = NULL;
  int rc = REAL(event_base_once)(base, fd, what, stub ? stub : cb, arg, tv);
  struct event *ev = internal_assign;
  internal_assign = NULL;
  if (rc != 0 || !stub || !ev)
    return rc;
  event_made(ev, T_EVENT_ONCE, base, cb);
  struct loopsan_obj o;
  void *ref = loopsan__obj_get(ev, &o);
  if (ref) {
    loopsan__obj_state_set(ref, LOOPSAN_STATE_USED);
    loopsan__record_op(o.id, LOOPSAN_OP_START, (void *)cb,
                       LOOPSAN_START_ONESHOT | (tv ? LOOPSAN_START_SCHEDULED : 0u), 0);
  }
  return rc;
}

/* The program reads back its own callback, not the stub. */
DECLARE_REAL(event_get_callback);
LOOPSAN_INTERPOSE event_callback_fn event_get_callback(const struct event *ev) {
  if (!RESOLVE(event_get_callback))
    return NULL;
  return (event_callback_fn)callback_of(REAL(event_get_callback)(ev));
}

DECLARE_REAL(event_get_assignment);
LOOPSAN_INTERPOSE void event_get_assignment(const struct event *ev, struct event_base **base_out,
                                            evutil_socket_t *fd_out, short *events_out,
                                            event_callback_fn *callback_out, void **arg_out) {
  if (!RESOLVE(event_get_assignment))
    return;
  REAL(event_get_assignment)(ev, base_out, fd_out, events_out, callback_out, arg_out);
  if (callback_out)
    *callback_out = (event_callback_fn)callback_of(*callback_out);
}

/* ---- bufferevents: their callbacks get the bufferevent itself ---- */

enum {
  SLOT_READ = LOOPSAN_SLOT_MAIN,
  SLOT_WRITE = LOOPSAN_SLOT_ALLOC,
  SLOT_EVENT = LOOPSAN_SLOT_AUX
};

static void bev_dispatch(struct bufferevent *bev, int slot, short what, void *ctx) {
  struct loopsan_obj_cb o;
  void *ref = loopsan__obj_dispatch(bev, slot, &o);
  if (LOOPSAN_UNLIKELY(!ref))
    return;
  if (LOOPSAN_UNLIKELY(!o.cb)) {
    /* The event callback is ours alone (the program set none): an error or
     * end of file the program cannot see. */
    if (slot == SLOT_EVENT && (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) &&
        !loopsan__obj_state_set(ref, LOOPSAN_STATE_RAN)) { /* once */
      int err = errno;
      loopsan__record_op(o.id, LOOPSAN_OP_UNOBSERVED, NULL,
                         (what & BEV_EVENT_ERROR) ? (uint32_t) - (err ? err : EIO) : 0u, 0);
      errno = err;
    }
    return;
  }
  if (slot == LOOPSAN_SLOT_MAIN && LOOPSAN_UNLIKELY(!(o.state & LOOPSAN_STATE_FIRED))) {
    loopsan__obj_state_set(ref, LOOPSAN_STATE_FIRED);
    loopsan__record_op(o.id, LOOPSAN_OP_FIRED, o.cb, 0, 0);
  }
  LOOPSAN_TIMED_CALL_FOUND(o, (uint32_t)slot, LOOPSAN_LIB_EVENT, {
    if (slot == SLOT_EVENT)
      ((bufferevent_event_cb)o.cb)(bev, what, ctx);
    else
      ((bufferevent_data_cb)o.cb)(bev, ctx);
  });
}

TRAMPOLINE static void tr_bev_read(struct bufferevent *bev, void *ctx) {
  bev_dispatch(bev, SLOT_READ, 0, ctx);
}
TRAMPOLINE static void tr_bev_write(struct bufferevent *bev, void *ctx) {
  bev_dispatch(bev, SLOT_WRITE, 0, ctx);
}
TRAMPOLINE static void tr_bev_event(struct bufferevent *bev, short what, void *ctx) {
  bev_dispatch(bev, SLOT_EVENT, what, ctx);
}

DECLARE_REAL(bufferevent_socket_new);
LOOPSAN_INTERPOSE struct bufferevent *bufferevent_socket_new(struct event_base *base,
                                                             evutil_socket_t fd, int options) {
  if (!RESOLVE(bufferevent_socket_new))
    return NULL;
  struct bufferevent *bev = REAL(bufferevent_socket_new)(base, fd, options);
  if (bev && from_program(CALLER))
    loopsan__handle_new(bev, LOOPSAN_LIB_EVENT, T_BUFFEREVENT, base);
  return bev;
}

DECLARE_REAL(bufferevent_setcb);
LOOPSAN_INTERPOSE void bufferevent_setcb(struct bufferevent *bev, bufferevent_data_cb readcb,
                                         bufferevent_data_cb writecb, bufferevent_event_cb eventcb,
                                         void *cbarg) {
  if (!RESOLVE(bufferevent_setcb))
    return;
  struct loopsan_obj o;
  void *ref;
  if (!from_program(CALLER) || !(ref = loopsan__obj_get(bev, &o))) {
    REAL(bufferevent_setcb)(bev, readcb, writecb, eventcb, cbarg);
    return;
  }
  if ((void *)readcb != (void *)tr_bev_read)
    loopsan__obj_set_cb(ref, SLOT_READ, (void *)readcb);
  if ((void *)writecb != (void *)tr_bev_write)
    loopsan__obj_set_cb(ref, SLOT_WRITE, (void *)writecb);
  if ((void *)eventcb != (void *)tr_bev_event)
    loopsan__obj_set_cb(ref, SLOT_EVENT, (void *)eventcb);
  loopsan__obj_state_clear(ref, LOOPSAN_STATE_FIRED);
  if (!loopsan__obj_state_set(ref, LOOPSAN_STATE_USED))
    loopsan__record_op(o.id, LOOPSAN_OP_START, (void *)readcb, 0, 0);
  REAL(bufferevent_setcb)
  (bev, readcb ? tr_bev_read : NULL, writecb ? tr_bev_write : NULL,
   tr_bev_event /* even without one of the program's: its errors are seen */, cbarg);
}

DECLARE_REAL(bufferevent_free);
LOOPSAN_INTERPOSE void bufferevent_free(struct bufferevent *bev) {
  if (!RESOLVE(bufferevent_free))
    return;
  struct loopsan_obj o;
  if (from_program(CALLER) && loopsan__obj_take(bev, &o) == 0)
    loopsan__record_end(&o, LOOPSAN_OP_CLOSED, NULL, 0, 0);
  REAL(bufferevent_free)(bev);
}

/* The program reads back its own callbacks, not the trampolines. */
DECLARE_REAL(bufferevent_getcb);
LOOPSAN_INTERPOSE void bufferevent_getcb(struct bufferevent *bev, bufferevent_data_cb *readcb,
                                         bufferevent_data_cb *writecb,
                                         bufferevent_event_cb *eventcb, void **cbarg) {
  if (!RESOLVE(bufferevent_getcb))
    return;
  REAL(bufferevent_getcb)(bev, readcb, writecb, eventcb, cbarg);
  struct loopsan_obj o;
  if (!loopsan__obj_get(bev, &o))
    return;
  if (readcb && (void *)*readcb == (void *)tr_bev_read)
    *readcb = (bufferevent_data_cb)o.cb[SLOT_READ];
  if (writecb && (void *)*writecb == (void *)tr_bev_write)
    *writecb = (bufferevent_data_cb)o.cb[SLOT_WRITE];
  if (eventcb && (void *)*eventcb == (void *)tr_bev_event)
    *eventcb = (bufferevent_event_cb)o.cb[SLOT_EVENT];
}

/* ---- evconnlistener: its callback gets the listener ---- */

TRAMPOLINE static void tr_listener(struct evconnlistener *lev, evutil_socket_t fd,
                                   struct sockaddr *sa, int socklen, void *ptr) {
  struct loopsan_obj_cb o;
  void *ref = loopsan__obj_dispatch(lev, LOOPSAN_SLOT_MAIN, &o);
  if (LOOPSAN_UNLIKELY(!ref || !o.cb))
    return; /* cannot happen: the trampoline is set once the listener is recorded */
  if (LOOPSAN_UNLIKELY(!(o.state & LOOPSAN_STATE_FIRED))) {
    loopsan__obj_state_set(ref, LOOPSAN_STATE_FIRED);
    loopsan__record_op(o.id, LOOPSAN_OP_FIRED, o.cb, 0, 0);
  }
  LOOPSAN_TIMED_CALL_FOUND(o, LOOPSAN_SLOT_MAIN, LOOPSAN_LIB_EVENT,
                     ((evconnlistener_cb)o.cb)(lev, fd, sa, socklen, ptr));
}

DECLARE_REAL(evconnlistener_set_cb);

/* LEV was made by the program with CB: recorded, then given the
 * trampoline (evconnlistener_set_cb takes the listener's lock: a
 * connection accepted meanwhile on another thread runs CB itself). */
static void listener_made(struct evconnlistener *lev, struct event_base *base, evconnlistener_cb cb,
                          void *arg) {
  void *ref = NULL;
  if (!loopsan__record_new(lev, LOOPSAN_LIB_EVENT, T_LISTENER, loopsan__loop_id(base), 0, &ref) ||
      !ref)
    return;
  loopsan__obj_set_cb(ref, LOOPSAN_SLOT_MAIN, (void *)cb);
  if (!cb)
    return;
  struct loopsan_obj o;
  if (loopsan__obj_read(ref, lev, &o)) {
    loopsan__obj_state_set(ref, LOOPSAN_STATE_USED);
    loopsan__record_op(o.id, LOOPSAN_OP_START, (void *)cb, 0, 0);
  }
  if (RESOLVE(evconnlistener_set_cb))
    REAL(evconnlistener_set_cb)(lev, tr_listener, arg);
}

DECLARE_REAL(evconnlistener_new);
LOOPSAN_INTERPOSE struct evconnlistener *evconnlistener_new(struct event_base *base,
                                                            evconnlistener_cb cb, void *ptr,
                                                            unsigned flags, int backlog,
                                                            evutil_socket_t fd) {
  if (!RESOLVE(evconnlistener_new))
    return NULL;
  struct evconnlistener *lev = REAL(evconnlistener_new)(base, cb, ptr, flags, backlog, fd);
  if (lev && from_program(CALLER))
    listener_made(lev, base, cb, ptr);
  return lev;
}

DECLARE_REAL(evconnlistener_new_bind);
LOOPSAN_INTERPOSE struct evconnlistener *
evconnlistener_new_bind(struct event_base *base, evconnlistener_cb cb, void *ptr, unsigned flags,
                        int backlog, const struct sockaddr *sa, int socklen) {
  if (!RESOLVE(evconnlistener_new_bind))
    return NULL;
  struct evconnlistener *lev =
      REAL(evconnlistener_new_bind)(base, cb, ptr, flags, backlog, sa, socklen);
  if (lev && from_program(CALLER))
    listener_made(lev, base, cb, ptr);
  return lev;
}

LOOPSAN_INTERPOSE void evconnlistener_set_cb(struct evconnlistener *lev, evconnlistener_cb cb,
                                             void *arg) {
  if (!RESOLVE(evconnlistener_set_cb))
    return;
  struct loopsan_obj o;
  void *ref;
  if (!lev || !from_program(CALLER) || !(ref = loopsan__obj_get(lev, &o)) || cb == tr_listener) {
    REAL(evconnlistener_set_cb)(lev, cb, arg);
    return;
  }
  loopsan__obj_set_cb(ref, LOOPSAN_SLOT_MAIN, (void *)cb);
  if (cb && !loopsan__obj_state_set(ref, LOOPSAN_STATE_USED))
    loopsan__record_op(o.id, LOOPSAN_OP_START, (void *)cb, 0, 0);
  REAL(evconnlistener_set_cb)(lev, cb ? tr_listener : NULL, arg);
}

DECLARE_REAL(evconnlistener_free);
LOOPSAN_INTERPOSE void evconnlistener_free(struct evconnlistener *lev) {
  if (!RESOLVE(evconnlistener_free))
    return;
  struct loopsan_obj o;
  if (lev && from_program(CALLER) && loopsan__obj_take(lev, &o) == 0)
    loopsan__record_end(&o, LOOPSAN_OP_CLOSED, NULL, 0, 0);
  REAL(evconnlistener_free)(lev);
}
