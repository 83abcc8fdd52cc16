# calls-lib.sh — what the drivers of bench/calls (run-calls.sh,
# compare-reads.sh) share; sourced, not run.

# A clean environment: no PIKOC_* setting of the caller leaks into a run.
calls_clean_env() {
    for v in $(env | sed -n 's/^\(PIKOC_[A-Za-z0-9_]*\)=.*/\1/p'); do
        unset "$v"
    done
}

# The real binary of the build tree $1, not the libtool wrapper (uftrace
# must preload into the program itself, and every run should pay the same
# start-up): sets prog, and libs to the library directory it needs on
# LD_LIBRARY_PATH (empty: none). False when $1 has no bench/calls.
calls_binary() { # builddir
    if [ -x "$1/bench/.libs/calls" ]; then
        prog=$(cd "$1/bench/.libs" && pwd)/calls
        libs=$(cd "$1/.libs" && pwd)
    elif [ -x "$1/bench/calls" ]; then
        prog=$(cd "$1/bench" && pwd)/calls
        libs=
    else
        return 1
    fi
}

# The instrumented calls of a run of ITERATIONS, as bench/calls.c counts them.
calls_of() { # iterations
    echo $((4 * $1 + ($1 + 7999) / 8000))
}

# Sets with_limit to the command that stops a run still going after $1
# seconds (coreutils timeout; none: no limit, empty).
calls_limit() { # seconds
    with_limit=""
    command -v timeout >/dev/null 2>&1 && with_limit="timeout -k 10 $1"
}

# The value of KEY in the key=value line in $work/out.
value() {
    sed -n "s/.* $1=\([^ ]*\).*/\1/p; s/^$1=\([^ ]*\).*/\1/p" "$work/out" | head -n 1
}
