/* The shim's clock. Two readings per callback are the whole cost of timing
 * it, so on x86-64 with an invariant TSC it is rdtsc (about 12 ns, against
 * about 30 ns for clock_gettime through the vDSO); elsewhere it falls back to
 * CLOCK_MONOTONIC in nanoseconds. CLOCK records in the trace pair the two
 * so the analyzer converts ticks to time. */
#ifndef LOOPSAN_CLOCK_H
#define LOOPSAN_CLOCK_H

#include <stdint.h>
#include <time.h>

extern int loopsan__clock_use_tsc __attribute__((visibility("hidden")));

static inline uint64_t loopsan__mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The clock with its choice made by the caller (TSC: loopsan__clock_use_tsc
 * read once, for the two readings around a callback). */
static inline __attribute__((always_inline)) uint64_t loopsan__now_with(int tsc) {
#if defined(__x86_64__)
  if (tsc) {
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
  }
#else
  (void)tsc;
#endif
  return loopsan__mono_ns();
}

static inline uint64_t loopsan__now(void) {
#if defined(__x86_64__)
  if (__builtin_expect(loopsan__clock_use_tsc, 1)) {
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
  }
#endif
  return loopsan__mono_ns();
}

/* Decide the clock and measure its rate (takes ~2 ms once). */
void loopsan__clock_init(void);
uint64_t loopsan__clock_ticks_per_sec(void);
/* Emit a CLOCK record pairing now() with CLOCK_MONOTONIC. */
void loopsan__clock_emit(void);

#endif
