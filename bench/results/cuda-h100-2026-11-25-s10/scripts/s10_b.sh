#!/bin/bash
# session 10, call B: binaries built on the development machine from commit in .carry/commit (sm_90a):
# depthwise-focused tests (all algorithms on the depthwise classes, determinism, registry), the tiled/untiled
# hooks, compute-sanitizer on the tiled kernels, then the suite timed (planner + every algorithm forced) beside
# PyTorch in the same call, depthwise_up with the tiled kernels off, and ncu bytes of the tiled kernels.
set -u
T0=$(date +%s)
. .carry/lead/env.sh
mkdir -p /tmp/tconv-deps && tar xJf .carry/deps/ob.tar.xz -C /tmp/tconv-deps
G=/tmp/g10; mkdir -p $G
xz -dc .carry/s10b/libtconv.so.xz > $G/libtconv.so
xz -dc .carry/s10b/test.xz > $G/tconv_test_cuda; xz -dc .carry/s10b/cli.xz > $G/tconv; chmod +x $G/tconv_test_cuda $G/tconv
export LD_LIBRARY_PATH=$G:$LD_LIBRARY_PATH
R=$OUT/b; mkdir -p $R
{ echo "commit: $(cat .carry/commit)"; date -u +%FT%TZ; nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
  python3 -c 'import torch; print("torch", torch.__version__, "cudnn", torch.backends.cudnn.version())'
  ldd $G/tconv | grep -E "tconv|cudnn|cudart|hwy|openblas"; } > $R/env.txt 2>&1
el "unpacked" | tee -a $R/summary.txt
timeout 150 $G/tconv_test_cuda --gtest_filter='Classes/CudaShapes.*/dw_*:Classes/CudaShapes.*/depthwise*:CudaDeterminism.*:CudaRegistry.*' > $R/dw_suite.log 2>&1
el "dw suite rc=$? $(grep -E '^\[  (PASSED|FAILED) |tests from .* ran|^\[  FAILED  \]' $R/dw_suite.log | tr '\n' ' ')" | tee -a $R/summary.txt
for v in 1 0; do
  TCONV_STREAM_DW_TILED=$v TCONV_CUDA_TEST_ALGORITHMS=cuda_stream_depthwise timeout 60 $G/tconv_test_cuda \
    --gtest_filter='Classes/CudaShapes.*/dw_*:Classes/CudaShapes.*/depthwise_wide_*:CudaDeterminism.StreamDepthwise*' > $R/hook_dw_tiled$v.log 2>&1
  el "hook tiled=$v rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $R/hook_dw_tiled$v.log | tr '\n' ' ')" | tee -a $R/summary.txt
done
F='Classes/CudaShapes.*/dw_chunks_of_tiles_float32_fp32:Classes/CudaShapes.*/dw_s1_k3_edges_bfloat16_bf16:Classes/CudaShapes.*/dw_stride_gt_kernel_float16_fp16:Classes/CudaShapes.*/dw_dilated_s3_accumulate_float32_tf32:Classes/CudaShapes.*/dw_k7_negative_padding_float16_fp16:Classes/CudaShapes.*/depthwise_wide_float32_bf16'
for tool in memcheck racecheck initcheck synccheck; do
  TCONV_CUDA_TEST_ALGORITHMS=cuda_stream_depthwise timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 $G/tconv_test_cuda --gtest_filter="$F" > $R/sanitizer_$tool.log 2>&1
  el "sanitizer $tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|PASSED|FAILED' $R/sanitizer_$tool.log | tr '\n' ' ')" | tee -a $R/summary.txt
done
timeout 150 $G/tconv bench --device cuda --suite .carry/bench/suite.json --dtypes bf16,fp16,tf32,fp32 --warmup 3 --reps 10 \
  --algorithms list --json $R/ours_all_algorithms.jsonl > $R/bench_tconv.log 2>&1
el "bench rc=$? $(grep -E '^# machine' $R/bench_tconv.log)" | tee -a $R/summary.txt
timeout 120 python3 .carry/bench/torch_peer.py --suite .carry/bench/suite.json --device cuda --dtypes bf16,fp16,tf32,fp32 \
  --warmup 3 --reps 10 > $R/peer.jsonl 2> $R/peer.err
el "torch rc=$?" | tee -a $R/summary.txt
python3 .carry/bench/compare.py $R/peer.jsonl $R/ours_all_algorithms.jsonl --metric all_ms > $R/compare_best.txt 2>&1
python3 -c 'import json,sys
for l in open(sys.argv[1]):
    if l.startswith("{") and json.loads(l).get("impl")=="tconv": print(l,end="")' $R/ours_all_algorithms.jsonl > $R/ours.jsonl
python3 .carry/bench/compare.py $R/peer.jsonl $R/ours.jsonl --metric all_ms > $R/compare.txt 2>&1
grep -E "geomean" $R/compare.txt | tee -a $R/summary.txt
grep -E "depthwise" $R/compare.txt | tee -a $R/summary.txt
TCONV_STREAM_DW_TILED=0 timeout 60 $G/tconv bench --device cuda --suite .carry/bench/suite.json --layers depthwise_up \
  --dtypes bf16,fp16,tf32,fp32 --warmup 3 --reps 10 --json $R/dw_untiled.jsonl > $R/dw_untiled.log 2>&1
grep -E "^# depthwise" $R/dw_untiled.log | tee -a $R/summary.txt
grep -E "^# depthwise" $R/bench_tconv.log | head -4 | tee -a $R/summary.txt
M=dram__bytes_read.sum,dram__bytes_write.sum,lts__t_bytes.sum,gpu__time_duration.sum,sm__warps_active.avg.pct_of_peak_sustained_active,sm__throughput.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed,smsp__inst_executed.sum
timeout 90 ncu --metrics $M --kernel-name regex:'tiled|reduce_rows' --launch-count 6 $G/tconv bench --device cuda \
  --suite .carry/bench/suite.json --layers depthwise_up --dtypes fp32,bf16 --warmup 0 --reps 1 --no-machine > $R/ncu_tiled.txt 2>&1
el "ncu rc=$?" | tee -a $R/summary.txt
gzip -f $R/*.log
cd $OUT && tar czf b.tgz b && rm -rf b
el done
