/* The loopsan trace, format 2: the only interface between the shim that
 * writes it and the analyzer that reads it. docs/trace-format.md describes
 * it in prose; this header is its exact layout.
 *
 * A trace file is a 16-byte file header followed by chunks. Each chunk is a
 * header with its own magic, size and CRC-32C, then whole records. A thread
 * writes one chunk per flush of its buffer, with one write(2), so a reader
 * that meets a torn or corrupt chunk skips to the next chunk magic whose CRC
 * checks out and loses only that chunk.
 *
 * Everything is little-endian (x86-64 first). Records are 8-byte aligned:
 * size is always a multiple of 8. Timestamps are raw TSC ticks (or
 * CLOCK_MONOTONIC nanoseconds where no invariant TSC exists); CLOCK records
 * pair them with CLOCK_MONOTONIC so the reader converts. */
#ifndef LOOPSAN_TRACE_FORMAT_H
#define LOOPSAN_TRACE_FORMAT_H

#include <stdint.h>

#define LOOPSAN_TRACE_MAGIC "LOOPSANT" /* 8 bytes, no NUL */
#define LOOPSAN_TRACE_VERSION 3u
#define LOOPSAN_TRACE_VERSION_MIN 1u    /* the oldest this reader still reads */
#define LOOPSAN_CHUNK_MAGIC 0x4b43534cu /* "LSCK" */
#define LOOPSAN_CHUNK_MAX_PAYLOAD (1u << 20)
#define LOOPSAN_STACK_MAX_FRAMES 256u
#define LOOPSAN_RECORD_MAX_SIZE 0xfff8u /* h.size is 16 bits and a multiple of 8 */

struct loopsan_file_header {
  char magic[8];
  uint32_t version;
  uint32_t header_size; /* sizeof this struct; lets later versions grow it */
};

struct loopsan_chunk_header {
  uint32_t magic;
  uint32_t size; /* payload bytes after this header */
  uint32_t crc;  /* CRC-32C (Castagnoli) of the payload */
  uint32_t tid;  /* thread whose buffer this was */
  uint64_t seq;  /* per-file sequence number, for ordering and gap counts */
};

struct loopsan_record_header {
  uint16_t type;
  uint16_t size; /* whole record including this header, multiple of 8 */
  uint32_t aux;  /* record-specific small fields (see each record), else 0 */
};

/* Spill files. Each thread's record buffer is a shared mapping of a file
 * named "<trace file>.spill.<n>", so that what a process recorded survives
 * SIGKILL without any write(2): the kernel owns those pages. The records in
 * [written, end) of a spill file are not yet in the trace file; a reader
 * appends them after the trace's own records. The header also holds what
 * the thread is doing right now (the callbacks it is inside of, innermost
 * last) and how many callbacks it has dispatched, so that a process killed
 * inside a callback is still reported with it. A process that exits
 * normally writes everything out and removes its spill files. */
#define LOOPSAN_SPILL_MAGIC "LOOPSPIL"
#define LOOPSAN_SPILL_DATA_OFFSET 256u /* format 2; 64 in format 1 */
#define LOOPSAN_SPILL_DATA_OFFSET_V1 64u
#define LOOPSAN_INFLIGHT_MAX 4u  /* nested dispatches published */
#define LOOPSAN_LIBRARY_SLOTS 8u /* >= LOOPSAN_LIB_COUNT */

/* A dispatch in progress. obj 0: not ours (inherited across fork). */
struct loopsan_inflight {
  uint64_t t0;
  uint64_t obj;
  uint64_t cb;
  uint32_t slot;
  uint32_t library;
};

struct loopsan_spill_header {
  char magic[8];
  uint32_t version;  /* LOOPSAN_TRACE_VERSION */
  uint32_t tid;      /* thread whose records these are */
  uint32_t end;      /* records end here (offset into the data) */
  uint32_t written;  /* records before this offset are already in the trace */
  uint32_t capacity; /* bytes of data after LOOPSAN_SPILL_DATA_OFFSET */
  uint32_t depth;    /* dispatches in progress (entries beyond INFLIGHT_MAX not kept) */
  struct loopsan_inflight inflight[LOOPSAN_INFLIGHT_MAX];
  uint64_t dispatches[LOOPSAN_LIBRARY_SLOTS]; /* callbacks dispatched, per library, ever */
};

