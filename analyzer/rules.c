#include "analyzer/rules.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "analyzer/analyze.h"
#include "common/evidence.h"

/* ---- helpers ---- */

static void fill(struct raw_finding *f, const struct loopsan_replay *r, enum loopsan_kind kind,
                 const struct replay_object *o) {
  memset(f, 0, sizeof *f);
  f->kind = kind;
  f->count = 1;
  f->ts = r->last_ts; /* the record being replayed, or the end (rules may say better) */
  if (!o)
    return;
  const struct replay_type *t = loopsan_replay_type(r, o->library, o->type);
  if (t) {
    memcpy(f->type_name, t->name, sizeof f->type_name);
    f->obj_kind = t->kind;
  }
  f->library = o->library;
  f->tid = o->tid;
  f->address = o->address;
  f->cb = o->main_cb;
  f->created_stack = o->stack;
  memcpy(f->chain, o->chain, sizeof f->chain);
  f->n_chain = o->n_chain;
}

/* A finding about a call (the records that name one: MISUSE, API_ERROR,
 * WRONG_THREAD, BLOCKING): by thread TID, of LIBRARY, with its STACK and
 * its NAME (NAME_LEN bytes, not NUL-terminated). */
static void fill_call(struct raw_finding *f, const struct loopsan_replay *r, enum loopsan_kind kind,
                      const struct replay_object *o, uint32_t tid, uint16_t library, uint32_t stack,
                      const char *name, size_t name_len) {
  fill(f, r, kind, o);
  f->tid = tid;
  f->library = library;
  f->stack = stack;
  size_t n = name_len < sizeof f->call - 1 ? name_len : sizeof f->call - 1;
  memcpy(f->call, name, n);
  f->call[n] = 0;
}

static uint16_t object_kind(const struct loopsan_replay *r, const struct replay_object *o) {
  const struct replay_type *t = loopsan_replay_type(r, o->library, o->type);
  return t ? t->kind : 0;
}

/* What closing the loop O belongs to returned (0: it did not fail). */
static int32_t loop_close_result(struct loopsan_replay *r, const struct replay_object *o) {
  const struct replay_object *loop = loopsan_replay_object(r, o->loop);
  return loop && loop->loop_close_failed ? loop->loop_close_result : 0;
}

/* Is the loop OBJ belongs to known to have failed to close? */
static int loop_close_failed(struct loopsan_replay *r, const struct replay_object *o) {
  const struct replay_object *loop = loopsan_replay_object(r, o->loop);
  return loop && loop->loop_close_failed;
}

/* ---- slow-callback: a dispatch at or over the threshold ---- */

static int over_threshold(const struct loopsan_replay *r, uint64_t duration) {
  uint64_t threshold = r->threshold_ns ? r->threshold_ns : 100000000u; /* process record lost */
  return loopsan_replay_ms(r, duration) * 1e6 >= (double)threshold;
}

/* ---- misuse: a call the library forbids ---- */

void loopsan_rules_misuse(struct loopsan_replay *r, const struct replay_object *obj,
                          const struct loopsan_rec_misuse *m, uint32_t tid) {
  struct raw_finding f;
  fill_call(&f, r, LOOPSAN_KIND_MISUSE, obj, tid, m->library, m->stack, (const char *)(m + 1),
            m->name_len);
  f.result = (int32_t)m->h.aux;
  f.cause_stack = m->cause ? m->cause : obj ? obj->close_stack : 0;
  f.misuse_arg = m->arg;
  f.misuse_arg2 = m->arg2;
  if (!obj && m->type != LOOPSAN_TYPE_UNKNOWN) { /* its records are gone (a closed handle) */
    const struct replay_type *t = loopsan_replay_type(r, m->library, (uint16_t)m->type);
    if (t)
      snprintf(f.type_name, sizeof f.type_name, "%s", t->name);
  }
  if (!obj)
    f.address = m->address;
  /* Initialised again while open: the first life never ends, and that is
   * this finding, not an unclosed-handle of its own. */
  if (obj && m->h.aux == LOOPSAN_MISUSE_REINIT_OPEN)
    ((struct replay_object *)obj)->reinitialised = 1;
  loopsan_replay_report(r, &f);
}

/* ---- unobserved-error: a failure nothing could see ---- */

