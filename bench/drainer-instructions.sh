#!/bin/sh
# drainer-instructions.sh — instructions the drainer spends per allocation
# call, counted by callgrind (exact and repeatable where the machine's times
# are not): `pikoc run -q --monitor alloc --record sqlite:DB` of
# bench/allocs 2 200000 less that of bench/allocs 2 100000, over the 425,000
# calls between them (start-up and symbols cancel out). The drainer is the
# process with the most instructions.
#
# usage: bench/drainer-instructions.sh [-b BUILDDIR]...
#   -b BUILDDIR  a build tree holding pikoc and bench/allocs (default: .);
#                several are measured one after the other
set -u

dirs=
while getopts b:h opt; do
    case $opt in
    b) dirs="$dirs $OPTARG" ;;
    *)
        sed -n '/^# usage:/,/^[^#]/s/^# \{0,1\}//p' "$0" >&2
        exit 2
        ;;
    esac
done
[ -n "$dirs" ] || dirs=.
command -v valgrind > /dev/null || {
    echo "drainer-instructions.sh: valgrind is not installed (apt-get install valgrind)" >&2
    exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/pikoc-drainer-ir-XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT INT TERM

# The drainer's instructions for one run of allocs 2 ITERATIONS.
drainer_instructions() {
    dir=$(cd "$1" && pwd) out=$work/$2
    mkdir -p "$out"
    (cd "$out" && valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$out/cg.%p" \
        "$dir/pikoc" run -q --monitor alloc --record "sqlite:$out/run.db" -- \
        "$dir/bench/allocs" 2 "$2" > /dev/null 2>&1) || {
        echo "drainer-instructions.sh: the run under valgrind failed ($dir)" >&2
        return 1
    }
    for f in "$out"/cg.*; do
        sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$f"
    done | sort -n | tail -1
}

status=0
for dir in $dirs; do
    [ -x "$dir/pikoc" ] && [ -x "$dir/bench/allocs" ] || {
        echo "drainer-instructions.sh: $dir has no pikoc or bench/allocs (make bench/allocs)" >&2
        status=1
        continue
    }
    small=$(drainer_instructions "$dir" 100000) && large=$(drainer_instructions "$dir" 200000) || {
        status=1
        continue
    }
    awk -v d="$dir" -v a="$small" -v b="$large" \
        'BEGIN { printf "%s: %.1f drainer instructions per allocation call\n", d, (b - a) / 425000 }'
    rm -rf "${work:?}"/*
done
exit $status
