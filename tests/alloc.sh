#!/bin/sh
# alloc.sh — the alloc monitor end to end: `pikoc run --monitor alloc` on
# programs that are neither instrumented nor linked with libpikoc. Every C
# allocation function and every C++ operator new and delete, counted
# exactly; the queries (leaks, peak, top, histogram, export); threads that
# free each other's blocks; glibc's memusage and heaptrack as oracles on the
# same programs; and real Debian programs keeping their exit status.
set -u

builddir=$(cd "${top_builddir:-.}" && pwd)
srcdir=$(cd "${top_srcdir:-.}" && pwd)
pikoc="$builddir/pikoc"
source_c="$srcdir/tests/programs/allocs.c"
work=$(mktemp -d "${TMPDIR:-/tmp}/pikoc-alloc.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
cd "$work" || exit 1

. "$srcdir/tests/checks.sh"
prog() { echo "$builddir/tests/alloc_$1"; }
line_of() { grep -n "$1" "$source_c" | head -1 | cut -d: -f1; }
sql() { sqlite3 "$1" "$2"; }

# Under the sanitizers their malloc comes first in LD_PRELOAD: the monitor
# says so and the program runs untraced.
if [ "${PK_SANITIZERS:-no}" = yes ]; then
    pk run -q --monitor alloc --record sqlite:san.db -- "$(prog allocs)" loop 3
    check_equal "sanitizers: the program runs, the monitor says why it cannot" \
        "$status $(grep -c "monitor 'alloc': malloc does not reach pikoc's interposer" err)" "0 1"
    echo "# $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
fi

# --- each C function once (tests/programs/allocs.c, each) --------------------------------
# Runs whose records are compared one by one take no RSS samples (a timer's
# records would come in between as the machine allows).
pk run -q --sample-interval 0 --monitor alloc --record csv:each.csv --record sqlite:each.db -- "$(prog allocs)" each
check_equal "each: the program's own checks pass (free(NULL) keeps errno, failed realloc)" \
    "$status $(cat err)" "0 "
# type, function, size of every record (csv columns 2, 22, 25), in order.
tr -d '\r' <each.csv | awk -F, 'NR > 1 { printf "%s %s %s|", $2, $22, $25 }' >each.txt
check_equal "each: every call, in order, with its size (free(NULL) and the failed realloc: nothing)" \
    "$(cat each.txt)" \
    "alloc malloc 100|free free 100|alloc malloc 5000|alloc calloc 100|free free 5000|free free 100|\
alloc realloc 50|realloc realloc 300|free realloc 300|alloc reallocarray 200|free free 200|\
alloc posix_memalign 1000|free free 1000|alloc aligned_alloc 256|free free 256|\
alloc memalign 64|free free 64|alloc valloc 10|free free 10|alloc pvalloc 10|free free 10|\
alloc malloc 40|free free 40|alloc malloc 777|alloc malloc 777|alloc malloc 777|alloc calloc 33|"
check_equal "each: usable sizes are jemalloc's (malloc_usable_size), alignment kept" \
    "$(tr -d '\r' <each.csv | awk -F, 'NR > 1 && $2 != "free" { printf "%s:%s ", $25, $26 }')" \
    "100:112 5000:5120 100:112 50:64 300:320 200:224 1000:1024 256:256 64:64 10:4096 10:4096 40:48 777:896 777:896 777:896 33:48 "
check_equal "each: realloc names the block it replaced" \
    "$(tr -d '\r' <each.csv | awk -F, '$2 == "alloc" && $22 == "realloc" { p = $23 } $2 == "realloc" { print ($24 == p) }')" 1
check_equal "each: call sites are main's lines" \
    "$(tr -d '\r' <each.csv | awk -F, 'NR > 1 { print $6 }' | sort -u)" "each"
check_equal "each: run totals (allocations reallocs frees unknown bytes freed leaked-blocks leaked-bytes peak)" \
    "$(sql each.db "SELECT allocations, reallocs, frees, unknown_frees, bytes, freed_bytes, leaked_blocks, leaked_bytes, peak_bytes FROM alloc_runs")" \
    "16|1|11|0|9494|7130|4|2364|5100"

pk leaks --db each.db --format csv
check_equal "leaks: by call site, largest first" "$(rows | cut -d, -f1-4 | tr '\n' ' ')" \
    "each,$(line_of 'leaked\[i\] = malloc(777)'),3,2331 each,$(line_of 'leaked\[0\] = calloc'),1,33 "
pk peak --db each.db --format csv
check_equal "peak: what each site held at the peak, and its share" "$(rows | cut -d, -f1-4 | tr '\n' ' ')" \
    "each,$(line_of 'big = malloc(5000)'),5000,98.04 each,$(line_of 'p = calloc(4, 25)'),100,1.96 "
pk peak --db each.db
check_equal "peak: the moment first, then the sites" "$(head -1 out | sed 's/ at .*//')" \
    "peak heap 5.0 KiB (5100 bytes)"
pk top --db each.db --by bytes --limit 2 --format csv
check_equal "top --by bytes" "$(rows | cut -d, -f1-5 | tr '\n' ' ')" \
    "each,$(line_of 'big = malloc(5000)'),1,5000,0 each,$(line_of 'leaked\[i\] = malloc(777)'),3,2331,0 "
pk top --db each.db --by allocations --group function --format csv
check_equal "top --group function" "$(rows | cut -d, -f1-7)" "each,,16,9494,10,2364,5100"
pk histogram --db each.db --format csv
check_equal "histogram: power-of-two ranges" "$(rows | cut -d, -f1-4 | tr '\n' ' ')" \
    "8,15,2,20 32,63,3,123 64,127,3,264 128,255,1,200 256,511,2,556 512,1023,4,3331 4096,8191,1,5000 "
pk export --db each.db --format folded --weight leaked
check_equal "export folded --weight leaked" "$(cat out)" "each 2364"

# --- bad input ---------------------------------------------------------------------------
pk run -q --record sqlite:calls.db -- "$(prog allocs)" leak 1
pk leaks --db calls.db
check_equal "leaks on a run without allocation records" "$status $(cat err)" \
    "2 pikoc leaks: run 1 has no allocation records (record them with pikoc run --monitor alloc)"
pk top --db each.db --group site
check_equal "top --group without an allocation key" "$status $(cat err)" \
    "2 pikoc top: --group applies to --by allocations, bytes or temporary only"
pk top --db each.db --by bytes --group line
check_equal "top --group line" "$status $(cat err)" \
    "2 pikoc top: --group 'line': unknown group (accepted: site, function, stack)"
pk export --db calls.db --format folded --weight peak
check_equal "export --weight peak without allocation records" "$status $(cat err)" \
    "2 pikoc export: run 1 has no allocation records (record them with pikoc run --monitor alloc)"
pk run --monitor alloc,function,x -- true
check_equal "run --monitor with two call monitors" "$status $(cat err)" \
    "2 pikoc run: --monitor: unknown monitor 'alloc,function,x' (known: function, function-memory, alloc)"
pk run --monitor function,function-memory -- true
check_equal "run --monitor without alloc" "$status $(cat err)" \
    "2 pikoc run: --monitor: monitor 'function,function-memory': combine one call monitor with alloc (e.g. function-memory,alloc)"

# A setuid or setgid program runs in the loader's secure mode, which ignores
# LD_PRELOAD: refused before it runs. (Giving a file away takes root.)
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
    cp "$(prog allocs)" setuid_prog && chown nobody setuid_prog && chmod u+s setuid_prog
    pk run --monitor alloc -- ./setuid_prog leak 1
    check_equal "run refuses a setuid program" "$status $(cat err)" \
        "2 pikoc run: './setuid_prog' is setuid: the loader ignores LD_PRELOAD for it (run a copy without the setuid bit)"
    cp "$(prog allocs)" setgid_prog && chgrp "$(id -gn nobody)" setgid_prog && chmod g+s setgid_prog
    pk run --monitor alloc -- ./setgid_prog leak 1
    check_equal "run refuses a setgid program" "$status $(cat err)" \
        "2 pikoc run: './setgid_prog' is setgid: the loader ignores LD_PRELOAD for it (run a copy without the setgid bit)"
else
    echo "# not root: the setuid and setgid refusals are not tested"
fi

# --- C++ --------------------------------------------------------------------------------
pk run -q --sample-interval 0 --monitor alloc --record csv:cxx.csv --record sqlite:cxx.db -- "$(prog allocs_cxx)"
check_equal "C++: the program's status" "$status" 0
tr -d '\r' <cxx.csv | awk -F, 'NR > 1 { printf "%s|", $22 ($25 == "" ? "" : " " $25) }' >cxx.txt
check_equal "C++: every operator new and delete, with sizes" "$(cat cxx.txt)" \
    "operator new 4|operator delete sized 4|operator new[] 40|operator delete[] 40|\
operator new[] nothrow 24|operator delete[] 24|operator new nothrow 8|operator delete sized 8|\
operator new aligned 128|operator delete sized aligned 128|operator new[] aligned 256|\
operator delete[] aligned 256|operator new 100|operator delete 100|operator new aligned 256|\
operator delete aligned 256|operator new aligned nothrow 8|operator delete aligned nothrow 8|\
operator new[] nothrow 16|operator delete[] nothrow 16|operator new 12|operator delete nothrow 12|\
operator new[] 36|operator delete[] sized 36|operator new[] aligned 64|\
operator delete[] sized aligned 64|operator new[] aligned nothrow 32|\
operator delete[] aligned nothrow 32|free|operator new[] 20|operator new[] 48|operator delete[] 48|"
check_equal "C++: the leaked array (an exit-time destructor's delete is recorded)" \
    "$(sql cxx.db "SELECT leaked_blocks, leaked_bytes FROM alloc_runs")" "1|20"

# --- with function calls: the instrumented function an allocation happened in ---------------
pk run -q --sample-interval 0 --monitor function-memory,alloc --record csv:traced.csv --record sqlite:traced.db -- \
    "$(prog allocs_traced)" leak 3
check_equal "function-memory,alloc: calls and allocations in one run" \
    "$(tr -d '\r' <traced.csv | awk -F, 'NR > 1 { printf "%s %s %s|", $2, $3, $10 }')" \
    "call main 0|call leak 1|alloc leak 2|alloc leak 2|alloc leak 2|return leak 1|return main 0|"
pk export --db traced.db --format folded --weight leaked
check_equal "export folded: the call path of the leaks" "$(cat out)" "main;leak 72"

# _exit skips exit's handlers: the run of allocations is ended in _exit itself.
pk run -q --monitor alloc --record sqlite:quit.db -- "$(prog allocs)" quit 4
check_equal "_exit: the run is complete, its leaks whole" \
    "$status $(sql quit.db "SELECT status, exit_status, leaked_blocks, leaked_bytes FROM runs JOIN alloc_runs ON run_id = id")" \
    "7 complete|7|4|96"

# --- RSS and VMS on a timer ----------------------------------------------------------------------
pk run -q --monitor alloc --sample-interval 5ms --record sqlite:hold.db --record csv:hold.csv -- \
    "$(prog allocs)" hold 16 200
check_equal "samples: taken while 16 MiB were held, each a record of its own (thread 0)" \
    "$status $(sql hold.db "SELECT count(*) > 3, max(rss) >= 16 * 1048576, min(vms) > 0 FROM memory_samples")|$(
        tr -d '\r' <hold.csv | awk -F, '$2 == "sample" && $9 == 0 && $13 > 0 && $14 > 0 { n++ } END { print (n > 3) }')" \
    "0 1|1|1|1"
