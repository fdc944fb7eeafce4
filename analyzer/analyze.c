#include "analyzer/analyze.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "analyzer/reader.h"
#include "analyzer/replay.h"
#include "analyzer/strbuf.h"
#include "analyzer/libraries.h"
#include "common/names.h"

/* ---- collecting trace files ---- */

struct path_list {
  char **v;
  size_t n, cap;
};

static int path_push(struct path_list *l, char *p) {
  if (!p)
    return -1;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    char **t = realloc(l->v, cap * sizeof *t);
    if (!t) {
      free(p);
      return -1;
    }
    l->v = t;
    l->cap = cap;
  }
  l->v[l->n++] = p;
  return 0;
}

int loopsan_is_trace_name(const char *name) {
  size_t n = strlen(name);
  return strncmp(name, "loopsan.", 8) == 0 && n > 14 && strcmp(name + n - 6, ".trace") == 0;
}

static int compare_paths(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int collect(const char *path, struct path_list *l, struct loopsan_report *rep) {
  struct stat st;
  if (stat(path, &st) != 0) {
    loopsan_report_add_note(&rep->notes, &rep->n_notes, "%s: %s", path, strerror(errno));
    return 0;
  }
  if (!S_ISDIR(st.st_mode))
    return path_push(l, strdup(path));
  DIR *d = opendir(path);
  if (!d) {
    loopsan_report_add_note(&rep->notes, &rep->n_notes, "%s: %s", path, strerror(errno));
    return 0;
  }
  size_t first = l->n;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!loopsan_is_trace_name(e->d_name))
      continue;
    char *p = NULL;
    if (asprintf(&p, "%s/%s", path, e->d_name) < 0 || path_push(l, p) != 0) {
      closedir(d);
      return -1;
    }
  }
  closedir(d);
  if (l->n == first)
    loopsan_report_add_note(&rep->notes, &rep->n_notes,
                            "%s: no loopsan trace files in this directory", path);
  qsort(l->v + first, l->n - first, sizeof *l->v, compare_paths);
  return 0;
}

/* ---- how processes that left no END record ended ---- */

/* A child's end as its parent reaped it (CHILD_EXIT records), or as `loopsan
 * run` saw its own child end: when, in CLOCK_MONOTONIC, and by which signal. */
#define child_end loopsan_process_end

struct end_scan {
  uint64_t clock_ts, clock_mono_ns, ticks_per_sec;
  struct child_end *v;
  size_t n, cap;
};

static void push_end(struct end_scan *e, struct child_end end) {
  if (e->n == e->cap) {
    size_t cap = e->cap ? e->cap * 2 : 16;
    struct child_end *t = realloc(e->v, cap * sizeof *t);
    if (!t)
      return;
    e->v = t;
    e->cap = cap;
  }
  e->v[e->n++] = end;
}

static int scan_child_exits(void *ctx, const struct loopsan_record_header *rec, uint32_t tid) {
  (void)tid;
  struct end_scan *e = ctx;
  if (rec->type == LOOPSAN_REC_CLOCK) {
    const struct loopsan_rec_clock *c = (const void *)rec;
    e->clock_ts = c->ts;
    e->clock_mono_ns = c->mono_ns;
    e->ticks_per_sec = c->ticks_per_sec ? c->ticks_per_sec : 1000000000u;
  } else if (rec->type == LOOPSAN_REC_CHILD_EXIT && e->ticks_per_sec) {
    const struct loopsan_rec_child_exit *x = (const void *)rec;
    double dt = ((double)x->ts - (double)e->clock_ts) * 1e9 / (double)e->ticks_per_sec;
    push_end(e, (struct child_end){.pid = (int)x->pid,
                                   .signal = WIFSIGNALED(x->status) ? WTERMSIG(x->status) : 0,
                                   .mono_ns = (uint64_t)((double)e->clock_mono_ns + dt),
                                   .status = WIFEXITED(x->status) ? WEXITSTATUS(x->status) : -1});
  }
  return 0;
}

/* The ends `loopsan run` saw of the processes it reaped, kept next to the
 * traces (LOOPSAN_ENDS_FILE) so that a later `loopsan report` knows them
 * too. Lines "pid signal mono_ns"; anything else is skipped. */
static void read_ends_file(const char *dir, struct end_scan *ends) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, LOOPSAN_ENDS_FILE);
  FILE *f = fopen(path, "re");
  char line[128];
  while (f && fgets(line, sizeof line, f)) {
    int pid, sig, status = -1;
    unsigned long long mono;
    if (sscanf(line, "%d %d %llu %d", &pid, &sig, &mono, &status) >= 3 && pid > 0 && sig >= 0 &&
        sig < 65)
      push_end(ends, (struct child_end){pid, sig, (uint64_t)mono, sig ? -1 : status});
  }
  if (f)
    fclose(f);
}

/* How the processes of the run ended, as those that reaped them saw it:
 * every parent's CHILD_EXIT records, and the ends file `loopsan run` left
 * in each directory. */
static void collect_child_ends(const struct path_list *files, struct end_scan *ends) {
  char last_dir[4096] = "";
  for (size_t i = 0; i < files->n; i++) {
    struct loopsan_read_stats st;
    char err[512], dir[4096];
    ends->ticks_per_sec = 0;
    loopsan_read_trace(files->v[i], scan_child_exits, ends, &st, err, sizeof err);
    const char *slash = strrchr(files->v[i], '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - files->v[i]) : 1,
             slash ? files->v[i] : ".");
    if (strcmp(dir, last_dir) != 0) { /* files come sorted: a directory's are together */
      read_ends_file(dir, ends);
      snprintf(last_dir, sizeof last_dir, "%s", dir);
    }
  }
}

/* How process PID, which left no END record, ended: what `loopsan run`
 * saw of its own child, else what a parent reaped (the last such record). */
static int find_end(const struct loopsan_analyze_options *opts, const struct end_scan *ends,
                    int pid, struct child_end *out) {
  for (size_t i = opts->n_ends; i-- > 0;)
    if (opts->ends[i].pid == pid) {
      *out = opts->ends[i];
      return 1;
    }
  for (size_t i = ends ? ends->n : 0; i-- > 0;)
    if (ends->v[i].pid == pid) {
      *out = ends->v[i];
      return 1;
    }
  return 0;
}

/* ---- symbolised frames ---- */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static int own_frame(struct loopsan_frame_owned *o, const loopsan_frame *f) {
  o->function = dup_or_null(f->function);
  o->file = dup_or_null(f->file);
  o->module = dup_or_null(f->module);
  o->line = f->line;
  o->address = f->address;
  o->module_offset = f->module_offset;
  return 0;
}

/* Expand a recorded stack into frames (inlined frames included). */
static int frames_of_stack(loopsan_symbolizer *sym, const struct replay_stack *s,
                           struct loopsan_frame_owned **out, size_t *n_out) {
  *out = NULL;
  *n_out = 0;
  if (!s)
    return 0;
  size_t n = 0, cap = s->n + 4;
  struct loopsan_frame_owned *v = calloc(cap, sizeof *v);
  if (!v)
    return -1;
  for (uint32_t i = 0; i < s->n; i++) {
    const loopsan_frame *fr;
    size_t nf;
    if (loopsan_symbolize(sym, s->frames[i], 1, &fr, &nf) != 0)
      break;
    for (size_t k = 0; k < nf; k++) {
      /* GCC's partial inlining leaves a function inlined into its own
       * outlined part: one address, the same function twice. Keep the
       * inner, more precise frame. */
      if (k > 0 && fr[k].function && fr[k - 1].function &&
          strcmp(fr[k].function, fr[k - 1].function) == 0)
        continue;
      /* The shim's own frames (its trampolines, in a stall sample) are no
       * part of the program's story. */
      if (fr[k].module) {
        const char *base = strrchr(fr[k].module, '/');
        if (strncmp(base ? base + 1 : fr[k].module, "libloopsan", 10) == 0)
          continue;
      }
      if (n == cap) {
        cap *= 2;
        struct loopsan_frame_owned *t = realloc(v, cap * sizeof *t);
        if (!t)
          goto done;
        v = t;
      }
      own_frame(&v[n++], &fr[k]);
    }
  }
done:
  *out = v;
  *n_out = n;
  return 0;
}

/* ---- messages ---- */

static const char *error_name(int32_t result) {
  static __thread char buf[32]; /* (traces are analysed on several threads) */
  const char *name = result < 0 ? strerrorname_np(-result) : NULL;
  if (name)
    return name;
  snprintf(buf, sizeof buf, "%d", result);
  return buf;
}

