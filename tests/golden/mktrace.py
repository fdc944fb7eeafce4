#!/usr/bin/env python3
"""Writes the golden traces: small loopsan traces (format 2, see
docs/trace-format.md), each the record of one made-up process that exercises
one rule of the analyzer. They are checked in next to their expected reports
(tests/golden/*.v2.{txt,json}); tests/golden.test checks that `loopsan
report` still turns each into its expected report. This script is a second,
independent writer of the format: it is how the traces were made, and how a
new one is made (add a scenario, run `tests/golden/update.sh`).

Every value is fixed (pids, addresses, timestamps in nanoseconds, module
paths that exist nowhere), so the reports are byte-for-byte stable.

Usage: mktrace.py OUTDIR
"""
import os
import struct
import sys

VERSION = 2  # the version of the .v2 scenarios; glib_sources writes 3
CHUNK_MAGIC = 0x4B43534C

# Record types, libraries, object kinds and operations (common/trace_format.h).
PROCESS, CLOCK, MODULE, MODULE_UNLOAD, THREAD, STACK, TYPE, OBJ_NEW, OBJ_OP, DISPATCH, \
    API_ERROR, LOST, END, COUNTS, UNFINISHED, CHILD_EXIT, BLOCKING, WRONG_THREAD = range(1, 19)
LIB_UV, LIB_EV, LIB_GLIB = 1, 3, 4
KIND_LOOP, KIND_HANDLE, KIND_REQUEST, KIND_WATCHER = 1, 2, 3, 4
OP_START, OP_STOP, OP_USE, OP_CLOSE, OP_CLOSED, OP_FIRED, OP_COMPLETE, OP_RUN = range(1, 9)
OP_ATTACH = 10  # format 3: cb holds the loop's object id
CRASH = 20  # format 3
HISTOGRAM = 21  # format 3: a callback site's durations, log2 buckets of ticks
HIST_BUCKETS = 40
DISPATCH_SHORT = 22  # format 3: a dispatch like a recent one of its thread, in 16 bytes
DISPATCH_PAIRS = 16
ITERATION_POLL = 9  # format 3: DISPATCH aux of a poll/select loop's iteration
CLOSED_WITH_LOOP = 1  # format 3: the arg of OP_CLOSED
START_ONESHOT, START_SCHEDULED = 1, 2
END_EXIT, END__EXIT, END_EXEC = 1, 2, 3
OBJF_DEFAULT_LOOP, OBJF_LOOP = 1, 2
OBJF_LIVES_WITH_LOOP, OBJF_LIBRARY_OWNED = 4, 8  # format 3
APIERR_LOOP_CLOSE = 1
MS = 1000000  # timestamps are nanoseconds (ticks_per_sec 1e9)

UV_TYPES = [  # (type id, name, kind): the shim's table (preload/lib_uv_internal.h)
    (0, "uv_loop_t", KIND_LOOP), (1, "uv_timer_t", KIND_HANDLE), (2, "uv_idle_t", KIND_HANDLE),
    (5, "uv_async_t", KIND_HANDLE), (6, "uv_tcp_t", KIND_HANDLE), (12, "uv_process_t", KIND_HANDLE),
    (15, "uv_write_t", KIND_REQUEST), (21, "uv_work_t", KIND_REQUEST), (22, "uv_fs_t", KIND_REQUEST),
]
EV_TYPES = [(0, "ev_loop", KIND_LOOP), (1, "ev_io", KIND_WATCHER), (2, "ev_timer", KIND_WATCHER)]
GLIB_TYPES = [(0, "GMainContext", KIND_LOOP), (2, "GSource (idle)", KIND_HANDLE),
              (3, "GSource (timeout)", KIND_HANDLE), (6, "GSource (unix fd)", KIND_HANDLE)]
T = {name: tid for tid, name, _ in UV_TYPES + EV_TYPES + GLIB_TYPES}
LIB_OF = dict([(name, LIB_UV) for _, name, _ in UV_TYPES] + [(name, LIB_EV) for _, name, _ in EV_TYPES]
              + [(name, LIB_GLIB) for _, name, _ in GLIB_TYPES])

EXE = "/golden/bin/server"
BASE = 0x555555554000  # where the made-up program is mapped


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def record(rtype, body, aux=0, tail=b""):
    size = 8 + len(body) + len(tail)
    pad = (-size) % 8
    return struct.pack("<HHI", rtype, size + pad, aux) + body + tail + b"\0" * pad