/* Libraries; names in loopsan_library_names. */
enum loopsan_library {
  LOOPSAN_LIB_UNKNOWN = 0,
  LOOPSAN_LIB_UV,
  LOOPSAN_LIB_EVENT,
  LOOPSAN_LIB_EV,
  LOOPSAN_LIB_GLIB,
  LOOPSAN_LIB_SDEVENT,
  LOOPSAN_LIB_GENERIC,
  LOOPSAN_LIB_COUNT
};
_Static_assert(LOOPSAN_LIB_COUNT <= LOOPSAN_LIBRARY_SLOTS, "spill header counts every library");
_Static_assert(sizeof(struct loopsan_spill_header) <= LOOPSAN_SPILL_DATA_OFFSET,
               "the spill header fits before the data");

/* What an object is, generically: rules reason about these, never about
 * library-specific types. */
enum loopsan_object_kind {
  LOOPSAN_OBJ_LOOP = 1,    /* uv_loop_t, event_base, ev_loop, GMainContext */
  LOOPSAN_OBJ_HANDLE = 2,  /* long-lived: must be closed/freed */
  LOOPSAN_OBJ_REQUEST = 3, /* one-shot: its callback runs once */
  LOOPSAN_OBJ_WATCHER = 4  /* started and stopped, never closed (libev): done when stopped */
};

enum loopsan_record_type {
  LOOPSAN_REC_PROCESS = 1,
  LOOPSAN_REC_CLOCK = 2,
  LOOPSAN_REC_MODULE = 3,
  LOOPSAN_REC_MODULE_UNLOAD = 4,
  LOOPSAN_REC_THREAD = 5,
  LOOPSAN_REC_STACK = 6,
  LOOPSAN_REC_TYPE = 7,
  LOOPSAN_REC_OBJ_NEW = 8,
  LOOPSAN_REC_OBJ_OP = 9,
  LOOPSAN_REC_DISPATCH = 10,
  LOOPSAN_REC_API_ERROR = 11,
  LOOPSAN_REC_LOST = 12,
  LOOPSAN_REC_END = 13,
  LOOPSAN_REC_COUNTS = 14,       /* format 2 */
  LOOPSAN_REC_UNFINISHED = 15,   /* format 2 */
  LOOPSAN_REC_CHILD_EXIT = 16,   /* format 2 */
  LOOPSAN_REC_BLOCKING = 17,     /* format 3 */
  LOOPSAN_REC_WRONG_THREAD = 18, /* format 3 */
  LOOPSAN_REC_MISUSE = 19,       /* format 3 */
  LOOPSAN_REC_CRASH = 20,        /* format 3 */
  LOOPSAN_REC_HISTOGRAM = 21,    /* format 3 */
  LOOPSAN_REC_DISPATCH_SHORT = 22, /* format 3 */
  LOOPSAN_REC_TYPE_COUNT
};

/* First record of every trace file. exe and argv (NUL-separated) follow. */
struct loopsan_rec_process {
  struct loopsan_record_header h;
  uint32_t format_version;
  uint32_t pid;
  uint32_t ppid;
  uint32_t record_mode; /* 0 findings, 1 all */
  uint64_t realtime_ns; /* wall clock at start, for humans */
  uint64_t slow_ns;     /* thresholds in force */
  uint64_t blocking_ns;
  uint32_t stack_depth;
  uint32_t exe_len;
  uint32_t argv_len;
  uint32_t argc;
};

/* A (ts, CLOCK_MONOTONIC) pair; ticks_per_sec is the writer's estimate
 * (1e9 when ts is already in nanoseconds). */
struct loopsan_rec_clock {
  struct loopsan_record_header h;
  uint64_t ts;
  uint64_t mono_ns;
  uint64_t ticks_per_sec;
};

/* A mapped ELF object; build-id bytes then path follow. Re-emitted (all of
 * them) whenever dlopen/dlclose change the map; the reader keeps the union. */