static void callback_phrase(struct loopsan_strbuf *sb, const struct loopsan_finding *f) {
  if (!f->has_callback)
    return;
  if (f->callback.function)
    /* A demangled C++ name carries its parameter list already. */
    loopsan_sb_printf(sb, strchr(f->callback.function, '(') ? "%s" : "%s()", f->callback.function);
  else if (f->callback.module)
    loopsan_sb_printf(sb, "%s+0x%llx",
                      strrchr(f->callback.module, '/') ? strrchr(f->callback.module, '/') + 1
                                                       : f->callback.module,
                      (unsigned long long)f->callback.module_offset);
  else
    loopsan_sb_printf(sb, "0x%llx", (unsigned long long)f->callback.address);
}

int loopsan_signal_is_crash(int sig) {
  return sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT || sig == SIGFPE || sig == SIGILL ||
         sig == SIGTRAP || sig == SIGSYS;
}

/* What a siginfo's si_code says of SIG (NULL: nothing worth saying). */
static const char *signal_code_phrase(int sig, int32_t code) {
  if (code == INT32_MIN)
    return NULL;
  if (code <= 0)
    return sig == SIGABRT ? "abort(), an assertion, or raise()" : "sent by kill() or raise()";
  switch (sig) {
  case SIGSEGV:
    return code == SEGV_MAPERR   ? "address not mapped"
           : code == SEGV_ACCERR ? "invalid permissions for the address"
                                 : NULL;
  case SIGBUS:
    return code == BUS_ADRALN   ? "invalid address alignment"
           : code == BUS_ADRERR ? "nonexistent physical address (a truncated mapped file?)"
           : code == BUS_OBJERR ? "object-specific hardware error"
                                : NULL;
  case SIGFPE:
    return code == FPE_INTDIV   ? "integer divide by zero"
           : code == FPE_INTOVF ? "integer overflow"
           : code == FPE_FLTDIV ? "floating-point divide by zero"
                                : "floating-point exception";
  case SIGILL: return code == ILL_ILLOPC ? "illegal opcode" : "illegal instruction";
  default: return NULL;
  }
}

/* "SIGSEGV on address 0x0 (address not mapped)" into SB. */
static void signal_phrase(struct loopsan_strbuf *sb, int sig, int32_t code, uint64_t addr) {
  const char *name = sig > 0 ? sigabbrev_np(sig) : NULL;
  loopsan_sb_printf(sb, "SIG%s", name ? name : "?");
  int fault = code > 0 && code != INT32_MIN &&
              (sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL);
  if (fault && (sig == SIGSEGV || sig == SIGBUS))
    loopsan_sb_printf(sb, " on address 0x%llx", (unsigned long long)addr);
  else if (fault)
    loopsan_sb_printf(sb, " at 0x%llx", (unsigned long long)addr);
  const char *why = signal_code_phrase(sig, code);
  if (why)
    loopsan_sb_printf(sb, " (%s)", why);
}

static const char *const unfinished_why[] = {
    [LOOPSAN_END_EXIT] = "the process exited (exit() was called) while it ran",
    [LOOPSAN_END__EXIT] = "the process ended with _exit() while it ran",
    [LOOPSAN_END_EXEC] = "the process replaced itself with exec while it ran",
    [LOOPSAN_END_KILLED] = "the process was killed while it ran",
    [REPLAY_END_KILLED_UNTIMED] = "the process was killed while it ran; when is unknown, so this "
                                  "is the time until its last record",
};

/* The sentence on the object's other problems (one object, one finding). */
/* The sentence on the object's other problems (one object, one finding).
 * WHAT names the object ("it", or "its uv_timer_t" beside a callback). */
static void also_phrase(struct loopsan_strbuf *d, const struct raw_finding *raw, const char *what) {
  if (raw->also & (1u << LOOPSAN_KIND_NEVER_STARTED))
    loopsan_sb_printf(d, "%s%s was never started either", d->len ? "; " : "", what);
  if (raw->also & (1u << LOOPSAN_KIND_UNCLOSED_HANDLE))
    loopsan_sb_printf(d, "%s%s was never %s either", d->len ? "; " : "", what,
                      raw->obj_kind == LOOPSAN_OBJ_WATCHER ? "stopped" : "closed");
}

