#!/bin/sh
# gio (GLib, GIO): `gio monitor` watches a directory, files are made in it,
# the monitor is stopped with SIGTERM (a background job ignores SIGINT). Its output must be what it is without
# loopsan.
set -u
dir=$(mktemp -d "${TMPDIR:-/tmp}/loopsan-gio.XXXXXX") || exit 99
gio monitor "$dir" >"$dir.out" 2>&1 &
pid=$!
sleep 1
touch "$dir/a"
echo hi >"$dir/b"
sleep 1
kill -TERM "$pid"
wait "$pid"
status=$?
cat "$dir.out"
grep -q "$dir/a: created" "$dir.out" && grep -q "$dir/b: created" "$dir.out"
found=$?
rm -rf "$dir" "$dir.out"
echo "gio monitor status: $status"
test "$found" -eq 0 && test "$status" -eq 143