struct loopsan_rec_module {
  struct loopsan_record_header h;
  uint64_t bias;  /* dlpi_addr */
  uint64_t start; /* lowest PT_LOAD runtime address */
  uint64_t end;   /* highest PT_LOAD runtime end */
  uint32_t build_id_len;
  uint32_t path_len;
};

struct loopsan_rec_module_unload {
  struct loopsan_record_header h;
  uint64_t bias;
};

struct loopsan_rec_thread {
  struct loopsan_record_header h;
  uint32_t tid;
  uint32_t name_len; /* name follows */
};

/* A deduplicated stack: innermost return address first, the shim's own
 * frames already removed. Ids are unique per trace file, 0 means "none". */
struct loopsan_rec_stack {
  struct loopsan_record_header h;
  uint32_t id;
  uint32_t nframes; /* uint64_t addresses follow */
};

/* Names a (library, type) pair used by OBJ_NEW records; name follows. */
struct loopsan_rec_type {
  struct loopsan_record_header h;
  uint16_t library;
  uint16_t type;
  uint16_t kind; /* enum loopsan_object_kind */
  uint16_t name_len;
};

enum loopsan_obj_flags {
  LOOPSAN_OBJF_DEFAULT_LOOP = 1u << 0, /* a library-owned singleton loop */
  LOOPSAN_OBJF_LOOP = 1u << 1,         /* a loop: its records are always kept */
  /* (format 3) Attached to its loop, it lives as long as the loop (a
   * GSource): still attached at exit is no leak unless the loop was
   * destroyed around it (LOOPSAN_CLOSED_WITH_LOOP). */
  LOOPSAN_OBJF_LIVES_WITH_LOOP = 1u << 2,
  /* (format 3) Made by a library for its own use (GIO's sources): its
   * callbacks are timed, its life is the library's business, not judged. */
  LOOPSAN_OBJF_LIBRARY_OWNED = 1u << 3,
};

/* An object came to life. obj ids are unique per process (never reused);
 * loop is the id of the loop it belongs to (0: none/unknown). h.aux holds
 * enum loopsan_obj_flags. The thread is the chunk's. */
struct loopsan_rec_obj_new {
  struct loopsan_record_header h;
  uint64_t ts;
  uint64_t obj;
  uint64_t loop;
  uint64_t address;
  uint32_t stack;
  uint16_t library;
  uint16_t type;
  /* (format 3; absent from the 48-byte form of formats 1 and 2) the
   * object whose callback was running when this one was made (0: none):
   * its creation stack continues this one's, which stops at that
   * callback. */
  uint64_t parent;
};
#define LOOPSAN_OBJ_NEW_SIZE_MIN 48u

enum loopsan_obj_op {
  LOOPSAN_OP_START = 1,       /* armed with callback cb; arg: LOOPSAN_START_* */
  LOOPSAN_OP_STOP = 2,        /* disarmed by the program */
  LOOPSAN_OP_USE = 3,         /* any other use by the program (bind, write, ...) */
  LOOPSAN_OP_CLOSE = 4,       /* close requested (uv_close); cb = close callback */
  LOOPSAN_OP_CLOSED = 5,      /* gone for good: close completed, loop closed */
  LOOPSAN_OP_FIRED = 6,       /* first dispatch since the last START */
  LOOPSAN_OP_COMPLETE = 7,    /* a request's callback ran; arg: its status */
  LOOPSAN_OP_RUN = 8,         /* a loop started running (uv_run); arg: mode */
  LOOPSAN_OP_CALLBACK = 9,    /* the callback it will run, known before any start (event_new) */
  LOOPSAN_OP_ATTACH = 10,     /* (format 3) now belongs to the loop whose object id is cb */
  LOOPSAN_OP_UNOBSERVED = 11, /* (format 3) failed with nothing to see it (no callback set):
                                 arg -errno, or 0 for an end of file */
  LOOPSAN_OP_SITE = 12,       /* (format 3) its callback cb is a callback site seen first here:
                                 the site's creation stack is this object's */
  LOOPSAN_OP_COUNT
};

