#!/bin/sh
# bench/run.sh -- overhead of loopsan on libuv and libev micro-benchmarks.
#
# Usage: bench/run.sh [SHIM.so] [BIN_DIR]
#   SHIM.so  preload library (default: $LOOPSAN_SHIM)
#   BIN_DIR  directory holding bench_idle, bench_timers, bench_ev_idle,
#            bench_event_active and bench_glib_idle
#            (default: the directory of this script)
# Environment:
#   BENCH_ROUNDS    rounds per side (default 5); runs alternate base/loopsan
#   BENCH_IDLE_N    iterations for bench_idle   (default: program default)
#   BENCH_TIMERS_N  iterations for bench_timers (default: program default)
#
# For each workload prints the medians:
#   idle: base X ns/op, loopsan Y ns/op, ratio Z
#   timers: base X ns/op, loopsan Y ns/op, ratio Z
#   ev_idle: base X ns/op, loopsan Y ns/op, ratio Z
#   event_active: base X ns/op, loopsan Y ns/op, ratio Z
#   glib_idle: base X ns/op, loopsan Y ns/op, ratio Z
# Loopsan runs use LD_PRELOAD=SHIM and LOOPSAN_OPTIONS=trace_dir=<fresh
# mktemp -d dir>; every trace dir is removed afterwards.
set -eu

die() { echo "run.sh: $*" >&2; exit 1; }

shim=${1:-${LOOPSAN_SHIM:-}}
[ -n "$shim" ] || die "no preload library given (arg 1 or \$LOOPSAN_SHIM)"
[ -f "$shim" ] || die "preload library not found: $shim"
case $shim in /*) ;; *) shim=$(cd "$(dirname "$shim")" && pwd)/$(basename "$shim") ;; esac

bindir=${2:-$(cd "$(dirname "$0")" && pwd)}
rounds=${BENCH_ROUNDS:-5}
case $rounds in ''|*[!0-9]*|0) die "BENCH_ROUNDS must be a positive integer" ;; esac

work=$(mktemp -d "${TMPDIR:-/tmp}/loopsan-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# run_one WORKLOAD MODE -> prints the ns_per_op value
run_one() {
    prog=$bindir/bench_$1
    case $1 in idle | ev_idle | event_active | glib_idle) n=${BENCH_IDLE_N:-} ;; timers) n=${BENCH_TIMERS_N:-} ;; esac
    if [ "$2" = base ]; then
        env -u LD_PRELOAD -u LOOPSAN_OPTIONS "$prog" ${n:+"$n"} >"$work/out" 2>"$work/err" \
            || { cat "$work/err" >&2; die "bench_$1 failed (base)"; }
    else
        tdir=$(mktemp -d "$work/trace.XXXXXX")
        LD_PRELOAD=$shim LOOPSAN_OPTIONS=trace_dir=$tdir \
            "$prog" ${n:+"$n"} >"$work/out" 2>"$work/err" \
            || { cat "$work/err" >&2; die "bench_$1 failed (loopsan)"; }
        rm -rf "$tdir"
    fi
    v=$(sed -n 's/^ns_per_op=//p' "$work/out" | head -n 1)
    [ -n "$v" ] || die "bench_$1 printed no ns_per_op line ($2)"
    echo "$v"
}

median() { sort -g | awk '{ v[NR] = $1 } END {
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for w in idle timers ev_idle event_active glib_idle; do
    [ -x "$bindir/bench_$w" ] || die "missing benchmark binary: $bindir/bench_$w"
done

for w in idle timers ev_idle event_active glib_idle; do
    : >"$work/$w.base"; : >"$work/$w.loopsan"
    i=0
    while [ "$i" -lt "$rounds" ]; do
        run_one "$w" base >>"$work/$w.base"
        run_one "$w" loopsan >>"$work/$w.loopsan"
        i=$((i + 1))
    done
    b=$(median <"$work/$w.base")
    l=$(median <"$work/$w.loopsan")
    awk -v w="$w" -v b="$b" -v l="$l" 'BEGIN {
        printf "%s: base %.1f ns/op, loopsan %.1f ns/op, ratio %.2f\n", w, b, l, (b > 0 ? l / b : 0) }'
done
