#!/bin/bash
# session 8 final call B1 (warm machine, build-gpu from call A): compute-sanitizer x4 on gpu_check.sh's filter
set -u
T0=$(date +%s)
O=/tmp/g/b; mkdir -p $O
. .carry/lead/env.sh
B=build-gpu/tests/cuda/tconv_test_cuda
FILTER=$(sed -n "/^FILTER=/,/^OWN=/p" scripts/gpu_check.sh | grep -v "^OWN=" | sed "s/^FILTER=//" | tr -d "\\\\\n'")
OWN=$(grep "^OWN=" scripts/gpu_check.sh | sed "s/^OWN=//")
for tool in memcheck racecheck initcheck synccheck; do
  extra=(); [ "$tool" = memcheck ] && extra=(--leak-check full)
  TCONV_CUDA_TEST_ALGORITHMS=$OWN timeout 90 compute-sanitizer --tool $tool "${extra[@]}" --error-exitcode 9 $B --gtest_filter="$FILTER" > $O/sanitizer_$tool.log 2>&1
  el "sanitizer $tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|LEAK SUMMARY' $O/sanitizer_$tool.log | tail -2 | tr '\n' ' ')"
done
gzip -f $O/sanitizer_*.log; cp $O/sanitizer_*.log.gz $OUT/ 2>/dev/null; el done