static void compose_message(struct loopsan_finding *f, const struct raw_finding *raw,
                            const char *type, double threshold_ms, double blocking_ms,
                            double blocked_ms) {
  struct loopsan_strbuf m, d;
  loopsan_sb_init(&m);
  loopsan_sb_init(&d);
  const struct loopsan_library_vocab *v = loopsan_library_vocab(raw->library);
  switch (f->kind) {
  case LOOPSAN_KIND_SLOW_CALLBACK:
    loopsan_sb_puts(&m, "callback ");
    callback_phrase(&m, f);
    if (raw->detail >= RAW_DETAIL_UNFINISHED) {
      unsigned how = raw->detail - RAW_DETAIL_UNFINISHED;
      loopsan_sb_printf(&m, " of %s ran for %s%.3f ms and never returned", type,
                        how == REPLAY_END_KILLED_UNTIMED ? "at least " : "", f->duration_ms);
      if (how == LOOPSAN_END_KILLED && raw->result > 0)
        loopsan_sb_printf(&d, "the process %s (SIG%s) while it ran",
                          loopsan_signal_is_crash(raw->result) ? "crashed" : "was killed",
                          sigabbrev_np(raw->result) ? sigabbrev_np(raw->result) : "?");
      else
        loopsan_sb_puts(&d,
                        how < sizeof unfinished_why / sizeof *unfinished_why && unfinished_why[how]
                            ? unfinished_why[how]
                            : "the process ended while it ran");
    } else {
      loopsan_sb_printf(&m, " of %s took %.3f ms", type, f->duration_ms);
      if (f->count > 1)
        loopsan_sb_printf(&m, " (the slowest of %u slow calls)", f->count);
      loopsan_sb_printf(&d, "nothing else on this loop could run meanwhile (threshold %.0f ms)",
                        threshold_ms);
    }
    break;
  case LOOPSAN_KIND_MISUSE:
    if (raw->result == LOOPSAN_MISUSE_CLOSE_CLOSING) {
      loopsan_sb_printf(&m, "%s() called on %s that is already closing", raw->call, type);
      loopsan_sb_printf(&d, "libuv aborts on its assertion right after: a handle is closed once "
                            "(uv_is_closing() says whether it was); the first close is shown as "
                            "\"closed before at\"");
    } else if (raw->result == LOOPSAN_MISUSE_USE_AFTER_CLOSE) {
      loopsan_sb_printf(&m, "%s() called on %s after it was closed", raw->call, type);
      loopsan_sb_printf(&d, "its close callback had run, so it is no handle of libuv's any more "
                            "(libuv refuses the call, or worse: the memory may belong to something "
                            "else now); the close is shown as \"closed before at\"");
    } else if (raw->result == LOOPSAN_MISUSE_REINIT_OPEN) {
      loopsan_sb_printf(&m, "%s() called on %s that is still open", raw->call, type);
      loopsan_sb_printf(&d, "it was initialised before (created at, below) and never closed: "
                            "libuv's list of the loop's handles now holds it twice, which "
                            "corrupts it; uv_close() a handle and wait for its close callback "
                            "before initialising it again");
    } else if (raw->result == LOOPSAN_MISUSE_EVENT_NOT_SETUP) {
      loopsan_sb_printf(&m, "%s() called on an event that was never set up", raw->call);
      loopsan_sb_printf(&d, "neither event_new() nor event_assign() made it, or event_free() "
                            "freed it: libevent reads its base and flags from whatever that "
                            "memory holds (event_enable_debug_mode() aborts on this)");
    } else if (raw->result == LOOPSAN_MISUSE_EVENT_FREED) {
      loopsan_sb_printf(&m, "%s() called on %s after event_free() freed it", raw->call,
                        raw->type_name[0] ? type : "an event");
      loopsan_sb_printf(&d, "libevent reads a base and flags from freed memory (a use after "
                            "free); the free is shown as \"freed at\"");
    } else if (raw->result == LOOPSAN_MISUSE_SOURCE_FREED) {
      loopsan_sb_printf(&m, "%s() called on %s after its last g_source_unref() freed it", raw->call,
                        raw->type_name[0] ? type : "a GSource");
      loopsan_sb_printf(&d, "GLib reads freed memory (a use after free); the last unref is "
                            "shown as \"freed at\"");
    } else if (raw->result == LOOPSAN_MISUSE_ASSIGN_ADDED) {
      loopsan_sb_printf(&m, "%s() called on %s that is still added", raw->call, type);
      loopsan_sb_printf(&d, "libevent's queues still hold it, and this overwrites it: "
                            "event_del() it first (event_enable_debug_mode() aborts on this)");
    } else if (raw->result == LOOPSAN_MISUSE_FD_BLOCKING) {
      loopsan_sb_printf(&m, "%s() watches fd %d, which is in blocking mode", raw->call,
                        (int)raw->misuse_arg);
      loopsan_sb_printf(&d, "a read or write the loop wakes up for can still block (a spurious "
                            "wake-up, another reader first), and then the whole loop waits: "
                            "make it non-blocking (evutil_make_socket_nonblocking())");
    } else if (raw->result == LOOPSAN_MISUSE_START_OTHER_LOOP) {
      loopsan_sb_printf(&m, "%s() called on %s that is active on another loop", raw->call, type);
      loopsan_sb_printf(&d, "libev does nothing for a watcher that is already active, so this "
                            "start was lost: stop it on its own loop first");
    } else if (raw->result == LOOPSAN_MISUSE_FD_CHANGED) {
      loopsan_sb_printf(&m,
                        "%s() called on %s whose fd changed while it was active (%d at its "
                        "start, %d now)",
                        raw->call, type, (int)raw->misuse_arg, (int)raw->misuse_arg2);
      loopsan_sb_printf(&d, "libev finds an active watcher by the fd it was started with: "
                            "ev_io_set() a watcher only while it is stopped");
    } else if (raw->result == LOOPSAN_MISUSE_ATTACH_DESTROYED) {
      loopsan_sb_printf(&m, "%s() called on %s that was destroyed", raw->call,
                        raw->type_name[0] ? type : "a GSource");
      loopsan_sb_printf(&d, "GLib refuses it (a critical warning) and returns 0: a destroyed "
                            "source is done; make a new one");
    } else if (raw->result == LOOPSAN_MISUSE_ATTACH_TWICE) {
      loopsan_sb_printf(&m, "%s() called on %s that is already attached", raw->call, type);
      loopsan_sb_printf(&d, "GLib refuses it (a critical warning) and returns 0: a source is "
                            "attached to one context, once");
    } else {
      loopsan_sb_printf(&m, "%s() called on %s in a state that forbids it", raw->call, type);
    }
    break;
  case LOOPSAN_KIND_CRASH:
    signal_phrase(&m, raw->result, raw->signal_code, raw->fault_address);
    loopsan_sb_puts(&m, " in callback ");
    callback_phrase(&m, f);
    loopsan_sb_printf(&m, " of %s", type);
    loopsan_sb_printf(&d, "the process died of it, %.3f ms into the callback", f->duration_ms);
    if (raw->signal_code == INT32_MIN)
      loopsan_sb_puts(&d, "; loopsan's signal handler never ran (a stack overflow leaves it no "
                          "stack to run on), so where in the callback is unknown: the dispatch in "
                          "progress says which callback it was");
    else if (f->n_stack)
      loopsan_sb_puts(&d, "; the stack is where it happened");
    break;
  case LOOPSAN_KIND_UNOBSERVED_ERROR:
    if (raw->library == LOOPSAN_LIB_GLIB) { /* a GTask: arg -(GError code + 1) */
      loopsan_sb_printf(&m, "%s returned an error (GError code %d) and had no callback to see it",
                        type, (int)(-raw->result - 1));
      loopsan_sb_puts(&d, "it was made with g_task_new() and a NULL callback, so nothing can "
                          "call g_task_propagate_*(): the error is lost (asyncio: \"Task "
                          "exception was never retrieved\"); pass a callback that propagates it");
      break;
    }
    if (raw->obj_kind == LOOPSAN_OBJ_REQUEST)
      loopsan_sb_printf(&m, "%s request failed with %s%s and had no callback to see it", type,
                        v->error_prefix, error_name(raw->result));
    else if (raw->result < 0)
      loopsan_sb_printf(&m, "%s failed with %s and had no event callback to see it", type,
                        error_name(raw->result));
    else
      loopsan_sb_printf(&m, "%s reached end of file and had no event callback to see it", type);
    loopsan_sb_printf(&d, "%s: the program was never told; %s",
                      raw->result < 0 ? strerror(-raw->result) : "the peer closed",
                      raw->obj_kind == LOOPSAN_OBJ_REQUEST
                          ? "pass a callback and look at its status"
                          : "set an event callback (bufferevent_setcb) and handle it");
    break;
  case LOOPSAN_KIND_API_ERROR:
    loopsan_sb_printf(
        &m, "%s() returned %s%s", raw->call, raw->library == LOOPSAN_LIB_UV ? v->error_prefix : "",
        raw->library == LOOPSAN_LIB_UV ? error_name(raw->result) : (raw->result ? "-1" : "0"));
    if (raw->type_name[0])
      loopsan_sb_printf(&m, " on %s", type);
    if (raw->library == LOOPSAN_LIB_UV && raw->result < 0)
      loopsan_sb_printf(&d,
                        "%s: the call was not valid for the object's state or arguments, and "
                        "did nothing",
                        strerror(-raw->result));
    else
      loopsan_sb_puts(&d, "the call failed and did nothing");
    break;
  case LOOPSAN_KIND_WRONG_THREAD:
    loopsan_sb_printf(&m, "%s() called on %s from thread %u while its loop runs on thread %d",
                      raw->call, type, raw->tid, (int)raw->result);
    if (raw->library == LOOPSAN_LIB_GLIB) /* GLib is thread-safe but for running a context */
      loopsan_sb_printf(&d,
                        "only the thread that owns a GMainContext (the one running it) may "
                        "iterate it: from another thread, %s does nothing and returns FALSE",
                        raw->call);
    else
      loopsan_sb_printf(&d, "%s is not thread-safe: only the thread running the loop may call it",
                        raw->call);
    if (v->wake_call)
      loopsan_sb_printf(&d, " (another thread reaches the loop with %s)", v->wake_call);
    break;
  case LOOPSAN_KIND_BLOCKED_LOOP:
    if (raw->result >= 0) {
      loopsan_sb_printf(&m, "an iteration of the loop waiting on epoll fd %d took %.3f ms",
                        (int)raw->result, f->duration_ms);
    } else {
      loopsan_sb_puts(&m, "an iteration of the poll/select loop in ");
      if (f->has_callback)
        callback_phrase(&m, f);
      else
        loopsan_sb_puts(&m, "an unknown function");
      loopsan_sb_printf(&m, " took %.3f ms", f->duration_ms);
    }
    if (f->count > 1)
      loopsan_sb_printf(&m, " (the slowest of %u)", f->count);
    loopsan_sb_printf(&d,
                      "nothing else on this loop could run meanwhile (threshold %.0f ms); "
                      "loopsan has no adapter for this loop (Node.js's built-in libuv, Python's "
                      "asyncio, a hand-written loop, ...), so it %s",
                      threshold_ms,
                      raw->result >= 0 ? "cannot name a callback"
                                       : "names where the loop waits instead of a callback");
    if (raw->blocked)
      loopsan_sb_printf(&d, "; %.3f ms of it blocked in %s() (the stack is where)", blocked_ms,
                        raw->call);
    break;
  case LOOPSAN_KIND_BLOCKING_CALL:
    loopsan_sb_printf(&m, "blocking call %s() took %.3f ms", raw->call, f->duration_ms);
    if (f->has_callback) {
      loopsan_sb_puts(&m, " in callback ");
      callback_phrase(&m, f);
      loopsan_sb_printf(&m, " of %s", type);
    } else if (raw->library == LOOPSAN_LIB_GENERIC) {
      loopsan_sb_puts(&m, " in an iteration of a loop loopsan has no adapter for");
    } else {
      loopsan_sb_puts(&m, " in a loop callback");
    }
    if (f->count > 1)
      loopsan_sb_printf(&m, " (the longest of %u)", f->count);
    loopsan_sb_printf(&d,
                      "nothing else on this loop could run meanwhile (threshold %.0f ms); "
                      "move it to a thread or use the loop's asynchronous version",
                      blocking_ms);
    break;
  case LOOPSAN_KIND_UNCLOSED_HANDLE:
    if (raw->obj_kind == LOOPSAN_OBJ_WATCHER) {
      loopsan_sb_printf(&m, "%s was still active at exit: ", type);
      loopsan_sb_printf(&m, v->stop_call, type); /* "%s_stop()" names the type's own */
      loopsan_sb_puts(&m, " was never called");
    } else {
      loopsan_sb_printf(&m, "%s was never %sclosed with %s", type,
                        raw->detail == RAW_DETAIL_CLOSE_UNFINISHED ? "fully " : "", v->close_call);
    }
    if (f->has_callback) {
      loopsan_sb_puts(&m, " (callback ");
      callback_phrase(&m, f);
      loopsan_sb_puts(&m, ")");
    }
    break;
  case LOOPSAN_KIND_UNCLOSED_LOOP:
    loopsan_sb_printf(&m, "%s was never closed with %s", type, v->loop_close_call);
    if (raw->detail == RAW_DETAIL_LOOP_CLOSE_EBUSY)
      loopsan_sb_printf(&d,
                        "%s returned %s%s: handles were still open "
                        "(they are listed as findings of their own)",
                        v->loop_close_call, v->error_prefix, error_name(raw->result));
    break;
  case LOOPSAN_KIND_NEVER_STARTED:
    loopsan_sb_printf(&m, "%s was %s", type,
                      v->never_started ? v->never_started
                                       : "initialised but never started or used");
    break;
  case LOOPSAN_KIND_PENDING_AT_EXIT:
    if (raw->obj_kind == LOOPSAN_OBJ_REQUEST)
      loopsan_sb_printf(&m, "%s request never completed: ", type);
    else
      loopsan_sb_printf(&m, "%s was still pending at exit: ", type);
    if (f->has_callback) {
      loopsan_sb_puts(&m, "its callback ");
      callback_phrase(&m, f);
      loopsan_sb_puts(&m, " never ran");
    } else {
      loopsan_sb_puts(&m, "it never fired (it has no callback)");
    }
    break;
  default: loopsan_sb_printf(&m, "%s: %s", loopsan_kind_name(f->kind), type);
  }
  if (f->no_stall && f->no_stall[0])
    loopsan_sb_printf(&d, "%s%s", d.len ? "; " : "", f->no_stall);
  if (f->kind == LOOPSAN_KIND_SLOW_CALLBACK && raw->blocked)
    loopsan_sb_printf(&d, "%s%.3f ms of it blocked in %s() (the stack is where)", d.len ? "; " : "",
                      blocked_ms, raw->call);
  if (f->kind == LOOPSAN_KIND_SLOW_CALLBACK) {
    char its[96];
    snprintf(its, sizeof its, "its %s", type);
    also_phrase(&d, raw, its);
  } else if (f->kind != LOOPSAN_KIND_UNCLOSED_LOOP) {
    also_phrase(&d, raw, "it");
    if (raw->detail == RAW_DETAIL_LOOP_CLOSE_EBUSY)
      loopsan_sb_printf(&d, "%sit kept %s from succeeding (%s%s)", d.len ? "; " : "",
                        v->loop_close_call, v->error_prefix, error_name(raw->result));
    else if (raw->detail == RAW_DETAIL_ENDED_WITH_LOOP)
      loopsan_sb_printf(&d, "%sit was still attached when %s destroyed its loop, and it with it",
                        d.len ? "; " : "", v->loop_close_call);
    else if (raw->detail == RAW_DETAIL_CLOSE_UNFINISHED)
      loopsan_sb_printf(&d,
                        "%s%s was called, but the loop never ran again to finish closing it, "
                        "so %s failed (%s%s)",
                        d.len ? "; " : "", v->close_call, v->loop_close_call, v->error_prefix,
                        error_name(raw->result));
  }
  f->message = loopsan_sb_steal(&m);
  f->detail = d.len ? loopsan_sb_steal(&d) : NULL;
  loopsan_sb_free(&d);
}

