/* The text report, for people: grouped by process, worst first, each
 * finding a headline in asyncio's words and stacks in ASan's layout. */
#include <inttypes.h>
#include <string.h>

#include "reports/report.h"

/* Colour, as the sanitizers use it (--color): the severity and kind of a
 * headline, function names in stacks, section labels, the summary. */
static int use_color;
#define PAINT(code) (use_color ? "\033[" code "m" : "")
#define RESET PAINT("0")

static const char *basename_of(const char *path) {
  const char *s = path ? strrchr(path, '/') : NULL;
  return s ? s + 1 : path;
}

static void print_location(FILE *out, const struct loopsan_frame_owned *f) {
  if (f->function)
    fprintf(out, "%s%s%s", PAINT("1;34"), f->function, RESET);
  else if (f->module)
    fprintf(out, "%s+0x%" PRIx64, basename_of(f->module), f->module_offset);
  else
    fprintf(out, "0x%" PRIx64, f->address);
  if (f->file) {
    fprintf(out, " %s", f->file);
    if (f->line > 0)
      fprintf(out, ":%d", f->line);
  } else if (f->function && f->module) {
    fprintf(out, " (%s)", basename_of(f->module));
  }
}

static void print_frames(FILE *out, const char *prefix, const struct loopsan_frame_owned *f,
                         size_t n) {
  for (size_t i = 0; i < n; i++) {
    fprintf(out, "%s    #%zu 0x%" PRIx64 " in ", prefix, i, f[i].address);
    print_location(out, &f[i]);
    fputc('\n', out);
  }
}

static void print_finding(FILE *out, const char *prefix, const struct loopsan_finding *f) {
  const char *sev = f->severity == LOOPSAN_SEV_ERROR     ? "ERROR"
                    : f->severity == LOOPSAN_SEV_WARNING ? "WARNING"
                                                         : "NOTE";
  fprintf(out, "%s %s%s: %s%s: %s%s%s\n", prefix,
          f->severity == LOOPSAN_SEV_ERROR ? PAINT("1;31") : PAINT("1;35"), sev,
          loopsan_kind_name(f->kind), RESET, f->message, f->in_baseline ? " [in baseline]" : "",
          RESET);
  /* (the timed kinds say "the slowest of N" in their message) */
  if (f->count > 1 && f->kind != LOOPSAN_KIND_SLOW_CALLBACK &&
      f->kind != LOOPSAN_KIND_BLOCKED_LOOP && f->kind != LOOPSAN_KIND_BLOCKING_CALL)
    fprintf(out, "%s   (%u times from the same place)\n", prefix, f->count);
  if (f->detail)
    fprintf(out, "%s   %s\n", prefix, f->detail);
  if (f->has_callback) {
    /* The callback that ran (slow, blocking, crash), the function a
     * blocked-loop waits in, or the callback of the object a finding is
     * about (not where a bad call was made: its stack says that). */
    fprintf(out, "%s   %s: ", prefix,
            f->kind == LOOPSAN_KIND_BLOCKED_LOOP ? "loop waits in"
            : f->kind == LOOPSAN_KIND_SLOW_CALLBACK || f->kind == LOOPSAN_KIND_BLOCKING_CALL ||
                    f->kind == LOOPSAN_KIND_CRASH
                ? "callback"
                : "its callback");
    print_location(out, &f->callback);
    fputc('\n', out);
  }
  if (f->n_stack) {
    fprintf(out, "%s   %s", prefix,
            f->kind == LOOPSAN_KIND_UNCLOSED_LOOP ? "close attempted at"
            : f->kind == LOOPSAN_KIND_SLOW_CALLBACK || f->kind == LOOPSAN_KIND_BLOCKED_LOOP
                ? "stuck at"
            : f->kind == LOOPSAN_KIND_BLOCKING_CALL ? "blocked at"
            : f->kind == LOOPSAN_KIND_CRASH         ? "crashed at"
                                                    : "at");
    if (f->stall_taken == 2 && f->stall_here == 2)
      fputs(" (both samples taken while it ran found it here)", out);
    else if (f->stall_taken > 1 && f->stall_here == f->stall_taken)
      fprintf(out, " (all %u samples taken while it ran found it here)", f->stall_taken);
    else if (f->stall_taken > 1)
      fprintf(out, " (%u of the %u samples taken while it ran found it here)", f->stall_here,
              f->stall_taken);
    fputs(":\n", out);
    print_frames(out, prefix, f->stack, f->n_stack);
  }
  if (f->n_cause) {
    fprintf(out, "%s   %s:\n", prefix, f->cause_label ? f->cause_label : "made wrong at");
    print_frames(out, prefix, f->cause, f->n_cause);
  }
  if (f->object_type) {
    fprintf(out, "%s   %s 0x%" PRIx64 " created at:\n", prefix, f->object_type, f->object_address);
    if (f->n_created_at)
      print_frames(out, prefix, f->created_at, f->n_created_at);
    else
      fprintf(out, "%s    (no stack recorded)\n", prefix);
    /* The async chain: where the callback that made it came from. */
    for (size_t k = 0; k < f->n_chain; k++) {
      const struct loopsan_chain_link *c = &f->chain[k];
      char name[256] = "?";
      if (c->has_callback && c->callback.function) {
        snprintf(name, sizeof name, "%s()", c->callback.function);
      } else if (c->has_callback && c->callback.module) { /* no symbol: module+offset */
        const char *base = strrchr(c->callback.module, '/');
        snprintf(name, sizeof name, "%s+0x%" PRIx64, base ? base + 1 : c->callback.module,
                 c->callback.module_offset);
      }
      fprintf(out, "%s   ... in callback %s of %s, which was created at:\n", prefix, name,
              c->object_type ? c->object_type : "an object");
      print_frames(out, prefix, c->created_at, c->n_created_at);
    }
  }
  fprintf(out, "%s\n", prefix);
}

