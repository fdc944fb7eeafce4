#include "analyzer/json_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/strbuf.h"

#define JSON_MAX_DEPTH 64

enum json_type { J_NULL, J_BOOL, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT };

struct loopsan_json {
  enum json_type type;
  char *str;                   /* J_STRING */
  struct loopsan_json **items; /* J_ARRAY, J_OBJECT (values) */
  char **keys;                 /* J_OBJECT */
  size_t n;
};

struct parser {
  const char *start, *p, *end;
  char *err;
  size_t err_len;
  int failed;
};

static void fail(struct parser *ps, const char *what) {
  if (!ps->failed)
    snprintf(ps->err, ps->err_len, "%s at byte %zu", what, (size_t)(ps->p - ps->start));
  ps->failed = 1;
}

static void skip_ws(struct parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}

static int literal(struct parser *ps, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
    return 0;
  ps->p += n;
  return 1;
}

static int hex4(struct parser *ps, unsigned *out) {
  if (ps->end - ps->p < 4)
    return -1;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = *ps->p++;
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      v |= (unsigned)(c - 'A' + 10);
    else
      return -1;
  }
  *out = v;
  return 0;
}

static void utf8(struct loopsan_strbuf *sb, unsigned cp) {
  char b[4];
  size_t n;
  if (cp < 0x80) {
    b[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    b[0] = (char)(0xc0 | cp >> 6);
    b[1] = (char)(0x80 | (cp & 0x3f));
    n = 2;
  } else if (cp < 0x10000) {
    b[0] = (char)(0xe0 | cp >> 12);
    b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    b[2] = (char)(0x80 | (cp & 0x3f));
    n = 3;
  } else {
    b[0] = (char)(0xf0 | cp >> 18);
    b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    b[3] = (char)(0x80 | (cp & 0x3f));
    n = 4;
  }
  loopsan_sb_append(sb, b, n);
}

/* After the opening quote; the string's value, or NULL. */
static char *string_value(struct parser *ps) {
  struct loopsan_strbuf sb;
  loopsan_sb_init(&sb);
  while (ps->p < ps->end && *ps->p != '"') {
    char c = *ps->p++;
    if ((unsigned char)c < 0x20) {
      fail(ps, "control character in a string");
      break;
    }
    if (c != '\\') {
      loopsan_sb_append(&sb, &c, 1);
      continue;
    }
    if (ps->p >= ps->end)
      break;
    char e = *ps->p++;
    const char *simple = strchr("\"\\/bfnrt", e);
    if (simple && e) {
      static const char to[] = "\"\\/\b\f\n\r\t";
      loopsan_sb_append(&sb, &to[simple - "\"\\/bfnrt"], 1);
    } else if (e == 'u') {
      unsigned cp, lo;
      if (hex4(ps, &cp) != 0) {
        fail(ps, "bad \\u escape");
        break;
      }
      if (cp >= 0xd800 && cp < 0xdc00 && ps->end - ps->p >= 6 && ps->p[0] == '\\' &&
          ps->p[1] == 'u') {
        ps->p += 2;
        if (hex4(ps, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000)
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        else
          cp = 0xfffd;
      } else if (cp >= 0xd800 && cp < 0xe000) {
        cp = 0xfffd;
      }
      utf8(&sb, cp);
    } else {
      fail(ps, "bad escape");
      break;
    }
  }
  if (ps->p >= ps->end && !ps->failed)
    fail(ps, "unterminated string");
  if (ps->failed) {
    loopsan_sb_free(&sb);
    return NULL;
  }
  ps->p++; /* the closing quote */
  loopsan_sb_append(&sb, "", 0);
  char *s = loopsan_sb_steal(&sb);
  return s ? s : strdup("");
}

static struct loopsan_json *value(struct parser *ps, int depth);

static int push(struct loopsan_json *v, struct loopsan_json *item, char *key) {
  struct loopsan_json **items = realloc(v->items, (v->n + 1) * sizeof *items);
  if (!items)
    return -1;
  v->items = items;
  if (v->type == J_OBJECT) {
    char **keys = realloc(v->keys, (v->n + 1) * sizeof *keys);
    if (!keys)
      return -1;
    v->keys = keys;
    v->keys[v->n] = key;
  }
  v->items[v->n++] = item;
  return 0;
}

static struct loopsan_json *container(struct parser *ps, int depth, int object) {
  struct loopsan_json *v = calloc(1, sizeof *v);
  if (!v) {
    fail(ps, "out of memory");
    return NULL;
  }
  v->type = object ? J_OBJECT : J_ARRAY;
  char close = object ? '}' : ']';
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == close) {
    ps->p++;
    return v;
  }
  for (;;) {
    char *key = NULL;
    skip_ws(ps);
    if (object) {
      if (ps->p >= ps->end || *ps->p != '"') {
        fail(ps, "expected a member name");
        break;
      }
      ps->p++;
      if (!(key = string_value(ps)))
        break;
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ':') {
        free(key);
        fail(ps, "expected ':'");
        break;
      }
      ps->p++;
    }
    struct loopsan_json *item = value(ps, depth + 1);
    if (!item || push(v, item, key) != 0) {
      free(key);
      loopsan_json_free(item);
      fail(ps, "bad value");
      break;
    }
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ',') {
      ps->p++;
      continue;
    }
    if (ps->p < ps->end && *ps->p == close) {
      ps->p++;
      return v;
    }
    fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
    break;
  }
  loopsan_json_free(v);
  return NULL;
}