def fn(offset):
    """An address in the program: a function at BASE + offset."""
    return BASE + offset


class Trace:
    """One process's trace: records are grouped into chunks by thread."""

    def __init__(self, pid, argv, slow_ms=100, version=VERSION):
        self.pid, self.argv, self.version = pid, argv, version
        self.chunks = []  # (tid, [records])
        self.next_stack = 1
        self.preamble(slow_ms)

    def chunk(self, tid=None):
        self.chunks.append((tid or self.pid, []))

    def add(self, rec):
        if not self.chunks:
            self.chunk()
        self.chunks[-1][1].append(rec)

    def preamble(self, slow_ms):
        exe = EXE.encode()
        args = b"".join(a.encode() + b"\0" for a in self.argv)
        self.add(record(PROCESS, struct.pack("<IIIIQQQIIII", self.version, self.pid, 1, 0,
                                             1767225600 * 10**9, slow_ms * MS, 10 * MS, 32,
                                             len(exe), len(args), len(self.argv)), tail=exe + args))
        self.add(record(THREAD, struct.pack("<II", self.pid, 6), tail=b"server"))
        self.add(record(CLOCK, struct.pack("<QQQ", 1000 * MS, 1000 * MS, 10**9)))
        for lib, types in ((LIB_UV, UV_TYPES), (LIB_EV, EV_TYPES)) + \
                (((LIB_GLIB, GLIB_TYPES),) if self.version >= 3 else ()):
            for tid, name, kind in types:
                self.add(record(TYPE, struct.pack("<HHHH", lib, tid, kind, len(name)), tail=name.encode()))
        path = EXE.encode()
        self.add(record(MODULE, struct.pack("<QQQII", BASE, BASE, BASE + 0x10000, 0, len(path)),
                        tail=path))

    def stack(self, *offsets):
        sid = self.next_stack
        self.next_stack += 1
        self.add(record(STACK, struct.pack("<II", sid, len(offsets)),
                        tail=b"".join(struct.pack("<Q", fn(o)) for o in offsets)))
        return sid

    def new(self, ts, obj, type_name, address, stack, loop=0, flags=0, parent=None):
        if type_name in ("uv_loop_t", "ev_loop", "GMainContext"):
            flags |= OBJF_LOOP  # as the shim marks loops (kept by compaction)
        body = struct.pack("<QQQQIHH", ts, obj, loop, address, stack, LIB_OF[type_name], T[type_name])
        if parent is not None:  # format 3: made in a callback of object `parent`
            body += struct.pack("<Q", parent)
        self.add(record(OBJ_NEW, body, aux=flags))

    def op(self, ts, obj, op, arg=0, cb=0, stack=0):
        body = struct.pack("<QQ", ts, obj)
        if cb or stack:
            body += struct.pack("<Q", cb)
        if stack:
            body += struct.pack("<II", stack, 0)
        self.add(record(OBJ_OP, body, aux=(op | ((arg & 0xFFFFFF) << 8))))

    def dispatch(self, ts, duration, obj, cb, slot=0):
        self.add(record(DISPATCH, struct.pack("<QQQQ", ts, duration, obj, cb), aux=slot))

    def dispatch_short(self, delta, duration, entry, slot=0):
        self.add(record(DISPATCH_SHORT, struct.pack("<II", delta, duration), aux=slot | entry << 8))

    def api_error(self, ts, obj, name, result, stack=0, loop_close=False):
        self.add(record(API_ERROR, struct.pack("<QQiIHHI", ts, obj, result, stack, LIB_UV, len(name), 0),
                        aux=APIERR_LOOP_CLOSE if loop_close else 0, tail=name.encode()))

    def counts(self, dispatches, per_type):
        libs = [0] * 8
        libs[LIB_UV] = dispatches
        body = struct.pack("<HHI", len(libs), len(per_type), 0)
        tail = b"".join(struct.pack("<Q", n) for n in libs)
        tail += b"".join(struct.pack("<HHIQQ", LIB_UV, T[name], 0, c, e) for name, (c, e) in per_type.items())
        self.add(record(COUNTS, body, tail=tail))

    def blocking(self, ts, duration, obj, cb, dispatch_ts, stack, name):
        self.add(record(BLOCKING, struct.pack("<QQQQQIHH", ts, duration, obj, cb, dispatch_ts, stack,
                                              LIB_UV, len(name)), tail=name.encode()))

    def wrong_thread(self, ts, obj, loop, owner_tid, stack, name):
        self.add(record(WRONG_THREAD, struct.pack("<QQQIIHHI", ts, obj, loop, owner_tid, stack, LIB_UV,
                                                  len(name), 0), tail=name.encode()))

    def histogram(self, cb, buckets, total, maximum, slot=0, library=1):
        """BUCKETS: {bucket index: count}."""
        counts = [buckets.get(i, 0) for i in range(HIST_BUCKETS)]
        self.add(record(HISTOGRAM, struct.pack("<QQQQH6x", cb, total, maximum, sum(counts), library)
                        + struct.pack("<%dI" % HIST_BUCKETS, *counts), aux=slot))

    def crash(self, ts, obj, cb, dispatch_ts, addr, stack, code, signal, slot=0):
        self.add(record(CRASH, struct.pack("<QQQQQIiIHH", ts, obj, cb, dispatch_ts, addr, stack, code,
                                           self.pid, LIB_UV, slot), aux=signal))

    def unfinished(self, ts, end_ts, obj, cb, how, slot=0):
        self.add(record(UNFINISHED, struct.pack("<QQQQIHH", ts, end_ts, obj, cb, self.pid, LIB_UV, how),
                        aux=slot))

    def lost(self, reason, n):
        self.add(record(LOST, struct.pack("<Q", n), aux=reason))

    def child_exit(self, ts, pid, wstatus):
        self.add(record(CHILD_EXIT, struct.pack("<QIi", ts, pid, wstatus)))

    def end(self, ts, how=END_EXIT, status=0):
        self.add(record(END, struct.pack("<QIi", ts, how, status)))

    def write(self, path, corrupt_chunk=None, cut=0):
        out = bytearray(b"LOOPSANT" + struct.pack("<II", self.version, 16))
        for seq, (tid, recs) in enumerate(self.chunks):
            payload = b"".join(recs)
            crc = crc32c(payload)
            if seq == corrupt_chunk:
                payload = payload[:20] + b"\xff" + payload[21:]
            out += struct.pack("<IIIIQ", CHUNK_MAGIC, len(payload), crc, tid, seq) + payload
        with open(path, "wb") as fh:
            fh.write(bytes(out[:len(out) - cut]))