/* The slowest callback sites, by their longest call: how long they take. */
#define SITES_SHOWN 5
static int longer_max(const void *a, const void *b) {
  return ((const struct loopsan_callback_site *)a)->max_ms >
         ((const struct loopsan_callback_site *)b)->max_ms;
}

static void print_sites(FILE *out, const char *prefix, const struct loopsan_process *p) {
  const void *top[SITES_SHOWN];
  size_t n = 0;
  for (size_t i = 0; i < p->n_sites; i++)
    loopsan_top_insert(top, &n, SITES_SHOWN, &p->sites[i], longer_max);
  if (n)
    fprintf(out, "%s slowest callbacks (of %zu callback function%s timed, every call):\n", prefix,
            p->n_sites, p->n_sites == 1 ? "" : "s");
  for (size_t i = 0; i < n; i++) {
    const struct loopsan_callback_site *s = top[i];
    fprintf(out, "%s   ", prefix);
    if (s->has_callback)
      print_location(out, &s->callback);
    else
      fputs("?", out);
    fprintf(out, " (%s): %" PRIu64 " call%s, p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", s->library,
            s->count, s->count == 1 ? "" : "s", s->p50_ms, s->p99_ms, s->max_ms);
  }
}

/* What was seen, as valgrind's "total heap usage: N allocs, N frees". */
static void print_observed(FILE *out, const char *prefix, const struct loopsan_process *p) {
  for (size_t i = 0; i < p->n_observations; i++) {
    const struct loopsan_observed *o = &p->observations[i];
    uint64_t loops_ended = 0;
    for (size_t k = 0; k < o->n_types; k++)
      loops_ended += o->types[k].is_loop ? o->types[k].ended : 0;
    if (strcmp(o->library, "generic") == 0) { /* no objects: loop iterations, timed */
      fprintf(out, "%s observed generic: %" PRIu64 " loop iteration%s timed\n", prefix,
              o->callbacks, o->callbacks == 1 ? "" : "s");
      continue;
    }
    fprintf(out,
            "%s observed %s: %" PRIu64 " loop%s (%" PRIu64 " closed), %" PRIu64
            " callback%s dispatched",
            prefix, o->library, o->loops, o->loops == 1 ? "" : "s", loops_ended, o->callbacks,
            o->callbacks == 1 ? "" : "s");
    const char *sep = "; created (ended): ";
    for (size_t k = 0; k < o->n_types; k++) {
      if (o->types[k].is_loop)
        continue;
      fprintf(out, "%s%" PRIu64 " %s", sep, o->types[k].created, o->types[k].name);
      if (!o->types[k].is_watcher) /* a watcher is stopped, never closed */
        fprintf(out, " (%" PRIu64 ")", o->types[k].ended);
      sep = ", ";
    }
    fputc('\n', out);
  }
}

