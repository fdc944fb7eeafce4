/* The shim's internal interface: what library adapters (lib_*.c) may use of
 * the core (init.c, writer.c, stacks.c, objects.c, resolve.c, clock.h).
 * Adapters translate a library's calls into generic object operations and
 * callback dispatches; the core records them. Nothing here is exported from
 * libloopsan.so: the shim is built with -fvisibility=hidden and only
 * LOOPSAN_INTERPOSE functions are visible. */
#ifndef LOOPSAN_SHIM_H
#define LOOPSAN_SHIM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/options.h"
#include "common/trace_format.h"
#include "preload/clock.h"

/* The core's globals are hidden in fact (-fvisibility=hidden), but only
 * declarations that say so are read in one instruction instead of two
 * (the address, then the value). No system header below this line. */
#pragma GCC visibility push(hidden)

#define LOOPSAN_INTERPOSE __attribute__((visibility("default")))
#define LOOPSAN_TLS __thread __attribute__((tls_model("initial-exec")))
#define LOOPSAN_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LOOPSAN_LIKELY(x) __builtin_expect(!!(x), 1)

/* ---- what every dispatch reads and writes of its thread's own ----
 * One thread-local block: its address is computed once on each side of a
 * callback, not once a variable (each a load from the GOT). */
struct loopsan_obj_slot;
struct loopsan_hist_slot;
struct loopsan_spill_header;
/* The objects the thread dispatched last, by address: a loop dispatches
 * the same few handles over and over, and an entry still holds while its
 * slot's sequence counter is unchanged, since every change to a slot
 * (put, take, a new callback) moves it on. That is one compare and one
 * load of the slot against the lookup's hash, probe and seqlock. (The
 * state is read from the slot: its bits change without the counter.) A
 * counter that went round 2^31 times while its entry stayed is not
 * guarded against. */
struct loopsan_obj_seen {
  uintptr_t key; /* LOOPSAN_OBJ_SEEN_KEY; LOOPSAN_OBJ_SEEN_FILLING while filled */
  struct loopsan_obj_slot *slot;
  uint64_t id;
  void *cb;
  uint32_t seq;
  uint32_t pad[7];
};
#define LOOPSAN_OBJ_SEEN 8u
_Static_assert(sizeof(struct loopsan_obj_seen) == 64, "an entry's offset is 64 x its index");
#define LOOPSAN_OBJ_SEEN_MASK ((uintptr_t)(LOOPSAN_OBJ_SEEN - 1) << 6)
/* The address with its callback slot in the low bits (objects are 8-byte
 * aligned). An entry never filled has key 0, as address 0's would be, but
 * its slot is loopsan__obj_no_slot, whose counter (odd) matches no
 * entry's; one being filled has a key no address has. */
#define LOOPSAN_OBJ_SEEN_KEY(addr, cb_slot) ((addr) | (uintptr_t)(cb_slot))
#define LOOPSAN_OBJ_SEEN_FILLING UINTPTR_MAX
extern const struct loopsan_obj_slot loopsan__obj_no_slot;

/* The thread's histogram sites counted last, by callback address (a loop
 * dispatches a few callbacks in turn: most find theirs at one compare).
 * An empty entry points at a slot no callback matches, not at NULL: one
 * test less. */
#define LOOPSAN_HIST_CACHE 8u
struct loopsan_thread_hot {
  _Alignas(64) struct loopsan_obj_seen obj_seen[LOOPSAN_OBJ_SEEN]; /* objects.h */
  /* The thread's spill header (NULL until its first record). */
  struct loopsan_spill_header *region;
  /* The clock when the thread's last dispatch ended. */
  uint64_t last_end;
  int seen_filling; /* a fill in progress: a signal handler's does not cache */
  /* An adapter loop's waits' credit (loopsan__wait_take_credit), and
   * what was left of it when the thread left its last adapter loop (0
   * once the generic layer's iteration opened). */
  int64_t wait_credit, credit_aside;
  /* Where on the stack each dispatch in progress began: a dispatch whose
   * frame is not on the stack the thread runs on now is suspended (a
   * greenlet switched away from inside a callback), not running. */
  uintptr_t dispatch_frame[LOOPSAN_INFLIGHT_MAX];
  struct loopsan_hist_slot *hist_cache[LOOPSAN_HIST_CACHE]; /* histograms.c */
};
extern LOOPSAN_TLS struct loopsan_thread_hot loopsan__hot;
extern struct loopsan_hist_slot loopsan__hist_no_site; /* matches no callback */

