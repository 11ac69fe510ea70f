#!/usr/bin/env bash
# gpu_check.sh OUTDIR — the CUDA backend's whole check on a machine with an NVIDIA GPU, in one run:
#   1. environment (GPU, driver, nvcc, cuDNN, commit)                         -> OUTDIR/env.txt
#   2. configure + build with CUDA (sm_90a only, to build fast on the GPU host) -> OUTDIR/configure.log, build.log
#      If that build fails (a library the CPU side needs is missing there), the binaries carried in
#      .carry/gpu/bin (built elsewhere for sm_80/89/90a, with their shared libraries in .carry/gpu/lib) are
#      used instead, and summary.txt says so.
#   3. the CUDA test suite (every registered CUDA algorithm vs cpu_ref_f64)   -> OUTDIR/tests.log, tests.xml
#      and the object API on the GPU (test_api_device_kernels)              -> OUTDIR/api_cuda.log
#      and the opt-in tensor-core variants (warp-specialized, forced tiles and splits) through their test
#      hooks on the classes those algorithms take                             -> OUTDIR/hook_*.log
#   4. compute-sanitizer memcheck, racecheck, initcheck, synccheck on a reduced filter -> OUTDIR/sanitizer_*.log
#   5. timing: `tconv bench --device cuda --algorithms list` on the suite (impl "tconv": the planner's choice
#      through the object API, dX and dW+db on two streams — what a user gets; impl "tconv-<name>": one
#      algorithm forced; plus the GPU's bf16 cuBLAS rate and copy bandwidth) and torch_peer.py
#      (PyTorch/cuDNN) in the same run -> OUTDIR/ours.jsonl, peer.jsonl, compare.txt, bench_tconv.log
# Ends with a short table (summary.txt). Environment: TCONV_GPU_BUILD (build folder), TCONV_BENCH_DIR (folder
# with suite.json, torch_peer.py, compare.py; default bench/ or .carry/bench/), TCONV_GPU_QUICK=1 (skip timing).
set -u -o pipefail
OUT=${1:?usage: gpu_check.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${TCONV_GPU_BUILD:-$ROOT/build-gpu}
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }
step() { # step NAME SECONDS LOG cmd... : runs cmd with a time limit, records pass/fail
  local name=$1 limit=$2 log=$3; shift 3
  local t0=$(date +%s)
  timeout "$limit" "$@" >"$log" 2>&1
  local rc=$?
  note "$(printf '%-22s rc=%-4s %4ss  %s' "$name" "$rc" "$(( $(date +%s) - t0 ))" "$(basename "$log")")"
  return $rc
}

