#!/bin/sh
# Runs the libFuzzer targets for a bounded time each: fuzz_trace from the
# golden traces (every record type and version, a killed process's spill,
# a damaged trace) plus any traces in $LOOPSAN_FUZZ_SEEDS (a real run's),
# fuzz_inputs from options strings, reports and suppression rules. A crash,
# leak, sanitizer error or timeout fails the run, and the input that caused
# it is printed (base64) so that it can be added to tests/fuzz-regress/.
# Usage: fuzz/run.sh SRCDIR BUILDDIR SECONDS
set -eu
src=$1
build=$(cd "$2" && pwd)
secs=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/loopsan-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/seeds-trace" "$work/seeds-inputs" "$work/corpus-trace" "$work/corpus-inputs"
n=0
for t in "$src"/tests/golden/*.trace "$src"/tests/golden/*.spill.* "$src"/tests/golden/*.d/*.trace \
  ${LOOPSAN_FUZZ_SEEDS:+"$LOOPSAN_FUZZ_SEEDS"/*.trace} "$src"/tests/fuzz-regress/*; do
  [ -f "$t" ] || continue
  n=$((n + 1))
  cp "$t" "$work/seeds-trace/$n"
done
printf '\000slow_ms=5:blocking_ms=1:record=all:stack_depth=64:trace_dir=/tmp/x' >"$work/seeds-inputs/options"
printf '\000format=json:fail_on=crash,misuse:error_exitcode=3:color=never' >"$work/seeds-inputs/options2"
printf '\002# rules\nunclosed-handle:main\n*:lib*.so\nslow-callback:on_*tick\n' >"$work/seeds-inputs/supp"
for j in "$src"/tests/golden/*.json; do
  n=$((n + 1))
  { printf '\001'; cat "$j"; } >"$work/seeds-inputs/json$n"
  { printf '\003'; cat "$j"; } >"$work/seeds-inputs/baseline$n"
done
status=0
for target in fuzz_trace fuzz_inputs; do
  kind=${target#fuzz_}
  echo "fuzz: $target for ${secs}s from $(ls "$work/seeds-$kind" | wc -l) seeds"
  if ! (cd "$work" && "$build/fuzz/$target" -max_total_time="$secs" -timeout=20 -rss_limit_mb=4096 \
    -artifact_prefix="$work/$target-" -print_final_stats=1 "corpus-$kind" "seeds-$kind" \
    >"$work/$target.log" 2>&1); then
    status=1
    grep -E "ERROR|SUMMARY|==[0-9]+==|#[0-9]+ 0x" "$work/$target.log" | head -40
    for a in "$work/$target"-*; do
      [ -f "$a" ] || continue
      echo "fuzz: $target failed on $(basename "$a") ($(stat -c %s "$a") bytes), base64:"
      base64 "$a" | head -200
    done
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb|^Done" "$work/$target.log" || true
done
[ "$status" -eq 0 ] && echo "fuzz: no crash"
exit "$status"
