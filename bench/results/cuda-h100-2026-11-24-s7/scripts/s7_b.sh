#!/bin/bash
# session 7 call B (test binary built on the development machine, carried xz-compressed): the whole CUDA suite,
# cuda_simt_f32's five tiles forced on every fp32 class, compute-sanitizer on the scalar-path classes.
set -u
T0=$(date +%s)
O=/tmp/g/b; mkdir -p $O /tmp/tconv-deps
tar xJf .carry/deps/ob.tar.xz -C /tmp/tconv-deps
. .carry/lead/env.sh
xz -dc .carry/gpu/test.xz > /tmp/tconv_test_cuda && chmod +x /tmp/tconv_test_cuda
B=/tmp/tconv_test_cuda
ldd $B | grep "not found"
timeout 200 $B > $O/tests.log 2>&1
el "tests rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $O/tests.log | tr '\n' ' ')"
grep -E "^\[  FAILED  \]" $O/tests.log | head -20
for t in 0 1 2 3 4; do
  TCONV_SIMT_F32_TILE=$t TCONV_CUDA_TEST_ALGORITHMS=cuda_simt_f32,cuda_direct timeout 60 $B --gtest_filter='Classes/CudaShapes.*float32_fp32' > $O/hook_simt_tile$t.log 2>&1
  el "simt tile $t rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $O/hook_simt_tile$t.log | tr '\n' ' ')"
  grep -E "^\[  FAILED  \]" $O/hook_simt_tile$t.log | head -5
done
F='Classes/CudaShapes.*/k16_s8_float32_fp32:Classes/CudaShapes.*/wide_channels_float32_fp32:Classes/CudaShapes.*/padded_views_float32_fp32:Classes/CudaShapes.*/pad_views_21to18_float32_fp32:Classes/CudaShapes.*/pad_grouped_18to21_float32_fp32'
for t in 4 0 2; do
  for tool in racecheck memcheck initcheck synccheck; do
    [ $t != 4 ] && [ $tool != racecheck ] && continue
    TCONV_SIMT_F32_TILE=$t TCONV_CUDA_TEST_ALGORITHMS=cuda_simt_f32,cuda_direct timeout 100 compute-sanitizer --tool $tool --error-exitcode 9 $B --gtest_filter="$F" > $O/san_${tool}_t$t.log 2>&1
    el "sanitizer $tool tile $t rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $O/san_${tool}_t$t.log | tail -1) $(grep -E '^\[  (PASSED|FAILED) ' $O/san_${tool}_t$t.log | tr '\n' ' ')"
  done
done
gzip -f $O/tests.log
tar czf $OUT/b.tgz -C /tmp/g b
el done
