/* A growable string, for messages and reports. A failed allocation sets
 * `failed` and later appends do nothing: callers check once, at the end. */
#ifndef LOOPSAN_STRBUF_H
#define LOOPSAN_STRBUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

struct loopsan_strbuf {
  char *data;
  size_t len, cap;
  int failed;
  FILE *sink; /* set: what is built goes out every megabyte (a big report) */
};

void loopsan_sb_init(struct loopsan_strbuf *sb);
void loopsan_sb_free(struct loopsan_strbuf *sb);
void loopsan_sb_append(struct loopsan_strbuf *sb, const char *s, size_t n);
void loopsan_sb_puts(struct loopsan_strbuf *sb, const char *s);
void loopsan_sb_printf(struct loopsan_strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append S as a JSON string literal (quotes included); NULL gives null. */
void loopsan_sb_json_string(struct loopsan_strbuf *sb, const char *s);
/* V with three decimals, as "%.3f" prints it (without printf's cost: the
 * Chrome report has a few numbers per slice, and a million slices). */
void loopsan_sb_fixed3(struct loopsan_strbuf *sb, double v);
/* From now on, SB's contents go to OUT whenever they pass a megabyte, so
 * that a report of any size is built in bounded memory (then end with
 * loopsan_sb_write to the same OUT). */
void loopsan_sb_stream_to(struct loopsan_strbuf *sb, FILE *out);
/* A renderer's end: SB to OUT (-1 if building it ran out of memory or a
 * streamed part failed to write), and SB freed either way. */
int loopsan_sb_write(struct loopsan_strbuf *sb, FILE *out);
/* Take ownership of the contents (NUL-terminated; NULL if failed). */
char *loopsan_sb_steal(struct loopsan_strbuf *sb);

#endif