/* ---- one process ---- */

static int add_library(struct loopsan_process *p, const char *name) {
  for (size_t i = 0; i < p->n_libraries; i++)
    if (strcmp(p->libraries[i], name) == 0)
      return 0;
  char **t = realloc(p->libraries, (p->n_libraries + 1) * sizeof *t);
  if (!t)
    return -1;
  p->libraries = t;
  p->libraries[p->n_libraries++] = (char *)name;
  return 0;
}

/* The shim's counters, per library (format 1 traces have none: the
 * objects the replay saw stand in). */
static void describe_observed(struct loopsan_process *p, const struct loopsan_replay *r) {
  for (unsigned lib = 1; lib < LOOPSAN_LIB_COUNT; lib++) {
    struct loopsan_observed ob = {.library = loopsan_library_name(lib),
                                  .callbacks = r->dispatches[lib]};
    for (size_t i = 0; i < r->n_counts; i++) {
      const struct replay_count *c = &r->counts[i];
      uint64_t created = c->created > c->seen_created ? c->created : c->seen_created;
      uint64_t ended = c->ended > c->seen_ended ? c->ended : c->seen_ended;
      if (c->library != lib || !created)
        continue;
      const struct replay_type *t = loopsan_replay_type(r, c->library, c->type);
      struct loopsan_observed_type *grown = realloc(ob.types, (ob.n_types + 1) * sizeof *grown);
      if (!grown)
        break;
      ob.types = grown;
      struct loopsan_observed_type *e = &ob.types[ob.n_types++];
      e->name = strdup(t ? t->name : "?");
      e->is_loop = t && t->kind == LOOPSAN_OBJ_LOOP;
      e->is_watcher = t && t->kind == LOOPSAN_OBJ_WATCHER;
      e->created = created;
      e->ended = ended;
      if (e->is_loop)
        ob.loops += created;
    }
    if (!ob.n_types && !ob.callbacks)
      continue;
    struct loopsan_observed *grown =
        realloc(p->observations, (p->n_observations + 1) * sizeof *grown);
    if (!grown) {
      free(ob.types);
      break;
    }
    p->observations = grown;
    p->observations[p->n_observations++] = ob;
  }
  p->observed = p->n_observations > 0;
}