/* (format 3) A DISPATCH whose aux (the callback slot) is this is not one
 * callback but a whole iteration of a loop seen by the generic layer
 * (library "generic": the time from one wait's return to the thread's next
 * wait on the same epoll descriptor); its obj is 0 and its cb the epoll
 * descriptor. LOOPSAN_DISPATCH_ITERATION_POLL is the same for a loop that
 * waits in poll/select, from the same call site: its cb is the return
 * address of that call. */
#define LOOPSAN_DISPATCH_ITERATION 8u
#define LOOPSAN_DISPATCH_ITERATION_POLL 9u
#define LOOPSAN_IS_ITERATION(slot) \
  ((slot) == LOOPSAN_DISPATCH_ITERATION || (slot) == LOOPSAN_DISPATCH_ITERATION_POLL)

/* (format 3) The arg of LOOPSAN_OP_CLOSED. */
enum loopsan_closed_flags {
  /* It did not end by itself or by the program: its loop was destroyed
   * while it was still attached (g_main_context_unref freeing a context
   * destroys its sources). */
  LOOPSAN_CLOSED_WITH_LOOP = 1u << 0,
};

enum loopsan_start_flags {
  LOOPSAN_START_ONESHOT = 1u << 0,  /* fires once then disarms itself */
  LOOPSAN_START_SCHEDULED = 1u << 1 /* a deadline: never firing is "pending" */
};

/* A change in an object's life: the most frequent record, so it is short.
 * h.aux = op | (arg << 8), arg a signed 24-bit value. The record is 24
 * bytes without a callback, 32 with cb, 40 with cb and the call's stack;
 * fields beyond h.size read as 0. */
struct loopsan_rec_obj_op {
  struct loopsan_record_header h;
  uint64_t ts;
  uint64_t obj;
  uint64_t cb;
  uint32_t stack;
  uint32_t pad;
};
#define LOOPSAN_OBJ_OP_SIZE_MIN 24u
#define LOOPSAN_OP_AUX(op, arg) ((uint32_t)(op) | ((uint32_t)(arg) << 8))
#define LOOPSAN_OP_OF(aux) ((aux)&0xffu)
#define LOOPSAN_ARG_OF(aux) ((int32_t)(aux) >> 8)

/* One callback dispatch. In record mode "findings" only those at or over
 * the slow threshold are written; in mode "all", every one. h.aux: which
 * callback of the object (main, alloc, close, ...). */
struct loopsan_rec_dispatch {
  struct loopsan_record_header h;
  uint64_t ts;       /* start */
  uint64_t duration; /* in ts units */
  uint64_t obj;
  uint64_t cb;
};

/* A DISPATCH in 16 bytes (--record=all): one like a recent DISPATCH of its
 * thread, in the same chunk. Each full DISPATCH record of a thread sets,
 * in that thread's table of LOOPSAN_DISPATCH_PAIRS entries, entry
 * loopsan_dispatch_pair_index(obj, cb, slot) to its (obj, cb, slot), and
 * the thread's last dispatch time to its ts; a short record names an entry
 * set in its own chunk (h.aux: slot | entry << 8) and its start as the
 * ticks since the thread's last dispatch record (full or short) of that
 * chunk, which it then becomes. A chunk lost loses nothing else. */
struct loopsan_rec_dispatch_short {
  struct loopsan_record_header h;
  uint32_t ts_delta;
  uint32_t duration;
};
#define LOOPSAN_DISPATCH_PAIRS 16u
static inline uint32_t loopsan_dispatch_pair_index(uint64_t obj, uint64_t cb, uint32_t slot) {
  uint64_t h = (obj * 0x9E3779B97F4A7C15ull) ^ (cb * 0xC2B2AE3D27D4EB4Full) ^ slot;
  return (uint32_t)(h >> 60) & (LOOPSAN_DISPATCH_PAIRS - 1u);
}

/* A loop API call returned an error. The function name follows. h.aux:
 * enum loopsan_api_error_flags. */
enum loopsan_api_error_flags {
  LOOPSAN_APIERR_LOOP_CLOSE = 1u << 0, /* closing the loop failed: handles still open */
};

