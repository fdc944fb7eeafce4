/* The HTML report: one self-contained file (no network, no CDN) that a
 * browser renders from the JSON report embedded in it: the summary, the
 * durations of each callback site as a histogram on a log scale, the
 * timeline of the loops' threads (what --record=all recorded), and the
 * findings grouped by where their objects were made, with collapsible
 * stacks whose frames link to their source lines. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyzer/strbuf.h"
#include "reports/report.h"

#define HTML_SLICES_MAX 20000 /* drawn per process: a browser's comfort */

static const char head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<title>loopsan report</title>\n<style>\n"
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\n"
    "h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}\n"
    "table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left;border-bottom:1px solid "
    "#eee}\n"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    ".error{color:#b00}.warning{color:#a60}.note{color:#555}\n"
    ".finding{margin:.4em 0 .8em 1em}.headline{font-weight:600}.detail{color:#444}\n"
    "ol.stack{font:12px/1.3 monospace;margin:.2em 0}ol.stack a{color:#035}\n"
    "svg .bar{fill:#4a7ab5}svg .slice{fill:#7aa36b}svg .slow{fill:#c0504d}\n"
    "svg .tick{stroke:#ddd}svg .axis{font-size:10px;fill:#666;text-anchor:middle}\n"
    "svg text{font:10px sans-serif;fill:#444}\n"
    "</style></head><body>\n<h1>loopsan report</h1>\n"
    "<section id=\"summary\"><h2>Summary</h2></section>\n"
    "<section id=\"callbacks\"><h2>How long callbacks took</h2></section>\n"
    "<section id=\"timeline\"><h2>Timeline</h2></section>\n"
    "<section id=\"findings\"><h2>Findings</h2></section>\n"
    "<script type=\"application/json\" id=\"loopsan-report\">";

