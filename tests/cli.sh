#!/bin/sh
# cli.sh — the pikoc command end to end: `pikoc run` on instrumented programs
# that are not linked with libpikoc, then every query command against exact
# calls and sequences, the sqlite3 shell's own SELECTs, an independent
# decoder of the event batches (docs/schema.md) and python3's JSON parser;
# exit statuses; bad input (one line, status 2, the database unchanged).
set -u

builddir=$(cd "${top_builddir:-.}" && pwd)
srcdir=$(cd "${top_srcdir:-.}" && pwd)
expected="$srcdir/tests/expected"
pikoc="$builddir/pikoc"
work=$(mktemp -d "${TMPDIR:-/tmp}/pikoc-cli.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
cd "$work" || exit 1

. "$srcdir/tests/checks.sh"

# pk ARGS...: runs pikoc in $work; stdout in out, stderr in err, status in $status.
prog() { echo "$builddir/tests/cli_$1"; }
# The CSV output without its CR line ends, without the header.
sanitizers=${PK_SANITIZERS:-no}
for tool in sqlite3 python3; do
    command -v $tool >/dev/null || not_ok "$tool is not installed (scripts/deps.sh installs it)"
done

# --- the command itself ------------------------------------------------------------
pk --version
check_equal "--version" "$status $(cat out)" "0 pikoc 0.1.0"
pk --help
wide=$(awk 'length > 80' out | wc -l)
check_equal "--help lists every command" "$status $(awk '/^commands:/ { on = 1; next } on && NF == 0 { on = 0 } on { printf "%s ", $1 }' out)" \
    "0 run runs top tree events spikes diff export sql spans leaks peak histogram plot flame report listen "
for cmd in run runs top tree events spikes diff export sql spans leaks peak histogram plot flame report listen; do
    pk "$cmd" --help
    check_equal "pikoc $cmd --help" "$status $(head -1 out | cut -d' ' -f1-3)" "0 usage: pikoc $cmd"
    cp out help.txt
    pk help "$cmd"
    if cmp -s out help.txt; then ok "pikoc help $cmd"; else not_ok "pikoc help $cmd"; fi
    wide=$((wide + $(awk 'length > 80' out | wc -l)))
done
check_equal "every --help fits 80 columns" "$wide" 0
pk frobnicate
check_equal "unknown command" "$status $(cat err)" "2 pikoc: unknown command 'frobnicate' (see pikoc --help)"

# --- pikoc run: nested.c's fixed call graph, into ./pikoc.db by default ------------------
pk run -- "$(prog nested)"
check_equal "run: the program's status and output" "$status $(cat out)" "0 total 6"
check_equal "run: summary" "$(grep '^pikoc run:' err)" "pikoc run: run 1 complete: 18 events, 9 calls -> sqlite:pikoc.db
pikoc run: next: pikoc top (also: tree, events, spikes)"
check_equal "run: default database in the current directory" "$(ls pikoc.db)" "pikoc.db"

pk events --format csv
tr -d '\r' <out | awk -F, 'NR > 1 { print $2, $3, $4 }' >sequence.txt
check_same "events: the exact sequence (type function depth)" sequence.txt "$expected/nested.txt"
check_equal "events: header" "$(head -1 out | tr -d '\r')" \
    "index,type,function,depth,thread,time_ns,duration_ns,rss,vms,allocated,freed,alloc_delta,free_delta,caller,caller_line,caller_file,line,file,label,total_ns"
pk events --function b --type call --format csv
check_equal "events --function b --type call" "$(rows | cut -d, -f2,3 | sort | uniq -c | tr -s ' ')" " 4 call,b"
pk events --function '[ac]' --type return --format csv
check_equal "events --function glob (c returns inside a)" "$(rows | cut -d, -f3 | tr '\n' ' ')" "c a c a "
thread=$(rows | head -1 | cut -d, -f5)
pk events --thread "$thread" --format csv
check_equal "events --thread (the main thread)" "$(rows | wc -l)" 18
pk events --thread 1 --format json
check_equal "events --thread with no events" "$status $(cat out)" "0 []"
pk events --limit 2 --format csv
check_equal "events --limit" "$(rows | cut -d, -f2,3 | tr '\n' ' ')" "call,main call,a "

pk top --by calls --format csv
check_equal "top --by calls" "$(rows | cut -d, -f1,2 | tr '\n' ' ')" "b,4 a,2 c,2 main,1 "
pk top --by calls --limit 2 --format csv
check_equal "top --limit" "$(rows | cut -d, -f1 | tr '\n' ' ')" "b a "
pk top --format json
python3 - out <<'EOF' >check.txt
import json, sys
rows = json.load(open(sys.argv[1]))
need = ["function", "file", "line", "calls", "total_ns", "self_ns", "alloc_bytes", "free_bytes"]
print(all(all(k in r for k in need) for r in rows),
      sorted((r["function"], r["calls"], r["file"].endswith("nested.c"), r["line"]) for r in rows))
EOF
check_equal "top --format json: fields and values" "$(cat check.txt)" \
    "True [('a', 2, True, 14), ('b', 4, True, 4), ('c', 2, True, 9), ('main', 1, True, 19)]"
pk top --by total --format csv
check_equal "top --by total: main first" "$(rows | head -1 | cut -d, -f1)" main
pk top
check_equal "top: an aligned table (header, rule, times with their unit)" \
    "$(awk 'NR == 1 { $1 = $1; print } NR == 2 { print ($0 ~ /^-+$/) }
        NR == 3 { print $1, ($4 ~ /^(ns|us|ms|s)$/) }' out)" \
    "function calls total self min max alloc free rss_growth file line
1
main 1"

# The same aggregates through the sqlite3 shell, and the same events decoded
# independently from the documented batch encoding.
pk top --by calls --limit 0 --format csv
rows | cut -d, -f1,2,3,4 | sort >ours.txt
sqlite3 -csv pikoc.db "SELECT s.function, f.calls, f.total_ns, f.self_ns FROM functions f
    JOIN symbols s ON s.run_id = f.run_id AND s.id = f.symbol_id WHERE f.run_id = 1" | tr -d '\r' | sort >theirs.txt
check_same "top agrees with sqlite3's SELECT on functions" ours.txt theirs.txt

cat >decode.py <<'EOF'
# decode.py DB RUN: the run's events decoded from event_batches as
# docs/schema.md describes them: "index,type,function,depth,thread,time_ns,duration_ns".
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
run = int(sys.argv[2])
names = dict(db.execute("SELECT id, function FROM symbols WHERE run_id = ?", (run,)))
MASK = (1 << 64) - 1
RETURN, MEMORY, ALLOC, SAME_THREAD, NEXT_INDEX, SAME_MEMORY, SAME_ALLOC, NO_DELTAS = (1 << b for b in range(8))
for (blob, count) in db.execute("SELECT data, count FROM event_batches WHERE run_id = ? ORDER BY id", (run,)):
    assert blob[0] == 2, "encoding version"
    pos = 1
    def uvarint():
        global pos
        shift = value = 0
        while True:
            byte = blob[pos]; pos += 1
            value |= (byte & 0x7f) << shift; shift += 7
            if byte < 0x80:
                return value
    def delta(previous):
        u = uvarint()
        return (previous + ((u >> 1) ^ -(u & 1))) & MASK
    index = thread = time = rss = vms = allocated = freed = 0
    calls = {}  # (thread, depth) -> (function, caller, caller_line, time) of this blob's last call there
    for n in range(count):
        head = blob[pos]; pos += 1
        assert n > 0 or not head & (SAME_THREAD | NEXT_INDEX), "first event of a blob"
        index = index + 1 if head & NEXT_INDEX else delta(index)
        if not head & SAME_THREAD:
            thread = uvarint()
        depth = uvarint()
        same = 0
        if head & RETURN:
            depth, same = depth >> 2, depth & 3
        if same & 1:
            function, caller, caller_line, call_time = calls[(thread, depth)]
        else:
            assert not same & 2, "implied duration without the call"
            function, caller, caller_line = uvarint(), uvarint(), uvarint()
        assert function in names and caller in names, "symbol ids"
        time = delta(time)
        if not head & RETURN:
            calls[(thread, depth)] = (function, caller, caller_line, time)
            duration = ""
        else:
            duration = time - call_time if same & 2 else uvarint()
        if head & MEMORY and not head & SAME_MEMORY:
            rss, vms = delta(rss), delta(vms)
        if head & ALLOC and not head & SAME_ALLOC:
            allocated, freed = delta(allocated), delta(freed)
        if head & ALLOC and head & RETURN and not head & NO_DELTAS:
            uvarint(); uvarint()
        print("%d,%s,%s,%d,%d,%d,%s" % (index, "return" if head & RETURN else "call", names[function],
                                        depth, thread, time, duration))
    assert pos == len(blob), "bytes after the last event"
EOF
# decoded NAME DB RUN: our events against the independent decoder.
decoded() {
    python3 decode.py "$2" "$3" >theirs.txt
    pk events --db "$2" --run "$3" --format csv
    rows | cut -d, -f1-7 >ours.txt
    check_same "$1: pikoc events equals the batches decoded independently" ours.txt theirs.txt
}
decoded "nested" pikoc.db 1
# Aggregates from the decoded events: nothing in nested.c recurses, so a
# function's total is the sum of its calls' durations, and a's self time is
# that minus its callees' (every call at depth 2).
python3 decode.py pikoc.db 1 | awk -F, '
    $2 == "call" { calls[$3]++ }
    $2 == "return" { total[$3] += $7; if ($4 == 2) below_a += $7 }
    END { for (f in calls) print f "," calls[f] "," total[f] "," (f == "a" ? total[f] - below_a : "") }' |
    sort >from-events.txt
sqlite3 -csv pikoc.db "SELECT s.function, f.calls, f.total_ns, CASE s.function WHEN 'a' THEN f.self_ns ELSE '' END
    FROM functions f JOIN symbols s ON s.run_id = f.run_id AND s.id = f.symbol_id WHERE f.run_id = 1" |
    tr -d '\r' | sed 's/,""$/,/' | sort >from-tables.txt
check_same "aggregates (calls, total, self) equal the sums over the events" from-tables.txt from-events.txt
# The same sums by the sqlite3 shell's own SELECT on the events.
events_sql() { sqlite3 -bail -csv -cmd ".load $builddir/.libs/pikoc_sqlite" pikoc.db "$@" | tr -d '\r'; }
events_sql "SELECT function, sum(type = 'call'), sum(coalesce(duration_ns, 0)) FROM pikoc_events
    WHERE run_id = 1 GROUP BY function ORDER BY function" >theirs.txt
pk top --limit 0 --format csv
rows | cut -d, -f1-3 | sort >ours.txt
check_same "top (calls, total) equals sqlite3's SELECT over pikoc_events" ours.txt theirs.txt

# --- tree -----------------------------------------------------------------------------------
# "path calls" for each node, from id/parent_id, sorted.
tree_paths() {
    tr -d '\r' <out | awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        { id = $col["id"]; path[id] = ($col["parent_id"] == "" ? "" : path[$col["parent_id"]] ";") $col["function"]
          print path[id], $col["calls"] }' | sort
}
pk tree --format csv
check_equal "tree: every call path with its calls" "$(tree_paths | tr '\n' '/')" \
    "main 1/main;a 2/main;a;b 2/main;a;c 2/main;a;c;b 2/"
check_equal "tree: the root is 100 percent" "$(tr -d '\r' <out | awk -F, 'NR == 2 { print $8, $3 }')" "main 100"
pk tree --depth 1 --format csv
check_equal "tree --depth 1" "$(tree_paths | tr '\n' '/')" "main 1/main;a 2/"
pk tree --min-percent 100 --format csv
check_equal "tree --min-percent 100" "$(tree_paths | tr '\n' '/')" "main 1/"
pk tree
# (Siblings come heaviest first, which timing decides: compare the indented names sorted.)
check_equal "tree: indented table" "$(awk 'NR == 1 { at = index($0, "function") }
    NR > 2 { s = substr($0, at); sub(/ +[^ ]+ +[0-9]+$/, "", s); print s }' out | sort | tr '\n' '/')" \
    "      b/    b/    c/  a/main/"
sqlite3 -csv pikoc.db "SELECT sum(total_ns) FROM call_paths WHERE run_id = 1 AND parent_id IS NULL" >root.txt
pk export --format folded
check_equal "export folded: self times add up to the roots' total" \
    "$(awk '{ s += $NF } END { print s }' out)" "$(tr -d '\r' <root.txt)"
check_equal "export folded: stacks" "$(awk '{ print $1 }' out | sort | tr '\n' ' ')" \
    "main main;a main;a;b main;a;c main;a;c;b "

# --- exports --------------------------------------------------------------------------------
pk events --format csv
cp out events.csv
pk export --format csv -o export.csv
if [ "$status" -eq 0 ] && cmp -s export.csv events.csv; then ok "export csv: the events' CSV"; else not_ok "export csv: the events' CSV"; fi

cat >chrome.py <<'EOF'
# chrome.py FILE: parses a Chrome trace and checks that slices nest per
# thread (B and E in time order, matching names); prints a summary.
import json, sys
trace = json.load(open(sys.argv[1]))
events = trace["traceEvents"]
stacks, slices, problems = {}, 0, []
for e in sorted((e for e in events if e["ph"] in "BE"), key=lambda e: e["ts"]):
    stack = stacks.setdefault(e["tid"], [])
    if e["ph"] == "B":
        stack.append(e["name"]); slices += 1
    elif not stack or stack.pop() != e["name"]:
        problems.append(e)
problems += [t for t, s in stacks.items() if s]
names = sorted(e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name")
counters = sorted({e["name"] for e in events if e["ph"] == "C"})
print("slices=%d nested=%s threads=%s process=%s counters=%s" % (
    slices, not problems, ",".join(n if n == "main" else "worker" for n in names),
    any(e["ph"] == "M" and e["name"] == "process_name" for e in events), ",".join(counters)))
EOF
pk export -o trace.json
heap=",heap"
[ "$sanitizers" = yes ] && heap=""
check_equal "export chrome: parses, slices nest, names and counter tracks" \
    "$status $(python3 chrome.py trace.json)" "0 slices=9 nested=True threads=main process=True counters=RSS,VMS$heap"

# --- recursion: counts, depths, recursion counted once -----------------------------------------
pk run --monitor function -q -- "$(prog recursion)" 15
check_equal "run -q: no summary" "$status $(cat err)" "0 "
pk top --by calls --format csv
check_equal "fib(15): calls" "$(rows | cut -d, -f1,2 | tr '\n' ' ')" "fib,1973 main,1 "
pk tree --format csv
check_equal "fib(15): 16 call paths, the deepest at depth 15" \
    "$(tr -d '\r' <out | awk -F, 'NR > 1 { n++; if ($11 > d) d = $11 } END { print n, d }')" "16 15"
# The sqlite3 shell's own SELECTs on the events (through the pikoc_sqlite
# extension): fib's calls, and its total as the sum over its outermost calls.
events_sql "SELECT count(*) FROM pikoc_events WHERE run_id = 2 AND type = 'call' AND function = 'fib'
    UNION ALL SELECT sum(duration_ns) FROM pikoc_events WHERE run_id = 2 AND type = 'return' AND function = 'fib' AND depth = 1" >theirs.txt
pk top --by calls --format csv
rows | awk -F, '$1 == "fib" { print $2; print $3 }' >ours.txt
check_same "fib(15): calls and total (recursion once) equal sqlite3's SELECTs on the events" ours.txt theirs.txt
check_equal "fib(15): fib's total counts recursion once (= its outermost path's total)" \
    "$(sqlite3 pikoc.db "SELECT f.total_ns = c.total_ns FROM functions f JOIN symbols s ON s.run_id = f.run_id AND s.id = f.symbol_id
        JOIN call_paths c ON c.run_id = f.run_id AND c.symbol_id = f.symbol_id AND c.depth = 1 WHERE f.run_id = 2 AND s.function = 'fib'")" 1
decoded "fib(15)" pikoc.db 2

# --- threads: slices per thread --------------------------------------------------------------------
pk run --monitor function -- "$(prog threads)" 4 1000
pk top --by calls --format csv
check_equal "4 threads x 1000: calls" "$(rows | cut -d, -f1,2 | tr '\n' ' ')" "step,4000 work,4000 body,4 main,1 "
pk export --format chrome -o threads.json
check_equal "threads: chrome slices nest on each thread" "$(python3 chrome.py threads.json)" \
    "slices=8005 nested=True threads=main,worker,worker,worker,worker process=True counters="
decoded "4 threads" pikoc.db 3

# --- memory: spikes, bytes -------------------------------------------------------------------------------
pk run -- "$(prog grow)" 3
check_equal "grow: runs" "$status $(cat out)" "0 grew 3 x 4194304 bytes"
pk spikes --threshold 1MiB --format csv
# (Under AddressSanitizer, free() can grow VMS too: only RSS jumps are counted here.)
check_equal "spikes: each 4 MiB block, seen when grow returns, in grow" \
    "$(rows | awk -F, '$4 >= 4194304 { print $8, $9, $10, $12 }' | tr '\n' '/')" \
    "return grow grow 12/return grow grow 12/return grow grow 12/"
pk spikes --threshold 64MiB --format json
check_equal "spikes above a larger threshold: none" "$status $(cat out)" "0 []"
# The threshold is the smallest jump shown: the largest jump (RSS or VMS) at it, nothing above it.
pk spikes --threshold 0 --format csv
jump=$(rows | awk -F, '{ for (i = 4; i <= 5; i++) if ($i > m) m = $i } END { print m + 0 }')
pk spikes --threshold "$jump" --format csv
at=$(rows | awk -F, -v j="$jump" '$4 == j || $5 == j' | wc -l)
pk spikes --threshold $((jump + 1)) --format csv
check_equal "spikes: a jump of exactly the threshold is shown, none over the largest ($jump bytes)" \
    "$([ "$at" -gt 0 ] && echo shown) $(rows | wc -l)" "shown 0"
if [ "$sanitizers" = yes ]; then
    echo "# sanitizer build: malloc is AddressSanitizer's, so no allocation counters"
else
    pk top --by alloc --format csv
    check_equal "grow: bytes allocated and freed (alloc_bytes, free_bytes)" \
        "$(rows | awk -F, '$1 == "grow" || $1 == "shrink" { print $1, $7, $8 }' | tr '\n' '/')" \
        "grow 12582912 0/shrink 0 12582912/"
    pk export --format folded --weight alloc
    check_equal "export folded --weight alloc" "$(grep '^main;grow ' out)" "main;grow 12582912"
fi
pk run --monitor function -q -- "$(prog grow)" 1
pk spikes
check_equal "spikes without memory samples" "$status $(cat err)" \
    "2 pikoc spikes: run 5 has no RSS/VMS samples (monitor function): record it with --monitor function-memory"

# --- pictures: plot, flame, report (the HTML in a browser: tests/report_chromium.sh) ------------------
well_formed() { # name file
    if xmllint --noout "$2" 2>"$work/xml"; then ok "$1"; else not_ok "$1" && cat "$work/xml"; fi
}
command -v xmllint >/dev/null || not_ok "xmllint is not installed (scripts/deps.sh installs libxml2-utils)"
pk plot --run 4 -o grow.svg
check_equal "plot: quiet, status 0" "$status $(cat out err)" "0 "
well_formed "plot: well-formed SVG" grow.svg
check_equal "plot: the three 4 MiB jumps marked in grow, at its line" \
    "$(grep -c '>[1-5]\. +[0-9.]* MiB in grow (grow.c:12) at [0-9.]* [mu]*s</text>' grow.svg)" 3
# (AddressSanitizer's malloc leaves no allocation counters: no live heap line.)
heap_line="live heap,"
[ "$sanitizers" = yes ] && heap_line=""
check_equal "plot: the legend" "$(grep -o 'class="legend">[^<]*' grow.svg | cut -d'>' -f2 | tr '\n' ,)" \
    "RSS,VMS,$heap_line"
pk plot --run 4 --x index -o -
check_equal "plot --x index -o -: the SVG on stdout" "$status $(head -c 4 out) $(grep -c '>event index</text>' out)" \
    "0 <svg 1"
# The flame's frames are the tree's call paths: depth, name, inclusive time and calls.
pk tree --run 1 --format csv
rows | awk -F, '{ print $11 + 1, $8, $2, $1 }' | sort >tree-paths.txt
pk flame ./pikoc.db --run 1 --width 100000 -o nested.svg
well_formed "flame: well-formed SVG" nested.svg
sed -n 's/.*data-d="\([0-9]*\)" data-n="\([a-z]*\)"><title>[a-z]* ([^)]*): \([0-9]*\) ns ([^)]*), [0-9.]*%, \([0-9]*\) calls*<.*/\1 \2 \3 \4/p' \
    nested.svg | sort >flame-paths.txt
check_same "flame: one frame per call path, with the tree's time and calls" flame-paths.txt tree-paths.txt
check_equal "flame: the whole, 100%" "$(grep -c "<title>all: $(awk 'NR == 1 { print $3 }' tree-paths.txt) ns (.*), 100.00%</title>" nested.svg)" 1
if [ "$sanitizers" = yes ]; then
    pk flame --run 4 --weight alloc -o alloc.svg
    check_equal "flame --weight alloc without counters (AddressSanitizer's malloc)" "$status $(ls alloc.svg 2>&1 >/dev/null | wc -l)" "2 1"
else
    pk flame --run 4 --weight alloc -o alloc.svg
    check_equal "flame --weight alloc: grow's 12 MiB" \
        "$status $(grep -o '<title>grow ([^)]*grow.c:12): [^<]*' alloc.svg | sed 's/.*: //; s/, [0-9.]*%//')" \
        "0 12582912 bytes (12.0 MiB), 3 calls"
fi
# With allocation records (not under the sanitizers: their malloc is the one called).
if [ "$sanitizers" != yes ]; then
    pk run -q --record sqlite:alloc.db --monitor function-memory,alloc -- "$builddir/tests/alloc_allocs_traced" each
    frame_of() { grep -o "<title>$1 ([^)]*allocs.c:[0-9]*): [^<]*" "$2" | sed 's/.*: //'; }
    pk flame alloc.db --weight leaked -o leaked.svg
    check_equal "flame --weight leaked: each's 3 x 777 + 33 bytes never freed" \
        "$status $(frame_of each leaked.svg)" "0 2364 bytes (2.3 KiB), 100.00%, 1 call"
    pk flame alloc.db --weight peak -o peak.svg
    check_equal "flame --weight peak: each held 5000 + 100 bytes at the peak" \
        "$status $(frame_of each peak.svg)" "0 5100 bytes (5.0 KiB), 100.00%, 1 call"
    # An uninstrumented program: no call paths, the allocating functions are the frames.
    pk run -q --record sqlite:alloc.db --monitor alloc -- "$builddir/tests/alloc_allocs" each
    pk flame alloc.db --run 2 --weight leaked -o -
    check_equal "flame --weight leaked without recorded calls: the allocating function" \
        "$status $(grep -o '<title>each ([^)]*allocs.c): [^<]*' out | sed 's/.*: //')" \
        "0 2364 bytes (2.3 KiB), 100.00%, its allocations"
    # Whatever reads calls says so of such a run, rather than show none (or all as gone).
    no_calls() { # COMMAND ARGS...
        pk "$@"
        check_equal "$* (run 2 of the alloc monitor alone): no calls, and where to look" "$status $(cat err)" \
            "2 pikoc $1: run 2 recorded allocations only (monitor alloc), no calls: see its sites with pikoc top --by bytes or pikoc leaks"
    }
    echo kept >calls.txt
    for cmd in top tree events export; do
        no_calls "$cmd" --db alloc.db --run 2
    done
    no_calls export --db alloc.db --run 2 --format csv
    no_calls export --db alloc.db --run 2 --format folded -o calls.txt
    no_calls flame alloc.db --run 2 --weight time -o calls.txt
    no_calls diff alloc.db:1 alloc.db:2
    no_calls report alloc.db --run 1 --vs 2 -o calls.txt
    check_equal "the -o file of those refused is left as it was" "$(cat calls.txt) $(ls calls.txt.* 2>/dev/null | wc -l)" "kept 0"
    pk top --db alloc.db --run 2 --by bytes --format csv
    check_equal "top --by bytes of that run: its sites" "$status $(tr -d '\r' <out | awk -F, 'NR == 2 { print $1 }')" "0 each"
    pk plot alloc.db --run 1 -o alloc.svg
    check_equal "plot: the heap peak of the allocation records" \
        "$status $(grep -o 'class="peak">heap peak: [^<]* at' alloc.svg)" \
        '0 class="peak">heap peak: 5.0 KiB (5100 bytes requested, live blocks) at'
    allocs_line() { grep -n "$1" "$srcdir/tests/programs/allocs.c" | cut -d: -f1; }
    pk report alloc.db --run 1 -o alloc.html
    check_equal "report: the leaks by call site and the peak" \
        "$status $(sed -n '/<section id="leaks">/,/<\/section>/p' alloc.html | grep -c "<tr><td>each</td><td class=\"n\" data-v=\"\($(allocs_line 'leaked\[i\] = malloc(777)')\|$(allocs_line 'leaked\[0\] = calloc(1, 33)')\)\"") $(grep -o 'The heap peaked at [^,]*' alloc.html)" \
        "0 2 The heap peaked at 5.0 KiB (5100 bytes)"
fi
pk report --run 4 --vs 1 -o run4.html
check_equal "report: written, quiet" "$status $(cat out err)" "0 "
check_equal "report: the run, its sections, the comparison" \
    "$(grep -o '<section id="[a-z-]*">' run4.html | cut -d'"' -f2 | tr '\n' ' ')" \
    "summary timeline time allocations functions paths sites leaks peak diff "
check_equal "report: no network (only the SVG namespace names a URL)" \
    "$(grep -o 'https*://[^"]*' run4.html | sort -u)" "http://www.w3.org/2000/svg"