/* ---- init.c: global state ---- */
struct loopsan_shim_state {
  int active; /* 0: pass everything through (setuid, bad options, init failed) */
  uint32_t pid;
  struct loopsan_options opts;
  uint64_t slow_ticks;     /* opts.slow_ms in clock ticks; 0 records every dispatch */
  uint64_t blocking_ticks; /* opts.blocking_ms in clock ticks */
  int record_all;
};
extern struct loopsan_shim_state loopsan__state;

/* The shim's descriptors (trace, spill files, libunwind's pipe) live at or
 * above this number, clear of the ones programs expect. */
#define LOOPSAN_HIGH_FD_MIN 1000
/* Move FD there (close-on-exec); returns the fd to keep (FD itself if it
 * could not be moved). tracefile.c */
int loopsan__fd_move_high(int fd);

/* Is ADDR inside the shim itself? (its own frames, its own calls) */
int loopsan__is_self(uintptr_t addr);
/* Current kernel thread id, cached per thread. */
uint32_t loopsan__tid(void);

/* ---- writer.c: per-thread buffers, chunks, the trace file ---- */
int loopsan__writer_open(void); /* create this process's trace file */
void loopsan__writer_close(uint32_t how, int status);
void loopsan__writer_atfork_child(void); /* drop the parent's file and buffers */
/* Append one record (size a multiple of 8, header filled in by caller except
 * size/type which emit sets) to the calling thread's buffer. Never blocks on
 * other threads' events; may write(2) when the buffer is full. */
void loopsan__emit(uint16_t type, void *rec, size_t size);
/* Like emit, with a variable-length tail (strings, addresses) appended and
 * the total padded to 8 bytes. */
void loopsan__emit_tail(uint16_t type, void *rec, size_t size, const void *tail1, size_t len1,
                        const void *tail2, size_t len2);
void loopsan__flush_all(void);
/* Is this thread inside the writer (a signal handler must not write)? */
int loopsan__writer_busy(void);
/* libc_signals.c: the fatal signals' handler (crash records). */
void loopsan__signals_resolve(void);
void loopsan__signals_init(void);
/* Callbacks dispatched so far, per library, summed over every thread. */
void loopsan__writer_dispatch_totals(uint64_t totals[LOOPSAN_LIBRARY_SLOTS]);
/* The calling thread is about to block in the kernel for TIMEOUT_MS (-1:
 * indefinitely). Writes buffered records out when they would otherwise wait
 * too long: before an indefinite or long wait, or when the last write-out
 * is a second old. This, not a helper thread, is what bounds the loss on
 * SIGKILL to about a second. */
void loopsan__before_wait(int timeout_ms);
/* What the wait wrappers call: a busy loop waits with short timeouts
 * thousands of times a second, so only every 64th short wait, or a
 * second's worth of their timeouts, looks any further (a few instructions
 * otherwise: loopsan__wait_unchecked says 1); a long or indefinite wait
 * does unless a callback just ended, well within the second. */
extern LOOPSAN_TLS uint32_t loopsan__waits_unchecked, loopsan__wait_budget_ms;
extern LOOPSAN_TLS uint64_t loopsan__wait_seen_end, loopsan__wait_due;
/* A long wait too, when a callback ended since the last wait, before the
 * thread's next write-out is due: what loopsan__before_wait would find,
 * from two thread-local compares instead of a call. (When none ended, the
 * time is unknown: it asks the clock.) */