def spill(path, tid, records, inflight, dispatches):
    """A spill file a killed thread left: unwritten records and the
    callbacks it was inside of (t0, obj, cb, slot)."""
    data = b"".join(records)
    libs = [0] * 8
    libs[LIB_UV] = dispatches
    header = b"LOOPSPIL" + struct.pack("<IIIIII", VERSION, tid, len(data), 0, len(data), len(inflight))
    for i in range(4):
        t0, obj, cb, slot = inflight[i] if i < len(inflight) else (0, 0, 0, 0)
        header += struct.pack("<QQQII", t0, obj, cb, slot, LIB_UV)
    header += b"".join(struct.pack("<Q", n) for n in libs)
    header += b"\0" * (256 - len(header))
    with open(path, "wb") as fh:
        fh.write(header + data)


# Function offsets in the made-up program (named nowhere: reports show them
# as server+0x...).
MAIN, START_TICKER, ON_TICK, MAKE_CONN, ON_READ, OPEN_IDLE, ON_IDLE, ON_WORK, SUBMIT, ON_OPEN, \
    SPAWN_HELPER, ON_EXIT = (0x1100 + 0x40 * i for i in range(12))


def slow_callback(out):
    """Two slow dispatches of one timer callback (merged, the slowest kept),
    one fast one, and a slow close callback; the timer ends well."""
    t = Trace(4001, [EXE, "--slow"])
    loop = t.stack(MAIN)
    t.new(1000 * MS, 1, "uv_loop_t", 0x7000, loop)
    s = t.stack(START_TICKER, MAIN)
    t.new(1001 * MS, 2, "uv_timer_t", 0x7100, s, loop=1)
    t.op(1001 * MS, 2, OP_START, START_SCHEDULED, cb=fn(ON_TICK))
    t.op(1002 * MS, 1, OP_RUN)
    t.op(1011 * MS, 2, OP_FIRED, cb=fn(ON_TICK))
    t.dispatch(1011 * MS, 152301000, 2, fn(ON_TICK))
    t.dispatch(1200 * MS, 120500000, 2, fn(ON_TICK))
    t.op(1400 * MS, 2, OP_CLOSE, cb=fn(ON_EXIT))
    t.dispatch(1401 * MS, 110 * MS, 2, fn(ON_EXIT), slot=2)
    t.op(1511 * MS, 2, OP_CLOSED, cb=fn(ON_EXIT))
    t.op(1512 * MS, 1, OP_CLOSED)
    t.counts(40, {"uv_loop_t": (1, 1), "uv_timer_t": (1, 1)})
    t.end(1513 * MS)
    t.write(os.path.join(out, "slow_callback.v2.trace"))


