#!/bin/sh
# run-store.sh — the end-to-end benchmark of the SQLite loop: `pikoc run`
# into SQLite plus `pikoc top`, against `uftrace record` plus `uftrace
# report`, on bench/calls (the same workload as run-calls.sh), interleaved in
# one invocation. Quote the medians and the ratio it prints.
#
# usage: bench/run-store.sh [-r REPS] [-n ITERATIONS] [-b BUILDDIR] [-t TMPDIR]
#   -r REPS        repetitions of each side (default 5)
#   -n ITERATIONS  workload iterations (default 2250000: 9,000,282 calls)
#   -b BUILDDIR    the build tree holding pikoc and bench/calls (default: .)
#   -t TMPDIR      where the database and uftrace's trace go (default: $TMPDIR or /tmp)
#
# Exits 1 when a run fails or records another number of calls than expected.
set -u

reps=5
iterations=2250000
builddir=.
tmproot=${TMPDIR:-/tmp}

while getopts r:n:b:t:h opt; do
    case $opt in
    r) reps=$OPTARG ;;
    n) iterations=$OPTARG ;;
    b) builddir=$OPTARG ;;
    t) tmproot=$OPTARG ;;
    *) sed -n '/^# usage:/,/^#$/s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
    esac
done

builddir=$(cd "$builddir" && pwd)
pikoc="$builddir/pikoc"
workload="$builddir/bench/.libs/calls"
for f in "$pikoc" "$workload"; do
    [ -x "$f" ] || { echo "run-store.sh: $f is missing (make && make bench/calls)" >&2; exit 1; }
done
command -v uftrace >/dev/null || { echo "run-store.sh: uftrace is not installed" >&2; exit 1; }
for v in $(env | sed -n 's/^\(PIKOC_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
export LD_LIBRARY_PATH="$builddir/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

work=$(mktemp -d "$tmproot/pikoc-run-store.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
slices=$(( (iterations + 7999) / 8000 ))
calls=$(( iterations * 4 + slices ))
failed=0

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

run_pikoc() {
    rm -f "$work/p.db"
    t0=$(now_ms)
    "$pikoc" run -q --monitor function --record "sqlite:$work/p.db" -- "$workload" "$iterations" \
        >/dev/null || { echo "pikoc run failed" >&2; failed=1; }
    t1=$(now_ms)
    "$pikoc" top --db "$work/p.db" --limit 5 >/dev/null || { echo "pikoc top failed" >&2; failed=1; }
    t2=$(now_ms)
    got=$("$pikoc" sql --db "$work/p.db" --format csv "SELECT calls FROM runs ORDER BY id DESC LIMIT 1" | tail -n 1 | tr -d '\r')
    [ "$got" = "$calls" ] || { echo "pikoc recorded $got calls, expected $calls" >&2; failed=1; }
    echo "$((t2 - t0)) $((t1 - t0)) $((t2 - t1))" >>"$work/pikoc.times"
}

run_uftrace() {
    rm -rf "$work/u"
    t0=$(now_ms)
    uftrace record --no-libcall --no-sched -d "$work/u" "$workload" "$iterations" >/dev/null 2>&1 ||
        { echo "uftrace record failed" >&2; failed=1; }
    t1=$(now_ms)
    uftrace report -d "$work/u" >"$work/report.txt" 2>/dev/null || { echo "uftrace report failed" >&2; failed=1; }
    t2=$(now_ms)
    echo "$((t2 - t0)) $((t1 - t0)) $((t2 - t1))" >>"$work/uftrace.times"
}

median() { # column file
    awk -v c="$1" '{ print $c }' "$2" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

echo "workload: $workload $iterations ($calls calls); $reps repetitions, interleaved"
echo "host: $(uname -sr), $(nproc) CPUs, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
i=1
while [ "$i" -le "$reps" ]; do
    if [ $((i % 2)) -eq 1 ]; then run_pikoc; run_uftrace; else run_uftrace; run_pikoc; fi
    i=$((i + 1))
done

p_total=$(median 1 "$work/pikoc.times"); p_rec=$(median 2 "$work/pikoc.times"); p_query=$(median 3 "$work/pikoc.times")
u_total=$(median 1 "$work/uftrace.times"); u_rec=$(median 2 "$work/uftrace.times"); u_query=$(median 3 "$work/uftrace.times")
echo "medians of $reps (ms)            total   record    query"
printf '%-28s %8s %8s %8s\n' "pikoc run + pikoc top" "$p_total" "$p_rec" "$p_query"
printf '%-28s %8s %8s %8s\n' "uftrace record + report" "$u_total" "$u_rec" "$u_query"
ratio=$(awk -v p="$p_total" -v u="$u_total" 'BEGIN { printf "%.2f", p / u }')
echo "pikoc / uftrace (total): $ratio   (target: at most 0.50)"
echo "pikoc top on the $calls-call run: $p_query ms   (target: at most 500 ms)"
[ "$failed" -eq 0 ] || { echo "some runs failed: figures not to be quoted" >&2; exit 1; }