static void describe_process(struct loopsan_process *p, const struct loopsan_replay *r,
                             const struct loopsan_read_stats *st, const char *path,
                             const struct child_end *end, loopsan_symbolizer *sym) {
  p->pid = (int)r->pid;
  p->ppid = (int)r->ppid;
  p->exe = dup_or_null(r->exe ? r->exe : "");
  p->trace = strdup(path);
  p->ended = r->ended;
  p->replaced_by_exec = r->ended && r->end_how == LOOPSAN_END_EXEC;
  describe_observed(p, r);
  if (r->ended && r->end_how != LOOPSAN_END_EXEC && r->end_status >= 0) {
    p->has_exit = 1;
    p->exit_status = r->end_status;
  }
  if (r->argv && r->argc) {
    p->argv = calloc(r->argc, sizeof *p->argv);
    const char *a = r->argv, *args_end = r->argv + r->argv_len;
    for (uint32_t i = 0; p->argv && i < r->argc && a < args_end; i++) {
      p->argv[p->argc++] = strdup(a);
      a += strlen(a) + 1;
    }
  }
  /* `libraries` lists those whose calls were observed; one that was only
   * loaded is said in a note. */
  uint32_t loaded = 0;
  for (size_t i = 0; i < r->n_modules; i++)
    loaded |= 1u << loopsan_library_of_module(r->modules[i].path);
  uint32_t seen = r->libraries_seen;
  if (r->dispatches[LOOPSAN_LIB_GENERIC]) /* the generic layer makes no objects */
    seen |= 1u << LOOPSAN_LIB_GENERIC;
  for (unsigned lib = 1; lib < LOOPSAN_LIB_COUNT; lib++)
    if (seen & (1u << lib))
      add_library(p, loopsan_library_name(lib));
  unsigned only_loaded[LOOPSAN_LIB_COUNT];
  size_t n_only_loaded = 0;
  for (unsigned lib = 1; lib < LOOPSAN_LIB_COUNT; lib++)
    if ((loaded & (1u << lib)) && !(r->libraries_seen & (1u << lib)))
      only_loaded[n_only_loaded++] = lib;
  if (st->truncated_bytes)
    loopsan_report_add_note(&p->notes, &p->n_notes,
                            "the trace ends in an incomplete chunk (%llu bytes lost): the process "
                            "was killed while writing",
                            (unsigned long long)st->truncated_bytes);
  if (st->bad_chunks)
    loopsan_report_add_note(
        &p->notes, &p->n_notes,
        "%llu corrupt chunk(s) skipped (%llu bytes): findings from them are lost",
        (unsigned long long)st->bad_chunks, (unsigned long long)st->skipped_bytes);
  if (st->bad_records)
    loopsan_report_add_note(&p->notes, &p->n_notes, "%llu malformed record(s) skipped",
                            (unsigned long long)st->bad_records);
  if (r->bad_short)
    loopsan_report_add_note(&p->notes, &p->n_notes,
                            "%llu short dispatch record(s) skipped: what they refer to was lost",
                            (unsigned long long)r->bad_short);
  static const char *const lost_why[8] = {
      [0] = "record(s) were lost",
      [LOOPSAN_LOST_WRITE_FAILED] =
          "chunk(s) of records could not be written to the trace (disk full?)",
      [LOOPSAN_LOST_OBJECT_TABLE_FULL] =
          "object(s) were not tracked: the shim's object table was full",
      [LOOPSAN_LOST_STACK_TABLE_FULL] =
          "stack(s) were not recorded: the shim's stack table was full",
      [LOOPSAN_LOST_RECORD_TOO_BIG] = "record(s) were too big to write",
  };
  for (unsigned i = 0; i < 8; i++)
    if (r->lost[i])
      loopsan_report_add_note(&p->notes, &p->n_notes, "%llu %s", (unsigned long long)r->lost[i],
                              lost_why[i] ? lost_why[i] : lost_why[0]);
  if (!r->have_process)
    loopsan_report_add_note(&p->notes, &p->n_notes, "the trace's process record is missing");
  if (end && !p->replaced_by_exec && (end->signal || end->status >= 0)) {
    /* How its parent (or loopsan run) saw it end: the one true status. */
    p->has_exit = 1;
    p->exit_signal = end->signal;
    p->exit_status = end->signal ? 0 : end->status;
  }
  if (r->ended && r->lost[LOOPSAN_LOST_WRITE_FAILED]) {
    uint64_t open = 0;
    for (int k = 0; k < 5; k++)
      open += r->open_at_end[k];
    char open_part[96] = "";
    if (open)
      snprintf(open_part, sizeof open_part,
               ", and the %llu object(s) still open by the record are not reported as leaks",
               (unsigned long long)open);
    loopsan_report_add_note(&p->notes, &p->n_notes,
                            "recording stopped before the process ended (its trace could not be "
                            "written: a full disk?): what happened after is not in this report%s",
                            open_part);
  }
  if (!r->ended) {
    char how[64] = "killed or crashed";
    int sig = end && end->signal ? end->signal : r->has_crash ? (int)r->crash.h.aux : 0;
    if (sig)
      snprintf(how, sizeof how, "%s signal %d, %s",
               loopsan_signal_is_crash(sig) ? "crashed with" : "killed by", sig,
               sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
    struct loopsan_strbuf open_sb;
    loopsan_sb_init(&open_sb);
    static const char *const kinds[5][2] = {{"object", "objects"},
                                            {"loop", "loops"},
                                            {"handle", "handles"},
                                            {"request", "requests"},
                                            {"watcher", "watchers"}};
    for (int k = 1; k < 5; k++)
      if (r->open_at_end[k])
        loopsan_sb_printf(&open_sb, "%s%llu %s", open_sb.len ? ", " : "",
                          (unsigned long long)r->open_at_end[k], kinds[k][r->open_at_end[k] != 1]);
    loopsan_report_add_note(&p->notes, &p->n_notes,
                            "the process did not exit normally (%s): it never got to clean up, so "
                            "what it still had open (%s) is not reported as leaks",
                            how, open_sb.len ? open_sb.data : "nothing");
    loopsan_sb_free(&open_sb);
    if (r->has_crash && !r->crash.cb) { /* outside callbacks: where, for the record */
      struct loopsan_strbuf sb;
      loopsan_sb_init(&sb);
      signal_phrase(&sb, (int)r->crash.h.aux, r->crash.code, r->crash.addr);
      struct loopsan_frame_owned *fr = NULL;
      size_t nf = 0;
      frames_of_stack(sym, loopsan_replay_stack(r, r->crash.stack), &fr, &nf);
      size_t at = 0; /* the program's frame (abort's are libc's) */
      while (at + 1 < nf && fr[at].module &&
             (strstr(fr[at].module, "/libc.so") || strstr(fr[at].module, "/ld-linux")))
        at++;
      if (nf && fr[at].function)
        loopsan_sb_printf(&sb, " in %s()", fr[at].function);
      if (nf && fr[at].file)
        loopsan_sb_printf(&sb, " at %s:%u", fr[at].file, fr[at].line);
      loopsan_report_add_note(&p->notes, &p->n_notes, "it crashed outside any loop callback: %s",
                              sb.data);
      for (size_t k = 0; k < nf; k++) {
        free(fr[k].function);
        free(fr[k].file);
        free(fr[k].module);
      }
      free(fr);
      loopsan_sb_free(&sb);
    }
    if (r->last_cb) {
      struct loopsan_finding cbf = {0};
      const loopsan_frame *fr;
      size_t nf;
      if (loopsan_symbolize(sym, r->last_cb, 0, &fr, &nf) == 0 && nf > 0) {
        own_frame(&cbf.callback, &fr[nf - 1]);
        cbf.has_callback = 1;
      }
      struct loopsan_strbuf sb;
      loopsan_sb_init(&sb);
      callback_phrase(&sb, &cbf);
      double ms = loopsan_replay_ms(r, r->last_cb_ticks);
      const char *unknown = "when it died is unknown (loopsan run knows it for the processes it "
                            "reaps, a traced parent for the children it reaps)";
      if (r->last_cb_timed)
        loopsan_report_add_note(&p->notes, &p->n_notes,
                                "when it died it was running callback %s, for %.3f ms", sb.data,
                                ms);
      else if (r->last_cb_ticks)
        loopsan_report_add_note(
            &p->notes, &p->n_notes,
            "when last seen it was running callback %s, for %.3f ms by then; %s", sb.data, ms,
            unknown);
      else
        loopsan_report_add_note(&p->notes, &p->n_notes,
                                "when last seen it was running callback %s; %s", sb.data, unknown);
      loopsan_sb_free(&sb);
      free(cbf.callback.function);
      free(cbf.callback.file);
      free(cbf.callback.module);
    }
  }
  if (!p->observed && n_only_loaded == 0)
    loopsan_report_add_note(&p->notes, &p->n_notes,
                            "nothing observed: the program loaded no event-loop library that "
                            "loopsan supports (%s), and no thread waited in epoll, poll or "
                            "select as a loop does",
                            loopsan_libraries_observed());
  for (size_t i = 0; i < n_only_loaded; i++) {
    const char *prefix = p->observed ? "" : "nothing observed: ";
    if (!loopsan_library_vocab(only_loaded[i])->observed_by_shim)
      loopsan_report_add_note(&p->notes, &p->n_notes,
                              "%s%s was loaded, but loopsan does not observe it yet", prefix,
                              loopsan_library_name(only_loaded[i]));
    else
      loopsan_report_add_note(&p->notes, &p->n_notes,
                              "%s%s was loaded, but the program made no call to it that loopsan "
                              "could see (calls through pointers from dlsym() on the library's "
                              "own handle, and statically linked copies, are invisible)",
                              prefix, loopsan_library_name(only_loaded[i]));
  }
  if (r->watchers_let_be)
    loopsan_report_add_note(
        &p->notes, &p->n_notes,
        "%llu watcher(s) or source(s) still active at exit on the default loop (which lives "
        "as long as the process) or on a loop made before this process began: "
        "not reported",
        (unsigned long long)r->watchers_let_be);
  if (r->failed)
    loopsan_report_add_note(&p->notes, &p->n_notes, "out of memory: the analysis is incomplete");
}

static int add_finding(struct loopsan_report *rep, struct loopsan_finding *f) {
  struct loopsan_finding *t = realloc(rep->findings, (rep->n_findings + 1) * sizeof *t);
  if (!t)
    return -1;
  rep->findings = t;
  rep->findings[rep->n_findings++] = *f;
  return 0;
}

static int finding_from_raw(struct loopsan_report *rep, struct loopsan_replay *r,
                            loopsan_symbolizer *sym, const struct raw_finding *raw,
                            const char *no_stall) {
  struct loopsan_finding f;
  memset(&f, 0, sizeof f);
  f.kind = raw->kind;
  f.severity = loopsan_kind_severity(raw->kind);
  f.library = loopsan_library_name(raw->library);
  f.pid = (int)r->pid;
  f.process = rep->n_processes - 1;
  f.tid = (int)raw->tid;
  f.count = raw->count;
  f.object_type = raw->type_name[0] ? strdup(raw->type_name) : NULL;
  f.object_address = raw->address;
  f.duration_ms = raw->kind == LOOPSAN_KIND_SLOW_CALLBACK || raw->kind == LOOPSAN_KIND_CRASH ||
                          raw->kind == LOOPSAN_KIND_BLOCKING_CALL ||
                          raw->kind == LOOPSAN_KIND_BLOCKED_LOOP
                      ? loopsan_replay_ms(r, raw->max_duration)
                      : -1;
  if (raw->cb) {
    const loopsan_frame *fr;
    size_t nf;
    /* A poll/select loop's "callback" is the return address of its wait:
     * the function it waits in, at the line of the call. */
    int is_return = raw->kind == LOOPSAN_KIND_BLOCKED_LOOP;
    if (loopsan_symbolize(sym, raw->cb, is_return, &fr, &nf) == 0 && nf > 0) {
      own_frame(&f.callback, &fr[nf - 1]); /* the function itself, not what it inlines */
      f.has_callback = 1;
    }
  }
  frames_of_stack(sym, loopsan_replay_stack(r, raw->created_stack), &f.created_at, &f.n_created_at);
  if (raw->n_chain && (f.chain = calloc(raw->n_chain, sizeof *f.chain)) != NULL) {
    for (unsigned k = 0; k < raw->n_chain; k++) {
      const struct replay_link *l = &raw->chain[k];
      struct loopsan_chain_link *c = &f.chain[f.n_chain++];
      const loopsan_frame *fr;
      size_t nf;
      if (l->cb && loopsan_symbolize(sym, l->cb, 0, &fr, &nf) == 0 && nf > 0) {
        own_frame(&c->callback, &fr[nf - 1]);
        c->has_callback = 1;
      }
      const struct replay_type *t = loopsan_replay_type(r, l->library, l->type);
      c->object_type = t ? strdup(t->name) : NULL;
      frames_of_stack(sym, loopsan_replay_stack(r, l->stack), &c->created_at, &c->n_created_at);
    }
  }
  frames_of_stack(sym, loopsan_replay_stack(r, raw->stack), &f.stack, &f.n_stack);
  frames_of_stack(sym, loopsan_replay_stack(r, raw->cause_stack), &f.cause, &f.n_cause);
  f.cause_label =
      raw->result == LOOPSAN_MISUSE_EVENT_FREED || raw->result == LOOPSAN_MISUSE_SOURCE_FREED
          ? "freed at"
          : "closed before at";
  f.also = raw->also;
  f.ts_us = raw->ts ? loopsan_replay_mono_us(r, raw->ts) : 0;
  if (f.n_stack) {
    f.stall_taken = raw->stall_taken;
    f.stall_here = raw->stall_here;
  }
  if (f.kind == LOOPSAN_KIND_CRASH) {
    f.signal = raw->result;
    f.signal_code = raw->signal_code;
    f.fault_address = raw->fault_address;
  }
  if ((f.kind == LOOPSAN_KIND_SLOW_CALLBACK || f.kind == LOOPSAN_KIND_BLOCKED_LOOP) && !f.n_stack &&
      raw->detail < RAW_DETAIL_UNFINISHED) /* a callback that never returned: its detail says why */
    f.no_stall = no_stall;
  compose_message(&f, raw, f.object_type ? f.object_type : "an object",
                  (double)r->threshold_ns / 1e6, (double)r->blocking_ns / 1e6,
                  loopsan_replay_ms(r, raw->blocked));
  return add_finding(rep, &f);
}

/* The Q quantile (ms) of a site's dispatches from its log2 histogram: in
 * the bucket where it falls, as far (geometrically) as its rank is into
 * the bucket's count; at most the maximum. An estimate within a factor of
 * two; build_sites uses the exact durations when the timeline has them. */
static double quantile_ms(const struct loopsan_callback_site *s, double q) {
  uint64_t want = (uint64_t)((double)s->count * q + 0.999999), seen = 0;
  if (!want)
    want = 1;
  for (unsigned i = 0; i < LOOPSAN_SITE_BUCKETS; i++) {
    if (!s->buckets[i] || seen + s->buckets[i] < want) {
      seen += s->buckets[i];
      continue;
    }
    double frac = ((double)(want - seen) - 0.5) / (double)s->buckets[i];
    double lo = i ? (double)(1ull << i) : 1.0;
    double v = s->bucket_unit_ms * lo * exp2(frac);
    return v < s->max_ms ? v : s->max_ms;
  }
  return s->max_ms;
}

/* p50 and p99 of a site whose every call the trace has (--record=all),
 * from its fine buckets (the rank's bucket's middle: within 1%). */
static void every_call_quantiles(struct loopsan_callback_site *s, const struct loopsan_replay *r,
                                 const struct replay_fine *f) {
  uint64_t k = f->count;
  s->p50_ms = loopsan_replay_ms(r, loopsan_replay_fine_rank(f, (k - 1) / 2));
  uint64_t p99 = (uint64_t)((double)k * 0.99 + 0.999999);
  s->p99_ms = loopsan_replay_ms(r, loopsan_replay_fine_rank(f, p99 ? p99 - 1 : 0));
  if (s->p50_ms > s->max_ms)
    s->p50_ms = s->max_ms;
  if (s->p99_ms > s->max_ms)
    s->p99_ms = s->max_ms;
  s->exact = 1;
}

static int by_total(const void *a, const void *b) {
  const struct loopsan_callback_site *x = a, *y = b;
  return x->total_ms < y->total_ms ? 1 : x->total_ms > y->total_ms ? -1 : 0;
}

/* Every callback site the process timed, from its HISTOGRAM records. */
static void build_sites(struct loopsan_process *p, const struct loopsan_replay *r,
                        loopsan_symbolizer *sym) {
  size_t n = 0;
  for (size_t i = 0; i < r->n_sites; i++)
    n += r->sites[i].count > 0;
  if (!n || !(p->sites = calloc(n, sizeof *p->sites)))
    return;
  for (size_t i = 0; i < r->n_sites; i++) {
    const struct replay_site *rs = &r->sites[i];
    if (!rs->count)
      continue;
    struct loopsan_callback_site *s = &p->sites[p->n_sites++];
    const loopsan_frame *fr;
    size_t nf;
    if (loopsan_symbolize(sym, rs->cb, 0, &fr, &nf) == 0 && nf > 0) {
      own_frame(&s->callback, &fr[nf - 1]);
      s->has_callback = 1;
    }
    s->library = loopsan_library_name(rs->library);
    s->count = rs->count;
    s->total_ms = loopsan_replay_ms(r, rs->total);
    s->max_ms = loopsan_replay_ms(r, rs->max);
    s->bucket_unit_ms = loopsan_replay_ms(r, 1);
    memcpy(s->buckets, rs->buckets, sizeof s->buckets);
    s->p50_ms = quantile_ms(s, 0.50);
    s->p99_ms = quantile_ms(s, 0.99);
    const struct replay_fine *f = loopsan_replay_fine(r, rs->cb);
    if (f && f->count == rs->count)
      every_call_quantiles(s, r, f);
    frames_of_stack(sym, loopsan_replay_stack(r, rs->stack), &s->created_at, &s->n_created_at);
  }
  qsort(p->sites, p->n_sites, sizeof *p->sites, by_total);
}

/* The name of a callback (or loop iteration) on the timeline. */
static char *slice_name(loopsan_symbolizer *sym, const struct replay_slice *s) {
  const loopsan_frame *fr;
  size_t nf;
  char *name = NULL;
  int poll_site = s->slot == LOOPSAN_DISPATCH_ITERATION_POLL;
  if (s->slot == LOOPSAN_DISPATCH_ITERATION) {
    if (asprintf(&name, "loop iteration (epoll fd %llu)", (unsigned long long)s->cb) < 0)
      name = NULL;
  } else if (loopsan_symbolize(sym, s->cb, poll_site, &fr, &nf) == 0 && nf > 0) {
    const loopsan_frame *f = &fr[nf - 1];
    const char *base = f->module ? strrchr(f->module, '/') : NULL;
    /* (no module: made at run time, as libffi's closures for Python's callbacks) */
    int rc = f->function ? asprintf(&name, "%s%s", poll_site ? "loop iteration in " : "", f->function)
             : f->module ? asprintf(&name, "%s+0x%llx", base ? base + 1 : f->module,
                                    (unsigned long long)f->module_offset)
                         : asprintf(&name, "0x%llx", (unsigned long long)s->cb);
    if (rc < 0)
      name = NULL;
  }
  return name ? name : strdup("?");
}

/* The timeline: every dispatch the trace has, with names (one per
 * callback), in start order. */
static int by_start(const void *a, const void *b) {
  const struct loopsan_slice *x = a, *y = b;
  return x->start_us < y->start_us ? -1 : x->start_us > y->start_us ? 1 : 0;
}

static int same_base(const char *a, const char *b) {
  const char *x = strrchr(a, '/'), *y = strrchr(b, '/');
  return strcmp(x ? x + 1 : a, y ? y + 1 : b) == 0;
}

/* The creations the timeline's flows start from, symbolised: the type and
 * the innermost frame of the creation stack that has a function. */
static void build_origins(struct loopsan_process *p, const struct loopsan_replay *r,
                          loopsan_symbolizer *sym) {
  if (!r->n_origins || !(p->origins = calloc(r->n_origins, sizeof *p->origins)))
    return;
  p->n_origins = r->n_origins;
  for (size_t i = 0; i < r->n_origins; i++) {
    const struct replay_origin *o = &r->origins[i];
    struct loopsan_origin *out = &p->origins[i];
    out->ts_us = loopsan_replay_mono_us(r, o->ts);
    out->tid = (int)o->tid;
    const struct replay_type *t = loopsan_replay_type(r, o->library, o->type);
    out->object_type = strdup(t ? t->name : "object");
    struct loopsan_frame_owned *fr;
    size_t nf;
    if (frames_of_stack(sym, loopsan_replay_stack(r, o->stack), &fr, &nf) != 0)
      continue;
    /* the program's own frame (its executable's), else any with a name */
    size_t own = nf;
    for (size_t k = 0; k < nf && own == nf; k++)
      if (fr[k].function && fr[k].module && p->exe && same_base(fr[k].module, p->exe))
        own = k;
    for (size_t k = own < nf ? own : 0; k < nf && !out->where; k++) {
      if (!fr[k].function)
        continue;
      const char *file = fr[k].file ? strrchr(fr[k].file, '/') : NULL;
      int rc = fr[k].file ? asprintf(&out->where, "%s %s:%d", fr[k].function,
                                     file ? file + 1 : fr[k].file, fr[k].line)
                          : asprintf(&out->where, "%s", fr[k].function);
      if (rc < 0)
        out->where = NULL;
    }
    loopsan_frames_free(fr, nf);
  }
}

static void build_slices(struct loopsan_process *p, const struct loopsan_replay *r,
                         loopsan_symbolizer *sym) {
  p->slices_dropped = r->timeline_dropped;
  if (!r->n_timeline || !(p->slices = calloc(r->n_timeline, sizeof *p->slices)))
    return;
  /* callback -> name index: open addressing over twice as many slots */
  size_t cap = 64;
  while (cap < r->n_timeline * 2 && cap < (1u << 20))
    cap *= 2;
  struct slice_key {
    uint64_t cb;
    uint32_t slot, index;
  } *map = calloc(cap, sizeof *map);
  if (!map) {
    free(p->slices);
    p->slices = NULL;
    return;
  }
  for (size_t i = 0; i < r->n_timeline; i++) {
    const struct replay_slice *s = &r->timeline[i];
    size_t h = (size_t)((s->cb * 0x9E3779B97F4A7C15ull + s->slot) >> 20) & (cap - 1);
    while (map[h].index && (map[h].cb != s->cb || map[h].slot != s->slot))
      h = (h + 1) & (cap - 1);
    if (!map[h].index) {
      if (p->n_slice_names + 1 >= cap / 2) /* (cannot happen: cap covers every slice) */
        break;
      char **names = realloc(p->slice_names, (p->n_slice_names + 1) * sizeof *names);
      if (!names)
        break;
      p->slice_names = names;
      p->slice_names[p->n_slice_names++] = slice_name(sym, s);
      map[h] = (struct slice_key){s->cb, s->slot, (uint32_t)p->n_slice_names};
    }
    struct loopsan_slice *out = &p->slices[p->n_slices++];
    out->start_us = loopsan_replay_mono_us(r, s->ts);
    out->dur_us = loopsan_replay_ms(r, s->duration) * 1000.0;
    out->tid = (int)s->tid;
    out->name = map[h].index - 1;
    out->library = loopsan_library_name(s->library);
    out->iteration = LOOPSAN_IS_ITERATION(s->slot);
    out->origin = s->origin;
  }
  free(map);
  /* (one thread's dispatches come in start order, but for a nested one:
   * sort only what needs it) */
  size_t k = 1;
  while (k < p->n_slices && p->slices[k - 1].start_us <= p->slices[k].start_us)
    k++;
  if (k < p->n_slices)
    qsort(p->slices, p->n_slices, sizeof *p->slices, by_start);
  build_origins(p, r, sym);
}

/* A process killed before it could write out its buffers left them in
 * spill files next to its trace: read the records they still hold, then
 * what their headers say (callbacks in progress, counts). */
static uint64_t read_spills(const char *trace, struct loopsan_replay *r, struct loopsan_report *rep,
                            const struct child_end *end) {
  char dir[4096];
  const char *slash = strrchr(trace, '/');
  const char *base = slash ? slash + 1 : trace;
  snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - trace) : 1, slash ? trace : ".");
  size_t base_len = strlen(base);
  uint64_t recovered = 0;
  struct loopsan_spill_header *headers = NULL;
  size_t n_headers = 0;
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, base, base_len) != 0 || strncmp(e->d_name + base_len, ".spill.", 7) != 0)
      continue;
    char path[8192], err[512];
    struct loopsan_read_stats st;
    struct loopsan_spill_header h;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (loopsan_read_spill(path, loopsan_replay_record, r, &st, &h, err, sizeof err) != 0) {
      loopsan_report_add_note(&rep->notes, &rep->n_notes, "%s", err);
      continue;
    }
    recovered += st.records;
    struct loopsan_spill_header *grown = realloc(headers, (n_headers + 1) * sizeof *grown);
    if (grown) {
      headers = grown;
      headers[n_headers++] = h;
    }
  }
  if (d)
    closedir(d);
  /* After every record: the end of a killed process is known only now. */
  uint64_t end_ts = 0;
  if (!r->ended && end)
    end_ts = loopsan_replay_ts_of_mono(r, end->mono_ns);
  uint64_t dispatches[LOOPSAN_LIBRARY_SLOTS] = {0};
  for (size_t i = 0; i < n_headers && !r->ended; i++) {
    loopsan_replay_spill_header(r, &headers[i], end_ts);
    for (unsigned l = 0; l < LOOPSAN_LIBRARY_SLOTS; l++)
      dispatches[l] += headers[i].dispatches[l];
  }
  loopsan_replay_spill_counts(r, dispatches);
  free(headers);
  return recovered;
}

