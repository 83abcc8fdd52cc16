#!/bin/sh
# spans.sh — profilers across processes end to end: the example client and
# server talk over ZeroMQ (REQ/REP), both record into one SQLite file (and
# again into one collector, `pikoc listen`), and `pikoc spans` joins them. Times vary, so the tree is checked with its
# numbers blanked, and the numbers by how they must relate: waited = worked +
# transport, the clock's uncertainty half the shortest round trip outside the
# server; checkpoints reach `pikoc events` with their exact labels.
set -u

builddir=$(cd "${top_builddir:-.}" && pwd)
srcdir=$(cd "${top_srcdir:-.}" && pwd)
pikoc="$builddir/pikoc"
work=$(mktemp -d "${TMPDIR:-/tmp}/pikoc-spans.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
cd "$work" || exit 1

. "$srcdir/tests/checks.sh"
bad() { # name message ARGS...
    name=$1 message=$2
    shift 2
    pk "$@"
    check_equal "$name" "$status $(cat "$work/err") ($(wc -l <"$work/err") line)" \
        "2 $message (1 line)"
}

# --- a client and a server, three requests, one database -----------------------------
export PIKOC_RECORD="sqlite:$work/calls.db"
timeout 60 "$builddir/examples/spans_server" "ipc://$work/calls" 3 2>server.err &
server=$!
# The server's run is run 1: wait until it is in the file before the client starts.
tries=0
while [ "$(sqlite3 calls.db 'SELECT count(*) FROM runs' 2>/dev/null)" != 1 ] && [ $tries -lt 200 ]; do
    sleep 0.05
    tries=$((tries + 1))
done
timeout 60 "$builddir/examples/spans_client" "ipc://$work/calls" 3 2>client.err
check_equal "client exits 0" "$?" 0
wait $server
check_equal "server exits 0" "$?" 0
unset PIKOC_RECORD

# Each side printed its own blocks (the profiler's format).
check_equal "client printed three blocks" \
    "$(grep -c '^< Exiting client request, total time: [0-9]*\.[0-9][0-9][0-9][0-9] ms$' client.err)" 3
check_equal "server printed three blocks" \
    "$(grep -c '^  checksum computed: [0-9]*\.[0-9][0-9][0-9][0-9], tot:[0-9]*\.[0-9][0-9][0-9][0-9]$' server.err)" 3

# --- the joined tree ------------------------------------------------------------------
# check_tree NAME DB: pikoc spans on DB has the expected shape once its
# numbers are blanked; leaves the output in out.
block='> Entering client request  [run CR, pid C, thread C]
  request built: T, tot:T
  > Entering handle request  [run SR, pid S, thread S]
    request parsed: T, tot:T
    checksum computed: T, tot:T
    reply built: T, tot:T
  < Exiting handle request, total time: T ms
  = remote call to run SR (until '"'reply received'"'): waited T ms, worked T ms, transport and queueing T ms
  reply received: T, tot:T
< Exiting client request, total time: T ms'
printf '%s\n%s\n%s\n\n' "$block" "$block" "$block" >expected-shape.txt
check_tree() {
    pk spans "$2"
    check_equal "$1: spans exits 0" "$status $(cat err)" "0 "
    client_run=$(sqlite3 "$2" "SELECT id FROM runs WHERE command_line LIKE '%spans_client%'")
    server_run=$(sqlite3 "$2" "SELECT id FROM runs WHERE command_line LIKE '%spans_server%'")
    client_pid=$(sqlite3 "$2" "SELECT pid FROM runs WHERE id = $client_run")
    server_pid=$(sqlite3 "$2" "SELECT pid FROM runs WHERE id = $server_run")
    # Numbers blanked: milliseconds become T, the client's pid C and run CR, the server's S and SR.
    sed -E "s/[0-9]+\.[0-9]{4}/T/g; s/(pid|thread) $client_pid/\1 C/g; s/(pid|thread) $server_pid/\1 S/g
            s/run $client_run([^0-9])/run CR\1/g; s/run $server_run([^0-9])/run SR\1/g" \
        out | sed '/^runs:$/,$d' >shape.txt
    if diff -u expected-shape.txt shape.txt >diff.txt; then
        ok "$1: three client requests, each holding the server's handler and its call"
    else
        not_ok "$1: the joined tree" && cat diff.txt
    fi
}
check_tree "spans" calls.db

# waited = worked + transport, to the printed rounding; the worked time is the
# server's own total, and the wait is the client's time from sending to its mark.
check_equal "spans: waited = worked + transport (3 calls)" "$(awk '/= remote call/ {
        w = $(NF - 9); k = $(NF - 6); t = $(NF - 1); d = w - k - t
        if (d < 0) d = -d; if (d <= 0.0002) n++ } END { print n + 0 }' out)" 3
check_equal "spans: worked = the server's total" "$(awk '
        /< Exiting handle request/ { total[++e] = $(NF - 1) }
        /= remote call/ { if ($(NF - 6) == total[++c]) n++ } END { print n + 0 }' out)" 3
check_equal "spans: the server works inside the wait" "$(awk '/= remote call/ {
        if ($(NF - 9) >= $(NF - 6)) n++ } END { print n + 0 }' out)" 3