void loopsan_rules_unobserved_error(struct loopsan_replay *r, const struct replay_object *o,
                                    int32_t status) {
  struct raw_finding f;
  fill(&f, r, LOOPSAN_KIND_UNOBSERVED_ERROR, o);
  f.result = status;
  loopsan_replay_report(r, &f);
}

/* ---- api-error: a call that returned an error ---- */

/* Errors that say the call was wrong for the object's state or its
 * arguments: the program's mistake, whatever it then did with the return
 * value. The others (ENOENT, EACCES, EADDRINUSE, ECONNREFUSED, EMFILE,
 * EAGAIN, ...) are the world's answer, part of normal operation. -1 is
 * libevent's and GLib's only failure (event_add, g_source_attach). */
static int misuse_error(uint16_t library, int32_t result) {
  if (library != LOOPSAN_LIB_UV) /* libevent's -1, g_source_attach's 0: no reason given */
    return 1;
  return loopsan_uv_misuse_error(result);
}

void loopsan_rules_api_error(struct loopsan_replay *r, const struct replay_object *obj,
                             const struct loopsan_rec_api_error *e, uint32_t tid) {
  if (!misuse_error(e->library, e->result))
    return;
  struct raw_finding f;
  fill_call(&f, r, LOOPSAN_KIND_API_ERROR, obj, tid, e->library, e->stack, (const char *)(e + 1),
            e->name_len);
  f.result = e->result;
  loopsan_replay_report(r, &f);
}

/* ---- wrong-thread: a call from a thread that does not run the loop ---- */

void loopsan_rules_wrong_thread(struct loopsan_replay *r, const struct loopsan_rec_wrong_thread *w,
                                uint32_t tid) {
  const struct replay_object *obj = loopsan_replay_object(r, w->obj ? w->obj : w->loop);
  struct raw_finding f;
  fill_call(&f, r, LOOPSAN_KIND_WRONG_THREAD, obj, tid, w->library, w->stack, (const char *)(w + 1),
            w->name_len);
  f.result = (int32_t)w->owner_tid;
  loopsan_replay_report(r, &f);
}

/* ---- blocking-call: a libc call that blocked inside a callback ---- */

static void report_blocked(struct loopsan_replay *r, struct replay_blocked *e) {
  if (e->calls)
    loopsan_replay_report(r, &e->longest);
  e->calls = 0;
}

void loopsan_rules_blocking(struct loopsan_replay *r, const struct loopsan_rec_blocking *b,
                            uint32_t tid) {
  const struct replay_object *obj = loopsan_replay_object(r, b->obj);
  struct raw_finding f;
  fill_call(&f, r, LOOPSAN_KIND_BLOCKING_CALL, obj, tid, b->library, b->stack,
            (const char *)(b + 1), b->name_len);
  f.cb = b->cb;
  f.max_duration = b->duration;
  /* Held back with the other blocking calls of its dispatch. */
  unsigned held = r->n_blocked < REPLAY_BLOCKED_RING ? r->n_blocked : REPLAY_BLOCKED_RING;
  for (unsigned i = 0; i < held; i++) {
    struct replay_blocked *e = &r->blocked[i];
    if (e->calls && e->tid == tid && e->dispatch_ts == b->dispatch_ts) {
      e->blocked += b->duration;
      e->calls++;
      if (b->duration > e->longest.max_duration)
        e->longest = f;
      return;
    }
  }
  struct replay_blocked *e = &r->blocked[r->n_blocked++ % REPLAY_BLOCKED_RING];
  report_blocked(r, e); /* the oldest: its dispatch is long over */
  *e = (struct replay_blocked){
      .tid = tid, .dispatch_ts = b->dispatch_ts, .blocked = b->duration, .longest = f, .calls = 1};
}

void loopsan_rules_blocking_flush(struct loopsan_replay *r) {
  for (unsigned i = 0; i < REPLAY_BLOCKED_RING; i++)
    report_blocked(r, &r->blocked[i]);
}

/* The blocking calls of TID's dispatch that began at TS, taken back from
 * the held ones (NULL: none). */
static struct replay_blocked *blocked_during(struct loopsan_replay *r, uint32_t tid, uint64_t ts) {
  for (unsigned i = 0; i < REPLAY_BLOCKED_RING; i++)
    if (r->blocked[i].calls && r->blocked[i].tid == tid && r->blocked[i].dispatch_ts == ts)
      return &r->blocked[i];
  return NULL;
}

