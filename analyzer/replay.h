/* Replay: rebuilds, from one trace file's records, the life of every object
 * and the process around it, and lets the rules (rules.c) turn that into raw
 * findings: unsymbolised, keyed by addresses and stack ids, merged when
 * identical. Memory is bounded by live objects, unique stacks and unique
 * findings: an object that ends well is forgotten when it ends. */
#ifndef LOOPSAN_REPLAY_H
#define LOOPSAN_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "analyzer/findings.h"
#include "common/trace_format.h"

/* One step of an async chain: the object whose callback was running when
 * another was made, as it was then. */
#define REPLAY_CHAIN 3
#define REPLAY_ENDED_RING 256 /* ended objects kept for later misuse findings */
#define REPLAY_TIMELINE_MAX 2000000u /* dispatches kept for the timeline (64 MB) */
struct replay_link {
  uint64_t cb, address;
  uint32_t stack;
  uint16_t library, type;
};

struct replay_object {
  struct replay_link chain[REPLAY_CHAIN]; /* made in a callback of chain[0]'s object, ... */
  unsigned n_chain;
  uint64_t id, loop, address;
  uint64_t created_ts;
  uint32_t stack, tid;
  uint16_t library, type;
  uint32_t flags; /* LOOPSAN_OBJF_* */
  uint64_t main_cb, close_cb;
  uint64_t last_start_ts, last_stop_ts, last_fire_ts;
  uint32_t start_flags; /* LOOPSAN_START_* of the last start */
  uint32_t starts;
  uint64_t close_ts; /* close requested */
  uint32_t close_stack;
  int reinitialised; /* initialised again while open: that misuse is its finding */
  int used, closing;
  int start_failed;   /* a start was attempted and refused (uv_spawn ENOENT) */
  int completed;      /* request: its callback ran (it may never have returned) */
  int has_unfinished; /* one of its callbacks was running when the process ended: */
  struct loopsan_rec_unfinished unfinished; /* judged with the object at the end */
  int ended_with_loop;                      /* destroyed by its loop's end while still attached */
  int loop_close_failed;                    /* loop: a close returned an error */
  int32_t loop_close_result;
  uint32_t loop_close_stack;
  uint32_t origin; /* 1 + its index in the replay's origins, once on the timeline */
};

struct replay_type {
  uint16_t library, type, kind;
  char name[64];
};

struct replay_module {
  uint64_t bias, start, end;
  uint8_t build_id[64];
  size_t build_id_len;
  char *path;
};

struct replay_stack {
  uint32_t id, n;
  uint64_t *frames;
};

enum raw_detail {
  RAW_DETAIL_NONE = 0,
  RAW_DETAIL_LOOP_CLOSE_EBUSY, /* its loop's close failed because of it */
  RAW_DETAIL_CLOSE_UNFINISHED, /* uv_close called, loop never ran again */
  RAW_DETAIL_LET_BE,           /* a watcher active on a loop that outlives it: no verdict */
  RAW_DETAIL_ENDED_WITH_LOOP,  /* still attached when its loop was destroyed */
  /* a callback that never returned, and how its process ended meanwhile
   * (RAW_DETAIL_UNFINISHED + enum loopsan_end_how) */
  RAW_DETAIL_UNFINISHED = 16,
  RAW_DETAIL_UNFINISHED_EXIT = RAW_DETAIL_UNFINISHED + LOOPSAN_END_EXIT,
  RAW_DETAIL_UNFINISHED__EXIT = RAW_DETAIL_UNFINISHED + LOOPSAN_END__EXIT,
  RAW_DETAIL_UNFINISHED_EXEC = RAW_DETAIL_UNFINISHED + LOOPSAN_END_EXEC,
  RAW_DETAIL_UNFINISHED_KILLED = RAW_DETAIL_UNFINISHED + LOOPSAN_END_KILLED,
  /* killed, and when is unknown: the duration runs to its last record */
  RAW_DETAIL_UNFINISHED_KILLED_AT_LEAST,
};
/* The "how" of an UNFINISHED record the analyzer makes for a process killed
 * at an unknown time. */
