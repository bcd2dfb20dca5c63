#!/usr/bin/env bash
# Every tracked C++ file is clang-formatted (.clang-format: Google style, 100 columns).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "format check: clang-format is not installed" >&2; exit 1; }
# Tracked files that still exist (a deletion not yet committed is not a format error).
mapfile -t files < <(git ls-files '*.h' '*.cc' | while read -r f; do [[ -f $f ]] && echo "$f"; done)
if ! out=$(clang-format --dry-run -Werror "${files[@]}" 2>&1); then
  { echo "$out" | grep 'error:' || echo "$out"; } | head -20
  echo "format check: FAIL (run: make format)"
  exit 1
fi
echo "format check: ${#files[@]} files clang-formatted"