/* A slow dispatch of TID begun at TS that blocked: F says where and for
 * how long, and the blocking calls are no findings of their own. */
static void take_blocked(struct loopsan_replay *r, struct raw_finding *f, uint32_t tid,
                         uint64_t ts) {
  struct replay_blocked *e = blocked_during(r, tid, ts);
  if (!e)
    return;
  f->stack = e->longest.stack;
  f->blocked = e->blocked;
  memcpy(f->call, e->longest.call, sizeof f->call);
  e->calls = 0;
}

void loopsan_rules_dispatch(struct loopsan_replay *r, struct replay_object *obj,
                            const struct loopsan_rec_dispatch *d, uint32_t tid) {
  loopsan_replay_timeline_add(r, d, tid,
                              LOOPSAN_IS_ITERATION(d->h.aux) ? LOOPSAN_LIB_GENERIC
                              : obj                          ? obj->library
                                                             : LOOPSAN_LIB_UNKNOWN,
                              LOOPSAN_IS_ITERATION(d->h.aux) ? NULL : obj);
  if (!over_threshold(r, d->duration))
    return;
  struct raw_finding f;
  int iteration = LOOPSAN_IS_ITERATION(d->h.aux);
  fill(&f, r, iteration ? LOOPSAN_KIND_BLOCKED_LOOP : LOOPSAN_KIND_SLOW_CALLBACK, obj);
  f.cb = iteration ? 0 : d->cb; /* the callback that ran: main, alloc or close */
  f.ts = d->ts;
  f.tid = tid;
  f.max_duration = d->duration;
  if (iteration) { /* a whole iteration of a loop seen by the generic layer */
    f.library = LOOPSAN_LIB_GENERIC;
    if (d->h.aux == LOOPSAN_DISPATCH_ITERATION) {
      f.result = (int32_t)d->cb; /* its epoll descriptor */
    } else {
      f.result = -1;
      f.cb = d->cb; /* where a poll/select loop waits: named as its function */
    }
  }
  /* Slow and it blocked: one problem, the slow callback, which says where
   * it was blocked (the longest call's stack) and for how long. */
  take_blocked(r, &f, tid, d->ts);
  if (!f.stack) /* where it was stuck, as loopsan run saw it */
    f.stack = loopsan_replay_stall_stack(r, tid, d->ts, &f.stall_taken, &f.stall_here);
  if (!obj && !iteration)
    f.library = LOOPSAN_LIB_UNKNOWN;
  loopsan_replay_report(r, &f);
}

/* ---- crash: a fatal signal inside a callback ---- */

void loopsan_rules_crash(struct loopsan_replay *r) {
  const struct loopsan_rec_crash *c = &r->crash;
  if (!r->has_crash || !c->cb) /* outside callbacks: the process's end (a note) */
    return;
  struct raw_finding f;
  fill(&f, r, LOOPSAN_KIND_CRASH, loopsan_replay_object(r, c->obj));
  f.cb = c->cb;
  f.tid = c->tid;
  f.ts = c->ts;
  f.library = c->library;
  f.stack = c->stack;
  f.result = (int32_t)c->h.aux;
  f.signal_code = c->code;
  f.fault_address = c->addr;
  f.max_duration = c->ts > c->dispatch_ts ? c->ts - c->dispatch_ts : 0;
  loopsan_replay_report(r, &f);
}

/* The dispatch a crash record names is that crash's finding. */
static int crashed_in(const struct loopsan_replay *r, const struct loopsan_rec_unfinished *u) {
  return r->has_crash && r->crash.cb && r->crash.tid == u->tid && r->crash.dispatch_ts == u->ts;
}

/* A callback that was still running when the process ended is slow for as
 * long as it ran: to exit(), to the kill, or (kill time unknown) to the
 * process's last record. One running when the process died of a crash
 * that the shim's handler never saw (a stack overflow leaves it no stack)
 * is that crash. */