# ---- 1. environment ----------------------------------------------------------------------------------------
COMMIT=$(cat "$ROOT/.carry/commit" 2>/dev/null || git -C "$ROOT" rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
CUDNN_DIR=$(python3 -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null || true)
{
  echo "date: $(date -u +%FT%TZ)"; echo "commit: $COMMIT"; echo "host: $(hostname)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
  nvcc --version 2>&1 | tail -2; cmake --version | head -1; g++ --version | head -1
  echo "cudnn (python wheel): ${CUDNN_DIR:-none}"; ls /usr/local/cuda/include/cudnn_version.h 2>&1
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' 2>&1
} >"$OUT/env.txt"
note "tconv gpu_check  $(date -u +%FT%TZ)  commit $COMMIT"
note "device: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
export LD_LIBRARY_PATH=${CUDNN_DIR:+$CUDNN_DIR/lib:}${LD_LIBRARY_PATH:-}

# ---- 2. build ----------------------------------------------------------------------------------------------
TEST_BIN=$BUILD/tests/cuda/tconv_test_cuda
API_BIN=$BUILD/tests/api/test_api_device_kernels
CLI_BIN=$BUILD/tools/tconv/tconv
BENCH_BIN=$BUILD/tests/cuda/tconv_cuda_bench
cudnn_args=()
[ -n "$CUDNN_DIR" ] && cudnn_args=(-DCUDNN_ROOT="$CUDNN_DIR")
# The GPU image lacks Highway and OpenBLAS, which the CPU side of the library and the CLI need: a folder of
# them copied from a development machine (TCONV_GPU_DEPS, default .carry/deps: hwy/{include,lib} and
# ob.tar.xz with OpenBLAS's lib/ and include/) makes the build work there.
DEPS=${TCONV_GPU_DEPS:-$ROOT/.carry/deps}
if [ -d "$DEPS/hwy" ]; then
  mkdir -p /tmp/tconv-deps
  [ -f "$DEPS/ob.tar.xz" ] && tar xJf "$DEPS/ob.tar.xz" -C /tmp/tconv-deps
  export CPATH=$DEPS/include:$DEPS/hwy/include:/tmp/tconv-deps/ob/include${CPATH:+:$CPATH}
  export CMAKE_PREFIX_PATH=$DEPS/hwy:/tmp/tconv-deps/ob${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
  export LIBRARY_PATH=$DEPS/hwy/lib:/tmp/tconv-deps/ob/lib${LIBRARY_PATH:+:$LIBRARY_PATH}
  export LD_LIBRARY_PATH=$DEPS/hwy/lib:/tmp/tconv-deps/ob/lib:$LD_LIBRARY_PATH
fi
# The build's time limit (TCONV_GPU_BUILD_LIMIT, seconds): a build from source took 417–460 s on the H100 host in
# the eighth session (tc_igemm.cu, then one translation unit, was the long pole; the ninth split it by operand
# type); 300 s, the earlier default, cut it.
# On a warm machine a second run finds the build up to date in seconds.
if step configure 60 "$OUT/configure.log" cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
     -DTCONV_CUDA=ON -DTCONV_BUILD_TOOLS=ON -DCMAKE_CUDA_ARCHITECTURES=90a "${cudnn_args[@]}" &&
   step build "${TCONV_GPU_BUILD_LIMIT:-560}" "$OUT/build.log" cmake --build "$BUILD" --target tconv_test_cuda \
     tconv_cuda_bench test_api_device_kernels tconv_cli ${TCONV_GPU_EXTRA_TARGETS:-} -j"$(nproc)" -- -k 0; then
  note "binaries: built here ($BUILD)"
elif [ -x "$ROOT/.carry/gpu/bin/tconv_test_cuda" ]; then
  CARRIED=$ROOT/.carry/gpu/bin
  TEST_BIN=$CARRIED/tconv_test_cuda API_BIN=$CARRIED/test_api_device_kernels CLI_BIN=$CARRIED/tconv
  BENCH_BIN=$CARRIED/tconv_cuda_bench
  export LD_LIBRARY_PATH=$ROOT/.carry/gpu/lib:$LD_LIBRARY_PATH
  note "binaries: build here failed (see build.log/configure.log); using carried .carry/gpu/bin"
else
  note "binaries: none (build failed, nothing carried)"; exit 1
fi
grep -m1 "cuDNN:" "$OUT/configure.log" 2>/dev/null | tee -a "$SUMMARY"
# cuBLAS for `tconv bench --device cuda` (its bf16 matrix rate): from the toolkit, else PyTorch's wheel.
CUBLAS_DIR=$(python3 -c 'import nvidia.cublas as m; print(list(m.__path__)[0])' 2>/dev/null || true)
[ -n "$CUBLAS_DIR" ] && export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$CUBLAS_DIR/lib

# ---- 3. tests ----------------------------------------------------------------------------------------------
# TCONV_GPU_SKIP_TESTS=1: timing only (the tests ran in an earlier call on the same build).
if [ "${TCONV_GPU_SKIP_TESTS:-0}" != 1 ]; then
step tests 240 "$OUT/tests.log" "$TEST_BIN" --gtest_output=xml:"$OUT/tests.xml"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests? from .* ran" "$OUT/tests.log" | tail -4 | tee -a "$SUMMARY"
grep -E "^\[  FAILED  \]" "$OUT/tests.log" | head -20 | tee -a "$SUMMARY"
if [ -x "$API_BIN" ]; then
  step api_tests 60 "$OUT/api_cuda.log" "$API_BIN"
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests? from .* ran|^\[  FAILED  \]" "$OUT/api_cuda.log" | tail -6 | tee -a "$SUMMARY"
fi
# Variants the planner does not pick by default (TCONV_TC_IGEMM_WS / TCONV_TC_WGRAD_WS, forced tiles and split
# counts; TCONV_TC_WGRAD_VARIANT=0: the weight gradient with 32-pixel stages on mma.sync, which GPUs other than
# the H100 run for 16-bit types; =3 with a forced split: 16-bit on wgmma and tf32 warp-specialized, writing
# partial tiles) stay correct: the suite restricted to the two tensor-core algorithms, on the aligned classes they take
# (the 4-channel accumulate/padded classes are theirs to decline), plus the 100-run determinism test.
HOOK_FILTER=""
for c in aligned_dense aligned_groups aligned_long_k few_pixels_long_k aligned_padded_views; do
  for m in float32_tf32 bfloat16_bf16 float16_fp16; do HOOK_FILTER="$HOOK_FILTER:Classes/CudaShapes.*/${c}_$m"; done
done
HOOK_FILTER="${HOOK_FILTER#:}:CudaDeterminism.HundredRunsBitIdentical"
hook() {  # hook NAME VAR=VALUE...
  local name=$1; shift
  env TCONV_CUDA_TEST_ALGORITHMS=cuda_tc_igemm,cuda_tc_wgrad "$@" \
    timeout 60 "$TEST_BIN" --gtest_filter="$HOOK_FILTER" >"$OUT/hook_$name.log" 2>&1
  local rc=$?
  note "$(printf '%-22s rc=%-4s %s' "hook_$name" "$rc" "$(grep -E '^\[  (PASSED|FAILED) ' "$OUT/hook_$name.log" | tr '\n' ' ')")"
}
hook ws TCONV_TC_IGEMM_WS=1 TCONV_TC_WGRAD_WS=1
hook ws256_split2 TCONV_TC_IGEMM_TILE=ws128x256 TCONV_TC_IGEMM_SPLIT=2 TCONV_TC_WGRAD_WS=1 TCONV_TC_WGRAD_SPLIT=3
hook wg256_split2 TCONV_TC_IGEMM_TILE=wg256x128 TCONV_TC_IGEMM_SPLIT=2 TCONV_TC_WGRAD_VARIANT=0
hook wgrad_wgmma_split3 TCONV_TC_WGRAD_VARIANT=3 TCONV_TC_WGRAD_SPLIT=3
# Every wgmma tile of the data gradient and forward (tf32 takes A from registers on all but wg256x128, which
# rounds in place; the 3-stage wg128x128 keeps no group in flight), each also with a forced 3-way split.
for t in wg128x128 wg128x64 wg64x128 wg64x64 wg128x128d wg128x256; do
  hook tile_$t TCONV_TC_IGEMM_TILE=$t
  hook tile_${t}_split3 TCONV_TC_IGEMM_TILE=$t TCONV_TC_IGEMM_SPLIT=3
done
# tf32 weight gradient: the wgmma variant (transposed tiles, the default) with partial tiles; the mma.sync ones
# (variant 1; variant 2, which is also what variant 4 falls back to without wgmma — and 16-bit's warp-specialized one)
hook wgrad_tf32_wgmma_split3 TCONV_TC_WGRAD_VARIANT=4 TCONV_TC_WGRAD_SPLIT=3
hook wgrad_v1 TCONV_TC_WGRAD_VARIANT=1
hook wgrad_v2 TCONV_TC_WGRAD_VARIANT=2
# algo_hook NAME ALGORITHMS FILTER VAR=VALUE...: the classes of FILTER restricted to ALGORITHMS, with the
# variables set (hook_NAME.log).
algo_hook() {
  local name=$1 algos=$2 filter=$3; shift 3
  env "$@" TCONV_CUDA_TEST_ALGORITHMS="$algos" \
    timeout 60 "$TEST_BIN" --gtest_filter="$filter" >"$OUT/hook_$name.log" 2>&1
  local rc=$?
  note "$(printf '%-22s rc=%-4s %s' "hook_$name" "$rc" "$(grep -E '^\[  (PASSED|FAILED) ' "$OUT/hook_$name.log" | tr '\n' ' ')")"
}
# cuda_stream_depthwise: its depthwise classes with the tiled gradients (the default on 16-byte aligned views)
# and with TCONV_STREAM_DW_TILED=0 (the untiled kernels on every class).
DW_FILTER='Classes/CudaShapes.*/dw_*:Classes/CudaShapes.*/depthwise_wide_*'
algo_hook dw_tiled cuda_stream_depthwise "$DW_FILTER"
algo_hook dw_untiled cuda_stream_depthwise "$DW_FILTER" TCONV_STREAM_DW_TILED=0
# cuda_tap_gemm: its classes and determinism test with two blocks (TCONV_TAP_GEMM_BLOCKS=2: every block walks
# many tiles, where the default grid gives the small test shapes one tile per block).
TAP_FILTER='Classes/CudaShapes.*/tap_*:Classes/CudaShapes.*/few_out_channels_*:Classes/CudaShapes.*/one_out_channel_k9_*:'\
'CudaDeterminism.TapGemmHundredRunsBitIdentical'
algo_hook tap_blocks2 cuda_tap_gemm,cuda_direct "$TAP_FILTER" TCONV_TAP_GEMM_BLOCKS=2
# cuda_simt_f32's tile shapes, each forced on every true-fp32 class (cuda_direct takes the classes it declines);
# then forced split-K counts (data gradient 3 slab ranges, weight gradient 3 pixel chunks) on the 128×32 and
# 128×128 tiles, so that the split paths of the 16-byte and the scalar loaders run on the small test shapes.
SIMT_FILTER='Classes/CudaShapes.*float32_fp32'
for t in 0 1 2 3 4; do algo_hook simt_tile$t cuda_simt_f32,cuda_direct "$SIMT_FILTER" TCONV_SIMT_F32_TILE=$t; done
for t in 0 4; do
  algo_hook simt_tile${t}_split3 cuda_simt_f32,cuda_direct "$SIMT_FILTER" TCONV_SIMT_F32_TILE=$t TCONV_SIMT_F32_SPLIT=3 \
    TCONV_SIMT_F32_WSPLIT=3
done

# ---- 4. compute-sanitizer ------------------------------------------------------------------------------------
# Our kernels on representative classes (all directions, all image types, padded views, split-K, bias kernels);
# cuDNN's own kernels are left out (TCONV_CUDA_TEST_ALGORITHMS) — their internals are not ours to fix.
FILTER='Classes/CudaShapes.*/basic_float32_fp32:Classes/CudaShapes.*/padded_views_float16_fp16:'\
'Classes/CudaShapes.*/accumulate_bfloat16_bf16:Classes/CudaShapes.*/depthwise_float32_tf32:'\
'Classes/CudaShapes.*/negative_padding_float32_fp32:Classes/CudaShapes.*/long_reduction_float32_fp32:'\
'Classes/CudaShapes.*/stride_gt_kernel_float32_bf16:Classes/CudaShapes.*/groups_bfloat16_fp32:'\
'Classes/CudaShapes.*/aligned_dense_bfloat16_bf16:Classes/CudaShapes.*/aligned_groups_float16_fp16:'\
'Classes/CudaShapes.*/aligned_long_k_float32_tf32:Classes/CudaShapes.*/aligned_dense_float32_fp32:'\
'Classes/CudaShapes.*/few_out_channels_bfloat16_bf16:Classes/CudaShapes.*/depthwise_wide_float32_fp32:'\
'Classes/CudaShapes.*/k16_s8_float16_fp16:Classes/CudaShapes.*/one_out_channel_k9_float32_tf32:'\
'Classes/CudaShapes.*/tap_dilated_views_20to3_float16_fp16:Classes/CudaShapes.*/tap_k7_4out_accumulate_bfloat16_bf16:'\
'Classes/CudaShapes.*/k16_s8_float32_fp32:Classes/CudaShapes.*/wide_channels_float32_fp32:'\
'Classes/CudaShapes.*/dw_chunks_of_tiles_float32_fp32:Classes/CudaShapes.*/dw_s1_k3_edges_bfloat16_bf16:'\
'Classes/CudaShapes.*/dw_stride_gt_kernel_float16_fp16'
OWN=cuda_direct,cuda_igemm_mma,cuda_tc_igemm,cuda_tc_wgrad,cuda_simt_f32,cuda_stream_depthwise,cuda_few_channels,cuda_channel_pad,cuda_tap_gemm
if command -v compute-sanitizer >/dev/null; then
  for tool in memcheck racecheck initcheck synccheck; do
    extra=()
    [ "$tool" = memcheck ] && extra=(--leak-check full)
    TCONV_CUDA_TEST_ALGORITHMS=$OWN step "sanitizer_$tool" 90 "$OUT/sanitizer_$tool.log" \
      compute-sanitizer --tool "$tool" "${extra[@]}" --error-exitcode 9 "$TEST_BIN" --gtest_filter="$FILTER"
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|LEAK SUMMARY" "$OUT/sanitizer_$tool.log" | tail -2 | sed 's/^/    /' | tee -a "$SUMMARY"
  done
  # cuda_tap_gemm with blocks walking many tiles under memcheck and racecheck.
  for tool in memcheck racecheck; do
    TCONV_TAP_GEMM_BLOCKS=2 TCONV_CUDA_TEST_ALGORITHMS=cuda_tap_gemm,cuda_direct step "sanitizer_${tool}_tap" 60 \
      "$OUT/sanitizer_${tool}_tap.log" compute-sanitizer --tool "$tool" --error-exitcode 9 "$TEST_BIN" \
      --gtest_filter='Classes/CudaShapes.*/tap_*_bfloat16_bf16:Classes/CudaShapes.*/tap_*_float32_fp32:Classes/CudaShapes.*/tap_k7_*:'\
'Classes/CudaShapes.*/one_out_channel_k9_float32_fp32:Classes/CudaShapes.*/few_out_channels_float32_tf32'
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$OUT/sanitizer_${tool}_tap.log" | tail -1 | sed 's/^/    /' | tee -a "$SUMMARY"
  done
  # cuDNN path once under memcheck (our layout/bias kernels around it).
  TCONV_CUDA_TEST_ALGORITHMS=cuda_cudnn step sanitizer_memcheck_cudnn 40 "$OUT/sanitizer_memcheck_cudnn.log" \
    compute-sanitizer --tool memcheck --error-exitcode 9 "$TEST_BIN" \
    --gtest_filter='Classes/CudaShapes.*/bias_float32_fp32:Classes/CudaShapes.*/groups_float16_fp16'
  grep -E "ERROR SUMMARY" "$OUT/sanitizer_memcheck_cudnn.log" | tail -1 | sed 's/^/    /' | tee -a "$SUMMARY"
else
  note "compute-sanitizer: not found"
fi
fi  # TCONV_GPU_SKIP_TESTS

# ---- 5. timing ----------------------------------------------------------------------------------------------
if [ "${TCONV_GPU_QUICK:-0}" != 1 ]; then
  BENCH=${TCONV_BENCH_DIR:-}
  for d in "$ROOT/bench" "$ROOT/.carry/bench" "$ROOT/../shared/bench"; do
    [ -z "$BENCH" ] && [ -f "$d/suite.json" ] && [ -f "$d/torch_peer.py" ] && BENCH=$d
  done
  if [ -n "$BENCH" ]; then
    python3 - "$BENCH/suite.json" >"$OUT/suite.txt" <<'PY'
import json, sys
for L in json.load(open(sys.argv[1]))["layers"]:
    print(L["name"], L["n"], L["cin"], L["cout"], L["h"], L["w"], L["kh"], L["kw"], L["groups"], *L["stride"],
          *L["pad"], *L["out_pad"], *L["dil"])
PY
    if [ -x "$CLI_BIN" ]; then
      step bench_tconv "${TCONV_GPU_BENCH_LIMIT:-400}" "$OUT/bench_tconv.log" "$CLI_BIN" bench --device cuda \
        --suite "$BENCH/suite.json" --dtypes bf16,fp16,tf32,fp32 --warmup 2 --reps 7 --algorithms list \
        --json "$OUT/ours.jsonl"
      grep -E "^# machine" "$OUT/bench_tconv.log" | tee -a "$SUMMARY"
      grep -c '"check":"MISMATCH"' "$OUT/ours.jsonl" | sed 's/^/object API vs direct run mismatches: /' | tee -a "$SUMMARY"
    else  # no CLI: the per-algorithm program alone (no "tconv" line)
      step bench_tconv 150 "$OUT/ours.jsonl" "$BENCH_BIN" --cases "$OUT/suite.txt" \
        --dtypes bf16,fp16,tf32,fp32 --warmup 2 --reps 7
    fi
    step bench_torch 150 "$OUT/peer.jsonl" env PYTHONUNBUFFERED=1 python3 "$BENCH/torch_peer.py" \
      --suite "$BENCH/suite.json" --device cuda --dtypes bf16,fp16,tf32,fp32 --warmup 2 --reps 7
    # compare.py keeps the best of each side per (layer, dtype): for "tconv" (the planner through the object
    # API: what a user gets), over every line (the best forced algorithm per layer), and per algorithm.
    impls=$(python3 -c 'import json,sys
print("\n".join(sorted({json.loads(l)["impl"] for l in open(sys.argv[1]) if l.startswith("{")} - {"tconv-machine"})))' \
      "$OUT/ours.jsonl")
    {
      for m in all_ms dx_ms dwdb_ms; do
        echo "### best tconv line, metric $m"; python3 "$BENCH/compare.py" "$OUT/peer.jsonl" "$OUT/ours.jsonl" --metric "$m"
        for i in $impls; do
          python3 -c 'import json,sys
for l in open(sys.argv[1]):
    if l.startswith("{") and json.loads(l)["impl"] == sys.argv[2]: print(l, end="")' "$OUT/ours.jsonl" "$i" \
            >"$OUT/ours_one.jsonl"
          echo "### $i only, metric $m"; python3 "$BENCH/compare.py" "$OUT/peer.jsonl" "$OUT/ours_one.jsonl" --metric "$m"
        done
      done
    } >"$OUT/compare.txt" 2>&1
    rm -f "$OUT/ours_one.jsonl"
    awk '/^###/{show = /all_ms/} show && (/^###/ || /^geomean/)' "$OUT/compare.txt" | tee -a "$SUMMARY"
  else
    note "timing: no suite.json/torch_peer.py found (set TCONV_BENCH_DIR or copy them into .carry/bench)"
  fi
fi
note "done $(date -u +%FT%TZ)"
