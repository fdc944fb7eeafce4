/* GSources the program freed with its last g_source_unref, for a later
 * call on one (a use after free): a misuse, with where it was freed. */
#include "preload/lib_glib_internal.h"

/* ---- misuse: a source used after the program's last unref freed it ----
 * The last sources so freed, by address (direct-mapped; read only when a
 * call finds no source in the table). */
#define FREED_RING 256u
static struct freed_source {
  _Atomic uintptr_t addr;
  uint64_t id;
  uintptr_t site; /* the g_source_unref call site */
  uint8_t type;
} freed_ring[FREED_RING];

static struct freed_source *freed_slot(const void *s) {
  return &freed_ring[((uintptr_t)s >> 4) % FREED_RING];
}

/* The program calls FN on S: one its last g_source_unref freed (and no
 * source made since at that address) is a use after free. Checked before
 * S is touched. Returns whether it was. */
int loopsan__glib_check_freed(const void *s, const char *fn) {
  struct freed_source *f = freed_slot(s);
  struct loopsan_obj o;
  if (LOOPSAN_LIKELY(atomic_load(&f->addr) != (uintptr_t)s) || loopsan__obj_get(s, &o))
    return 0;
  struct loopsan_misuse_detail d = {
      .cause = loopsan__stack_of_call_site(f->site), .type = f->type, .address = s};
  loopsan__record_misuse_ex(f->id, LOOPSAN_LIB_GLIB, LOOPSAN_MISUSE_SOURCE_FREED, fn, &d);
  return 1;
}

void loopsan__glib_source_freed(const void *s, const struct loopsan_obj *o, uintptr_t site) {
  struct freed_source *f = freed_slot(s);
  atomic_store(&f->addr, 0);
  f->id = o->id;
  f->type = o->type;
  f->site = site;
  atomic_store(&f->addr, (uintptr_t)s);
}
