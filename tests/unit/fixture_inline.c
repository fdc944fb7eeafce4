/* Fixture for test_symbolize: build with `gcc -g -O2 fixture_inline.c`.
 *
 * fixture_outer() calls the always-inline fixture_inlined(), which calls the
 * out-of-line fixture_record(); the return address that fixture_record()
 * takes with __builtin_return_address(0) therefore lies in fixture_outer's
 * code but belongs to the inlined function, so symbolising it must give
 *   [fixture_inlined (this file, RECORD_LINE),
 *    fixture_outer   (this file, INLINE_LINE)].
 * (__builtin_return_address(0) taken directly in the inlined body would be
 * fixture_outer's own return address, in main.)
 *
 * Prints, one "key value" per line, what a trace would record: the
 * module's path, load bias, [start, end) range and build-id, then the
 * captured addresses and the source lines they must resolve to, and the
 * address of a sizeless assembler label. The lines
 * are passed as __LINE__ at the call sites so the test never hardcodes them. */
#define _GNU_SOURCE
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *recorded_ra;
static int recorded_line;
static int inline_call_line;

/* No inlining, cloning or IPA assumptions (GCC's noipa), so there is a real
 * call with a real return address. */
#if defined(__GNUC__) && !defined(__clang__)
#define FIXTURE_OPAQUE __attribute__((noipa))
#else
#define FIXTURE_OPAQUE __attribute__((noinline))
#endif

FIXTURE_OPAQUE void fixture_record(int line) {
  recorded_ra = __builtin_return_address(0);
  recorded_line = line;
}

static inline __attribute__((always_inline)) int fixture_inlined(int x, int line) {
  inline_call_line = line;
  fixture_record(__LINE__);
  /* Work after the call keeps it from being a tail call. */
  return x * 3 + recorded_line;
}

FIXTURE_OPAQUE int fixture_outer(int x) {
  int r = fixture_inlined(x, __LINE__);
  return r + 1;
}

/* A sizeless global label followed by code no other symbol covers: only
 * its exact address may be given its name. */
__asm__(".text\n"
        ".globl fixture_label\n"
        ".type fixture_label, @function\n"
        "fixture_label:\n"
        "  nop\n  nop\n  nop\n  nop\n  nop\n  nop\n  nop\n  ret\n");
extern char fixture_label[];

struct self_map {
  uintptr_t bias, start, end;
  const unsigned char *build_id;
  size_t build_id_len;
};

/* The main program is the first object dl_iterate_phdr reports. */
static int first_object(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  struct self_map *map = data;
  map->bias = info->dlpi_addr;
  map->start = UINTPTR_MAX;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD) {
      if (lo < map->start)
        map->start = lo;
      if (lo + ph->p_memsz > map->end)
        map->end = lo + ph->p_memsz;
    } else if (ph->p_type == PT_NOTE) {
      const unsigned char *p = (const unsigned char *)lo;
      const unsigned char *end = p + ph->p_memsz;
      while (p + sizeof(ElfW(Nhdr)) <= end) {
        const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
        const unsigned char *desc = p + sizeof *nh + ((nh->n_namesz + 3) & ~3u);
        if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && desc + nh->n_descsz <= end) {
          map->build_id = desc;
          map->build_id_len = nh->n_descsz;
        }
        p = desc + ((nh->n_descsz + 3) & ~3u);
      }
    }
  }
  return 1;
}

int main(int argc, char **argv) {
  (void)argv;
  int r = fixture_outer(argc);

  char path[4096];
  ssize_t len = readlink("/proc/self/exe", path, sizeof path - 1);
  if (len <= 0)
    return 1;
  path[len] = '\0';
  struct self_map map = {0};
  dl_iterate_phdr(first_object, &map);

  printf("path %s\n", path);
  printf("bias 0x%jx\n", (uintmax_t)map.bias);
  printf("start 0x%jx\n", (uintmax_t)map.start);
  printf("end 0x%jx\n", (uintmax_t)map.end);
  printf("build_id ");
  for (size_t i = 0; i < map.build_id_len; i++)
    printf("%02x", map.build_id[i]);
  printf("\n");
  printf("return_address 0x%jx\n", (uintmax_t)(uintptr_t)recorded_ra);
  printf("record_line %d\n", recorded_line);
  printf("inline_call_line %d\n", inline_call_line);
  printf("outer_entry 0x%jx\n", (uintmax_t)(uintptr_t)&fixture_outer);
  printf("label 0x%jx\n", (uintmax_t)(uintptr_t)fixture_label);
  printf("result %d\n", r);
  return 0;
}
