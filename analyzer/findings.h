/* The findings model: what the analyzer concluded, fully symbolised. Every
 * report format renders this and nothing else (SPEC.md section 3 is its
 * JSON form); no report re-derives a finding. */
#ifndef LOOPSAN_FINDINGS_H
#define LOOPSAN_FINDINGS_H

#include <stddef.h>
#include <stdint.h>

#include "analyzer/symbolize.h"

#define LOOPSAN_KINDS(X)                           \
  X(CRASH, "crash", ERROR)                         \
  X(MISUSE, "misuse", ERROR)                       \
  X(WRONG_THREAD, "wrong-thread", ERROR)           \
  X(SLOW_CALLBACK, "slow-callback", WARNING)       \
  X(BLOCKED_LOOP, "blocked-loop", WARNING)         \
  X(BLOCKING_CALL, "blocking-call", WARNING)       \
  X(PENDING_AT_EXIT, "pending-at-exit", WARNING)   \
  X(UNCLOSED_HANDLE, "unclosed-handle", WARNING)   \
  X(UNCLOSED_LOOP, "unclosed-loop", WARNING)       \
  X(NEVER_STARTED, "never-started", WARNING)       \
  X(UNOBSERVED_ERROR, "unobserved-error", WARNING) \
  X(API_ERROR, "api-error", WARNING)

enum loopsan_kind {
#define X(id, name, sev) LOOPSAN_KIND_##id,
  LOOPSAN_KINDS(X)
#undef X
      LOOPSAN_KIND_COUNT
};

enum loopsan_severity { LOOPSAN_SEV_ERROR = 0, LOOPSAN_SEV_WARNING = 1, LOOPSAN_SEV_INFO = 2 };

const char *loopsan_kind_name(enum loopsan_kind kind);
enum loopsan_severity loopsan_kind_severity(enum loopsan_kind kind);
const char *loopsan_severity_name(enum loopsan_severity sev);
/* What KIND means: a line, a paragraph, and what to do. */
const char *loopsan_kind_summary(enum loopsan_kind kind);
const char *loopsan_kind_description(enum loopsan_kind kind);
const char *loopsan_kind_help(enum loopsan_kind kind);
/* -1 if NAME is no kind. */
int loopsan_kind_from_name(const char *name, size_t len);

/* A frame whose strings the finding owns. */
struct loopsan_frame_owned {
  char *function, *file, *module;
  int line;
  uint64_t address;
  uint64_t module_offset;
};

/* One step of an async chain: the callback that was running when the
 * object before it was made, its object, and where that was made. */
struct loopsan_chain_link {
  struct loopsan_frame_owned callback;
  int has_callback;
  char *object_type;
  struct loopsan_frame_owned *created_at;
  size_t n_created_at;
};

struct loopsan_finding {
  enum loopsan_kind kind;
  enum loopsan_severity severity;
  const char *library; /* static string */
  int pid, tid;
  char *message;
  char *detail;      /* an extra sentence (why, what to do), or NULL */
  char *object_type; /* "uv_timer_t", or NULL */
  uint64_t object_address;
  int has_callback;
  struct loopsan_frame_owned callback;
  struct loopsan_frame_owned *created_at;
  size_t n_created_at;
  struct loopsan_frame_owned *stack;
  size_t n_stack;
  /* slow-callback, blocked-loop: how many stall samples loopsan run took,
   * and how many of them found it where STACK is (the most) */
  unsigned stall_taken, stall_here;
  double duration_ms; /* < 0: not timed */
  unsigned also;      /* the object's other problems: 1 << enum loopsan_kind */
  unsigned count;
  int suppressed;       /* a --suppressions rule matched it */
  int in_baseline;      /* the --baseline report has it already */
  size_t process;       /* index into loopsan_report.processes (pids repeat across exec) */
  const char *no_stall; /* why there is no stall sample (not owned; composing only) */
  struct loopsan_chain_link *chain; /* created in a callback of chain[0], ... */
  size_t n_chain;
  struct loopsan_frame_owned *cause; /* misuse: the event that made the call wrong */
  size_t n_cause;
  const char *cause_label; /* what that event was: "closed before at", ... (static) */
  double ts_us; /* when, in CLOCK_MONOTONIC microseconds (0: not known) */
  /* crash: the signal, its si_code (INT32_MIN: unknown) and si_addr */
  int signal;
  int32_t signal_code;
  uint64_t fault_address;
};

/* What the shim observed of one library in one process (its counters),
 * the way valgrind's summary says "N allocs, N frees". */
