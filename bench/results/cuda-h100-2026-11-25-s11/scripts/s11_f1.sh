#!/bin/bash
# session 11, call F1: scripts/gpu_check.sh at the committed HEAD (build from source, CUDA suite, object API,
# every hook, compute-sanitizer), then the few-channel layers and depthwise_up timed.
set -u
T0=$(date +%s)
TCONV_GPU_QUICK=1 TCONV_GPU_BUILD_LIMIT=330 bash scripts/gpu_check.sh $OUT/check > $OUT/check_stdout.txt 2>&1
tail -64 $OUT/check_stdout.txt | grep -v "hook_tile\|hook_ws\|hook_wg"
. .carry/lead/env.sh
timeout 60 build-gpu/tools/tconv/tconv bench --device cuda --suite .carry/bench/suite.json --layers fsrcnn_x3,dcgan_g5,depthwise_up \
  --dtypes bf16,fp16,tf32,fp32 --warmup 3 --reps 10 --no-machine --json $OUT/check/few.jsonl > $OUT/check/few.log 2>&1
el "few rc=$?"; grep '^#' $OUT/check/few.log | grep -v "layer " | awk '{print $2,$3,"dx",$8,"dwdb",$9,"all",$10}'
cd $OUT && tar czf check.tgz check check_stdout.txt && rm -rf check check_stdout.txt
el done
