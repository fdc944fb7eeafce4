/* A growable string, for messages and reports. A failed allocation sets
 * `failed` and later appends do nothing: callers check once, at the end. */
#ifndef LOOPSAN_STRBUF_H
#define LOOPSAN_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct loopsan_strbuf {
  char *data;
  size_t len, cap;
  int failed;
};

void loopsan_sb_init(struct loopsan_strbuf *sb);
void loopsan_sb_free(struct loopsan_strbuf *sb);
void loopsan_sb_append(struct loopsan_strbuf *sb, const char *s, size_t n);
void loopsan_sb_puts(struct loopsan_strbuf *sb, const char *s);
void loopsan_sb_printf(struct loopsan_strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append S as a JSON string literal (quotes included); NULL gives null. */
void loopsan_sb_json_string(struct loopsan_strbuf *sb, const char *s);
/* Take ownership of the contents (NUL-terminated; NULL if failed). */
char *loopsan_sb_steal(struct loopsan_strbuf *sb);

#endif
