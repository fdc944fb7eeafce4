#include "analyzer/reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32.h"

size_t loopsan_record_min_size(uint16_t type) {
  switch (type) {
  case LOOPSAN_REC_PROCESS: return sizeof(struct loopsan_rec_process);
  case LOOPSAN_REC_CLOCK: return sizeof(struct loopsan_rec_clock);
  case LOOPSAN_REC_MODULE: return sizeof(struct loopsan_rec_module);
  case LOOPSAN_REC_MODULE_UNLOAD: return sizeof(struct loopsan_rec_module_unload);
  case LOOPSAN_REC_THREAD: return sizeof(struct loopsan_rec_thread);
  case LOOPSAN_REC_STACK: return sizeof(struct loopsan_rec_stack);
  case LOOPSAN_REC_TYPE: return sizeof(struct loopsan_rec_type);
  case LOOPSAN_REC_OBJ_NEW: return LOOPSAN_OBJ_NEW_SIZE_MIN;
  case LOOPSAN_REC_OBJ_OP: return LOOPSAN_OBJ_OP_SIZE_MIN;
  case LOOPSAN_REC_DISPATCH: return sizeof(struct loopsan_rec_dispatch);
  case LOOPSAN_REC_API_ERROR: return sizeof(struct loopsan_rec_api_error);
  case LOOPSAN_REC_LOST: return sizeof(struct loopsan_rec_lost);
  case LOOPSAN_REC_END: return sizeof(struct loopsan_rec_end);
  case LOOPSAN_REC_COUNTS: return sizeof(struct loopsan_rec_counts);
  case LOOPSAN_REC_UNFINISHED: return sizeof(struct loopsan_rec_unfinished);
  case LOOPSAN_REC_CHILD_EXIT: return sizeof(struct loopsan_rec_child_exit);
  case LOOPSAN_REC_BLOCKING: return sizeof(struct loopsan_rec_blocking);
  case LOOPSAN_REC_WRONG_THREAD: return sizeof(struct loopsan_rec_wrong_thread);
  case LOOPSAN_REC_MISUSE: return sizeof(struct loopsan_rec_misuse);
  case LOOPSAN_REC_CRASH: return sizeof(struct loopsan_rec_crash);
  case LOOPSAN_REC_HISTOGRAM: return sizeof(struct loopsan_rec_histogram);
  case LOOPSAN_REC_DISPATCH_SHORT: return sizeof(struct loopsan_rec_dispatch_short);
  default: return 0;
  }
}

/* Bytes a record's variable tail needs beyond its fixed part. */
static uint64_t tail_size(const struct loopsan_record_header *h) {
  switch (h->type) {
  case LOOPSAN_REC_PROCESS: {
    const struct loopsan_rec_process *r = (const void *)h;
    return (uint64_t)r->exe_len + r->argv_len;
  }
  case LOOPSAN_REC_MODULE: {
    const struct loopsan_rec_module *r = (const void *)h;
    return (uint64_t)r->build_id_len + r->path_len;
  }
  case LOOPSAN_REC_THREAD: return ((const struct loopsan_rec_thread *)(const void *)h)->name_len;
  case LOOPSAN_REC_STACK: {
    const struct loopsan_rec_stack *r = (const void *)h;
    return r->nframes > LOOPSAN_STACK_MAX_FRAMES ? UINT64_MAX : (uint64_t)r->nframes * 8u;
  }
  case LOOPSAN_REC_TYPE: return ((const struct loopsan_rec_type *)(const void *)h)->name_len;
  case LOOPSAN_REC_API_ERROR:
    return ((const struct loopsan_rec_api_error *)(const void *)h)->name_len;
  case LOOPSAN_REC_BLOCKING:
    return ((const struct loopsan_rec_blocking *)(const void *)h)->name_len;
  case LOOPSAN_REC_WRONG_THREAD:
    return ((const struct loopsan_rec_wrong_thread *)(const void *)h)->name_len;
  case LOOPSAN_REC_MISUSE: return ((const struct loopsan_rec_misuse *)(const void *)h)->name_len;
  case LOOPSAN_REC_COUNTS: {
    const struct loopsan_rec_counts *r = (const void *)h;
    return (uint64_t)r->n_libraries * 8u + (uint64_t)r->n_types * sizeof(struct loopsan_count);
  }
  default: return 0;
  }
}

