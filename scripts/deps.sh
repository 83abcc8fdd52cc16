#!/bin/sh
# deps.sh — installs the Debian 12 packages pikoc builds, tests and
# benchmarks with. Safe to run again; uses sudo when not root.
set -eu
packages="build-essential autoconf automake libtool pkg-config
libjemalloc-dev libzmq3-dev libsqlite3-dev libdw-dev libelf-dev libcmocka-dev libunwind-dev
sqlite3 uftrace heaptrack libc-devtools python3-zmq libxml2-utils chromium libc6-dbg strace"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
fi
