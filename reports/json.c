/* The JSON report: SPEC.md section 3, the stable machine interface. */
#include <signal.h>
#include <string.h>
#include <inttypes.h>

#include "analyzer/strbuf.h"
#include "reports/report.h"

static void frame(struct loopsan_strbuf *sb, const struct loopsan_frame_owned *f) {
  loopsan_sb_puts(sb, "{\"function\": ");
  loopsan_sb_json_string(sb, f->function);
  loopsan_sb_puts(sb, ", \"file\": ");
  loopsan_sb_json_string(sb, f->file);
  if (f->line > 0)
    loopsan_sb_printf(sb, ", \"line\": %d", f->line);
  else
    loopsan_sb_puts(sb, ", \"line\": null");
  loopsan_sb_puts(sb, ", \"module\": ");
  loopsan_sb_json_string(sb, f->module);
  loopsan_sb_printf(sb, ", \"address\": \"0x%" PRIx64 "\"}", f->address);
}

static void frames(struct loopsan_strbuf *sb, const struct loopsan_frame_owned *f, size_t n) {
  loopsan_sb_puts(sb, "[");
  for (size_t i = 0; i < n; i++) {
    loopsan_sb_puts(sb, i ? ",\n        " : "\n        ");
    frame(sb, &f[i]);
  }
  loopsan_sb_puts(sb, n ? "\n      ]" : "]");
}

static void process(struct loopsan_strbuf *sb, const struct loopsan_process *p) {
  loopsan_sb_printf(sb, "{\"pid\": %d, \"ppid\": %d, \"exe\": ", p->pid, p->ppid);
  loopsan_sb_json_string(sb, p->exe);
  loopsan_sb_puts(sb, ", \"argv\": [");
  for (size_t i = 0; i < p->argc; i++) {
    if (i)
      loopsan_sb_puts(sb, ", ");
    loopsan_sb_json_string(sb, p->argv[i]);
  }
  loopsan_sb_puts(sb, "], \"exit\": ");
  if (p->exit_signal)
    loopsan_sb_printf(sb, "{\"signal\": %d}", p->exit_signal);
  else if (p->has_exit)
    loopsan_sb_printf(sb, "{\"status\": %d}", p->exit_status);
  else
    loopsan_sb_puts(sb, "null");
  loopsan_sb_puts(sb, ", \"libraries\": [");
  for (size_t i = 0; i < p->n_libraries; i++) {
    if (i)
      loopsan_sb_puts(sb, ", ");
    loopsan_sb_json_string(sb, p->libraries[i]);
  }
  loopsan_sb_puts(sb, "], \"observed\": {");
  for (size_t i = 0; i < p->n_observations; i++) {
    const struct loopsan_observed *o = &p->observations[i];
    loopsan_sb_puts(sb, i ? ", " : "");
    loopsan_sb_json_string(sb, o->library);
    loopsan_sb_printf(sb, ": {\"loops\": %" PRIu64 ", \"callbacks\": %" PRIu64 ", \"objects\": {",
                      o->loops, o->callbacks);
    for (size_t k = 0; k < o->n_types; k++) {
      loopsan_sb_puts(sb, k ? ", " : "");
      loopsan_sb_json_string(sb, o->types[k].name);
      loopsan_sb_printf(sb, ": %" PRIu64, o->types[k].created);
    }
    loopsan_sb_puts(sb, "}, \"ended\": {");
    for (size_t k = 0; k < o->n_types; k++) {
      loopsan_sb_puts(sb, k ? ", " : "");
      loopsan_sb_json_string(sb, o->types[k].name);
      loopsan_sb_printf(sb, ": %" PRIu64, o->types[k].ended);
    }
    loopsan_sb_puts(sb, "}}");
  }
  loopsan_sb_puts(sb, "}, \"trace\": ");
  loopsan_sb_json_string(sb, p->trace);
  loopsan_sb_puts(sb, ", \"notes\": [");
  for (size_t i = 0; i < p->n_notes; i++) {
    if (i)
      loopsan_sb_puts(sb, ", ");
    loopsan_sb_json_string(sb, p->notes[i]);
  }
  loopsan_sb_puts(sb, "]");
  /* How long each callback site took, every dispatch counted (a
   * histogram of log2 buckets: durations up to le_ms). */
  loopsan_sb_puts(sb, ", \"callbacks\": [");
  for (size_t i = 0; i < p->n_sites; i++) {
    const struct loopsan_callback_site *s = &p->sites[i];
    loopsan_sb_puts(sb, i ? ",\n      {\"callback\": " : "\n      {\"callback\": ");
    if (s->has_callback)
      frame(sb, &s->callback);
    else
      loopsan_sb_puts(sb, "null");
    loopsan_sb_puts(sb, ", \"library\": ");
    loopsan_sb_json_string(sb, s->library);
    loopsan_sb_printf(sb,
                      ", \"count\": %" PRIu64 ", \"total_ms\": %.3f, \"p50_ms\": %.3f, "
                      "\"p99_ms\": %.3f, \"max_ms\": %.3f, \"percentiles\": \"%s\", "
                      "\"histogram\": [",
                      s->count, s->total_ms, s->p50_ms, s->p99_ms, s->max_ms,
                      s->exact ? "every call" : "estimated from the histogram");
    int first = 1;
    for (unsigned b = 0; b < LOOPSAN_SITE_BUCKETS; b++) {
      if (!s->buckets[b])
        continue;
      loopsan_sb_printf(sb, "%s{\"le_ms\": %.6g, \"count\": %" PRIu64 "}", first ? "" : ", ",
                        s->bucket_unit_ms * (double)(2ull << b), s->buckets[b]);
      first = 0;
    }
    loopsan_sb_puts(sb, "], \"created_at\": ");
    frames(sb, s->created_at, s->n_created_at);
    loopsan_sb_puts(sb, "}");
  }
  loopsan_sb_puts(sb, p->n_sites ? "\n    ]}" : "]}");
}