/* Stall samples `loopsan run` wrote next to the trace (TRACE.stalls, one
 * per line: tid, dispatch ts, frame count, frames in hex). */
static void read_stalls(const char *trace, struct loopsan_replay *r) {
  char path[4096];
  snprintf(path, sizeof path, "%s.stalls", trace);
  FILE *f = fopen(path, "re");
  if (!f)
    return;
  unsigned tid, n;
  unsigned long long ts;
  while (fscanf(f, "%u %llu %u", &tid, &ts, &n) == 3) {
    uint64_t pcs[LOOPSAN_STACK_MAX_FRAMES];
    unsigned got = 0;
    for (unsigned i = 0; i < n; i++) {
      unsigned long long pc;
      if (fscanf(f, " %llx", &pc) != 1)
        break;
      if (got < LOOPSAN_STACK_MAX_FRAMES)
        pcs[got++] = pc;
    }
    loopsan_replay_add_stall(r, tid, ts, pcs, got);
  }
  fclose(f);
}

/* Why a slow dispatch of the trace at PATH has no stall sample, if it
 * cannot be because it ended between two looks (into WHY). */
static void why_no_stall(const char *path, const struct loopsan_analyze_options *opts, char *why,
                         size_t len) {
  char dir[4096], file[4200];
  const char *slash = strrchr(path, '/');
  snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
  snprintf(file, sizeof file, "%s/%s", dir, LOOPSAN_STALLS_REFUSED_FILE);
  FILE *f = fopen(file, "re");
  if (f) {
    char line[512] = "";
    if (fgets(line, sizeof line, f))
      line[strcspn(line, "\n")] = 0;
    fclose(f);
    snprintf(why, len,
             "no stall sample: the kernel refused to let loopsan run stop the thread (%s)", line);
    return;
  }
  snprintf(file, sizeof file, "%s/%s", dir, LOOPSAN_ENDS_FILE);
  if (!opts->ends && access(file, F_OK) != 0) {
    snprintf(why, len,
             "no stall sample: only `loopsan run` samples where a stalled callback is stuck "
             "(this trace was recorded without it)");
    return;
  }
  snprintf(why, len,
           "no stall sample: it ended before loopsan run looked (it looks every 20 ms once a "
           "dispatch passes the threshold)");
}

