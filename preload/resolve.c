/* Finding the real functions behind the ones the shim interposes.
 *
 * dlsym(RTLD_NEXT) finds them when the library is in the global scope. A
 * library loaded with RTLD_LOCAL (libuv under python3-uvloop) is not, yet
 * its callers still bind to the shim: then the library is found among the
 * loaded objects with dl_iterate_phdr and opened with RTLD_NOLOAD. Either
 * way the library's address range is learnt, so adapters can tell the
 * library's calls to itself from the program's. A library found is pinned
 * (RTLD_NODELETE), so that the pointers into it stay valid. */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <string.h>

#include "preload/shim.h"

struct range_query {
  uintptr_t addr;     /* find the object containing addr ... */
  const char *prefix; /* ... or the one whose file name starts so */
  uintptr_t start, end;
  char path[LOOPSAN_PATH_MAX];
};

static int find_object(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  struct range_query *q = data;
  uintptr_t lo, hi;
  if (!loopsan__object_range(info, &lo, &hi))
    return 0;
  int match;
  if (q->prefix) {
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    match = strncmp(base, q->prefix, strlen(q->prefix)) == 0;
  } else {
    match = q->addr >= lo && q->addr < hi;
  }
  if (!match)
    return 0;
  q->start = lo;
  q->end = hi;
  strncpy(q->path, info->dlpi_name ? info->dlpi_name : "", sizeof q->path - 1);
  return 1;
}

void loopsan__learn_range(struct loopsan_library_ref *lib, uintptr_t addr) {
  struct range_query q = {.addr = addr};
  if (dl_iterate_phdr(find_object, &q)) {
    atomic_store(&lib->start, q.start);
    atomic_store(&lib->end, q.end);
  }
}

void *loopsan__resolve(struct loopsan_library_ref *lib, const char *name) {
  int saved = errno;
  void *fn = dlsym(RTLD_NEXT, name);
  if (fn && loopsan__is_self((uintptr_t)fn))
    fn = NULL;
  if (!fn) {
    struct range_query q = {.prefix = lib->soname_prefix};
    if (dl_iterate_phdr(find_object, &q) && q.path[0]) {
      void *h = lib->handle;
      if (!h) {
        h = dlopen(q.path, RTLD_LAZY | RTLD_NOLOAD);
        lib->handle = h; /* kept open: the library must not go away under us */
      }
      if (h)
        fn = dlsym(h, name);
    }
  }
  Dl_info info;
  if (fn && !lib->handle && dladdr(fn, &info) && info.dli_fname) {
    /* Pin the library (RTLD_NODELETE): a program that dlcloses it and
     * dlopens it again would otherwise find it at another address, while
     * the shim still holds pointers into the old one. */
    lib->handle = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
  }
  if (fn && !atomic_load(&lib->end))
    loopsan__learn_range(lib, (uintptr_t)fn);
  errno = saved;
  return fn;
}

static uintptr_t self_start, self_end;

int loopsan__is_self(uintptr_t addr) {
  if (LOOPSAN_UNLIKELY(!self_end)) {
    struct range_query q = {.addr = (uintptr_t)&loopsan__is_self};
    if (dl_iterate_phdr(find_object, &q)) {
      self_start = q.start;
      self_end = q.end;
    }
  }
  return addr >= self_start && addr < self_end;
}
