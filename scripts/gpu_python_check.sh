#!/usr/bin/env bash
# gpu_python_check.sh OUTDIR — the Python package's CUDA check on a machine with an NVIDIA GPU, in one run:
#   1. environment (GPU, nvcc, Python, PyTorch, nanobind, scikit-build-core, cuDNN wheel) -> OUTDIR/env.txt
#   2. `pip install --no-build-isolation ./python` with the CUDA backend (sm_90a only, to build fast there)
#      into the machine's python3 (the one that holds PyTorch)                            -> OUTDIR/build.log
#   3. import check, then pytest: the CUDA tests and the object tests (CPU + CUDA device) first, then the rest
#      of python/tests (the CPU suite)                                    -> OUTDIR/pytest_cuda.log, pytest_rest.log
#   4. a few timings of tconv.torch.ConvTranspose2d vs torch.nn.ConvTranspose2d on the GPU -> OUTDIR/timing.txt
# Ends with OUTDIR/summary.txt.
#
# Highway (libhwy, which the CPU backend needs) is not installed on the GPU image: pass its prefix in
# TCONV_HWY_PREFIX (include/hwy, lib/libhwy.so*; default .carry/h6/hwy, copied from a development machine's
# /usr/include/hwy and /usr/lib/x86_64-linux-gnu/libhwy*). CMake finds the library through CMAKE_PREFIX_PATH
# (src/cpu/cpu.cmake: find_library(hwy)) and the compiler the headers through CPATH; the extension module
# finds libhwy and cuDNN at import through its RPATH (python/CMakeLists.txt). cuDNN comes from the nvidia-cudnn
# wheel next to PyTorch (CUDNN_ROOT for src/cuda/cuda.cmake).
# TCONV_PY_ROOT: build against the C++ sources of another checkout (python/CMakeLists.txt's TCONV_ROOT), e.g.
# a snapshot of a commit while the working tree's library is mid-change; default: this repository.
# TCONV_DEVICE=cpu keeps the CPU tests on the CPU (default_device() would otherwise be the GPU); the CUDA
# tests name their devices. Environment: PYTHON (default python3), TCONV_PY_BUILD_LIMIT (s, default 170),
# TCONV_PY_TEST_LIMIT (s, default 150), TCONV_PY_TOTAL (s the whole run may take, default 240).
set -u -o pipefail
OUT=${1:?usage: gpu_python_check.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
HWY=${TCONV_HWY_PREFIX:-$ROOT/.carry/h6/hwy}
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }
T0=$(date +%s)
elapsed() { echo $(( $(date +%s) - T0 )); }

CUDNN_DIR=$("$PY" -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null || true)
{
  echo "date: $(date -u +%FT%TZ)  host: $(hostname)  cores: $(nproc)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
  nvcc --version 2>&1 | tail -2; cmake --version | head -1; g++ --version | head -1
  "$PY" -c 'import sys, torch; print("python", sys.version.split()[0], sys.executable); print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' 2>&1
  "$PY" -m pip list 2>/dev/null | grep -iE "^(nanobind|scikit.build.core|numpy|pytest|cupy)" 2>&1
  echo "cudnn wheel: ${CUDNN_DIR:-none}"; ls "$CUDNN_DIR/include/cudnn_version.h" 2>&1
  echo "highway prefix: $HWY"; ls "$HWY/lib" 2>&1
  # Libraries PyTorch loads (many RTLD_GLOBAL) that export their own C++ runtime symbols: an extension that
  # binds to them mixes two runtimes (python/CMakeLists.txt links a private one for that reason).
  "$PY" - <<'PY' 2>&1
import subprocess, torch
torch.zeros(1, device="cuda")
libs = sorted({l.split()[-1] for l in open("/proc/self/maps") if ".so" in l.split()[-1]})
syms = ("__cxa_throw", "_Znwm", "_ZdlPv", "_Unwind_RaiseException", "__gxx_personality_v0")
for lib in libs:
    if "libstdc++" in lib or "libgcc_s" in lib:
        continue
    out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True).stdout
    found = [s for s in syms if any(line.endswith(" " + s) for line in out.splitlines())]
    if found:
        print("exports C++ runtime symbols:", lib, found)
