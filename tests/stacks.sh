#!/bin/sh
# stacks.sh — allocation stacks end to end (`pikoc run --monitor alloc
# --stack N`) on tests/programs/stacks.c, whose nesting is known: exact
# frames, one stored row per distinct stack however often it allocates,
# depth limits, bad values, the queries by stack, threads and a tiny ring,
# the same stacks through a collector (zmq:), and heaptrack's stacks as the
# oracle.
set -u

builddir=$(cd "${top_builddir:-.}" && pwd)
srcdir=$(cd "${top_srcdir:-.}" && pwd)
pikoc="$builddir/pikoc"
prog="$builddir/tests/alloc_stacks"
source_c="$srcdir/tests/programs/stacks.c"
work=$(mktemp -d "${TMPDIR:-/tmp}/pikoc-stacks.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
cd "$work" || exit 1

. "$srcdir/tests/checks.sh"
line_of() { grep -n "$1" "$source_c" | head -1 | cut -d: -f1; }
sql() { sqlite3 "$1" "$2"; }
# Each stack as "function:line < ..." (innermost first) with a column of alloc_stacks; FRAMES,
# a condition on the frame's f.depth and the stack's a.frames, keeps some of the frames.
stacks_by() { # DB COLUMN [FRAMES]
    sql "$1" "SELECT (SELECT group_concat(frame, ' < ') FROM (SELECT s.function || ':' || f.line AS frame
        FROM alloc_frames f JOIN symbols s ON s.run_id = f.run_id AND s.id = f.symbol_id
        WHERE f.run_id = a.run_id AND f.stack_id = a.id AND ${3:-1} ORDER BY f.depth)) || ' ' || a.$2
        FROM alloc_stacks a ORDER BY 1" | tr '\n' '|'
}

site=$(line_of 'the one call site')
in_a=$(line_of "a's call of b")
in_c=$(line_of "c's call of b")
main_a=$(line_of "main's call of a")
main_c=$(line_of "main's call of c")
main_a2=$(line_of "main's second call of a")
down_b=$(line_of "down's call of b")
down_self=$(line_of "down's call of itself")
deep_20=$(line_of "deep's call of down at 20")
deep_30=$(line_of "deep's call of down at 30")
in_ending=$(line_of "ending_at's call of b")
in_further=$(line_of "further's call of ending_at")
in_framed=$(line_of "framed's call of a chain")
main_framed=$(line_of "main's call of framed")
main_deep=$(line_of "main's call of deep")

# --- bad values: exact messages, exit 2 ---------------------------------------------------------
pk run --help
check_equal "run --help: names --stack" "$status $(grep -c -- '--stack N  *with --monitor alloc' out)" "0 1"
for value in -1 x 65; do
    pk run --monitor alloc --stack "$value" -- "$prog" 1
    check_equal "--stack $value: refused" "$status $(cat err)" \
        "2 pikoc run: --stack '$value': expected a number of frames from 0 to 64"
done

# Under the sanitizers their malloc comes first: the alloc monitor cannot run (tests/alloc.sh).
if [ "${PK_SANITIZERS:-no}" = yes ]; then
    echo "# $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
fi

jemalloc=$(sed -n 's/^#define PK_JEMALLOC_PATH "\(.*\)"/\1/p' "$builddir/config.h")
LD_PRELOAD="$builddir/.libs/libpikoc-preload.so:$jemalloc" PIKOC_MONITOR=alloc \
    PIKOC_RECORD=sqlite:env.db PIKOC_STACK=65 "$prog" 1 >out 2>err
check_equal "PIKOC_STACK=65: the program runs unmonitored and says why" "$? $(cat err)" \
    "0 pikoc: monitor 'alloc': PIKOC_STACK '65': expected a number of frames from 0 to 64; the program runs without monitoring"
LD_PRELOAD="$builddir/.libs/libpikoc-preload.so:$jemalloc" PIKOC_MONITOR=alloc \
    PIKOC_RECORD=sqlite:env.db PIKOC_STACK=2 "$prog" 1 >out 2>err
check_equal "PIKOC_STACK=2: the environment mode records two frames" \
    "$? $(stacks_by env.db allocations)" "0 b:$site < a:$in_a 2|b:$site < c:$in_c 1|"

# --- exact frames: main -> a -> b -> malloc, main -> c -> b -> malloc ------------------------------
pk run -q --monitor alloc --stack 3 --record sqlite:three.db -- "$prog" 1000
check_equal "--stack 3: each stack with its frames and allocations (a's from two lines of main)" \
    "$status $(stacks_by three.db allocations)" \
    "0 b:$site < a:$in_a < main:$main_a 1000|b:$site < a:$in_a < main:$main_a2 1000|b:$site < c:$in_c < main:$main_c 1000|"