check_equal "samples: every one in the store (the CSV has as many)" \
    "$(sql hold.db "SELECT count(*) FROM memory_samples")" "$(grep -c ',sample,' hold.csv)"
check_equal "samples: the run's peak RSS is at least the largest sample" \
    "$(sql hold.db "SELECT peak_rss >= (SELECT max(rss) FROM memory_samples) FROM alloc_runs")" 1
pk peak --db hold.db
check_equal "peak: the largest sampled RSS" "$(sed -n 2p out | cut -d' ' -f1-3)" "sampled RSS peak"
# The heap at each sample: 10 blocks of 100 KiB allocated 20 ms apart, held, freed 20 ms apart.
pk run -q --monitor alloc --sample-interval 2ms --record sqlite:steps.db -- "$(prog allocs)" steps 10 20
sql steps.db "SELECT heap_bytes, heap_blocks FROM memory_samples ORDER BY time_ns" >steps.txt
# Consecutive repeats collapsed: each level once, then whether it rose, then fell.
awk -F'|' '$1 != last { printf "%s ", $1; last = $1 }' steps.txt >levels.txt
check_equal "heap samples: up to 10 blocks of 100 KiB and back down, whole blocks only" \
    "$status $(awk -F'|' '$1 != $2 * 102400 { bad++ } END { print bad + 0, (NR > 50) }' steps.txt) $(
        awk '{ d = 1; for (i = 2; i <= NF; i++) { if ($i < $(i - 1)) d = 0; else if (d == 0) { print "rises again at", $i; exit } } print "up then down" }' levels.txt)" \
    "0 0 1 up then down"
