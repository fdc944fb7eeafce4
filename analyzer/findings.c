#include "analyzer/findings.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
  const char *name;
  enum loopsan_severity severity;
} kinds[LOOPSAN_KIND_COUNT] = {
#define X(id, name, sev) {name, LOOPSAN_SEV_##sev},
    LOOPSAN_KINDS(X)
#undef X
};

const char *loopsan_kind_name(enum loopsan_kind kind) {
  return (unsigned)kind < LOOPSAN_KIND_COUNT ? kinds[kind].name : "unknown";
}

enum loopsan_severity loopsan_kind_severity(enum loopsan_kind kind) {
  return (unsigned)kind < LOOPSAN_KIND_COUNT ? kinds[kind].severity : LOOPSAN_SEV_INFO;
}

/* What each kind means, in one line, in a paragraph, and what to do: the
 * words every report format uses for a kind (SARIF's rule descriptions,
 * the HTML report's legends). */
static const struct {
  const char *summary, *description, *help;
} kind_texts[LOOPSAN_KIND_COUNT] = {
    [LOOPSAN_KIND_CRASH] = {"A fatal signal inside a loop callback",
                            "The process died of a fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL, "
                            "SIGABRT) while a loop callback ran; the finding names the callback, "
                            "where the signal came from and where the callback's object was made.",
                            "Fix the fault at the stack shown; the creation stack and async chain "
                            "say which job the callback was doing."},
    [LOOPSAN_KIND_MISUSE] = {"A loop API call the library forbids in the object's state",
                             "A call on an object in a state where the library forbids it: a "
                             "handle closed twice or used after its close, initialised again "
                             "while open, an event assigned while added, a source attached "
                             "twice or used after it was freed. The library may abort or corrupt "
                             "its state right after.",
                             "Follow the object's life: close once and wait for the close "
                             "callback, delete an event before assigning it again, attach a "
                             "source once."},
    [LOOPSAN_KIND_WRONG_THREAD] = {"A non-thread-safe loop call from a thread not running the loop",
                                   "A call on a loop, or one of its handles, from another thread "
                                   "while the loop runs; only the thread running a loop may "
                                   "make it (asyncio raises on this in debug mode).",
                                   "Reach the loop from other threads with its thread-safe call "
                                   "(uv_async_send, ev_async_send, g_main_context_invoke, "
                                   "event_active after evthread_use_pthreads)."},
    [LOOPSAN_KIND_SLOW_CALLBACK] = {"A loop callback that ran longer than the threshold",
                                    "A callback ran for --slow-ms or longer: nothing else on its "
                                    "loop could run meanwhile (asyncio: \"Executing <Handle> took "
                                    "0.150 seconds\"). The stack says where it was stuck.",
                                    "Move the slow work to a thread (uv_queue_work, a thread "
                                    "pool) or split it into steps."},
    [LOOPSAN_KIND_BLOCKED_LOOP] = {"An iteration of a loop without an adapter took too long",
                                   "An iteration of an epoll, poll or select loop loopsan has no "
                                   "adapter for (Node.js, Python's asyncio, a hand-written loop) "
                                   "took --slow-ms or longer.",
                                   "Find the blocking code in the stack shown and move it off "
                                   "the loop's thread."},
    [LOOPSAN_KIND_BLOCKING_CALL] = {"A blocking libc call inside a loop callback",
                                    "A libc call that blocks (sleep, fsync, getaddrinfo, a "
                                    "blocking read, a contended mutex) lasted --blocking-ms or "
                                    "longer inside a loop callback (asyncio: \"Running blocking "
                                    "code\").",
                                    "Use the loop's asynchronous version of the call, or run it "
                                    "on a thread."},
    [LOOPSAN_KIND_PENDING_AT_EXIT] = {"Work scheduled on a loop that never ran",
                                      "A timer or request whose callback never ran before the "
                                      "process ended (asyncio: \"Task was destroyed but it is "
                                      "pending!\").",
                                      "Run the loop until its work is done, or cancel the work "
                                      "(stop the timer, cancel the request) before exiting."},
    [LOOPSAN_KIND_UNCLOSED_HANDLE] = {"A handle, event, watcher or source never closed",
                                      "An object of a loop was still open at exit, or when its "
                                      "loop was destroyed (asyncio: \"ResourceWarning: unclosed "
                                      "transport\").",
                                      "Close it (uv_close, event_free, ev_*_stop, "
                                      "g_source_destroy, sd_event_source_unref) when done."},
    [LOOPSAN_KIND_UNCLOSED_LOOP] = {"An event loop never closed",
                                    "A loop the program made was never closed or freed "
                                    "(asyncio: \"ResourceWarning: unclosed event loop\").",
                                    "Close its handles, then the loop (uv_loop_close, "
                                    "event_base_free, ev_loop_destroy, g_main_context_unref, "
                                    "sd_event_unref)."},
    [LOOPSAN_KIND_NEVER_STARTED] = {"A handle made but never started or used",
                                    "An object was initialised but never started, attached or "
                                    "added (asyncio: \"coroutine was never awaited\").",
                                    "Start it, or do not make it."},
    [LOOPSAN_KIND_UNOBSERVED_ERROR] = {"An asynchronous error nothing could see",
                                       "An operation failed and had no callback to be told "
                                       "(asyncio: \"Task exception was never retrieved\").",
                                       "Pass a callback and look at its status."},
    [LOOPSAN_KIND_API_ERROR] = {"A loop API call returned an error that says it was misused",
                                "A call returned an error meaning it was wrong for the object's "
                                "state or arguments (UV_EINVAL, UV_EALREADY, ...), which "
                                "programs often ignore.",
                                "Check the call's return value, and fix the call."},
};