/* Validate and deliver the records of one chunk's payload. */
static int read_records(const unsigned char *p, uint32_t len, uint32_t tid, loopsan_record_fn fn,
                        void *ctx, struct loopsan_read_stats *st) {
  if ((uintptr_t)p & 7u) {
    /* A chunk found by resynchronising (or a damaged spill's offset) may
     * start anywhere: records are read as structs, so align a copy. */
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy) {
      st->bad_records++;
      return 0;
    }
    memcpy(copy, p, len);
    int rc = read_records(copy, len, tid, fn, ctx, st);
    free(copy);
    return rc;
  }
  uint32_t off = 0;
  while (off + sizeof(struct loopsan_record_header) <= len) {
    struct loopsan_record_header h;
    memcpy(&h, p + off, sizeof h);
    size_t min = loopsan_record_min_size(h.type);
    if (h.size < sizeof h || (h.size & 7u) || h.size > len - off) {
      st->bad_records++; /* the rest of the chunk cannot be framed */
      return 0;
    }
    const struct loopsan_record_header *rec = (const void *)(p + off);
    if (min == 0 || h.size < min || tail_size(rec) > h.size - min) {
      st->bad_records++; /* unknown type or inconsistent lengths: skip it */
    } else {
      st->records++;
      if (fn(ctx, rec, tid) != 0)
        return 1;
    }
    off += h.size;
  }
  return 0;
}

/* Map PATH read-only (files are read in place, in bounded memory): the
 * mapping, or NULL with err set when it is no regular file of at least
 * MIN_SIZE bytes (WHAT names the kind of file in the message). */
static const unsigned char *map_file(const char *path, size_t min_size, const char *what,
                                     size_t *size_out, char *err, size_t err_len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, err_len, "%s: %s", path, strerror(errno));
    return NULL;
  }
  struct stat sb;
  const unsigned char *map = NULL;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    snprintf(err, err_len, "%s: not a regular file", path);
  } else if ((size_t)sb.st_size < min_size) {
    snprintf(err, err_len, "%s: not a %s (only %zu bytes)", path, what, (size_t)sb.st_size);
  } else {
    map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      snprintf(err, err_len, "%s: cannot map: %s", path, strerror(errno));
      map = NULL;
    }
    *size_out = (size_t)sb.st_size;
  }
  close(fd);
  return map;
}

#define DROP_BEHIND ((size_t)8 << 20)

