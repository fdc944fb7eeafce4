/* What every library adapter (lib_*.c) shares: finding the library's real
 * functions, telling the library's calls to itself from the program's,
 * trampolines, and the object operations in a library's terms. An adapter
 * is then its library's API and nothing else: a table of interposed
 * functions written with these. Internal to the shim. */
#ifndef LOOPSAN_ADAPTER_H
#define LOOPSAN_ADAPTER_H

#include <string.h>

#include "preload/shim.h"

/* ---- the registry (adapters.c): one row per library ---- */
struct loopsan_adapter {
  enum loopsan_library library;
  const struct loopsan_type_desc *types; /* its object types (TYPE records) */
  size_t n_types;
};
/* An adapter's object types come from its X-macro list, TYPES(X) with
 * X(name, "type name", KIND): enum { TYPES(LOOPSAN_TYPE_ENUM) } names
 * them T_name, and LOOPSAN_DEFINE_ADAPTER(var, library, TYPES) makes its
 * registry row. */
#define LOOPSAN_TYPE_ENUM(name, str, kind) T_##name,
#define LOOPSAN_TYPE_DESC(name, str, kind) {0, T_##name, LOOPSAN_OBJ_##kind, str},
#define LOOPSAN_DEFINE_ADAPTER(var, lib, TYPES)                                     \
  static const struct loopsan_type_desc var##_types[] = {TYPES(LOOPSAN_TYPE_DESC)}; \
  const struct loopsan_adapter var = {                                              \
      .library = lib, .types = var##_types, .n_types = sizeof var##_types / sizeof var##_types[0]}
extern const struct loopsan_adapter *const loopsan__adapters[];
extern const size_t loopsan__n_adapters;
/* Describe every adapter's types to the core (at start-up). */
void loopsan__adapters_register(void);

/* ---- real functions ---- */
#define REAL(fn) real_##fn
#define DECLARE_REAL(fn) static __typeof__(fn) *real_##fn
/* Resolve FN in library LIB on first use; NULL only if the library is not
 * loaded at all, which cannot happen for a program that called into it. */
#define RESOLVE_IN(lib, fn)  \
  (LOOPSAN_LIKELY(real_##fn) \
       ? 1                   \
       : ((real_##fn = (__typeof__(fn) *)loopsan__resolve(lib, #fn)) != NULL))

/* ---- trampolines ---- */
/* Trampolines live in a section of their own: a return address inside it
 * belongs to a program callback that tail-called into the library
 * (uv_close() as the last statement of a callback compiles to a jump), so
 * the call is the program's. Any other return address inside the shim is
 * the library tail-calling itself from a call the shim made. */
#define TRAMPOLINE __attribute__((section("loopsan_tramp"), noinline, used))
extern const char __start_loopsan_tramp[] __attribute__((visibility("hidden")));
extern const char __stop_loopsan_tramp[] __attribute__((visibility("hidden")));

/* ---- whose call is it? ---- */
/* A return address inside LIB is LIB calling its own export, unless the
 * instruction before it is an indirect call through a pointer held outside
 * LIB: that is LIB invoking one of the program's callbacks which
 * tail-called the export, and the call is the program's. */
int loopsan__calls_itself(const struct loopsan_library_ref *lib, uintptr_t ra);

/* Is the call into LIB that returns to RA the program's (to be observed),
 * rather than LIB's own or the shim's? */
static inline int loopsan__from_program(const struct loopsan_library_ref *lib, uintptr_t ra) {
  if (!loopsan__state.active)
    return 0;
  if (loopsan__in_range(lib, ra))
    return !loopsan__calls_itself(lib, ra);
  if (!loopsan__is_self(ra))
    return 1;
  return ra >= (uintptr_t)__start_loopsan_tramp && ra < (uintptr_t)__stop_loopsan_tramp;
}
#define CALLER ((uintptr_t)__builtin_return_address(0))

/* ---- objects in a library's terms (adapter.c) ---- */
/* The id of the loop object at LOOP (0: not tracked), cached per thread:
 * handles are created in bursts on one loop. */
uint64_t loopsan__loop_id(const void *loop);
/* LOOP was made (or first handed out): its address may be a freed loop's. */
void loopsan__loop_new(const void *loop, uint8_t library, uint8_t type, uint32_t flags);
/* LOOP is gone: forget its cached id. */
void loopsan__loop_forget(const void *loop);
/* The program closed (destroyed, freed) LOOP: it ends, with the stack of
 * the call. FROM_PROGRAM: whether the call was the program's. */
void loopsan__loop_closed(const void *loop, int from_program);
/* The program runs LOOP (MODE: the library's run flags): its first run is
 * recorded. */
void loopsan__loop_run(const void *loop, int mode);
/* This thread runs LOOP from now until loopsan__loop_leave: its owner,
 * for wrong-thread, and its waits are the adapter's, not the generic
 * layer's (loopsan__adapter_loops). SAVED keeps the loop it ran before. */
void loopsan__loop_enter(const void *loop, const void **saved);
void loopsan__loop_leave(const void *loop, const void *saved);
/* A run of a loop, left even when a callback's C++ exception unwinds
 * through it (see LOOPSAN_DISPATCH): LOOPSAN_LOOP_RUN(r, loop) enters,
 * LOOPSAN_LOOP_DONE(r) leaves on the normal path. */
struct loopsan_loop_run {
  const void *loop, *outer;
};
static inline void loopsan__loop_run_unwind(struct loopsan_loop_run *r) {
  if (LOOPSAN_UNLIKELY(r->loop != NULL))
    loopsan__loop_leave(r->loop, r->outer);
}
#define LOOPSAN_LOOP_RUN(r, l)                                                                \
  struct loopsan_loop_run r __attribute__((cleanup(loopsan__loop_run_unwind))) = {(l), NULL}; \
  loopsan__loop_enter((l), &r.outer)
#define LOOPSAN_LOOP_DONE(r)              \
  do {                                    \
    loopsan__loop_leave(r.loop, r.outer); \
    r.loop = NULL;                        \
  } while (0)
/* The program calls FN, which is not thread-safe, on object H (NULL: the
 * loop itself) of LOOP: a WRONG_THREAD record when LOOP is running on
 * another thread (returns 1 then). Cheap when LOOP is the one this thread
 * runs. */
int loopsan__check_thread_slow(const void *loop, const void *h, uint8_t library, const char *fn);
extern LOOPSAN_TLS const void *loopsan__my_loop; /* the innermost loop this thread runs */
extern _Atomic unsigned loopsan__running_loops;  /* how many loops some thread runs now */
/* (Inline: a call per uv_* function costs more than the usual answer.) */
static inline int loopsan__check_thread(const void *loop, const void *h, uint8_t library,
                                        const char *fn) {
  if (LOOPSAN_LIKELY(!loop || loop == loopsan__my_loop ||
                     !atomic_load_explicit(&loopsan__running_loops, memory_order_relaxed)))
    return 0;
  return loopsan__check_thread_slow(loop, h, library, fn);
}
/* ---- objects gone (closed, freed), for a misuse that comes after ----
 * The last objects that ended at the program's hand, by address, with
 * their id, type and the call site that ended them (direct-mapped: a newer
 * one takes an older one's slot). Read only when a call finds no object
 * in the table, never on the common path; two threads racing on one slot
 * can only lose a report. */
struct loopsan_gone {
  _Atomic uintptr_t addr; /* 0: free; set last */
  uint64_t id;
  uintptr_t site; /* where the call that ended it was made (a return address) */
  uint8_t type;
  _Atomic uint8_t done; /* ended for good (libuv: its close completed) */
};
#define LOOPSAN_GONE_SLOT(ring, addr) \
  (&(ring)[((uintptr_t)(addr) >> 4) % (sizeof(ring) / sizeof((ring)[0]))])

static inline void loopsan__gone_put(struct loopsan_gone *g, const void *addr,
                                     const struct loopsan_obj *o, uintptr_t site, int done) {
  atomic_store(&g->addr, 0);
  g->id = o->id;
  g->site = site;
  g->type = o->type;
  atomic_store(&g->done, (uint8_t)done);
  atomic_store(&g->addr, (uintptr_t)addr);
}

/* The entry of ADDR if it is there and ended for good, else NULL. */
static inline struct loopsan_gone *loopsan__gone_find(struct loopsan_gone *g, const void *addr) {
  return atomic_load(&g->addr) == (uintptr_t)addr && atomic_load(&g->done) ? g : NULL;
}

/* A misuse WHAT of LIBRARY: the call FN on ADDR, which G says is gone. */
static inline void loopsan__gone_misuse(const struct loopsan_gone *g, const void *addr,
                                        uint8_t library, uint32_t what, const char *fn) {
  struct loopsan_misuse_detail d = {
      .cause = loopsan__stack_of_call_site(g->site), .type = g->type, .address = addr};
  loopsan__record_misuse_ex(g->id, library, what, fn, &d);
}

/* Does a thread other than this one run LOOP? */
int loopsan__loop_running_elsewhere(const void *loop);
/* A handle (or watcher, event, source) H of TYPE on LOOP came to life. */
void loopsan__handle_new(const void *h, uint8_t library, uint8_t type, const void *loop);
/* The program used H in a way that counts as starting it. */
void loopsan__handle_used(const void *h);
/* The same, returning H's loop's id (0: H is not tracked): one lookup
 * for a request on a stream, which needs both. */
uint64_t loopsan__handle_used_loop(const void *h);
/* Arm callback SLOT of H with CB (NULL is a legal callback): returns H's
 * reference, or NULL when H is not tracked (pass CB through). TRAMP tells
 * a program that passes back the trampoline it read from the handle from
 * a new callback. */
void *loopsan__handle_arm(const void *h, int slot, void *cb, void *tramp);
/* The start that armed H returned RC: a START (FLAGS: LOOPSAN_START_*), or
 * a failed call FN. */
void loopsan__handle_started(void *ref, const void *h, int rc, const char *fn, uint32_t flags);
/* A request with callback CB begins: its reference (pass the library the
 * trampoline), or NULL when it is not tracked (pass CB through). */
void *loopsan__request_begin(const void *req, uint8_t library, uint8_t type, uint64_t loop,
                             void *cb);
/* The library accepted (RC 0) or refused the request. */
void loopsan__request_submitted(void *ref, const void *req, int rc, const char *fn);

#endif