def leaks_and_ebusy(out):
    """uv_loop_close fails with UV_EBUSY: the timer that kept it open, a
    handle whose uv_close never finished, and the loop itself."""
    t = Trace(4002, [EXE])
    t.new(1000 * MS, 1, "uv_loop_t", 0x7000, t.stack(MAIN))
    t.new(1001 * MS, 2, "uv_timer_t", 0x7100, t.stack(START_TICKER, MAIN), loop=1)
    t.op(1001 * MS, 2, OP_START, 0, cb=fn(ON_TICK))  # repeating, not a deadline
    t.new(1002 * MS, 3, "uv_tcp_t", 0x7200, t.stack(MAKE_CONN, MAIN), loop=1)
    t.op(1002 * MS, 3, OP_START, 0, cb=fn(ON_READ))
    t.op(1003 * MS, 1, OP_RUN)
    t.op(1100 * MS, 3, OP_CLOSE)
    t.api_error(1101 * MS, 1, "uv_loop_close", -16, t.stack(MAIN), loop_close=True)
    t.counts(3, {"uv_loop_t": (1, 0), "uv_timer_t": (1, 0), "uv_tcp_t": (1, 0)})
    t.end(1102 * MS)
    t.write(os.path.join(out, "leaks_and_ebusy.v2.trace"))


def one_problem_one_finding(out):
    """Each object is reported once, under its most specific kind: an armed
    timer never closed (pending, also unclosed), an idle handle never
    started nor closed (never-started, also unclosed), one never started but
    closed, a work request that never completed, and the default loop,
    which is never reported."""
    t = Trace(4003, [EXE])
    t.new(1000 * MS, 1, "uv_loop_t", 0x7000, t.stack(MAIN), flags=OBJF_DEFAULT_LOOP)
    t.new(1001 * MS, 2, "uv_timer_t", 0x7100, t.stack(START_TICKER, MAIN), loop=1)
    t.op(1001 * MS, 2, OP_START, START_SCHEDULED | START_ONESHOT, cb=fn(ON_TICK))
    t.new(1002 * MS, 3, "uv_idle_t", 0x7200, t.stack(OPEN_IDLE, MAIN), loop=1)
    t.new(1003 * MS, 4, "uv_idle_t", 0x7300, t.stack(OPEN_IDLE, MAKE_CONN, MAIN), loop=1)
    t.op(1004 * MS, 4, OP_CLOSE)
    t.op(1005 * MS, 4, OP_CLOSED)
    t.new(1006 * MS, 5, "uv_work_t", 0x7400, t.stack(SUBMIT, MAIN), loop=1)
    t.op(1006 * MS, 5, OP_START, START_SCHEDULED | START_ONESHOT, cb=fn(ON_WORK))
    t.op(1007 * MS, 1, OP_RUN, 1)
    t.counts(0, {"uv_loop_t": (1, 0), "uv_timer_t": (1, 0), "uv_idle_t": (2, 1), "uv_work_t": (1, 0)})
    t.end(1010 * MS, END_EXIT, 0)
    t.write(os.path.join(out, "one_problem_one_finding.v2.trace"))


