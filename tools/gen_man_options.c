/* Fills in the man page's option lists from the one table of options
 * (common/options.def): copies docs/loopsan.1.in to standard output with
 * the line @CLI_OPTIONS@ replaced by the command line's options and
 * @SHIM_OPTIONS@ by the LOOPSAN_OPTIONS keys. Run by `make`. */
#include <stdio.h>
#include <string.h>

#include "common/options.h"

/* An example per option (common/option_examples.def), by option id. */
static const struct {
  const char *command, *does;
} examples[LOOPSAN_OPTION_COUNT] = {
#define LOOPSAN_OPTION_EXAMPLE(id, command, does) [LOOPSAN_OPT_##id] = {command, does},
#include "common/option_examples.def"
#undef LOOPSAN_OPTION_EXAMPLE
};

static int example(size_t id) {
  if (!examples[id].command) {
    fprintf(stderr, "gen_man_options: option %s has no example in common/option_examples.def\n",
            loopsan_option_table[id].name);
    return -1;
  }
  printf(".IP\nFor example,\n.RS\n.EX\n%s\n.EE\n.RE\n.IP\n%s\n", examples[id].command,
         examples[id].does);
  return 0;
}

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

static int cli_options(void) {
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
    if (example(i) != 0)
      return -1;
  }
  return 0;
}

static void shim_options(void) {
  for (size_t i = 0; i < LOOPSAN_OPTION_COUNT; i++) {
    const struct loopsan_option_desc *d = &loopsan_option_table[i];
    if (!d->key)
      continue;
    printf(".TP\n.BI %s= %s\nas\n.BR \\-\\-", d->key, d->metavar ? d->metavar : "1|0");
    dashes(d->name);
    printf(" .\n");
    range_and_default(d, 1);
  }
}

/* A line of markdown as troff: `code` and **bold** in bold, backslashes
 * escaped, a line that troff would take for a request guarded. */
static void troff_line(const char *s, int literal) {
  if (*s == '.' || *s == '\'')
    fputs("\\&", stdout);
  int bold = 0;
  for (; *s && *s != '\n'; s++) {
    if (!literal && (*s == '`' || (s[0] == '*' && s[1] == '*'))) {
      fputs(bold ? "\\fP" : "\\fB", stdout);
      bold = !bold;
      s += *s == '*';
    } else if (*s == '\\') {
      fputs("\\e", stdout);
    } else {
      putchar(*s);
    }
  }
  if (bold)
    fputs("\\fP", stdout);
  putchar('\n');
}

/* The example and the usual fix of a finding kind, from its page
 * (docs/findings/KIND.md beside the man page's source): one text for the
 * docs and the man page. */
static int finding_example(const char *docs, const char *kind) {
  char path[8192], line[4096];
  snprintf(path, sizeof path, "%s/findings/%s.md", docs, kind);
  FILE *md = fopen(path, "r");
  if (!md) {
    fprintf(stderr, "gen_man_options: %s: cannot be read\n", path);
    return -1;
  }
  enum { BEFORE, EXAMPLE, CODE, FIX } state = BEFORE;
  int found = 0;
  while (fgets(line, sizeof line, md)) {
    if (state == BEFORE && strncmp(line, "**Example**", 11) == 0) {
      printf(".IP\n.I Example\n");
      troff_line(line + 11, 0);
      state = EXAMPLE;
      found = 1;
    } else if (state == EXAMPLE && strncmp(line, "```", 3) == 0) {
      printf(".RS\n.EX\n");
      state = CODE;
    } else if (state == CODE && strncmp(line, "```", 3) == 0) {
      printf(".EE\n.RE\n");
      state = EXAMPLE;
    } else if (state == CODE) {
      troff_line(line, 1);
    } else if ((state == EXAMPLE || state == FIX) && strncmp(line, "**Usual fix.**", 14) == 0) {
      printf(".IP\n.I Usual fix:\n");
      troff_line(line + 14 + (line[14] == ' '), 0);
      state = FIX;
    } else if (state == FIX && (line[0] == '\n' || line[0] == '#')) {
      break;
    } else if ((state == EXAMPLE || state == FIX) && line[0] != '\n') {
      troff_line(line, 0);
    }
  }
  fclose(md);
  if (!found || state == CODE) {
    fprintf(stderr, "gen_man_options: %s: no **Example** with closed code blocks\n", path);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  FILE *in = argc > 1 ? fopen(argv[1], "r") : NULL;
  if (!in) {
    fprintf(stderr, "usage: gen_man_options docs/loopsan.1.in\n");
    return 2;
  }
  char docs[4096];
  snprintf(docs, sizeof docs, "%s", argv[1]);
  char *slash = strrchr(docs, '/');
  if (slash)
    *slash = 0;
  else
    snprintf(docs, sizeof docs, ".");
  char line[4096], kind[64];
  int rc = 0;
  while (rc == 0 && fgets(line, sizeof line, in)) {
    if (strcmp(line, "@CLI_OPTIONS@\n") == 0)
      rc = cli_options();
    else if (strcmp(line, "@SHIM_OPTIONS@\n") == 0)
      shim_options();
    else if (sscanf(line, "@EXAMPLE %63[a-z-]@", kind) == 1)
      rc = finding_example(docs, kind);
    else
      fputs(line, stdout);
  }
  fclose(in);
  return rc != 0 || ferror(stdout) ? 1 : 0;
}
