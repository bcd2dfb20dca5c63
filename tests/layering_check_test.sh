#!/usr/bin/env bash
# Proves that tests/layering_check.sh catches what it is for: it passes on this repository and on
# a minimal tree, and fails on an upward include, on validator/ reaching into the controller, and
# on a folder that has no layer.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
check="$here/layering_check.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

expect() {  # expect ok|fail NAME: runs the check on $tmp/tree
  local want=$1 name=$2 rc=0
  bash "$check" "$tmp/tree" >"$tmp/out" 2>&1 || rc=$?
  if { [[ $want == ok ]] && ((rc == 0)); } || { [[ $want == fail ]] && ((rc != 0)); }; then
    pass=$((pass + 1))
  else
    echo "FAIL: $name: want $want, exit $rc:" >&2
    cat "$tmp/out" >&2
    fail=$((fail + 1))
  fi
}

tree() {  # a fresh minimal tree that follows the rules
  rm -rf "$tmp/tree"
  mkdir -p "$tmp/tree/controller/"{common,kube,api,rollout,metrics,validator,cmd}
  echo '#pragma once' >"$tmp/tree/controller/common/a.h"
  printf '#include "controller/common/a.h"\n' >"$tmp/tree/controller/kube/b.h"
  printf '#include "controller/kube/b.h"\n#include "controller/api/c.h"\n' \
    >"$tmp/tree/controller/rollout/d.cc"
  echo '#pragma once' >"$tmp/tree/controller/api/c.h"
  printf '#include "controller/common/a.h"\n' >"$tmp/tree/controller/validator/v.cc"
  printf '#include "controller/validator/v.h"\n#include "controller/rollout/d.h"\n' \
    >"$tmp/tree/controller/cmd/main.cc"
}

if bash "$check" >/dev/null; then pass=$((pass + 1)); else
  echo "FAIL: the repository breaks its own layering" >&2
  fail=$((fail + 1))
fi
tree
expect ok "a tree that follows the rules"
tree
printf '#include "controller/rollout/d.h"\n' >"$tmp/tree/controller/kube/up.cc"
expect fail "kube/ including rollout/"
tree
printf '#include "controller/metrics/m.h"\n' >"$tmp/tree/controller/api/up.h"
expect fail "api/ including metrics/"
tree
printf '#include "controller/kube/b.h"\n' >"$tmp/tree/controller/validator/dep.cc"
expect fail "validator/ including kube/"
tree
printf '#include "controller/validator/v.h"\n' >"$tmp/tree/controller/rollout/probe.cc"
expect fail "rollout/ including validator/"
tree
mkdir -p "$tmp/tree/controller/cli"
printf '#include "controller/cmd/main.h"\n' >"$tmp/tree/controller/cli/up.cc"
expect fail "cli/ including cmd/"
tree
mkdir -p "$tmp/tree/controller/newthing"
echo '#pragma once' >"$tmp/tree/controller/newthing/x.h"
expect fail "a folder without a layer"

echo "$pass passed, $fail failed"
((fail == 0))
