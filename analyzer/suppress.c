/* The CI gate's filters, applied to the findings model after the analysis:
 * LSan-style suppressions (`kind:pattern`, the pattern matched against the
 * function, file and module names of a finding's creation stack, its
 * callback and its stack), and a baseline (an earlier JSON report: its
 * findings are known, matched by kind, callback and creation site, never
 * by address or pid). Suppressed and known findings stay in the model,
 * marked, and never fail a run. */
#include "analyzer/suppress.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/json_read.h"

struct loopsan_suppression {
  int kind; /* enum loopsan_kind, or -1: every kind */
  char *pattern;
  unsigned used;
  unsigned line;
};

static void trim(char **s) {
  while (**s == ' ' || **s == '\t')
    (*s)++;
  char *e = *s + strlen(*s);
  while (e > *s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
    *--e = 0;
}

int loopsan_suppressions_load(struct loopsan_suppressions *s, const char *path, char *err,
                              size_t err_len) {
  FILE *f = fopen(path, "re");
  if (!f) {
    snprintf(err, err_len, "--suppressions=%s: %s", path, strerror(errno));
    return -1;
  }
  char buf[1024];
  unsigned line = 0;
  int rc = 0;
  while (fgets(buf, sizeof buf, f)) {
    line++;
    char *p = buf;
    char *hash = strchr(p, '#');
    if (hash)
      *hash = 0;
    trim(&p);
    if (!*p)
      continue;
    char *colon = strchr(p, ':');
    int kind = -1;
    if (colon) {
      *colon = 0;
      char *k = p;
      trim(&k);
      if (strcmp(k, "*") != 0 && (kind = loopsan_kind_from_name(k, strlen(k))) < 0) {
        char names[512];
        size_t off = 0;
        for (int i = 0; i < LOOPSAN_KIND_COUNT && off < sizeof names; i++)
          off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", i ? ", " : "",
                                  loopsan_kind_name(i));
        snprintf(err, err_len, "%s:%u: unknown kind '%s'; valid kinds: %s, or *", path, line, k,
                 names);
        rc = -1;
        break;
      }
      p = colon + 1;
      trim(&p);
    }
    if (!colon || !*p) {
      snprintf(err, err_len, "%s:%u: expected kind:pattern (e.g. unclosed-handle:open_cache)", path,
               line);
      rc = -1;
      break;
    }
    struct loopsan_suppression *grown = realloc(s->rules, (s->n + 1) * sizeof *grown);
    char *pattern = strdup(p);
    if (!grown || !pattern) {
      free(pattern);
      if (grown)
        s->rules = grown;
      snprintf(err, err_len, "%s: out of memory", path);
      rc = -1;
      break;
    }
    s->rules = grown;
    s->rules[s->n++] = (struct loopsan_suppression){kind, pattern, 0, line};
  }
  fclose(f);
  return rc;
}

/* LSan's matching: the pattern anywhere in the name, with * wildcards. */
static int name_matches(const char *pattern, const char *name) {
  if (!name)
    return 0;
  char wrapped[1100];
  snprintf(wrapped, sizeof wrapped, "*%s*", pattern);
  return fnmatch(wrapped, name, 0) == 0;
}

static int frame_matches(const char *pattern, const struct loopsan_frame_owned *f) {
  const char *module = f->module ? strrchr(f->module, '/') : NULL;
  return name_matches(pattern, f->function) || name_matches(pattern, f->file) ||
         name_matches(pattern, module ? module + 1 : f->module);
}

static int finding_matches(const struct loopsan_suppression *rule,
                           const struct loopsan_finding *f) {
  if (rule->kind >= 0 && rule->kind != (int)f->kind)
    return 0;
  for (size_t i = 0; i < f->n_created_at; i++)
    if (frame_matches(rule->pattern, &f->created_at[i]))
      return 1;
  for (size_t i = 0; i < f->n_stack; i++)
    if (frame_matches(rule->pattern, &f->stack[i]))
      return 1;
  return f->has_callback && frame_matches(rule->pattern, &f->callback);
}

void loopsan_suppressions_apply(struct loopsan_suppressions *s, struct loopsan_report *r) {
  for (size_t i = 0; i < r->n_findings; i++) {
    struct loopsan_finding *f = &r->findings[i];
    for (size_t k = 0; k < s->n && !f->suppressed; k++)
      if (finding_matches(&s->rules[k], f)) {
        f->suppressed = 1;
        s->rules[k].used += f->count ? f->count : 1;
        r->n_suppressed += f->count ? f->count : 1;
      }
  }
  for (size_t k = 0; k < s->n; k++)
    r->n_rules_used += s->rules[k].used != 0;
}

void loopsan_suppressions_free(struct loopsan_suppressions *s) {
  for (size_t k = 0; k < s->n; k++)
    free(s->rules[k].pattern);
  free(s->rules);
  s->rules = NULL;
  s->n = 0;
}

/* ---- the site of a finding: what suppressions and baselines key on ---- */

static int library_frame(const char *module) {
  return module && (strncmp(module, "/lib/", 5) == 0 || strncmp(module, "/usr/lib/", 9) == 0 ||
                    strncmp(module, "/lib64/", 7) == 0);
}

/* The innermost frame of the creation stack (else of the stack) that is
 * the program's own (not a system library's), or NULL. */
static const struct loopsan_frame_owned *site_of(const struct loopsan_finding *f) {
  for (size_t i = 0; i < f->n_created_at; i++)
    if (!library_frame(f->created_at[i].module) && f->created_at[i].function)
      return &f->created_at[i];
  for (size_t i = 0; i < f->n_stack; i++)
    if (!library_frame(f->stack[i].module) && f->stack[i].function)
      return &f->stack[i];
  return NULL;
}

