#include "common/options.h"

#include <stdio.h>
#include <string.h>

enum option_type { OPT_UINT, OPT_RECORD, OPT_PATH };

struct option_desc {
  const char *name;
  enum option_type type;
  size_t offset;
  unsigned min, max; /* for OPT_UINT */
};

#define OPT(name, type, field, min, max) {name, type, offsetof(struct loopsan_options, field), min, max}
static const struct option_desc option_table[] = {
    OPT("slow_ms", OPT_UINT, slow_ms, 1, 3600000),
    OPT("blocking_ms", OPT_UINT, blocking_ms, 1, 3600000),
    OPT("stack_depth", OPT_UINT, stack_depth, 1, 256),
    OPT("record", OPT_RECORD, record_mode, 0, 0),
    OPT("trace_dir", OPT_PATH, trace_dir, 0, 0),
};
#undef OPT
#define N_OPTIONS (sizeof option_table / sizeof option_table[0])

static const char *record_names[] = {"findings", "all"};

void loopsan_options_default(struct loopsan_options *opts) {
  memset(opts, 0, sizeof *opts);
  opts->slow_ms = 100;
  opts->blocking_ms = 10;
  opts->stack_depth = 32;
  opts->record_mode = LOOPSAN_RECORD_FINDINGS;
  opts->trace_dir[0] = '.';
}

const char *loopsan_options_names(void) {
  return "slow_ms, blocking_ms, stack_depth, record, trace_dir";
}

static int parse_uint(const char *v, size_t n, unsigned min, unsigned max, unsigned *out) {
  unsigned long long x = 0;
  if (n == 0 || n > 10)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9')
      return -1;
    x = x * 10 + (unsigned)(v[i] - '0');
  }
  if (x < min || x > max)
    return -1;
  *out = (unsigned)x;
  return 0;
}

int loopsan_options_set(struct loopsan_options *opts, const char *key, size_t key_len,
                        const char *value, size_t value_len, char *err, size_t err_len) {
  const struct option_desc *d = NULL;
  for (size_t i = 0; i < N_OPTIONS; i++) {
    if (strlen(option_table[i].name) == key_len && memcmp(option_table[i].name, key, key_len) == 0) {
      d = &option_table[i];
      break;
    }
  }
  if (!d) {
    snprintf(err, err_len, "unknown option '%.*s'; valid options: %s", (int)key_len, key,
             loopsan_options_names());
    return -1;
  }
  char *field = (char *)opts + d->offset;
  switch (d->type) {
  case OPT_UINT:
    if (parse_uint(value, value_len, d->min, d->max, (unsigned *)(void *)field) != 0) {
      snprintf(err, err_len, "option '%s' takes a whole number from %u to %u, not '%.*s'", d->name,
               d->min, d->max, (int)value_len, value);
      return -1;
    }
    return 0;
  case OPT_RECORD:
    for (size_t i = 0; i < sizeof record_names / sizeof record_names[0]; i++) {
      if (strlen(record_names[i]) == value_len && memcmp(record_names[i], value, value_len) == 0) {
        *(int *)(void *)field = (int)i;
        return 0;
      }
    }
    snprintf(err, err_len, "option '%s' takes 'findings' or 'all', not '%.*s'", d->name,
             (int)value_len, value);
    return -1;
  case OPT_PATH:
    if (value_len == 0 || value_len >= LOOPSAN_PATH_MAX || memchr(value, '\0', value_len)) {
      snprintf(err, err_len, "option '%s' takes a non-empty path shorter than %d bytes", d->name,
               LOOPSAN_PATH_MAX);
      return -1;
    }
    memcpy(field, value, value_len);
    field[value_len] = '\0';
    return 0;
  }
  return -1;
}

int loopsan_options_parse(struct loopsan_options *opts, const char *spec, char *err, size_t err_len) {
  const char *p = spec;
  while (p && *p) {
    const char *end = strchr(p, ':');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len > 0) {
      const char *eq = memchr(p, '=', len);
      if (!eq) {
        snprintf(err, err_len, "'%.*s' is not key=value; valid keys: %s", (int)len, p,
                 loopsan_options_names());
        return -1;
      }
      if (loopsan_options_set(opts, p, (size_t)(eq - p), eq + 1, len - (size_t)(eq - p) - 1, err,
                              err_len) != 0)
        return -1;
    }
    p = end ? end + 1 : NULL;
  }
  return 0;
}

int loopsan_options_format(const struct loopsan_options *opts, char *out, size_t out_len) {
  if (strchr(opts->trace_dir, ':'))
    return -1;
  int n = snprintf(out, out_len, "slow_ms=%u:blocking_ms=%u:stack_depth=%u:record=%s:trace_dir=%s",
                   opts->slow_ms, opts->blocking_ms, opts->stack_depth,
                   record_names[opts->record_mode == LOOPSAN_RECORD_ALL], opts->trace_dir);
  return (n < 0 || (size_t)n >= out_len) ? -1 : 0;
}
