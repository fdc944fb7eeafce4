/* The SARIF 2.1.0 report, for GitHub code scanning and other SARIF
 * viewers: one rule per finding kind (its words from the findings model),
 * one result per finding, located at the innermost frame of its creation
 * stack that is the program's own source, with the stacks as code flows. */
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "analyzer/strbuf.h"
#include "reports/report.h"

/* Frames of the system's libraries (libc, the loop libraries) and system
 * headers are not where a program's finding belongs. (A relative file
 * name says nothing: a VPATH build's are ../src/x.c.) */
static int system_frame(const struct loopsan_frame_owned *f) {
  if (!f->file)
    return 1;
  if (f->module &&
      (strncmp(f->module, "/lib/", 5) == 0 || strncmp(f->module, "/usr/lib/", 9) == 0 ||
       strncmp(f->module, "/lib64/", 7) == 0))
    return 1;
  return strncmp(f->file, "/usr/include/", 13) == 0;
}

/* Where a finding is: the innermost program frame of its creation stack,
 * else of its stack, else its callback; NULL when none has a source. */
static const struct loopsan_frame_owned *location_of(const struct loopsan_finding *f) {
  for (size_t i = 0; i < f->n_created_at; i++)
    if (!system_frame(&f->created_at[i]))
      return &f->created_at[i];
  for (size_t i = 0; i < f->n_stack; i++)
    if (!system_frame(&f->stack[i]))
      return &f->stack[i];
  if (f->has_callback && !system_frame(&f->callback))
    return &f->callback;
  return NULL;
}

/* A file name as a URI reference relative to the current directory (the
 * project's root in CI) when it is below it; reserved characters escaped. */
static void uri(struct loopsan_strbuf *sb, const char *file, const char *cwd) {
  size_t n = cwd ? strlen(cwd) : 0;
  if (n && strncmp(file, cwd, n) == 0 && file[n] == '/')
    file += n + 1;
  struct loopsan_strbuf u;
  loopsan_sb_init(&u);
  for (const unsigned char *p = (const unsigned char *)file; *p; p++) {
    if (*p <= ' ' || *p >= 0x7f || strchr("%#?[]\"<>\\^`{|}", *p))
      loopsan_sb_printf(&u, "%%%02X", *p);
    else
      loopsan_sb_append(&u, (const char *)p, 1);
  }
  loopsan_sb_json_string(sb, u.data ? u.data : "");
  loopsan_sb_free(&u);
}

static void physical(struct loopsan_strbuf *sb, const struct loopsan_frame_owned *f,
                     const char *cwd) {
  loopsan_sb_puts(sb, "\"physicalLocation\": {\"artifactLocation\": {\"uri\": ");
  uri(sb, f->file, cwd);
  loopsan_sb_puts(sb, "}");
  if (f->line > 0)
    loopsan_sb_printf(sb, ", \"region\": {\"startLine\": %d}", f->line);
  loopsan_sb_puts(sb, "}");
}

static void frame_name(struct loopsan_strbuf *sb, const struct loopsan_frame_owned *f) {
  struct loopsan_strbuf t;
  loopsan_sb_init(&t);
  if (f->function) {
    loopsan_sb_puts(&t, f->function);
  } else if (f->module) {
    const char *base = strrchr(f->module, '/');
    loopsan_sb_printf(&t, "%s+0x%" PRIx64, base ? base + 1 : f->module, f->module_offset);
  } else {
    loopsan_sb_printf(&t, "0x%" PRIx64, f->address);
  }
  loopsan_sb_json_string(sb, t.data ? t.data : "?");
  loopsan_sb_free(&t);
}

/* A stack as a thread flow, outermost first (the order it ran in). */
static void thread_flow(struct loopsan_strbuf *sb, const char *what,
                        const struct loopsan_frame_owned *f, size_t n, const char *cwd) {
  loopsan_sb_puts(sb, "{\"message\": {\"text\": ");
  loopsan_sb_json_string(sb, what);
  loopsan_sb_puts(sb, "}, \"locations\": [");
  for (size_t k = n; k-- > 0;) {
    loopsan_sb_puts(sb, k + 1 < n ? ", {\"location\": {" : "{\"location\": {");
    if (!system_frame(&f[k])) { /* libc's sources are not the project's */
      physical(sb, &f[k], cwd);
      loopsan_sb_puts(sb, ", ");
    }
    loopsan_sb_puts(sb, "\"message\": {\"text\": ");
    frame_name(sb, &f[k]);
    loopsan_sb_puts(sb, "}}}");
  }
  loopsan_sb_puts(sb, "]}");
}

/* The same problem in the same place hashes the same across runs: kind,
 * callback and creation site, not addresses or pids. */
static uint64_t fingerprint(const struct loopsan_finding *f, const struct loopsan_frame_owned *at) {
  uint64_t h = 0xcbf29ce484222325u;
  const char *parts[] = {loopsan_kind_name(f->kind), f->has_callback ? f->callback.function : NULL,
                         at ? at->function : NULL, at ? at->file : NULL, f->object_type};
  for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
    for (const char *p = parts[i] ? parts[i] : ""; *p; p++)
      h = (h ^ (unsigned char)*p) * 0x100000001b3u;
    h = (h ^ 0xff) * 0x100000001b3u;
  }
  return h ^ (uint64_t)(at ? at->line : 0);
}

