/* Offline symbolisation with elfutils libdwfl (see symbolize.h).
 *
 * Each module gets its own Dwfl, opened lazily on the first address that
 * falls in it: a trace lists every mapped library, but reports usually touch
 * a handful, and a private Dwfl means a module rejected for a build-id
 * mismatch can simply be dropped without disturbing the others.
 *
 * Every string handed out (names, files, module paths) and every frame array
 * lives in an arena owned by the symboliser and freed only by
 * loopsan_symbolizer_free, so pointers stay valid across a reset; the Dwfl
 * handles (whose strings libdw owns) can then be closed freely. */
#define _POSIX_C_SOURCE 200809L

#include "symbolize.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK_SIZE (64 * 1024)

typedef struct arena_block {
  struct arena_block *next;
  size_t used, cap;
  max_align_t data[]; /* max_align_t so every bump allocation is aligned */
} arena_block;

typedef struct cache_slot {
  uint64_t address;
  int is_return;
  size_t n;
  const loopsan_frame *frames; /* NULL marks an empty slot */
} cache_slot;

typedef enum { MOD_UNOPENED, MOD_USABLE, MOD_UNUSABLE } module_state;

typedef struct sym_module {
  const char *path; /* interned */
  uint64_t bias, start, end;
  uint8_t *build_id;
  size_t build_id_len;
  module_state state;
  Dwfl *dwfl;
  Dwfl_Module *mod;
} sym_module;

typedef char *(*demangle_fn)(const char *, char *, size_t *, int *);

struct loopsan_symbolizer {
  arena_block *arena;
  const char **strings; /* open-addressing set of interned strings */
  size_t strings_cap, strings_count;
  cache_slot *cache;
  size_t cache_cap, cache_count;
  sym_module *modules;
  size_t n_modules, modules_cap;
  /* __cxa_demangle is looked up in libstdc++ at run time, only once a
   * mangled name shows up, so the library itself stays plain C. */
  void *libstdcxx;
  demangle_fn demangle;
  bool demangle_tried;
};

/* Offline: no process to attach to, only files. debuginfo_path NULL means
 * the default ":.debug:/usr/lib/debug", which covers .build-id/xx/yyy.debug
 * and .gnu_debuglink lookups. */
static const Dwfl_Callbacks offline_callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = NULL,
};

/* ---- arena and string interning ---------------------------------------- */

static void *arena_alloc(loopsan_symbolizer *sym, size_t size) {
  const size_t align = _Alignof(max_align_t);
  size = (size + align - 1) / align * align;
  arena_block *b = sym->arena;
  if (b == NULL || b->cap - b->used < size) {
    size_t cap = size > ARENA_BLOCK_SIZE ? size : ARENA_BLOCK_SIZE;
    b = malloc(sizeof *b + cap);
    if (b == NULL)
      return NULL;
    b->used = 0;
    b->cap = cap;
    /* An oversized block goes behind the head so the head's free space
     * is not wasted. */
    if (size > ARENA_BLOCK_SIZE && sym->arena != NULL) {
      b->next = sym->arena->next;
      sym->arena->next = b;
    } else {
      b->next = sym->arena;
      sym->arena = b;
    }
  }
  void *p = (char *)b->data + b->used;
  b->used += size;
  return p;
}

static uint64_t hash_string(const char *s) {
  uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 0x100000001b3u;
  return h;
}

static int strings_grow(loopsan_symbolizer *sym) {
  size_t cap = sym->strings_cap ? sym->strings_cap * 2 : 256;
  const char **slots = calloc(cap, sizeof *slots);
  if (slots == NULL)
    return -1;
  for (size_t i = 0; i < sym->strings_cap; i++) {
    const char *s = sym->strings[i];
    if (s == NULL)
      continue;
    size_t j = hash_string(s) & (cap - 1);
    while (slots[j] != NULL)
      j = (j + 1) & (cap - 1);
    slots[j] = s;
  }
  free(sym->strings);
  sym->strings = slots;
  sym->strings_cap = cap;
  return 0;
}

/* Returns the symboliser's copy of S; NULL if S is NULL or on allocation
 * failure (callers tell the two apart by S). */
static const char *intern(loopsan_symbolizer *sym, const char *s) {
  if (s == NULL)
    return NULL;
  if (2 * (sym->strings_count + 1) > sym->strings_cap && strings_grow(sym) != 0)
    return NULL;
  size_t j = hash_string(s) & (sym->strings_cap - 1);
  for (; sym->strings[j] != NULL; j = (j + 1) & (sym->strings_cap - 1))
    if (strcmp(sym->strings[j], s) == 0)
      return sym->strings[j];
  size_t len = strlen(s) + 1;
  char *copy = arena_alloc(sym, len);
  if (copy == NULL)
    return NULL;
  memcpy(copy, s, len);
  sym->strings[j] = copy;
  sym->strings_count++;
  return copy;
}

