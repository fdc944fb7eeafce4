/* The GLib main loop adapter: contexts, sources and their callbacks.
 *
 * GLib is linked with -Bsymbolic-functions (NOTES.md): its calls to itself
 * never reach an interposer, so g_idle_add() does not pass through an
 * interposed g_source_attach(). Every public way to make, attach and end a
 * source is therefore covered on its own, and the g_*_add* helpers are
 * rebuilt here from the public calls they are made of (the constructor,
 * g_source_set_priority, the callback, g_source_attach, g_source_unref).
 *
 * How a dispatch is timed without touching what GLib compares. A source's
 * callback is held by a "callback object" with ref/unref/get functions
 * (GSourceCallbackFuncs, public since GLib 2.0); g_source_set_callback()
 * makes GLib's own. loopsan installs its own with
 * g_source_set_callback_indirect() instead, holding the same function,
 * data and destroy notify (or chaining to the program's own callback
 * object). The source's GSourceFuncs, its user_data and the function
 * GLib hands to dispatch stay exactly the program's, so
 * g_source_remove_by_user_data(), g_source_remove_by_funcs_user_data()
 * and closures see what they see without loopsan. GLib's dispatch is
 * ref(cb) -> get(cb) -> dispatch(source, func, data) -> unref(cb), and only
 * g_main_dispatch() calls ref: a get right after a ref on the same thread
 * starts a dispatch, and the unref that follows ends it. The one unref
 * that is not the end, while the callback runs, is the source letting go
 * of its callback (destroyed, or its callback replaced): the source is
 * then no longer active, or loopsan replaced the callback itself. When
 * the last reference goes, the source has let go for good: its object ends
 * there, whatever ended it (the callback returning G_SOURCE_REMOVE,
 * g_source_remove, its context being freed). No malloc on the dispatch
 * path: one small allocation per callback set, in place of GLib's own.
 *
 * A source lives as long as its context (LOOPSAN_OBJF_LIVES_WITH_LOOP):
 * still attached at exit is not a leak, unless the program let the
 * context go with the source still attached (the sources destroyed inside
 * the program's last g_main_context_unref or g_main_loop_unref). Contexts
 * made by the program and never unreferenced are unclosed loops; the
 * default context and contexts GIO makes for itself (GDBus's worker) are
 * library-owned.
 *
 * gobject-introspection (python3-gi) finds functions with
 * g_module_symbol(), i.e. dlsym() on GLib's own handle, which bypasses any
 * interposer: g_module_symbol is interposed to hand out loopsan's
 * definition where it has one. */
#include <dlfcn.h>
#include <glib-unix.h>
#include <glib.h>
#include <gmodule.h>
#include <stdlib.h>

#include "preload/adapter.h"

#include "preload/lib_glib_internal.h"

LOOPSAN_DEFINE_ADAPTER(loopsan__glib_adapter, LOOPSAN_LIB_GLIB, GLIB_OBJECT_TYPES);

static struct loopsan_library_ref glib_lib = {.soname_prefix = "libglib-2.0.so"};
static struct loopsan_library_ref gmodule_lib = {.soname_prefix = "libgmodule-2.0.so"};
#define RESOLVE(fn) RESOLVE_IN(&glib_lib, fn)
#define from_program(ra) loopsan__from_program(&glib_lib, ra)

/* What starting a source of each type means (LOOPSAN_START_*): idle and
 * timeout sources are work scheduled to run; the others wait for an
 * event that may never come. */
static const uint32_t start_flags_of[] = {
    [T_IDLE] = LOOPSAN_START_SCHEDULED,
    [T_TIMEOUT] = LOOPSAN_START_SCHEDULED,
};

static uint32_t start_flags(uint8_t type) {
  return type < sizeof start_flags_of / sizeof *start_flags_of ? start_flags_of[type] : 0;
}

/* ---- the callback object ---- */

struct glib_callback {
  _Atomic int refs;
  uint8_t once;      /* GSourceOnceFunc: called with data, then the source is removed */
  uint8_t detached;  /* the source let go of it */
  uint8_t with_loop; /* ... because its context was being freed */
  uint8_t replaced;  /* ... because loopsan or the program set another callback */
  uint8_t fired;     /* dispatched at least once */
  GSourceFunc func;  /* the program's callback (NULL: the inner object's) */
  gpointer data;     /* its user_data */
  GDestroyNotify notify;
  gpointer inner_data; /* a program's own callback object (g_source_set_callback_indirect) */
  GSourceCallbackFuncs *inner;
  GSource *source;
  GMainContext *context; /* where the source is attached (once it is) */
  uint64_t obj;          /* the source's object id */
};

/* This thread's dispatches in progress, innermost last. */
#define GLIB_DEPTH 32
struct glib_running {
  struct glib_callback *cb;
  struct loopsan_dispatch d;
};
static LOOPSAN_TLS struct glib_callback *just_reffed;
static LOOPSAN_TLS struct glib_running running[GLIB_DEPTH];
static LOOPSAN_TLS unsigned running_depth;
/* The context the program is letting go of on this thread, while it does. */
static LOOPSAN_TLS GMainContext *dying_context;
static LOOPSAN_TLS unsigned died_with_context;
/* The context whose run this thread last recorded (see context_runs). */
static LOOPSAN_TLS GMainContext *last_run;