#define REPLAY_END_KILLED_UNTIMED (LOOPSAN_END_KILLED + 1)

struct raw_finding {
  enum loopsan_kind kind;
  uint16_t library;
  uint16_t obj_kind;
  uint32_t tid;
  char type_name[64];
  uint64_t address;
  uint64_t cb;
  uint32_t created_stack, stack;
  uint64_t max_duration; /* ts units */
  unsigned count;
  enum raw_detail detail;
  uint32_t also; /* other kinds the same object has (1 << enum loopsan_kind) */
  int32_t result;
  char call[32]; /* blocking-call, and a slow callback that blocked: the libc call */
  struct replay_link chain[REPLAY_CHAIN]; /* the object's async chain */
  unsigned n_chain;
  uint64_t blocked;     /* a slow callback that blocked: for how long in all (ts units) */
  uint32_t cause_stack; /* misuse: where the object was made unfit (its close) */
  uint32_t stall_taken, stall_here; /* stall samples of the dispatch; how many at STACK */
  int32_t misuse_arg, misuse_arg2;  /* misuse: what its record says (a descriptor, ...) */
  uint64_t ts;                      /* when (trace ticks): the call, the dispatch's start, ... */
  int32_t signal_code;              /* crash: the siginfo's si_code, */
  uint64_t fault_address;           /* and si_addr */
};

/* What the shim counted for one (library, type). */
struct replay_count {
  uint16_t library, type;
  uint64_t created, ended;           /* the shim's counters */
  uint64_t seen_created, seen_ended; /* what the records themselves show (a
                                        killed process's counters may be stale) */
};

#define REPLAY_ORPHAN_MAX_SIZE 128u
#define REPLAY_ORPHANS_MAX 65536u
struct replay_orphan {
  uint64_t obj;
  uint32_t tid;
  _Alignas(8) unsigned char rec[REPLAY_ORPHAN_MAX_SIZE]; /* read back as a record */
};