def never_returned_exit(out):
    """A uv_fs_t callback calls exit() after 250 ms (UNFINISHED how=exit):
    it is slow until exit, and its request is not pending; a process
    handle whose uv_spawn failed is not "never started"."""
    t = Trace(4004, [EXE, "--exit"])
    t.new(1000 * MS, 1, "uv_loop_t", 0x7000, t.stack(MAIN), flags=OBJF_DEFAULT_LOOP)
    t.new(1001 * MS, 2, "uv_process_t", 0x7100, t.stack(SPAWN_HELPER, MAIN), loop=1)
    t.api_error(1001 * MS, 2, "uv_spawn", -2, t.stack(SPAWN_HELPER, MAIN))
    t.op(1002 * MS, 2, OP_CLOSE)
    t.op(1003 * MS, 2, OP_CLOSED)
    t.new(1004 * MS, 3, "uv_fs_t", 0x7200, t.stack(ON_OPEN - 0x20, MAIN), loop=1)
    t.op(1004 * MS, 3, OP_START, START_SCHEDULED | START_ONESHOT, cb=fn(ON_OPEN))
    t.unfinished(1010 * MS, 1260 * MS, 3, fn(ON_OPEN), END_EXIT)
    t.counts(1, {"uv_loop_t": (1, 0), "uv_process_t": (1, 1), "uv_fs_t": (1, 0)})
    t.end(1260 * MS, END_EXIT, 5)
    t.write(os.path.join(out, "never_returned_exit.v2.trace"))


def killed(out):
    """SIGKILLed while inside a timer callback: no END record. What the
    process had open is counted, not reported as leaks; the records it had
    not written out are recovered from its spill file, whose header says
    which callback it was running (how long is unknown: a note)."""
    t = Trace(4005, [EXE, "--hang"])
    t.new(1000 * MS, 1, "uv_loop_t", 0x7000, t.stack(MAIN))
    t.new(1001 * MS, 2, "uv_timer_t", 0x7100, t.stack(START_TICKER, MAIN), loop=1)
    t.op(1001 * MS, 2, OP_START, START_SCHEDULED, cb=fn(ON_TICK))
    t.counts(0, {"uv_loop_t": (1, 0), "uv_timer_t": (1, 0)})
    path = os.path.join(out, "killed.v2.trace")
    t.write(path)
    unwritten = [record(OBJ_OP, struct.pack("<QQQ", 1011 * MS, 2, fn(ON_TICK)), aux=OP_FIRED),
                 record(OBJ_OP, struct.pack("<QQ", 1011 * MS, 1), aux=OP_RUN)]
    spill(path + ".spill.0", 4005, unwritten, [(1011 * MS, 2, fn(ON_TICK), 0)], 1)


def damaged(out):
    """A trace whose second chunk is corrupt and whose last one is cut
    short: read as far as it is valid, and the losses are told."""
    t = Trace(4006, [EXE])
    t.new(1000 * MS, 1, "uv_loop_t", 0x7000, t.stack(MAIN))
    t.new(1001 * MS, 2, "uv_timer_t", 0x7100, t.stack(START_TICKER, MAIN), loop=1)
    t.op(1001 * MS, 2, OP_START, 0, cb=fn(ON_TICK))
    t.chunk()
    t.dispatch(1100 * MS, 300 * MS, 2, fn(ON_TICK))  # lost with its chunk
    t.chunk()
    t.dispatch(1500 * MS, 200 * MS, 2, fn(ON_TICK))
    t.lost(1, 3)
    t.chunk()
    t.end(2000 * MS)
    t.write(os.path.join(out, "damaged.v2.trace"), corrupt_chunk=1, cut=10)


def orphans_across_threads(out):
    """A handle made on a worker thread whose chunk reaches the file after
    the main thread's chunk that uses and closes it: the uses are replayed
    when the object appears, so the handle counts as started and closed."""
    t = Trace(4007, [EXE])
    t.new(1000 * MS, 1, "uv_loop_t", 0x7000, t.stack(MAIN))
    t.op(1002 * MS, 2, OP_START, 0, cb=fn(ON_IDLE))
    t.dispatch(1003 * MS, 130 * MS, 2, fn(ON_IDLE))
    t.op(1200 * MS, 2, OP_CLOSE)
    t.op(1201 * MS, 2, OP_CLOSED)
    t.op(1202 * MS, 1, OP_CLOSED)
    t.chunk(tid=4008)
    t.new(1001 * MS, 2, "uv_async_t", 0x7100, t.stack(OPEN_IDLE), loop=1)
    t.chunk()
    t.counts(5, {"uv_loop_t": (1, 1), "uv_async_t": (1, 1)})
    t.end(1203 * MS)
    t.write(os.path.join(out, "orphans_across_threads.v2.trace"))