# --- text that is not UTF-8, names cut to fit: JSON, SVG and HTML stay valid UTF-8 ---------------
# An argument in Latin-1 (caf\351); main named with 40 é, b with 150 (300 bytes), c with a Latin-1 byte.
pk run -q --record sqlite:utf8.db -- "$(prog nested)" "$(printf 'caf\351')"
eacute() { python3 -c "import sys; sys.stdout.write('é' * int(sys.argv[1]))" "$1"; }
sqlite3 utf8.db "UPDATE symbols SET function = '$(eacute 40)' WHERE function = 'main';
    UPDATE symbols SET function = '$(eacute 150)' WHERE function = 'b';
    UPDATE symbols SET function = CAST(X'63E9' AS TEXT) WHERE function = 'c';"
cat >utf8.py <<'PY'
import json, sys, xml.dom.minidom
def text(path):  # strict: a byte that is not UTF-8 raises
    return open(path, encoding="utf-8").read()
kind, path = sys.argv[1], sys.argv[2]
if kind == "json":
    print(json.loads(text(path))[0]["command_line"].split(" ")[-1])
elif kind == "chrome":  # each slice's name: its first character and its length
    events = json.loads(text(path))["traceEvents"]
    print(" ".join(sorted({"%s*%d" % (e["name"][0], len(e["name"])) for e in events if e["ph"] == "B"})))
