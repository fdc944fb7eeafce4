#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config.h"

int main(int argc, char **argv) {
  /* Symbolisation stays offline: never ask debuginfod servers over the network. */
  unsetenv("DEBUGINFOD_URLS");
  struct loopsan_cli cli;
  char err[1024];
  int rc;
  if (loopsan_cli_parse(argc, argv, &cli, err, sizeof err) != 0) {
    fprintf(stderr, "loopsan: %s\n(try 'loopsan --help')\n", err);
    loopsan_cli_free(&cli);
    return 2;
  }
  switch (cli.command) {
  case LOOPSAN_CMD_HELP:
    loopsan_cli_usage(stdout);
    rc = 0;
    break;
  case LOOPSAN_CMD_VERSION:
    printf("loopsan %s\n", PACKAGE_VERSION);
    rc = 0;
    break;
  case LOOPSAN_CMD_RUN: rc = loopsan_cmd_run(&cli); break;
  case LOOPSAN_CMD_REPORT: rc = loopsan_cmd_report(&cli); break;
  default: loopsan_cli_usage(stderr); rc = 2;
  }
  loopsan_cli_free(&cli);
  return rc;
}
