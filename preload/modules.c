/* The module map: every mapped ELF object with its load bias, range and
 * GNU build-id, so that the analyzer can symbolise later, elsewhere, or
 * from a debug directory. Re-emitted whole whenever glibc's load/unload
 * counters (dlpi_adds/dlpi_subs) say dlopen or dlclose changed the map:
 * checked at most once a second before a thread waits, at exit, and before
 * every dlclose (init.c), so that a library unloaded at once is still
 * known. dlopen is not interposed: that would change how the loader
 * resolves $ORIGIN for its callers. */
#include <link.h>
#include <string.h>
#include <unistd.h>

#include "preload/shim.h"

static _Atomic unsigned long long last_adds = ~0ull, last_subs = ~0ull;

static int read_counters(struct dl_phdr_info *info, size_t size, void *data) {
  unsigned long long *c = data;
  if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
    c[0] = info->dlpi_adds;
    c[1] = info->dlpi_subs;
  }
  return 1; /* the counters are the same in every entry */
}

static size_t find_build_id(struct dl_phdr_info *info, const uint8_t **out) {
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_NOTE)
      continue;
    const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
    const uint8_t *end = p + ph->p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)(const void *)p;
      size_t name_sz = (n->n_namesz + 3u) & ~3u, desc_sz = (n->n_descsz + 3u) & ~3u;
      const uint8_t *name = p + sizeof *n, *desc = name + name_sz;
      if (desc + desc_sz > end)
        break;
      if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
        *out = desc;
        return n->n_descsz;
      }
      p = desc + desc_sz;
    }
  }
  return 0;
}

int loopsan__object_range(const struct dl_phdr_info *info, uintptr_t *lo, uintptr_t *hi) {
  *lo = UINTPTR_MAX;
  *hi = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD)
      continue;
    uintptr_t s = info->dlpi_addr + ph->p_vaddr;
    *lo = s < *lo ? s : *lo;
    *hi = s + ph->p_memsz > *hi ? s + ph->p_memsz : *hi;
  }
  return *hi != 0;
}

static int emit_module(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  (void)data;
  uintptr_t lo, hi;
  if (!loopsan__object_range(info, &lo, &hi))
    return 0;
  char exe[LOOPSAN_PATH_MAX];
  const char *path = info->dlpi_name;
  if (!path || !path[0]) {
    /* The main program has no name here; the vDSO has no file at all. */
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    path = exe;
  }
  const uint8_t *bid = NULL;
  size_t bid_len = find_build_id(info, &bid);
  struct loopsan_rec_module r = {
      .bias = info->dlpi_addr,
      .start = lo,
      .end = hi,
      .build_id_len = (uint32_t)bid_len,
      .path_len = (uint32_t)strnlen(path, LOOPSAN_PATH_MAX - 1),
  };
  loopsan__emit_tail(LOOPSAN_REC_MODULE, &r, sizeof r, bid, bid_len, path, r.path_len);
  return 0;
}

void loopsan__modules_emit_if_changed(int force) {
  unsigned long long c[2] = {0, 0};
  dl_iterate_phdr(read_counters, c);
  if (!force && c[0] == atomic_load(&last_adds) && c[1] == atomic_load(&last_subs))
    return;
  atomic_store(&last_adds, c[0]);
  atomic_store(&last_subs, c[1]);
  dl_iterate_phdr(emit_module, NULL);
}