check_equal "--stack 3: 3,000 allocations of three stacks stored once each (stacks, frames, sites)" \
    "$(sql three.db "SELECT stacks, (SELECT count(*) FROM alloc_stacks), (SELECT count(*) FROM alloc_frames), sites, allocations FROM alloc_runs")" \
    "3|3|9|1|3000"
check_equal "--stack 3: per stack, frees, temporary, leaked and peak bytes" \
    "$(stacks_by three.db "frees || ' ' || temporary || ' ' || leaked_bytes || ' ' || peak_bytes")" \
    "b:$site < a:$in_a < main:$main_a 0 0 16000 16000|b:$site < a:$in_a < main:$main_a2 1000 1000 0 16|b:$site < c:$in_c < main:$main_c 0 0 32000 32000|"

pk leaks --db three.db --format csv
check_equal "leaks: by stack when the run has stacks, largest first" "$(rows | tr '\n' '|')" \
    "1000,32000,b:$site < c:$in_c < main:$main_c|1000,16000,b:$site < a:$in_a < main:$main_a|"
pk leaks --db three.db --group site --format csv
check_equal "leaks --group site: the one call site" "$(rows | cut -d, -f1-4)" "b,$site,2000,48000"
pk top --db three.db --by temporary --group stack --limit 1 --format csv
check_equal "top --by temporary --group stack: the stack of the freed blocks" "$(rows)" \
    "1000,16000,1000,0,16,b:$site < a:$in_a < main:$main_a2"
pk export --db three.db --format folded --weight leaked
check_equal "export folded --weight leaked: the stacks, outermost first" "$(tr '\n' '|' <out)" \
    "main;a;b 16000|main;c;b 32000|"
pk export --db three.db --format folded --weight alloc
check_equal "export folded --weight alloc: stacks through the same functions merge" "$(tr '\n' '|' <out)" \
    "main;a;b 32000|main;c;b 32000|"

# --- through a collector: stacks travel with the records, the same answers come out --------------
# One run into both (libzmq's own threads allocate too: both recorders see the same allocations).
ep="ipc://$work/collector"
timeout 120 "$pikoc" listen "$ep" --into zmq.db --runs 1 >listen.out 2>&1 &
collector=$!
i=0
while ! grep -q '^pikoc listen: on ' listen.out 2>/dev/null && [ $i -lt 100 ]; do
    sleep 0.05
    i=$((i + 1))
done
pk run -q --monitor alloc --stack 3 --record "zmq:$ep" --record sqlite:direct.db -- "$prog" 1000
wait $collector
check_equal "zmq: the run reached the collector" "$status $?" "0 0"
same=0
for query in "leaks --format csv" "leaks --group site --format csv" "top --by temporary --group stack --format csv" \
    "top --by bytes --group stack --format csv" "export --format folded --weight alloc" \
    "export --format folded --weight leaked"; do
    pk $query --db direct.db
    direct=$(cat out)
    pk $query --db zmq.db
    [ -n "$direct" ] && [ "$(cat out)" = "$direct" ] && same=$((same + 1))
done
check_equal "zmq: leaks, top and folded export by stack as the sqlite recorder's (6 queries)" "$same" 6
check_equal "zmq: alloc_stacks and alloc_frames rows as the sqlite recorder's" \
    "$(stacks_by zmq.db "allocations || ' ' || frees || ' ' || temporary || ' ' || leaked_bytes || ' ' || peak_bytes")
$(sql zmq.db "SELECT stacks, (SELECT count(*) FROM alloc_frames) FROM alloc_runs")" \
    "$(stacks_by direct.db "allocations || ' ' || frees || ' ' || temporary || ' ' || leaked_bytes || ' ' || peak_bytes")
$(sql direct.db "SELECT stacks, (SELECT count(*) FROM alloc_frames) FROM alloc_runs")"
check_equal "zmq: the program's three stacks among them" \
    "$(stacks_by zmq.db allocations | tr '|' '\n' | grep -c "^b:$site < [ac]:[0-9]* < main:[0-9]* 1000$")" 3

# --- depth limits --------------------------------------------------------------------------------
pk run -q --monitor alloc --stack 1 --record sqlite:one.db -- "$prog" 10
check_equal "--stack 1: the call site alone, one stack" \
    "$status $(stacks_by one.db "allocations || ' ' || leaked_bytes")" "0 b:$site 30 480|"
