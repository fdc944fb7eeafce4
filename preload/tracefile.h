/* The trace file and spill files (tracefile.c), for writer.c. */
#ifndef LOOPSAN_TRACEFILE_H
#define LOOPSAN_TRACEFILE_H

#include <stddef.h>
#include <stdint.h>

/* Create this process image's trace file and write its file header. */
int loopsan__trace_create(void);
int loopsan__trace_is_open(void);
/* Append one chunk (header + CRC computed here). 0, or -1 if it is lost. */
int loopsan__trace_write_chunk(uint32_t tid, const void *payload, uint32_t len);
/* The process's last records follow (END, counts): they may use the room
 * kept for them after recording stopped on a full file system. */
void loopsan__trace_final(void);
/* Did recording stop (no room left on the trace's file system)? */
int loopsan__trace_stopped(void);
/* Create the next spill file of SIZE bytes (blocks reserved); returns an fd
 * or -1, and its number in *index. */
int loopsan__spill_create(size_t size, unsigned *index);
/* At a normal end, when everything is in the trace file. */
void loopsan__spill_remove_all(void);
/* In a forked child: forget the parent's files. */
void loopsan__trace_atfork_child(void);

#endif
