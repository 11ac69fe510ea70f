#!/bin/bash
# session 8 call G (second machine; the CLI built on the development machine at the commit in .carry/commit,
# carried): a repeat round (the planner's tconv line, then PyTorch, 5 warm-up + 20 timed runs), `tconv tune` and
# a tuned run, the training check (scripts/gpu_train_check.sh with that CLI), a second repeat round
set -u
T0=$(date +%s)
O=$OUT; mkdir -p /tmp/tconv-deps /tmp/bg/tools/tconv
tar xJf .carry/deps/ob.tar.xz -C /tmp/tconv-deps
. .carry/lead/env.sh
xz -dc .carry/gpu/tconv.xz > /tmp/bg/tools/tconv/tconv && chmod +x /tmp/bg/tools/tconv/tconv
CLI=/tmp/bg/tools/tconv/tconv; S=.carry/bench/suite.json
round() {
  timeout 60 $CLI bench --device cuda --suite $S --dtypes bf16,fp16,tf32,fp32 --warmup 5 --reps 20 --json $O/ours_$1.jsonl > $O/bench_$1.log 2>&1
  el "tconv round $1 rc=$?"
  timeout 100 env PYTHONUNBUFFERED=1 python3 .carry/bench/torch_peer.py --suite $S --device cuda --dtypes bf16,fp16,tf32,fp32 --warmup 5 --reps 20 > $O/peer_$1.jsonl 2> $O/peer_$1.err
  el "torch round $1 rc=$?"
  python3 .carry/bench/compare.py $O/peer_$1.jsonl $O/ours_$1.jsonl > $O/compare_$1.txt 2>&1; grep geomean $O/compare_$1.txt
}
round 1
timeout 100 $CLI tune --suite $S --device cuda --cache $O/plan_cache.json --warmup 2 --reps 5 > $O/tune.log 2>&1
el "tune rc=$?"
TCONV_PLAN_CACHE=$O/plan_cache.json timeout 60 $CLI bench --device cuda --suite $S --dtypes bf16,fp16,tf32,fp32 --warmup 2 --reps 7 --json $O/ours_tuned.jsonl > $O/bench_tuned.log 2>&1
el "tuned bench rc=$?"
TCONV_GPU_BUILD=/tmp/bg timeout 150 bash scripts/gpu_train_check.sh $O/train > $O/train.out 2>&1
el "train rc=$? $(tail -6 $O/train/summary_train.txt 2>/dev/null | tr '\n' ' ')"
[ $(( $(date +%s) - T0 )) -lt 420 ] && round 2
el done
