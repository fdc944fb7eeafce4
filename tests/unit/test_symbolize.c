/* Unit tests for analyzer/symbolize.c.
 *
 * Build and run from the top of the tree:
 *   gcc -g -O2 tests/unit/fixture_inline.c -o /tmp/fixture_inline
 *   gcc -std=c11 -Wall -Wextra -Werror -fsanitize=address,undefined -g \
 *       -I analyzer analyzer/symbolize.c tests/unit/test_symbolize.c \
 *       $(pkg-config --cflags --libs libdw check) -o /tmp/test_symbolize
 *   LOOPSAN_FIXTURE_INLINE=/tmp/fixture_inline /tmp/test_symbolize
 * Leak check without ASan (CK_FORK=no keeps valgrind on one process):
 *   gcc -std=c11 -Wall -Wextra -Werror -g -I analyzer analyzer/symbolize.c \
 *       tests/unit/test_symbolize.c $(pkg-config --cflags --libs libdw check) \
 *       -o /tmp/test_symbolize_vg
 *   CK_FORK=no LOOPSAN_FIXTURE_INLINE=/tmp/fixture_inline valgrind \
 *       --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 \
 *       /tmp/test_symbolize_vg
 *
 * Needs libuv1 (its stripped libuv.so.1 is the "no wrong name" case) and
 * libstdc++6; libc6-dbg makes the libc test also check file and line. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "symbolize.h"

#include <check.h>
#include <dlfcn.h>
#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/unit.h"

#define LIBUV_PATH "/usr/lib/x86_64-linux-gnu/libuv.so.1"

typedef struct module_info {
  char path[4096];
  uint64_t bias, start, end;
  uint8_t build_id[64];
  size_t build_id_len;
} module_info;

typedef struct fixture_info {
  module_info mod;
  uint64_t return_address, outer_entry, label;
  int record_line, inline_call_line;
} fixture_info;

static const char *base_name(const char *path) {
  const char *slash = path ? strrchr(path, '/') : NULL;
  return slash ? slash + 1 : path;
}

static size_t parse_hex_bytes(const char *hex, uint8_t *out, size_t max) {
  size_t n = 0;
  unsigned int byte;
  while (n < max && sscanf(hex + 2 * n, "%2x", &byte) == 1)
    out[n++] = (uint8_t)byte;
  return n;
}

/* Runs the fixture and reads the module map and addresses it prints. */
static void run_fixture(fixture_info *fx) {
  const char *exe = getenv("LOOPSAN_FIXTURE_INLINE");
  ck_assert_msg(exe != NULL && exe[0] != '\0',
                "set LOOPSAN_FIXTURE_INLINE to the fixture built with "
                "`gcc -g -O2 tests/unit/fixture_inline.c -o PATH`");
  memset(fx, 0, sizeof *fx);
  FILE *p = popen(exe, "r");
  ck_assert_msg(p != NULL, "cannot run %s", exe);
  char line[8192], hex[200];
  while (fgets(line, sizeof line, p) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    if (strncmp(line, "path ", 5) == 0)
      snprintf(fx->mod.path, sizeof fx->mod.path, "%.4000s", line + 5);
    sscanf(line, "bias %" SCNx64, &fx->mod.bias);
    sscanf(line, "start %" SCNx64, &fx->mod.start);
    sscanf(line, "end %" SCNx64, &fx->mod.end);
    if (sscanf(line, "build_id %199s", hex) == 1)
      fx->mod.build_id_len = parse_hex_bytes(hex, fx->mod.build_id, sizeof fx->mod.build_id);
    sscanf(line, "return_address %" SCNx64, &fx->return_address);
    sscanf(line, "outer_entry %" SCNx64, &fx->outer_entry);
    sscanf(line, "label %" SCNx64, &fx->label);
    sscanf(line, "record_line %d", &fx->record_line);
    sscanf(line, "inline_call_line %d", &fx->inline_call_line);
  }
  ck_assert_int_eq(pclose(p), 0);
  ck_assert_msg(fx->mod.path[0] && fx->mod.end > fx->mod.start && fx->return_address && fx->label &&
                    fx->record_line > 0 && fx->inline_call_line > 0 && fx->mod.build_id_len > 0,
                "unexpected output from %s", exe);
}