def reaped_child(out):
    """Two processes of one run (a directory): a worker SIGKILLed while
    stuck in a callback, and its parent, whose waitpid() recorded when and
    how the worker died. The worker's callback is slow until that moment."""
    d = os.path.join(out, "reaped_child.v2.d")
    os.makedirs(d, exist_ok=True)
    parent = Trace(5001, [EXE, "--supervise"])
    parent.child_exit(1500 * MS, 5002, 9)  # wait status: killed by SIGKILL
    parent.counts(0, {})
    parent.end(1600 * MS)
    parent.write(os.path.join(d, "loopsan.5001.trace"))
    child = Trace(5002, [EXE, "--worker"])
    child.new(1000 * MS, 1, "uv_loop_t", 0x7000, child.stack(MAIN))
    child.new(1001 * MS, 2, "uv_timer_t", 0x7100, child.stack(START_TICKER, MAIN), loop=1)
    child.op(1001 * MS, 2, OP_START, START_SCHEDULED, cb=fn(ON_TICK))
    path = os.path.join(d, "loopsan.5002.trace")
    child.write(path)
    spill(path + ".spill.0", 5002, [], [(1100 * MS, 2, fn(ON_TICK), 0)], 1)


def libev_watchers(out):
    """libev watchers are stopped, never closed: one still active when its
    own loop was destroyed was never stopped; on the default loop (which
    lives as long as the process) an active watcher is no leak, an armed
    timer that never fired is pending, and a one-shot timer that fired
    stopped itself."""
    t = Trace(4010, [EXE, "--ev"])
    t.new(1000 * MS, 1, "ev_loop", 0x7000, t.stack(MAIN), flags=OBJF_DEFAULT_LOOP)
    t.new(1001 * MS, 2, "ev_loop", 0x8000, t.stack(MAKE_CONN, MAIN))
    t.new(1002 * MS, 3, "ev_io", 0x8100, t.stack(ON_READ - 0x20, MAKE_CONN, MAIN), loop=2)
    t.op(1002 * MS, 3, OP_START, 0, cb=fn(ON_READ))
    t.op(1003 * MS, 2, OP_RUN)
    t.op(1004 * MS, 2, OP_CLOSED, stack=t.stack(MAKE_CONN, MAIN))
    t.new(1005 * MS, 4, "ev_io", 0x7100, t.stack(OPEN_IDLE, MAIN), loop=1)
    t.op(1005 * MS, 4, OP_START, 0, cb=fn(ON_IDLE))
    t.new(1006 * MS, 5, "ev_timer", 0x7200, t.stack(START_TICKER, MAIN), loop=1)
    t.op(1006 * MS, 5, OP_START, START_SCHEDULED | START_ONESHOT, cb=fn(ON_TICK))
    t.new(1007 * MS, 6, "ev_timer", 0x7300, t.stack(SUBMIT, MAIN), loop=1)
    t.op(1007 * MS, 6, OP_START, START_SCHEDULED | START_ONESHOT, cb=fn(ON_WORK))
    t.op(1008 * MS, 1, OP_RUN)
    t.op(1017 * MS, 6, OP_FIRED, cb=fn(ON_WORK))
    t.end(1100 * MS)
    t.write(os.path.join(out, "libev_watchers.v2.trace"))


