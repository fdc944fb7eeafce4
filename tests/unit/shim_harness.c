#include "tests/unit/shim_harness.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload/shim.h"

struct loopsan_shim_state loopsan__state;

uint32_t loopsan__tid(void) { return (uint32_t)syscall(SYS_gettid); }

/* The harness is not a shared object: treat the test binary's own frames of
 * the shim's source files as "self" by address range of loopsan__stack_capture. */
extern uint32_t loopsan__stack_capture(void) __attribute__((weak));

int loopsan__is_self(uintptr_t addr) {
  uintptr_t f = (uintptr_t)&loopsan__stack_capture;
  if (!f)
    return 0;
  return addr >= f && addr < f + 0x1000; /* the capture function itself */
}

static char dir[256], trace[600];

const char *harness_start(unsigned stack_depth) {
  loopsan_options_default(&loopsan__state.opts);
  loopsan__state.opts.stack_depth = stack_depth;
  snprintf(dir, sizeof dir, "%s/loopsan-unit.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(dir))
    abort();
  snprintf(loopsan__state.opts.trace_dir, sizeof loopsan__state.opts.trace_dir, "%s", dir);
  loopsan__clock_init();
  loopsan__state.pid = (uint32_t)getpid();
  loopsan__state.active = 1;
  if (loopsan__writer_open() != 0)
    abort();
  snprintf(trace, sizeof trace, "%s/loopsan.%d.trace", dir, (int)getpid());
  return dir;
}

const char *harness_trace_path(void) { return trace; }

void harness_cleanup(void) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char p[900];
  while (d && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
  }
  if (d)
    closedir(d);
  rmdir(dir);
}
