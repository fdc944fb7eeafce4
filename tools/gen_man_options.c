/* Fills in the man page's option lists from the one table of options
 * (common/options.def): copies docs/loopsan.1.in to standard output with
 * the line @CLI_OPTIONS@ replaced by the command line's options and
 * @SHIM_OPTIONS@ by the LOOPSAN_OPTIONS keys. Run by `make`. */
#include <stdio.h>
#include <string.h>

#include "common/options.h"

/* NAME with every '-' as troff's \- (a real hyphen-minus, copyable). */
static void dashes(const char *name) {
  for (; *name; name++)
    fputs(*name == '-' ? "\\-" : (char[2]){*name, 0}, stdout);
}

static void range_and_default(const struct loopsan_option_desc *d, int shim) {
  const char *def = shim ? d->def : loopsan_option_default_text(d);
  if (d->type == LOOPSAN_OPTTYPE_UINT || d->type == LOOPSAN_OPTTYPE_EXITCODE)
    printf("From %u to %u.\n", d->min, d->max);
  if (def && shim)
    printf("Default:\n.RB \\(lq %s \\(rq.\n", def); /* a value as typed */
  else if (def)
    printf("Default: %s.\n", def);
}

static void cli_options(void) {
  for (size_t i = 0; i < LOOPSAN_OPTION_COUNT; i++) {
    const struct loopsan_option_desc *d = &loopsan_option_table[i];
    printf(".TP\n.B ");
    if (d->short_name)
      printf("\\-%c%s%s%s, ", d->short_name, d->metavar ? "\\fI " : "",
             d->metavar ? d->metavar : "", d->metavar ? "\\fP" : "");
    printf("\\-\\-");
    dashes(d->name);
    if (d->metavar)
      printf("=\\fI%s\\fP", d->metavar);
    printf("\n%s\n", d->man);
    range_and_default(d, 0);
  }
}

static void shim_options(void) {
  for (size_t i = 0; i < LOOPSAN_OPTION_COUNT; i++) {
    const struct loopsan_option_desc *d = &loopsan_option_table[i];
    if (!d->key)
      continue;
    printf(".TP\n.BI %s= %s\nas\n.BR \\-\\-", d->key, d->metavar);
    dashes(d->name);
    printf(" .\n");
    range_and_default(d, 1);
  }
}

int main(int argc, char **argv) {
  FILE *in = argc > 1 ? fopen(argv[1], "r") : NULL;
  if (!in) {
    fprintf(stderr, "usage: gen_man_options docs/loopsan.1.in\n");
    return 2;
  }
  char line[4096];
  while (fgets(line, sizeof line, in)) {
    if (strcmp(line, "@CLI_OPTIONS@\n") == 0)
      cli_options();
    else if (strcmp(line, "@SHIM_OPTIONS@\n") == 0)
      shim_options();
    else
      fputs(line, stdout);
  }
  fclose(in);
  return ferror(stdout) ? 1 : 0;
}
