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

. "$srcdir/tests/checks.sh"

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

# Instrumented libraries closed with dlclose: their functions are named
# before they go, and a library loaded where one was is named as itself,
# the same one again (libdw's reading of its file maps it beside) or another
# (the same code, another file). One, one, two, one.
one="$builddir/tests/.libs/plugin_one.so"
plugins="$one $one $builddir/tests/.libs/plugin_two.so $one"
# shellcheck disable=SC2086 # four paths
run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/plugins.csv" "$(prog plugins)" $plugins
status=$?
check_equal "dlclose: each run of plugin_run" "$status $(cut -d' ' -f2 "$work/stdout" | tr '\n' ' ')" "0 5 5 5 5 "
# (the case at stake; in process, the loader may find that range taken meanwhile)
if [ "$(cut -d' ' -f1 "$work/stdout" | sort -u | wc -l)" -eq 1 ]; then
    ok "dlclose: the second library loaded where the first was"
else
    ok "dlclose: the second library loaded where the first was # SKIP the loader put it elsewhere"
fi
check_equal "dlclose: each library's functions by name, under its own file" "$(calls_by_file "$work/plugins.csv")" \
    "plugin_run plugin_one.c 1|plugin_square plugin_one.c 3|plugin_run plugin_one.c 1|plugin_square plugin_one.c 3|plugin_run plugin_two.c 1|plugin_square plugin_two.c 3|plugin_run plugin_one.c 1|plugin_square plugin_one.c 3|"
# A library whose code runs only as it closes (its destructor): nothing of
# it was met before dlclose unmapped it, and its names are found all the
# same, each of the two times it is loaded.
farewell="$builddir/tests/.libs/plugin_farewell.so"
run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/farewell.csv" "$(prog plugins)" "$farewell" "$farewell"
status=$?
check_equal "dlclose: a library's destructor by name, nothing of it met before" \
    "$status $(tr '\n' ' ' <"$work/stdout")$(calls_by_file "$work/farewell.csv")" \
    "0 - - - - farewell plugin_farewell.c 1|farewell_twice plugin_farewell.c 1|farewell plugin_farewell.c 1|farewell_twice plugin_farewell.c 1|"
# The same library as the dependency of another, which brings it in and
# takes it along as it closes: its destructor runs inside the other's close.
# Then another library, maybe where they were.
run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/host.csv" "$(prog plugins)" \
    "$builddir/tests/.libs/plugin_host.so" "$builddir/tests/.libs/plugin_one.so"
status=$?
check_equal "dlclose: a dependency's destructor by name, inside the close of the library it came with" \
    "$status $(cut -d' ' -f2 "$work/stdout" | tr '\n' ' ')$(calls_by_file "$work/host.csv")" \
    "0 - 5 farewell plugin_farewell.c 1|farewell_twice plugin_farewell.c 1|plugin_run plugin_one.c 1|plugin_square plugin_one.c 3|"

# GCC 12's LeakSanitizer can deadlock in the exit of a child forked from a
# threaded parent (its allocator is not fork-safe): no leak check in that run.
run ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" PIKOC_MONITOR=function \
    PIKOC_RECORD="csv:$work/fork.csv" "$(prog fork)"
check_sequence "fork: parent only, child writes nothing" "$work/fork.csv" "$expected/fork.txt"
check_equal "fork: child exit status" "$(cat "$work/stdout")" "5 0"

# exec in process: every record the replaced image made reaches its recorder
# before it goes (the drain thread goes with it), whichever exec function,
# with the arguments and the environment it was given; a vforked child's
# exec leaves its parent's run as it is.
{
    echo "call main 0"
    echo "call graph 1"
    for i in 1 2; do
        printf 'call a 2\ncall b 3\nreturn b 3\ncall c 3\ncall b 4\nreturn b 4\nreturn c 3\nreturn a 2\n'
    done
    printf 'return graph 1\ncall execute 1\n'
} >"$work/exec-expected.txt"
run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/exec.csv" "$(prog execs)" execv /bin/true
check_sequence "exec: the replaced image's records, up to the exec" "$work/exec.csv" "$work/exec-expected.txt"
ways=""
for how in execv execve execvp execvpe execl execle execlp fexecve execveat; do
    rm -f "$work/exec.csv"
    shell=/bin/sh
    case $how in execvp | execvpe | execlp) shell=sh ;; esac # looked up in PATH
    # shellcheck disable=SC2016 # the new image's shell expands them
    run X=inherited PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/exec.csv" "$(prog execs)" $how $shell \
        -c 'echo "$0|$1|$X"' zero one
    ways="$ways $how:$?:$(cat "$work/stdout"):$(sequence "$work/exec.csv" | wc -l):$(sequence "$work/exec.csv" | tail -n 1 | tr ' ' _)"
