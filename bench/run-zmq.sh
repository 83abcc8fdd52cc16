#!/bin/sh
# run-zmq.sh — the collector benchmark: four sender processes (bench/store,
# synthetic records of bench/calls.c's shape pushed through a zmq:ENDPOINT
# recorder) on loopback TCP into one `pikoc listen`, first with the database
# off (--into none: the transport alone), then into SQLite; beside them, the
# same four processes each writing sqlite:PATH in process (no transport), in
# one invocation. Prints records per second (all senders together, from the
# senders' start to the collector's exit) for each repetition, the medians
# and the ratios, and checks that no record was lost.
#
# usage: bench/run-zmq.sh [-r REPS] [-n RECORDS] [-b BUILDDIR] [-t TMPDIR] [-p PORT]
#   -r REPS     repetitions of each side (default 5)
#   -n RECORDS  records per sender (default 5000000)
#   -b BUILDDIR the build tree holding pikoc and bench/store (default: .)
#   -t TMPDIR   where the databases go (default: $TMPDIR or /tmp)
#   -p PORT     the collector's port on 127.0.0.1 (default 5557)
#
# Exits 1 when a run fails or a record is missing.
set -u

reps=5
records=5000000
builddir=.
tmproot=${TMPDIR:-/tmp}
port=5557
senders=4

while getopts r:n:b:t:p:h opt; do
    case $opt in
    r) reps=$OPTARG ;;
    n) records=$OPTARG ;;
    b) builddir=$OPTARG ;;
    t) tmproot=$OPTARG ;;
    p) port=$OPTARG ;;
    *) sed -n '/^# usage:/,/^#$/s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
    esac
done

builddir=$(cd "$builddir" && pwd)
pikoc="$builddir/pikoc"
store="$builddir/bench/.libs/store"
for f in "$pikoc" "$store"; do
    [ -x "$f" ] || { echo "run-zmq.sh: $f is missing (make && make bench/store)" >&2; exit 1; }
done
for v in $(env | sed -n 's/^\(PIKOC_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
export LD_LIBRARY_PATH="$builddir/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

work=$(mktemp -d "$tmproot/pikoc-run-zmq.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
endpoint="tcp://127.0.0.1:$port"
total=$((records * senders))
failed=0

now_ns() { date +%s%N; }

# collect INTO: one collector and four senders; prints records per second.
collect() {
    rm -f "$work"/z.db*
    "$pikoc" listen "$endpoint" --into "$1" --runs "$senders" --interval 3600s >"$work/listen.out" 2>&1 &
    collector=$!
    while ! grep -q '^pikoc listen: on ' "$work/listen.out" 2>/dev/null; do
        kill -0 $collector 2>/dev/null || { cat "$work/listen.out" >&2; exit 1; }
        sleep 0.02
    done
    start=$(now_ns)
    i=0
    while [ $i -lt $senders ]; do
        "$store" -n "$records" "zmq:$endpoint" >/dev/null &
        i=$((i + 1))
    done
    wait $collector
    end=$(now_ns)
    wait
    last=$(tail -1 "$work/listen.out")
    if [ "$last" != "pikoc listen: $senders runs ended, $total records, 0 messages rejected" ]; then
        echo "run-zmq.sh: records lost: $last" >&2
        failed=1
    fi
    if [ "$1" != none ]; then
        stored=$("$pikoc" sql --db "$1" --format csv \
            "SELECT sum(written) || ' ' || sum(status = 'complete') FROM runs" | tail -1 | tr -d '\r')
        if [ "$stored" != "$total $senders" ]; then
            echo "run-zmq.sh: the database holds '$stored' (written, complete runs), expected '$total $senders'" >&2
            failed=1
        fi
    fi
    echo $((total * 1000000000 / (end - start)))
}

# in_process: four processes, each its own sqlite:PATH; prints records per second.
in_process() {
    rm -f "$work"/d*.db*
    start=$(now_ns)
    i=0
    while [ $i -lt $senders ]; do
        "$store" -n "$records" "$work/d$i.db" >/dev/null &
        i=$((i + 1))
    done
    wait
    end=$(now_ns)
    echo $((total * 1000000000 / (end - start)))
}

median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "run-zmq.sh: $senders senders x $records records on $endpoint, $reps repetitions ($(uptime | sed 's/.*load/load/'))"
none="" sqlite="" local=""
r=0
while [ $r -lt $reps ]; do
    a=$(collect none)
    b=$(collect "$work/z.db")
    c=$(in_process)
    echo "  rep $((r + 1)): transport $a/s, into SQLite $b/s, in-process sqlite $c/s"
    none="$none $a" sqlite="$sqlite $b" local="$local $c"
    r=$((r + 1))
done
m_none=$(echo "$none" | median)
m_sqlite=$(echo "$sqlite" | median)
m_local=$(echo "$local" | median)
echo "median records/s: transported (--into none) $m_none, into SQLite $m_sqlite, in-process sqlite $m_local"
awk -v a="$m_none" -v b="$m_sqlite" -v c="$m_local" \
    'BEGIN { printf "ratios: into SQLite / transported %.2f, into SQLite / in-process sqlite %.2f\n", b / a, b / c }'
[ $failed -eq 0 ] && echo "none lost: every run complete with $records records"
exit $failed