# The clock line: the server's run against the client's, give or take half the
# shortest time a call spent outside the server.
clock=$(grep '^  run 1: ' out)
case $clock in
*"; clock "*" ms +/- "*" ms against run 2 (3 remote calls)") ok "spans: run 1's clock against run 2" ;;
*) not_ok "spans: run 1's clock line: '$clock'" ;;
esac
check_equal "spans: uncertainty = half the shortest transport" "$(awk '
        /= remote call/ { t = $(NF - 1); if (min == "" || t < min) min = t }
        /^  run 1: / { for (i = 1; i <= NF; i++) if ($i == "+/-") u = $(i + 1) }
        END { d = u - min / 2; if (d < 0) d = -d; print (d <= 0.0002) ? "yes" : "no: " u " " min }' out)" yes
check_equal "spans: run 2 is the client, aligned with nothing" \
    "$(grep -c "^  run 2: host .*, pid $client_pid, .*spans_client ipc://$work/calls 3\$" out)" 1

# --- checkpoints in pikoc events ----------------------------------------------------------
pk events --db calls.db --run 1 --type checkpoint --format csv
check_equal "events --type checkpoint: the server's labels" \
    "$(tr -d '\r' <out | tail -n +2 | awk -F, '{ printf "%s/%s/%s ", $2, $3, $19 }')" \
    "checkpoint/handle request/request parsed checkpoint/handle request/checksum computed checkpoint/handle request/reply built checkpoint/handle request/request parsed checkpoint/handle request/checksum computed checkpoint/handle request/reply built checkpoint/handle request/request parsed checkpoint/handle request/checksum computed checkpoint/handle request/reply built "
check_equal "events: a mark's total is the sum of its deltas" "$(tr -d '\r' <out | tail -n +2 | awk -F, '
        $19 == "request parsed" { sum = 0 } { sum += $7; if (sum == $20) n++ } END { print n + 0 }')" 9
pk events --db calls.db --run 2 --function 'client*'
check_equal "events (table): calls, returns and checkpoints of the client's profiler" \
    "$(awk 'NR > 2 { print $2 }' out | sort | uniq -c | tr -s ' ' | tr '\n' ',')" \
    " 3 call, 6 checkpoint, 3 return,"
pk spans calls.db --run 2
check_equal "spans --run 2: the client alone, no remote call" \
    "$(grep -c '^  > Entering\|= remote call' out) $(grep -c '^> Entering client request' out)" "0 3"
pk spans calls.db --run 1 -r 2
check_equal "spans --run 1 -r 2 (repeatable): both runs" \
    "$status $(grep -c '^  run [12]: ' out) $(grep -c 'its sender is not among these runs' out)" "0 2 0"
pk spans calls.db --run 1
check_equal "spans --run 1: the server's spans say whom they continue" \
    "$(grep -c "^> Entering handle request  \[run 1, pid $server_pid, thread $server_pid\] continues pk1-[0-9a-f]*-[0-9a-f]*-$client_pid-[0-9]*-.*: its sender is not among these runs\$" out)" 3

# --- the same two processes through a collector ---------------------------------------------
# Both send to `pikoc listen` (zmq:), which writes each as its own run: the
# spans and checkpoints travel on the wire and join the same way. A run
# reaches the collector with its first records, so the run ids are looked up.
timeout 120 "$pikoc" listen "ipc://$work/collector" --into collected.db >listen.out 2>listen.err &
collector=$!
export PIKOC_RECORD="zmq:ipc://$work/collector"
timeout 60 "$builddir/examples/spans_server" "ipc://$work/calls2" 3 2>server2.err &
server=$!
timeout 60 "$builddir/examples/spans_client" "ipc://$work/calls2" 3 2>client2.err
check_equal "collector: client exits 0" "$?" 0
wait $server
check_equal "collector: server exits 0" "$?" 0
unset PIKOC_RECORD
tries=0 # both runs complete (their goodbyes stored), then stop the collector
while [ "$(sqlite3 collected.db "SELECT count(*) FROM runs WHERE status = 'complete'" 2>/dev/null)" != 2 ] &&
    [ $tries -lt 400 ]; do
    sleep 0.05
    tries=$((tries + 1))
done
kill -TERM $collector
wait $collector
check_equal "collector: stops cleanly" "$?" 0
check_tree "spans through pikoc listen" collected.db
check_equal "collector: the server's checkpoints stored" \
    "$(sqlite3 collected.db "SELECT count(*) FROM checkpoints WHERE run_id = $server_run")" 9

# --- bad input ----------------------------------------------------------------------------
bad "spans: two databases" "pikoc spans: one database only ('calls.db' and 'other.db')" \
    spans calls.db other.db
bad "spans: unknown run" "pikoc spans: unknown run 9 (runs: 1-2)" spans --db calls.db --run 9
bad "spans: missing file" "pikoc spans: nothing.db: no such file" spans nothing.db
cp calls.db old.db
sqlite3 old.db 'DROP TABLE spans; DROP TABLE checkpoints; PRAGMA user_version = 1'
bad "spans: a version-1 file" "pikoc spans: old.db: no profiler spans (schema version 1)" spans old.db
pk events --db old.db --run 2 --format csv
check_equal "events on a version-1 file: calls and returns only" "$status $(tr -d '\r' <out | tail -n +2 | cut -d, -f2 | sort -u | tr '\n' ' ')" \
    "0 call return "

echo "# spans.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
