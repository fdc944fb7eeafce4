#!/usr/bin/env python3
"""Check a loopsan JSON report against an .expect file.

An .expect file has one statement a line ('#' starts a comment):
  finding KEY=VALUE...   a finding that must be present; keys:
                           kind, library, type (object type),
                           callback (callback function),
                           site (the innermost frame of created_at that is
                             the program's, not libuv's, libc's or the
                             loader's: where the object was made),
                           created (any function in created_at),
                           stack (any function in stack),
                           cause (any function in cause: misuse's first event),
                           chain (CALLBACK@FUNCTION: a step of the async
                             chain, created_in: the callback that was
                             running, and a function where its object
                             was made),
                           also (the object's other kinds, comma-separated,
                             '-' for none: the exact set),
                           detail (a substring of detail; quote it:
                             detail="never closed either"),
                           message (a substring of message),
                           min_ms, max_ms (duration bounds), count,
                           samples (at least this many stall samples taken)
  only                   no finding beyond those listed
  none                   no finding at all, and something was observed
                         (a clean report must not be an empty one)
  observed LIB KEY=N...  process(es) observed library LIB; keys: loops,
                         callbacks, or an object type (created count);
                         KEY>=N for a lower bound. Counts are summed over
                         the report's processes.
  timed FUNCTION KEY=N... a callback site (processes[].callbacks) of FUNCTION
                         was timed; keys: count, max_ms, p50_ms, p99_ms,
                         total_ms (KEY>=N for a lower bound, KEY<=N an upper)
  exit N                 the program's exit status under loopsan (default 0)
  note TEXT              a process note containing TEXT
  nonote TEXT            no process note containing TEXT
  run ARGS / requires CMD / options OPTS  used by tests/check-program.sh
                         (ignored here)
Unknown statements and keys are errors: a typo must not turn a check off.
Usage: check_report.py EXPECT REPORT_JSON EXIT_STATUS
"""
import json
import os
import re
import shlex
import sys

FINDING_KEYS = {"kind", "library", "type", "callback", "site", "created", "stack", "cause", "chain",
                "also",
                "detail", "message", "min_ms", "max_ms", "count", "samples"}
# Modules whose frames are not "the program's" for `site`.
LIBRARY_MODULE = re.compile(r"^(libuv\.so|libc\.so|libpthread|ld-linux|libloopsan|libevent|libev\.so"
                            r"|libglib|libsystemd)")


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def site(f):
    """The function of the innermost program frame of created_at."""
    for fr in f.get("created_at", []):
        module = os.path.basename(fr.get("module") or "")
        if not LIBRARY_MODULE.match(module):
            return fr.get("function")
    return None


def functions(frames):
    return [fr.get("function") for fr in frames or []]


def matches(f, want):
    for key, value in want.items():
        if key == "kind":
            ok = f["kind"] == value
        elif key == "library":
            ok = f["library"] == value
        elif key == "type":
            ok = (f.get("object") or {}).get("type") == value
        elif key == "callback":
            ok = (f.get("callback") or {}).get("function") == value
        elif key == "site":
            ok = site(f) == value
        elif key == "created":
            ok = value in functions(f.get("created_at"))
        elif key == "stack":
            ok = value in functions(f.get("stack"))
        elif key == "cause":
            ok = value in functions(f.get("cause"))
        elif key == "chain":
            # "callback@site": a step of the async chain, innermost first
            # in the report: the callback that was running and a function
            # where its object was made
            cb, _, made = value.partition("@")
            ok = any((c.get("callback") or {}).get("function") == cb and
                     (not made or made in functions(c.get("created_at")))
                     for c in f.get("created_in") or [])
        elif key == "also":
            ok = sorted(f.get("also", [])) == sorted([] if value == "-" else value.split(","))
        elif key == "detail":
            ok = value in (f.get("detail") or "")
        elif key == "message":
            ok = value in f.get("message", "")
        elif key == "min_ms":
            ok = (f.get("duration_ms") or 0) >= float(value)
        elif key == "max_ms":
            ok = f.get("duration_ms") is not None and f["duration_ms"] <= float(value)
        elif key == "count":
            ok = f.get("count") == int(value)
        elif key == "samples":
            ok = (f.get("stall_samples") or {}).get("taken", 0) >= int(value)
        else:
            fail("unknown finding key %r" % key)
        if not ok:
            return False
    return True


def parse_pairs(words, line, allowed=None):
    pairs = []
    for kv in words:
        m = re.match(r"^([A-Za-z_0-9-]+)(>=|<=|=)(.*)$", kv)
        if not m:
            fail("bad KEY=VALUE %r in: %s" % (kv, line))
        if allowed is not None and m.group(1) not in allowed:
            fail("unknown key %r in: %s (keys: %s)" % (m.group(1), line, ", ".join(sorted(allowed))))
        pairs.append(m.groups())
    return pairs