static void finding(struct loopsan_strbuf *sb, const struct loopsan_finding *f) {
  loopsan_sb_puts(sb, "{\n      \"kind\": ");
  loopsan_sb_json_string(sb, loopsan_kind_name(f->kind));
  loopsan_sb_puts(sb, ", \"severity\": ");
  loopsan_sb_json_string(sb, loopsan_severity_name(f->severity));
  loopsan_sb_puts(sb, ", \"library\": ");
  loopsan_sb_json_string(sb, f->library);
  loopsan_sb_printf(sb, ", \"pid\": %d, \"tid\": %d,\n      \"message\": ", f->pid, f->tid);
  loopsan_sb_json_string(sb, f->message);
  loopsan_sb_puts(sb, ",\n      \"detail\": ");
  loopsan_sb_json_string(sb, f->detail);
  loopsan_sb_puts(sb, ",\n      \"object\": ");
  if (f->object_type || f->object_address) {
    loopsan_sb_puts(sb, "{\"type\": ");
    loopsan_sb_json_string(sb, f->object_type);
    loopsan_sb_printf(sb, ", \"address\": \"0x%" PRIx64 "\"}", f->object_address);
  } else {
    loopsan_sb_puts(sb, "null");
  }
  loopsan_sb_puts(sb, ",\n      \"callback\": ");
  if (f->has_callback)
    frame(sb, &f->callback);
  else
    loopsan_sb_puts(sb, "null");
  loopsan_sb_puts(sb, ",\n      \"created_at\": ");
  frames(sb, f->created_at, f->n_created_at);
  /* The async chain, innermost first: the callback that was running when
   * the object was made, its object and where that was made, and so on. */
  loopsan_sb_puts(sb, ",\n      \"created_in\": [");
  for (size_t k = 0; k < f->n_chain; k++) {
    const struct loopsan_chain_link *c = &f->chain[k];
    loopsan_sb_puts(sb, k ? ", {\"callback\": " : "{\"callback\": ");
    if (c->has_callback)
      frame(sb, &c->callback);
    else
      loopsan_sb_puts(sb, "null");
    loopsan_sb_puts(sb, ", \"object\": {\"type\": ");
    loopsan_sb_json_string(sb, c->object_type);
    loopsan_sb_puts(sb, "}, \"created_at\": ");
    frames(sb, c->created_at, c->n_created_at);
    loopsan_sb_puts(sb, "}");
  }
  loopsan_sb_puts(sb, "]");
  loopsan_sb_puts(sb, ",\n      \"stack\": ");
  frames(sb, f->stack, f->n_stack);
  if (f->kind == LOOPSAN_KIND_CRASH) {
    const char *name = f->signal > 0 ? sigabbrev_np(f->signal) : NULL;
    loopsan_sb_printf(sb, ",\n      \"signal\": {\"number\": %d, \"name\": \"SIG%s\"", f->signal,
                      name ? name : "?");
    if (f->signal_code != INT32_MIN)
      loopsan_sb_printf(sb, ", \"code\": %d, \"address\": \"0x%llx\"", (int)f->signal_code,
                        (unsigned long long)f->fault_address);
    loopsan_sb_puts(sb, "}");
  }
  if (f->stall_taken) /* the stack is the place most stall samples found it */
    loopsan_sb_printf(sb, ",\n      \"stall_samples\": {\"taken\": %u, \"at_stack\": %u}",
                      f->stall_taken, f->stall_here);
  if (f->n_cause) { /* misuse: the event that made the call wrong */
    loopsan_sb_puts(sb, ",\n      \"cause\": ");
    frames(sb, f->cause, f->n_cause);
  }
  if (f->duration_ms >= 0)
    loopsan_sb_printf(sb, ",\n      \"duration_ms\": %.3f", f->duration_ms);
  else
    loopsan_sb_puts(sb, ",\n      \"duration_ms\": null");
  loopsan_sb_puts(sb, ", \"also\": [");
  for (int k = 0, n = 0; k < LOOPSAN_KIND_COUNT; k++)
    if (f->also & (1u << k)) {
      loopsan_sb_puts(sb, n++ ? ", " : "");
      loopsan_sb_json_string(sb, loopsan_kind_name(k));
    }
  loopsan_sb_printf(sb, "], \"count\": %u, \"suppressed\": %s, \"in_baseline\": %s\n    }",
                    f->count, f->suppressed ? "true" : "false", f->in_baseline ? "true" : "false");
}

