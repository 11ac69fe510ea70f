#!/bin/bash
# session 8 final call A: build, the whole CUDA suite, object-API CUDA tests, every hook of gpu_check.sh, each cuda_tc_igemm tile forced
set -u
T0=$(date +%s)
O=/tmp/g/a; mkdir -p $O
TCONV_GPU_QUICK=1 TCONV_GPU_SKIP_TESTS=1 TCONV_GPU_BUILD_LIMIT=480 bash scripts/gpu_check.sh $O/build > /dev/null 2>&1
. .carry/lead/env.sh
el "build: $(grep -E '^(build|binaries)' $O/build/summary.txt | tr '\n' ' ')"
grep -E "error" $O/build/build.log | head
B=build-gpu/tests/cuda/tconv_test_cuda
timeout 150 $B --gtest_output=xml:$O/tests.xml > $O/tests.log 2>&1
el "tests rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $O/tests.log | tr '\n' ' ')"
grep -E "^\[  FAILED  \]" $O/tests.log | head -20
grep -B3 -A10 "Failure" $O/tests.log | head -40
timeout 40 build-gpu/tests/api/test_api_device_kernels > $O/api_cuda.log 2>&1
el "api tests rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $O/api_cuda.log | tr '\n' ' ')"
F=""
for c in aligned_dense aligned_groups aligned_long_k few_pixels_long_k aligned_padded_views; do
  for m in float32_tf32 bfloat16_bf16 float16_fp16; do F="$F:Classes/CudaShapes.*/${c}_$m"; done
done
F="${F#:}:CudaDeterminism.HundredRunsBitIdentical"
hook() {
  local name=$1; shift
  env TCONV_CUDA_TEST_ALGORITHMS=cuda_tc_igemm,cuda_tc_wgrad "$@" timeout 45 $B --gtest_filter="$F" > $O/hook_$name.log 2>&1
  el "hook $name rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $O/hook_$name.log | tr '\n' ' ')"
}
hook ws TCONV_TC_IGEMM_WS=1 TCONV_TC_WGRAD_WS=1
hook ws256_split2 TCONV_TC_IGEMM_TILE=ws128x256 TCONV_TC_IGEMM_SPLIT=2 TCONV_TC_WGRAD_WS=1 TCONV_TC_WGRAD_SPLIT=3
hook wg256_split2 TCONV_TC_IGEMM_TILE=wg256x128 TCONV_TC_IGEMM_SPLIT=2 TCONV_TC_WGRAD_VARIANT=0
hook wgrad_wgmma_split3 TCONV_TC_WGRAD_VARIANT=3 TCONV_TC_WGRAD_SPLIT=3
hook wgrad_tf32_wgmma_split3 TCONV_TC_WGRAD_VARIANT=4 TCONV_TC_WGRAD_SPLIT=3
hook wgrad_v1 TCONV_TC_WGRAD_VARIANT=1
hook wgrad_v2 TCONV_TC_WGRAD_VARIANT=2
hook wgrad_v0 TCONV_TC_WGRAD_VARIANT=0
for t in wg128x128 wg128x64 wg64x128 wg64x64 wg128x128d wg256x128 wg128x256 ws128x128 ws128x256 mma128x128 mma64x64; do hook tile_$t TCONV_TC_IGEMM_TILE=$t; done
for t in 0 1 2 3 4 0s 4s; do
  extra=(TCONV_SIMT_F32_TILE=${t%s}); [ "${t%s}" != "$t" ] && extra+=(TCONV_SIMT_F32_SPLIT=3 TCONV_SIMT_F32_WSPLIT=3)
  env "${extra[@]}" TCONV_CUDA_TEST_ALGORITHMS=cuda_simt_f32,cuda_direct timeout 40 $B --gtest_filter='Classes/CudaShapes.*float32_fp32' > $O/hook_simt_tile$t.log 2>&1
  el "hook simt_tile$t rc=$? $(grep -E '^\[  (PASSED|FAILED) ' $O/hook_simt_tile$t.log | tr '\n' ' ')"
  grep -E "^\[  FAILED  \]" $O/hook_simt_tile$t.log | head -5
done
CLI=build-gpu/tools/tconv/tconv
if false; then
  timeout 60 $CLI bench --device cuda --suite .carry/bench/suite.json --dtypes fp32 --layers fcn8s_up8,unet_up1,cyclegan_up2 --warmup 3 --reps 9 --json $O/quick.jsonl > $O/quick.log 2>&1
  el "quick bench rc=$?"
  python3 - $O/quick.jsonl <<'PY'
import json, sys
for l in open(sys.argv[1]):
    if not l.startswith("{"): continue
    r = json.loads(l)
    if r.get("impl") == "tconv":
        print(f'{r["layer"]:16s} {r["dtype"]:5s} dx {r.get("dx_ms")} dw {r.get("dwdb_ms")} all {r.get("all_ms")}')
PY
fi
gzip -f $O/tests.log
tar czf $OUT/a.tgz -C /tmp/g a
el done