const char *loopsan_kind_summary(enum loopsan_kind kind) {
  return (unsigned)kind < LOOPSAN_KIND_COUNT ? kind_texts[kind].summary : "";
}

const char *loopsan_kind_description(enum loopsan_kind kind) {
  return (unsigned)kind < LOOPSAN_KIND_COUNT ? kind_texts[kind].description : "";
}

const char *loopsan_kind_help(enum loopsan_kind kind) {
  return (unsigned)kind < LOOPSAN_KIND_COUNT ? kind_texts[kind].help : "";
}

const char *loopsan_severity_name(enum loopsan_severity sev) {
  static const char *const names[] = {"error", "warning", "info"};
  return (unsigned)sev <= LOOPSAN_SEV_INFO ? names[sev] : "info";
}

int loopsan_kind_from_name(const char *name, size_t len) {
  for (int i = 0; i < LOOPSAN_KIND_COUNT; i++)
    if (strlen(kinds[i].name) == len && memcmp(kinds[i].name, name, len) == 0)
      return i;
  return -1;
}

void loopsan_frames_free(struct loopsan_frame_owned *f, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(f[i].function);
    free(f[i].file);
    free(f[i].module);
  }
  free(f);
}

static void free_strings(char **s, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(s[i]);
  free(s);
}

void loopsan_top_insert(const void **top, size_t *n, size_t cap, const void *item,
                        int (*better)(const void *a, const void *b)) {
  size_t at = *n;
  while (at > 0 && better(item, top[at - 1]))
    at--;
  if (at >= cap)
    return;
  if (*n < cap)
    (*n)++;
  memmove(&top[at + 1], &top[at], (*n - 1 - at) * sizeof *top);
  top[at] = item;
}

void loopsan_report_free(struct loopsan_report *r) {
  for (size_t i = 0; i < r->n_findings; i++) {
    struct loopsan_finding *f = &r->findings[i];
    free(f->message);
    free(f->detail);
    free(f->object_type);
    free(f->callback.function);
    free(f->callback.file);
    free(f->callback.module);
    loopsan_frames_free(f->created_at, f->n_created_at);
    loopsan_frames_free(f->stack, f->n_stack);
    loopsan_frames_free(f->cause, f->n_cause);
    for (size_t k = 0; k < f->n_chain; k++) {
      free(f->chain[k].callback.function);
      free(f->chain[k].callback.file);
      free(f->chain[k].callback.module);
      free(f->chain[k].object_type);
      loopsan_frames_free(f->chain[k].created_at, f->chain[k].n_created_at);
    }
    free(f->chain);
  }
  free(r->findings);
  for (size_t i = 0; i < r->n_processes; i++) {
    struct loopsan_process *p = &r->processes[i];
    free(p->exe);
    free_strings(p->argv, p->argc);
    free(p->libraries); /* the strings are static */
    free(p->trace);
    free_strings(p->notes, p->n_notes);
    for (size_t j = 0; j < p->n_observations; j++) {
      for (size_t k = 0; k < p->observations[j].n_types; k++)
        free(p->observations[j].types[k].name);
      free(p->observations[j].types);
    }
    free(p->observations);
    for (size_t j = 0; j < p->n_sites; j++) {
      free(p->sites[j].callback.function);
      free(p->sites[j].callback.file);
      free(p->sites[j].callback.module);
      loopsan_frames_free(p->sites[j].created_at, p->sites[j].n_created_at);
    }
    free(p->sites);
    free(p->slices);
    free_strings(p->slice_names, p->n_slice_names);
    for (size_t k = 0; k < p->n_origins; k++) {
      free(p->origins[k].object_type);
      free(p->origins[k].where);
    }
    free(p->origins);
  }
  free(r->processes);
  free_strings(r->notes, r->n_notes);
  free(r->trace_dir);
  memset(r, 0, sizeof *r);
}

int loopsan_report_add_note(char ***notes, size_t *n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int len = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (len < 0)
    return -1;
  char **grown = realloc(*notes, sizeof **notes * (*n + 1));
  if (!grown) {
    free(s);
    return -1;
  }
  grown[(*n)++] = s;
  *notes = grown;
  return 0;
}

static int compare_findings(const void *a, const void *b) {
  const struct loopsan_finding *x = a, *y = b;
  if (x->severity != y->severity)
    return x->severity < y->severity ? -1 : 1;
  if (x->kind != y->kind)
    return x->kind < y->kind ? -1 : 1;
  if (x->duration_ms != y->duration_ms)
    return x->duration_ms > y->duration_ms ? -1 : 1;
  if (x->count != y->count)
    return x->count > y->count ? -1 : 1;
  if (x->pid != y->pid)
    return x->pid < y->pid ? -1 : 1;
  return x->message && y->message ? strcmp(x->message, y->message) : 0;
}

void loopsan_report_sort(struct loopsan_report *r) {
  if (r->n_findings > 1)
    qsort(r->findings, r->n_findings, sizeof *r->findings, compare_findings);
}

int loopsan_finding_fails(const struct loopsan_finding *f, unsigned long fail_on) {
  return !f->suppressed && !f->in_baseline && ((fail_on & (1ul << f->kind)) || (fail_on & f->also));
}

void loopsan_report_summary(const struct loopsan_report *r, unsigned counts[LOOPSAN_KIND_COUNT]) {
  memset(counts, 0, sizeof(unsigned) * LOOPSAN_KIND_COUNT);
  for (size_t i = 0; i < r->n_findings; i++)
    if (!r->findings[i].suppressed)
      counts[r->findings[i].kind] += r->findings[i].count;
}
