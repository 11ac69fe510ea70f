#!/bin/bash
# session 11, call E: build from source; the CUDA suite, the tap_gemm and depthwise hooks and compute-sanitizer on
# the classes of the kernels this session changed (tap_gemm, the stream reduction); then the suite timed with
# PyTorch in the same run (scripts/gpu_check.sh timing).
set -u
T0=$(date +%s)
. .carry/lead/env.sh
TCONV_GPU_QUICK=1 TCONV_GPU_SKIP_TESTS=1 TCONV_GPU_BUILD_LIMIT=330 bash scripts/gpu_check.sh $OUT/e_build > $OUT/e_build.txt 2>&1
el "build"; grep -E "build |binaries" $OUT/e_build.txt
T=build-gpu/tests/cuda/tconv_test_cuda
mkdir -p $OUT/e
timeout 150 $T > $OUT/e/tests.log 2>&1; el "tests rc=$?"; grep -E "^\[  (PASSED|FAILED) |tests? from .* ran" $OUT/e/tests.log | tail -3
TF='Classes/CudaShapes.*/tap_*:Classes/CudaShapes.*/few_out_channels_*:Classes/CudaShapes.*/one_out_channel_k9_*:CudaDeterminism.TapGemmHundredRunsBitIdentical'
TCONV_TAP_GEMM_BLOCKS=2 TCONV_CUDA_TEST_ALGORITHMS=cuda_tap_gemm,cuda_direct timeout 60 $T --gtest_filter="$TF" > $OUT/e/hook_tap_blocks2.log 2>&1
el "hook tap_blocks2 rc=$?"; grep -E "^\[  (PASSED|FAILED) " $OUT/e/hook_tap_blocks2.log
SF='Classes/CudaShapes.*/tap_*_bfloat16_bf16:Classes/CudaShapes.*/tap_*_float32_fp32:Classes/CudaShapes.*/tap_*_float32_tf32:Classes/CudaShapes.*/few_out_channels_*:Classes/CudaShapes.*/dw_chunks_of_tiles_float32_fp32:Classes/CudaShapes.*/dw_s1_k3_edges_bfloat16_bf16:Classes/CudaShapes.*/k16_s8_float16_fp16'
for tool in memcheck racecheck initcheck synccheck; do
  for b in 0 2; do
    env $( [ $b = 2 ] && echo TCONV_TAP_GEMM_BLOCKS=2 ) TCONV_CUDA_TEST_ALGORITHMS=cuda_tap_gemm,cuda_stream_depthwise,cuda_few_channels,cuda_direct \
      timeout 90 compute-sanitizer --tool $tool --error-exitcode 9 $T --gtest_filter="$SF" > $OUT/e/san_${tool}_b$b.log 2>&1
    el "sanitizer $tool blocks=$b rc=$?"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|PASSED|FAILED" $OUT/e/san_${tool}_b$b.log | tail -2
  done
done
TCONV_GPU_SKIP_TESTS=1 bash scripts/gpu_check.sh $OUT/e_timing > $OUT/e_timing.txt 2>&1
el "timing"; grep -A12 "best tconv line, metric all_ms" $OUT/e_timing/summary.txt | head -6
cd $OUT && tar czf e.tgz e e_build e_timing e_build.txt e_timing.txt && rm -rf e e_build e_timing e_build.txt e_timing.txt
el done
