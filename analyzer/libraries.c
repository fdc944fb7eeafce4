#include "analyzer/libraries.h"

#include <string.h>

static const struct loopsan_library_vocab vocab[LOOPSAN_LIB_COUNT] = {
    [LOOPSAN_LIB_UNKNOWN] = {LOOPSAN_LIB_UNKNOWN, 0, {NULL}, "closing it", "closing the loop", ""},
    [LOOPSAN_LIB_UV] = {LOOPSAN_LIB_UV, 1, {"libuv.so"}, "uv_close()", "uv_loop_close()", "UV_"},
    [LOOPSAN_LIB_EVENT] = {LOOPSAN_LIB_EVENT,
                           0,
                           {"libevent-", "libevent_core-"},
                           "event_free()",
                           "event_base_free()",
                           ""},
    [LOOPSAN_LIB_EV] = {LOOPSAN_LIB_EV, 1, {"libev.so"}, "ev_TYPE_stop()", "ev_loop_destroy()", ""},
    [LOOPSAN_LIB_GLIB] = {LOOPSAN_LIB_GLIB,
                          0,
                          {"libglib-2.0.so"},
                          "g_source_destroy()",
                          "g_main_context_unref()",
                          ""},
    [LOOPSAN_LIB_SDEVENT] = {LOOPSAN_LIB_SDEVENT,
                             0,
                             {"libsystemd.so"},
                             "sd_event_source_unref()",
                             "sd_event_unref()",
                             ""},
    [LOOPSAN_LIB_GENERIC] = {LOOPSAN_LIB_GENERIC, 0, {NULL}, "closing it", "closing the loop", ""},
};

const struct loopsan_library_vocab *loopsan_library_vocab(unsigned library) {
  return &vocab[library < LOOPSAN_LIB_COUNT ? library : LOOPSAN_LIB_UNKNOWN];
}

unsigned loopsan_library_of_module(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  for (unsigned lib = 0; lib < LOOPSAN_LIB_COUNT; lib++)
    for (size_t k = 0; k < 3 && vocab[lib].module_prefixes[k]; k++)
      if (strncmp(base, vocab[lib].module_prefixes[k], strlen(vocab[lib].module_prefixes[k])) == 0)
        return lib;
  return LOOPSAN_LIB_UNKNOWN;
}

const char *loopsan_libraries_observed(void) {
  static char list[128];
  if (!list[0])
    for (unsigned lib = 0; lib < LOOPSAN_LIB_COUNT; lib++)
      if (vocab[lib].observed_by_shim) {
        if (list[0])
          strncat(list, ", ", sizeof list - strlen(list) - 1);
        strncat(list, loopsan_library_name(lib), sizeof list - strlen(list) - 1);
      }
  return list;
}