int loopsan_rules_unfinished(struct loopsan_replay *r, const struct replay_object *obj,
                             const struct loopsan_rec_unfinished *u, uint32_t also) {
  if (crashed_in(r, u))
    return 1;
  if (!r->has_crash && u->how == LOOPSAN_END_KILLED && loopsan_signal_is_crash(r->end_signal)) {
    struct raw_finding f;
    fill(&f, r, LOOPSAN_KIND_CRASH, obj);
    f.cb = u->cb;
    f.tid = u->tid;
    f.library = u->library;
    f.result = r->end_signal;
    f.signal_code = INT32_MIN; /* unknown: the handler never ran */
    f.max_duration = u->end_ts > u->ts ? u->end_ts - u->ts : 0;
    loopsan_replay_report(r, &f);
    return 1;
  }
  uint64_t duration = u->end_ts > u->ts ? u->end_ts - u->ts : 0;
  if (!over_threshold(r, duration))
    return 0;
  struct raw_finding f;
  fill(&f, r, LOOPSAN_KIND_SLOW_CALLBACK, obj);
  f.cb = u->cb;
  f.tid = u->tid;
  f.library = u->library;
  f.max_duration = duration;
  f.detail = (enum raw_detail)(RAW_DETAIL_UNFINISHED +
                               (u->how <= REPLAY_END_KILLED_UNTIMED ? u->how : LOOPSAN_END_KILLED));
  f.also = also;
  take_blocked(r, &f, u->tid, u->ts);
  if (!f.stack)
    f.stack = loopsan_replay_stall_stack(r, u->tid, u->ts, &f.stall_taken, &f.stall_here);
  if (u->how == LOOPSAN_END_KILLED)
    f.result = r->end_signal; /* which signal, for the message */
  loopsan_replay_report(r, &f);
  return 1;
}

/* ---- what an object's end (or the process's) says about it ---- */

#define BIT(kind) (1u << (kind))

/* never-started: a handle nobody ever started or used (a start that was
 * refused counts as tried). */
static int never_started(struct loopsan_replay *r, const struct replay_object *o,
                         enum raw_detail *detail) {
  (void)detail;
  return object_kind(r, o) == LOOPSAN_OBJ_HANDLE && !o->used && !o->start_failed;
}

/* pending-at-exit: scheduled work whose callback never ran. */
static int pending(struct loopsan_replay *r, const struct replay_object *o,
                   enum raw_detail *detail) {
  (void)detail;
  uint16_t kind = object_kind(r, o);
  if (kind == LOOPSAN_OBJ_REQUEST)
    return o->starts > 0 && !o->completed; /* submitted, its callback never ran */
  /* A handle armed and not disarmed since, whose callback never ran: the
   * work it scheduled never happened. (One that ran before and was armed
   * again, a timer re-armed from its own callback, is a periodic job
   * interrupted by the exit, not a forgotten one.) */
  return (kind == LOOPSAN_OBJ_HANDLE || kind == LOOPSAN_OBJ_WATCHER) &&
         (o->start_flags & LOOPSAN_START_SCHEDULED) && !o->closing &&
         o->last_start_ts > o->last_stop_ts && o->last_fire_ts == 0;
}

/* unclosed-handle: never closed (a watcher: still active, never stopped,
 * unless its loop is the default one, which lives as long as the process).
 * A close the program asked for counts, as
 * close() does for asyncio's transports, even if the loop never ran again
 * to finish it: unless that unfinished close is what made closing its loop
 * fail. */
static int unclosed(struct loopsan_replay *r, const struct replay_object *o,
                    enum raw_detail *detail) {
  uint16_t kind = object_kind(r, o);
  if (o->flags & LOOPSAN_OBJF_LIVES_WITH_LOOP) {
    /* A GSource attached to a context is the context's to destroy: a leak
     * only if the program let the context go while the source was still
     * attached and never removed. (Never attached: never-started's.) */
    if (!o->used)
      return 0;
    if (o->ended_with_loop) {
      *detail = RAW_DETAIL_ENDED_WITH_LOOP;
      return 1;
    }
    if (o->loop && loopsan_replay_loop_ended(r, o->loop))
      return 0; /* freed with its loop, as it should be (sd-event's floating sources) */
    *detail = RAW_DETAIL_LET_BE;
    return 0;
  }
  if (kind == LOOPSAN_OBJ_WATCHER) { /* never closed, only stopped: still active? */
    const struct replay_object *loop = loopsan_replay_object(r, o->loop);
    /* The default loop lives as long as the process, and its watchers with
     * it (gevent's hub never stops its own): like stdout, not a leak. A
     * loop this trace never saw made (a forked child's, made by its
     * parent) may be that one: no verdict. */
    int active = o->starts > 0 && o->last_start_ts > o->last_stop_ts &&
                 /* a one-shot watcher that fired stopped itself */
                 !((o->start_flags & LOOPSAN_START_ONESHOT) && o->last_fire_ts >= o->last_start_ts);
    if (active && o->loop &&
        (loop ? (loop->flags & LOOPSAN_OBJF_DEFAULT_LOOP)
              : !loopsan_replay_loop_ended(r, o->loop))) {
      *detail = RAW_DETAIL_LET_BE; /* counted for a note if nothing else is said of it */
      return 0;
    }
    return active;
  }
  if (kind != LOOPSAN_OBJ_HANDLE || (o->closing && !loop_close_failed(r, o)))
    return 0;
  if (o->closing)
    *detail = RAW_DETAIL_CLOSE_UNFINISHED;
  else if (loop_close_failed(r, o))
    *detail = RAW_DETAIL_LOOP_CLOSE_EBUSY;
  return 1;
}

