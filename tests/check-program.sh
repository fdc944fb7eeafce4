#!/bin/sh
# Runs one test program under `loopsan run --format=json` and checks the
# report against its .expect file (see tests/check_report.py). Called by
# `make check` with the .expect file as its only argument. By default the
# program is the build's binary of the same name; an .expect file may name
# another command with `run ARGS...` (@srcdir@ stands for the source tree),
# give loopsan options with `options OPTS...`, and skip itself with
# `requires SHELL-COMMAND` (exit 77 when it fails).
set -u
expect=$1
rel="tests/${expect#*tests/}"
program="${LOOPSAN_BUILDDIR:?}/${rel%.expect}"
srcdir=${LOOPSAN_SRCDIR:?}
requires=$(sed -n 's/^requires //p' "$expect")
if [ -n "$requires" ] && ! sh -c "$requires" >/dev/null 2>&1; then
  echo "SKIP: needs: $requires"
  exit 77
fi
command=$(sed -n "s/^run //p" "$expect" | sed -e "s|@srcdir@|$srcdir|g" -e "s|@builddir@|$LOOPSAN_BUILDDIR|g")
options=$(sed -n "s/^options //p" "$expect")
[ -n "$command" ] || command=$program
work=$(mktemp -d "${TMPDIR:-/tmp}/loopsan-test.XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT
# shellcheck disable=SC2086 # the command is words by design
"${LOOPSAN:?}" run --format=json -o "$work/report.json" --trace-dir="$work/traces" $options -- $command \
  >"$work/stdout" 2>"$work/stderr"
status=$?
echo "program: $command (exit $status)"
sed 's/^/  stderr: /' "$work/stderr"
"${PYTHON3:-python3}" "$srcdir/tests/check_report.py" "$expect" "$work/report.json" "$status"
rc=$?
if [ "$rc" -ne 0 ]; then
  echo "--- report ---"
  cat "$work/report.json"
  echo "--- text report ---"
  "$LOOPSAN" report "$work/traces"
fi
exit "$rc"
