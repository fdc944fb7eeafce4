#include "common/options.h"

#include <stdio.h>
#include <string.h>

const struct loopsan_option_desc loopsan_option_table[LOOPSAN_OPTION_COUNT] = {
#define LOOPSAN_OPTION(id, key, name, short_name, type, min, max, def, cli_def, metavar, help, \
                       man)                                                                    \
  {LOOPSAN_OPT_##id, key,     name, short_name, LOOPSAN_OPTTYPE_##type, min, max, def,         \
   cli_def,          metavar, help, man},
#include "common/options.def"
#undef LOOPSAN_OPTION
};

static const char *const record_names[] = {"findings", "all"};

const char *loopsan_option_default_text(const struct loopsan_option_desc *d) {
  return d->cli_def ? d->cli_def : d->def;
}

/* Where a LOOPSAN_OPTIONS key's value lives. */
static void *field_of(struct loopsan_options *opts, enum loopsan_option_id id) {
  switch (id) {
  case LOOPSAN_OPT_SLOW_MS: return &opts->slow_ms;
  case LOOPSAN_OPT_BLOCKING_MS: return &opts->blocking_ms;
  case LOOPSAN_OPT_STACK_DEPTH: return &opts->stack_depth;
  case LOOPSAN_OPT_RECORD: return &opts->record_mode;
  case LOOPSAN_OPT_TRACE_DIR: return opts->trace_dir;
  default: return NULL;
  }
}

/* "slow_ms, blocking_ms, ..." for error messages. */
static void key_names(char *buf, size_t n) {
  size_t off = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < LOOPSAN_OPTION_COUNT && off < n; i++)
    if (loopsan_option_table[i].key)
      off += (size_t)snprintf(buf + off, n - off, "%s%s", off ? ", " : "",
                              loopsan_option_table[i].key);
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
  const struct loopsan_option_desc *d = NULL;
  for (size_t i = 0; i < LOOPSAN_OPTION_COUNT && !d; i++) {
    const char *k = loopsan_option_table[i].key;
    if (k && strlen(k) == key_len && memcmp(k, key, key_len) == 0)
      d = &loopsan_option_table[i];
  }
  if (!d) {
    char names[256];
    key_names(names, sizeof names);
    snprintf(err, err_len, "unknown option '%.*s'; valid options: %s", (int)key_len, key, names);
    return -1;
  }
  char *field = field_of(opts, d->id);
  switch (d->type) {
  case LOOPSAN_OPTTYPE_UINT:
    if (parse_uint(value, value_len, d->min, d->max, (unsigned *)(void *)field) != 0) {
      snprintf(err, err_len, "option '%s' takes a whole number from %u to %u, not '%.*s'", d->key,
               d->min, d->max, (int)value_len, value);
      return -1;
    }
    return 0;
  case LOOPSAN_OPTTYPE_RECORD:
    for (size_t i = 0; i < sizeof record_names / sizeof record_names[0]; i++) {
      if (strlen(record_names[i]) == value_len && memcmp(record_names[i], value, value_len) == 0) {
        *(int *)(void *)field = (int)i;
        return 0;
      }
    }
    snprintf(err, err_len, "option '%s' takes 'findings' or 'all', not '%.*s'", d->key,
             (int)value_len, value);
    return -1;
  case LOOPSAN_OPTTYPE_PATH:
    if (value_len == 0 || value_len >= LOOPSAN_PATH_MAX || memchr(value, '\0', value_len)) {
      snprintf(err, err_len, "option '%s' takes a non-empty path shorter than %d bytes", d->key,
               LOOPSAN_PATH_MAX);
      return -1;
    }
    memcpy(field, value, value_len);
    field[value_len] = '\0';
    return 0;
  default: return 0; /* a front-end option (format, suppressions, ...): not the shim's business */
  }
}

void loopsan_options_default(struct loopsan_options *opts) {
  char err[128];
  memset(opts, 0, sizeof *opts);
  for (size_t i = 0; i < LOOPSAN_OPTION_COUNT; i++) {
    const struct loopsan_option_desc *d = &loopsan_option_table[i];
    if (d->key && d->def)
      loopsan_options_set(opts, d->key, strlen(d->key), d->def, strlen(d->def), err, sizeof err);
  }
}

int loopsan_options_parse(struct loopsan_options *opts, const char *spec, char *err,
                          size_t err_len) {
  const char *p = spec;
  while (p && *p) {
    const char *end = strchr(p, ':');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len > 0) {
      const char *eq = memchr(p, '=', len);
      if (!eq) {
        char names[256];
        key_names(names, sizeof names);
        snprintf(err, err_len, "'%.*s' is not key=value; valid keys: %s", (int)len, p, names);
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