/* Interns NAME, demangled if it is an Itanium C++ name and a demangler is
 * available; otherwise the mangled name is kept (still a correct name). */
static const char *intern_function(loopsan_symbolizer *sym, const char *name) {
  if (name == NULL || name[0] == '\0')
    return NULL;
  if (name[0] != '_' || name[1] != 'Z')
    return intern(sym, name);
  if (!sym->demangle_tried) {
    sym->demangle_tried = true;
    sym->libstdcxx = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
    if (sym->libstdcxx != NULL) {
      void *p = dlsym(sym->libstdcxx, "__cxa_demangle");
      /* memcpy: ISO C has no object-to-function pointer conversion. */
      if (p != NULL)
        memcpy(&sym->demangle, &p, sizeof sym->demangle);
    }
  }
  if (sym->demangle != NULL) {
    int status = -1;
    char *plain = sym->demangle(name, NULL, NULL, &status);
    if (plain != NULL && status == 0) {
      const char *r = intern(sym, plain);
      free(plain);
      return r;
    }
    free(plain);
  }
  return intern(sym, name);
}

/* ---- modules ----------------------------------------------------------- */

static void module_close(sym_module *m) {
  if (m->dwfl != NULL)
    dwfl_end(m->dwfl);
  free(m->build_id);
  memset(m, 0, sizeof *m);
}

/* Opens M's file in a fresh Dwfl. Any failure, including a build-id that
 * differs from the recorded one (the file was upgraded since the trace),
 * leaves M unusable: its addresses then get module+offset only. */
static void module_open(sym_module *m) {
  m->state = MOD_UNUSABLE;
  if (m->path == NULL)
    return;
  Dwfl *dwfl = dwfl_begin(&offline_callbacks);
  if (dwfl == NULL)
    return;
  dwfl_report_begin(dwfl);
  /* add_p_vaddr = true: BASE is then the load bias (dlpi_addr) even when
   * the first PT_LOAD has a non-zero p_vaddr; with false, BASE would be the
   * address of that first segment. Ignored for ET_EXEC. */
  Dwfl_Module *mod = dwfl_report_elf(dwfl, m->path, m->path, -1, (GElf_Addr)m->bias, true);
  if (dwfl_report_end(dwfl, NULL, NULL) != 0 || mod == NULL)
    goto fail;
  if (m->build_id_len > 0) {
    const unsigned char *bits = NULL;
    GElf_Addr vaddr;
    int len = dwfl_module_build_id(mod, &bits, &vaddr);
    if (len <= 0 || (size_t)len != m->build_id_len ||
        memcmp(bits, m->build_id, m->build_id_len) != 0)
      goto fail;
  }
  m->dwfl = dwfl;
  m->mod = mod;
  m->state = MOD_USABLE;
  return;
fail:
  dwfl_end(dwfl);
}

static sym_module *find_module(loopsan_symbolizer *sym, uint64_t addr) {
  /* Newest first: if the map overlaps (dlclose then dlopen), the later
   * entry describes the later mapping. */
  for (size_t i = sym->n_modules; i-- > 0;) {
    sym_module *m = &sym->modules[i];
    if (addr >= m->start && addr < m->end)
      return m;
  }
  return NULL;
}

/* ---- DWARF helpers ----------------------------------------------------- */

/* Name of a subprogram or inlined subroutine. dwarf_attr_integrate follows
 * DW_AT_abstract_origin and DW_AT_specification, where inlined instances
 * and C++ member definitions keep their names. A mangled linkage name wins
 * (C++: qualified and demangled later); a plain one is only an asm label
 * (glibc's "__GI_getaddrinfo"), so DW_AT_name, the source name, wins then. */
static const char *die_function_name(Dwarf_Die *die) {
  Dwarf_Attribute attr;
  const char *linkage = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
  if (linkage == NULL)
    linkage = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
  if (linkage != NULL && linkage[0] == '_' && linkage[1] == 'Z')
    return linkage;
  const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr));
  return name != NULL ? name : linkage;
}

/* Where the inlined subroutine DIE was called from. DW_AT_call_file indexes
 * the file table of the unit that holds the DIE. */