def glib_sources(out):
    """Format 3, GLib: a source lives as long as its context. A timeout
    on the default context that never fired is pending; an fd source
    still attached when the program freed its context was never removed;
    a source made and released without being attached never started; an
    idle source still attached to the default context is let be, and so is
    a source GIO made for itself (library-owned), whatever its state."""
    t = Trace(4011, [EXE, "--glib"], version=3)
    t.new(1000 * MS, 1, "GMainContext", 0x7000, t.stack(MAIN), flags=OBJF_DEFAULT_LOOP)
    t.new(1001 * MS, 2, "GMainContext", 0x8000, t.stack(MAKE_CONN, MAIN))
    t.new(1002 * MS, 3, "GSource (timeout)", 0x7100, t.stack(START_TICKER, MAIN),
          flags=OBJF_LIVES_WITH_LOOP)
    t.op(1002 * MS, 3, OP_ATTACH, cb=1)
    t.op(1002 * MS, 3, OP_START, START_SCHEDULED, cb=fn(ON_TICK))
    t.new(1003 * MS, 4, "GSource (unix fd)", 0x8100, t.stack(ON_READ - 0x20, MAKE_CONN, MAIN),
          flags=OBJF_LIVES_WITH_LOOP)
    t.op(1003 * MS, 4, OP_ATTACH, cb=2)
    t.op(1003 * MS, 4, OP_START, 0, cb=fn(ON_READ))
    t.op(1004 * MS, 2, OP_RUN)
    t.op(1005 * MS, 4, OP_CLOSED, CLOSED_WITH_LOOP)
    t.op(1005 * MS, 2, OP_CLOSED, stack=t.stack(MAKE_CONN, MAIN))
    t.new(1006 * MS, 5, "GSource (idle)", 0x7200, t.stack(OPEN_IDLE, MAIN), flags=OBJF_LIVES_WITH_LOOP)
    t.op(1006 * MS, 5, OP_ATTACH, cb=1)
    t.op(1006 * MS, 5, OP_START, START_SCHEDULED, cb=fn(ON_IDLE))
    t.op(1007 * MS, 5, OP_FIRED, cb=fn(ON_IDLE))
    t.new(1008 * MS, 6, "GSource (timeout)", 0x7300, t.stack(SUBMIT, MAIN),
          flags=OBJF_LIVES_WITH_LOOP | OBJF_LIBRARY_OWNED)
    t.op(1008 * MS, 6, OP_ATTACH, cb=1)
    t.op(1008 * MS, 6, OP_START, START_SCHEDULED, cb=fn(ON_WORK))
    t.new(1009 * MS, 7, "GSource (idle)", 0x7400, t.stack(OPEN_IDLE, MAIN), flags=OBJF_LIVES_WITH_LOOP)
    t.op(1009 * MS, 7, OP_CLOSED)
    t.op(1010 * MS, 1, OP_RUN)
    t.end(1100 * MS)
    t.write(os.path.join(out, "glib_sources.v3.trace"))


def blocking_calls(out):
    """Format 3: blocking calls inside callbacks. A callback that blocked
    40 ms in usleep (under the slow threshold) is a blocking-call with the
    call's stack; one that took 200 ms, most of it in nanosleep, is one
    slow-callback that says where it was blocked, and no blocking-call. And
    a timer restarted from another thread while its loop runs (on the
    process's main thread) is a wrong-thread. The second timer was made in
    the first one's callback: its creation stack stops there, and its
    async chain continues it."""
    t = Trace(4012, [EXE, "--block"], version=3)
    t.new(1000 * MS, 1, "uv_loop_t", 0x7000, t.stack(MAIN))
    t.new(1001 * MS, 2, "uv_timer_t", 0x7100, t.stack(START_TICKER, MAIN), loop=1)
    t.op(1001 * MS, 2, OP_START, 0, cb=fn(ON_TICK))
    t.op(1002 * MS, 1, OP_RUN)
    t.op(1010 * MS, 2, OP_FIRED, cb=fn(ON_TICK))
    t.blocking(1011 * MS, 40 * MS, 2, fn(ON_TICK), 1010 * MS, t.stack(ON_TICK + 0x10, MAIN), "usleep")
    t.new(1100 * MS, 3, "uv_timer_t", 0x7200, t.stack(SUBMIT, ON_TICK + 0x20), loop=1, parent=2)
    t.op(1100 * MS, 3, OP_START, 0, cb=fn(ON_WORK))
    t.blocking(1111 * MS, 180 * MS, 3, fn(ON_WORK), 1110 * MS, t.stack(ON_WORK + 0x10, MAIN),
               "nanosleep")
    t.dispatch(1110 * MS, 200 * MS, 3, fn(ON_WORK))
    t.chunk(tid=4013)
    t.wrong_thread(1300 * MS, 2, 1, 4012, t.stack(SUBMIT + 0x10, MAIN), "uv_timer_start")
    t.chunk(tid=4012)
    t.op(1400 * MS, 2, OP_CLOSED)
    t.op(1400 * MS, 3, OP_CLOSED)
    t.op(1401 * MS, 1, OP_CLOSED, stack=t.stack(MAIN))
    # ON_TICK: 1000 calls of 1-2 us, 9 of 64-128 us, one of 40 ms (bucket 25:
    # 2^25 ns = 33.6 ms); ON_WORK: its one 200 ms call (and two records of it,
    # as two write-outs would give).
    t.histogram(fn(ON_TICK), {10: 1000, 16: 9}, 1000 * 1500 + 9 * 100000, 0)
    t.histogram(fn(ON_TICK), {25: 1}, 40 * MS, 40 * MS)
    t.histogram(fn(ON_WORK), {27: 1}, 200 * MS, 200 * MS)
    t.end(1402 * MS)
    t.write(os.path.join(out, "blocking_calls.v3.trace"))