static void add(loopsan_symbolizer *sym, const module_info *m) {
  ck_assert_int_eq(loopsan_symbolizer_add_module(sym, m->path, m->bias, m->start, m->end,
                                                 m->build_id, m->build_id_len),
                   0);
}

static const loopsan_frame *resolve(loopsan_symbolizer *sym, uint64_t addr, int is_return,
                                    size_t *n) {
  const loopsan_frame *frames = NULL;
  ck_assert_int_eq(loopsan_symbolize(sym, addr, is_return, &frames, n), 0);
  ck_assert_ptr_nonnull(frames);
  ck_assert_uint_ge(*n, 1);
  for (size_t i = 0; i < *n; i++)
    ck_assert_uint_eq(frames[i].address, addr);
  return frames;
}

/* Finds the loaded object containing ADDR in this process, as the preload
 * library would record it. */
typedef struct find_ctx {
  uintptr_t addr;
  module_info *out;
  int found;
} find_ctx;

static int find_cb(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  find_ctx *ctx = data;
  module_info m = {.bias = info->dlpi_addr, .start = UINT64_MAX};
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uint64_t lo = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD) {
      m.start = lo < m.start ? lo : m.start;
      m.end = lo + ph->p_memsz > m.end ? lo + ph->p_memsz : m.end;
    } else if (ph->p_type == PT_NOTE) {
      const char *p = (const char *)(uintptr_t)lo, *end = p + ph->p_memsz;
      while (p + sizeof(ElfW(Nhdr)) <= end) {
        const ElfW(Nhdr) *nh = (const void *)p;
        const char *desc = p + sizeof *nh + ((nh->n_namesz + 3) & ~3u);
        if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
            nh->n_descsz <= sizeof m.build_id) {
          memcpy(m.build_id, desc, nh->n_descsz);
          m.build_id_len = nh->n_descsz;
        }
        p = desc + ((nh->n_descsz + 3) & ~3u);
      }
    }
  }
  if (ctx->addr < m.start || ctx->addr >= m.end || !info->dlpi_name[0])
    return 0;
  snprintf(m.path, sizeof m.path, "%s", info->dlpi_name);
  *ctx->out = m;
  ctx->found = 1;
  return 1;
}

static void find_loaded(const void *addr, module_info *out) {
  find_ctx ctx = {.addr = (uintptr_t)addr, .out = out};
  dl_iterate_phdr(find_cb, &ctx);
  ck_assert_msg(ctx.found, "no loaded object contains %p", addr);
}

START_TEST(test_inline_chain) {
  fixture_info fx;
  run_fixture(&fx);
  loopsan_symbolizer *sym = loopsan_symbolizer_new();
  ck_assert_ptr_nonnull(sym);
  add(sym, &fx.mod);

  size_t n;
  const loopsan_frame *f = resolve(sym, fx.return_address, 1, &n);
  ck_assert_uint_eq(n, 2);
  ck_assert_str_eq(f[0].function, "fixture_inlined");
  ck_assert_str_eq(base_name(f[0].file), "fixture_inline.c");
  ck_assert_int_eq(f[0].line, fx.record_line);
  ck_assert_str_eq(f[1].function, "fixture_outer");
  ck_assert_str_eq(base_name(f[1].file), "fixture_inline.c");
  ck_assert_int_eq(f[1].line, fx.inline_call_line);
  for (size_t i = 0; i < n; i++) {
    ck_assert_str_eq(f[i].module, fx.mod.path);
    ck_assert_uint_eq(f[i].module_offset, fx.return_address - fx.mod.bias);
  }

  /* Cached: the very same array comes back. */
  size_t n2;
  ck_assert_ptr_eq(resolve(sym, fx.return_address, 1, &n2), f);
  ck_assert_uint_eq(n2, n);

  /* A callback address is an entry point, looked up as is. */
  f = resolve(sym, fx.outer_entry, 0, &n);
  ck_assert_uint_eq(n, 1);
  ck_assert_str_eq(f[0].function, "fixture_outer");
  ck_assert_str_eq(base_name(f[0].file), "fixture_inline.c");
  ck_assert_int_gt(f[0].line, 0);
  const char *old_name = f[0].function;

  /* A sizeless symbol names its own address only, not the code after it
   * (libdwfl would offer it for both). */
  f = resolve(sym, fx.label, 0, &n);
  ck_assert_uint_eq(n, 1);
  ck_assert_str_eq(f[0].function, "fixture_label");
  f = resolve(sym, fx.label + 2, 1, &n);
  ck_assert_uint_eq(n, 1);
  ck_assert_ptr_null(f[0].function);
  ck_assert_str_eq(f[0].module, fx.mod.path);

  /* After a reset the old map is gone, but old pointers stay valid. */
  loopsan_symbolizer_reset(sym);
  ck_assert_str_eq(old_name, "fixture_outer");
  f = resolve(sym, fx.return_address, 1, &n);
  ck_assert_uint_eq(n, 1);
  ck_assert_ptr_null(f[0].module);
  ck_assert_ptr_null(f[0].function);

  /* Adding the module again invalidates the cached "no module" answer. */
  add(sym, &fx.mod);
  f = resolve(sym, fx.return_address, 1, &n);
  ck_assert_uint_eq(n, 2);
  ck_assert_str_eq(f[0].function, "fixture_inlined");
  loopsan_symbolizer_free(sym);
}
END_TEST

