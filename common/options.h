/* Options shared by the shim (LOOPSAN_OPTIONS=key=value:key=value) and the
 * front end (--key=value). One table describes them all, so both spell and
 * check them the same way. Parsing never allocates: the shim parses in its
 * constructor, before it trusts malloc. */
#ifndef LOOPSAN_OPTIONS_H
#define LOOPSAN_OPTIONS_H

#include <stddef.h>

enum loopsan_record_mode { LOOPSAN_RECORD_FINDINGS = 0, LOOPSAN_RECORD_ALL = 1 };

#define LOOPSAN_PATH_MAX 4096

struct loopsan_options {
  unsigned slow_ms;     /* slow-callback / blocked-loop threshold */
  unsigned blocking_ms; /* blocking-call threshold */
  unsigned stack_depth; /* frames kept per stack */
  int record_mode;      /* enum loopsan_record_mode */
  char trace_dir[LOOPSAN_PATH_MAX];
};

void loopsan_options_default(struct loopsan_options *opts);

/* Set one option by its LOOPSAN_OPTIONS name (slow_ms, blocking_ms,
 * stack_depth, record, trace_dir). On error returns -1 and writes a message
 * naming the option and its valid values into err. */
int loopsan_options_set(struct loopsan_options *opts, const char *key, size_t key_len,
                        const char *value, size_t value_len, char *err, size_t err_len);

/* Parse "key=value:key=value". Stops at the first bad pair (-1, err set). */
int loopsan_options_parse(struct loopsan_options *opts, const char *spec, char *err, size_t err_len);

/* Render opts as a LOOPSAN_OPTIONS string. Returns -1 if it does not fit
 * (trace_dir may not contain ':'). */
int loopsan_options_format(const struct loopsan_options *opts, char *out, size_t out_len);

/* "slow_ms, blocking_ms, ..." for error messages. */
const char *loopsan_options_names(void);

#endif
