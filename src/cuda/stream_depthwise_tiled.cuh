// Launchers of cuda_stream_depthwise's tiled data and weight gradients (stream_depthwise_tiled.cu); the plan they
// run is stream_depthwise_plan.hpp's. The caller checks that the views allow 16-byte accesses (view_vec8).
#pragma once

#include <cuda_runtime.h>

#include "core/problem.hpp"
#include "core/status.hpp"
#include "cuda/stream_depthwise_plan.hpp"

namespace tconv::cuda_stream {

core::Status run_bwd_data_tiled(const core::Problem& p, const core::Args& a, const DwPlan& d, cudaStream_t stream);
// workspace: dw_workspace_bytes(p) bytes (the partial rows).
core::Status run_bwd_weights_tiled(const core::Problem& p, const core::Args& a, const DwPlan& d, void* workspace,
                                   cudaStream_t stream);

}  // namespace tconv::cuda_stream