struct loopsan_replay {
  /* the process */
  uint32_t pid, ppid;
  char *exe;
  char *argv; /* NUL-separated */
  size_t argv_len;
  uint32_t argc;
  int have_process;
  uint64_t slow_ns;      /* threshold recorded in the trace */
  uint64_t threshold_ns; /* threshold applied */
  uint64_t blocking_ns;  /* blocking-call's, as recorded */
  uint64_t ticks_per_sec;
  int ended;
  uint32_t end_how;
  int32_t end_status;
  uint64_t lost[8];        /* by enum loopsan_lost_reason */
  uint32_t libraries_seen; /* bit per enum loopsan_library */
  uint64_t objects_seen;
  /* the shim's counters (COUNTS records, and a killed process's spill
   * headers): the largest value of each wins */
  struct replay_count *counts;
  size_t n_counts;
  uint64_t dispatches[LOOPSAN_LIBRARY_SLOTS];
  /* time: the last clock pair, and the latest timestamp of any record */
  uint64_t clock_ts, clock_mono_ns, last_ts;
  /* a process that never ended: what it still had open (by object kind),
   * and the callback it was inside of (a finding only when slow) */
  uint64_t open_at_end[5];
  /* loops that ended: a watcher's loop that is neither alive nor here was
   * never seen made (a forked child's, made by its parent) */
  uint64_t *ended_loops;
  size_t n_ended_loops;
  /* watchers still active at the end on a loop that outlives them (the
   * default loop), or on one this trace never saw made: not reported */
  uint64_t watchers_let_be;
  struct replay_slice {
    uint64_t ts, duration, cb;
    uint32_t tid;
    uint16_t library;
    uint16_t slot;
    uint32_t origin; /* 1 + index in origins: its object's creation (0: none) */
  } *timeline; /* every DISPATCH (all of them with --record=all), in record order */
  size_t n_timeline, cap_timeline;
  /* The creations of the objects whose dispatches are on the timeline: the
   * start of the flows a timeline draws from an object's creation to its
   * callbacks. */
#define REPLAY_ORIGINS_MAX 200000u
  struct replay_origin {
    uint64_t ts;
    uint32_t tid, stack;
    uint16_t library, type;
  } *origins;
  size_t n_origins, cap_origins;
  /* Per thread, what its DISPATCH records set, to read its short ones
   * (trace_format.h: struct loopsan_rec_dispatch_short). */
#define REPLAY_PAIR_THREADS 256
  struct replay_pairs {
    uint32_t tid;
    int has_ts;
    uint64_t ts;
    struct {
      uint64_t obj, cb;
      uint32_t slot;
      int set;
    } e[LOOPSAN_DISPATCH_PAIRS];
  } * pairs;
  size_t n_pairs;
  uint64_t bad_short; /* short dispatch records that named nothing known */
  uint64_t timeline_dropped; /* past REPLAY_TIMELINE_MAX */
  struct replay_site {
    uint64_t cb;
    uint16_t library, slot;
    uint32_t stack; /* where an object with this callback was made (the first seen) */
    uint64_t count, total, max;
    uint64_t buckets[LOOPSAN_HIST_BUCKETS];
  } * sites; /* callback sites: durations from HISTOGRAM records */
  size_t n_sites, cap_sites;
  /* Every recorded dispatch's duration, per callback, in log-linear
   * buckets: the p50 and p99 of a site whose every call the trace has
   * (--record=all), in memory bounded by the sites, not by the calls. */
  struct replay_fine {
    uint64_t cb, count;
    uint64_t *buckets; /* REPLAY_FINE_BUCKETS */
  } * fine;
  size_t n_fine, cap_fine;
  uint32_t fine_recent[64]; /* 1 + index of a callback's buckets, by its address */
  int keep_timeline; /* keep every dispatch for a timeline (chrome, html) */
  struct replay_object *ended_objects[REPLAY_ENDED_RING]; /* the last that ended */
  size_t ended_next;
  struct replay_stall {
    uint32_t tid, stack;
    uint64_t ts;
    uint64_t place; /* the sample's return addresses (all but the innermost pc), hashed */
  } * stalls;       /* stall samples taken by loopsan run, in the order taken */
  size_t n_stalls;
  /* The latest dispatches that made blocking calls: held back until it is
   * known whether the dispatch itself was slow (its DISPATCH record comes
   * after them). A slow one is a slow-callback that says where it was
   * blocked; the others are blocking-call findings. */
#define REPLAY_BLOCKED_RING 64
  struct replay_blocked {
    uint32_t tid;
    uint64_t dispatch_ts, blocked;
    struct raw_finding longest; /* its longest blocking call, as a finding */
    unsigned calls;
  } blocked[REPLAY_BLOCKED_RING];
  unsigned n_blocked;
  uint64_t last_cb;       /* the callback it was inside of when it died */
  uint64_t last_cb_ticks; /* for how long: to its death, or to its last record */
  int last_cb_timed;      /* its death is known */
  int end_signal;         /* what killed it, when known (else 0) */
  int has_crash;          /* the shim saw a fatal signal: */
  struct loopsan_rec_crash crash;
  /* tables */
  struct replay_type *types;
  size_t n_types;
  struct replay_module *modules;
  size_t n_modules, cap_modules;
  struct replay_stack *stacks; /* open addressing by id */
  size_t cap_stacks, n_stacks;
  struct replay_object **objects; /* open addressing by id */
  size_t cap_objects, n_objects;
  /* Records about objects whose OBJ_NEW has not been read yet: chunks of
   * different threads reach the file in write-out order, so an object made
   * on one thread can be used by another "before" it exists. */
  struct replay_orphan *orphans;
  size_t n_orphans, cap_orphans;
  uint64_t *orphan_ids; /* set of the ids in orphans (open addressing, 0 = empty) */
  size_t cap_orphan_ids;
  uint64_t orphans_dropped;
  int replaying_orphans;
  struct raw_finding *findings; /* open addressing by merge key */
  size_t cap_findings, n_findings;
  int failed; /* an allocation failed: results are incomplete */
};

/* The callback site of CB (LIBRARY), made on first sight; NULL if out of
 * memory. */
