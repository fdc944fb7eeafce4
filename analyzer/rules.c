#include "analyzer/rules.h"

#include <string.h>

/* ---- helpers ---- */

static void fill(struct raw_finding *f, const struct loopsan_replay *r, enum loopsan_kind kind,
                 const struct replay_object *o) {
  memset(f, 0, sizeof *f);
  f->kind = kind;
  f->count = 1;
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
}

static uint16_t object_kind(const struct loopsan_replay *r, const struct replay_object *o) {
  const struct replay_type *t = loopsan_replay_type(r, o->library, o->type);
  return t ? t->kind : 0;
}

/* Is the loop OBJ belongs to known to have failed to close? */
static int loop_close_failed(struct loopsan_replay *r, const struct replay_object *o) {
  const struct replay_object *loop = loopsan_replay_object(r, o->loop);
  return loop && loop->loop_close_failed;
}

/* ---- slow-callback: a dispatch at or over the threshold ---- */

void loopsan_rules_dispatch(struct loopsan_replay *r, const struct replay_object *obj,
                            const struct loopsan_rec_dispatch *d, uint32_t tid) {
  double ms = loopsan_replay_ms(r, d->duration);
  uint64_t threshold = r->threshold_ns ? r->threshold_ns : 100000000u; /* process record lost */
  if (ms * 1e6 < (double)threshold)
    return;
  struct raw_finding f;
  fill(&f, r, LOOPSAN_KIND_SLOW_CALLBACK, obj);
  f.cb = d->cb; /* the callback that ran: main, alloc or close */
  f.tid = tid;
  f.max_duration = d->duration;
  if (!obj)
    f.library = LOOPSAN_LIB_UNKNOWN;
  loopsan_replay_report(r, &f);
}

/* ---- never-started: a handle nobody ever started or used ---- */

static void rule_never_started(struct loopsan_replay *r, const struct replay_object *o) {
  if (object_kind(r, o) != LOOPSAN_OBJ_HANDLE || o->used)
    return;
  struct raw_finding f;
  fill(&f, r, LOOPSAN_KIND_NEVER_STARTED, o);
  loopsan_replay_report(r, &f);
}

void loopsan_rules_object_ended(struct loopsan_replay *r, const struct replay_object *obj) {
  rule_never_started(r, obj);
}

/* ---- at exit: unclosed handles and loops, pending work ---- */

static void rule_unclosed(struct loopsan_replay *r, const struct replay_object *o) {
  uint16_t kind = object_kind(r, o);
  struct raw_finding f;
  if (kind == LOOPSAN_OBJ_HANDLE) {
    /* A close the program asked for counts, as close() does for asyncio's
     * transports, even if the loop never ran again to finish it: unless
     * that unfinished close is what made closing its loop fail. */
    if (o->closing && !loop_close_failed(r, o))
      return;
    fill(&f, r, LOOPSAN_KIND_UNCLOSED_HANDLE, o);
    if (o->closing)
      f.detail = RAW_DETAIL_CLOSE_UNFINISHED;
    else if (loop_close_failed(r, o))
      f.detail = RAW_DETAIL_LOOP_CLOSE_EBUSY;
    loopsan_replay_report(r, &f);
  } else if (kind == LOOPSAN_OBJ_LOOP && !(o->flags & LOOPSAN_OBJF_DEFAULT_LOOP)) {
    /* A library's default loop is a process-wide singleton, like stdout:
     * leaving it open is not reported (its handles are). */
    fill(&f, r, LOOPSAN_KIND_UNCLOSED_LOOP, o);
    if (o->loop_close_failed) {
      f.detail = RAW_DETAIL_LOOP_CLOSE_EBUSY;
      f.result = o->loop_close_result;
      f.stack = o->loop_close_stack;
    }
    loopsan_replay_report(r, &f);
  }
}

static void rule_pending(struct loopsan_replay *r, const struct replay_object *o) {
  uint16_t kind = object_kind(r, o);
  int pending = 0;
  if (kind == LOOPSAN_OBJ_REQUEST) {
    pending = o->starts > 0; /* submitted, its callback never ran */
  } else if (kind == LOOPSAN_OBJ_HANDLE && (o->start_flags & LOOPSAN_START_SCHEDULED) &&
             !o->closing) {
    /* Armed and not disarmed since, and its callback has not run since:
     * the work it scheduled never happened. */
    pending = o->last_start_ts > o->last_stop_ts && o->last_fire_ts < o->last_start_ts;
  }
  if (!pending)
    return;
  struct raw_finding f;
  fill(&f, r, LOOPSAN_KIND_PENDING_AT_EXIT, o);
  loopsan_replay_report(r, &f);
}

void loopsan_rules_at_exit(struct loopsan_replay *r, const struct replay_object *obj) {
  rule_never_started(r, obj);
  rule_pending(r, obj);
  rule_unclosed(r, obj);
}
