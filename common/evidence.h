/* What may be left out of a trace, declared once for the shim and the
 * analyzer. In record mode "findings" the shim's compaction (preload/
 * compact.c) drops, at write-out, every record of an object whose whole
 * life is inside the buffer and says nothing a rule could use. What a
 * record says of its object is decided here; the analyzer's rules rely on
 * exactly this, and tests/unit/test_compact.c checks for every finding
 * kind that compaction never removes what the kind needs.
 *
 * Kinds and the evidence that keeps their object's records:
 *   slow-callback     a DISPATCH record (every one written is slow)  KEEP
 *   blocking-call     a BLOCKING record                               KEEP
 *   wrong-thread      a WRONG_THREAD record (on an object that may end well)  KEEP
 *   never-started     no START or USE before the end                  (no USE)
 *   pending-at-exit   the object never ends                           (no END)
 *   unclosed-handle   the object never ends                           (no END)
 *   unclosed-loop     the loop never ends                             (no END)
 *   a watcher still active when its loop was destroyed: the loop    KEEP
 *   a source destroyed with its loop: CLOSED with WITH_LOOP           KEEP
 *   an async chain: the objects whose callbacks made a kept object
 *     (OBJ_NEW's parent) are kept with it (compact.c follows parents)
 *   a failed call     an API_ERROR record                             KEEP
 *   a request that failed  COMPLETE with a negative status            KEEP
 * A kind whose evidence lives on an object that ended well (a wrong-thread
 * call, a double close) must mark its records KEEP here; when the evidence
 * is found on another thread than the one whose buffer holds the object's
 * records, the shim names the object to loopsan__compact_keep (compact.h). A kind that needs
 * more than the last START, STOP, FIRED, USE or CALLBACK of an object in
 * a write-out (how many starts) must take that op out of
 * loopsan_record_supersede_kind. */
#ifndef LOOPSAN_EVIDENCE_H
#define LOOPSAN_EVIDENCE_H

#include <errno.h>
#include <stdint.h>

#include "common/trace_format.h"

enum loopsan_evidence {
  LOOPSAN_EV_NEW = 1,  /* the object was created */
  LOOPSAN_EV_USE = 2,  /* started or put to work */
  LOOPSAN_EV_END = 4,  /* closed, freed or completed */
  LOOPSAN_EV_KEEP = 8, /* evidence for a finding: never drop the object */
};

