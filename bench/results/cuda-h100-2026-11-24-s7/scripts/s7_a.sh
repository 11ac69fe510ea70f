#!/bin/bash
# session 7 call A (no build: the CLI built on the development machine at HEAD, carried xz-compressed):
# fcn8s_up8 fp32 per simt tile, ncu of its kernels, cuDNN's kernels for it (PyTorch profiler), fp32 baseline.
set -u
T0=$(date +%s)
O=/tmp/g/a; mkdir -p $O /tmp/tconv-deps
tar xJf .carry/deps/ob.tar.xz -C /tmp/tconv-deps
. .carry/lead/env.sh
xz -dc .carry/gpu/tconv.xz > /tmp/tconv && chmod +x /tmp/tconv
CLI=/tmp/tconv; S=.carry/bench/suite.json
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv > $O/env.txt 2>&1
ldd $CLI | grep "not found" | tee -a $O/env.txt
for t in -1 0 1 2 3 4; do
  TCONV_SIMT_F32_TILE=$t timeout 60 $CLI bench --device cuda --suite $S --layers fcn8s_up8 --dtypes fp32 --no-machine --warmup 5 --reps 30 --json $O/tile$t.jsonl > $O/tile$t.log 2>&1
  el "tile $t rc=$? $(grep -h '"impl":"tconv"' $O/tile$t.jsonl | python3 -c 'import sys,json;[print(d["dx_ms"],d["dwdb_ms"],d["all_ms"]) for d in map(json.loads,sys.stdin)]')"
done
timeout 120 $CLI bench --device cuda --suite $S --dtypes fp32,tf32 --no-machine --warmup 5 --reps 20 --json $O/base.jsonl > $O/base.log 2>&1
el "base rc=$?"
timeout 100 python3 .carry/lead/s7_torchprof.py $S fcn8s_up8,unet_up1,dcgan_g2 fp32,tf32 > $O/torchprof.txt 2>&1
el "torchprof rc=$?"
timeout 150 ncu --kernel-name regex:"gather|wgrad|bias" --section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats \
    --section SchedulerStats --section Occupancy --section LaunchStats --section InstructionStats --section MemoryWorkloadAnalysis --section SourceCounters -c 6 \
    $CLI bench --device cuda --suite $S --layers fcn8s_up8 --dtypes fp32 --no-machine --warmup 0 --reps 1 > $O/ncu_fcn.txt 2>&1
el "ncu rc=$?"
tar czf $OUT/a.tgz -C /tmp/g a
el done