static inline int loopsan__wait_after_callback(void) {
  uint64_t end = loopsan__hot.last_end;
  if (end != loopsan__wait_seen_end && end < loopsan__wait_due) {
    loopsan__wait_seen_end = end;
    return 1;
  }
  return 0;
}
static inline int loopsan__wait_unchecked(int timeout_ms) {
  if (timeout_ms >= 0 && timeout_ms < 1000) {
    loopsan__wait_budget_ms += (uint32_t)timeout_ms;
    if ((++loopsan__waits_unchecked & 63u) && loopsan__wait_budget_ms < 1000)
      return 1;
  }
  return loopsan__wait_after_callback();
}
static inline void loopsan__before_wait_maybe(int timeout_ms) {
  if (!loopsan__wait_unchecked(timeout_ms))
    loopsan__before_wait(timeout_ms);
}
void loopsan__note_lost(uint32_t reason, uint64_t count);
/* A DISPATCH record, written short where trace_format.h allows. */
struct loopsan_rec_dispatch;
void loopsan__emit_dispatch(struct loopsan_rec_dispatch *r);

/* ---- modules.c ---- */
void loopsan__modules_emit_if_changed(int force);
struct dl_phdr_info;
/* [*lo, *hi): the runtime range of a loaded object's PT_LOAD segments;
 * returns 0 when it has none. */
int loopsan__object_range(const struct dl_phdr_info *info, uintptr_t *lo, uintptr_t *hi);

/* ---- stacks.c: capture + dedupe; returns a stack id (0: none) ---- */
uint32_t loopsan__stack_capture(void);
/* The same, with FUNCTION as the innermost frame: a call in progress (a
 * blocking libc call, once it returned). */
uint32_t loopsan__stack_capture_in(const void *function);
/* A one-frame stack: the call site RA, without unwinding (a few dozen
 * instructions, for events too frequent for a full capture). */
uint32_t loopsan__stack_of_caller(uintptr_t ra);
/* The same, with the function that tail-called the API (if one did) on
 * top: dearer (a lookup per call site), for a misuse's cause. */
uint32_t loopsan__stack_of_call_site(uintptr_t ra);
/* The stack a signal interrupted, from its handler's UCONTEXT. */
uint32_t loopsan__stack_capture_signal(void *ucontext);
void loopsan__stacks_atfork_child(void);
/* writer.c: the calling thread's stack-reuse cache (zeroed when a thread
 * takes over a dead one's buffer), or NULL before it has a buffer. */
#define LOOPSAN_STACK_REUSE_BYTES (2u * 4096u)
void *loopsan__stack_reuse_area(void);
/* How many of this thread's captures reused a stack (stacks.c). */
extern LOOPSAN_TLS uint64_t loopsan__stack_reuses;

/* ---- objects.c: address -> object, lock-free for readers ---- */
enum loopsan_cb_slot {
  LOOPSAN_SLOT_MAIN = 0, /* the callback the object exists for */
  LOOPSAN_SLOT_ALLOC = 1,
  LOOPSAN_SLOT_CLOSE = 2,
  LOOPSAN_SLOT_AUX = 3,
  LOOPSAN_SLOTS
};

enum loopsan_obj_state_flags {
  LOOPSAN_STATE_FIRED = 1u << 0, /* dispatched since the last start */
  LOOPSAN_STATE_RAN = 1u << 1,   /* loop: uv_run seen */
  LOOPSAN_STATE_USED = 1u << 2,  /* started or otherwise put to work */
  LOOPSAN_STATE_ADDED = 1u << 3, /* libevent: added, not deleted since */
};

struct loopsan_obj {
  uint64_t id;
  uint64_t loop;
  void *cb[LOOPSAN_SLOTS];
  uint8_t library;
  uint8_t type;
  uint16_t state; /* loopsan_obj_state_flags */
};

/* Insert or replace ADDR's object (KEEP_CALLBACKS: a replaced object's
 * callbacks stay, since the library may still call them). Returns a
 * reference for later updates, or NULL when the table is full. */
/* REPLACED (if not NULL): the object that was at ADDR (its id 0: none). */
void *loopsan__obj_put(const void *addr, const struct loopsan_obj *obj, int keep_callbacks,
                       struct loopsan_obj *replaced);
/* Copy the object behind REF (from put/get of ADDR) into *out; 0 if it is
 * no longer ADDR's. */
