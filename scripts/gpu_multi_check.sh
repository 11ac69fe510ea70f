#!/usr/bin/env bash
# gpu_multi_check.sh OUTDIR — the data-parallel path on a machine with several NVIDIA GPUs, in one run:
#   1. environment: GPUs, how they are linked (nvidia-smi topo), NCCL                     -> OUTDIR/env.txt
#   2. build the CLI and the communicator tests (scripts/gpu_check.sh, timing and kernel tests skipped)
#   3. the communicator tests with every GPU (CommunicatorSeveralGpus: sum, mean, weighted sum across ranks,
#      bit-identical repetitions)                                                        -> OUTDIR/comm_test.log
#   4. tests/dist/train_gpus.cmake: --gpus 1 equals --device cuda byte for byte; --gpus N (N = every GPU)
#      matches the one-GPU test MSE within 1% and is byte-identical across two runs     -> OUTDIR/train_gpus.log
#   5. scaling of `tconv train` (3 epochs of Fashion-MNIST) over 1, 2, 4, ... GPUs: strong (global batch 128)
#      and weak (128 images per GPU)                                                      -> OUTDIR/scaling.txt
#   6. the Python package built with CUDA (pip), its data-parallel tests (python/tests/test_distributed.py)
#      and `python -m tconv.train --gpus N` for 1 and N GPUs                              -> OUTDIR/py_*.log
# Ends with OUTDIR/summary.txt. NVLink multicast stays off (NCCL_NVLS_ENABLE=0 and the PyTorch/NVSHMEM
# equivalents) in every process: on shared hosts it can put the GPUs out of service.
# Data: TCONV_TRAIN_DATA (a folder with the four Fashion-MNIST idx files), or .carry/data/fashion.tar.xz.
# Environment: TCONV_MULTI_SKIP_PY=1 (steps 1–5 only), TCONV_MULTI_EPOCHS (scaling epochs, default 3),
# TCONV_MULTI_BUILD_ONLY=1 (steps 1–2 only). The build from source takes most of a 600 s call (417–460 s on the
# H100 host, 2026-11-24), so on the device tool run it twice back to back on the warm machine: first with
# TCONV_MULTI_BUILD_ONLY=1, then without (the build is then up to date in seconds and the rest has the call).
set -u -o pipefail
OUT=${1:?usage: gpu_multi_check.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${TCONV_GPU_BUILD:-$ROOT/build-gpu}
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }
step() {  # step NAME SECONDS LOG cmd...
  local name=$1 limit=$2 log=$3; shift 3
  local t0=$(date +%s)
  timeout "$limit" "$@" >"$log" 2>&1
  local rc=$?
  note "$(printf '%-20s rc=%-4s %4ss  %s' "$name" "$rc" "$(( $(date +%s) - t0 ))" "$(basename "$log")")"
  return $rc
}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
note "gpu_multi_check $(date -u +%FT%TZ) commit $(cat "$ROOT/.carry/commit" 2>/dev/null || git -C "$ROOT" rev-parse HEAD 2>/dev/null)"
note "GPUs: $GPUS x $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
{
  nvidia-smi -L; nvidia-smi topo -m
  python3 -c 'import torch; print("torch", torch.__version__, "devices", torch.cuda.device_count(), "nccl", torch.cuda.nccl.version())'
} >"$OUT/env.txt" 2>&1

# ---- 2. build ------------------------------------------------------------------------------------------------
TCONV_GPU_QUICK=1 TCONV_GPU_SKIP_TESTS=1 TCONV_GPU_EXTRA_TARGETS="dist_communicator_test ${TCONV_GPU_EXTRA_TARGETS:-}" \
  TCONV_GPU_BUILD=$BUILD bash "$ROOT/scripts/gpu_check.sh" "$OUT/build" >/dev/null 2>&1
note "build: $(grep -E '^(build|binaries)' "$OUT/build/summary.txt" | tr '\n' ' ')"
[ "${TCONV_MULTI_BUILD_ONLY:-0}" = 1 ] && { note "done (build only) $(date -u +%FT%TZ)"; exit 0; }
pylib() { python3 -c "import nvidia.$1 as m; print(list(m.__path__)[0] + '/lib')" 2>/dev/null; }
for m in cudnn nccl cublas; do d=$(pylib $m); [ -n "$d" ] && export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}; done
[ -d /tmp/tconv-deps/ob/lib ] && export LD_LIBRARY_PATH=/tmp/tconv-deps/ob/lib:$LD_LIBRARY_PATH
[ -d "$ROOT/.carry/deps/hwy/lib" ] && export LD_LIBRARY_PATH=$ROOT/.carry/deps/hwy/lib:$LD_LIBRARY_PATH
TCONV=$BUILD/tools/tconv/tconv

DATA=${TCONV_TRAIN_DATA:-}
if [ -z "$DATA" ] && [ -f "$ROOT/.carry/data/fashion.tar.xz" ]; then
  DATA=/tmp/tconv-fashion; mkdir -p "$DATA"; tar xJf "$ROOT/.carry/data/fashion.tar.xz" -C "$DATA"