def crash_and_poll_loop(out):
    """Format 3: a SIGSEGV (address 0x10 not mapped) 3 ms into a timer
    callback is a crash with the callback, where and the timer's creation
    stack; the process has no END. Before it, a slow iteration (250 ms) of
    a poll loop the generic layer timed (DISPATCH slot 9, cb the return
    address of its poll call) is a blocked-loop naming that function."""
    t = Trace(4013, [EXE, "--crash"], version=3)
    t.dispatch(900 * MS, 250 * MS, 0, fn(MAKE_CONN + 0x18), slot=ITERATION_POLL)
    t.new(1000 * MS, 1, "uv_loop_t", 0x7000, t.stack(MAIN))
    t.new(1001 * MS, 2, "uv_timer_t", 0x7100, t.stack(START_TICKER, MAIN), loop=1)
    t.op(1001 * MS, 2, OP_START, 0, cb=fn(ON_TICK))
    t.op(1002 * MS, 1, OP_RUN)
    t.op(1010 * MS, 2, OP_FIRED, cb=fn(ON_TICK))
    t.crash(1013 * MS, 2, fn(ON_TICK), 1010 * MS, 0x10, t.stack(ON_TICK + 0x11), 1, 11)
    t.write(os.path.join(out, "crash_and_poll_loop.v3.trace"))


def pair_index(obj, cb, slot):
    """common/trace_format.h: loopsan_dispatch_pair_index."""
    m = (1 << 64) - 1
    h = ((obj * 0x9E3779B97F4A7C15) & m) ^ ((cb * 0xC2B2AE3D27D4EB4F) & m) ^ slot
    return (h >> 60) & (DISPATCH_PAIRS - 1)


def short_dispatches(out):
    """Format 3, --record=all: a timer's first dispatch is a DISPATCH; the
    next two are DISPATCH_SHORT records naming its entry, 10 ms apart, the
    second 150 ms long (a slow-callback at 1030 ms, read back from 16
    bytes). A short record naming an entry nothing set (its chunk lost) is
    skipped, and the report says so."""
    t = Trace(4014, [EXE, "--all"], version=3)
    t.new(1000 * MS, 1, "uv_loop_t", 0x7000, t.stack(MAIN))
    t.new(1001 * MS, 2, "uv_timer_t", 0x7100, t.stack(START_TICKER, MAIN), loop=1)
    t.op(1001 * MS, 2, OP_START, 0, cb=fn(ON_TICK))
    t.op(1002 * MS, 1, OP_RUN)
    t.dispatch(1010 * MS, 1 * MS, 2, fn(ON_TICK))
    entry = pair_index(2, fn(ON_TICK), 0)
    t.dispatch_short(10 * MS, 1 * MS, entry)
    t.dispatch_short(10 * MS, 150 * MS, entry)
    t.chunk()
    t.dispatch_short(200 * MS, 1 * MS, (entry + 1) % DISPATCH_PAIRS)
    t.op(1400 * MS, 2, OP_CLOSE)
    t.op(1401 * MS, 2, OP_CLOSED)
    t.op(1402 * MS, 1, OP_CLOSE)
    t.end(1403 * MS)
    t.write(os.path.join(out, "short_dispatches.v3.trace"))


def format_v1(out):
    """A format 1 trace (no COUNTS records, shorter spill header): still
    read; what was observed comes from its records."""
    t = Trace(4009, [EXE], version=1)
    t.new(1000 * MS, 1, "uv_loop_t", 0x7000, t.stack(MAIN))
    t.new(1001 * MS, 2, "uv_timer_t", 0x7100, t.stack(START_TICKER, MAIN), loop=1)
    t.op(1001 * MS, 2, OP_START, 0, cb=fn(ON_TICK))
    t.op(1300 * MS, 2, OP_CLOSE)
    t.op(1301 * MS, 2, OP_CLOSED)
    t.end(1302 * MS)
    t.write(os.path.join(out, "format_v1.v1.trace"))


def main():
    out = sys.argv[1]
    for scenario in (slow_callback, leaks_and_ebusy, one_problem_one_finding, never_returned_exit,
                     killed, damaged, orphans_across_threads, reaped_child, libev_watchers,
                     glib_sources, blocking_calls, crash_and_poll_loop, short_dispatches,
                     format_v1):
        scenario(out)


main()
