#!/bin/bash
# session 7, repeat timing (the CLI built on the development machine at the commit in .carry/commit, carried):
# the planner's tconv line and PyTorch, interleaved twice, 5 warm-up + 20 timed runs each
set -u
T0=$(date +%s)
O=/tmp/g/rep; mkdir -p $O /tmp/tconv-deps
tar xJf .carry/deps/ob.tar.xz -C /tmp/tconv-deps
. .carry/lead/env.sh
xz -dc .carry/gpu/tconv.xz > /tmp/tconv && chmod +x /tmp/tconv
CLI=/tmp/tconv; S=.carry/bench/suite.json
for r in 1 2; do
  timeout 90 $CLI bench --device cuda --suite $S --dtypes bf16,fp16,tf32,fp32 --warmup 5 --reps 20 --json $O/ours_$r.jsonl > $O/bench_$r.log 2>&1
  el "tconv round $r rc=$?"
  timeout 100 env PYTHONUNBUFFERED=1 python3 .carry/bench/torch_peer.py --suite $S --device cuda --dtypes bf16,fp16,tf32,fp32 --warmup 5 --reps 20 > $O/peer_$r.jsonl 2> $O/peer_$r.err
  el "torch round $r rc=$?"
  python3 .carry/bench/compare.py $O/peer_$r.jsonl $O/ours_$r.jsonl 2>&1 | grep geomean | head -4
done
tar czf $OUT/rep.tgz -C /tmp/g rep
el done