done
check_equal "exec: each exec function, its arguments and environment, every record of the replaced image" "$ways" \
    " execv:0:zero|one|inherited:20:call_execute_1 execve:0:zero|one|given:20:call_execute_1 execvp:0:zero|one|inherited:20:call_execute_1 execvpe:0:zero|one|given:20:call_execute_1 execl:0:zero|one|inherited:21:call_execute_list_2 execle:0:zero|one|given:21:call_execute_list_2 execlp:0:zero|one|inherited:21:call_execute_list_2 fexecve:0:zero|one|given:20:call_execute_1 execveat:0:zero|one|given:20:call_execute_1"
run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/vfork.csv" "$(prog execs)" vfork /bin/true
check_equal "vfork: the child's exec leaves the parent's run whole" \
    "$(cat "$work/stdout") $(sequence "$work/vfork.csv" | wc -l) $(sequence "$work/vfork.csv" | tail -n 1)" \
    "total 6 child 0 20 return main 0"
# An exec that cannot run (no such file, here or in PATH) leaves the run going on;
# one that fails all the same (a file that is not a program) after the run ended
# leaves the rest unrecorded, and says so.
run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/exec-none.csv" "$(prog execs)" execlp no-such-program-here
check_equal "exec that cannot run: errno kept, the run goes on, nothing said" \
    "$? $(cat "$work/stderr") $(sequence "$work/exec-none.csv" | wc -l) $(sequence "$work/exec-none.csv" | tail -n 1)" \
    "3 execlp no-such-program-here: No such file or directory (returned -1) 34 return main 0"
# The p-variants look a name up as libc does: a later PATH directory, an empty
# entry (the current directory), PATH unset (/bin:/usr/bin); a directory cannot run.
mkdir "$work/bin"
ln -s /bin/true "$work/bin/pikoc-true"
lookups=""
for how in later empty unset directory; do
    rm -f "$work/lookup.csv"
    case $how in
    later) run PATH="/nowhere:$work/bin" PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/lookup.csv" \
        "$(prog execs)" execvp pikoc-true ;;
    empty) (cd "$work/bin" && run PATH=":/nowhere" PIKOC_MONITOR=function \
        PIKOC_RECORD="csv:$work/lookup.csv" "$(prog execs)" execlp pikoc-true) ;;
    unset) run -u PATH PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/lookup.csv" "$(prog execs)" execvp true ;;
    directory) run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/lookup.csv" "$(prog execs)" execv "$work/bin" ;;
    esac
    lookups="$lookups $how:$?:$(sequence "$work/lookup.csv" | wc -l)"
done
check_equal "exec: names looked up in PATH as libc does; a directory leaves the run going on" "$lookups" \
    " later:0:20 empty:0:21 unset:0:20 directory:3:32"
printf '\177ELF, not a program\n' >"$work/not-a-program"
chmod +x "$work/not-a-program"
run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/exec-bad.csv" "$(prog execs)" execv "$work/not-a-program"
check_equal "exec that fails after the run ended: its records kept, the rest unrecorded, said once" \
    "$? $(sequence "$work/exec-bad.csv" | wc -l) $(cat "$work/stderr")" \
    "3 20 pikoc: executing $work/not-a-program failed (Exec format error) after monitor 'function' ended its run 'executed' for it: what the program does next is not recorded
execv $work/not-a-program: Exec format error (returned -1)"
run PIKOC_AT_EXEC=leave PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/exec-leave.csv" "$(prog execs)" execv /bin/true
check_equal "PIKOC_AT_EXEC=leave: the exec leaves the run (its last records with the old image)" \
    "$? $(cat "$work/stderr")$(sequence "$work/exec-leave.csv" | wc -l)" "0 0"
run PIKOC_AT_EXEC=later PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/exec-later.csv" "$(prog execs)" execv /bin/true
check_equal "PIKOC_AT_EXEC with an unknown value: said, and the run ends" \
    "$? $(sequence "$work/exec-later.csv" | wc -l) $(cat "$work/stderr")" \
    "0 20 pikoc: PIKOC_AT_EXEC 'later': unknown value (known: end, leave); the run ends"
run PIKOC_AT_EXEC= PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/exec-empty.csv" "$(prog execs)" execv /bin/true
check_equal "PIKOC_AT_EXEC empty: as unset, the run ends, nothing said" \
    "$? $(sequence "$work/exec-empty.csv" | wc -l) $(cat "$work/stderr")" "0 20 "

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

