#!/bin/sh
# build.sh [BUILD_DIR [CONFIGURE_ARGS...]] — configures and builds pikoc out
# of tree (default: build/), regenerating configure when it is missing.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-build}
[ $# -gt 0 ] && shift
cd "$top"
[ -x configure ] || autoreconf --install --force >/dev/null 2>&1
mkdir -p "$dir"
cd "$dir"
[ -f Makefile ] || "$top/configure" --enable-werror "$@" >/dev/null
make -j"$(nproc)" >/dev/null
