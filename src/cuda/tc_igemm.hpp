// cuda_tc_igemm's typed entry points, one per operand type, each defined in a translation unit of its own
// (tc_igemm_bf16.cu, tc_igemm_f16.cu, tc_igemm_tf32.cu — the kernels are tc_igemm_kernels.cuh) and called by the
// algorithm (tc_igemm.cpp). Host declarations only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/problem.hpp"
#include "core/status.hpp"

namespace tconv::cuda_tc {

// 16-byte copies and stores need 16-byte aligned starts (the kernels' gathered views and outputs).
inline bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

// Packs the weights into `workspace` (workspace_for bytes, tc_igemm_plan.hpp), plans and launches the problem on
// `stream`: fwd or bwd_data with bfloat16 images and bf16 multiplies, float16 / fp16, float32 / tf32. The caller
// has checked decline_reason, the 16-byte alignment of the gathered view and made `device` current.
core::Status run_igemm_bf16(const core::Problem& p, const core::Args& a, void* workspace, cudaStream_t stream,
                            int device);
core::Status run_igemm_f16(const core::Problem& p, const core::Args& a, void* workspace, cudaStream_t stream,
                           int device);
core::Status run_igemm_tf32(const core::Problem& p, const core::Args& a, void* workspace, cudaStream_t stream,
                            int device);

}  // namespace tconv::cuda_tc
