#!/bin/bash
# session 8 final call B2 (warm machine, build-gpu from call A, its last minutes): the planner's tconv line on the
# suite and PyTorch in the same call (5 warm-up + 20 timed runs), then every algorithm forced while time remains
set -u
T0=$(date +%s)
O=$OUT
. .carry/lead/env.sh
CLI=build-gpu/tools/tconv/tconv; S=.carry/bench/suite.json
timeout 40 $CLI bench --device cuda --suite $S --dtypes bf16,fp16,tf32,fp32 --warmup 5 --reps 20 --json $O/ours.jsonl > $O/bench.log 2>&1
el "tconv rc=$?"
timeout 80 env PYTHONUNBUFFERED=1 python3 .carry/bench/torch_peer.py --suite $S --device cuda --dtypes bf16,fp16,tf32,fp32 --warmup 5 --reps 20 > $O/peer.jsonl 2> $O/peer.err
el "torch rc=$?"
python3 .carry/bench/compare.py $O/peer.jsonl $O/ours.jsonl > $O/compare.txt 2>&1; grep geomean $O/compare.txt
timeout 60 $CLI bench --device cuda --suite $S --dtypes bf16,fp16,tf32,fp32 --algorithms list --no-machine --warmup 3 --reps 10 --json $O/ours_all_algorithms.jsonl > $O/bench_all.log 2>&1
el "all algorithms rc=$?"
el done
