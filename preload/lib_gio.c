/* GIO's GTask, where an error can go unseen: a task the program made with
 * no callback (g_task_new(..., NULL, ...)) that returns an error has
 * nothing to hand it to, like an asyncio task whose exception is never
 * retrieved. Tasks are requests of the GLib adapter (type "GTask"): made
 * by g_task_new, completed by the g_task_return_* that says how they
 * ended (an error: COMPLETE with a negative arg, -(code + 1)), so that
 * a task the program made and never completed is still pending at exit.
 *
 * Only the program's own tasks are seen: GIO makes and completes its own
 * with calls to itself, which no interposer sees. */
#include <gio/gio.h>
#include <stdarg.h>

#include "preload/lib_glib_internal.h"

static struct loopsan_library_ref gio_lib = {.soname_prefix = "libgio-2.0.so"};
static struct loopsan_library_ref glib_for_error = {.soname_prefix = "libglib-2.0.so"};
#define RESOLVE(fn) RESOLVE_IN(&gio_lib, fn)
#define from_program(ra) loopsan__from_program(&gio_lib, ra)

DECLARE_REAL(g_task_new);
LOOPSAN_INTERPOSE GTask *g_task_new(gpointer source, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer data) {
  if (!RESOLVE(g_task_new))
    return NULL;
  GTask *task = REAL(g_task_new)(source, cancellable, callback, data);
  void *ref = NULL;
  if (task && from_program(CALLER) &&
      loopsan__record_new(task, LOOPSAN_LIB_GLIB, T_TASK, 0, 0, &ref) && ref) {
    struct loopsan_obj o;
    loopsan__obj_set_cb(ref, LOOPSAN_SLOT_MAIN, (void *)callback);
    if (loopsan__obj_read(ref, task, &o)) /* its callback (NULL: none) */
      loopsan__record_op(o.id, LOOPSAN_OP_START, (void *)callback, LOOPSAN_START_ONESHOT, 0);
  }
  return task;
}

/* TASK returned: with ERROR (NULL: a value). Its end, and for a task with
 * no callback, an error nothing sees. */
static void task_returned(GTask *task, const GError *error) {
  struct loopsan_obj o;
  if (!task || loopsan__obj_take(task, &o) != 0)
    return;
  int32_t arg = error ? -(int32_t)((error->code >= 0 ? error->code : 0) + 1) : 0;
  loopsan__record_end(&o, LOOPSAN_OP_COMPLETE, o.cb[LOOPSAN_SLOT_MAIN], arg, 0);
}

#define TASK_RETURN(fn, type)                          \
  DECLARE_REAL(fn);                                    \
  LOOPSAN_INTERPOSE void fn(GTask *task, type value) { \
    if (!RESOLVE(fn))                                  \
      return;                                          \
    if (from_program(CALLER))                          \
      task_returned(task, NULL);                       \
    REAL(fn)(task, value);                             \
  }
TASK_RETURN(g_task_return_boolean, gboolean)
TASK_RETURN(g_task_return_int, gssize)
TASK_RETURN(g_task_return_value, GValue *)

DECLARE_REAL(g_task_return_pointer);
LOOPSAN_INTERPOSE void g_task_return_pointer(GTask *task, gpointer result,
                                             GDestroyNotify result_destroy) {
  if (!RESOLVE(g_task_return_pointer))
    return;
  if (from_program(CALLER))
    task_returned(task, NULL);
  REAL(g_task_return_pointer)(task, result, result_destroy);
}

DECLARE_REAL(g_task_return_error);
LOOPSAN_INTERPOSE void g_task_return_error(GTask *task, GError *error) {
  if (!RESOLVE(g_task_return_error))
    return;
  if (from_program(CALLER))
    task_returned(task, error);
  REAL(g_task_return_error)(task, error);
}

/* Variadic: the error is made here, as GLib would, and returned. */
static __typeof__(g_error_new_valist) *real_error_new_valist;
LOOPSAN_INTERPOSE void g_task_return_new_error(GTask *task, GQuark domain, gint code,
                                               const char *format, ...) {
  if (!RESOLVE(g_task_return_error))
    return;
  if (!real_error_new_valist)
    real_error_new_valist =
        (__typeof__(g_error_new_valist) *)loopsan__resolve(&glib_for_error, "g_error_new_valist");
  if (!real_error_new_valist)
    return;
  va_list ap;
  va_start(ap, format);
  GError *error = real_error_new_valist(domain, code, format, ap);
  va_end(ap);
  if (from_program(CALLER))
    task_returned(task, error);
  REAL(g_task_return_error)(task, error);
}

DECLARE_REAL(g_task_return_error_if_cancelled);
LOOPSAN_INTERPOSE gboolean g_task_return_error_if_cancelled(GTask *task) {
  if (!RESOLVE(g_task_return_error_if_cancelled))
    return FALSE;
  gboolean returned = REAL(g_task_return_error_if_cancelled)(task);
  if (returned && from_program(CALLER)) {
    GError cancelled = {.domain = 0, .code = G_IO_ERROR_CANCELLED, .message = NULL};
    task_returned(task, &cancelled);
  }
  return returned;
}
