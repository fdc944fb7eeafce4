/* The Markdown report, for a CI job's summary ($GITHUB_STEP_SUMMARY): a
 * table of the findings per kind, then the top findings, each with its
 * callback and where its object was made. Short on purpose: the text and
 * JSON reports have the rest. */
#include <inttypes.h>
#include <string.h>

#include "reports/report.h"

#define TOP_FINDINGS 10

/* S with the characters Markdown (and a table cell) would read as syntax
 * escaped, on one line. */
static void md_text(FILE *out, const char *s) {
  for (; s && *s; s++) {
    if (strchr("\\`*_[]<>|#", *s))
      fputc('\\', out);
    fputc(*s == '\n' || *s == '\r' ? ' ' : *s, out);
  }
}

static const char *base_of(const char *path) {
  const char *s = path ? strrchr(path, '/') : NULL;
  return s ? s + 1 : path;
}

/* `func` (file:line), or module+offset. */
static void md_frame(FILE *out, const struct loopsan_frame_owned *f) {
  fputc('`', out);
  if (f->function)
    fputs(f->function, out);
  else if (f->module)
    fprintf(out, "%s+0x%" PRIx64, base_of(f->module), f->module_offset);
  else
    fprintf(out, "0x%" PRIx64, f->address);
  fputc('`', out);
  if (f->file) {
    fputs(" (", out);
    md_text(out, f->file);
    if (f->line > 0)
      fprintf(out, ":%d", f->line);
    fputc(')', out);
  }
}

/* The innermost frame of STACK that is the program's (not the vdso's, a
 * system library's): what "at" should name; else the innermost. */
static const struct loopsan_frame_owned *program_frame(const struct loopsan_frame_owned *f,
                                                       size_t n) {
  for (size_t i = 0; i < n; i++)
    if (f[i].function && f[i].file && f[i].module && strncmp(f[i].module, "/lib", 4) != 0 &&
        strncmp(f[i].module, "/usr/lib", 8) != 0)
      return &f[i];
  return &f[0];
}

/* Worst first: errors before warnings, then the longest, then the most. */
static int worse(const void *va, const void *vb) {
  const struct loopsan_finding *a = va, *b = vb;
  if (a->severity != b->severity)
    return a->severity < b->severity;
  if (a->duration_ms != b->duration_ms)
    return a->duration_ms > b->duration_ms;
  return a->count > b->count;
}

static int longer_total(const void *a, const void *b) {
  return ((const struct loopsan_callback_site *)a)->total_ms >
         ((const struct loopsan_callback_site *)b)->total_ms;
}

int loopsan_render_markdown(const struct loopsan_report *r,
                            const struct loopsan_render_options *opts, FILE *out) {
  (void)opts;
  unsigned counts[LOOPSAN_KIND_COUNT];
  loopsan_report_summary(r, counts);
  unsigned total = 0, suppressed = 0;
  for (int k = 0; k < LOOPSAN_KIND_COUNT; k++)
    total += counts[k];
  for (size_t i = 0; i < r->n_findings; i++)
    suppressed += r->findings[i].suppressed != 0;
  fprintf(out, "## loopsan: %s\n\n",
          total ? "event-loop problems found" : "no event-loop problems found");
  size_t observed = 0;
  for (size_t i = 0; i < r->n_processes; i++)
    observed += r->processes[i].observed != 0;
  fprintf(out, "%zu process%s, %zu of them using an event loop loopsan observes", r->n_processes,
          r->n_processes == 1 ? "" : "es", observed);
  if (suppressed)
    fprintf(out, "; %u finding%s suppressed", suppressed, suppressed == 1 ? "" : "s");
  fputs(".\n\n", out);
  if (total) {
    fputs("| finding | severity | count |\n|---|---|---:|\n", out);
    for (int k = 0; k < LOOPSAN_KIND_COUNT; k++)
      if (counts[k])
        fprintf(out, "| `%s` | %s | %u |\n", loopsan_kind_name(k),
                loopsan_severity_name(loopsan_kind_severity(k)), counts[k]);
    fputc('\n', out);
  }
  /* The top findings, worst first (a selection, so no sort of the model). */
  const void *shown[TOP_FINDINGS];
  size_t n_shown = 0;
  for (size_t i = 0; i < r->n_findings; i++)
    if (!r->findings[i].suppressed)
      loopsan_top_insert(shown, &n_shown, TOP_FINDINGS, &r->findings[i], worse);
  for (size_t i = 0; i < n_shown; i++) {
    const struct loopsan_finding *f = shown[i];
    fprintf(out, "%zu. **%s** (%s, pid %d): ", i + 1, loopsan_kind_name(f->kind), f->library,
            f->pid);
    md_text(out, f->message);
    if (f->count > 1)
      fprintf(out, " (%u times)", f->count);
    fputc('\n', out);
    if (f->has_callback) {
      fputs("    - callback: ", out);
      md_frame(out, &f->callback);
      fputc('\n', out);
    }
    if (f->n_stack) {
      fputs("    - at: ", out);
      md_frame(out, program_frame(f->stack, f->n_stack));
      fputc('\n', out);
    }
    for (size_t k = 0; k < f->n_created_at; k++) {
      const struct loopsan_frame_owned *fr = &f->created_at[k];
      if (!fr->file && k + 1 < f->n_created_at) /* the first frame with a source line */
        continue;
      fputs("    - created at: ", out);
      md_frame(out, fr);
      fputc('\n', out);
      break;
    }
  }
  size_t entries = 0; /* (merged findings are one entry, "N times") */
  for (size_t i = 0; i < r->n_findings; i++)
    entries += !r->findings[i].suppressed;
  if (entries > n_shown)
    fprintf(out, "\n%zu more in the full report (`loopsan report --format=text`).\n",
            entries - n_shown);
  /* The callbacks that took longest in all (every call counted). */
  const void *top[5];
  size_t n_top = 0;
  for (size_t pi = 0; pi < r->n_processes; pi++)
    for (size_t i = 0; i < r->processes[pi].n_sites; i++)
      loopsan_top_insert(top, &n_top, 5, &r->processes[pi].sites[i], longer_total);
  if (n_top) {
    fputs("\n| callback | calls | total ms | p50 ms | p99 ms | max ms |\n"
          "|---|---:|---:|---:|---:|---:|\n",
          out);
    for (size_t i = 0; i < n_top; i++) {
      const struct loopsan_callback_site *s = top[i];
      fputs("| ", out);
      if (s->has_callback)
        md_frame(out, &s->callback);
      else
        fputs("?", out);
      fprintf(out, " | %" PRIu64 " | %.3f | %.3f | %.3f | %.3f |\n", s->count, s->total_ms,
              s->p50_ms, s->p99_ms, s->max_ms);
    }
  }
  return 0;
}
