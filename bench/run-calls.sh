#!/bin/sh
# run-calls.sh — the call-overhead benchmark: ns that pikoc's monitors add
# per instrumented call (entry + exit), against `uftrace record` of the same
# workload, run interleaved in one invocation because the machines are shared
# and noisy. Quote the medians and ratios it prints, never one run's time.
#
# usage: bench/run-calls.sh [-r REPS] [-n ITERATIONS] [-m MODES] [-b BUILDDIR] [-t TMPDIR]
#                           [-T SECONDS] [-v]
#   -r REPS        repetitions of every mode (default 5)
#   -n ITERATIONS  workload iterations (default 2500000); the calls are
#                  4 * ITERATIONS + ceil(ITERATIONS / 8000) (10,000,313)
#   -m MODES       comma-separated subset of: baseline, function.hot, function.null,
#                  function.csv, function-memory.hot, function-memory.null,
#                  function-memory.csv, uftrace, pread (default: all; baseline always runs)
#   -b BUILDDIR    the build tree holding bench/calls (default: the current directory)
#   -t TMPDIR      where traces are written (default: $TMPDIR or /tmp; CSV files of
#                  the default size reach 2.5 GB and are deleted after each run)
#   -T SECONDS     a run still going after this long is stopped and is an error
#                  (default 600; `uftrace record` has been seen to hang)
#   -v             also print every run's times
#
# Modes (see bench/calls.c and docs/PERFORMANCE.md):
#   baseline   the instrumented program, monitoring off (PIKOC_RECORD unset)
#   M.hot      monitor M into a null recorder, the drain caught up between
#              slices of the workload: the hot path alone, the ring never full;
#              between slices it also times reads of /proc/self/statm, the
#              unit function-memory.hot is held to, back to back and in place
#              (an uninstrumented copy of the workload reading where each
#              hook would be called, less the copy calling an empty function)
#   M.null     monitor M into a null recorder: hooks plus the drain building
#              records, no formatting (the thread waits when its ring is full)
#   M.csv      PIKOC_MONITOR=M PIKOC_RECORD=csv:FILE: end to end
#   uftrace    uftrace record --no-libcall --no-sched of the same binary
#   pread      pread(2) of /proc/self/statm in a loop, for function-memory
#
# Exits 0 when every run succeeded and recorded exactly the expected number
# of events, 1 otherwise, 2 on bad usage.
set -u
. "$(dirname "$0")/calls-lib.sh"

reps=5
iterations=2500000
modes=all
builddir=.
tmproot=${TMPDIR:-/tmp}
verbose=false
limit=600

usage() {
    sed -n '/^# usage:/,/^#$/s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

while getopts r:n:m:b:t:T:vh opt; do
    case $opt in
    r) reps=$OPTARG ;;
    n) iterations=$OPTARG ;;
    m) modes=$OPTARG ;;
    b) builddir=$OPTARG ;;
    t) tmproot=$OPTARG ;;
    T) limit=$OPTARG ;;
    v) verbose=true ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage
case $reps in '' | *[!0-9]* | 0) echo "run-calls.sh: -r wants a positive count" >&2; exit 2 ;; esac
case $iterations in '' | *[!0-9]* | 0) echo "run-calls.sh: -n wants a positive count" >&2; exit 2 ;; esac
case $limit in '' | *[!0-9]* | 0) echo "run-calls.sh: -T wants a positive number of seconds" >&2; exit 2 ;; esac

all_modes="baseline function.hot function.null function.csv"
all_modes="$all_modes function-memory.hot function-memory.null function-memory.csv uftrace pread"
if [ "$modes" = all ]; then
    modes=$all_modes
else
    wanted="baseline"
    for m in $(echo "$modes" | tr ',' ' '); do
        case " $all_modes " in
        *" $m "*) [ "$m" = baseline ] || wanted="$wanted $m" ;;
        *) echo "run-calls.sh: unknown mode '$m' (known: $all_modes)" >&2; exit 2 ;;
        esac
    done
    modes=$wanted
fi

if ! calls_binary "$builddir"; then
    echo "run-calls.sh: no $builddir/bench/calls; build it with 'make bench/calls' or pass -b BUILDDIR" >&2
    exit 2
fi
if [ -n "$libs" ]; then
    LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export LD_LIBRARY_PATH
fi