static void die_call_site(Dwarf_Die *die, const char **file, int *line) {
  Dwarf_Attribute attr;
  Dwarf_Word v;
  Dwarf_Die cu;
  Dwarf_Files *files;
  size_t nfiles;
  *file = NULL;
  *line = 0;
  if (dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &attr), &v) == 0 &&
      dwarf_diecu(die, &cu, NULL, NULL) != NULL && dwarf_getsrcfiles(&cu, &files, &nfiles) == 0 &&
      v < nfiles)
    *file = dwarf_filesrc(files, v, NULL, NULL);
  if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &attr), &v) == 0 && v <= INT_MAX)
    *line = (int)v;
}

/* The unit DIE covering ADDR (a runtime address); *BIAS converts to libdw
 * addresses. libdw 0.188 finds units only through .debug_aranges, which
 * clang does not emit: then the units' own ranges are scanned. With split
 * DWARF the skeleton has only ranges; the DIEs are in the split unit. */
static bool find_cu(Dwfl_Module *mod, Dwarf_Addr addr, Dwarf_Die *out, Dwarf_Addr *bias) {
  Dwarf_Die *cu = dwfl_module_addrdie(mod, addr, bias);
  uint8_t type = 0;
  /* libdw may hand back a unit that does not cover ADDR (crt1's _start,
   * which has no DWARF, came back as the unit of main): check. */
  if (cu != NULL && dwarf_haspc(cu, addr - *bias) > 0) {
    *out = *cu;
  } else {
    Dwarf *dw = dwfl_module_getdwarf(mod, bias);
    Dwarf_CU *it = NULL;
    bool found = false;
    while (dw != NULL && !found && dwarf_get_units(dw, it, &it, NULL, &type, out, NULL) == 0)
      found =
          (type == DW_UT_compile || type == DW_UT_skeleton) && dwarf_haspc(out, addr - *bias) > 0;
    if (!found)
      return false;
  }
  Dwarf_Die split;
  memset(&split, 0, sizeof split);
  if (dwarf_cu_info(out->cu, NULL, &type, NULL, &split, NULL, NULL, NULL) == 0 &&
      type == DW_UT_skeleton && split.cu != NULL && dwarf_tag(&split) == DW_TAG_compile_unit)
    *out = split;
  return true;
}

/* ELF symbol containing ADDR, or NULL. Debian's libuv and friends ship only
 * .dynsym: an address in a static function must not be blamed on the
 * exported symbol before it, so the address has to lie inside the symbol
 * (or be exactly a size-0 symbol's value). */
static const char *elf_symbol(Dwfl_Module *mod, uint64_t addr) {
  GElf_Off off = 0;
  GElf_Sym esym;
  GElf_Word shndx = SHN_UNDEF;
  const char *name = dwfl_module_addrinfo(mod, addr, &off, &esym, &shndx, NULL, NULL);
  if (name == NULL || name[0] == '\0')
    return NULL;
  if (esym.st_size == 0 ? off != 0 : off >= esym.st_size)
    return NULL;
  /* libdwfl gives shndx -1 for a symbol of a non-allocated section and
   * leaves its value unrelocated: libc's __evoke_link_warning_* (value 0)
   * would claim the ELF header of a module at bias 0. */
  if (shndx == (GElf_Word)-1 || shndx == SHN_ABS)
    return NULL;
  return name;
}

/* True if interning IN failed for lack of memory. */
static bool lost(const char *in, const char *out) {
  return in != NULL && in[0] != '\0' && out == NULL;
}

/* ---- resolution -------------------------------------------------------- */

/* Fills the frames for ADDRESS (looked up at LOOKUP) into an arena array.
 * Inline chain: dwarf_getscopes finds the innermost concrete scope at the
 * PC, but past the first inlined subroutine it continues into that
 * function's abstract definition; dwarf_getscopes_die on that innermost
 * scope instead gives its concrete nesting: each enclosing inlined
 * subroutine up to the out-of-line subprogram. */
