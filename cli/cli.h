/* The front end: `loopsan run` and `loopsan report`. */
#ifndef LOOPSAN_CLI_H
#define LOOPSAN_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "common/options.h"

enum loopsan_command {
  LOOPSAN_CMD_NONE,
  LOOPSAN_CMD_RUN,
  LOOPSAN_CMD_REPORT,
  LOOPSAN_CMD_HELP,
  LOOPSAN_CMD_VERSION
};

struct loopsan_cli {
  enum loopsan_command command;
  struct loopsan_options shim; /* what LOOPSAN_OPTIONS carries */
  int slow_ms_set, trace_dir_set;
  int format;                   /* enum loopsan_format */
  const char *output;           /* NULL: stderr for run, stdout for report */
  unsigned long fail_on;        /* bit per enum loopsan_kind */
  int error_exitcode;           /* -1: off */
  const char *suppressions[16]; /* --suppressions files */
  int n_suppressions;
  int gen_suppressions;
  const char *baseline;
  int color;   /* 0 auto, 1 always, 2 never */
  char **args; /* run: PROGRAM ARGS...; report: paths (owned array) */
  int n_args;
};

/* Parse ARGV (argv[0] is the program). Returns 0, or -1 with a message
 * naming the bad option and the valid ones in err. */
int loopsan_cli_parse(int argc, char **argv, struct loopsan_cli *cli, char *err, size_t err_len);
void loopsan_cli_usage(FILE *out);
/* Release what loopsan_cli_parse allocated (also after it failed). */
void loopsan_cli_free(struct loopsan_cli *cli);

int loopsan_cmd_run(struct loopsan_cli *cli);
int loopsan_cmd_report(struct loopsan_cli *cli);
/* Why PROGRAM left no trace in TRACE_DIR (static, setuid, an unwritable or
 * full directory, ...), as a sentence for the report. */
void loopsan_cli_why_unobserved(const char *program, const char *trace_dir, char *why, size_t len);

#endif
