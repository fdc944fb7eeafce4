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
  if (loopsan_cli_parse(argc, argv, &cli, err, sizeof err) != 0) {
    fprintf(stderr, "loopsan: %s\n(try 'loopsan --help')\n", err);
    return 2;
  }
  switch (cli.command) {
  case LOOPSAN_CMD_HELP:
    loopsan_cli_usage(stdout);
    return 0;
  case LOOPSAN_CMD_VERSION:
    printf("loopsan %s\n", PACKAGE_VERSION);
    return 0;
  case LOOPSAN_CMD_RUN:
    return loopsan_cmd_run(&cli);
  case LOOPSAN_CMD_REPORT:
    return loopsan_cmd_report(&cli);
  default:
    loopsan_cli_usage(stderr);
    return 2;
  }
}
