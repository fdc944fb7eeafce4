/* Command-line parsing, from one table of options. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/findings.h"
#include "cli/cli.h"
#include "reports/report.h"

enum opt_id { O_SLOW_MS, O_BLOCKING_MS, O_FORMAT, O_OUTPUT, O_TRACE_DIR, O_FAIL_ON,
              O_ERROR_EXITCODE, O_RECORD, O_STACK_DEPTH, O_HELP, O_VERSION };

struct cli_option {
  const char *long_name;
  char short_name;
  int takes_value;
  enum opt_id id;
  const char *help;
};

static const struct cli_option cli_options[] = {
    {"slow-ms", 0, 1, O_SLOW_MS, "threshold of slow-callback, in ms (default 100)"},
    {"blocking-ms", 0, 1, O_BLOCKING_MS, "threshold of blocking-call, in ms (default 10)"},
    {"format", 0, 1, O_FORMAT, "report format: text (default), json"},
    {"output", 'o', 1, O_OUTPUT, "write the report to FILE (default: stderr for run, stdout for report)"},
    {"trace-dir", 0, 1, O_TRACE_DIR, "where traces are written/read (default: a fresh temporary directory)"},
    {"fail-on", 0, 1, O_FAIL_ON, "kinds that make --error-exitcode apply (default: all warnings and errors)"},
    {"error-exitcode", 0, 1, O_ERROR_EXITCODE, "exit with N when a --fail-on finding exists"},
    {"record", 0, 1, O_RECORD, "findings (default: bounded trace) or all (every dispatch)"},
    {"stack-depth", 0, 1, O_STACK_DEPTH, "frames kept per stack, 1..256 (default 32)"},
    {"help", 'h', 0, O_HELP, "show this help"},
    {"version", 0, 0, O_VERSION, "show the version"},
};
#define N_CLI_OPTIONS (sizeof cli_options / sizeof cli_options[0])

void loopsan_cli_usage(FILE *out) {
  fprintf(out,
          "usage: loopsan run [OPTIONS] -- PROGRAM [ARGS...]\n"
          "       loopsan report [OPTIONS] TRACE_OR_DIR...\n"
          "\n"
          "Runs PROGRAM with the loopsan shim preloaded and reports what its event loops\n"
          "did wrong: slow callbacks, handles and loops never closed, handles never\n"
          "started, work still pending at exit. `report` analyses traces again.\n"
          "\noptions:\n");
  for (size_t i = 0; i < N_CLI_OPTIONS; i++) {
    char name[48];
    snprintf(name, sizeof name, "%s%c%s--%s%s", cli_options[i].short_name ? "-" : "",
             cli_options[i].short_name ? cli_options[i].short_name : ' ',
             cli_options[i].short_name ? ", " : "  ", cli_options[i].long_name,
             cli_options[i].takes_value ? "=VALUE" : "");
    fprintf(out, "  %-26s %s\n", cli_options[i].short_name ? name : name + 1, cli_options[i].help);
  }
  fprintf(out, "\nDirect use: LD_PRELOAD=/path/to/libloopsan.so "
               "LOOPSAN_OPTIONS=slow_ms=50:trace_dir=DIR PROGRAM; then loopsan report DIR\n");
}

static void valid_options(char *buf, size_t n) {
  size_t off = 0;
  for (size_t i = 0; i < N_CLI_OPTIONS && off < n; i++)
    off += (size_t)snprintf(buf + off, n - off, "%s--%s", i ? ", " : "", cli_options[i].long_name);
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

static int apply(struct loopsan_cli *cli, const struct cli_option *o, const char *v, char *err,
                 size_t err_len) {
  char sub[320];
  switch (o->id) {
  case O_SLOW_MS:
  case O_BLOCKING_MS:
  case O_STACK_DEPTH:
  case O_RECORD:
  case O_TRACE_DIR: {
    static const char *const keys[] = {[O_SLOW_MS] = "slow_ms", [O_BLOCKING_MS] = "blocking_ms",
                                       [O_STACK_DEPTH] = "stack_depth", [O_RECORD] = "record",
                                       [O_TRACE_DIR] = "trace_dir"};
    const char *key = keys[o->id];
    if (loopsan_options_set(&cli->shim, key, strlen(key), v, strlen(v), sub, sizeof sub) != 0) {
      /* Speak of --slow-ms, not slow_ms: the user typed the former. */
      const char *rest = strstr(sub, " takes ");
      snprintf(err, err_len, "--%s%s", o->long_name, rest ? rest : ": invalid value");
      return -1;
    }
    if (o->id == O_TRACE_DIR && strchr(v, ':')) {
      snprintf(err, err_len, "--trace-dir: the path may not contain ':'");
      return -1;
    }
    cli->slow_ms_set |= o->id == O_SLOW_MS;
    cli->trace_dir_set |= o->id == O_TRACE_DIR;
    return 0;
  }
  case O_FORMAT:
    cli->format = loopsan_format_from_name(v);
    if (cli->format < 0) {
      snprintf(err, err_len, "--format: unknown format '%s'; valid formats: %s", v,
               loopsan_format_names());
      return -1;
    }
    return 0;
  case O_OUTPUT:
    cli->output = v;
    return 0;
  case O_FAIL_ON:
    return parse_kinds(v, &cli->fail_on, err, err_len);
  case O_ERROR_EXITCODE: {
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < 1 || n > 255) {
      snprintf(err, err_len, "--error-exitcode takes a number from 1 to 255, not '%s'", v);
      return -1;
    }
    cli->error_exitcode = (int)n;
    return 0;
  }
  case O_HELP:
    cli->command = LOOPSAN_CMD_HELP;
    return 0;
  case O_VERSION:
    cli->command = LOOPSAN_CMD_VERSION;
    return 0;
  }
  return -1;
}