# The first sample may already hold the first block: the drain handles the
# sampler's records and the program's ring by ring, not merged by time.
check_equal "heap samples: the last holds nothing" "$(awk '{ print $NF }' levels.txt)" "0"
pk peak --db steps.db
check_equal "heap samples: the largest is pikoc peak's figure" \
    "$(sed -n '1s/.*(\([0-9]*\) bytes).*/\1/p' out) $(sql steps.db "SELECT max(heap_bytes) FROM memory_samples")" \
    "1024000 1024000"
pk plot steps.db -o steps.svg
check_equal "plot: the heap line of the samples, under the peak's diamond" \
    "$status $(grep -o 'class="legend">[^<]*' steps.svg | cut -d'>' -f2 | tr '\n' ,) $(grep -c '<polyline fill="none" stroke="#2ca02c"' steps.svg) $(grep -c '<g class="peak">' steps.svg)" \
    "0 RSS,VMS,live heap, 1 1"
# The diamond's top is 5 px above the peak; the line's highest point is the peak.
check_equal "plot: the heap line reaches the peak's height" \
    "$(grep -o '<polyline fill="none" stroke="#2ca02c"[^>]*' steps.svg | sed 's/.*points="//; s/"$//' |
        tr ' ' '\n' | cut -d, -f2 | sort -n | head -1)" \
    "$(sed -n 's/.*<g class="peak">.*<path d="M[0-9.]* \([0-9.]*\) .*/\1/p' steps.svg | awk '{ print $1 + 5 }')"