int loopsan__obj_read(void *ref, const void *addr, struct loopsan_obj *out);
/* Is REF still the object ADDR with id ID (a few loads: no copy)? */
int loopsan__obj_is(void *ref, const void *addr, uint64_t id);
/* Copy ADDR's object into *out; returns its reference or NULL. */
void *loopsan__obj_get(const void *addr, struct loopsan_obj *out);
#include "preload/objects.h"
/* Remove ADDR's object, copying it into *out first; 0 or -1 if absent. */
int loopsan__obj_take(const void *addr, struct loopsan_obj *out);
/* Set callback SLOT of the object behind REF (owner thread only). */
void loopsan__obj_set_cb(void *ref, int slot, void *cb);
/* Atomically set state bits; returns the bits that were already set. */
uint16_t loopsan__obj_state_set(void *ref, uint16_t bits);
void loopsan__obj_state_clear(void *ref, uint16_t bits);
/* Both at once: set SET, clear CLEAR. */
void loopsan__obj_state_change(void *ref, uint16_t set, uint16_t clear);
uint64_t loopsan__obj_new_id(void);

/* ---- generic operations adapters call (events.c) ---- */
/* A new object. Captures the creation stack. Returns its id (0: not tracked). */
/* The same, saying in REPLACED what was at ADDR (its id 0: nothing). */
uint64_t loopsan__record_new_replacing(const void *addr, uint8_t library, uint8_t type,
                                       uint64_t loop, uint32_t flags, void **ref_out,
                                       struct loopsan_obj *replaced);
/* (Inline: a frame more would be a frame more to unwind at every creation.) */
static inline uint64_t loopsan__record_new(const void *addr, uint8_t library, uint8_t type,
                                           uint64_t loop, uint32_t flags, void **ref_out) {
  return loopsan__record_new_replacing(addr, library, type, loop, flags, ref_out, NULL);
}
/* WITH_STACK: 0 none, 1 capture the stack, or a stack id above 1 to use
 * (a call site from loopsan__stack_of_caller). */
void loopsan__record_op(uint64_t obj, uint32_t op, const void *cb, uint32_t arg, int with_stack);
/* A call failed; FLAGS: enum loopsan_api_error_flags. */
void loopsan__record_api_error(uint64_t obj, uint8_t library, const char *function, int result,
                               uint32_t flags);
/* The program called FN on OBJ where the library forbids it (WHAT: enum
 * loopsan_misuse): recorded, and every buffer written out, before the
 * library gets the call (it may abort). */
void loopsan__record_misuse(uint64_t obj, uint8_t library, uint32_t what, const char *fn);
/* The same with the cause's stack (0: in OBJ's records), OBJ's TYPE
 * (LOOPSAN_TYPE_UNKNOWN) and WHAT's arguments. */
struct loopsan_misuse_detail {
  uint32_t cause;
  uint16_t type;
  int32_t arg, arg2;
  const void *address;
};
void loopsan__record_misuse_ex(uint64_t obj, uint8_t library, uint32_t what, const char *fn,
                               const struct loopsan_misuse_detail *d);
/* Describe a (library, type) once at start-up: the TYPE record. */
struct loopsan_type_desc {
  uint8_t library;
  uint8_t type;
  uint8_t kind; /* enum loopsan_object_kind */
  const char *name;
};
/* LIBRARY's types (their own library field is ignored). */
void loopsan__register_types(uint8_t library, const struct loopsan_type_desc *types, size_t n);
void loopsan__emit_types(void);
/* Object O (from the table) is gone for good: closed, freed or completed.
 * Records OP (LOOPSAN_OP_CLOSED or LOOPSAN_OP_COMPLETE) and counts it. */
void loopsan__record_end(const struct loopsan_obj *o, uint32_t op, const void *cb, int32_t arg,
                         int with_stack);
/* The COUNTS record: what was observed so far (writer.c sums the dispatch
 * counts of every thread's buffer). */
void loopsan__emit_counts(void);
void loopsan__events_atfork_child(void);

