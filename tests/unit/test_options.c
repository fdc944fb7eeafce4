/* Option parsing: LOOPSAN_OPTIONS (common/options.c) and the command line
 * (cli/cli_options.c), including the messages users see. */
#include <check.h>

#include "tests/unit/unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/findings.h"
#include "cli/cli.h"
#include "common/options.h"

START_TEST(env_options) {
  struct loopsan_options o;
  char err[256];
  loopsan_options_default(&o);
  ck_assert_uint_eq(o.slow_ms, 100);
  ck_assert_uint_eq(o.stack_depth, 32);
  ck_assert_int_eq(loopsan_options_parse(&o, "slow_ms=50:trace_dir=/tmp/t:record=all:stack_depth=8",
                                         err, sizeof err),
                   0);
  ck_assert_uint_eq(o.slow_ms, 50);
  ck_assert_str_eq(o.trace_dir, "/tmp/t");
  ck_assert_int_eq(o.record_mode, LOOPSAN_RECORD_ALL);
  ck_assert_uint_eq(o.stack_depth, 8);
  ck_assert_int_eq(loopsan_options_parse(&o, "slow_mss=5", err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "unknown option 'slow_mss'"));
  ck_assert_ptr_nonnull(strstr(err, "slow_ms, blocking_ms"));
  ck_assert_int_eq(loopsan_options_parse(&o, "stack_depth=0", err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "from 1 to 256"));
  ck_assert_int_eq(loopsan_options_parse(&o, "record=some", err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "'findings' or 'all'"));
  ck_assert_int_eq(loopsan_options_parse(&o, "slow_ms", err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "not key=value"));
  /* Round trip through the string the front end hands the shim. */
  char s[5000];
  struct loopsan_options back;
  loopsan_options_default(&back);
  ck_assert_int_eq(loopsan_options_format(&o, s, sizeof s), 0);
  ck_assert_int_eq(loopsan_options_parse(&back, s, err, sizeof err), 0);
  ck_assert_mem_eq(&o, &back, sizeof o);
}
END_TEST

static struct loopsan_cli *last;

/* Parse ARGS into *CLI, releasing the previous parse's allocations. */
static int parse(struct loopsan_cli *cli, char *err, const char *const *args) {
  int argc = 0;
  while (args[argc])
    argc++;
  if (last)
    loopsan_cli_free(last);
  last = cli;
  return loopsan_cli_parse(argc, (char **)args, cli, err, 512);
}