pk leaks --db one.db --format csv
check_equal "--stack 1: leaks by stack equal leaks by site" "$(rows)" "20,480,b:$site"
pk run -q --monitor alloc --stack 64 --record sqlite:deep.db -- "$prog" 10
check_equal "--stack 64: deeper than the program, every stack ends at _start" \
    "$(sql deep.db "SELECT DISTINCT s.function, f.depth < 63 FROM alloc_frames f JOIN symbols s ON s.run_id = f.run_id
        AND s.id = f.symbol_id WHERE f.depth = (SELECT frames - 1 FROM alloc_stacks a WHERE a.id = f.stack_id)")" "_start|1"
check_equal "--stack 64: the program's frames first" \
    "$(sql deep.db "SELECT group_concat(s.function, ';') FROM alloc_frames f JOIN symbols s ON s.run_id = f.run_id
        AND s.id = f.symbol_id WHERE f.depth < 3 GROUP BY f.stack_id ORDER BY 1" | tr '\n' '|')" \
    "b;a;main|b;a;main|b;c;main|"
# Recursion deeper than --stack: 16 frames name both depths' allocations (the walks that
# start at each depth are remembered apart), 64 tell them apart by the frames above the
# recursion. The same with frame pointers, whose frames' rules read rbp.
down_16="b:$site < down:$down_b$(printf " < down:$down_self%.0s" $(seq 14))"
for binary in "$prog" "${prog}_fp"; do
    rm -f deep16.db deep64.db
    pk run -q --monitor alloc --stack 16 --record sqlite:deep16.db -- "$binary" deep 300
    check_equal "deep recursion, --stack 16 ($(basename "$binary")): one stack of 16 frames" \
        "$status $(stacks_by deep16.db allocations)" "0 $down_16 600|"
    pk run -q --monitor alloc --stack 64 --record sqlite:deep64.db -- "$binary" deep 300
    check_equal "deep recursion, --stack 64 ($(basename "$binary")): two stacks, the same 16 frames first" \
        "$status $(stacks_by deep64.db "allocations || ' ' || frames" "f.depth < 16")" \
        "0 $down_16 300 27|$down_16 300 37|"
    check_equal "deep recursion, --stack 64 ($(basename "$binary")): the frames above the recursion" \
        "$(stacks_by deep64.db allocations "f.depth BETWEEN a.frames - 6 AND a.frames - 4")" \
        "down:$down_self < deep:$deep_20 < main:$main_deep 300|down:$down_self < deep:$deep_30 < main:$main_deep 300|"
done
# Two chains to b at the same stack depth whose frames differ in their frame pointers alone
# (and in the return addresses those lead to): told apart with walks remembered (4) as
# without (17).
for depth in 4 17; do
    rm -f framed.db
    pk run -q --monitor alloc --stack $depth --record sqlite:framed.db -- "$prog" framed 300
    check_equal "frame pointers, --stack $depth: two stacks of 300 allocations" \
        "$status $(stacks_by framed.db allocations "f.depth < 4")" \
        "0 b:$site < ending_at:$in_ending < framed:$in_framed < main:$main_framed 300|b:$site < ending_at:$in_ending < further:$in_further < framed:$in_framed 300|"
done
pk run -q --monitor alloc --record sqlite:none.db -- "$prog" 10
check_equal "no --stack: no stacks, leaks by site" \
    "$(sql none.db "SELECT stacks, (SELECT count(*) FROM alloc_stacks) FROM alloc_runs")" "0|0"
pk leaks --db none.db --group stack
check_equal "leaks --group stack without stacks: refused" "$status $(cat err)" \
    "2 pikoc leaks: --group stack: run 1 has no allocation stacks (record them with pikoc run --stack N)"
pk top --db none.db --by bytes --group stack
check_equal "top --group stack without stacks: refused" "$status $(cat err)" \
    "2 pikoc top: --group stack: run 1 has no allocation stacks (record them with pikoc run --stack N)"
pk leaks --db none.db --group frame
check_equal "leaks --group frame: refused" "$status $(cat err)" \
    "2 pikoc leaks: --group 'frame': unknown group (accepted: site, stack)"

# --- a ring of 64 slots: stacks wrap around its end; threads ------------------------------------
PIKOC_RING_EVENTS=64 pk run -q --monitor alloc --stack 8 --record sqlite:small.db -- "$prog" 3000
check_equal "a 64-slot ring: every allocation with its stack" \
    "$status $(sql small.db "SELECT allocations, unknown_frees, (SELECT sum(allocations) FROM alloc_stacks), stacks FROM alloc_runs")" \
    "0 9000|0|9000|3"