int loopsan_render_json(const struct loopsan_report *r, const struct loopsan_render_options *opts,
                        FILE *out) {
  struct loopsan_strbuf sb;
  loopsan_sb_init(&sb);
  loopsan_sb_puts(&sb, "{\n  \"tool\": \"loopsan\", \"version\": ");
  loopsan_sb_json_string(&sb, opts && opts->tool_version ? opts->tool_version : "unknown");
  loopsan_sb_puts(&sb, ", \"format\": 1,\n  \"trace_dir\": ");
  loopsan_sb_json_string(&sb, r->trace_dir);
  loopsan_sb_puts(&sb, ",\n  \"processes\": [");
  for (size_t i = 0; i < r->n_processes; i++) {
    loopsan_sb_puts(&sb, i ? ",\n    " : "\n    ");
    process(&sb, &r->processes[i]);
  }
  loopsan_sb_puts(&sb, r->n_processes ? "\n  ],\n  \"findings\": [" : "],\n  \"findings\": [");
  for (size_t i = 0; i < r->n_findings; i++) {
    loopsan_sb_puts(&sb, i ? ",\n    " : "\n    ");
    finding(&sb, &r->findings[i]);
  }
  loopsan_sb_puts(&sb, r->n_findings ? "\n  ],\n  \"summary\": {" : "],\n  \"summary\": {");
  unsigned counts[LOOPSAN_KIND_COUNT];
  loopsan_report_summary(r, counts);
  int first = 1;
  for (int k = 0; k < LOOPSAN_KIND_COUNT; k++) {
    if (!counts[k])
      continue;
    loopsan_sb_printf(&sb, "%s\"%s\": %u", first ? "" : ", ", loopsan_kind_name(k), counts[k]);
    first = 0;
  }
  loopsan_sb_puts(&sb, "},\n  \"notes\": [");
  for (size_t i = 0; i < r->n_notes; i++) {
    if (i)
      loopsan_sb_puts(&sb, ", ");
    loopsan_sb_json_string(&sb, r->notes[i]);
  }
  loopsan_sb_puts(&sb, "]\n}\n");
  int rc = -1;
  if (!sb.failed && fwrite(sb.data, 1, sb.len, out) == sb.len)
    rc = 0;
  loopsan_sb_free(&sb);
  return rc;
}