static const char script[] =
    "</script>\n<script>\n"
    "'use strict';\n"
    "const R = JSON.parse(document.getElementById('loopsan-report').textContent);\n"
    "const T = JSON.parse(document.getElementById('loopsan-timeline').textContent);\n"
    "const NS = 'http://www.w3.org/2000/svg';\n"
    "function el(tag, attrs, ...kids) { const e = document.createElement(tag);\n"
    "  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);\n"
    "  for (const c of kids) e.append(c); return e; }\n"
    "function svg(tag, attrs, ...kids) { const e = document.createElementNS(NS, tag);\n"
    "  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);\n"
    "  for (const c of kids) e.append(c); return e; }\n"
    "function fname(f) { return f ? (f.function || ((f.module || '?').split('/').pop() + ' ' + "
    "f.address)) : '?'; }\n"
    "/* a link to the source line: a relative file name is the build's, taken as relative to\n"
    "   where loopsan made the report; a system library's sources are not on this machine */\n"
    "function frameItem(f) { const li = el('li', {}, fname(f) + ' ');\n"
    "  const sys = f && f.module && /^\\/(usr\\/)?lib/.test(f.module);\n"
    "  if (f && f.file && !sys) li.append(el('a', {href: 'file://' + "
    "encodeURI(f.file.startsWith('/') "
    "? f.file : T.cwd + '/' + f.file) + (f.line ? '#L' + f.line : ''), class: 'src'}, f.file + "
    "(f.line ? ':' + f.line : '')));\n"
    "  else if (f && f.file) li.append(f.file + (f.line ? ':' + f.line : ''));\n"
    "  return li; }\n"
    "function stack(title, frames) { const d = el('details', {class: 'stack'}, el('summary', {}, "
    "title));\n"
    "  const ol = el('ol', {class: 'stack', start: '0'}); for (const f of frames) "
    "ol.append(frameItem(f));\n"
    "  d.append(ol); return d; }\n"
    "function site(f) { for (const fr of f.created_at || []) if (fr.file && fr.module && "
    "!/^\\/(usr\\/)?lib/.test(fr.module)) return fname(fr) + ' ' + fr.file + ':' + fr.line;\n"
    "  return f.created_at && f.created_at.length ? fname(f.created_at[0]) : '(no creation "
    "stack)'; }\n"
    "/* summary */\n"
    "const sum = document.getElementById('summary');\n"
    "const kinds = Object.keys(R.summary);\n"
    "const withF = new Set(R.findings.filter(f => !f.suppressed).map(f => f.pid)).size;\n"
    "const nP = R.processes.length + (R.processes.length === 1 ? ' process' : ' processes');\n"
    "sum.append(el('p', {id: 'verdict'}, kinds.length ? 'Problems found in ' + withF + ' of ' + "
    "nP + '.' : 'No problems found in ' + nP + '.'));\n"
    "if (kinds.length) { const t = el('table', {id: 'kinds'}, el('tr', {}, el('th', {}, 'kind'), "
    "el('th', {}, 'count')));\n"
    "  for (const k of kinds) t.append(el('tr', {class: 'kind'}, el('td', {}, k), el('td', {class: "
    "'num'}, String(R.summary[k]))));\n"
    "  sum.append(t); }\n"
    "for (const p of R.processes) { const libs = Object.keys(p.observed || {});\n"
    "  sum.append(el('p', {class: 'process'}, (p.exe || '?') + ' (pid ' + p.pid + '): ' + "
    "(libs.length ? 'observed ' + libs.join(', ') : 'no event loop observed')));\n"
    "  for (const n of p.notes || []) sum.append(el('p', {class: 'note'}, 'note: ' + n)); }\n"
    "/* callbacks: a histogram per site, log2 buckets (x) and a log scale of counts (y) */\n"
    "const cbs = document.getElementById('callbacks');\n"
    "for (const p of R.processes) { const sites = (p.callbacks || []).slice(0, 30);\n"
    "  if (!sites.length) continue;\n"
    "  const t = el('table', {class: 'sites'}, el('tr', {}, ...['callback', 'calls', 'p50 ms', "
    "'p99 ms', 'max ms', 'durations (log scale)'].map(h => el('th', {}, h))));\n"
    "  for (const s of sites) { const g = svg('svg', {width: 240, height: 40, class: "
    "'histogram'});\n"
    "    const most = Math.max(...s.histogram.map(b => b.count));\n"
    "    for (const b of s.histogram) { const i = Math.max(0, Math.round(Math.log2(b.le_ms * 1e6)) "
    "- 1);\n"
    "      const h = Math.max(1, 36 * Math.log10(1 + b.count) / Math.log10(1 + most));\n"
    "      g.append(svg('rect', {class: 'bar', x: i * 6, y: 38 - h, width: 5, height: h}, "
    "svg('title', {}, '≤ ' + b.le_ms + ' ms: ' + b.count))); }\n"
    "    t.append(el('tr', {class: 'site'}, el('td', {}, fname(s.callback)), el('td', {class: "
    "'num'}, String(s.count)),\n"
    "      el('td', {class: 'num'}, s.p50_ms.toFixed(3)), el('td', {class: 'num'}, "
    "s.p99_ms.toFixed(3)), el('td', {class: 'num'}, s.max_ms.toFixed(3)), el('td', {}, g))); }\n"
    "  cbs.append(el('h3', {}, (p.exe || '?') + ' (pid ' + p.pid + ')'), t); }\n"
    "/* timeline: a band per thread, a lane per nesting depth, and a time axis */\n"
    "const tl = document.getElementById('timeline');\n"
    "for (const p of T.processes) { if (!p.slices.length) continue;\n"
    "  let t0 = Infinity, t1 = -Infinity; for (const s of p.slices) { t0 = Math.min(t0, s[0]); t1 = "
    "Math.max(t1, s[0] + s[1]); }\n"
    "  const W = 900, L = 14, span = Math.max(1, t1 - t0), bands = new Map(), depth = [];\n"
    "  const order = p.slices.map((s, i) => i).sort((a, b) => p.slices[a][2] - p.slices[b][2] || "
    "p.slices[a][0] - p.slices[b][0] || p.slices[b][1] - p.slices[a][1]);\n"
    "  let open = [], tid = null;\n"
    "  for (const i of order) { const s = p.slices[i];\n"
    "    if (s[2] !== tid) { tid = s[2]; open = []; }\n"
    "    while (open.length && s[0] >= open[open.length - 1]) open.pop();\n"
    "    depth[i] = open.length; open.push(s[0] + s[1]);\n"
    "    bands.set(tid, Math.max(bands.get(tid) || 0, depth[i] + 1)); }\n"
    "  const top = new Map(); let y = 24;\n"
    "  for (const [t, lanes] of bands) { top.set(t, y); y += lanes * L + 10; }\n"
    "  const g = svg('svg', {width: W + 90, height: y + 4, class: 'timeline'});\n"
    "  for (const [t, y0] of top) g.append(svg('text', {x: 0, y: y0 + 11}, 'thread ' + t));\n"
    "  const step = Math.pow(10, Math.floor(Math.log10(span / 5))) * ([1, 2, 5].find(m => "
    "span / (m * Math.pow(10, Math.floor(Math.log10(span / 5)))) <= 7) || 10);\n"
    "  for (let v = 0; v <= span; v += step) { const x = 90 + W * v / span;\n"
    "    g.append(svg('line', {class: 'tick', x1: x, x2: x, y1: 14, y2: y}));\n"
    "    g.append(svg('text', {class: 'axis', x: x, y: 10}, (v / 1000).toFixed(step < 1000 ? 3 : "
    "step < 10000 ? 1 : 0) + ' ms')); }\n"
    "  p.slices.forEach((s, i) => {\n"
    "    g.append(svg('rect', {class: s[4] ? 'slow' : 'slice', x: 90 + W * (s[0] - t0) / span, "
    "y: top.get(s[2]) + L * depth[i],\n"
    "      width: Math.max(0.5, W * s[1] / span), height: L - 2}, svg('title', {}, p.names[s[3]] + "
    "': ' + (s[1] / 1000).toFixed(3) + ' ms at +' + ((s[0] - t0) / 1000).toFixed(3) + ' ms'))); "
    "});\n"
    "  tl.append(el('h3', {}, 'pid ' + p.pid + ': ' + p.slices.length + (p.slices.length === 1 ? "
    "' callback' : ' callbacks') + ' recorded over ' + (span / 1000).toFixed(1) + ' ms (every "
    "callback with --record=all; else only the slow ones; a callback run inside another is drawn "
    "below it)'), g); }\n"
    "if (!tl.querySelector('svg')) tl.append(el('p', {}, 'No timeline: record with "
    "--record=all to have every callback on it.'));\n"
    "/* findings, grouped by where their objects were made */\n"
    "const fs = document.getElementById('findings'), groups = new Map();\n"
    "for (const f of R.findings) { if (f.suppressed) continue; const k = site(f);\n"
    "  if (!groups.has(k)) groups.set(k, []); groups.get(k).push(f); }\n"
    "if (!groups.size) fs.append(el('p', {}, 'None.'));\n"
    "for (const [k, list] of groups) { const g = el('details', {class: 'group', open: ''}, "
    "el('summary', {}, k + ' (' + list.length + ')'));\n"
    "  for (const f of list) { const d = el('div', {class: 'finding ' + f.kind});\n"
    "    const who = R.processes.find(p => p.pid === f.pid);\n"
    "    d.append(el('div', {class: 'headline ' + f.severity}, f.severity.toUpperCase() + ': ' + "
    "f.kind + ': ' + f.message + (f.count > 1 ? ' (' + f.count + ' times)' : '')));\n"
    "    d.append(el('div', {class: 'where'}, 'in ' + ((who && who.exe) || '?').split('/').pop() + "
    "' (pid ' + f.pid + (f.tid && f.tid !== f.pid ? ', thread ' + f.tid : '') + ')' + "
    "(f.callback ? ', callback ' + fname(f.callback) : '')));\n"
    "    if (f.detail) d.append(el('div', {class: 'detail'}, f.detail));\n"
    "    const label = {'slow-callback': 'stuck at', 'blocked-loop': 'stuck at', 'blocking-call': "
    "'blocked at', 'crash': 'crashed at'}[f.kind] || 'at';\n"
    "    if (f.stack && f.stack.length) d.append(stack(label + (f.stall_samples ? ' (' + "
    "f.stall_samples.at_stack + ' of ' + f.stall_samples.taken + ' samples)' : ''), f.stack));\n"
    "    if (f.cause && f.cause.length) d.append(stack('event that made it wrong', f.cause));\n"
    "    if (f.created_at && f.created_at.length) d.append(stack('created at', f.created_at));\n"
    "    g.append(d); }\n"
    "  fs.append(g); }\n"
    "document.body.setAttribute('data-rendered', 'yes');\n"
    "</script>\n</body></html>\n";