struct loopsan_rec_api_error {
  struct loopsan_record_header h;
  uint64_t ts;
  uint64_t obj;
  int32_t result;
  uint32_t stack;
  uint16_t library;
  uint16_t name_len;
  uint32_t pad;
};

/* The writer dropped records (buffer exhausted, table full, ...). */
struct loopsan_rec_lost {
  struct loopsan_record_header h; /* h.aux: enum loopsan_lost_reason */
  uint64_t records;
};

enum loopsan_lost_reason {
  LOOPSAN_LOST_WRITE_FAILED = 1,
  LOOPSAN_LOST_OBJECT_TABLE_FULL = 2,
  LOOPSAN_LOST_STACK_TABLE_FULL = 3,
  LOOPSAN_LOST_RECORD_TOO_BIG = 4,
};

enum loopsan_end_how {
  LOOPSAN_END_EXIT = 1,   /* exit() / return from main: destructors ran */
  LOOPSAN_END__EXIT = 2,  /* _exit(), _Exit(), quick_exit() */
  LOOPSAN_END_EXEC = 3,   /* the image was replaced by exec */
  LOOPSAN_END_KILLED = 4, /* not written by the shim: the analyzer's word for
                             a process that ended without an END record */
};

struct loopsan_rec_end {
  struct loopsan_record_header h;
  uint64_t ts;
  uint32_t how;
  int32_t status; /* exit status where known, else -1 */
};

/* What the shim counted so far (cumulative: a reader keeps the largest
 * value of each count). Counters survive compaction, so a clean run still
 * says what was observed. Followed by uint64_t dispatches[n_libraries]
 * (callbacks dispatched, indexed by enum loopsan_library), then n_types
 * struct loopsan_count entries. */
struct loopsan_rec_counts {
  struct loopsan_record_header h;
  uint16_t n_libraries;
  uint16_t n_types;
  uint32_t pad;
};

struct loopsan_count {
  uint16_t library;
  uint16_t type;
  uint32_t pad;
  uint64_t created; /* objects the program created */
  uint64_t ended;   /* of those, closed, freed or completed */
};

/* A callback that was still running when its process ended: written at
 * exit, _exit and exec for every thread's dispatches in progress, and made
 * up by the analyzer from a killed process's spill files. h.aux: the
 * callback's slot. */
struct loopsan_rec_unfinished {
  struct loopsan_record_header h;
  uint64_t ts;     /* when the callback began */
  uint64_t end_ts; /* when the process ended (or was last seen) */
  uint64_t obj;
  uint64_t cb;
  uint32_t tid; /* the thread running it */
  uint16_t library;
  uint16_t how; /* enum loopsan_end_how */
};

/* A child this process reaped (waitpid and its kin): when it died and how,
 * for a child whose own trace has no END (killed). */
struct loopsan_rec_child_exit {
  struct loopsan_record_header h;
  uint64_t ts;
  uint32_t pid;
  int32_t status; /* as waitpid(2) reports it */
};

/* (format 3) The program called a library function that is not
 * thread-safe on an object (obj; 0: the loop itself) whose loop (loop)
 * was running on another thread (owner_tid) at the time. stack is the
 * call's; the function's name follows. The calling thread is the chunk's. */
struct loopsan_rec_wrong_thread {
  struct loopsan_record_header h;
  uint64_t ts;
  uint64_t obj;
  uint64_t loop;
  uint32_t owner_tid;
  uint32_t stack;
  uint16_t library;
  uint16_t name_len;
  uint32_t pad;
};

/* (format 3) The program called NAME on object obj in a state where the
 * library forbids it (h.aux: enum loopsan_misuse). stack is the call's;
 * cause the stack of the event that made it wrong when the shim kept it
 * (else it is in obj's own records: the stack of its CLOSE); type and
 * address are obj's (LOOPSAN_TYPE_UNKNOWN, 0: not known), for when obj's
 * records are gone; arg and arg2 depend on what. Written, and the trace flushed,
 * before the library is called, since it may abort or crash. */
