#!/bin/sh
# compare-reads.sh — what function-memory costs in reads of /proc/self/statm,
# for several builds (or settings) side by side: run-calls.sh's
# "function-memory - function, against the read" for each, their runs
# alternated round by round, so that the machine's drift (the read itself
# moves by a tenth between minutes on a shared host) falls on every variant
# alike. For comparing changes to the hot path; the figures the target is
# quoted with are run-calls.sh's.
#
# usage: bench/compare-reads.sh [-r ROUNDS] [-n ITERATIONS] [-v] VARIANT...
#   VARIANT        NAME=BUILDDIR[,VAR=VALUE...]: the build tree holding
#                  bench/calls (make bench/calls), and settings for its runs
#                  (PIKOC_RING_EVENTS=8192, say)
#   -r ROUNDS      rounds (default 20); each runs every variant's
#                  function.hot and function-memory.hot once, in turn
#   -n ITERATIONS  workload iterations per run (default 200000)
#   -v             also print every round's ratios
#
# For each round and variant: (function-memory.hot - function.hot) ns an
# event, over the read in place and over the read back to back that the
# function-memory run timed between its slices (see bench/calls.c). Prints
# each variant's mean, its standard error, median, least and most.
#
# Exits 0 when every run succeeded and recorded exactly the expected number
# of events, 1 otherwise, 2 on bad usage.
set -u
set -f # a setting's value (PIKOC_FILTER=include:parse_*) is not a pattern
. "$(dirname "$0")/calls-lib.sh"

rounds=20
iterations=200000
verbose=false

usage() {
    sed -n '/^# usage:/,/^#$/s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

while getopts r:n:vh opt; do
    case $opt in
    r) rounds=$OPTARG ;;
    n) iterations=$OPTARG ;;
    v) verbose=true ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || usage
case $rounds in '' | *[!0-9]* | 0) echo "compare-reads.sh: -r wants a positive count" >&2; exit 2 ;; esac
case $iterations in '' | *[!0-9]* | 0) echo "compare-reads.sh: -n wants a positive count" >&2; exit 2 ;; esac

calls_clean_env # only a variant's own settings reach its runs

work=$(mktemp -d "${TMPDIR:-/tmp}/pikoc-compare.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 1' INT TERM

# Each variant: its name, program, library directory and settings, one file apiece.
names=""
for spec in "$@"; do
    case $spec in
    *=*) ;;
    *) echo "compare-reads.sh: '$spec' is not NAME=BUILDDIR[,VAR=VALUE...]" >&2; exit 2 ;;
    esac
    name=${spec%%=*}
    rest=${spec#*=}
    dir=${rest%%,*}
    settings=
    [ "$dir" = "$rest" ] || settings=$(printf '%s\n' "${rest#*,}" | tr ',' ' ')
    case $name in
    '' | *[!A-Za-z0-9_.-]*)
        echo "compare-reads.sh: variant name '$name': letters, digits, '.', '_' and '-' only" >&2
        exit 2
        ;;
    esac
    case " $names " in *" $name "*) echo "compare-reads.sh: variant '$name' given twice" >&2; exit 2 ;; esac
    for s in $settings; do
        case $s in
        [A-Za-z_]*=*) ;;
        *) echo "compare-reads.sh: variant '$name': setting '$s' is not VAR=VALUE" >&2; exit 2 ;;
        esac
    done
    if ! calls_binary "$dir"; then
        echo "compare-reads.sh: no $dir/bench/calls; build it with 'make bench/calls'" >&2
        exit 2
    fi
    printf '%s\n%s\n%s\n' "$prog" "$libs" "$settings" >"$work/$name.variant"
    names="$names $name"
done

calls=$(calls_of "$iterations")
events=$((2 * calls))
errors=0

fail() {
    echo "compare-reads.sh: $*" >&2
    errors=$((errors + 1))
}

calls_limit 600 # a hung run must not hang the comparison

# Runs variant $1's calls --hot=$2; true when it recorded every event.
run_hot() { # name monitor
    { read -r prog; read -r libs; read -r settings; } <"$work/$1.variant"
    # shellcheck disable=SC2086 # the settings are words, VAR=VALUE each
    $with_limit env ${libs:+LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"} \
        $settings "$prog" --hot="$2" "$iterations" >"$work/out" 2>"$work/err"
    rc=$?
    if [ -n "$with_limit" ] && [ $rc -eq 124 ]; then
        fail "$1: calls --hot=$2 was still running after 600 s and was stopped"
        return 1
    fi
    if [ $rc -ne 0 ]; then
        fail "$1: calls --hot=$2 exited with $rc"
        sed 's/^/    /' "$work/err" >&2
        return 1
    fi
    for key in calls:$calls events:$events records:$events dropped:0 unmatched:0 unfinished:0; do
        got=$(value "${key%%:*}")
        if [ "$got" != "${key#*:}" ]; then
            fail "$1: calls --hot=$2 gave ${key%%:*}=${got:-?}, expected ${key#*:}"
            return 1
        fi
    done
}

echo "function-memory in reads: $events events a run, $rounds rounds of:$names"
echo "host: $(uname -srm), $(getconf _NPROCESSORS_ONLN) CPUs, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

round=1
while [ $round -le "$rounds" ]; do
    # Rotate the order so no variant always follows the same neighbour.
    order=$(echo "$names" | awk -v k=$((round - 1)) '{ for (i = 0; i < NF; i++) printf "%s ", $((i + k) % NF + 1) }')
    for name in $order; do
        run_hot "$name" function || continue
        f=$(value loop_ns)
        run_hot "$name" function-memory || continue
        echo "$f $(value loop_ns) $(value place_ns) $(value pread_ns)" |
            awk -v e="$events" '{ d = ($2 - $1) / e; printf "%.4f %.4f %.1f\n", d / $3, d / $4, d }' \
                >>"$work/$name.ratios"
        if $verbose; then
            printf 'round %d %s: ' "$round" "$name"
            awk '{ printf "%.4f in place, %.4f back to back (%.1f ns an event)\n", $1, $2, $3 }' \
                "$work/$name.ratios" | tail -n 1
        fi
    done
    round=$((round + 1))
done

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "(function-memory.hot - function.hot) ns an event, in reads: mean +- its standard error, median [least, most]"
printf '%-16s %-40s %s\n' variant "over the read in place" "over the read back to back"
for name in $names; do
    if [ ! -s "$work/$name.ratios" ]; then
        printf '%-16s no successful round\n' "$name"
        continue
    fi
    line=""
    for column in 1 2; do
        stats=$(cut -d' ' -f"$column" "$work/$name.ratios" | sort -n | awk '
            { v[NR] = $1; s += $1; q += $1 * $1 }
            END {
                m = s / NR; var = NR > 1 ? (q - NR * m * m) / (NR - 1) : 0
                se = var > 0 ? sqrt(var / NR) : 0
                med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                printf "%.4f +- %.4f, %.4f [%.3f, %.3f]", m, se, med, v[1], v[NR]
            }')
        line="$line$(printf '%-40s ' "$stats")"
    done
    printf '%-16s %s(%d rounds)\n' "$name" "$line" "$(wc -l <"$work/$name.ratios")"
done
[ $errors -eq 0 ] || exit 1
exit 0