static void cb_ref(gpointer p);
static void cb_unref(gpointer p);
static void cb_get(gpointer p, GSource *source, GSourceFunc *func, gpointer *data);
static GSourceCallbackFuncs loopsan_callback_funcs = {cb_ref, cb_unref, cb_get};

/* Called as the callback of a once-source: the program's function returns
 * nothing, the source is removed after it. */
TRAMPOLINE static gboolean once_trampoline(gpointer p) {
  struct glib_callback *cb = p;
  ((GSourceOnceFunc)(void (*)(void))cb->func)(cb->data);
  return G_SOURCE_REMOVE;
}

static void cb_ref(gpointer p) {
  struct glib_callback *cb = p;
  atomic_fetch_add_explicit(&cb->refs, 1, memory_order_relaxed);
  if (cb->inner)
    cb->inner->ref(cb->inner_data);
  just_reffed = cb; /* g_main_dispatch: get follows, then the dispatch */
}

static void cb_get(gpointer p, GSource *source, GSourceFunc *func, gpointer *data) {
  struct glib_callback *cb = p;
  if (cb->inner) {
    cb->inner->get(cb->inner_data, source, func, data);
  } else {
    *func = cb->func;
    *data = cb->data;
  }
  if (just_reffed != cb) /* a lookup (g_source_remove_by_user_data), not a dispatch */
    return;
  just_reffed = NULL;
  if (!cb->fired && cb->obj) {
    cb->fired = 1;
    loopsan__record_op(cb->obj, LOOPSAN_OP_FIRED, (const void *)*func, 0, 0);
  }
  if (running_depth < GLIB_DEPTH) {
    struct glib_running *run = &running[running_depth];
    run->cb = cb;
    loopsan__dispatch_begin(&run->d, cb->obj, (const void *)*func, LOOPSAN_SLOT_MAIN,
                            LOOPSAN_LIB_GLIB);
  }
  running_depth++;
  if (cb->once && !cb->inner) {
    *func = once_trampoline;
    *data = cb;
  }
}

static void end_source(struct glib_callback *cb) {
  struct loopsan_obj o;
  if (!cb->obj || !loopsan__obj_get(cb->source, &o) || o.id != cb->obj ||
      loopsan__obj_take(cb->source, &o) != 0)
    return;
  loopsan__record_end(&o, LOOPSAN_OP_CLOSED, NULL, cb->with_loop ? LOOPSAN_CLOSED_WITH_LOOP : 0, 0);
}

static void detach(struct glib_callback *cb) {
  cb->detached = 1;
  if (dying_context && cb->context == dying_context) {
    cb->with_loop = 1;
    died_with_context++;
  }
}

static void cb_unref(gpointer p) {
  struct glib_callback *cb = p;
  unsigned depth = running_depth;
  if (depth > 0 && (depth > GLIB_DEPTH || running[depth - 1].cb == cb)) {
    /* Inside this callback's dispatch (the source is alive: the dispatch
     * holds it): either the source letting go, or the dispatch's end. */
    if (!cb->detached && (cb->replaced || !(cb->source->flags & G_HOOK_FLAG_ACTIVE))) {
      detach(cb);
    } else {
      running_depth = depth - 1;
      if (depth <= GLIB_DEPTH)
        loopsan__dispatch_end(&running[depth - 1].d);
    }
  } else if (!cb->detached) {
    detach(cb);
  }
  if (cb->inner)
    cb->inner->unref(cb->inner_data);
  if (atomic_fetch_sub_explicit(&cb->refs, 1, memory_order_acq_rel) != 1)
    return;
  if (!cb->replaced)
    end_source(cb);
  if (!cb->inner && cb->notify)
    cb->notify(cb->data);
  free(cb);
}

/* ---- contexts ---- */

DECLARE_REAL(g_main_context_default);

/* The program's references to the contexts it made: it has let a context
 * go when it gave back as many as it took. */
#define CONTEXTS 64
static struct {
  _Atomic(GMainContext *) ctx;
  _Atomic long refs;
} contexts[CONTEXTS];

static long context_refs_add(GMainContext *ctx, long delta, int claim) {
  for (unsigned i = 0; i < CONTEXTS; i++) {
    GMainContext *have = atomic_load_explicit(&contexts[i].ctx, memory_order_acquire);
    if (have == ctx)
      return atomic_fetch_add(&contexts[i].refs, delta) + delta;
    if (!have && claim) {
      GMainContext *expected = NULL;
      if (atomic_compare_exchange_strong(&contexts[i].ctx, &expected, ctx)) {
        atomic_store(&contexts[i].refs, delta);
        return delta;
      }
    }
  }
  return -1; /* not one the program made (or too many) */
}

static void context_forget(GMainContext *ctx) {
  for (unsigned i = 0; i < CONTEXTS; i++)
    if (atomic_load(&contexts[i].ctx) == ctx) {
      atomic_store(&contexts[i].refs, 0);
      atomic_store(&contexts[i].ctx, NULL);
    }
}

