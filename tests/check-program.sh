#!/bin/sh
# Runs one test program under `loopsan run --format=json` and checks the
# report against the program's .expect file (see tests/check_report.py).
# Called by `make check` with the .expect file as its only argument.
set -u
expect=$1
rel="tests/${expect#*tests/}"
program="${LOOPSAN_BUILDDIR:?}/${rel%.expect}"
work=$(mktemp -d "${TMPDIR:-/tmp}/loopsan-test.XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT
"${LOOPSAN:?}" run --format=json -o "$work/report.json" --trace-dir="$work/traces" -- "$program" \
  >"$work/stdout" 2>"$work/stderr"
status=$?
echo "program: $program (exit $status)"
sed 's/^/  stderr: /' "$work/stderr"
"${PYTHON3:-python3}" "${LOOPSAN_SRCDIR:?}/tests/check_report.py" "$expect" "$work/report.json" "$status"
rc=$?
if [ "$rc" -ne 0 ]; then
  echo "--- report ---"
  cat "$work/report.json"
  echo "--- text report ---"
  "$LOOPSAN" report "$work/traces"
fi
exit "$rc"
