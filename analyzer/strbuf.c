#include "analyzer/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void loopsan_sb_init(struct loopsan_strbuf *sb) { memset(sb, 0, sizeof *sb); }

void loopsan_sb_free(struct loopsan_strbuf *sb) {
  free(sb->data);
  memset(sb, 0, sizeof *sb);
}

#define SB_DRAIN ((size_t)1 << 20)

static int reserve(struct loopsan_strbuf *sb, size_t extra) {
  if (sb->failed)
    return -1;
  if (sb->sink && sb->len >= SB_DRAIN) { /* out with what is built */
    if (fwrite(sb->data, 1, sb->len, sb->sink) != sb->len) {
      sb->failed = 1;
      return -1;
    }
    sb->len = 0;
    sb->data[0] = '\0';
  }
  if (sb->len + extra + 1 <= sb->cap)
    return 0;
  size_t cap = sb->cap ? sb->cap : 64;
  while (cap < sb->len + extra + 1)
    cap *= 2;
  char *p = realloc(sb->data, cap);
  if (!p) {
    sb->failed = 1;
    return -1;
  }
  sb->data = p;
  sb->cap = cap;
  return 0;
}

void loopsan_sb_append(struct loopsan_strbuf *sb, const char *s, size_t n) {
  if (reserve(sb, n) != 0)
    return;
  memcpy(sb->data + sb->len, s, n);
  sb->len += n;
  sb->data[sb->len] = '\0';
}

void loopsan_sb_puts(struct loopsan_strbuf *sb, const char *s) {
  loopsan_sb_append(sb, s, strlen(s));
}

void loopsan_sb_printf(struct loopsan_strbuf *sb, const char *fmt, ...) {
  /* formatted once into the room there is (a report formats a million
   * slices: formatting each twice, to measure it first, doubled that) */
  if (reserve(sb, 256) != 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, ap);
  va_end(ap);
  if (n < 0) {
    sb->data[sb->len] = '\0';
    return;
  }
  if ((size_t)n >= sb->cap - sb->len) { /* did not fit: again, with room */
    if (reserve(sb, (size_t)n) != 0) {
      sb->data[sb->len] = '\0';
      return;
    }
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
  sb->len += (size_t)n;
}

void loopsan_sb_fixed3(struct loopsan_strbuf *sb, double v) {
  if (!(v > -9e12 && v < 9e12)) { /* (beyond: as printf does it) */
    loopsan_sb_printf(sb, "%.3f", v);
    return;
  }
  long long m = (long long)(v * 1000.0 + (v < 0 ? -0.5 : 0.5));
  char buf[32], *p = buf + sizeof buf;
  unsigned long long u = m < 0 ? (unsigned long long)-m : (unsigned long long)m;
  for (int i = 0; i < 3; i++, u /= 10)
    *--p = (char)('0' + u % 10);
  *--p = '.';
  do
    *--p = (char)('0' + u % 10);
  while ((u /= 10) != 0);
  if (m < 0)
    *--p = '-';
  loopsan_sb_append(sb, p, (size_t)(buf + sizeof buf - p));
}

void loopsan_sb_stream_to(struct loopsan_strbuf *sb, FILE *out) { sb->sink = out; }

int loopsan_sb_write(struct loopsan_strbuf *sb, FILE *out) {
  int rc = sb->failed ? -1 : (fputs(sb->data ? sb->data : "", out), 0);
  loopsan_sb_free(sb);
  return rc;
}

/* Length of the well-formed UTF-8 sequence at P (P[0] >= 0x80), or 0. */
static size_t utf8_sequence(const unsigned char *p) {
  size_t n;
  unsigned min;
  unsigned cp;
  if (p[0] >= 0xc2 && p[0] <= 0xdf) {
    n = 2, min = 0x80, cp = p[0] & 0x1fu;
  } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
    n = 3, min = 0x800, cp = p[0] & 0x0fu;
  } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
    n = 4, min = 0x10000, cp = p[0] & 0x07u;
  } else {
    return 0;
  }
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xc0u) != 0x80u)
      return 0;
    cp = (cp << 6) | (p[i] & 0x3fu);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

void loopsan_sb_json_string(struct loopsan_strbuf *sb, const char *s) {
  if (!s) {
    loopsan_sb_puts(sb, "null");
    return;
  }
  loopsan_sb_append(sb, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
    case '"': loopsan_sb_puts(sb, "\\\""); break;
    case '\\': loopsan_sb_puts(sb, "\\\\"); break;
    case '\n': loopsan_sb_puts(sb, "\\n"); break;
    case '\r': loopsan_sb_puts(sb, "\\r"); break;
    case '\t': loopsan_sb_puts(sb, "\\t"); break;
    default:
      if (*p < 0x20 || *p == 0x7f) {
        loopsan_sb_printf(sb, "\\u%04x", *p);
      } else if (*p < 0x80) {
        loopsan_sb_append(sb, (const char *)p, 1);
      } else {
        /* Paths and argv are bytes: pass valid UTF-8 on, replace the rest,
         * so that the report always parses. */
        size_t n = utf8_sequence(p);
        if (n) {
          loopsan_sb_append(sb, (const char *)p, n);
          p += n - 1;
        } else {
          loopsan_sb_puts(sb, "\\ufffd");
        }
      }
    }
  }
  loopsan_sb_append(sb, "\"", 1);
}

char *loopsan_sb_steal(struct loopsan_strbuf *sb) {
  char *s = sb->failed ? NULL : sb->data;
  if (!s && !sb->failed)
    s = calloc(1, 1);
  if (sb->failed)
    free(sb->data);
  memset(sb, 0, sizeof *sb);
  return s;
}
