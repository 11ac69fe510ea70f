#!/bin/bash
# session 8 call C (CLI from the working tree, carried): the planner with wg128x256 (tf32/bf16/fp16 timings), and
# ncu of the tf32 data- and weight-gradient kernels on unet_up1 and dcgan_g2 (where tf32 is below PyTorch)
set -u
T0=$(date +%s)
O=/tmp/g/c; mkdir -p $O /tmp/tconv-deps
tar xJf .carry/deps/ob.tar.xz -C /tmp/tconv-deps
. .carry/lead/env.sh
xz -dc .carry/gpu/tconv.xz > /tmp/tconv && chmod +x /tmp/tconv
CLI=/tmp/tconv; S=.carry/bench/suite.json
timeout 100 $CLI bench --device cuda --suite $S --dtypes tf32,bf16,fp16 --no-machine --warmup 5 --reps 30 --json $O/planner.jsonl > $O/planner.log 2>&1
el "planner rc=$?"
python3 -c '
import json,sys
for l in open(sys.argv[1]):
  d=json.loads(l)
  if d.get("impl")=="tconv": print(" ",d["layer"].ljust(16),d["dtype"].ljust(5),d["dx_ms"],d["dwdb_ms"],d["all_ms"])' $O/planner.jsonl
for L in unet_up1 dcgan_g2; do
timeout 150 ncu --kernel-name regex:"tc_wgrad|tc_wgmma" --section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats \
    --section SchedulerStats --section Occupancy --section LaunchStats --section InstructionStats --section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables -c 4 \
    $CLI bench --device cuda --suite $S --layers $L --dtypes tf32 --no-machine --warmup 0 --reps 1 > $O/ncu_$L.txt 2>&1
el "ncu $L rc=$?"
done
grep -E "^  [a-z_]+.*tc_w|Duration|Compute \(SM\) Throughput|Memory Throughput|Shared Memory|L1/TEX Hit|Issue Slots Busy|Executed Ipc A|Registers Per|Stall|No Eligible|Achieved Occ" $O/ncu_unet_up1.txt | head -80
gzip -k $O/ncu_*.txt; cp $O/*.gz $O/planner.jsonl $OUT/
el done
