#!/bin/sh
# zmq.sh — the zmq recorder and `pikoc listen` end to end: several sender
# processes (threads, forks, PIKOC_RECORD, pikoc run, the C API) into one
# collector, every record exactly once; the collector's tables against the
# sqlite recorder's for the same run; a collector started late, stalled, its
# database held by another writer, restarted mid-run, a sender killed;
# zmq+pub: publishers and their subscribers (two at once, a stalled one, a
# late one: every drop counted; a killed publisher); the linger; CURVE; bad
# messages and bad usage with their exact lines; and a Python client written
# from docs/wire-format.md alone, its counts against the collector's.
set -u

builddir=$(cd "${top_builddir:-.}" && pwd)
srcdir=$(cd "${top_srcdir:-.}" && pwd)
pikoc="$builddir/pikoc"
work=$(mktemp -d "${TMPDIR:-/tmp}/pikoc-zmq.XXXXXX")
cd "$work" || exit 1
collectors=""
cleanup() {
    for pid in $collectors; do kill "$pid" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

. "$srcdir/tests/checks.sh"
prog() { echo "$builddir/tests/prog_$1"; }
# The senders built without libpikoc (pikoc run preloads it).
cli_prog() { echo "$builddir/tests/cli_$1"; }
sql() { "$pikoc" sql --db "$1" --format csv "$2" | tr -d '\r' | tail -n +2; }
# A python3 with the zmq module (Debian's python3-zmq is in /usr/bin's).
python=python3
python3 -c 'import zmq' 2>/dev/null || python=/usr/bin/python3
$python -c 'import zmq' 2>/dev/null || not_ok "python3-zmq is not installed (scripts/deps.sh installs it)"

# collect NAME ARGS...: starts `pikoc listen ARGS` in the background (output in
# NAME.out, NAME.err, pid in $collector) and waits until it listens or subscribes.
collect() {
    name=$1
    shift
    timeout 120 "$pikoc" listen "$@" >"$name.out" 2>"$name.err" &
    collector=$!
    collectors="$collectors $collector"
    i=0
    while ! grep -q '^pikoc listen: \(on\|subscribed\) ' "$name.out" 2>/dev/null && [ $i -lt 400 ]; do
        sleep 0.05
        i=$((i + 1))
    done
}
# shows_in FILE PATTERN: waits (20 s at most) until a collector's FILE has a line of PATTERN.
shows_in() {
    i=0
    while ! grep -q "$2" "$1" && [ $i -lt 400 ]; do
        sleep 0.05
        i=$((i + 1))
    done
}
# started_in FILE: until it says a run started (at the sender's hello, before any record).
started_in() { shows_in "$1" ': started, '; }
# received_in FILE: until it shows records of a run received (with --interval 100ms).
received_in() { shows_in "$1" ': [1-9][0-9]* records, '; }
# stop PID [SIGNAL]: signals (TERM by default) the collector `collect` started under
# timeout, not timeout itself, which follows the signal with SIGCONT: under the
# sanitizers that can stall LeakSanitizer in a collector that exits at once.
stop() {
    kill -"${2:-TERM}" "$(pgrep -P "$1")"
}
# finished PID: waits for a collector (or sender) and sets $status.
finished() {
    wait "$1"
    status=$?
}
# Every written record of a run stored once: "rows distinct-indexes written".
once() { # db run
    sql "$1" "SELECT (SELECT count(*) FROM pikoc_events WHERE run_id = $2),
        (SELECT count(DISTINCT \"index\") FROM pikoc_events WHERE run_id = $2),
        (SELECT written FROM runs WHERE id = $2)" | tr ',' ' '
}
# A table's rows of one run, the run id column left out.
rows_of() { # db table run
    sql "$1" "SELECT * FROM $2 WHERE run_id = $3 ORDER BY 2, 3" | cut -d, -f2-
}
# How many of the tables hold the same rows of run 1 in both databases.
same_tables() { # db db table...
    db_a=$1 db_b=$2
    shift 2
    same=0
    for table in "$@"; do
        [ "$(rows_of "$db_a" "$table" 1 | md5sum)" = "$(rows_of "$db_b" "$table" 1 | md5sum)" ] &&
            same=$((same + 1))
    done
    echo $same
}

# --- several senders into one collector: threads, forks, PIKOC_RECORD, pikoc run ----
many_senders() {
    rm -f many.db direct.db
    ep="ipc://$work/many"
    collect many "$ep" --into many.db --runs 5 --interval 100ms
    # the C API: a parent with 3 threads forks 2 children, each a sender with 3 threads
    timeout 120 "$(prog zmq_senders)" "zmq:$ep" 2 3 1000 >senders.out 2>senders.err &
    senders=$!
    # PIKOC_RECORD into the collector and, in the same process, into a database of its own
    timeout 120 env PIKOC_MONITOR=function-memory PIKOC_MAX_DEPTH=1 \
        PIKOC_RECORD="zmq:$ep;sqlite:$work/direct.db" "$(prog threads)" 4 1000 >threads.out 2>&1 &
    threads=$!
    timeout 120 "$pikoc" run --record "zmq:$ep" -- "$(cli_prog nested)" >run.out 2>run.err
    check_equal "pikoc run --record zmq: the program ran" "$? $(cat run.out) $(grep records run.err)" \
        "0 total 6 pikoc run: records -> zmq:$ep"
    finished $senders
}
many_senders
# GCC 12's libasan has no fork interceptor: a child forked while another thread
# (the drain, libzmq's I/O thread) is inside the sanitizer's allocator can wait
# forever on its lock at its first malloc. Seen once in about twenty sanitizer
# runs, not in the plain build (glibc's fork and jemalloc take their locks):
# under the sanitizers, a sender that timed out gets the scenario run once more.
if [ "${PK_SANITIZERS:-no}" = yes ] && [ "$status" = 124 ]; then
    echo "# zmq_senders timed out under the sanitizers (a forked child): once more"
    finished $threads
    kill "$collector" 2>/dev/null
    finished $collector
    many_senders
fi
check_equal "C API senders: every process ended well" "$status $(cat senders.out)" "0 3 processes, 0 failed"
finished $threads
finished $collector
check_equal "collector: stops after --runs 5" "$status $(tail -1 many.out)" \
    "0 pikoc listen: 5 runs ended, 64060 records, 0 messages rejected"
check_equal "every run complete, with its exact counts" \
    "$(sql many.db "SELECT status, events, calls, written, dropped FROM runs ORDER BY events, written" | tr '\n' ' ')" \
    "complete,18,9,18,0 complete,12008,6004,12008,0 complete,12008,6004,12008,0 complete,16010,8005,8010,0 complete,24016,12008,24016,0 "
runs_ok=0
for run in 1 2 3 4 5; do
    # A run that is not there (a sender that never finished) counts as not once.
    read -r rows distinct written <<EOF
$(once many.db $run)
EOF
    [ -n "$written" ] && [ "$rows" = "$written" ] && [ "$distinct" = "$written" ] &&
        runs_ok=$((runs_ok + 1))
done
check_equal "every stored record exactly once (rows = distinct indexes = written)" "$runs_ok" 5
check_equal "the forks are senders of their own (pids)" \
    "$(sql many.db "SELECT count(DISTINCT pid) FROM runs WHERE command_line LIKE '%zmq_senders%'")" 3
threads_run=$(sql many.db "SELECT id FROM runs WHERE events = 16010")
for table in functions call_paths threads symbols pikoc_events; do
    if [ "$(rows_of many.db $table "$threads_run" | md5sum)" = "$(rows_of direct.db $table 1 | md5sum)" ] &&
        [ -n "$(rows_of direct.db $table 1)" ]; then
        ok "collector's $table = the sqlite recorder's (same run, max-depth filter)"
    else
        not_ok "collector's $table differs from the sqlite recorder's"
    fi
done
check_equal "run columns as the sqlite recorder's" \
    "$(sql many.db "SELECT status, events, calls, written, dropped, unmatched, unfinished, monitor, flags, duration_ns FROM runs WHERE id = $threads_run")" \
    "$(sql direct.db "SELECT status, events, calls, written, dropped, unmatched, unfinished, monitor, flags, duration_ns FROM runs WHERE id = 1")"

# --- allocation records and call sites through the collector -----------------------------
# (under the sanitizers their malloc comes first: tests/alloc.sh says so)
if [ "${PK_SANITIZERS:-no}" != yes ]; then
    ep="ipc://$work/alloc"
    collect alloc "$ep" --into alloc.db --runs 1
    timeout 120 "$pikoc" run --monitor function-memory,alloc --record "zmq:$ep" \
        --record "sqlite:$work/alloc-direct.db" -- "$builddir/tests/alloc_allocs_traced" >/dev/null 2>&1
    finished $collector
    check_equal "alloc monitor: the collector's 8 tables = the sqlite recorder's" \
        "$(same_tables alloc.db alloc-direct.db functions call_paths threads symbols alloc_runs alloc_sites alloc_sizes memory_samples) $(rows_of alloc.db alloc_sites 1 | wc -l)" "8 16"
fi

# --- on a terminal the view refreshes in place ----------------------------------------------
if command -v script >/dev/null; then
    ep="ipc://$work/tty"
    (sleep 0.3 && "$(prog zmq_paced)" "zmq:$ep" 200000 10000 >/dev/null 2>&1) &
    timeout 60 script -qec "$pikoc listen $ep --into none --runs 1 --interval 200ms" /dev/null >tty.out
    check_equal "terminal view: drawn over itself (cursor up, lines cleared)" \
        "$(grep -c "$(printf '\033\\[2A\033\\[2K')pikoc listen $ep: 1 senders, [0-9]* records, 0 rejected" tty.out | sed 's/^[1-9][0-9]*$/some/')" "some"
    wait
else
    ok "terminal view: # SKIP no script(1)"
fi

# --- a collector started after its sender: the sender waits -------------------------
ep="ipc://$work/late"
timeout 120 "$(prog zmq_paced)" "zmq:$ep" 20000 0 >late-sender.out 2>&1 &
sender=$!
sleep 0.5
collect late "$ep" --into late.db --runs 1
finished $sender
check_equal "late collector: the sender ended well" "$status $(cat late-sender.out)" "0 "
finished $collector
check_equal "late collector: every record, once" \
    "$(sql late.db "SELECT status, events, written FROM runs") $(once late.db 1)" "complete,20000,20000 20000 20000 20000"

# --- a stalled collector, then a database another writer holds (a slow disk): the ----------
# sender waits for room in its window each time, and nothing is lost. The collector is
# stopped before the sender starts: stopped a moment after, a sender slowed by a busy
# machine could have been further on than the test assumes.
ep="ipc://$work/stalled"
collect stalled "$ep" --into stalled.db --runs 1
stop $collector STOP
timeout 120 "$(prog zmq_paced)" "zmq:$ep" 400000 2000 >stalled-sender.out 2>&1 &
sender=$!
sleep 2
# Unstalled, it would have sent everything in well under these 2 s.
waited=$(kill -0 $sender 2>/dev/null && echo waiting)
stop $collector CONT
# The collector commits every 250 ms; this takes the write lock between two commits.
printf '.timeout 10000\nBEGIN IMMEDIATE;\nCREATE TABLE held (x);\n.shell sleep 3\nCOMMIT;\n' |
    sqlite3 stalled.db >held.out 2>&1
finished $sender
check_equal "stalled collector, held database: the sender ended well" \
    "$waited $status $(cat stalled-sender.out) $(cat held.out)" "waiting 0  "
finished $collector
check_equal "stalled collector, held database: every record, once" \
    "$(sql stalled.db "SELECT status, events, written FROM runs") $(once stalled.db 1)" \
    "complete,400000,400000 400000 400000 400000"

# --- a collector stopped (SIGTERM) and started again mid-run: one run, exact ------------
# restart NAME SIGNAL SENDER...: runs SENDER, stops its collector mid-run with SIGNAL
# (TERM: it stops cleanly; KILL: it keeps what it acknowledged) and starts another
restart() { # (collect sets $name)
    part=$1 signal=$2
    shift 2
    ep="ipc://$work/$part"
    collect "$part-first" "$ep" --into "$part.db" --interval 100ms
    first=$collector
    timeout 120 "$@" >"$part-sender.out" 2>&1 &
    sender=$!
    received_in "$part-first.out"
    sleep 0.3 # past a commit (every 250 ms)
    stop $first $signal
    finished $first
    if [ $signal = TERM ]; then
        left="0 1 incomplete,1"
    else
        left="137 0 running,1"
    fi
    check_equal "$part: SIG$signal stops the collector, the run left for the next" \
        "$status $(grep -c 'incomplete, .*no goodbye' "$part-first.out") $(sql "$part.db" "SELECT status, count(*) > 0 FROM runs, sender_messages")" \
        "$left"
    collect "$part-second" "$ep" --into "$part.db" --runs 1
    finished $sender
    sender_status=$status
    finished $collector
    check_equal "$part: the second collector took the run up again" \
        "$sender_status $(grep -c 'started, .* (resumed: [1-9][0-9]* records from an earlier collector)' "$part-second.out")" "0 1"
}
restart restart TERM "$(prog zmq_paced)" "zmq:ipc://$work/restart" 60000 20000
timeout 60 "$(prog zmq_paced)" "sqlite:$work/restart-direct.db" 60000 0 >/dev/null 2>&1
check_equal "restart: one run, complete, every record once, totals = the goodbye's" \
    "$(sql restart.db "SELECT count(*), status, events, calls, written, (SELECT count(*) FROM sender_messages) FROM runs") $(once restart.db 1)" \
    "1,complete,60000,30000,60000,0 60000 60000 60000"
check_equal "restart: pikoc top as an uninterrupted run's, 7500 calls each" \
    "$("$pikoc" top --db restart.db | awk 'NR > 2 {print $1, $2}' | tr '\n' ' ')" \
    "alpha 7500 beta 7500 delta 7500 gamma 7500 "
check_equal "restart: its 5 tables = the sqlite recorder's for the same records" \
    "$(same_tables restart.db restart-direct.db functions call_paths threads symbols pikoc_events)" 5
# killed: what it had acknowledged was committed, the rest comes again
restart killed-collector KILL "$(prog zmq_paced)" "zmq:ipc://$work/killed-collector" 60000 20000
check_equal "killed collector: one run, complete, every record once, its tables exact" \
    "$(sql killed-collector.db "SELECT count(*), status, events, calls, written FROM runs") $(once killed-collector.db 1) $(same_tables killed-collector.db restart-direct.db functions call_paths threads symbols pikoc_events)" \
    "1,complete,60000,30000,60000 60000 60000 60000 5"
# Killed as the run starts, before its first commit of the sender's messages (the run's
# row is committed at once): the next collector takes that run up, not a second one.
ep="ipc://$work/early-kill"
collect early-kill-first "$ep" --into early-kill.db
first=$collector
timeout 120 "$(prog zmq_paced)" "zmq:$ep" 60000 20000 >early-kill-sender.out 2>&1 &
sender=$!
started_in early-kill-first.out
stop $first KILL
finished $first
collect early-kill-second "$ep" --into early-kill.db --runs 1
finished $sender
finished $collector
check_equal "collector killed as the run started: the next one takes the same run up, every record once" \
    "$(sql early-kill.db "SELECT count(*), status, events, written FROM runs") $(once early-kill.db 1)" \
    "1,complete,60000,60000 60000 60000 60000"
if [ "${PK_SANITIZERS:-no}" != yes ]; then
    # the sqlite recorder in the same process: the same records (zmq's own allocations too)
    restart alloc-restart TERM "$pikoc" run --monitor alloc --record "zmq:ipc://$work/alloc-restart" \
        --record "sqlite:$work/alloc-restart-direct.db" -- "$builddir/tests/alloc_allocs" drip 200 10
    check_equal "alloc restart: one run, complete, its allocations = the sqlite recorder's" \
        "$(sql alloc-restart.db "SELECT count(*), status, a.allocations, a.frees, a.leaked_blocks, a.leaked_bytes, a.peak_bytes FROM runs r JOIN alloc_runs a ON a.run_id = r.id")" \
        "$(sql alloc-restart-direct.db "SELECT count(*), status, a.allocations, a.frees, a.leaked_blocks, a.leaked_bytes, a.peak_bytes FROM runs r JOIN alloc_runs a ON a.run_id = r.id")"
    check_equal "alloc restart: pikoc leaks: drip's 200 blocks of 48 bytes, as the sqlite recorder's" \
        "$("$pikoc" leaks --db alloc-restart.db | awk '$1 == "drip" {print $1, $3, $4, $5}') $("$pikoc" leaks --db alloc-restart.db | md5sum)" \
        "drip 200 9.4 KiB $("$pikoc" leaks --db alloc-restart-direct.db | md5sum)"
    allocs_line() { grep -n "$1" "$srcdir/tests/programs/allocs.c" | cut -d: -f1; }
    check_equal "alloc restart: drip's two sites exact (line, allocations, bytes, frees, freed, leaked)" \
        "$(sql alloc-restart.db "SELECT a.caller_line, a.allocations, a.bytes, a.frees, a.freed_bytes, a.leaked_blocks, a.leaked_bytes FROM alloc_sites a JOIN symbols s ON s.run_id = a.run_id AND s.id = a.caller_id WHERE s.function = 'drip' ORDER BY a.caller_line" | tr '\n' ' ')" \
        "$(allocs_line 'if (!malloc(48))'),200,9600,0,0,200,9600 $(allocs_line 'previous = malloc(16)'),200,3200,200,3200,0,0 "
    check_equal "alloc restart: its 5 tables = the sqlite recorder's" \
        "$(same_tables alloc-restart.db alloc-restart-direct.db functions call_paths symbols alloc_sites alloc_sizes)" 5
fi

# arrived_in FILE: the records run 1 received, by the collector's line ending it without a goodbye.
arrived_in() {
    sed -n 's/^run 1 (pid [0-9]* on test): incomplete, \([0-9]*\) records received (\1 stored in detail), no goodbye$/\1/p' "$1"
}

# --- a sender killed mid-run: its run ends incomplete with what arrived ----------------
ep="ipc://$work/killed"
collect killed "$ep" --into killed.db --runs 1 --interval 100ms
"$(prog zmq_paced)" "zmq:$ep" 10000000 10000 >/dev/null 2>&1 &
sender=$!
# alpha .. delta have the same self time each: the first three found lead.
# The sender is killed once such a line is out (at most 20 s on), not after a
# fixed time a busy machine may not have given it.
view_line='^run 1 \(pid [0-9]+ on test\): [0-9]+ records, [0-9]+/s, rss 1\.[0-9] MiB, top: alpha 25%, beta 25%, gamma 25%$'
i=0
while ! grep -Eq "$view_line" killed.out && [ $i -lt 200 ]; do
    sleep 0.1
    i=$((i + 1))
done
kill -KILL $sender
finished $collector
check_equal "plain view lines: run, records, rate, rss, top functions" \
    "$(grep -E "$view_line" killed.out | wc -l | sed 's/^[1-9][0-9]*$/some/')" "some"
arrived=$(arrived_in killed.out)
check_equal "killed sender: the collector saw it vanish" "$status $( [ -n "$arrived" ] && echo seen)" "0 seen"
check_equal "killed sender: incomplete with what arrived" \
    "$(sql killed.db "SELECT status, written FROM runs") $(once killed.db 1)" \
    "incomplete,$arrived $arrived $arrived $arrived"

# --- a sender stopped past the heartbeats (6 s): taken for vanished, then back ------------
# Its run ends incomplete with what arrived and keeps it; what it sends on comes as a new run.
ep="ipc://$work/paused"
collect paused "$ep" --into paused.db --runs 2 --interval 100ms
timeout 120 "$(prog zmq_paced)" "zmq:$ep" 60000 20000 >paused-sender.out 2>&1 &
sender=$!
received_in paused.out
kill -STOP "$(pgrep -P $sender)"
shows_in paused.out ': incomplete, '
kill -CONT "$(pgrep -P $sender)"
finished $sender
finished $collector
kept=$(sql paused.db "SELECT events FROM runs WHERE id = 1")
# (the second run is whole, or says it is not: whether the sender resumed or began again)
check_equal "a sender back after it was taken for vanished: its first run keeps what arrived, the rest a second run" \
    "$status $(sql paused.db "SELECT count(*), min(status) FROM runs WHERE id = 1") $([ "$kept" -gt 0 ] && echo kept) $(once paused.db 1) $(sql paused.db "SELECT count(*) FROM runs WHERE id = 2")" \
    "0 1,incomplete kept $kept $kept $kept 1"

# --- a parent that waits on a child it executed: the child's run names it -----------------
# (as in a database: the parent's hello goes when its run starts, with the program's
# parent pid, though the sender lives in a drainer process)
ep="ipc://$work/parents"
collect parents "$ep" --into parents.db --runs 2
timeout 60 "$pikoc" run -q --record "zmq:$ep" --record "sqlite:$work/parents-direct.db" -- \
    "$(prog execs)" vfork "$(cli_prog nested)" >/dev/null 2>parents.err
finished $collector
check_equal "vfork and exec: the child's run names its parent's, over zmq as in a database" \
    "$status $(sql parents.db "SELECT group_concat(coalesce(parent_run, '-'), ' ') FROM (SELECT parent_run FROM runs ORDER BY id)")|$(sql parents-direct.db "SELECT group_concat(coalesce(parent_run, '-'), ' ') FROM (SELECT parent_run FROM runs ORDER BY id)")" \
    "0 - 1|- 1"

# --- pikoc run tells the collector how its program ended --------------------------------
ep="ipc://$work/exits"
collect exits "$ep" --into exits.db
"$pikoc" run --record "zmq:$ep" -- "$(cli_prog exits)" status 7 >/dev/null 2>exits-1.err
exits="$?"
"$pikoc" run --record "zmq:$ep" -- "$(cli_prog exits)" wait 1500 _exit 4 >/dev/null 2>exits-2.err
exits="$exits $?"
"$pikoc" run --record "zmq:$ep" -- "$(cli_prog exits)" wait 1500 kill >/dev/null 2>exits-3.err
exits="$exits $?"
i=0
while [ "$(grep -c 'records received' exits.out)" -lt 3 ] && [ $i -lt 100 ]; do
    sleep 0.05
    i=$((i + 1))
done
stop $collector
finished $collector
check_equal "pikoc run: exit codes; it says where the records went, nothing else" \
    "$exits $(cat exits-1.err exits-2.err exits-3.err | grep '^pikoc run:' | sort -u)" \
    "7 4 137 pikoc run: records -> zmq:$ep"
check_equal "collector: each run marked as pikoc run marks a database (status, signal, exit status)" \
    "$(sql exits.db "SELECT status, signal, exit_status, end_ns IS NOT NULL FROM runs ORDER BY id" | tr '\n' ' ')" \
    "complete,,7,1 incomplete,,4,1 killed,9,,1 "
PIKOC_ZMQ_LINGER=200ms "$pikoc" run --record "zmq:ipc://$work/nobody-run" -- "$(cli_prog exits)" status 3 >/dev/null 2>exits-nobody.err
check_equal "pikoc run without a collector: says so within a second, not after the linger, nor that records went there" \
    "$? $(grep '^pikoc run:' exits-nobody.err)" \
    "3 pikoc run: ipc://$work/nobody-run: no collector there to tell how the program ended"
# A relative ipc:// endpoint is the one pikoc run starts in, also for an image the
# program executes after changing directory (which would otherwise connect to its own).
# The replaced image (sh) records nothing: its run says hello as it ends, which it
# used to leave to its first batch, so the collector missed it about one time in
# three. Five times over, so that such a miss shows.
mkdir moved
both=0
for attempt in 1 2 3 4 5; do
    collect "relative-$attempt" "ipc://$work/relative" --into none --runs 2
    "$pikoc" run --record zmq:ipc://relative -- sh -c 'cd moved && exec "$0"' \
        "$(cli_prog nested)" >relative-run.out 2>relative-run.err
    run_status=$?
    finished $collector
    [ "$run_status $status $(grep -c "started, sh -c cd moved" "relative-$attempt.out") $(grep -c ': complete, 18 records received' "relative-$attempt.out")" = "0 0 1 1" ] &&
        both=$((both + 1))
done
check_equal "pikoc run: a relative ipc:// endpoint is from where it starts; an executed image's run reaches the collector" \
    "$both $(tail -1 relative-5.out) $(ls moved)" \
    "5 pikoc listen: 2 runs ended, 18 records, 0 messages rejected "
# A program that executes another: the replaced image's goodbye says so, and at the
# collector as in a database its run ends 'executed', the parent of the new image's
# (before, it ended 'incomplete' when its connection closed, and was nobody's parent
# whenever that came before the new image's hello). Three times over.
exec_runs="SELECT p.status, p.command_line LIKE 'sh -c%', p.events, p.duration_ns IS NOT NULL,
                  r.status, r.events, r.parent_run = p.id
           FROM runs r JOIN runs p ON p.id = r.parent_run"
"$pikoc" run --record sqlite:exec-direct.db -- sh -c 'exec "$0"' "$(cli_prog nested)" >/dev/null 2>&1
linked=
for attempt in 1 2 3; do
    collect "exec-$attempt" "ipc://$work/exec" --into "exec-$attempt.db" --runs 2
    "$pikoc" run --record "zmq:ipc://$work/exec" -- sh -c 'exec "$0"' "$(cli_prog nested)" \
        >/dev/null 2>"exec-$attempt.err"
    finished $collector
    linked="$linked $(sql "exec-$attempt.db" "$exec_runs") $(grep -c ': executed, 0 records received' "exec-$attempt.out")"
done
check_equal "collector: a replaced image's run ends 'executed', the parent of the new one's, as in a database" \
    "$(sql exec-direct.db "$exec_runs") |$linked" \
    "executed,1,0,1,complete,18,1 | executed,1,0,1,complete,18,1 1 executed,1,0,1,complete,18,1 1 executed,1,0,1,complete,18,1 1"
# The same in process (PIKOC_RECORD, no pikoc run): the replaced image's recorder
# sends every record and its goodbye before the exec (it used to end 'incomplete',
# its records in memory lost); the new image, unmonitored, sends nothing.
collect exec-inproc "ipc://$work/exec-inproc" --into exec-inproc.db --runs 1
PIKOC_MONITOR=function PIKOC_RECORD="zmq:ipc://$work/exec-inproc" "$(prog execs)" execvp true \
    >/dev/null 2>exec-inproc-run.err
run_status=$?
finished $collector
check_equal "collector: a run in process ends 'executed' at an exec, with every record" \
    "$run_status $status $(grep -c ': executed, 20 records received (20 stored in detail)$' exec-inproc.out) $(sql exec-inproc.db "SELECT status, events, written FROM runs") $(cat exec-inproc-run.err)" \
    "0 0 1 executed,20,20 "
printf 'PKOZ\002\006\001\000\000\000\000\000\000\000\001\001h\005\000\004gone\000\000' >bad-exit.bin
collect exit-bad "$ep" --into none
$python - "$ep" <<'EOF2'
import sys, zmq
sock = zmq.Context().socket(zmq.DEALER)
sock.connect(sys.argv[1])
sock.send(open("bad-exit.bin", "rb").read())
reply = sock.recv()
assert reply[5] == 4 and reply[14] == 1, reply  # acknowledged: sent again, it would fail again
sock.close(linger=1000)
EOF2
stop $collector
finished $collector
check_equal "exit message: a status pikoc does not know is rejected, named" "$(cat exit-bad.err)" \
    "pikoc listen: rejected a message from an unknown sender: exit: status 'gone' is none of crashed, killed, incomplete"

# --- zmq+pub: lossy, every drop counted -----------------------------------------------
ep="ipc://$work/lossy"
timeout 120 "$(prog zmq_paced)" "zmq+pub:$ep" 40000 10000 >lossy-sender.out 2>&1 &
# --- zmq+pub: a publisher, any number of subscribers, every drop counted -----------------
# status, written, dropped and events of the one run in a database
run_counts() { sql "$1" "SELECT status, written, dropped, events FROM runs" | tr ',' ' '; }
# a collector's lines, pids as P, without its live view (a line a second for each run going on,
# there when a run outlasts a second: on a loaded machine, any)
lines() { grep -v ': [0-9]* records, [0-9]*/s, rss ' "$1" | sed 's/pid [0-9]*/pid P/'; }
# two collectors subscribed before the run starts (PIKOC_ZMQ_SUBSCRIBERS waits for them)
ep="ipc://$work/pub"
collect sub1 --subscribe "$ep" --into sub1.db --runs 1
sub1=$collector
collect sub2 --subscribe "$ep" --into sub2.db --runs 1
sub2=$collector
timeout 120 env PIKOC_ZMQ_SUBSCRIBERS=2 "$(prog zmq_paced)" "zmq+pub:$ep" 50000 0 >pub.out 2>&1
check_equal "zmq+pub: the publisher ended well, nothing dropped" "$? $(cat pub.out)" "0 "
finished $sub1
finished $sub2
check_equal "zmq+pub: both subscribers have the whole run" \
    "$(run_counts sub1.db) $(once sub1.db 1) / $(run_counts sub2.db) $(once sub2.db 1)" \
    "complete 50000 0 50000 50000 50000 50000 / complete 50000 0 50000 50000 50000 50000"
check_equal "zmq+pub: the subscriber's lines" "$(lines sub1.out)" \
    "pikoc listen: subscribed to $ep, into sub1.db
run 1 (pid P on test): started, zmq_paced
run 1 (pid P on test): complete, 50000 records received (50000 stored in detail), 0 dropped by the sender, 0 missed here
pikoc listen: 1 runs ended, 50000 records, 0 messages rejected"

# stalled_subscriber EP SECONDS: in the background ($stalled), a subscriber to EP
# whose queue holds one message and that reads nothing for SECONDS, then leaves.
stalled_subscriber() {
    timeout 60 $python - "$1" "$2" <<'EOF' &
import sys, time, zmq
sock = zmq.Context().socket(zmq.SUB)
sock.setsockopt(zmq.RCVHWM, 1)
sock.setsockopt(zmq.SUBSCRIBE, b"")
sock.connect(sys.argv[1])
time.sleep(float(sys.argv[2]))
sock.close(linger=0)
EOF
    stalled=$!
}

# a stalled subscriber (reads nothing for 2 s) fills its queue of 2 batches: the
# batches that find no room are dropped for every subscriber alike, and counted
ep="ipc://$work/stalled"
collect live1 --subscribe "$ep" --into live1.db --runs 1
live1=$collector
collect live2 --subscribe "$ep" --into live2.db --runs 1
live2=$collector
stalled_subscriber "$ep" 2
timeout 120 env PIKOC_ZMQ_SUBSCRIBERS=3 PIKOC_ZMQ_HWM=2 "$(prog zmq_paced)" "zmq+pub:$ep" 300000 0 >stalled.out 2>&1
status=$?
finished $stalled
finished $live1
finished $live2
set -- $(run_counts live1.db)
dropped=$(sed -n "s/^pikoc: recorder 'zmq+pub:.*': \([0-9]*\) records in [0-9]* batches had no room toward a subscriber and were dropped (the run counts them)$/\1/p" stalled.out)
check_equal "stalled subscriber: the publisher says how many records it dropped" \
    "$status $( [ "${dropped:-0}" -gt 0 ] && echo some) $(wc -l <stalled.out)" "0 some 1"
check_equal "stalled subscriber: stored + dropped = the publisher's total, in both collectors" \
    "$1 $(($2 + $3)) $3 $4 / $(run_counts live2.db)" "complete 300000 $dropped 300000 / complete $2 $dropped 300000"
check_equal "stalled subscriber: the collector's line names the drops" \
    "$(grep -c "^run 1 (pid [0-9]* on test): complete, $2 records received ($2 stored in detail), $dropped dropped by the sender, 0 missed here$" live1.out)" 1

# A publisher whose program executes another after batches were dropped: its run is
# 'executed' and still counts them (stored + dropped = its total), as a complete one does.
if [ "${PK_SANITIZERS:-no}" != yes ]; then
    ep="ipc://$work/pub-exec"
    collect pubexec --subscribe "$ep" --into pubexec.db --runs 1
    # stalled for half a second: batches dropped, then room for the goodbye, which
    # waits a second at most after an exec
    stalled_subscriber "$ep" 0.5
    rm -f pid
    timeout 120 env PIKOC_ZMQ_SUBSCRIBERS=2 PIKOC_ZMQ_HWM=2 "$pikoc" run --monitor alloc \
        --sample-interval 0 --no-follow --record "zmq+pub:$ep" -- \
        "$builddir/tests/alloc_crashes" 300000 exec pid >pubexec-run.out 2>pubexec-run.err &
    launcher=$!
    finished $collector
    finished $stalled
    wait_for_file pid
    kill "$(cat pid)"
    wait $launcher
    # allocation records are kept by the heap, not stored as events (written is 0)
    set -- $(run_counts pubexec.db)
    received=$(sed -n "s/.*: executed, \([0-9]*\) records received (\1 stored in detail), $3 dropped by the sender, 0 missed here$/\1/p" pubexec.out)
    check_equal "zmq+pub, the program executed another: 'executed', received + dropped = the total" \
        "$1 $(( ${received:-0} + $3 )) $( [ "$3" -gt 0 ] && echo some) $4" "executed 300000 some 300000"
fi

# a subscriber that comes mid-run stores the rest: its run is incomplete, what it missed counted
# (the publisher sends for 3 s: the second subscriber comes once the first has the run started)
ep="ipc://$work/late-sub"
collect early --subscribe "$ep" --into early.db --runs 1
early=$collector
timeout 120 env PIKOC_ZMQ_SUBSCRIBERS=1 "$(prog zmq_paced)" "zmq+pub:$ep" 150000 20000 >late-pub.out 2>&1 &
sender=$!
started_in early.out
sleep 0.3
collect latecomer --subscribe "$ep" --into latecomer.db --runs 1 --interval 100ms
finished $sender
finished $early
finished $collector
set -- $(run_counts latecomer.db) none 0 0 0 # (none: no run stored, the checks say so)
missed=$(sed -n 's/^run 1 (pid [0-9]* on test): started, zmq_paced (joined late: batches 1 to \([0-9]*\) missed)$/\1/p' latecomer.out)
check_equal "late subscriber: joined late, incomplete, stored + missed = the total" \
    "$( [ "${missed:-0}" -gt 0 ] && echo late) $1 $(($2 + $3)) $4 $(once latecomer.db 1)" "late incomplete 150000 150000 $2 $2 $2"
check_equal "late subscriber: the first record stored follows those missed; its end line" \
    "$(sql latecomer.db "SELECT min(\"index\") FROM pikoc_events") $(grep -c "^run 1 (pid [0-9]* on test): incomplete, $2 records received ($2 stored in detail), 0 dropped by the sender, $3 missed here$" latecomer.out)" \
    "$3 1"
check_equal "late subscriber: the one there from the start has it all" "$(run_counts early.db)" "complete 150000 0 150000"
check_equal "late subscriber: its view counts the batches missing" \
    "$(grep -c '^run 1 (pid [0-9]* on test): [0-9]* records, ' latecomer.out | sed 's/^[1-9][0-9]*$/some/') $(grep '^run 1 (pid [0-9]* on test): [0-9]* records, ' latecomer.out | grep -vc ", $missed batches missing$")" \
    "some 0"

# paced_publisher EP OUT: a publisher at EP sending for long, in the background
# ($sender is its timeout, whose child is the program); back once the subscriber
# whose output is OUT has its run started, and 0.3 s of records on.
paced_publisher() {
    timeout 120 env PIKOC_ZMQ_SUBSCRIBERS=1 "$(prog zmq_paced)" "zmq+pub:$1" 10000000 10000 >/dev/null 2>&1 &
    sender=$!
    started_in "$2"
    sleep 0.3
}

# a publisher killed mid-run: its subscriber ends the run incomplete with what
# arrived, at once and while it goes on; another publisher there then is a new run
ep="ipc://$work/pub-killed"
collect pubkill --subscribe "$ep" --into pubkill.db --runs 2
paced_publisher "$ep" pubkill.out
kill -KILL "$(pgrep -P $sender)"
i=0
while ! grep -q 'no goodbye$' pubkill.out && [ $i -lt 60 ]; do
    sleep 0.05
    i=$((i + 1))
done
arrived=$(arrived_in pubkill.out)
check_equal "killed publisher: its subscriber saw it vanish within 3 s, and goes on" \
    "$( [ -n "$arrived" ] && echo seen) $(kill -0 $collector && echo running)" "seen running"
check_equal "killed publisher: incomplete with what arrived" \
    "$(sql pubkill.db "SELECT status, written FROM runs") $(once pubkill.db 1)" \
    "incomplete,$arrived $arrived $arrived $arrived"
timeout 120 env PIKOC_ZMQ_SUBSCRIBERS=1 "$(prog zmq_paced)" "zmq+pub:$ep" 20000 0 >/dev/null 2>&1
finished $collector
check_equal "killed publisher: the next one there is a run of its own, complete" \
    "$status $(sql pubkill.db "SELECT status, written FROM runs WHERE id = 2") $(once pubkill.db 2)" \
    "0 complete,20000 20000 20000 20000"
check_equal "killed publisher: the subscriber's lines" "$(lines pubkill.out)" \
    "pikoc listen: subscribed to $ep, into pubkill.db
run 1 (pid P on test): started, zmq_paced
run 1 (pid P on test): incomplete, $arrived records received ($arrived stored in detail), no goodbye
run 2 (pid P on test): started, zmq_paced
run 2 (pid P on test): complete, 20000 records received (20000 stored in detail), 0 dropped by the sender, 0 missed here
pikoc listen: 2 runs ended, $((arrived + 20000)) records, 0 messages rejected"

# a publisher stopped (SIGSTOP: no word, its connection stays open) is found silent by
# the heartbeats after 6 s: its run ends incomplete with what arrived
ep="ipc://$work/pub-silent"
collect pubsilent --subscribe "$ep" --into pubsilent.db --runs 1
paced_publisher "$ep" pubsilent.out
kill -STOP "$(pgrep -P $sender)"
finished $collector
kill -KILL "$(pgrep -P $sender)"
arrived=$(arrived_in pubsilent.out)
check_equal "silent publisher: the heartbeats end its run, incomplete with what arrived" \
    "$status $(sql pubsilent.db "SELECT status, written FROM runs") $(once pubsilent.db 1)" \
    "0 incomplete,$arrived $arrived $arrived $arrived"

# nobody subscribes within the linger: the run goes on, and says so
timeout 60 env PIKOC_ZMQ_SUBSCRIBERS=1 PIKOC_ZMQ_LINGER=100ms "$(prog zmq_paced)" "zmq+pub:ipc://$work/alone" 10 0 >out 2>&1
check_equal "PIKOC_ZMQ_SUBSCRIBERS: nobody came" "$? $(cat out)" \
    "0 pikoc: recorder 'zmq+pub:ipc://$work/alone': 0 of 1 subscribers came within 0.1 s (PIKOC_ZMQ_LINGER); the run goes on without the others"

# --- no collector at all: the linger bounds the wait at exit ----------------------------
ep="ipc://$work/nobody"
timeout 60 env PIKOC_ZMQ_LINGER=200ms "$(prog zmq_paced)" "zmq:$ep" 10 0 >nobody.out 2>&1
check_equal "no collector: the sender gives up after the linger, and says so" "$? $(cat nobody.out)" \
    "1 pikoc: recorder 'zmq:$ep' cannot finish: $ep: no collector acknowledged the last 2 batches within 0.2 s (PIKOC_ZMQ_LINGER); they are lost; its records are dropped
zmq_paced: recorder 'zmq:$ep' cannot finish: $ep: no collector acknowledged the last 2 batches within 0.2 s (PIKOC_ZMQ_LINGER); they are lost; its records are dropped"
timeout 60 env PIKOC_ZMQ_LINGER=200ms "$(prog zmq_paced)" "zmq:$ep" 600000 0 >nobody.out 2>&1
check_equal "no collector: a full window waits for the linger, then drops and warns once" \
    "$? $(head -1 nobody.out)" \
    "1 pikoc: recorder 'zmq:$ep': no collector acknowledged anything for 0.2 s (PIKOC_ZMQ_LINGER); batches are dropped and counted until one does"

# --- CURVE ---------------------------------------------------------------------------------
if $python -c 'import zmq, sys; sys.exit(0 if zmq.has("curve") else 1)'; then
    ep="ipc://$work/curve"
    mkdir keys
    collect curve "$ep" --into curve.db --runs 1 --curve-keys keys
    timeout 60 env PIKOC_ZMQ_SERVER_KEY="$work/keys/server.pub" "$(prog zmq_paced)" "zmq:$ep" 1000 0 >curve-sender.out 2>&1
    check_equal "CURVE: keys made, sender authenticated the collector" "$? $(wc -c <keys/server.pub) $(stat -c %a keys/server.key)" "0 41 600"
    finished $collector
    check_equal "CURVE: the run arrived" "$(sql curve.db "SELECT status, written FROM runs")" "complete,1000"
    # pikoc run makes a relative key file absolute: the image a program executes after
    # changing directory reads the same file (it would find none there).
    collect curve-relative "$ep" --into curve-relative.db --runs 2 --curve-keys keys
    PIKOC_ZMQ_SERVER_KEY=keys/server.pub "$pikoc" run --record "zmq:$ep" -- \
        sh -c 'cd moved && exec "$0"' "$(cli_prog nested)" >/dev/null 2>curve-relative-run.err
    run_status=$?
    finished $collector
    # (the two runs' hellos may come in either order: their drainers connect apart)
    check_equal "CURVE: a relative key file, for an image executed elsewhere too" \
        "$run_status $(sql curve-relative.db "SELECT status, events FROM runs ORDER BY status DESC" | tr '\n' ' ')" \
        "0 executed,0 complete,18 "
    # only the senders listed in DIR/clients get in
    mkdir keys/clients
    $python -c 'import zmq; p, s = zmq.curve_keypair(); open("keys/clients/a.pub", "wb").write(p + b"\n"); open("a.key", "wb").write(s + b"\n")'
    collect listed "$ep" --into listed.db --runs 1 --curve-keys keys
    timeout 60 env PIKOC_ZMQ_LINGER=300ms PIKOC_ZMQ_SERVER_KEY="$work/keys/server.pub" "$(prog zmq_paced)" "zmq:$ep" 1000 0 >/dev/null 2>&1
    check_equal "CURVE: a sender whose key is not listed does not get in" "$?" 1
    # the keys as text this time, not files
    timeout 60 env PIKOC_ZMQ_CLIENT_KEY="$(head -c 40 a.key)" PIKOC_ZMQ_SERVER_KEY="$(head -c 40 keys/server.pub)" \
        "$(prog zmq_paced)" "zmq:$ep" 1000 0 >/dev/null 2>&1
    check_equal "CURVE: a listed sender gets in" "$?" 0
    finished $collector
    check_equal "CURVE: the listed sender's run, the other refused and counted" \
        "$(sql listed.db "SELECT status, written FROM runs") $(sed 's/at [^ ]*:/at ADDRESS:/' listed.err | sort -u) $(tail -1 listed.out)" \
        "complete,1000 pikoc listen: refused a sender at ADDRESS: its CURVE key is not in keys/clients pikoc listen: 1 runs ended, 1000 records, $(grep -c refused listed.err) messages rejected"
    # keys that are not Z85: said with the file, before anything is bound
    mkdir -p badkeys/clients
    cp keys/server.key keys/server.pub badkeys/
    printf '%s\n' '%nSc1000000000000000000000000000000000000' >badkeys/clients/b.pub
    "$pikoc" listen "ipc://$work/badkeys" --into none --curve-keys badkeys >out 2>err
    check_equal "listen --curve-keys: a listed key that is not Z85" "$? $(cat err)" \
        "2 pikoc listen: --curve-keys: badkeys/clients/b.pub: the key is not Z85: characters 1 to 5 are over 32 bits"
    rm badkeys/clients/b.pub
    rmdir badkeys/clients
    : >badkeys/clients
    "$pikoc" listen "ipc://$work/badkeys" --into none --curve-keys badkeys >out 2>err
    check_equal "listen --curve-keys: a clients list that cannot be read does not let everyone in" \
        "$? $(cat err)" "2 pikoc listen: --curve-keys: badkeys/clients: Not a directory"
    rm badkeys/clients
    printf '%s\n' 'rq:rM>}U?@Lns47E1%kR.o@n%Fcmms~/@{H8]yf7' >badkeys/server.key
    "$pikoc" listen "ipc://$work/badkeys" --into none --curve-keys badkeys >out 2>err
    check_equal "listen --curve-keys: a server key that is not Z85" "$? $(cat err)" \
        "2 pikoc listen: --curve-keys: badkeys/server.key: the key is not Z85: character 31 (0x7e) is not in Z85's alphabet"
    # A server key that is there but cannot be read is not replaced (the senders hold its
    # public half); nor does a listed key that cannot be read let anyone in.
    cp keys/server.pub badkeys/server.pub
    rm badkeys/server.key && ln -s server.key badkeys/server.key
    "$pikoc" listen "ipc://$work/badkeys" --into none --curve-keys badkeys >out 2>err
    check_equal "listen --curve-keys: a server key that cannot be read: said, the keys kept" \
        "$? $(cat err) $(readlink badkeys/server.key) $(cmp -s keys/server.pub badkeys/server.pub && echo kept)" \
        "2 pikoc listen: --curve-keys: badkeys/server.key: Too many levels of symbolic links server.key kept"
    rm badkeys/server.key && cp keys/server.key badkeys/ && mkdir badkeys/clients
    ln -s c.pub badkeys/clients/c.pub
    "$pikoc" listen "ipc://$work/badkeys" --into none --curve-keys badkeys >out 2>err
    check_equal "listen --curve-keys: a listed key that cannot be read" "$? $(cat err)" \
        "2 pikoc listen: --curve-keys: badkeys/clients/c.pub: Too many levels of symbolic links"
    # A directory that is not there is made, as the keys are, and the secret key is the owner's alone.
    collect made "ipc://$work/made" --into none --curve-keys made-keys
    stop $collector
    finished $collector
    check_equal "listen --curve-keys: a missing directory made (700), its keys (600, 644)" \
        "$(stat -c %a made-keys) $(stat -c %a made-keys/server.key) $(stat -c %a made-keys/server.pub) $(head -c 40 made-keys/server.key | wc -c)" \
        "700 600 644 40"
    # A sender whose handshake cannot succeed is refused with why (it finds no collector).
    collect other-keys "ipc://$work/other-keys" --into none --curve-keys other-keys
    stop $collector
    finished $collector
    collect handshakes "ipc://$work/handshakes" --into none --curve-keys keys
    timeout 60 env PIKOC_ZMQ_LINGER=300ms PIKOC_ZMQ_SERVER_KEY="$work/other-keys/server.pub" \
        "$(prog zmq_paced)" "zmq:ipc://$work/handshakes" 10 0 >/dev/null 2>&1
    timeout 60 env PIKOC_ZMQ_LINGER=300ms "$(prog zmq_paced)" "zmq:ipc://$work/handshakes" 10 0 >/dev/null 2>&1
    stop $collector
    finished $collector
    # (libzmq names the mechanism mismatch, or has no detail when the sender closes first)
    wrong_key="refused a sender: its PIKOC_ZMQ_SERVER_KEY is not keys/server.pub's key"
    no_curve="refused a sender: its handshake (is not CURVE|did not finish) \(a sender sets PIKOC_ZMQ_SERVER_KEY to keys/server.pub\)"
    check_equal "CURVE: a sender with another server's key, one without CURVE: each refused, with why" \
        "$(grep -c "$wrong_key" handshakes.err | sed 's/^[1-9][0-9]*$/said/') $(grep -cE "$no_curve" handshakes.err | sed 's/^[1-9][0-9]*$/said/') $(grep -vE "$wrong_key|$no_curve" handshakes.err | wc -l)" \
        "said said 0"
    collect plain-handshake "ipc://$work/plain-handshake" --into none
    timeout 60 env PIKOC_ZMQ_LINGER=300ms PIKOC_ZMQ_SERVER_KEY="$work/keys/server.pub" \
        "$(prog zmq_paced)" "zmq:ipc://$work/plain-handshake" 10 0 >/dev/null 2>&1
    stop $collector
    finished $collector
    check_equal "CURVE: a CURVE sender to a collector without --curve-keys: refused, with why" \
        "$(grep -cvE "refused a sender: its handshake (is CURVE \(PIKOC_ZMQ_SERVER_KEY\), and this collector has no --curve-keys|did not finish \(with PIKOC_ZMQ_SERVER_KEY, a sender needs a collector with --curve-keys\))" plain-handshake.err) $(wc -l <plain-handshake.err | sed 's/^[1-9][0-9]*$/said/')" \
        "0 said"
else
    ok "CURVE: # SKIP libzmq has no CURVE"
fi
collect open "tcp://0.0.0.0:*" --into none
stop $collector
finished $collector
check_equal "non-loopback bind without --curve-keys warns" "$status $(cat open.err)" \
    "0 pikoc listen: warning: tcp://0.0.0.0:* is reachable beyond this machine without --curve-keys: anyone who reaches it can send runs, and records travel in clear"

# --- a client written from docs/wire-format.md decodes the same run -----------------------
ep="ipc://$work/python"
timeout 60 $python "$srcdir/tests/wire_client.py" "ipc://$work/client" >client.json &
client=$!
collect python "$ep" --into python.db --runs 1
sleep 0.2
timeout 60 env PIKOC_MONITOR=function PIKOC_MAX_DEPTH=1 PIKOC_RECORD="zmq:$ep;zmq:ipc://$work/client" \
    "$(prog threads)" 3 500 >/dev/null 2>&1
finished $client
finished $collector
check_equal "python client: its totals and counts = the collector's run" \
    "$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); t = d["totals"]; print(t["events"], t["calls"], d["observed"], d["written"], d["hello"]["schema"], " ".join("%s=%d" % kv for kv in sorted(d["calls_by_function"].items())))' client.json)" \
    "$(sql python.db "SELECT events, calls, events, written, (SELECT user_version FROM pragma_user_version) FROM runs" | tr ',' ' ') $(sql python.db "SELECT s.function || '=' || f.calls FROM functions f JOIN symbols s ON s.run_id = f.run_id AND s.id = f.symbol_id WHERE f.calls > 0 ORDER BY s.function" | tr '\n' ' ' | sed 's/ $//')"

# --- bad messages: rejected, counted, named; the collector keeps running -------------------
ep="ipc://$work/bad"
collect bad "$ep" --into bad.db --runs 2
timeout 60 $python - "$ep" <<'EOF'
import struct, sys, zmq
sock = zmq.Context().socket(zmq.DEALER)
sock.connect(sys.argv[1])
head = lambda kind, seq: b"PKOZ" + bytes([2, kind]) + struct.pack("<Q", 99) + bytes([seq])
sock.send(b"hello, collector")                          # garbage
sock.send(b"PKOZ" + bytes([7, 1]) + bytes(9))            # a newer version
sock.send(head(1, 0) + bytes([0, 1, 1, 5]))              # a truncated hello
sock.send(head(2, 1) + bytes(5 << 20))                   # oversized
sock.send_multipart([head(2, 1), b"more"])               # two parts
sock.send(head(4, 1))                                    # an ack, to the collector
sock.send(head(2, 1) + bytes([0, 1, 0]))                 # a batch before any hello: asks for it
reply = sock.recv()
assert reply[5] == 5 and reply[6:14] == struct.pack("<Q", 99), reply
# a sender with a hello (no fields), then a batch cut short: named in the message
text = lambda s: bytes([len(s)]) + s
sock.send(head(1, 0) + bytes([0, 1, 1]) + text(b"py") + bytes([5, 1]) + text(b"bad") + text(b"function")
          + bytes([0]) + text(b"monotonic") + bytes([0x80, 0x80, 0x80, 0x80, 0x10]) + text(b"none")
          + bytes([0, 0, 0, 0, 0, 0]))
sock.send(head(2, 1) + bytes([0, 0, 1, 3]))              # a record cut short
reply = sock.recv()
assert reply[5] == 4 and reply[14] == 1, reply  # acknowledged: sent again, it would fail again
sock.close(linger=1000)
EOF
check_equal "bad messages: the client got a resend request" "$?" 0
timeout 60 "$(prog zmq_paced)" "zmq:$ep" 1000 0 >/dev/null 2>&1
finished $collector
check_equal "bad messages: each rejected with its reason, the collector kept going" "$status $(cat bad.err)" \
    "0 pikoc listen: rejected a message from an unknown sender: not a pikoc message (no PKOZ header)
pikoc listen: rejected a message from an unknown sender: wire version 7 is not supported (this pikoc speaks 2)
pikoc listen: rejected a message from an unknown sender: truncated hello
pikoc listen: rejected a message from an unknown sender: oversized message (5242895 bytes; at most 4194304)
pikoc listen: rejected a message from an unknown sender: a message in several parts (pikoc messages are one part)
pikoc listen: rejected a message from an unknown sender: an acknowledgement or resend request sent to the collector
pikoc listen: rejected a message from run 1 (pid 5 on py): truncated batch"
check_equal "bad messages: counted, the bad sender's run incomplete, a good sender still stored" \
    "$(grep '^run 1 ' bad.out | tail -1) $(tail -1 bad.out) $(sql bad.db "SELECT status, written FROM runs" | tr '\n' ' ')" \
    "run 1 (pid 5 on py): incomplete, 0 records received (0 stored in detail), 0 of event types unknown here skipped, 1 messages rejected, no goodbye pikoc listen: 2 runs ended, 1000 records, 7 messages rejected incomplete,0 complete,1000 "

# --- bad usage and bad specs: one line each ----------------------------------------------
"$pikoc" listen a b >out 2>err
check_equal "listen: two endpoints" "$? $(cat err)" "2 pikoc listen: one endpoint at most (got 'a' and 'b')"
"$pikoc" listen nonsense --into none >out 2>err
check_equal "listen: a bad endpoint" "$? $(cat err)" \
    "2 pikoc listen: endpoint 'nonsense': expected tcp://HOST:PORT or ipc://PATH"
# inproc:// never leaves the process; an ipc:// without a path is none.
for endpoint in inproc://x ipc://; do
    "$pikoc" listen "$endpoint" --into none >out 2>err
    check_equal "listen $endpoint" "$? $(cat err)" "2 pikoc listen: endpoint '$endpoint': expected tcp://HOST:PORT or ipc://PATH"
done
# A second collector at the ipc:// path of a running one is refused: libzmq binds over the
# socket file, which would leave the first one reachable by no sender.
collect taken "ipc://$work/taken" --into taken.db --runs 1
"$pikoc" listen "ipc://$work/taken" --into none >out 2>err
check_equal "listen: an ipc:// path another collector listens on" "$? $(cat err)" \
    "1 pikoc listen: cannot listen on 'ipc://$work/taken': Address already in use (another process listens there)"
timeout 60 "$pikoc" run -q --record "zmq:ipc://$work/taken" -- "$(cli_prog nested)" >out 2>err
finished $collector
check_equal "... and the one there still takes the runs" "$status $(sql taken.db "SELECT status, events FROM runs")" \
    "0 complete,18"
"$pikoc" listen --interval 0 >out 2>err
check_equal "listen: --interval 0" "$? $(cat err)" "2 pikoc listen: --interval '0': must be more than 0"
"$pikoc" listen --into /nonexistent-dir/x.db >out 2>err
check_equal "listen: a database that cannot be made" "$? $(cat err)" \
    "2 pikoc listen: /nonexistent-dir/x.db: cannot create: No such file or directory"
"$pikoc" listen --help >out 2>err
check_equal "listen --help" "$? $(head -1 out)" "0 usage: pikoc listen [OPTIONS] [ENDPOINT]"
timeout 60 "$(prog zmq_paced)" "zmq+bogus:ipc://$work/x" 1 0 >out 2>&1
check_equal "spec: unknown option" "$? $(cat out)" \
    "1 zmq_paced: recorder spec 'zmq+bogus:ipc://$work/x': unknown option 'bogus' (known: flush, pub)"
timeout 60 "$(prog zmq_paced)" "zmq" 1 0 >out 2>&1
check_equal "spec: no endpoint" "$? $(cat out)" \
    "1 zmq_paced: recorder spec 'zmq': missing argument (expected zmq[+pub]:ENDPOINT)"
timeout 60 "$(prog zmq_paced)" "zmq:nonsense" 1 0 >out 2>&1
check_equal "spec: a bad endpoint" "$? $(cat out)" \
    "1 zmq_paced: recorder spec 'zmq:nonsense': endpoint 'nonsense': expected tcp://HOST:PORT or ipc://PATH"
"$pikoc" run --record zmq:inproc://x -- "$(cli_prog exits)" status 3 >out 2>err
check_equal "run --record zmq:inproc://x: refused before the program starts" "$? $(cat out err)" \
    "2 pikoc run: --record: recorder spec 'zmq:inproc://x': endpoint 'inproc://x': expected tcp://HOST:PORT or ipc://PATH"
# libzmq is loaded when a zmq recorder opens: one that cannot be is said, with why.
mkdir -p "$work/nozmq" && : >"$work/nozmq/libzmq.so.5"
timeout 60 env LD_LIBRARY_PATH="$work/nozmq${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$(prog zmq_paced)" "zmq:ipc://$work/x" 1 0 >out 2>&1
check_equal "libzmq that cannot be loaded" "$? $(cat out)" \
    "1 zmq_paced: recorder spec 'zmq:ipc://$work/x': the zmq recorder cannot load libzmq.so.5 (Debian package libzmq5): $work/nozmq/libzmq.so.5: file too short"
if $python -c 'import zmq, sys; sys.exit(0 if zmq.has("curve") else 1)'; then
    timeout 60 env PIKOC_ZMQ_SERVER_KEY=/nonexistent-key "$(prog zmq_paced)" "zmq:ipc://$work/x" 1 0 >out 2>&1
    check_equal "PIKOC_ZMQ_SERVER_KEY: neither a key nor a file" "$? $(cat out)" \
        "1 zmq_paced: recorder spec 'zmq:ipc://$work/x': PIKOC_ZMQ_SERVER_KEY '/nonexistent-key': neither a 40-character key nor a readable file"
fi
timeout 60 env PIKOC_ZMQ_HWM=0 "$(prog zmq_paced)" "zmq+pub:ipc://$work/x" 1 0 >out 2>&1
check_equal "PIKOC_ZMQ_HWM: 0" "$? $(cat out)" \
    "1 zmq_paced: recorder spec 'zmq+pub:ipc://$work/x': PIKOC_ZMQ_HWM '0': expected a number of batches from 1 to 2147483647"
timeout 60 env PIKOC_ZMQ_SUBSCRIBERS=two "$(prog zmq_paced)" "zmq+pub:ipc://$work/x" 1 0 >out 2>&1
check_equal "PIKOC_ZMQ_SUBSCRIBERS: not a number" "$? $(cat out)" \
    "1 zmq_paced: recorder spec 'zmq+pub:ipc://$work/x': PIKOC_ZMQ_SUBSCRIBERS 'two': expected a non-negative whole number"
timeout 60 env PIKOC_ZMQ_SERVER_KEY=key "$(prog zmq_paced)" "zmq+pub:ipc://$work/x" 1 0 >out 2>&1
check_equal "PIKOC_ZMQ_SERVER_KEY with zmq+pub:" "$? $(cat out)" \
    "1 zmq_paced: recorder spec 'zmq+pub:ipc://$work/x': PIKOC_ZMQ_SERVER_KEY: a zmq+pub: publisher has no CURVE (zmq: senders do); bind it to loopback or ipc"
timeout 60 "$(prog zmq_paced)" "zmq+pub:nonsense" 1 0 >out 2>&1
check_equal "zmq+pub: a bad endpoint" "$? $(cat out)" \
    "1 zmq_paced: recorder spec 'zmq+pub:nonsense': endpoint 'nonsense': expected tcp://HOST:PORT or ipc://PATH"
"$pikoc" listen --subscribe nonsense --into none >out 2>err
check_equal "listen --subscribe: a bad endpoint" "$? $(cat err)" \
    "2 pikoc listen: --subscribe: endpoint 'nonsense': expected tcp://HOST:PORT or ipc://PATH"
# libzmq takes port 99999 as 34463 and "5557x" as 5557: ports are checked first.
for endpoint in tcp://127.0.0.1:99999 tcp://127.0.0.1:5557x tcp://127.0.0.1:0 tcp://127.0.0.1; do
    "$pikoc" listen "$endpoint" --into none >out 2>err
    check_equal "listen $endpoint" "$? $(cat out err)" \
        "2 pikoc listen: endpoint '$endpoint': expected a port from 1 to 65535 after the last ':' (or *: any free port)"
done
"$pikoc" listen --subscribe tcp://127.0.0.1:-1 --into none >out 2>err
check_equal "listen --subscribe tcp://127.0.0.1:-1" "$? $(cat out err)" \
    "2 pikoc listen: --subscribe: endpoint 'tcp://127.0.0.1:-1': expected a port from 1 to 65535 after the last ':'"
"$pikoc" run --record zmq:tcp://127.0.0.1:65536 -- "$(cli_prog exits)" status 3 >out 2>err
check_equal "run --record zmq: with port 65536" "$? $(cat out err)" \
    "2 pikoc run: --record: recorder spec 'zmq:tcp://127.0.0.1:65536': endpoint 'tcp://127.0.0.1:65536': expected a port from 1 to 65535 after the last ':'"
timeout 60 "$(prog zmq_paced)" "zmq:tcp://127.0.0.1:5557x" 1 0 >out 2>&1
check_equal "zmq: with port 5557x, in the library" "$? $(cat out)" \
    "1 zmq_paced: recorder spec 'zmq:tcp://127.0.0.1:5557x': endpoint 'tcp://127.0.0.1:5557x': expected a port from 1 to 65535 after the last ':'"
timeout 60 "$pikoc" listen 'tcp://127.0.0.1:*' --into none >any-port.out 2>&1 &
any_port=$!
i=0
while [ ! -s any-port.out ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
kill -INT $any_port 2>/dev/null
wait $any_port
check_equal "listen tcp://127.0.0.1:*: the port it got is said" \
    "$(head -1 any-port.out | sed 's/:[1-9][0-9]*,/:PORT,/')" "pikoc listen: on tcp://127.0.0.1:PORT, into nothing (none)"
"$pikoc" listen nonsense --into fresh.db >out 2>err
check_equal "listen: a bad endpoint leaves no database behind" "$? $(cat err) $(ls fresh.db 2>/dev/null | wc -l)" \
    "2 pikoc listen: endpoint 'nonsense': expected tcp://HOST:PORT or ipc://PATH 0"
"$pikoc" listen "ipc://$work/empty-into" --into '' >out 2>err
check_equal "listen --into ''" "$? $(cat err)" "2 pikoc listen: --into '': expected a database file, or none"
mkdir fresh-keys
"$pikoc" listen "ipc://$work/nokeys" --into no/such/dir.db --curve-keys fresh-keys >out 2>err
check_equal "listen: a database that cannot be made is refused before any key is written" \
    "$? $(cat err) $(ls fresh-keys | wc -l)" \
    "2 pikoc listen: no/such/dir.db: cannot create: No such file or directory 0"
"$pikoc" listen "ipc://$work/empty-keys" --into none --curve-keys '' >out 2>err
check_equal "listen --curve-keys ''" "$? $(cat err)" "2 pikoc listen: --curve-keys '': expected a directory"
"$pikoc" listen $(for i in $(seq 17); do printf ' -s ipc://x%d' "$i"; done) --into none >out 2>err
check_equal "listen --subscribe: 17 publishers" "$? $(cat err)" "2 pikoc listen: --subscribe: at most 16 publishers"
timeout 60 env PIKOC_ZMQ_LINGER=soon "$(prog zmq_paced)" "zmq:ipc://$work/x" 1 0 >out 2>&1
check_equal "PIKOC_ZMQ_LINGER: a bad duration" "$? $(cat out)" \
    "1 zmq_paced: recorder spec 'zmq:ipc://$work/x': PIKOC_ZMQ_LINGER 'soon': expected a number with a unit: ns, us, ms or s (e.g. 500ns, 2us, 1.5ms)"
# pikoc run checks what a zmq recorder will read from the environment before
# the program starts: status 2 and one line, the program never run.
env PIKOC_ZMQ_LINGER=soon "$pikoc" run --record "zmq:ipc://$work/x" -- "$(cli_prog exits)" status 3 \
    >out 2>err
check_equal "run: PIKOC_ZMQ_LINGER checked first" "$? $(cat out err)" \
    "2 pikoc run: --record: recorder spec 'zmq:ipc://$work/x': PIKOC_ZMQ_LINGER 'soon': expected a number with a unit: ns, us, ms or s (e.g. 500ns, 2us, 1.5ms)"
env PIKOC_ZMQ_HWM=0 "$pikoc" run --record "zmq+pub:ipc://$work/x" -- "$(cli_prog exits)" status 3 \
    >out 2>err
check_equal "run: PIKOC_ZMQ_HWM checked first" "$? $(cat out err)" \
    "2 pikoc run: --record: recorder spec 'zmq+pub:ipc://$work/x': PIKOC_ZMQ_HWM '0': expected a number of batches from 1 to 2147483647"
env PIKOC_ZMQ_SERVER_KEY=/nonexistent-key "$pikoc" run --record "zmq:ipc://$work/x" -- \
    "$(cli_prog exits)" status 3 >out 2>err
check_equal "run: the form of PIKOC_ZMQ_SERVER_KEY checked first" "$? $(cat out err)" \
    "2 pikoc run: --record: recorder spec 'zmq:ipc://$work/x': PIKOC_ZMQ_SERVER_KEY '/nonexistent-key': neither a 40-character key nor a readable file"
# A key given inline is checked the way libzmq decodes it (not echoed: it may
# be a secret): Z85's alphabet, and each group of five characters at most
# 0xffffffff ('%nSc0'; '%nSc1' is one more).
zeros=00000000000000000000000000000000000
for key in "rq:rM>}U?@Lns47E1%kR.o@n%Fcmms~/@{H8]yf7 character 31 (0x7e) is not in Z85's alphabet" \
    "%nSc1$zeros characters 1 to 5 are over 32 bits" \
    "$zeros%nSc1 characters 36 to 40 are over 32 bits"; do
    env PIKOC_ZMQ_SERVER_KEY="${key%% *}" "$pikoc" run --record "zmq:ipc://$work/x" -- \
        "$(cli_prog exits)" status 3 >out 2>err
    check_equal "run: PIKOC_ZMQ_SERVER_KEY not Z85: ${key#* }" "$? $(cat out err)" \
        "2 pikoc run: --record: recorder spec 'zmq:ipc://$work/x': PIKOC_ZMQ_SERVER_KEY: the key is not Z85: ${key#* }"
done
ln -s loop.key loop.key
env PIKOC_ZMQ_SERVER_KEY=loop.key "$pikoc" run --record "zmq:ipc://$work/x" -- "$(cli_prog exits)" status 3 >out 2>err
check_equal "run: a key file that cannot be read" "$? $(cat out err)" \
    "2 pikoc run: --record: recorder spec 'zmq:ipc://$work/x': PIKOC_ZMQ_SERVER_KEY 'loop.key': Too many levels of symbolic links"
printf '%s\n' "rq:rM>}U?@Lns47E1%kR.o@n%Fcmms /@{H8]yf7" >bad-secret.key
env PIKOC_ZMQ_SERVER_KEY="%nSc0$zeros" PIKOC_ZMQ_CLIENT_KEY=bad-secret.key "$pikoc" run \
    --record "zmq:ipc://$work/x" -- "$(cli_prog exits)" status 3 >out 2>err
check_equal "run: a key file whose key is not Z85 (the largest group, %nSc0, is)" "$? $(cat out err)" \
    "2 pikoc run: --record: recorder spec 'zmq:ipc://$work/x': PIKOC_ZMQ_CLIENT_KEY 'bad-secret.key': the file's key is not Z85: character 31 (0x20) is not in Z85's alphabet"
env PIKOC_ZMQ_LINGER=100ms PIKOC_ZMQ_SERVER_KEY="%nSc0$zeros" "$pikoc" run -q \
    --record "zmq:ipc://$work/x" -- "$(cli_prog exits)" status 3 >out 2>err
check_equal "run: a key of the largest groups is Z85 (the program runs)" "$? $(grep -c Z85 err)" "3 0"
# An empty setting is an unset one: the defaults, nothing said.
env PIKOC_ZMQ_LINGER= PIKOC_ZMQ_HWM= PIKOC_ZMQ_SUBSCRIBERS= "$pikoc" run -q \
    --record "zmq+pub:ipc://$work/empty" -- "$(cli_prog exits)" status 3 >out 2>err
check_equal "run: empty PIKOC_ZMQ_LINGER, _HWM, _SUBSCRIBERS, as unset" "$? $(grep -c PIKOC_ZMQ err)" "3 0"
timeout 60 env PIKOC_ZMQ_LINGER= PIKOC_ZMQ_HWM= PIKOC_ZMQ_SUBSCRIBERS= "$(prog zmq_paced)" \
    "zmq+pub:ipc://$work/empty" 10 0 >out 2>&1
check_equal "empty PIKOC_ZMQ_LINGER, _HWM, _SUBSCRIBERS, as unset, in the library" "$? $(cat out)" "0 "
# ... and only for the recorders that read it.
env PIKOC_ZMQ_HWM=0 PIKOC_ZMQ_LINGER=soon "$pikoc" run -q --record "sqlite:$work/hwm.db" -- \
    "$(cli_prog exits)" status 3 >out 2>err
check_equal "run: zmq settings do not concern sqlite (the program's status, no word of them)" \
    "$? $(cat out err | grep -c PIKOC_ZMQ)" "3 0"

echo "# zmq: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
