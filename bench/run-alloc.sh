#!/bin/sh
# run-alloc.sh — the allocation-tracking benchmark: ns that
# `pikoc run --monitor alloc` adds per allocation call (each with its call
# site, into an SQLite store), against heaptrack and glibc's memusage on the
# same workload (bench/allocs.c), interleaved in one invocation because the
# machines are shared and noisy. Quote the medians and ratios it prints.
#
# usage: bench/run-alloc.sh [-r REPS] [-t THREADS] [-n ITERATIONS] [-b BUILDDIR] [-v]
#   -r REPS        repetitions of every mode (default 5)
#   -t THREADS     workload threads (default 4)
#   -n ITERATIONS  malloc/free pairs per thread (default 1000000); the calls
#                  are THREADS * (2 * ITERATIONS + ceil(ITERATIONS / 8))
#   -b BUILDDIR    the build tree holding pikoc and bench/allocs (default: .)
#   -v             also print every run's times
#
# Modes:
#   jemalloc   the workload with jemalloc preloaded, as pikoc runs it: pikoc's reference
#   glibc      the workload as it is (glibc's malloc): heaptrack's and memusage's reference
#   pikoc      pikoc run -q --monitor alloc --record sqlite:DB (records checked: every
#              allocation, realloc and free of the workload, none unknown)
#   stack16    the same with --stack 16: each allocation's stack unwound (libunwind),
#              as heaptrack always does (the same checks, and every allocation under a stack)
#   heaptrack  heaptrack -o FILE (its own count of allocations checked)
#   memusage   memusage (glibc's libmemusage.so)
#
# Each run prints the workload's own times: wall (its loops, from the start
# barrier to the last join) and cpu (the sum of its threads' CPU times, which
# leaves out a pikoc thread's sleep on a full ring and the work of pikoc's
# drainer process or heaptrack's interpreter process). +ns is
# (mode - reference) / calls; x is heaptrack's +ns over pikoc's (above 1:
# pikoc is cheaper).
# Exits 0 when every run succeeded and counted what it should, 1 otherwise.
set -u

reps=5
threads=4
iterations=1000000
builddir=.
verbose=false

usage() {
    sed -n '/^# usage:/,/^#$/s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

while getopts r:t:n:b:vh opt; do
    case $opt in
    r) reps=$OPTARG ;;
    t) threads=$OPTARG ;;
    n) iterations=$OPTARG ;;
    b) builddir=$OPTARG ;;
    v) verbose=true ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage
for pair in "r:$reps" "t:$threads" "n:$iterations"; do
    case ${pair#*:} in '' | *[!0-9]* | 0)
        echo "run-alloc.sh: -${pair%%:*} wants a positive count" >&2
        exit 2
        ;;
    esac
done

pikoc=$builddir/pikoc
prog=$builddir/bench/allocs
[ -x "$prog" ] || { echo "run-alloc.sh: no $prog; build it with 'make bench/allocs'" >&2; exit 2; }
[ -x "$pikoc" ] || { echo "run-alloc.sh: no $pikoc; build pikoc first" >&2; exit 2; }
jemalloc=$(sed -n 's/^#define PK_JEMALLOC_PATH "\(.*\)"/\1/p' "$builddir/config.h")
modes="jemalloc glibc pikoc stack16"
for tool in heaptrack memusage; do
    if command -v $tool >/dev/null 2>&1; then
        modes="$modes $tool"
    else
        echo "run-alloc.sh: $tool is not installed: no $tool runs (scripts/deps.sh installs it)" >&2
    fi
done
for v in $(env | sed -n 's/^\(PIKOC_[A-Za-z0-9_]*\)=.*/\1/p'); do
    unset "$v"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/pikoc-alloc-bench.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 1' INT TERM

calls=$((threads * (2 * iterations + (iterations + 7) / 8)))
allocations=$((threads * (iterations + (iterations + 7) / 8)))
errors=0
fail() {
    echo "run-alloc.sh: $*" >&2
    errors=$((errors + 1))
}
value() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" "$work/out" | head -n 1; }

run_mode() { # MODE: runs the workload once; appends "wall cpu" (ns) to $work/MODE
    rm -rf "$work/db" "$work/ht"*
    case $1 in
    jemalloc) LD_PRELOAD=$jemalloc "$prog" "$threads" "$iterations" >"$work/out" 2>"$work/err" ;;
    glibc) "$prog" "$threads" "$iterations" >"$work/out" 2>"$work/err" ;;
    pikoc) "$pikoc" run -q --monitor alloc --record "sqlite:$work/db" -- \
        "$prog" "$threads" "$iterations" >"$work/out" 2>"$work/err" ;;
    stack16) "$pikoc" run -q --monitor alloc --stack 16 --record "sqlite:$work/db" -- \
        "$prog" "$threads" "$iterations" >"$work/out" 2>"$work/err" ;;
    heaptrack) heaptrack -o "$work/ht" "$prog" "$threads" "$iterations" >"$work/out" 2>"$work/err" ;;
    memusage) memusage "$prog" "$threads" "$iterations" >"$work/out" 2>"$work/err" ;;
    esac
    status=$?
    [ $status -eq 0 ] || fail "$1: exit status $status: $(head -c 300 "$work/err")"
    [ "$(value calls)" = "$calls" ] || fail "$1: the workload made $(value calls) calls, expected $calls"
    case $1 in
    pikoc | stack16)
        got=$(sqlite3 "$work/db" "SELECT allocations - reallocs, reallocs, frees, unknown_frees FROM alloc_runs")
        # The workload's calls, and the few the threads' start-up makes (glibc's TLS blocks).
        echo "$got" | awk -F'|' -v a=$((allocations - threads * ((iterations + 7) / 8))) \
            -v r=$((threads * ((iterations + 7) / 8))) -v f=$((threads * iterations)) -v t=$threads '
            { exit !($1 >= a && $1 <= a + 2 * t && $2 == r && $3 >= f && $3 <= f + 2 * t && $4 == 0) }' ||
            fail "$1: recorded allocations|reallocs|frees|unknown '$got' for $calls calls"
        if [ "$1" = stack16 ]; then
            got=$(sqlite3 "$work/db" "SELECT allocations = (SELECT sum(allocations) FROM alloc_stacks), stacks > 0 FROM alloc_runs")
            [ "$got" = "1|1" ] || fail "stack16: not every allocation is under a stack ($got)"
        fi
        ;;
    heaptrack)
        got=$(cat "$work/out" "$work/err" | sed -n 's/^[[:space:]]*allocations:[[:space:]]*\([0-9]*\)$/\1/p' | head -n 1)
        [ -n "$got" ] && [ "$got" -ge "$allocations" ] ||
            fail "heaptrack: counted ${got:-no} allocations, expected at least $allocations"
        ;;
    esac
    echo "$(value wall_ns) $(value cpu_ns)" >>"$work/$1"
    $verbose && printf '%-10s wall %8.1f ms  cpu %8.1f ms\n' "$1" \
        "$(echo "$(value wall_ns) / 1000000" | bc -l)" "$(echo "$(value cpu_ns) / 1000000" | bc -l)"
}

for r in $(seq 1 "$reps"); do
    for m in $modes; do
        run_mode "$m"
    done
done

median() { # FILE COLUMN
    cut -d' ' -f"$2" "$1" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "Medians of $reps runs; $threads threads, $calls allocation calls (malloc, realloc, free)."
echo "+ns: (mode - reference) / calls; pikoc's reference is jemalloc, heaptrack's and memusage's glibc."
printf '%-10s %9s %9s | %8s %8s\n' mode wall_ms cpu_ms wall+ns cpu+ns
for m in $modes; do
    w=$(median "$work/$m" 1)
    c=$(median "$work/$m" 2)
    case $m in
    jemalloc | glibc) ref="" ;;
    pikoc | stack16) ref=jemalloc ;;
    *) ref=glibc ;;
    esac
    if [ -n "$ref" ]; then
        wadd=$(echo "($w - $(median "$work/$ref" 1)) / $calls" | bc -l)
        cadd=$(echo "($c - $(median "$work/$ref" 2)) / $calls" | bc -l)
        printf '%-10s %9.1f %9.1f | %8.1f %8.1f\n' "$m" "$(echo "$w / 1000000" | bc -l)" \
            "$(echo "$c / 1000000" | bc -l)" "$wadd" "$cadd"
        echo "$wadd $cadd" >"$work/$m.add"
    else
        printf '%-10s %9.1f %9.1f | %8s %8s\n' "$m" "$(echo "$w / 1000000" | bc -l)" \
            "$(echo "$c / 1000000" | bc -l)" - -
    fi
done
if [ -f "$work/heaptrack.add" ]; then
    for m in pikoc stack16; do
        set -- $(cat "$work/$m.add") $(cat "$work/heaptrack.add")
        printf 'heaptrack / %s (+ns): wall %.2fx  cpu %.2fx\n' "$m" "$(echo "$3 / $1" | bc -l)" \
            "$(echo "$4 / $2" | bc -l)"
    done
fi
if [ $errors -gt 0 ]; then
    echo "run-alloc.sh: $errors run(s) failed or miscounted: do not quote these figures" >&2
    exit 1
fi
