// Which multiply instructions the tensor-core algorithms take on a device. For the tests: a silent fall-back
// from wgmma to mma.sync (a build without sm_90a code, a check that went wrong) passes every numeric test and
// shows only in the timings (tests/cuda/cuda_kernels_test.cpp asserts the path). Plain C++ declarations.
#pragma once

namespace tconv::cuda_tc {

// The device's compute capability as major·10 + minor; 0 when the query fails (tc_wgrad.cu).
int compute_capability(int device);
// cuda_tc_igemm (tc_igemm_bf16.cu, for the three types): whether its wgmma kernels hold code that runs on `device`.
bool igemm_uses_wgmma(int device);
// cuda_tc_wgrad (tc_wgrad.cu): likewise for the weight-gradient kernels (bf16/fp16 variant 3, tf32 variant 4;
// checked on the bf16 kernel, which the same compilation emits with the others). Both answers are the checks the
// algorithms themselves branch on: they catch a build or device detection gone wrong, not a plan that picks an
// mma.sync tile or variant (the timings show those).
bool wgrad_uses_wgmma(int device);

}  // namespace tconv::cuda_tc