uftrace=$(command -v uftrace 2>/dev/null || true)
case " $modes " in
*" uftrace "*)
    if [ -z "$uftrace" ]; then
        echo "run-calls.sh: uftrace is not installed: no uftrace runs, no ratios" >&2
        modes=$(echo "$modes" | sed 's/ uftrace//')
    fi
    ;;
esac

calls_clean_env

work=$(mktemp -d "$tmproot/pikoc-bench.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 1' INT TERM

calls=$(calls_of "$iterations")
events=$((2 * calls))
errors=0

fail() {
    echo "run-calls.sh: $*" >&2
    errors=$((errors + 1))
}

now_ns() { date +%s%N; }

calls_limit "$limit" # a hung run must not hang the benchmark

# Checks what a pikoc run reported: all events built, every call matched.
check_totals() { # mode
    got=$(value events)
    [ "$got" = "$events" ] || fail "$1: the monitor built ${got:-no} events, expected $events"
    for counter in dropped unmatched unfinished; do
        got=$(value $counter)
        [ "$got" = 0 ] || fail "$1: $counter=${got:-?}, expected 0"
    done
}

# Runs one mode once; appends "wall_ns loop_ns cpu_ns" to $work/<mode>.times.
run_mode() { # mode rep
    mode=$1
    first_rep=false
    [ "$2" = 1 ] && first_rep=true
    rm -rf "$work/trace.csv" "$work/uftrace.data"
    sync
    case $mode in
    baseline) set -- "$prog" "$iterations" ;;
    function.csv) set -- env PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/trace.csv" \
        "$prog" "$iterations" ;;
    function-memory.csv) set -- env PIKOC_MONITOR=function-memory \
        PIKOC_RECORD="csv:$work/trace.csv" "$prog" "$iterations" ;;
    function.null) set -- "$prog" --null=function "$iterations" ;;
    function-memory.null) set -- "$prog" --null=function-memory "$iterations" ;;
    function.hot) set -- "$prog" --hot=function "$iterations" ;;
    function-memory.hot) set -- "$prog" --hot=function-memory "$iterations" ;;
    uftrace) set -- "$uftrace" record --no-libcall --no-sched -d "$work/uftrace.data" \
        "$prog" "$iterations" ;;
    pread) set -- "$prog" --pread ;;
    esac
    start=$(now_ns)
    $with_limit "$@" >"$work/out" 2>"$work/err"
    rc=$?
    end=$(now_ns)
    if [ -n "$with_limit" ] && [ $rc -eq 124 ]; then
        fail "$mode: '$*' was still running after $limit s and was stopped"
        return
    fi
    if [ $rc -ne 0 ]; then
        fail "$mode: '$*' exited with $rc"
        sed 's/^/    /' "$work/err" >&2
        return
    fi
    if [ "$mode" = pread ]; then
        value pread_ns >>"$work/pread.times"
        return
    fi
    got=$(value calls)
    [ "$got" = "$calls" ] || fail "$mode: the workload made ${got:-?} calls, expected $calls"

    # Every mode must record the same events, or the comparison is not honest.
    case $mode in
    *.csv)
        check_totals "$mode"
        rows=$(($(wc -l <"$work/trace.csv") - 1))
        [ "$rows" = "$events" ] || fail "$mode: $rows CSV rows, expected $events"
        echo "$rows" >"$work/$mode.count"
        ;;
    *.null | *.hot)
        check_totals "$mode"
        got=$(value records)
        [ "$got" = "$events" ] || fail "$mode: ${got:-no} records reached the recorder, expected $events"
        echo "$got" >"$work/$mode.count"
        ;;
    uftrace)
        # A record in uftrace's per-thread TID.dat files is 16 bytes (no
        # arguments); perf-cpuN.dat files hold task events, not calls.
        bytes=$(cat "$work"/uftrace.data/[0-9]*.dat | wc -c)
        if [ $((bytes % 16)) -ne 0 ] || [ $((bytes / 16)) -ne "$events" ]; then
            fail "uftrace: $bytes bytes of records, expected $events records of 16 bytes"
        fi
        echo $((bytes / 16)) >"$work/uftrace.count"
        if $first_rep; then # once: uftrace's own count of the calls
            reported=$("$uftrace" report -d "$work/uftrace.data" -f call -s call 2>/dev/null |
                awk '$2 ~ /^(run_slice|step|twig|leaf)$/ { n += $1 } END { print n + 0 }')
            [ "$reported" = "$calls" ] ||
                fail "uftrace report counts $reported calls, expected $calls"
            echo "$reported" >"$work/uftrace.reported"
        fi
        ;;
    esac
    echo "$((end - start)) $(value loop_ns) $(value cpu_ns)" >>"$work/$mode.times"
    if [ "$mode" = function-memory.hot ]; then
        value pread_ns >>"$work/paired-pread.times"
        value place_ns >>"$work/paired-place.times"
    fi
}

