/* Report formats: each renders the findings model (analyzer/findings.h) and
 * nothing else. One file per format. */
#ifndef LOOPSAN_REPORT_H
#define LOOPSAN_REPORT_H

#include <stdio.h>

#include "analyzer/findings.h"

enum loopsan_format {
  LOOPSAN_FORMAT_TEXT,
  LOOPSAN_FORMAT_JSON,
  LOOPSAN_FORMAT_MARKDOWN,
  LOOPSAN_FORMAT_SARIF,
  LOOPSAN_FORMAT_FOLDED,
  LOOPSAN_FORMAT_CHROME,
  LOOPSAN_FORMAT_HTML,
  LOOPSAN_FORMAT_COUNT
};

/* -1 if NAME is not an available format. */
int loopsan_format_from_name(const char *name);
/* "text, json, ..." for messages. */
const char *loopsan_format_names(void);

struct loopsan_render_options {
  const char *tool_version;
  int color; /* text only */
};

int loopsan_render(const struct loopsan_report *r, enum loopsan_format fmt,
                   const struct loopsan_render_options *opts, FILE *out);

int loopsan_render_text(const struct loopsan_report *r, const struct loopsan_render_options *opts,
                        FILE *out);
int loopsan_render_json(const struct loopsan_report *r, const struct loopsan_render_options *opts,
                        FILE *out);
int loopsan_render_markdown(const struct loopsan_report *r,
                            const struct loopsan_render_options *opts, FILE *out);
int loopsan_render_sarif(const struct loopsan_report *r, const struct loopsan_render_options *opts,
                         FILE *out);
int loopsan_render_html(const struct loopsan_report *r, const struct loopsan_render_options *opts,
                        FILE *out);
int loopsan_render_chrome(const struct loopsan_report *r, const struct loopsan_render_options *opts,
                          FILE *out);
int loopsan_render_folded(const struct loopsan_report *r, const struct loopsan_render_options *opts,
                          FILE *out);

#endif
