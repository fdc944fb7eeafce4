/* Offline symbolisation of addresses recorded in a trace, with elfutils libdw.
 *
 * The trace records, per process, the module map (path, load bias, address
 * range, build-id). The analyzer feeds that map here, then asks for frames.
 * Each (module, address) is resolved once and cached: reports ask for the same
 * creation stacks over and over. */
#ifndef LOOPSAN_SYMBOLIZE_H
#define LOOPSAN_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>

/* One frame as SPEC.md section 3 describes it. Strings are owned by the
 * symboliser (valid until loopsan_symbolizer_free); any may be NULL when
 * unknown; line is 0 when unknown. */
typedef struct loopsan_frame {
  const char *function; /* plain symbol name, demangled for C++ */
  const char *file;     /* source path as DWARF records it */
  int line;
  const char *module;     /* path of the ELF module */
  uint64_t address;       /* the runtime address that was asked about */
  uint64_t module_offset; /* address - load bias, for "module+0xoff" */
} loopsan_frame;

typedef struct loopsan_symbolizer loopsan_symbolizer;

loopsan_symbolizer *loopsan_symbolizer_new(void);
void loopsan_symbolizer_free(loopsan_symbolizer *sym);

/* Declare a module mapped in the traced process: its path, the load bias
 * (dl_iterate_phdr's dlpi_addr), the [start, end) runtime range of its
 * PT_LOAD segments and its GNU build-id (may be NULL/0). A module whose file
 * is missing or whose build-id no longer matches is still accepted: addresses
 * in it resolve to module+offset only (never a wrong name).
 * Returns 0, or -1 on allocation failure. */
int loopsan_symbolizer_add_module(loopsan_symbolizer *sym, const char *path, uint64_t bias,
                                  uint64_t start, uint64_t end, const uint8_t *build_id,
                                  size_t build_id_len);

/* Forget every module (a new process's map follows). Cached results of the
 * old map are dropped. Frame arrays and strings already returned stay
 * valid until loopsan_symbolizer_free. (Adding a module also drops cached
 * results for addresses in its range.) */
void loopsan_symbolizer_reset(loopsan_symbolizer *sym);

/* Resolve ADDRESS. IS_RETURN_ADDRESS says it is a return address taken from
 * a stack (so address-1 is looked up, to land inside the call instruction);
 * callback addresses are function entry points and are looked up as they are.
 * On success *FRAMES points to an array of *N frames owned by the symboliser,
 * innermost first: inlined functions come first, each as a frame of its own,
 * and the last one is the out-of-line function containing the address.
 * Always yields at least one frame (an unknown address gives one frame with
 * only address and perhaps module set). Returns 0, or -1 on allocation
 * failure. */
int loopsan_symbolize(loopsan_symbolizer *sym, uint64_t address, int is_return_address,
                      const loopsan_frame **frames, size_t *n);

#endif