struct replay_site *loopsan_replay_site(struct loopsan_replay *r, uint64_t cb, uint16_t library);
/* Fine buckets: below REPLAY_FINE_SUB ticks one per value, above that
 * REPLAY_FINE_SUB per power of two (a bucket is at most 1/64 of its
 * values wide: its middle is within 1/128 of any of them). */
#define REPLAY_FINE_SUB 64u
#define REPLAY_FINE_BUCKETS (REPLAY_FINE_SUB + 58u * REPLAY_FINE_SUB)
/* One more dispatch of CB that took DURATION ticks. */
void loopsan_replay_fine_add(struct loopsan_replay *r, uint64_t cb, uint64_t duration);
/* CB's fine buckets, or NULL. */
const struct replay_fine *loopsan_replay_fine(const struct loopsan_replay *r, uint64_t cb);
/* The duration (ticks) of rank K (0-based) among F's, to within 1/128. */
uint64_t loopsan_replay_fine_rank(const struct replay_fine *f, uint64_t k);

/* A dispatch, for the timeline (--record=all has every one). */
void loopsan_replay_timeline_add(struct loopsan_replay *r, const struct loopsan_rec_dispatch *d,
                                 uint32_t tid, uint16_t library, struct replay_object *obj);
/* A trace timestamp as CLOCK_MONOTONIC microseconds (comparable across
 * the processes of a run). */
double loopsan_replay_mono_us(const struct loopsan_replay *r, uint64_t ts);
/* An object that ended lately (the last REPLAY_ENDED_RING), or NULL. */
const struct replay_object *loopsan_replay_ended_object(const struct loopsan_replay *r,
                                                        uint64_t id);
/* A stall sample of the dispatch of TID begun at TS (loopsan run's). */
void loopsan_replay_add_stall(struct loopsan_replay *r, uint32_t tid, uint64_t ts,
                              const uint64_t *pcs, uint32_t n);
/* The samples of that dispatch merged: the stack id of the place where
 * most of them found it (the first of them), or 0 if none was taken;
 * *TAKEN and *HERE say how many were taken and how many found it there. */
uint32_t loopsan_replay_stall_stack(const struct loopsan_replay *r, uint32_t tid, uint64_t ts,
                                    uint32_t *taken, uint32_t *here);
/* threshold_ns 0: use the one recorded in the trace. */
void loopsan_replay_init(struct loopsan_replay *r, uint64_t threshold_ns);
void loopsan_replay_free(struct loopsan_replay *r);
/* The loopsan_record_fn for loopsan_read_trace. */
int loopsan_replay_record(void *ctx, const struct loopsan_record_header *rec, uint32_t tid);
/* A killed process's spill header: the callbacks its thread was inside of
 * (they ran until END_TS, or until its last record if 0). */
void loopsan_replay_spill_header(struct loopsan_replay *r, const struct loopsan_spill_header *h,
                                 uint64_t end_ts);
/* Its threads' dispatch counts, summed over its spill headers (each
 * thread buffer counts its own): fresher than its last COUNTS record. */
void loopsan_replay_spill_counts(struct loopsan_replay *r, const uint64_t *dispatches);
/* A CLOCK_MONOTONIC time as a trace timestamp (through the last clock pair). */
uint64_t loopsan_replay_ts_of_mono(const struct loopsan_replay *r, uint64_t mono_ns);
/* After the last record: what is still alive is judged as at exit; in a
 * process that never ended (killed) it is only counted. */
void loopsan_replay_finish(struct loopsan_replay *r);

const struct replay_type *loopsan_replay_type(const struct loopsan_replay *r, uint16_t library,
                                              uint16_t type);
const struct replay_stack *loopsan_replay_stack(const struct loopsan_replay *r, uint32_t id);
struct replay_object *loopsan_replay_object(struct loopsan_replay *r, uint64_t id);
/* Did loop ID end (close, destroy, free) in this trace? */
int loopsan_replay_loop_ended(const struct loopsan_replay *r, uint64_t id);
/* Record a raw finding, merging it with an identical one. */
void loopsan_replay_report(struct loopsan_replay *r, const struct raw_finding *f);
double loopsan_replay_ms(const struct loopsan_replay *r, uint64_t ticks);

#endif