allocs="$builddir/tests/alloc_allocs"
pk run -q --monitor alloc --stack 4 --record sqlite:threads.db -- "$allocs" threads 4 2000
check_equal "threads: every allocation under a stack, none freed unknown" \
    "$status $(sql threads.db "SELECT unknown_frees, allocations = (SELECT sum(allocations) FROM alloc_stacks),
        leaked_bytes = (SELECT sum(leaked_bytes) FROM alloc_stacks) FROM alloc_runs")" "0 0|1|1"

# fork: the child's run gets its stacks too (each run starts a new generation of the
# threads' stack tables, so the child's thread sends again what its parent sent).
pk run -q --monitor alloc --stack 4 --record sqlite:fork.db -- "$allocs" fork
check_equal "fork: both runs with every allocation under a stack" \
    "$status $(sql fork.db "SELECT group_concat(r.run_id || ':' || (r.stacks > 0) || ':' ||
        (r.allocations = (SELECT sum(allocations) FROM alloc_stacks s WHERE s.run_id = r.run_id)), ' ')
        FROM alloc_runs r")" "0 1:1:1 2:1:1"

# Every allocation function once (tests/programs/allocs.c): with a stack the alignment
# travels in another field; usable sizes (jemalloc's, from size and alignment) show it.
pk run -q --sample-interval 0 --monitor alloc --stack 4 --record csv:each.csv --record sqlite:each.db -- "$allocs" each
check_equal "each function: usable sizes as without --stack, aligned ones included" \
    "$status $(tr -d '\r' <each.csv | awk -F, 'NR > 1 && $2 != "free" { printf "%s:%s ", $25, $26 }')" \
    "0 100:112 5000:5120 100:112 50:64 300:320 200:224 1000:1024 256:256 64:64 10:4096 10:4096 40:48 777:896 777:896 777:896 33:48 "
check_equal "each function: the same totals as without --stack, every allocation under a stack" \
    "$(sql each.db "SELECT allocations, reallocs, frees, unknown_frees, leaked_bytes, peak_bytes,
        (SELECT sum(allocations) FROM alloc_stacks), (SELECT sum(leaked_bytes) FROM alloc_stacks) FROM alloc_runs")" \
    "16|1|11|0|2364|5100|16|2364"

# --- oracle: heaptrack's stacks for the same program ---------------------------------------------
# heaptrack_print's flame graph: "main (stacks.c);a (stacks.c);b (stacks.c); 1600",
# from main on; ours from the same stacks, merged by function names as its lines are.
heaptrack_stacks() { # COST ROUNDS
    rm -f ht.zst
    heaptrack -o "$work/ht" "$prog" "$2" >/dev/null 2>&1
    heaptrack_print -f ht.zst -F ht.txt --flamegraph-cost-type "$1" >/dev/null 2>&1
    grep '^main (stacks\.c)' ht.txt | sed 's/ (stacks\.c)//g; s/; / /' |
        awk '{ s[$1] += $2 } END { for (k in s) if (s[k] > 0) print k, s[k] }' | sort | tr '\n' '|'
}
if command -v heaptrack >/dev/null && command -v heaptrack_print >/dev/null; then
    pk run -q --monitor alloc --stack 16 --record sqlite:oracle.db -- "$prog" 500
    for pair in leaked:leaked_bytes allocations:allocations temporary:temporary; do
        cost=${pair%%:*} column=${pair#*:}
        check_equal "heaptrack: $cost per stack" \
            "$(sql oracle.db "SELECT (SELECT group_concat(function, ';') FROM (SELECT s.function FROM alloc_frames f
                JOIN symbols s ON s.run_id = f.run_id AND s.id = f.symbol_id
                WHERE f.run_id = a.run_id AND f.stack_id = a.id AND f.depth < 3 ORDER BY f.depth DESC)) AS stack,
                sum(a.$column) FROM alloc_stacks a GROUP BY stack HAVING sum(a.$column) > 0 ORDER BY stack" |
                tr '|' ' ' | tr '\n' '|')" \
            "$(heaptrack_stacks "$cost" 500)"
    done
    check_equal "heaptrack: the leaking stacks themselves" "$(heaptrack_stacks leaked 500)" \
        "main;a;b 8000|main;c;b 16000|"
else
    not_ok "heaptrack is not installed (scripts/deps.sh installs heaptrack)"
fi

echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]
