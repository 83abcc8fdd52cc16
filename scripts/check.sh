#!/bin/sh
# check.sh — sets everything up and runs the whole test suite: the cmocka unit
# tests and integration tests with warnings as errors, again under
# AddressSanitizer and UndefinedBehaviorSanitizer, then make distcheck.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
jobs=$(nproc)

echo "== build and test (warnings are errors) =="
"$top/scripts/build.sh" build
(cd "$top/build" && make -j"$jobs" check) || { cat "$top"/build/tests/*.log; exit 1; }

echo "== build and test under AddressSanitizer and UndefinedBehaviorSanitizer =="
"$top/scripts/build.sh" build-sanitizers --enable-sanitizers
(cd "$top/build-sanitizers" && ASAN_OPTIONS=detect_leaks=1 make -j"$jobs" check) ||
    { cat "$top"/build-sanitizers/tests/*.log; exit 1; }

echo "== make distcheck =="
(cd "$top/build" && make -j"$jobs" distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror >/dev/null) ||
    { echo "make distcheck failed"; exit 1; }
# One closing line over both builds: cmocka's "[  PASSED  ] N test(s)" and the
# scripts' "N passed, M failed" (some write it as a TAP comment, "# N passed..."
# or "# NAME: N passed...").
passed=$(cat "$top"/build/tests/*.log "$top"/build-sanitizers/tests/*.log |
    sed -n -e 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' \
        -e 's/^\(# \)\{0,1\}\([A-Za-z0-9_.-]*: \)\{0,1\}\([0-9]*\) passed, [0-9]* failed.*/\3/p' |
    awk '{ n += $1 } END { print n + 0 }')
echo "all checks passed (unit and integration tests, plain and sanitizer builds, distcheck)"
echo "$passed passed, 0 failed"