/* Dispatch timing: the only code on every callback's path: two clock
 * reads, a compare, and the dispatch published in the thread's spill
 * header (a few stores into memory the thread already owns), so that a
 * callback that never returns is still known after exit or SIGKILL. (No
 * helper thread: a second thread alone makes every epoll_wait of the
 * program slower, see docs/architecture.md.) */
/* (a dispatch that begins and ends in different functions: its object is
 * where it was published, loopsan__dispatch_obj) */
struct loopsan_dispatch {
  uint64_t t0;
  const void *cb;
  uint32_t slot;
  uint32_t library;
  struct loopsan_spill_header *region; /* where it is published */
};

/* Give the calling thread its buffer; its spill header, or NULL. */
struct loopsan_spill_header *loopsan__region_for_thread(void);
/* The same, or (no buffer) a header of the thread's own that nothing
 * reads, so that the dispatch path needs no test for NULL. */
__attribute__((returns_nonnull)) struct loopsan_spill_header *loopsan__region_or_scratch(void);

/* A dispatch begins (at *T0_OUT, read with the clock TSC says): publish it
 * in H (the thread's spill header, made if need be, else a scratch one);
 * returns H, for loopsan__dispatch_leave. Everything a
 * dispatch needs is passed by value and kept in the caller's registers
 * (a struct whose address escaped was stored and reloaded around every
 * callback). */
static inline __attribute__((always_inline)) struct loopsan_spill_header *
loopsan__dispatch_enter_with(int tsc, uint64_t *t0_out, uint64_t obj, const void *cb, uint32_t slot,
                             uint32_t library) {
  struct loopsan_spill_header *h = loopsan__hot.region;
  if (LOOPSAN_UNLIKELY(!h))
    h = loopsan__region_or_scratch();
  uint32_t depth = h->depth;
  struct loopsan_inflight *e = NULL;
  if (LOOPSAN_LIKELY(depth < LOOPSAN_INFLIGHT_MAX)) {
    /* (what the lookup found first, so that it need not outlive the
     * clock read in a register) */
    e = &h->inflight[depth];
    e->obj = obj;
    e->cb = (uintptr_t)cb;
    e->slot = slot;
    e->library = library;
    loopsan__hot.dispatch_frame[depth] = (uintptr_t)__builtin_frame_address(0);
  }
  uint64_t t0 = loopsan__now_with(tsc);
  if (LOOPSAN_LIKELY(e != NULL))
    e->t0 = t0;
  *t0_out = t0;
  __atomic_store_n(&h->depth, depth + 1, __ATOMIC_RELEASE);
  h->dispatches[library]++;
  return h;
}

/* A dispatch's end, out of line: a slow one's DISPATCH record. The
 * object is not kept in a register across the callback for these rare
 * cases: loopsan__dispatch_obj finds it where the dispatch was published
 * (H's entry that began at T0 with CB; 0 if none does). */
uint64_t loopsan__dispatch_obj(const struct loopsan_spill_header *h, uint64_t t0, const void *cb);
void loopsan__dispatch_slow(const struct loopsan_spill_header *h, uint64_t t0, const void *cb,
                            uint32_t slot, uint64_t duration);
/* histograms.c: one more dispatch of CB (SLOT, LIBRARY) that took DT ticks.
 * Inline: the thread's recent sites at one compare, else a lookup. */
/* A bucket for every log2 of a 64-bit duration, so that counting needs no
 * clamp, and no count of its own: the buckets add up to it (both are
 * folded into the record's form when written). */
#define LOOPSAN_HIST_LOG2_BUCKETS 64
struct loopsan_hist_slot {
  uint64_t cb; /* 0: free */
  uint64_t total, max;
  uint16_t library, slot;
  uint32_t buckets[LOOPSAN_HIST_LOG2_BUCKETS];
};
static inline unsigned loopsan__hist_cache_index(const void *cb) {
  return (unsigned)((uintptr_t)cb >> 4) & (LOOPSAN_HIST_CACHE - 1);
}
/* (H, T0: the dispatch, for its object: loopsan__dispatch_obj) */
void loopsan__hist_add_slow(const void *cb, uint32_t slot, uint32_t library, uint64_t dt,
                            const struct loopsan_spill_header *h, uint64_t t0);
