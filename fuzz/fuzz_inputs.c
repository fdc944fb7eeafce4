/* libFuzzer target: the other inputs loopsan parses. The first byte picks
 * one: 0, the shim's LOOPSAN_OPTIONS parser (it runs inside every program
 * loopsan observes); 1, the JSON reader of --baseline; 2, a --suppressions
 * file; 3, a --baseline file. The rest is the text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyzer/json_read.h"
#include "analyzer/suppress.h"
#include "common/options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int as_file(const uint8_t *data, size_t size, char *path, size_t path_len) {
  snprintf(path, path_len, "/tmp/loopsan-fuzz-input.%ld", (long)getpid());
  FILE *f = fopen(path, "w");
  if (!f)
    return -1;
  if (size)
    fwrite(data, 1, size, f);
  return fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  int which = data[0] % 4;
  data++, size--;
  char err[512], path[128];
  switch (which) {
  case 0: {
    char *spec = malloc(size + 1); /* a C string, as getenv gives it */
    if (!spec)
      return 0;
    memcpy(spec, data, size);
    spec[size] = 0;
    struct loopsan_options opts;
    loopsan_options_default(&opts);
    if (loopsan_options_parse(&opts, spec, err, sizeof err) == 0) {
      char back[4096];
      loopsan_options_format(&opts, back, sizeof back);
    }
    free(spec);
    break;
  }
  case 1: {
    struct loopsan_json *v = loopsan_json_parse((const char *)data, size, err, sizeof err);
    if (v) {
      const struct loopsan_json *f = loopsan_json_get(v, "findings");
      for (size_t i = 0; i < loopsan_json_length(f); i++)
        (void)loopsan_json_string(loopsan_json_get(loopsan_json_at(f, i), "kind"));
      loopsan_json_free(v);
    }
    break;
  }
  case 2: {
    struct loopsan_suppressions s = {0};
    if (as_file(data, size, path, sizeof path) == 0)
      loopsan_suppressions_load(&s, path, err, sizeof err);
    loopsan_suppressions_free(&s); /* (what was read before an error, too) */
    remove(path);
    break;
  }
  default: {
    struct loopsan_baseline b = {0};
    if (as_file(data, size, path, sizeof path) == 0)
      loopsan_baseline_load(&b, path, err, sizeof err);
    loopsan_baseline_free(&b);
    remove(path);
    break;
  }
  }
  return 0;
}
