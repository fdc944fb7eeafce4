/* The folded-stacks report, for flamegraph.pl and speedscope: one line per
 * stack, `frame;frame;...;callback <microseconds>`, weighted by the time
 * spent in callbacks (every call counted), rooted at the program and at
 * the creation site of each callback's objects. Where a slow callback was
 * sampled (or blocked in a libc call), its time goes on past the callback
 * into where it was stuck. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "reports/report.h"

static const char *base_of(const char *path) {
  const char *s = path ? strrchr(path, '/') : NULL;
  return s ? s + 1 : path;
}

/* S with the characters folded stacks use (';', ' ') and line ends taken
 * out. */
static void put_clean(FILE *out, const char *s) {
  for (; *s; s++)
    fputc(*s == ';' || *s == ' ' || *s == '\n' || *s == '\r' ? '_' : *s, out);
}

/* A frame's name, cleaned. */
static void name(FILE *out, const struct loopsan_frame_owned *f) {
  char buf[512];
  if (f->function)
    snprintf(buf, sizeof buf, "%s", f->function);
  else if (f->module)
    snprintf(buf, sizeof buf, "%s+0x%" PRIx64, base_of(f->module), f->module_offset);
  else
    snprintf(buf, sizeof buf, "0x%" PRIx64, f->address);
  put_clean(out, buf);
}

/* root;created_at (outermost first);callback */
static void prefix(FILE *out, const struct loopsan_process *p,
                   const struct loopsan_frame_owned *made, size_t n_made,
                   const struct loopsan_frame_owned *cb) {
  put_clean(out, p->exe && p->exe[0] ? base_of(p->exe) : "?");
  for (size_t k = n_made; k-- > 0;) {
    fputc(';', out);
    name(out, &made[k]);
  }
  fputc(';', out);
  if (cb)
    name(out, cb);
  else
    fputs("?", out);
}

static int same_callback(const struct loopsan_frame_owned *a, const struct loopsan_frame_owned *b) {
  return a->address == b->address;
}

int loopsan_render_folded(const struct loopsan_report *r, const struct loopsan_render_options *opts,
                          FILE *out) {
  (void)opts;
  for (size_t pi = 0; pi < r->n_processes; pi++) {
    const struct loopsan_process *p = &r->processes[pi];
    for (size_t i = 0; i < p->n_sites; i++) {
      const struct loopsan_callback_site *s = &p->sites[i];
      double us = s->total_ms * 1000.0;
      /* The slow calls that were sampled go on into their stacks; the rest
       * of the site's time stays on the callback. */
      for (size_t k = 0; k < r->n_findings; k++) {
        const struct loopsan_finding *f = &r->findings[k];
        if (f->process != pi || f->kind != LOOPSAN_KIND_SLOW_CALLBACK || !f->n_stack ||
            !f->has_callback || !s->has_callback || !same_callback(&f->callback, &s->callback))
          continue;
        double slow_us = f->duration_ms * 1000.0 * (f->count ? 1 : 0);
        if (slow_us > us)
          slow_us = us;
        us -= slow_us;
        if (llround(slow_us) <= 0)
          continue;
        prefix(out, p, s->created_at, s->n_created_at, &s->callback);
        /* the stack, from below the callback to where it was stuck */
        size_t below = f->n_stack;
        for (size_t j = 0; j < f->n_stack; j++)
          if (same_callback(&f->stack[j], &f->callback) ||
              (f->stack[j].function && f->callback.function &&
               strcmp(f->stack[j].function, f->callback.function) == 0)) {
            below = j;
            break;
          }
        for (size_t j = below; j-- > 0;) {
          fputc(';', out);
          name(out, &f->stack[j]);
        }
        fprintf(out, " %lld\n", llround(slow_us));
      }
      if (llround(us) <= 0)
        continue;
      prefix(out, p, s->created_at, s->n_created_at, s->has_callback ? &s->callback : NULL);
      fprintf(out, " %lld\n", llround(us));
    }
  }
  return 0;
}