static int analyze_one(const char *path, const struct loopsan_analyze_options *opts,
                       const struct end_scan *ends, struct loopsan_report *rep) {
  struct loopsan_replay r;
  struct loopsan_read_stats st;
  char err[512];
  loopsan_replay_init(&r, opts->slow_ns);
  r.keep_timeline = opts->timeline;
  read_stalls(path, &r);
  if (loopsan_read_trace(path, loopsan_replay_record, &r, &st, err, sizeof err) != 0) {
    loopsan_report_add_note(&rep->notes, &rep->n_notes, "%s", err);
    loopsan_replay_free(&r);
    return 0;
  }
  struct child_end end_buf;
  const struct child_end *end = find_end(opts, ends, (int)r.pid, &end_buf) ? &end_buf : NULL;
  if (end)
    r.end_signal = end->signal;
  uint64_t recovered = read_spills(path, &r, rep, r.ended ? NULL : end);
  loopsan_replay_finish(&r);
  struct loopsan_process *procs = realloc(rep->processes, (rep->n_processes + 1) * sizeof *procs);
  if (!procs) {
    loopsan_replay_free(&r);
    return -1;
  }
  rep->processes = procs;
  struct loopsan_process *p = &rep->processes[rep->n_processes++];
  memset(p, 0, sizeof *p);
  loopsan_symbolizer *sym = loopsan_symbolizer_new();
  if (!sym) {
    loopsan_replay_free(&r);
    return -1;
  }
  for (size_t i = 0; i < r.n_modules; i++) {
    const struct replay_module *m = &r.modules[i];
    loopsan_symbolizer_add_module(sym, m->path, m->bias, m->start, m->end,
                                  m->build_id_len ? m->build_id : NULL, m->build_id_len);
  }
  describe_process(p, &r, &st, path, end, sym);
  if (recovered)
    loopsan_report_add_note(&p->notes, &p->n_notes,
                            "%llu record(s) recovered from the buffers the process left behind",
                            (unsigned long long)recovered);
  build_sites(p, &r, sym);
  build_slices(p, &r, sym);
  char no_stall[512];
  why_no_stall(path, opts, no_stall, sizeof no_stall);
  int rc = 0;
  for (size_t i = 0; i < r.cap_findings && rc == 0; i++)
    if (r.findings[i].count)
      rc = finding_from_raw(rep, &r, sym, &r.findings[i], no_stall);
  loopsan_symbolizer_free(sym);
  loopsan_replay_free(&r);
  return rc;
}

