#!/usr/bin/env bash
# Sanitizer builds (issue 7): the whole CPU test suite under AddressSanitizer + UndefinedBehaviorSanitizer,
# and the concurrency tests under ThreadSanitizer. CUDA is off here (sanitizers instrument host code only;
# the GPU side has compute-sanitizer in scripts/gpu_check.sh).
# Usage: scripts/sanitize.sh [asan|tsan|all]
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
common=(-DTCONV_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ "$what" = asan ] || [ "$what" = all ]; then
  scripts/build.sh build-asan "${common[@]}" -DTCONV_SANITIZE=address,undefined
  # OpenMP's runtime keeps thread-local allocations alive until exit: not leaks of ours.
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1
  export LSAN_OPTIONS=suppressions=$PWD/scripts/lsan.supp
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # The PyTorch oracle runs a reduced number of configurations under the sanitizer (it is the binary that
  # is being checked, not PyTorch); the full count runs in the plain build.
  (cd build-asan && TCONV_ORACLE_CASES=${TCONV_ORACLE_CASES_ASAN:-120} ctest --output-on-failure -j 2)
fi
if [ "$what" = tsan ] || [ "$what" = all ]; then
  # Only the concurrency tests run under TSan: build just that binary (and the library).
  cmake -S . -B build-tsan -G Ninja "${common[@]}" -DTCONV_BUILD_TOOLS=OFF -DTCONV_SANITIZE=thread >/dev/null
  cmake --build build-tsan -j "$(nproc)" --target tconv_concurrency_tests
  # libgomp is not instrumented: run kernels single-threaded so TSan sees only tconv's own threads
  # (command-buffer queues and the test's encoding threads), which is what the concurrency tests exercise.
  export OMP_NUM_THREADS=1 TCONV_NUM_THREADS=1
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
  (cd build-tsan && ctest --output-on-failure -j 2 -L concurrency)
fi
