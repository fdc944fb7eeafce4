/* libFuzzer target: a trace file, as hostile as it gets, through the whole
 * offline path a user runs with `loopsan report`: reading (headers, chunks,
 * CRCs, records), replay and every rule, symbolisation, and every report
 * format. Built by `./configure CC=clang --enable-fuzzing` (fuzz/README.md).
 * The input is written to a trace file, as the analyzer reads files. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyzer/analyze.h"
#include "reports/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char trace_path[4096];
static FILE *sink;

static int setup(void) {
  char dir[] = "/tmp/loopsan-fuzz.XXXXXX";
  if (!mkdtemp(dir))
    return -1;
  snprintf(trace_path, sizeof trace_path, "%s/loopsan.4242.trace", dir);
  sink = fopen("/dev/null", "w");
  return sink ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!sink && setup() != 0)
    abort();
  FILE *f = fopen(trace_path, "w");
  if (!f)
    abort();
  if (size && fwrite(data, 1, size, f) != size)
    abort();
  fclose(f);
  char *paths[] = {trace_path};
  struct loopsan_analyze_options ao = {0};
  struct loopsan_report report = {0}; /* (the caller's, zeroed, as the front end has it) */
  char err[512];
  if (loopsan_analyze(paths, 1, &ao, &report, err, sizeof err) == 0) {
    struct loopsan_render_options ro = {.tool_version = "fuzz", .color = 1};
    for (int fmt = 0; fmt < LOOPSAN_FORMAT_COUNT; fmt++)
      loopsan_render(&report, (enum loopsan_format)fmt, &ro, sink);
  }
  loopsan_report_free(&report);
  return 0;
}