# The median of column $1 of a file of numbers.
median() { # column file
    cut -d' ' -f"$1" "$2" | sort -n | awk '{ v[NR] = $1 }
        END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2];
              else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "pikoc call-overhead benchmark: $calls instrumented calls ($events events) per run,"
echo "$reps interleaved repetitions of: $modes"
echo "binary: $prog"
[ -n "$uftrace" ] && echo "uftrace: $($uftrace --version 2>/dev/null | head -n 1)"
echo "host: $(uname -srm), $(getconf _NPROCESSORS_ONLN) CPUs, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

rep=1
while [ $rep -le "$reps" ]; do
    # Rotate the order so no mode always follows the same neighbour.
    order=$(echo "$modes" | awk -v k=$((rep - 1)) '{ for (i = 0; i < NF; i++) printf "%s ", $((i + k) % NF + 1) }')
    printf 'repetition %d/%d:' "$rep" "$reps"
    for m in $order; do
        printf ' %s' "$m"
        run_mode "$m" "$rep"
    done
    echo
    rep=$((rep + 1))
done
echo

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ ! -s "$work/baseline.times" ]; then
    echo "run-calls.sh: no successful baseline run" >&2
    exit 1
fi

# Three measures (columns of the .times files):
#   1 wall  the whole process until the recording is finished: end to end;
#   2 loop  the workload as the monitored thread lived it: hooks, ring, and
#           any wait for the drain when the ring is full;
#   3 cpu   the monitored thread's CPU time in the workload: the hot path
#           (plus any spinning in the wait for a full ring).
# ns added per call for a mode and a measure, "" if the mode did not run.
added() { # mode column
    [ -s "$work/$1.times" ] || return 0
    awk -v v="$(median "$2" "$work/$1.times")" -v b="$(median "$2" "$work/baseline.times")" \
        -v c="$calls" 'BEGIN { printf "%.1f", (v - b) / c }'
}
# uftrace's added cost over a mode's: how many times cheaper pikoc is.
ratio() { # uftrace-added mode-added
    if [ -z "$1" ] || [ -z "$2" ]; then
        echo "-"
    else
        awk -v u="$1" -v p="$2" 'BEGIN { if (p > 0) printf "%.2f", u / p; else print "inf" }'
    fi
}

echo "Medians of $reps runs. wall: whole process (end to end); loop: workload as the monitored"
echo "thread lived it (waits on a full ring included); cpu: the monitored thread's CPU time."
echo "+ns: (mode - baseline) / $calls calls. x: uftrace's +ns / the mode's +ns (> 1: pikoc is cheaper)."
printf '%-21s %8s %8s %8s | %8s %8s %8s | %6s %6s %6s | %9s\n' mode wall_ms loop_ms cpu_ms \
    "wall+ns" "loop+ns" "cpu+ns" x_wall x_loop x_cpu events
for m in $modes; do
    [ "$m" = pread ] && continue
    f="$work/$m.times"
    if [ ! -s "$f" ]; then
        printf '%-21s %s\n' "$m" "(no successful run)"
        continue
    fi
    line=$(printf '%-21s' "$m")
    for col in 1 2 3; do
        line="$line $(awk -v v="$(median $col "$f")" 'BEGIN { printf "%8.1f", v / 1e6 }')"
    done
    # A hot mode's wall time includes its pauses for the drain: not a cost.
    line="$line |"
    for col in 1 2 3; do
        a="-"
        case $m:$col in baseline:* | *.hot:1) ;; *) a=$(added "$m" $col) ;; esac
        line="$line $(printf '%8s' "$a")"
    done
    line="$line |"
    for col in 1 2 3; do
        x="-"
        case $m:$col in
        baseline:* | uftrace:* | *.hot:1) ;;
        *) x=$(ratio "$(added uftrace $col)" "$(added "$m" $col)") ;;
        esac
        line="$line $(printf '%6s' "$x")"
    done
    n="-"
    [ "$m" = baseline ] || n=$(cat "$work/$m.count" 2>/dev/null || echo "-")
    echo "$line | $(printf '%9s' "$n")"
