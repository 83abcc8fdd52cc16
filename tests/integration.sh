#!/bin/sh
# integration.sh — whole programs built with -finstrument-functions (or
# zones), monitored through PIKOC_* variables, checked for their exact
# call/return sequences, counts and depths; uftrace is the oracle for
# call counts where it is installed.
set -u

builddir=${top_builddir:-.}
srcdir=${top_srcdir:-.}
expected="$srcdir/tests/expected"
work=$(mktemp -d "${TMPDIR:-/tmp}/pikoc-integration.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; }

# Runs a program (via its libtool wrapper) with the given environment.
run() {
    timeout 120 env "$@" >"$work/stdout" 2>"$work/stderr"
}

# "type function depth" for each record of a CSV file.
sequence() {
    tr -d '\r' <"$1" | awk -F, 'NR > 1 { print $2, $3, $10 }'
}

check_sequence() { # name csv expected-file
    if sequence "$2" | diff -u "$3" - >"$work/diff"; then
        ok "$1"
    else
        not_ok "$1"
        cat "$work/diff"
    fi
}

check_equal() { # name got expected
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: got '$2', expected '$3'"; fi
}

prog() { echo "$builddir/tests/prog_$1"; }

# --- exact sequences ---------------------------------------------------------
for monitor in function function-memory; do
    run PIKOC_MONITOR=$monitor PIKOC_RECORD="csv:$work/nested.csv" "$(prog nested)"
    check_sequence "nested calls ($monitor)" "$work/nested.csv" "$expected/nested.txt"
done
check_equal "nested program output untouched" "$(cat "$work/stdout")" "total 6"

run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/focus.csv" PIKOC_FOCUS=target "$(prog focus)"
compares=$(awk '{ print $3 }' "$work/stdout")
{
    echo "call target 0"
    i=0
    while [ "$i" -lt "$compares" ]; do
        printf 'call compare 1\nreturn compare 1\n'
        i=$((i + 1))
    done
    printf 'call helper 1\nreturn helper 1\nreturn target 0\n'
} >"$work/focus-expected.txt"
check_sequence "focus survives library calls ($compares compares)" "$work/focus.csv" "$work/focus-expected.txt"

run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/zones.csv" "$(prog zones)"
check_sequence "named zones" "$work/zones.csv" "$expected/zones.txt"

# GCC 12's LeakSanitizer can deadlock in the exit of a child forked from a
# threaded parent (its allocator is not fork-safe): no leak check in that run.
run ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" PIKOC_MONITOR=function \
    PIKOC_RECORD="csv:$work/fork.csv" "$(prog fork)"
check_sequence "fork: parent only, child writes nothing" "$work/fork.csv" "$expected/fork.txt"
check_equal "fork: child exit status" "$(cat "$work/stdout")" "5 0"

# --- recursion: counts and depths ----------------------------------------------
run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/fib.csv" "$(prog recursion)" 15
calls=$(sequence "$work/fib.csv" | grep -c '^call fib ')
check_equal "fib(15) calls" "$calls" 1973
returns=$(sequence "$work/fib.csv" | grep -c '^return fib ')
check_equal "fib(15) returns" "$returns" 1973
deepest=$(sequence "$work/fib.csv" | awk '$2 == "fib" { if ($3 > m) m = $3 } END { print m }')
check_equal "fib(15) deepest call" "$deepest" 15
balanced=$(sequence "$work/fib.csv" | awk '
    $1 == "call" { stack[n++] = $2 " " $3 }
    $1 == "return" { if (n == 0 || stack[--n] != $2 " " $3) bad++ }
    END { print (bad || n) ? "unbalanced" : "balanced" }')
check_equal "fib(15) calls and returns nest" "$balanced" balanced

# --- threads: nothing lost with a small ring -------------------------------------
run PIKOC_MONITOR=function-memory PIKOC_RING_EVENTS=64 PIKOC_RECORD="csv:$work/threads.csv" \
    "$(prog threads)" 8 5000
work_calls=$(sequence "$work/threads.csv" | grep -c '^call work 1')
check_equal "8 threads x 5000 calls: work" "$work_calls" 40000
step_calls=$(sequence "$work/threads.csv" | grep -c '^call step 2')
check_equal "8 threads x 5000 calls: step" "$step_calls" 40000
threads=$(tr -d '\r' <"$work/threads.csv" | awk -F, 'NR > 1 && $3 == "work" { print $9 }' | sort -u | wc -l)
check_equal "8 threads named" "$threads" 8
per_thread=$(tr -d '\r' <"$work/threads.csv" | awk -F, 'NR > 1 && $2 == "call" && $3 == "work" { n[$9]++ }
    END { for (t in n) print n[t] }' | sort -u)
check_equal "each thread 5000 calls" "$per_thread" 5000

# --- several recorders, filters from the environment -------------------------------
run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/a.csv;csv:$work/b.csv" PIKOC_MAX_DEPTH=1 \
    "$(prog nested)"
check_equal "max-depth 1 keeps main and a" "$(sequence "$work/a.csv" | awk '{print $2}' | sort | uniq -c | tr -s ' ' | tr '\n' '/')" " 4 a/ 2 main/"
check_equal "second recorder got the same" "$(sequence "$work/b.csv" | wc -l)" 6

run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/excl.csv" PIKOC_EXCLUDE='b' "$(prog nested)"
check_equal "exclude b" "$(sequence "$work/excl.csv" | grep -c ' b ')" 0
check_equal "exclude keeps the rest" "$(sequence "$work/excl.csv" | wc -l)" 10

# --- bad settings: one clear line, the program still runs ---------------------------
run PIKOC_RECORD="sqlit:run.db" "$(prog nested)"
check_equal "unknown recorder kind" "$(cat "$work/stderr")" \
    "pikoc: PIKOC_RECORD: recorder spec 'sqlit:run.db': unknown kind 'sqlit' (known: stdout, stderr, text, csv, list, sqlite); the program runs without monitoring"
check_equal "program ran anyway" "$(cat "$work/stdout")" "total 6"

run PIKOC_RECORD="stdout" PIKOC_MAX_DEPTH=-3 "$(prog nested)"
check_equal "negative max depth" "$(cat "$work/stderr")" \
    "pikoc: PIKOC_MAX_DEPTH: filter spec 'max-depth:-3': depth '-3': expected a non-negative whole number; the program runs without monitoring"

run PIKOC_RECORD="stdout" PIKOC_MIN_DURATION="5 parsecs" "$(prog nested)"
check_equal "duration with a bad unit" "$(cat "$work/stderr")" \
    "pikoc: PIKOC_MIN_DURATION: filter spec 'min-duration:5 parsecs': duration '5 parsecs': unknown unit 'parsecs' (accepted: ns, us, ms, s); the program runs without monitoring"

run PIKOC_RECORD="text:" "$(prog nested)"
check_equal "text without a path" "$(cat "$work/stderr")" \
    "pikoc: PIKOC_RECORD: recorder spec 'text:': nothing after ':'; the program runs without monitoring"

run PIKOC_RECORD="stdout" PIKOC_MONITOR=cpu "$(prog nested)"
check_equal "unknown monitor" "$(cat "$work/stderr")" \
    "pikoc: PIKOC_MONITOR: unknown monitor 'cpu' (known: function, function-memory); the program runs without monitoring"

# --- text to a closed pipe: reported once, the program finishes ----------------------
env PIKOC_MONITOR=function PIKOC_RECORD="stdout" "$(prog recursion)" 12 2>"$work/stderr" | head -c 10 >/dev/null
status=$?
check_equal "closed pipe: program exit status" "$status" 0

# --- uftrace as the oracle for call counts ------------------------------------------
# (uftrace cannot trace a program built with AddressSanitizer: that build skips it.)
if [ "${PK_SANITIZERS:-no}" = yes ]; then
    echo "# sanitizer build: the uftrace oracle runs in the plain build"
elif [ -z "${UFTRACE:-}" ] || [ ! -x "${UFTRACE:-}" ]; then
    not_ok "uftrace oracle: uftrace is not installed (apt-get install uftrace)"
else
    # oracle NAME FUNCTION PIKOC_CSV PROGRAM ARGS...: uftrace's call count for
    # FUNCTION must equal the number of pikoc call records for it.
    oracle() {
        name=$1 function=$2 csv=$3 program=$4
        shift 4
        binary="$builddir/tests/.libs/prog_$program"
        [ -x "$binary" ] || binary="$builddir/tests/prog_$program"
        rm -rf "$work/uftrace.data"
        if LD_LIBRARY_PATH="$builddir/.libs" timeout 120 "$UFTRACE" record -d "$work/uftrace.data" \
            "$binary" "$@" >/dev/null 2>&1; then
            theirs=$("$UFTRACE" report -d "$work/uftrace.data" -s call -f call 2>/dev/null |
                awk -v f="$function" '$2 == f { print $1 }')
            ours=$(sequence "$csv" | awk -v f="$function" '$1 == "call" && $2 == f' | wc -l)
            check_equal "$name: pikoc and uftrace report agree ($ours calls of $function)" "$theirs" "$ours"
        else
            not_ok "$name: uftrace record failed"
        fi
    }
    oracle "fib(15)" fib "$work/fib.csv" recursion 15
    run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/nested.csv" "$(prog nested)"
    oracle "nested" b "$work/nested.csv" nested
    oracle "nested" c "$work/nested.csv" nested
    oracle "8 threads" step "$work/threads.csv" threads 8 5000
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