def observed_total(report, lib):
    total = {"loops": 0, "callbacks": 0}
    for p in report["processes"]:
        o = (p.get("observed") or {}).get(lib)
        if not o:
            continue
        total["loops"] += o.get("loops", 0)
        total["callbacks"] += o.get("callbacks", 0)
        for t, n in (o.get("objects") or {}).items():
            total[t] = total.get(t, 0) + n
    return total


def something_observed(report):
    for p in report["processes"]:
        for o in (p.get("observed") or {}).values():
            if o.get("callbacks", 0) or any(o.get("objects", {}).values()):
                return True
    return False


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
    wanted, only, none, want_exit, notes, nonotes, observed = [], False, False, 0, [], [], []
    timed = []
    with open(expect_path) as fh:
        for line in fh:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            word, _, rest = line.partition(" ")
            if word == "finding":
                want = {}
                for key, op, value in parse_pairs(shlex.split(rest), line, FINDING_KEYS):
                    if op != "=":
                        fail("finding keys take '=': %s" % line)
                    want[key] = value
                if not want:
                    fail("a finding needs at least one key: %s" % line)
                wanted.append(want)
            elif word == "only" and not rest:
                only = True
            elif word == "none" and not rest:
                only = none = True
            elif word == "timed":
                words = rest.split()
                if not words:
                    fail("timed needs a function: %s" % line)
                timed.append((words[0], parse_pairs(words[1:], line,
                                                    {"count", "max_ms", "p50_ms", "p99_ms", "total_ms"})))
            elif word == "observed":
                words = rest.split()
                if not words:
                    fail("observed needs a library: %s" % line)
                observed.append((words[0], parse_pairs(words[1:], line)))
            elif word == "exit":
                want_exit = int(rest)
            elif word == "note" and rest:
                notes.append(rest)
            elif word == "nonote" and rest:
                nonotes.append(rest)
            elif word in ("run", "requires", "options"):
                pass
            else:
                fail("bad .expect line: %s" % line)
    if none and wanted:
        fail("'none' and 'finding' contradict each other in %s" % expect_path)
    if status != want_exit:
        fail("exit status %d, expected %d" % (status, want_exit))
    findings = report["findings"]
    used = set()
    for want in wanted:
        hit = [i for i, f in enumerate(findings) if i not in used and matches(f, want)]
        if not hit:
            fail("no finding matches %s; findings: %s" % (
                want, [(f["kind"], (f.get("object") or {}).get("type"),
                        (f.get("callback") or {}).get("function"), site(f), f.get("also"))
                       for f in findings]))
        used.add(hit[0])
    if only and len(used) != len(findings):
        extra = [f["message"] for i, f in enumerate(findings) if i not in used]
        fail("unexpected findings: %s" % extra)
    if none and not something_observed(report):
        fail("'none' needs something observed: no process's report says it saw a loop object "
             "or callback (observed: %s)" % [p.get("observed") for p in report["processes"]])
    for lib, pairs in observed:
        total = observed_total(report, lib)
        if not any(lib in (p.get("observed") or {}) for p in report["processes"]):
            fail("%s was not observed in any process" % lib)
        for key, op, value in pairs:
            have = total.get(key, 0)
            if (op == "=" and have != int(value)) or (op == ">=" and have < int(value)):
                fail("observed %s %s is %d, expected %s%s (all: %s)" % (lib, key, have, op, value, total))
    for fn, pairs in timed:
        sites = [s for p in report["processes"] for s in p.get("callbacks", [])
                 if (s.get("callback") or {}).get("function") == fn]
        if not sites:
            fail("no callback site of %s was timed (sites: %s)" % (fn, [
                (s.get("callback") or {}).get("function") for p in report["processes"]
                for s in p.get("callbacks", [])]))
        timed_site = sites[0]
        for key, op, value in pairs:
            have = float(timed_site.get(key, 0))
            if ((op == "=" and have != float(value)) or (op == ">=" and have < float(value)) or
                    (op == "<=" and have > float(value))):
                fail("timed %s: %s is %s, expected %s%s" % (fn, key, have, op, value))
    all_notes = " | ".join(n for p in report["processes"] for n in p.get("notes", []))
    for n in notes:
        if n not in all_notes:
            fail("no process note contains %r (notes: %s)" % (n, all_notes))
    for n in nonotes:
        if n in all_notes:
            fail("a process note contains %r (notes: %s)" % (n, all_notes))
    summary = {}
    for f in findings:
        if not f["suppressed"]:
            summary[f["kind"]] = summary.get(f["kind"], 0) + f["count"]
    if summary != report["summary"]:
        fail("summary %s does not match findings %s" % (report["summary"], summary))
    print("PASS: %d finding(s) as expected" % len(findings))


main()
