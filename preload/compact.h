/* Leaving out, at write-out, the records of objects that lived and ended
 * well inside one buffer (compact.c). */
#ifndef LOOPSAN_COMPACT_H
#define LOOPSAN_COMPACT_H

#include <stddef.h>
#include <stdint.h>

/* Returns the length of the records to write and points *OUT at them
 * (IN itself, or a scratch copy). When *OUT is not IN, the scratch stays
 * locked until loopsan__compact_done(*OUT). */
size_t loopsan__compact(const unsigned char *in, size_t len, const unsigned char **out);
void loopsan__compact_done(const unsigned char *out);
void loopsan__compact_atfork_child(void);

/* OBJ's records must be kept wherever they are (evidence another thread
 * found on it, such as a wrong-thread call). */
void loopsan__compact_keep(uint64_t obj);

#endif
