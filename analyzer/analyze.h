/* The analyzer's entry point: traces in, findings model out. */
#ifndef LOOPSAN_ANALYZE_H
#define LOOPSAN_ANALYZE_H

#include <stddef.h>
#include <stdint.h>

#include "analyzer/findings.h"

/* In a trace directory: how the processes `loopsan run` reaped ended, one
 * "pid signal mono_ns status" line each (written by run, read by the
 * analysis). */
#define LOOPSAN_ENDS_FILE "loopsan.ends"
/* Written by `loopsan run` when the kernel refused to let it stop a thread
 * for a stall sample (its one line says why). */
#define LOOPSAN_STALLS_REFUSED_FILE "loopsan.stalls-refused"
/* At most this many stall samples of one dispatch (merged by the analyzer). */
#define LOOPSAN_STALL_SAMPLES_MAX 16

/* How a process ended, as the one that reaped it saw it. */
struct loopsan_process_end {
  int pid;
  int signal;       /* 0: it exited */
  uint64_t mono_ns; /* CLOCK_MONOTONIC */
  int status;       /* its exit status when it exited, else -1 */
};

struct loopsan_analyze_options {
  uint64_t slow_ns; /* 0: the threshold each trace was recorded with */
  /* The processes `loopsan run` reaped itself (the program, and the
   * orphans it inherited as a subreaper): when each died and how, so that
   * a callback it was stuck in runs to that moment. */
  const struct loopsan_process_end *ends;
  size_t n_ends;
  /* Keep every callback's run for a timeline (the chrome and html
   * formats): memory that grows with the trace, up to 64 MB a trace.
   * Without it the analysis's memory is bounded by the trace's objects,
   * sites and stacks. */
  int timeline;
};

/* Read every trace named in PATHS (files, or directories holding
 * loopsan.*.trace files), replay, apply the rules, symbolise, and fill *out.
 * Unreadable or damaged traces become notes in the report; returns -1 only
 * when nothing at all could be read (err says why). *out is the caller's,
 * zeroed (or with trace_dir set), and freed by the caller either way: on
 * -1, its notes say what was wrong with each trace. */
int loopsan_analyze(char *const *paths, size_t n_paths, const struct loopsan_analyze_options *opts,
                    struct loopsan_report *out, char *err, size_t err_len);

/* Does dying of SIG mean a crash (SIGSEGV, SIGABRT, ...) rather than a kill? */
int loopsan_signal_is_crash(int sig);

/* Is NAME (a file name, no directory) a trace file's: loopsan.PID[.N].trace? */
int loopsan_is_trace_name(const char *name);

#endif