static inline void loopsan__hist_count(struct loopsan_hist_slot *s, uint64_t dt) {
  s->total += dt;
  if (LOOPSAN_UNLIKELY(dt > s->max))
    s->max = dt;
  s->buckets[63u - (unsigned)__builtin_clzll(dt | 1)]++;
}
static inline void loopsan__hist_add(const void *cb, uint32_t slot, uint32_t library, uint64_t dt,
                                     const struct loopsan_spill_header *h, uint64_t t0) {
  struct loopsan_hist_slot *s = loopsan__hot.hist_cache[loopsan__hist_cache_index(cb)];
  if (LOOPSAN_LIKELY(s->cb == (uint64_t)(uintptr_t)cb))
    loopsan__hist_count(s, dt);
  else
    loopsan__hist_add_slow(cb, slot, library, dt, h, t0);
}
/* Write out the counts: the calling thread's (periodic), all (the end),
 * the exiting thread's; forget the parent's in a forked child. */
void loopsan__hist_flush_mine(void);
int loopsan__hist_dirty(void);
void loopsan__hist_flush_all(void);
void loopsan__hist_thread_exit(void);
void loopsan__hist_atfork_child(void);

/* The clock when the thread's last dispatch ended: a wait right after one
 * asks whether a second has passed without reading the clock again (a
 * clock read costs more than all the rest of the check on these VMs). */
/* One store that readers elsewhere (the crash handler, the exit path of
 * another thread) see whole: on x86-64 a single read-modify-write of the
 * aligned word, not a load, a subtraction and a store. */
static inline void loopsan__depth_down(struct loopsan_spill_header *h) {
#if defined(__x86_64__)
  __asm__ __volatile__("subl $1, %0" : "+m"(h->depth));
#else
  __atomic_store_n(&h->depth, h->depth - 1, __ATOMIC_RELEASE);
#endif
}
static inline __attribute__((always_inline)) void
loopsan__dispatch_leave_with(int tsc, struct loopsan_spill_header *h, uint64_t t0, const void *cb,
                             uint32_t slot, uint32_t library) {
  uint64_t end = loopsan__now_with(tsc);
  loopsan__hot.last_end = end;
  uint64_t dt = end - t0;
  loopsan__depth_down(h);
  if (!LOOPSAN_IS_ITERATION(slot)) /* (no callback site: not counted; a constant in trampolines) */
    loopsan__hist_add(cb, slot, library, dt, h, t0);
  if (LOOPSAN_UNLIKELY(dt >= loopsan__state.slow_ticks)) /* 0 in record mode "all" */
    loopsan__dispatch_slow(h, t0, cb, slot, dt);
}
static inline __attribute__((always_inline)) void
loopsan__dispatch_leave(struct loopsan_spill_header *h, uint64_t t0, const void *cb, uint32_t slot,
                        uint32_t library) {
  loopsan__dispatch_leave_with(loopsan__clock_use_tsc, h, t0, cb, slot, library);
}

/* A callback that throws (a C++ exception unwinding through the loop's C
 * frames and ours to a catch around the loop's run) skips the end of its
 * dispatch: this cleanup ends it as the exception goes by, or it would be
 * taken for a callback that never returned. The shim is built with
 * -fexceptions; on the normal path the compiler sees the variable cleared
 * and drops the check. Only a flag is the cleanup's (the rest stays in
 * registers); the trampoline's frame tells the dispatch, as published
 * (those above it were abandoned as well). */
void loopsan__dispatch_unwound(uintptr_t frame);
static inline __attribute__((always_inline)) void
loopsan__dispatch_unwind_flag(const unsigned char *open) {
  if (LOOPSAN_UNLIKELY(*open)) /* (inlined: the trampoline's own frame) */
    loopsan__dispatch_unwound((uintptr_t)__builtin_frame_address(0));
}
/* Time the call CALL as a dispatch of CB (object OBJ, SLOT, LIBRARY). The
 * clock is chosen once, outside: CALL is compiled twice, for each clock. */
