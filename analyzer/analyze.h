/* The analyzer's entry point: traces in, findings model out. */
#ifndef LOOPSAN_ANALYZE_H
#define LOOPSAN_ANALYZE_H

#include <stddef.h>
#include <stdint.h>

#include "analyzer/findings.h"

struct loopsan_analyze_options {
  uint64_t slow_ns; /* 0: the threshold each trace was recorded with */
  /* What `loopsan run` knows of the process it started: when it died
   * (CLOCK_MONOTONIC) and by which signal, so that a callback it was stuck
   * in runs to that moment. 0: unknown. */
  int child_pid;
  int child_signal;
  uint64_t child_end_mono_ns;
};

/* Read every trace named in PATHS (files, or directories holding
 * loopsan.*.trace files), replay, apply the rules, symbolise, and fill *out.
 * Unreadable or damaged traces become notes in the report; returns -1 only
 * when nothing at all could be read (err says why). */
int loopsan_analyze(char *const *paths, size_t n_paths, const struct loopsan_analyze_options *opts,
                    struct loopsan_report *out, char *err, size_t err_len);

/* Is NAME (a file name, no directory) a trace file's: loopsan.PID[.N].trace? */
int loopsan_is_trace_name(const char *name);

#endif
