#!/bin/sh
# Regenerates the golden traces and their expected reports, after an
# intended change to the trace format, the analyzer or a renderer. Review
# the diff (git diff tests/golden) before committing it.
# Usage: tests/golden/update.sh BUILDDIR   (where ./loopsan was built)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
loopsan=$(cd "${1:?usage: update.sh BUILDDIR}" && pwd)/loopsan
cd "$here"
rm -rf ./*.trace ./*.trace.spill.* ./*.txt ./*.json ./*.d
python3 mktrace.py .
for trace in *.trace *.d; do
  name=${trace%.trace}
  name=${name%.d}
  "$loopsan" report --format=text "$trace" >"$name.txt" || true
  "$loopsan" report --format=json "$trace" | sed 's/"version": "[^"]*"/"version": "VERSION"/' >"$name.json" || true
done
ls
