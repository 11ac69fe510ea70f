// cuda_tc_igemm for bfloat16 images with bf16 multiplies:
// this type's instantiation of the kernels (tc_igemm_kernels.cuh), compiled apart from the other types' so that
// the build runs the three in parallel.
#include "cuda/tc_igemm_kernels.cuh"

namespace tconv::cuda_tc {

core::Status run_igemm_bf16(const core::Problem& p, const core::Args& a, void* workspace, cudaStream_t stream,
                           int device) {
  return run_typed<cuda_direct::MmaBf16>(p, a, workspace, stream, device);
}

// One check stands for the three types: they are compiled with the same flags for the same architectures.
bool igemm_uses_wgmma(int device) { return wgmma_usable<cuda_direct::MmaBf16>(device); }

}  // namespace tconv::cuda_tc
