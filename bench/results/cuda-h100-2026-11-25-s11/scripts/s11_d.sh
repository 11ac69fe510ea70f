#!/bin/bash
# session 11, call D: build from source + the whole CUDA check of the candidate (branch-free tap_gemm gathers,
# no prefetch, 4-row FFMA weight gradient for K <= 64, tf32 weight gradient at 4 blocks per SM, 32-warp
# reduction); the few-channel layers and depthwise_up timed; ncu times and instruction counts of the tap kernels.
set -u
T0=$(date +%s)
TCONV_GPU_QUICK=1 TCONV_GPU_BUILD_LIMIT=330 bash scripts/gpu_check.sh $OUT/d > $OUT/d_stdout.txt 2>&1
tail -62 $OUT/d_stdout.txt | grep -v "hook_tile\|hook_ws\|hook_wg"
. .carry/lead/env.sh
CLI=build-gpu/tools/tconv/tconv
timeout 60 $CLI bench --device cuda --suite .carry/bench/suite.json --layers fsrcnn_x3,dcgan_g5,depthwise_up \
  --dtypes bf16,fp16,tf32,fp32 --warmup 3 --reps 10 --no-machine --json $OUT/tap.jsonl > $OUT/tap.log 2>&1
el "tap rc=$?"
grep '^#' $OUT/tap.log | grep -v "layer " | awk '{print $2,$3,"dx",$8,"dwdb",$9,"all",$10}'
timeout 80 ncu --metrics gpu__time_duration.sum,smsp__inst_executed.sum,sm__warps_active.avg.pct_of_peak_sustained_active,launch__registers_per_thread \
  --kernel-name regex:'reduce_rows|dw_kernel|dx_kernel|dw_fma|dx_fma' --launch-count 30 $CLI bench --device cuda \
  --suite .carry/bench/suite.json --layers dcgan_g5,fsrcnn_x3 --dtypes bf16,tf32,fp32 --warmup 0 --reps 1 --no-machine > $OUT/ncu_d.txt 2>&1
el "ncu rc=$?"
/usr/bin/env python3 - $OUT/ncu_d.txt <<'PY'
import re,sys
k=None;v={}
for l in open(sys.argv[1]):
    m=re.match(r'\s+(\S.*?)\s+\(\d+, \d+, \d+\)x',l)
    if m:
        if k: print(k[:60], v)
        k=m.group(1).replace('cuda_tap::<unnamed>::','').replace('cuda_direct::',''); v={}
        continue
    s=l.split()
    if k and len(s)>=3 and '__' in s[0]: v[s[0].split('__')[-1][:14]]=s[-1]
if k: print(k[:60], v)
PY
cd $OUT && tar czf d.tgz d tap.* ncu_d.txt && rm -rf d tap.* ncu_d.txt
el done