void loopsan_suppressions_generate(const struct loopsan_report *r, FILE *out) {
  for (size_t i = 0; i < r->n_findings; i++) {
    const struct loopsan_finding *f = &r->findings[i];
    if (f->suppressed || f->in_baseline)
      continue;
    const struct loopsan_frame_owned *site = site_of(f);
    const char *what = site                                      ? site->function
                       : f->has_callback && f->callback.function ? f->callback.function
                                                                 : NULL;
    fprintf(out, "# %s: %s\n", loopsan_kind_name(f->kind), f->message);
    if (what)
      fprintf(out, "%s:%s\n", loopsan_kind_name(f->kind), what);
    else
      fprintf(out, "# (no function to name: suppress by module or file by hand)\n");
  }
}

/* ---- baseline ---- */

/* kind, callback and creation site: "kind|callback|function|file name"
 * (no line, address nor pid: the same finding after an edit above it). */
static char *key_of(const char *kind, const char *callback, const char *function,
                    const char *file) {
  char *key = NULL;
  const char *base = file ? strrchr(file, '/') : NULL;
  file = base ? base + 1 : file; /* the same in another checkout or build directory */
  if (asprintf(&key, "%s|%s|%s|%s", kind ? kind : "", callback ? callback : "",
               function ? function : "", file ? file : "") < 0)
    return NULL;
  return key;
}

static char *finding_key(const struct loopsan_finding *f) {
  const struct loopsan_frame_owned *site = site_of(f);
  return key_of(loopsan_kind_name(f->kind), f->has_callback ? f->callback.function : NULL,
                site ? site->function : NULL, site ? site->file : NULL);
}

/* The same key of a finding of a JSON report (SPEC.md section 3). */
static char *json_finding_key(const struct loopsan_json *f) {
  const char *kind = loopsan_json_string(loopsan_json_get(f, "kind"));
  const char *callback =
      loopsan_json_string(loopsan_json_get(loopsan_json_get(f, "callback"), "function"));
  const char *function = NULL, *file = NULL;
  const char *stacks[] = {"created_at", "stack"};
  for (size_t s = 0; s < 2 && !function; s++) {
    const struct loopsan_json *frames = loopsan_json_get(f, stacks[s]);
    for (size_t i = 0; i < loopsan_json_length(frames); i++) {
      const struct loopsan_json *fr = loopsan_json_at(frames, i);
      const char *module = loopsan_json_string(loopsan_json_get(fr, "module"));
      const char *fn = loopsan_json_string(loopsan_json_get(fr, "function"));
      if (!library_frame(module) && fn) {
        function = fn;
        file = loopsan_json_string(loopsan_json_get(fr, "file"));
        break;
      }
    }
  }
  return key_of(kind, callback, function, file);
}

int loopsan_baseline_load(struct loopsan_baseline *b, const char *path, char *err, size_t err_len) {
  FILE *f = fopen(path, "re");
  if (!f) {
    snprintf(err, err_len, "--baseline=%s: %s", path, strerror(errno));
    return -1;
  }
  char *text = NULL;
  size_t len = 0, cap = 0;
  char buf[65536];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
    if (len + got + 1 > cap) {
      cap = (len + got + 1) * 2;
      char *grown = realloc(text, cap);
      if (!grown) {
        free(text);
        fclose(f);
        snprintf(err, err_len, "--baseline=%s: out of memory", path);
        return -1;
      }
      text = grown;
    }
    memcpy(text + len, buf, got);
    len += got;
  }
  int read_error = ferror(f) ? errno : 0;
  fclose(f);
  if (read_error) {
    free(text);
    snprintf(err, err_len, "--baseline=%s: %s", path, strerror(read_error));
    return -1;
  }
  char perr[256] = "empty";
  struct loopsan_json *doc = text ? loopsan_json_parse(text, len, perr, sizeof perr) : NULL;
  free(text);
  const struct loopsan_json *findings = loopsan_json_get(doc, "findings");
  const char *tool = loopsan_json_string(loopsan_json_get(doc, "tool"));
  if (!doc || !findings || !tool || strcmp(tool, "loopsan") != 0) {
    snprintf(err, err_len, "--baseline=%s: not a loopsan JSON report (%s)", path,
             doc ? "no tool \"loopsan\" with findings" : perr);
    loopsan_json_free(doc);
    return -1;
  }
  size_t n = loopsan_json_length(findings);
  b->keys = calloc(n ? n : 1, sizeof *b->keys);
  for (size_t i = 0; b->keys && i < n; i++)
    if ((b->keys[b->n] = json_finding_key(loopsan_json_at(findings, i))) != NULL)
      b->n++;
  loopsan_json_free(doc);
  return 0;
}

void loopsan_baseline_mark(const struct loopsan_baseline *b, struct loopsan_report *r) {
  for (size_t i = 0; i < r->n_findings; i++) {
    struct loopsan_finding *f = &r->findings[i];
    char *key = finding_key(f);
    for (size_t k = 0; key && k < b->n; k++)
      if (strcmp(b->keys[k], key) == 0) {
        f->in_baseline = 1;
        r->n_in_baseline += f->count ? f->count : 1;
        break;
      }
    free(key);
  }
}

void loopsan_baseline_free(struct loopsan_baseline *b) {
  for (size_t k = 0; k < b->n; k++)
    free(b->keys[k]);
  free(b->keys);
  b->keys = NULL;
  b->n = 0;
}