/* The context object of CTX (NULL: the default one), made on first sight:
 * the default context, and contexts made where loopsan did not see it
 * (inside GLib), are library-owned. */
static GMainContext *context_seen(GMainContext *ctx) {
  if (!ctx) {
    if (!RESOLVE(g_main_context_default))
      return NULL;
    ctx = REAL(g_main_context_default)();
  }
  if (ctx && !loopsan__loop_id(ctx))
    loopsan__loop_new(ctx, LOOPSAN_LIB_GLIB, T_CONTEXT, LOOPSAN_OBJF_DEFAULT_LOOP);
  return ctx;
}

/* Contexts GIO, GObject or gobject-introspection make for themselves
 * (GDBus's worker thread) live as long as the process, like the default. */
static int made_by_glib_family(uintptr_t ra) {
  Dl_info info;
  if (!dladdr((void *)ra, &info) || !info.dli_fname)
    return 0;
  const char *base = strrchr(info.dli_fname, '/');
  base = base ? base + 1 : info.dli_fname;
  return strncmp(base, "libgio-2.0.so", 13) == 0 || strncmp(base, "libgobject-2.0.so", 17) == 0;
}

static void context_made(GMainContext *ctx, uintptr_t ra) {
  if (!ctx || !from_program(ra))
    return;
  int owned = made_by_glib_family(ra);
  loopsan__loop_new(ctx, LOOPSAN_LIB_GLIB, T_CONTEXT, owned ? LOOPSAN_OBJF_DEFAULT_LOOP : 0);
  if (!owned)
    context_refs_add(ctx, 1, 1);
}

DECLARE_REAL(g_main_context_new);
LOOPSAN_INTERPOSE GMainContext *g_main_context_new(void) {
  if (!RESOLVE(g_main_context_new))
    return NULL;
  GMainContext *ctx = REAL(g_main_context_new)();
  context_made(ctx, CALLER);
  return ctx;
}

DECLARE_REAL(g_main_context_new_with_flags);
LOOPSAN_INTERPOSE GMainContext *g_main_context_new_with_flags(GMainContextFlags flags) {
  if (!RESOLVE(g_main_context_new_with_flags))
    return NULL;
  GMainContext *ctx = REAL(g_main_context_new_with_flags)(flags);
  context_made(ctx, CALLER);
  return ctx;
}

LOOPSAN_INTERPOSE GMainContext *g_main_context_default(void) {
  if (!RESOLVE(g_main_context_default))
    return NULL;
  GMainContext *ctx = REAL(g_main_context_default)();
  if (from_program(CALLER))
    context_seen(ctx);
  return ctx;
}

DECLARE_REAL(g_main_context_ref);
LOOPSAN_INTERPOSE GMainContext *g_main_context_ref(GMainContext *ctx) {
  if (!RESOLVE(g_main_context_ref))
    return NULL;
  GMainContext *rc = REAL(g_main_context_ref)(ctx);
  if (ctx && from_program(CALLER))
    context_refs_add(ctx, 1, 0);
  return rc;
}

/* Run RELEASE (the real unref of a context or of a loop holding one) with
 * CTX noted as dying on this thread: sources it destroys on the way are
 * destroyed with their context. PROGRAM_DONE: the program gave back its
 * last reference. */
static void context_release(GMainContext *ctx, int program_done, void (*release)(void *),
                            void *arg) {
  GMainContext *outer = dying_context;
  unsigned outer_died = died_with_context;
  dying_context = ctx;
  died_with_context = 0;
  release(arg);
  int freed = died_with_context > 0; /* only a freed context destroys its sources */
  dying_context = outer;
  died_with_context = outer_died;
  if (program_done || freed) {
    context_forget(ctx);
    last_run = NULL;
    loopsan__loop_closed(ctx, 1);
  }
}

DECLARE_REAL(g_main_context_unref);
static void call_context_unref(void *ctx) { REAL(g_main_context_unref)(ctx); }
LOOPSAN_INTERPOSE void g_main_context_unref(GMainContext *ctx) {
  if (!RESOLVE(g_main_context_unref))
    return;
  long left;
  if (!ctx || !from_program(CALLER) || (left = context_refs_add(ctx, -1, 0)) < 0) {
    REAL(g_main_context_unref)(ctx);
    return;
  }
  context_release(ctx, left == 0, call_context_unref, ctx);
}

DECLARE_REAL(g_main_loop_new);
LOOPSAN_INTERPOSE GMainLoop *g_main_loop_new(GMainContext *ctx, gboolean is_running) {
  if (!RESOLVE(g_main_loop_new))
    return NULL;
  if (from_program(CALLER))
    context_seen(ctx);
  return REAL(g_main_loop_new)(ctx, is_running);
}

DECLARE_REAL(g_main_loop_get_context);
DECLARE_REAL(g_main_loop_unref);
static void call_loop_unref(void *loop) { REAL(g_main_loop_unref)(loop); }
/* A GMainLoop holds its context: the program's last reference may be the
 * loop's. */