print("checked", len(libs), "libraries loaded by torch")
PY
} >"$OUT/env.txt"
note "gpu_python_check $(date -u +%FT%TZ) on $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"

# ---- build -------------------------------------------------------------------------------------------------
export CPATH=$HWY/include${CPATH:+:$CPATH}
export CMAKE_PREFIX_PATH=$HWY${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
[ -n "$CUDNN_DIR" ] && export CUDNN_ROOT=$CUDNN_DIR
export CMAKE_BUILD_PARALLEL_LEVEL=$(nproc)
build() {  # build [extra pip arguments...]
  timeout "${TCONV_PY_BUILD_LIMIT:-170}" "$PY" -m pip install -v --no-build-isolation --no-deps "$ROOT/python" \
    --config-settings=cmake.define.TCONV_CUDA=ON --config-settings=cmake.define.CMAKE_CUDA_ARCHITECTURES=90a \
    --config-settings=build-dir=build/gpu-{wheel_tag} \
    ${TCONV_PY_ROOT:+--config-settings=cmake.define.TCONV_ROOT=$TCONV_PY_ROOT} "$@" >>"$OUT/build.log" 2>&1
}
: >"$OUT/build.log"
build
rc=$?
note "build: rc=$rc after $(elapsed) s (C++ sources: ${TCONV_PY_ROOT:-$ROOT})"
if [ $rc -ne 0 ] && [ "$(elapsed)" -lt 150 ]; then
  # E.g. a toolchain whose static libstdc++ cannot go into a shared object: the shared runtime instead.
  build --config-settings=cmake.define.TCONV_PY_PRIVATE_CXX_RUNTIME=OFF
  rc=$?
  note "build with the shared C++ runtime: rc=$rc after $(elapsed) s"
fi
grep -m1 "tconv CUDA backend" "$OUT/build.log" | tee -a "$SUMMARY"
if [ $rc -ne 0 ]; then
  grep -E "error|Error" "$OUT/build.log" | head -20 | tee -a "$SUMMARY"
  exit 1
fi

# ---- tests -------------------------------------------------------------------------------------------------
cd "$ROOT"  # `import tconv` is the installed package (-P: the source folder is not on sys.path)
export PYTHONUNBUFFERED=1
for order in "tconv, torch" "torch, tconv"; do  # a library error crosses the module boundary as a Python one
  "$PY" -P -c "import $order
d = tconv.Device.cuda(0)
try:
    tconv.conv_transpose2d_output_shape([1, 3, 5, 5], [4, 2, 3, 3])
except tconv.InvalidArgumentError as e:
    print('import $order: ok,', d.name, tconv.algorithms('cuda'), '| error round trip:', str(e)[:40])" 2>&1 | tee -a "$SUMMARY"
done
readelf -d "$("$PY" -P -c 'import tconv._core as m; print(m.__file__)')" | grep -E "NEEDED|RUNPATH" >>"$OUT/env.txt"
export TCONV_DEVICE=cpu
# pytest-xdist (when there): parallel, and a test that crashes the interpreter is reported, not fatal.
xdist=()
"$PY" -c 'import xdist' 2>/dev/null && xdist=(-n 4)
limit=${TCONV_PY_TEST_LIMIT:-150}
TOTAL=${TCONV_PY_TOTAL:-240}  # the whole run stays inside this many seconds
[ $(( TOTAL - 12 - $(elapsed) )) -lt "$limit" ] && limit=$(( TOTAL - 12 - $(elapsed) ))
timeout "$limit" "$PY" -P -m pytest "${xdist[@]}" -v -rs -p no:cacheprovider python/tests/test_cuda.py python/tests/test_objects.py \
  python/tests/test_distributed.py >"$OUT/pytest_cuda.log" 2>&1
note "pytest cuda+objects: rc=$? after $(elapsed) s: $(tail -1 "$OUT/pytest_cuda.log")"
grep -E "FAILED|^E  |crashed" "$OUT/pytest_cuda.log" | head -40 | tee -a "$SUMMARY"
left=$(( TOTAL - 15 - $(elapsed) ))
if [ $left -gt 20 ]; then
  # 4 workers x 4 OpenMP threads: with every worker's OpenMP pool at the core count (spinning waits), the
  # CPU suite ran all its tests but had not exited within 86 s on the 16-core H100 host.
  OMP_NUM_THREADS=4 TCONV_NUM_THREADS=4 \
  timeout $(( left - 15 )) "$PY" -P -m pytest "${xdist[@]}" -q -p no:cacheprovider python/tests \
    --ignore python/tests/test_cuda.py --ignore python/tests/test_objects.py \
    --ignore python/tests/test_distributed.py >"$OUT/pytest_rest.log" 2>&1
  note "pytest rest (CPU suite): rc=$? after $(elapsed) s: $(tail -1 "$OUT/pytest_rest.log")"
fi

# ---- timing ------------------------------------------------------------------------------------------------
left=$(( TOTAL - 10 - $(elapsed) ))
if [ $left -gt 12 ]; then
  timeout $(( left - 5 )) "$PY" -P - >"$OUT/timing.txt" 2>&1 <<'PY'
# One decoder layer (N=32, 64->32 channels, 32x32 -> 64x64, k4 s2 p1) on channels-last input, CUDA events,
# median of 10 after 3 warm-ups; PyTorch exact float32 (no TF32) for the fp32 rows. Per pass, with the
# algorithm tconv chose, then forward+backward through the modules.
import torch, tconv, tconv.torch as tt
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = True
def median_ms(fn, reps=10, warm=3):
    ts = []
    for i in range(warm + reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); fn(); b.record(); torch.cuda.synchronize()
        if i >= warm: ts.append(a.elapsed_time(b))
    return sorted(ts)[len(ts) // 2]
g = dict(stride=2, padding=1)
for dtype, prec in ((torch.float32, "fp32"), (torch.float32, "tf32"), (torch.bfloat16, "bf16")):
    x = torch.randn(32, 64, 32, 32, device="cuda", dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(64, 32, 4, 4, device="cuda", dtype=dtype)
    b = torch.randn(32, device="cuda", dtype=dtype)
    dy = torch.randn(32, 32, 64, 64, device="cuda", dtype=dtype).contiguous(memory_format=torch.channels_last)
    for name, fn in (("forward", lambda: tconv.conv_transpose2d(x, w, b, **g, precision=prec)),
                     ("backward dx", lambda: tconv.conv_transpose2d_backward(dy, x, w, **g, precision=prec, need=("dx",))),
                     ("backward dw+db", lambda: tconv.conv_transpose2d_backward(dy, x, w, **g, precision=prec, need=("dw", "db")))):
        ms = median_ms(fn)
        print(f"{str(dtype):15s} {prec:5s} {name:15s} tconv {ms:8.3f} ms  {tconv.last_algorithms()}", flush=True)
    ms = median_ms(lambda: torch.nn.functional.conv_transpose2d(x, w, b, **g))
    print(f"{str(dtype):15s} {prec:5s} {'forward':15s} torch {ms:8.3f} ms", flush=True)
    ref = torch.nn.ConvTranspose2d(64, 32, 4, **g).cuda().to(dtype)
    ours = tt.ConvTranspose2d.from_torch(ref, precision=prec)
    xr = x.detach().requires_grad_()
    print(f"{str(dtype):15s} {prec:5s} module fwd+bwd    torch {median_ms(lambda: ref(xr).sum().backward()):8.3f} ms"
          f"   tconv {median_ms(lambda: ours(xr).sum().backward()):8.3f} ms", flush=True)
PY
  note "timing: rc=$? after $(elapsed) s"
  tee -a "$SUMMARY" <"$OUT/timing.txt" >/dev/null
fi
note "done after $(elapsed) s"
