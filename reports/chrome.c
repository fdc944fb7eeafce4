/* The Chrome trace-event report, for ui.perfetto.dev, chrome://tracing and
 * Perfetto's trace_processor: a track per thread of each process, every
 * dispatch the trace has as a complete ("X") slice named after its
 * callback (all of them with --record=all; the slow ones otherwise), and
 * the findings as instant events. Slices on a thread nest strictly: a
 * callback that ran inside another (GLib's recursion) is cut at its
 * parent's end if the clocks' rounding put it a hair past it, as Perfetto
 * drops slices that do not nest. */
#include <stdlib.h>
#include <string.h>

#include "analyzer/strbuf.h"
#include "reports/report.h"

static int by_thread_then_start(const void *a, const void *b) {
  const struct loopsan_slice *x = a, *y = b;
  if (x->tid != y->tid)
    return x->tid < y->tid ? -1 : 1;
  if (x->start_us != y->start_us)
    return x->start_us < y->start_us ? -1 : 1;
  return x->dur_us > y->dur_us ? -1 : x->dur_us < y->dur_us; /* the parent first */
}

#define NEST_MAX 64

static void slices(struct loopsan_strbuf *sb, const struct loopsan_process *p, int *first) {
  struct loopsan_slice *s = malloc(p->n_slices * sizeof *s);
  if (!s)
    return;
  memcpy(s, p->slices, p->n_slices * sizeof *s);
  qsort(s, p->n_slices, sizeof *s, by_thread_then_start);
  double open_end[NEST_MAX];
  int depth = 0, tid = -1;
  for (size_t i = 0; i < p->n_slices; i++) {
    if (s[i].tid != tid) {
      tid = s[i].tid;
      depth = 0;
    }
    while (depth > 0 && s[i].start_us >= open_end[depth - 1])
      depth--;
    double end = s[i].start_us + s[i].dur_us;
    if (depth > 0 && end > open_end[depth - 1])
      end = open_end[depth - 1];
    loopsan_sb_puts(sb, *first ? "\n  " : ",\n  ");
    *first = 0;
    loopsan_sb_puts(sb, "{\"name\": ");
    loopsan_sb_json_string(sb, p->slice_names[s[i].name]);
    loopsan_sb_puts(sb, ", \"cat\": ");
    loopsan_sb_json_string(sb, s[i].iteration ? "loop iteration" : s[i].library);
    loopsan_sb_printf(sb, ", \"ph\": \"X\", \"ts\": %.3f, \"dur\": %.3f, \"pid\": %d, \"tid\": %d}",
                      s[i].start_us, end - s[i].start_us, p->pid, s[i].tid);
    if (depth < NEST_MAX)
      open_end[depth++] = end;
  }
  free(s);
}

int loopsan_render_chrome(const struct loopsan_report *r, const struct loopsan_render_options *opts,
                          FILE *out) {
  (void)opts;
  struct loopsan_strbuf sb;
  loopsan_sb_init(&sb);
  loopsan_sb_puts(&sb, "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [");
  int first = 1;
  for (size_t pi = 0; pi < r->n_processes; pi++) {
    const struct loopsan_process *p = &r->processes[pi];
    const char *exe = p->exe ? strrchr(p->exe, '/') : NULL;
    struct loopsan_strbuf name;
    loopsan_sb_init(&name);
    loopsan_sb_printf(&name, "%s (pid %d)", exe ? exe + 1 : p->exe ? p->exe : "?", p->pid);
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
  if (sb.failed) {
    loopsan_sb_free(&sb);
    return -1;
  }
  fputs(sb.data, out);
  loopsan_sb_free(&sb);
  return 0;
}
