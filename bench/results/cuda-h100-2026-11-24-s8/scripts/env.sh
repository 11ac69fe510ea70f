# sourced by the lead's GPU run scripts: library paths for binaries built by scripts/gpu_check.sh
CUDNN_DIR=$(python3 -c 'import nvidia.cudnn as m;print(list(m.__path__)[0])' 2>/dev/null)
CUBLAS_DIR=$(python3 -c 'import nvidia.cublas as m;print(list(m.__path__)[0])' 2>/dev/null)
NCCL_DIR=$(python3 -c 'import nvidia.nccl as m;print(list(m.__path__)[0])' 2>/dev/null)
export LD_LIBRARY_PATH=$PWD/.carry/deps/hwy/lib:/tmp/tconv-deps/ob/lib:${CUDNN_DIR:+$CUDNN_DIR/lib:}${CUBLAS_DIR:+$CUBLAS_DIR/lib:}${NCCL_DIR:+$NCCL_DIR/lib:}${LD_LIBRARY_PATH:-}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
T0=${T0:-$(date +%s)}
el() { echo "[$(( $(date +%s) - T0 ))s] $*"; }