#define LOOPSAN_TIMED_CALL_WITH_(tsc, obj, cb, slot, library, call)                             \
  do {                                                                                          \
    unsigned char loopsan_open_ __attribute__((cleanup(loopsan__dispatch_unwind_flag))) = 1;    \
    uint64_t loopsan_obj_ = (obj);                                                              \
    const void *loopsan_cb_ = (cb);                                                             \
    uint64_t loopsan_t0_;                                                                       \
    struct loopsan_spill_header *loopsan_h_ = loopsan__dispatch_enter_with(                     \
        tsc, &loopsan_t0_, loopsan_obj_, loopsan_cb_, (slot), (library));                       \
    call;                                                                                       \
    loopsan__dispatch_leave_with(tsc, loopsan_h_, loopsan_t0_, loopsan_cb_, (slot), (library)); \
    loopsan_open_ = 0;                                                                          \
  } while (0)
/* The same for an object the trampolines' lookup found (O): one found in
 * the thread's cache says the clock is the TSC without asking. */
#define LOOPSAN_TIMED_CALL_FOUND(o, slot, library, call)                \
  do {                                                                  \
    if (LOOPSAN_LIKELY((o).tsc || loopsan__clock_use_tsc))              \
      LOOPSAN_TIMED_CALL_WITH_(1, (o).id, (o).cb, slot, library, call); \
    else                                                                \
      LOOPSAN_TIMED_CALL_WITH_(0, (o).id, (o).cb, slot, library, call); \
  } while (0)
#define LOOPSAN_TIMED_CALL(obj, cb, slot, library, call)         \
  do {                                                           \
    if (LOOPSAN_LIKELY(loopsan__clock_use_tsc))                  \
      LOOPSAN_TIMED_CALL_WITH_(1, obj, cb, slot, library, call); \
    else                                                         \
      LOOPSAN_TIMED_CALL_WITH_(0, obj, cb, slot, library, call); \
  } while (0)

/* The same for a dispatch that begins and ends in different functions (a
 * GLib source's dispatch, the generic layer's iteration): D holds it. */
static inline void loopsan__dispatch_begin(struct loopsan_dispatch *d, uint64_t obj, const void *cb,
                                           uint32_t slot, uint32_t library) {
  d->cb = cb;
  d->slot = slot;
  d->library = library;
  uint64_t t0;
  d->region = loopsan__dispatch_enter_with(loopsan__clock_use_tsc, &t0, obj, cb, slot, library);
  d->t0 = t0;
}
static inline void loopsan__dispatch_end(struct loopsan_dispatch *d) {
  loopsan__dispatch_leave(d->region, d->t0, d->cb, d->slot, d->library);
}

/* ---- libc_wait.c: the generic layer ---- */
/* How many adapter loops (uv_run, ev_run, event_base_loop, ...) the thread
 * is running: while it runs one, its waits are its adapter's business. */
extern LOOPSAN_TLS unsigned loopsan__adapter_loops;
/* An adapter loop's wait skips every check while its thread has credit:
 * one thread-local subtraction. A wait of T ms costs 8 T + 125, so the
 * credit the full check grants (8,000) lasts 64 waits, or a second's
 * worth of their timeouts; an indefinite wait (-1, as unsigned) or a long
 * one costs more than any credit. (A credit renewed right after a callback
 * that ended just before the write-out was due lets that write-out wait
 * as long again: 64 waits or about a second more; never past a wait
 * that may block for good.) Out of every adapter loop the thread
 * has none (its next wait may be the generic layer's): the credit is put
 * aside when it leaves the last and given back when it enters one again
 * (a program that iterates GLib by hand enters and leaves at every
 * iteration), unless the generic layer's iteration opened meanwhile. */