START_TEST(test_wrong_build_id) {
  fixture_info fx;
  run_fixture(&fx);
  fx.mod.build_id[0] ^= 0xff;
  loopsan_symbolizer *sym = loopsan_symbolizer_new();
  add(sym, &fx.mod);
  size_t n;
  const loopsan_frame *f = resolve(sym, fx.return_address, 1, &n);
  ck_assert_uint_eq(n, 1);
  ck_assert_ptr_null(f[0].function);
  ck_assert_ptr_null(f[0].file);
  ck_assert_int_eq(f[0].line, 0);
  ck_assert_str_eq(f[0].module, fx.mod.path);
  ck_assert_uint_eq(f[0].module_offset, fx.return_address - fx.mod.bias);
  loopsan_symbolizer_free(sym);
}
END_TEST

START_TEST(test_missing_file) {
  loopsan_symbolizer *sym = loopsan_symbolizer_new();
  static const uint8_t id[] = {1, 2, 3, 4};
  ck_assert_int_eq(loopsan_symbolizer_add_module(sym, "/nonexistent/libgone.so.1", 0x7f0000000000,
                                                 0x7f0000000000, 0x7f0000010000, id, sizeof id),
                   0);
  size_t n;
  const loopsan_frame *f = resolve(sym, 0x7f0000001234, 1, &n);
  ck_assert_uint_eq(n, 1);
  ck_assert_str_eq(f[0].module, "/nonexistent/libgone.so.1");
  ck_assert_uint_eq(f[0].module_offset, 0x1234);
  ck_assert_ptr_null(f[0].function);
  ck_assert_ptr_null(f[0].file);
  loopsan_symbolizer_free(sym);
}
END_TEST

START_TEST(test_garbage_addresses) {
  fixture_info fx;
  run_fixture(&fx);
  loopsan_symbolizer *sym = loopsan_symbolizer_new();
  static const uint64_t addrs[] = {0, 1, 0xdeadbeef000, UINT64_MAX};
  for (int pass = 0; pass < 2; pass++) {
    for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
      for (int ret = 0; ret < 2; ret++) {
        size_t n;
        const loopsan_frame *f = resolve(sym, addrs[i], ret, &n);
        ck_assert_uint_eq(n, 1);
        ck_assert_ptr_null(f[0].function);
        ck_assert_ptr_null(f[0].file);
        ck_assert_ptr_null(f[0].module);
        ck_assert_int_eq(f[0].line, 0);
      }
    }
    add(sym, &fx.mod); /* second pass: with a real module present */
  }
  /* Inside the recorded range but past the file's segments. */
  module_info wide = fx.mod;
  wide.end = wide.start + 0x10000000;
  add(sym, &wide);
  size_t n;
  const loopsan_frame *f = resolve(sym, wide.end - 16, 0, &n);
  ck_assert_uint_eq(n, 1);
  ck_assert_ptr_null(f[0].function);
  ck_assert_str_eq(f[0].module, fx.mod.path);
  loopsan_symbolizer_free(sym);
}
END_TEST

