/* Rules: each finding kind is decided by one small function that reads the
 * replayed state of an object at a moment of its life (a dispatch, its end,
 * the end of the process) and reports raw findings. Adding a kind adds a
 * function and a table row; it never touches another rule. */
#ifndef LOOPSAN_RULES_H
#define LOOPSAN_RULES_H

#include "analyzer/replay.h"

/* A dispatch of OBJ (may be NULL: created before the trace began). */
void loopsan_rules_dispatch(struct loopsan_replay *r, struct replay_object *obj,
                            const struct loopsan_rec_dispatch *d, uint32_t tid);
/* A callback (of OBJ, which may be NULL) still running when its process
 * ended. */
/* ALSO: the object's other problems (1 << kind). Returns 1 when it was
 * slow enough to be reported. */
int loopsan_rules_unfinished(struct loopsan_replay *r, const struct replay_object *obj,
                             const struct loopsan_rec_unfinished *u, uint32_t also);
/* OBJ ended well or badly during the run (closed, completed). */
void loopsan_rules_object_ended(struct loopsan_replay *r, const struct replay_object *obj);
/* blocking-call: a libc call that blocked inside a callback. */
void loopsan_rules_blocking(struct loopsan_replay *r, const struct loopsan_rec_blocking *b,
                            uint32_t tid);
/* wrong-thread: a call on a loop's object from another thread while the
 * loop ran. TID is the calling thread. */
/* crash: the fatal signal the shim saw, if it came inside a callback. */
void loopsan_rules_crash(struct loopsan_replay *r);
void loopsan_rules_wrong_thread(struct loopsan_replay *r, const struct loopsan_rec_wrong_thread *w,
                                uint32_t tid);
/* api-error: a loop API call returned an error that says the program
 * misused it (EINVAL, EALREADY, EBADF, ...; not one the world caused,
 * such as ENOENT from uv_spawn). */
void loopsan_rules_api_error(struct loopsan_replay *r, const struct replay_object *obj,
                             const struct loopsan_rec_api_error *e, uint32_t tid);
/* misuse: a call the library forbids in the object's state (M->h.aux). */
void loopsan_rules_misuse(struct loopsan_replay *r, const struct replay_object *obj,
                          const struct loopsan_rec_misuse *m, uint32_t tid);
/* unobserved-error: request O failed with STATUS and had no callback. */
void loopsan_rules_unobserved_error(struct loopsan_replay *r, const struct replay_object *o,
                                    int32_t status);
/* The blocking calls still held back become findings (at the end). */
void loopsan_rules_blocking_flush(struct loopsan_replay *r);
/* OBJ is still alive when the process ends (normally: a killed process's
 * objects are not judged). One object, one finding: the most specific
 * kind, the others in its `also`. */
void loopsan_rules_at_exit(struct loopsan_replay *r, const struct replay_object *obj);

#endif
