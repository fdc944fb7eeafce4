/* Command-line parsing, from one table of options. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/findings.h"
#include "cli/cli.h"
#include "reports/report.h"

/* The table is common/options.def: the shim's options and the front
 * end's own, with their defaults and help. */
#define OPTIONS loopsan_option_table
#define N_OPTIONS LOOPSAN_OPTION_COUNT

void loopsan_cli_usage(FILE *out) {
  fprintf(out, "usage: loopsan run [OPTIONS] -- PROGRAM [ARGS...]\n"
               "       loopsan report [OPTIONS] TRACE_OR_DIR...\n"
               "\n"
               "Runs PROGRAM with the loopsan shim preloaded and reports what its event loops\n"
               "did wrong: slow callbacks, callbacks that never returned, handles and loops\n"
               "never closed, handles never started, work still pending at exit. `report`\n"
               "analyses traces again.\n"
               "\noptions:\n");
  for (size_t i = 0; i < N_OPTIONS; i++) {
    const struct loopsan_option_desc *d = &OPTIONS[i];
    char name[64], shorter[8] = "    ";
    if (d->short_name)
      snprintf(shorter, sizeof shorter, "-%c, ", d->short_name);
    char meta[16] = "";
    for (size_t k = 0; d->metavar && d->metavar[k] && k + 1 < sizeof meta; k++)
      meta[k] =
          (char)(d->metavar[k] >= 'a' && d->metavar[k] <= 'z' ? d->metavar[k] - 32 : d->metavar[k]);
    snprintf(name, sizeof name, "%s--%s%s%s", shorter, d->name, d->metavar ? "=" : "", meta);
    const char *def = loopsan_option_default_text(d);
    fprintf(out, "  %-26s %s", name, d->help);
    if (d->type == LOOPSAN_OPTTYPE_UINT)
      fprintf(out, ", %u..%u", d->min, d->max);
    fprintf(out, def ? " (default: %s)\n" : "\n", def);
  }
  fprintf(out, "\nDirect use: LD_PRELOAD=/path/to/libloopsan.so "
               "LOOPSAN_OPTIONS=slow_ms=50:trace_dir=DIR PROGRAM; then loopsan report DIR\n");
}

static void valid_options(char *buf, size_t n) {
  size_t off = 0;
  for (size_t i = 0; i < N_OPTIONS && off < n; i++)
    off += (size_t)snprintf(buf + off, n - off, "%s--%s", i ? ", " : "", OPTIONS[i].name);
}

static int parse_kinds(const char *value, unsigned long *mask, char *err, size_t err_len) {
  *mask = 0;
  const char *p = value;
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    int k = loopsan_kind_from_name(p, len);
    if (k < 0) {
      char names[512];
      size_t off = 0;
      for (int i = 0; i < LOOPSAN_KIND_COUNT && off < sizeof names; i++)
        off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", i ? ", " : "",
                                loopsan_kind_name(i));
      snprintf(err, err_len, "--fail-on: unknown kind '%.*s'; valid kinds: %s", (int)len, p, names);
      return -1;
    }
    *mask |= 1ul << k;
    p = end ? end + 1 : p + len;
  }
  if (!*mask) {
    snprintf(err, err_len, "--fail-on needs at least one kind");
    return -1;
  }
  return 0;
}