static int resolve(loopsan_symbolizer *sym, uint64_t address, uint64_t lookup,
                   const loopsan_frame **out, size_t *n_out) {
  int rc = -1;
  Dwarf_Die *scopes = NULL, *chain = NULL;
  char *unversioned = NULL;
  int nchain = 0;
  loopsan_frame base = {.address = address};
  const char *line_file = NULL, *outer_name = NULL;
  int line_no = 0;
  Dwarf_Die *subprogram = NULL;
  size_t n_inlined = 0, n, k;
  Dwfl_Module *mod = NULL;
  loopsan_frame *frames;
  const char *file;
  int line;

  sym_module *m = find_module(sym, lookup);
  if (m != NULL) {
    base.module = m->path;
    base.module_offset = address - m->bias;
    if (m->state == MOD_UNOPENED)
      module_open(m);
    /* The file's segments may not cover all of the recorded range. */
    if (m->state == MOD_USABLE && dwfl_addrmodule(m->dwfl, lookup) == m->mod)
      mod = m->mod;
  }

  if (mod != NULL) {
    Dwarf_Addr dbias = 0;
    Dwarf_Die cudie;
    if (find_cu(mod, lookup, &cudie, &dbias)) {
      Dwarf_Line *l = dwarf_getsrc_die(&cudie, lookup - dbias);
      line_file = l != NULL ? dwarf_linesrc(l, NULL, NULL) : NULL;
      if (line_file == NULL || dwarf_lineno(l, &line_no) != 0)
        line_no = 0;
      if (dwarf_getscopes(&cudie, lookup - dbias, &scopes) > 0) {
        Dwarf_Die innermost = scopes[0];
        nchain = dwarf_getscopes_die(&innermost, &chain);
      }
    }
    for (int i = 0; i < nchain; i++) {
      int tag = dwarf_tag(&chain[i]);
      if (tag == DW_TAG_subprogram) {
        subprogram = &chain[i];
        break;
      }
      if (tag == DW_TAG_inlined_subroutine)
        n_inlined++;
    }
    /* DWARF first: it gives the source name where the symbol table has
     * "foo.constprop.0" or "glob64@@GLIBC_2.27". */
    if (subprogram != NULL)
      outer_name = die_function_name(subprogram);
    if (outer_name == NULL) {
      outer_name = elf_symbol(mod, lookup);
      /* Versioned .symtab names (glibc's debug files): drop "@VER". */
      const char *at = outer_name ? strchr(outer_name, '@') : NULL;
      if (at != NULL && at != outer_name) {
        unversioned = strndup(outer_name, (size_t)(at - outer_name));
        if (unversioned == NULL)
          goto cleanup;
        outer_name = unversioned;
      }
    }
  }

  n = n_inlined + 1;
  frames = arena_alloc(sym, n * sizeof *frames);
  if (frames == NULL)
    goto cleanup;
  file = line_file;
  line = line_no;
  k = 0;
  for (int i = 0; k < n_inlined; i++) {
    if (dwarf_tag(&chain[i]) != DW_TAG_inlined_subroutine)
      continue;
    const char *name = die_function_name(&chain[i]);
    frames[k] = base;
    frames[k].function = intern_function(sym, name);
    frames[k].file = intern(sym, file);
    frames[k].line = line;
    if (lost(name, frames[k].function) || lost(file, frames[k].file))
      goto cleanup;
    /* The next frame out is positioned at this inline's call site. */
    die_call_site(&chain[i], &file, &line);
    k++;
  }
  frames[k] = base;
  /* A function's entry (a callback pointer): name where it is declared,
   * as Python does for a callback, not the line its first instruction
   * happens to belong to. */
  if (address == lookup && n_inlined == 0 && subprogram != NULL) {
    int decl_line = 0;
    const char *decl_file = dwarf_decl_file(subprogram);
    if (decl_file != NULL && dwarf_decl_line(subprogram, &decl_line) == 0 && decl_line > 0) {
      file = decl_file;
      line = decl_line;
    }
  }
  if (mod != NULL) {
    frames[k].function = intern_function(sym, outer_name);
    frames[k].file = intern(sym, file);
    frames[k].line = line;
    if (lost(outer_name, frames[k].function) || lost(file, frames[k].file))
      goto cleanup;
  }
  *out = frames;
  *n_out = n;
  rc = 0;
cleanup:
  free(unversioned);
  free(scopes);
  free(chain);
  return rc;
}

/* ---- cache ------------------------------------------------------------- */

static size_t cache_index(const loopsan_symbolizer *sym, uint64_t address, int is_return) {
  uint64_t h = address ^ (uint64_t)is_return; /* splitmix64 finaliser */
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9u;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebu;
  h ^= h >> 31;
  return (size_t)h & (sym->cache_cap - 1);
}

static cache_slot *cache_find(loopsan_symbolizer *sym, uint64_t address, int is_return) {
  if (sym->cache_cap == 0)
    return NULL;
  size_t j = cache_index(sym, address, is_return);
  for (; sym->cache[j].frames != NULL; j = (j + 1) & (sym->cache_cap - 1))
    if (sym->cache[j].address == address && sym->cache[j].is_return == is_return)
      return &sym->cache[j];
  return &sym->cache[j]; /* the empty slot where it would go */
}

