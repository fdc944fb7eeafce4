/* The report renderers on a hand-made findings model: JSON escaping of
 * hostile strings (quotes, control characters, invalid UTF-8), the fields
 * of SPEC.md section 3, and the text report's headline and summary. */
#include <check.h>

#include "tests/unit/unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/findings.h"
#include "analyzer/replay.h"
#include "analyzer/strbuf.h"
#include "reports/report.h"

static char *render(const struct loopsan_report *r, enum loopsan_format fmt) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  struct loopsan_render_options ro = {.tool_version = "9.9.9"};
  ck_assert_int_eq(loopsan_render(r, fmt, &ro, f), 0);
  fclose(f);
  return buf;
}

static void make_report(struct loopsan_report *r) {
  memset(r, 0, sizeof *r);
  r->n_processes = 1;
  r->processes = calloc(1, sizeof *r->processes);
  r->processes[0].pid = 42;
  r->processes[0].exe = strdup("/tmp/we\"ird\n\xff"
                               "exe");
  r->processes[0].observed = 1;
  struct loopsan_observed *ob = calloc(1, sizeof *ob);
  ob->library = "libuv";
  ob->loops = 1;
  ob->callbacks = 7;
  ob->n_types = 2;
  ob->types = calloc(2, sizeof *ob->types);
  ob->types[0] = (struct loopsan_observed_type){strdup("uv_loop_t"), 1, 0, 1, 1};
  ob->types[1] = (struct loopsan_observed_type){strdup("uv_timer_t"), 0, 0, 3, 2};
  r->processes[0].observations = ob;
  r->processes[0].n_observations = 1;
  r->processes[0].ended = 1;
  r->processes[0].has_exit = 1;
  r->processes[0].exit_status = 3;
  r->n_findings = 1;
  r->findings = calloc(1, sizeof *r->findings);
  struct loopsan_finding *f = &r->findings[0];
  f->kind = LOOPSAN_KIND_SLOW_CALLBACK;
  f->severity = LOOPSAN_SEV_WARNING;
  f->library = "libuv";
  f->pid = 42;
  f->message = strdup("callback on_tick() of uv_timer_t took 152.301 ms");
  f->object_type = strdup("uv_timer_t");
  f->object_address = 0x1234;
  f->has_callback = 1;
  f->callback.function = strdup("on_tick");
  f->callback.file = strdup("server.c");
  f->callback.line = 42;
  f->n_created_at = 1;
  f->created_at = calloc(1, sizeof *f->created_at);
  f->created_at[0].function = strdup("start_ticker");
  f->created_at[0].address = 0x5678;
  f->duration_ms = 152.301;
  f->count = 2;
}

START_TEST(json_fields_and_escaping) {
  struct loopsan_report r;
  make_report(&r);
  char *json = render(&r, LOOPSAN_FORMAT_JSON);
  ck_assert_ptr_nonnull(
      strstr(json, "\"tool\": \"loopsan\", \"version\": \"9.9.9\", \"format\": 1"));
  ck_assert_ptr_nonnull(strstr(json, "\"exe\": \"/tmp/we\\\"ird\\n\\ufffdexe\""));
  ck_assert_ptr_nonnull(strstr(json, "\"exit\": {\"status\": 3}"));
  ck_assert_ptr_nonnull(strstr(json, "\"kind\": \"slow-callback\""));
  ck_assert_ptr_nonnull(
      strstr(json, "\"object\": {\"type\": \"uv_timer_t\", \"address\": \"0x1234\"}"));
  ck_assert_ptr_nonnull(strstr(
      json, "\"callback\": {\"function\": \"on_tick\", \"file\": \"server.c\", \"line\": 42"));
  ck_assert_ptr_nonnull(
      strstr(json, "{\"function\": \"start_ticker\", \"file\": null, \"line\": null"));
  ck_assert_ptr_nonnull(
      strstr(json, "\"duration_ms\": 152.301, \"also\": [], \"count\": 2, \"suppressed\": false"));
  ck_assert_ptr_nonnull(strstr(json, "\"observed\": {\"libuv\": {\"loops\": 1, \"callbacks\": 7, "
                                     "\"objects\": {\"uv_loop_t\": 1, \"uv_timer_t\": 3}, "
                                     "\"ended\": {\"uv_loop_t\": 1, \"uv_timer_t\": 2}}}"));
  ck_assert_ptr_nonnull(strstr(json, "\"summary\": {\"slow-callback\": 2}"));
  free(json);
  loopsan_report_free(&r);
}
END_TEST