fi
[ -n "$DATA" ] || { note "no training data (TCONV_TRAIN_DATA or .carry/data/fashion.tar.xz)"; exit 1; }

# ---- 3. communicator tests -------------------------------------------------------------------------------------
COMM_TEST=$(find "$BUILD" -name dist_communicator_test -type f -perm -u+x 2>/dev/null | head -1)
if [ -n "$COMM_TEST" ]; then
  step comm_test 120 "$OUT/comm_test.log" "$COMM_TEST"
  grep -E "^\[ +(OK|FAILED|SKIPPED) +\] Communicator(SeveralGpus|OneRank)|^\[  (PASSED|FAILED|SKIPPED) " \
    "$OUT/comm_test.log" | tee -a "$SUMMARY"
else
  note "comm_test: not built"
fi

# ---- 4. --gpus N against one GPU, determinism ------------------------------------------------------------------
TCONV_TEST_DATA=$DATA step train_gpus 240 "$OUT/train_gpus.log" cmake -DTCONV="$TCONV" -DWORK=/tmp/tconv-tg \
  -P "$ROOT/tests/dist/train_gpus.cmake"
grep -E "test MSE|SKIPPED|rror|differ|identical|match" "$OUT/train_gpus.log" | head -12 | tee -a "$SUMMARY"

# ---- 5. scaling ------------------------------------------------------------------------------------------------
EPOCHS=${TCONV_MULTI_EPOCHS:-3}
counts=""
for n in 1 2 4 8; do [ "$n" -le "$GPUS" ] && counts="$counts $n"; done
{
  echo "# tconv train, $EPOCHS epochs of Fashion-MNIST (60000 images), $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
  echo "| GPUs | global batch | per GPU | images/s | test MSE | vs 1 GPU |"
  echo "|---|---|---|---|---|---|"
} >"$OUT/scaling.txt"
base_strong="" base_weak=""
for mode in strong weak; do
  for n in $counts; do
    batch=128; [ $mode = weak ] && batch=$(( 128 * n ))
    [ $mode = weak ] && [ "$n" = 1 ] && continue  # the same run as strong n=1
    log=$OUT/scale_${mode}_$n.log
    step "train ${mode} x$n" 300 "$log" "$TCONV" train --gpus "$n" --batch "$batch" --epochs "$EPOCHS" --data "$DATA" \
      --progress 0 --out "/tmp/tconv-scale-$mode-$n"
    line=$(grep -E "^tconv: test MSE" "$log" | tail -1)
    ips=$(echo "$line" | sed -nE 's/.* ([0-9.]+) images\/s.*/\1/p')
    mse=$(echo "$line" | sed -nE 's/.*test MSE ([0-9.]+).*/\1/p')
    [ "$n" = 1 ] && base_strong=$ips && base_weak=$ips
    base=$base_strong; [ $mode = weak ] && base=$base_weak
    ratio=$(python3 -c "print(f'{float(\"$ips\")/float(\"$base\"):.2f}x')" 2>/dev/null || echo "?")
    echo "| $n | $batch | $(( batch / n )) | ${ips:-failed} | ${mse:-?} | $ratio |" >>"$OUT/scaling.txt"
    rm -f "/tmp/tconv-scale-$mode-$n/model.safetensors"
  done
done
cat "$OUT/scaling.txt" | tee -a "$SUMMARY"

# ---- 6. Python ---------------------------------------------------------------------------------------------------
if [ "${TCONV_MULTI_SKIP_PY:-0}" != 1 ]; then
  HWY=${TCONV_HWY_PREFIX:-$ROOT/.carry/deps/hwy}
  CUDNN_DIR=$(python3 -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null || true)
  export CPATH=$HWY/include${CPATH:+:$CPATH} CMAKE_PREFIX_PATH=$HWY${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
  [ -n "$CUDNN_DIR" ] && export CUDNN_ROOT=$CUDNN_DIR
  export CMAKE_BUILD_PARALLEL_LEVEL=$(nproc)
  step py_build 300 "$OUT/py_build.log" python3 -m pip install -v --no-build-isolation --no-deps "$ROOT/python" \
    --config-settings=cmake.define.TCONV_CUDA=ON --config-settings=cmake.define.CMAKE_CUDA_ARCHITECTURES=90a \
    --config-settings=build-dir=build/gpu-{wheel_tag}
  cd "$ROOT"
  step py_distributed 240 "$OUT/py_test.log" python3 -P -m pytest -v -rs -p no:cacheprovider python/tests/test_distributed.py
  tail -1 "$OUT/py_test.log" | tee -a "$SUMMARY"
  grep -E "FAILED|SKIPPED|^E  " "$OUT/py_test.log" | head -20 | tee -a "$SUMMARY"
  for n in $counts; do
    [ "$n" = 1 ] || [ "$n" = "$GPUS" ] || continue
    step "py train x$n" 300 "$OUT/py_train_$n.log" python3 -P -m tconv.train --device cuda --gpus "$n" --epochs 1 \
      --data "$DATA" --out "/tmp/tconv-py-$n"
    tail -2 "$OUT/py_train_$n.log" | tee -a "$SUMMARY"
  done
fi
note "done $(date -u +%FT%TZ)"