pk report steps.db -o steps.html
check_equal "report: the timeline has the heap line" \
    "$status $(sed -n '/<section id="timeline">/,/<\/section>/p' steps.html | grep -c '<polyline fill="none" stroke="#2ca02c"')" \
    "0 1"
pk run -q --monitor alloc --sample-interval 0 --record sqlite:nosamples.db -- "$(prog allocs)" hold 1 20
check_equal "--sample-interval 0: no samples, no RSS in the run's flags" \
    "$(sql nosamples.db "SELECT (SELECT count(*) FROM memory_samples), flags FROM runs")" "0|24"
pk run --sample-interval 5xs -- "$(prog allocs)" hold 1 1
check_equal "--sample-interval with a bad unit" "$status $(cat err)" \
    "2 pikoc run: --sample-interval '5xs': unknown unit 'xs' (accepted: ns, us, ms, s)"

# --- fork, posix_spawn, exec ------------------------------------------------------------------
pk run -q --monitor alloc --record sqlite:fork.db -- "$(prog allocs)" fork
check_equal "fork: the child is a run of its own, linked to its parent's" \
    "$status $(sql fork.db "SELECT group_concat(id || ':' || status || ':' || coalesce(parent_run, '-'), ' ')
        FROM runs")" "0 1:complete:- 2:complete:1"
check_equal "fork: each run holds its own process's allocations" \
    "$(sql fork.db "SELECT a.run_id, s.function, sum(a.allocations), sum(a.frees), sum(a.leaked_bytes)
        FROM alloc_sites a JOIN symbols s ON s.run_id = a.run_id AND s.id = a.caller_id
        WHERE s.function IN ('forks', 'in_child') GROUP BY a.run_id, s.function" | tr '\n' ' ')" \
    "1|forks|2|2|0 2|in_child|5|3|200 "
# A daemon's second fork: the middle process forks before its first allocation (so
# before its own run starts); its child's run starts at its own first allocation all the same.
pk run -q --monitor alloc --record sqlite:daemon.db -- "$(prog allocs)" daemon
check_equal "daemon: the grandchild, forked before its parent allocated, is a run of its own" \
    "$status $(sql daemon.db "SELECT count(*) FROM runs WHERE status = 'complete'") $(sql daemon.db "SELECT a.run_id, sum(a.allocations), sum(a.frees), sum(a.leaked_bytes)
        FROM alloc_sites a JOIN symbols s ON s.run_id = a.run_id AND s.id = a.caller_id
        WHERE s.function = 'in_grandchild' GROUP BY a.run_id")" "0 3 2|3|2|300"
# A child that closed its standard input and output before its first allocation: the
# drainer's pipes must not take those numbers (it gives its own up), or the child's exit
# waits for a drainer that no longer hears it.
pk run -q --monitor alloc --record sqlite:closed.db -- "$(prog allocs)" closed
check_equal "closed: a child without stdin and stdout ends, its run complete with every block" \
    "$status $(sql closed.db "SELECT group_concat(id || ':' || status, ' ') FROM runs") $(sql closed.db "SELECT sum(a.allocations), sum(a.frees)
        FROM alloc_sites a JOIN symbols s ON s.run_id = a.run_id AND s.id = a.caller_id
        WHERE s.function = 'in_closed_child'")" "0 1:complete 2:complete 4|4"
pk run -q --monitor alloc --record sqlite:spawn.db -- "$(prog allocs)" spawn "$(prog allocs)"
check_equal "spawn: the program's status" "$status" 0
check_equal "spawn: each run holds its own process's allocations (the forked child's one block)" \
    "$(sql spawn.db "SELECT r.id, r.status, a.allocations, a.frees, a.leaked_blocks FROM runs r
        JOIN alloc_sites a ON a.run_id = r.id JOIN symbols s ON s.run_id = a.run_id AND s.id = a.caller_id
        WHERE s.function = 'spawn' ORDER BY r.id, a.allocations DESC" | tr '\n' ' ')" \
    "1|complete|10|10|0 2|complete|1|1|0 "