static int apply(struct loopsan_cli *cli, const struct loopsan_option_desc *o, const char *v,
                 char *err, size_t err_len) {
  char sub[320];
  if (o->key && o->type < LOOPSAN_OPTTYPE_FORMAT) { /* the shim's option: one parser for both */
    if (loopsan_options_set(&cli->shim, o->key, strlen(o->key), v, strlen(v), sub, sizeof sub) !=
        0) {
      /* Speak of --slow-ms, not slow_ms: the user typed the former. */
      const char *rest = strstr(sub, " takes ");
      snprintf(err, err_len, "--%s%s", o->name, rest ? rest : ": invalid value");
      return -1;
    }
    if (o->id == LOOPSAN_OPT_TRACE_DIR && strchr(v, ':')) {
      snprintf(err, err_len, "--trace-dir: the path may not contain ':'");
      return -1;
    }
    cli->slow_ms_set |= o->id == LOOPSAN_OPT_SLOW_MS;
    cli->trace_dir_set |= o->id == LOOPSAN_OPT_TRACE_DIR;
    return 0;
  }
  switch (o->id) {
  case LOOPSAN_OPT_FORMAT:
    cli->format = loopsan_format_from_name(v);
    if (cli->format < 0) {
      snprintf(err, err_len, "--format: unknown format '%s'; valid formats: %s", v,
               loopsan_format_names());
      return -1;
    }
    return 0;
  case LOOPSAN_OPT_OUTPUT: cli->output = v; return 0;
  case LOOPSAN_OPT_FAIL_ON: return parse_kinds(v, &cli->fail_on, err, err_len);
  case LOOPSAN_OPT_ERROR_EXITCODE: {
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < (long)o->min || n > (long)o->max) {
      snprintf(err, err_len, "--error-exitcode takes a number from %u to %u, not '%s'", o->min,
               o->max, v);
      return -1;
    }
    cli->error_exitcode = (int)n;
    return 0;
  }
  case LOOPSAN_OPT_SUPPRESSIONS:
    if (cli->n_suppressions == (int)(sizeof cli->suppressions / sizeof *cli->suppressions)) {
      snprintf(err, err_len, "--suppressions: at most %zu files",
               sizeof cli->suppressions / sizeof *cli->suppressions);
      return -1;
    }
    cli->suppressions[cli->n_suppressions++] = v;
    return 0;
  case LOOPSAN_OPT_GEN_SUPPRESSIONS: cli->gen_suppressions = 1; return 0;
  case LOOPSAN_OPT_BASELINE: cli->baseline = v; return 0;
  case LOOPSAN_OPT_COLOR:
    if (strcmp(v, "auto") == 0 || strcmp(v, "always") == 0 || strcmp(v, "never") == 0) {
      cli->color = v[0] == 'a' ? (v[1] == 'u' ? 0 : 1) : 2;
      return 0;
    }
    snprintf(err, err_len, "--color: unknown value '%s'; valid values: auto, always, never", v);
    return -1;
  case LOOPSAN_OPT_HELP: cli->command = LOOPSAN_CMD_HELP; return 0;
  case LOOPSAN_OPT_VERSION: cli->command = LOOPSAN_CMD_VERSION; return 0;
  default: return -1;
  }
}

void loopsan_cli_free(struct loopsan_cli *cli) {
  free(cli->args);
  cli->args = NULL;
  cli->n_args = 0;
}

/* LOOPSAN_OPTIONS takes every option that has a key (key=value, separated
 * by ':'), as the sanitizers' *_OPTIONS do; the command line, read after
 * it, overrides it. */
static int apply_env(struct loopsan_cli *cli, char *err, size_t err_len) {
  const char *env = getenv("LOOPSAN_OPTIONS");
  if (!env || !*env)
    return 0;
  char *copy = strdup(env); /* values stay referenced (file names): never freed */
  if (!copy) {
    snprintf(err, err_len, "out of memory");
    return -1;
  }
  char sub[320];
  for (char *item = strtok(copy, ":"); item; item = strtok(NULL, ":")) {
    char *eq = strchr(item, '=');
    const struct loopsan_option_desc *o = NULL;
    for (size_t k = 0; eq && k < LOOPSAN_OPTION_COUNT && !o; k++)
      if (loopsan_option_table[k].key &&
          strlen(loopsan_option_table[k].key) == (size_t)(eq - item) &&
          memcmp(loopsan_option_table[k].key, item, (size_t)(eq - item)) == 0)
        o = &loopsan_option_table[k];
    if (!o) { /* the shim's parser says what is wrong, and what is valid */
      struct loopsan_options scratch;
      loopsan_options_parse(&scratch, item, sub, sizeof sub);
      snprintf(err, err_len, "LOOPSAN_OPTIONS: %s", sub);
      return -1;
    }
    const char *v = eq + 1;
    if (o->type == LOOPSAN_OPTTYPE_FLAG) {
      if (!strcmp(v, "0"))
        continue;
      if (strcmp(v, "1") != 0) {
        snprintf(err, err_len, "LOOPSAN_OPTIONS: %s=%s: invalid value; valid values: 1 or 0", o->key,
                 v);
        return -1;
      }
    }
    if (apply(cli, o, v, sub, sizeof sub) != 0) {
      snprintf(err, err_len, "LOOPSAN_OPTIONS: %s", sub);
      return -1;
    }
  }
  return 0;
}

