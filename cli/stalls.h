/* Stall samples taken by `loopsan run` (cli/stalls.c). */
#ifndef LOOPSAN_CLI_STALLS_H
#define LOOPSAN_CLI_STALLS_H
#include <sys/types.h>

/* Watch the traces written to TRACE_DIR; a dispatch in flight for SLOW_MS
 * is sampled once. */
void loopsan_stalls_init(const char *trace_dir, unsigned slow_ms);
/* Look at every traced thread once (every 20 ms or so). */
void loopsan_stalls_tick(void);
void loopsan_stalls_done(void);
/* A process that a sample's wait reaped (it died while being stopped):
 * 1 with its pid and wait status, for the front end's reaper; 0 if none. */
int loopsan_stalls_take_reaped(pid_t *pid, int *status);

#endif
