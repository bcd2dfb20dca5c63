#!/usr/bin/env bash
# The layering check: folders under controller/ are layers, and #include lines point only to the
# same layer or a lower one. Lowest first:
#
#   common -> kube -> api -> validation -> rollout -> metrics -> manager -> cmd
#
# cli/ (the rollgate CLI's library) shares cmd's rank: cmd/ may include it, and it must not
# include cmd/ (a main).
#
# validator/ (the rollgate-validate probe) stands apart: it may include only common/ (header-only,
# dependency-free) and itself, and only cmd/ may include it. A new folder must be given a place
# here (and in docs/design.md "Layering") before it can be used.
# Usage: tests/layering_check.sh [ROOT]   (ROOT: a source tree; default: this repository)
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"

declare -A rank=([common]=0 [kube]=1 [api]=2 [validation]=3 [rollout]=4 [metrics]=5 [manager]=6
                 [cmd]=7 [cli]=7 [validator]=-1)
fail=0
checked=0
while IFS= read -r file; do
  from=${file#controller/}
  from=${from%%/*}
  if [[ -z ${rank[$from]+x} ]]; then
    echo "$file: folder controller/$from/ has no layer in tests/layering_check.sh" >&2
    fail=1
    continue
  fi
  while IFS= read -r line; do
    to=$(sed -n 's|^[[:space:]]*#[[:space:]]*include[[:space:]]*"controller/\([a-z_]*\)/.*|\1|p' <<<"$line")
    [[ -z $to ]] && continue
    checked=$((checked + 1))
    [[ $to == "$from" ]] && continue
    if [[ -z ${rank[$to]+x} ]]; then
      echo "$file: includes controller/$to/, a folder without a layer" >&2
      fail=1
    elif [[ $from == validator ]]; then
      if [[ $to != common ]]; then
        echo "$file: validator/ may include only common/, not controller/$to/: $line" >&2
        fail=1
      fi
    elif [[ $to == validator ]]; then
      if [[ $from != cmd ]]; then
        echo "$file: only cmd/ may include validator/: $line" >&2
        fail=1
      fi
    elif [[ $from == cli && $to == cmd ]]; then
      echo "$file: cli/ must not include cmd/ (the mains): $line" >&2
      fail=1
    elif ((rank[$to] > rank[$from])); then
      echo "$file: $from/ (layer ${rank[$from]}) must not include the higher $to/ (layer ${rank[$to]}): $line" >&2
      fail=1
    fi
  done <"$file"
done < <(find controller -type f \( -name '*.h' -o -name '*.cc' \) | sort)
if ((fail)); then
  echo "layering_check: FAILED" >&2
  exit 1
fi
echo "layering_check: ${checked} includes checked, all point down or sideways"
