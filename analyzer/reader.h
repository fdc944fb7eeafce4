/* Reading a trace file: validates the file header, every chunk (magic,
 * size, CRC) and every record (size, type, lengths of its tails), hands the
 * valid records to a callback in file order, and counts what it had to skip.
 * A torn or corrupt chunk is skipped by scanning for the next chunk magic
 * whose CRC checks out; a truncated tail is reported, never fatal. */
#ifndef LOOPSAN_READER_H
#define LOOPSAN_READER_H

#include <stddef.h>
#include <stdint.h>

#include "common/trace_format.h"

struct loopsan_read_stats {
  uint32_t version;
  uint64_t file_bytes;
  uint64_t chunks;          /* valid chunks read */
  uint64_t records;         /* valid records passed on */
  uint64_t bad_chunks;      /* chunks skipped for a bad CRC, size or magic */
  uint64_t skipped_bytes;   /* bytes not read as part of any valid chunk */
  uint64_t bad_records;     /* malformed records inside otherwise valid chunks */
  uint64_t truncated_bytes; /* an incomplete last chunk (process killed mid-write) */
  uint64_t seq_gaps;        /* chunks missing by sequence number */
};

/* Called per valid record; REC points into the mapped file and is valid
 * only during the call. A non-zero return stops reading. */
typedef int (*loopsan_record_fn)(void *ctx, const struct loopsan_record_header *rec, uint32_t tid);

/* Returns 0 when the file was read (possibly with losses counted in
 * *stats); -1 when it is not a loopsan trace or cannot be read at all, with
 * a message in err. */
int loopsan_read_trace(const char *path, loopsan_record_fn fn, void *ctx,
                       struct loopsan_read_stats *stats, char *err, size_t err_len);

/* Read the records a killed process left in a spill file (trace_format.h):
 * those in [written, end) of its buffer, not yet in the trace file; *hdr
 * gets the spill header (what the thread was inside of, its counts). Same
 * contract as loopsan_read_trace; stats->records counts what was recovered. */
int loopsan_read_spill(const char *path, loopsan_record_fn fn, void *ctx,
                       struct loopsan_read_stats *stats, struct loopsan_spill_header *hdr,
                       char *err, size_t err_len);

/* Minimum size of each record type; 0 for unknown types. */
size_t loopsan_record_min_size(uint16_t type);

#endif