START_TEST(command_line) {
  struct loopsan_cli cli;
  char err[512];
  const char *run[] = {"loopsan",
                       "run",
                       "--slow-ms=50",
                       "--format",
                       "json",
                       "-o",
                       "r.json",
                       "--error-exitcode=3",
                       "--fail-on=slow-callback,unclosed-handle",
                       "--",
                       "./prog",
                       "--format=x",
                       NULL};
  ck_assert_int_eq(parse(&cli, err, run), 0);
  ck_assert_int_eq(cli.command, LOOPSAN_CMD_RUN);
  ck_assert_uint_eq(cli.shim.slow_ms, 50);
  ck_assert_str_eq(cli.output, "r.json");
  ck_assert_int_eq(cli.error_exitcode, 3);
  ck_assert_uint_eq(cli.fail_on,
                    (1ul << LOOPSAN_KIND_SLOW_CALLBACK) | (1ul << LOOPSAN_KIND_UNCLOSED_HANDLE));
  ck_assert_int_eq(cli.n_args, 2);
  ck_assert_str_eq(cli.args[0], "./prog");
  ck_assert_str_eq(cli.args[1], "--format=x"); /* the program's own option */

  const char *prog_first[] = {"loopsan", "run", "./prog", "-o", "x", NULL};
  ck_assert_int_eq(parse(&cli, err, prog_first), 0);
  ck_assert_int_eq(cli.n_args, 3);
  ck_assert_ptr_null(cli.output);

  const char *report[] = {"loopsan", "report", "--stack-depth=4", "a", "b", NULL};
  ck_assert_int_eq(parse(&cli, err, report), 0);
  ck_assert_int_eq(cli.command, LOOPSAN_CMD_REPORT);
  ck_assert_int_eq(cli.n_args, 2);
  ck_assert_uint_eq(cli.shim.stack_depth, 4);

  const char *bad_opt[] = {"loopsan", "run", "--slowms=5", "--", "x", NULL};
  ck_assert_int_eq(parse(&cli, err, bad_opt), -1);
  ck_assert_ptr_nonnull(strstr(err, "unknown option '--slowms=5'"));
  ck_assert_ptr_nonnull(strstr(err, "--slow-ms"));
  ck_assert_ptr_nonnull(strstr(err, "--error-exitcode"));

  const char *bad_fmt[] = {"loopsan", "run", "--format=xml", "--", "x", NULL};
  ck_assert_int_eq(parse(&cli, err, bad_fmt), -1);
  ck_assert_ptr_nonnull(strstr(err, "valid formats: text, json"));

  const char *bad_kind[] = {"loopsan", "run", "--fail-on=slow", "--", "x", NULL};
  ck_assert_int_eq(parse(&cli, err, bad_kind), -1);
  ck_assert_ptr_nonnull(strstr(err, "unknown kind 'slow'"));
  ck_assert_ptr_nonnull(strstr(err, "pending-at-exit"));

  const char *bad_num[] = {"loopsan", "run", "--slow-ms=fast", "--", "x", NULL};
  ck_assert_int_eq(parse(&cli, err, bad_num), -1);
  ck_assert_ptr_nonnull(strstr(err, "--slow-ms takes a whole number"));

  const char *no_prog[] = {"loopsan", "run", "--slow-ms=5", NULL};
  ck_assert_int_eq(parse(&cli, err, no_prog), -1);
  ck_assert_ptr_nonnull(strstr(err, "no PROGRAM"));

  const char *bad_cmd[] = {"loopsan", "walk", NULL};
  ck_assert_int_eq(parse(&cli, err, bad_cmd), -1);
  ck_assert_ptr_nonnull(strstr(err, "valid commands: run, report"));

  const char *version[] = {"loopsan", "--version", NULL};
  ck_assert_int_eq(parse(&cli, err, version), 0);
  ck_assert_int_eq(cli.command, LOOPSAN_CMD_VERSION);
  loopsan_cli_free(&cli);
  last = NULL;
}
END_TEST

/* The one table: every default parses, and --help shows every option with
 * its default (the man page's lists come from the same rows). */
START_TEST(one_table) {
  char err[256], *help = NULL;
  size_t len = 0;
  struct loopsan_options o;
  loopsan_options_default(&o);
  ck_assert_str_eq(o.trace_dir, ".");
  ck_assert_int_eq(o.record_mode, LOOPSAN_RECORD_FINDINGS);
  FILE *f = open_memstream(&help, &len);
  loopsan_cli_usage(f);
  fclose(f);
  for (size_t i = 0; i < LOOPSAN_OPTION_COUNT; i++) {
    const struct loopsan_option_desc *d = &loopsan_option_table[i];
    char want[128];
    snprintf(want, sizeof want, "--%s", d->name);
    ck_assert_msg(strstr(help, want) != NULL, "--help lacks %s", want);
    ck_assert_ptr_nonnull(d->help);
    ck_assert_ptr_nonnull(d->man);
    if (d->key && d->def)
      ck_assert_int_eq(
          loopsan_options_set(&o, d->key, strlen(d->key), d->def, strlen(d->def), err, sizeof err),
          0);
    if (loopsan_option_default_text(d)) {
      snprintf(want, sizeof want, "(default: %s)", loopsan_option_default_text(d));
      ck_assert_msg(strstr(help, want) != NULL, "--help lacks %s", want);
    }
  }
  free(help);
}
END_TEST

int main(void) {
  Suite *s = suite_create("options");
  TCase *tc = tcase_create("parse");
  tcase_add_test(tc, env_options);
  tcase_add_test(tc, command_line);
  tcase_add_test(tc, one_table);
  suite_add_tcase(s, tc);
  return loopsan_unit_run(s);
}
