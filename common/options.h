/* Options shared by the shim (LOOPSAN_OPTIONS=key=value:key=value) and the
 * front end (--name=value): one table (common/options.def) describes them
 * all, so both spell, check and document them the same way. Parsing never
 * allocates: the shim parses in its constructor, before it trusts malloc. */
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

enum loopsan_option_type {
  LOOPSAN_OPTTYPE_UINT,   /* a whole number from min to max */
  LOOPSAN_OPTTYPE_RECORD, /* findings | all */
  LOOPSAN_OPTTYPE_PATH,
  LOOPSAN_OPTTYPE_FORMAT, /* front end only, from here on */
  LOOPSAN_OPTTYPE_FILE,
  LOOPSAN_OPTTYPE_KINDS,
  LOOPSAN_OPTTYPE_EXITCODE,
  LOOPSAN_OPTTYPE_FLAG,
  LOOPSAN_OPTTYPE_COLOR,
};

enum loopsan_option_id {
#define LOOPSAN_OPTION(id, key, name, short_name, type, min, max, def, cli_def, metavar, help, \
                       man)                                                                    \
  LOOPSAN_OPT_##id,
#include "common/options.def"
#undef LOOPSAN_OPTION
  LOOPSAN_OPTION_COUNT
};

/* One row of common/options.def. */
struct loopsan_option_desc {
  enum loopsan_option_id id;
  const char *key;  /* LOOPSAN_OPTIONS key, NULL for front-end options */
  const char *name; /* --name */
  char short_name;
  enum loopsan_option_type type;
  unsigned min, max;
  const char *def, *cli_def;
  const char *metavar; /* NULL: takes no value */
  const char *help, *man;
};

extern const struct loopsan_option_desc loopsan_option_table[LOOPSAN_OPTION_COUNT];

/* The default as the front end tells it ("100", "off"), or NULL. */
const char *loopsan_option_default_text(const struct loopsan_option_desc *d);

void loopsan_options_default(struct loopsan_options *opts);

/* Set one option by its LOOPSAN_OPTIONS key (slow_ms, blocking_ms,
 * stack_depth, record, trace_dir). On error returns -1 and writes a message
 * naming the option and its valid values into err. */
int loopsan_options_set(struct loopsan_options *opts, const char *key, size_t key_len,
                        const char *value, size_t value_len, char *err, size_t err_len);

/* Parse "key=value:key=value". Stops at the first bad pair (-1, err set). */
int loopsan_options_parse(struct loopsan_options *opts, const char *spec, char *err,
                          size_t err_len);

/* Render opts as a LOOPSAN_OPTIONS string. Returns -1 if it does not fit
 * (trace_dir may not contain ':'). */
int loopsan_options_format(const struct loopsan_options *opts, char *out, size_t out_len);

#endif