static const char *level_of(enum loopsan_severity s) {
  return s == LOOPSAN_SEV_ERROR ? "error" : s == LOOPSAN_SEV_WARNING ? "warning" : "note";
}

static void result(struct loopsan_strbuf *sb, const struct loopsan_finding *f, const char *cwd,
                   const char *exe) {
  loopsan_sb_printf(sb, "{\"ruleId\": \"%s\", \"ruleIndex\": %d, \"level\": \"%s\"",
                    loopsan_kind_name(f->kind), (int)f->kind, level_of(f->severity));
  struct loopsan_strbuf text;
  loopsan_sb_init(&text);
  loopsan_sb_puts(&text, f->message);
  if (f->detail)
    loopsan_sb_printf(&text, "; %s", f->detail);
  if (f->count > 1)
    loopsan_sb_printf(&text, " (%u times)", f->count);
  loopsan_sb_puts(sb, ", \"message\": {\"text\": ");
  loopsan_sb_json_string(sb, text.data ? text.data : f->message);
  loopsan_sb_free(&text);
  const struct loopsan_frame_owned *at = location_of(f);
  loopsan_sb_puts(sb, "}, \"locations\": [{");
  if (at) {
    physical(sb, at, cwd);
  } else { /* no source: the program's file itself */
    loopsan_sb_puts(sb, "\"physicalLocation\": {\"artifactLocation\": {\"uri\": ");
    uri(sb, exe && exe[0] ? exe : "unknown", cwd);
    loopsan_sb_puts(sb, "}}");
  }
  loopsan_sb_printf(
      sb, "}], \"partialFingerprints\": {\"primaryLocationLineHash\": \"%016" PRIx64 ":1\"}",
      fingerprint(f, at));
  if (f->n_created_at || f->n_stack) {
    loopsan_sb_puts(sb, ", \"codeFlows\": [{\"threadFlows\": [");
    if (f->n_created_at)
      thread_flow(sb, "created at", f->created_at, f->n_created_at, cwd);
    if (f->n_stack) {
      loopsan_sb_puts(sb, f->n_created_at ? ", " : "");
      thread_flow(sb, f->kind == LOOPSAN_KIND_CRASH ? "crashed at" : "at", f->stack, f->n_stack,
                  cwd);
    }
    loopsan_sb_puts(sb, "]}]");
  }
  if (f->suppressed)
    loopsan_sb_puts(sb, ", \"suppressions\": [{\"kind\": \"external\"}]");
  loopsan_sb_puts(sb, "}");
}

int loopsan_render_sarif(const struct loopsan_report *r, const struct loopsan_render_options *opts,
                         FILE *out) {
  char cwd_buf[PATH_MAX];
  const char *cwd = getcwd(cwd_buf, sizeof cwd_buf);
  struct loopsan_strbuf sb;
  loopsan_sb_init(&sb);
  loopsan_sb_puts(&sb, "{\n  \"$schema\": \"https://json.schemastore.org/sarif-2.1.0.json\",\n"
                       "  \"version\": \"2.1.0\",\n  \"runs\": [{\n    \"tool\": {\"driver\": "
                       "{\"name\": \"loopsan\", \"version\": ");
  loopsan_sb_json_string(&sb, opts && opts->tool_version ? opts->tool_version : "unknown");
  loopsan_sb_puts(&sb, ", \"rules\": [");
  for (int k = 0; k < LOOPSAN_KIND_COUNT; k++) {
    loopsan_sb_printf(&sb,
                      "%s\n      {\"id\": \"%s\", \"shortDescription\": {\"text\": ", k ? "," : "",
                      loopsan_kind_name(k));
    loopsan_sb_json_string(&sb, loopsan_kind_summary(k));
    loopsan_sb_puts(&sb, "}, \"fullDescription\": {\"text\": ");
    loopsan_sb_json_string(&sb, loopsan_kind_description(k));
    loopsan_sb_puts(&sb, "}, \"help\": {\"text\": ");
    loopsan_sb_json_string(&sb, loopsan_kind_help(k));
    loopsan_sb_printf(&sb, "}, \"defaultConfiguration\": {\"level\": \"%s\"}}",
                      level_of(loopsan_kind_severity(k)));
  }
  loopsan_sb_puts(&sb, "]}},\n    \"results\": [");
  for (size_t i = 0; i < r->n_findings; i++) {
    const struct loopsan_finding *f = &r->findings[i];
    loopsan_sb_puts(&sb, i ? ",\n      " : "\n      ");
    result(&sb, f, cwd, f->process < r->n_processes ? r->processes[f->process].exe : NULL);
  }
  loopsan_sb_puts(&sb, r->n_findings ? "\n    ]\n  }]\n}\n" : "]\n  }]\n}\n");
  return loopsan_sb_write(&sb, out);
}