elif kind == "svg":  # each label: nothing, the whole name, or its first characters and ".."
    for g in xml.dom.minidom.parseString(text(path)).getElementsByTagName("g"):
        name, label = g.getAttribute("data-n"), g.getElementsByTagName("text")[0].firstChild
        label = label.data if label else ""
        if label not in ("", name):
            assert label.endswith("..") and name.startswith(label[:-2]), (name, label)
    print("ok")
else:
    print(text(path).count("caf\ufffd"))
PY
pk runs --db utf8.db
check_equal "runs (the table): a Latin-1 byte is \\xe9" "$status $(grep -o 'caf[^ ]*' out)" '0 caf\xe9'
pk top --db utf8.db --format csv
check_equal "top --format csv: names as they are, byte for byte" "$status $(grep -c "^c$(printf '\351')," out)" "0 1"
pk runs --db utf8.db --format json
check_equal "runs --format json: a Latin-1 byte is U+FFFD" "$(python3 utf8.py json out)" "caf$(printf '\357\277\275')"
pk export --db utf8.db -o utf8.json
check_equal "export chrome: names not UTF-8, long names" "$status $(python3 utf8.py chrome utf8.json)" \
    "0 a*1 c*2 é*150 é*40"
shown=
for width in 200 380 800 1200 100000; do
    pk flame utf8.db --width $width -o utf8-$width.svg
    well_formed "flame --width $width: well-formed with names not ASCII" utf8-$width.svg
    shown="$shown $(python3 utf8.py svg utf8-$width.svg)"
