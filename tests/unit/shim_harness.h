/* Links pieces of the shim into unit tests without its constructor:
 * provides the core's globals and sets up a trace directory. */
#ifndef LOOPSAN_SHIM_HARNESS_H
#define LOOPSAN_SHIM_HARNESS_H

/* Fresh temporary trace directory, options defaulted, writer open. Returns
 * the directory (static storage). */
const char *harness_start(unsigned stack_depth);
/* The trace file the writer created in it. */
const char *harness_trace_path(void);
void harness_cleanup(void);

#endif