typedef struct dynsym {
  uint64_t value, size;
  const char *name;
} dynsym;

static int by_value(const void *a, const void *b) {
  const dynsym *x = a, *y = b;
  return x->value < y->value ? -1 : x->value > y->value;
}

/* libuv.so.1 as Debian ships it has only .dynsym: find the widest gap
 * between exported functions (static functions live there) and check that
 * it is not blamed on the exported function before it. */
START_TEST(test_libuv_gap) {
  ck_assert_msg(access(LIBUV_PATH, R_OK) == 0,
                "%s missing (apt-get install "
                "libuv1)",
                LIBUV_PATH);
  elf_version(EV_CURRENT);
  int fd = open(LIBUV_PATH, O_RDONLY);
  ck_assert_int_ge(fd, 0);
  Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
  ck_assert_ptr_nonnull(elf);

  module_info m = {.bias = 0x7f1234560000};
  snprintf(m.path, sizeof m.path, "%s", LIBUV_PATH);
  const void *id;
  ssize_t idlen = dwelf_elf_gnu_build_id(elf, &id);
  ck_assert_int_gt(idlen, 0);
  memcpy(m.build_id, id, (size_t)idlen);
  m.build_id_len = (size_t)idlen;

  size_t phnum;
  uint64_t text_lo = 0, text_hi = 0;
  m.start = UINT64_MAX;
  ck_assert_int_eq(elf_getphdrnum(elf, &phnum), 0);
  for (size_t i = 0; i < phnum; i++) {
    GElf_Phdr ph;
    ck_assert_ptr_nonnull(gelf_getphdr(elf, (int)i, &ph));
    if (ph.p_type != PT_LOAD)
      continue;
    uint64_t lo = m.bias + ph.p_vaddr, hi = lo + ph.p_memsz;
    m.start = lo < m.start ? lo : m.start;
    m.end = hi > m.end ? hi : m.end;
    if (ph.p_flags & PF_X) {
      text_lo = ph.p_vaddr;
      text_hi = ph.p_vaddr + ph.p_memsz;
    }
  }

  dynsym *syms = NULL;
  size_t nsyms = 0;
  for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn)) != NULL;) {
    GElf_Shdr sh;
    gelf_getshdr(scn, &sh);
    if (sh.sh_type != SHT_DYNSYM)
      continue;
    Elf_Data *data = elf_getdata(scn, NULL);
    size_t count = sh.sh_size / sh.sh_entsize;
    syms = calloc(count, sizeof *syms);
    ck_assert_ptr_nonnull(syms);
    for (size_t i = 0; i < count; i++) {
      GElf_Sym s;
      gelf_getsym(data, (int)i, &s);
      if (s.st_shndx == SHN_UNDEF || GELF_ST_TYPE(s.st_info) != STT_FUNC || s.st_value < text_lo ||
          s.st_value >= text_hi)
        continue;
      syms[nsyms++] = (dynsym){s.st_value, s.st_size, elf_strptr(elf, sh.sh_link, s.st_name)};
    }
  }
  ck_assert_uint_gt(nsyms, 10);
  qsort(syms, nsyms, sizeof *syms, by_value);
  size_t best = 0;
  uint64_t best_gap = 0;
  for (size_t i = 0; i + 1 < nsyms; i++) {
    uint64_t end = syms[i].value + syms[i].size;
    if (syms[i + 1].value > end && syms[i + 1].value - end > best_gap) {
      best_gap = syms[i + 1].value - end;
      best = i;
    }
  }
  ck_assert_uint_gt(best_gap, 64); /* a real static function, not padding */
  uint64_t gap_off = syms[best].value + syms[best].size + best_gap / 2;

  loopsan_symbolizer *sym = loopsan_symbolizer_new();
  add(sym, &m);
  size_t n;
  for (int ret = 0; ret < 2; ret++) {
    const loopsan_frame *f = resolve(sym, m.bias + gap_off, ret, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_msg(f[0].function == NULL, "0x%" PRIx64 " (gap after %s) resolved to %s", gap_off,
                  syms[best].name, f[0].function);
    ck_assert_str_eq(f[0].module, LIBUV_PATH);
    ck_assert_uint_eq(f[0].module_offset, gap_off);
  }
  /* Just past the end of the symbol before the gap: still not it. */
  const loopsan_frame *f = resolve(sym, m.bias + syms[best].value + syms[best].size, 0, &n);
  ck_assert_ptr_null(f[0].function);
  /* Inside an exported function: its name. */
  f = resolve(sym, m.bias + syms[best].value + 1, 1, &n);
  ck_assert_uint_eq(n, 1);
  ck_assert_str_eq(f[0].function, syms[best].name);
  ck_assert_ptr_null(f[0].file);
  loopsan_symbolizer_free(sym);
  free(syms);
  elf_end(elf);
  close(fd);
}
END_TEST

