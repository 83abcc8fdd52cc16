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
echo "all checks passed"
