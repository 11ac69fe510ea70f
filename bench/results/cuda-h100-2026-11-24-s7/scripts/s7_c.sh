#!/bin/bash
# session 7 call C (the CLI built on the development machine, carried): fcn8s_up8 fp32 per simt tile, the fp32
# suite, PyTorch on the same layers in the same call, ncu of the scalar-path kernels.
set -u
T0=$(date +%s)
O=/tmp/g/c; mkdir -p $O /tmp/tconv-deps
tar xJf .carry/deps/ob.tar.xz -C /tmp/tconv-deps
. .carry/lead/env.sh
xz -dc .carry/gpu/tconv.xz > /tmp/tconv && chmod +x /tmp/tconv
CLI=/tmp/tconv; S=.carry/bench/suite.json
for t in -1 0 1 2 3 4; do
  TCONV_SIMT_F32_TILE=$t timeout 60 $CLI bench --device cuda --suite $S --layers fcn8s_up8 --dtypes fp32 --no-machine --warmup 5 --reps 30 --json $O/tile$t.jsonl > $O/tile$t.log 2>&1
  el "tile $t rc=$? $(grep -h '"impl":"tconv"' $O/tile$t.jsonl | python3 -c 'import sys,json;[print(d["dx_ms"],d["dwdb_ms"],d["all_ms"],d.get("check")) for d in map(json.loads,sys.stdin)]')"
done
timeout 120 $CLI bench --device cuda --suite $S --dtypes fp32 --warmup 5 --reps 20 --json $O/ours.jsonl > $O/ours.log 2>&1
el "ours rc=$?"
timeout 150 python3 .carry/bench/torch_peer.py --suite $S --dtypes fp32 --warmup 5 --reps 20 > $O/peer.jsonl 2> $O/peer.err
el "peer rc=$?"
python3 .carry/bench/compare.py $O/peer.jsonl $O/ours.jsonl > $O/compare.txt 2>&1; tail -20 $O/compare.txt
timeout 100 ncu --kernel-name regex:"gather|wgrad" --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section Occupancy --section LaunchStats --section InstructionStats --section MemoryWorkloadAnalysis -c 4 \
    $CLI bench --device cuda --suite $S --layers fcn8s_up8 --dtypes fp32 --no-machine --warmup 0 --reps 1 > $O/ncu_fcn.txt 2>&1
el "ncu rc=$?"
tar czf $OUT/c.tgz -C /tmp/g c
el done
