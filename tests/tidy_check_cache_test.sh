#!/usr/bin/env bash
# Proves the cache of tests/tidy_check.sh with a stub clang-tidy (CLANG_TIDY) on a minimal git
# tree, compiled by the real compiler for the preprocessed output: a clean file is checked once and
# then taken from the cache; a change to a header it includes (code or only a comment), to
# .clang-tidy or to the clang-tidy version checks it again; a file with a finding is never cached
# and fails every run; ROLLGATE_TIDY_NO_CACHE=1 checks everything; another clone of the same
# sources at another path reuses the cache; a file edited during its check is not cached.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

# The stub: logs each file it checks; a file containing FINDING has a finding; a file containing
# EDIT_DURING_CHECK is edited while it is checked.
cat >"$tmp/clang-tidy" <<'EOF'
#!/usr/bin/env bash
if [[ $1 == --version ]]; then echo "stub clang-tidy ${STUB_VERSION:-1}"; exit 0; fi
f=${!#}
echo "$f" >>"$STUB_LOG"
sed -i 's/EDIT_DURING_CHECK/edited/' "$f"
if grep -q FINDING "$f"; then echo "$f:1:1: error: a finding [stub-check]"; exit 1; fi
exit 0
EOF
chmod +x "$tmp/clang-tidy"

tree() {  # tree DIR: a git tree with two clean files (one includes a.h) and one with a finding
  local t=$1
  mkdir -p "$t/controller" "$t/tests" "$t/build"
  cp "$here/tidy_check.sh" "$t/tests/"
  printf 'Checks: "-*,bugprone-*"\n' >"$t/.clang-tidy"
  printf '#pragma once\nint A();\n' >"$t/controller/a.h"
  printf '#include "controller/a.h"\nint A() { return 1; }\n' >"$t/controller/a.cc"
  printf 'int B() { return 2; }\n' >"$t/controller/b.cc"
  printf 'int Bad() { return 3; }  // FINDING\n' >"$t/tests/bad.cc"
  git -C "$t" init -q
  git -C "$t" add .
  compile_db "$t"
}

compile_db() {  # compile_db DIR: DIR/build/compile_commands.json for DIR's three files
  local t=$1 sep='' f
  {
    echo '['
    for f in controller/a.cc controller/b.cc tests/bad.cc; do
      printf '%s{"directory": "%s/build", "file": "%s/%s",\n' "$sep" "$t" "$t" "$f"
      printf ' "command": "c++ -I%s -std=c++20 -o %s.o -c %s/%s"}\n' "$t" "${f//\//_}" "$t" "$f"
      sep=,
    done
    echo ']'
  } >"$t/build/compile_commands.json"
}

# expect DIR ok|fail "checked files" "N checked, M from the cache" NAME [VAR=value...]
expect() {
  local t=$1 want=$2 files=$3 counts=$4 name=$5 rc=0 got
  shift 5
  : >"$tmp/log"
  env -u ROLLGATE_CACHE -u ROLLGATE_TIDY_NO_CACHE XDG_CACHE_HOME="$tmp/cache" \
    CLANG_TIDY="$tmp/clang-tidy" STUB_LOG="$tmp/log" "$@" \
    bash "$t/tests/tidy_check.sh" "$t/build" >"$tmp/out" 2>&1 || rc=$?
  got=$(sed "s|^$t/||" "$tmp/log" | sort | xargs)
  if { [[ $want == ok ]] && ((rc == 0)); } || { [[ $want == fail ]] && ((rc != 0)); } &&
    [[ $got == "$files" ]] && grep -qF -e "($counts;" -e "; $counts;" "$tmp/out"; then
    pass=$((pass + 1))
  else
    echo "FAIL: $name: want $want, checked [$files], ($counts); exit $rc, checked [$got]:" >&2
    cat "$tmp/out" >&2
    fail=$((fail + 1))
  fi
}

t=$tmp/tree
tree "$t"
all="controller/a.cc controller/b.cc tests/bad.cc"
expect "$t" fail "$all" "3 checked, 0 from the cache" "first run: everything checked"
expect "$t" fail "tests/bad.cc" "1 checked, 2 from the cache" "second run: clean files cached"
expect "$t" fail "tests/bad.cc" "1 checked, 2 from the cache" "a finding is never cached"
printf '#pragma once\nint A();\nint A2();\n' >"$t/controller/a.h"
expect "$t" fail "controller/a.cc tests/bad.cc" "2 checked, 1 from the cache" \
  "a changed header: its includer is checked again"
expect "$t" fail "tests/bad.cc" "1 checked, 2 from the cache" "the changed header, now cached"
printf '#pragma once\nint A();  // NOLINT\nint A2();\n' >"$t/controller/a.h"
expect "$t" fail "controller/a.cc tests/bad.cc" "2 checked, 1 from the cache" \
  "a comment in a header counts (NOLINT)"
printf 'Checks: "-*,misc-*"\n' >"$t/.clang-tidy"
expect "$t" fail "$all" "3 checked, 0 from the cache" "a changed .clang-tidy"
expect "$t" fail "$all" "3 checked, 0 from the cache" "another clang-tidy version" STUB_VERSION=2
expect "$t" fail "$all" "3 checked, cache off" "ROLLGATE_TIDY_NO_CACHE=1" ROLLGATE_TIDY_NO_CACHE=1
expect "$t" fail "tests/bad.cc" "1 checked, 2 from the cache" "the cache survives a no-cache run"

# Another clone at another path, same sources: the cache is shared.
t2=$tmp/clone
tree "$t2"
cp "$t/controller/a.h" "$t/.clang-tidy" "$t2/" && mv "$t2/a.h" "$t2/controller/a.h"
expect "$t2" fail "tests/bad.cc" "1 checked, 2 from the cache" "another clone reuses the cache"

printf 'int Bad() { return 3; }\n' >"$t/tests/bad.cc"
expect "$t" ok "tests/bad.cc" "1 checked, 2 from the cache" "the fixed file passes"
expect "$t" ok "" "0 checked, 3 from the cache" "and is cached"

# A file edited while it is checked: the result belongs to neither content, nothing is cached.
edit_during_check='int B() { return 2; }  // EDIT_DURING_CHECK\n'
printf "$edit_during_check" >"$t/controller/b.cc"
expect "$t" ok "controller/b.cc" "1 checked, 2 from the cache" "a file edited during its check"
printf "$edit_during_check" >"$t/controller/b.cc"
expect "$t" ok "controller/b.cc" "1 checked, 2 from the cache" \
  "its content before the edit was not cached"
expect "$t" ok "controller/b.cc" "1 checked, 2 from the cache" "its content after the edit neither"
expect "$t" ok "" "0 checked, 3 from the cache" "a stable file is cached again"

echo "tidy check cache: $pass passed, $fail failed"
((fail == 0))
