/* Keeping the shim's file descriptors out of the program's way.
 *
 * libunwind validates memory through a pipe when it unwinds a frame that
 * has no unwind tables, and keeps that pipe open under whatever numbers the
 * kernel gave it: low ones, the program's. A daemon that closes every fd
 * and opens its own files would then have libunwind read from and write
 * into them. The pipe libunwind asks for is therefore moved above 1000,
 * (LOOPSAN_HIGH_FD_MIN), where the trace file also lives; every other
 * caller's pipe is untouched. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "preload/shim.h"

static struct loopsan_library_ref unwind_lib = {.soname_prefix = "libunwind.so"};

static int from_libunwind(uintptr_t ra) {
  if (LOOPSAN_UNLIKELY(!atomic_load_explicit(&unwind_lib.end, memory_order_relaxed)))
    loopsan__learn_range(&unwind_lib, (uintptr_t)&unw_backtrace);
  return loopsan__in_range(&unwind_lib, ra);
}

static void move_high(int fds[2]) {
  for (int i = 0; i < 2; i++)
    fds[i] = loopsan__fd_move_high(fds[i]);
}

LOOPSAN_INTERPOSE int pipe2(int fds[2], int flags) {
  static int (*real)(int[2], int);
  if (LOOPSAN_UNLIKELY(!real)) {
    int saved = errno;
    real = (int (*)(int[2], int))dlsym(RTLD_NEXT, "pipe2");
    errno = saved;
    if (!real) {
      errno = ENOSYS;
      return -1;
    }
  }
  int rc = real(fds, flags);
  if (rc == 0 && from_libunwind((uintptr_t)__builtin_return_address(0))) {
    int saved = errno;
    move_high(fds);
    errno = saved;
  }
  return rc;
}

LOOPSAN_INTERPOSE int pipe(int fds[2]) {
  static int (*real)(int[2]);
  if (LOOPSAN_UNLIKELY(!real)) {
    int saved = errno;
    real = (int (*)(int[2]))dlsym(RTLD_NEXT, "pipe");
    errno = saved;
    if (!real) {
      errno = ENOSYS;
      return -1;
    }
  }
  int rc = real(fds);
  if (rc == 0 && from_libunwind((uintptr_t)__builtin_return_address(0))) {
    int saved = errno;
    move_high(fds);
    errno = saved;
  }
  return rc;
}
