#include "analyzer/findings.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
  const char *name;
  enum loopsan_severity severity;
} kinds[LOOPSAN_KIND_COUNT] = {
#define X(id, name, sev) {name, LOOPSAN_SEV_##sev},
    LOOPSAN_KINDS(X)
#undef X
};

const char *loopsan_kind_name(enum loopsan_kind kind) {
  return (unsigned)kind < LOOPSAN_KIND_COUNT ? kinds[kind].name : "unknown";
}

enum loopsan_severity loopsan_kind_severity(enum loopsan_kind kind) {
  return (unsigned)kind < LOOPSAN_KIND_COUNT ? kinds[kind].severity : LOOPSAN_SEV_INFO;
}

const char *loopsan_severity_name(enum loopsan_severity sev) {
  static const char *const names[] = {"error", "warning", "info"};
  return (unsigned)sev <= LOOPSAN_SEV_INFO ? names[sev] : "info";
}

int loopsan_kind_from_name(const char *name, size_t len) {
  for (int i = 0; i < LOOPSAN_KIND_COUNT; i++)
    if (strlen(kinds[i].name) == len && memcmp(kinds[i].name, name, len) == 0)
      return i;
  return -1;
}

static void free_frames(struct loopsan_frame_owned *f, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(f[i].function);
    free(f[i].file);
    free(f[i].module);
  }
  free(f);
}

static void free_strings(char **s, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(s[i]);
  free(s);
}

void loopsan_report_free(struct loopsan_report *r) {
  for (size_t i = 0; i < r->n_findings; i++) {
    struct loopsan_finding *f = &r->findings[i];
    free(f->message);
    free(f->detail);
    free(f->object_type);
    free(f->callback.function);
    free(f->callback.file);
    free(f->callback.module);
    free_frames(f->created_at, f->n_created_at);
    free_frames(f->stack, f->n_stack);
    free_frames(f->cause, f->n_cause);
    for (size_t k = 0; k < f->n_chain; k++) {
      free(f->chain[k].callback.function);
      free(f->chain[k].callback.file);
      free(f->chain[k].callback.module);
      free(f->chain[k].object_type);
      free_frames(f->chain[k].created_at, f->chain[k].n_created_at);
    }
    free(f->chain);
  }
  free(r->findings);
  for (size_t i = 0; i < r->n_processes; i++) {
    struct loopsan_process *p = &r->processes[i];
    free(p->exe);
    free_strings(p->argv, p->argc);
    free(p->libraries); /* the strings are static */
    free(p->trace);
    free_strings(p->notes, p->n_notes);
    for (size_t j = 0; j < p->n_observations; j++) {
      for (size_t k = 0; k < p->observations[j].n_types; k++)
        free(p->observations[j].types[k].name);
      free(p->observations[j].types);
    }
    free(p->observations);
  }
  free(r->processes);
  free_strings(r->notes, r->n_notes);
  free(r->trace_dir);
  memset(r, 0, sizeof *r);
}

int loopsan_report_add_note(char ***notes, size_t *n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int len = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (len < 0)
    return -1;
  char **grown = realloc(*notes, sizeof **notes * (*n + 1));
  if (!grown) {
    free(s);
    return -1;
  }
  grown[(*n)++] = s;
  *notes = grown;
  return 0;
}

static int compare_findings(const void *a, const void *b) {
  const struct loopsan_finding *x = a, *y = b;
  if (x->severity != y->severity)
    return x->severity < y->severity ? -1 : 1;
  if (x->kind != y->kind)
    return x->kind < y->kind ? -1 : 1;
  if (x->duration_ms != y->duration_ms)
    return x->duration_ms > y->duration_ms ? -1 : 1;
  if (x->count != y->count)
    return x->count > y->count ? -1 : 1;
  if (x->pid != y->pid)
    return x->pid < y->pid ? -1 : 1;
  return x->message && y->message ? strcmp(x->message, y->message) : 0;
}

void loopsan_report_sort(struct loopsan_report *r) {
  if (r->n_findings > 1)
    qsort(r->findings, r->n_findings, sizeof *r->findings, compare_findings);
}

int loopsan_finding_fails(const struct loopsan_finding *f, unsigned long fail_on) {
  return !f->suppressed && ((fail_on & (1ul << f->kind)) || (fail_on & f->also));
}

void loopsan_report_summary(const struct loopsan_report *r, unsigned counts[LOOPSAN_KIND_COUNT]) {
  memset(counts, 0, sizeof(unsigned) * LOOPSAN_KIND_COUNT);
  for (size_t i = 0; i < r->n_findings; i++)
    if (!r->findings[i].suppressed)
      counts[r->findings[i].kind] += r->findings[i].count;
}