LOOPSAN_INTERPOSE void g_main_loop_unref(GMainLoop *loop) {
  if (!RESOLVE(g_main_loop_unref))
    return;
  GMainContext *ctx = NULL;
  if (loop && from_program(CALLER) && RESOLVE(g_main_loop_get_context))
    ctx = REAL(g_main_loop_get_context)(loop);
  if (!ctx || loopsan__loop_id(ctx) == 0) {
    REAL(g_main_loop_unref)(loop);
    return;
  }
  context_release(ctx, 0, call_loop_unref, loop);
}

/* The program runs CTX (NULL: the default context): its first run is
 * recorded. Programs iterate by hand (g_main_context_iteration in a
 * loop): the context last seen run on this thread is not looked up again. */
static void context_runs(GMainContext *ctx, int mode) {
  GMainContext *key = ctx ? ctx : (GMainContext *)&last_run; /* the default's key */
  if (key == last_run)
    return;
  last_run = key;
  loopsan__loop_run(context_seen(ctx), mode);
}

/* GLib's sources and contexts are thread-safe, but running a context is
 * its owner's: the thread that acquired it. The thread inside
 * g_main_loop_run owns the context. Another
 * thread's g_main_context_iteration or _pending meanwhile does nothing
 * and returns FALSE (or waits for the owner to let go first), a bug (a
 * worker "pumping" the main context) that says nothing: a wrong-thread.
 * (Another thread's g_main_loop_run waits for the owner, as documented:
 * not reported.) Returns whether this thread may own CTX (no other thread
 * runs it). */
static int context_call(GMainContext *ctx, const char *fn) {
  if (!atomic_load_explicit(&loopsan__running_loops, memory_order_relaxed))
    return 1; /* nobody runs a loop: the common case, at no lookup */
  if (!ctx) {
    if (!RESOLVE(g_main_context_default))
      return 0;
    ctx = REAL(g_main_context_default)();
  }
  return !loopsan__check_thread(ctx, ctx, LOOPSAN_LIB_GLIB, fn);
}

/* The program (or GLib) runs CTX on this thread: its owner for the while
 * (loopsan__loop_enter), unless another thread runs it, whose turn this
 * waits for. Returns the context entered, or NULL. */
static GMainContext *context_enter(GMainContext *ctx, const void **saved) {
  loopsan__adapter_loop_entered(); /* its waits are GLib's, not the generic layer's */
  if (!ctx) {
    if (!RESOLVE(g_main_context_default))
      return NULL;
    ctx = REAL(g_main_context_default)();
  }
  if (loopsan__loop_running_elsewhere(ctx))
    return NULL;
  loopsan__adapter_loop_left(); /* counted again by loop_enter */
  loopsan__loop_enter(ctx, saved);
  return ctx;
}

static void context_leave(GMainContext *entered, const void *saved) {
  if (entered)
    loopsan__loop_leave(entered, saved);
  else
    loopsan__adapter_loop_left();
}

DECLARE_REAL(g_main_loop_run);
LOOPSAN_INTERPOSE void g_main_loop_run(GMainLoop *loop) {
  if (!RESOLVE(g_main_loop_run))
    return;
  GMainContext *ctx =
      loop && RESOLVE(g_main_loop_get_context) ? REAL(g_main_loop_get_context)(loop) : NULL;
  int prog = from_program(CALLER);
  if (ctx && prog)
    context_runs(ctx, 0);
  const void *saved = NULL;
  GMainContext *entered = ctx ? context_enter(ctx, &saved) : NULL;
  if (!ctx)
    loopsan__adapter_loop_entered();
  REAL(g_main_loop_run)(loop);
  context_leave(entered, saved);
}

DECLARE_REAL(g_main_context_iteration);
LOOPSAN_INTERPOSE gboolean g_main_context_iteration(GMainContext *ctx, gboolean may_block) {
  if (!RESOLVE(g_main_context_iteration))
    return FALSE;
  /* Checked, but not entered as its owner: that costs a table update per
   * iteration (a quarter more per idle dispatch), and a thread that
   * iterates by hand owns the context only for the iteration. */
  if (from_program(CALLER)) {
    context_runs(ctx, may_block);
    context_call(ctx, "g_main_context_iteration");
  }
  loopsan__adapter_loop_entered();
  gboolean rc = REAL(g_main_context_iteration)(ctx, may_block);
  loopsan__adapter_loop_left();
  return rc;
}

DECLARE_REAL(g_main_context_pending);
LOOPSAN_INTERPOSE gboolean g_main_context_pending(GMainContext *ctx) {
  if (!RESOLVE(g_main_context_pending))
    return FALSE;
  if (from_program(CALLER))
    context_call(ctx, "g_main_context_pending");
  return REAL(g_main_context_pending)(ctx);
}

/* ---- sources ---- */

DECLARE_REAL(g_source_set_callback);
DECLARE_REAL(g_source_set_callback_indirect);
DECLARE_REAL(g_source_attach);
DECLARE_REAL(g_source_get_context);
DECLARE_REAL(g_source_is_destroyed);
DECLARE_REAL(g_source_unref);
DECLARE_REAL(g_source_set_priority);

/* S of TYPE was made by the program: an object that ends when S lets go of
 * its callback (or, without one, when the program destroys or frees it). */
