/* Names of the trace format's enumerations, shared by shim and analyzer. */
#ifndef LOOPSAN_NAMES_H
#define LOOPSAN_NAMES_H

#include "common/trace_format.h"

static inline const char *loopsan_library_name(unsigned lib) {
  static const char *const names[LOOPSAN_LIB_COUNT] = {
      [LOOPSAN_LIB_UNKNOWN] = "unknown", [LOOPSAN_LIB_UV] = "libuv",
      [LOOPSAN_LIB_EVENT] = "libevent",  [LOOPSAN_LIB_EV] = "libev",
      [LOOPSAN_LIB_GLIB] = "glib",       [LOOPSAN_LIB_SDEVENT] = "sd-event",
      [LOOPSAN_LIB_GENERIC] = "generic",
  };
  return lib < LOOPSAN_LIB_COUNT ? names[lib] : "unknown";
}

#endif
