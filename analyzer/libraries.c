#include "analyzer/libraries.h"

#include <string.h>

static const struct loopsan_library_vocab vocab[LOOPSAN_LIB_COUNT] = {
    [LOOPSAN_LIB_UNKNOWN] = {.library = LOOPSAN_LIB_UNKNOWN,
                             .close_call = "closing it",
                             .stop_call = "stopping it",
                             .loop_close_call = "closing the loop",
                             .error_prefix = ""},
    [LOOPSAN_LIB_UV] = {.library = LOOPSAN_LIB_UV,
                        .observed_by_shim = 1,
                        .module_prefixes = {"libuv.so"},
                        .close_call = "uv_close()",
                        .stop_call = "uv_TYPE_stop()",
                        .loop_close_call = "uv_loop_close()",
                        .wake_call = "uv_async_send()",
                        .never_started = "initialised but never started or used",
                        .error_prefix = "UV_"},
    [LOOPSAN_LIB_EVENT] = {.library = LOOPSAN_LIB_EVENT,
                           .observed_by_shim = 1,
                           .module_prefixes = {"libevent-", "libevent_core-"},
                           .close_call = "event_free()",
                           .stop_call = "event_del()",
                           .loop_close_call = "event_base_free()",
                           .wake_call = "event_active() once evthread_use_pthreads() was called",
                           .never_started = "made but never added (event_add()) nor activated",
                           .error_prefix = ""},
    [LOOPSAN_LIB_EV] = {.library = LOOPSAN_LIB_EV,
                        .observed_by_shim = 1,
                        .module_prefixes = {"libev.so"},
                        .close_call = "ev_TYPE_stop()",
                        .stop_call = "%s_stop()",
                        .loop_close_call = "ev_loop_destroy()",
                        .wake_call = "ev_async_send()",
                        .error_prefix = ""},
    [LOOPSAN_LIB_GLIB] = {.library = LOOPSAN_LIB_GLIB,
                          .observed_by_shim = 1,
                          .module_prefixes = {"libglib-2.0.so"},
                          .close_call = "g_source_destroy()",
                          .stop_call = "g_source_destroy()",
                          .loop_close_call = "g_main_context_unref()",
                          .wake_call = "g_main_context_invoke()",
                          .never_started = "made but never attached to a context (g_source_attach())",
                          .error_prefix = ""},
    [LOOPSAN_LIB_SDEVENT] = {.library = LOOPSAN_LIB_SDEVENT,
                             .observed_by_shim = 1,
                             .module_prefixes = {"libsystemd.so"},
                             .close_call = "sd_event_source_unref()",
                             .stop_call = "sd_event_source_set_enabled(SD_EVENT_OFF)",
                             .loop_close_call = "sd_event_unref()",
                             .wake_call = "a write to an eventfd its loop watches",
                             .error_prefix = ""},
    [LOOPSAN_LIB_GENERIC] = {.library = LOOPSAN_LIB_GENERIC,
                             .close_call = "closing it",
                             .stop_call = "stopping it",
                             .loop_close_call = "closing the loop",
                             .error_prefix = ""},
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