# The spawned program is a run of its own.
# Run 2 is the forked child, which left with _exit: its run ended there.
check_equal "spawn: the spawned program's run is complete with allocation records, linked to its parent" \
    "$(sql spawn.db "SELECT r.id, r.status, a.allocations > 0, r.parent_run FROM runs r
        JOIN alloc_runs a ON a.run_id = r.id ORDER BY r.id" | tr '\n' ' ')" "1|complete|1| 2|complete|1|1 3|complete|1|1 "
check_equal "spawn: the forked child's run, ended by its _exit, holds its block" \
    "$(sql spawn.db "SELECT id, status, parent_run, allocations, frees FROM runs JOIN alloc_runs ON run_id = id
        WHERE id = 2")" "2|complete|1|1|1"

# Twice: with the names it needs kept (PIKOC_SYMBOL_CACHE), the replaced image's drainer
# may mark its run executed before the new image starts its own.
pk run -q --monitor alloc --record sqlite:exec-first.db -- /bin/sh -c "exec $(prog allocs) leak 2"
pk run -q --monitor alloc --record sqlite:exec.db -- /bin/sh -c "exec $(prog allocs) leak 2"
check_equal "exec: the new image is a run of its own; the one it replaced says so" \
    "$status $(sql exec.db "SELECT group_concat(id || ':' || status || ':' || coalesce(parent_run, '-'), ' ')
        FROM runs")|$(sql exec.db "SELECT leaked_blocks FROM alloc_runs WHERE run_id = 2")" \
    "0 1:executed:- 2:complete:1|2"

pk run -q --no-follow --monitor alloc --record sqlite:nofollow.db -- "$(prog allocs)" spawn "$(prog allocs)"
check_equal "--no-follow: the spawned program runs untraced, the parent's run is whole" \
    "$status $(sql nofollow.db "SELECT group_concat(r.id || ':' || r.status || ':' || (a.allocations > 0), ' ')
        FROM runs r JOIN alloc_runs a ON a.run_id = r.id")" "0 1:complete:1"

# --- threads that free each other's blocks ---------------------------------------------------
pk run -q --monitor alloc --record sqlite:threads.db -- "$(prog allocs)" threads 4 2000
check_equal "threads: status" "$status" 0
check_equal "threads: every block of allocs.c, freed on the thread that did not allocate it" \
    "$(sql threads.db "SELECT a.caller_line, sum(allocations), sum(frees), sum(freed_bytes), sum(leaked_blocks)
        FROM alloc_sites a JOIN symbols s ON s.run_id = a.run_id AND s.id = a.caller_id
        WHERE s.file LIKE '%allocs.c' GROUP BY a.caller_line ORDER BY a.caller_line" | tr '\n' ' ')" \
    "$(line_of 'void \*p = malloc(16)')|8000|8000|128000|0 $(line_of 'void \*p = malloc(48)')|8000|8000|384000|0 "
check_equal "threads: each named (the main thread by its program)" \
    "$(sql threads.db "SELECT group_concat(name, ' ') FROM (SELECT name FROM threads ORDER BY name)")" \
    "alloc_allocs allocs-w0 allocs-w1 allocs-w2 allocs-w3"
# Threads one after another: each takes the ring the one before handed back
# before any commit names them, and each keeps its name.
pk run -q --monitor alloc --record sqlite:sequence.db -- "$(prog allocs)" sequence 3
check_equal "threads one after another, each on the ring of the one before: each named" \
    "$status $(sql sequence.db "SELECT count(*), group_concat(name, ' ') FROM (SELECT name FROM threads ORDER BY name)")" \
    "0 4|alloc_allocs allocs-s0 allocs-s1 allocs-s2"
check_equal "threads: no free of an unknown block" \
    "$(sql threads.db "SELECT unknown_frees FROM alloc_runs")" 0

# A block handed over through the program: its free's timestamp may be read
# a little before its allocation's on the other thread (a plain rdtsc runs
# ahead of the load that got the pointer); the drain puts the allocation
# first all the same (drain.c, take_ahead). Ten runs, none with a free of
# an unknown block, each with every block of allocs.c freed.
got= want=
for i in 1 2 3 4 5 6 7 8 9 10; do
    rm -f handover.db
    pk run -q --monitor alloc --record sqlite:handover.db -- "$(prog allocs)" threads 4 20000
    got="$got$status $(sql handover.db "SELECT unknown_frees, (SELECT sum(leaked_blocks)
        FROM alloc_sites a JOIN symbols s ON s.run_id = a.run_id AND s.id = a.caller_id
        WHERE s.file LIKE '%allocs.c') FROM alloc_runs")/"
    want="${want}0 0|0/"