void loopsan_rules_object_ended(struct loopsan_replay *r, const struct replay_object *obj) {
  if ((obj->flags & LOOPSAN_OBJF_LIBRARY_OWNED) || !never_started(r, obj, NULL))
    return;
  struct raw_finding f;
  fill(&f, r, LOOPSAN_KIND_NEVER_STARTED, obj);
  loopsan_replay_report(r, &f);
}

static void rule_unclosed_loop(struct loopsan_replay *r, const struct replay_object *o) {
  /* A library's default loop is a process-wide singleton, like stdout:
   * leaving it open is not reported (its handles are). */
  if (o->flags & LOOPSAN_OBJF_DEFAULT_LOOP)
    return;
  struct raw_finding f;
  fill(&f, r, LOOPSAN_KIND_UNCLOSED_LOOP, o);
  if (o->loop_close_failed) {
    f.detail = RAW_DETAIL_LOOP_CLOSE_EBUSY;
    f.result = o->loop_close_result;
    f.stack = o->loop_close_stack;
  }
  loopsan_replay_report(r, &f);
}

/* What can be wrong with a handle or request still alive at the end, most
 * specific first (asyncio says "Task was destroyed but it is pending!" and
 * not also "unclosed"): a new kind of this sort is a row and a function. */
static const struct {
  enum loopsan_kind kind;
  int (*applies)(struct loopsan_replay *, const struct replay_object *, enum raw_detail *);
} at_exit_rules[] = {
    {LOOPSAN_KIND_PENDING_AT_EXIT, pending},
    {LOOPSAN_KIND_NEVER_STARTED, never_started},
    {LOOPSAN_KIND_UNCLOSED_HANDLE, unclosed},
};

void loopsan_rules_at_exit(struct loopsan_replay *r, const struct replay_object *o) {
  if (o->reinitialised)
    return;
  if (object_kind(r, o) == LOOPSAN_OBJ_LOOP) {
    rule_unclosed_loop(r, o);
    return;
  }
  enum raw_detail detail = RAW_DETAIL_NONE;
  uint32_t kinds = 0;
  /* A library's own object: only a callback it never returned from is
   * the program's story. */
  if (o->flags & LOOPSAN_OBJF_LIBRARY_OWNED) {
    if (o->has_unfinished)
      loopsan_rules_unfinished(r, o, &o->unfinished, 0);
    return;
  }
  for (size_t i = 0; i < sizeof at_exit_rules / sizeof at_exit_rules[0]; i++)
    if (at_exit_rules[i].applies(r, o, &detail))
      kinds |= BIT(at_exit_rules[i].kind);
  /* A callback that never returned because the process ended inside it
   * is the story: the handle it left open is part of it. */
  if (o->has_unfinished && loopsan_rules_unfinished(r, o, &o->unfinished, kinds))
    return;
  if (!kinds && detail == RAW_DETAIL_LET_BE)
    r->watchers_let_be++;
  for (size_t i = 0; i < sizeof at_exit_rules / sizeof at_exit_rules[0]; i++) {
    enum loopsan_kind kind = at_exit_rules[i].kind;
    if (!(kinds & BIT(kind)))
      continue;
    struct raw_finding f;
    fill(&f, r, kind, o);
    f.detail = detail;
    if (detail == RAW_DETAIL_LOOP_CLOSE_EBUSY || detail == RAW_DETAIL_CLOSE_UNFINISHED)
      f.result = loop_close_result(r, o); /* why the loop's close failed */
    f.also = kinds & ~BIT(kind);
    loopsan_replay_report(r, &f);
    return;
  }
}