# The same with function (32-byte slots, no sample): its threads too wait
# on their full rings and lose nothing.
run PIKOC_MONITOR=function PIKOC_RING_EVENTS=64 PIKOC_RECORD="csv:$work/plain.csv" \
    "$(prog threads)" 8 5000
check_equal "function, 8 threads x 5000 calls, rings of 64: calls of work and step, threads" \
    "$(sequence "$work/plain.csv" | grep -c '^call work 1') $(sequence "$work/plain.csv" | grep -c '^call step 2') $(tr -d '\r' <"$work/plain.csv" | awk -F, 'NR > 1 && $3 == "work" { print $9 }' | sort -u | wc -l)" \
    "40000 40000 8"
check_equal "function, rings of 64: each thread 5000 calls and 5000 returns of work" \
    "$(tr -d '\r' <"$work/plain.csv" | awk -F, 'NR > 1 && $3 == "work" { n[$9 " " $2]++ }
        END { for (t in n) print n[t] }' | sort | uniq -c | tr -s ' ')" " 16 5000"

# In process, the rings and the drain's doorbell are this process's alone:
# their futexes (1 ms waits, and wakes of one waiter) are FUTEX_PRIVATE.
if command -v strace >/dev/null; then
    run PIKOC_MONITOR=function-memory PIKOC_RING_EVENTS=64 PIKOC_RECORD="csv:$work/futex.csv" \
        strace -f -qq -e trace=futex -o "$work/futex" "$(prog threads)" 8 5000
    shared=$(grep -cE 'FUTEX_(WAIT, [0-9]+, \{tv_sec=0, tv_nsec=1000000\}|WAKE, 1\))' "$work/futex")
    private=$(grep -cE 'FUTEX_WAIT_PRIVATE, [0-9]+, \{tv_sec=0, tv_nsec=1000000\}' "$work/futex")
    check_equal "in process: the rings' futexes are private" \
        "$shared $([ "$private" -gt 0 ] && echo private)" "0 private"
fi

# --- several recorders, filters from the environment -------------------------------
run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/a.csv;csv:$work/b.csv" PIKOC_MAX_DEPTH=1 \
    "$(prog nested)"
check_equal "max-depth 1 keeps main and a" "$(sequence "$work/a.csv" | awk '{print $2}' | sort | uniq -c | tr -s ' ' | tr '\n' '/')" " 4 a/ 2 main/"
check_equal "second recorder got the same" "$(sequence "$work/b.csv" | wc -l)" 6

run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/excl.csv" PIKOC_EXCLUDE='b' "$(prog nested)"
check_equal "exclude b" "$(sequence "$work/excl.csv" | grep -c ' b ')" 0
check_equal "exclude keeps the rest" "$(sequence "$work/excl.csv" | wc -l)" 10

# An empty setting is an unset one: no filter, no focus, nothing said.
run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/empty.csv" PIKOC_INCLUDE= PIKOC_EXCLUDE= \
    PIKOC_MAX_DEPTH= PIKOC_MIN_DURATION= PIKOC_FOCUS= PIKOC_FILTER= "$(prog nested)"
check_sequence "empty PIKOC_INCLUDE, _EXCLUDE, _MAX_DEPTH, _MIN_DURATION, _FOCUS, _FILTER: as unset" \
    "$work/empty.csv" "$expected/nested.txt"
check_equal "empty settings: nothing said" "$(cat "$work/stderr")" ""

# A list of globs longer than any fixed buffer is read whole: main, its last
# item, 1,204 characters in, is still a glob of the filter.
long_include="$(seq -f 'x%04g' 1 200 | paste -sd, -),main"
run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/long.csv" PIKOC_INCLUDE="$long_include" "$(prog nested)"
check_equal "PIKOC_INCLUDE of ${#long_include} characters: main, its last glob, recorded" \
    "$(sequence "$work/long.csv" | tr '\n' /)" "call main 0/return main 0/"

# --- bad settings: one clear line, the program still runs ---------------------------
run PIKOC_RECORD="sqlit:run.db" "$(prog nested)"
check_equal "unknown recorder kind" "$(cat "$work/stderr")" \
    "pikoc: PIKOC_RECORD: recorder spec 'sqlit:run.db': unknown kind 'sqlit' (known: stdout, stderr, text, csv, list, sqlite, zmq); the program runs without monitoring"
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
    "pikoc: PIKOC_MONITOR: unknown monitor 'cpu' (known: function, function-memory, alloc); the program runs without monitoring"

