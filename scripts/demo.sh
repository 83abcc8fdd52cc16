#!/bin/sh
# demo.sh — sets everything up (Debian packages, build) and monitors a bundled
# example end to end: a program with a memory spike, traced with no code
# change, its records shown as a table and written as CSV.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
"$top/scripts/build.sh" build
cd "$top/build"
echo "== examples/whole_program, monitored with PIKOC_RECORD (function-memory monitor) =="
PIKOC_RECORD="stdout;csv:demo.csv" ./examples/whole_program
echo
echo "== the same run as CSV: build/demo.csv ($(($(wc -l <demo.csv) - 1)) records) =="
echo "== decorator-style: only compute() and what it calls =="
./examples/decorator
