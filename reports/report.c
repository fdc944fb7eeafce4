#include "reports/report.h"

#include <stdio.h>
#include <string.h>

typedef int (*render_fn)(const struct loopsan_report *, const struct loopsan_render_options *,
                         FILE *);

static const struct {
  const char *name;
  render_fn render;
} formats[LOOPSAN_FORMAT_COUNT] = {
    [LOOPSAN_FORMAT_TEXT] = {"text", loopsan_render_text},
    [LOOPSAN_FORMAT_JSON] = {"json", loopsan_render_json},
    [LOOPSAN_FORMAT_MARKDOWN] = {"markdown", loopsan_render_markdown},
    [LOOPSAN_FORMAT_SARIF] = {"sarif", loopsan_render_sarif},
    [LOOPSAN_FORMAT_FOLDED] = {"folded", loopsan_render_folded},
    [LOOPSAN_FORMAT_CHROME] = {"chrome", loopsan_render_chrome},
    [LOOPSAN_FORMAT_HTML] = {"html", loopsan_render_html},
};

int loopsan_format_from_name(const char *name) {
  for (int i = 0; i < LOOPSAN_FORMAT_COUNT; i++)
    if (strcmp(formats[i].name, name) == 0)
      return i;
  return -1;
}

const char *loopsan_format_names(void) {
  static char names[128];
  if (!names[0])
    for (int i = 0; i < LOOPSAN_FORMAT_COUNT; i++)
      snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
               formats[i].name);
  return names;
}

int loopsan_render(const struct loopsan_report *r, enum loopsan_format fmt,
                   const struct loopsan_render_options *opts, FILE *out) {
  if ((unsigned)fmt >= LOOPSAN_FORMAT_COUNT)
    return -1;
  if (formats[fmt].render(r, opts, out) != 0)
    return -1;
  return fflush(out) == 0 && !ferror(out) ? 0 : -1;
}
