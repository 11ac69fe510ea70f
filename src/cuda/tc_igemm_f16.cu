// cuda_tc_igemm for float16 images with fp16 multiplies:
// this type's instantiation of the kernels (tc_igemm_kernels.cuh), compiled apart from the other types' so that
// the build runs the three in parallel.
#include "cuda/tc_igemm_kernels.cuh"

namespace tconv::cuda_tc {

core::Status run_igemm_f16(const core::Problem& p, const core::Args& a, void* workspace, cudaStream_t stream,
                          int device) {
  return run_typed<cuda_direct::MmaF16>(p, a, workspace, stream, device);
}

}  // namespace tconv::cuda_tc