int loopsan_render_text(const struct loopsan_report *r, const struct loopsan_render_options *opts,
                        FILE *out) {
  use_color = opts && opts->color;
  unsigned counts[LOOPSAN_KIND_COUNT];
  loopsan_report_summary(r, counts);
  unsigned total = 0;
  for (int k = 0; k < LOOPSAN_KIND_COUNT; k++)
    total += counts[k];
  for (size_t i = 0; i < r->n_notes; i++)
    fprintf(out, "loopsan: note: %s\n", r->notes[i]);
  size_t quiet = 0; /* processes (shells, helpers) that used no event loop */
  for (size_t pi = 0; pi < r->n_processes; pi++) {
    const struct loopsan_process *p = &r->processes[pi];
    char prefix[32];
    snprintf(prefix, sizeof prefix, "==%d==", p->pid);
    size_t n = 0;
    for (size_t i = 0; i < r->n_findings; i++) /* as SUMMARY counts them: merged ones too */
      if (r->findings[i].process == pi && !r->findings[i].suppressed)
        n += r->findings[i].count ? r->findings[i].count : 1;
    /* Fold the shells and helpers of a run, unless something about them
     * deserves a look (killed, damaged trace). */
    if (!p->observed && n == 0 && r->n_processes > 1 && p->ended && p->n_notes <= 1) {
      quiet++;
      continue;
    }
    fprintf(out, "%s loopsan: %s (pid %d", prefix, p->exe && p->exe[0] ? p->exe : "?", p->pid);
    for (size_t q = 0; q < r->n_processes; q++)
      if (q != pi && p->ppid && r->processes[q].pid == p->ppid) {
        fprintf(out, ", child of %d", p->ppid);
        break;
      }
    if (p->replaced_by_exec)
      fprintf(out, ", image replaced by exec");
    if (p->n_libraries) {
      fprintf(out, ", ");
      for (size_t i = 0; i < p->n_libraries; i++)
        fprintf(out, "%s%s", i ? ", " : "", p->libraries[i]);
    }
    fprintf(out, "): %zu finding%s\n", n, n == 1 ? "" : "s");
    print_observed(out, prefix, p);
    print_sites(out, prefix, p);
    for (size_t i = 0; i < p->n_notes; i++)
      fprintf(out, "%s note: %s\n", prefix, p->notes[i]);
    fprintf(out, "%s\n", prefix);
    for (size_t i = 0; i < r->n_findings; i++) /* suppressed: not shown (valgrind's way) */
      if (r->findings[i].process == pi && !r->findings[i].suppressed)
        print_finding(out, prefix, &r->findings[i]);
  }
  if (quiet)
    fprintf(out,
            "loopsan: %zu %sprocess%s used no event loop loopsan observes (see --format=json)\n",
            quiet, quiet < r->n_processes ? "other " : "", quiet == 1 ? "" : "es");
  fprintf(out, "%sSUMMARY: loopsan: ", PAINT("1"));
  if (!r->n_processes) {
    fprintf(out, "nothing observed (see the note above)%s\n", RESET);
    return 0;
  }
  if (!total) {
    fprintf(out, "no problems found");
  } else {
    int first = 1;
    for (int k = 0; k < LOOPSAN_KIND_COUNT; k++) {
      if (!counts[k])
        continue;
      fprintf(out, "%s%u %s", first ? "" : ", ", counts[k], loopsan_kind_name(k));
      first = 0;
    }
  }
  fprintf(out, " in %zu process%s", r->n_processes, r->n_processes == 1 ? "" : "es");
  if (r->n_suppressed)
    fprintf(out, "; %u finding%s suppressed by %u rule%s", r->n_suppressed,
            r->n_suppressed == 1 ? "" : "s", r->n_rules_used, r->n_rules_used == 1 ? "" : "s");
  if (r->n_in_baseline)
    fprintf(out, "; %u known from the baseline", r->n_in_baseline);
  if (r->trace_dir)
    fprintf(out, " (traces: %s)", r->trace_dir);
  fprintf(out, "%s\n", RESET);
  return 0;
}