START_TEST(text_headline_and_summary) {
  struct loopsan_report r;
  make_report(&r);
  char *text = render(&r, LOOPSAN_FORMAT_TEXT);
  ck_assert_ptr_nonnull(strstr(
      text, "==42== WARNING: slow-callback: callback on_tick() of uv_timer_t took 152.301 ms"));
  ck_assert_ptr_nonnull(strstr(text, "callback: on_tick server.c:42"));
  ck_assert_ptr_nonnull(strstr(text, "uv_timer_t 0x1234 created at:"));
  ck_assert_ptr_nonnull(strstr(text, "#0 0x5678 in start_ticker"));
  ck_assert_ptr_nonnull(strstr(text, "SUMMARY: loopsan: 2 slow-callback in 1 process"));
  ck_assert_ptr_nonnull(strstr(text,
                               "==42== observed libuv: 1 loop (1 closed), 7 callbacks dispatched; "
                               "created (ended): 3 uv_timer_t (2)\n"));
  free(text);
  loopsan_report_free(&r);
}
END_TEST

START_TEST(markdown_table_and_top) {
  struct loopsan_report r;
  make_report(&r);
  free(r.findings[0].message);
  r.findings[0].message = strdup("callback on_tick() of uv_timer_t | took *152* ms");
  char *md = render(&r, LOOPSAN_FORMAT_MARKDOWN);
  ck_assert_ptr_nonnull(strstr(md, "## loopsan: event-loop problems found\n"));
  ck_assert_ptr_nonnull(strstr(md, "| `slow-callback` | warning | 2 |\n"));
  /* Markdown and table syntax in a message is escaped. */
  ck_assert_ptr_nonnull(
      strstr(md, "1. **slow-callback** (libuv, pid 42): callback on\\_tick() of uv\\_timer\\_t \\| "
                 "took \\*152\\* ms (2 times)\n"));
  ck_assert_ptr_nonnull(strstr(md, "    - callback: `on_tick` (server.c:42)\n"));
  ck_assert_ptr_nonnull(strstr(md, "    - created at: `start_ticker`\n"));
  free(md);
  loopsan_report_free(&r);
}
END_TEST

/* Folded stacks: program;creation frames (outermost first);callback, with
 * the site's microseconds; a sampled slow call goes on into its stack. */
START_TEST(folded_stacks) {
  struct loopsan_report r;
  make_report(&r);
  struct loopsan_process *p = &r.processes[0];
  p->n_sites = 1;
  p->sites = calloc(1, sizeof *p->sites);
  struct loopsan_callback_site *s = &p->sites[0];
  s->has_callback = 1;
  s->callback.function = strdup("on_tick");
  s->callback.address = 0x4000;
  s->library = "libuv";
  s->count = 10;
  s->total_ms = 160.0;
  s->n_created_at = 2;
  s->created_at = calloc(2, sizeof *s->created_at);
  s->created_at[0].function = strdup("start_ticker");
  s->created_at[1].function = strdup("main");
  struct loopsan_finding *f = &r.findings[0];
  f->callback.address = 0x4000;
  f->n_stack = 2;
  f->stack = calloc(2, sizeof *f->stack);
  f->stack[0].function = strdup("spin;helper");
  f->stack[1].function = strdup("on_tick");
  f->stack[1].address = 0x4000;
  char *folded = render(&r, LOOPSAN_FORMAT_FOLDED);
  ck_assert_str_eq(folded, "we\"ird_\xff"
                           "exe;main;start_ticker;on_tick;spin_helper 152301\n"
                           "we\"ird_\xff"
                           "exe;main;start_ticker;on_tick 7699\n");
  free(folded);
  loopsan_report_free(&r);
}
END_TEST