/* libc, looked up like the preload library records it; with libc6-dbg the
 * separate debug file is found by build-id and gives a source line. */
START_TEST(test_libc_debuginfo) {
  void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  ck_assert_ptr_nonnull(libc);
  void *fn = dlsym(libc, "getaddrinfo");
  ck_assert_ptr_nonnull(fn);
  module_info m;
  find_loaded(fn, &m);

  char debug[256];
  int off = snprintf(debug, sizeof debug, "/usr/lib/debug/.build-id/%02x/", m.build_id[0]);
  for (size_t i = 1; i < m.build_id_len; i++)
    off += snprintf(debug + off, sizeof debug - (size_t)off, "%02x", m.build_id[i]);
  snprintf(debug + off, sizeof debug - (size_t)off, ".debug");

  loopsan_symbolizer *sym = loopsan_symbolizer_new();
  add(sym, &m);
  size_t n;
  const loopsan_frame *f = resolve(sym, (uintptr_t)fn, 0, &n);
  ck_assert_str_eq(f[n - 1].function, "getaddrinfo");
  ck_assert_str_eq(f[n - 1].module, m.path);
  if (access(debug, R_OK) == 0) {
    ck_assert_ptr_nonnull(f[0].file);
    ck_assert_int_gt(f[0].line, 0);
  } else {
    fprintf(stderr, "note: %s missing (libc6-dbg), line not checked\n", debug);
  }
  /* The ELF header: libc's debug file has sized symbols of value 0 in
   * non-allocated sections (__evoke_link_warning_*); libdwfl does not
   * relocate those, so they would match low addresses of a module loaded
   * at bias 0 (as a non-PIE executable is). */
  loopsan_symbolizer_reset(sym);
  m.end -= m.bias;
  m.start -= m.bias;
  m.bias = 0;
  add(sym, &m);
  f = resolve(sym, 0x28, 0, &n);
  ck_assert_uint_eq(n, 1);
  ck_assert_ptr_null(f[0].function);
  ck_assert_str_eq(f[0].module, m.path);
  loopsan_symbolizer_free(sym);
  dlclose(libc);
}
END_TEST

/* C++ names are demangled (libstdc++ ships .dynsym only). */
START_TEST(test_cxx_demangle) {
  void *cxx = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
  ck_assert_msg(cxx != NULL, "libstdc++.so.6: %s", dlerror());
  void *fn = dlsym(cxx, "_ZNSt9exceptionD2Ev");
  ck_assert_ptr_nonnull(fn);
  module_info m;
  find_loaded(fn, &m);
  loopsan_symbolizer *sym = loopsan_symbolizer_new();
  add(sym, &m);
  size_t n;
  const loopsan_frame *f = resolve(sym, (uintptr_t)fn, 0, &n);
  ck_assert_uint_eq(n, 1);
  ck_assert_str_eq(f[0].function, "std::exception::~exception()");
  loopsan_symbolizer_free(sym);
  dlclose(cxx);
}
END_TEST

int main(void) {
  Suite *s = suite_create("symbolize");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_inline_chain);
  tcase_add_test(tc, test_wrong_build_id);
  tcase_add_test(tc, test_missing_file);
  tcase_add_test(tc, test_garbage_addresses);
  tcase_add_test(tc, test_libuv_gap);
  tcase_add_test(tc, test_libc_debuginfo);
  tcase_add_test(tc, test_cxx_demangle);
  suite_add_tcase(s, tc);
  return loopsan_unit_run(s);
}
