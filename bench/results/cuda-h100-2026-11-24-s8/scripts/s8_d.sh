#!/bin/bash
# session 8 call D (CUDA test binary built on the development machine from the working tree, carried): the whole
# CUDA suite, the tensor-core hooks of scripts/gpu_check.sh (every wgmma tile forced, with and without split),
# compute-sanitizer (memcheck, racecheck, synccheck, initcheck) on the tf32/16-bit aligned classes with the new
# wg128x256 tile forced and with the planner's choice
set -u
T0=$(date +%s)
O=$OUT; mkdir -p /tmp/tconv-deps
tar xJf .carry/deps/ob.tar.xz -C /tmp/tconv-deps
. .carry/lead/env.sh
xz -dc .carry/gpu/test.xz > /tmp/tconv_test_cuda && chmod +x /tmp/tconv_test_cuda
TEST_BIN=/tmp/tconv_test_cuda
timeout 240 $TEST_BIN > $O/tests.log 2>&1; el "suite rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $O/tests.log | tr '\n' ' ')"
grep -E "^\[  FAILED  \]" $O/tests.log | head
HOOK_FILTER=""
for c in aligned_dense aligned_groups aligned_long_k few_pixels_long_k aligned_padded_views; do
  for m in float32_tf32 bfloat16_bf16 float16_fp16; do HOOK_FILTER="$HOOK_FILTER:Classes/CudaShapes.*/${c}_$m"; done
done
HOOK_FILTER="${HOOK_FILTER#:}:CudaDeterminism.HundredRunsBitIdentical"
hook() { local name=$1; shift
  env TCONV_CUDA_TEST_ALGORITHMS=cuda_tc_igemm,cuda_tc_wgrad "$@" timeout 60 $TEST_BIN --gtest_filter="$HOOK_FILTER" > $O/hook_$name.log 2>&1
  el "$(printf '%-26s rc=%-3s %s' hook_$name $? "$(grep -E '^\[  (PASSED|FAILED) ' $O/hook_$name.log | tr '\n' ' ')")"; }
for t in wg128x128 wg128x64 wg64x128 wg64x64 wg128x128d wg128x256 wg256x128; do
  hook tile_$t TCONV_TC_IGEMM_TILE=$t
  hook tile_${t}_split3 TCONV_TC_IGEMM_TILE=$t TCONV_TC_IGEMM_SPLIT=3
done
hook ws TCONV_TC_IGEMM_WS=1 TCONV_TC_WGRAD_WS=1
F='Classes/CudaShapes.*/aligned_long_k_float32_tf32:Classes/CudaShapes.*/aligned_dense_float32_tf32:Classes/CudaShapes.*/few_pixels_long_k_float32_tf32:Classes/CudaShapes.*/aligned_groups_float32_tf32:Classes/CudaShapes.*/aligned_dense_bfloat16_bf16'
for tool in memcheck racecheck synccheck initcheck; do
  for t in wg128x256 wg128x128 planner; do
    te=(); [ $t != planner ] && te=(TCONV_TC_IGEMM_TILE=$t)
    env "${te[@]}" TCONV_CUDA_TEST_ALGORITHMS=cuda_tc_igemm,cuda_tc_wgrad timeout 100 compute-sanitizer --tool $tool --error-exitcode 9 $TEST_BIN --gtest_filter="$F" > $O/san_${tool}_$t.log 2>&1
    el "$tool $t rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $O/san_${tool}_$t.log | tail -1) $(grep -E '^\[  (PASSED|FAILED) ' $O/san_${tool}_$t.log | tr '\n' ' ')"
  done
done
gzip $O/*.log
el done