/* Chrome trace events: a callback run inside another that the clocks put
 * a hair past its parent's end is cut there (Perfetto drops slices that do
 * not nest); one that starts after its parent's end is its sibling. */
START_TEST(chrome_slices_nest) {
  struct loopsan_report r;
  make_report(&r);
  struct loopsan_process *p = &r.processes[0];
  p->n_slice_names = 1;
  p->slice_names = calloc(1, sizeof *p->slice_names);
  p->slice_names[0] = strdup("on_tick");
  p->n_slices = 3;
  p->slices = calloc(3, sizeof *p->slices);
  p->slices[0] =
      (struct loopsan_slice){.start_us = 100, .dur_us = 50, .tid = 42, .library = "glib"};
  p->slices[1] =
      (struct loopsan_slice){.start_us = 120, .dur_us = 30.5, .tid = 42, .library = "glib"};
  p->slices[2] =
      (struct loopsan_slice){.start_us = 150, .dur_us = 10, .tid = 42, .library = "glib"};
  char *json = render(&r, LOOPSAN_FORMAT_CHROME);
  ck_assert_ptr_nonnull(strstr(json, "\"ts\": 100.000, \"dur\": 50.000"));
  ck_assert_ptr_nonnull(strstr(json, "\"ts\": 120.000, \"dur\": 30.000")); /* cut */
  ck_assert_ptr_nonnull(strstr(json, "\"ts\": 150.000, \"dur\": 10.000")); /* a sibling */
  ck_assert_ptr_nonnull(strstr(json, "{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": 42, "
                                     "\"tid\": 42, \"args\": {\"name\": \"main thread 42\"}}"));
  free(json);
  loopsan_report_free(&r);
}
END_TEST

START_TEST(formats_by_name) {
  ck_assert_int_eq(loopsan_format_from_name("json"), LOOPSAN_FORMAT_JSON);
  ck_assert_int_eq(loopsan_format_from_name("text"), LOOPSAN_FORMAT_TEXT);
  ck_assert_int_eq(loopsan_format_from_name("markdown"), LOOPSAN_FORMAT_MARKDOWN);
  ck_assert_int_eq(loopsan_format_from_name("xml"), -1);
  ck_assert_str_eq(loopsan_format_names(), "text, json, markdown, sarif, folded, chrome, html");
  ck_assert_int_eq(loopsan_kind_from_name("pending-at-exit", 15), LOOPSAN_KIND_PENDING_AT_EXIT);
  ck_assert_int_eq(loopsan_kind_from_name("pending", 7), -1);
}
END_TEST