static GSource *source_made(GSource *s, uint8_t type, uintptr_t ra) {
  struct loopsan_obj o;
  if (!s)
    return s;
  if (loopsan__obj_take(s, &o) == 0) /* S reuses a freed source's memory */
    loopsan__record_end(&o, LOOPSAN_OP_CLOSED, NULL, 0, 0);
  loopsan__record_new(s, LOOPSAN_LIB_GLIB, type, 0,
                      LOOPSAN_OBJF_LIVES_WITH_LOOP |
                          (made_by_glib_family(ra) ? LOOPSAN_OBJF_LIBRARY_OWNED : 0),
                      NULL);
  return s;
}

static struct glib_callback *callback_of(GSource *s) {
  return s->callback_funcs == &loopsan_callback_funcs ? s->callback_data : NULL;
}

/* S's object id, made now if loopsan did not see S made (a source GLib
 * made for the program: its creation stack is this call's). */
static uint64_t source_id(GSource *s, uintptr_t ra) {
  struct loopsan_obj o;
  if (loopsan__obj_get(s, &o))
    return o.id;
  source_made(s, T_SOURCE, ra);
  if (!loopsan__obj_get(s, &o))
    return 0;
  if (s->context) { /* already attached */
    loopsan__record_op(o.id, LOOPSAN_OP_ATTACH,
                       (const void *)(uintptr_t)loopsan__loop_id(s->context), 0, 0);
    loopsan__record_op(o.id, LOOPSAN_OP_START, NULL, 0, 0);
  }
  return o.id;
}

/* Give S a callback object holding FUNC/DATA/NOTIFY (or the program's
 * INNER callback object); returns 0, or -1 when out of memory (the caller
 * then sets the callback the plain way). */
static int set_callback(GSource *s, GSourceFunc func, gpointer data, GDestroyNotify notify,
                        int once, gpointer inner_data, GSourceCallbackFuncs *inner, uintptr_t ra) {
  if (!RESOLVE(g_source_set_callback_indirect))
    return -1;
  struct glib_callback *cb = calloc(1, sizeof *cb);
  if (!cb)
    return -1;
  atomic_init(&cb->refs, 1);
  cb->once = (uint8_t)once;
  cb->func = func;
  cb->data = data;
  cb->notify = notify;
  cb->inner_data = inner_data;
  cb->inner = inner;
  cb->source = s;
  cb->context = s->context;
  cb->obj = source_id(s, ra);
  struct glib_callback *old = callback_of(s);
  if (old)
    old->replaced = 1; /* its release is not the source's end */
  if (func && cb->obj)
    loopsan__record_op(cb->obj, LOOPSAN_OP_CALLBACK, (const void *)func, 0, 0);
  REAL(g_source_set_callback_indirect)(s, cb, &loopsan_callback_funcs);
  return 0;
}

/* S was attached to CTX (NULL: the default context). */
static void source_attached(GSource *s, GMainContext *ctx, uintptr_t ra) {
  struct loopsan_obj o;
  ctx = context_seen(ctx);
  struct glib_callback *cb = callback_of(s);
  if (cb)
    cb->context = ctx;
  if (!source_id(s, ra) || !loopsan__obj_get(s, &o)) /* made here if unseen */
    return;
  loopsan__record_op(o.id, LOOPSAN_OP_ATTACH, (const void *)(uintptr_t)loopsan__loop_id(ctx), 0, 0);
  loopsan__record_op(o.id, LOOPSAN_OP_START, cb && !cb->inner ? (const void *)cb->func : NULL,
                     start_flags(o.type), 0);
}

/* The constructors: a source the program made. */
#define SOURCE_NEW(fn, type, params, args)                          \
  DECLARE_REAL(fn);                                                 \
  LOOPSAN_INTERPOSE GSource *fn params {                            \
    if (!RESOLVE(fn))                                               \
      return NULL;                                                  \
    GSource *s = REAL(fn) args;                                     \
    return from_program(CALLER) ? source_made(s, type, CALLER) : s; \
  }
SOURCE_NEW(g_source_new, T_SOURCE, (GSourceFuncs * funcs, guint size), (funcs, size))
SOURCE_NEW(g_idle_source_new, T_IDLE, (void), ())
SOURCE_NEW(g_timeout_source_new, T_TIMEOUT, (guint interval), (interval))
SOURCE_NEW(g_timeout_source_new_seconds, T_TIMEOUT, (guint interval), (interval))
SOURCE_NEW(g_child_watch_source_new, T_CHILD_WATCH, (GPid pid), (pid))
SOURCE_NEW(g_io_create_watch, T_IO_WATCH, (GIOChannel * channel, GIOCondition condition),
           (channel, condition))
SOURCE_NEW(g_unix_fd_source_new, T_UNIX_FD, (gint fd, GIOCondition condition), (fd, condition))
SOURCE_NEW(g_unix_signal_source_new, T_UNIX_SIGNAL, (gint signum), (signum))

/* The g_*_add* helpers, rebuilt from public calls as GLib builds them
 * (gmain.c, giounix.c, glib-unix.c: make, set priority, set callback,
 * attach to the default context, drop the creation reference). MAKE makes
 * the source; DEFAULT_PRIORITY is the helper's own. */
