#!/bin/sh
# gdbus (GLib, GIO's D-Bus with its worker thread): a method call on a
# private session bus. The reply must be what it is without loopsan.
set -u
out=$(dbus-run-session -- gdbus call --session --dest org.freedesktop.DBus \
  --object-path /org/freedesktop/DBus --method org.freedesktop.DBus.ListNames 2>/dev/null)
status=$?
echo "reply: $out (status $status)"
test "$status" -eq 0 && case "$out" in "(['org.freedesktop.DBus', ':1."*) true ;; *) false ;; esac
