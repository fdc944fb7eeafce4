/* The Chrome trace-event report, for ui.perfetto.dev, chrome://tracing and
 * Perfetto's trace_processor: a track per thread of each process, every
 * dispatch the trace has as a complete ("X") slice named after its
 * callback (all of them with --record=all; the slow ones otherwise), and
 * the findings as instant events; flows from each object's creation (a
 * short slice where it was made) to its callbacks. Slices on a thread nest strictly: a
 * callback that ran inside another (GLib's recursion) is cut at its
 * parent's end if the clocks' rounding put it a hair past it, as Perfetto
 * drops slices that do not nest. */
#include <stdlib.h>
#include <string.h>

#include "analyzer/strbuf.h"
#include "reports/report.h"

/* A slice on a thread's track: a callback's run, or an object's creation
 * (the start of the flow to its callbacks). */
struct item {
  double start_us, dur_us;
  int tid;
  const struct loopsan_slice *slice;   /* or */
  const struct loopsan_origin *origin; /* (index in the process's origins + 1: the flow's id) */
  size_t origin_index;
};

static int by_thread_then_start(const void *a, const void *b) {
  const struct item *x = a, *y = b;
  if (x->tid != y->tid)
    return x->tid < y->tid ? -1 : 1;
  if (x->start_us != y->start_us)
    return x->start_us < y->start_us ? -1 : 1;
  return x->dur_us > y->dur_us ? -1 : x->dur_us < y->dur_us; /* the parent first */
}

#define NEST_MAX 64
#define CREATION_US 1.0 /* how long a creation's slice is drawn, at most */

static void put_item(struct loopsan_strbuf *sb, const struct loopsan_process *p, const struct item *it,
                     double end, int *first) {
  loopsan_sb_puts(sb, *first ? "\n  " : ",\n  ");
  *first = 0;
  if (it->slice) {
    loopsan_sb_puts(sb, "{\"name\": ");
    loopsan_sb_json_string(sb, p->slice_names[it->slice->name]);
    loopsan_sb_puts(sb, ", \"cat\": ");
    loopsan_sb_json_string(sb, it->slice->iteration ? "loop iteration" : it->slice->library);
  } else {
    struct loopsan_strbuf name;
    loopsan_sb_init(&name);
    loopsan_sb_printf(&name, "%s created", it->origin->object_type ? it->origin->object_type : "object");
    loopsan_sb_puts(sb, "{\"name\": ");
    loopsan_sb_json_string(sb, name.data ? name.data : "created");
    loopsan_sb_free(&name);
    loopsan_sb_puts(sb, ", \"cat\": \"creation\", \"args\": {\"created at\": ");
    loopsan_sb_json_string(sb, it->origin->where ? it->origin->where : "?");
    loopsan_sb_puts(sb, "}");
  }
  loopsan_sb_puts(sb, ", \"ph\": \"X\", \"ts\": ");
  loopsan_sb_fixed3(sb, it->start_us);
  loopsan_sb_puts(sb, ", \"dur\": ");
  loopsan_sb_fixed3(sb, end - it->start_us);
  loopsan_sb_printf(sb, ", \"pid\": %d, \"tid\": %d}", p->pid, it->tid);
}

/* Every slice of P, thread by thread, cut to nest strictly. A creation is
 * drawn up to CREATION_US long, never into the next slice of its thread. */
static void slices(struct loopsan_strbuf *sb, const struct loopsan_process *p, int *first) {
  size_t n = p->n_slices + p->n_origins;
  struct item *s = n ? calloc(n, sizeof *s) : NULL;
  if (!s)
    return;
  for (size_t i = 0; i < p->n_slices; i++)
    s[i] = (struct item){.start_us = p->slices[i].start_us, .dur_us = p->slices[i].dur_us,
                         .tid = p->slices[i].tid, .slice = &p->slices[i]};
  for (size_t i = 0; i < p->n_origins; i++)
    s[p->n_slices + i] = (struct item){.start_us = p->origins[i].ts_us, .dur_us = 0, .tid = p->origins[i].tid,
                                       .origin = &p->origins[i], .origin_index = i};
  qsort(s, n, sizeof *s, by_thread_then_start);
  double open_end[NEST_MAX];
  int depth = 0, tid = -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i].tid != tid) {
      tid = s[i].tid;
      depth = 0;
    }
    while (depth > 0 && s[i].start_us >= open_end[depth - 1])
      depth--;
    double end = s[i].start_us + s[i].dur_us;
    if (s[i].origin) {
      end = s[i].start_us + CREATION_US;
      if (i + 1 < n && s[i + 1].tid == tid && s[i + 1].start_us < end)
        end = s[i + 1].start_us;
    }
    if (depth > 0 && end > open_end[depth - 1])
      end = open_end[depth - 1];
    put_item(sb, p, &s[i], end, first);
    if (depth < NEST_MAX)
      open_end[depth++] = end;
  }
  free(s);
}

/* Flow ids are global to the file: the pid keeps processes apart (an
 * origin's number is below 2^18, REPLAY_ORIGINS_MAX). */
