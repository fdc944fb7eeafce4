/* Each loop library's vocabulary, one row per library: how its files are
 * named, what it calls closing a handle and a loop, how it spells errors.
 * The analyzer and the reports speak of a library only through this table,
 * so a new library is a row here, not edits everywhere. */
#ifndef LOOPSAN_LIBRARIES_H
#define LOOPSAN_LIBRARIES_H

#include "common/names.h"

struct loopsan_library_vocab {
  enum loopsan_library library;
  int observed_by_shim;           /* loopsan has an adapter for it today */
  const char *module_prefixes[3]; /* file names of its shared objects */
  const char *close_call;         /* "uv_close()": what closes a handle */
  const char *stop_call;          /* what ends a watcher: "event_del()", or a format
                                     given the type ("%s_stop()": "ev_io_stop()") */
  const char *loop_close_call;    /* "uv_loop_close()" */
  const char *error_prefix;       /* "UV_": its error names are PREFIX + errno name */
  const char *wake_call;          /* how another thread reaches its loop, thread-safely */
  const char *never_started;      /* what a never-started object of it was not: "started or
                                     used", "added (event_add()) nor activated" */
};

/* LIBRARY's row; every enum loopsan_library has one. */
const struct loopsan_library_vocab *loopsan_library_vocab(unsigned library);
/* The library whose shared object PATH is, or LOOPSAN_LIB_UNKNOWN. */
unsigned loopsan_library_of_module(const char *path);
/* "libuv" or "libuv, libev": the libraries the shim observes today. */
const char *loopsan_libraries_observed(void);

#endif