enum loopsan_misuse {
  LOOPSAN_MISUSE_CLOSE_CLOSING = 1,    /* uv_close on a handle already closing */
  LOOPSAN_MISUSE_USE_AFTER_CLOSE = 2,  /* a libuv call on a handle whose close completed */
  LOOPSAN_MISUSE_REINIT_OPEN = 3,      /* uv_*_init on a handle still open */
  LOOPSAN_MISUSE_EVENT_NOT_SETUP = 4,  /* event_add/del on an event never set up (or freed) */
  LOOPSAN_MISUSE_ASSIGN_ADDED = 5,     /* event_assign/event_set on an event still added */
  LOOPSAN_MISUSE_FD_BLOCKING = 6,      /* an event on a descriptor in blocking mode (arg) */
  LOOPSAN_MISUSE_START_OTHER_LOOP = 7, /* ev_*_start of a watcher active on another loop */
  LOOPSAN_MISUSE_FD_CHANGED = 8,       /* an active ev_io's fd changed (arg: at start, arg2: now) */
  LOOPSAN_MISUSE_ATTACH_TWICE = 9,     /* g_source_attach of a source already attached */
  LOOPSAN_MISUSE_ATTACH_DESTROYED = 10, /* g_source_attach of a source destroyed */
  LOOPSAN_MISUSE_EVENT_FREED = 11,      /* event_add/del of an event event_free'd (cause: where) */
  LOOPSAN_MISUSE_SOURCE_FREED = 12,     /* a g_source_* call after the source's last unref */
};
#define LOOPSAN_TYPE_UNKNOWN 0xffffu
struct loopsan_rec_misuse {
  struct loopsan_record_header h;
  uint64_t ts;
  uint64_t obj;
  uint32_t stack;
  uint16_t library;
  uint16_t name_len;
  uint32_t cause;
  uint16_t type;
  uint16_t pad;
  int32_t arg, arg2;
  uint64_t address; /* obj's */
};

/* (format 3) A fatal signal (aux: its number) the program would die of:
 * it had no handler of its own for it. obj, cb, library, slot and
 * dispatch_ts name the innermost callback running on the thread (cb 0:
 * none, it crashed outside callbacks); stack is where the signal came
 * from (its innermost frame the faulting instruction); code and addr are
 * the siginfo's si_code and si_addr. */
struct loopsan_rec_crash {
  struct loopsan_record_header h;
  uint64_t ts;
  uint64_t obj;
  uint64_t cb;
  uint64_t dispatch_ts;
  uint64_t addr;
  uint32_t stack;
  int32_t code;
  uint32_t tid;
  uint16_t library;
  uint16_t slot;
};

/* (format 3) How long the callbacks of one callback site (function) took
 * since the thread's last HISTOGRAM for it: every dispatch, also in record
 * mode "findings" (where no DISPATCH is written for most). buckets[i]
 * counts the dispatches of [2^i, 2^(i+1)) ticks (bucket 0 also 0 and 1;
 * the last, everything above); total and max in ticks. The analyzer adds
 * up a site's records across threads and write-outs. aux: the slot. */
#define LOOPSAN_HIST_BUCKETS 40
struct loopsan_rec_histogram {
  struct loopsan_record_header h;
  uint64_t cb;
  uint64_t total;
  uint64_t max;
  uint64_t count;
  uint16_t library;
  uint16_t pad[3];
  uint32_t buckets[LOOPSAN_HIST_BUCKETS];
};

/* (format 3) A libc call that blocks (sleep, fsync, a blocking read, ...)
 * made inside a loop callback lasted blocking_ns or more. obj, cb and
 * dispatch_ts name the innermost callback running on the thread (obj 0:
 * unknown); stack is the call's. The call's name follows. */
struct loopsan_rec_blocking {
  struct loopsan_record_header h;
  uint64_t ts;       /* when the call began */
  uint64_t duration; /* ticks */
  uint64_t obj;
  uint64_t cb;
  uint64_t dispatch_ts; /* when that callback's dispatch began */
  uint32_t stack;
  uint16_t library;
  uint16_t name_len;
};

#endif