static guint add_source(GSource *s, gint priority, GSourceFunc func, gpointer data,
                        GDestroyNotify notify, int once, uintptr_t ra) {
  if (!s || !RESOLVE(g_source_set_priority) || !RESOLVE(g_source_attach) ||
      !RESOLVE(g_source_unref))
    return 0;
  REAL(g_source_set_priority)(s, priority);
  if (set_callback(s, func, data, notify, once, NULL, NULL, ra) != 0) {
    /* out of memory: the plain way, unobserved */
    if (RESOLVE(g_source_set_callback))
      REAL(g_source_set_callback)(s, func, data, notify);
  }
  source_attached(s, NULL, ra); /* first: it may run (and end) at once */
  guint id = REAL(g_source_attach)(s, NULL);
  REAL(g_source_unref)(s);
  return id;
}

#define ADD(fn, ret, params, real_args, type, make, priority, func, data, notify, once)            \
  DECLARE_REAL(fn);                                                                                \
  LOOPSAN_INTERPOSE ret fn params {                                                                \
    if (!RESOLVE(fn))                                                                              \
      return 0;                                                                                    \
    if (!from_program(CALLER) || !(func))                                                          \
      return REAL(fn) real_args;                                                                   \
    GSource *s = make;                                                                             \
    if (!s)                                                                                        \
      return REAL(fn) real_args;                                                                   \
    return add_source(source_made(s, type, CALLER), priority, (GSourceFunc)(void (*)(void))(func), \
                      data, notify, once, CALLER);                                                 \
  }

/* The real constructors, for the helpers: resolved once. */
#define MAKE(fn, args) (RESOLVE(fn) ? REAL(fn) args : NULL)

ADD(g_idle_add, guint, (GSourceFunc f, gpointer d), (f, d), T_IDLE, MAKE(g_idle_source_new, ()),
    G_PRIORITY_DEFAULT_IDLE, f, d, NULL, 0)
ADD(g_idle_add_full, guint, (gint p, GSourceFunc f, gpointer d, GDestroyNotify n), (p, f, d, n),
    T_IDLE, MAKE(g_idle_source_new, ()), p, f, d, n, 0)
ADD(g_idle_add_once, guint, (GSourceOnceFunc f, gpointer d), (f, d), T_IDLE,
    MAKE(g_idle_source_new, ()), G_PRIORITY_DEFAULT_IDLE, f, d, NULL, 1)
ADD(g_timeout_add, guint, (guint i, GSourceFunc f, gpointer d), (i, f, d), T_TIMEOUT,
    MAKE(g_timeout_source_new, (i)), G_PRIORITY_DEFAULT, f, d, NULL, 0)
ADD(g_timeout_add_full, guint, (gint p, guint i, GSourceFunc f, gpointer d, GDestroyNotify n),
    (p, i, f, d, n), T_TIMEOUT, MAKE(g_timeout_source_new, (i)), p, f, d, n, 0)
ADD(g_timeout_add_once, guint, (guint i, GSourceOnceFunc f, gpointer d), (i, f, d), T_TIMEOUT,
    MAKE(g_timeout_source_new, (i)), G_PRIORITY_DEFAULT, f, d, NULL, 1)
ADD(g_timeout_add_seconds, guint, (guint i, GSourceFunc f, gpointer d), (i, f, d), T_TIMEOUT,
    MAKE(g_timeout_source_new_seconds, (i)), G_PRIORITY_DEFAULT, f, d, NULL, 0)
ADD(g_timeout_add_seconds_full, guint,
    (gint p, guint i, GSourceFunc f, gpointer d, GDestroyNotify n), (p, i, f, d, n), T_TIMEOUT,
    MAKE(g_timeout_source_new_seconds, (i)), p, f, d, n, 0)
ADD(g_child_watch_add, guint, (GPid pid, GChildWatchFunc f, gpointer d), (pid, f, d), T_CHILD_WATCH,
    MAKE(g_child_watch_source_new, (pid)), G_PRIORITY_DEFAULT, f, d, NULL, 0)
ADD(g_child_watch_add_full, guint,
    (gint p, GPid pid, GChildWatchFunc f, gpointer d, GDestroyNotify n), (p, pid, f, d, n),
    T_CHILD_WATCH, MAKE(g_child_watch_source_new, (pid)), p, f, d, n, 0)
ADD(g_io_add_watch, guint, (GIOChannel * c, GIOCondition cond, GIOFunc f, gpointer d),
    (c, cond, f, d), T_IO_WATCH, MAKE(g_io_create_watch, (c, cond)), G_PRIORITY_DEFAULT, f, d, NULL,
    0)
ADD(g_io_add_watch_full, guint,
    (GIOChannel * c, gint p, GIOCondition cond, GIOFunc f, gpointer d, GDestroyNotify n),
    (c, p, cond, f, d, n), T_IO_WATCH, MAKE(g_io_create_watch, (c, cond)), p, f, d, n, 0)
ADD(g_unix_fd_add, guint, (gint fd, GIOCondition cond, GUnixFDSourceFunc f, gpointer d),
    (fd, cond, f, d), T_UNIX_FD, MAKE(g_unix_fd_source_new, (fd, cond)), G_PRIORITY_DEFAULT, f, d,
    NULL, 0)
