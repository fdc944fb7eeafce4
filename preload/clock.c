#include "preload/clock.h"

#include <cpuid.h>

#include "preload/shim.h"

int loopsan__clock_use_tsc;
static uint64_t ticks_per_sec = 1000000000u;
static uint64_t base_ticks, base_ns;

static int has_invariant_tsc(void) {
#if defined(__x86_64__)
  unsigned a, b, c, d;
  if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u)
    return 0;
  __get_cpuid(0x80000007u, &a, &b, &c, &d);
  return (d >> 8) & 1u;
#else
  return 0;
#endif
}

void loopsan__clock_init(void) {
  loopsan__clock_use_tsc = has_invariant_tsc();
  if (!loopsan__clock_use_tsc)
    return;
  /* Calibrate over ~2 ms; CLOCK records refine the rate once a second. */
  uint64_t n0 = loopsan__mono_ns(), t0 = loopsan__now(), n1, t1;
  do {
    n1 = loopsan__mono_ns();
    t1 = loopsan__now();
  } while (n1 - n0 < 2000000u);
  if (t1 <= t0) {
    loopsan__clock_use_tsc = 0;
    return;
  }
  ticks_per_sec = (uint64_t)((double)(t1 - t0) * 1e9 / (double)(n1 - n0));
  base_ticks = t0;
  base_ns = n0;
}

uint64_t loopsan__clock_ticks_per_sec(void) { return ticks_per_sec; }

void loopsan__clock_emit(void) {
  struct loopsan_rec_clock r = {0};
  r.mono_ns = loopsan__mono_ns();
  r.ts = loopsan__now();
  if (loopsan__clock_use_tsc && r.mono_ns > base_ns + 100000000u && r.ts > base_ticks)
    ticks_per_sec = (uint64_t)((double)(r.ts - base_ticks) * 1e9 / (double)(r.mono_ns - base_ns));
  r.ticks_per_sec = ticks_per_sec;
  loopsan__emit(LOOPSAN_REC_CLOCK, &r, sizeof r);
}
