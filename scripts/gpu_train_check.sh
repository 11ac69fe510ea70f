#!/usr/bin/env bash
# gpu_train_check.sh OUTDIR — the main job and the data-parallel path on a machine with an NVIDIA GPU, after
# scripts/gpu_check.sh built the binaries (TCONV_GPU_BUILD, default build-gpu):
#   1. the NCCL communicator tests (one rank; the several-GPU cases skip on one GPU)   -> OUTDIR/comm_test.log
#   2. tconv train --device cuda, 3 epochs of Fashion-MNIST                            -> OUTDIR/train_cuda.log
#   3. the PyTorch peer, same model/data/epochs, on the GPU (TF32 on: PyTorch's default) -> OUTDIR/torch_cuda.log
#   4. tests/dist/train_gpus.cmake: --gpus 1 through NCCL equals --device cuda byte for byte -> OUTDIR/train_gpus.log
# Data: TCONV_TRAIN_DATA (a folder with the four Fashion-MNIST idx files), or .carry/data/fashion.tar.xz
# unpacked to /tmp. NVLink multicast stays off (NCCL_NVLS_ENABLE=0) in every process.
set -u -o pipefail
OUT=${1:?usage: gpu_train_check.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${TCONV_GPU_BUILD:-$ROOT/build-gpu}
SUMMARY=$OUT/summary_train.txt
: >"$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }
step() {
  local name=$1 limit=$2 log=$3; shift 3
  local t0=$(date +%s)
  timeout "$limit" "$@" >"$log" 2>&1
  local rc=$?
  note "$(printf '%-18s rc=%-4s %4ss  %s' "$name" "$rc" "$(( $(date +%s) - t0 ))" "$(basename "$log")")"
  return $rc
}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
pylib() { python3 -c "import nvidia.$1 as m; print(list(m.__path__)[0] + '/lib')" 2>/dev/null; }
for m in cudnn nccl cublas; do d=$(pylib $m); [ -n "$d" ] && export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}; done
[ -d /tmp/tconv-deps/ob/lib ] && export LD_LIBRARY_PATH=/tmp/tconv-deps/ob/lib:$LD_LIBRARY_PATH
[ -d "$ROOT/.carry/deps/hwy/lib" ] && export LD_LIBRARY_PATH=$ROOT/.carry/deps/hwy/lib:$LD_LIBRARY_PATH

DATA=${TCONV_TRAIN_DATA:-}
if [ -z "$DATA" ] && [ -f "$ROOT/.carry/data/fashion.tar.xz" ]; then
  DATA=/tmp/tconv-fashion; mkdir -p "$DATA"; tar xJf "$ROOT/.carry/data/fashion.tar.xz" -C "$DATA"
fi
[ -n "$DATA" ] || { note "no training data (TCONV_TRAIN_DATA or .carry/data/fashion.tar.xz)"; exit 1; }
TCONV=$BUILD/tools/tconv/tconv
note "gpu_train_check $(date -u +%FT%TZ) device: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"

COMM_TEST=$(find "$BUILD" -name dist_communicator_test -type f -perm -u+x 2>/dev/null | head -1)
[ -n "$COMM_TEST" ] && step comm_test 60 "$OUT/comm_test.log" "$COMM_TEST"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests? from .* ran" "$OUT/comm_test.log" 2>/dev/null | tail -3 | tee -a "$SUMMARY"
step train_cuda 120 "$OUT/train_cuda.log" "$TCONV" train --device cuda --epochs 3 --data "$DATA" --progress 0 \
  --out "$OUT/train_cuda"
tail -2 "$OUT/train_cuda.log" | tee -a "$SUMMARY"
step torch_cuda 90 "$OUT/torch_cuda.log" python3 "$ROOT/scripts/train_torch.py" --device cuda --epochs 3 --data "$DATA"
tail -2 "$OUT/torch_cuda.log" | tee -a "$SUMMARY"
TCONV_TEST_DATA=$DATA step train_gpus 120 "$OUT/train_gpus.log" cmake -DTCONV="$TCONV" -DWORK=/tmp/tconv-tg \
  -P "$ROOT/tests/dist/train_gpus.cmake"
grep -E "test MSE|SKIPPED|rror|not run|differ|identical" "$OUT/train_gpus.log" | head -8 | tee -a "$SUMMARY"
rm -f "$OUT/train_cuda/model.safetensors"
note "done $(date -u +%FT%TZ)"
