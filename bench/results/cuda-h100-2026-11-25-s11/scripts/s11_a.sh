#!/bin/bash
# session 11, call A: build from source + the whole CUDA check at HEAD (the tenth session's shipped kernels as one
# build), then ncu per-kernel times of the few-channel layers' gradients (cuda_tap_gemm) in bf16 and fp32.
set -u
T0=$(date +%s)
TCONV_GPU_QUICK=1 TCONV_GPU_BUILD_LIMIT=330 bash scripts/gpu_check.sh $OUT/a > $OUT/a_stdout.txt 2>&1
tail -70 $OUT/a_stdout.txt
. .carry/lead/env.sh
CLI=build-gpu/tools/tconv/tconv
M=gpu__time_duration.sum,launch__grid_size,launch__block_size,launch__registers_per_thread,launch__shared_mem_per_block_dynamic,sm__warps_active.avg.pct_of_peak_sustained_active,sm__throughput.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed,dram__bytes_read.sum,dram__bytes_write.sum,smsp__inst_executed.sum,smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio,smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio,smsp__average_warps_issue_stalled_short_scoreboard_per_issue_active.ratio,smsp__issue_active.avg.pct_of_peak_sustained_active
for L in fsrcnn_x3 dcgan_g5; do for D in bf16 fp32; do
  timeout 70 ncu --metrics $M --launch-count 40 $CLI bench --device cuda --suite .carry/bench/suite.json --layers $L \
    --dtypes $D --warmup 0 --reps 1 --no-machine > $OUT/ncu_${L}_$D.txt 2>&1
  el "ncu $L $D rc=$?"
done; done
cd $OUT && tar czf a.tgz a ncu_* && rm -rf a ncu_*
el done