done
check_equal "threads: 4 x 20000 blocks handed over, every free of a known block, 10 runs" \
    "$got" "$want"

# --- blocks a realloc gives back, handed at once to another thread -------------------------
# Without jemalloc's thread caches a block that realloc moves away from goes
# straight back to the arena, and another thread's next malloc(48) gets it,
# often before the realloc has returned (docs/allocations.md, "Threads").
# Per site of allocs.c: allocations, bytes, frees, freed bytes, leaked
# blocks; then the run's frees of unknown blocks. Ten runs each way, the
# last with the clock that does not read the TSC (CLOCK_MONOTONIC).
regrow_counts() { # DB
    sql "$1" "SELECT a.caller_line, allocations, bytes, frees, freed_bytes, leaked_blocks
        FROM alloc_sites a JOIN symbols s ON s.run_id = a.run_id AND s.id = a.caller_id
        WHERE s.file LIKE '%allocs.c' ORDER BY a.caller_line" | tr '\n' ' '
    sql "$1" "SELECT unknown_frees FROM alloc_runs"
}
regrow_expected="0 $(line_of 'char \*p = malloc(48)')|200000|9600000|200000|9600000|0 \
$(line_of 'p = realloc(p, 3000)')|200000|600000000|200000|600000000|0 0"
for setting in MALLOC_CONF=tcache:false,narenas:1 MALLOC_CONF=tcache:true \
    "MALLOC_CONF=tcache:false,narenas:1 PIKOC_CLOCK=monotonic"; do
    got= want=
    for i in 1 2 3 4 5 6 7 8 9 10; do
        rm -f regrow.db
        export $setting
        pk run -q --monitor alloc --record sqlite:regrow.db -- "$(prog allocs)" regrow 4 50000
        unset MALLOC_CONF PIKOC_CLOCK
        got="$got$status $(regrow_counts regrow.db)/"
        want="$want$regrow_expected/"
    done
    check_equal "regrow, $setting: 4 threads x 50000 rounds, every block exact, 10 runs" \
        "$got" "$want"
done

# --- oracles: glibc's memusage and heaptrack on the same programs ------------------------------
# Counts and bytes per allocation function from our records, as memusage
# counts them: realloc's bytes are its growth, frees are free() calls.
by_function() { # CSV
    tr -d '\r' <"$1" | awk -F, 'NR > 1 {
        f = $22; n[f]++
        if ($2 == "alloc") { b[f] += $25; size[$23] = $25 }
        if ($2 == "realloc") { g = $25 - size[$24]; if (g > 0) b[f] += g; size[$23] = $25 }
    } END { printf "malloc %d %d|realloc %d %d|calloc %d %d|free %d|", n["malloc"], b["malloc"],
        n["realloc"], b["realloc"], n["calloc"], b["calloc"], n["free"] }'
}
memusage_counts() { # PROGRAM ARGS...: the same line from memusage's summary
    memusage "$@" 2>&1 >/dev/null | sed 's/\x1b\[[0-9;]*m//g' | awk -F'|' '
        $1 ~ /^ *(malloc|realloc|calloc|free)$/ { split($2, v, " "); k = $1; gsub(/ /, "", k); n[k] = v[1]; b[k] = v[2] }
        END { printf "malloc %d %d|realloc %d %d|calloc %d %d|free %d|", n["malloc"], b["malloc"],
            n["realloc"], b["realloc"], n["calloc"], b["calloc"], n["free"] }'
}
if command -v memusage >/dev/null; then
    pk run -q --sample-interval 0 --monitor alloc --record csv:loop.csv -- "$(prog allocs)" loop 1000
    ours=$(by_function loop.csv)
    check_equal "memusage: loop 1000 under pikoc" "$ours" \
        "malloc 1000 32000|realloc 1000 32000|calloc 1000 32000|free 2000|"
    # memusage also counts what the C library allocates before main: subtract a run of 0 rounds.
    base=$(memusage_counts "$(prog allocs)" loop 0)
    full=$(memusage_counts "$(prog allocs)" loop 1000)
    numbers() { echo "$1" | tr -c '0-9' ' '; }
    check_equal "memusage: the same calls and bytes (beyond its own start-up)" \
        "$(printf '%s\n%s\n' "$(numbers "$base")" "$(numbers "$full")" | awk '
            NR == 1 { for (i = 1; i <= NF; i++) b[i] = $i; next }
            { printf "malloc %d %d|realloc %d %d|calloc %d %d|free %d|", $1-b[1], $2-b[2],
                $3-b[3], $4-b[4], $5-b[5], $6-b[6], $7-b[7] }')" "$ours"