done
check_equal "flame: labels parse, each cut between characters" "$shown" " ok ok ok ok ok"
check_equal "flame --width 200: main's 40 é cut to 22 and .. in its 180 px, its name whole" \
    "$(sed -n "/data-d=\"1\" data-n=\"$(eacute 40)\"/{n;s/.*\">\(.*\)<\/text>/\1/p}" utf8-200.svg)" "$(eacute 22).."
pk report utf8.db -o utf8.html
check_equal "report: valid UTF-8, the Latin-1 byte a U+FFFD" "$status $(python3 utf8.py html utf8.html)" "0 2"

# --- diff ----------------------------------------------------------------------------------------
pk run -q --record sqlite:a.db -- "$(prog recursion)" 10
pk run -q --record sqlite:b.db -- "$(prog recursion)" 12
pk diff a.db b.db:1 --by calls --format csv
check_equal "diff across files: fib(10) -> fib(12)" "$(rows | cut -d, -f1-4 | tr '\n' ' ')" "fib,177,465,288 main,1,1,0 "
pk diff 1 3 --by calls --limit 0 --format csv
check_equal "diff 1 3: a function one run lacks counts as never called there (main is another file)" \
    "$(rows | cut -d, -f1-4 | tr '\n' ' ')" "step,0,4000,4000 work,0,4000,4000 b,4,0,-4 body,0,4,4 a,2,0,-2 c,2,0,-2 main,1,0,-1 main,0,1,1 "
pk diff 1 b.db --format json
check_equal "diff --format json: stable fields" "$(python3 -c 'import json,sys; print(sorted(json.load(open(sys.argv[1]))[0]))' out)" \
    "['alloc_bytes_a', 'alloc_bytes_b', 'alloc_bytes_delta', 'calls_a', 'calls_b', 'calls_delta', 'file', 'free_bytes_a', 'free_bytes_b', 'free_bytes_delta', 'function', 'self_ns_a', 'self_ns_b', 'self_ns_delta', 'total_ns_a', 'total_ns_b', 'total_ns_delta']"

# --- runs and sql ------------------------------------------------------------------------------------
pk runs --format csv
check_equal "runs" "$(rows | cut -d, -f1,3 | tr '\n' ' ')" "1,complete 2,complete 3,complete 4,complete 5,complete "
pk sql "SELECT count(*) AS n FROM pikoc_events WHERE run_id = 1; SELECT function FROM symbols WHERE run_id = 1 AND function = 'c' AND line > 0" --format json
check_equal "sql: reads, events included, several statements" "$status $(tr -d '\n' <out)" '0 [  {"n": 18}][  {"function": "c"}]'

pk sql "SELECT 1 AS \"caf$(printf '\351\033')[2J\""
check_equal "sql: a column name's bytes that are not UTF-8 or are control characters, escaped in the table" \
    "$status $(head -n 1 out)" '0 caf\xe9\x1b[2J'
# The one formatter: RFC 4180 quoting, JSON escapes, NULL, numbers, a real.
formatter_sql="SELECT 'a,b' AS comma, 'say \"hi\"' AS quote, 'one' || char(10) || 'two' AS newline,
    NULL AS missing, -42 AS number, 1.5 AS real, char(9) || '\\' AS escapes"