/* ---- many traces: on every core, merged in their order ---- */

struct analysis {
  const struct path_list *files;
  const struct loopsan_analyze_options *opts;
  const struct end_scan *ends;
  struct loopsan_report *parts; /* one per trace */
  int *rc;
  _Atomic size_t next, done;
  double t0;
  pthread_mutex_t progress_lock;
  int progress; /* stderr is a terminal: show how far it got after a second */
  int shown;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *analysis_worker(void *arg) {
  struct analysis *a = arg;
  for (;;) {
    size_t i = atomic_fetch_add(&a->next, 1);
    if (i >= a->files->n)
      return NULL;
    a->rc[i] = analyze_one(a->files->v[i], a->opts, a->ends, &a->parts[i]);
    size_t done = atomic_fetch_add(&a->done, 1) + 1;
    if (a->progress && now_s() - a->t0 > 1.0) {
      pthread_mutex_lock(&a->progress_lock);
      fprintf(stderr, "\rloopsan: analysing traces: %zu of %zu", done, a->files->n);
      a->shown = 1;
      pthread_mutex_unlock(&a->progress_lock);
    }
  }
}

/* Move PART's processes, findings and notes to the end of OUT. */
static int merge_part(struct loopsan_report *out, struct loopsan_report *part) {
  struct loopsan_process *procs =
      realloc(out->processes, (out->n_processes + part->n_processes + 1) * sizeof *procs);
  struct loopsan_finding *fs =
      realloc(out->findings, (out->n_findings + part->n_findings + 1) * sizeof *fs);
  if (procs)
    out->processes = procs;
  if (fs)
    out->findings = fs;
  if (!procs || !fs)
    return -1;
  size_t base = out->n_processes;
  if (part->n_processes) /* (memcpy from NULL is undefined even for 0 bytes) */
    memcpy(out->processes + base, part->processes, part->n_processes * sizeof *procs);
  out->n_processes += part->n_processes;
  for (size_t i = 0; i < part->n_findings; i++) {
    out->findings[out->n_findings] = part->findings[i];
    out->findings[out->n_findings++].process += base;
  }
  for (size_t i = 0; i < part->n_notes; i++)
    loopsan_report_add_note(&out->notes, &out->n_notes, "%s", part->notes[i]);
  for (size_t i = 0; i < part->n_notes; i++)
    free(part->notes[i]);
  free(part->notes);
  free(part->processes);
  free(part->findings);
  memset(part, 0, sizeof *part);
  return 0;
}

static int analyze_all(const struct path_list *files, const struct loopsan_analyze_options *opts,
                       const struct end_scan *ends, struct loopsan_report *out, char *err,
                       size_t err_len) {
  struct analysis a = {
      .files = files, .opts = opts, .ends = ends, .t0 = now_s(), .progress = isatty(2)};
  a.parts = calloc(files->n + 1, sizeof *a.parts);
  a.rc = calloc(files->n + 1, sizeof *a.rc);
  pthread_mutex_init(&a.progress_lock, NULL);
  int rc = 0;
  if (!a.parts || !a.rc) {
    snprintf(err, err_len, "out of memory");
    rc = -1;
    goto out;
  }
  (void)loopsan_libraries_observed(); /* made once, before the threads read it */
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  size_t n_threads = cores > 1 ? (size_t)cores : 1;
  if (n_threads > files->n)
    n_threads = files->n;
  if (n_threads > 16)
    n_threads = 16;
  pthread_t threads[16];
  size_t started = 0;
  for (size_t t = 1; t < n_threads; t++) /* this thread is one of them */
    started += pthread_create(&threads[started], NULL, analysis_worker, &a) == 0;
  analysis_worker(&a);
  for (size_t t = 0; t < started; t++)
    pthread_join(threads[t], NULL);
  if (a.shown)
    fputs("\r\033[K", stderr);
  for (size_t i = 0; i < files->n; i++) {
    if (rc == 0 && a.rc[i] != 0) {
      snprintf(err, err_len, "out of memory while analysing %s", files->v[i]);
      rc = -1;
    }
    if (rc == 0 && merge_part(out, &a.parts[i]) != 0) {
      snprintf(err, err_len, "out of memory");
      rc = -1;
    }
    loopsan_report_free(&a.parts[i]);
  }
out:
  pthread_mutex_destroy(&a.progress_lock);
  free(a.parts);
  free(a.rc);
  return rc;
}

int loopsan_analyze(char *const *paths, size_t n_paths, const struct loopsan_analyze_options *opts,
                    struct loopsan_report *out, char *err, size_t err_len) {
  struct path_list files = {0};
  int rc = -1;
  for (size_t i = 0; i < n_paths; i++)
    if (collect(paths[i], &files, out) != 0) {
      snprintf(err, err_len, "out of memory");
      goto out;
    }
  struct end_scan ends = {0};
  collect_child_ends(&files, &ends);
  if (analyze_all(&files, opts, &ends, out, err, err_len) != 0)
    goto out;
  if (out->n_processes == 0) {
    snprintf(err, err_len, "no readable loopsan trace in %s%s", paths[0],
             n_paths > 1 ? " and the other paths given" : "");
    goto out;
  }
  loopsan_report_sort(out);
  rc = 0;
out:
  free(ends.v);
  for (size_t i = 0; i < files.n; i++)
    free(files.v[i]);
  free(files.v);
  return rc;
}
