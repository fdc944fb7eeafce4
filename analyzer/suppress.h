/* The CI gate's filters over the findings model: suppressions and a
 * baseline (analyzer/suppress.c). */
#ifndef LOOPSAN_SUPPRESS_H
#define LOOPSAN_SUPPRESS_H

#include <stdio.h>

#include "analyzer/findings.h"

struct loopsan_suppression;
struct loopsan_suppressions {
  struct loopsan_suppression *rules;
  size_t n;
};

/* Add the rules of PATH (`kind:pattern` lines, `*` for every kind, `#`
 * comments). -1 with a message naming the file and line; S keeps the rules
 * read before it, and is freed by the caller either way. */
int loopsan_suppressions_load(struct loopsan_suppressions *s, const char *path, char *err,
                              size_t err_len);
/* Mark the findings a rule matches (r->n_suppressed, r->n_rules_used). */
void loopsan_suppressions_apply(struct loopsan_suppressions *s, struct loopsan_report *r);
void loopsan_suppressions_free(struct loopsan_suppressions *s);
/* A ready rule for each finding not suppressed nor known, with its message
 * as a comment (--gen-suppressions). */
void loopsan_suppressions_generate(const struct loopsan_report *r, FILE *out);
/* The findings of an earlier JSON report (--baseline), as keys: kind,
 * callback and creation site (function and source file name). */
struct loopsan_baseline {
  char **keys;
  size_t n;
};
/* Read PATH (-1 with a message: not readable, not a loopsan JSON report).
 * B, zeroed before, is freed by the caller either way. */
int loopsan_baseline_load(struct loopsan_baseline *b, const char *path, char *err,
                          size_t err_len);
/* Mark the findings of R that B has (r->n_in_baseline). */
void loopsan_baseline_mark(const struct loopsan_baseline *b, struct loopsan_report *r);
void loopsan_baseline_free(struct loopsan_baseline *b);

#endif