done
[ -f "$work/uftrace.reported" ] &&
    echo "uftrace report -f call -s call (first run): $(cat "$work/uftrace.reported") calls"

if $verbose; then
    echo
    echo "Every run (wall_ms loop_ms cpu_ms, in the order run):"
    for m in $modes; do
        [ -s "$work/$m.times" ] || continue
        if [ "$m" = pread ]; then
            printf '%-21s %s\n' "$m" "$(tr '\n' ' ' <"$work/pread.times")(ns per pread)"
            continue
        fi
        printf '%-21s %s\n' "$m" "$(awk '{ printf "%.0f/%.0f/%.0f  ", $1 / 1e6, $2 / 1e6, $3 / 1e6 }' \
            "$work/$m.times")"
    done
fi

verdict() { # label value op limit
    [ -n "$2" ] && [ "$2" != "-" ] || return 0
    awk -v l="$1" -v v="$2" -v op="$3" -v lim="$4" 'BEGIN {
        ok = (op == "<=") ? (v <= lim) : (v >= lim)
        printf "  %-58s %8s  %s %-7s %s\n", l, v, op, lim, ok ? "met" : "MISSED" }'
}

echo
echo "Targets (function: <= 25 ns per call and >= 4x cheaper than uftrace):"
verdict "function, hot path (function.hot, loop): +ns per call" "$(added function.hot 2)" "<=" 25
verdict "function, hot path: uftrace / pikoc (loop)" \
    "$(ratio "$(added uftrace 2)" "$(added function.hot 2)")" ">=" 4
verdict "function, no formatting (function.null, wall): +ns per call" \
    "$(added function.null 1)" "<=" 25
verdict "function, no formatting: uftrace / pikoc (wall)" \
    "$(ratio "$(added uftrace 1)" "$(added function.null 1)")" ">=" 4
verdict "function, end to end (function.csv, wall): +ns per call" "$(added function.csv 1)" "<=" 25
verdict "function, end to end: uftrace / pikoc (wall)" \
    "$(ratio "$(added uftrace 1)" "$(added function.csv 1)")" ">=" 4
if [ -s "$work/pread.times" ] || [ -s "$work/paired-pread.times" ]; then
    echo "function-memory (RSS/VMS on every event): at most one pread more per event than function;"
    pread_ns=""
    if [ -s "$work/pread.times" ]; then
        pread_ns=$(median 1 "$work/pread.times")
        echo "  pread(/proc/self/statm), median of $reps loops of 200000 in one thread: $pread_ns ns"
    fi
    # The hot runs' own reads, between their slices: the kernel's cost of the
    # read drifts by a tenth from one minute to the next, so the unit the hot
    # path is held to is the one measured beside it.
    paired_ns=""
    if [ -s "$work/paired-pread.times" ]; then
        paired_ns=$(median 1 "$work/paired-pread.times")
        echo "  the same read between function-memory.hot's slices, median of its runs: $paired_ns ns"
    fi
    # And the read where the sample makes it: between the workload's calls
    # and returns (calls.c, "the read in place"), not back to back.
    place_ns=""
    if [ -s "$work/paired-place.times" ]; then
        place_ns=$(median 1 "$work/paired-place.times")
        echo "  the read in place of each hook (an uninstrumented copy), median of its runs: $place_ns ns"
    fi
    # Not the csv modes: function.csv is bound by the drain's formatting and
    # function-memory.csv by its preads, so their difference measures neither.
    for measure in hot:2:loop null:1:wall; do
        sink=${measure%%:*}
        col=${measure#*:}
        col=${col%:*}
        unit=$pread_ns
        [ "$sink" = hot ] && [ -n "$paired_ns" ] && unit=$paired_ns
        fm=$(added "function-memory.$sink" "$col")
        fn=$(added "function.$sink" "$col")
        if [ -z "$fm" ] || [ -z "$fn" ] || [ -z "$unit" ]; then continue; fi
        extra=$(awk -v a="$fm" -v b="$fn" 'BEGIN { printf "%.1f", (a - b) / 2 }')
        verdict "function-memory - function, +ns per event ($sink, ${measure##*:})" \
            "$extra" "<=" "$unit"
        if [ "$sink" = hot ] && [ -n "$place_ns" ]; then
            verdict "  the same, against the read in place" "$extra" "<=" "$place_ns"
        fi
    done
fi

if [ $errors -ne 0 ]; then
    echo
    echo "run-calls.sh: $errors error(s): the figures above are not to be quoted" >&2
    exit 1
fi
exit 0