static unsigned long long flow_id(const struct loopsan_process *p, size_t origin) {
  return (unsigned long long)(unsigned)p->pid << 18 | origin;
}

static void flow_event(struct loopsan_strbuf *sb, const struct loopsan_process *p, const char *ph,
                       size_t origin, double ts_us, int tid) {
  loopsan_sb_printf(sb,
                    ",\n  {\"name\": \"callbacks\", \"cat\": \"flow\", \"ph\": \"%s\", \"id\": %llu, "
                    "\"ts\": ",
                    ph, flow_id(p, origin));
  loopsan_sb_fixed3(sb, ts_us);
  loopsan_sb_printf(sb, ", \"pid\": %d, \"tid\": %d}", p->pid, tid);
}

/* Flows from each object's creation through its dispatches, in time order:
 * "s" inside the creation's slice, "t" inside each dispatch but the last,
 * "f" inside the last ("bp": "e" binds it to the slice that encloses it). */
#define FLOW_EVENTS_MAX 1000000u
static void flows(struct loopsan_strbuf *sb, const struct loopsan_process *p) {
  if (!p->n_origins)
    return;
  size_t *left = calloc(p->n_origins, sizeof *left);
  if (!left)
    return;
  size_t events = 0;
  for (size_t i = 0; i < p->n_slices; i++)
    if (p->slices[i].origin && p->slices[i].origin <= p->n_origins) {
      left[p->slices[i].origin - 1]++;
      events++;
    }
  if (events + p->n_origins > FLOW_EVENTS_MAX) {
    free(left);
    return;
  }
  for (size_t i = 0; i < p->n_origins; i++)
    if (left[i])
      flow_event(sb, p, "s", i + 1, p->origins[i].ts_us, p->origins[i].tid);
  for (size_t i = 0; i < p->n_slices; i++) { /* (in start order) */
    const struct loopsan_slice *s = &p->slices[i];
    if (!s->origin || s->origin > p->n_origins)
      continue;
    int last = --left[s->origin - 1] == 0;
    flow_event(sb, p, last ? "f\", \"bp\": \"e" : "t", s->origin, s->start_us, s->tid);
  }
  free(left);
}

int loopsan_render_chrome(const struct loopsan_report *r, const struct loopsan_render_options *opts,
                          FILE *out) {
  (void)opts;
  struct loopsan_strbuf sb;
  loopsan_sb_init(&sb);
  loopsan_sb_stream_to(&sb, out); /* a million slices are 150 MB of text */
  loopsan_sb_puts(&sb, "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [");
  int first = 1;
  for (size_t pi = 0; pi < r->n_processes; pi++) {
    const struct loopsan_process *p = &r->processes[pi];
    const char *exe = p->exe ? strrchr(p->exe, '/') : NULL;
    struct loopsan_strbuf name;
    loopsan_sb_init(&name);
    loopsan_sb_printf(&name, "%s", exe ? exe + 1 : p->exe ? p->exe : "?"); /* viewers add the pid */
    loopsan_sb_puts(&sb, first ? "\n  " : ",\n  ");
    first = 0;
    loopsan_sb_printf(&sb,
                      "{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %d, \"args\": "
                      "{\"name\": ",
                      p->pid);
    loopsan_sb_json_string(&sb, name.data ? name.data : "?");
    loopsan_sb_puts(&sb, "}}");
    loopsan_sb_free(&name);
    /* a track per thread that ran callbacks (or has a finding) */
    int named[256], n_named = 0;
    for (size_t i = 0; i < p->n_slices + r->n_findings; i++) {
      int tid;
      if (i < p->n_slices)
        tid = p->slices[i].tid;
      else if (r->findings[i - p->n_slices].process == pi)
        tid = r->findings[i - p->n_slices].tid;
      else
        continue;
      int seen = 0;
      for (int k = 0; k < n_named && !seen; k++)
        seen = named[k] == tid;
      if (seen || n_named == 256)
        continue;
      named[n_named++] = tid;
      loopsan_sb_printf(&sb,
                        ",\n  {\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": %d, \"tid\": %d, "
                        "\"args\": {\"name\": \"%s %d\"}}",
                        p->pid, tid, tid == p->pid ? "main thread" : "thread", tid);
    }
    slices(&sb, p, &first);
    flows(&sb, p);
    for (size_t i = 0; i < r->n_findings; i++) {
      const struct loopsan_finding *f = &r->findings[i];
      if (f->process != pi || f->ts_us <= 0)
        continue;
      loopsan_sb_puts(&sb, ",\n  {\"name\": ");
      loopsan_sb_json_string(&sb, loopsan_kind_name(f->kind));
      loopsan_sb_printf(&sb,
                        ", \"cat\": \"finding\", \"ph\": \"i\", \"s\": \"t\", \"ts\": %.3f, "
                        "\"pid\": %d, \"tid\": %d, \"args\": {\"message\": ",
                        f->ts_us, p->pid, f->tid ? f->tid : p->pid);
      loopsan_sb_json_string(&sb, f->message);
      loopsan_sb_puts(&sb, "}}");
    }
  }
  loopsan_sb_puts(&sb, "\n]}\n");
  return loopsan_sb_write(&sb, out);
}
