#!/usr/bin/env bash
# Builds rollgate-validate and runs the real CUDA check on this machine (one with an NVIDIA GPU
# and driver): prints the verdict JSON, the termination-log copy's agreement, and the wall time,
# and exits with the validator's exit code (0 passed, 10 library, 11 init, 12 devices, 13 below
# minimum, 14 context/memory, 15 kernel, 16 timeout; 2 usage).
#
#   tests/gpu/run_gpu_check.sh [--build-dir DIR] [--standalone] [-- validator flags...]
#
# Build: with CMake (only the rollgate-validate target, tests off) when the project configures
# here; the project's CMake needs cpprestsdk, yaml-cpp and prometheus-cpp, which a bare GPU
# machine may lack, so otherwise (or with --standalone) the validator is compiled directly: it
# needs nothing but a C++20 compiler, libdl and pthreads (libcuda is loaded at run time).
# Flags after "--" go to rollgate-validate, e.g. -- --min-compute-capability 8.0 --timeout 30.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build_dir="$root/build-gpu"
standalone=0
validator_flags=()
while (($#)); do
  case "$1" in
    --build-dir) build_dir="$2"; shift 2 ;;
    --standalone) standalone=1; shift ;;
    --) shift; validator_flags=("$@"); break ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "run_gpu_check.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$build_dir"

log() { echo "run_gpu_check: $*" >&2; }

if command -v nvidia-smi >/dev/null 2>&1; then
  log "nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader 2>&1 | paste -sd ';' -)"
else
  log "nvidia-smi not found (the check itself only needs libcuda.so.1)"
fi

validator=""
if ((standalone == 0)) && command -v cmake >/dev/null 2>&1; then
  generator=()
  command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
  if [[ -f "$build_dir/CMakeCache.txt" ]] ||
     cmake -S "$root" -B "$build_dir" ${generator[@]+"${generator[@]}"} -DCMAKE_BUILD_TYPE=Release \
       -DROLLGATE_BUILD_TESTS=OFF -DROLLGATE_WERROR=OFF >"$build_dir/cmake-configure.log" 2>&1; then
    if cmake --build "$build_dir" --target rollgate-validate -j"$(nproc)" \
         >"$build_dir/cmake-build.log" 2>&1; then
      validator="$build_dir/controller/rollgate-validate"
      log "built with CMake: $validator"
    else
      log "CMake build failed (see $build_dir/cmake-build.log); compiling standalone"
    fi
  else
    log "CMake configure failed (see $build_dir/cmake-configure.log); compiling standalone"
  fi
fi

if [[ -z "$validator" ]]; then
  cxx="${CXX:-g++}"
  command -v "$cxx" >/dev/null 2>&1 || cxx=clang++
  validator="$build_dir/rollgate-validate-standalone"
  "$cxx" -std=c++20 -O2 -Wall -Wextra -I"$root" \
    "$root"/controller/validator/*.cc "$root/controller/cmd/validate_main.cc" \
    -o "$validator" -ldl -pthread
  log "built standalone with $cxx: $validator"
fi

termination_log="$build_dir/termination-log"
rm -f "$termination_log"
start_ns=$(date +%s%N)
set +e
"$validator" --termination-log "$termination_log" ${validator_flags[@]+"${validator_flags[@]}"} >"$build_dir/verdict.json"
rc=$?
set -e
end_ns=$(date +%s%N)

echo "=== verdict (stdout) ==="
cat "$build_dir/verdict.json"
if [[ -f "$termination_log" ]] &&
   [[ "$(cat "$termination_log")" == "$(head -c -1 "$build_dir/verdict.json")" ]]; then
  echo "=== termination log: identical ($(wc -c <"$termination_log") bytes) ==="
else
  echo "=== termination log: MISSING OR DIFFERENT ==="
fi
echo "=== exit code: $rc; wall time: $(( (end_ns - start_ns) / 1000000 )) ms ==="
exit "$rc"
