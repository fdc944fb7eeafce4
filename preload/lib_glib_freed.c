/* GSources the program freed with its last g_source_unref, for a later
 * call on one (a use after free): a misuse, with where it was freed. */
#include <glib.h>

#include "preload/lib_glib_internal.h"

static struct loopsan_gone freed_ring[256];

/* The program calls FN on S: one its last g_source_unref freed (and no
 * source made since at that address) is a use after free. Checked before
 * S is touched. Returns whether it was. */
int loopsan__glib_check_freed(const void *s, const char *fn) {
  struct loopsan_gone *g = loopsan__gone_find(LOOPSAN_GONE_SLOT(freed_ring, s), s);
  struct loopsan_obj o;
  if (LOOPSAN_LIKELY(!g) || loopsan__obj_get(s, &o))
    return 0;
  /* GLib may have made a source of its own at that address since, out of
   * our sight (its calls to itself are not interposed): a live source has
   * references, a freed one was freed at 0. (GLib reads the same field
   * right after us: the read is no riskier than the program's call.) */
  if (((const GSource *)s)->ref_count > 0)
    return 0;
  loopsan__gone_misuse(g, s, LOOPSAN_LIB_GLIB, LOOPSAN_MISUSE_SOURCE_FREED, fn);
  return 1;
}

void loopsan__glib_source_freed(const void *s, const struct loopsan_obj *o, uintptr_t site) {
  loopsan__gone_put(LOOPSAN_GONE_SLOT(freed_ring, s), s, o, site, 1);
}
