/* What the GLib adapter's files share (lib_glib.c: contexts and sources;
 * lib_gio.c: GIO's tasks). Internal to the shim. */
#ifndef LOOPSAN_LIB_GLIB_INTERNAL_H
#define LOOPSAN_LIB_GLIB_INTERNAL_H

#include "preload/adapter.h"

#define GLIB_OBJECT_TYPES(X)                      \
  X(CONTEXT, "GMainContext", LOOP)                \
  X(SOURCE, "GSource", HANDLE)                    \
  X(IDLE, "GSource (idle)", HANDLE)               \
  X(TIMEOUT, "GSource (timeout)", HANDLE)         \
  X(CHILD_WATCH, "GSource (child watch)", HANDLE) \
  X(IO_WATCH, "GSource (io watch)", HANDLE)       \
  X(UNIX_FD, "GSource (unix fd)", HANDLE)         \
  X(UNIX_SIGNAL, "GSource (unix signal)", HANDLE) \
  X(TASK, "GTask", REQUEST)

enum glib_object_type { GLIB_OBJECT_TYPES(LOOPSAN_TYPE_ENUM) };

/* lib_glib_freed.c: the program's last g_source_unref of S (object O,
 * called at SITE) frees it; a later call FN on S is a misuse, said (and
 * 1 returned) before S is touched. */
void loopsan__glib_source_freed(const void *s, const struct loopsan_obj *o, uintptr_t site);
int loopsan__glib_check_freed(const void *s, const char *fn);

#endif
