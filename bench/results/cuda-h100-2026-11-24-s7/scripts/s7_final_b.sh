#!/bin/bash
# session 7 final call B (warm machine, build-gpu from call A): compute-sanitizer, timing of every algorithm + planner vs
# PyTorch, the tuner and a tuned run, the training check
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
TCONV_GPU_SKIP_TESTS=1 TCONV_GPU_BENCH_LIMIT=200 bash scripts/gpu_check.sh $O/full > $O/gpu_check.out 2>&1
el "timing: $(grep -E '^geomean|^bench' $O/full/summary.txt | tr '\n' ' ')"
tail -12 $O/full/summary.txt
if [ $(( $(date +%s) - T0 )) -lt 330 ]; then
  timeout 100 build-gpu/tools/tconv/tconv tune --suite .carry/bench/suite.json --device cuda --cache $O/plan_cache.json --warmup 2 --reps 5 > $O/tune.log 2>&1
  el "tune rc=$?"
  TCONV_PLAN_CACHE=$O/plan_cache.json timeout 60 build-gpu/tools/tconv/tconv bench --device cuda --suite .carry/bench/suite.json \
    --dtypes bf16,fp16,tf32,fp32 --warmup 2 --reps 7 --json $O/ours_tuned.jsonl > $O/bench_tuned.log 2>&1
  el "tuned bench rc=$?"
fi
if [ $(( $(date +%s) - T0 )) -lt 500 ]; then
  timeout 90 bash scripts/gpu_train_check.sh $O/train > $O/train.out 2>&1
  el "train rc=$? $(tail -5 $O/train/summary.txt 2>/dev/null | tr '\n' ' ')"
fi
tar czf $OUT/b.tgz -C /tmp/g b
el done
