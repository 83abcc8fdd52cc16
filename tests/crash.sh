#!/bin/sh
# crash.sh — what pikoc run records of a program that does not end its run:
# a segfault, abort, _exit, SIGKILL from outside while it waits or while
# several threads allocate, ^C to its process group. Its runs are drained by
# a process of their own (src/drainer.c), so every allocation made before
# the end is in the database, with the run marked as docs/schema.md says.
set -u

builddir=$(cd "${top_builddir:-.}" && pwd)
srcdir=$(cd "${top_srcdir:-.}" && pwd)
pikoc="$builddir/pikoc"
crashes="$builddir/tests/alloc_crashes"
work=$(mktemp -d "${TMPDIR:-/tmp}/pikoc-crash.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
cd "$work" || exit 1

. "$srcdir/tests/checks.sh"
sql() { sqlite3 "$1" "$2"; }
site=$(grep -n 'keep = malloc(100)' "$srcdir/tests/programs/crashes.c" | head -1 | cut -d: -f1)
record="-q --monitor alloc --sample-interval 0"

# The run's end and its heap: status, signal, exit status, allocations,
# frees, frees of unknown blocks, live blocks and bytes.
ending() {
    sql "$1" "SELECT status, coalesce(signal, '-'), coalesce(exit_status, '-'), allocations, frees,
                     unknown_frees, leaked_blocks, leaked_bytes
              FROM runs JOIN alloc_runs ON run_id = id"
}

# Starts pikoc run (through the command in $through, if any) in the
# background, in a session of its own, and waits until the program has
# written its pid into the file pid (its ARGS name it): then $program is its
# pid, $launcher pikoc run's.
through=
start_until_ready() { # DB ARGS...
    db=$1
    shift
    rm -f pid
    PK_CRASH_RUN=$work/$db timeout 120 setsid $through "$pikoc" run $record --record "sqlite:$db" -- \
        "$crashes" "$@" >out 2>err &
    launcher=$!
    wait_for_file pid
    program=$(cat pid)
}

# How process PID looks (ps): S, T (stopped), Z (a zombie), or gone.
process_state() { # PID
    state=$(ps -o stat= -p "$1" | cut -c1) # its state, without ps's flags (s: a session leader)
    echo "${state:-gone}"
}

# Waits (up to ten seconds) until process PID looks like STATE.
wait_for_state() { # PID STATE
    tries=0
    until [ "$(process_state "$1")" = "$2" ] || [ $tries -ge 100 ]; do
        sleep 0.1
        tries=$((tries + 1))
    done
}

# The drainer process of the program started last (start_until_ready). It
# is in a session of its own, forked from the program: the environment the
# program started with, and so the run's mark, is its own. The mark names
# the database by its path in this test's directory, so that a drainer of
# another crash.sh running at the same time is never taken for it.
drainer_of_program() {
    for pid in $(pgrep -x pikoc-drainer); do
        tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "PK_CRASH_RUN=$work/$db" && echo "$pid"
    done
}

# Then sends SIGNAL to the program alone or, with "group", to the session's
# process group (pikoc run and the program, not the drainer, whose session is
# its own: what ^C does);
# pikoc run's status in $status.
kill_when_ready() { # SIGNAL program|group DB ARGS...
    sig=$1 whom=$2
    shift 2
    start_until_ready "$@"
    target=$program
    [ "$whom" = group ] && target=-$(ps -o pgid= -p "$program" | tr -d ' ')
    kill "-$sig" -- "$target"
    wait $launcher
    status=$?
}

# The leaks and top of a run holding the 1000 blocks of 100 bytes at one site.
check_blocks() { # name db
    pk leaks --db "$2" --format csv
    check_equal "$1: leaks, to the byte" "$(rows | cut -d, -f1-4)" "main,$site,1000,100000"
    pk top --db "$2" --by allocations --format csv
    check_equal "$1: top --by allocations" "$(rows | cut -d, -f1-4)" "main,$site,1000,100000"
}

# Under the sanitizers their malloc comes first in LD_PRELOAD (tests/alloc.sh):
# the calls of an instrumented program show the same (tests/cli.sh).
if [ "${PK_SANITIZERS:-no}" = yes ]; then
    echo "# sanitizers: the alloc monitor cannot run"
    exit 0
fi

# --- the program ends itself ---------------------------------------------------------------
pk run $record --record sqlite:segv.db -- "$crashes" 1000 segv
check_equal "segfault: 128+11, every allocation, the run crashed by SIGSEGV" \
    "$status $(ending segv.db)" "139 crashed|11|-|1000|0|0|1000|100000"
check_blocks segfault segv.db

pk run $record --record sqlite:abort.db -- "$crashes" 1000 abort
check_equal "abort: 128+6, every allocation, the run crashed by SIGABRT" \
    "$status $(ending abort.db)" "134 crashed|6|-|1000|0|0|1000|100000"
check_blocks abort abort.db

# _exit ends a run of allocations in the program (src/interpose.c): complete.
pk run $record --record sqlite:quit.db -- "$crashes" 1000 _exit 5
check_equal "_exit: its status, every allocation, the run complete" \
    "$status $(ending quit.db)" "5 complete|-|5|1000|0|0|1000|100000"
check_blocks _exit quit.db

pk run $record --record sqlite:exit.db -- "$crashes" 1000 exit 4
check_equal "exit: its status, the run complete" "$status $(ending exit.db)" \
    "4 complete|-|4|1000|0|0|1000|100000"

# A program that closes the descriptors it did not open closes pikoc's pipes:
# its drainer records on until the process is gone, and the run still ends.
pk run $record --record sqlite:close.db -- "$crashes" 1000 close
check_equal "closed descriptors: every allocation, the run complete" \
    "$status $(ending close.db)" "0 complete|-|0|2000|0|0|2000|200000"

# A library loaded after the drainer was forked: its call sites resolve from
# the program's maps, read again while the program lives.
pk run $record --record sqlite:module.db -- "$crashes" 1000 module "$builddir/tests/.libs/alloc_module.so"
pk leaks --db module.db --format csv
check_equal "dlopen after the start: the library's call site by name and line" \
    "$status $(rows | grep '^module_allocate,' | cut -d, -f1-4)" \
    "0 module_allocate,$(grep -n 'return malloc(100)' "$srcdir/tests/programs/module.c" | cut -d: -f1),1000,100000"

# Libraries closed with dlclose: their call sites are named before they go,
# and a library loaded where one was is named as itself, though its call
# site lies at the same address, on the same line (the same code, another
# file). One, two, one again: each load's call site under its own file.
first="$builddir/tests/.libs/unload_one.so" second="$builddir/tests/.libs/unload_two.so"
pk run $record --record sqlite:unload.db -- "$crashes" 100 unload "$first" "$second" "$first"
check_equal "dlclose: the second library loaded where the first was, its call site there too" \
    "$status $(sort -u out | wc -l)" "0 1"
pk leaks --db unload.db --format csv
first_line=$(grep -n 'return malloc(100)' "$srcdir/tests/programs/unload_one.c" | cut -d: -f1)
second_line=$(grep -n 'return malloc(100)' "$srcdir/tests/programs/unload_two.c" | cut -d: -f1)
check_equal "dlclose: each library's call site by its own file" \
    "$status $(rows | grep '^module_allocate,' | sed 's|,[^,]*/|,|' | sort -t, -k5)" \
    "0 module_allocate,$first_line,200,20000,unload_one.c
module_allocate,$second_line,100,10000,unload_two.c"
# The same with stacks (--stack 4): a stack through a closed library is
# named again (the drain gives it a new copy of its frames).
pk run $record --stack 4 --record sqlite:unload-stacks.db -- "$crashes" 100 unload "$first" "$second" "$first"
check_equal "dlclose, --stack 4: each library's frame by its own file" \
    "$status $(sql unload-stacks.db "SELECT replace(s.file, rtrim(s.file, replace(s.file, '/', '')), ''),
                                           f.line, sum(st.allocations)
                                    FROM alloc_stacks st
                                    JOIN alloc_frames f ON f.run_id = st.run_id AND f.stack_id = st.id
                                                       AND f.depth = 0
                                    JOIN symbols s ON s.run_id = f.run_id AND s.id = f.symbol_id
                                    WHERE s.function = 'module_allocate' GROUP BY 1, 2 ORDER BY 1")" \
    "0 unload_one.c|$first_line|200
unload_two.c|$second_line|100"
# And an instrumented library's functions, under the function monitor (no
# allocations recorded): each load's under its own file. One, two, one again.
plugins="$builddir/tests/.libs/plugin_one.so $builddir/tests/.libs/plugin_two.so $builddir/tests/.libs/plugin_one.so"
# shellcheck disable=SC2086 # three paths
pk run -q --monitor function --record csv:plugins.csv -- "$builddir/tests/prog_plugins" $plugins
check_equal "dlclose, function monitor: each library's functions by name, under its own file" \
    "$status $(sort -u out | wc -l) $(calls_by_file plugins.csv)" \
    "0 1 plugin_run plugin_one.c 1|plugin_square plugin_one.c 3|plugin_run plugin_two.c 1|plugin_square plugin_two.c 3|plugin_run plugin_one.c 1|plugin_square plugin_one.c 3|"
# plugin_farewell.so's code runs only as it closes (its destructor calls a
# function and allocates): the drainer meets it first after dlclose
# unmapped it, and names it all the same.
# closed_farewell NAME WHAT CALLS COUNT,BYTES LIBRARY...: prog_plugins loads,
# runs and closes each LIBRARY under the function monitor, then the alloc
# monitor; the calls by file are CALLS, and pikoc top counts COUNT,BYTES at
# the destructor's malloc.
closed_farewell() {
    name=$1 what=$2 calls=$3 top=$4
    shift 4
    pk run -q --monitor function --record "csv:$name.csv" -- "$builddir/tests/prog_plugins" "$@"
    check_equal "dlclose, function monitor: $what" "$status $(calls_by_file "$name.csv")" "0 $calls"
    pk run $record --record "sqlite:$name.db" -- "$builddir/tests/prog_plugins" "$@"
    pk top --db "$name.db" --by allocations --limit 0 --format csv
    check_equal "dlclose, alloc monitor: $what, its allocation's call site by name and line" \
        "$status $(rows | grep '^farewell,' | cut -d, -f1-4)" \
        "0 farewell,$(grep -n 'malloc(40)' "$srcdir/tests/programs/plugin_farewell.c" | cut -d: -f1),$top"
}
libs="$builddir/tests/.libs"
farewell="farewell plugin_farewell.c 1|farewell_twice plugin_farewell.c 1|"
# Loaded twice.
closed_farewell farewell "a library's destructor by name, nothing of it met before" \
    "$farewell$farewell" 2,80 "$libs/plugin_farewell.so" "$libs/plugin_farewell.so"
# As the dependency of another library, unloaded by that one's close, which
# the drainer meets with the maps it read as the run began (before either
# was loaded); then another library, maybe where they were.
closed_farewell host "a dependency's destructor by name, inside the close of the library it came with" \
    "${farewell}plugin_run plugin_one.c 1|plugin_square plugin_one.c 3|" 1,40 \
    "$libs/plugin_host.so" "$libs/plugin_one.so"

# An exec (not followed: the new image runs unmonitored) ends the old
# image's run at once: its drainer finishes it as 'executed' and is gone
# while the process lives on.
record="$record --no-follow"
start_until_ready exec.db 1000 exec pid
record=${record% --no-follow}
tries=0
while drainer_of_program >/dev/null && [ $tries -lt 100 ]; do
    sleep 0.1
    tries=$((tries + 1))
done
check_equal "exec: the old image's drainer gone, its run executed, every allocation" \
    "$(drainer_of_program | wc -l) $(ending exec.db)" "0 executed|-|-|1000|0|0|1000|100000"
kill "$program"
wait $launcher

# --- killed from outside ------------------------------------------------------------------
# SIGKILL as soon as the allocations are made: nothing waits for a commit.
kill_when_ready KILL program kill.db 1000 block pid
check_equal "SIGKILL while blocked: 128+9, every allocation, the run killed by SIGKILL" \
    "$status $(ending kill.db)" "137 killed|9|-|1000|0|0|1000|100000"
check_blocks SIGKILL kill.db

# ^C: the drainer ignores it, pikoc run waits, the program dies of it.
kill_when_ready INT group int.db 1000 block pid
check_equal "^C: 128+2, every allocation, the run killed by SIGINT" \
    "$status $(ending int.db)" "130 killed|2|-|1000|0|0|1000|100000"

# ^C while pikoc run waits for a drainer (stopped here: a slow one) after
# the program was killed: the first says the run is still being written,
# the second stops the drainer; the run keeps its row, marked killed.
start_until_ready stop.db 1000 block pid
waiting=$(ps -o ppid= -p "$program" | tr -d ' ')
drainer=$(drainer_of_program)
kill -STOP $drainer
kill -KILL "$program"
wait_for_state "$program" gone
kill -INT "$waiting"
sleep 0.5
first=$(process_state "$drainer" | cut -c1) # still stopped (T): pikoc run waits on
kill -INT "$waiting"
wait_for_state "$waiting" gone
[ "$(process_state "$waiting")" = gone ] || kill -CONT $drainer
wait $launcher
status=$?
check_equal "^C twice while the drainer writes: said, then stopped; the run killed by SIGKILL" \
    "$status $first $(process_state "$waiting") $(sql stop.db "SELECT status, signal FROM runs") $(cat err)" \
    "137 T gone killed|9 pikoc run: 1 run still being written (^C again to stop: it keeps what was committed)
pikoc run: stopped writing 1 run"

# Four threads allocating and freeing without pause when SIGKILL comes:
# every record built is an allocation or a free, counted once by its thread
# and once by its site, every free names a block allocated before, and the
# threads' site holds at most the block each thread had when it was killed.
kill_when_ready KILL program churn.db 1000 churn 4 pid
check_equal "SIGKILL while allocating: 128+9, the run killed" \
    "$status $(sql churn.db "SELECT status, signal, unknown_frees FROM runs JOIN alloc_runs ON run_id = id")" \
    "137 killed|9|0"
check_equal "SIGKILL while allocating: thousands of frees of blocks allocated before" \
    "$(sql churn.db "SELECT frees >= 4000, allocations - frees = leaked_blocks,
                            leaked_blocks BETWEEN 1000 AND 1000 + 4 + 16 FROM alloc_runs")" "1|1|1"
check_equal "SIGKILL while allocating: the run's, the threads' and the sites' counts agree" \
    "$(sql churn.db "SELECT events = allocations + frees,
                            events = (SELECT sum(events) FROM threads),
                            allocations = (SELECT sum(allocations) FROM alloc_sites),
                            frees = (SELECT sum(frees) FROM alloc_sites),
                            leaked_bytes = (SELECT sum(leaked_bytes) FROM alloc_sites)
                     FROM runs JOIN alloc_runs ON run_id = id")" "1|1|1|1|1"
check_equal "SIGKILL while allocating: the threads keep their names" \
    "$(sql churn.db "SELECT group_concat(name, ' ') FROM (SELECT name FROM threads ORDER BY name)")" \
    "alloc_crashes churn churn churn churn"
check_equal "SIGKILL while allocating: the threads' site holds at most one block per thread" \
    "$(sql churn.db "SELECT leaked_blocks BETWEEN 0 AND 4, allocations > 4000 FROM alloc_sites
                     WHERE caller_line = $(grep -n 'void \*p = malloc(64' "$srcdir/tests/programs/crashes.c" | cut -d: -f1)")" "1|1"

# SIGKILL while the drainer is stopped: the program's last 1000 allocations
# are still in its rings when it dies, and the drainer, continued, drains
# them from the rings of a process that is gone.
start_until_ready late.db 1000 later pid done
drainer=$(drainer_of_program)
kill -STOP $drainer
rm -f done
kill -USR1 "$program"
wait_for_file done
kill -KILL "$program"
kill -CONT $drainer
wait $launcher
status=$?
check_equal "SIGKILL with the drainer stopped: its rings drained after the program's end" \
    "$status $(ending late.db)" "137 killed|9|-|2000|0|0|2000|200000"

# The drainer killed on its own: the program is not left waiting for room in
# its rings; it runs to its end, and its run, never ended, is incomplete.
# STATE is how the drainer's process looks once killed (process_state).
kill_drainer_then_flood() { # STATE DB
    start_until_ready "$2" 1000 flood pid
    drainer=$(drainer_of_program)
    kill -KILL $drainer
    wait_for_state "$drainer" "$1"
    state=$(process_state "$drainer")
    kill -USR1 "$program"
    wait $launcher
    status=$?
    check_equal "drainer killed, $1: the program ends, its run incomplete" \
        "$status $(echo "$drainer" | wc -w) $state $(sql "$2" "SELECT status, exit_status FROM runs")" \
        "0 1 $1 incomplete|0"
}
kill_drainer_then_flood gone lost.db
# Under pikoc run as a child subreaper (a container's first process), the
# killed drainer is a zombie nobody waits for, which kill(pid, 0) still finds.
through="$builddir/tests/subreaper"
kill_drainer_then_flood Z zombie.db
through=

# More threads alive at once than the shared region's rings (a quarter of
# RLIMIT_AS: 36 rings of 4 MiB here): those without a ring lose their
# events, counted as dropped and said; the others are all recorded.
(
    ulimit -v 598016
    pk run $record --record sqlite:threads.db -- "$crashes" 1000 threads 40
    echo "$status" >threads.status
)
check_equal "40 threads, 36 rings: 5 events dropped, counted and said" \
    "$(cat threads.status) $(sql threads.db "SELECT status, dropped FROM runs") $(cat err)" \
    "0 complete|5 pikoc: 5 events lost: more threads alive at once than the 36 rings of the shared region"
check_equal "40 threads, 36 rings: the allocations of the 35 threads with a ring" \
    "$(sql threads.db "SELECT allocations FROM alloc_sites
                       WHERE caller_line = $(grep -n 'block = malloc(100)' "$srcdir/tests/programs/crashes.c" | cut -d: -f1)")" "35"

# A fork handler of a library loaded before pikoc runs in the child before
# pikoc's, while the child still maps its parent's rings: its allocations are
# neither the parent's nor the child's run's (it starts after pikoc's handler).
pk run $record --record sqlite:forked.db -- "$builddir/tests/alloc_forkhandler" 1000 fork
check_equal "a library's fork handler: the parent's and the child's runs, their allocations alone" \
    "$status $(sql forked.db "SELECT group_concat(allocations, ' ')
                              FROM (SELECT allocations FROM alloc_runs ORDER BY run_id)")" "0 1000 1000"

# The drainer's second fork fails (tests/programs/nofork.c, as at
# RLIMIT_NPROC): the program runs unmonitored and says why.
LD_PRELOAD="$builddir/tests/.libs/nofork.so" pk run $record --record sqlite:nofork.db -- "$crashes" 10 exit 0
check_equal "the drainer cannot be forked: the program runs, the reason said" \
    "$status $(cat err)" "0 pikoc: cannot start the drainer process: Resource temporarily unavailable; the program runs without monitoring
pikoc run: nothing recorded: nofork.db: no such file"
# The same with a file recorder whose file is there from before: it was
# not written, and is not named as where the records went.
printf 'from before\n' >before.csv
LD_PRELOAD="$builddir/tests/.libs/nofork.so" pk run $record --record csv:before.csv -- "$crashes" 10 exit 0
check_equal "the drainer cannot be forked: a file recorder's file from before is left, not named" \
    "$status $(cat before.csv) $(grep '^pikoc run:' err)" \
    "0 from before pikoc run: nothing recorded: before.csv: not written in this run"

# The drainer cannot open its recorder: the program runs unmonitored and
# says why (the program is given the path from where pikoc run started).
# pikoc run's own check passes a file that says it is an older pikoc
# database; its upgrade, in the drainer, fails.
python3 -c "import sqlite3; c = sqlite3.connect('old.db'); c.execute('PRAGMA application_id = 1347112771'); c.execute('PRAGMA user_version = 5'); c.execute('CREATE TABLE runs (x)'); c.commit()"
pk run $record --record sqlite:old.db -- "$crashes" 10 exit 0
check_equal "the drainer's recorder cannot open: the program runs, the reason said" \
    "$status $(cat err)" "0 pikoc: PIKOC_RECORD: recorder spec 'sqlite:$(pwd -P)/old.db': $(pwd -P)/old.db: table runs has no column named command_line; the program runs without monitoring
pikoc run: nothing recorded: old.db: no such column: id"

# A daemon the program leaves running (its streams at /dev/null) keeps no
# reader of the program's output waiting: the daemon's drainer does not
# hold the program's standard output.
daemon=$(timeout 120 "$pikoc" run $record --record sqlite:daemon.db -- "$crashes" 10 daemon 2>err)
check_equal "a daemon left running: the program's output read to its end while it sleeps" \
    "$(process_state "$daemon")" "S"
kill "$daemon"

echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]
