#!/bin/bash
# session 10, call A: build from source + the whole CUDA check (tests, hooks incl. the depthwise tiled/untiled
# ones, sanitizers), then depthwise_up timed with the tiled kernels on and off in the same run, and ncu's DRAM
# and L2 bytes of each depthwise gradient kernel.
set -u
T0=$(date +%s)
TCONV_GPU_QUICK=1 TCONV_GPU_BUILD_LIMIT=420 bash scripts/gpu_check.sh $OUT/a > $OUT/a_stdout.txt 2>&1
tail -75 $OUT/a_stdout.txt
. .carry/lead/env.sh
CLI=build-gpu/tools/tconv/tconv
for v in 1 0; do
  TCONV_STREAM_DW_TILED=$v timeout 60 $CLI bench --device cuda --suite .carry/bench/suite.json --layers depthwise_up \
    --dtypes bf16,fp16,tf32,fp32 --warmup 5 --reps 20 --json $OUT/dw_tiled$v.jsonl > $OUT/dw_tiled$v.log 2>&1
  el "bench tiled=$v rc=$?"
  grep -v '^{' $OUT/dw_tiled$v.log | tail -8
  /usr/bin/env python3 -c 'import json,sys
for l in open(sys.argv[1]):
    if l.startswith("{"):
        d=json.loads(l)
        if d.get("layer"): print(d["dtype"], "dx", d["dx_ms"], "dwdb", d["dwdb_ms"], "all", d["all_ms"], d["algo_dx"], d.get("check"))' $OUT/dw_tiled$v.jsonl
done
M=dram__bytes_read.sum,dram__bytes_write.sum,lts__t_bytes.sum,gpu__time_duration.sum,sm__warps_active.avg.pct_of_peak_sustained_active,sm__throughput.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed
for v in 1 0; do
  TCONV_STREAM_DW_TILED=$v timeout 120 ncu --metrics $M --kernel-name regex:'tiled|bwd_data_kernel|wgrad_kernel|reduce_rows' \
    --launch-count 12 $CLI bench --device cuda --suite .carry/bench/suite.json --layers depthwise_up --dtypes fp32,bf16 \
    --warmup 0 --reps 1 --no-machine > $OUT/ncu_tiled$v.txt 2>&1
  el "ncu tiled=$v rc=$?"
done
cd $OUT && tar czf a.tgz a dw_* ncu_* && rm -rf a dw_* ncu_*
el done
