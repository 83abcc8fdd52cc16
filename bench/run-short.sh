#!/bin/sh
# run-short.sh — what a short process costs under `pikoc run --monitor alloc`:
# a shell loop of ten /bin/true and `python3 -c 'print(1)'` (through
# whatever python3 PATH finds, e.g. pyenv's shim, a script that starts about
# 64 processes), each unmonitored and under one or two builds of pikoc,
# interleaved in one invocation. Quote the medians and the ratios it prints.
#
# usage: bench/run-short.sh [-r REPS] [-b BUILDDIR] [-c BUILDDIR] [-t TMPDIR]
#   -r REPS       repetitions of each side (default 5)
#   -b BUILDDIR   the build tree holding pikoc (default: .)
#   -c BUILDDIR   a second build tree to compare, run alternately with the first
#   -t TMPDIR     where the databases go (default: $TMPDIR or /tmp)
#
# Exits 1 when a run fails.
set -u

reps=5
builddir=.
other=
tmproot=${TMPDIR:-/tmp}

while getopts r:b:c:t:h opt; do
    case $opt in
    r) reps=$OPTARG ;;
    b) builddir=$OPTARG ;;
    c) other=$OPTARG ;;
    t) tmproot=$OPTARG ;;
    *) sed -n '/^# usage:/,/^#$/s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
    esac
done

builds=$(cd "$builddir" && pwd)
[ -z "$other" ] || builds="$builds $(cd "$other" && pwd)"
for b in $builds; do
    [ -x "$b/pikoc" ] || { echo "run-short.sh: $b/pikoc is missing (make)" >&2; exit 1; }
done
python=$(command -v python3) || { echo "run-short.sh: no python3 on PATH" >&2; exit 1; }
for v in $(env | sed -n 's/^\(PIKOC_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done

work=$(mktemp -d "$tmproot/pikoc-run-short.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
failed=0
loop='for i in 1 2 3 4 5 6 7 8 9 10; do /bin/true; done'

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# One round: the loop and python3, unmonitored (side 0) or under build $2 (side $1).
round() {
    side=$1
    if [ "$side" = 0 ]; then
        set -- env
    else
        rm -f "$work/$side.db"*
        set -- "$2/pikoc" run -q --monitor alloc --record "sqlite:$work/$side.db" --
    fi
    t0=$(now_ms)
    "$@" sh -c "$loop" || { echo "the loop failed (side $side)" >&2; failed=1; }
    t1=$(now_ms)
    out=$("$@" "$python" -c 'print(1)') && [ "$out" = 1 ] ||
        { echo "python3 failed (side $side)" >&2; failed=1; }
    t2=$(now_ms)
    echo "$((t1 - t0)) $((t2 - t1))" >>"$work/side$side.times"
}

median() { # column file
    awk -v c="$1" '{ print $c }' "$2" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

echo "python3: $python; $reps repetitions, interleaved"
echo "host: $(uname -sr), $(nproc) CPUs, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
i=1
while [ "$i" -le "$reps" ]; do
    round 0
    side=1
    for b in $builds; do round "$side" "$b"; side=$((side + 1)); done
    i=$((i + 1))
done

plain_loop=$(median 1 "$work/side0.times"); plain_python=$(median 2 "$work/side0.times")
echo "medians of $reps (ms), x unmonitored   10 x /bin/true   python3 -c 'print(1)'"
printf '%-36s %16s %23s\n' "unmonitored" "$plain_loop" "$plain_python"
side=1
for b in $builds; do
    loop_ms=$(median 1 "$work/side$side.times"); python_ms=$(median 2 "$work/side$side.times")
    printf '%-36s %16s %23s\n' "pikoc run ($side: $b)" \
        "$loop_ms x$(awk -v a="$loop_ms" -v b="$plain_loop" 'BEGIN { printf "%.1f", a / b }')" \
        "$python_ms x$(awk -v a="$python_ms" -v b="$plain_python" 'BEGIN { printf "%.1f", a / b }')"
    side=$((side + 1))
done
[ -z "$other" ] ||
    awk -v a="$(median 1 "$work/side1.times")" -v b="$(median 1 "$work/side2.times")" \
        -v c="$(median 2 "$work/side1.times")" -v d="$(median 2 "$work/side2.times")" \
        'BEGIN { printf "build 2 / build 1: loop %.2f, python3 %.2f\n", b / a, d / c }'
[ "$failed" -eq 0 ] || { echo "some runs failed: figures not to be quoted" >&2; exit 1; }
