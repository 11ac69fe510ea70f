#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/fuzz_*.cpp) with clang++-14 and runs each for SECONDS_PER_TARGET.
#
#   scripts/fuzz.sh BUILD_DIR [SECONDS_PER_TARGET=20] [TARGET...]
#
# Only the sources the targets need are compiled (src/io and src/core, listed below), with
# -fsanitize=fuzzer,address,undefined and UBSan made fatal, so any crash, leak, overflow or abort is a failure.
# Each target starts from its committed seeds in fuzz/corpus/<target>/ (read-only) plus anything found in
# earlier runs in BUILD_DIR/corpus/<target>/ (where new inputs go), with fuzz/<target>.dict where present.
# Crash reproducers land in BUILD_DIR/artifacts/. A summary line per target (executions, seconds, exec/s)
# goes to stdout and BUILD_DIR/fuzz-summary.txt. Exit status is non-zero when any target fails.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: scripts/fuzz.sh BUILD_DIR [SECONDS_PER_TARGET] [TARGET...]}
seconds=${2:-20}
shift
[[ $# -gt 0 ]] && shift
all_targets=(fuzz_npy fuzz_safetensors fuzz_coder fuzz_problem fuzz_mps_geometry)
if [[ $# -gt 0 ]]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

cxx=${TCONV_FUZZ_CXX:-clang++-14}
command -v "$cxx" >/dev/null || { echo "fuzz.sh: $cxx not found (install clang-14 and libclang-rt-14-dev)" >&2; exit 2; }

mkdir -p "$build/obj" "$build/artifacts"
build=$(cd "$build" && pwd)
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
       -I"$root/include" -I"$root/src")

# Library sources the targets use (explicit, like the CMake fragments).
sources=(src/io/files.cpp src/io/safetensors.cpp src/io/coder.cpp src/io/npy.cpp
         src/core/error.cpp src/core/types.cpp src/core/problem.cpp src/core/mps_geometry.cpp)

# Compile each source once (the library objects need only fuzzer-no-link), two at a time, skipping
# objects newer than their source.
compile() {
  local src=$1 obj=$2
  if [[ ! -f $obj || $root/$src -nt $obj || $0 -nt $obj ]]; then
    "$cxx" "${flags[@]}" -fsanitize=fuzzer-no-link -c "$root/$src" -o "$obj"
  fi
}
pids=()
objs=()
for src in "${sources[@]}"; do
  obj="$build/obj/$(echo "$src" | tr '/' '_').o"
  objs+=("$obj")
  compile "$src" "$obj" &
  pids+=($!)
  if (( ${#pids[@]} >= $(nproc) )); then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done

for t in "${targets[@]}"; do
  "$cxx" "${flags[@]}" -fsanitize=fuzzer "$root/fuzz/$t.cpp" "${objs[@]}" -o "$build/$t"
done

summary="$build/fuzz-summary.txt"
: > "$summary"
status=0
for t in "${targets[@]}"; do
  mkdir -p "$build/corpus/$t"
  args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 -max_len=65536
        -artifact_prefix="$build/artifacts/$t-")
  [[ -f $root/fuzz/$t.dict ]] && args+=(-dict="$root/fuzz/$t.dict")
  seeds=()
  [[ -d $root/fuzz/corpus/$t ]] && seeds+=("$root/fuzz/corpus/$t")
  log="$build/$t.log"
  echo "== $t: ${seconds}s" >&2
  if "$build/$t" "${args[@]}" "$build/corpus/$t" "${seeds[@]}" >"$log" 2>&1; then
    result=ok
  else
    result=FAILED
    status=1
    tail -n 60 "$log" >&2
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n1 | cut -d' ' -f2)
  rate=$(( ${secs:-0} > 0 ? ${execs:-0} / secs : 0 ))
  line="$t $result executions=${execs:-?} seconds=${secs:-$seconds} exec_per_s=$rate coverage=${cov:-?} corpus=$(ls "$build/corpus/$t" | wc -l)"
  echo "$line" | tee -a "$summary"
done
exit $status
