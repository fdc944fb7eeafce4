#!/bin/sh
# memcached (libevent, 4 worker threads with a base each) on 127.0.0.1,
# under load: 8 clients each doing set/get pairs for LOOPSAN_SOAK_SECONDS
# (30 by default), every reply checked; then stopped with SIGTERM as an
# init system would. No crash, no deadlock, every reply right. Run by loopsan run (the
# .expect file), which sees memcached as a child of this script.
set -u
port=$((20000 + $$ % 10000))
memcached -l 127.0.0.1 -p "$port" -U 0 -u "$(id -un)" -t 4 &
pid=$!
out=$(/usr/bin/python3 - "$port" "${LOOPSAN_SOAK_SECONDS:-30}" <<'PY'
import socket, sys, threading, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", port)).close()
        break
    except OSError:
        time.sleep(0.05)
deadline = time.monotonic() + seconds
ops, wrong = [0] * 8, []
def client(n):
    # set/get pairs on a connection of its own until the deadline: every
    # reply must be the right one
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rwb")
    i = 0
    while time.monotonic() < deadline:
        key, val = b"k%d_%d" % (n, i % 500), b"v%d" % i
        f.write(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(val), val))
        f.write(b"get %s\r\n" % key)
        f.flush()
        got = [f.readline() for _ in range(4)]
        if got != [b"STORED\r\n", b"VALUE %s 0 %d\r\n" % (key, len(val)), val + b"\r\n", b"END\r\n"]:
            wrong.append(got)
            break
        i += 1
    ops[n] = i
    s.close()
threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print("replies ok" if not wrong and all(ops) else "replies WRONG: %r (ops %r)" % (wrong[:2], ops))
print("operations: %d on 8 connections in %.0f s" % (sum(ops), seconds), file=sys.stderr)
PY
)
kill -TERM "$pid"
wait "$pid"
status=$?
echo "$out"
test "$out" = "replies ok" && test "$status" -eq 0