/* The object REC is about (0: none) and what it says of it (*marks). */
static inline uint64_t loopsan_record_evidence(const struct loopsan_record_header *rec,
                                               uint8_t *marks) {
  *marks = 0;
  switch (rec->type) {
  case LOOPSAN_REC_OBJ_NEW:
    /* A loop's life decides its watchers' verdicts (active on a loop that
     * was destroyed, or on one that lives on): loops are always kept. */
    *marks = LOOPSAN_EV_NEW | (rec->aux & LOOPSAN_OBJF_LOOP ? LOOPSAN_EV_KEEP : 0);
    return ((const struct loopsan_rec_obj_new *)(const void *)rec)->obj;
  case LOOPSAN_REC_OBJ_OP: {
    uint32_t op = LOOPSAN_OP_OF(rec->aux);
    if (op == LOOPSAN_OP_CLOSED || op == LOOPSAN_OP_COMPLETE)
      *marks = LOOPSAN_EV_END;
    else if (op != LOOPSAN_OP_CLOSE && op != LOOPSAN_OP_CALLBACK) /* no use of it */
      *marks = LOOPSAN_EV_USE;
    if (op == LOOPSAN_OP_COMPLETE && LOOPSAN_ARG_OF(rec->aux) < 0)
      *marks |= LOOPSAN_EV_KEEP;
    if (op == LOOPSAN_OP_UNOBSERVED) /* the finding itself */
      *marks |= LOOPSAN_EV_KEEP;
    if (op == LOOPSAN_OP_SITE) /* a callback site's creation stack */
      *marks |= LOOPSAN_EV_KEEP;
    /* Destroyed with its loop while still attached: that is the finding. */
    if (op == LOOPSAN_OP_CLOSED && (LOOPSAN_ARG_OF(rec->aux) & LOOPSAN_CLOSED_WITH_LOOP))
      *marks |= LOOPSAN_EV_KEEP;
    return ((const struct loopsan_rec_obj_op *)(const void *)rec)->obj;
  }
  case LOOPSAN_REC_DISPATCH:
    *marks = LOOPSAN_EV_KEEP;
    return ((const struct loopsan_rec_dispatch *)(const void *)rec)->obj;
  case LOOPSAN_REC_API_ERROR:
    *marks = LOOPSAN_EV_KEEP;
    return ((const struct loopsan_rec_api_error *)(const void *)rec)->obj;
  case LOOPSAN_REC_UNFINISHED:
    *marks = LOOPSAN_EV_KEEP;
    return ((const struct loopsan_rec_unfinished *)(const void *)rec)->obj;
  case LOOPSAN_REC_BLOCKING:
    *marks = LOOPSAN_EV_KEEP;
    return ((const struct loopsan_rec_blocking *)(const void *)rec)->obj;
  case LOOPSAN_REC_WRONG_THREAD:
    *marks = LOOPSAN_EV_KEEP;
    return ((const struct loopsan_rec_wrong_thread *)(const void *)rec)->obj;
  case LOOPSAN_REC_MISUSE:
    *marks = LOOPSAN_EV_KEEP;
    return ((const struct loopsan_rec_misuse *)(const void *)rec)->obj;
  case LOOPSAN_REC_CRASH:
    *marks = LOOPSAN_EV_KEEP;
    return ((const struct loopsan_rec_crash *)(const void *)rec)->obj;
  default: return 0;
  }
}

/* A libuv error that says the call was wrong for the object's state or
 * its arguments (the program's mistake), not the world's answer (ENOENT,
 * EADDRINUSE, EAGAIN, ...): the analyzer's api-error findings, and what
 * the shim bothers to record of calls made often (uv_try_write). */
static inline int loopsan_uv_misuse_error(int32_t result) {
  switch (-result) {
  case EINVAL:
  case EALREADY:
  case EBADF:
  case EISCONN:
  case ENOTCONN:
  case ENOTSOCK:
  case EEXIST:
  case ENOSYS:
  case EOPNOTSUPP: return 1;
  default: return 0;
  }
}

/* Records that only the last of their kind for an object matters: the
 * rules read an object's last START (its time, flags and callback), last
 * STOP, last FIRED, last CALLBACK, and whether it was ever used, never how
 * many times. Of these, in one write-out, only the last per object and
 * kind is kept: a watcher restarted every millisecond (libev's timers
 * under gevent) would otherwise grow the trace without end. Returns the
 * record's kind (0 to LOOPSAN_SUPERSEDE_KINDS - 1), or -1. */
#define LOOPSAN_SUPERSEDE_KINDS 5
static inline int loopsan_record_supersede_kind(const struct loopsan_record_header *rec) {
  if (rec->type != LOOPSAN_REC_OBJ_OP)
    return -1;
  switch (LOOPSAN_OP_OF(rec->aux)) {
  case LOOPSAN_OP_START: return 0;
  case LOOPSAN_OP_STOP: return 1;
  case LOOPSAN_OP_FIRED: return 2;
  case LOOPSAN_OP_USE: return 3;
  case LOOPSAN_OP_CALLBACK: return 4;
  default: return -1;
  }
}

/* May every record of an object with these marks be left out? Only if it
 * was created, put to work and ended, and nothing about it is evidence. */
static inline int loopsan_evidence_droppable(uint8_t marks) {
  return (marks & (LOOPSAN_EV_NEW | LOOPSAN_EV_USE | LOOPSAN_EV_END | LOOPSAN_EV_KEEP)) ==
         (LOOPSAN_EV_NEW | LOOPSAN_EV_USE | LOOPSAN_EV_END);
}

#endif