struct loopsan_observed_type {
  char *name; /* "uv_timer_t" */
  int is_loop;
  int is_watcher; /* stopped, never closed: "ended" says nothing */
  uint64_t created, ended;
};

struct loopsan_observed {
  const char *library; /* static string */
  uint64_t loops, callbacks;
  struct loopsan_observed_type *types;
  size_t n_types;
};

/* How long the callbacks of one site (function) took, every dispatch
 * counted: what reports show as the slowest sites and as histograms. */
#define LOOPSAN_SITE_BUCKETS 40 /* = LOOPSAN_HIST_BUCKETS of the trace */
struct loopsan_callback_site {
  int has_callback;
  struct loopsan_frame_owned callback;
  const char *library; /* static string */
  uint64_t count;
  double total_ms, max_ms, p50_ms, p99_ms; /* p50, p99: to 1%, or estimated from buckets */
  int exact; /* p50 and p99 from every call's duration (--record=all), to within 1% */
  double bucket_unit_ms; /* bucket i holds durations in [2^i, 2^(i+1)) units (0: from 0) */
  uint64_t buckets[LOOPSAN_SITE_BUCKETS];
  struct loopsan_frame_owned *created_at; /* where an object with it was made, if known */
  size_t n_created_at;
};

/* A callback's run on the timeline (what --record=all recorded; in the
 * default mode, only the slow ones). */
struct loopsan_slice {
  double start_us, dur_us; /* CLOCK_MONOTONIC microseconds */
  int tid;
  uint32_t name;       /* index into the process's slice_names */
  const char *library; /* static string */
  int iteration;       /* a whole loop iteration (generic layer), not a callback */
  uint32_t origin;     /* 1 + index into the process's origins: its object's creation */
};

/* Where and when an object whose callbacks are on the timeline was made:
 * the start of a flow to each of its dispatches. */
struct loopsan_origin {
  double ts_us;
  int tid;
  char *object_type; /* "uv_timer_t" */
  char *where;       /* "main demo.c:42": the innermost frame of its creation stack */
};

struct loopsan_process {
  int pid, ppid;
  char *exe;
  char **argv;
  size_t argc;
  int has_exit;    /* exit below is known */
  int exit_signal; /* non-zero: killed by this signal */
  int exit_status;
  int ended;            /* the trace has its END record */
  int replaced_by_exec; /* it ended by exec: the next image has the same pid */
  int observed;         /* the shim saw at least one event-loop object or callback */
  struct loopsan_observed *observations; /* per library */
  size_t n_observations;
  char **libraries; /* "libuv", ... (static strings) */
  size_t n_libraries;
  char *trace;
  char **notes; /* what could not be read or observed */
  size_t n_notes;
  struct loopsan_callback_site *sites; /* by total time, most first */
  size_t n_sites;
  struct loopsan_slice *slices; /* in start order per thread */
  size_t n_slices;
  char **slice_names; /* the callbacks' names ("on_tick", "libuv.so.1+0x1234") */
  size_t n_slice_names;
  uint64_t slices_dropped; /* not kept: past the analyzer's bound */
  struct loopsan_origin *origins;
  size_t n_origins;
};

struct loopsan_report {
  struct loopsan_process *processes;
  size_t n_processes;
  struct loopsan_finding *findings;
  size_t n_findings;
  char **notes; /* about the whole run */
  size_t n_notes;
  char *trace_dir;
  unsigned n_suppressed, n_rules_used; /* findings suppressed, by how many rules */
  unsigned n_in_baseline;              /* findings known from the baseline */
};

void loopsan_report_free(struct loopsan_report *r);
void loopsan_frames_free(struct loopsan_frame_owned *f, size_t n);
/* Keep the CAP best items seen so far in TOP (*N of them, best first):
 * BETTER(a, b) says whether a goes before b. For "the five slowest". */
void loopsan_top_insert(const void **top, size_t *n, size_t cap, const void *item,
                        int (*better)(const void *a, const void *b));
int loopsan_report_add_note(char ***notes, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Worst first: severity, then kind, then duration, then count. */
void loopsan_report_sort(struct loopsan_report *r);
/* Does F make --fail-on (a bit per kind) apply? Its own kind or any of the
 * object's other problems named in `also` (a pending timer never closed
 * fails a CI gate on unclosed-handle too). */
int loopsan_finding_fails(const struct loopsan_finding *f, unsigned long fail_on);
/* Number of findings per kind, not counting suppressed ones. */
void loopsan_report_summary(const struct loopsan_report *r, unsigned counts[LOOPSAN_KIND_COUNT]);

#endif