void loopsan_cli_free(struct loopsan_cli *cli) {
  free(cli->args);
  cli->args = NULL;
  cli->n_args = 0;
}

int loopsan_cli_parse(int argc, char **argv, struct loopsan_cli *cli, char *err, size_t err_len) {
  memset(cli, 0, sizeof *cli);
  loopsan_options_default(&cli->shim);
  cli->error_exitcode = -1;
  for (int k = 0; k < LOOPSAN_KIND_COUNT; k++)
    if (loopsan_kind_severity(k) != LOOPSAN_SEV_INFO)
      cli->fail_on |= 1ul << k;
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
    const struct cli_option *o = NULL;
    const char *value = NULL;
    if (a[1] == '-') {
      const char *name = a + 2, *eq = strchr(name, '=');
      size_t len = eq ? (size_t)(eq - name) : strlen(name);
      for (size_t k = 0; k < N_CLI_OPTIONS; k++)
        if (strlen(cli_options[k].long_name) == len && strncmp(cli_options[k].long_name, name, len) == 0)
          o = &cli_options[k];
      value = eq ? eq + 1 : NULL;
    } else {
      for (size_t k = 0; k < N_CLI_OPTIONS; k++)
        if (cli_options[k].short_name == a[1])
          o = &cli_options[k];
      value = a[2] ? a + 2 : NULL;
    }
    if (!o) {
      char names[400];
      valid_options(names, sizeof names);
      snprintf(err, err_len, "unknown option '%s'; valid options: %s", a, names);
      return -1;
    }
    if (o->takes_value && !value) {
      if (i + 1 >= argc) {
        snprintf(err, err_len, "option --%s needs a value", o->long_name);
        return -1;
      }
      value = argv[++i];
    } else if (!o->takes_value && value && a[1] == '-') {
      snprintf(err, err_len, "option --%s takes no value", o->long_name);
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
    snprintf(err, err_len, cli->command == LOOPSAN_CMD_RUN ? "run: no PROGRAM given (loopsan run [OPTIONS] -- PROGRAM [ARGS...])"
                                                           : "report: no trace file or directory given");
    return -1;
  }
  return 0;
}
