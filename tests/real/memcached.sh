#!/bin/sh
# memcached (libevent, 4 worker threads with a base each) on 127.0.0.1,
# exercised by a client, stopped with SIGTERM as an init system would: its
# replies must be what they are without loopsan. Run by loopsan run (the
# .expect file), which sees memcached as a child of this script.
set -u
port=$((20000 + $$ % 10000))
memcached -l 127.0.0.1 -p "$port" -U 0 -u "$(id -un)" -t 4 &
pid=$!
out=$(/usr/bin/python3 - "$port" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
for _ in range(100):
    try:
        s = socket.create_connection(("127.0.0.1", port))
        break
    except OSError:
        time.sleep(0.05)
f = s.makefile("rwb")
replies = []
for i in range(50):
    f.write(b"set key%d 0 0 5\r\nvalue\r\n" % i)
    f.flush()
    replies.append(f.readline())
    f.write(b"get key%d\r\n" % i)
    f.flush()
    replies += [f.readline(), f.readline(), f.readline()]
s.close()
ok = all(r == b"STORED\r\n" for r in replies[0::4]) and all(r == b"value\r\n" for r in replies[2::4])
print("replies ok" if ok else "replies WRONG: %r" % replies[:8])
PY
)
kill -TERM "$pid"
wait "$pid"
status=$?
echo "$out"
test "$out" = "replies ok" && test "$status" -eq 0