/* Rebuilds the cache with CAP slots, dropping entries whose lookup address
 * lies in [DROP_START, DROP_END). */
static int cache_rehash(loopsan_symbolizer *sym, size_t cap, uint64_t drop_start,
                        uint64_t drop_end) {
  size_t old_cap = sym->cache_cap;
  cache_slot *old = sym->cache;
  sym->cache = calloc(cap, sizeof *sym->cache);
  if (sym->cache == NULL) {
    sym->cache = old;
    return -1;
  }
  sym->cache_cap = cap;
  sym->cache_count = 0;
  for (size_t i = 0; i < old_cap; i++) {
    if (old[i].frames == NULL)
      continue;
    uint64_t lookup = old[i].address - (old[i].is_return && old[i].address);
    if (lookup >= drop_start && lookup < drop_end)
      continue;
    *cache_find(sym, old[i].address, old[i].is_return) = old[i];
    sym->cache_count++;
  }
  free(old);
  return 0;
}

/* ---- public API -------------------------------------------------------- */

loopsan_symbolizer *loopsan_symbolizer_new(void) { return calloc(1, sizeof(loopsan_symbolizer)); }

void loopsan_symbolizer_reset(loopsan_symbolizer *sym) {
  if (sym == NULL)
    return;
  for (size_t i = 0; i < sym->n_modules; i++)
    module_close(&sym->modules[i]);
  sym->n_modules = 0;
  if (sym->cache != NULL)
    memset(sym->cache, 0, sym->cache_cap * sizeof *sym->cache);
  sym->cache_count = 0;
}

void loopsan_symbolizer_free(loopsan_symbolizer *sym) {
  if (sym == NULL)
    return;
  loopsan_symbolizer_reset(sym);
  free(sym->modules);
  free(sym->cache);
  free(sym->strings);
  while (sym->arena != NULL) {
    arena_block *next = sym->arena->next;
    free(sym->arena);
    sym->arena = next;
  }
  if (sym->libstdcxx != NULL)
    dlclose(sym->libstdcxx);
  free(sym);
}

int loopsan_symbolizer_add_module(loopsan_symbolizer *sym, const char *path, uint64_t bias,
                                  uint64_t start, uint64_t end, const uint8_t *build_id,
                                  size_t build_id_len) {
  if (sym->n_modules == sym->modules_cap) {
    size_t cap = sym->modules_cap ? sym->modules_cap * 2 : 16;
    sym_module *mods = realloc(sym->modules, cap * sizeof *mods);
    if (mods == NULL)
      return -1;
    sym->modules = mods;
    sym->modules_cap = cap;
  }
  sym_module m = {.bias = bias, .start = start, .end = end, .state = MOD_UNOPENED};
  m.path = intern(sym, path);
  if (path != NULL && m.path == NULL)
    return -1;
  if (build_id != NULL && build_id_len > 0) {
    m.build_id = malloc(build_id_len);
    if (m.build_id == NULL)
      return -1;
    memcpy(m.build_id, build_id, build_id_len);
    m.build_id_len = build_id_len;
  }
  sym->modules[sym->n_modules++] = m;
  /* Addresses in its range resolved before it was known are stale. */
  if (sym->cache_count > 0 && cache_rehash(sym, sym->cache_cap, start, end) != 0)
    return -1;
  return 0;
}

int loopsan_symbolize(loopsan_symbolizer *sym, uint64_t address, int is_return_address,
                      const loopsan_frame **frames, size_t *n) {
  int is_return = is_return_address ? 1 : 0;
  if (2 * (sym->cache_count + 1) > sym->cache_cap &&
      cache_rehash(sym, sym->cache_cap ? sym->cache_cap * 2 : 1024, 0, 0) != 0)
    return -1;
  cache_slot *slot = cache_find(sym, address, is_return);
  if (slot->frames == NULL) {
    /* A return address points after the call; address-1 is inside it, so
     * the right line and inline chain are found. */
    uint64_t lookup = is_return && address > 0 ? address - 1 : address;
    const loopsan_frame *f;
    size_t count;
    if (resolve(sym, address, lookup, &f, &count) != 0)
      return -1;
    slot->address = address;
    slot->is_return = is_return;
    slot->frames = f;
    slot->n = count;
    sym->cache_count++;
  }
  *frames = slot->frames;
  *n = slot->n;
  return 0;
}