static struct loopsan_json *value(struct parser *ps, int depth) {
  if (depth > JSON_MAX_DEPTH) {
    fail(ps, "nested too deep");
    return NULL;
  }
  skip_ws(ps);
  if (ps->p >= ps->end) {
    fail(ps, "unexpected end");
    return NULL;
  }
  char c = *ps->p;
  if (c == '{' || c == '[') {
    ps->p++;
    return container(ps, depth, c == '{');
  }
  struct loopsan_json *v = calloc(1, sizeof *v);
  if (!v) {
    fail(ps, "out of memory");
    return NULL;
  }
  if (c == '"') {
    ps->p++;
    v->type = J_STRING;
    if (!(v->str = string_value(ps))) {
      free(v);
      return NULL;
    }
  } else if (literal(ps, "true") || literal(ps, "false")) {
    v->type = J_BOOL;
  } else if (literal(ps, "null")) {
    v->type = J_NULL;
  } else if (c == '-' || (c >= '0' && c <= '9')) {
    v->type = J_NUMBER;
    while (ps->p < ps->end && strchr("+-0123456789.eE", *ps->p))
      ps->p++;
  } else {
    free(v);
    fail(ps, "unexpected character");
    return NULL;
  }
  return v;
}

struct loopsan_json *loopsan_json_parse(const char *text, size_t len, char *err, size_t err_len) {
  struct parser ps = {text, text, text + len, err, err_len, 0};
  struct loopsan_json *v = value(&ps, 0);
  skip_ws(&ps);
  if (v && ps.p != ps.end) {
    fail(&ps, "trailing data");
    loopsan_json_free(v);
    return NULL;
  }
  return v;
}

void loopsan_json_free(struct loopsan_json *v) {
  if (!v)
    return;
  for (size_t i = 0; i < v->n; i++) {
    loopsan_json_free(v->items[i]);
    if (v->keys)
      free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
  free(v->str);
  free(v);
}

const struct loopsan_json *loopsan_json_get(const struct loopsan_json *v, const char *key) {
  if (!v || v->type != J_OBJECT)
    return NULL;
  for (size_t i = 0; i < v->n; i++)
    if (strcmp(v->keys[i], key) == 0)
      return v->items[i];
  return NULL;
}

const struct loopsan_json *loopsan_json_at(const struct loopsan_json *v, size_t i) {
  return v && v->type == J_ARRAY && i < v->n ? v->items[i] : NULL;
}

size_t loopsan_json_length(const struct loopsan_json *v) {
  return v && (v->type == J_ARRAY || v->type == J_OBJECT) ? v->n : 0;
}

const char *loopsan_json_string(const struct loopsan_json *v) {
  return v && v->type == J_STRING ? v->str : NULL;
}
