# checks.sh — the checks the shell tests share (sourced, after $work and
# $pikoc are set): each prints "ok - NAME" or "not ok - NAME: why" and counts
# into $passed and $failed, which the test reports and exits on at its end;
# pk, which runs pikoc, with rows, the lines of its output after the header;
# calls_by_file; and wait_for_file.
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; }
check_equal() { # name got expected
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: got '$2', expected '$3'"; fi
}
check_same() { # name file-got file-expected
    if diff -u "$3" "$2" >"$work/diff"; then ok "$1"; else not_ok "$1" && cat "$work/diff"; fi
}
pk() { # pikoc ARGS...: stdout in out, stderr in err, status in $status
    timeout 120 "$pikoc" "$@" >"$work/out" 2>"$work/err"
    status=$?
}
rows() { tr -d '\r' <"$work/out" | tail -n +2; }
calls_by_file() { # csv: "function file count|" for each run of calls of one function
    tr -d '\r' <"$1" | awk -F, 'NR > 1 && $2 == "call" { n = split($4, p, "/"); print $3, p[n] }' |
        uniq -c | awk '{ printf "%s %s %s|", $2, $3, $1 }'
}
wait_for_file() { # FILE: waits (up to a minute) until a program has written something into it
    tries=0
    until [ -s "$1" ] || [ $tries -ge 600 ]; do
        sleep 0.1
        tries=$((tries + 1))
    done
}
