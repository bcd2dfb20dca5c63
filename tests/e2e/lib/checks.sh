# shellcheck shell=bash
# Sourced by the e2e shell tests (image_test.sh, registry_test.sh, real_node_test.sh): counted
# checks and the verdict. Set `check_name` ("image test") before sourcing; the caller's
# `start=$SECONDS` dates the run.
failures=0
pass() { echo "PASS: $*"; }
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
# one_line TEXT: TEXT on one line, spaces squeezed, at most 600 characters (for a FAIL message).
one_line() { tr '\n' ' ' <<<"$1" | sed 's/  */ /g' | cut -c1-600; }
# finish: the verdict line; exits 1 when a check failed.
finish() {
  echo "$check_name: $((SECONDS - start))s, $failures failure(s)"
  if ((failures)); then
    echo "$check_name: FAIL"
    exit 1
  fi
  echo "$check_name: PASS"
}
# run NAME CMD...: runs CMD (at most $run_timeout seconds, default 30) with its stdout in
# $work/NAME.out and stderr in $work/NAME.err; sets rc, out, err. Needs `work`.
run() {
  local name=$1
  shift
  rc=0
  timeout "${run_timeout:-30}" "$@" >"$work/$name.out" 2>"$work/$name.err" || rc=$?
  out=$(cat "$work/$name.out")
  err=$(cat "$work/$name.err")
}
