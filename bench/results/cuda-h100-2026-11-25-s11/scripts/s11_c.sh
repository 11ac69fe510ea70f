#!/bin/bash
# session 11, call C: build from source + the whole CUDA check with the branch-free tap_gemm gathers, the data
# gradient prefetch and the 32-warp reduction; the few-channel layers timed (prefetch on/off, 512/1024 blocks),
# depthwise_up, and ncu instruction counts and times of the tap_gemm and reduction kernels.
set -u
T0=$(date +%s)
TCONV_GPU_QUICK=1 TCONV_GPU_BUILD_LIMIT=330 bash scripts/gpu_check.sh $OUT/c > $OUT/c_stdout.txt 2>&1
tail -62 $OUT/c_stdout.txt | grep -v "hook_tile\|hook_ws\|hook_wg"
. .carry/lead/env.sh
CLI=build-gpu/tools/tconv/tconv
for pf in 1 0; do for b in 512 1024; do
  TCONV_TAP_GEMM_PREFETCH=$pf TCONV_TAP_GEMM_BLOCKS=$b timeout 60 $CLI bench --device cuda --suite .carry/bench/suite.json \
    --layers fsrcnn_x3,dcgan_g5 --dtypes bf16,fp16,tf32,fp32 --warmup 3 --reps 10 --no-machine --json $OUT/tap_pf${pf}_b$b.jsonl > $OUT/tap_pf${pf}_b$b.log 2>&1
  el "tap pf=$pf blocks=$b rc=$?"
  grep '^#' $OUT/tap_pf${pf}_b$b.log | grep -v "layer " | awk '{print $2,$3,"dx",$8,"dwdb",$9,"all",$10}'
done; done
timeout 60 $CLI bench --device cuda --suite .carry/bench/suite.json --layers depthwise_up --dtypes bf16,fp16,tf32,fp32 \
  --warmup 3 --reps 10 --no-machine --json $OUT/dw.jsonl > $OUT/dw.log 2>&1
el "depthwise rc=$?"; grep '^#' $OUT/dw.log | grep -v "layer " | awk '{print $2,$3,"dx",$8,"dwdb",$9,"all",$10}'
timeout 60 ncu --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,smsp__inst_executed.sum,sm__warps_active.avg.pct_of_peak_sustained_active --kernel-name regex:'reduce_rows|dw_kernel|dx_kernel' \
  --launch-count 12 $CLI bench --device cuda --suite .carry/bench/suite.json --layers dcgan_g5,fsrcnn_x3 --dtypes bf16 --warmup 0 --reps 1 --no-machine > $OUT/ncu_c.txt 2>&1
el "ncu rc=$?"; grep -E "reduce_rows|dw_kernel|dx_kernel|time_duration|dram__|inst_exec|warps_active" $OUT/ncu_c.txt | sed 's/(cuda_tap::.*//; s/(const float.*//' | head -60
cd $OUT && tar czf c.tgz c tap_* dw.* ncu_c.txt && rm -rf c tap_* dw.* ncu_c.txt
el done