START_TEST(strbuf_numbers_and_long_lines) {
  /* fixed3 must print what "%.3f" prints (the Chrome report's numbers) */
  static const double values[] = {0.0, 0.0004, 0.0005, 1.5, 100.25, 999.9999, 123456789.123,
                                  1764650000123456.0 / 1000.0, -2.5, -0.25, 1e13, -1e13};
  struct loopsan_strbuf sb;
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    char want[64];
    snprintf(want, sizeof want, "%.3f", values[i]);
    loopsan_sb_init(&sb);
    loopsan_sb_fixed3(&sb, values[i]);
    ck_assert_str_eq(sb.data, want);
    loopsan_sb_free(&sb);
  }
  /* a printf longer than the room kept for one pass is formatted again */
  char big[1000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  loopsan_sb_init(&sb);
  loopsan_sb_puts(&sb, "<");
  loopsan_sb_printf(&sb, "%s|%d", big, 42);
  loopsan_sb_printf(&sb, "|%s", "end");
  ck_assert_uint_eq(sb.len, 1 + 999 + 3 + 4);
  ck_assert_int_eq(memcmp(sb.data + 1 + 999, "|42|end", 8), 0);
  char *path = NULL;
  size_t size = 0;
  FILE *out = open_memstream(&path, &size);
  ck_assert_int_eq(loopsan_sb_write(&sb, out), 0);
  fclose(out);
  ck_assert_uint_eq(size, 1 + 999 + 7);
  ck_assert_ptr_null(sb.data); /* freed by the write */
  free(path);
  /* streamed: out every megabyte, whole and in order, in bounded memory */
  out = open_memstream(&path, &size);
  loopsan_sb_init(&sb);
  loopsan_sb_stream_to(&sb, out);
  for (int i = 0; i < 300000; i++)
    loopsan_sb_printf(&sb, "%07d,", i);
  ck_assert_uint_lt(sb.cap, (size_t)4 << 20);
  ck_assert_int_eq(loopsan_sb_write(&sb, out), 0);
  fclose(out);
  ck_assert_uint_eq(size, 300000 * 8);
  ck_assert_int_eq(memcmp(path, "0000000,0000001,", 16), 0);
  ck_assert_int_eq(memcmp(path + size - 8, "0299999,", 8), 0);
  ck_assert_int_eq(memcmp(path + 131072 * 8, "0131072,", 8), 0);
  free(path);
  /* a buffer that failed to grow is not written */
  loopsan_sb_init(&sb);
  sb.failed = 1;
  out = open_memstream(&path, &size);
  ck_assert_int_eq(loopsan_sb_write(&sb, out), -1);
  fclose(out);
  ck_assert_uint_eq(size, 0);
  free(path);
}
END_TEST

static int by_value(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Every call's p50/p99 come from fine buckets (bounded memory): each rank's
 * value must be within 1/128 of the true one, and exact below 64 ticks. */
START_TEST(fine_quantiles_within_one_percent) {
  struct loopsan_replay r;
  memset(&r, 0, sizeof r);
  enum { N = 20000 };
  static uint64_t v[N];
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < N; i++) { /* a long-tailed mix, over many powers of two */
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    v[i] = i % 10 == 0 ? x % 50 : (x % 1000000) * (1 + i % 7) + 64;
    loopsan_replay_fine_add(&r, i % 3 ? 0x1000 : 0x2000, v[i]);
  }
  const struct replay_fine *f = loopsan_replay_fine(&r, 0x1000);
  ck_assert_ptr_nonnull(f);
  ck_assert_ptr_null(loopsan_replay_fine(&r, 0x3000));
  static uint64_t mine[N];
  size_t n = 0;
  for (size_t i = 0; i < N; i++)
    if (i % 3)
      mine[n++] = v[i];
  ck_assert_uint_eq(f->count, n);
  qsort(mine, n, sizeof mine[0], by_value);
  for (size_t k = 0; k < n; k += 97) {
    uint64_t got = loopsan_replay_fine_rank(f, k), want = mine[k];
    if (want < 64)
      ck_assert_uint_eq(got, want);
    else
      ck_assert_msg((double)(got > want ? got - want : want - got) <= (double)want / 128.0 + 0.5,
                    "rank %zu: %llu for %llu", k, (unsigned long long)got,
                    (unsigned long long)want);
  }
  loopsan_replay_free(&r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("report");
  TCase *tc = tcase_create("render");
  tcase_add_test(tc, json_fields_and_escaping);
  tcase_add_test(tc, text_headline_and_summary);
  tcase_add_test(tc, markdown_table_and_top);
  tcase_add_test(tc, folded_stacks);
  tcase_add_test(tc, chrome_slices_nest);
  tcase_add_test(tc, formats_by_name);
  tcase_add_test(tc, strbuf_numbers_and_long_lines);
  tcase_add_test(tc, fine_quantiles_within_one_percent);
  suite_add_tcase(s, tc);
  return loopsan_unit_run(s);
}