pk sql --format csv "$formatter_sql"
check_equal "csv: RFC 4180 (CRLF, quotes doubled, fields with , \" or a newline quoted, NULL empty)" \
    "$(od -An -c out | tr -s ' ' | tr -d '\n')" \
    "$(printf 'comma,quote,newline,missing,number,real,escapes\r\n"a,b","say ""hi""","one\ntwo",,-42,1.5,\t\\\r\n' | od -An -c | tr -s ' ' | tr -d '\n')"
pk sql --format json "$formatter_sql"
check_equal "json: parses back to the same values" \
    "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])))' out)" \
    "[{'comma': 'a,b', 'quote': 'say \"hi\"', 'newline': 'one\\ntwo', 'missing': None, 'number': -42, 'real': 1.5, 'escapes': '\\t\\\\'}]"
pk sql "$formatter_sql"
check_equal "table: control characters escaped, NULL as -, numbers formatted" \
    "$(sed -n 1p out | tr -s ' ')|$(sed -n 3p out | tr -s ' ')" \
    "comma quote newline missing number real escapes|a,b say \"hi\" one\\ntwo - -42 1.50 \\t\\"

infinities="SELECT 1.5e308 * 10 AS big, -1.5e308 * 10 AS small"
pk sql "$infinities"
check_equal "table: infinities are not the missing value's -" "$(sed -n 3p out | tr -s ' ')" "inf -inf"
pk sql --format csv "$infinities"
check_equal "csv: infinities" "$(sed -n 2p out | tr -d '\r')" "inf,-inf"
pk sql --format json "$infinities"
check_equal "json: infinities are null (JSON has no word for them)" "$(tr -d ' \n' <out)" '[{"big":null,"small":null}]'

# --- exit statuses and how runs end ------------------------------------------------------------------
pk run -- "$(prog exits)" status 7
check_equal "exit status is the program's" "$status" 7
# Every call before the abort is recorded: main, work three times, end.
pk run -- "$(prog exits)" abort
check_equal "killed by SIGABRT: 128+6, with every event before it" "$status $(grep '^pikoc run: run' err)" \
    "134 pikoc run: run 7 crashed (SIGABRT): 8 events, 5 calls -> sqlite:pikoc.db"
pk run -- "$(prog exits)" term
check_equal "killed by SIGTERM: 128+15" "$status" 143
pk run -- "$(prog exits)" _exit 4
check_equal "_exit(4)" "$status" 4
# SIGKILL from outside once what the program did is committed (the drain's
# idle flush), rather than after a fixed sleep that a loaded machine outlasts.
timeout 120 "$pikoc" run -- "$(prog exits)" wait 60000 >"$work/out" 2>"$work/err" &
launcher=$!
tries=0
until [ "$("$pikoc" events --run 10 --format csv 2>/dev/null | wc -l)" -ge 8 ] || [ $tries -ge 600 ]; do
    sleep 0.1
    tries=$((tries + 1))
done
# timeout's child is pikoc, pikoc's child the program
pikoc_pid=$(tr -d ' ' </proc/$launcher/task/$launcher/children)
kill -KILL "$(tr -d ' ' </proc/$pikoc_pid/task/$pikoc_pid/children)"
wait $launcher
status=$?
check_equal "killed by SIGKILL: 128+9" "$status" 137
pk runs --format csv
check_equal "runs record how each program ended (status, signal, exit status)" \
    "$(rows | tail -5 | cut -d, -f1,3,4,5 | tr '\n' ' ')" "6,complete,,7 7,crashed,6, 8,killed,15, 9,incomplete,,4 10,killed,9, "
pk events --run 10 --format csv
check_equal "a killed run keeps what was committed before the kill" \
    "$(rows | head -7 | cut -d, -f2,3 | tr '\n' ' ')" "call,main call,work return,work call,work return,work call,work return,work "

timeout 120 "$pikoc" run --record sqlite:term.db -- "$(prog exits)" wait 5000 >out 2>err &
launcher=$!
# TERM once the run is in the database (its program started), not after a fixed time.
i=0
while ! "$pikoc" runs --db term.db --format csv 2>/dev/null | grep -q ',running,' && [ $i -lt 400 ]; do
    sleep 0.05
    i=$((i + 1))
done
sleep 0.2
kill -TERM $launcher
wait $launcher
launcher_status=$?
pk runs --db term.db --format csv
check_equal "SIGTERM to pikoc run goes to the program; its run is marked killed" \
    "$launcher_status $(rows | cut -d, -f3,4)" "143 killed,15"

pk run -- ./nosuch
check_equal "a program that does not exist" "$status $(cat err)" "127 pikoc run: cannot run './nosuch': No such file or directory"
pk run -- nosuch-program-$$
check_equal "a program not on PATH" "$status $(cat err)" "127 pikoc run: cannot run 'nosuch-program-$$': No such file or directory"
: >not-executable
pk run -- ./not-executable
check_equal "a file that is not executable" "$status $(cat err)" "127 pikoc run: cannot run './not-executable': Permission denied"
# A path too long for the kernel is not cut to one that fits (its first 4,095
# characters name /bin/true).
long_path="$(printf '%4086s' '' | tr ' ' /)/bin/truexx"
pk run -- "$long_path"
check_equal "a program path of ${#long_path} characters" "$status $(sed 's|^\(.\{24\}\)/*|\1|' err)" \
    "127 pikoc run: cannot run '/bin/truexx': File name too long"
pk run -- "$(prog static)"
check_equal "a statically linked program is refused" "$status $(cat err)" \
    "2 pikoc run: '$(prog static)' is statically linked: LD_PRELOAD cannot reach it (link it dynamically)"

# --- other recorders; a program linked with libpikoc ---------------------------------------------------
pk run --monitor function --record csv:run.csv --max-depth 1 -- "$(prog nested)"
check_equal "--record csv --max-depth 1" "$status $(tr -d '\r' <run.csv | awk -F, 'NR > 1 { print $2, $3 }' | tr '\n' '/')" \
    "0 call main/call a/return a/call a/return a/return main/"
check_equal "summary for a file recorder" "$(grep '^pikoc run:' err)" "pikoc run: records -> csv:run.csv"
# Run again over its own file (written anew, the same size): still said.
pk run --monitor function --record csv:run.csv --max-depth 1 -- "$(prog nested)"
check_equal "a file recorder over the file of an earlier run" \
    "$status $(grep '^pikoc run:' err) $(tr -d '\r' <run.csv | awk -F, 'NR > 1 { print $2, $3 }' | tr '\n' '/')" \
    "0 pikoc run: records -> csv:run.csv call main/call a/return a/call a/return a/return main/"
pk run --monitor function --record sqlite:filters.db --include 'ma*' --exclude main --focus a --min-duration 0ns -- "$(prog nested)"
check_equal "--include, --exclude, --focus" "$status $(grep -c . err)" "0 2"
long_include="$(seq -f 'x%04g' 1 900 | paste -sd, -)"
pk run --monitor function --record csv:long.csv --include "$long_include,main" -- "$(prog nested)"
check_equal "--include of $((${#long_include} + 5)) characters: main, its last glob, recorded" \
    "$status $(tr -d '\r' <long.csv | awk -F, 'NR > 1 { print $2, $3 }' | tr '\n' /)" \
    "0 call main/return main/"
# A message quotes at most 80 characters of a value, so its reason still fits.
cut80=$(printf '%s' "$long_include" | cut -c1-80)
pk run --monitor function --record csv:long.csv --include "$long_include,,main" -- "$(prog nested)"
check_equal "--include of $((${#long_include} + 6)) characters: its empty glob found and said" \
    "$status $(cat err)" \
    "2 pikoc run: --include '$cut80...': filter spec 'include:$(printf '%s' "$cut80" | cut -c1-72)...': empty glob in '$cut80...' (expected include:GLOB[,GLOB...])"
pk run --monitor function --record csv:focus.csv --focus 'a,,b' -- "$(prog nested)"
check_equal "--focus with an empty name" "$status $(cat err)" \
    "2 pikoc run: --focus: empty name in 'a,,b' (expected NAME[,GLOB...])"
pk run --monitor function --record csv:focus.csv --focus '' -- "$(prog nested)"
check_equal "--focus ''" "$status $(cat err) $(ls focus.csv 2>&1 | grep -c 'No such')" \
    "2 pikoc run: --focus: empty name in '' (expected NAME[,GLOB...]) 1"
pk run --record sqlite:shell.db -- sh -c "$(prog nested); $(prog nested)"
check_equal "a shell's children record runs of their own, and the summary says so" \
    "$status $(grep -c '^total 6$' out) $(grep '^pikoc run:' err | sed 's/run 1 [a-z]*:/run 1 STATUS:/' | tr '\n' '/')" \
    "0 2 pikoc run: run 1 STATUS: 0 events, 0 calls -> sqlite:shell.db; 2 more runs from processes it started/pikoc run: next: pikoc runs --db shell.db/"
pk runs --db shell.db --format csv
check_equal "the children's runs" "$(rows | tail -2 | cut -d, -f3,8 | tr '\n' ' ')" "complete,9 complete,9 "
# A relative --record path is from where pikoc run starts, also for a program
# executed after a change of directory; under a directory whose name holds
# ';' (it separates PIKOC_RECORD's specs) it stays relative.
mkdir -p moves/elsewhere 'semi;colon'
cd moves && pk run -q --record sqlite:moved.db -- sh -c 'cd elsewhere && exec "$0"' "$(prog nested)"
cd "$work" && pk runs --db moves/moved.db --format csv
check_equal "a relative --record path is from where pikoc run starts" \
    "$(rows | cut -d, -f3,8 | tr '\n' ' ')$(ls moves/elsewhere)" "executed,0 complete,9 "
cd 'semi;colon' && pk run --record sqlite:semi.db -- "$(prog nested)"
cd "$work"
check_equal "a relative --record path under a directory whose name holds ';'" \
    "$status $(grep '^pikoc run:' err)" \
    "0 pikoc run: run 1 complete: 18 events, 9 calls -> sqlite:semi.db
pikoc run: next: pikoc top --db semi.db (also: tree, events, spikes)"
# A relative PIKOC_PRELOAD is resolved: the loader would look for it from the
# directory of each program executed.
ln -s "$builddir/.libs/libpikoc-preload.so" preload.so
cd moves && PIKOC_PRELOAD=../preload.so pk run -q --record sqlite:preload.db -- \
    sh -c 'cd elsewhere && exec "$0"' "$(prog nested)"
cd "$work" && pk runs --db moves/preload.db --format csv
check_equal "a relative PIKOC_PRELOAD reaches a program executed after a change of directory" \
    "$(rows | cut -d, -f3,8 | tr '\n' ' ')" "executed,0 complete,9 "
PIKOC_PRELOAD=nosuch.so pk run -- "$(prog nested)"
check_equal "a PIKOC_PRELOAD that names no file" "$status $(cat out err)" \
    "1 pikoc run: PIKOC_PRELOAD 'nosuch.so': No such file or directory"
linked="$builddir/tests/.libs/prog_nested"
[ -x "$linked" ] || linked="$builddir/tests/prog_nested"
LD_LIBRARY_PATH="$builddir/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" pk run --monitor function --record sqlite:linked.db -- "$linked"
pk top --db linked.db --by calls --format csv
check_equal "a program linked with libpikoc: the preloaded copy records it" \
    "$(rows | cut -d, -f1,2 | tr '\n' ' ')" "b,4 a,2 c,2 main,1 "
# It holds two copies of pikoc: the preloaded one, first in the lookup
# order, serves it and the linked one starts nothing; so allocations are
# recorded too, and a shell (preloaded) may start it. Enough calls to fill
# its threads' rings many times.
threads_linked="$builddir/tests/.libs/prog_threads"
[ -x "$threads_linked" ] || threads_linked="$builddir/tests/prog_threads"
# (Not under the sanitizers: the program is linked with their malloc.)
if [ "$sanitizers" = no ]; then
    LD_LIBRARY_PATH="$builddir/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" pk run \
        --monitor function-memory,alloc --record sqlite:linkedalloc.db -- "$threads_linked" 2 100
    check_equal "a program linked with libpikoc, its calls and its allocations" \
        "$status $(sqlite3 linkedalloc.db "SELECT r.status, r.calls, a.allocations > 0, a.unknown_frees
            FROM runs r JOIN alloc_runs a ON a.run_id = r.id")" "0 complete|403|1|0"
fi
LD_LIBRARY_PATH="$builddir/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" timeout 60 "$pikoc" run \
    --monitor function --record sqlite:twice.db -- \
    sh -c "$threads_linked 2 50000; exec $threads_linked 2 50000" >out 2>err
status=$?
pk runs --db twice.db --format csv
check_equal "a linked program started by a preloaded shell, then executed by it: every call" \
    "$status $(rows | cut -d, -f1,3,8 | tr '\n' ' ')" "0 1,executed,0 2,complete,200003 3,complete,200003 "
# A zone in a library the program loads after its run started: the drainer,
# forked before, reads the zone's descriptor in the program.
zones_linked="$builddir/tests/.libs/prog_zones"
[ -x "$zones_linked" ] || zones_linked="$builddir/tests/prog_zones"
LD_LIBRARY_PATH="$builddir/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" pk run \
    --monitor function --record sqlite:late.db -- "$zones_linked" "$builddir/tests/.libs/zone_module.so"
ran=$status
pk top --db late.db --by calls --format csv
check_equal "a zone in a library loaded after the run started keeps its name" \
    "$ran $(rows | cut -d, -f1,2 | sort | tr '\n' ' ')" "0 late span,1 late zone,1 load,1 parse,3 "
pk events --db late.db --function 'late span' --format csv
check_equal "a profiler in a library loaded after the run started keeps its site" \
    "$(rows | cut -d, -f2,3,14,15,17 | tr '\n' ' ')" \
    "call,late span,module_zone,14,14 return,late span,module_zone,14,14 "
check_equal "... its site's file" "$(rows | cut -d, -f16,18 | sed 's|[^,]*/||g' | sort -u)" \
    "zone_module.c,zone_module.c"

# --- bad input: one line on stderr, status 2, nothing written ---------------------------------------------
# The killed run above left its write-ahead log: it is part of the database.
cp pikoc.db before.db
cp pikoc.db-wal before.db-wal 2>/dev/null
# bad NAME EXPECTED-STDERR ARGS...: pikoc ARGS fails with status 2 and exactly that line.
bad() {
    name=$1 message=$2
    shift 2
    pk "$@"
    check_equal "$name" "$status $(sed "s|$work/||" "$work/err") ($(wc -l <"$work/err") line)" \
        "2 $message (1 line)"
}
mkdir empty && cd empty || exit 1
bad "run --max-depth -3" "pikoc run: --max-depth '-3': expected a non-negative whole number" \
    run --max-depth -3 -- "$(prog nested)"
bad "run --min-duration '5 parsecs'" \
    "pikoc run: --min-duration '5 parsecs': unknown unit 'parsecs' (accepted: ns, us, ms, s)" \
    run --min-duration '5 parsecs' -- "$(prog nested)"
bad "run --monitor cpu" "pikoc run: --monitor 'cpu': unknown monitor (known: function, function-memory, alloc)" \
    run --monitor cpu -- "$(prog nested)"
bad "run --record sqlit:run.db" \
    "pikoc run: --record: recorder spec 'sqlit:run.db': unknown kind 'sqlit' (known: stdout, stderr, text, csv, list, sqlite, zmq)" \
    run --record sqlit:run.db -- "$(prog nested)"
bad "run --record csv" "pikoc run: --record: recorder spec 'csv': missing argument (expected csv:PATH)" \
    run --record csv -- "$(prog nested)"
bad "run --record stdout+fast" "pikoc run: --record: recorder spec 'stdout+fast': unknown option 'fast' (known: flush)" \
    run --record stdout+fast -- "$(prog nested)"
bad "run without a program" "pikoc run: no program to run (usage: pikoc run [OPTIONS] -- PROGRAM [ARGS...])" run
bad "run --verbose" "pikoc run: unknown option '--verbose' (see pikoc run --help)" run --verbose -- "$(prog nested)"
# The settings that pass through to the program are checked before it starts.
export PIKOC_RING_EVENTS=abc
bad "run, PIKOC_RING_EVENTS=abc" \
    "pikoc run: PIKOC_RING_EVENTS 'abc': expected a whole number of events from 64 to 1073741824 (rounded up to a power of two)" \
    run -- "$(prog nested)"
export PIKOC_RING_EVENTS=2147483648
bad "run, PIKOC_RING_EVENTS=2^31" \
    "pikoc run: PIKOC_RING_EVENTS '2147483648': expected a whole number of events from 64 to 1073741824 (rounded up to a power of two)" \
    run -- "$(prog nested)"
unset PIKOC_RING_EVENTS
export PIKOC_CLOCK=rdtsc
bad "run, PIKOC_CLOCK=rdtsc" "pikoc run: PIKOC_CLOCK 'rdtsc': unknown clock (known: tsc, monotonic)" \
    run -- "$(prog nested)"
unset PIKOC_CLOCK
export PIKOC_AT_EXEC=later
bad "run, PIKOC_AT_EXEC=later" "pikoc run: PIKOC_AT_EXEC 'later': unknown value (known: end, leave)" \
    run -- "$(prog nested)"
unset PIKOC_AT_EXEC
export PIKOC_FILTER='max-depth:2;;min-duration:5 parsecs'
bad "run, PIKOC_FILTER with a bad spec" \
    "pikoc run: PIKOC_FILTER: filter spec 'min-duration:5 parsecs': duration '5 parsecs': unknown unit 'parsecs' (accepted: ns, us, ms, s)" \
    run -- "$(prog nested)"
unset PIKOC_FILTER
# What a file recorder would refuse as it opens stops the run before the program starts.
python3 -c "import sqlite3; c = sqlite3.connect('$work/foreign.db'); c.execute('CREATE TABLE t (x)'); c.commit()"
cp "$work/pikoc.db" "$work/newer.db"
python3 -c "import sqlite3; c = sqlite3.connect('$work/newer.db'); c.execute('PRAGMA user_version = 99'); c.commit()"
bad "run --record sqlite: in no directory" \
    "pikoc run: --record 'sqlite:no/such/dir/x.db': no/such/dir/x.db: cannot create: No such file or directory" \
    run --record sqlite:no/such/dir/x.db -- "$(prog nested)"
bad "run --record sqlite:DIRECTORY" "pikoc run: --record 'sqlite:$work': $work: is a directory" \
    run --record "sqlite:$work" -- "$(prog nested)"
bad "run --record sqlite: not pikoc's" \
    "pikoc run: --record 'sqlite:foreign.db': $work/foreign.db: not a pikoc database (no pikoc schema)" \
    run --record "sqlite:$work/foreign.db" -- "$(prog nested)"
bad "run --record sqlite: a newer schema" \
    "pikoc run: --record 'sqlite:newer.db': $work/newer.db: schema version 99 is newer than this pikoc (6)" \
    run --record "sqlite:$work/newer.db" -- "$(prog nested)"
bad "run --record twice the same" "pikoc run: --record 'sqlite:twice.db' given twice" \
    run --record sqlite:twice.db --record sqlite:twice.db -- "$(prog nested)"
bad "run --record csv: in no directory" \
    "pikoc run: --record 'csv:no/such/x.csv': cannot open 'no/such/x.csv' for writing: No such file or directory" \
    run --record csv:no/such/x.csv --record "sqlite:$work/fine.db" -- "$(prog nested)"
check_equal "bad options: the program never ran, no file was created" "$(ls)" ""
cd .. || exit 1

mkfifo "$work/fifo"
bad "top --db FIFO (it would block for good)" "pikoc top: fifo: not a regular file" top --db "$work/fifo"
bad "top --db twice" "pikoc top: --db given twice (it takes one value)" top --db a.db -d b.db
bad "run --focus twice" "pikoc run: --focus given twice (it takes one value)" \
    run --focus a --focus=c -- "$(prog nested)"
bad "top -h1" "pikoc top: -h takes no value" top -h1
bad "top --help=1" "pikoc top: --help takes no value" top --help=1
bad "top --by speed" "pikoc top: --by 'speed': unknown key (accepted: calls, total, self, alloc, free, rss, allocations, bytes, temporary)" top --by speed
bad "top --limit -1" "pikoc top: --limit '-1': expected a non-negative whole number" top --limit -1
bad "top --format xml" "pikoc top: --format 'xml': unknown format (accepted: table, csv, json)" top --format xml
bad "top --run" "pikoc top: --run needs a value (N)" top --run
bad "top with an operand" "pikoc top: unexpected argument 'pikoc.db' (the database is --db FILE)" top pikoc.db
bad "tree --min-percent x" "pikoc tree: --min-percent 'x': expected a non-negative number (e.g. 1.5)" tree --min-percent x
bad "tree --min-percent 0x10 (hex)" "pikoc tree: --min-percent '0x10': expected a non-negative number (e.g. 1.5)" \
    tree --min-percent 0x10
bad "spikes --threshold 0x10k (hex)" \
    "pikoc spikes: --threshold '0x10k': expected a size in bytes, binary multiples allowed (e.g. 4096, 64k, 1.5MiB)" \
    spikes --threshold 0x10k
bad "run --sample-interval 0x1p3ms (hex)" \
    "pikoc run: --sample-interval '0x1p3ms': expected a number with a unit: ns, us, ms or s (e.g. 500ns, 2us, 1.5ms)" \
    run --monitor alloc --sample-interval 0x1p3ms -- "$(prog nested)"
bad "spikes --threshold 12 parsecs" \
    "pikoc spikes: --threshold '12 parsecs': expected a size in bytes, binary multiples allowed (e.g. 4096, 64k, 1.5MiB)" \
    spikes --threshold '12 parsecs'
bad "events --type exit" "pikoc events: --type 'exit': unknown event type (accepted: call, return, checkpoint)" events --type exit
bad "events --thread main" "pikoc events: --thread 'main': expected a non-negative whole number" events --thread main
bad "tree --depth -2" "pikoc tree: --depth '-2': expected a non-negative whole number" tree --depth -2
bad "diff --by speed" "pikoc diff: --by 'speed': unknown key (accepted: calls, total, self, alloc, free)" diff --by speed 1 2
bad "leaks --limit 1e3" "pikoc leaks: --limit '1e3': expected a non-negative whole number" leaks --limit 1e3
bad "export --format svg" "pikoc export: --format 'svg': unknown format (accepted: chrome, folded, csv)" export --format svg
bad "export --weight with chrome" "pikoc export: --weight applies to --format folded only" export --weight alloc
bad "diff with one run" "pikoc diff: two runs to compare are needed (usage: pikoc diff [OPTIONS] A B)" diff 1
bad "unknown run" "pikoc top: unknown run 42 (runs: 1-10)" top --run 42
bad "run that is not a number" "pikoc tree: run 'x': expected a non-negative whole number" tree --run x
bad "diff: unknown run in another file" "pikoc diff: unknown run 9 (runs: 1-1)" diff 1 a.db:9
bad "missing file" "pikoc top: nosuch.db: no such file" top --db nosuch.db
check_equal "a missing file is not created" "$(ls nosuch.db 2>/dev/null)" ""
echo "not a database" >text.db
bad "not SQLite" "pikoc runs: text.db: not an SQLite database" runs --db text.db
sqlite3 other.db "CREATE TABLE t (x); INSERT INTO t VALUES (1)"
bad "SQLite, not pikoc" "pikoc events: other.db: not a pikoc database (no pikoc schema)" events --db other.db
# A symbol id past the run's symbols (numbered from 1): a damaged file, not a table of 2^62 slots.
cp pikoc.db symbols.db
sqlite3 symbols.db "INSERT INTO symbols VALUES (1, 4611686018427387904, 'x', 'y', 1)"
symbols=$(sqlite3 symbols.db "SELECT count(*) FROM symbols WHERE run_id = 1")
for cmd in events export; do
    bad "$cmd: a symbol id past the run's symbols" \
        "pikoc $cmd: symbols.db: pikoc_events: the symbols of run 1 are malformed (id 4611686018427387904 among $symbols)" \
        "$cmd" --db symbols.db --run 1
done
# A call path whose depth says 4e12: its indentation is bounded, not 8 TB asked for.
cp pikoc.db deep.db
sqlite3 deep.db "UPDATE call_paths SET depth = 4000000000000 WHERE run_id = 1 AND id = (SELECT max(id) FROM call_paths WHERE run_id = 1)"
pk tree --db pikoc.db --run 1
lines=$(wc -l <out)
pk tree --db deep.db --run 1
check_equal "tree: a path 4e12 deep (a damaged file): every path shown" "$status $(wc -l <out)" "0 $lines"
cp pikoc.db newer.db
sqlite3 newer.db "PRAGMA user_version = 7"
bad "newer schema" "pikoc top: newer.db: schema version 7 is newer than this pikoc (6)" top --db newer.db
# Every page after the first (the header the checks read) overwritten.
cp pikoc.db corrupt.db
size=$(wc -c <corrupt.db)
head -c $((size - 4096)) /dev/zero | tr '\0' '\377' | dd of=corrupt.db bs=4096 seek=1 conv=notrunc 2>/dev/null
bad "corrupt pages" "pikoc top: corrupt.db: database disk image is malformed" top --db corrupt.db
# A table the file's schema version has is read, never guessed at: dropped or
# with its page zeroed, it is bad input, not a run without allocation records
# nor a picture without its allocation sections. (a.db: one run, no
# allocation records, each table one page.)
bad "leaks: a run without allocation records" \
    "pikoc leaks: run 1 has no allocation records (record them with pikoc run --monitor alloc)" \
    leaks --db a.db
cp a.db dropped.db
python3 -c "import sqlite3; c = sqlite3.connect('dropped.db'); c.execute('DROP TABLE alloc_runs'); c.commit()"
bad "leaks: alloc_runs dropped" "pikoc leaks: dropped.db: no such table: alloc_runs" leaks --db dropped.db
bad "peak: alloc_runs dropped" "pikoc peak: dropped.db: no such table: alloc_runs" peak --db dropped.db
bad "plot: alloc_runs dropped" "pikoc plot: dropped.db: no such table: alloc_runs" plot dropped.db
bad "report: alloc_runs dropped" "pikoc report: dropped.db: no such table: alloc_runs" report dropped.db
cp a.db dropped.db
python3 -c "import sqlite3; c = sqlite3.connect('dropped.db'); c.execute('DROP TABLE checkpoints'); c.commit()"
bad "events: checkpoints dropped" "pikoc events: dropped.db: no such table: checkpoints" \
    events --db dropped.db
# A file older than the allocation tables (version 2) lacks them without damage.
cp a.db version2.db
sqlite3 version2.db "DROP TABLE alloc_runs; DROP TABLE alloc_sites; DROP TABLE alloc_sizes;
    DROP TABLE alloc_stacks; DROP TABLE alloc_frames; DROP TABLE memory_samples; PRAGMA user_version = 2"
bad "leaks: a version-2 file" \
    "pikoc leaks: run 1 has no allocation records (record them with pikoc run --monitor alloc)" \
    leaks --db version2.db
pk plot version2.db -o version2.svg
check_equal "plot: a version-2 file" "$status $(cat err) $(grep -c 'class="legend">RSS<' version2.svg)" "0  1"
# zero_page FILE TABLE: the first page of TABLE overwritten with zeros.
zero_page() {
    page=$(sqlite3 "$1" "SELECT rootpage FROM sqlite_master WHERE name = '$2'")
    dd if=/dev/zero of="$1" bs="$(sqlite3 "$1" "PRAGMA page_size")" seek=$((page - 1)) count=1 \
        conv=notrunc 2>/dev/null
}
cp a.db zeroed.db
zero_page zeroed.db alloc_runs
for cmd in leaks peak histogram; do
    bad "$cmd: alloc_runs zeroed" "pikoc $cmd: zeroed.db: database disk image is malformed" \
        $cmd --db zeroed.db
done
bad "top --by bytes: alloc_runs zeroed" "pikoc top: zeroed.db: database disk image is malformed" \
    top --by bytes --db zeroed.db
bad "plot: alloc_runs zeroed" "pikoc plot: zeroed.db: database disk image is malformed" plot zeroed.db
bad "report: alloc_runs zeroed" "pikoc report: zeroed.db: database disk image is malformed" \
    report zeroed.db
# (alloc.db: not under the sanitizers, see above.)
if [ "$sanitizers" != yes ]; then
    cp alloc.db zeroed.db
    zero_page zeroed.db memory_samples
    bad "peak: memory_samples zeroed" "pikoc peak: zeroed.db: database disk image is malformed" \
        peak --db zeroed.db --run 1
fi
bad "sql DELETE" "pikoc sql: refused: 'DELETE FROM runs' would modify pikoc.db (pikoc sql only reads)" \
    sql "DELETE FROM runs;"
bad "sql with a write after a read" \
    "pikoc sql: refused: 'CREATE TABLE x (a)' would modify pikoc.db (pikoc sql only reads)" \
    sql "SELECT 1; CREATE TABLE x (a)"
bad "sql syntax" "pikoc sql: near \"SELEC\": syntax error" sql "SELEC 1"
check_equal "sql refused: nothing ran" "$(cat out)" ""
bad "sql without a query" "pikoc sql: no query (usage: pikoc sql [OPTIONS] QUERY)" sql
# The pictures: nothing written on bad input.
runs=$(sqlite3 pikoc.db "SELECT max(id) FROM runs")
bad "plot: missing file" "pikoc plot: nosuch.db: no such file" plot nosuch.db
bad "flame: missing file" "pikoc flame: nosuch.db: no such file" flame --db nosuch.db
bad "report: missing file" "pikoc report: nosuch.db: no such file" report nosuch.db
bad "plot: unknown run" "pikoc plot: unknown run 99 (runs: 1-$runs)" plot --run 99
bad "flame: unknown run" "pikoc flame: unknown run 99 (runs: 1-$runs)" flame --run 99
bad "report: unknown run" "pikoc report: unknown run 99 (runs: 1-$runs)" report --run 99
bad "report --vs: unknown run" "pikoc report: unknown run 99 (runs: 1-$runs)" report --vs 99
bad "report --vs: missing file" "pikoc report: nosuch.db: no such file" report --vs nosuch.db:1
bad "flame --weight size" "pikoc flame: --weight 'size': unknown weight (accepted: time, alloc, leaked, peak)" \
    flame --weight size
bad "flame --weight leaked without allocation records" \
    "pikoc flame: run 5 has no allocation records (record them with pikoc run --monitor alloc)" \
    flame --run 5 --weight leaked
bad "flame --weight peak without allocation records" \
    "pikoc flame: run 5 has no allocation records (record them with pikoc run --monitor alloc)" \
    flame --run 5 --weight peak
bad "flame --weight alloc without counters" \
    "pikoc flame: --weight alloc: run 5 has no allocation counters (unavailable: the function monitor does not count allocations)" \
    flame --run 5 --weight alloc
bad "plot: a run without memory samples" \
    "pikoc plot: run 5 has no RSS/VMS samples (monitor function): record it with --monitor function-memory" \
    plot --run 5
bad "plot --x size" "pikoc plot: --x 'size': unknown axis (accepted: time, index)" plot --x size
bad "plot: two databases" "pikoc plot: one database only ('a.db' and 'b.db')" plot a.db b.db
bad "flame: a database and --db" "pikoc flame: one database only ('a.db' and 'b.db')" flame a.db --db b.db
bad "report: --db and a database" "pikoc report: one database only ('b.db' and 'a.db')" report --db b.db a.db
bad "flame --width 10" "pikoc flame: --width '10': expected 200 to 100000 pixels" flame --width 10
bad "report --format csv" "pikoc report: --format does not apply: report writes HTML" report --format csv
check_equal "pictures: no file left by a refusal" "$(ls plot.svg flame.svg report.html 2>/dev/null)" ""
pk report -o "$work/no/such/dir/report.html"
check_equal "report: an unwritable output is a failure (1)" "$status $(sed "s|$work/||" err)" \
    "1 pikoc report: cannot write 'no/such/dir/report.html': No such file or directory"
# -o never destroys what it was not asked to write: the database read, a
# file an export that failed would have replaced, a device.
bad "export -o the database it reads" "pikoc export: -o 'pikoc.db': that is the database it reads (--db)" \
    export -o pikoc.db
bad "plot -o the database it reads" "pikoc plot: -o './pikoc.db': that is the database it reads (--db)" \
    plot -o ./pikoc.db
printf 'kept\n' >kept.txt
printf 'not a database\n' >not.db
pk export --db not.db -o kept.txt
check_equal "export that fails before it writes: the file -o names is left as it was" "$status $(cat kept.txt)" "2 kept"
pk export --run 1 --format folded --weight leaked -o kept.txt
check_equal "export that fails as it writes: the file -o names is left as it was, nothing beside it" \
    "$status $(cat kept.txt) $(ls kept.txt.* 2>/dev/null | wc -l)" "2 kept 0"
chmod 640 kept.txt
inode=$(stat -c %i kept.txt)
pk export --format csv -o kept.txt
check_equal "export replaces a file whole (a new file), with its mode, and leaves nothing beside it" \
    "$status $(head -c 6 kept.txt) $(stat -c %a kept.txt) $([ "$(stat -c %i kept.txt)" != "$inode" ] && echo new) $(ls kept.txt.* 2>/dev/null | wc -l)" \
    "0 index, 640 new 0"
# Through a symbolic link, the file it leads to is replaced so, and the link kept.
mkdir -p linked && printf 'kept\n' >linked/target.txt && ln -sf linked/target.txt link.txt
pk export --run 1 --format folded --weight leaked -o link.txt
check_equal "export through a link that fails as it writes: the file linked to is left as it was" \
    "$status $(cat linked/target.txt) $(ls -A linked)" "2 kept target.txt"
pk export --format csv -o link.txt
check_equal "export through a link: the file linked to replaced whole, the link kept, nothing beside" \
    "$status $(head -c 6 linked/target.txt) $(readlink link.txt) $(ls -A linked)" \
    "0 index, linked/target.txt target.txt"
# ... but not /dev/stdout (through /proc, what this process's stdout holds): written in place,
# the same file the shell opened.
inode=$(stat -c %i kept.txt)
"$pikoc" export --format csv -o /dev/stdout >kept.txt 2>"$work/err"
status=$?
check_equal "export -o /dev/stdout redirected to a file: written in place, not replaced" \
    "$status $(head -c 6 kept.txt) $([ "$(stat -c %i kept.txt)" = "$inode" ] && echo same)" "0 index, same"
# ... and on the disk before its name is: written unnamed in the directory, synced, named,
# renamed over the file, then the directory synced (where strace can trace).
if command -v strace >/dev/null && strace -o /dev/null true 2>/dev/null; then
    mkdir -p synced
    # (LeakSanitizer stops the world with ptrace, which a traced process cannot)
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        strace -qq -e trace=openat,fsync,linkat,/^rename -o sync.trace "$pikoc" export --format csv -o synced/kept.txt
    check_equal "export: unnamed, synced, named, renamed, the directory synced" \
        "$? $(sed -En 's/^openat\(AT_FDCWD, "synced", [^)]*O_TMPFILE.*/unnamed/p
                       s/^openat\(AT_FDCWD, "synced", [^)]*O_DIRECTORY.*/open synced/p
                       s/^fsync\(.*\) += 0$/fsync/p
                       s/^linkat\(.*, "synced\/kept.txt.[A-Za-z0-9]{6}", AT_SYMLINK_FOLLOW\) = 0$/link/p
                       s/^rename(at2?)?\((AT_FDCWD, )?"synced\/kept.txt.[A-Za-z0-9]{6}", (AT_FDCWD, )?"([^"]*)"(, 0)?\) = 0$/rename \4/p' sync.trace |
            tr '\n' ' ')" \
        "0 unnamed fsync link rename synced/kept.txt open synced fsync "
fi
# Killed while it writes (as its temporary file appears): the file goes with
# it, and what -o names is left as it was. The temporary file is unnamed
# (O_TMPFILE), so even SIGKILL leaves nothing; where the file system has no
# unnamed files (notmpfile.so), it is named and removed by the signal.
# signal_export SIGNAL [IGNORED [PRELOAD]]: pikoc export of big.db into sig.txt, with
# IGNORED ignored from the start and PRELOAD preloaded, sent SIGNAL once its temporary
# file appears (named sig.txt.*, or unnamed: "#N (deleted)" among its descriptors); its
# status. The temporary file's kind is left in $temporary.
signal_export() {
    # (a sanitizer build's runtime lets a library be preloaded before it when told)
    (if [ -n "${2:-}" ]; then trap '' "$2"; fi &&
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
            LD_PRELOAD="${3:-}" exec "$pikoc" export --db big.db -o sig.txt) >/dev/null 2>&1 &
    exporter=$!
    i=0 temporary=
    while [ $i -lt 1000 ]; do
        if ls sig.txt.* >/dev/null 2>&1; then temporary=named && break; fi
        if ls -l /proc/$exporter/fd 2>/dev/null | grep -q "$(pwd -P)/#[0-9]* (deleted)"; then
            temporary=unnamed && break
        fi
        sleep 0.01
        i=$((i + 1))
    done
    kill -"$1" $exporter
    wait $exporter
}
pk run -q --monitor function --record sqlite:big.db -- "$(prog recursion)" 27
printf 'kept\n' >sig.txt
signal_export KILL
check_equal "export killed (SIGKILL) as it writes: its unnamed temporary file goes with it" \
    "$? $temporary $(ls -A | grep -c '^sig.txt.\|^#') $(cat sig.txt)" "137 unnamed 0 kept"
signal_export TERM
check_equal "export killed (SIGTERM) as it writes: the same" \
    "$? $temporary $(ls sig.txt.* 2>/dev/null | wc -l) $(cat sig.txt)" "143 unnamed 0 kept"
notmpfile="$builddir/tests/.libs/notmpfile.so"
signal_export TERM "" "$notmpfile"
check_equal "export without unnamed files, killed as it writes: its named temporary file goes with it" \
    "$? $temporary $(ls sig.txt.* 2>/dev/null | wc -l) $(cat sig.txt)" "143 named 0 kept"
# ... but a signal that was ignored (SIGHUP under nohup) stays ignored.
signal_export HUP HUP "$notmpfile"
check_equal "export with SIGHUP ignored: a SIGHUP as it writes changes nothing" \
    "$? $temporary $(ls sig.txt.* 2>/dev/null | wc -l) $(head -c 15 sig.txt)" '0 named 0 {"displayTimeUn'
rm -f big.db sig.txt
bad "export -o ''" "pikoc export: -o '': expected a file, or - for stdout" export -o ''
cp pikoc.db other.db
bad "report --vs OTHER -o OTHER: the database compared with is refused too" \
    "pikoc report: -o 'pikoc.db': that is the database it reads (--vs)" \
    report --db other.db --vs pikoc.db -o pikoc.db
pk export --format csv -o -
check_equal "export -o -: stdout, the same as the file" "$status $(cmp -s out kept.txt && echo same)" "0 same"
if [ -c /dev/full ]; then
    pk export -o /dev/full
    check_equal "export -o /dev/full: a failure, and the device stays" \
        "$status $(cat err) $([ -c /dev/full ] && echo device)" \
        "1 pikoc export: cannot write /dev/full: No space left on device device"
fi
if cmp -s pikoc.db before.db && { [ ! -e before.db-wal ] || cmp -s pikoc.db-wal before.db-wal; }; then
    ok "the database is unchanged by every read and refusal"
else
    not_ok "the database changed"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
