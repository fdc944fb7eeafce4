#!/usr/bin/env python3
"""Check a loopsan JSON report against an .expect file.

An .expect file has one statement a line ('#' starts a comment):
  finding KEY=VALUE...   a finding that must be present; keys:
                         kind, type (object type), callback (callback
                         function), created (a function in created_at),
                         library, min_ms (duration at least), count
  only                   no finding beyond those listed
  none                   no finding at all
  exit N                 the program's exit status under loopsan (default 0)
  note TEXT              a process note containing TEXT
  run ARGS / requires CMD  used by tests/check-program.sh (ignored here)
Usage: check_report.py EXPECT REPORT_JSON EXIT_STATUS
"""
import json
import sys


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def matches(f, want):
    for key, value in want.items():
        if key == "kind" and f["kind"] != value:
            return False
        if key == "library" and f["library"] != value:
            return False
        if key == "type" and (f.get("object") or {}).get("type") != value:
            return False
        if key == "callback" and (f.get("callback") or {}).get("function") != value:
            return False
        if key == "created" and value not in [fr.get("function") for fr in f.get("created_at", [])]:
            return False
        if key == "min_ms" and not (f.get("duration_ms") or 0) >= float(value):
            return False
        if key == "count" and f.get("count") != int(value):
            return False
    return True


def main():
    expect_path, report_path, status = sys.argv[1], sys.argv[2], int(sys.argv[3])
    try:
        with open(report_path) as fh:
            report = json.load(fh)
    except (OSError, ValueError) as e:
        fail("no valid JSON report: %s" % e)
    for key in ("tool", "version", "format", "processes", "findings", "summary"):
        if key not in report:
            fail("report lacks %r" % key)
    if report["tool"] != "loopsan" or report["format"] != 1:
        fail("bad tool/format header")
    wanted, only, want_exit, notes = [], False, 0, []
    with open(expect_path) as fh:
        for line in fh:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            word, _, rest = line.partition(" ")
            if word == "finding":
                wanted.append(dict(kv.split("=", 1) for kv in rest.split()))
            elif word in ("only", "none"):
                only = True
            elif word == "exit":
                want_exit = int(rest)
            elif word == "note":
                notes.append(rest)
            elif word in ("run", "requires"):
                pass
            else:
                fail("bad .expect line: %s" % line)
    if status != want_exit:
        fail("exit status %d, expected %d" % (status, want_exit))
    findings = report["findings"]
    used = set()
    for want in wanted:
        hit = [i for i, f in enumerate(findings) if i not in used and matches(f, want)]
        if not hit:
            fail("no finding matches %s; findings: %s" % (
                want, [(f["kind"], (f.get("object") or {}).get("type"),
                        (f.get("callback") or {}).get("function")) for f in findings]))
        used.add(hit[0])
    if only and len(used) != len(findings):
        extra = [f["message"] for i, f in enumerate(findings) if i not in used]
        fail("unexpected findings: %s" % extra)
    all_notes = " | ".join(n for p in report["processes"] for n in p.get("notes", []))
    for n in notes:
        if n not in all_notes:
            fail("no process note contains %r (notes: %s)" % (n, all_notes))
    summary = {}
    for f in findings:
        if not f["suppressed"]:
            summary[f["kind"]] = summary.get(f["kind"], 0) + f["count"]
    if summary != report["summary"]:
        fail("summary %s does not match findings %s" % (report["summary"], summary))
    print("PASS: %d finding(s) as expected" % len(findings))


main()