int loopsan_cli_parse(int argc, char **argv, struct loopsan_cli *cli, char *err, size_t err_len) {
  memset(cli, 0, sizeof *cli);
  loopsan_options_default(&cli->shim);
  cli->error_exitcode = -1;
  for (int k = 0; k < LOOPSAN_KIND_COUNT; k++)
    if (loopsan_kind_severity(k) != LOOPSAN_SEV_INFO)
      cli->fail_on |= 1ul << k;
  if (apply_env(cli, err, err_len) != 0)
    return -1;
  int i = 1;
  if (i < argc && argv[i][0] != '-') {
    if (strcmp(argv[i], "run") == 0)
      cli->command = LOOPSAN_CMD_RUN;
    else if (strcmp(argv[i], "report") == 0)
      cli->command = LOOPSAN_CMD_REPORT;
    else if (strcmp(argv[i], "help") == 0)
      cli->command = LOOPSAN_CMD_HELP;
    else {
      snprintf(err, err_len, "unknown command '%s'; valid commands: run, report, help", argv[i]);
      return -1;
    }
    i++;
  }
  /* `report` takes options anywhere among its paths; `run` stops at the
   * program, whose own options follow it. */
  char **positional = calloc((size_t)argc + 1, sizeof *positional);
  int n_positional = 0;
  if (!positional) {
    snprintf(err, err_len, "out of memory");
    return -1;
  }
  cli->args = positional; /* owned from here on, even if parsing fails */
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (a[0] != '-' || a[1] == '\0') {
      if (cli->command != LOOPSAN_CMD_REPORT)
        break; /* the program */
      positional[n_positional++] = argv[i];
      continue;
    }
    const struct loopsan_option_desc *o = NULL;
    const char *value = NULL;
    if (a[1] == '-') {
      const char *name = a + 2, *eq = strchr(name, '=');
      size_t len = eq ? (size_t)(eq - name) : strlen(name);
      for (size_t k = 0; k < N_OPTIONS; k++)
        if (strlen(OPTIONS[k].name) == len && strncmp(OPTIONS[k].name, name, len) == 0)
          o = &OPTIONS[k];
      value = eq ? eq + 1 : NULL;
    } else {
      for (size_t k = 0; k < N_OPTIONS; k++)
        if (OPTIONS[k].short_name && OPTIONS[k].short_name == a[1])
          o = &OPTIONS[k];
      value = a[2] ? a + 2 : NULL;
    }
    if (!o) {
      char names[400];
      valid_options(names, sizeof names);
      snprintf(err, err_len, "unknown option '%s'; valid options: %s", a, names);
      return -1;
    }
    if (o->metavar && !value) {
      if (i + 1 >= argc) {
        snprintf(err, err_len, "option --%s needs a value", o->name);
        return -1;
      }
      value = argv[++i];
    } else if (!o->metavar && value && a[1] == '-') {
      snprintf(err, err_len, "option --%s takes no value", o->name);
      return -1;
    }
    if (apply(cli, o, value, err, err_len) != 0)
      return -1;
  }
  while (i < argc)
    positional[n_positional++] = argv[i++];
  cli->args = positional;
  cli->n_args = n_positional;
  if (cli->command == LOOPSAN_CMD_HELP || cli->command == LOOPSAN_CMD_VERSION)
    return 0;
  if (cli->command == LOOPSAN_CMD_NONE) {
    snprintf(err, err_len, "no command given; valid commands: run, report, help");
    return -1;
  }
  if (cli->n_args == 0 && cli->command == LOOPSAN_CMD_REPORT && cli->trace_dir_set) {
    positional[0] = cli->shim.trace_dir;
    cli->n_args = 1;
  }
  if (cli->n_args == 0) {
    snprintf(err, err_len,
             cli->command == LOOPSAN_CMD_RUN
                 ? "run: no PROGRAM given (loopsan run [OPTIONS] -- PROGRAM [ARGS...])"
                 : "report: no trace file or directory given");
    return -1;
  }
  return 0;
}
