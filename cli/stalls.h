/* Stall samples taken by `loopsan run` (cli/stalls.c). */
#ifndef LOOPSAN_CLI_STALLS_H
#define LOOPSAN_CLI_STALLS_H

/* Watch the traces written to TRACE_DIR; a dispatch in flight for SLOW_MS
 * is sampled once. */
void loopsan_stalls_init(const char *trace_dir, unsigned slow_ms);
/* Look at every traced thread once (every 20 ms or so). */
void loopsan_stalls_tick(void);
void loopsan_stalls_done(void);

#endif