/* TEXT inside a <script> element: "</" would end it. */
static void put_script(FILE *out, const char *text) {
  for (const char *p = text; *p; p++) {
    if (p[0] == '<' && p[1] == '/')
      fputs("<\\", out);
    else
      fputc(*p, out);
  }
}

int loopsan_render_html(const struct loopsan_report *r, const struct loopsan_render_options *opts,
                        FILE *out) {
  char *json = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&json, &len);
  if (!mem)
    return -1;
  int rc = loopsan_render_json(r, opts, mem);
  fclose(mem);
  if (rc != 0 || !json) {
    free(json);
    return -1;
  }
  fputs(head, out);
  put_script(out, json);
  free(json);
  /* The timeline, compact: [start_us, dur_us, tid, name, slow] per slice. */
  struct loopsan_strbuf t;
  loopsan_sb_init(&t);
  char cwd[4096];
  loopsan_sb_puts(&t, "{\"cwd\": ");
  loopsan_sb_json_string(&t, getcwd(cwd, sizeof cwd) ? cwd : ".");
  loopsan_sb_puts(&t, ", \"processes\": [");
  for (size_t pi = 0; pi < r->n_processes; pi++) {
    const struct loopsan_process *p = &r->processes[pi];
    loopsan_sb_printf(&t, "%s{\"pid\": %d, \"names\": [", pi ? ", " : "", p->pid);
    for (size_t i = 0; i < p->n_slice_names; i++) {
      loopsan_sb_puts(&t, i ? ", " : "");
      loopsan_sb_json_string(&t, p->slice_names[i]);
    }
    loopsan_sb_puts(&t, "], \"slices\": [");
    size_t n = p->n_slices < HTML_SLICES_MAX ? p->n_slices : HTML_SLICES_MAX;
    for (size_t i = 0; i < n; i++) {
      const struct loopsan_slice *s = &p->slices[i];
      loopsan_sb_printf(&t, "%s[%.3f, %.3f, %d, %u, %d]", i ? ", " : "", s->start_us, s->dur_us,
                        s->tid, s->name, s->dur_us >= 100000.0);
    }
    loopsan_sb_puts(&t, "]}");
  }
  loopsan_sb_puts(&t, "]}");
  fputs("</script>\n<script type=\"application/json\" id=\"loopsan-timeline\">", out);
  put_script(out, t.data ? t.data : "{\"processes\": []}");
  loopsan_sb_free(&t);
  fputs(script, out);
  return 0;
}
