/* A small JSON reader, for what loopsan reads back of its own output (a
 * baseline report): a tree of values, no streaming. Hostile input gets an
 * error, never a crash (depth and size are bounded). */
#ifndef LOOPSAN_JSON_READ_H
#define LOOPSAN_JSON_READ_H

#include <stddef.h>

struct loopsan_json;

/* The value TEXT[0..LEN) holds, or NULL with a message in ERR. */
struct loopsan_json *loopsan_json_parse(const char *text, size_t len, char *err, size_t err_len);
void loopsan_json_free(struct loopsan_json *v);
/* An object's member KEY; NULL if V is no object or has none. */
const struct loopsan_json *loopsan_json_get(const struct loopsan_json *v, const char *key);
/* An array's element I; NULL past its end or if V is no array. */
const struct loopsan_json *loopsan_json_at(const struct loopsan_json *v, size_t i);
/* An array's (or object's) number of elements; 0 for anything else. */
size_t loopsan_json_length(const struct loopsan_json *v);
/* A string's value (UTF-8); NULL if V is no string. */
const char *loopsan_json_string(const struct loopsan_json *v);

#endif