ADD(g_unix_fd_add_full, guint,
    (gint p, gint fd, GIOCondition cond, GUnixFDSourceFunc f, gpointer d, GDestroyNotify n),
    (p, fd, cond, f, d, n), T_UNIX_FD, MAKE(g_unix_fd_source_new, (fd, cond)), p, f, d, n, 0)
ADD(g_unix_signal_add, guint, (gint sig, GSourceFunc f, gpointer d), (sig, f, d), T_UNIX_SIGNAL,
    MAKE(g_unix_signal_source_new, (sig)), G_PRIORITY_DEFAULT, f, d, NULL, 0)
ADD(g_unix_signal_add_full, guint, (gint p, gint sig, GSourceFunc f, gpointer d, GDestroyNotify n),
    (p, sig, f, d, n), T_UNIX_SIGNAL, MAKE(g_unix_signal_source_new, (sig)), p, f, d, n, 0)

LOOPSAN_INTERPOSE void g_source_set_callback(GSource *s, GSourceFunc func, gpointer data,
                                             GDestroyNotify notify) {
  if (!RESOLVE(g_source_set_callback))
    return;
  if (!s || !from_program(CALLER) || loopsan__glib_check_freed(s, "g_source_set_callback") ||
      set_callback(s, func, data, notify, 0, NULL, NULL, CALLER) != 0)
    REAL(g_source_set_callback)(s, func, data, notify);
}

/* A program's own callback object, or a GClosure's (g_source_set_closure
 * and g_source_set_dummy_callback in libgobject come this way): chained. */
LOOPSAN_INTERPOSE void g_source_set_callback_indirect(GSource *s, gpointer data,
                                                      GSourceCallbackFuncs *funcs) {
  if (!RESOLVE(g_source_set_callback_indirect))
    return;
  if (!s || !funcs || funcs == &loopsan_callback_funcs || !from_program(CALLER) ||
      loopsan__glib_check_freed(s, "g_source_set_callback_indirect") ||
      set_callback(s, NULL, NULL, NULL, 0, data, funcs, CALLER) != 0)
    REAL(g_source_set_callback_indirect)(s, data, funcs);
}

/* Recorded before the attach: once attached, another thread running the
 * context may dispatch it and end it at once. */
LOOPSAN_INTERPOSE guint g_source_attach(GSource *s, GMainContext *ctx) {
  if (!RESOLVE(g_source_attach))
    return 0;
  if (!s || !from_program(CALLER))
    return REAL(g_source_attach)(s, ctx);
  if (loopsan__glib_check_freed(s, "g_source_attach"))
    return REAL(g_source_attach)(s, ctx);
  struct loopsan_obj o;
  /* Attached already, or destroyed: GLib refuses it with a critical
   * warning. (A destroyed source's context is not asked for: GLib would
   * warn of that.) */
  int destroyed = RESOLVE(g_source_is_destroyed) && REAL(g_source_is_destroyed)(s);
  if (destroyed || (RESOLVE(g_source_get_context) && REAL(g_source_get_context)(s))) {
    void *known = loopsan__obj_get(s, &o);
    struct loopsan_misuse_detail d = {.type = known ? o.type : LOOPSAN_TYPE_UNKNOWN, .address = s};
    loopsan__record_misuse_ex(known ? o.id : 0, LOOPSAN_LIB_GLIB,
                              destroyed ? LOOPSAN_MISUSE_ATTACH_DESTROYED
                                        : LOOPSAN_MISUSE_ATTACH_TWICE,
                              "g_source_attach", &d);
    return REAL(g_source_attach)(s, ctx);
  }
  source_attached(s, ctx, CALLER);
  guint id = REAL(g_source_attach)(s, ctx);
  if (!id && loopsan__obj_get(s, &o)) /* (refused for a reason of its own) */
    loopsan__record_api_error(o.id, LOOPSAN_LIB_GLIB, "g_source_attach", 0, 0);
  return id;
}

/* A child source is attached with its parent, by GLib (GIO's cancellable
 * and socket sources are made of them). */
DECLARE_REAL(g_source_add_child_source);
LOOPSAN_INTERPOSE void g_source_add_child_source(GSource *parent, GSource *child) {
  if (!RESOLVE(g_source_add_child_source))
    return;
  struct loopsan_obj o;
  if (child && from_program(CALLER) && loopsan__obj_get(child, &o))
    loopsan__record_op(o.id, LOOPSAN_OP_USE, NULL, 0, 0);
  REAL(g_source_add_child_source)(parent, child);
}

/* A source without a callback object of loopsan's ends when the program
 * destroys or frees it; one with ends when it lets go of its callback. */
static void source_ended_by_program(GSource *s) {
  struct loopsan_obj o;
  if (!callback_of(s) && loopsan__obj_take(s, &o) == 0)
    loopsan__record_end(&o, LOOPSAN_OP_CLOSED, NULL, 0, 0);
}

DECLARE_REAL(g_source_destroy);
LOOPSAN_INTERPOSE void g_source_destroy(GSource *s) {
  if (!RESOLVE(g_source_destroy))
    return;
  if (s && from_program(CALLER) && !loopsan__glib_check_freed(s, "g_source_destroy"))
    source_ended_by_program(s);
  REAL(g_source_destroy)(s);
}