#define LOOPSAN_WAIT_CREDIT 8000
static inline int loopsan__wait_take_credit(int timeout_ms) {
  int64_t c = loopsan__hot.wait_credit - (int64_t)((uint64_t)(uint32_t)timeout_ms * 8 + 125);
  if (LOOPSAN_LIKELY(c >= 0)) {
    loopsan__hot.wait_credit = c;
    return 1;
  }
  return 0;
}
static inline void loopsan__adapter_loop_entered(void) {
  if (loopsan__adapter_loops++ == 0)
    loopsan__hot.wait_credit = loopsan__hot.credit_aside;
}
static inline void loopsan__adapter_loop_left(void) {
  if (--loopsan__adapter_loops == 0) {
    loopsan__hot.credit_aside = loopsan__hot.wait_credit;
    loopsan__hot.wait_credit = 0;
  }
}
/* A blocking call R (NAME) made in the generic layer's iteration in
 * progress: written when the iteration ends at its loop's next wait,
 * forgotten if it never does (the loop had ended). */
struct loopsan_rec_blocking;
void loopsan__generic_hold(const struct loopsan_rec_blocking *r, const char *name);

/* ---- libc_blocking.c: blocking calls inside callbacks ---- */
/* Is the calling thread inside a loop callback? One thread-local load (and
 * one more in a thread that has recorded anything): all that a blocking
 * libc call costs outside callbacks. */
static inline int loopsan__in_callback(void) {
  const struct loopsan_spill_header *h = loopsan__hot.region;
  return h && h->depth;
}
/* Is the innermost dispatch a whole iteration of a loop without an adapter
 * (the generic layer)? A descriptor read there was ready (its loop polled
 * it), so it is no blocking call: not even timed. */
static inline int loopsan__in_iteration(void) {
  const struct loopsan_spill_header *h = loopsan__hot.region;
  uint32_t depth = h ? h->depth : 0;
  return depth && depth <= LOOPSAN_INFLIGHT_MAX &&
         LOOPSAN_IS_ITERATION(h->inflight[depth - 1].slot);
}
/* A call NAME (the libc function REAL) that began at T0 (clock ticks) has
 * returned to RA: recorded when it lasted blocking_ms or more and was not
 * the shim's own, with REAL as the innermost frame of its stack. Keeps
 * errno. */
void loopsan__blocked(const char *name, uint64_t t0, uintptr_t ra, const void *real);
/* Resolve the real blocking calls up front (init.c, first thing). */
void loopsan__blocking_init(void);
/* Around a libc call that may block: timed only inside a callback. */
#define LOOPSAN_BLOCKING_BEGIN() \
  uint64_t loopsan_blk_t0_ = loopsan__in_callback() ? loopsan__now() : 0
/* Did a call timed from T0 (not 0) last long enough to be looked at? The
 * common answer, no, without a call. */
static inline int loopsan__blocked_long(uint64_t t0) {
  return t0 && LOOPSAN_UNLIKELY(loopsan__now() - t0 >= loopsan__state.blocking_ticks);
}
#define LOOPSAN_BLOCKING_END(name, real)                                              \
  do {                                                                                \
    if (loopsan__blocked_long(loopsan_blk_t0_))                                       \
      loopsan__blocked(name, loopsan_blk_t0_, (uintptr_t)__builtin_return_address(0), \
                       (const void *)(real));                                         \
  } while (0)

/* ---- resolve.c ---- */
struct loopsan_library_ref {
  const char *soname_prefix;    /* "libuv.so" */
  _Atomic uintptr_t start, end; /* its mapped range, once known */
  void *handle;                 /* dlopen(RTLD_NOLOAD) handle when RTLD_LOCAL */
};
/* The real NAME: the next definition after the shim, else the one inside
 * LIB even when LIB was loaded RTLD_LOCAL. Learns LIB's address range. */
void *loopsan__resolve(struct loopsan_library_ref *lib, const char *name);
/* Learn LIB's address range from an address inside it. */
void loopsan__learn_range(struct loopsan_library_ref *lib, uintptr_t addr);

static inline int loopsan__in_range(const struct loopsan_library_ref *lib, uintptr_t addr) {
  uintptr_t s = atomic_load_explicit(&lib->start, memory_order_relaxed);
  uintptr_t e = atomic_load_explicit(&lib->end, memory_order_relaxed);
  return addr >= s && addr < e;
}

#pragma GCC visibility pop

#endif
