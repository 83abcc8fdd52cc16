#!/bin/sh
# demo.sh — sets everything up (Debian packages, build) and does the main job
# end to end: a program with a memory spike, built with -finstrument-functions
# and nothing else, run under `pikoc run` into SQLite, then asked questions.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
"$top/scripts/build.sh" build
cd "$top/build"
pikoc=./pikoc

echo "== a plain program: cc -g -finstrument-functions, no pikoc code, no libpikoc =="
cc -g -O1 -finstrument-functions "$top/examples/whole_program.c" -o demo_app
rm -f demo.db

echo "== pikoc run --record sqlite:demo.db -- ./demo_app =="
$pikoc run --record sqlite:demo.db -- ./demo_app
echo
echo "== pikoc top --db demo.db: functions by total time =="
$pikoc top --db demo.db
echo
echo "== pikoc tree --db demo.db: the call tree with inclusive time and bytes =="
$pikoc tree --db demo.db
echo
echo "== pikoc spikes --db demo.db --threshold 4MiB: where RSS jumped =="
$pikoc spikes --db demo.db --threshold 4MiB
echo
echo "Next: build/pikoc export --db build/demo.db -o trace.json (open it in https://ui.perfetto.dev),"
echo "      build/pikoc --help for every command."