LOOPSAN_INTERPOSE void g_source_unref(GSource *s) {
  if (!RESOLVE(g_source_unref))
    return;
  if (s && from_program(CALLER) && !loopsan__glib_check_freed(s, "g_source_unref") &&
      s->ref_count == 1) {
    /* The last reference: GLib frees it now. */
    struct loopsan_obj o;
    if (loopsan__obj_get(s, &o))
      loopsan__glib_source_freed(s, &o, CALLER);
    source_ended_by_program(s);
  }
  REAL(g_source_unref)(s);
}

DECLARE_REAL(g_source_remove);
DECLARE_REAL(g_main_context_find_source_by_id);
LOOPSAN_INTERPOSE gboolean g_source_remove(guint tag) {
  if (!RESOLVE(g_source_remove))
    return FALSE;
  if (tag && from_program(CALLER) && RESOLVE(g_main_context_find_source_by_id)) {
    GSource *s = REAL(g_main_context_find_source_by_id)(NULL, tag);
    if (s)
      source_ended_by_program(s);
  }
  return REAL(g_source_remove)(tag);
}

/* g_main_context_invoke_full, as GLib does it: run now when this thread
 * may, else an idle source on CTX (which loopsan then sees). */
DECLARE_REAL(g_main_context_invoke_full);
DECLARE_REAL(g_main_context_is_owner);
DECLARE_REAL(g_main_context_get_thread_default);
DECLARE_REAL(g_main_context_acquire);
DECLARE_REAL(g_main_context_release);
static void invoke(GMainContext *ctx, gint priority, GSourceFunc func, gpointer data,
                   GDestroyNotify notify, uintptr_t ra) {
  if (!func || !RESOLVE(g_main_context_is_owner) || !RESOLVE(g_main_context_get_thread_default) ||
      !RESOLVE(g_main_context_acquire) || !RESOLVE(g_main_context_release) ||
      !RESOLVE(g_idle_source_new) || !RESOLVE(g_source_attach) || !RESOLVE(g_source_unref) ||
      !RESOLVE(g_source_set_priority) || !RESOLVE(g_main_context_default)) {
    REAL(g_main_context_invoke_full)(ctx, priority, func, data, notify);
    return;
  }
  if (!ctx)
    ctx = REAL(g_main_context_default)();
  if (REAL(g_main_context_is_owner)(ctx)) {
    while (func(data))
      ;
    if (notify)
      notify(data);
    return;
  }
  GMainContext *thread_default = REAL(g_main_context_get_thread_default)();
  if (!thread_default)
    thread_default = REAL(g_main_context_default)();
  if (thread_default == ctx && REAL(g_main_context_acquire)(ctx)) {
    while (func(data))
      ;
    REAL(g_main_context_release)(ctx);
    if (notify)
      notify(data);
    return;
  }
  GSource *s = source_made(REAL(g_idle_source_new)(), T_IDLE, ra);
  REAL(g_source_set_priority)(s, priority);
  if (set_callback(s, func, data, notify, 0, NULL, NULL, ra) != 0)
    REAL(g_source_set_callback)(s, func, data, notify);
  source_attached(s, ctx, ra);
  REAL(g_source_attach)(s, ctx);
  REAL(g_source_unref)(s);
}

LOOPSAN_INTERPOSE void g_main_context_invoke_full(GMainContext *ctx, gint priority,
                                                  GSourceFunc func, gpointer data,
                                                  GDestroyNotify notify) {
  if (!RESOLVE(g_main_context_invoke_full))
    return;
  if (from_program(CALLER))
    invoke(ctx, priority, func, data, notify, CALLER);
  else
    REAL(g_main_context_invoke_full)(ctx, priority, func, data, notify);
}

DECLARE_REAL(g_main_context_invoke);
LOOPSAN_INTERPOSE void g_main_context_invoke(GMainContext *ctx, GSourceFunc func, gpointer data) {
  if (!RESOLVE(g_main_context_invoke))
    return;
  if (from_program(CALLER) && RESOLVE(g_main_context_invoke_full))
    invoke(ctx, G_PRIORITY_DEFAULT, func, data, NULL, CALLER);
  else
    REAL(g_main_context_invoke)(ctx, func, data);
}

/* ---- gobject-introspection ---- */

/* dlsym() on GLib's own handle finds GLib's definition: hand out
 * loopsan's where it interposes the name, as the dynamic linker would for
 * a call the program linked against. */
DECLARE_REAL(g_module_symbol);
LOOPSAN_INTERPOSE gboolean g_module_symbol(GModule *module, const gchar *name, gpointer *symbol) {
  if (!RESOLVE_IN(&gmodule_lib, g_module_symbol))
    return FALSE;
  gboolean ok = REAL(g_module_symbol)(module, name, symbol);
  if (ok && symbol && *symbol && name && loopsan__state.active && strncmp(name, "g_", 2) == 0) {
    void *mine = dlsym(RTLD_DEFAULT, name);
    if (mine && mine != *symbol && loopsan__is_self((uintptr_t)mine))
      *symbol = mine;
  }
  return ok;
}