int loopsan_read_trace(const char *path, loopsan_record_fn fn, void *ctx,
                       struct loopsan_read_stats *st, char *err, size_t err_len) {
  memset(st, 0, sizeof *st);
  struct loopsan_file_header fh;
  size_t size = 0;
  const unsigned char *map = map_file(path, sizeof fh, "loopsan trace", &size, err, err_len);
  if (!map)
    return -1;
  st->file_bytes = size;
  int rc = -1;
  memcpy(&fh, map, sizeof fh);
  if (memcmp(fh.magic, LOOPSAN_TRACE_MAGIC, 8) != 0) {
    snprintf(err, err_len, "%s: not a loopsan trace (bad magic)", path);
    goto out;
  }
  st->version = fh.version;
  uint32_t swapped = __builtin_bswap32(fh.version);
  if (fh.version > LOOPSAN_TRACE_VERSION && swapped >= LOOPSAN_TRACE_VERSION_MIN &&
      swapped <= LOOPSAN_TRACE_VERSION) {
    snprintf(err, err_len,
             "%s: trace written on a machine of the other byte order (format version %u, "
             "big-endian); this loopsan reads little-endian traces",
             path, swapped);
    goto out;
  }
  if (fh.version > LOOPSAN_TRACE_VERSION) {
    snprintf(
        err, err_len,
        "%s: trace format version %u is newer than this loopsan reads (%u); use a newer loopsan",
        path, fh.version, LOOPSAN_TRACE_VERSION);
    goto out;
  }
  if (fh.version < LOOPSAN_TRACE_VERSION_MIN) {
    snprintf(err, err_len,
             "%s: trace format version %u is too old for this loopsan (it reads %u to %u)", path,
             fh.version, LOOPSAN_TRACE_VERSION_MIN, LOOPSAN_TRACE_VERSION);
    goto out;
  }
  if (fh.header_size < sizeof fh || fh.header_size > size) {
    snprintf(err, err_len, "%s: corrupt file header", path);
    goto out;
  }
  /* The mapping's pages already read are dropped as it goes: a trace of
   * any length is read in bounded memory (the records the replay keeps
   * are copies). */
  size_t off = fh.header_size, bad_start = 0, dropped = 0;
  uint64_t max_seq = 0;
  int in_bad_run = 0;
  while (off < size) {
    struct loopsan_chunk_header ch;
    int ok = 0;
    if (size - off >= sizeof ch) {
      memcpy(&ch, map + off, sizeof ch);
      ok = ch.magic == LOOPSAN_CHUNK_MAGIC && ch.size <= LOOPSAN_CHUNK_MAX_PAYLOAD &&
           ch.size <= size - off - sizeof ch &&
           loopsan_crc32c(0, map + off + sizeof ch, ch.size) == ch.crc;
    }
    if (!ok) {
      if (!in_bad_run) {
        st->bad_chunks++;
        bad_start = off;
      }
      in_bad_run = 1;
      st->skipped_bytes++;
      off++; /* resynchronise on the next magic whose CRC checks out */
      continue;
    }
    in_bad_run = 0;
    st->chunks++;
    if (ch.seq > max_seq)
      max_seq = ch.seq;
    if (read_records(map + off + sizeof ch, ch.size, ch.tid, fn, ctx, st))
      break;
    off += sizeof ch + ch.size;
    if (off - dropped >= DROP_BEHIND) { /* read: out of memory (a later read faults it in again) */
      size_t upto = off & ~(size_t)(DROP_BEHIND - 1);
      if (upto > dropped)
        madvise((void *)(map + dropped), upto - dropped, MADV_DONTNEED);
      dropped = upto;
    }
  }
  if (in_bad_run) {
    /* Unreadable bytes up to the end: the writer was cut off mid-chunk. */
    st->bad_chunks--;
    st->skipped_bytes -= size - bad_start;
    st->truncated_bytes = size - bad_start;
  }
  if (st->chunks && max_seq + 1 > st->chunks)
    st->seq_gaps = max_seq + 1 - st->chunks;
  rc = 0;
out:
  munmap((void *)map, size);
  return rc;
}

int loopsan_read_spill(const char *path, loopsan_record_fn fn, void *ctx,
                       struct loopsan_read_stats *st, struct loopsan_spill_header *hdr, char *err,
                       size_t err_len) {
  memset(st, 0, sizeof *st);
  memset(hdr, 0, sizeof *hdr);
  size_t size = 0;
  const unsigned char *map =
      map_file(path, LOOPSAN_SPILL_DATA_OFFSET_V1, "loopsan spill file", &size, err, err_len);
  if (!map)
    return -1;
  int rc = -1;
  struct loopsan_spill_header h;
  memset(&h, 0, sizeof h);
  memcpy(&h, map, size < sizeof h ? size : sizeof h);
  if (memcmp(h.magic, LOOPSAN_SPILL_MAGIC, 8) != 0 || h.version > LOOPSAN_TRACE_VERSION ||
      h.version < LOOPSAN_TRACE_VERSION_MIN) {
    snprintf(err, err_len, "%s: not a loopsan spill file of a known version", path);
    goto out;
  }
  size_t data = LOOPSAN_SPILL_DATA_OFFSET;
  if (h.version == 1) { /* a shorter header: no dispatches in progress, no counts */
    data = LOOPSAN_SPILL_DATA_OFFSET_V1;
    h.depth = 0;
    memset(h.inflight, 0, sizeof h.inflight);
    memset(h.dispatches, 0, sizeof h.dispatches);
  }
  if (size < data) {
    snprintf(err, err_len, "%s: a truncated loopsan spill file", path);
    goto out;
  }
  *hdr = h;
  st->version = h.version;
  st->file_bytes = size;
  size_t avail = size - data;
  uint32_t end = h.end, written = h.written;
  if (h.capacity < avail)
    avail = h.capacity;
  if (end > avail) {
    st->truncated_bytes = end - avail; /* inconsistent: read what is there */
    end = (uint32_t)avail;
  }
  if (written < end)
    read_records(map + data + written, end - written, h.tid, fn, ctx, st);
  rc = 0;
out:
  munmap((void *)map, size);
  return rc;
}