# Settings of the runtime: a bad one is said once and its default taken; the
# run records all the same.
run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/ring.csv" PIKOC_RING_EVENTS=abc "$(prog nested)"
check_equal "ring size not a number" "$(cat "$work/stderr")" \
    "pikoc: PIKOC_RING_EVENTS 'abc': expected a whole number of events from 64 to 1073741824 (rounded up to a power of two); using rings of 65536 events"
check_sequence "ring size not a number: every record" "$work/ring.csv" "$expected/nested.txt"
run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/ring.csv" PIKOC_RING_EVENTS=32 "$(prog nested)"
check_equal "ring size below 64" "$(cat "$work/stderr")" \
    "pikoc: PIKOC_RING_EVENTS '32': expected a whole number of events from 64 to 1073741824 (rounded up to a power of two); using rings of 65536 events"
check_sequence "ring size below 64: every record" "$work/ring.csv" "$expected/nested.txt"
run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/clock.csv" PIKOC_CLOCK=monotnic "$(prog nested)"
check_equal "unknown clock" "$(cat "$work/stderr")" \
    "pikoc: PIKOC_CLOCK 'monotnic': unknown clock (known: tsc, monotonic); using the TSC when it is invariant, else CLOCK_MONOTONIC"
check_sequence "unknown clock: every record" "$work/clock.csv" "$expected/nested.txt"
run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/clock.csv" PIKOC_CLOCK=tsc PIKOC_RING_EVENTS=100 \
    "$(prog nested)"
check_equal "PIKOC_CLOCK=tsc, PIKOC_RING_EVENTS=100: no warning" "$(cat "$work/stderr")" ""
check_sequence "PIKOC_CLOCK=tsc, PIKOC_RING_EVENTS=100: every record" "$work/clock.csv" \
    "$expected/nested.txt"

run PIKOC_MONITOR=function PIKOC_RECORD="csv:$work/clock.csv" PIKOC_CLOCK=monotonic "$(prog nested)"
check_equal "PIKOC_CLOCK=monotonic: no warning" "$(cat "$work/stderr")" ""
check_sequence "PIKOC_CLOCK=monotonic: every record" "$work/clock.csv" "$expected/nested.txt"

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

# --- sqlite:PATH against csv:PATH from the same run ---------------------------------
# Both recorders see the same records: the events the store decodes must be the
# CSV rows exactly, and its aggregates what an independent awk pass over the CSV
# computes (per function: calls, total with recursion counted once, self, min,
# max). The sqlite3 shell reads the events through the pikoc_sqlite extension.
SQLITE3_SHELL=$(command -v sqlite3 || true)
extension="$builddir/.libs/pikoc_sqlite"
if [ -z "$SQLITE3_SHELL" ]; then
    not_ok "sqlite recorder checks: the sqlite3 shell is not installed (apt-get install sqlite3)"
else
    sql() { # DB SQL...: rows as CSV without carriage returns
        db=$1
        shift
        "$SQLITE3_SHELL" -bail -csv -cmd ".load $extension" "$db" "$@" | tr -d '\r'
    }

    # The CSV recorder's rows, without the header, as the sqlite3 shell prints them
    # (calls and returns leave the five allocation columns empty).
    csv_rows() { tr -d '\r' <"$1" | awk 'NR > 1' | sed 's/,,,,,$//'; }

    events_sql='SELECT "index", type, function, file, line, caller, caller_file, caller_line,
        thread, depth, time_ns, duration_ns, rss, vms, allocated, freed, alloc_delta, free_delta,
        NULL, NULL, NULL FROM pikoc_events WHERE run_id = RUN'

    # function,calls,total,self,min,max from a CSV file, as the store defines them.
    csv_aggregates() {
        tr -d '\r' <"$1" | awk -F, '
            NR == 1 { next }
            $2 == "call" { calls[$3]++; active[$9, $3]++; child[$9, $10] = 0; next }
            {
                t = $9; d = $10; f = $3; dur = $12
                self[f] += dur - child[t, d]
                if (--active[t, f] == 0) total[f] += dur
                if (!(f in min) || dur < min[f]) min[f] = dur
                if (!(f in max) || dur > max[f]) max[f] = dur
                if (d > 0) child[t, d - 1] += dur
            }
            END { for (f in calls) printf "%s,%.0f,%.0f,%.0f,%.0f,%.0f\n", f, calls[f], total[f], self[f], min[f], max[f] }' |
            sort
    }
    store_aggregates() { # DB RUN
        sql "$1" "SELECT s.function, calls, total_ns, self_ns, min_ns, max_ns FROM functions f
            JOIN symbols s ON s.run_id = f.run_id AND s.id = f.symbol_id WHERE f.run_id = $2
            ORDER BY s.function"
    }
    check_store() { # NAME DB RUN CSV
        expected=$(csv_rows "$4")
        got=$(sql "$2" "$(echo "$events_sql" | sed "s/RUN/$3/")")
        if [ "$got" = "$expected" ]; then
            ok "$1: pikoc_events equals the CSV rows ($(echo "$expected" | wc -l) events)"
        else
            not_ok "$1: pikoc_events differs from the CSV rows"
            echo "$expected" >"$work/expected-events"
            echo "$got" | diff "$work/expected-events" - | head -5
        fi
        check_equal "$1: written = CSV rows" "$(sql "$2" "SELECT written FROM runs WHERE id = $3")" \
            "$(echo "$expected" | wc -l)"
    }

    db="$work/runs.db"
    run PIKOC_MONITOR=function-memory PIKOC_RECORD="sqlite:$db;csv:$work/fib-both.csv" \
        "$(prog recursion)" 15
    check_equal "sqlite: the program ran" "$(cat "$work/stdout")" "fib(15) = 610"
    check_store "fib(15)" "$db" 1 "$work/fib-both.csv"
    check_equal "fib(15): functions agree with the CSV" "$(store_aggregates "$db" 1)" \
        "$(csv_aggregates "$work/fib-both.csv")"
    check_equal "fib(15): run row" \
        "$(sql "$db" "SELECT id, status, monitor, events, calls, dropped, unmatched, unfinished,
            end_ns > start_ns, duration_ns > 0, pid > 0 FROM runs")" \
        "1,complete,function-memory,3948,1974,0,0,0,1,1,1"
    check_equal "fib(15): outermost fib is the root's only child" \
        "$(sql "$db" "SELECT s.function, p.calls, p.depth FROM call_paths p JOIN symbols s
            ON s.run_id = p.run_id AND s.id = p.symbol_id WHERE p.run_id = 1 AND p.depth <= 1
            ORDER BY p.id")" "main,1,0
