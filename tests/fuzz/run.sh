#!/usr/bin/env bash
# Fuzzes every decoder of untrusted input for a bounded time: `tests/fuzz/run.sh [SECONDS]`
# (default 60 s per target; `make fuzz`). Builds the libFuzzer targets with clang in a build dir
# of their own (ASan + UBSan, every library instrumented; see tests/fuzz/CMakeLists.txt), runs
# each over a scratch copy of its checked-in corpus, and prints per target: executions, exec/s,
# new corpus units and crash files. Exits 1 when any target found something (a crash, leak,
# timeout or out-of-memory), 2 when it cannot run.
#
# Environment: FUZZ_BUILD (build dir, default build-fuzz), FUZZ_CXX (default clang++-14),
# FUZZ_TARGETS (space-separated names, default all), JOBS (build parallelism, default 2),
# FUZZ_ARGS (extra libFuzzer flags).
# Results stay in $FUZZ_BUILD/fuzz-runs/<target>/: log, corpus/ (the new units), artifacts/.
set -euo pipefail

seconds=${1:-60}
if [[ ! $seconds =~ ^[0-9]+$ ]] || ((seconds < 1)); then
  echo "usage: $0 [SECONDS per target]" >&2
  exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${FUZZ_BUILD:-build-fuzz}
[[ $build = /* ]] || build=$root/$build
cxx=${FUZZ_CXX:-clang++-14}
jobs=${JOBS:-2}

if ! command -v "$cxx" >/dev/null; then
  echo "run.sh: $cxx not found (make deps installs clang-14 and libclang-rt-14-dev)" >&2
  exit 2
fi

if [[ -n ${FUZZ_TARGETS:-} ]]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  targets=()
  for f in "$here"/*_fuzzer.cc; do
    n=${f##*/}
    targets+=("${n%_fuzzer.cc}")
  done
fi

# -O1 -g without NDEBUG: the usual fuzzing trade-off, and project asserts stay on.
if [[ ! -f $build/build.ninja ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
    -DROLLGATE_FUZZ=ON -DROLLGATE_WERROR=OFF >&2
fi
build_targets=()
for t in "${targets[@]}"; do build_targets+=(--target "fuzz_$t"); done
cmake --build "$build" -j"$jobs" "${build_targets[@]}" >&2

symbolizer=$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)
[[ -n $symbolizer ]] && export ASAN_SYMBOLIZER_PATH=$symbolizer
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:symbolize=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# A kubeconfig may name any file as a certificate or token: no terminal to block on (setsid, and
# stdin from /dev/null).
detach=()
command -v setsid >/dev/null && detach=(setsid -w)

dict_of() {
  case $1 in
    kubeconfig) echo "$here/dict/kubeconfig.dict" ;;
    image_ref) echo "$here/dict/image_ref.dict" ;;
    rollout_codec | watch_stream | api_status | pod_verdict | prometheus_response | oci_manifest)
      echo "$here/dict/json.dict" ;;
  esac
}

runs=$build/fuzz-runs
findings=0
summary=()
for t in "${targets[@]}"; do
  bin=$build/tests/fuzz/fuzz_$t
  dir=$runs/$t
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560 -print_final_stats=1
        -artifact_prefix="$dir/artifacts/")
  dict=$(dict_of "$t")
  [[ -n $dict ]] && args+=(-dict="$dict")
  # shellcheck disable=SC2206
  [[ -n ${FUZZ_ARGS:-} ]] && args+=($FUZZ_ARGS)
  echo "== fuzz_$t: ${seconds}s" >&2
  set +e
  "${detach[@]}" "$bin" "${args[@]}" "$dir/corpus" "$here/corpus/$t" </dev/null >"$dir/log" 2>&1
  rc=$?
  set -e
  final_stat() { sed -n "s/^stat::$1: *\([0-9]*\).*/\1/p" "$dir/log" | tail -1; }
  execs=$(final_stat number_of_executed_units)
  eps=$(final_stat average_exec_per_sec)
  new=$(final_stat new_units_added)
  # A run that crashed prints no final stats: take its last progress line.
  if [[ -z $execs ]]; then
    execs=$(grep -oE '^#[0-9]+' "$dir/log" | tail -1 | tr -d '#' || true)
  fi
  cov=$(grep -oE 'cov: [0-9]+' "$dir/log" | tail -1 | awk '{print $2}' || true)
  units=$(find "$dir/corpus" -type f | wc -l)
  mapfile -t artifacts < <(find "$dir/artifacts" -type f | sort)
  row=$(printf '%-20s execs %-10s exec/s %-7s new units %-5s (corpus files %s) cov %-6s' \
    "$t" "${execs:-?}" "${eps:-?}" "${new:-?}" "$units" "${cov:-?}")
  if ((rc != 0)) || ((${#artifacts[@]} > 0)); then
    findings=$((findings + 1))
    row+=" FINDING (exit $rc): ${artifacts[*]:-no artifact}"
    echo "-- fuzz_$t found something; the report (full log: $dir/log):" >&2
    sed -n '/==ERROR\|fuzz invariant failed\|runtime error/,/SUMMARY\|^MS:/p' "$dir/log" |
      cut -c1-400 | head -60 >&2
  fi
  echo "$row"
  summary+=("$row")
done

echo
echo "fuzz summary (${seconds}s per target; results in $runs):"
printf '  %s\n' "${summary[@]}"
if ((findings > 0)); then
  echo "fuzz: $findings target(s) with findings" >&2
  exit 1
fi
echo "fuzz: no findings"