else
    not_ok "memusage is not installed (scripts/deps.sh installs libc-devtools)"
fi

# heaptrack_print's flame graph costs per site of a function of allocs.c,
# sorted, zeros dropped; and ours the same way.
heaptrack_costs() { # FUNCTION COST PROGRAM ARGS...
    f=$1 cost=$2
    shift 2
    rm -f ht.zst
    heaptrack -o "$work/ht" "$@" >/dev/null 2>&1
    heaptrack_print -f ht.zst -F ht.txt --flamegraph-cost-type "$cost" >/dev/null 2>&1
    grep -E "(^|;)$f \(allocs\.c\); [0-9]+$" ht.txt | awk '$NF > 0 { print $NF }' | sort -n | tr '\n' ' '
}
our_costs() { # DB COLUMN FUNCTION
    sql "$1" "SELECT a.$2 FROM alloc_sites a JOIN symbols s ON s.run_id = a.run_id AND s.id = a.caller_id
        WHERE s.function = '$3' AND a.$2 > 0" | sort -n | tr '\n' ' '
}
if command -v heaptrack >/dev/null && command -v heaptrack_print >/dev/null; then
    pk run -q --monitor alloc --record sqlite:loop.db -- "$(prog allocs)" loop 1000
    for pair in allocations:allocations temporary:temporary peak:peak_bytes; do
        cost=${pair%%:*} column=${pair#*:}
        check_equal "heaptrack: loop 1000, $cost per site" \
            "$(our_costs loop.db "$column" loop)" "$(heaptrack_costs loop "$cost" "$(prog allocs)" loop 1000)"
    done
    pk run -q --monitor alloc --record sqlite:leak.db -- "$(prog allocs)" leak 500
    check_equal "heaptrack: leak 500, leaked bytes" \
        "$(our_costs leak.db leaked_bytes leak)" "$(heaptrack_costs leak leaked "$(prog allocs)" leak 500)"
    check_equal "heaptrack: each, peak per site" \
        "$(our_costs each.db peak_bytes each)" "$(heaptrack_costs each peak "$(prog allocs)" each)"
    # heaptrack sees realloc(p, 0) return NULL and records nothing: the 300-byte block
    # stays live for it (docs/allocations.md). pikoc records the free.
    sum() { awk '{ for (i = 1; i <= NF; i++) s += $i } END { print s + 0 }'; }
    check_equal "heaptrack: each, leaked bytes (heaptrack also counts realloc(p, 0)'s 300)" \
        "$(our_costs each.db leaked_bytes each | sum) $(heaptrack_costs each leaked "$(prog allocs)" each | sum)" \
        "2364 2664"
    check_equal "heaptrack: threads, allocations per site of the workers" \
        "$(our_costs threads.db allocations worker)" \
        "$(heaptrack_costs worker allocations "$(prog allocs)" threads 4 2000)"
    check_equal "heaptrack: regrow, allocations per site" \
        "$(our_costs regrow.db allocations regrower)" \
        "$(heaptrack_costs regrower allocations "$(prog allocs)" regrow 4 50000)"
else
    not_ok "heaptrack is not installed (scripts/deps.sh installs heaptrack)"
fi

# --- real programs from Debian keep their exit status -------------------------------------------
pk run -q --monitor alloc --record sqlite:real.db -- /usr/bin/python3 -c \
    'import sys, json; json.dumps(list(range(1000))); sys.exit(3)'
check_equal "python3: its exit status, its allocations recorded" \
    "$status $(sql real.db "SELECT allocations > 1000, unknown_frees, status FROM runs JOIN alloc_runs ON run_id = id")" \
    "3 1|0|complete"
# The sqlite3 shell shares its SQLite library with pikoc's recorder, which has
# initialised it: the shell's own configuration calls warn (docs/allocations.md).
pk run -q --monitor alloc --record sqlite:real.db -- /usr/bin/sqlite3 :memory: 'SELECT 40 + 2'
check_equal "sqlite3: its answer and status" "$status $(tail -1 out)" "0 42"
printf 'hello, allocations\n' >text.txt
pk run -q --monitor alloc --record sqlite:real.db -- /bin/gzip -k text.txt
check_equal "gzip: compresses, status 0" "$status $(gzip -dc text.txt.gz)" "0 hello, allocations"
check_equal "real programs: three runs, each complete with allocation records" \
    "$(sql real.db "SELECT count(*) FROM alloc_runs JOIN runs ON id = run_id WHERE allocations > 0 AND status = 'complete'")" 3

# --- names kept by build-id (PIKOC_SYMBOL_CACHE) ----------------------------------------------
# A new thread's dtv is allocated in ld.so, whose DWARF is libc6-dbg's separate debug
# file: its name and line are kept in the cache directory, by ld.so's build-id, and the
# next run takes them from there rather than from the DWARF.
ldso=$(readelf -l "$(prog allocs)" | sed -n 's/.*interpreter: \(.*\)]$/\1/p')
build_id=$(readelf -n "$ldso" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p')
cached_lines="$work/symbols/$build_id.lines"
dtv_site() { # db: ld.so's allocation site as "function:file:line"
    pk top --db "$1" --by allocations --group site --format csv
    rows | awk -F, '$1 == "allocate_dtv" { print $1 ":" $8 ":" $2 }'
}
cached_run() { # db
    PIKOC_SYMBOL_CACHE=$work/symbols pk run -q --monitor alloc --record "sqlite:$1" -- \
        "$(prog allocs)" threads 2 10
}
if [ -z "$build_id" ] || [ ! -r "/usr/lib/debug/.build-id/$(echo "$build_id" | cut -c1-2)/$(echo "$build_id" | cut -c3-).debug" ]; then
    ok "symbol cache: # SKIP no separate debug file for $ldso (libc6-dbg)"
else
    cached_run cold.db
    cold=$(dtv_site cold.db)
    check_equal "symbol cache: the first run names ld.so's site from its DWARF" \
        "$(echo "$cold" | cut -d: -f1,2)" "allocate_dtv:../include/rtld-malloc.h"
    check_equal "symbol cache: and keeps it, by ld.so's build-id" \
        "$(cut -f2- "$cached_lines" | tr '\t' :)" "$cold"
    cached_run warm.db
    check_equal "symbol cache: the next run names it the same" "$(dtv_site warm.db)" "$cold"
    # What the file says is what the run says: it is read, not the DWARF.
    offset=$(cut -f1 "$cached_lines")
    printf '%s\tallocate_dtv\tkept.h\t7\n' "$offset" >"$cached_lines"
    cached_run kept.db
    check_equal "symbol cache: a run takes the name from the file" "$(dtv_site kept.db)" \
        "allocate_dtv:kept.h:7"
    # Damage: lines cut short and run into the next, garbage, an offset past ld.so's end.
    printf '%s\tallocate_dtv\tcut.h' "$offset" >"$cached_lines"
    printf '%s\tallocate_dtv\tmerged.h\t8\n' "$offset" >>"$cached_lines"
    printf '%s\tallocate_dtv\tkept.h\t9' "$(echo "$offset" | cut -c1-3)" >>"$cached_lines"
    printf '%s\tallocate_dtv\tmerged.h\t10\n' "$offset" >>"$cached_lines"
    printf 'garbage\n@\t\t\t\n@zz\tf\tg.h\t1\n@ffffffffffff\tf\tg.h\t1\n' >>"$cached_lines"
    cached_run damaged.db
    check_equal "symbol cache: a damaged file is skipped line by line, never believed" \
        "$(dtv_site damaged.db)" "$cold"
    # Not a regular file in its place: a FIFO would block the drain, /dev/zero feed it
    # forever, and a symbolic link (here to a file with an entry of its own) is not followed.
    printf '%s\tallocate_dtv\tlinked.h\t3\n' "$offset" >linked.lines
    for kind in fifo device link; do
        rm -f "$cached_lines"
        case $kind in
        fifo) mkfifo "$cached_lines" ;;
        device) ln -s /dev/zero "$cached_lines" ;;
        link) ln -s "$work/linked.lines" "$cached_lines" ;;
        esac
        cached_run "$kind.db"
        check_equal "symbol cache: a $kind in the file's place is not read, the run ends" \
            "$status $(dtv_site "$kind.db")" "0 $cold"
    done
    rm -f "$cached_lines"
    PIKOC_SYMBOL_CACHE=off pk run -q --monitor alloc --record sqlite:off.db -- \
        "$(prog allocs)" threads 2 10
    check_equal "symbol cache: off keeps nothing, names the same" \
        "$(dtv_site off.db) $(ls "$work/symbols")" "$cold "
    # A relative directory is the one pikoc run starts in, also for a program that moves.
    mkdir elsewhere
    PIKOC_SYMBOL_CACHE=relative pk run -q --monitor alloc --record sqlite:relative.db -- \
        sh -c 'cd elsewhere && exec "$0" threads 2 10' "$(prog allocs)"
    check_equal "symbol cache: a relative directory is taken from where pikoc run starts" \
        "$status $(dtv_site relative.db) $(ls relative | grep -c "^$build_id.lines$") $(ls elsewhere)" \
        "0 $cold 1 "
fi

echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]