fib,1,1"

    run PIKOC_MONITOR=function-memory PIKOC_RING_EVENTS=64 \
        PIKOC_RECORD="sqlite:$db;csv:$work/threads-both.csv" "$(prog threads)" 8 5000
    check_store "8 threads" "$db" 2 "$work/threads-both.csv"
    check_equal "8 threads: functions agree with the CSV" "$(store_aggregates "$db" 2)" \
        "$(csv_aggregates "$work/threads-both.csv")"
    check_equal "8 threads: threads table" \
        "$(sql "$db" "SELECT count(*), sum(events), sum(calls) FROM threads WHERE run_id = 2")" \
        "$(tr -d '\r' <"$work/threads-both.csv" | awk -F, 'NR > 1 { e++; if ($2 == "call") c++; t[$9] = 1 }
            END { n = 0; for (x in t) n++; print n "," e "," c }')"

    # Filters keep events out of both recorders; the store's aggregates stay whole.
    run PIKOC_MONITOR=function PIKOC_MAX_DEPTH=1 \
        PIKOC_RECORD="sqlite:$db;csv:$work/fib-depth1.csv" "$(prog recursion)" 15
    check_store "fib(15), max depth 1" "$db" 3 "$work/fib-depth1.csv"
    check_equal "fib(15), max depth 1: every fib call still counted" \
        "$(sql "$db" "SELECT f.calls FROM functions f JOIN symbols s ON s.run_id = f.run_id
            AND s.id = f.symbol_id WHERE f.run_id = 3 AND s.function = 'fib'")" 1973
    check_equal "three runs in one file" "$(sql "$db" "SELECT group_concat(id, '-') FROM runs")" "1-2-3"

    # exec in process, into the same program (monitored again: a run of its own
    # whose parent is the replaced image's, which ends 'executed' with its
    # records); an exec that cannot run leaves the run going on.
    exec_runs="SELECT group_concat(id || ':' || status || ':' || events || ':' ||
        ifnull(parent_run, '-'), '/') FROM runs"
    run PIKOC_MONITOR=function PIKOC_RECORD="sqlite:$work/exec.db" "$(prog execs)" execv "$(prog execs)"
    check_equal "exec in process: the replaced image's run 'executed', the new image's its child" \
        "$? $(cat "$work/stdout") $(sql "$work/exec.db" "$exec_runs")" \
        "0 total 6 1:executed:20:-/2:complete:20:1"
    run PIKOC_MONITOR=function PIKOC_RECORD="sqlite:$work/exec-none.db" "$(prog execs)" execv /nowhere/program
    check_equal "exec in process that cannot run: one run, complete" \
        "$? $(sql "$work/exec-none.db" "$exec_runs")" "3 1:complete:32:-"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
